package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/v1alpha1"
)

// FuzzLoad loads a policy file. Invariants: Load never panics; on error
// it returns no Set, and the error joins one *ObjectError per failing
// document, each naming the file (its message starts with the file
// name) and a document of it, with at least one problem; on success every
// object is found again by kind and name, read from the file, and
// Validate does not panic.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"---\n# only a comment\n---\n",
		"apiVersion: gate.pregate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: p}\nspec:\n  images: [{glob: 'ghcr.io/**'}]\n  authorities: [{name: s, static: {action: pass}}]\n",
		"apiVersion: gate.pregate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: p}\nspec: {mode: strict, unknown: 1}\n---\napiVersion: gate.pregate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: p}\n",
		"apiVersion: gate.pregate.dev/v1alpha1\nkind: TrustRoot\nmetadata: {name: r}\nspec: {publicGood: {}, tuf: {mirror: 'https://x'}}\n",
		`{"apiVersion":"gate.pregate.dev/v1alpha1","kind":"TrustRoot","metadata":{"name":"r"},"spec":{"trustedRoot":{"data":"{}"}}}`,
		"apiVersion: v1\nkind: ConfigMap\n",
		"apiVersion: 7\nkind: [x]\n",
		"- a list\n",
		"a: b: c\n",
		"key: &a [*a, *a]\n",
		"apiVersion: gate.pregate.dev/v1alpha1\napiVersion: gate.pregate.dev/v1alpha1\nkind: TrustRoot\n",
	} {
		f.Add([]byte(s))
	}
	const file = "policies/fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := config.Load(file, data)
		if err != nil {
			if set != nil {
				t.Fatalf("Load returned a Set with its error %v", err)
			}
			if err.Error() == "" {
				t.Fatal("Load returned an empty error")
			}
			errs := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var oe *config.ObjectError
				if !errors.As(e, &oe) {
					t.Fatalf("Load error %q is a %T, not an *ObjectError", e, e)
				}
				if oe.File != file || oe.Document < 1 || len(oe.Errs) == 0 {
					t.Fatalf("Load error %q: file %q, document %d, %d problems", e, oe.File, oe.Document, len(oe.Errs))
				}
				if !strings.HasPrefix(oe.Error(), file+": ") {
					t.Fatalf("Load error %q does not start with the file name", oe.Error())
				}
			}
			return
		}
		if set == nil {
			t.Fatal("Load returned neither a Set nor an error")
		}
		for _, p := range set.TrustPolicies() {
			if got, ok := set.TrustPolicy(p.Name); !ok || got != p {
				t.Fatalf("TrustPolicy %q is listed but not found by name", p.Name)
			}
			if o, ok := set.Origin(v1alpha1.TrustPolicyKind, p.Name); !ok || o.File != file || o.Document < 1 {
				t.Fatalf("TrustPolicy %q: origin %+v", p.Name, o)
			}
		}
		for _, r := range set.TrustRoots() {
			if got, ok := set.TrustRoot(r.Name); !ok || got != r {
				t.Fatalf("TrustRoot %q is listed but not found by name", r.Name)
			}
			if o, ok := set.Origin(v1alpha1.TrustRootKind, r.Name); !ok || o.File != file || o.Document < 1 {
				t.Fatalf("TrustRoot %q: origin %+v", r.Name, o)
			}
		}
		_ = set.Validate()
	})
}
