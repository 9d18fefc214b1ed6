package render

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pregate/pregate/render/internal/kustomizelock"
	"github.com/pregate/pregate/sources"
)

// TestRenderFluxExample renders the clusters of a real public Flux
// repository layout (testdata/flux2-kustomize-helm-example, see its ORIGIN)
// and checks that the images found are exactly those a plain `kustomize
// build` of every path the Flux Kustomizations apply contains.
func TestRenderFluxExample(t *testing.T) {
	t.Parallel()
	const repo = "testdata/flux2-kustomize-helm-example"
	for _, cluster := range []string{"production", "staging"} {
		t.Run(cluster, func(t *testing.T) {
			t.Parallel()
			// Copy it as source-controller would archive it (.sourceignore applies).
			tree, err := sources.Local(t.Context(), repo, filepath.Join(t.TempDir(), "src"))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Render(t.Context(), tree.Root, filepath.Join(tree.Root, "clusters", cluster))
			if err != nil {
				t.Fatal(err)
			}

			var rendered []string
			for _, k := range res.Kustomizations {
				if k.Status == Rendered {
					rendered = append(rendered, k.Object+" "+k.Path)
				}
			}
			wantRendered := []string{
				"Kustomization/flux-system/apps apps/" + cluster,
				"Kustomization/flux-system/flux-system clusters/" + cluster,
				"Kustomization/flux-system/infra-configs infrastructure/configs",
				"Kustomization/flux-system/infra-controllers infrastructure/controllers",
			}
			if diff := cmp.Diff(wantRendered, rendered); diff != "" {
				t.Errorf("rendered Kustomizations (-want +got):\n%s", diff)
			}

			// What plain kustomize finds, path by path, with a naive walk.
			want := map[string]bool{}
			for _, p := range []string{"clusters/" + cluster, "infrastructure/controllers", "infrastructure/configs", "apps/" + cluster} {
				autodetect(t, filepath.Join(tree.Root, p))
				k := krusty.MakeKustomizer(&krusty.Options{LoadRestrictions: kustypes.LoadRestrictionsNone, PluginConfig: kustypes.DisabledPluginConfig()})
				unlock := kustomizelock.Shared() // kustomize's global state, shared with Render in parallel tests
				m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(tree.Root, p))
				unlock()
				if err != nil {
					t.Fatalf("kustomize build %s: %v", p, err)
				}
				for _, r := range m.Resources() {
					obj, err := r.Map()
					if err != nil {
						t.Fatal(err)
					}
					collectImages(obj, want)
				}
			}
			got := map[string]bool{}
			for _, img := range res.Images {
				for _, l := range img.Locations {
					got[l.Raw] = true
				}
			}
			if len(want) == 0 {
				t.Fatal("kustomize build found no images: the test data is wrong")
			}
			if diff := cmp.Diff(keys(want), keys(got)); diff != "" {
				t.Errorf("images (-kustomize build +Render):\n%s", diff)
			}

			var gaps []string
			for _, g := range res.Gaps {
				gaps = append(gaps, string(g.Reason)+" "+g.Object)
			}
			wantGaps := []string{
				"HelmRelease HelmRelease/podinfo/podinfo",
				"HelmRelease HelmRelease/cert-manager/cert-manager",
				"HelmRelease HelmRelease/ingress-nginx/ingress-nginx",
			}
			sort.Strings(gaps)
			sort.Strings(wantGaps)
			if diff := cmp.Diff(wantGaps, gaps); diff != "" {
				t.Errorf("gaps (-want +got):\n%s", diff)
			}
		})
	}
}

// autodetect writes a kustomization.yaml listing the directory's YAML files
// and its subdirectories that hold one, as `kustomize create --autodetect`
// does, where the directory has none.
func autodetect(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err == nil {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := "resources:\n"
	for _, e := range entries {
		_, statErr := os.Stat(filepath.Join(dir, e.Name(), "kustomization.yaml"))
		if (e.IsDir() && statErr == nil) || strings.HasSuffix(e.Name(), ".yaml") {
			k += "  - " + e.Name() + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
}

// collectImages adds every string under an "image" key of a
// containers/initContainers/ephemeralContainers entry anywhere in v.
func collectImages(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if k == "containers" || k == "initContainers" || k == "ephemeralContainers" {
				list, _ := val.([]any)
				for _, c := range list {
					if cm, ok := c.(map[string]any); ok {
						if s, ok := cm["image"].(string); ok {
							into[s] = true
						}
					}
				}
			}
			collectImages(val, into)
		}
	case []any:
		for _, e := range x {
			collectImages(e, into)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
