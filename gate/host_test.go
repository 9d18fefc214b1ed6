package gate

import "testing"

func TestCanonicalReference(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"GHCR.IO/acme/app:1":                  "ghcr.io/acme/app:1",
		"Ghcr.io/acme/app:1":                  "ghcr.io/acme/app:1",
		"ghcr.io:443/acme/app:1":              "ghcr.io/acme/app:1",
		"GHCR.IO:443/acme/app:1":              "ghcr.io/acme/app:1",
		"registry-1.docker.io/library/nginx":  "index.docker.io/library/nginx",
		"index.docker.io:443/library/nginx:1": "index.docker.io/library/nginx:1",
		"docker.io/nginx":                     "index.docker.io/nginx",
		"LOCALHOST/app:1":                     "localhost/app:1",
		"ghcr.io:8443/acme/app:1":             "ghcr.io:8443/acme/app:1", // another port is another registry
		"ghcr.io:80/acme/app:1":               "ghcr.io:80/acme/app:1",   // 443 is the registry protocol's default
		"acme/app:1":                          "acme/app:1",              // a Docker Hub namespace, not a host
		"nginx":                               "nginx",
		"ghcr.io/ACME/app:1":                  "ghcr.io/ACME/app:1", // only the host; repositories are validated elsewhere
		"[::1]:5000/app:1":                    "[::1]:5000/app:1",
		"[::1]:443/app:1":                     "[::1]/app:1",
		// Without its port, a single-label host would read as a Docker
		// Hub namespace: the cluster pulls from myregistry:443.
		"myregistry:443/team/app:1": "myregistry:443/team/app:1",
		"MyRegistry:443/team/app:1": "myregistry:443/team/app:1",
		"localhost:443/app:1":       "localhost/app:1",
		// Not a host: left for the reference parser to reject, and the
		// result is canonical (canonicalising it again changes nothing).
		"ghcr.io:443:443/acme/app:1": "ghcr.io:443:443/acme/app:1",
		"x:443:443/a":                "x:443:443/a",
	}
	for in, want := range tests {
		if got := CanonicalReference(in); got != want {
			t.Errorf("CanonicalReference(%q) = %q, want %q", in, got, want)
		}
		if again := CanonicalReference(want); again != want {
			t.Errorf("CanonicalReference(%q) = %q: not idempotent", want, again)
		}
	}
}

// TestGlobMatch_hostSpellings: no spelling of a registry host escapes a
// glob written for it (a catch-all static pass, or unmatched images
// allowed, would let it through unsigned).
func TestGlobMatch_hostSpellings(t *testing.T) {
	t.Parallel()
	tests := []struct{ glob, ref string }{
		{"ghcr.io/acme/**", "GHCR.IO/acme/app:1"},
		{"ghcr.io/acme/**", "Ghcr.io/acme/app:1"},
		{"ghcr.io/acme/**", "ghcr.io:443/acme/app:1"},
		{"index.docker.io/library/*", "registry-1.docker.io/library/nginx:1"},
		{"index.docker.io/library/*", "index.docker.io:443/library/nginx:1"},
		{"*", "docker.io/library/nginx:1"},
	}
	for _, tt := range tests {
		g, err := CompileGlob(tt.glob)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", tt.glob, err)
		}
		if !g.Match(tt.ref) {
			t.Errorf("CompileGlob(%q).Match(%q) = false, want true", tt.glob, tt.ref)
		}
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"line\nbreak\ttab\x00nul", 100, "line break tab nul"},
		{"0123456789", 8, "01234…"},
		{"ééééé", 8, "éé…"}, // never cuts a rune in two
		{"bad\xffutf8", 100, "bad utf8"},
		{"x", 0, "…"[:0] + "…"},
	}
	for _, tt := range tests {
		got := Clip(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if len(got) > max(tt.n, len("…")) {
			t.Errorf("Clip(%q, %d) = %q: %d bytes", tt.in, tt.n, got, len(got))
		}
	}
}
