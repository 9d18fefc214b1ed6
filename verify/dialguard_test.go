package verify

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
)

// fakeResolver answers LookupNetIP from a map; a host it does not know
// is not found.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	as, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return as, nil
}

func ips(ss ...string) []netip.Addr {
	as := make([]netip.Addr, len(ss))
	for i, s := range ss {
		as[i] = netip.MustParseAddr(s)
	}
	return as
}

// TestRefuseNonPublic: the Control hook refuses every non-public address
// (in IPv4, IPv6 and mapped forms) and lets public ones be connected to.
func TestRefuseNonPublic(t *testing.T) {
	t.Parallel()
	ctx := withDialGuard(t.Context(), "ghcr.io", false)
	for addr, want := range map[string]string{
		"169.254.169.254:80":           "refused: 169.254.169.254 is a link-local address, and the registry ghcr.io is public",
		"10.0.0.5:443":                 "refused: 10.0.0.5 is a private address, and the registry ghcr.io is public",
		"192.168.1.1:443":              "refused: 192.168.1.1 is a private address, and the registry ghcr.io is public",
		"127.0.0.1:80":                 "refused: 127.0.0.1 is a loopback address, and the registry ghcr.io is public",
		"[::1]:443":                    "refused: ::1 is a loopback address, and the registry ghcr.io is public",
		"[fe80::1]:443":                "refused: fe80::1 is a link-local address, and the registry ghcr.io is public",
		"[fd00:ec2::254]:443":          "refused: fd00:ec2::254 is a private address, and the registry ghcr.io is public",
		"[::ffff:10.0.0.1]:443":        "refused: 10.0.0.1 is a private address, and the registry ghcr.io is public",
		"[::ffff:169.254.169.254]:443": "refused: 169.254.169.254 is a link-local address, and the registry ghcr.io is public",
		"0.0.0.0:443":                  "refused: 0.0.0.0 is an unspecified address, and the registry ghcr.io is public",
		"100.100.100.200:80":           "refused: 100.100.100.200 is a shared (carrier-grade NAT) address, and the registry ghcr.io is public",
		"[64:ff9b::a00:1]:443":         "refused: 64:ff9b::a00:1 is a non-public address, and the registry ghcr.io is public",
		"93.184.216.34:443":            "",
		"[2606:2800:220:1::1]:443":     "",
		"[::ffff:93.184.216.34]:443":   "",
	} {
		err := refuseNonPublic(ctx, "tcp", addr, nil)
		switch {
		case want == "" && err != nil:
			t.Errorf("refuseNonPublic(%s) = %v, want nil", addr, err)
		case want != "" && (!errors.Is(err, errDialRefused) || err.Error() != want):
			t.Errorf("refuseNonPublic(%s) = %v, want %q", addr, err, want)
		}
	}
}

// TestGuardedDialer: with a public registry's guard, a name resolving to a
// loopback address and a loopback literal are refused before any byte is
// sent; the registry's own host, a private registry's redirects and a dial
// without a guard are not checked.
func TestGuardedDialer(t *testing.T) {
	t.Parallel()
	port, hits := loopbackServer(t)
	d := newGuardedDialer()
	for name, tc := range map[string]struct {
		ctx     context.Context
		addr    string
		refused bool
	}{
		"a name resolving to loopback":  {withDialGuard(t.Context(), "ghcr.io", false), "localhost:" + port, true},
		"a loopback literal":            {withDialGuard(t.Context(), "ghcr.io", false), "127.0.0.1:" + port, true},
		"the registry's own host":       {withDialGuard(t.Context(), "LocalHost.:5000", false), "localhost:" + port, false},
		"a private registry's redirect": {withDialGuard(t.Context(), "registry.internal", true), "localhost:" + port, false},
		"no guard":                      {t.Context(), "127.0.0.1:" + port, false},
	} {
		c, err := d.DialContext(tc.ctx, "tcp", tc.addr)
		switch {
		case tc.refused && !errors.Is(err, errDialRefused):
			t.Errorf("%s: DialContext(%s) = %v, want a refusal", name, tc.addr, err)
		case !tc.refused && err != nil:
			t.Errorf("%s: DialContext(%s) = %v, want a connection", name, tc.addr, err)
		}
		if c != nil {
			c.Close()
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server had %d requests, want 0 (dials only)", n)
	}
}

func TestOriginIsPrivate(t *testing.T) {
	t.Parallel()
	r := fakeResolver{
		"registry.internal": ips("10.0.0.5", "fd00::5"),
		"split.example":     ips("10.0.0.5", "93.184.216.34"),
		"ghcr.io":           ips("140.82.121.34"),
		"empty.example":     {},
	}
	tests := map[string]bool{
		"localhost":              true,
		"LOCALHOST:5000":         true,
		"127.0.0.1:5000":         true,
		"[::1]:5000":             true,
		"10.0.0.5":               true,
		"0x7f000001":             true,
		"169.254.169.254":        true,
		"[fe80::1%eth0]:5000":    true,
		"registry.internal:5000": true,
		"ghcr.io":                false,
		"split.example":          false, // one public address
		"nowhere.example":        false, // does not resolve
		"empty.example":          false,
		"93.184.216.34:443":      false,
		"[2606:4700::1111]":      false,
		"":                       false,
	}
	for host, want := range tests {
		if got := originIsPrivate(t.Context(), r, host); got != want {
			t.Errorf("originIsPrivate(%q) = %t, want %t", host, got, want)
		}
	}
}

// loopbackServer is an HTTP server on 127.0.0.1 that counts its requests.
func loopbackServer(t *testing.T) (port string, hits *atomic.Int32) {
	t.Helper()
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "secret")
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port(), hits
}

func get(ctx context.Context, c *http.Client, raw string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestGuardedTransport_endToEnd sends real requests through a guarded
// transport to a loopback server a name resolves to: the guard in the
// request's context reaches the dial.
func TestGuardedTransport_endToEnd(t *testing.T) {
	t.Parallel()
	port, hits := loopbackServer(t)
	tr := newGuardedTransport(&http.Transport{})
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	target := "http://localhost:" + port + "/"

	_, err := get(withDialGuard(t.Context(), "registry.example", false), c, target)
	if !errors.Is(err, errDialRefused) || !strings.Contains(err.Error(), "is a loopback address, and the registry registry.example is public") {
		t.Fatalf("GET %s for a public registry = %v, want a refusal", target, err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server had %d requests after the refusal, want 0", n)
	}
	body, err := get(withDialGuard(t.Context(), "registry.example", true), c, target)
	if err != nil || body != "secret" {
		t.Errorf("GET %s for a private registry = %q, %v, want the server's answer", target, body, err)
	}
}

// TestGuardedRoundTripper_keepsPoolsApart checks that a connection dialed
// unchecked (for a private registry, or with no guard) is not reused by a
// request the guard checks.
func TestGuardedRoundTripper_keepsPoolsApart(t *testing.T) {
	t.Parallel()
	port, hits := loopbackServer(t)
	rt := newGuardedRoundTripper(&http.Transport{})
	t.Cleanup(rt.CloseIdleConnections)
	c := &http.Client{Transport: rt}
	target := "http://localhost:" + port + "/"

	// A keep-alive connection to localhost, idle in the pool.
	if _, err := get(withDialGuard(t.Context(), "registry.internal", true), c, target); err != nil {
		t.Fatalf("GET %s for a private registry = %v", target, err)
	}
	_, err := get(withDialGuard(t.Context(), "registry.example", false), c, target)
	if !errors.Is(err, errDialRefused) {
		t.Errorf("GET %s for a public registry after one for a private registry = %v, want a refusal", target, err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the server had %d requests, want 1", n)
	}
}

// TestGuardedTransport_proxy checks that the connection to a proxy is not
// checked (it is the operator's) and that a request's host is still refused
// if it resolves here to a non-public address.
func TestGuardedTransport_proxy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var proxied []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		proxied = append(proxied, req.URL.Host)
		mu.Unlock()
		_, _ = io.WriteString(w, "via proxy")
	}))
	t.Cleanup(proxy.Close)
	proxyURL, err := url.Parse(proxy.URL) // a loopback literal
	if err != nil {
		t.Fatal(err)
	}
	tr := newGuardedTransport(&http.Transport{Proxy: http.ProxyURL(proxyURL)})
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	ctx := withDialGuard(t.Context(), "registry.example", false)

	for _, host := range []string{"registry.example", "unresolvable.invalid"} {
		if body, err := get(ctx, c, "http://"+host+"/"); err != nil || body != "via proxy" {
			t.Errorf("GET http://%s/ through the proxy = %q, %v, want the proxy's answer", host, body, err)
		}
	}
	for _, host := range []string{"localhost", "169.254.169.254"} {
		if _, err := get(ctx, c, "http://"+host+"/"); !errors.Is(err, errDialRefused) || !strings.Contains(err.Error(), "proxying to "+host) {
			t.Errorf("GET http://%s/ through the proxy = %v, want a refusal", host, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"registry.example", "unresolvable.invalid"}; !slices.Equal(proxied, want) {
		t.Errorf("the proxy saw %q, want %q", proxied, want)
	}
}

// guardRecorder records the dial guard of every request it passes on.
type guardRecorder struct {
	inner http.RoundTripper
	mu    sync.Mutex
	seen  []dialGuard
	none  int
}

func (g *guardRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	if dg, ok := dialGuardFrom(req.Context()); ok {
		g.seen = append(g.seen, dg)
	} else {
		g.none++
	}
	g.mu.Unlock()
	return g.inner.RoundTrip(req)
}

// TestRegistry_requestsCarryTheDialGuard: every request a Registry sends
// (the ping, the resolve, every place, manifest and blob) carries the
// guard of its registry, so that a redirect or a token realm is vetted at
// dial time; and the default transport is the guarded one.
func TestRegistry_requestsCarryTheDialGuard(t *testing.T) {
	t.Parallel()
	if h, err := NewHosts(); err != nil {
		t.Fatal(err)
	} else if _, ok := h.transport.(*guardedTransport); !ok {
		t.Errorf("NewHosts() transport is a %T, want the guarded transport", h.transport)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	rec := &guardRecorder{inner: http.DefaultTransport.(*http.Transport).Clone()}
	r, err := NewRegistry(WithKeychain(authn.NewMultiKeychain()), WithTransport(rec))
	if err != nil {
		t.Fatal(err)
	}
	r.Discover(t.Context(), Subject{Repository: host + "/app", Digest: "sha256:" + strings.Repeat("a", 64)})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.none != 0 || len(rec.seen) < 5 {
		t.Fatalf("%d requests carried a guard and %d none; want every request guarded (a ping and four places at least)", len(rec.seen), rec.none)
	}
	for _, g := range rec.seen {
		if g.origin != "127.0.0.1" || !g.originPrivate {
			t.Errorf("guard = %+v, want origin 127.0.0.1, private", g)
		}
	}
}
