package gate

import (
	"fmt"
	"regexp"
	"strings"
)

// Glob is a compiled image glob, the `images[].glob` of a TrustPolicy. It
// has the semantics of Sigstore policy-controller's ClusterImagePolicy globs
// (pkg/apis/glob), so a policy moved between the two matches the same images.
type Glob struct {
	pattern string
	re      *regexp.Regexp
}

// GlobError is the error CompileGlob returns for a pattern it rejects.
type GlobError struct {
	// Pattern is the glob as written.
	Pattern string
	// Reason says what is wrong with it, without repeating it.
	Reason string
}

func (e *GlobError) Error() string {
	return fmt.Sprintf("invalid glob %q: %s", e.Pattern, e.Reason)
}

// CompileGlob compiles an image glob. The rules are policy-controller's:
//
//   - The glob matches a fully-qualified reference as a whole, registry host
//     included: "index.docker.io/library/nginx:*", never "nginx:*".
//   - "*" matches any run of characters other than "/", so it stays within
//     one path segment but does cross ":" and "@": "ghcr.io/acme/*" matches
//     "ghcr.io/acme/app:1.0" and "ghcr.io/acme/app@sha256:…", not
//     "ghcr.io/acme/team/app:1.0".
//   - "**" matches any run of characters, "/" included. It is not a "zero or
//     more directories" wildcard: "ghcr.io/**/app:*" needs a "/" on each side
//     of "**" and so does not match "ghcr.io/app:1.0".
//   - The tag or digest is part of the name that is matched (see Match), so
//     "ghcr.io/acme/app" matches nothing: write "ghcr.io/acme/app*",
//     "ghcr.io/acme/app:*" (any tag) or "ghcr.io/acme/app@*" (any digest).
//   - Every other character is literal: "." matches only a dot. A glob may
//     hold only letters, digits and "-_:/.@*"; anything else ("+", "?", "[",
//     "(", "\", ...) is an error, as in policy-controller, so that a regular
//     expression written as a glob fails loudly instead of matching nothing.
//   - The glob "*" means "index.docker.io/library/*" and "*/*" means
//     "index.docker.io/*/*", policy-controller's two short forms for Docker
//     Hub.
//
// pregate rejects, where policy-controller accepts, a glob that cannot match
// any fully-qualified reference, because policy-controller admits such a
// policy and then never applies it:
//
//   - one whose first path segment is literal and not a registry host (no "."
//     or ":" and not "localhost"), such as "nginx" or "acme/app:*";
//   - one that starts with "docker.io/" or "registry-1.docker.io/", which
//     are spelt "index.docker.io/" once normalised, or whose registry host
//     has upper-case letters or the port ":443" (see CanonicalHost: every
//     reference's host is lower case, without the default port);
//   - one whose last path segment is literal and holds no ":" or "@", such as
//     "ghcr.io/acme/app", since every reference ends in a tag or a digest;
//   - one with neither a "/" nor a "**", such as "ghcr.io*".
//
// The error is a *GlobError.
func CompileGlob(pattern string) (*Glob, error) {
	expanded, reason := expandGlob(pattern)
	if reason != "" {
		return nil, &GlobError{Pattern: pattern, Reason: reason}
	}
	var b strings.Builder
	b.WriteString("^")
	for rest := expanded; rest != ""; {
		switch {
		case strings.HasPrefix(rest, "**"):
			b.WriteString(".*")
			rest = rest[2:]
		case rest[0] == '*':
			b.WriteString("[^/]*")
			rest = rest[1:]
		default:
			n := strings.IndexByte(rest, '*')
			if n < 0 {
				n = len(rest)
			}
			b.WriteString(regexp.QuoteMeta(rest[:n]))
			rest = rest[n:]
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		// Unreachable: every literal is quoted.
		return nil, &GlobError{Pattern: pattern, Reason: err.Error()}
	}
	return &Glob{pattern: pattern, re: re}, nil
}

// expandGlob applies the Docker Hub short forms and checks pattern, returning
// the pattern to translate or why it is rejected.
func expandGlob(pattern string) (expanded, reason string) {
	switch pattern {
	case "":
		return "", "must not be empty"
	case "*":
		return "index.docker.io/library/*", ""
	case "*/*":
		return "index.docker.io/*/*", ""
	}
	for _, r := range pattern {
		if !isGlobChar(r) {
			return "", fmt.Sprintf("%q is not allowed: a glob is not a regular expression; "+
				`it may hold letters, digits, "-_:/.@", "*" (within a path segment) and "**" (across segments)`, string(r))
		}
	}
	host, _, hasPath := strings.Cut(pattern, "/")
	switch {
	case host == "docker.io" || host == "registry-1.docker.io":
		return "", fmt.Sprintf("matches no image: Docker Hub is index.docker.io in a fully-qualified reference, "+
			"as in %q", dockerHub+strings.TrimPrefix(pattern, host))
	case hasUpper(literalPrefix(pattern)) || looksLikeHost(host) && CanonicalHost(host) != host && !strings.Contains(host, "*"):
		// References are matched with their host spelt one way
		// (CanonicalHost), so another spelling could never match.
		return "", fmt.Sprintf("matches no image: registry hosts are matched as %q (lower case, no :443), "+
			"as in %q", CanonicalHost(host), CanonicalHost(host)+strings.TrimPrefix(pattern, host))
	case !strings.Contains(host, "*") && host != "localhost" && !strings.ContainsAny(host, ".:"):
		// A Docker Hub name written short: "nginx", "acme/app:*".
		qualified := "index.docker.io/" + pattern
		if !hasPath {
			qualified = "index.docker.io/library/" + pattern
		}
		if endsLiteral(qualified) {
			qualified += ":*"
		}
		return "", fmt.Sprintf("matches no image: %q is not a registry host and images are matched by "+
			"their fully-qualified name, as in %q", host, qualified)
	case !hasPath && !strings.Contains(pattern, "**"):
		return "", `matches no image: a fully-qualified reference has a "/" after the registry host, ` +
			`which only "/" or "**" can match`
	case endsLiteral(pattern):
		return "", fmt.Sprintf("matches no image: a reference always ends in a tag or a digest "+
			`(":latest" if none is written); %q matches any tag, %q any digest`, pattern+":*", pattern+"@*")
	}
	return pattern, ""
}

// literalPrefix is the start of pattern a reference's registry host (or
// Docker Hub namespace) must spell: up to the first "/" or "*".
func literalPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, "/*"); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

func hasUpper(s string) bool { return strings.ToLower(s) != s }

// endsLiteral reports whether the last path segment of pattern can match
// neither a tag nor a digest: it holds no "*", ":" or "@".
func endsLiteral(pattern string) bool {
	last := pattern[strings.LastIndexByte(pattern, '/')+1:]
	return !strings.ContainsAny(last, "*:@")
}

// isGlobChar reports whether r may appear in a glob: policy-controller's
// `^[a-zA-Z0-9-_:\/\*\.@]+$`.
func isGlobChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("-_:/*.@", r)
}

// Match reports whether the glob matches ref, a fully-qualified reference
// such as render.ParseReference produces ("index.docker.io/library/nginx:1.27",
// "ghcr.io/acme/app@sha256:…", "ghcr.io/acme/app:1.2@sha256:…").
//
// The glob must match the whole of one spelling of ref:
//
//   - With a tag only: "registry/repository:tag". A reference with neither tag
//     nor digest is read as ":latest", as policy-controller (through
//     go-containerregistry's Name()) does.
//   - With a digest only: "registry/repository@digest". No ":latest" is
//     implied, so "ghcr.io/acme/app:*" does not match a reference pinned by
//     digest alone; "ghcr.io/acme/app*" and "ghcr.io/acme/*" do.
//   - With both: "registry/repository@digest" (what policy-controller matches
//     at admission), "registry/repository:tag@digest" (its fallback on the
//     reference as written) and "registry/repository:tag". The last one is
//     pregate's: pinning an image to its digest must not take away a policy
//     that matched it by tag.
//
// ref's registry host is compared in its canonical spelling (see
// CanonicalHost), whichever spelling it comes in.
func (g *Glob) Match(ref string) bool {
	ref = CanonicalReference(ref)
	name, digest, pinned := strings.Cut(ref, "@")
	repo, tag := name, ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		repo, tag = name[:i], name[i+1:]
	}
	if !pinned {
		if tag == "" {
			tag = "latest"
		}
		return g.re.MatchString(repo + ":" + tag)
	}
	if g.re.MatchString(repo + "@" + digest) {
		return true
	}
	return tag != "" && (g.re.MatchString(ref) || g.re.MatchString(repo+":"+tag))
}

// String returns the glob as written.
func (g *Glob) String() string {
	return g.pattern
}
