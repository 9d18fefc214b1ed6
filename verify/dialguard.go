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
	"time"
)

// The dial guard closes the hole followRedirect leaves open: followRedirect
// sees a redirect's target as written, so it refuses an IP literal such as
// 169.254.169.254 but not a name that resolves to it. The guard checks the
// addresses a name resolves to, at dial time, and dials the very addresses it
// checked (no second resolution for a DNS rebinding to slip into).
//
// The guard travels in the request's context (withDialGuard): net/http hands
// the request context's values to Transport.DialContext (Transport.getConn
// detaches only the cancellation, with context.WithoutCancel), and
// go-containerregistry sends its pings and token requests with the context it
// is given.
//
// A connection in a Transport's pool is reused without a dial, whatever the
// context of the request that reuses it. guardedTransport therefore keeps
// the connections the guard checked (to hosts other than a public
// registry's own) in a pool of their own, apart from the rest: a connection
// dialed unchecked (for a private registry, say) is never handed to a
// request that needed the check.

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
// host is or resolves to a loopback, private, link-local or unspecified
// address.
func withDialGuard(ctx context.Context, origin string, originPrivate bool) context.Context {
	return context.WithValue(ctx, dialGuardKey{}, dialGuard{origin: hostOnly(origin), originPrivate: originPrivate})
}

// dialGuardFrom returns the guard ctx carries, if any.
func dialGuardFrom(ctx context.Context) (dialGuard, bool) {
	g, ok := ctx.Value(dialGuardKey{}).(dialGuard)
	return g, ok
}

// foreign reports whether host is not the registry's own.
func (g dialGuard) foreign(host string) bool {
	return hostOnly(host) != g.origin
}

// checks reports whether a connection to host must be checked: host is not
// the registry's own and the registry is public.
func (g dialGuard) checks(host string) bool {
	return !g.originPrivate && g.foreign(host)
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

// dialRefusedError is the guard's refusal of a connection to host, because
// of addr, one of its addresses.
type dialRefusedError struct {
	dial    string // what was dialed: "evil.example:443"
	host    string
	addr    netip.Addr
	literal bool // host is addr, spelled one way or another
	origin  string
}

func (e *dialRefusedError) Error() string {
	if e.literal {
		return fmt.Sprintf("dial %s: refused: %s is %s, and the registry %s is public",
			e.dial, e.addr, addrKind(e.addr), e.origin)
	}
	return fmt.Sprintf("dial %s: refused: resolves to %s, %s, and the registry %s is public",
		e.dial, e.addr, addrKind(e.addr), e.origin)
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

// ipResolver resolves a host name to its addresses, as *net.Resolver does.
type ipResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialFunc dials addr, as (*net.Dialer).DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// defaultDialTimeout bounds a dial, the resolution included, as
// remote.DefaultTransport's dialer does.
const defaultDialTimeout = 30 * time.Second

// guardedDialer dials for an http.Transport (DialContext), enforcing the
// dialGuard of the context it is given. Without a guard, to the registry's
// own host or to a proxy, it dials addr as given with dial. To any other
// host, it resolves the host itself (an IP literal stands for itself),
// refuses if the registry is public and any address is not (as
// nonPublic judges), and otherwise dials those very addresses (ip:port)
// in turn until one connects. Its zero value is ready to use. A
// guardedDialer must not be copied after first use.
type guardedDialer struct {
	// resolver resolves the hosts other than the registry's; nil means
	// net.DefaultResolver.
	resolver ipResolver
	// dial makes the connections; nil means a net.Dialer with a 30s
	// timeout and keep-alive, remote.DefaultTransport's.
	dial dialFunc
	// timeout bounds a dial it resolves for, resolution included; 0 means
	// no bound beyond ctx's and dial's own.
	timeout time.Duration
	// proxies holds the addresses ("proxy.internal:3128", lower case) the
	// transport's Proxy function named. They are the operator's, not a
	// registry's: the guard lets them be dialed unchecked.
	proxies sync.Map
}

var defaultDialer = &net.Dialer{Timeout: defaultDialTimeout, KeepAlive: 30 * time.Second}

func (d *guardedDialer) dialer() dialFunc {
	if d.dial != nil {
		return d.dial
	}
	return defaultDialer.DialContext
}

func (d *guardedDialer) lookup() ipResolver {
	if d.resolver != nil {
		return d.resolver
	}
	return net.DefaultResolver
}

// DialContext dials addr ("host:port") on network ("tcp", "tcp4", "tcp6")
// under the guard ctx carries, if any. A refusal matches errDialRefused.
func (d *guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	g, port, resolve, err := d.guardFor(ctx, addr)
	if err != nil {
		return nil, err
	}
	if !resolve {
		return d.dialer()(ctx, network, addr)
	}
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	ips, err := d.vet(ctx, g, network, addr)
	if err != nil {
		return nil, err
	}
	return d.dialEach(ctx, network, ips, port)
}

// guardFor returns the guard of ctx and the port of addr, and whether the
// dialer resolves addr's host itself (and vets its addresses): there is a
// guard, the host is not the registry's own and addr is not a proxy's.
func (d *guardedDialer) guardFor(ctx context.Context, addr string) (g dialGuard, port string, resolve bool, err error) {
	g, ok := dialGuardFrom(ctx)
	if !ok {
		return g, "", false, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return g, "", false, fmt.Errorf("dial %s: %w", addr, err)
	}
	return g, port, g.foreign(host) && !d.isProxy(addr), nil
}

// vet resolves the host of addr for network and returns its addresses,
// unless the registry of g is public and one of them is not: then it
// returns g's refusal. err may also be the resolution's failure.
func (d *guardedDialer) vet(ctx context.Context, g dialGuard, network, addr string) ([]netip.Addr, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	ips, literal, err := resolveHost(ctx, d.lookup(), network, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if g.originPrivate {
		return ips, nil
	}
	for _, ip := range ips {
		if nonPublic(ip) {
			return nil, &dialRefusedError{dial: addr, host: host, addr: ip, literal: literal, origin: g.origin}
		}
	}
	return ips, nil
}

// isProxy reports whether addr is one the transport's Proxy function named.
func (d *guardedDialer) isProxy(addr string) bool {
	_, ok := d.proxies.Load(strings.ToLower(addr))
	return ok
}

// resolveHost returns the addresses of host for network: host itself if it
// is an IP literal, in any spelling isPrivateAddr accepts (literal true),
// else what r answers. It fails if there is no address.
func resolveHost(ctx context.Context, r ipResolver, network, host string) (ips []netip.Addr, literal bool, err error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, true, nil
	}
	if ip, ok := parseLegacyIPv4(host); ok {
		return []netip.Addr{ip}, true, nil
	}
	ipNet := "ip"
	switch network {
	case "tcp4", "udp4":
		ipNet = "ip4"
	case "tcp6", "udp6":
		ipNet = "ip6"
	}
	all, err := r.LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return nil, false, err
	}
	for _, ip := range all {
		if ip.IsValid() {
			ips = append(ips, ip)
		}
	}
	if len(ips) == 0 {
		return nil, false, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return ips, false, nil
}

// dialEach dials ips in turn, on port, until one connects, giving each its
// share of the time ctx has left as net.Dialer does, and returns the first
// error if none connects.
func (d *guardedDialer) dialEach(ctx context.Context, network string, ips []netip.Addr, port string) (net.Conn, error) {
	dial := d.dialer()
	var first error
	for i, ip := range ips {
		if err := ctx.Err(); err != nil {
			if first == nil {
				first = err
			}
			break
		}
		if network != "tcp6" && network != "udp6" {
			ip = ip.Unmap()
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			actx, cancel = context.WithDeadline(ctx, partialDeadline(time.Now(), deadline, len(ips)-i))
		}
		c, err := dial(actx, network, net.JoinHostPort(ip.String(), port))
		cancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// partialDeadline returns the deadline of one of left remaining attempts
// before deadline: an equal share of the time left, at least 2s if there is
// that much (net.Dialer's rule).
func partialDeadline(now, deadline time.Time, left int) time.Time {
	remaining := deadline.Sub(now)
	if remaining <= 0 || left <= 1 {
		return deadline
	}
	const saneMinimum = 2 * time.Second
	share := remaining / time.Duration(left)
	if share < saneMinimum {
		share = min(remaining, saneMinimum)
	}
	return now.Add(share)
}

// newGuardedTransport returns a clone of base that enforces the dialGuard of
// each request's context when it dials (see guardedDialer): it dials with
// base's DialContext, or remote.DefaultTransport's dialer if base has
// none. base must not dial TLS itself (DialTLSContext): such a dialer would
// resolve the host again, past the guard. Through a proxy (base.Proxy), the
// connection to the proxy is not checked, and the request's own host is
// checked on a best-effort basis only: refused if it resolves here to a
// non-public address, let through if it does not resolve here at all (the
// proxy may see names this host cannot).
//
// Its connection pool mixes checked and unchecked connections, which
// requests reuse whatever their guard: use guardedTransport to keep them
// apart.
func newGuardedTransport(base *http.Transport) *http.Transport {
	return guardTransport(base, &guardedDialer{timeout: defaultDialTimeout})
}

// guardTransport returns a clone of base whose dials go through d. d's nil
// dial becomes base's.
func guardTransport(base *http.Transport, d *guardedDialer) *http.Transport {
	t := base.Clone()
	if d.dial == nil {
		d.dial = base.DialContext
	}
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
			if g, ok := dialGuardFrom(ctx); ok && g.checks(req.URL.Hostname()) {
				_, err := d.vet(ctx, g, "tcp", canonicalAddr(req.URL))
				if errors.Is(err, errDialRefused) {
					return nil, err
				}
				// Not resolving here is no reason to refuse: the proxy
				// may resolve names this host cannot.
			}
			return u, nil
		}
	}
	return t
}

// proxyAddr is the address ("host:port", lower case) net/http dials for the
// proxy u.
func proxyAddr(u *url.URL) string {
	return strings.ToLower(canonicalAddr(u))
}

// canonicalAddr is u's "host:port", with the scheme's default port if u has
// none, as net/http dials it.
func canonicalAddr(u *url.URL) string {
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
	return net.JoinHostPort(u.Hostname(), port)
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
	if g, ok := dialGuardFrom(req.Context()); ok && g.checks(req.URL.Hostname()) {
		return t.checked.RoundTrip(req)
	}
	return t.unchecked.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of both transports.
func (t *guardedTransport) CloseIdleConnections() {
	t.checked.CloseIdleConnections()
	t.unchecked.CloseIdleConnections()
}

// originIsPrivate reports whether the registry host ("ghcr.io",
// "registry.internal:5000") is private: "localhost", a loopback, private,
// link-local or unspecified IP literal (as nonPublic judges), or a name
// all of whose addresses are such. A name that does not resolve counts as
// public, the stricter choice. A nil r means net.DefaultResolver.
func originIsPrivate(ctx context.Context, r ipResolver, host string) bool {
	h := hostOnly(host)
	if h == "localhost" {
		return true
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ips, _, err := resolveHost(ctx, r, "tcp", h)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if !nonPublic(ip) {
			return false
		}
	}
	return true
}
