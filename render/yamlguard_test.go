package render

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRender_yamlBounds: a revision whose YAML would make kustomize
// exhaust memory (aliases expanding a billion-fold) or spend minutes
// (thousands of nesting levels) is refused before kustomize reads it, with
// an error naming the file; ordinary YAML, aliases included, renders.
func TestRender_yamlBounds(t *testing.T) {
	t.Parallel()
	laughs := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	for i := 1; i < 9; i++ {
		laughs += fmt.Sprintf("  a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	nested := func(levels int) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata:\n  x: " + strings.Repeat("{a: ", levels) + "1" + strings.Repeat("}", levels) + "\n"
	}
	chained := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chain}\ndata:\n  c0: &c0 [1]\n"
	for i := 1; i <= 600; i++ {
		chained += fmt.Sprintf("  c%d: &c%d [*c%d]\n", i, i, i-1)
	}
	for name, tc := range map[string]struct {
		file    string
		wantErr string
	}{
		"billion laughs":              {laughs, "bomb.yaml): not rendered: YAML aliases expand to more than 1000000 nodes"},
		"nested 10,000 levels":        {nested(10_000), "bomb.yaml): not rendered: YAML nested deeper than 512 levels"},
		"aliases nesting 600 levels":  {chained, "bomb.yaml): not rendered: YAML nested deeper than 512 levels"},
		"a node that contains itself": {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: self}\ndata: &a\n  <<: *a\n", "bomb.yaml): not rendered: a YAML alias refers to a node that contains it"},
		"nested 100 levels":           {nested(100), ""},
		"a few aliases":               {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\ndata:\n  a: &x hello\n  b: *x\n", ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "app", "bomb.yaml"), []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := Render(t.Context(), root, filepath.Join(root, "app"))
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Render() took %s", elapsed)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Render() = %v, want it rendered", err)
				}
				return
			}
			var re *Error
			if err == nil || !errors.As(err, &re) || re.File != "app/bomb.yaml" || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Render() = %v, want an error naming app/bomb.yaml: %q", err, tc.wantErr)
			}
		})
	}
}
