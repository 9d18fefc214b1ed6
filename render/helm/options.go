package helm

import (
	"context"
	"io"
	"slices"
)

// DefaultKubeVersion is the Kubernetes version templates see in
// .Capabilities.KubeVersion unless WithCapabilities says otherwise: the
// minor version of the Kubernetes libraries pregate is built with, which is
// what Helm itself defaults to in a release build (Helm's
// chart/common.makeDefaultCapabilities: client-go v0.N is Kubernetes 1.N).
// In a cluster, helm-controller asks the API server instead.
const DefaultKubeVersion = "v1.37.0"

// Option configures Render.
type Option func(*config)

type config struct {
	valuesSources []map[string]any
	sources       []map[string]any
	locals        []LocalSource
	fetch         ArtifactFetcher
	capabilities  capabilities
	charts        *Charts
	cacheDir      string
	offline       bool
	lookup        Lookup
	helmCharts    bool
}

// capabilities are what templates see in .Capabilities.
type capabilities struct {
	kubeVersion string
	apiVersions []string
}

func newConfig(opts []Option) *config {
	c := &config{capabilities: capabilities{kubeVersion: DefaultKubeVersion}}
	for _, o := range opts {
		o(c)
	}
	if c.charts == nil {
		c.charts = sharedCharts(c.cacheDir, c.offline)
	}
	return c
}

// WithValuesSources gives the ConfigMaps and Secrets (v1, decoded YAML) that
// spec.valuesFrom may name: those found in the revision and any the caller
// has. A Secret's data is base64 as in the API; stringData is merged over
// it as the API server would.
func WithValuesSources(objs []map[string]any) Option {
	return func(c *config) { c.valuesSources = append(c.valuesSources, objs...) }
}

// WithSourceObjects gives the Flux source objects (source.toolkit.fluxcd.io
// HelmRepository, OCIRepository) that the HelmRelease may name; the
// HelmRelease only names them, their spec.url says where the chart is.
func WithSourceObjects(objs []map[string]any) Option {
	return func(c *config) { c.sources = append(c.sources, objs...) }
}

// LocalSource is a Flux source whose revision is on disk, such as the
// GitRepository the revision being rendered came from. A HelmRelease whose
// spec.chart.spec.sourceRef names it loads spec.chart.spec.chart as a
// chart directory (or packaged chart) under Root, as source-controller
// builds a HelmChart from a GitRepository or Bucket.
type LocalSource struct {
	// Kind is GitRepository or Bucket.
	Kind string
	// Namespace and Name identify the source object.
	Namespace string
	Name      string
	// Root is the directory the revision is unpacked in.
	Root string
	// Revision is the source's artifact revision as source-controller
	// reports it ("main@sha1:<hex>" for Git, "sha256:<hex>" for a Bucket);
	// it is used only by reconcileStrategy: Revision.
	Revision string
}

// WithLocalSource says that a source's revision is on disk; it may be given
// more than once.
func WithLocalSource(s LocalSource) Option {
	return func(c *config) { c.locals = append(c.locals, s) }
}

// WithLocalRoot is WithLocalSource for the source a HelmRelease's own
// chart template names, whatever its name: use it when the revision being
// rendered is the only source there is.
func WithLocalRoot(root string) Option {
	return WithLocalSource(LocalSource{Root: root})
}

// SourceRef names a Flux source object.
type SourceRef struct {
	Kind      string
	Namespace string
	Name      string
}

// String returns "Kind/namespace/name".
func (r SourceRef) String() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// Artifact is a chart archive served for a HelmChart or ExternalArtifact.
type Artifact struct {
	// URL is where the artifact is served, for messages.
	URL string
	// Revision is the artifact's revision ("6.14.1", "6.14.1@sha256:<hex>",
	// "sha256:<hex>"); a revision with a digest changes the chart version
	// as helm-controller does.
	Revision string
	// Digest is the artifact's "sha256:<hex>" digest; when set, the archive
	// is checked against it and taken from the cache when there.
	Digest string
	// Open opens the archive; Render calls it only when the archive is not
	// cached, and closes what it returns.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// ArtifactFetcher looks up the artifact of a HelmChart or ExternalArtifact.
type ArtifactFetcher func(ctx context.Context, ref SourceRef) (*Artifact, error)

// WithArtifactFetcher gives the function that fetches HelmChart and
// ExternalArtifact artifacts for spec.chartRef; without it such a chartRef
// is an error.
func WithArtifactFetcher(f ArtifactFetcher) Option {
	return func(c *config) { c.fetch = f }
}

// WithCapabilities sets the Kubernetes version templates see (default
// DefaultKubeVersion; empty keeps it) and API versions to add to Helm's
// default set ("monitoring.coreos.com/v1", or "apps/v1/Deployment"), as
// `helm template --kube-version --api-versions` do.
func WithCapabilities(kubeVersion string, apiVersions []string) Option {
	return func(c *config) {
		if kubeVersion != "" {
			c.capabilities.kubeVersion = kubeVersion
		}
		c.capabilities.apiVersions = append(slices.Clone(c.capabilities.apiVersions), apiVersions...)
	}
}

// WithCharts fetches remote charts through c, which callers share between
// Render calls; it overrides WithChartCache and WithOffline.
func WithCharts(c *Charts) Option {
	return func(cfg *config) { cfg.charts = c }
}

// WithChartCache keeps fetched chart archives in dir, keyed by digest, in
// the Charts this process shares for dir.
func WithChartCache(dir string) Option {
	return func(c *config) { c.cacheDir = dir }
}

// WithOffline makes no network request: a remote chart must be in the
// cache (see WithChartCache), or Render fails with ErrOffline.
func WithOffline() Option {
	return func(c *config) { c.offline = true }
}
