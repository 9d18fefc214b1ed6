package render

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/pregate/pregate/render/helm"
)

// WithHelm adds options for rendering HelmReleases: where remote charts
// are fetched and kept (helm.WithCharts, helm.WithChartCache,
// helm.WithOffline), the capabilities templates see
// (helm.WithCapabilities), ConfigMaps and Secrets of the cluster for
// valuesFrom (helm.WithValuesSources), a fetcher for HelmChart and
// ExternalArtifact artifacts (helm.WithArtifactFetcher). The revision's own
// ConfigMaps, Secrets and Flux source objects, and the revision itself as
// the source of chart paths, are always given. Default: none of these, so
// remote charts are fetched over the network, with no cache directory.
func WithHelm(opts ...helm.Option) Option {
	return func(o *options) error {
		o.helm = append(o.helm, opts...)
		return nil
	}
}

// HelmReleaseStatus says what render did with a HelmRelease.
type HelmReleaseStatus string

// The outcomes for a HelmRelease found in the revision.
const (
	// HelmReleaseRendered: its chart was rendered with its values.
	HelmReleaseRendered HelmReleaseStatus = "Rendered"
	// HelmReleaseNotRendered: it could not be rendered; a Gap says why.
	HelmReleaseNotRendered HelmReleaseStatus = "NotRendered"
)

// HelmRelease is a Flux HelmRelease found in the revision and what became
// of it.
type HelmRelease struct {
	// Object is HelmRelease/namespace/name.
	Object string `json:"object"`
	// Origin is where the HelmRelease object itself was found.
	Origin
	Status HelmReleaseStatus `json:"status"`
	// Chart, Version and Digest describe the chart rendered: its name, its
	// version as Helm rendered it, and the archive's digest (empty for a
	// chart directory). Source is the Flux source it came from
	// (Kind/namespace/name), URL where.
	Chart   string `json:"chart,omitempty"`
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Source  string `json:"source,omitempty"`
	URL     string `json:"url,omitempty"`
	// Objects are the objects the chart rendered, as helm-controller would
	// install them; their Origin names this HelmRelease and their
	// template. They are not among Result.Objects: Flux applies the
	// HelmRelease, not them.
	Objects []Object `json:"-"`
}

// maxHelmMessage bounds the part of a gap message that quotes a chart
// repository's or registry's error.
const maxHelmMessage = 1024

// renderHelmReleases renders every HelmRelease the traversal found, once
// all the revision's objects are known: a HelmRelease may take its chart
// source, or a valuesFrom ConfigMap, from another Kustomization. Each one
// that cannot be rendered is a HelmReleaseGap naming the cause.
func (r *renderer) renderHelmReleases(ctx context.Context) {
	if len(r.helmReleases) == 0 {
		return
	}
	opts := r.helmOptions()
	out := make([]HelmRelease, len(r.helmReleases))
	errs := make([]error, len(r.helmReleases))
	// Charts are fetched once per digest however many HelmReleases share
	// them (helm.Charts); templates are CPU work.
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, o := range r.helmReleases {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = renderHelmRelease(ctx, o, opts)
		})
	}
	wg.Wait()
	for i, o := range r.helmReleases {
		hr := out[i]
		if errs[i] != nil {
			hr = HelmRelease{Object: o.ID(), Origin: o.Origin, Status: HelmReleaseNotRendered}
			r.gap(Gap{Reason: HelmReleaseGap, Origin: o.Origin, Object: o.ID(), Message: helmMessage(errs[i], r.root)})
		}
		r.result.HelmReleases = append(r.result.HelmReleases, hr)
	}
}

// helmOptions are the options every HelmRelease of the revision is
// rendered with: the revision's values objects and sources first, then
// the caller's.
func (r *renderer) helmOptions() []helm.Option {
	var values, sources []map[string]any
	for _, o := range r.result.Objects {
		switch {
		case o.Group() == "" && (o.Kind() == "ConfigMap" || o.Kind() == "Secret"):
			values = append(values, o.Content)
		case o.Group() == sourceGroup:
			sources = append(sources, o.Content)
		}
	}
	values = append(values, r.opts.substitutes...)
	opts := []helm.Option{helm.WithValuesSources(values), helm.WithSourceObjects(sources)}
	if src := r.opts.source; src.Kind == "GitRepository" || src.Kind == "Bucket" {
		// Chart paths in this source are in the revision being rendered.
		opts = append(opts, helm.WithLocalSource(helm.LocalSource{Kind: src.Kind, Namespace: src.Namespace, Name: src.Name, Root: r.root}))
	}
	return append(opts, r.opts.helm...)
}

// renderHelmRelease renders one HelmRelease; its objects carry o's origin,
// with the HelmRelease at the end of the chain.
func renderHelmRelease(ctx context.Context, o Object, opts []helm.Option) (HelmRelease, error) {
	res, err := helm.Render(ctx, o.Content, opts...)
	if err != nil {
		return HelmRelease{}, err
	}
	id := o.ID()
	hr := HelmRelease{
		Object: id, Origin: o.Origin, Status: HelmReleaseRendered,
		Chart: res.Chart.Name, Version: res.Chart.Version, Digest: res.Chart.Digest,
		Source: res.Chart.Source, URL: res.Chart.URL,
	}
	chain := append(slices.Clone(o.Origin.Chain), id)
	tests := testsEnabled(o)
	for _, obj := range res.Objects {
		if !tests && slices.Contains(obj.Hooks, "test") {
			// helm-controller runs a chart's tests only with
			// spec.test.enable.
			continue
		}
		out := Object{Content: obj.Content, Origin: Origin{
			File: o.Origin.File, Chain: chain, HelmRelease: id, Template: obj.Template,
		}}
		if out.Namespace() == "" && runsPods(out) {
			// Helm installs a namespaced object that names no namespace
			// in the release's; the objects that run pods are namespaced.
			md, _ := out.Content["metadata"].(map[string]any)
			if md != nil {
				md["namespace"] = res.Release.Namespace
			}
		}
		hr.Objects = append(hr.Objects, out)
	}
	return hr, nil
}

// testsEnabled says whether helm-controller runs the HelmRelease's chart
// tests (spec.test.enable).
func testsEnabled(o Object) bool {
	spec, _ := o.Content["spec"].(map[string]any)
	test, _ := spec["test"].(map[string]any)
	enabled, _ := test["enable"].(bool)
	return enabled
}

// helmMessage is a HelmRelease's render error for a gap: paths relative
// to the source root, bounded, since it may quote a repository's answer.
func helmMessage(err error, root string) string {
	msg := err.Error()
	var re *helm.RenderError
	if errors.As(err, &re) {
		// The gap names the HelmRelease already.
		msg = strings.TrimPrefix(msg, re.HelmRelease+": ")
	}
	msg = relativize(msg, root)
	if len(msg) > maxHelmMessage {
		msg = strings.ToValidUTF8(msg[:maxHelmMessage], "") + "…"
	}
	return msg
}

// helmObjects are the objects every rendered HelmRelease's chart gave.
func (r *renderer) helmObjects() []Object {
	var objs []Object
	for _, hr := range r.result.HelmReleases {
		objs = append(objs, hr.Objects...)
	}
	return objs
}
