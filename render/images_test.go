package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const imagesTestdata = "testdata/images"

func TestImagesGolden(t *testing.T) {
	entries, err := os.ReadDir(imagesTestdata)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := *update
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			objs := readImagesCase(t, name)
			images, gaps := Images(objs)
			got := formatImagesGolden(images, gaps)

			golden := filepath.Join(imagesTestdata, name, "images.golden")
			if rewrite {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Images(%s) mismatch (-want +got):\n%s", name, diff)
			}
		})
	}
}

// readImagesCase decodes testdata/images/<name>/input.yaml, one Object per
// YAML document, each with Origin.File "<name>/input.yaml".
func readImagesCase(t *testing.T, name string) []Object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(imagesTestdata, name, "input.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeImagesInput(data, name+"/input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// decodeImagesInput decodes multi-document YAML with DecodeObjects, each
// document into an Object from file.
func decodeImagesInput(data []byte, file string) ([]Object, error) {
	docs, err := DecodeObjects(file, data)
	if err != nil {
		return nil, err
	}
	objs := make([]Object, 0, len(docs))
	for _, content := range docs {
		objs = append(objs, Object{Content: content, Origin: Origin{File: file}})
	}
	return objs, nil
}

// formatImagesGolden prints a summary comment, one line per location
// (REF, OBJECT, PATH, RAW, tab-separated), then one line per gap.
func formatImagesGolden(images []Image, gaps []Gap) []byte {
	var b bytes.Buffer
	locations := 0
	for _, img := range images {
		locations += len(img.Locations)
	}
	fmt.Fprintf(&b, "# %d images, %d locations, %d gaps\n", len(images), locations, len(gaps))
	for _, img := range images {
		for _, loc := range img.Locations {
			fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", img.Ref, loc.Object, loc.Path, loc.Raw)
		}
	}
	for _, g := range gaps {
		fmt.Fprintf(&b, "GAP %s\n", g)
	}
	return b.Bytes()
}

// Fixture builders.

func testContainer(name, image string) map[string]any {
	return map[string]any{"name": name, "image": image}
}

func testPodSpec(containers ...any) map[string]any {
	return map[string]any{"containers": containers}
}

func testObject(apiVersion, kind, namespace, name string, spec map[string]any) Object {
	return Object{
		Content: map[string]any{
			"apiVersion": apiVersion,
			"kind":       kind,
			"metadata":   map[string]any{"name": name, "namespace": namespace},
			"spec":       spec,
		},
		Origin: Origin{File: "apps/" + strings.ToLower(kind) + ".yaml"},
	}
}

func testDeployment(namespace, name string, podSpec map[string]any) Object {
	return testObject("apps/v1", "Deployment", namespace, name,
		map[string]any{"template": map[string]any{"spec": podSpec}})
}

const (
	testDigestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	testDigestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestImages asserts every field of the result for small inputs, so that a
// golden regeneration cannot hide a change in Mutable, Tag, Digest, Registry
// or a location.
func TestImages(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		objs     []Object
		want     []Image
		wantGaps []Gap
	}{
		"nothing": {},
		"objects without content": {
			objs: []Object{{}, {Content: map[string]any{"kind": "Pod", "apiVersion": "v1"}}},
		},
		"unnamed container with a template": {
			objs: []Object{
				testObject("v1", "Pod", "apps", "p", testPodSpec(map[string]any{"image": "${IMAGE}"})),
			},
			wantGaps: []Gap{{
				Reason: UnresolvedImageGap, Origin: Origin{File: "apps/pod.yaml"}, Object: "Pod/apps/p",
				Path: "spec.containers[0]", Message: `image "${IMAGE}" is still a template after rendering`,
			}},
		},
		"short name, tag and docker.io forms are one image": {
			objs: []Object{
				testDeployment("apps", "web", testPodSpec(
					testContainer("a", "nginx"),
					testContainer("b", "docker.io/library/nginx:latest"),
				)),
				testObject("v1", "Pod", "apps", "static", testPodSpec(testContainer("c", "nginx:latest"))),
			},
			want: []Image{{
				Ref:        "index.docker.io/library/nginx:latest",
				Registry:   "index.docker.io",
				Repository: "library/nginx",
				Tag:        "latest",
				Mutable:    true,
				Locations: []Location{
					{Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web", APIVersion: "apps/v1", Container: "a", Path: "spec.template.spec.containers[0]", Raw: "nginx"},
					{Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web", APIVersion: "apps/v1", Container: "b", Path: "spec.template.spec.containers[1]", Raw: "docker.io/library/nginx:latest"},
					{Origin: Origin{File: "apps/pod.yaml"}, Object: "Pod/apps/static", APIVersion: "v1", Container: "c", Path: "spec.containers[0]", Raw: "nginx:latest"},
				},
			}},
		},
		"digest, tag and digest, port registry": {
			objs: []Object{
				testObject("batch/v1", "CronJob", "ops", "report", map[string]any{
					"jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
						"initContainers": []any{testContainer("init", "ghcr.io/acme/app:1.2@"+testDigestA)},
						"containers":     []any{testContainer("main", "localhost:5000/app@"+testDigestB)},
					}}}},
				}),
				testObject("v1", "Pod", "ops", "debug", map[string]any{
					"ephemeralContainers": []any{testContainer("dbg", "registry.example.com:8443/team/app:v1")},
				}),
			},
			want: []Image{
				{
					Ref:        "ghcr.io/acme/app:1.2@" + testDigestA,
					Registry:   "ghcr.io",
					Repository: "acme/app",
					Tag:        "1.2",
					Digest:     testDigestA,
					Mutable:    false,
					Locations: []Location{{
						Origin: Origin{File: "apps/cronjob.yaml"}, Object: "CronJob/ops/report", APIVersion: "batch/v1",
						Container: "init", Path: "spec.jobTemplate.spec.template.spec.initContainers[0]",
						Raw: "ghcr.io/acme/app:1.2@" + testDigestA,
					}},
				},
				{
					Ref:        "localhost:5000/app@" + testDigestB,
					Registry:   "localhost:5000",
					Repository: "app",
					Digest:     testDigestB,
					Mutable:    false,
					Locations: []Location{{
						Origin: Origin{File: "apps/cronjob.yaml"}, Object: "CronJob/ops/report", APIVersion: "batch/v1",
						Container: "main", Path: "spec.jobTemplate.spec.template.spec.containers[0]",
						Raw: "localhost:5000/app@" + testDigestB,
					}},
				},
				{
					Ref:        "registry.example.com:8443/team/app:v1",
					Registry:   "registry.example.com:8443",
					Repository: "team/app",
					Tag:        "v1",
					Mutable:    true,
					Locations: []Location{{
						Origin: Origin{File: "apps/pod.yaml"}, Object: "Pod/ops/debug", APIVersion: "v1",
						Container: "dbg", Path: "spec.ephemeralContainers[0]",
						Raw: "registry.example.com:8443/team/app:v1",
					}},
				},
			},
		},
		"custom resource with a pod template": {
			objs: []Object{
				testObject("serving.knative.dev/v1", "Service", "web", "hello", map[string]any{
					"template": map[string]any{"spec": testPodSpec(map[string]any{"image": "ghcr.io/acme/hello:1"})},
				}),
			},
			want: []Image{{
				Ref: "ghcr.io/acme/hello:1", Registry: "ghcr.io", Repository: "acme/hello", Tag: "1", Mutable: true,
				Locations: []Location{{
					Origin: Origin{File: "apps/service.yaml"}, Object: "Service/web/hello", APIVersion: "serving.knative.dev/v1",
					Path: "spec.template.spec.containers[0]", Raw: "ghcr.io/acme/hello:1",
				}},
			}},
		},
		"containers outside a pod spec are not images": {
			objs: []Object{
				testObject("kyverno.io/v1", "ClusterPolicy", "", "no-latest", map[string]any{
					"rules": []any{map[string]any{"validate": map[string]any{"pattern": map[string]any{
						"spec": testPodSpec(map[string]any{"image": "!*:latest"}),
					}}}},
				}),
				testObject("example.com/v1", "Pod", "apps", "fake", testPodSpec(testContainer("x", "ghcr.io/acme/x:1"))),
				testObject("v1", "Service", "apps", "web", map[string]any{
					"template": map[string]any{"spec": map[string]any{"ports": []any{}}},
				}),
			},
		},
		"template, invalid and missing images are gaps": {
			objs: []Object{
				testDeployment("apps", "web", testPodSpec(
					testContainer("tpl", "${APP_IMAGE}"),
					testContainer("bad", "UPPER/Case"),
					map[string]any{"name": "none"},
					testContainer("ok", "ghcr.io/acme/web:1"),
				)),
			},
			want: []Image{{
				Ref: "ghcr.io/acme/web:1", Registry: "ghcr.io", Repository: "acme/web", Tag: "1", Mutable: true,
				Locations: []Location{{
					Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web", APIVersion: "apps/v1",
					Container: "ok", Path: "spec.template.spec.containers[3]", Raw: "ghcr.io/acme/web:1",
				}},
			}},
			wantGaps: []Gap{
				{
					Reason: UnresolvedImageGap, Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web",
					Path:    "spec.template.spec.containers[0]",
					Message: `container "tpl": image "${APP_IMAGE}" is still a template after rendering`,
				},
				{
					Reason: UnresolvedImageGap, Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web",
					Path:    "spec.template.spec.containers[1]",
					Message: "container \"bad\": image \"UPPER/Case\" is not a valid reference: repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: UPPER/Case",
				},
				{
					Reason: UnresolvedImageGap, Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web",
					Path:    "spec.template.spec.containers[2]",
					Message: `container "none": image is missing`,
				},
			},
		},
		"malformed shapes are gaps": {
			objs: []Object{
				testDeployment("apps", "web", map[string]any{
					"containers":     map[string]any{"web": testContainer("web", "nginx")},
					"initContainers": []any{"nginx", map[string]any{"name": "n", "image": 7.0}},
				}),
				testObject("apps/v1", "StatefulSet", "apps", "db", map[string]any{"template": []any{}}),
			},
			wantGaps: []Gap{
				{
					Reason: UnresolvedImageGap, Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web",
					Path: "spec.template.spec.containers", Message: "containers is a map, not a list",
				},
				{
					Reason: UnresolvedImageGap, Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web",
					Path: "spec.template.spec.initContainers[0]", Message: `container entry is a string ("nginx"), not a map`,
				},
				{
					Reason: UnresolvedImageGap, Origin: Origin{File: "apps/deployment.yaml"}, Object: "Deployment/apps/web",
					Path: "spec.template.spec.initContainers[1]", Message: `container "n": image is a number (7), not a string`,
				},
				{
					Reason: UnresolvedImageGap, Origin: Origin{File: "apps/statefulset.yaml"}, Object: "StatefulSet/apps/db",
					Path: "spec.template", Message: "template is a list, not a map",
				},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, gotGaps := Images(tc.objs)
			// The Pod each place holds is TestImages_labels' business.
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Location{}, "Pod")); diff != "" {
				t.Errorf("Images() images mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantGaps, gotGaps); diff != "" {
				t.Errorf("Images() gaps mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestImages_order checks that the result does not depend on the order of
// the objects.
func TestImages_order(t *testing.T) {
	t.Parallel()
	var objs []Object
	for _, name := range []string{"duplicates", "normalization", "templates-and-invalid", "workloads"} {
		objs = append(objs, readImagesCase(t, name)...)
	}
	wantImages, wantGaps := Images(objs)
	reversed := make([]Object, len(objs))
	for i, o := range objs {
		reversed[len(objs)-1-i] = o
	}
	gotImages, gotGaps := Images(reversed)
	if diff := cmp.Diff(wantImages, gotImages); diff != "" {
		t.Errorf("Images(reversed) images mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantGaps, gotGaps); diff != "" {
		t.Errorf("Images(reversed) gaps mismatch (-want +got):\n%s", diff)
	}
}

// TestImages_origin checks that the origin, chain included, is carried to
// locations and gaps without sharing the input's Chain.
func TestImages_origin(t *testing.T) {
	t.Parallel()
	chain := []string{"Kustomization/flux-system/flux-system", "Kustomization/flux-system/apps"}
	obj := testDeployment("apps", "web", testPodSpec(
		testContainer("web", "ghcr.io/acme/web:1"),
		testContainer("tpl", "${IMAGE}"),
	))
	obj.Origin = Origin{File: "apps/web.yaml", Chain: chain}

	images, gaps := Images([]Object{obj})
	if len(images) != 1 || len(images[0].Locations) != 1 || len(gaps) != 1 {
		t.Fatalf("Images() = %d images, %d gaps, want 1 image with 1 location and 1 gap", len(images), len(gaps))
	}
	want := Origin{File: "apps/web.yaml", Chain: []string{"Kustomization/flux-system/flux-system", "Kustomization/flux-system/apps"}}
	if diff := cmp.Diff(want, images[0].Locations[0].Origin); diff != "" {
		t.Errorf("location origin mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, gaps[0].Origin); diff != "" {
		t.Errorf("gap origin mismatch (-want +got):\n%s", diff)
	}
	chain[0] = "changed"
	if got := images[0].Locations[0].Chain[0]; got != want.Chain[0] {
		t.Errorf("location chain follows the input's: Chain[0] = %q, want %q", got, want.Chain[0])
	}
}

func BenchmarkImages(b *testing.B) {
	objs := benchmarkObjects(1200)
	b.ReportAllocs()
	for b.Loop() {
		Images(objs)
	}
}

// benchmarkObjects builds n workloads of rotating kinds, with three
// containers each, drawing from a pool of references so that most repeat.
func benchmarkObjects(n int) []Object {
	refs := make([]string, 0, 60)
	for i := range 20 {
		refs = append(refs,
			fmt.Sprintf("ghcr.io/acme/svc-%d:1.%d.0", i, i),
			fmt.Sprintf("registry.example.com:8443/team/app-%d@%s", i, testDigestA),
			fmt.Sprintf("nginx:1.%d", i),
		)
	}
	objs := make([]Object, 0, n)
	for i := range n {
		spec := map[string]any{
			"initContainers": []any{testContainer("init", refs[i%len(refs)])},
			"containers": []any{
				testContainer("main", refs[(i*7)%len(refs)]),
				testContainer("sidecar", refs[(i*13)%len(refs)]),
			},
		}
		ns := fmt.Sprintf("team-%d", i%17)
		name := fmt.Sprintf("app-%d", i)
		switch i % 4 {
		case 0:
			objs = append(objs, testDeployment(ns, name, spec))
		case 1:
			objs = append(objs, testObject("batch/v1", "CronJob", ns, name, map[string]any{
				"jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": spec}}},
			}))
		case 2:
			objs = append(objs, testObject("v1", "Pod", ns, name, spec))
		default:
			objs = append(objs, testObject("argoproj.io/v1alpha1", "Rollout", ns, name,
				map[string]any{"template": map[string]any{"spec": spec}}))
		}
	}
	return objs
}

// TestImages_labels: each place carries its object's labels and those of
// the Pods it runs, its pod template's, wherever the template is.
func TestImages_labels(t *testing.T) {
	t.Parallel()
	objs, err := decodeImagesInput([]byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {tier: web}}
spec:
  template:
    metadata: {labels: {app: web, replicas: 3}}
    spec: {containers: [{name: a, image: ghcr.io/acme/web:1}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: nightly}}
        spec: {containers: [{name: a, image: ghcr.io/acme/job:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop, labels: {app: p}}
spec: {containers: [{name: a, image: ghcr.io/acme/pod:1}]}
`), "objs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	images, gaps := Images(objs)
	if len(gaps) > 0 || len(images) != 3 {
		t.Fatalf("Images = %d images, gaps %+v", len(images), gaps)
	}
	got := map[string]string{}
	for _, img := range images {
		l := img.Locations[0]
		got[l.Object] = fmt.Sprint(l.Labels, " ", podMeta(l)["labels"])
		// The Pod as admission sees it: its template's metadata in the
		// object's namespace, and its spec.
		md := podMeta(l)
		spec, _ := l.Pod["spec"].(map[string]any)
		if l.Pod["kind"] != "Pod" || md["namespace"] != "shop" || len(md["labels"].(map[string]any)) == 0 || spec["containers"] == nil {
			t.Errorf("%s: Pod %v", l.Object, l.Pod)
		}
	}
	if md := objs[0].Content["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any); md["namespace"] != nil {
		t.Errorf("the template's metadata was changed: %v", md)
	}
	want := map[string]string{
		"Deployment/shop/web":  "map[tier:web] map[app:web replicas:3]", // the Pod keeps its template's metadata as written
		"CronJob/shop/nightly": "map[] map[app:nightly]",
		"Pod/shop/p":           "map[app:p] map[app:p]",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

// podMeta is the metadata of a place's Pod.
func podMeta(l Location) map[string]any {
	md, _ := l.Pod["metadata"].(map[string]any)
	return md
}
