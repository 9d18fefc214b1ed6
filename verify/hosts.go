package verify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/singleflight"
)

// DefaultHostConcurrency bounds the requests in flight to one registry
// host unless WithHostConcurrency says otherwise.
const DefaultHostConcurrency = 16

// Retries: a request answered 429, 500, 502, 503 or 504, or that failed in
// transit (refused, reset, cut short), is sent again, at most
// maxAttempts times in all, after the registry's Retry-After or an
// exponential backoff from retryBase, and only while the caller's
// deadline leaves time for the wait.
const (
	maxAttempts   = 3
	retryBase     = 200 * time.Millisecond
	maxRetryAfter = 5 * time.Minute
)

// Hosts is what Registries that talk to the same registries share: the
// HTTP connections, each registry's authentication challenge (the answer
// to its ping, which depends on no credentials), a bound on the requests
// in flight per host, and a host's request to slow down (a 429 or 503
// with Retry-After holds every request to that host until then, within
// each caller's deadline). A controller makes one for all its Gates; a
// Registry without WithHosts makes its own. It is safe for concurrent
// use.
type Hosts struct {
	transport http.RoundTripper
	perHost   int
	now       func() time.Time

	pingFlight singleflight.Group
	mu         sync.Mutex
	hosts      map[string]*hostState
}

// hostState is what Hosts knows of one registry host.
type hostState struct {
	slots chan struct{} // requests in flight

	// Guarded by Hosts.mu.
	challenge   *transport.Challenge // the ping's answer, reused until pingExpires
	pingExpires time.Time
	notBefore   time.Time // the host asked to wait until then
	private     *bool     // whether the host is a private address (see originIsPrivate)
}

// HostsOption configures NewHosts.
type HostsOption func(*hostsOptions) error

type hostsOptions struct {
	transport http.RoundTripper
	perHost   int
}

// WithHostsTransport sets the transport every request goes through, shared
// as it is. The default is a clone of remote.DefaultTransport (proxy from
// the environment, HTTP/2) whose dials refuse, for a public registry, any
// other host that resolves to a loopback, private or link-local address
// (a redirect or token realm pointing at 169.254.169.254, say): the
// resolved address is checked when the connection is made. A transport
// given here is used as it is, without that check.
func WithHostsTransport(rt http.RoundTripper) HostsOption {
	return func(o *hostsOptions) error {
		if rt == nil {
			return errors.New("transport must not be nil")
		}
		o.transport = rt
		return nil
	}
}

// WithHostConcurrency bounds the requests in flight to each registry host;
// it must be positive. The default is DefaultHostConcurrency.
func WithHostConcurrency(n int) HostsOption {
	return func(o *hostsOptions) error {
		if n <= 0 {
			return fmt.Errorf("host concurrency must be positive, got %d", n)
		}
		o.perHost = n
		return nil
	}
}

// NewHosts returns a Hosts configured by opts.
func NewHosts(opts ...HostsOption) (*Hosts, error) {
	o := &hostsOptions{perHost: DefaultHostConcurrency}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("invalid hosts option: %w", err)
		}
	}
	if o.transport == nil {
		t, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("remote.DefaultTransport is a %T, not an *http.Transport", remote.DefaultTransport)
		}
		o.transport = newGuardedRoundTripper(t)
	}
	return &Hosts{transport: o.transport, perHost: o.perHost, now: time.Now, hosts: map[string]*hostState{}}, nil
}

// host returns the state of a registry host, made on first use.
func (h *Hosts) host(name string) *hostState {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.hosts[name]
	if !ok {
		hs = &hostState{slots: make(chan struct{}, h.perHost)}
		h.hosts[name] = hs
	}
	return hs
}

// challenge returns reg's authentication challenge: a ping (GET /v2/)
// through rt, shared by every caller for reg at the time and reused for
// authTTL. A failed ping is not kept.
func (h *Hosts) challenge(ctx context.Context, reg name.Registry, rt http.RoundTripper) (*transport.Challenge, error) {
	hs := h.host(reg.RegistryStr())
	key := reg.Scheme() + "://" + reg.RegistryStr()
	type pinged struct {
		ch  *transport.Challenge
		err error
	}
	cached := func() (pinged, bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return pinged{ch: hs.challenge}, hs.challenge != nil && h.now().Before(hs.pingExpires)
	}
	ping := func(ctx context.Context) pinged {
		ch, err := transport.Ping(ctx, reg, rt)
		return pinged{ch: ch, err: err}
	}
	store := func(p pinged) {
		if p.err != nil {
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		hs.challenge, hs.pingExpires = p.ch, h.now().Add(authTTL)
	}
	p, _, err := joinFlight(ctx, &h.pingFlight, key, awaitFlight, cached, ping, store)
	if err != nil {
		return nil, err
	}
	return p.ch, p.err
}

// isPrivate says, once per host, whether a registry host is itself a
// private address, so that its redirects into private addresses are its
// own business (see originIsPrivate).
func (h *Hosts) isPrivate(ctx context.Context, host string) bool {
	hs := h.host(host)
	h.mu.Lock()
	if p := hs.private; p != nil {
		h.mu.Unlock()
		return *p
	}
	h.mu.Unlock()
	p := originIsPrivate(ctx, nil, host)
	h.mu.Lock()
	defer h.mu.Unlock()
	hs.private = &p
	return p
}

// acquire takes a slot for a request to host, waiting for one, and for
// the time the host asked to wait, within ctx. It returns the release,
// or why the request cannot be sent in time.
func (h *Hosts) acquire(ctx context.Context, host string, limit time.Duration) (func(), error) {
	hs := h.host(host)
	if err := h.waitHost(ctx, hs, limit); err != nil {
		return nil, err
	}
	select {
	case hs.slots <- struct{}{}:
		return func() { <-hs.slots }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// waitHost waits until the host's Retry-After has passed, or fails at
// once if ctx's deadline comes before it (see sleep).
func (h *Hosts) waitHost(ctx context.Context, hs *hostState, limit time.Duration) error {
	h.mu.Lock()
	until := hs.notBefore
	h.mu.Unlock()
	wait := until.Sub(h.now())
	if wait <= 0 {
		return nil
	}
	return sleep(ctx, wait, limit, fmt.Sprintf("the registry asked to wait %s (Retry-After)", wait.Round(time.Millisecond)))
}

// holdHost records a host's request that nothing be sent before until.
func (h *Hosts) holdHost(host string, until time.Time) {
	hs := h.host(host)
	h.mu.Lock()
	defer h.mu.Unlock()
	if until.After(hs.notBefore) {
		hs.notBefore = until
	}
}

// errDeadlineTooSoon is wrapped by sleep's error when ctx's deadline
// comes before the wait is over.
var errDeadlineTooSoon = errors.New("beyond the deadline")

// sleep waits d, or fails at once, saying why (what), when ctx's deadline
// comes first (without a deadline, when d is over limit), or when ctx ends
// while waiting.
func sleep(ctx context.Context, d, limit time.Duration, what string) error {
	dl, ok := ctx.Deadline()
	if ok && time.Until(dl) < d || !ok && d > limit {
		return fmt.Errorf("%s: %w", what, errDeadlineTooSoon)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// retryable says whether a status is worth another attempt.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryDelay is how long to wait before attempt n+1 (n from 1): the
// answer's Retry-After when it gives one (seconds or an HTTP date, at most
// maxRetryAfter), else retryBase doubled per attempt, with ±20% jitter.
// fromServer says the delay is the registry's.
func retryDelay(n int, header http.Header, now time.Time) (d time.Duration, fromServer bool) {
	if v := header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return min(time.Duration(secs)*time.Second, maxRetryAfter), true
		}
		if t, err := http.ParseTime(v); err == nil {
			return min(max(t.Sub(now), 0), maxRetryAfter), true
		}
	}
	d = retryBase << (n - 1)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5 //nolint:gosec // jitter, not a secret
	return d + jitter, false
}
