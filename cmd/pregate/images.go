package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/gate/report"
)

func newImagesCmd() *cobra.Command {
	var (
		flags  renderFlags
		format report.Format
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

HelmReleases are rendered as helm-controller installs them: the chart from
its HelmRepository (HTTP or OCI), OCIRepository or a chart path in the
revision, fetched once per digest into --chart-cache-dir, with valuesFrom,
values and post-renderers; their images are located through the HelmRelease
and the chart template. Remote kustomize bases are fetched as
kustomize-controller fetches them (--no-remote-bases or --offline: refused,
without a request).

What cannot be rendered is never skipped in silence: HelmReleases whose chart
cannot be had (unreachable, --offline and not cached), Kustomizations of
other sources, remote bases that cannot be fetched or are refused, paths that
fail to build and images still templated after rendering are listed as
coverage gaps. A gap
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
			allowed, err := flags.allowedGaps()
			if err != nil {
				return err
			}
			srcs, err := flags.sources([]string{path})
			if err != nil {
				return err
			}
			res, err := pipeline.Render(cmd.Context(), pipeline.Options{AllowGaps: allowed}, srcs...)
			if err != nil {
				return err
			}
			if err := report.Images(cmd.OutOrStdout(), format, res); err != nil {
				return err
			}
			var blocking []string
			for _, g := range res.Rendered.Gaps {
				if g.Blocking {
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
