package verify

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/singleflight"

	"github.com/pregate/pregate/gate"
)

// DefaultLookupTimeout bounds each registry request unless WithLookupTimeout
// says otherwise.
const DefaultLookupTimeout = 10 * time.Second

// Limits on what a registry answer may make pregate read.
const (
	// maxManifestSize caps a manifest or an index (referrers list, fallback
	// tag index, .sig/.att manifest). Registries commonly cap manifests at
	// 4 MiB themselves.
	maxManifestSize = 4 << 20
	// maxBlobSize caps a signature or attestation layer. Bundles are a few
	// KiB; DSSE attestations carrying an SBOM predicate can be large.
	maxBlobSize = 32 << 20
	// maxErrorBody caps the body read from an error answer.
	maxErrorBody = 64 << 10
	// maxReferrersPages caps how many pages of a paginated referrers list
	// are followed.
	maxReferrersPages = 16
	// maxRedirects caps the redirects followed by one request.
	maxRedirects = 5
	// authTTL is how long an authenticated transport (the ping, the
	// keychain's answer, the bearer token) is reused for a repository.
	authTTL = 5 * time.Minute
)

// ErrNotFound is returned, wrapped, by Resolve when the registry answers that
// the reference does not exist.
var ErrNotFound = errors.New("manifest not found")

// Registry reads images, signatures and attestations from OCI registries. It
// shares one HTTP transport (and its connections) between all requests and is
// safe for concurrent use.
//
// Every request is bounded by the lookup timeout, derived from the caller's
// context. Requests are not retried: a failed request is reported (as an
// error or a failed Lookup) and the caller decides when to try again.
type Registry struct {
	keychain authn.Keychain
	hosts    *Hosts
	base     http.RoundTripper // counting, user agent, then the hosts' transport
	timeout  time.Duration
	insecure map[string]bool
	stats    *RequestCounter // this Registry's requests only
	now      func() time.Time
	// budget bounds what discovery reads for one subject (defaultBudget;
	// tests lower it).
	budget budget

	authFlight singleflight.Group // handshakes in flight, by authCache key
	authMu     sync.Mutex
	authCache  map[string]authEntry
	accessOf   map[string]string // by repository: see access
}

// RegistryOption configures a Registry.
type RegistryOption func(*registryOptions) error

type registryOptions struct {
	keychain  authn.Keychain
	hosts     *Hosts
	transport http.RoundTripper
	timeout   time.Duration
	insecure  map[string]bool
	userAgent string
	shared    *RequestCounter
}

// WithKeychain sets where credentials come from. The default is
// authn.DefaultKeychain, which reads the docker (and podman) config files.
func WithKeychain(kc authn.Keychain) RegistryOption {
	return func(o *registryOptions) error {
		if kc == nil {
			return errors.New("keychain must not be nil")
		}
		o.keychain = kc
		return nil
	}
}

// WithHosts shares h (connections, registry pings, per-host limits and
// Retry-After) with the other Registries given it, as a controller's
// reconciles do. Credentials and tokens stay each Registry's own. It
// cannot be given with WithTransport (h has its transport). By default a
// Registry has Hosts of its own (NewHosts).
func WithHosts(h *Hosts) RegistryOption {
	return func(o *registryOptions) error {
		if h == nil {
			return errors.New("hosts must not be nil")
		}
		o.hosts = h
		return nil
	}
}

// WithTransport sets the transport every request goes through, in Hosts
// of the Registry's own (see WithHostsTransport: rt is used as it is).
// Registry adds authentication, the user agent, request counting and
// retries on top of it. rt must be safe for concurrent use, as
// *http.Transport is.
func WithTransport(rt http.RoundTripper) RegistryOption {
	return func(o *registryOptions) error {
		if rt == nil {
			return errors.New("transport must not be nil")
		}
		o.transport = rt
		return nil
	}
}

// WithLookupTimeout bounds each registry request: the authentication
// handshake, the resolve, the referrers call, each tag read and each manifest
// and blob fetch have their own timeout of d, derived from the caller's
// context. It must be positive. The default is DefaultLookupTimeout (10s).
func WithLookupTimeout(d time.Duration) RegistryOption {
	return func(o *registryOptions) error {
		if d <= 0 {
			return fmt.Errorf("lookup timeout must be positive, got %s", d)
		}
		o.timeout = d
		return nil
	}
}

// WithInsecure lets the named registries ("registry.internal:5000") be
// reached over plain HTTP, as go-containerregistry's name.Insecure does: the
// registry is tried over HTTPS first and then over HTTP. Names must be given
// as they appear in image references. By default only localhost,
// 127.0.0.1, *.local and RFC 1918 addresses may use plain HTTP (the same
// go-containerregistry heuristic).
func WithInsecure(registries ...string) RegistryOption {
	return func(o *registryOptions) error {
		if len(registries) == 0 {
			return errors.New("insecure registries: at least one registry name is required")
		}
		for _, r := range registries {
			reg, err := name.NewRegistry(gate.CanonicalHost(r), name.StrictValidation)
			if err != nil {
				return fmt.Errorf("insecure registry %q: %w", r, err)
			}
			o.insecure[reg.RegistryStr()] = true
		}
		return nil
	}
}

// WithUserAgent sets the User-Agent product sent with every request; the
// go-containerregistry version is appended. The default is "pregate".
func WithUserAgent(ua string) RegistryOption {
	return func(o *registryOptions) error {
		if strings.TrimSpace(ua) == "" || strings.ContainsAny(ua, "\r\n") {
			return fmt.Errorf("user agent must be a non-empty single line, got %q", ua)
		}
		o.userAgent = ua
		return nil
	}
}

// WithStats counts every request of the Registry into c too, so that
// several Registries (one per set of credentials, say) can be counted
// together: c.Snapshot() is their sum. Requests still counts this
// Registry's requests alone. By default a Registry counts only into its own
// counter; given more than once, the last WithStats wins.
func WithStats(c *RequestCounter) RegistryOption {
	return func(o *registryOptions) error {
		if c == nil {
			return errors.New("request counter must not be nil")
		}
		o.shared = c
		return nil
	}
}

// NewRegistry returns a Registry configured by opts.
func NewRegistry(opts ...RegistryOption) (*Registry, error) {
	o := &registryOptions{
		keychain:  authn.DefaultKeychain,
		timeout:   DefaultLookupTimeout,
		insecure:  map[string]bool{},
		userAgent: "pregate",
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("invalid registry option: %w", err)
		}
	}
	hosts := o.hosts
	switch {
	case hosts != nil && o.transport != nil:
		return nil, errors.New("invalid registry option: WithTransport and WithHosts are exclusive (the hosts have a transport)")
	case hosts == nil && o.transport != nil:
		hosts, _ = NewHosts(WithHostsTransport(o.transport)) // cannot fail: the transport is set
	case hosts == nil:
		var err error
		if hosts, err = NewHosts(); err != nil {
			return nil, err
		}
	}
	stats := &RequestCounter{}
	counting := &countingTransport{inner: hosts.transport, counters: []*RequestCounter{stats}}
	if o.shared != nil {
		counting.counters = append(counting.counters, o.shared)
	}
	return &Registry{
		keychain:  o.keychain,
		hosts:     hosts,
		base:      transport.NewUserAgent(counting, o.userAgent),
		timeout:   o.timeout,
		insecure:  o.insecure,
		stats:     stats,
		now:       time.Now,
		budget:    defaultBudget,
		authCache: map[string]authEntry{},
		accessOf:  map[string]string{},
	}, nil
}

// RequestStats counts the HTTP requests a Registry (or a RequestCounter)
// saw: every attempt, including authentication handshakes, token requests
// and redirect hops.
type RequestStats struct {
	// Total is the number of requests sent.
	Total int
	// ByHost maps a host ("ghcr.io", "127.0.0.1:5000") to the number of
	// requests by HTTP status; status 0 counts requests that got no answer
	// (refused, reset, timed out, cancelled). Error
	// answers count under their status (401, 429, 5xx, ...).
	ByHost map[string]map[int]int
}

// Requests returns a snapshot of the requests this Registry sent so far
// (not those of other Registries sharing a RequestCounter with it).
func (r *Registry) Requests() RequestStats { return r.stats.Snapshot() }

// RequestCounter counts HTTP requests by host and status. Give one to
// several Registries with WithStats to count their requests together, for
// metrics. The counts only grow. The zero value is ready to use, and a
// RequestCounter is safe for concurrent use.
type RequestCounter struct {
	mu     sync.Mutex
	total  int
	byHost map[string]map[int]int
}

func (c *RequestCounter) add(host string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if c.byHost == nil {
		c.byHost = map[string]map[int]int{}
	}
	m := c.byHost[host]
	if m == nil {
		m = map[int]int{}
		c.byHost[host] = m
	}
	m[status]++
}

// Snapshot returns a copy of the counts so far.
func (c *RequestCounter) Snapshot() RequestStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := RequestStats{Total: c.total, ByHost: make(map[string]map[int]int, len(c.byHost))}
	for h, m := range c.byHost {
		s.ByHost[h] = maps.Clone(m)
	}
	return s
}

// countingTransport counts each round trip by host and final status, into
// each of its counters.
type countingTransport struct {
	inner    http.RoundTripper
	counters []*RequestCounter
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	status := 0
	if err == nil && resp != nil {
		status = resp.StatusCode
	}
	for _, c := range t.counters {
		c.add(req.URL.Host, status)
	}
	return resp, err
}

// parseReference parses ref, its registry host spelt as gate.CanonicalHost
// spells it, as plain HTTP if its registry is one of the insecure ones.
func (r *Registry) parseReference(ref string) (name.Reference, error) {
	ref = gate.CanonicalReference(ref)
	parsed, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.insecure[parsed.Context().RegistryStr()] {
		return name.ParseReference(ref, name.Insecure)
	}
	return parsed, nil
}

func (r *Registry) parseRepository(repo string) (name.Repository, error) {
	repo = gate.CanonicalReference(repo)
	parsed, err := name.NewRepository(repo)
	if err != nil {
		return name.Repository{}, err
	}
	if r.insecure[parsed.RegistryStr()] {
		return name.NewRepository(repo, name.Insecure)
	}
	return parsed, nil
}

// authEntry is an authenticated transport for one repository.
type authEntry struct {
	rt      http.RoundTripper
	secrets []string
	expires time.Time
	// scheme is the one the registry answered its ping on.
	scheme string
	// private: the registry host is itself a private address.
	private bool
}

// session is what one Resolve or Discover uses to talk to one repository.
type session struct {
	reg  *Registry
	repo name.Repository
	// client follows redirects (registries send blob GETs to CDNs), except
	// from a public host into private, loopback or link-local addresses.
	client *http.Client
	// strict follows redirects only within the registry host: used for the
	// referrers API (see Discover).
	strict  *http.Client
	secrets []string
	scheme  string // the registry's, from its ping
	private bool   // the registry host is a private address
}

// session returns a session for repo, authenticating (ping, keychain, token)
// unless a recent handshake for repo can be reused. Concurrent callers for
// one repository share one handshake (and its failure); if the context of
// the caller whose handshake it is ends, the others make their own. ctx
// bounds the handshake. The error's message is free of credentials.
func (r *Registry) session(ctx context.Context, repo name.Repository) (*session, error) {
	key := repo.Scheme() + "://" + repo.Name()
	cached := func() (handshake, bool) {
		r.authMu.Lock()
		defer r.authMu.Unlock()
		e, ok := r.authCache[key]
		return handshake{entry: e}, ok && r.now().Before(e.expires)
	}
	authenticate := func(ctx context.Context) handshake {
		e, err := r.authenticate(ctx, repo)
		return handshake{entry: e, err: err}
	}
	store := func(h handshake) {
		if h.err != nil {
			return
		}
		r.authMu.Lock()
		defer r.authMu.Unlock()
		now := r.now()
		for k, old := range r.authCache {
			if !now.Before(old.expires) {
				delete(r.authCache, k)
			}
		}
		r.authCache[key] = h.entry
	}
	h, _, err := joinFlight(ctx, &r.authFlight, key, awaitFlight, cached, authenticate, store)
	switch {
	case err != nil: // ctx ended first
		return nil, r.handshakeError(ctx, repo, "contacting registry", err, nil)
	case h.err != nil:
		return nil, h.err
	}
	e := h.entry
	return &session{
		reg:     r,
		repo:    repo,
		client:  &http.Client{Transport: e.rt, CheckRedirect: followRedirect},
		strict:  &http.Client{Transport: e.rt, CheckRedirect: sameHostRedirect},
		secrets: e.secrets,
		scheme:  e.scheme,
		private: e.private,
	}, nil
}

// handshake is the outcome of authenticating to a repository.
type handshake struct {
	entry authEntry
	err   error
}

// handshakeError is the error of a handshake with repo's registry that
// failed at what ("contacting registry"): because ctx ended, or with err.
// Its message is free of secrets.
func (r *Registry) handshakeError(ctx context.Context, repo name.Repository, what string, err error, secrets []string) error {
	var msg string
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && context.Cause(ctx) == ctx.Err(): //nolint:errorlint // the context's own deadline, not a cause
		msg = "no answer within " + r.timeout.String()
	case ctx.Err() != nil:
		msg = cancelled(ctx)
	default:
		// Only a top-level *url.Error is unwrapped: for a plain-HTTP
		// registry ggcr joins the https and the http attempts' errors, and
		// the http one is the registry's real answer.
		if uerr, ok := err.(*url.Error); ok { //nolint:errorlint // see above
			err = uerr.Err
		}
		msg = err.Error()
	}
	s := &session{secrets: secrets}
	return fmt.Errorf("%s %s: %s", what, repo.RegistryStr(), s.scrub(msg))
}

func (r *Registry) authenticate(ctx context.Context, repo name.Repository) (authEntry, error) {
	fail := func(what string, err error, secrets []string) (authEntry, error) {
		return authEntry{}, r.handshakeError(ctx, repo, what, err, secrets)
	}
	auth, err := authn.Resolve(ctx, r.keychain, repo)
	if err != nil {
		return fail("finding credentials for", err, nil)
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return fail("finding credentials for", err, nil)
	}
	secrets := secretsOf(cfg)
	r.remember(repo, accessName(repo, cfg))
	// The ping is the registry's, whatever the credentials: shared by
	// every repository and Registry (Hosts). A token is this repository's,
	// from a realm the dial guard vets.
	private := r.hosts.isPrivate(ctx, repo.RegistryStr())
	gctx := withDialGuard(ctx, repo.RegistryStr(), private)
	ch, err := r.hosts.challenge(gctx, repo.Registry, r.base)
	if err != nil {
		return fail("contacting registry", err, secrets)
	}
	tok := &transport.Token{}
	if strings.EqualFold(ch.Scheme, "bearer") {
		if tok, err = transport.Exchange(gctx, repo.Registry, auth, r.base, []string{repo.Scope(transport.PullScope)}, ch); err != nil {
			return fail("authenticating to", err, secrets)
		}
	}
	rt, err := transport.FromToken(repo.Registry, auth, r.base, ch, tok)
	if err != nil {
		return fail("authenticating to", err, secrets)
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	return authEntry{rt: rt, secrets: secrets, expires: r.now().Add(authTTL), scheme: scheme, private: private}, nil
}

// access names the credentials the Registry reads repo with (see
// accessName), once per repository: the handshake records them, and a
// repository not yet shaken hands with asks the keychain. "" when the
// keychain fails. Two Registries with the same access read repo as the
// same client (see Cache.known).
func (r *Registry) access(ctx context.Context, repo name.Repository) string {
	r.authMu.Lock()
	a, ok := r.accessOf[repo.Name()]
	r.authMu.Unlock()
	if ok {
		return a
	}
	auth, err := authn.Resolve(ctx, r.keychain, repo)
	if err != nil {
		return ""
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return ""
	}
	a = accessName(repo, cfg)
	r.remember(repo, a)
	return a
}

// remember records the access of repo.
func (r *Registry) remember(repo name.Repository, access string) {
	if access == "" {
		return
	}
	r.authMu.Lock()
	defer r.authMu.Unlock()
	r.accessOf[repo.Name()] = access
}

// accessName names credentials cfg for repo's registry: "anonymous", or a
// hash of them (never the secret itself); "" if they cannot be encoded.
func accessName(repo name.Repository, cfg *authn.AuthConfig) string {
	if cfg == nil || *cfg == (authn.AuthConfig{}) {
		return "anonymous"
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(append([]byte(repo.RegistryStr()+"\x00"), b...))
	return "credentials:" + hex.EncodeToString(sum[:])
}

// secretsOf lists the strings of cfg that must never appear in a message.
// Secrets shorter than four characters are not scrubbed: replacing them
// would mangle every message without protecting anything.
func secretsOf(cfg *authn.AuthConfig) []string {
	if cfg == nil {
		return nil
	}
	var out []string
	for _, s := range []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken} {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	if cfg.Username != "" && cfg.Password != "" {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)))
	}
	// Longest first, so a secret that contains another is replaced whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

var authSchemeValue = regexp.MustCompile(`(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]+`)

// scrub removes credentials from a message: the session's secrets, and any
// "Basic …"/"Bearer …" value a registry echoed back.
func (s *session) scrub(msg string) string {
	for _, sec := range s.secrets {
		msg = strings.ReplaceAll(msg, sec, "REDACTED")
	}
	return authSchemeValue.ReplaceAllString(msg, "$1 REDACTED")
}

// redirectTrace records the redirects one request followed.
type redirectTrace struct {
	status int
	hosts  []string
}

type redirectTraceKey struct{}

func traceRedirect(req *http.Request) {
	if tr, ok := req.Context().Value(redirectTraceKey{}).(*redirectTrace); ok && req.Response != nil {
		tr.status = req.Response.StatusCode
		tr.hosts = append(tr.hosts, req.URL.Host)
	}
}

// followRedirect follows up to maxRedirects redirects, refusing one from a
// public host to a private, loopback or link-local IP literal (the same SSRF
// guard as go-containerregistry's fetcher) and any to a scheme other than
// http or https.
func followRedirect(req *http.Request, via []*http.Request) error {
	traceRedirect(req)
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to scheme %q refused", req.URL.Scheme)
	}
	from, to := via[0].URL.Hostname(), req.URL.Hostname()
	if from != to && !isPrivateAddr(from) && isPrivateAddr(to) {
		return fmt.Errorf("redirect from %s to private address %s refused", from, to)
	}
	return nil
}

// sameHostRedirect follows redirects that stay on the registry's host and
// port (an http to https upgrade included) and hands any other back to the
// caller unfollowed.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Host != via[0].URL.Host || (via[0].URL.Scheme == "https" && req.URL.Scheme != "https") {
		return http.ErrUseLastResponse
	}
	traceRedirect(req)
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// isPrivateAddr reports whether host is an IP literal of a loopback,
// private, link-local or unspecified address, in any spelling a resolver may
// accept ("127.0.0.1", "::ffff:10.0.0.1", "127.1", "0x7f000001",
// "2130706433"), as go-containerregistry's internal/ipaddr does. DNS names
// are not IP literals.
func isPrivateAddr(host string) bool {
	host, _, _ = strings.Cut(host, "%")
	addr, err := netip.ParseAddr(host)
	if err != nil {
		var ok bool
		if addr, ok = parseLegacyIPv4(host); !ok {
			return false
		}
	}
	return nonPublic(addr)
}

// Ranges no registry's redirect or token realm may lead into, beyond what
// netip classifies: "this network" (0.0.0.0/8), the shared address space
// of carrier-grade NAT (100.64.0.0/10, where some clouds answer metadata
// requests: 100.100.100.200), and IPv4 reached through NAT64
// (64:ff9b::/96).
var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
)

// nonPublic reports whether addr is loopback, private, link-local,
// unspecified or in one of the ranges above, in any IPv6 form of an IPv4
// address.
func nonPublic(addr netip.Addr) bool {
	addr = addr.Unmap()
	if nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:]))
	}
	return addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsUnspecified() ||
		thisNetwork.Contains(addr) || sharedSpace.Contains(addr)
}

// parseLegacyIPv4 parses the inet_aton forms of an IPv4 address: one to four
// dot-separated parts, each decimal, hexadecimal (0x) or octal (leading 0),
// the last filling the remaining bytes.
func parseLegacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, part := range parts[:len(parts)-1] {
		v, err := strconv.ParseUint(part, 0, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		b[i] = byte(v)
	}
	rest := 5 - len(parts) // the bytes the last part fills
	last, err := strconv.ParseUint(parts[len(parts)-1], 0, 8*rest)
	if err != nil {
		return netip.Addr{}, false
	}
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], last)
	copy(b[4-rest:], be[8-rest:])
	return netip.AddrFrom4(b), true
}

// request is one registry request.
type request struct {
	step   Step
	method string
	url    *url.URL
	accept []string
	limit  int64
	strict bool // the referrers API: redirects only within the registry host
}

// answer is what came back. body is nil for HEAD and for error statuses.
type answer struct {
	status int
	header http.Header
	body   []byte
	// errBody is the start of an error answer's body.
	errBody []byte
	// location is where an unfollowed redirect pointed.
	location *url.URL
	// trace records the redirects followed.
	trace *redirectTrace
	// waitErr says why a retryable answer was not tried again.
	waitErr error
	// timedOut says the request's own timeout ended it.
	timedOut bool
}

// do sends one request and returns the answer and the Lookup that records
// it. Each attempt has its own timeout derived from ctx and waits for a
// slot of the host (Hosts); an attempt answered 429, 500, 502, 503 or 504,
// or that failed in transit, is made again (see maxAttempts), after the
// registry's Retry-After or a backoff, while ctx's deadline leaves time
// for the wait (a 429 or 503 with Retry-After holds the host's other
// requests too). A transport failure, a timeout or a body over the limit
// sets Lookup.Err; otherwise the caller judges the final status (and sets
// Lookup.Err if it is not what it wanted).
func (s *session) do(ctx context.Context, rq request) (answer, Lookup) {
	start := time.Now()
	l := Lookup{Step: rq.step, URL: redactURL(rq.url)}
	u := *rq.url
	if u.Host == s.repo.RegistryStr() && s.scheme != "" {
		u.Scheme = s.scheme // the one the registry answered its ping on
	}
	ctx = withDialGuard(ctx, s.repo.RegistryStr(), s.private)
	for attempt := 1; ; attempt++ {
		a, err := s.attempt(ctx, rq, &u)
		l.Attempts, l.Status = attempt, a.status
		var over *limitError
		retry := (err != nil && ctx.Err() == nil && !a.timedOut && !errors.As(err, &over) && !errors.Is(err, errDeadlineTooSoon)) ||
			(err == nil && retryable(a.status))
		if retry && attempt < maxAttempts {
			d, fromServer := retryDelay(attempt, a.header, s.reg.hosts.now())
			if fromServer && (a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable) {
				s.reg.hosts.holdHost(u.Host, s.reg.hosts.now().Add(d))
			}
			if serr := sleep(ctx, d, s.reg.timeout, fmt.Sprintf("retry after %s", d.Round(time.Millisecond))); serr == nil {
				continue
			} else if err == nil {
				// The answer stands; say why it was not tried again.
				a.waitErr = serr
			}
		}
		if err != nil {
			l.Err = s.describe(ctx, a.timedOut, a.trace, err)
		}
		l.Duration = time.Since(start)
		return a, l
	}
}

// attempt sends rq once, within the host's slots and the request timeout
// (a.timedOut says an error is that timeout's).
func (s *session) attempt(ctx context.Context, rq request, u *url.URL) (a answer, err error) {
	a.trace = &redirectTrace{}
	release, err := s.reg.hosts.acquire(ctx, u.Host, s.reg.timeout)
	if err != nil {
		return a, err
	}
	defer release()
	lctx, cancel := context.WithTimeout(ctx, s.reg.timeout)
	defer cancel()
	defer func() { a.timedOut = err != nil && ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) }()
	lctx = context.WithValue(lctx, redirectTraceKey{}, a.trace)

	req, err := http.NewRequestWithContext(lctx, rq.method, u.String(), nil)
	if err != nil {
		return a, err
	}
	if len(rq.accept) > 0 {
		req.Header.Set("Accept", strings.Join(rq.accept, ", "))
	}
	client := s.client
	if rq.strict {
		client = s.strict
	}
	resp, err := client.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	a.status, a.header = resp.StatusCode, resp.Header
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		if loc, err := resp.Location(); err == nil {
			a.location = loc
		}
		return a, nil
	case resp.StatusCode != http.StatusOK:
		a.errBody, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return a, nil
	case rq.method == http.MethodHead:
		return a, nil
	}
	if resp.ContentLength > rq.limit {
		return a, &limitError{fmt.Sprintf("answer of %d bytes is over the %d-byte limit", resp.ContentLength, rq.limit)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, rq.limit+1))
	if err != nil {
		return a, fmt.Errorf("reading answer: %w", err)
	}
	if int64(len(body)) > rq.limit {
		return a, &limitError{fmt.Sprintf("answer is over the %d-byte limit", rq.limit)}
	}
	a.body = body
	return a, nil
}

// limitError is an answer over a size limit: sending the request again
// would not help.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// describe turns a request error into a one-line message without
// credentials. timeout says the request's own timeout ended it.
func (s *session) describe(parent context.Context, timeout bool, trace *redirectTrace, err error) string {
	var msg string
	switch {
	case parent.Err() != nil:
		msg = cancelled(parent)
	case timeout:
		msg = "no answer within " + s.reg.timeout.String()
	case errors.Is(err, errDeadlineTooSoon):
		msg = err.Error()
	default:
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		msg = err.Error()
	}
	if len(trace.hosts) > 0 {
		msg = fmt.Sprintf("redirected (%d) to %s, then: %s", trace.status, strings.Join(trace.hosts, ", "), msg)
	}
	return gate.Clip(s.scrub(msg), maxReasonText)
}

// statusMessage describes an unexpected HTTP status, with the registry's
// error code and message if it sent any.
func (s *session) statusMessage(a answer) string {
	msg := fmt.Sprintf("HTTP %d %s", a.status, http.StatusText(a.status))
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(a.errBody, &body) == nil && len(body.Errors) > 0 {
		e := body.Errors[0]
		detail := e.Code
		if e.Message != "" {
			detail += ": " + e.Message
		}
		msg += " (" + gate.Clip(detail, 200) + ")"
	}
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		if ra := a.header.Get("Retry-After"); ra != "" {
			msg += ", retry after " + gate.Clip(retryAfter(ra), 40)
		}
	}
	if a.waitErr != nil {
		msg += "; not tried again: " + a.waitErr.Error()
	}
	return gate.Clip(s.scrub(msg), maxReasonText)
}

// cancelled describes why ctx ended: its cause when it has one of its own
// (a deadline for the image or the revision), else "cancelled: ...".
func cancelled(ctx context.Context) string {
	cause := context.Cause(ctx)
	if cause != nil && cause != ctx.Err() && !errors.Is(cause, context.Canceled) { //nolint:errorlint // a cause of its own, not the context's error
		return cause.Error()
	}
	return "cancelled: " + ctx.Err().Error()
}

// retryAfter renders a Retry-After value: seconds as a duration, a date as
// given.
func retryAfter(v string) string {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return (time.Duration(n) * time.Second).String()
	}
	return v
}

// redactURL renders u without userinfo, fragment or any query value other
// than the registry protocol's own (n, last, artifactType), as
// go-containerregistry's internal/redact does.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := *u
	r.User = nil
	r.Fragment, r.RawFragment = "", ""
	if r.RawQuery != "" {
		q := r.Query()
		for k, vs := range q {
			switch k {
			case "n", "last", "artifactType":
			default:
				for i := range vs {
					vs[i] = "REDACTED"
				}
			}
		}
		r.RawQuery = q.Encode()
	}
	return r.String()
}

// v2URL is the URL of /v2/<path> on repo's registry.
func v2URL(repo name.Repository, path string) *url.URL {
	return &url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + path}
}

// repoURL is the URL of /v2/<repo>/<kind>/<ref> on repo's registry.
func repoURL(repo name.Repository, kind, ref string) *url.URL {
	return v2URL(repo, repo.RepositoryStr()+"/"+kind+"/"+ref)
}

// manifestTypes are the manifest media types Resolve accepts.
var manifestTypes = []string{
	string(types.OCIImageIndex),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestList),
	string(types.DockerManifestSchema2),
}

// Resolve finds the digest ref points to. A tag is resolved with a HEAD
// request, falling back to a GET when the HEAD answer lacks the digest, size
// or media type; a digest reference is checked to exist the same way. The
// returned Lookup records the request that decided (the GET when it was
// needed), its Duration covering both. A reference that does not exist
// returns an error wrapping ErrNotFound. The authentication and each
// request are bounded by the lookup timeout; retries (see session.do) by
// ctx.
func (r *Registry) Resolve(ctx context.Context, ref string) (Subject, Lookup, error) {
	l := Lookup{Step: ResolveStep}
	parsed, err := r.parseReference(ref)
	if err != nil {
		l.Err = err.Error()
		return Subject{}, l, fmt.Errorf("resolving %q: %w", ref, err)
	}
	start := time.Now()
	s, l, err := r.resolve(ctx, parsed)
	l.Duration = time.Since(start)
	if err != nil {
		return Subject{}, l, fmt.Errorf("resolving %s: %w", ref, err)
	}
	s.Ref = ref
	return s, l, nil
}

func (r *Registry) resolve(ctx context.Context, ref name.Reference) (Subject, Lookup, error) {
	repo := ref.Context()
	l := Lookup{Step: ResolveStep}
	// fail returns l's error, wrapping the caller's cancellation if any.
	fail := func(l Lookup) (Subject, Lookup, error) {
		return Subject{}, l, &lookupError{msg: l.Err, cause: ctx.Err()}
	}
	hctx, cancel := context.WithTimeout(ctx, r.timeout)
	sess, err := r.session(hctx, repo)
	cancel()
	if err != nil {
		l.URL = redactURL(v2URL(repo, ""))
		l.Err = err.Error()
		return fail(l)
	}
	// Each request has its own timeout; retries are bounded by ctx.
	u := repoURL(repo, "manifests", ref.Identifier())
	want, byDigest := ref.(name.Digest)

	a, l := sess.do(ctx, request{step: ResolveStep, method: http.MethodHead, url: u, accept: manifestTypes})
	if l.Err == "" && a.status == http.StatusOK {
		d, derr := gcrv1.NewHash(a.header.Get("Docker-Content-Digest"))
		mt := a.header.Get("Content-Type")
		size, serr := strconv.ParseInt(a.header.Get("Content-Length"), 10, 64)
		if derr == nil && serr == nil && mt != "" && size > 0 {
			l.Found = 1
			if byDigest && d.String() != want.DigestStr() {
				l.Err = fmt.Sprintf("registry answered digest %s", d)
				return fail(l)
			}
			return Subject{Repository: repo.Name(), Digest: d.String(), MediaType: mt, Size: size, named: !byDigest}, l, nil
		}
	}
	if a.status == http.StatusNotFound {
		return Subject{}, l, fmt.Errorf("%w (HTTP 404)", ErrNotFound)
	}
	if ctx.Err() != nil {
		if l.Err == "" {
			l.Err = sess.statusMessage(a)
		}
		return fail(l)
	}

	// The HEAD answer did not do; GET the manifest and hash it.
	a, l = sess.do(ctx, request{step: ResolveStep, method: http.MethodGet, url: u, accept: manifestTypes, limit: maxManifestSize})
	if l.Err != "" {
		return fail(l)
	}
	switch a.status {
	case http.StatusOK:
	case http.StatusNotFound:
		return Subject{}, l, fmt.Errorf("%w (HTTP 404)", ErrNotFound)
	default:
		l.Err = sess.statusMessage(a)
		return fail(l)
	}
	algo := "sha256"
	if byDigest {
		h, err := gcrv1.NewHash(want.DigestStr())
		if err != nil {
			l.Err = err.Error()
			return fail(l)
		}
		algo = h.Algorithm
	}
	d, err := digestOf(algo, a.body)
	if err != nil {
		l.Err = err.Error()
		return fail(l)
	}
	if byDigest && d != want.DigestStr() {
		l.Err = fmt.Sprintf("manifest has digest %s", d)
		return fail(l)
	}
	if h, err := gcrv1.NewHash(a.header.Get("Docker-Content-Digest")); err == nil && h.Algorithm == algo && h.String() != d {
		// The registry says one thing and serves another: neither can be
		// trusted to be what a runtime would pull.
		l.Err = fmt.Sprintf("the registry answered digest %s for a manifest whose digest is %s", gate.Clip(h.String(), 80), d)
		return fail(l)
	}
	mt := a.header.Get("Content-Type")
	var mf struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(a.body, &mf) == nil && mf.MediaType != "" {
		mt = mf.MediaType
	}
	l.Found = 1
	return Subject{Repository: repo.Name(), Digest: d, MediaType: mt, Size: int64(len(a.body))}, l, nil
}

// confirm checks that the registry holds s.Digest, when it was only named
// by a HEAD answer's header (Subject.named), with a HEAD of the digest. It
// returns the lookup, and false when the registry answered that it does
// not hold it: a tag resolved to a digest that does not exist is not an
// image without signatures.
func (r *Registry) confirm(ctx context.Context, s Subject) (Lookup, bool) {
	if !s.named {
		return Lookup{}, true
	}
	ref := s.Repository + "@" + s.Digest
	_, l, err := r.Resolve(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		l.Err = fmt.Sprintf("the registry resolved %s to %s, which it does not hold", gate.Clip(s.Ref, maxIdentityText), s.Digest)
		return l, false
	}
	return l, true
}

// lookupError is a failed lookup's message, wrapping the caller's
// cancellation (if that is what ended it) for errors.Is.
type lookupError struct {
	msg   string
	cause error
}

func (e *lookupError) Error() string { return e.msg }
func (e *lookupError) Unwrap() error { return e.cause }

// digestOf returns "<algo>:<hex>" of b.
func digestOf(algo string, b []byte) (string, error) {
	h, err := gcrv1.Hasher(algo)
	if err != nil {
		return "", err
	}
	h.Write(b)
	return fmt.Sprintf("%s:%x", algo, h.Sum(nil)), nil
}
