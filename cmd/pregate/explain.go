package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/verify"
)

// explanation is the JSON document `pregate explain -o json` prints.
type explanation struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Image      string            `json:"image"`
	Verdict    gate.ImageVerdict `json:"verdict"`
	Allowed    bool              `json:"allowed"`
	Undecided  bool              `json:"undecided"`
	Retry      bool              `json:"retry"`
	Results    []verify.Result   `json:"results"`
}

func newExplainCmd() *cobra.Command {
	var (
		pf     policyFlags
		format outputFormat
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
			ref, err := render.ParseReference(args[0])
			if err != nil {
				return err
			}
			compiled, unmatched, err := pf.load(ctx)
			if err != nil {
				return err
			}
			verifier, err := pf.newVerifier(compiled, verify.WithEveryPlace())
			if err != nil {
				return err
			}
			cfg := gate.Config{Policies: compiled.Gate, Unmatched: unmatched}
			var results []verify.Result
			var findings []gate.Finding
			for _, p := range compiled.Gate {
				if !p.Matches(ref.Ref) {
					continue
				}
				res, err := verifier.Explain(ctx, ref.Ref, p.Name)
				if err != nil {
					return err
				}
				results = append(results, res)
				findings = append(findings, gate.Finding{Image: ref.Ref, Policy: p.Name, Digest: res.Subject.Digest, Status: res.Status, Detail: res.Detail})
			}
			v := gate.Evaluate(cfg, gate.Revision{Source: ref.Ref}, gate.Rendered{Images: []gate.Image{{Ref: ref.Ref}}}, findings)
			ex := explanation{APIVersion: reportAPIVersion, Kind: "Explanation", Image: ref.Ref, Verdict: v.Images[0], Allowed: v.Allowed, Undecided: v.Undecided, Retry: v.Retry, Results: results}
			if ex.Results == nil {
				ex.Results = []verify.Result{}
			}
			out := cmd.OutOrStdout()
			if format == outputJSON {
				err = writeJSON(out, ex)
			} else {
				err = writeExplanation(out, ex, compiled.Gate)
			}
			if err != nil {
				return err
			}
			return verdictExit(v.Allowed, v.Undecided)
		},
	}
	pf.bind(cmd)
	addOutputFlag(cmd, &format)
	return cmd
}

func writeExplanation(w io.Writer, ex explanation, policies []gate.Policy) error {
	modes := map[string]gate.Mode{}
	for _, p := range policies {
		modes[p.Name] = p.Mode
	}
	fmt.Fprintf(w, "Image:    %s\n", ex.Image)
	if ex.Verdict.Digest != "" {
		fmt.Fprintf(w, "Digest:   %s\n", ex.Verdict.Digest)
	}
	if len(ex.Verdict.Policies) == 0 {
		fmt.Fprintf(w, "Policies: none matches\n")
	} else {
		var ps []string
		for _, p := range ex.Verdict.Policies {
			ps = append(ps, fmt.Sprintf("%s (%s)", p, modes[p]))
		}
		fmt.Fprintf(w, "Policies: %s\n", strings.Join(ps, ", "))
	}
	for _, res := range ex.Results {
		fmt.Fprintf(w, "\nPolicy %q: %s\n  %s\n", res.Policy, res.Status, res.Detail)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\n  LOOKUP\tSTATUS\tFOUND\tTIME\tURL\tERROR")
		for _, l := range res.Lookups {
			status := "-"
			if l.Status != 0 {
				status = fmt.Sprint(l.Status)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", l.Step, status, l.Found, l.Duration.Round(time.Millisecond), dash(l.URL), dash(l.Err))
		}
		if len(res.Considered) > 0 {
			fmt.Fprintln(tw, "\n  ARTIFACT\tFOUND IN\tFORMAT\tKIND\tACCEPTED\tSIGNER\tREASON")
			for _, c := range res.Considered {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortDigest(c.Artifact), c.Source, c.Format, c.Kind, yesNo(c.Accepted), dash(c.Signer), c.Reason)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	state := "ALLOWED"
	switch {
	case ex.Undecided:
		state = "UNDECIDED"
	case !ex.Allowed:
		state = "DENIED"
	}
	_, err := fmt.Fprintf(w, "\n%s: %s\n", state, ex.Verdict.Detail)
	return err
}
