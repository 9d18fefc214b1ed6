package admission

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzRead reads arbitrary documents as admission policies: never a panic,
// and an error always names the file.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{apiVersion: kyverno.io/v1, kind: ClusterPolicy, metadata: {name: p}, spec: {rules: [{name: r, verifyImages: [{attestors: [{count: 3, entries: []}]}]}]}}`))
	f.Add([]byte(`{apiVersion: policies.kyverno.io/v1, kind: ImageValidatingPolicy, metadata: {name: p}, spec: {validations: [{expression: "true"}], attestors: [{name: a, cosign: {}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var obj map[string]any
		if err := yaml.Unmarshal(b, &obj); err != nil || obj == nil {
			return
		}
		p, ok, err := Read("fuzz.yaml", obj)
		switch {
		case err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml: "):
			t.Fatalf("error %q does not name the file", err)
		case err == nil && ok && p == nil:
			t.Fatal("a policy read as nothing")
		}
	})
}
