package main

import (
	"github.com/spf13/cobra"

	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/gate/report"
)

func newExplainCmd() *cobra.Command {
	var (
		pf     policyFlags
		format report.Format
	)
	cmd := &cobra.Command{
		Use:   "explain IMAGE",
		Short: "Show every lookup and every signature considered for one image, and why each was accepted or rejected",
		Long: `explain verifies one image against the trust policies that match it and shows
everything it did: the digest the reference resolved to, every registry request
(URL, status, what it found, how long it took, how it failed), and every
signature and attestation found, with the reason it was accepted or rejected.

Exit codes as pregate check: 0 the image passes, 1 it is denied, 2 could not decide.`,
		Example: `  pregate explain ghcr.io/acme/web:1.4.0 --policy policies/first-party.yaml
  pregate explain ghcr.io/acme/web@sha256:… --images 'ghcr.io/acme/**' --key cosign.pub -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts, err := pf.options(ctx)
			if err != nil {
				return err
			}
			res, err := pipeline.Explain(ctx, opts, args[0])
			if err != nil {
				return err
			}
			if err := report.Explain(cmd.OutOrStdout(), format, res); err != nil {
				return err
			}
			return verdictExit(res.Verdict.Allowed, res.Verdict.Undecided)
		},
	}
	pf.bind(cmd)
	addOutputFlag(cmd, &format)
	return cmd
}
