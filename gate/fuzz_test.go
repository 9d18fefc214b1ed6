package gate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pregate/pregate/gate"
)

// FuzzGlob compiles a TrustPolicy image glob and matches it against a
// reference. Invariants:
//
//   - CompileGlob and Match never panic; a rejected glob is a *GlobError
//     with a message; String returns the glob as written.
//   - Match is deterministic.
//   - Every spelling Match tries starts with the part of the reference
//     (its host canonicalised, see CanonicalReference) before its tag or
//     digest, and the glob is anchored: when Match is true and the glob's
//     literal prefix (before its first "*") is no longer than that part,
//     the canonical reference starts with the prefix.
//   - For a canonical, normalised reference (as CanonicalReference and
//     go-containerregistry spell it): a literal glob equal to it matches
//     it, and P+"**" matches it for every prefix P of it (when P+"**" is a
//     glob at all).
func FuzzGlob(f *testing.F) {
	const dg = "sha256:5504f2a95018e3d8a52d80d9e1a128c6ea337581808ff9fe96f5628ce2336350"
	for _, s := range [][2]string{
		{"ghcr.io/acme/**", "ghcr.io/acme/app:1.0"},
		{"ghcr.io/acme/*", "ghcr.io/acme/app@" + dg},
		{"ghcr.io/acme/app:*", "ghcr.io/acme/app:1.0@" + dg},
		{"ghcr.io/acme/app@*", "ghcr.io/acme/app@" + dg},
		{"ghcr.io/**/app:*", "ghcr.io/app:1.0"},
		{"**", "index.docker.io/library/nginx:latest"},
		{"*", "index.docker.io/library/nginx"},
		{"*/*", "index.docker.io/acme/app:1"},
		{"inde**", "index.docker.io/library/foo:latest"},
		{"*/**", "localhost:5000/app:dev"},
		{"ghcr.io/***", "ghcr.io/acme/team/app:1.0"},
		{"index.docker.io/library/nginx:1.27", "index.docker.io/library/nginx:1.27"},
		{"ghcr.io/foo@" + dg, "ghcr.io/foo@" + dg},
		{"registry.example.com:8443/team/*", "registry.example.com:8443/team/app:v1"},
		{"docker.io/library/*", "docker.io/library/nginx:1"},
		{"nginx", "nginx"},
		{"ghcr.io/acme/app", "ghcr.io/acme/app"},
		{"ghcr.io*", "ghcr.io/x:1"},
		{"ghcr.io/acme/[a-z]+", "ghcr.io/acme/a:1"},
		{"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, ref string) {
		g, err := gate.CompileGlob(pattern)
		if err != nil {
			var ge *gate.GlobError
			if !errors.As(err, &ge) || ge.Pattern != pattern || ge.Reason == "" {
				t.Fatalf("CompileGlob(%q) = %#v, want a *GlobError naming the pattern with a reason", pattern, err)
			}
			if g != nil {
				t.Fatalf("CompileGlob(%q) returned a glob with its error", pattern)
			}
			return
		}
		if g.String() != pattern {
			t.Fatalf("CompileGlob(%q).String() = %q", pattern, g.String())
		}
		m := g.Match(ref)
		if g.Match(ref) != m {
			t.Fatalf("glob %q: Match(%q) is not deterministic", pattern, ref)
		}
		canonical := gate.CanonicalReference(ref)
		if lit := literalPrefix(pattern); m && len(lit) <= len(repoPart(canonical)) && !strings.HasPrefix(canonical, lit) {
			t.Fatalf("glob %q matches %q (canonically %q), which does not start with its literal prefix %q", pattern, ref, canonical, lit)
		}

		if canonical != ref || !normalised(ref) {
			return
		}
		if !strings.Contains(pattern, "*") && pattern == ref && !m {
			t.Fatalf("literal glob %q does not match the same reference", pattern)
		}
		// A prefix of the reference, chosen by the fuzzer through the
		// pattern's length.
		p := ref[:len(pattern)%(len(ref)+1)]
		if dg, err := gate.CompileGlob(p + "**"); err == nil && !dg.Match(ref) {
			t.Fatalf("glob %q does not match %q, which starts with %q", p+"**", ref, p)
		}
	})
}

// literalPrefix is the part of the glob before its first "*", after the
// Docker Hub short forms are expanded.
func literalPrefix(pattern string) string {
	switch pattern {
	case "*":
		return "index.docker.io/library/"
	case "*/*":
		return "index.docker.io/"
	}
	lit, _, _ := strings.Cut(pattern, "*")
	return lit
}

// repoPart is the reference before its digest and tag: what every spelling
// Match tries starts with.
func repoPart(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[:i]
	}
	return name
}

// normalised reports whether ref is a reference as go-containerregistry
// spells it once normalised (registry, repository and tag or digest).
func normalised(ref string) bool {
	r, err := name.ParseReference(ref)
	return err == nil && r.Name() == ref
}
