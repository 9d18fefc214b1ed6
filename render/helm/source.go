package helm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

const sourceGroup = "source.toolkit.fluxcd.io"

// chartRef is where a HelmRelease's chart comes from.
type chartRef struct {
	// source is the Flux source object the chart comes from.
	source SourceRef
	// template is spec.chart.spec; nil for spec.chartRef.
	template *templateSpec
	// url is the repository's URL, once known.
	url string

	helmRepo *sourcev1.HelmRepository
	ociRepo  *sourcev1.OCIRepository
	local    *LocalSource
	fetch    ArtifactFetcher
}

// templateSpec is what Render uses of spec.chart.spec.
type templateSpec struct {
	chart, version, reconcileStrategy string
	valuesFiles                       []string
	ignoreMissingValuesFiles          bool
}

// describe names the chart for errors.
func (r *chartRef) describe() string {
	if r.template == nil {
		return r.source.String()
	}
	v := r.template.version
	if v == "" {
		v = "*"
	}
	return r.template.chart + "@" + v
}

// repository names where the chart comes from for errors: the URL, else
// the source object (which describe already names for a chartRef).
func (r *chartRef) repository() string {
	if r.url != "" || r.template == nil {
		return r.url
	}
	return r.source.String()
}

// chartReference works out, from the HelmRelease and the objects Render
// was given, where the chart comes from.
func chartReference(r *release, cfg *config) (*chartRef, error) {
	if cr := r.Spec.ChartRef; cr != nil {
		ref := &chartRef{source: SourceRef{Kind: cr.Kind, Namespace: orDefault(cr.Namespace, r.Namespace), Name: cr.Name}}
		return ref, ref.bindChartRef(cfg)
	}
	spec := r.Spec.Chart.Spec
	ref := &chartRef{
		source: SourceRef{Kind: spec.SourceRef.Kind, Namespace: orDefault(spec.SourceRef.Namespace, r.Namespace), Name: spec.SourceRef.Name},
		template: &templateSpec{
			chart: spec.Chart, version: spec.Version, reconcileStrategy: spec.ReconcileStrategy,
			valuesFiles: spec.ValuesFiles, ignoreMissingValuesFiles: spec.IgnoreMissingValuesFiles,
		},
	}
	return ref, ref.bindTemplate(cfg)
}

// bindChartRef finds the source of a spec.chartRef.
func (r *chartRef) bindChartRef(cfg *config) error {
	switch r.source.Kind {
	case sourcev1.OCIRepositoryKind:
		var o sourcev1.OCIRepository
		if err := findSource(cfg.sources, r.source, &o); err != nil {
			return err
		}
		r.ociRepo, r.url = &o, o.Spec.URL
		return nil
	case sourcev1.HelmChartKind, sourcev1.ExternalArtifactKind:
		if cfg.fetch == nil {
			return fmt.Errorf("%w: a chartRef to a %s is fetched from its artifact, and no artifact fetcher was given", ErrUnsupported, r.source.Kind)
		}
		r.fetch = cfg.fetch
		return nil
	default:
		return fmt.Errorf("%w: chartRef kind %q", ErrUnsupported, r.source.Kind)
	}
}

// bindTemplate finds the source of a spec.chart template.
func (r *chartRef) bindTemplate(cfg *config) error {
	switch r.source.Kind {
	case sourcev1.HelmRepositoryKind:
		var o sourcev1.HelmRepository
		if err := findSource(cfg.sources, r.source, &o); err != nil {
			return err
		}
		u, err := normalizeRepoURL(o.Spec.URL)
		if err != nil {
			return err
		}
		r.helmRepo, r.url = &o, u
		// source-controller: an OCI HelmRepository needs an oci:// URL,
		// and the HTTP getter serves only http(s)://.
		if isOCI := strings.HasPrefix(u, "oci://"); isOCI != (o.Spec.Type == sourcev1.HelmRepositoryTypeOCI) {
			return fmt.Errorf("%w: HelmRepository %s of type %q has URL %s", ErrUnsupported, r.source, o.Spec.Type, u)
		}
		return nil
	case sourcev1.GitRepositoryKind, sourcev1.BucketKind:
		for i, l := range cfg.locals {
			if l.Kind == "" || (l.Kind == r.source.Kind && l.Namespace == r.source.Namespace && l.Name == r.source.Name) {
				r.local = &cfg.locals[i]
				r.url = l.Root
				return nil
			}
		}
		return fmt.Errorf("%w: %s: its revision is not on disk (WithLocalSource)", ErrSourceNotFound, r.source)
	default:
		return fmt.Errorf("%w: sourceRef kind %q", ErrUnsupported, r.source.Kind)
	}
}

// findSource decodes the source object ref names from objs into out.
func findSource(objs []map[string]any, ref SourceRef, out any) error {
	o := sourceObject(objs, ref)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrSourceNotFound, ref)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ref, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding %s: %w", ref, err)
	}
	return nil
}

// sourceObject returns the Flux source object ref names among objs, or nil.
func sourceObject(objs []map[string]any, ref SourceRef) map[string]any {
	for _, o := range objs {
		apiVersion, _ := o["apiVersion"].(string)
		if !strings.HasPrefix(apiVersion, sourceGroup+"/") || o["kind"] != ref.Kind {
			continue
		}
		md, _ := o["metadata"].(map[string]any)
		if md["namespace"] == ref.Namespace && md["name"] == ref.Name {
			return o
		}
	}
	return nil
}

// loadedChart is a chart ready to render and where it came from.
type loadedChart struct {
	chart    *chart.Chart
	digest   string
	url      string
	revision string
	source   SourceRef
}

func (l *loadedChart) info() ChartInfo {
	md := l.chart.Metadata
	return ChartInfo{
		Name: md.Name, Version: md.Version, AppVersion: md.AppVersion,
		Digest: l.digest, Source: l.source.String(), URL: l.url, Revision: l.revision,
	}
}

// loadChart fetches and loads the chart ref names, with the changes
// source-controller and helm-controller make to it.
func (cfg *config) loadChart(ctx context.Context, ref *chartRef) (*loadedChart, error) {
	switch {
	case ref.helmRepo != nil:
		return cfg.loadFromHelmRepository(ctx, ref)
	case ref.local != nil:
		return loadLocal(ctx, cfg.charts, ref)
	case ref.ociRepo != nil:
		return cfg.loadFromOCIRepository(ctx, ref)
	default:
		return cfg.loadFromArtifact(ctx, ref)
	}
}

// loadFromHelmRepository builds the chart as source-controller builds a
// HelmChart from a HelmRepository (internal/helm/chart/builder_remote.go):
// the chart as published, with valuesFiles merged into its default values.
func (cfg *config) loadFromHelmRepository(ctx context.Context, ref *chartRef) (*loadedChart, error) {
	t := ref.template
	var (
		data []byte
		res  resolution
		err  error
	)
	if ref.helmRepo.Spec.Type == sourcev1.HelmRepositoryTypeOCI {
		data, res, err = cfg.charts.fromOCI(ctx, helmOCIRequest(ref.url, t.chart, t.version, ref.helmRepo.Spec.Insecure))
	} else {
		data, res, err = cfg.charts.fromIndex(ctx, ref.url, t.chart, t.version)
	}
	if err != nil {
		return nil, err
	}
	ch, err := loadArchive(data)
	if err != nil {
		return nil, err
	}
	if err := applyRemoteValuesFiles(ch, t); err != nil {
		return nil, err
	}
	return &loadedChart{chart: ch, digest: res.Digest, url: res.URL, revision: res.Revision, source: ref.source}, nil
}

// helmOCIRequest asks for chart name at version in an OCI HelmRepository,
// as source-controller's OCIChartRepository.getChartVersion does: a
// version that parses is a tag; anything else is a constraint over the
// repository's tags.
func helmOCIRequest(repoURL, name, version string, insecure bool) ociRequest {
	q := ociRequest{
		repository: strings.TrimPrefix(repoURL, "oci://") + "/" + name,
		insecure:   insecure,
		layerTypes: []string{ChartLayerMediaType, legacyChartLayerMediaType},
		helmTags:   true,
	}
	if _, err := parseVersion(version); err == nil {
		q.tag = versionTag(version, true)
	} else {
		q.semver = orDefault(version, "*")
	}
	return q
}

// loadFromOCIRepository loads the chart an OCIRepository points at, as
// source-controller stores its artifact and helm-controller loads it, with
// the digest added to the chart version
// (HelmReleaseReconciler.mutateChartWithSourceRevision).
func (cfg *config) loadFromOCIRepository(ctx context.Context, ref *chartRef) (*loadedChart, error) {
	spec := ref.ociRepo.Spec
	if !strings.HasPrefix(spec.URL, "oci://") {
		return nil, fmt.Errorf("%w: OCIRepository URL %q is not oci://", ErrUnsupported, spec.URL)
	}
	q := ociRequest{repository: strings.TrimPrefix(strings.TrimRight(spec.URL, "/"), "oci://"), insecure: spec.Insecure}
	if sel := spec.LayerSelector; sel != nil && sel.MediaType != "" {
		q.layerTypes = []string{sel.MediaType}
		q.helmTags = sel.MediaType == ChartLayerMediaType
	}
	if r := spec.Reference; r != nil {
		q.digest, q.semver, q.semverFilter, q.tag = r.Digest, r.SemVer, r.SemverFilter, r.Tag
	}
	data, res, err := cfg.charts.fromOCI(ctx, q)
	if err != nil {
		return nil, err
	}
	ch, err := loadArchive(data)
	if err != nil {
		return nil, err
	}
	if err := mutateVersionWithRevision(ch, res.Revision); err != nil {
		return nil, err
	}
	return &loadedChart{chart: ch, digest: res.Digest, url: res.URL, revision: res.Revision, source: ref.source}, nil
}

// loadFromArtifact loads a HelmChart's or ExternalArtifact's chart through
// the caller's fetcher; an ExternalArtifact revision with a digest changes
// the chart version as helm-controller does.
func (cfg *config) loadFromArtifact(ctx context.Context, ref *chartRef) (*loadedChart, error) {
	a, err := ref.fetch(ctx, ref.source)
	if err != nil {
		return nil, fmt.Errorf("fetching the artifact of %s: %w", ref.source, err)
	}
	if a == nil || a.Open == nil {
		return nil, fmt.Errorf("%w: %s has no artifact", ErrSourceNotFound, ref.source)
	}
	ref.url = a.URL
	data, digest, err := cfg.charts.fromArtifact(ctx, a)
	if err != nil {
		return nil, err
	}
	ch, err := loadArchive(data)
	if err != nil {
		return nil, err
	}
	if ref.source.Kind == sourcev1.ExternalArtifactKind && strings.Contains(a.Revision, ":") {
		if err := mutateVersionWithRevision(ch, a.Revision); err != nil {
			return nil, err
		}
	}
	return &loadedChart{chart: ch, digest: digest, url: a.URL, revision: a.Revision, source: ref.source}, nil
}

// fromArtifact returns a caller-fetched artifact's archive, from the cache
// when its digest is known and kept.
func (c *Charts) fromArtifact(ctx context.Context, a *Artifact) ([]byte, string, error) {
	r := resolution{URL: a.URL, Digest: a.Digest, Revision: a.Revision}
	if r.Digest != "" && normalizeDigest(r.Digest) == "" {
		return nil, "", fmt.Errorf("%w: artifact digest %q is not sha256", ErrUnsupported, a.Digest)
	}
	return c.archive(ctx, r, func(ctx context.Context) ([]byte, error) {
		rc, err := a.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("opening artifact %s: %w", a.URL, err)
		}
		defer rc.Close()
		return readBounded(rc, c.cfg.MaxArchiveSize, a.URL)
	})
}

// loadArchive loads a chart archive with Helm's loader and its size
// limits.
func loadArchive(data []byte) (ch *chart.Chart, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: loading panicked: %v", ErrInvalidChart, p)
		}
	}()
	ch, err = loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidChart, err)
	}
	return ch, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
