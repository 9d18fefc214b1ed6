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
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
)

// fakeResolver answers LookupNetIP from answers: a host's successive
// answers, the last one repeated. A host it does not know is not found.
type fakeResolver struct {
	answers map[string][][]netip.Addr

	mu    sync.Mutex
	calls map[string]int
}

func resolving(answers map[string][][]netip.Addr) *fakeResolver {
	return &fakeResolver{answers: answers, calls: map[string]int{}}
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.calls[host]
	r.calls[host]++
	as, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range as[min(n, len(as)-1)] {
		if network == "ip" || (network == "ip4") == a.Unmap().Is4() {
			out = append(out, a)
		}
	}
	return out, nil
}

func (r *fakeResolver) lookups() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

// fakeDialer records the addresses dialed and connects to each but those in
// fail, with a net.Pipe.
type fakeDialer struct {
	fail map[string]bool

	mu     sync.Mutex
	dialed []string
}

func (f *fakeDialer) dial(_ context.Context, _, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.dialed = append(f.dialed, addr)
	f.mu.Unlock()
	if f.fail[addr] {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	c, peer := net.Pipe()
	peer.Close()
	return c, nil
}

func (f *fakeDialer) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dialed)
}

func ips(ss ...string) [][]netip.Addr {
	as := make([]netip.Addr, len(ss))
	for i, s := range ss {
		as[i] = netip.MustParseAddr(s)
	}
	return [][]netip.Addr{as}
}

func TestGuardedDialer_DialContext(t *testing.T) {
	t.Parallel()
	public := func(ctx context.Context) context.Context { return withDialGuard(ctx, "ghcr.io", false) }
	tests := map[string]struct {
		guard   func(context.Context) context.Context // nil: no guard
		addr    string
		answer  [][]netip.Addr // target.test's
		wantErr string         // the whole message if it has a " is public" end, else a part
		refused bool
		dialed  []string
		lookups int
	}{
		// Names resolving to non-public addresses.
		"metadata": {guard: public, addr: "target.test:443", answer: ips("169.254.169.254"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to 169.254.169.254, a link-local address, and the registry ghcr.io is public", lookups: 1},
		"RFC 1918 10/8": {guard: public, addr: "target.test:443", answer: ips("10.0.0.5"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to 10.0.0.5, a private address, and the registry ghcr.io is public", lookups: 1},
		"RFC 1918 192.168/16": {guard: public, addr: "target.test:443", answer: ips("192.168.1.1"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to 192.168.1.1, a private address, and the registry ghcr.io is public", lookups: 1},
		"loopback": {guard: public, addr: "target.test:80", answer: ips("127.0.0.1"), refused: true,
			wantErr: "dial target.test:80: refused: resolves to 127.0.0.1, a loopback address, and the registry ghcr.io is public", lookups: 1},
		"IPv6 loopback": {guard: public, addr: "target.test:443", answer: ips("::1"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to ::1, a loopback address, and the registry ghcr.io is public", lookups: 1},
		"IPv6 link-local": {guard: public, addr: "target.test:443", answer: ips("fe80::1"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to fe80::1, a link-local address, and the registry ghcr.io is public", lookups: 1},
		"IPv6 unique local (AWS IMDS)": {guard: public, addr: "target.test:443", answer: ips("fd00:ec2::254"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to fd00:ec2::254, a private address, and the registry ghcr.io is public", lookups: 1},
		"IPv4-mapped private": {guard: public, addr: "target.test:443", answer: ips("::ffff:10.0.0.1"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to ::ffff:10.0.0.1, a private address, and the registry ghcr.io is public", lookups: 1},
		"IPv4-mapped metadata": {guard: public, addr: "target.test:443", answer: ips("::ffff:169.254.169.254"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to ::ffff:169.254.169.254, a link-local address, and the registry ghcr.io is public", lookups: 1},
		"unspecified": {guard: public, addr: "target.test:443", answer: ips("0.0.0.0"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to 0.0.0.0, an unspecified address, and the registry ghcr.io is public", lookups: 1},
		"public then private": {guard: public, addr: "target.test:443", answer: ips("93.184.216.34", "10.0.0.5"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to 10.0.0.5, a private address, and the registry ghcr.io is public", lookups: 1},
		"private then public": {guard: public, addr: "target.test:443", answer: ips("192.168.1.1", "93.184.216.34"), refused: true,
			wantErr: "dial target.test:443: refused: resolves to 192.168.1.1, a private address, and the registry ghcr.io is public", lookups: 1},

		// IP literals, in each spelling isPrivateAddr knows: no lookup.
		"metadata literal": {guard: public, addr: "169.254.169.254:80", refused: true,
			wantErr: "dial 169.254.169.254:80: refused: 169.254.169.254 is a link-local address, and the registry ghcr.io is public"},
		"IPv6 loopback literal": {guard: public, addr: "[::1]:443", refused: true,
			wantErr: "dial [::1]:443: refused: ::1 is a loopback address, and the registry ghcr.io is public"},
		"zoned link-local literal": {guard: public, addr: "[fe80::1%eth0]:443", refused: true,
			wantErr: "dial [fe80::1%eth0]:443: refused: fe80::1%eth0 is a link-local address, and the registry ghcr.io is public"},
		"mapped metadata literal": {guard: public, addr: "[::ffff:169.254.169.254]:80", refused: true,
			wantErr: "dial [::ffff:169.254.169.254]:80: refused: ::ffff:169.254.169.254 is a link-local address, and the registry ghcr.io is public"},
		"short loopback literal": {guard: public, addr: "127.1:80", refused: true,
			wantErr: "dial 127.1:80: refused: 127.0.0.1 is a loopback address, and the registry ghcr.io is public"},
		"hex loopback literal": {guard: public, addr: "0x7f000001:80", refused: true,
			wantErr: "dial 0x7f000001:80: refused: 127.0.0.1 is a loopback address, and the registry ghcr.io is public"},
		"decimal private literal": {guard: public, addr: "167772161:80", refused: true,
			wantErr: "dial 167772161:80: refused: 10.0.0.1 is a private address, and the registry ghcr.io is public"},

		// Public addresses: the checked address is dialed, not the name.
		"public": {guard: public, addr: "target.test:443", answer: ips("93.184.216.34"),
			dialed: []string{"93.184.216.34:443"}, lookups: 1},
		"public IPv6": {guard: public, addr: "target.test:443", answer: ips("2606:2800:220:1:248:1893:25c8:1946"),
			dialed: []string{"[2606:2800:220:1:248:1893:25c8:1946]:443"}, lookups: 1},
		"public IPv4-mapped": {guard: public, addr: "target.test:443", answer: ips("::ffff:93.184.216.34"),
			dialed: []string{"93.184.216.34:443"}, lookups: 1},
		"public literal": {guard: public, addr: "93.184.216.34:443", dialed: []string{"93.184.216.34:443"}},

		// A private registry may send the client to private addresses.
		"private origin, private target": {guard: func(ctx context.Context) context.Context {
			return withDialGuard(ctx, "registry.internal:5000", true)
		}, addr: "target.test:443", answer: ips("10.0.0.5"), dialed: []string{"10.0.0.5:443"}, lookups: 1},
		"private origin, metadata literal": {guard: func(ctx context.Context) context.Context {
			return withDialGuard(ctx, "10.0.0.2:5000", true)
		}, addr: "169.254.169.254:80", dialed: []string{"169.254.169.254:80"}},

		// The registry's own host, and no guard: dialed as given.
		"same host": {guard: public, addr: "ghcr.io:443", dialed: []string{"ghcr.io:443"}},
		"same host, other case and a trailing dot": {guard: public, addr: "GHCR.io.:443", dialed: []string{"GHCR.io.:443"}},
		"same host, origin with port": {guard: func(ctx context.Context) context.Context {
			return withDialGuard(ctx, "ghcr.io:443", false)
		}, addr: "ghcr.io:80", dialed: []string{"ghcr.io:80"}},
		"same IPv6 host": {guard: func(ctx context.Context) context.Context {
			return withDialGuard(ctx, "[2001:db8::1]:5000", false)
		}, addr: "[2001:db8::1]:5000", dialed: []string{"[2001:db8::1]:5000"}},
		"no guard": {addr: "target.test:443", answer: ips("169.254.169.254"), dialed: []string{"target.test:443"}},

		// Resolution failures.
		"not found":    {guard: public, addr: "nowhere.test:443", wantErr: "dial nowhere.test:443: lookup nowhere.test", lookups: 1},
		"no addresses": {guard: public, addr: "target.test:443", answer: [][]netip.Addr{{}}, wantErr: "dial target.test:443: lookup target.test: no addresses", lookups: 1},
		"no port":      {guard: public, addr: "target.test", wantErr: "dial target.test: address target.test: missing port"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := resolving(map[string][][]netip.Addr{})
			if tc.answer != nil {
				r.answers["target.test"] = tc.answer
			}
			f := &fakeDialer{}
			d := &guardedDialer{resolver: r, dial: f.dial, timeout: time.Minute}
			ctx := t.Context()
			if tc.guard != nil {
				ctx = tc.guard(ctx)
			}
			c, err := d.DialContext(ctx, "tcp", tc.addr)
			if c != nil {
				c.Close()
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("DialContext(%q) = %v, want a connection", tc.addr, err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("DialContext(%q) connected, want error %q", tc.addr, tc.wantErr)
			case tc.wantErr != "" && strings.HasSuffix(tc.wantErr, " is public") && err.Error() != tc.wantErr:
				t.Errorf("DialContext(%q) = %q, want %q", tc.addr, err, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("DialContext(%q) = %q, want it to contain %q", tc.addr, err, tc.wantErr)
			}
			if got := errors.Is(err, errDialRefused); got != tc.refused {
				t.Errorf("errors.Is(%v, errDialRefused) = %t, want %t", err, got, tc.refused)
			}
			if got := f.got(); !slices.Equal(got, tc.dialed) {
				t.Errorf("dialed %q, want %q", got, tc.dialed)
			}
			if got := r.lookups(); got != tc.lookups {
				t.Errorf("%d lookups, want %d", got, tc.lookups)
			}
		})
	}
}

// TestGuardedDialer_rebinding checks that a dial resolves its host once and
// dials what it checked: a name that turns private on a second lookup does
// not get through.
func TestGuardedDialer_rebinding(t *testing.T) {
	t.Parallel()
	r := resolving(map[string][][]netip.Addr{
		"rebind.test": {{netip.MustParseAddr("93.184.216.34")}, {netip.MustParseAddr("169.254.169.254")}},
	})
	f := &fakeDialer{}
	d := &guardedDialer{resolver: r, dial: f.dial}
	ctx := withDialGuard(t.Context(), "ghcr.io", false)

	c, err := d.DialContext(ctx, "tcp", "rebind.test:443")
	if err != nil {
		t.Fatalf("first DialContext() = %v, want a connection", err)
	}
	c.Close()
	if got, want := f.got(), []string{"93.184.216.34:443"}; !slices.Equal(got, want) {
		t.Errorf("first dial dialed %q, want %q", got, want)
	}
	if got := r.lookups(); got != 1 {
		t.Errorf("first dial made %d lookups, want 1", got)
	}

	_, err = d.DialContext(ctx, "tcp", "rebind.test:443")
	if !errors.Is(err, errDialRefused) || !strings.Contains(err.Error(), "169.254.169.254") {
		t.Errorf("second DialContext() = %v, want a refusal naming 169.254.169.254", err)
	}
	if got := len(f.got()); got != 1 {
		t.Errorf("%d dials after the second DialContext, want still 1", got)
	}
	if got := r.lookups(); got != 2 {
		t.Errorf("two dials made %d lookups, want 2", got)
	}
}

// TestGuardedDialer_triesAddressesInTurn checks that the checked addresses
// are dialed in order until one connects, and that ctx is honoured.
func TestGuardedDialer_triesAddressesInTurn(t *testing.T) {
	t.Parallel()
	r := resolving(map[string][][]netip.Addr{
		"cdn.test": ips("2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34", "93.184.216.35"),
	})
	guard := withDialGuard(t.Context(), "ghcr.io", false)

	f := &fakeDialer{fail: map[string]bool{"[2606:2800:220:1:248:1893:25c8:1946]:443": true}}
	c, err := (&guardedDialer{resolver: r, dial: f.dial}).DialContext(guard, "tcp", "cdn.test:443")
	if err != nil {
		t.Fatalf("DialContext() = %v, want a connection", err)
	}
	c.Close()
	if got, want := f.got(), []string{"[2606:2800:220:1:248:1893:25c8:1946]:443", "93.184.216.34:443"}; !slices.Equal(got, want) {
		t.Errorf("dialed %q, want %q", got, want)
	}

	f = &fakeDialer{fail: map[string]bool{"[2606:2800:220:1:248:1893:25c8:1946]:443": true, "93.184.216.34:443": true, "93.184.216.35:443": true}}
	_, err = (&guardedDialer{resolver: r, dial: f.dial}).DialContext(guard, "tcp", "cdn.test:443")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("DialContext() with every address down = %v, want the first dial's error", err)
	}
	if got := len(f.got()); got != 3 {
		t.Errorf("%d dials with every address down, want 3", got)
	}

	f = &fakeDialer{}
	_, err = (&guardedDialer{resolver: r, dial: f.dial}).DialContext(guard, "tcp4", "cdn.test:443")
	if err != nil {
		t.Fatalf("DialContext(tcp4) = %v, want a connection", err)
	}
	if got, want := f.got(), []string{"93.184.216.34:443"}; !slices.Equal(got, want) {
		t.Errorf("tcp4 dialed %q, want %q", got, want)
	}

	cancelled, cancel := context.WithCancel(guard)
	cancel()
	f = &fakeDialer{}
	_, err = (&guardedDialer{resolver: r, dial: f.dial}).DialContext(cancelled, "tcp", "cdn.test:443")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("DialContext() with ctx cancelled = %v, want context.Canceled", err)
	}
	if got := f.got(); len(got) != 0 {
		t.Errorf("dialed %q with ctx cancelled, want nothing", got)
	}
}

func TestPartialDeadline(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		remaining time.Duration
		left      int
		want      time.Duration
	}{
		{remaining: 30 * time.Second, left: 3, want: 10 * time.Second},
		{remaining: 30 * time.Second, left: 1, want: 30 * time.Second},
		{remaining: 3 * time.Second, left: 3, want: 2 * time.Second},
		{remaining: time.Second, left: 3, want: time.Second},
		{remaining: -time.Second, left: 3, want: -time.Second},
	}
	for _, tc := range tests {
		if got := partialDeadline(now, now.Add(tc.remaining), tc.left).Sub(now); got != tc.want {
			t.Errorf("partialDeadline(%s left, %d addresses) = +%s, want +%s", tc.remaining, tc.left, got, tc.want)
		}
	}
}

func TestOriginIsPrivate(t *testing.T) {
	t.Parallel()
	r := resolving(map[string][][]netip.Addr{
		"registry.internal": ips("10.0.0.5", "fd00::5"),
		"split.example":     ips("10.0.0.5", "93.184.216.34"),
		"ghcr.io":           ips("140.82.121.34"),
		"empty.example":     {{}},
	})
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

// TestGuardedTransport_endToEnd sends real requests through
// guardTransport to a loopback server that a name resolves to: the guard
// in the request's context reaches the dial.
func TestGuardedTransport_endToEnd(t *testing.T) {
	t.Parallel()
	port, hits := loopbackServer(t)
	r := resolving(map[string][][]netip.Addr{"metadata.test": ips("127.0.0.1")})
	tr := guardTransport(&http.Transport{}, &guardedDialer{resolver: r, timeout: defaultDialTimeout})
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	target := "http://metadata.test:" + port + "/"

	_, err := get(withDialGuard(t.Context(), "registry.example", false), c, target)
	if !errors.Is(err, errDialRefused) {
		t.Fatalf("GET %s for a public registry = %v, want a refusal", target, err)
	}
	want := "dial metadata.test:" + port + ": refused: resolves to 127.0.0.1, a loopback address, and the registry registry.example is public"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("GET %s for a public registry = %q, want it to contain %q", target, err, want)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server had %d requests after the refusal, want 0", n)
	}

	body, err := get(withDialGuard(t.Context(), "registry.example", true), c, target)
	if err != nil || body != "secret" {
		t.Errorf("GET %s for a private registry = %q, %v, want the server's answer", target, body, err)
	}
	if got := r.lookups(); got != 2 {
		t.Errorf("%d lookups, want 2 (one per dial)", got)
	}
}

// TestGuardedRoundTripper_keepsPoolsApart checks that a connection dialed
// unchecked (for a private registry, or with no guard) is not reused by a
// request the guard checks.
func TestGuardedRoundTripper_keepsPoolsApart(t *testing.T) {
	t.Parallel()
	port, hits := loopbackServer(t)
	r := resolving(map[string][][]netip.Addr{"metadata.test": ips("127.0.0.1")})
	guarded := func() *http.Transport {
		return guardTransport(&http.Transport{}, &guardedDialer{resolver: r, timeout: defaultDialTimeout})
	}
	rt := &guardedTransport{checked: guarded(), unchecked: guarded()}
	t.Cleanup(rt.CloseIdleConnections)
	c := &http.Client{Transport: rt}
	target := "http://metadata.test:" + port + "/"

	// A keep-alive connection to metadata.test, idle in the pool.
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
	r := resolving(map[string][][]netip.Addr{
		"metadata.test": ips("169.254.169.254"),
		"cdn.test":      ips("93.184.216.34"),
	})
	tr := guardTransport(&http.Transport{Proxy: http.ProxyURL(proxyURL)}, &guardedDialer{resolver: r, timeout: defaultDialTimeout})
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	ctx := withDialGuard(t.Context(), "registry.example", false)

	for _, host := range []string{"registry.example", "cdn.test", "unresolvable.test"} {
		if body, err := get(ctx, c, "http://"+host+"/"); err != nil || body != "via proxy" {
			t.Errorf("GET http://%s/ through the proxy = %q, %v, want the proxy's answer", host, body, err)
		}
	}
	_, err = get(ctx, c, "http://metadata.test/")
	if !errors.Is(err, errDialRefused) || !strings.Contains(err.Error(), "dial metadata.test:80: refused: resolves to 169.254.169.254") {
		t.Errorf("GET http://metadata.test/ through the proxy = %v, want a refusal", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"registry.example", "cdn.test", "unresolvable.test"}; !slices.Equal(proxied, want) {
		t.Errorf("the proxy saw %q, want %q", proxied, want)
	}
}

// TestGuardTransport_keepsBase checks that the guarded transport is a clone
// of base with its settings, dialing through the guard.
func TestGuardTransport_keepsBase(t *testing.T) {
	t.Parallel()
	base := &http.Transport{TLSHandshakeTimeout: 7 * time.Second, MaxIdleConnsPerHost: 3}
	tr := guardTransport(base, &guardedDialer{})
	if tr == base || tr.TLSHandshakeTimeout != 7*time.Second || tr.MaxIdleConnsPerHost != 3 || tr.DialContext == nil {
		t.Errorf("guardTransport() = %+v, want a clone of base with a DialContext", tr)
	}
	if base.DialContext != nil {
		t.Error("guardTransport() changed base")
	}
	if d := newGuardedTransport(&http.Transport{}); d.DialContext == nil || d.Proxy != nil {
		t.Errorf("newGuardedTransport(&http.Transport{}) = %+v, want a DialContext and no proxy", d)
	}
	if rt := newGuardedRoundTripper(base); rt.checked == rt.unchecked || rt.checked.DialContext == nil || rt.unchecked.DialContext == nil {
		t.Errorf("newGuardedRoundTripper() = %+v, want two guarded transports", rt)
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
