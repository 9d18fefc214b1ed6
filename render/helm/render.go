package helm

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors a RenderError may wrap; test for them with errors.Is.
var (
	// ErrOffline: the chart is not in the cache and Render may not fetch it.
	ErrOffline = errors.New("offline: the chart is not cached")
	// ErrSourceNotFound: the Flux source object the HelmRelease names (or a
	// ConfigMap or Secret its valuesFrom names) was not given to Render.
	ErrSourceNotFound = errors.New("source object not found")
	// ErrUnsupported: the HelmRelease asks for something Render cannot do.
	ErrUnsupported = errors.New("not supported")
	// ErrChartNotFound: the chart, or a version satisfying the constraint,
	// is not in the repository.
	ErrChartNotFound = errors.New("chart not found")
	// ErrIntegrity: a fetched or cached archive does not have the digest
	// its index, manifest or artifact says it has.
	ErrIntegrity = errors.New("digest mismatch")
	// ErrTooLarge: a download or the rendered output exceeds its bound.
	ErrTooLarge = errors.New("too large")
	// ErrInvalidChart: the chart cannot be loaded or rendered.
	ErrInvalidChart = errors.New("invalid chart")
	// ErrInvalidValues: the values cannot be composed (see also
	// fluxcd/pkg/chartutil's ErrValuesReference, which the error wraps).
	ErrInvalidValues = errors.New("invalid values")
	// ErrInvalidHelmRelease: the object is not a well-formed HelmRelease.
	ErrInvalidHelmRelease = errors.New("invalid HelmRelease")
)

// RenderError is a failure to render one HelmRelease. Its message names the
// HelmRelease, the chart and the repository it was to come from, what was
// being done, and the cause.
type RenderError struct {
	// HelmRelease is "HelmRelease/<namespace>/<name>".
	HelmRelease string
	// Chart describes the chart: "<name>@<version constraint>" for
	// spec.chart, "<Kind>/<namespace>/<name>" for spec.chartRef.
	Chart string
	// Repository is the source's URL or "<Kind>/<namespace>/<name>" where
	// the URL is not known.
	Repository string
	// Op is what was being done, e.g. "fetching the chart".
	Op string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *RenderError) Error() string {
	var b strings.Builder
	b.WriteString(e.HelmRelease)
	b.WriteString(": ")
	b.WriteString(e.Op)
	if e.Chart != "" {
		b.WriteString(" (chart " + e.Chart)
		if e.Repository != "" {
			b.WriteString(" from " + e.Repository)
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	fmt.Fprint(&b, e.Err)
	return b.String()
}

// Unwrap returns the cause.
func (e *RenderError) Unwrap() error { return e.Err }

// Result is a rendered HelmRelease.
type Result struct {
	// Release is the Helm release helm-controller would install.
	Release ReleaseInfo
	// Chart is the chart that was rendered.
	Chart ChartInfo
	// ConfigDigest is the digest of the composed values, as helm-controller
	// records it in status.lastAttemptedConfigDigest.
	ConfigDigest string
	// Objects are the rendered objects: the chart's CRDs (unless the install
	// CRD policy is Skip), then the release manifest in Helm's install
	// order, then the hooks in the order Helm runs them (by weight, then
	// name).
	Objects []Object
}

// ReleaseInfo names a Helm release.
type ReleaseInfo struct {
	// Name is the release name, shortened as helm-controller does.
	Name string
	// Namespace is where the release's namespaced objects go when they do
	// not name a namespace: spec.targetNamespace or the HelmRelease's.
	Namespace string
	// StorageNamespace is where Helm stores the release.
	StorageNamespace string
}

// ChartInfo describes the chart that was rendered.
type ChartInfo struct {
	// Name and Version are the chart's as Helm rendered it: Version carries
	// the build metadata source-controller or helm-controller add (a
	// revision or digest prefix, a generation).
	Name    string
	Version string
	// AppVersion is the chart's appVersion.
	AppVersion string
	// Digest is "sha256:<hex>" of the chart archive as fetched; empty for a
	// chart loaded from a directory.
	Digest string
	// Source is the Flux source: "<Kind>/<namespace>/<name>".
	Source string
	// URL is where the chart came from: the archive's URL, the OCI
	// reference with its manifest digest, or the chart's directory.
	URL string
	// Revision is the source's revision where it has one (an OCI tag and
	// manifest digest, an artifact's revision).
	Revision string
}

// Object is one rendered object.
type Object struct {
	// Template is the chart file it was rendered from, e.g.
	// "podinfo/templates/deployment.yaml" or "parent/charts/podinfo/crds/x.yaml".
	Template string
	// Hooks are the Helm hook events the object runs on (e.g.
	// "pre-install", "test"); nil for the release manifest.
	Hooks []string
	// CRD is true for an object from a chart's crds/ directory.
	CRD bool
	// Content is the object as decoded from the rendered YAML.
	Content map[string]any
}

// Render renders hr, a HelmRelease decoded from YAML or JSON, as
// helm-controller would install it. Options say where the chart, the
// values references and the sources come from.
func Render(ctx context.Context, hr map[string]any, opts ...Option) (*Result, error) {
	cfg := newConfig(opts)
	rel, err := decodeRelease(hr)
	if err != nil {
		return nil, &RenderError{HelmRelease: describeObject(hr), Op: "decoding the HelmRelease", Err: err}
	}
	if cfg, err = cfg.lookUpMissing(ctx, rel); err != nil {
		return nil, rel.fail(nil, "reading what it names from the cluster", err)
	}
	ref, err := chartReference(rel, cfg)
	if err != nil {
		return nil, rel.fail(ref, "resolving the chart source", err)
	}
	values, err := composeValues(rel, cfg.valuesSources)
	if err != nil {
		return nil, rel.fail(ref, "composing values", err)
	}
	loaded := cfg.fromHelmChart(ctx, rel, ref)
	if loaded == nil {
		if loaded, err = cfg.loadChart(ctx, ref); err != nil {
			return nil, rel.fail(ref, "loading the chart", err)
		}
	}
	objects, err := renderRelease(ctx, rel, loaded.chart, values, cfg.capabilities)
	if err != nil {
		return nil, rel.fail(ref, "rendering the chart", err)
	}
	return &Result{
		Release: ReleaseInfo{
			Name:             rel.releaseName(),
			Namespace:        rel.GetReleaseNamespace(),
			StorageNamespace: rel.GetStorageNamespace(),
		},
		Chart:        loaded.info(),
		ConfigDigest: valuesDigest(values),
		Objects:      objects,
	}, nil
}
