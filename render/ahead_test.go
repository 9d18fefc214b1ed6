package render

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRenderParallelIsSequential renders every render case, the Flux
// example's clusters, the benchmark's monorepo and trees made to defeat
// builds made ahead (a substituteFrom object a later sibling replaces, odd
// directory names) with builds running ahead of the traversal and without,
// and wants the same result, objects included, byte for byte.
func TestRenderParallelIsSequential(t *testing.T) {
	t.Parallel()
	type renderInput struct {
		name, root, dir string
		opts            []Option
	}
	var inputs []renderInput
	cases, err := filepath.Glob("testdata/render/*/case.yaml")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no render cases: %v", err)
	}
	for _, cf := range cases {
		dir := filepath.Dir(cf)
		c, opts := readCase(t, dir)
		root := copyTree(t, filepath.Join(dir, c.Src))
		inputs = append(inputs, renderInput{filepath.Base(dir), root, filepath.Join(root, filepath.FromSlash(c.Path)), opts})
	}
	example := copyTree(t, "testdata/flux2-kustomize-helm-example")
	for _, cluster := range []string{"production", "staging"} {
		inputs = append(inputs, renderInput{"flux2-kustomize-helm-example/" + cluster, example,
			filepath.Join(example, "clusters", cluster), caseOptions()})
	}
	bench := t.TempDir()
	writeBenchTree(t, bench, 12)
	inputs = append(inputs, renderInput{"bench", bench, filepath.Join(bench, "clusters", "bench"), nil})
	for _, name := range []string{"replaced", "odd ${IMAGE} $(x) päth"} {
		root := filepath.Join(t.TempDir(), name)
		writeReplacedVarsTree(t, root)
		inputs = append(inputs, renderInput{"tree " + name, root, filepath.Join(root, "clusters", "dev"), nil})
	}

	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			t.Parallel()
			seq := renderWith(t, in.root, in.dir, in.opts, 1)
			par := renderWith(t, in.root, in.dir, in.opts, 8)
			if diff := cmp.Diff(seq, par); diff != "" {
				t.Errorf("builds ahead change the result (-sequential +ahead):\n%s", diff)
			}
		})
	}
}

// renderWith renders with workers builds at once and returns the whole
// result, objects included, as JSON, or the error.
func renderWith(t *testing.T, root, dir string, opts []Option, workers int) string {
	t.Helper()
	r, rel, err := newRenderer(root, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.workers = workers
	res, err := r.render(t.Context(), rel)
	if err != nil {
		return "error: " + r.dec.redactErr(err).Error()
	}
	b, err := json.MarshalIndent(struct {
		Objects []Object
		Result  *Result
	}{res.Objects, res}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeReplacedVarsTree writes a cluster whose Kustomizations, in name
// order, give a ConfigMap, use it, and give it again with another value,
// and a last one that waits for a ConfigMap only a nested Kustomization
// gives: a build of b-app made ahead reads the pool before a-vars is
// rendered, and must not be the one used.
func writeReplacedVarsTree(t *testing.T, root string) {
	t.Helper()
	ks := func(name, path, extra string) string {
		return fmt.Sprintf(`---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: %s, namespace: flux-system}
spec:
  interval: 10m
  path: %s
  sourceRef: {kind: GitRepository, name: flux-system}
%s`, name, path, extra)
	}
	uses := func(cm string) string {
		return "  postBuild:\n    substituteFrom: [{kind: ConfigMap, name: " + cm + "}]\n"
	}
	cm := func(name, value string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s, namespace: flux-system}\ndata: {REGISTRY: %s}\n", name, value)
	}
	pod := `apiVersion: v1
kind: Pod
metadata: {name: app, namespace: apps}
spec:
  containers: [{name: app, image: "${REGISTRY}/app:1.0"}, {name: side, image: ghcr.io/acme/side:1.0}]
`
	files := map[string]string{
		"clusters/dev/flux-system.yaml": ks("flux-system", "./clusters/dev", "") +
			ks("a-vars", "./vars/a", "") + ks("b-app", "./app", uses("vars")) + ks("c-vars", "./vars/c", "") +
			ks("d-app", "./app2", uses("late")) + ks("e-nested", "./nested", ""),
		"vars/a/cm.yaml":         cm("vars", "a.example"),
		"vars/c/cm.yaml":         cm("vars", "c.example"),
		"app/pod.yaml":           pod,
		"app2/pod.yaml":          pod,
		"nested/ks.yaml":         ks("f-late", "./vars/late", ""),
		"vars/late/cm.yaml":      cm("late", "late.example"),
		"app/kustomization.yaml": "resources: [pod.yaml]\n",
	}
	for p, content := range files {
		f := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
