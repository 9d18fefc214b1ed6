package render

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestRepublish: a revision whose root applies a Flux Kustomization of the
// same source, and a HelmRelease, is laid out so that Flux applies exactly
// what was rendered: the root's objects at the path, the Kustomization's
// in its own directory with the Kustomization retargeted to the artifact
// (and its build settings, already applied, gone), every verified image
// pinned, and the HelmRelease's chart images pinned by a post-renderer.
func TestRepublish(t *testing.T) {
	t.Parallel()
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("clusters/prod/apps.yaml", `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps
  prune: true
  targetNamespace: apps
  postBuild: {substitute: {TAG: "1.0"}}
  sourceRef: {kind: GitRepository, name: flux-system}
`)
	write("clusters/prod/other.yaml", `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: infra, namespace: flux-system}
spec:
  interval: 10m
  path: ./infra
  sourceRef: {kind: GitRepository, name: elsewhere}
`)
	write("apps/web.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers: [{name: web, image: "ghcr.io/acme/web:${TAG}"}]
`)
	res, err := Render(t.Context(), root, filepath.Join(root, "clusters/prod"), WithSourceRef(SourceRef{Kind: "GitRepository", Namespace: "flux-system", Name: "flux-system"}))
	if err != nil {
		t.Fatal(err)
	}
	artifact := SourceRef{Kind: "ExternalArtifact", Namespace: "flux-system", Name: "prod"}
	files, n, err := Republish(res, RepublishOptions{Path: "clusters/prod", Artifact: artifact,
		Pinned: map[string]string{"ghcr.io/acme/web:1.0": "ghcr.io/acme/web:1.0@" + dg}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("pinned %d image fields, want 1", n)
	}
	names := slices.Sorted(maps.Keys(files))
	want := []string{"_kustomizations/flux-system/apps/kustomization.yaml", "_kustomizations/flux-system/apps/manifests.yaml",
		"clusters/prod/kustomization.yaml", "clusters/prod/manifests.yaml"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", names, want)
	}
	apps := string(files["_kustomizations/flux-system/apps/manifests.yaml"])
	if !strings.Contains(apps, "image: ghcr.io/acme/web:1.0@"+dg) || !strings.Contains(apps, "namespace: apps") {
		t.Errorf("the apps Kustomization's output:\n%s\nwant the Deployment in namespace apps running the pinned image", apps)
	}
	var ks []map[string]any
	for _, doc := range strings.Split(string(files["clusters/prod/manifests.yaml"]), "---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, m)
	}
	if len(ks) != 2 {
		t.Fatalf("root objects: %v, want the two Kustomizations", ks)
	}
	for _, k := range ks {
		spec := k["spec"].(map[string]any)
		ref := spec["sourceRef"].(map[string]any)
		switch name := k["metadata"].(map[string]any)["name"]; name {
		case "apps":
			if ref["kind"] != "ExternalArtifact" || ref["name"] != "prod" || spec["path"] != "./_kustomizations/flux-system/apps" {
				t.Errorf("apps Kustomization: %v, want it retargeted to the artifact's directory", spec)
			}
			for _, f := range []string{"postBuild", "targetNamespace"} {
				if _, ok := spec[f]; ok {
					t.Errorf("apps Kustomization keeps %s, which render applied already", f)
				}
			}
			if spec["prune"] != true {
				t.Errorf("apps Kustomization lost prune: %v", spec)
			}
		case "infra":
			if ref["name"] != "elsewhere" || spec["path"] != "./infra" {
				t.Errorf("a Kustomization of another source was changed: %v", spec)
			}
		default:
			t.Errorf("unexpected object %v", name)
		}
	}
}

// TestRepublish_refuses: what cannot be republished as verified is
// refused, naming the object: a Kustomization that decrypts SOPS secrets
// and a chart rendering one repository at two tags.
func TestRepublish_refuses(t *testing.T) {
	t.Parallel()
	ks := Object{Content: map[string]any{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "secrets", "namespace": "flux-system"},
		"spec": map[string]any{"path": "./secrets", "decryption": map[string]any{"provider": "sops"},
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "flux-system"}}}}
	src := SourceRef{Kind: "GitRepository", Namespace: "flux-system", Name: "flux-system"}
	res := &Result{Objects: []Object{ks}, Source: src,
		Kustomizations: []Kustomization{{Object: "Kustomization/flux-system/secrets", Status: Rendered}}}
	if _, _, err := Republish(res, RepublishOptions{Path: "."}); err == nil || !strings.Contains(err.Error(), "Kustomization/flux-system/secrets decrypts SOPS") {
		t.Errorf("decrypting Kustomization: error %v", err)
	}

	hr := Object{Content: map[string]any{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"name": "web", "namespace": "apps"}, "spec": map[string]any{}}}
	at := func(tag string) Image {
		return Image{Ref: "ghcr.io/acme/web:" + tag, Tag: tag, Locations: []Location{{Origin: Origin{HelmRelease: "HelmRelease/apps/web"}, Raw: "ghcr.io/acme/web:" + tag}}}
	}
	res = &Result{Objects: []Object{hr}, Source: src, Images: []Image{at("1"), at("2")}}
	pinned := map[string]string{"ghcr.io/acme/web:1": "ghcr.io/acme/web:1@sha256:aa", "ghcr.io/acme/web:2": "ghcr.io/acme/web:2@sha256:bb"}
	if _, _, err := Republish(res, RepublishOptions{Path: ".", Pinned: pinned}); err == nil || !strings.Contains(err.Error(), "HelmRelease/apps/web: its chart renders ghcr.io/acme/web as both") {
		t.Errorf("two tags of one repository in a chart: error %v", err)
	}
	res.Images = res.Images[:1]
	files, n, err := Republish(res, RepublishOptions{Path: ".", Pinned: pinned})
	if err != nil || n != 1 {
		t.Fatalf("one tag: %d pinned, error %v", n, err)
	}
	if got := string(files["manifests.yaml"]); !strings.Contains(got, "digest: sha256:aa") || !strings.Contains(got, "newTag: \"1\"") || !strings.Contains(got, "name: ghcr.io/acme/web") {
		t.Errorf("HelmRelease republished:\n%s\nwant a kustomize post-renderer pinning ghcr.io/acme/web:1 to sha256:aa", got)
	}
}

// TestRepublish_chartPostRenderer: the kustomize images entry a
// HelmRelease gets pins the chart's image when kustomize applies it, as
// helm-controller's post-renderer does.
func TestRepublish_chartPostRenderer(t *testing.T) {
	t.Parallel()
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hr := Object{Content: map[string]any{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
		"metadata": map[string]any{"name": "web", "namespace": "apps"}, "spec": map[string]any{}}}
	img := Image{Ref: "ghcr.io/acme/web:1.0", Tag: "1.0", Locations: []Location{{Origin: Origin{HelmRelease: "HelmRelease/apps/web"}, Raw: "ghcr.io/acme/web:1.0"}}}
	files, _, err := Republish(&Result{Objects: []Object{hr}, Images: []Image{img}}, RepublishOptions{Path: ".",
		Pinned: map[string]string{img.Ref: img.Ref + "@" + dg}})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(files["manifests.yaml"], &out); err != nil {
		t.Fatal(err)
	}
	post := out["spec"].(map[string]any)["postRenderers"].([]any)[0].(map[string]any)["kustomize"].(map[string]any)
	entries, err := yaml.Marshal(post["images"])
	if err != nil {
		t.Fatal(err)
	}
	// What the chart renders, post-rendered with the entries.
	dir := t.TempDir()
	for name, content := range map[string]string{
		"chart.yaml":         "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: ghcr.io/acme/web:1.0}]\n",
		"kustomization.yaml": "resources: [chart.yaml]\nimages:\n" + string(entries),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "image: ghcr.io/acme/web:1.0@"+dg) {
		t.Errorf("post-rendered:\n%s\nwant the image pinned, ghcr.io/acme/web:1.0@%s", b, dg)
	}
}
