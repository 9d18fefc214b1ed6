package helm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/render/helm"
)

// gitRelease is a HelmRelease of the chart at path in the GitRepository
// flux-system/infra.
func gitRelease(t testing.TB, path string) map[string]any {
	hr := object(t, `
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: apps}
spec:
  chart:
    spec:
      sourceRef: {kind: GitRepository, name: infra, namespace: flux-system}
`)
	hr["spec"].(map[string]any)["chart"].(map[string]any)["spec"].(map[string]any)["chart"] = path
	return hr
}

func TestRenderLocalPackagedChart(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "podinfo-6.14.1.tgz"), packageChart(t, loadChart(t, podinfoDir, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := helm.Render(context.Background(), gitRelease(t, "podinfo-6.14.1.tgz"), helm.WithLocalSource(helm.LocalSource{
		Kind: "GitRepository", Namespace: "flux-system", Name: "infra", Root: root,
	}))
	if err != nil {
		t.Fatal(err)
	}
	compareWithOracle(t, res, oracle(t, loadChart(t, podinfoDir, ""), nil, "podinfo", "apps"), "podinfo")
}

func TestRenderLocalChartStaysInSource(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	chartDir := filepath.Join(root, "chart")
	if err := os.MkdirAll(filepath.Join(chartDir, "templates"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chartDir, "Chart.yaml"), []byte("apiVersion: v2\nname: evil\nversion: 0.1.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.yaml"), filepath.Join(chartDir, "templates", "leak.yaml")); err != nil {
		t.Fatal(err)
	}
	src := helm.WithLocalSource(helm.LocalSource{Kind: "GitRepository", Namespace: "flux-system", Name: "infra", Root: root})
	for _, path := range []string{"chart", "../" + filepath.Base(outside)} {
		_, err := helm.Render(context.Background(), gitRelease(t, path), src)
		if err == nil {
			t.Fatalf("chart %s rendered, want an error", path)
		}
		if !errors.Is(err, helm.ErrInvalidChart) && !errors.Is(err, helm.ErrChartNotFound) {
			t.Errorf("chart %s: err = %v", path, err)
		}
		if !strings.Contains(err.Error(), "HelmRelease/apps/podinfo") {
			t.Errorf("error %q does not name the HelmRelease", err)
		}
	}
}
