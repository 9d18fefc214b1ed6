package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/gate/report"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with policy files: admission policies and TrustPolicies",
	}
	cmd.AddCommand(newPolicyLintCmd())
	return cmd
}

func newPolicyLintCmd() *cobra.Command {
	var (
		format  report.Format
		engines []string
	)
	cmd := &cobra.Command{
		Use:   "lint FILE...",
		Short: "Say what pregate reads of policy files, and what is wrong with them, with no registry",
		Long: `lint reads admission policies (Kyverno ClusterPolicy, Policy, ImageValidatingPolicy;
policy-controller ClusterImagePolicy, TrustRoot) and pregate's TrustPolicies and
TrustRoots, and says what it read of each (engine, rules, images, signers,
attestations, action) and every finding that needs no registry, with its fix:
a rule that reads only legacy signatures (cosign v3 writes bundles by default),
a keyless attestor with several identities on a bundle path, a bundle-format
authority that reads no signature, a glob that can match nothing, a regexp
that matches anywhere, a predicate type that is not a URI. A policy that does
not read is an error naming it and why.

It is the merge-queue check for a pull request that changes only policies.
Exit codes: 0 no error found, 1 an error found, 2 could not run.`,
		Example: `  pregate policy lint policies/*.yaml
  pregate policy lint kyverno/verify-images.yaml --engine kyverno@1.18 -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			profiles, err := admission.ParseProfiles(engines)
			if err != nil {
				return fmt.Errorf("--engine: %w", err)
			}
			var res pipeline.LintResult
			for _, file := range files {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				pipeline.LintFile(file, b, profiles, &res)
			}
			if err := report.Lint(cmd.OutOrStdout(), format, res); err != nil {
				return err
			}
			if res.Errors() {
				return &exitError{code: exitBlocked}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&engines, "engine", nil, "the admission engine release the cluster runs: kyverno@1.19, policy-controller@0.15 (repeatable, one per engine; default the newest known: "+newestEngines()+")")
	addOutputFlag(cmd, &format, report.Text, report.JSON, report.GitHub)
	return cmd
}
