package render

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// renderCase is testdata/render/<case>/case.yaml.
type renderCase struct {
	// Path is the directory to render, relative to src/.
	Path string `json:"path"`
	// SourceRef is Kind/namespace/name; default DefaultSourceRef.
	SourceRef string `json:"sourceRef"`
	// Kustomization is a file (relative to the case directory) holding the
	// Flux Kustomization to render Path as.
	Kustomization string `json:"kustomization"`
	// SubstituteFrom are files (relative to the case directory) with
	// ConfigMaps and Secrets from the cluster.
	SubstituteFrom []string `json:"substituteFrom"`
}

// TestRenderGolden renders each testdata/render/<case>/src and compares
// images, Kustomizations, gaps or the error with <case>/result.golden.
func TestRenderGolden(t *testing.T) {
	t.Parallel()
	cases, err := filepath.Glob("testdata/render/*/case.yaml")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no render cases: %v", err)
	}
	for _, cf := range cases {
		dir := filepath.Dir(cf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			var c renderCase
			readYAML(t, cf, &c)
			var opts []Option
			if c.SourceRef != "" {
				ref, err := ParseSourceRef(c.SourceRef)
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, WithSourceRef(ref))
			}
			if c.Kustomization != "" {
				var ks map[string]any
				readYAML(t, filepath.Join(dir, c.Kustomization), &ks)
				opts = append(opts, WithKustomization(ks))
			}
			for _, f := range c.SubstituteFrom {
				opts = append(opts, WithSubstituteFrom(readDocs(t, filepath.Join(dir, f))))
			}

			root := copyTree(t, filepath.Join(dir, "src"))
			before := snapshot(t, root)
			res, err := Render(t.Context(), root, filepath.Join(root, filepath.FromSlash(c.Path)), opts...)
			if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
				t.Errorf("Render changed the source tree (-before +after):\n%s", diff)
			}
			got := formatResult(res, err)
			golden := filepath.Join(dir, "result.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Render() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// formatResult prints a Result (or the error) in a stable, reviewable form.
func formatResult(res *Result, err error) string {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
		var re *Error
		if errors.As(err, &re) {
			fmt.Fprintf(&b, "error path=%s object=%s file=%s\n", re.Path, re.Object, re.File)
		}
		return b.String()
	}
	for _, img := range res.Images {
		mut := ""
		if img.Mutable {
			mut = " mutable"
		}
		fmt.Fprintf(&b, "image %s%s\n", img.Ref, mut)
		for _, l := range img.Locations {
			fmt.Fprintf(&b, "  %s %s %s raw=%s chain=%s\n", orDash(l.File), l.Object, l.Path, l.Raw, orDash(strings.Join(l.Chain, ">")))
		}
	}
	for _, k := range res.Kustomizations {
		fmt.Fprintf(&b, "kustomization %s path=%s %s from=%s chain=%s\n", k.Object, k.Path, k.Status, orDash(k.File), orDash(strings.Join(k.Chain, ">")))
	}
	for _, g := range res.Gaps {
		fmt.Fprintf(&b, "gap %s chain=%s\n", g, orDash(strings.Join(g.Chain, ">")))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func readDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, doc := range bytes.Split(b, []byte("\n---")) {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// copyTree copies a test source tree into a fresh directory, because Render
// rewrites kustomization files while it builds.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// snapshot maps each file under root to its content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
