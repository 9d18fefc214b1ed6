package helm_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/chartutil"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/pregate/pregate/render/helm"
)

// brokenChart is a chart whose template does not render.
func brokenChart(t *testing.T) []byte {
	t.Helper()
	return packageChart(t, &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: "v2", Name: "broken", Version: "0.1.0"},
		Templates: []*common.File{{Name: "templates/cm.yaml", Data: []byte(
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"missing.helper\" . }}\n")}},
	})
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, archive := podinfoRepo(t)
	broken := newChartRepo(t, brokenChart(t))
	// A repository whose index lists podinfo with its digest, serving
	// something else: once garbage with the right digest, once the wrong
	// bytes.
	garbage := []byte("not a chart archive")
	bad := newChartRepo(t, archive, packageChart(t, loadChart(t, podinfoDir, "6.13.0")))
	bad.Set("/charts/podinfo-6.13.0.tgz", archive)
	garbageRepo := newChartRepo(t, archive)
	garbageRepo.Set("/index.yaml", bytes.ReplaceAll(garbageRepo.File("/index.yaml"), []byte(sha256Hex(archive)), []byte(sha256Hex(garbage))))
	garbageRepo.Set("/charts/podinfo-6.14.1.tgz", garbage)

	sources := []map[string]any{
		helmRepository(t, "podinfo", r.URL(), "default"),
		helmRepository(t, "broken", broken.URL(), "default"),
		helmRepository(t, "bad", bad.URL(), "default"),
		helmRepository(t, "garbage", garbageRepo.URL(), "default"),
	}
	values := []map[string]any{
		configMap("bad-yaml", map[string]string{"values.yaml": "image: [unclosed"}),
		configMap("values", map[string]string{"values.yaml": "replicaCount: 1"}),
		{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "encrypted", "namespace": "apps"},
			"data": map[string]any{"values.yaml": "ENC[AES256_GCM,data:abc=]"}},
	}
	release := func(name, version, source, extra string) map[string]any {
		hr := podinfoRelease(t, name, version, extra)
		ref := hr["spec"].(map[string]any)["chart"].(map[string]any)["spec"].(map[string]any)["sourceRef"].(map[string]any)
		ref["name"] = source
		return hr
	}

	for _, tc := range []struct {
		name     string
		hr       map[string]any
		opts     []helm.Option
		is       []error
		mentions []string
	}{{
		name:     "malformed chart",
		hr:       release("garbage", "6.14.1", "garbage", ""),
		is:       []error{helm.ErrInvalidChart},
		mentions: []string{"HelmRelease/apps/garbage", "podinfo@6.14.1", garbageRepo.URL(), "loading the chart"},
	}, {
		name:     "template error",
		hr:       object(t, "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: broken, namespace: apps}\nspec:\n  chart:\n    spec: {chart: broken, sourceRef: {kind: HelmRepository, name: broken, namespace: flux-system}}\n"),
		is:       []error{helm.ErrInvalidChart},
		mentions: []string{"HelmRelease/apps/broken", "broken@*", broken.URL(), "rendering the chart", "missing.helper"},
	}, {
		name:     "digest mismatch",
		hr:       release("bad", "6.13.0", "bad", ""),
		is:       []error{helm.ErrIntegrity},
		mentions: []string{"HelmRelease/apps/bad", "podinfo@6.13.0", bad.URL()},
	}, {
		name:     "no such version",
		hr:       release("podinfo", "7.x", "podinfo", ""),
		is:       []error{helm.ErrChartNotFound},
		mentions: []string{"HelmRelease/apps/podinfo", "podinfo@7.x", r.URL()},
	}, {
		name:     "malformed values",
		hr:       release("podinfo", "6.x", "podinfo", "  valuesFrom: [{kind: ConfigMap, name: bad-yaml}]\n"),
		is:       []error{helm.ErrInvalidValues, chartutil.ErrValuesDataRead},
		mentions: []string{"HelmRelease/apps/podinfo", "podinfo@6.x", "composing values", "ConfigMap chart values reference 'apps/bad-yaml'"},
	}, {
		name:     "values key missing",
		hr:       release("podinfo", "6.x", "podinfo", "  valuesFrom: [{kind: ConfigMap, name: values, valuesKey: other.yaml}]\n"),
		is:       []error{helm.ErrInvalidValues, chartutil.ErrKeyNotFound},
		mentions: []string{"HelmRelease/apps/podinfo", "with key 'other.yaml'"},
	}, {
		name: "values object missing",
		hr:   release("podinfo", "6.x", "podinfo", "  valuesFrom: [{kind: Secret, name: absent}]\n"),
		is:   []error{helm.ErrInvalidValues, chartutil.ErrResourceNotFound},
	}, {
		name:     "encrypted secret",
		hr:       release("podinfo", "6.x", "podinfo", "  valuesFrom: [{kind: Secret, name: encrypted}]\n"),
		is:       []error{helm.ErrInvalidValues},
		mentions: []string{"still encrypted"},
	}, {
		name:     "source not given",
		hr:       release("podinfo", "6.x", "elsewhere", ""),
		is:       []error{helm.ErrSourceNotFound},
		mentions: []string{"HelmRelease/apps/podinfo", "HelmRepository/flux-system/elsewhere"},
	}, {
		name:     "artifact without a fetcher",
		hr:       chartRefRelease(t, "ExternalArtifact"),
		is:       []error{helm.ErrUnsupported},
		mentions: []string{"HelmRelease/apps/podinfo", "ExternalArtifact/flux-system/podinfo", "fetcher"},
	}, {
		name:     "archive too large",
		hr:       release("podinfo", "6.x", "podinfo", ""),
		opts:     []helm.Option{helm.WithCharts(helm.NewCharts(helm.ChartsConfig{MaxArchiveSize: 1024}))},
		is:       []error{helm.ErrTooLarge},
		mentions: []string{"HelmRelease/apps/podinfo", r.URL()},
	}, {
		name:     "invalid post-render patch",
		hr:       release("podinfo", "6.x", "podinfo", "  postRenderers: [{kustomize: {patches: [{patch: 'not: [a patch'}]}}]\n"),
		is:       []error{helm.ErrInvalidChart},
		mentions: []string{"HelmRelease/apps/podinfo", "rendering the chart"},
	}, {
		name:     "values not a map",
		hr:       release("podinfo", "6.x", "podinfo", "  values: [1, 2]\n"),
		is:       []error{helm.ErrInvalidValues},
		mentions: []string{"HelmRelease/apps/podinfo", "spec.values"},
	}, {
		name: "not a HelmRelease",
		hr:   object(t, "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\n"),
		is:   []error{helm.ErrInvalidHelmRelease},
	}, {
		name:     "chart and chartRef",
		hr:       release("podinfo", "6.x", "podinfo", "  chartRef: {kind: OCIRepository, name: podinfo}\n"),
		is:       []error{helm.ErrInvalidHelmRelease},
		mentions: []string{"HelmRelease/apps/podinfo"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			charts, _ := newCharts(t, false)
			opts := append([]helm.Option{helm.WithSourceObjects(sources), helm.WithValuesSources(values), helm.WithCharts(charts)}, tc.opts...)
			res, err := helm.Render(ctx, tc.hr, opts...)
			if err == nil {
				t.Fatalf("rendered %d objects, want an error", len(res.Objects))
			}
			var rerr *helm.RenderError
			if !errors.As(err, &rerr) {
				t.Errorf("%T is not a RenderError: %v", err, err)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q is not %v", err, target)
				}
			}
			for _, part := range tc.mentions {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not mention %q", err, part)
				}
			}
		})
	}
}
