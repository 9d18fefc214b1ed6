package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// src joins lines into a file, so that a test's line numbers can be read
// off the argument list: the first argument is line 1.
func src(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// writeTree writes files (slash paths relative to the root) into a fresh
// directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fluxKustomization is the Flux Kustomization "app" applying ./app, with
// extra spec lines from line 14 on.
func fluxKustomization(spec ...string) string {
	return src(append([]string{
		"# the app", // 1
		"apiVersion: kustomize.toolkit.fluxcd.io/v1",
		"kind: Kustomization",
		"metadata:",
		"  name: app", // 5
		"  namespace: flux-system",
		"spec:",
		"  interval: 10m",
		"  path: ./app",
		"  prune: true", // 10
		"  sourceRef:",
		"    kind: GitRepository",
		"    name: flux-system",
	}, spec...)...)
}

// twoContainerDeployment is Deployment/name with containers api (line 10)
// and proxy (line 12).
func twoContainerDeployment(name, api, proxy string) string {
	return src(
		"apiVersion: apps/v1",
		"kind: Deployment",
		"metadata:",
		"  name: "+name,
		"spec:", // 5
		"  template:",
		"    spec:",
		"      containers:",
		"        - name: api",
		"          image: "+api, // 10
		"        - name: proxy",
		"          image: "+proxy,
	)
}

const kustomizeHeader = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"

// TestRenderLines renders small trees and checks the line of every image
// location (with what set the image, when not its file), gap and Flux
// Kustomization.
func TestRenderLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		dir   string
		// images: "Object Path" → "file:line", then " set by file:line".
		images map[string]string
		// gaps: "Reason Object" → "file:line"; nil: not checked.
		gaps map[string]string
		// kustomizations: Object → "file:line"; nil: not checked.
		kustomizations map[string]string
	}{{
		name: "deployment-and-init-container",
		dir:  "app",
		files: map[string]string{"app/deploy.yaml": src(
			"apiVersion: apps/v1",
			"kind: Deployment",
			"metadata:",
			"  name: web",
			"  namespace: shop", // 5
			"spec:",
			"  selector:",
			"    matchLabels: {app: web}",
			"  template:",
			"    metadata:", // 10
			"      labels: {app: web}",
			"    spec:",
			"      initContainers:",
			"        - name: migrate",
			"          image: ghcr.io/acme/migrate:1.0", // 15
			"      containers:",
			"        - name: web",
			"          image: nginx:1.27",
		)},
		images: map[string]string{
			"Deployment/shop/web spec.template.spec.containers[0]":     "app/deploy.yaml:18",
			"Deployment/shop/web spec.template.spec.initContainers[0]": "app/deploy.yaml:15",
		},
		gaps: map[string]string{},
	}, {
		name: "cronjob",
		dir:  "app",
		files: map[string]string{"app/cron.yml": src(
			"apiVersion: batch/v1",
			"kind: CronJob",
			"metadata:",
			"  name: report",
			"spec:", // 5
			`  schedule: "0 * * * *"`,
			"  jobTemplate:",
			"    spec:",
			"      template:",
			"        spec:", // 10
			"          restartPolicy: Never",
			"          containers:",
			"            - name: sidecar",
			"              image: busybox:1.36",
			"            - name: report", // 15
			"              image: 'ghcr.io/acme/report:2.0'",
		)},
		images: map[string]string{
			"CronJob/report spec.jobTemplate.spec.template.spec.containers[0]": "app/cron.yml:14",
			"CronJob/report spec.jobTemplate.spec.template.spec.containers[1]": "app/cron.yml:16",
		},
	}, {
		// The same image in both: the object's name tells them apart.
		name: "two-documents",
		dir:  "app",
		files: map[string]string{"app/pods.yaml": src(
			"# two pods",
			"apiVersion: v1",
			"kind: Pod",
			"metadata:",
			"  name: a", // 5
			"spec:",
			"  containers:",
			"    - name: a",
			"      image: nginx:1.27",
			"---", // 10
			"apiVersion: v1",
			"kind: Pod",
			"metadata:",
			"  name: b",
			"spec:", // 15
			"  containers:",
			"    - name: b",
			"      image: nginx:1.27",
		)},
		images: map[string]string{
			"Pod/a spec.containers[0]": "app/pods.yaml:9",
			"Pod/b spec.containers[0]": "app/pods.yaml:18",
		},
	}, {
		// prod-api-worker contains both api and api-worker: the longer
		// name wins.
		name: "name-prefix-overlay",
		dir:  "prod",
		files: map[string]string{
			"base/kustomization.yaml": kustomizeHeader + "resources: [deploy.yaml]\n",
			"base/deploy.yaml": twoContainerDeployment("api", "ghcr.io/acme/api:1.0", "envoy:1") + "---\n" +
				twoContainerDeployment("api-worker", "ghcr.io/acme/api:1.0", "envoy:1"),
			"prod/kustomization.yaml": kustomizeHeader + "namePrefix: prod-\nnamespace: prod\nresources: [../base]\n",
		},
		images: map[string]string{
			"Deployment/prod/prod-api spec.template.spec.containers[0]":        "base/deploy.yaml:10",
			"Deployment/prod/prod-api spec.template.spec.containers[1]":        "base/deploy.yaml:12",
			"Deployment/prod/prod-api-worker spec.template.spec.containers[0]": "base/deploy.yaml:23",
			"Deployment/prod/prod-api-worker spec.template.spec.containers[1]": "base/deploy.yaml:25",
		},
	}, {
		// The overlay retags what the base already retagged; the base alone
		// renames envoy.
		name: "images-override",
		dir:  "prod",
		files: map[string]string{
			"base/deploy.yaml": twoContainerDeployment("api", "ghcr.io/acme/api:dev", "envoyproxy/envoy:v1.30.0"),
			"base/kustomization.yaml": src(
				"apiVersion: kustomize.config.k8s.io/v1beta1",
				"kind: Kustomization",
				"resources:",
				"  - deploy.yaml",
				"images:", // 5
				"  - name: ghcr.io/acme/api",
				`    newTag: "1.0"`,
				"  - name: envoyproxy/envoy",
				"    newName: mirror.example.com/envoy",
			),
			"prod/kustomization.yaml": src(
				"apiVersion: kustomize.config.k8s.io/v1beta1",
				"kind: Kustomization",
				"resources:",
				"  - ../base",
				"images:", // 5
				"  - newTag: \"2.0\"",
				"    name: ghcr.io/acme/api",
			),
		},
		images: map[string]string{
			"Deployment/api spec.template.spec.containers[0]": "base/deploy.yaml:10 set by prod/kustomization.yaml:7",
			"Deployment/api spec.template.spec.containers[1]": "base/deploy.yaml:12 set by base/kustomization.yaml:8",
		},
	}, {
		// A postBuild variable stands where it is written; the Flux
		// Kustomization's spec.images sets the other image.
		name: "postbuild-and-flux-images",
		dir:  "clusters/dev",
		files: map[string]string{
			"clusters/dev/app.yaml": fluxKustomization(
				"  images:",
				"    - name: ghcr.io/acme/web", // 15
				`      newTag: "3.0"`,
				"  postBuild:",
				"    substitute:",
				`      TAG: "1.2.3"`,
			),
			"app/deploy.yaml": twoContainerDeployment("web", "ghcr.io/acme/app:${TAG}", "ghcr.io/acme/web:dev"),
		},
		images: map[string]string{
			"Deployment/web spec.template.spec.containers[0]": "app/deploy.yaml:10",
			"Deployment/web spec.template.spec.containers[1]": "app/deploy.yaml:12 set by clusters/dev/app.yaml:15",
		},
		kustomizations: map[string]string{"Kustomization/flux-system/app": "clusters/dev/app.yaml:2"},
	}, {
		// spec.images amends the kustomization.yaml entry of the same name:
		// the Flux Kustomization set the image last.
		name: "flux-images-amend-kustomization",
		dir:  "clusters/dev",
		files: map[string]string{
			"clusters/dev/app.yaml": fluxKustomization(
				"  images:",
				"    - name: ghcr.io/acme/web", // 15
				`      newTag: "3.0"`,
			),
			"app/kustomization.yaml": kustomizeHeader + src(
				"resources: [deploy.yaml]", // 3
				"images:",
				"  - name: ghcr.io/acme/web", // 5
				"    newName: mirror.example.com/web",
				"  - name: ghcr.io/acme/app",
				"    newName: mirror.example.com/app",
			),
			"app/deploy.yaml": twoContainerDeployment("web", "ghcr.io/acme/app:1", "ghcr.io/acme/web:dev"),
		},
		images: map[string]string{
			"Deployment/web spec.template.spec.containers[0]": "app/deploy.yaml:10 set by app/kustomization.yaml:7",
			"Deployment/web spec.template.spec.containers[1]": "app/deploy.yaml:12 set by clusters/dev/app.yaml:15",
		},
	}, {
		// A patch adds a container before the source's: it is in no file,
		// and the source's container is found by name.
		name: "patched-containers",
		dir:  "prod",
		files: map[string]string{
			"base/kustomization.yaml": kustomizeHeader + "resources: [deploy.yaml]\n",
			"base/deploy.yaml":        twoContainerDeployment("api", "ghcr.io/acme/api:1", "envoy:1"),
			"prod/kustomization.yaml": kustomizeHeader + src(
				"resources: [../base]",
				"patches:",
				"  - patch: |-",
				"      - op: add",
				"        path: /spec/template/spec/containers/0",
				"        value: {name: debug, image: busybox:1.36}",
				"    target: {kind: Deployment, name: api}",
			),
		},
		images: map[string]string{
			"Deployment/api spec.template.spec.containers[0]": "base/deploy.yaml:0",
			"Deployment/api spec.template.spec.containers[1]": "base/deploy.yaml:10",
			"Deployment/api spec.template.spec.containers[2]": "base/deploy.yaml:12",
		},
	}, {
		// An anchored container merged into another: the image is where
		// the anchor's is written.
		name: "anchors",
		dir:  "app",
		files: map[string]string{"app/deploy.yaml": src(
			"apiVersion: apps/v1",
			"kind: Deployment",
			"metadata:",
			"  name: web",
			"spec:", // 5
			"  template:",
			"    spec:",
			"      containers:",
			"        - &main",
			"          name: web", // 10
			"          image: nginx:1.27",
			"      initContainers:",
			"        - <<: *main",
			"          name: web",
		)},
		images: map[string]string{
			"Deployment/web spec.template.spec.containers[0]":     "app/deploy.yaml:11",
			"Deployment/web spec.template.spec.initContainers[0]": "app/deploy.yaml:11",
		},
	}, {
		name: "list-and-json",
		dir:  "app",
		files: map[string]string{
			"app/kustomization.yaml": kustomizeHeader + "resources: [list.yaml, pod.json]\n",
			"app/list.yaml": src(
				"apiVersion: v1",
				"kind: List",
				"items:",
				"  - apiVersion: v1",
				"    kind: Pod", // 5
				"    metadata:",
				"      name: listed",
				"    spec:",
				"      containers:",
				"        - name: c", // 10
				"          image: nginx:1.27",
			),
			"app/pod.json": src(
				"{",
				`  "apiVersion": "v1",`,
				`  "kind": "Pod",`,
				`  "metadata": {"name": "json"},`,
				`  "spec": {`, // 5
				`    "containers": [`,
				`      {"name": "c", "image": "nginx:1.26"}`,
				"    ]",
				"  }",
				"}", // 10
			),
		},
		images: map[string]string{
			"Pod/listed spec.containers[0]": "app/list.yaml:11",
			"Pod/json spec.containers[0]":   "app/pod.json:7",
		},
	}, {
		name: "gaps",
		dir:  "clusters/dev",
		files: map[string]string{
			"clusters/dev/helm.yaml": src(
				"apiVersion: source.toolkit.fluxcd.io/v1",
				"kind: HelmRepository",
				"metadata:",
				"  name: podinfo",
				"  namespace: flux-system", // 5
				"spec:",
				"  url: https://stefanprodan.github.io/podinfo",
				"---",
				"# the release",
				"apiVersion: helm.toolkit.fluxcd.io/v2", // 10
				"kind: HelmRelease",
				"metadata:",
				"  name: podinfo",
				"  namespace: flux-system",
				"spec:", // 15
				"  chart:",
				"    spec:",
				"      chart: podinfo",
			),
			"clusters/dev/broken.yaml": src(
				"apiVersion: apps/v1",
				"kind: Deployment",
				"metadata:",
				"  name: noimage",
				"spec:", // 5
				"  template:",
				"    spec:",
				"      containers:",
				"        - name: c",
			),
			"clusters/dev/other.yaml": src(
				"---",
				"apiVersion: kustomize.toolkit.fluxcd.io/v1",
				"kind: Kustomization",
				"metadata:",
				"  name: other", // 5
				"  namespace: flux-system",
				"spec:",
				"  path: ./x",
				"  sourceRef:",
				"    kind: GitRepository", // 10
				"    name: other",
			),
		},
		images: map[string]string{},
		gaps: map[string]string{
			"HelmRelease HelmRelease/flux-system/podinfo": "clusters/dev/helm.yaml:10",
			"UnresolvedImage Deployment/noimage":          "clusters/dev/broken.yaml:1",
			"OtherSource Kustomization/flux-system/other": "clusters/dev/other.yaml:2",
		},
		kustomizations: map[string]string{"Kustomization/flux-system/other": "clusters/dev/other.yaml:2"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := writeTree(t, tc.files)
			res, err := Render(t.Context(), root, filepath.Join(root, filepath.FromSlash(tc.dir)))
			if err != nil {
				t.Fatal(err)
			}
			images, gaps, kustomizations := resultLines(res)
			if diff := cmp.Diff(tc.images, images); diff != "" {
				t.Errorf("image lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.gaps, gaps); tc.gaps != nil && diff != "" {
				t.Errorf("gap lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.kustomizations, kustomizations); tc.kustomizations != nil && diff != "" {
				t.Errorf("Kustomization lines (-want +got):\n%s", diff)
			}
		})
	}
}

// resultLines maps what a result reports to where: image locations by
// object and path, gaps by reason and object, Kustomizations by object.
func resultLines(res *Result) (images, gaps, kustomizations map[string]string) {
	images, gaps, kustomizations = map[string]string{}, map[string]string{}, map[string]string{}
	for _, img := range res.Images {
		for _, l := range img.Locations {
			at := fmt.Sprintf("%s:%d", l.File, l.Line)
			if l.SetBy != nil {
				at += fmt.Sprintf(" set by %s:%d", l.SetBy.File, l.SetBy.Line)
			}
			images[l.Object+" "+l.Path] = at
		}
	}
	for _, g := range res.Gaps {
		gaps[string(g.Reason)+" "+g.Object] = fmt.Sprintf("%s:%d", g.File, g.Line)
	}
	for _, k := range res.Kustomizations {
		kustomizations[k.Object] = fmt.Sprintf("%s:%d", k.File, k.Line)
	}
	return images, gaps, kustomizations
}

// TestLinesNotFound gives the line lookup what it cannot place: generated
// objects (no file), missing and odd files, objects that are not there. It
// must leave every line 0 and never panic.
func TestLinesNotFound(t *testing.T) {
	t.Parallel()
	root := writeTree(t, map[string]string{
		"top-level-list.yaml": "- a\n- b\n",
		"bad.yaml":            "kind: Pod\nmetadata: {name: x\n",
		"unknown-alias.yaml":  "kind: Pod\nmetadata: *nowhere\n",
		"merge-loop.yaml":     "a: &a\n  <<: *a\nkind: Pod\n",
		"binary.yaml":         "\x00\x01\x02kind: Pod",
		"odd-shapes.yaml": src(
			"apiVersion: v1",
			"kind: Pod",
			"metadata: {name: x}",
			"spec:",
			"  containers: {name: c, image: nginx}", // 5
			"---",
			"apiVersion: v1",
			"kind: Pod",
			"metadata: {name: y}",
			"spec:", // 10
			"  containers:",
			"    - name: c",
			"      image: {name: nginx}",
			"---",
			"[1, 2]", // 15
			"---",
			"kind: List",
			"items: 3",
		),
		"no-name.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - {name: c, image: nginx}\n",
	})
	r, rel, err := newRenderer(root, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"", "missing.yaml", "top-level-list.yaml", "bad.yaml", "unknown-alias.yaml",
		"merge-loop.yaml", "binary.yaml", "odd-shapes.yaml", "no-name.yaml", "../outside.yaml", "."}
	var locs []Location
	for _, f := range files {
		for _, name := range []string{"x", "y", "z"} {
			for _, p := range []string{"spec.containers[0]", "spec.containers", "spec..x", "spec.containers[x]", "[0]", "spec.containers[9]"} {
				locs = append(locs, Location{Origin: Origin{File: f}, Object: "Pod/" + name, Path: p, Container: "c", Raw: "nginx:1"})
			}
		}
		r.result.Gaps = append(r.result.Gaps, Gap{Reason: UnresolvedImageGap, Origin: Origin{File: f}, Object: "Pod/z"},
			Gap{Reason: BuildFailedGap, Origin: Origin{File: f}, Object: "Kustomization/flux-system/x"})
		r.result.Kustomizations = append(r.result.Kustomizations,
			Kustomization{Object: "Kustomization/flux-system/x", Origin: Origin{File: f}, Status: Rendered})
	}
	r.result.Images = []Image{{Ref: "index.docker.io/library/nginx:1", Locations: locs}}
	r.addLines(rel)
	for _, l := range r.result.Images[0].Locations {
		if l.Line != 0 || l.SetBy != nil {
			t.Errorf("%s %s %s: line %d, set by %v; want none", l.File, l.Object, l.Path, l.Line, l.SetBy)
		}
	}
	for _, g := range r.result.Gaps {
		if g.Line != 0 {
			t.Errorf("gap %s: line %d, want 0", g, g.Line)
		}
	}
	for _, k := range r.result.Kustomizations {
		if k.Line != 0 {
			t.Errorf("Kustomization %s in %s: line %d, want 0", k.Object, k.File, k.Line)
		}
	}
}
