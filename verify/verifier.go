package verify

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/sync/singleflight"

	"github.com/pregate/pregate/gate"
)

// Verifier verifies images against named policies for the gate. Within its
// lifetime each reference is resolved once, each digest discovered once,
// and each digest checked against each policy once, however many callers
// ask at the same time.
type Verifier struct {
	registry *Registry
	policies map[string]*Policy

	flight   singleflight.Group
	mu       sync.Mutex
	resolved map[string]resolution // by reference
	found    map[string]Discovery  // by repository@digest
}

type resolution struct {
	subject Subject
	lookup  Lookup
	err     error
}

// NewVerifier returns a Verifier for the given policies, which must have
// distinct names and be valid.
func NewVerifier(r *Registry, policies []*Policy) (*Verifier, error) {
	v := &Verifier{registry: r, policies: map[string]*Policy{}, resolved: map[string]resolution{}, found: map[string]Discovery{}}
	for _, p := range policies {
		if _, dup := v.policies[p.Name]; dup {
			return nil, fmt.Errorf("policy %q is given twice", p.Name)
		}
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("policy %q: %w", p.Name, err)
		}
		v.policies[p.Name] = p
	}
	return v, nil
}

// Verify implements gate.Verifier.
func (v *Verifier) Verify(ctx context.Context, image, policy string) (gate.Finding, error) {
	res, err := v.Explain(ctx, image, policy)
	if err != nil {
		return gate.Finding{}, err
	}
	return gate.Finding{Image: image, Policy: policy, Digest: res.Subject.Digest, Status: res.Status, Detail: res.Detail}, nil
}

// Explain verifies one image against one policy and returns everything
// that was looked up and considered. An error means the policy is unknown
// or ctx ended; registry failures are part of the Result.
func (v *Verifier) Explain(ctx context.Context, image, policy string) (Result, error) {
	p, ok := v.policies[policy]
	if !ok {
		return Result{}, fmt.Errorf("no policy named %q", policy)
	}
	r := v.resolve(ctx, image)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if r.err != nil {
		// A reference that cannot be resolved is a finding about the image,
		// not a failure of the verifier.
		return Result{Policy: policy, Subject: Subject{Ref: image}, Status: ResolveFailed, Detail: r.err.Error(), Lookups: []Lookup{r.lookup}}, nil //nolint:nilerr // see above
	}
	d := v.discover(ctx, r.subject)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res := p.Check(d)
	res.Subject.Ref = image
	res.Lookups = append([]Lookup{r.lookup}, res.Lookups...)
	return res, nil
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

func (v *Verifier) resolve(ctx context.Context, ref string) resolution {
	v.mu.Lock()
	r, ok := v.resolved[ref]
	v.mu.Unlock()
	if ok {
		return r
	}
	out, _, _ := v.flight.Do("resolve\x00"+ref, func() (any, error) {
		s, l, err := v.registry.Resolve(ctx, ref)
		r := resolution{subject: s, lookup: l, err: err}
		if ctx.Err() == nil {
			v.mu.Lock()
			v.resolved[ref] = r
			v.mu.Unlock()
		}
		return r, nil
	})
	return out.(resolution)
}

func (v *Verifier) discover(ctx context.Context, s Subject) Discovery {
	key := s.Repository + "@" + s.Digest
	v.mu.Lock()
	d, ok := v.found[key]
	v.mu.Unlock()
	if ok {
		d.Subject.Ref = s.Ref
		return d
	}
	out, _, _ := v.flight.Do("discover\x00"+key, func() (any, error) {
		d := v.registry.Discover(ctx, s)
		if ctx.Err() == nil {
			v.mu.Lock()
			v.found[key] = d
			v.mu.Unlock()
		}
		return d, nil
	})
	d = out.(Discovery)
	d.Subject.Ref = s.Ref
	return d
}
