package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The dial guard closes the hole followRedirect leaves open: followRedirect
// sees a redirect's target as written, so it refuses an IP literal such as
// 169.254.169.254 but not a name that resolves to it. The guard checks each
// address a connection is about to be made to, after resolution, in the
// dialer's Control hook: what is checked is what is connected to, so a DNS
// answer cannot change in between.
//
// The guard travels in the request's context (withDialGuard): net/http hands
// the request context's values to Transport.DialContext (Transport.getConn
// detaches only the cancellation, with context.WithoutCancel), net.Dialer
// hands them on to its Control hook, and go-containerregistry sends its
// pings and token requests with the context it is given.
//
// A connection in a Transport's pool is reused without a dial, whatever the
// context of the request that reuses it. guardedTransport therefore keeps
// the connections the guard checked (to hosts other than a public
// registry's own) in a pool of their own: a connection dialed unchecked
// (for a private registry, say) is never handed to a request that needed
// the check.

// dialGuardKey is the context key of a dialGuard.
type dialGuardKey struct{}

// dialGuard is what the guard needs to know about the registry a request is
// made for.
type dialGuard struct {
	// origin is the registry's host, lower case, without port or brackets.
	origin string
	// originPrivate says the registry is itself private (see
	// originIsPrivate): it may then send the client to private addresses.
	originPrivate bool
}

// withDialGuard returns ctx carrying a guard for requests made on behalf of
// the registry origin ("ghcr.io", "registry.internal:5000", "[::1]:5000"):
// unless originPrivate, a connection to any other host is refused if that
// host is or resolves to a non-public address (see nonPublic).
func withDialGuard(ctx context.Context, origin string, originPrivate bool) context.Context {
	return context.WithValue(ctx, dialGuardKey{}, dialGuard{origin: hostOnly(origin), originPrivate: originPrivate})
}

// dialGuardFrom returns the guard ctx carries, if any.
func dialGuardFrom(ctx context.Context) (dialGuard, bool) {
	g, ok := ctx.Value(dialGuardKey{}).(dialGuard)
	return g, ok
}

// checks reports whether a connection to host must be checked: host is not
// the registry's own and the registry is public.
func (g dialGuard) checks(host string) bool {
	return !g.originPrivate && hostOnly(host) != g.origin
}

// hostOnly returns the host of s ("host", "host:port", "[v6]:port", "[v6]"),
// lower case and without a trailing dot.
func hostOnly(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// errDialRefused is what every refusal of the guard matches with errors.Is.
var errDialRefused = errors.New("dial refused: a non-public address reached on behalf of a public registry")

// dialRefusedError is the guard's refusal of a connection to addr.
type dialRefusedError struct {
	addr   netip.Addr
	origin string
}

func (e *dialRefusedError) Error() string {
	return fmt.Sprintf("refused: %s is %s, and the registry %s is public", e.addr, addrKind(e.addr), e.origin)
}

// Is makes every refusal match errDialRefused.
func (e *dialRefusedError) Is(target error) bool { return target == errDialRefused }

// addrKind names the kind of non-public address a is, for a message.
func addrKind(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address"
	case a.IsPrivate():
		return "a private address"
	case a.IsUnspecified(), thisNetwork.Contains(a):
		return "an unspecified address"
	case sharedSpace.Contains(a):
		return "a shared (carrier-grade NAT) address"
	}
	return "a non-public address"
}

// refuseNonPublic is a net.Dialer Control hook: it refuses, under the
// guard of ctx, a connection to a non-public address.
func refuseNonPublic(ctx context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("guarding a dial to %s: %w", address, err)
	}
	if nonPublic(ap.Addr()) {
		g, _ := dialGuardFrom(ctx)
		return &dialRefusedError{addr: ap.Addr().Unmap(), origin: g.origin}
	}
	return nil
}

// guardedDialer dials for an http.Transport (DialContext), enforcing the
// dialGuard of the context it is given: a connection the guard checks (see
// dialGuard.checks) is made by a net.Dialer whose Control hook refuses
// non-public addresses, tried in turn as net.Dialer does; any other, and a
// connection to a proxy the Transport names (the operator's, not a
// registry's), by the same dialer without the hook.
type guardedDialer struct {
	plain, checked *net.Dialer
	// proxies holds the addresses ("proxy.internal:3128", lower case) the
	// transport's Proxy function named.
	proxies sync.Map
}

func newGuardedDialer() *guardedDialer {
	plain := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second} // remote.DefaultTransport's
	checked := *plain
	checked.ControlContext = refuseNonPublic
	return &guardedDialer{plain: plain, checked: &checked}
}

// DialContext dials addr ("host:port") on network under the guard ctx
// carries, if any. A refusal matches errDialRefused.
func (d *guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if g, ok := dialGuardFrom(ctx); ok && g.checks(addr) && !d.isProxy(addr) {
		return d.checked.DialContext(ctx, network, addr)
	}
	return d.plain.DialContext(ctx, network, addr)
}

func (d *guardedDialer) isProxy(addr string) bool {
	_, ok := d.proxies.Load(strings.ToLower(addr))
	return ok
}

// newGuardedTransport returns a clone of base that enforces the dialGuard of
// each request's context when it dials (see guardedDialer). base must not
// dial itself (DialContext, DialTLSContext). Through a proxy (base.Proxy),
// the connection to the proxy is not checked, and the request's own host is
// checked on a best-effort basis only: refused if it is or resolves here to
// a non-public address, let through if it does not resolve here at all (the
// proxy may see names this host cannot).
//
// Its connection pool mixes checked and unchecked connections, which
// requests reuse whatever their guard: use guardedTransport to keep them
// apart.
func newGuardedTransport(base *http.Transport) *http.Transport {
	d := newGuardedDialer()
	t := base.Clone()
	t.DialContext = d.DialContext
	if base.Proxy != nil {
		proxy := base.Proxy
		t.Proxy = func(req *http.Request) (*url.URL, error) {
			u, err := proxy(req)
			if err != nil || u == nil {
				return u, err
			}
			d.proxies.Store(proxyAddr(u), struct{}{})
			ctx := req.Context()
			if g, ok := dialGuardFrom(ctx); ok && g.checks(req.URL.Host) {
				if err := refuseProxied(ctx, g, req.URL.Hostname()); err != nil {
					return nil, err
				}
			}
			return u, nil
		}
	}
	return t
}

// refuseProxied refuses a host a request is proxied to when it is, or
// resolves here to, a non-public address.
func refuseProxied(ctx context.Context, g dialGuard, host string) error {
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil //nolint:nilerr // not resolving here is no reason to refuse: the proxy may
	}
	for _, a := range addrs {
		if nonPublic(a) {
			return fmt.Errorf("proxying to %s: %w", host, &dialRefusedError{addr: a.Unmap(), origin: g.origin})
		}
	}
	return nil
}

// proxyAddr is the address ("host:port", lower case) net/http dials for the
// proxy u, with the scheme's default port if u has none.
func proxyAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		default:
			port = "80"
		}
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port))
}

// guardedTransport is an http.RoundTripper enforcing the dialGuard of each
// request's context (see guardedDialer) that never lets a request the guard
// must check reuse a connection the guard did not check. It sends the
// requests the guard checks (to a host other than a public registry's own)
// through one guarded transport and all others through another, so each
// pool holds connections of one kind.
type guardedTransport struct {
	checked, unchecked *http.Transport
}

// newGuardedRoundTripper returns a guardedTransport made of two guarded
// clones of base (newGuardedTransport).
func newGuardedRoundTripper(base *http.Transport) *guardedTransport {
	return &guardedTransport{checked: newGuardedTransport(base), unchecked: newGuardedTransport(base)}
}

// RoundTrip sends req through the transport for its kind.
func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if g, ok := dialGuardFrom(req.Context()); ok && g.checks(req.URL.Host) {
		return t.checked.RoundTrip(req)
	}
	return t.unchecked.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of both transports.
func (t *guardedTransport) CloseIdleConnections() {
	t.checked.CloseIdleConnections()
	t.unchecked.CloseIdleConnections()
}

// ipResolver resolves a host name to its addresses, as *net.Resolver does.
type ipResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// originIsPrivate reports whether the registry host ("ghcr.io",
// "registry.internal:5000") is private: "localhost", a non-public IP
// literal (in any spelling isPrivateAddr reads), or a name all of whose
// addresses are non-public. A name that does not resolve counts as public,
// the stricter choice. A nil r means net.DefaultResolver.
func originIsPrivate(ctx context.Context, r ipResolver, host string) bool {
	h := hostOnly(host)
	switch {
	case h == "localhost" || isPrivateAddr(h):
		return true
	case h == "":
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false // a public literal
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", h)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !nonPublic(a) {
			return false
		}
	}
	return true
}
