package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/render"
)

// verdictReport is the JSON document `pregate check -o json` prints; its
// schema is documented in docs/output.md.
type verdictReport struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	gate.Verdict
	Sources []sourceInfo  `json:"sources"`
	Skipped []skippedFile `json:"skipped"`
}

func newCheckCmd() *cobra.Command {
	var (
		rf          renderFlags
		pf          policyFlags
		format      outputFormat
		concurrency int
		timeout     time.Duration
		pinDir      string
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

Exit codes: 0 the revision may go out, 1 it is blocked, 2 pregate could not
decide (a render error, an unreachable registry, a bad policy).`,
		Example: `  pregate check clusters/prod --policy policies/ --unmatched-images warn
  pregate check apps/prod --kustomization-file clusters/prod/apps.yaml --policy trust.yaml -o json
  pregate check . --images 'registry.internal:5000/**' --key cosign.pub --trusted-root trusted_root.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			compiled, unmatched, err := pf.load(ctx)
			if err != nil {
				return err
			}
			verifier, err := pf.newVerifier(compiled)
			if err != nil {
				return err
			}
			allowGaps, err := rf.allowedGaps()
			if err != nil {
				return err
			}
			revs, rendered, err := renderAll(ctx, &rf, args)
			if err != nil {
				return err
			}
			g := &gate.Gate{
				Renderer:    rendered,
				Verifier:    verifier,
				Config:      gate.Config{Policies: compiled.Gate, Unmatched: unmatched, AllowGaps: allowGaps},
				Concurrency: concurrency,
				Timeout:     timeout,
			}
			verdict, err := g.Check(ctx, revisionOf(revs))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == outputJSON {
				err = writeVerdictJSON(out, verdict, revs)
			} else {
				err = writeVerdictText(out, verdict)
			}
			if err != nil {
				return err
			}
			if pinDir != "" {
				if err := writePinned(cmd.ErrOrStderr(), pinDir, revs, verdict); err != nil {
					return err
				}
			}
			return verdictExit(verdict.Allowed, verdict.Undecided)
		},
	}
	rf.bind(cmd)
	pf.bind(cmd)
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "how many images are verified at once")
	cmd.Flags().StringVar(&pinDir, "pin-digests", "", "when the revision is allowed, write its rendered manifests to this directory with every checked image pinned to the digest verified (repository:tag@sha256:…), one file per PATH, for CI to apply exactly what was checked")
	cmd.Flags().DurationVar(&timeout, "timeout", gate.DefaultTimeout, "the bound on verifying all of the revision's images; what is not verified in time leaves the verdict undecided")
	addOutputFlag(cmd, &format)
	return cmd
}

// renderAll renders each path and merges what they hold: an image found in
// several paths is one image with the locations of all.
func renderAll(ctx context.Context, rf *renderFlags, paths []string) ([]*revision, gate.Rendered, error) {
	var revs []*revision
	index := map[string]int{}
	var merged gate.Rendered
	lr, err := rf.renderer()
	if err != nil {
		return nil, gate.Rendered{}, err
	}
	for _, p := range paths {
		rev, err := lr.render(ctx, p)
		if err != nil {
			return nil, gate.Rendered{}, err
		}
		revs = append(revs, rev)
		r := gate.Rendered{Images: rev.Result.Images, Gaps: rev.Result.Gaps}
		for _, img := range r.Images {
			if i, ok := index[img.Ref]; ok {
				merged.Images[i].Locations = append(merged.Images[i].Locations, img.Locations...)
				continue
			}
			index[img.Ref] = len(merged.Images)
			merged.Images = append(merged.Images, img)
		}
		merged.Gaps = append(merged.Gaps, r.Gaps...)
	}
	return revs, merged, nil
}

// writePinned writes, when v allows the revision, each path's rendered
// objects to dir/<path>.yaml with every image v resolved to a digest
// pinned to it (a tag can move after the check; the digest cannot).
// Nothing is written for a revision that is not allowed: there is nothing
// to apply.
func writePinned(stderr io.Writer, dir string, revs []*revision, v gate.Verdict) error {
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
	for _, rev := range revs {
		name := pinnedFileName(rev.Path)
		if other, dup := written[name]; dup {
			return fmt.Errorf("--pin-digests: paths %s and %s would both be written to %s", other, rev.Path, name)
		}
		written[name] = rev.Path
		objs, n := render.Pin(rev.Result.Objects, pinned)
		var b bytes.Buffer
		for i, o := range objs {
			y, err := yaml.Marshal(o.Content)
			if err != nil {
				return fmt.Errorf("--pin-digests: encoding %s: %w", o.ID(), err)
			}
			if i > 0 {
				b.WriteString("---\n")
			}
			b.Write(y)
		}
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, b.Bytes(), 0o600); err != nil {
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

func revisionOf(revs []*revision) gate.Revision {
	var paths []string
	ids := map[string]bool{}
	var id string
	for _, r := range revs {
		paths = append(paths, r.Path)
		if r.Revision != "" && !ids[r.Revision] {
			ids[r.Revision] = true
			id = r.Revision
		}
	}
	if len(ids) > 1 {
		id = ""
	}
	return gate.Revision{Source: strings.Join(paths, ","), ID: id}
}

func writeVerdictJSON(w io.Writer, v gate.Verdict, revs []*revision) error {
	doc := verdictReport{APIVersion: reportAPIVersion, Kind: "Verdict", Verdict: v, Sources: []sourceInfo{}, Skipped: []skippedFile{}}
	for _, r := range revs {
		doc.Sources = append(doc.Sources, sourceInfo{Root: r.Root, Path: r.Path, Revision: r.Revision, SourceRef: r.Source.String()})
		doc.Skipped = append(doc.Skipped, skippedFiles(r.Skipped)...)
	}
	return writeJSON(w, doc)
}

// writeVerdictText prints one row per image, failures first, then the gaps
// and the verdict.
func writeVerdictText(w io.Writer, v gate.Verdict) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tRESULT\tPOLICY\tWHERE\tDETAIL")
	for _, iv := range v.Images {
		where := "-"
		if len(iv.Locations) > 0 {
			where = iv.Locations[0].String()
			if n := len(iv.Locations) - 1; n > 0 {
				where += fmt.Sprintf(" +%d", n)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", iv.Ref, dash(shortDigest(iv.Digest)), result(iv), dash(strings.Join(iv.Policies, ",")), where, iv.Detail)
	}
	if len(v.Gaps) > 0 {
		fmt.Fprintln(tw, "\nGAP\tBLOCKS\tOBJECT\tFILE\tMESSAGE")
		for _, g := range v.Gaps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Reason, yesNo(g.Blocking), gapObject(g.Object, g.Path), dash(g.File), g.Message)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	state := "ALLOWED"
	switch {
	case v.Undecided:
		state = "UNDECIDED"
	case !v.Allowed:
		state = "BLOCKED"
	}
	_, err := fmt.Fprintf(w, "\n%s (%s): %s\n", state, v.Reason, v.Message)
	return err
}

func result(iv gate.ImageVerdict) string {
	if iv.Status == "" || iv.Outcome == gate.Passed {
		return string(iv.Outcome)
	}
	return fmt.Sprintf("%s (%s)", iv.Outcome, iv.Status)
}

// shortDigest abbreviates sha256:<64 hex> to sha256:<12 hex>, as tables do.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}
