package gate

import (
	"errors"
	"testing"
)

const (
	digestA = "sha256:5504f2a95018e3d8a52d80d9e1a128c6ea337581808ff9fe96f5628ce2336350"
	digestB = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
)

// TestGlobMatch matches references against globs that compile; a glob that
// does not is a failure here (invalid globs are TestCompileGlobErrors').
func TestGlobMatch(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		glob string
		ref  string
		want bool
	}{
		// policy-controller's own cases (pkg/apis/glob/glob_test.go), with
		// the image as go-containerregistry normalises it.
		"library image, exact tag":                     {"index.docker.io/library/foo:latest", "index.docker.io/library/foo:latest", true},
		"library image, any tag":                       {"index.docker.io/library/foo:*", "index.docker.io/library/foo:latest", true},
		"library image, star repository":               {"index.docker.io/library/*", "index.docker.io/library/foo:latest", true},
		"library image, star then tag":                 {"index.docker.io/library/*:latest", "index.docker.io/library/foo:latest", true},
		"library image, two stars":                     {"index.docker.io/*/*", "index.docker.io/library/foo:latest", true},
		"library image, registry doublestar":           {"index.docker.io/**", "index.docker.io/library/foo:latest", true},
		"doublestar inside the host":                   {"index.docker.**", "index.docker.io/library/foo:latest", true},
		"doublestar after a host prefix":               {"inde**", "index.docker.io/library/foo:latest", true},
		"doublestar alone":                             {"**", "index.docker.io/library/foo:latest", true},
		"user image, two stars":                        {"index.docker.io/*/*", "index.docker.io/myuser/myapp:latest", true},
		"user image, star repository":                  {"index.docker.io/myuser/*", "index.docker.io/myuser/myapp:latest", true},
		"two stars need two segments":                  {"ghcr.io/*/*", "ghcr.io/foo:latest", false},
		"two stars, two segments":                      {"ghcr.io/*/*", "ghcr.io/foo/bar:latest", true},
		"doublestar, one segment":                      {"ghcr.io/**", "ghcr.io/foo:latest", true},
		"star host, doublestar path":                   {"*/**", "ghcr.io/foo:latest", true},
		"star after repository":                        {"ghcr.io/foo*", "ghcr.io/foo:latest", true},
		"doublestar after repository":                  {"ghcr.io/foo**", "ghcr.io/foo:latest", true},
		"glob starts at the beginning":                 {"ghcr.io/foo:*", "prefix-ghcr.io/foo:latest", false},
		"glob ends at the end":                         {"ghcr.io/foo:latest", "ghcr.io/foo:latest-suffix", false},
		"star after a repository matches longer names": {"ghcr.io/foo*", "ghcr.io/foo-suffix:latest", true},
		"exact digest":                                 {"ghcr.io/foo@" + digestA, "ghcr.io/foo@" + digestA, true},
		"other digest":                                 {"ghcr.io/foo@" + digestA, "ghcr.io/foo@" + digestB, false},

		// "*" and "/".
		"star crosses the tag separator":           {"ghcr.io/acme/*", "ghcr.io/acme/app:1.0", true},
		"star crosses the digest separator":        {"ghcr.io/acme/*", "ghcr.io/acme/app@" + digestA, true},
		"star crosses tag and digest":              {"ghcr.io/acme/*", "ghcr.io/acme/app:1.0@" + digestA, true},
		"star stays within a segment":              {"ghcr.io/acme/*", "ghcr.io/acme/team/app:1.0", false},
		"star matches an empty segment remainder":  {"ghcr.io/acme/app*", "ghcr.io/acme/app:1.0", true},
		"star in the middle of a segment":          {"ghcr.io/acme/app-*:1.0", "ghcr.io/acme/app-web:1.0", true},
		"star in the middle does not cross slash":  {"ghcr.io/acme/app-*:1.0", "ghcr.io/acme/app-x/web:1.0", false},
		"star for the registry host":               {"*/acme/app:*", "ghcr.io/acme/app:1.0", true},
		"star for the host does not cross slash":   {"*/app:*", "ghcr.io/acme/app:1.0", false},
		"tag wildcard":                             {"ghcr.io/acme/app:1.*", "ghcr.io/acme/app:1.2", true},
		"tag wildcard, other major":                {"ghcr.io/acme/app:1.*", "ghcr.io/acme/app:2.0", false},
		"tag wildcard, literal dot":                {"ghcr.io/acme/app:1.*", "ghcr.io/acme/app:10", false},
		"star for the tag does not match a digest": {"ghcr.io/acme/app:*", "ghcr.io/acme/app@" + digestA, false},
		"digest wildcard":                          {"ghcr.io/acme/app@*", "ghcr.io/acme/app@" + digestA, true},
		"digest wildcard, tag only":                {"ghcr.io/acme/app@*", "ghcr.io/acme/app:1.0", false},
		"digest algorithm wildcard":                {"ghcr.io/acme/app@sha256:*", "ghcr.io/acme/app@" + digestA, true},

		// "**": start, middle and end.
		"doublestar at the start":                 {"**/app:*", "ghcr.io/acme/team/app:1.0", true},
		"doublestar at the start, other name":     {"**/app:*", "ghcr.io/acme/team/web:1.0", false},
		"doublestar at the start, partial name":   {"**app:*", "ghcr.io/acme/webapp:1.0", true},
		"doublestar in the middle":                {"ghcr.io/**/app:*", "ghcr.io/acme/team/app:1.0", true},
		"doublestar in the middle, one segment":   {"ghcr.io/**/app:*", "ghcr.io/acme/app:1.0", true},
		"doublestar in the middle needs slashes":  {"ghcr.io/**/app:*", "ghcr.io/app:1.0", false},
		"doublestar in the middle, other host":    {"ghcr.io/**/app:*", "quay.io/acme/app:1.0", false},
		"doublestar at the end":                   {"ghcr.io/acme/**", "ghcr.io/acme/team/app:1.0@" + digestA, true},
		"doublestar at the end, sibling org":      {"ghcr.io/acme/**", "ghcr.io/acme-evil/app:1.0", false},
		"doublestar at the end, host prefix":      {"ghcr.io/**", "ghcr.io.evil.example/acme/app:1.0", false},
		"doublestar then star":                    {"ghcr.io/**/*:1.0", "ghcr.io/acme/team/app:1.0", true},
		"three stars are doublestar then star":    {"ghcr.io/***", "ghcr.io/acme/team/app:1.0", true},
		"doublestar crosses the tag and digest":   {"ghcr.io/acme/app**", "ghcr.io/acme/app:1.0@" + digestA, true},
		"doublestar in a tag":                     {"ghcr.io/acme/app:**", "ghcr.io/acme/app:1.0", true},
		"doublestar in a tag, digest only":        {"ghcr.io/acme/app:**", "ghcr.io/acme/app@" + digestA, false},
		"doublestar in a tag, tag and digest":     {"ghcr.io/acme/app:**", "ghcr.io/acme/app:1.0@" + digestA, true},
		"doublestar in the host":                  {"**.gcr.io/**", "europe-docker.pkg.dev.gcr.io/p/app:1", true},
		"doublestar in the host, other registry":  {"**.gcr.io/**", "ghcr.io/acme/app:1.0", false},
		"doublestar in the host is not a suffix":  {"**.acme.example/**", "evilacme.example/app:1", false},
		"doublestar in the host, real subdomains": {"**.acme.example/**", "eu.registry.acme.example/app:1", true},

		// Regular-expression metacharacters are literal.
		"dot is literal in the host":        {"ghcr.io/**", "ghcrxio.example/acme/app:1.0", false},
		"dot is literal in a tag":           {"ghcr.io/acme/app:1.2", "ghcr.io/acme/app:1x2", false},
		"dot matches a dot":                 {"ghcr.io/acme/app:1.2", "ghcr.io/acme/app:1.2", true},
		"hyphen and underscore are plain":   {"ghcr.io/a-b_c/app:*", "ghcr.io/a-b_c/app:1", true},
		"upper-case letters are plain":      {"ghcr.io/acme/app:V1*", "ghcr.io/acme/app:V1.0", true},
		"upper-case letters are not folded": {"ghcr.io/acme/app:V1*", "ghcr.io/acme/app:v1.0", false},

		// Ports.
		"port in the host":                     {"localhost:5000/acme/app:*", "localhost:5000/acme/app:1.0", true},
		"port in the host, other port":         {"localhost:5000/acme/app:*", "localhost:5001/acme/app:1.0", false},
		"port wildcard":                        {"localhost:*/acme/app:*", "localhost:5001/acme/app:1.0", true},
		"port wildcard needs the colon":        {"localhost:*/acme/app:*", "localhost/acme/app:1.0", false},
		"star host crosses the port colon":     {"*/acme/app:*", "registry.example:5000/acme/app:1.0", true},
		"host without port does not match":     {"registry.example/**", "registry.example:5000/acme/app:1.0", false},
		"star host, port, star repository":     {"registry.example:5000/*", "registry.example:5000/app:1.0", true},
		"port is not taken for a tag":          {"localhost:5000/app:latest", "localhost:5000/app", true},
		"localhost without a port":             {"localhost/**", "localhost/app:1.0", true},
		"ip address and port":                  {"127.0.0.1:5000/**", "127.0.0.1:5000/acme/app@" + digestA, true},
		"ip address, dots are literal":         {"127.0.0.1:5000/**", "127x0x0x1:5000/acme/app:1.0", false},
		"port, tag and digest":                 {"localhost:5000/acme/app:1.0", "localhost:5000/acme/app:1.0@" + digestA, true},
		"port, digest, tag glob does not pick": {"localhost:5000/acme/app:*", "localhost:5000/acme/app@" + digestA, false},

		// ":latest" and digests.
		"no tag reads as latest":                  {"ghcr.io/acme/app:latest", "ghcr.io/acme/app", true},
		"no tag, star tag":                        {"ghcr.io/acme/app:*", "ghcr.io/acme/app", true},
		"no tag, other tag":                       {"ghcr.io/acme/app:1.0", "ghcr.io/acme/app", false},
		"latest is not added to a digest":         {"ghcr.io/acme/app:latest", "ghcr.io/acme/app@" + digestA, false},
		"tag and digest, digest spelling":         {"ghcr.io/acme/app@" + digestA, "ghcr.io/acme/app:1.2@" + digestA, true},
		"tag and digest, full spelling":           {"ghcr.io/acme/app:1.2@" + digestA, "ghcr.io/acme/app:1.2@" + digestA, true},
		"tag and digest, tag spelling":            {"ghcr.io/acme/app:1.2", "ghcr.io/acme/app:1.2@" + digestA, true},
		"tag and digest, other tag":               {"ghcr.io/acme/app:1.3", "ghcr.io/acme/app:1.2@" + digestA, false},
		"tag and digest, other digest":            {"ghcr.io/acme/app@" + digestB, "ghcr.io/acme/app:1.2@" + digestA, false},
		"tag and digest, tag glob and digest":     {"ghcr.io/acme/app:1.*@sha256:*", "ghcr.io/acme/app:1.2@" + digestA, true},
		"tag and digest, star crosses both":       {"ghcr.io/acme/app*", "ghcr.io/acme/app:1.2@" + digestA, true},
		"tag and digest, repository must match":   {"ghcr.io/acme/web:1.2", "ghcr.io/acme/app:1.2@" + digestA, false},
		"tag and digest, digest glob, other repo": {"ghcr.io/acme/web@*", "ghcr.io/acme/app:1.2@" + digestA, false},

		// Docker Hub short forms.
		"star is the library":                 {"*", "index.docker.io/library/nginx:latest", true},
		"star is only the library":            {"*", "index.docker.io/acme/app:latest", false},
		"star is not every registry":          {"*", "ghcr.io/nginx:latest", false},
		"star slash star is Docker Hub":       {"*/*", "index.docker.io/acme/app:1.0", true},
		"star slash star is only Docker Hub":  {"*/*", "ghcr.io/acme:1.0", false},
		"star slash star, library image":      {"*/*", "index.docker.io/library/nginx:latest", true},
		"long forms are not rewritten":        {"*/*/*", "ghcr.io/acme/app:1.0", true},
		"star slash doublestar is everything": {"*/**", "ghcr.io/acme/app:1.0", true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, err := CompileGlob(tt.glob)
			if err != nil {
				t.Fatalf("CompileGlob(%q): %v", tt.glob, err)
			}
			if got := g.Match(tt.ref); got != tt.want {
				t.Errorf("CompileGlob(%q).Match(%q) = %t, want %t", tt.glob, tt.ref, got, tt.want)
			}
		})
	}
}

func TestCompileGlobErrors(t *testing.T) {
	t.Parallel()
	const allowed = `a glob is not a regular expression; it may hold letters, digits, "-_:/.@", "*" (within a path segment) and "**" (across segments)`
	tests := map[string]struct {
		glob string
		want string
	}{
		"empty":                               {"", `invalid glob "": must not be empty`},
		"plus":                                {"ghcr.io/acme/.+", `invalid glob "ghcr.io/acme/.+": "+" is not allowed: ` + allowed},
		"question mark":                       {"ghcr.io/acme/app:v?", `invalid glob "ghcr.io/acme/app:v?": "?" is not allowed: ` + allowed},
		"character class":                     {"[a-z]*", `invalid glob "[a-z]*": "[" is not allowed: ` + allowed},
		"group":                               {"ghcr.io/(acme|evil)/**", `invalid glob "ghcr.io/(acme|evil)/**": "(" is not allowed: ` + allowed},
		"anchor":                              {"^ghcr.io/**", `invalid glob "^ghcr.io/**": "^" is not allowed: ` + allowed},
		"dollar":                              {"ghcr.io/**$", `invalid glob "ghcr.io/**$": "$" is not allowed: ` + allowed},
		"backslash":                           {`ghcr\.io/**`, `invalid glob "ghcr\\.io/**": "\\" is not allowed: ` + allowed},
		"brace":                               {"ghcr.io/{a,b}/**", `invalid glob "ghcr.io/{a,b}/**": "{" is not allowed: ` + allowed},
		"space":                               {"ghcr.io/acme/ **", `invalid glob "ghcr.io/acme/ **": " " is not allowed: ` + allowed},
		"ipv6 brackets":                       {"[::1]:5000/**", `invalid glob "[::1]:5000/**": "[" is not allowed: ` + allowed},
		"non-ASCII":                           {"ghcr.io/äcme/**", `invalid glob "ghcr.io/äcme/**": "ä" is not allowed: ` + allowed},
		"short library name":                  {"nginx", `invalid glob "nginx": matches no image: "nginx" is not a registry host and images are matched by their fully-qualified name, as in "index.docker.io/library/nginx:*"`},
		"short library name with tag":         {"nginx:1.*", `invalid glob "nginx:1.*": matches no image: a fully-qualified reference has a "/" after the registry host, which only "/" or "**" can match`},
		"short user name":                     {"acme/app:*", `invalid glob "acme/app:*": matches no image: "acme" is not a registry host and images are matched by their fully-qualified name, as in "index.docker.io/acme/app:*"`},
		"short user name, no tag":             {"acme/app", `invalid glob "acme/app": matches no image: "acme" is not a registry host and images are matched by their fully-qualified name, as in "index.docker.io/acme/app:*"`},
		"docker.io":                           {"docker.io/library/nginx:*", `invalid glob "docker.io/library/nginx:*": matches no image: Docker Hub is index.docker.io in a fully-qualified reference, as in "index.docker.io/library/nginx:*"`},
		"docker hub API host":                 {"registry-1.docker.io/library/*", `invalid glob "registry-1.docker.io/library/*": matches no image: Docker Hub is index.docker.io in a fully-qualified reference, as in "index.docker.io/library/*"`},
		"upper-case host":                     {"GHCR.IO/acme/**", `invalid glob "GHCR.IO/acme/**": matches no image: registry hosts are matched as "ghcr.io" (lower case, no :443), as in "ghcr.io/acme/**"`},
		"upper case before a wildcard":        {"GHC**", `invalid glob "GHC**": matches no image: registry hosts are matched as "ghc**" (lower case, no :443), as in "ghc**"`},
		"upper-case host with a wildcard":     {"G*/**", `invalid glob "G*/**": matches no image: registry hosts are matched as "g*" (lower case, no :443), as in "g*/**"`},
		"default port":                        {"ghcr.io:443/acme/**", `invalid glob "ghcr.io:443/acme/**": matches no image: registry hosts are matched as "ghcr.io" (lower case, no :443), as in "ghcr.io/acme/**"`},
		"repository without tag or digest":    {"ghcr.io/acme/app", `invalid glob "ghcr.io/acme/app": matches no image: a reference always ends in a tag or a digest (":latest" if none is written); "ghcr.io/acme/app:*" matches any tag, "ghcr.io/acme/app@*" any digest`},
		"trailing slash":                      {"ghcr.io/acme/", `invalid glob "ghcr.io/acme/": matches no image: a reference always ends in a tag or a digest (":latest" if none is written); "ghcr.io/acme/:*" matches any tag, "ghcr.io/acme/@*" any digest`},
		"doublestar, then literal repository": {"ghcr.io/**/app", `invalid glob "ghcr.io/**/app": matches no image: a reference always ends in a tag or a digest (":latest" if none is written); "ghcr.io/**/app:*" matches any tag, "ghcr.io/**/app@*" any digest`},
		"host only":                           {"ghcr.io", `invalid glob "ghcr.io": matches no image: a fully-qualified reference has a "/" after the registry host, which only "/" or "**" can match`},
		"host and star":                       {"ghcr.io*", `invalid glob "ghcr.io*": matches no image: a fully-qualified reference has a "/" after the registry host, which only "/" or "**" can match`},
		"host and port":                       {"localhost:5000", `invalid glob "localhost:5000": matches no image: a fully-qualified reference has a "/" after the registry host, which only "/" or "**" can match`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, err := CompileGlob(tt.glob)
			if err == nil {
				t.Fatalf("CompileGlob(%q) = %q, want error %q", tt.glob, g, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("CompileGlob(%q) error:\n got %s\nwant %s", tt.glob, got, tt.want)
			}
			var ge *GlobError
			if !errors.As(err, &ge) || ge.Pattern != tt.glob {
				t.Errorf("CompileGlob(%q) error = %#v, want a *GlobError for the pattern", tt.glob, err)
			}
		})
	}
}

func TestGlobString(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"*", "*/*", "ghcr.io/acme/**", "index.docker.io/library/nginx:1.*"} {
		g, err := CompileGlob(p)
		if err != nil {
			t.Fatalf("CompileGlob(%q): %v", p, err)
		}
		if got := g.String(); got != p {
			t.Errorf("CompileGlob(%q).String() = %q, want the glob as written", p, got)
		}
	}
}
