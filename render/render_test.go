package render

import (
	"context"
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

	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/render/sops"
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
	// Src is the source tree, relative to the case directory; default src.
	Src string `json:"src"`
	// SOPSAgeKeys are age key files (relative to the case directory) to
	// decrypt with, for every Kustomization.
	SOPSAgeKeys []string `json:"sopsAgeKeys"`
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
			c, opts := readCase(t, dir)
			root := copyTree(t, filepath.Join(dir, c.Src))
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

// readCase reads testdata/render/<case>/case.yaml and the options it asks
// for.
func readCase(t *testing.T, dir string) (renderCase, []Option) {
	t.Helper()
	var c renderCase
	readYAML(t, filepath.Join(dir, "case.yaml"), &c)
	// The cases render offline, as tests must: their charts are not
	// served, so a HelmRelease is a gap, and a remote base is a gap as
	// `pregate images --no-remote-bases` reports it (remote_test.go fetches
	// remote bases from loopback servers). No request leaves the machine.
	opts := caseOptions()
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
	if c.Src == "" {
		c.Src = "src"
	}
	if len(c.SOPSAgeKeys) > 0 {
		opts = append(opts, WithDecryptionKeys(ageKeys(t, dir, c.SOPSAgeKeys...)))
	}
	return c, opts
}

// caseOptions are the options every render case starts from: offline.
func caseOptions() []Option {
	return []Option{WithHelm(helm.WithOffline()), WithoutRemoteBases("--no-remote-bases")}
}

// TestRenderBuilds lists the builds some golden cases take: a build is
// most of a render's time, and the paths around substituteFrom are the
// ones where a build can be repeated for nothing.
func TestRenderBuilds(t *testing.T) {
	t.Parallel()
	const (
		fluxSystem = "Kustomization/flux-system/flux-system clusters/prod"
		app        = "Kustomization/flux-system/app app"
	)
	for _, tc := range []struct {
		name string
		want []string // "Kustomization/ns/name path", or the path of a plain build
	}{
		// The Kustomization given needs a ConfigMap its own path applies:
		// one plain build finds it, and the retry renders.
		{"postbuild", []string{app, "app", app}},
		// flux bootstrap's layout: the plain build that finds the
		// flux-system Kustomization also finds its substituteFrom objects.
		{"bootstrap-substitute-from", []string{"clusters/prod", fluxSystem, "Kustomization/flux-system/apps apps/web"}},
		// ...and when they are not there, building again will not find
		// them: it renders without them at once.
		{"bootstrap-substitute-missing", []string{"clusters/prod", fluxSystem, fluxSystem}},
		// app waits for objects nothing applies: one more try once the
		// rest is rendered, then it renders without them. A try that
		// misses an object stops before kustomize builds anything.
		{"postbuild-missing", []string{"clusters/dev", "Kustomization/flux-system/app app", "Kustomization/flux-system/app app", "Kustomization/flux-system/app app"}},
		// a-app waits for z-config, and is built again after it.
		{"postbuild-order", []string{"clusters/dev", "Kustomization/flux-system/a-app app",
			"Kustomization/flux-system/z-config config", "Kustomization/flux-system/a-app app"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", "render", tc.name)
			c, opts := readCase(t, dir)
			root := copyTree(t, filepath.Join(dir, "src"))
			r, rel, err := newRenderer(root, filepath.Join(root, filepath.FromSlash(c.Path)), opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			r.workers = 1 // builds ahead would come in any order
			r.build = func(ctx context.Context, u unit) (built, error) {
				got = append(got, strings.TrimSpace(u.id+" "+u.path))
				return r.renderUnit(ctx, u)
			}
			_, _ = r.render(t.Context(), rel) // TestRenderGolden checks the result
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("builds (-want +got):\n%s", diff)
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
			fmt.Fprintf(&b, "  %s %s %s raw=%s chain=%s", orDash(l.File), l.Object, l.Path, l.Raw, orDash(strings.Join(l.Chain, ">")))
			if l.HelmRelease != "" {
				fmt.Fprintf(&b, " template=%s", l.Template)
			}
			b.WriteString("\n")
		}
	}
	for _, k := range res.Kustomizations {
		fmt.Fprintf(&b, "kustomization %s path=%s %s from=%s chain=%s\n", k.Object, k.Path, k.Status, orDash(k.File), orDash(strings.Join(k.Chain, ">")))
	}
	for _, h := range res.HelmReleases {
		fmt.Fprintf(&b, "helmrelease %s %s from=%s chart=%s version=%s source=%s chain=%s\n", h.Object, h.Status, orDash(h.File), orDash(h.Chart), orDash(h.Version), orDash(h.Source), orDash(strings.Join(h.Chain, ">")))
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

// ageKeys reads age key files, relative to dir.
func ageKeys(t *testing.T, dir string, files ...string) sops.Keys {
	t.Helper()
	var keys sops.Keys
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		k, err := sops.ParseAgeKeys(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		keys = keys.With(k)
	}
	return keys
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

// readDocs decodes a multi-document YAML file as the CLI decodes
// --substitute-from files.
func readDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeObjects(file, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyTree copies a test source tree into a fresh directory, so that a
// render that wrote to it (TestRenderGolden checks it does not) could not
// spoil the test data.
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
