package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sync/singleflight"

	"github.com/pregate/pregate/gate"
)

// Verifier verifies images against named policies for the gate. Within its
// lifetime each reference is resolved once, each digest discovered once,
// and each digest checked against each policy once, however many callers
// ask at the same time.
//
// A lookup shared by several callers is never spoiled by one of them
// giving up: what a cancelled context computed is neither cached nor handed
// to the others, who look it up again.
//
// With WithCache, results also come from, and go to, a Cache shared with
// other Verifiers (see Cache for what it keeps); references are still
// resolved by each Verifier, with its own Registry.
type Verifier struct {
	registry     *Registry
	policies     map[string]*Policy // by name, for Explain
	compiled     map[*Policy]bool
	cache        *Cache
	imageTimeout time.Duration
	everyPlace   bool
	onResolved   func(ref string)

	flight   singleflight.Group
	mu       sync.Mutex
	resolved map[string]resolution // by reference
	found    map[string]Discovery  // by stage, repository@digest
	checked  map[string]Result     // by policy, repository@digest
}

// DefaultCacheTTL is how long the controller's Cache and the CLI's
// verdict cache directory keep a result unless told otherwise.
const DefaultCacheTTL = 10 * time.Minute

// DefaultImageTimeout bounds the verification of one image unless
// WithImageTimeout says otherwise.
const DefaultImageTimeout = time.Minute

type resolution struct {
	subject Subject
	lookup  Lookup
	err     error
}

// VerifierOption configures a Verifier.
type VerifierOption func(*verifierOptions) error

type verifierOptions struct {
	cache        *Cache
	imageTimeout time.Duration
	everyPlace   bool
	onResolved   func(ref string)
}

// WithResolved calls f with each reference once it is resolved to a
// digest (or known by its digest), before its signatures are looked up:
// for showing progress. f is called from several goroutines at once.
func WithResolved(f func(ref string)) VerifierOption {
	return func(o *verifierOptions) error {
		o.onResolved = f
		return nil
	}
}

// WithEveryPlace makes every discovery read every place, even when a
// signature the referrers API lists settles the verdict: for explaining,
// where what is stored elsewhere is worth showing. The verdicts are the
// same; the requests are more.
func WithEveryPlace() VerifierOption {
	return func(o *verifierOptions) error {
		o.everyPlace = true
		return nil
	}
}

// WithImageTimeout bounds the verification of one image: resolving it and
// discovering its signatures, retries and waits included, must end within
// d. What is cut short is a failed lookup, named in the Result, which is
// LookupFailed unless what was found verified. It must be positive; the
// default is DefaultImageTimeout. (Each request is bounded on its own by
// the Registry's lookup timeout; this bounds them all together, against a
// registry that answers each just in time.)
func WithImageTimeout(d time.Duration) VerifierOption {
	return func(o *verifierOptions) error {
		if d <= 0 {
			return fmt.Errorf("image timeout must be positive, got %s", d)
		}
		o.imageTimeout = d
		return nil
	}
}

// WithCache shares results with the other Verifiers that use c: a digest
// already checked against a policy with the same Fingerprint is not
// discovered and checked again until its result expires. Policies without
// a Fingerprint do not use c. By default a Verifier shares nothing.
func WithCache(c *Cache) VerifierOption {
	return func(o *verifierOptions) error {
		if c == nil {
			return errors.New("cache must not be nil")
		}
		o.cache = c
		return nil
	}
}

// NewVerifier returns a Verifier for the given policies, which must have
// distinct names and be valid.
func NewVerifier(r *Registry, policies []*Policy, opts ...VerifierOption) (*Verifier, error) {
	o := &verifierOptions{imageTimeout: DefaultImageTimeout}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("invalid verifier option: %w", err)
		}
	}
	v := &Verifier{
		registry: r, policies: map[string]*Policy{}, compiled: map[*Policy]bool{}, cache: o.cache, imageTimeout: o.imageTimeout, everyPlace: o.everyPlace, onResolved: o.onResolved,
		resolved: map[string]resolution{}, found: map[string]Discovery{}, checked: map[string]Result{},
	}
	for _, p := range policies {
		if _, dup := v.policies[p.Name]; dup {
			return nil, fmt.Errorf("policy %q is given twice", p.Name)
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("policy %q: %w", p.Name, err)
		}
		v.policies[p.Name] = p
		v.compiled[p] = true
	}
	return v, nil
}

// Verify implements gate.Verifier: Check, as the gate needs it.
func (v *Verifier) Verify(ctx context.Context, image string, p gate.Policy) (gate.Finding, error) {
	res, err := v.Check(ctx, image, p)
	if err != nil {
		return gate.Finding{}, err
	}
	return res.Finding(), nil
}

// Check verifies image against the policy this Verifier compiled for p
// (p.Verify, one of the policies it was made with) and returns everything
// that was looked up and considered. An error means the policy is not one
// of the Verifier's, or ctx ended; registry failures are part of the
// Result. A policy whose static authorities decide every image (see
// Policy.Check) is answered without the registry: the Result has no
// digest and no lookup.
func (v *Verifier) Check(ctx context.Context, image string, p gate.Policy) (Result, error) {
	vp, ok := p.Verify.(*Policy)
	if !ok || !v.compiled[vp] {
		return Result{}, fmt.Errorf("policy %q was not compiled for this verifier", p.Name)
	}
	return v.check(ctx, image, vp)
}

// Finding is what the gate needs of a Result.
func (r Result) Finding() gate.Finding {
	return gate.Finding{Image: r.Subject.Ref, Policy: r.Policy, Digest: r.Subject.Digest, Status: r.Status, Detail: r.Detail}
}

// resolvedRef tells the WithResolved function, if any, of ref.
func (v *Verifier) resolvedRef(ref string) {
	if v.onResolved != nil {
		v.onResolved(ref)
	}
}

// Explain verifies one image against the policy of that name, as Check.
func (v *Verifier) Explain(ctx context.Context, image, policy string) (Result, error) {
	p, ok := v.policies[policy]
	if !ok {
		return Result{}, fmt.Errorf("no policy named %q", policy)
	}
	return v.check(ctx, image, p)
}

// check verifies one image against one of the Verifier's policies.
func (v *Verifier) check(ctx context.Context, image string, p *Policy) (Result, error) {
	policy := p.Name
	if res, ok := p.static(image); ok {
		// Decided without the registry: nothing to resolve or discover.
		res.Subject = Subject{Ref: image}
		return res, nil
	}
	// A digest reference whose result is kept, for a Verifier with the
	// same credentials, needs no request at all: the digest is what was
	// verified, and those credentials have read it.
	if res, ok := v.known(ctx, p, image); ok {
		v.resolvedRef(image)
		return res, nil
	}
	// The image's deadline runs from here, for whichever of its lookups
	// this caller makes (a lookup another caller is making runs on that
	// caller's).
	deadline := time.Now().Add(v.imageTimeout)
	bounded := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithDeadlineCause(ctx, deadline, &imageDeadlineError{v.imageTimeout})
	}
	r, err := shared(ctx, v, &v.resolved, "resolve\x00"+image, func(ctx context.Context) resolution {
		ctx, cancel := bounded(ctx)
		defer cancel()
		s, l, err := v.registry.Resolve(ctx, image)
		return resolution{subject: s, lookup: l, err: err}
	})
	if err != nil {
		return Result{}, err
	}
	if r.err != nil {
		// A reference that cannot be resolved is a finding about the image,
		// not a failure of the verifier.
		return Result{Policy: policy, Subject: Subject{Ref: image}, Status: ResolveFailed, Detail: r.err.Error(), Lookups: []Lookup{r.lookup}}, nil //nolint:nilerr // see above
	}
	v.resolvedRef(image)
	key := r.subject.Repository + "@" + r.subject.Digest
	// Discovery in two stages: the referrers API first, and the other
	// places only when what it lists does not verify. A signature found
	// there is as good as one found anywhere else, and a denial still
	// rests on every place (Check says which were looked up).
	check := func(ctx context.Context) Result {
		first, err := shared(ctx, v, &v.found, "first\x00"+key, func(ctx context.Context) Discovery {
			ctx, cancel := bounded(ctx)
			defer cancel()
			return v.registry.discoverFirst(ctx, r.subject)
		})
		if err != nil {
			return Result{} // ctx ended: shared neither caches nor returns this
		}
		if res := p.Check(first); res.Status == Verified && !v.everyPlace {
			return res
		}
		all, err := shared(ctx, v, &v.found, "all\x00"+key, func(ctx context.Context) Discovery {
			ctx, cancel := bounded(ctx)
			defer cancel()
			return v.registry.discoverRest(ctx, first)
		})
		if err != nil {
			return Result{}
		}
		res := p.Check(all)
		if res.Status == NoSignatures {
			// Nothing anywhere: make sure there is an image to speak of.
			ctx, cancel := bounded(ctx)
			defer cancel()
			if l, ok := v.registry.confirm(ctx, r.subject); !ok {
				res.Status, res.Detail = ResolveFailed, l.Err
				res.Lookups = append(res.Lookups, l)
			}
		}
		return res
	}
	res, err := shared(ctx, v, &v.checked, policy+"\x00"+key, func(ctx context.Context) Result {
		if v.cache == nil || p.Fingerprint == "" {
			return check(ctx)
		}
		repo, err := v.registry.parseRepository(r.subject.Repository)
		access := ""
		if err == nil {
			access = v.registry.access(ctx, repo)
		}
		res, err := v.cache.result(ctx, p.Fingerprint, key, access, check)
		if err != nil {
			return Result{} // ctx ended: as above
		}
		res.Policy = p.Name
		return res
	})
	if err != nil {
		return Result{}, err
	}
	res.Subject.Ref = image
	res.Lookups = append([]Lookup{r.lookup}, res.Lookups...)
	return res, nil
}

// known returns the cached result of a digest reference for p, if the
// Cache keeps one that a Verifier with this one's credentials resolved.
func (v *Verifier) known(ctx context.Context, p *Policy, image string) (Result, bool) {
	if v.cache == nil || p.Fingerprint == "" {
		return Result{}, false
	}
	ref, err := v.registry.parseReference(image)
	if err != nil {
		return Result{}, false
	}
	dig, ok := ref.(name.Digest)
	if !ok {
		return Result{}, false
	}
	res, ok := v.cache.known(p.Fingerprint, dig.Context().Name()+"@"+dig.DigestStr(), v.registry.access(ctx, dig.Context()))
	if !ok {
		return Result{}, false
	}
	res.Policy, res.Subject.Ref = p.Name, image
	return res, true
}

// imageDeadlineError is the cause of a context ended by the image's
// deadline (WithImageTimeout).
type imageDeadlineError struct{ d time.Duration }

func (e *imageDeadlineError) Error() string {
	return fmt.Sprintf("cut short: the %s allowed to verify one image ran out", e.d)
}

// Policies returns the names of the policies, sorted.
func (v *Verifier) Policies() []string {
	names := make([]string, 0, len(v.policies))
	for n := range v.policies {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// shared returns cache[key], or computes it once for all the callers that
// ask at the same time and caches it (see joinFlight).
func shared[T any](ctx context.Context, v *Verifier, cache *map[string]T, key string, compute func(context.Context) T) (T, error) {
	cached := func() (T, bool) {
		v.mu.Lock()
		defer v.mu.Unlock()
		x, ok := (*cache)[key]
		return x, ok
	}
	store := func(x T) {
		v.mu.Lock()
		defer v.mu.Unlock()
		(*cache)[key] = x
	}
	x, _, err := joinFlight(ctx, &v.flight, key, v.await, cached, compute, store)
	return x, err
}

// await waits for a shared lookup, or for ctx to end. It stays a frame of
// its own: tests find the callers waiting in a Verifier by it.
//
//go:noinline
func (v *Verifier) await(ctx context.Context, ch <-chan singleflight.Result) (any, error) {
	return awaitFlight(ctx, ch)
}

// joinFlight returns the value for key: cached's, or the one computed once,
// in flight g, for all the callers that ask at the same time. compute runs
// with the context of the caller that starts the flight, and store keeps
// what it computed. If that context ends first, what it computed is neither
// stored nor handed out: the callers whose contexts are live start again,
// so that one caller giving up never spoils the others' answer. await waits
// for the flight (each user of joinFlight names its own, for tests to find
// its waiting callers). computed says whether the value is this caller's
// computation rather than a cached or shared one. The error is ctx's, when
// it ended first.
func joinFlight[T any](
	ctx context.Context, g *singleflight.Group, key string,
	await func(context.Context, <-chan singleflight.Result) (any, error),
	cached func() (T, bool), compute func(context.Context) T, store func(T),
) (value T, computed bool, err error) {
	for {
		if err := ctx.Err(); err != nil {
			return value, false, err
		}
		if x, ok := cached(); ok {
			return x, false, nil
		}
		mine := false
		ch := g.DoChan(key, func() (any, error) {
			if x, ok := cached(); ok { // stored between our look and this flight
				return x, nil
			}
			mine = true
			x := compute(ctx)
			if err := ctx.Err(); err != nil {
				return nil, err // spoiled by this caller's cancellation
			}
			store(x)
			return x, nil
		})
		val, err := await(ctx, ch)
		if err == nil {
			// mine was set, if at all, before the flight answered.
			return val.(T), mine, nil
		}
		// The context of the caller whose flight it was ended (ours, or
		// another's): look again, with ours.
	}
}

// awaitFlight waits for a flight's result, or for ctx to end.
func awaitFlight(ctx context.Context, ch <-chan singleflight.Result) (any, error) {
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
