package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/gate/report"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/verify"
)

func newCheckCmd() *cobra.Command {
	var (
		rf          renderFlags
		pf          policyFlags
		running     runningFlags
		cf          cacheFlags
		format      report.Format
		reports     []string
		concurrency int
		timeout     time.Duration
		pinDir      string
		termination string
	)
	cmd := &cobra.Command{
		Use:   "check PATH...",
		Short: "Render a revision, verify every image against trust policies, and say whether it may go out",
		Long: `check renders each PATH as Flux would apply it (see pregate images), verifies
every image's Sigstore signatures and attestations against the trust policies,
and prints the verdict: which images are trusted, which are not and exactly why.

Every verdict is about a digest: tags are resolved when the check runs.
Signatures are looked up everywhere they can be stored (the OCI referrers API,
the sha256-<hex> fallback tag, the legacy .sig and .att tags); a lookup that
fails is reported as such and never taken for "no signature".

Policies come from --policy files (TrustPolicy and TrustRoot objects), or, for
a quick check, from cosign-style flags:

  pregate check clusters/prod --images 'ghcr.io/acme/**' \
    --certificate-identity-regexp '^https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/tags/v.+$' \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com

For CI, -o junit|sarif|github prints a report CI systems read, and --report
FORMAT=FILE writes more from the same run; with the github format the step
summary goes to $GITHUB_STEP_SUMMARY. Verdicts are kept in --cache-dir between
runs (by digest, policy and trust material, for 10 minutes): a re-run of an
unchanged revision only resolves its tags.

Exit codes: 0 the revision may go out, 1 it is blocked, 2 pregate could not
decide (a render error, an unreachable registry, a bad policy).`,
		Example: `  pregate check clusters/prod --policy policies/ --unmatched-images warn
  pregate check apps/prod --kustomization-file clusters/prod/apps.yaml --policy trust.yaml -o json
  pregate check clusters/prod --policy policies/ -o github --report sarif=pregate.sarif --report junit=pregate.xml
  pregate check . --images 'registry.internal:5000/**' --key cosign.pub --trusted-root trusted_root.json
  kubectl get pods -A -o yaml > pods.yaml && kubectl get clusterpolicies -o yaml > policies.yaml
  pregate check clusters/prod --policy policies/ --admission-policy policies.yaml --running-images pods.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			var res *pipeline.Result
			if termination != "" {
				defer func() {
					if werr := writeTermination(termination, res, err); werr != nil {
						err = errors.Join(err, werr)
					}
				}()
			}
			ctx := cmd.Context()
			files, err := parseReports(reports)
			if err != nil {
				return err
			}
			opts, err := pf.options(ctx)
			if err != nil {
				return err
			}
			if opts.AllowGaps, err = rf.allowedGaps(); err != nil {
				return err
			}
			if err := running.apply(&opts); err != nil {
				return err
			}
			cache, err := cf.cache(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if cache != nil {
				opts.Verifier = append(opts.Verifier, verify.WithCache(cache))
			}
			opts.Concurrency, opts.Timeout = concurrency, timeout
			srcs, err := rf.sources(args)
			if err != nil {
				return err
			}
			if format == report.Text {
				opts.Progress = progressOn(cmd.ErrOrStderr())
			}
			res, err = pipeline.Check(ctx, opts, srcs...)
			if opts.Progress != nil {
				opts.Progress(pipeline.Progress{}) // clears the line
			}
			if err != nil {
				return err
			}
			if err := writeReports(cmd.OutOrStdout(), format, files, res); err != nil {
				return err
			}
			if pinDir != "" {
				if err := writePinned(cmd.ErrOrStderr(), pinDir, res); err != nil {
					return err
				}
			}
			return verdictExit(res.Verdict.Allowed, res.Verdict.Undecided)
		},
	}
	rf.bind(cmd)
	pf.bind(cmd)
	running.bind(cmd)
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "how many images are verified at once")
	cmd.Flags().StringVar(&termination, "termination-message", "", "also write the verdict (or why there is none) to this file, at most 4 KiB: a Kubernetes container's termination message file (/dev/termination-log), which Argo CD shows on a failed PreSync hook")
	cmd.Flags().StringVar(&pinDir, "pin-digests", "", "when the revision is allowed, write its rendered manifests to this directory with every checked image pinned to the digest verified (repository:tag@sha256:…), one file per PATH, for CI to apply exactly what was checked")
	cmd.Flags().DurationVar(&timeout, "timeout", gate.DefaultTimeout, "the bound on verifying all of the revision's images; what is not verified in time leaves the verdict undecided")
	cmd.Flags().StringArrayVar(&reports, "report", nil, "also write a report to a file, as FORMAT=FILE (repeatable): "+report.Names(report.CheckFormats))
	cf.bind(cmd)
	addOutputFlag(cmd, &format, report.CheckFormats...)
	return cmd
}

// writeTermination writes the verdict of res, or the error that left none,
// as a container's termination message into file.
func writeTermination(file string, res *pipeline.Result, runErr error) error {
	msg := ""
	switch {
	case res != nil:
		msg = report.TerminationMessage(res.Verdict)
	case runErr != nil:
		msg = report.TerminationError(runErr)
	default:
		return nil
	}
	if err := os.WriteFile(file, []byte(msg), 0o600); err != nil {
		return fmt.Errorf("--termination-message: %w", err)
	}
	return nil
}

// writePinned writes, when v allows the revision, each path's rendered
// objects to dir/<path>.yaml with every image v resolved to a digest
// pinned to it (a tag can move after the check; the digest cannot).
// Nothing is written for a revision that is not allowed: there is nothing
// to apply.
func writePinned(stderr io.Writer, dir string, res *pipeline.Result) error {
	v := res.Verdict
	if !v.Allowed {
		_, err := fmt.Fprintf(stderr, "pregate: --pin-digests: nothing written to %s: the revision is not allowed\n", dir)
		return err
	}
	pinned := map[string]string{}
	for _, iv := range v.Images {
		if iv.Pinned != "" {
			pinned[iv.Ref] = iv.Pinned
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--pin-digests: %w", err)
	}
	written := map[string]string{}
	for _, rev := range res.Renders {
		name := pinnedFileName(rev.Path)
		if other, dup := written[name]; dup {
			return fmt.Errorf("--pin-digests: paths %s and %s would both be written to %s", other, rev.Path, name)
		}
		written[name] = rev.Path
		objs, n := render.Pin(rev.Objects, pinned)
		b, err := render.EncodeYAML(objs)
		if err != nil {
			return fmt.Errorf("--pin-digests: %w", err)
		}
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, b, 0o600); err != nil {
			return fmt.Errorf("--pin-digests: %w", err)
		}
		if _, err := fmt.Fprintf(stderr, "pregate: wrote %s: %d objects, %d images pinned\n", file, len(objs), n); err != nil {
			return err
		}
	}
	return nil
}

// pinnedFileName names the file of a rendered path: "clusters/prod" is
// "clusters-prod.yaml", the root "root.yaml".
func pinnedFileName(path string) string {
	if path == "." || path == "" {
		return "root.yaml"
	}
	return strings.ReplaceAll(path, "/", "-") + ".yaml"
}
