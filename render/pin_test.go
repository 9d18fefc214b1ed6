package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPin(t *testing.T) {
	t.Parallel()
	const (
		dg  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		web = "ghcr.io/acme/web:1.0"
	)
	docs, err := DecodeObjects("in.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec:
  template:
    spec:
      initContainers: [{name: init, image: "ghcr.io/acme/web:1.0"}]
      containers:
        - {name: web, image: "ghcr.io/acme/web:1.0"}
        - {name: proxy, image: "nginx:1.27"}
        - {name: other, image: "ghcr.io/acme/other:2"}
      ephemeralContainers: [{name: debug, image: "GHCR.IO/acme/web:1.0"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: job, namespace: apps}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: "ghcr.io/acme/web:1.0"}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: ro, namespace: apps}
spec:
  template:
    spec:
      containers: [{name: ro, image: "ghcr.io/acme/web:1.0"}]
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  rules: [{validate: {pattern: {spec: {containers: [{image: "ghcr.io/acme/web:1.0"}]}}}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	var objs []Object
	for _, d := range docs {
		objs = append(objs, Object{Content: d, Origin: Origin{File: "in.yaml"}})
	}
	pinned := map[string]string{
		web:                                  web + "@" + dg,
		"index.docker.io/library/nginx:1.27": "index.docker.io/library/nginx:1.27@" + dg,
	}
	got, n := Pin(objs, pinned)
	// Every place the two images run, the upper-case spelling included;
	// not the other image, not a policy pattern.
	if n != 6 {
		t.Errorf("Pin() rewrote %d images, want 6", n)
	}
	imgs, gaps := Images(got)
	var refs []string
	for _, img := range imgs {
		refs = append(refs, img.Ref)
	}
	want := []string{"ghcr.io/acme/other:2", web + "@" + dg, "index.docker.io/library/nginx:1.27@" + dg}
	if diff := cmp.Diff(want, refs); diff != "" || len(gaps) != 0 {
		t.Errorf("images after pinning (-want +got):\n%s\ngaps: %v", diff, gaps)
	}
	pattern := got[3].Content["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["validate"].(map[string]any)["pattern"]
	if image := pattern.(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]; image != web {
		t.Errorf("a policy pattern was rewritten: %v", image)
	}
	// The input is not changed.
	if imgs, _ := Images(objs); len(imgs) != 3 || imgs[1].Ref != web {
		t.Errorf("Pin changed its input: %v", imgs)
	}
}
