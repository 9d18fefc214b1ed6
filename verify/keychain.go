package verify

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
)

// dockerHub is how go-containerregistry names Docker Hub's registry.
const dockerHub = "index.docker.io"

// KeychainFromDockerConfigs returns a keychain of the credentials in
// Kubernetes image pull secrets. Each config is the content of one
// Secret's key: .dockerconfigjson ({"auths": {"<registry>": {...}}}, type
// kubernetes.io/dockerconfigjson) or the legacy .dockercfg ({"<registry>":
// {...}}, type kubernetes.io/dockercfg); a config with neither "auths" nor
// registries, only a credential store or helpers, holds nothing usable
// (pregate runs no credential helper). An entry's credentials are its
// "auth" (base64 of user:password, padded or not; it overrides "username"
// and "password" when both are given, as in kubelet), "username" and
// "password", "identitytoken" or "registrytoken". An entry with none of them
// is ignored.
//
// A registry key is matched against an image's repository the way kubelet
// matches pull secrets, with the differences noted:
//
//   - The scheme, if any, is ignored ("https://ghcr.io" is "ghcr.io"), and a
//     path of "/v1/" or "/v2/" means the whole registry, as docker writes
//     Docker Hub's key "https://index.docker.io/v1/".
//   - The host matches exactly (without regard to case), or as a glob, one
//     dot-separated label at a time: "*.example.com" matches
//     "eu.example.com", not "example.com" nor "a.eu.example.com". A port
//     must be the same on both sides: "registry:5000" does not match
//     "registry", nor the other way round.
//   - "docker.io", "index.docker.io" and "registry-1.docker.io" all mean
//     Docker Hub, however the image names it ("nginx", "docker.io/nginx").
//   - A key with a path covers the repositories under that path, by whole
//     segments: "registry.example/team" covers "registry.example/team" and
//     "registry.example/team/app", not "registry.example/team-b/app"
//     (kubelet compares a plain string prefix, and would).
//   - When several keys match, the one with the longest path wins, then an
//     exact host over a glob, then the earlier config (pass them in the
//     order of imagePullSecrets), then the key that sorts first. Kubelet
//     tries every matching credential in turn until a pull succeeds; a
//     keychain returns one, so it returns the most specific.
//
// Where nothing matches, the keychain answers authn.Anonymous, so that a
// keychain after it in authn.NewMultiKeychain is asked next: a controller
// combines the Secrets of a Gate with its own credentials as
// authn.NewMultiKeychain(pullSecrets, authn.DefaultKeychain).
//
// Errors name the config (by its position, from 1) and the registry key,
// never credentials or the content around them. The keychain prints as a
// summary: printing it with %v or %+v shows no credentials either.
func KeychainFromDockerConfigs(configs ...[]byte) (authn.Keychain, error) {
	kc := &pullSecretKeychain{}
	var errs []error
	for i, b := range configs {
		entries, err := parseDockerConfig(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("docker config %d: %w", i+1, err))
			continue
		}
		for key, raw := range entries {
			e, ok, err := parseCredential(key, raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("docker config %d: %w", i+1, err))
				continue
			}
			if ok {
				e.config = i
				kc.entries = append(kc.entries, e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(kc.entries, func(a, b credential) int {
		return cmp.Or(
			-cmp.Compare(len(a.path), len(b.path)),
			cmp.Compare(boolRank(a.glob), boolRank(b.glob)),
			cmp.Compare(a.config, b.config),
			cmp.Compare(a.key, b.key),
		)
	})
	return kc, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parseDockerConfig returns a config's entries by registry key, in either
// format. Its errors quote nothing of the content.
func parseDockerConfig(b []byte) (map[string]json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		var serr *json.SyntaxError
		if errors.As(err, &serr) {
			return nil, fmt.Errorf("not valid JSON (at byte %d)", serr.Offset)
		}
		return nil, errors.New("not a JSON object")
	}
	raw, ok := top["auths"]
	if !ok {
		_, store := top["credsStore"]
		_, helpers := top["credHelpers"]
		if store || helpers {
			return nil, nil // a docker config.json without credentials of its own
		}
		return top, nil // .dockercfg: the entries themselves
	}
	var auths map[string]json.RawMessage
	if err := json.Unmarshal(raw, &auths); err != nil {
		return nil, errors.New(`"auths" is not a JSON object`)
	}
	return auths, nil
}

// credential is one usable entry of a docker config.
type credential struct {
	key    string // as written, for ordering and messages
	host   string // lower-case host name, perhaps with glob labels
	port   string // "" when the key names none
	path   string // "" for the whole registry, else "/team" (no trailing slash)
	glob   bool
	config int
	auth   authn.AuthConfig
}

// parseCredential reads the entry of registry key. ok is false for an
// entry without credentials.
func parseCredential(key string, raw json.RawMessage) (credential, bool, error) {
	c := credential{key: key}
	host, p, err := parseRegistryKey(key)
	if err != nil {
		return credential{}, false, err
	}
	c.path = p
	if h, port, err := net.SplitHostPort(host); err == nil {
		c.host, c.port = h, port
	} else {
		c.host = host
	}
	c.host = canonicalHost(c.host)
	c.glob = strings.ContainsAny(c.host, "*?[")
	if c.glob {
		for _, label := range strings.Split(c.host, ".") {
			if _, err := path.Match(label, ""); err != nil {
				return credential{}, false, fmt.Errorf("registry %q: malformed host pattern", host)
			}
		}
	}

	var entry types.AuthConfig
	if err := json.Unmarshal(raw, &entry); err != nil {
		return credential{}, false, fmt.Errorf("registry %q: the entry is not an object of strings", host)
	}
	c.auth = authn.AuthConfig{
		Username:      entry.Username,
		Password:      entry.Password,
		IdentityToken: entry.IdentityToken,
		RegistryToken: entry.RegistryToken,
	}
	if entry.Auth != "" {
		user, pass, err := decodeAuth(entry.Auth)
		if err != nil {
			return credential{}, false, fmt.Errorf("registry %q: %w", host, err)
		}
		c.auth.Username, c.auth.Password = user, pass
	}
	if c.auth == (authn.AuthConfig{}) {
		return credential{}, false, nil
	}
	return c, true, nil
}

// parseRegistryKey splits a docker config key ("ghcr.io",
// "https://index.docker.io/v1/", "registry.example:5000/team") into its
// host (with port) and path. Its errors quote the host alone, never what
// the key holds besides (a key may carry user info).
func parseRegistryKey(key string) (host, p string, err error) {
	rest := strings.TrimSpace(key)
	lower := strings.ToLower(rest)
	for _, scheme := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, scheme) {
			rest = rest[len(scheme):]
			break
		}
	}
	u, perr := url.Parse("https://" + rest)
	switch {
	case perr != nil || u.Host == "":
		return "", "", errors.New("a registry key is not a registry host")
	case u.User != nil:
		return "", "", fmt.Errorf("registry %q: the key holds user info", u.Host)
	case u.RawQuery != "" || u.Fragment != "":
		return "", "", fmt.Errorf("registry %q: the key holds a query or fragment", u.Host)
	}
	p = u.Path
	if strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/v2/") || p == "/v1" || p == "/v2" {
		p = p[3:]
	}
	// Repository names are lower-case (OCI distribution spec), and so are
	// go-containerregistry's registry names.
	return strings.ToLower(u.Host), strings.ToLower(strings.TrimRight(p, "/")), nil
}

// canonicalHost names Docker Hub as go-containerregistry does.
func canonicalHost(host string) string {
	switch host {
	case "docker.io", "registry-1.docker.io":
		return dockerHub
	}
	return host
}

// decodeAuth decodes an "auth" value: base64 (padded or not) of
// user:password. Its errors quote nothing of the value.
func decodeAuth(s string) (user, pass string, err error) {
	s = strings.TrimSpace(s)
	enc := base64.RawStdEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.StdEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return "", "", errors.New(`"auth" is not base64`)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", errors.New(`"auth" is not base64 of user:password`)
	}
	return user, strings.Trim(pass, "\x00"), nil
}

// pullSecretKeychain is KeychainFromDockerConfigs' keychain: its
// credentials, most specific first.
type pullSecretKeychain struct {
	entries []credential
}

// Resolve returns the credentials of the first key that matches target's
// registry and repository, or authn.Anonymous.
func (k *pullSecretKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	reg := strings.ToLower(target.RegistryStr())
	repoPath := strings.TrimPrefix(strings.ToLower(target.String()), reg) // "/team/app", or "" for a registry
	host, port := reg, ""
	if h, p, err := net.SplitHostPort(reg); err == nil {
		host, port = h, p
	}
	host = canonicalHost(host)
	for _, c := range k.entries {
		if c.matches(host, port, repoPath) {
			return authn.FromConfig(c.auth), nil
		}
	}
	return authn.Anonymous, nil
}

func (c *credential) matches(host, port, repoPath string) bool {
	if c.port != port {
		return false
	}
	if c.path != "" && repoPath != c.path && !strings.HasPrefix(repoPath, c.path+"/") {
		return false
	}
	if !c.glob {
		return c.host == host
	}
	want, got := strings.Split(c.host, "."), strings.Split(host, ".")
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if ok, _ := path.Match(want[i], got[i]); !ok {
			return false
		}
	}
	return true
}

// String summarises the keychain without its credentials.
func (k *pullSecretKeychain) String() string {
	keys := make([]string, len(k.entries))
	for i, c := range k.entries {
		keys[i] = c.host + c.path
		if c.port != "" {
			keys[i] = net.JoinHostPort(c.host, c.port) + c.path
		}
	}
	return fmt.Sprintf("pull secret keychain %v", keys)
}

// Format prints String for every verb, so that no verb (%+v, %#v, %s, %q)
// reaches the credentials.
func (k *pullSecretKeychain) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(k.String()))
}
