package gate

import "strings"

// dockerHub is Docker Hub's registry host as a fully-qualified reference
// spells it (go-containerregistry's name.DefaultRegistry).
const dockerHub = "index.docker.io"

// dockerHubAliases are the other host names that reach Docker Hub's
// registry: the short name runtimes expand, and the API host the Hub
// redirects to.
var dockerHubAliases = []string{"docker.io", "registry-1.docker.io"}

// CanonicalHost returns the one spelling of a registry host that globs,
// cache keys, credentials and reports see: lower case ("GHCR.IO" is
// "ghcr.io"), without the default HTTPS port ("ghcr.io:443" is "ghcr.io"),
// and with Docker Hub's aliases folded into "index.docker.io". DNS names
// are case-insensitive and registries are reached over HTTPS on 443 unless
// a port says otherwise, so every spelling names the same registry; only
// one of them could be matched by a glob.
//
// Other ports are kept: "registry:5000" and "registry" are different
// registries, and ":80" is only the default of plain HTTP.
func CanonicalHost(host string) string {
	h := strings.ToLower(host)
	if name, ok := strings.CutSuffix(h, ":443"); ok && isHostName(name) {
		h = name
	}
	for _, alias := range dockerHubAliases {
		if h == alias {
			return dockerHub
		}
	}
	return h
}

// CanonicalReference rewrites the registry host of an image reference as
// written ("GHCR.IO:443/acme/app:1") to its CanonicalHost
// ("ghcr.io/acme/app:1"), leaving the rest as it is. A reference whose
// first path segment is not a host (no "." or ":" and not "localhost", as
// container runtimes decide) names a Docker Hub repository and is returned
// unchanged, as is one with no "/" at all.
//
// A single-segment repository on a Docker Hub alias ("docker.io/nginx")
// becomes "index.docker.io/nginx", which go-containerregistry, like
// containerd, reads as "index.docker.io/library/nginx".
func CanonicalReference(ref string) string {
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || !looksLikeHost(host) {
		return ref
	}
	canonical := CanonicalHost(host)
	if canonical == host {
		return ref
	}
	return canonical + "/" + rest
}

// isHostName says whether a host without its port still names a registry
// host in a reference: a bracketed IPv6 address, "localhost", or a name
// with a "." and no other port. ("registry:443" without its port would
// read as a Docker Hub namespace, and "ghcr.io:443:443" is no host at
// all: both keep their spelling.)
func isHostName(name string) bool {
	if strings.HasPrefix(name, "[") {
		return strings.HasSuffix(name, "]")
	}
	return !strings.Contains(name, ":") && (strings.Contains(name, ".") || name == "localhost")
}

// looksLikeHost reports whether the first segment of a reference names a
// registry host rather than a Docker Hub namespace, by the rule Docker and
// containerd apply: it holds a "." or a ":", or is "localhost". The
// comparison with "localhost" ignores case, as DNS does.
func looksLikeHost(segment string) bool {
	return strings.ContainsAny(segment, ".:") || strings.EqualFold(segment, "localhost")
}
