package helm

import (
	"context"
	"fmt"
	"slices"

	"github.com/Masterminds/semver/v3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

// Lookup reads an object of the cluster: a ConfigMap or Secret (kind
// "ConfigMap", "Secret") a HelmRelease's valuesFrom names, or a Flux source
// object (kind "HelmRepository", "OCIRepository") its chart names. It
// returns nil and no error when there is no such object.
type Lookup func(ctx context.Context, kind, namespace, name string) (map[string]any, error)

// WithLookup reads from the cluster what a HelmRelease names and the
// objects given to Render do not hold, as helm-controller reads it: the
// revision's own objects win, since they are what the revision applies.
func WithLookup(l Lookup) Option {
	return func(c *config) { c.lookup = l }
}

// WithHelmChartArtifacts loads a spec.chart template's chart from the
// HelmChart source-controller built for the HelmRelease
// (<namespace>-<name> in the chart source's namespace) through the
// artifact fetcher, as helm-controller does, when that artifact holds the
// chart the template asks for (its name, a version the constraint
// accepts). Otherwise, a HelmChart not built yet or built for the previous
// revision's template, the chart is fetched from its source as without
// this option.
func WithHelmChartArtifacts() Option {
	return func(c *config) { c.helmCharts = true }
}

// lookUpMissing adds to cfg, from the cluster, the valuesFrom objects and
// the chart source the HelmRelease names that cfg lacks.
func (cfg *config) lookUpMissing(ctx context.Context, r *release) (*config, error) {
	if cfg.lookup == nil {
		return cfg, nil
	}
	out := *cfg
	out.valuesSources = slices.Clip(cfg.valuesSources)
	out.sources = slices.Clip(cfg.sources)
	for _, ref := range r.Spec.ValuesFrom {
		if ref.Kind != "ConfigMap" && ref.Kind != "Secret" {
			continue // composeValues says why
		}
		if findObject(cfg.valuesSources, "v1", ref.Kind, r.Namespace, ref.Name) != nil {
			continue
		}
		obj, err := cfg.lookup(ctx, ref.Kind, r.Namespace, ref.Name)
		if err != nil {
			return nil, fmt.Errorf("reading %s %s/%s: %w", ref.Kind, r.Namespace, ref.Name, err)
		}
		if obj != nil {
			out.valuesSources = append(out.valuesSources, obj)
		}
	}
	var src SourceRef
	switch {
	case r.Spec.ChartRef != nil && r.Spec.ChartRef.Kind == sourcev1.OCIRepositoryKind:
		src = SourceRef{Kind: r.Spec.ChartRef.Kind, Namespace: orDefault(r.Spec.ChartRef.Namespace, r.Namespace), Name: r.Spec.ChartRef.Name}
	case r.Spec.Chart != nil && r.Spec.Chart.Spec.SourceRef.Kind == sourcev1.HelmRepositoryKind:
		sr := r.Spec.Chart.Spec.SourceRef
		src = SourceRef{Kind: sr.Kind, Namespace: orDefault(sr.Namespace, r.Namespace), Name: sr.Name}
	default:
		return &out, nil
	}
	if sourceObject(cfg.sources, src) != nil {
		return &out, nil
	}
	obj, err := cfg.lookup(ctx, src.Kind, src.Namespace, src.Name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	if obj != nil {
		out.sources = append(out.sources, obj)
	}
	return &out, nil
}

// fromHelmChart loads a template's chart from the HelmChart
// source-controller built for the HelmRelease, if there is one holding
// the chart the template asks for; nil when there is not.
func (cfg *config) fromHelmChart(ctx context.Context, r *release, ref *chartRef) *loadedChart {
	if !cfg.helmCharts || cfg.fetch == nil || ref.template == nil {
		return nil
	}
	hc := &chartRef{source: SourceRef{Kind: sourcev1.HelmChartKind, Namespace: ref.source.Namespace, Name: r.Namespace + "-" + r.Name}, fetch: cfg.fetch}
	loaded, err := cfg.loadFromArtifact(ctx, hc)
	if err != nil {
		return nil
	}
	md := loaded.chart.Metadata
	if md == nil || md.Name != ref.template.chart || !versionAccepts(ref.template.version, md.Version) {
		return nil
	}
	return loaded
}

// versionAccepts says whether a chart template's version constraint
// (default "*") accepts version, as source-controller selects it.
func versionAccepts(constraint, version string) bool {
	if constraint == "" {
		constraint = "*"
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return false
	}
	// Build metadata source-controller adds (a revision) is not part of
	// the selection.
	if v.Metadata() != "" {
		w, err := v.SetMetadata("")
		if err != nil {
			return false
		}
		v = &w
	}
	return c.Check(v)
}
