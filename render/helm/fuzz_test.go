package helm_test

import (
	"context"
	"errors"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/render/helm"
)

// FuzzRenderValues renders the local parent chart with hostile values
// (inline, from a ConfigMap and at a targetPath) and post-renderer
// patches: Render may fail, with a RenderError, but must not panic.
func FuzzRenderValues(f *testing.F) {
	f.Add("image: {tag: '1'}", "a.b[0]=x", "- op: add\n  path: /metadata/labels/x\n  value: y\n")
	f.Add("[1, 2", "{{", "not: [a patch")
	f.Add("replicaCount: .inf\nsidecar: {image: null}", "a\\.b=c,d", "")
	f.Fuzz(func(t *testing.T, values, target, patch string) {
		hr := map[string]any{
			"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
			"metadata": map[string]any{"name": "fuzz", "namespace": "apps"},
			"spec": map[string]any{
				"chart": map[string]any{"spec": map[string]any{
					"chart": "charts/parent", "sourceRef": map[string]any{"kind": "GitRepository", "name": "x"},
				}},
				"valuesFrom": []any{
					map[string]any{"kind": "ConfigMap", "name": "v"},
					map[string]any{"kind": "ConfigMap", "name": "v", "valuesKey": "target", "targetPath": target},
				},
				"postRenderers": []any{map[string]any{"kustomize": map[string]any{
					"patches": []any{map[string]any{"patch": patch, "target": map[string]any{"kind": "ConfigMap"}}},
				}}},
			},
		}
		var inline map[string]any
		if yaml.Unmarshal([]byte(values), &inline) == nil && inline != nil {
			hr["spec"].(map[string]any)["values"] = inline
		}
		_, err := helm.Render(context.Background(), hr,
			helm.WithLocalRoot("testdata"),
			helm.WithValuesSources([]map[string]any{configMap("v", map[string]string{"values.yaml": values, "target": values})}))
		var rerr *helm.RenderError
		if err != nil && !errors.As(err, &rerr) {
			t.Fatalf("%T is not a RenderError: %v", err, err)
		}
	})
}
