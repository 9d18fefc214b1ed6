package helm_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/pregate/pregate/render/helm"
)

// TestRenderLookup reads from the cluster what the revision does not
// hold (the HelmRepository and a valuesFrom ConfigMap), and not what it
// does: the revision's objects are what it applies.
func TestRenderLookup(t *testing.T) {
	t.Parallel()
	r, _ := podinfoRepo(t)
	charts, _ := newCharts(t, false)
	hr := podinfoRelease(t, "podinfo", "6.x", `
  valuesFrom:
    - kind: ConfigMap
      name: cluster-values
    - kind: ConfigMap
      name: revision-values
`)
	cluster := map[string]map[string]any{
		"HelmRepository/flux-system/podinfo": helmRepository(t, "podinfo", r.URL(), "default"),
		"ConfigMap/apps/cluster-values":      configMap("cluster-values", map[string]string{"values.yaml": "image: {repository: ghcr.io/acme/from-cluster}"}),
		"ConfigMap/apps/revision-values":     configMap("revision-values", map[string]string{"values.yaml": "image: {tag: from-cluster}"}),
	}
	var mu sync.Mutex
	var asked []string
	lookup := func(_ context.Context, kind, namespace, name string) (map[string]any, error) {
		mu.Lock()
		defer mu.Unlock()
		key := kind + "/" + namespace + "/" + name
		asked = append(asked, key)
		return cluster[key], nil
	}
	res, err := helm.Render(t.Context(), hr, helm.WithCharts(charts), helm.WithLookup(lookup),
		helm.WithValuesSources([]map[string]any{configMap("revision-values", map[string]string{"values.yaml": "image: {tag: from-revision}"})}))
	if err != nil {
		t.Fatal(err)
	}
	if got := images(find(t, res, "Deployment", "templates/deployment.yaml")); len(got) != 1 || got[0] != "ghcr.io/acme/from-cluster:from-revision" {
		t.Errorf("images = %v, want the cluster's repository and the revision's tag", got)
	}
	if len(asked) != 2 || asked[0] != "ConfigMap/apps/cluster-values" || asked[1] != "HelmRepository/flux-system/podinfo" {
		t.Errorf("looked up %v, want only what the revision lacks", asked)
	}

	// Not in the cluster either: the error names what is missing.
	_, err = helm.Render(t.Context(), podinfoRelease(t, "other", "6.x", "  valuesFrom: [{kind: Secret, name: gone}]\n"),
		helm.WithCharts(charts), helm.WithLookup(lookup))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("gone")) {
		t.Errorf("missing Secret: err = %v", err)
	}
}

// TestRenderHelmChartArtifacts takes a template's chart from the HelmChart
// source-controller built when it holds the chart asked for, and from the
// repository when the HelmChart is missing or holds another version.
func TestRenderHelmChartArtifacts(t *testing.T) {
	t.Parallel()
	r, _ := podinfoRepo(t) // 6.14.1 and 6.13.0
	built := packageChart(t, loadChart(t, podinfoDir, "6.13.0"))
	var asked []helm.SourceRef
	var mu sync.Mutex
	fetch := func(_ context.Context, ref helm.SourceRef) (*helm.Artifact, error) {
		mu.Lock()
		asked = append(asked, ref)
		mu.Unlock()
		if ref.Name != "apps-podinfo" {
			return nil, nil
		}
		return &helm.Artifact{URL: "http://source-controller/helmchart/podinfo.tgz", Revision: "6.13.0",
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(built)), nil }}, nil
	}
	for _, tc := range []struct {
		name, version, want string
	}{
		{"podinfo", "6.13.x", "6.13.0"},   // the HelmChart's artifact
		{"podinfo", ">=6.14.0", "6.14.1"}, // HelmChart built for an older template: the repository
		{"missing", "6.x", "6.14.1"},      // no HelmChart yet
	} {
		charts, _ := newCharts(t, false)
		res, err := helm.Render(t.Context(), podinfoRelease(t, tc.name, tc.version, ""), helm.WithCharts(charts),
			helm.WithArtifactFetcher(fetch), helm.WithHelmChartArtifacts(),
			helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.name, tc.version, err)
		}
		if res.Chart.Version != tc.want {
			t.Errorf("%s %s: chart %s, want %s", tc.name, tc.version, res.Chart.Version, tc.want)
		}
	}
	for _, ref := range asked {
		if ref.Kind != "HelmChart" || ref.Namespace != "flux-system" {
			t.Errorf("asked for %s, want HelmCharts in the source's namespace", ref)
		}
	}
}
