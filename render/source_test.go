package render

import (
	"testing"
)

// TestRender_sourceFromSelfKustomization: a repository applied from an
// OCIRepository (not bootstrap's default GitRepository) renders its
// Kustomizations without being told, and says where the source came from.
func TestRender_sourceFromSelfKustomization(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"clusters/prod/flux-system/kustomization.yaml": "resources: [gotk-sync.yaml]\n",
		"clusters/prod/flux-system/gotk-sync.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec:
  path: ./clusters/prod
  sourceRef: {kind: OCIRepository, name: platform}
`,
		"clusters/prod/apps.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  path: ./apps
  sourceRef: {kind: OCIRepository, name: platform}
`,
		"apps/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {template: {spec: {containers: [{name: web, image: ghcr.io/acme/web:1.0}]}}}
`,
	}
	platform := SourceRef{Kind: "OCIRepository", Namespace: "flux-system", Name: "platform"}
	for name, tc := range map[string]struct {
		opts       []Option
		source     SourceRef
		from       string
		images     int
		otherGaps  int
		kustomized int
	}{
		"found": {source: platform, from: "Kustomization/flux-system/flux-system", images: 1, kustomized: 2},
		"given": {opts: []Option{WithSourceRef(DefaultSourceRef)}, source: DefaultSourceRef, images: 0, otherGaps: 2, kustomized: 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := writeTree(t, files)
			res, err := Render(t.Context(), root, root+"/clusters/prod", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != tc.source || res.SourceFrom != tc.from {
				t.Errorf("source %s from %q, want %s from %q", res.Source, res.SourceFrom, tc.source, tc.from)
			}
			rendered, other := 0, 0
			for _, k := range res.Kustomizations {
				if k.Status == Rendered {
					rendered++
				}
			}
			for _, g := range res.Gaps {
				if g.Reason == OtherSourceGap {
					other++
				}
			}
			if len(res.Images) != tc.images || other != tc.otherGaps || rendered != tc.kustomized {
				t.Errorf("%d images, %d OtherSource gaps, %d Kustomizations rendered; want %d, %d, %d",
					len(res.Images), other, rendered, tc.images, tc.otherGaps, tc.kustomized)
			}
		})
	}
}
