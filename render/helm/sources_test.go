package helm_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/verify/verifytest"
)

// ociRepository is an OCIRepository object for a Helm chart.
func ociRepository(t testing.TB, name, url, ref string) map[string]any {
	return object(t, fmt.Sprintf(`
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: %s, namespace: flux-system}
spec:
  url: %s
  ref: %s
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
`, name, url, ref))
}

// chartRefRelease is a HelmRelease podinfo with a spec.chartRef to the
// source flux-system/podinfo of kind.
func chartRefRelease(t testing.TB, kind string) map[string]any {
	return object(t, fmt.Sprintf(`
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: apps}
spec:
  chartRef: {kind: %s, name: podinfo, namespace: flux-system}
`, kind))
}

func TestRenderOCIRepository(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	host := verifytest.NewRegistry(t)
	front := verifytest.NewFront(t, host)
	archive := packageChart(t, loadChart(t, podinfoDir, ""))
	manifest := pushChart(t, archive, host+"/charts/podinfo:6.14.1")
	pushChart(t, packageChart(t, loadChart(t, podinfoDir, "6.13.0")), host+"/charts/podinfo:6.13.0")
	charts, _ := newCharts(t, false)
	opts := []helm.Option{
		helm.WithSourceObjects([]map[string]any{ociRepository(t, "podinfo", "oci://"+front.Host()+"/charts/podinfo", "{semver: '>=6.0.0'}")}),
		helm.WithCharts(charts),
	}
	res, err := helm.Render(ctx, chartRefRelease(t, "OCIRepository"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	// helm-controller appends the manifest digest to the chart version.
	short := strings.TrimPrefix(manifest, "sha256:")[:12]
	want := helm.ChartInfo{
		Name: "podinfo", Version: "6.14.1+" + short, AppVersion: "6.14.1",
		Digest:   "sha256:" + sha256Hex(archive),
		Source:   "OCIRepository/flux-system/podinfo",
		URL:      "oci://" + front.Host() + "/charts/podinfo@" + manifest,
		Revision: "6.14.1@" + manifest,
	}
	if res.Chart != want {
		t.Errorf("chart = %+v\nwant %+v", res.Chart, want)
	}
	compareWithOracle(t, res, oracle(t, loadChart(t, podinfoDir, "6.14.1+"+short), nil, "podinfo", "apps"), "podinfo")

	// Rendered again, the chart comes from the cache: no request at all.
	before := front.CountMatching(".")
	if _, err := helm.Render(ctx, chartRefRelease(t, "OCIRepository"), opts...); err != nil {
		t.Fatal(err)
	}
	if n := front.CountMatching(".") - before; n != 0 {
		t.Errorf("a cached render made %d registry requests", n)
	}
}

func TestRenderHelmRepositoryOCI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	host := verifytest.NewRegistry(t)
	archive := packageChart(t, loadChart(t, podinfoDir, ""))
	manifest := pushChart(t, archive, host+"/charts/podinfo:6.14.1")
	pushChart(t, packageChart(t, loadChart(t, podinfoDir, "6.15.0-rc.1")), host+"/charts/podinfo:6.15.0-rc.1")
	charts, _ := newCharts(t, false)
	for _, version := range []string{"6.14.1", "", "6.x"} {
		res, err := helm.Render(ctx, podinfoRelease(t, "podinfo", version, ""),
			helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", "oci://"+host+"/charts", "oci")}),
			helm.WithCharts(charts))
		if err != nil {
			t.Fatalf("version %q: %v", version, err)
		}
		// A HelmRepository's chart keeps its version; the latest stable
		// version wins over a release candidate.
		want := helm.ChartInfo{
			Name: "podinfo", Version: "6.14.1", AppVersion: "6.14.1",
			Digest:   "sha256:" + sha256Hex(archive),
			Source:   "HelmRepository/flux-system/podinfo",
			URL:      "oci://" + host + "/charts/podinfo@" + manifest,
			Revision: "6.14.1@" + manifest,
		}
		if res.Chart != want {
			t.Errorf("version %q: chart = %+v\nwant %+v", version, res.Chart, want)
		}
	}
	if s := charts.Stats(); s.ArchiveFetches != 1 {
		t.Errorf("stats = %+v, want the one archive fetched once", s)
	}
}

func TestRenderArtifact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	archive := packageChart(t, loadChart(t, podinfoDir, ""))
	revision := "sha256:" + strings.Repeat("ab", 32)
	var opened atomic.Int32
	fetch := func(_ context.Context, ref helm.SourceRef) (*helm.Artifact, error) {
		rev := revision
		if ref.Kind == "HelmChart" {
			rev = "6.14.1"
		}
		return &helm.Artifact{
			URL:      "http://source-watcher.flux-system.svc/" + ref.String() + ".tgz",
			Revision: rev,
			Digest:   "sha256:" + sha256Hex(archive),
			Open: func(context.Context) (io.ReadCloser, error) {
				opened.Add(1)
				return io.NopCloser(bytes.NewReader(archive)), nil
			},
		}, nil
	}
	charts, _ := newCharts(t, false)
	for kind, version := range map[string]string{"ExternalArtifact": "6.14.1+abababababab", "HelmChart": "6.14.1"} {
		res, err := helm.Render(ctx, chartRefRelease(t, kind), helm.WithArtifactFetcher(fetch), helm.WithCharts(charts))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if res.Chart.Version != version {
			t.Errorf("%s: chart version = %q, want %q", kind, res.Chart.Version, version)
		}
		compareWithOracle(t, res, oracle(t, loadChart(t, podinfoDir, version), nil, "podinfo", "apps"), "podinfo")
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("the artifact was opened %d times, want once (then cached by digest)", n)
	}
}
