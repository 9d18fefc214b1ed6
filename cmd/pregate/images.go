package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/sources"
)

// imageList is the JSON document `pregate images -o json` prints. Its schema
// is documented in docs/output.md; fields are only ever added.
type imageList struct {
	APIVersion     string                 `json:"apiVersion"`
	Kind           string                 `json:"kind"`
	Source         sourceInfo             `json:"source"`
	Images         []render.Image         `json:"images"`
	Kustomizations []render.Kustomization `json:"kustomizations"`
	Gaps           []render.Gap           `json:"gaps"`
	Skipped        []skippedFile          `json:"skipped"`
}

type sourceInfo struct {
	Root      string `json:"root"`
	Path      string `json:"path"`
	Revision  string `json:"revision,omitempty"`
	SourceRef string `json:"sourceRef"`
}

type skippedFile struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// reportAPIVersion versions the JSON reports.
const reportAPIVersion = "pregate.dev/v1alpha1"

func newImagesCmd() *cobra.Command {
	var (
		flags  renderFlags
		format outputFormat
	)
	cmd := &cobra.Command{
		Use:   "images [PATH]",
		Short: "List every container image a revision would run, with where each appears",
		Long: `images renders PATH (default ".") exactly as Flux would apply it: kustomize
with Flux's kustomization generator, the Flux Kustomization's images, patches,
prefixes, targetNamespace, components, commonMetadata and postBuild
substitution, following every Flux Kustomization of the same source it finds.
It prints every container image (Pods and every pod template, including init
and ephemeral containers and custom resources with spec.template.spec), each
normalised, with every place it appears.

What cannot be rendered is never skipped in silence: HelmReleases,
Kustomizations of other sources, remote bases, paths that fail to build and
images still templated after rendering are listed as coverage gaps. A gap
hides images, so it fails the command unless --allow-gap names its kind;
Kustomizations of other sources are informational (their own source is
gated on its own).

Exit codes: 0 rendered, 2 PATH could not be rendered or coverage gaps hide
images.`,
		Example: `  # the images of a Flux cluster directory, following its Kustomizations
  pregate images clusters/prod

  # one app rendered as its Flux Kustomization, with cluster variables
  pregate images apps/prod --kustomization-file clusters/prod/apps.yaml \
    --substitute-from cluster-vars.yaml -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			lr, err := flags.renderer()
			if err != nil {
				return err
			}
			rev, err := lr.render(cmd.Context(), path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == outputJSON {
				err = writeImagesJSON(out, rev)
			} else {
				err = writeImagesText(out, rev)
			}
			if err != nil {
				return err
			}
			allowed, err := flags.allowedGaps()
			if err != nil {
				return err
			}
			cfg := gate.Config{AllowGaps: allowed}
			var blocking []string
			for _, g := range rev.Result.Gaps {
				if cfg.Blocks(g) {
					blocking = append(blocking, string(g.Reason))
				}
			}
			if len(blocking) > 0 {
				slices.Sort(blocking)
				noun := "gaps"
				if len(blocking) == 1 {
					noun = "gap"
				}
				return &exitError{code: exitUndecided, err: fmt.Errorf("images not seen: %d blocking coverage %s (%s); --allow-gap KIND lets a kind through",
					len(blocking), noun, strings.Join(slices.Compact(blocking), ", "))}
			}
			return nil
		},
	}
	flags.bind(cmd)
	addOutputFlag(cmd, &format)
	return cmd
}

func writeImagesJSON(w io.Writer, rev *revision) error {
	doc := imageList{
		APIVersion:     reportAPIVersion,
		Kind:           "ImageList",
		Source:         sourceInfo{Root: rev.Root, Path: rev.Path, Revision: rev.Revision, SourceRef: rev.Source.String()},
		Images:         rev.Result.Images,
		Kustomizations: rev.Result.Kustomizations,
		Gaps:           rev.Result.Gaps,
		Skipped:        skippedFiles(rev.Skipped),
	}
	return writeJSON(w, doc)
}

func skippedFiles(s []sources.Skipped) []skippedFile {
	out := make([]skippedFile, 0, len(s))
	for _, f := range s {
		out = append(out, skippedFile{Path: f.Path, Reason: f.Reason})
	}
	return out
}

// writeImagesText prints the image table, then the Kustomizations and gaps,
// kubectl style.
func writeImagesText(w io.Writer, rev *revision) error {
	res := rev.Result
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tMUTABLE\tOBJECT\tCONTAINER\tFILE")
	locations, mutable := 0, 0
	for _, img := range res.Images {
		if img.Mutable {
			mutable++
		}
		for _, l := range img.Locations {
			locations++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Ref, yesNo(img.Mutable), l.Object, container(l), dash(l.File))
		}
	}
	if len(res.Kustomizations) > 0 {
		fmt.Fprintln(tw, "\nKUSTOMIZATION\tPATH\tSTATUS\tAPPLIED BY\tFILE")
		for _, k := range res.Kustomizations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Object, k.Path, k.Status, dash(last(k.Chain)), dash(k.File))
		}
	}
	if len(res.Gaps) > 0 {
		fmt.Fprintln(tw, "\nGAP\tOBJECT\tFILE\tMESSAGE")
		for _, g := range res.Gaps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Reason, gapObject(g.Object, g.Path), dash(g.File), g.Message)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rendered := 0
	for _, k := range res.Kustomizations {
		if k.Status == render.Rendered {
			rendered++
		}
	}
	summary := fmt.Sprintf("\n%s", plural(len(res.Images), "image"))
	if mutable > 0 {
		summary += fmt.Sprintf(" (%d by tag only)", mutable)
	}
	summary += fmt.Sprintf(" in %s", plural(locations, "place"))
	if len(res.Kustomizations) > 0 {
		summary += fmt.Sprintf(", %d of %s rendered", rendered, plural(len(res.Kustomizations), "Flux Kustomization"))
	}
	summary += fmt.Sprintf(", %s", plural(len(res.Gaps), "coverage gap"))
	if rev.Revision != "" {
		summary += " at " + rev.Revision
	}
	_, err := fmt.Fprintln(w, summary)
	return err
}

func container(l render.Location) string {
	if l.Container == "" {
		return l.Path
	}
	return fmt.Sprintf("%s (%s)", l.Container, l.Path)
}

func last(chain []string) string {
	if len(chain) == 0 {
		return ""
	}
	return chain[len(chain)-1]
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// gapObject is the OBJECT cell of a gap table (pregate images and check):
// the object and the path in it, either of which may be empty.
func gapObject(object, path string) string {
	return dash(strings.TrimSpace(object + " " + path))
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
