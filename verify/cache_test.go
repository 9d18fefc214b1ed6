package verify_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const cacheTTL = 10 * time.Minute

func newCache(t *testing.T, opts ...verify.CacheOption) *verify.Cache {
	t.Helper()
	c, err := verify.NewCache(cacheTTL, opts...)
	if err != nil {
		t.Fatalf("NewCache() = %v", err)
	}
	return c
}

// cachedVerifier is a Verifier with its own Registry (as each reconcile of
// each Gate has) sharing c.
func cachedVerifier(t *testing.T, c *verify.Cache, policies ...*verify.Policy) *verify.Verifier {
	t.Helper()
	v, err := verify.NewVerifier(newRegistry(t), policies, verify.WithCache(c))
	if err != nil {
		t.Fatalf("NewVerifier() = %v", err)
	}
	return v
}

// fingerprinted returns p with a Fingerprint.
func fingerprinted(p *verify.Policy, fp string) *verify.Policy {
	p.Fingerprint = fp
	return p
}

// unusedKey is the key of unusedKeyPolicy, which signs nothing.
var unusedKey = sync.OnceValue(func() []byte {
	k, err := verifytest.GenerateKeySigner()
	if err != nil {
		panic(err)
	}
	return k.PublicKeyPEM()
})

// unusedKeyPolicy, named "any", trusts a key that signed nothing, without a
// transparency log: it needs the registry (a static policy would not),
// is cheap to check, and its results on images that are unsigned
// (NoSignatures) or signed by others (InvalidSignature) are lasting, so
// cached.
func unusedKeyPolicy() *verify.Policy {
	k, err := verify.NewKey(unusedKey())
	if err != nil {
		panic(err)
	}
	return &verify.Policy{Name: "any", Fingerprint: "fp-any", Authorities: []verify.Authority{{Name: "key", Key: k, IgnoreTlog: true}}}
}

func checkStats(t *testing.T, c *verify.Cache, want verify.CacheStats) {
	t.Helper()
	if diff := cmp.Diff(want, c.Stats()); diff != "" {
		t.Errorf("Stats() (-want +got):\n%s", diff)
	}
}

func mustExplain(t *testing.T, v *verify.Verifier, ref, policy string, want verify.Status) verify.Result {
	t.Helper()
	res, err := v.Explain(t.Context(), ref, policy)
	if err != nil {
		t.Fatalf("Explain(%s, %s) = %v", ref, policy, err)
	}
	if res.Status != want || res.Policy != policy || res.Subject.Ref != ref {
		t.Errorf("Explain(%s, %s) = %s for %q about %q (%s), want %s", ref, policy, res.Status, res.Policy, res.Subject.Ref, res.Detail, want)
	}
	return res
}

// TestCache_sharedBetweenVerifiers: a second Verifier resolves the tag
// itself and takes the result from the cache; policies with another
// fingerprint, or none, verify for themselves.
func TestCache_sharedBetweenVerifiers(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	c := newCache(t)
	ref := app.front.Host() + "/app:v1"
	policy := func() *verify.Policy { return fingerprinted(firstPartyPolicy(ss.Material()), "fp-first-party") }

	first := mustExplain(t, cachedVerifier(t, c, policy()), ref, "first-party", verify.Verified)
	checkRequests(t, app, wantRequests("v1"))
	checkStats(t, c, verify.CacheStats{Misses: 1, Entries: 1})

	second := mustExplain(t, cachedVerifier(t, c, policy()), ref, "first-party", verify.Verified)
	want := wantRequests("v1")
	want["manifests/v1"], want["all of app"] = 2, want["all of app"]+1 // resolved again, nothing else
	checkRequests(t, app, want)
	checkStats(t, c, verify.CacheStats{Hits: 1, Misses: 1, Entries: 1})
	// The resolve lookup is the second Verifier's; the rest is the first's.
	if diff := cmp.Diff(first.Lookups[1:], second.Lookups[1:]); diff != "" {
		t.Errorf("cached Lookups (-first +second):\n%s", diff)
	}
	if first.Detail != second.Detail {
		t.Errorf("cached Detail = %q, want %q", second.Detail, first.Detail)
	}

	// A copy: what one caller does to its Result is not another's.
	second.Considered[0].Reason = "changed"
	third := mustExplain(t, cachedVerifier(t, c, policy()), ref, "first-party", verify.Verified)
	if third.Considered[0].Reason == "changed" {
		t.Error("a change to one caller's Result reached another's")
	}

	// Another fingerprint, and none: not from the cache.
	other := fingerprinted(firstPartyPolicy(ss.Material()), "fp-other")
	mustExplain(t, cachedVerifier(t, c, other), ref, "first-party", verify.Verified)
	mustExplain(t, cachedVerifier(t, c, firstPartyPolicy(ss.Material())), ref, "first-party", verify.Verified)
	if n := app.front.Count("/v2/app/referrers/" + app.digest); n != 3 {
		t.Errorf("the referrers API was asked %d times, want 3 (once per fingerprint, once without)", n)
	}
	checkStats(t, c, verify.CacheStats{Hits: 2, Misses: 2, Entries: 2})
}

// TestCache_ttl checks expiry with a fake clock.
func TestCache_ttl(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	front := verifytest.NewFront(t, host)
	verifytest.PushRandomImage(t, host+"/app:v1")
	clock := clocktesting.NewFakePassiveClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newCache(t, verify.WithCacheClock(clock))
	ref := front.Host() + "/app:v1"
	referrers := func() int { return front.CountMatching(`/referrers/`) }

	mustExplain(t, cachedVerifier(t, c, unusedKeyPolicy()), ref, "any", verify.NoSignatures)
	clock.SetTime(clock.Now().Add(cacheTTL - time.Nanosecond))
	mustExplain(t, cachedVerifier(t, c, unusedKeyPolicy()), ref, "any", verify.NoSignatures)
	if n := referrers(); n != 1 {
		t.Errorf("within the ttl: %d discoveries, want 1", n)
	}
	checkStats(t, c, verify.CacheStats{Hits: 1, Misses: 1, Entries: 1})

	clock.SetTime(clock.Now().Add(time.Nanosecond))
	checkStats(t, c, verify.CacheStats{Hits: 1, Misses: 1, Entries: 0})
	mustExplain(t, cachedVerifier(t, c, unusedKeyPolicy()), ref, "any", verify.NoSignatures)
	if n := referrers(); n != 2 {
		t.Errorf("after the ttl: %d discoveries, want 2", n)
	}
	checkStats(t, c, verify.CacheStats{Hits: 1, Misses: 2, Entries: 1})
}

// TestCache_onlyLastingResults checks which results are shared: those a
// retry cannot change.
func TestCache_onlyLastingResults(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	key := verifytest.NewKeySigner(t)
	for name, tc := range map[string]struct {
		sign   func(t *testing.T, img, digest string)
		fault  string // a path pattern answered 500
		policy func() *verify.Policy
		status verify.Status
		stored bool
	}{
		"verified": {
			sign:   func(t *testing.T, img, dig string) { pushSigned(t, ss, img, dig, goodIdentity) },
			status: verify.Verified, stored: true,
		},
		"verified, though a lookup failed": {
			sign:  func(t *testing.T, img, dig string) { pushSigned(t, ss, img, dig, goodIdentity) },
			fault: `\.sig$`, status: verify.Verified, stored: true,
		},
		"no signatures": {
			status: verify.NoSignatures, stored: true,
		},
		"identity mismatch": {
			sign:   func(t *testing.T, img, dig string) { pushSigned(t, ss, img, dig, evilIdentity) },
			status: verify.IdentityMismatch, stored: true,
		},
		"identity mismatch, and a lookup failed": {
			sign:  func(t *testing.T, img, dig string) { pushSigned(t, ss, img, dig, evilIdentity) },
			fault: `\.att$`, status: verify.IdentityMismatch, stored: false,
		},
		"attestation missing, and a lookup failed": {
			sign: func(t *testing.T, img, dig string) { pushSigned(t, ss, img, dig, goodIdentity) },
			policy: func() *verify.Policy {
				p := firstPartyPolicy(ss.Material())
				p.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: slsaType}}
				return p
			},
			fault: `\.att$`, status: verify.AttestationMissing, stored: false,
		},
		"lookup failed": {
			fault: `\.sig$`, status: verify.LookupFailed, stored: false,
		},
		"invalid signature": {
			sign: func(t *testing.T, img, dig string) {
				verifytest.PushBundle(t, img, key.MustSignImage(t, dig), verifytest.CosignSignPredicateType)
			},
			status: verify.InvalidSignature, stored: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
			img, dig := verifytest.PushRandomImage(t, host+"/app:v1")
			if tc.sign != nil {
				tc.sign(t, img, dig)
			}
			front := verifytest.NewFront(t, host)
			if tc.fault != "" {
				front.On(tc.fault, verifytest.Status(http.StatusInternalServerError))
			}
			policy := func() *verify.Policy {
				p := firstPartyPolicy(ss.Material())
				if tc.policy != nil {
					p = tc.policy()
				}
				return fingerprinted(p, "fp")
			}
			c := newCache(t)
			ref := front.Host() + "/app:v1"
			mustExplain(t, cachedVerifier(t, c, policy()), ref, "first-party", tc.status)
			mustExplain(t, cachedVerifier(t, c, policy()), ref, "first-party", tc.status)

			want := verify.CacheStats{Misses: 2}
			if tc.stored {
				want = verify.CacheStats{Hits: 1, Misses: 1, Entries: 1}
			}
			checkStats(t, c, want)
			if got := front.CountMatching(`/referrers/`); uint64(got) != want.Misses {
				t.Errorf("%d discoveries, want %d", got, want.Misses)
			}
		})
	}
}

func pushSigned(t *testing.T, ss *verifytest.Sigstore, img, digest, identity string) {
	t.Helper()
	verifytest.PushBundle(t, img, ss.MustSignImage(t, identity, ghIssuer, digest), verifytest.CosignSignPredicateType)
}

// TestCache_maxEntries: the oldest result makes room for a new one.
func TestCache_maxEntries(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	var refs []string
	for i := range 3 {
		verifytest.PushRandomImage(t, fmt.Sprintf("%s/app%d:v1", host, i))
		refs = append(refs, fmt.Sprintf("%s/app%d:v1", host, i))
	}
	c := newCache(t, verify.WithCacheMaxEntries(2))

	v := cachedVerifier(t, c, unusedKeyPolicy())
	for _, ref := range refs { // app0 is dropped for app2
		mustExplain(t, v, ref, "any", verify.NoSignatures)
	}
	checkStats(t, c, verify.CacheStats{Misses: 3, Evictions: 1, Entries: 2})

	v = cachedVerifier(t, c, unusedKeyPolicy())
	mustExplain(t, v, refs[2], "any", verify.NoSignatures) // hit
	mustExplain(t, v, refs[1], "any", verify.NoSignatures) // hit
	mustExplain(t, v, refs[0], "any", verify.NoSignatures) // miss: drops app1, the oldest
	checkStats(t, c, verify.CacheStats{Hits: 2, Misses: 4, Evictions: 2, Entries: 2})
	v = cachedVerifier(t, c, unusedKeyPolicy())
	mustExplain(t, v, refs[1], "any", verify.NoSignatures)
	checkStats(t, c, verify.CacheStats{Hits: 2, Misses: 5, Evictions: 3, Entries: 2})
}

// TestCache_onceInFlight: Verifiers asking for the same verification at
// the same time share one; each resolves the tag itself.
func TestCache_onceInFlight(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	c := newCache(t)
	ref := app.front.Host() + "/app:v1"
	discovered := make(chan struct{})
	app.front.On(`^/v2/app/referrers/`, verifytest.Block(discovered))

	const gates = 4
	results := make([]verify.Result, gates)
	errs := make([]error, gates)
	var wg sync.WaitGroup
	for i := range gates {
		v := cachedVerifier(t, c, fingerprinted(firstPartyPolicy(ss.Material()), "fp"))
		wg.Go(func() { results[i], errs[i] = v.Explain(t.Context(), ref, "first-party") })
	}
	waitForRequest(t, app.front, "/v2/app/referrers/"+app.digest)
	waitForCacheWaiters(t, c, gates)
	close(discovered)
	wg.Wait()

	for i := range gates {
		if errs[i] != nil || results[i].Status != verify.Verified || results[i].Subject.Digest != app.digest {
			t.Errorf("Explain() #%d = %s about %s (%s), %v; want Verified about %s", i, results[i].Status, results[i].Subject.Digest, results[i].Detail, errs[i], app.digest)
		}
	}
	want := wantRequests("v1")
	want["manifests/v1"], want["all of app"] = gates, want["all of app"]+gates-1 // every Verifier resolves
	checkRequests(t, app, want)
	checkStats(t, c, verify.CacheStats{Hits: gates - 1, Misses: 1, Entries: 1})
}

// TestCache_anotherCallersCancellation: the caller whose verification the
// others wait for is cancelled; a caller with a live context verifies again
// with its own Verifier and gets the image's real status.
func TestCache_anotherCallersCancellation(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	c := newCache(t)
	ref := app.front.Host() + "/app:v1"
	policy := func() *verify.Policy { return fingerprinted(firstPartyPolicy(ss.Material()), "fp") }
	v1, v2 := cachedVerifier(t, c, policy()), cachedVerifier(t, c, policy())

	second, err := cancelFirstCaller(t, app.front, `^/v2/app/referrers/`,
		func(ctx context.Context) (verify.Result, error) { return v1.Explain(ctx, ref, "first-party") },
		func(ctx context.Context) (verify.Result, error) { return v2.Explain(ctx, ref, "first-party") },
		func() { waitForCacheWaiters(t, c, 2) })
	if err != nil || second.Status != verify.Verified {
		t.Errorf("Explain() of the live caller = %s (%s), %v; want Verified", second.Status, second.Detail, err)
	}
	if n := app.front.Count("/v2/app/referrers/" + app.digest); n != 2 {
		t.Errorf("the referrers API was asked %d times, want 2 (the cancelled verification is not shared)", n)
	}
	// Only the live caller's verification counts; it is stored.
	checkStats(t, c, verify.CacheStats{Misses: 1, Entries: 1})
	mustExplain(t, v1, ref, "first-party", verify.Verified)
	checkStats(t, c, verify.CacheStats{Hits: 1, Misses: 1, Entries: 1})
}

// TestCache_concurrent verifies several images against several policies
// from many Verifiers at once (run it with -race): each verification is
// made once, whoever asks.
func TestCache_concurrent(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	var refs []string
	for i := range 3 {
		img, dig := verifytest.PushRandomImage(t, fmt.Sprintf("%s/app%d:v1", host, i))
		pushSigned(t, ss, img, dig, goodIdentity)
		refs = append(refs, fmt.Sprintf("%s/app%d:v1", host, i))
	}
	c := newCache(t)
	policies := func() []*verify.Policy {
		return []*verify.Policy{fingerprinted(firstPartyPolicy(ss.Material()), "fp-first-party"), unusedKeyPolicy()}
	}
	const gates = 8
	type call struct {
		gate     int
		ref, pol string
		status   verify.Status
		err      error
	}
	var calls []*call
	for g := range gates {
		for _, ref := range refs {
			calls = append(calls, &call{gate: g, ref: ref, pol: "first-party"}, &call{gate: g, ref: ref, pol: "any"})
		}
	}
	verifiers := make([]*verify.Verifier, gates)
	for g := range verifiers {
		verifiers[g] = cachedVerifier(t, c, policies()...)
	}
	var wg sync.WaitGroup
	for _, cl := range calls {
		wg.Go(func() {
			res, err := verifiers[cl.gate].Explain(t.Context(), cl.ref, cl.pol)
			cl.status, cl.err = res.Status, err
		})
	}
	wg.Wait()
	want := map[string]verify.Status{"first-party": verify.Verified, "any": verify.InvalidSignature}
	for _, cl := range calls {
		if cl.err != nil || cl.status != want[cl.pol] {
			t.Errorf("gate %d: Explain(%s, %s) = %s, %v; want %s", cl.gate, cl.ref, cl.pol, cl.status, cl.err, want[cl.pol])
		}
	}
	n := len(refs) * 2 // digests × fingerprints
	checkStats(t, c, verify.CacheStats{Hits: uint64(len(calls) - n), Misses: uint64(n), Entries: n})
}

func TestNewCache_invalid(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		ttl  time.Duration
		opts []verify.CacheOption
		want string
	}{
		"zero ttl":        {0, nil, "ttl must be positive"},
		"negative ttl":    {-time.Second, nil, "ttl must be positive"},
		"no entries":      {time.Minute, []verify.CacheOption{verify.WithCacheMaxEntries(0)}, "max entries must be positive"},
		"nil clock":       {time.Minute, []verify.CacheOption{verify.WithCacheClock(nil)}, "clock must not be nil"},
		"no dir":          {time.Minute, []verify.CacheOption{verify.WithCacheDir("")}, "cache dir must not be empty"},
		"nil warnings":    {time.Minute, []verify.CacheOption{verify.WithCacheWarnings(nil)}, "warnings function must not be nil"},
		"a nil option ok": {time.Minute, []verify.CacheOption{nil}, ""},
	} {
		_, err := verify.NewCache(tc.ttl, tc.opts...)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: NewCache() = %v, want %q", name, err, tc.want)
		}
	}
	if _, err := verify.NewVerifier(newRegistry(t), nil, verify.WithCache(nil)); err == nil || !strings.Contains(err.Error(), "cache must not be nil") {
		t.Errorf("NewVerifier(WithCache(nil)) = %v, want an error", err)
	}
}

// staticKeychain gives every registry the same credentials.
type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

// TestCache_digestReferences: a warm digest reference costs no request:
// its result is kept, and a Verifier with the same credentials resolved it.
// One with other credentials, or a tag (tags move), still asks the registry.
func TestCache_digestReferences(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	c := newCache(t)
	policy := func() *verify.Policy { return fingerprinted(firstPartyPolicy(ss.Material()), "fp") }
	byDigest := app.front.Host() + "/app@" + app.digest
	explain := func(r *verify.Registry, ref string) {
		t.Helper()
		v, err := verify.NewVerifier(r, []*verify.Policy{policy()}, verify.WithCache(c))
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Explain(t.Context(), ref, "first-party")
		if err != nil || res.Status != verify.Verified || res.Subject.Ref != ref {
			t.Fatalf("Explain(%s) = %s about %q (%s), %v; want Verified", ref, res.Status, res.Subject.Ref, res.Detail, err)
		}
	}

	first := newRegistry(t)
	explain(first, byDigest)
	if first.Requests().Total == 0 {
		t.Fatal("the first verification made no request")
	}
	warm := newRegistry(t)
	explain(warm, byDigest)
	if n := warm.Requests().Total; n != 0 {
		t.Errorf("a warm digest reference made %d requests, want 0", n)
	}
	other := newRegistry(t, verify.WithKeychain(staticKeychain{"robot", "s3cret-token"}))
	explain(other, byDigest)
	if n := other.Requests().Total; n == 0 {
		t.Error("other credentials were given the result without resolving the digest")
	}
	tag := newRegistry(t)
	explain(tag, app.front.Host()+"/app:v1")
	if got := app.front.Count("/v2/app/manifests/v1"); got != 1 {
		t.Errorf("the tag was resolved %d times, want 1: tags move", got)
	}
}

// TestCache_dir: Verifiers of a later process, with a Cache of their own on
// the same dir, have the results of the first: a tag is resolved and no
// more, a digest reference the same credentials resolved costs no request,
// and other credentials still resolve it.
func TestCache_dir(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	dir := t.TempDir()
	policy := func() *verify.Policy { return fingerprinted(firstPartyPolicy(ss.Material()), "fp") }
	tag, byDigest := app.front.Host()+"/app:v1", app.front.Host()+"/app@"+app.digest
	// process returns a Verifier of a new process: a new Cache on dir.
	process := func(r *verify.Registry) *verify.Verifier {
		t.Helper()
		c := newCache(t, verify.WithCacheDir(dir), verify.WithCacheWarnings(func(err error) {
			t.Errorf("cache warning: %v", err)
		}))
		v, err := verify.NewVerifier(r, []*verify.Policy{policy()}, verify.WithCache(c))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	first := mustExplain(t, process(newRegistry(t)), tag, "first-party", verify.Verified)
	checkRequests(t, app, wantRequests("v1"))

	second := mustExplain(t, process(newRegistry(t)), tag, "first-party", verify.Verified)
	want := wantRequests("v1")
	want["manifests/v1"], want["all of app"] = 2, want["all of app"]+1 // resolved again, nothing else
	checkRequests(t, app, want)
	if diff := cmp.Diff(first.Lookups[1:], second.Lookups[1:]); diff != "" {
		t.Errorf("Lookups from the dir (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(first.Considered, second.Considered); diff != "" {
		t.Errorf("Considered from the dir (-first +second):\n%s", diff)
	}

	warm := newRegistry(t)
	mustExplain(t, process(warm), byDigest, "first-party", verify.Verified)
	if n := warm.Requests().Total; n != 0 {
		t.Errorf("a digest reference the dir knows made %d requests, want 0", n)
	}
	other := newRegistry(t, verify.WithKeychain(staticKeychain{"robot", "s3cret-token"}))
	mustExplain(t, process(other), byDigest, "first-party", verify.Verified)
	if other.Requests().Total == 0 {
		t.Error("other credentials were given the result without resolving the digest")
	}
	// Now they have resolved it: the dir knows, for the next process.
	again := newRegistry(t, verify.WithKeychain(staticKeychain{"robot", "s3cret-token"}))
	mustExplain(t, process(again), byDigest, "first-party", verify.Verified)
	if n := again.Requests().Total; n != 0 {
		t.Errorf("a digest reference the dir knows for the robot made %d requests, want 0", n)
	}
	if n := app.front.Count("/v2/app/referrers/" + app.digest); n != 1 {
		t.Errorf("the referrers API was asked %d times, want 1", n)
	}
}
