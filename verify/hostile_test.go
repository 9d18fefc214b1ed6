package verify_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// failTimes answers the first n requests it sees with status, then passes
// the others on.
func failTimes(n int32, status int) verifytest.Behaviour {
	var seen atomic.Int32
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if seen.Add(1) <= n {
			verifytest.Status(status)(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	}
}

// delay passes each request on after d.
func delay(d time.Duration) verifytest.Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		select {
		case <-time.After(d):
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}
}

// TestVerifier_retriesWhatARetryCanFix: a 503 and a reset connection are
// asked again, and the image verifies; the lookup says how many attempts
// it took.
func TestVerifier_retriesWhatARetryCanFix(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	for name, fault := range map[string]verifytest.Behaviour{
		"503 once":       failTimes(1, http.StatusServiceUnavailable),
		"429 twice":      failTimes(2, http.StatusTooManyRequests),
		"reset mid-body": resetOnce(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app := newSignedApp(t, ss)
			app.front.On(`^/v2/app/referrers/`, fault)
			v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()))
			res, err := v.Explain(t.Context(), app.front.Host()+"/app:v1", "first-party")
			if err != nil || res.Status != verify.Verified {
				t.Fatalf("Explain() = %s (%s), %v; want Verified", res.Status, res.Detail, err)
			}
			for _, l := range res.Lookups {
				if l.Step == verify.ReferrersStep && l.Attempts < 2 {
					t.Errorf("referrers lookup = %+v, want it to record the retry", l)
				}
			}
		})
	}
}

// resetOnce resets the first connection mid-body, then passes requests on.
func resetOnce() verifytest.Behaviour {
	var once sync.Once
	reset := verifytest.ResetMidBody()
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		first := false
		once.Do(func() { first = true })
		if first {
			reset(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	}
}

// TestVerifier_imageDeadline: a registry that answers every request within
// the lookup timeout cannot hold a verification past the image's deadline:
// what is cut short is a failed lookup naming the deadline, and the result
// is LookupFailed (never a denial, never Verified). Each answer takes
// 300ms, well within the 2s lookup timeout even on a loaded machine; the
// lookups together outlast the 1s image deadline.
func TestVerifier_imageDeadline(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	app.front.On(`^/v2/app/`, delay(300*time.Millisecond))
	r := newRegistry(t, verify.WithLookupTimeout(2*time.Second))
	v, err := verify.NewVerifier(r, []*verify.Policy{firstPartyPolicy(ss.Material())}, verify.WithImageTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := v.Explain(t.Context(), app.front.Host()+"/app:v1", "first-party")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != verify.LookupFailed || !strings.Contains(res.Detail, "cut short: the 1s allowed to verify one image ran out") {
		t.Errorf("Explain() = %s (%s), want LookupFailed, cut short by the image's deadline", res.Status, res.Detail)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Explain() took %s with a 1s image deadline", elapsed)
	}
}

// TestHosts_concurrency: however many images are verified at once, no
// more requests than the limit are in flight to one registry host.
func TestHosts_concurrency(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	front := verifytest.NewFront(t, host)
	var inFlight, most atomic.Int32
	front.On(`^/v2/.+`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m; m = most.Load() {
			if most.CompareAndSwap(m, n) {
				break
			}
		}
		delay(10*time.Millisecond)(w, r, next) // held, so that requests overlap
	})
	var refs []string
	for i := range 12 {
		ref := front.Host() + "/app" + string(rune('a'+i)) + ":v1"
		verifytest.PushRandomImage(t, host+"/app"+string(rune('a'+i))+":v1")
		refs = append(refs, ref)
	}
	hosts, err := verify.NewHosts(verify.WithHostConcurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, verify.WithHosts(hosts))
	v := newTestVerifier(t, r, unusedKeyPolicy())
	var wg sync.WaitGroup
	for _, ref := range refs {
		wg.Go(func() {
			if res, err := v.Explain(t.Context(), ref, "any"); err != nil || res.Status != verify.NoSignatures {
				t.Errorf("Explain(%s) = %s (%s), %v; want NoSignatures", ref, res.Status, res.Detail, err)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m < 1 || m > 2 {
		t.Errorf("at most %d requests were in flight to the registry, want 2", m)
	}
}

// TestVerifier_amplification: a fallback tag listing 256 manifests of 256
// one-byte bundle layers each (65,536 blob GETs for a naive reader) costs
// at most the per-image budget in requests, and the result says so, is
// LookupFailed, and is not cached.
func TestVerifier_amplification(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	front := verifytest.NewFront(t, host)
	img, _ := verifytest.PushRandomImage(t, host+"/app:v1")
	amp := verifytest.NewAmplification(t, img, 256, 256)
	front.On(`^/v2/`, amp.Behaviour())
	c := newCache(t)
	v, err := verify.NewVerifier(newRegistry(t), []*verify.Policy{fingerprinted(unusedKeyPolicy(), "fp")}, verify.WithCache(c))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := v.Explain(t.Context(), front.Host()+"/app:v1", "any")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != verify.LookupFailed || !strings.Contains(res.Detail, "over the budget of 128 manifests, 128 signature or attestation layers and 64 MiB per image") {
		t.Errorf("Explain() = %s (%s), want LookupFailed naming the budget", res.Status, res.Detail)
	}
	blobs, manifests := front.CountMatching(`/blobs/`), front.CountMatching(`/manifests/sha256:`)
	if blobs > 128 || manifests > 129 {
		t.Errorf("the registry got %d blob and %d manifest requests for one image, want at most 128 each (and the index)", blobs, manifests)
	}
	if len(res.Lookups) > 300 || len(res.Considered) > 300 {
		t.Errorf("the result holds %d lookups and %d considerations: not bounded", len(res.Lookups), len(res.Considered))
	}
	if s := c.Stats(); s.Entries != 0 {
		t.Errorf("cache entries = %d, want none: an over-budget result is not kept", s.Entries)
	}
	t.Logf("amplification 256×256: %d blob and %d manifest requests, %d lookups, %s", blobs, manifests, len(res.Lookups), time.Since(start).Round(time.Millisecond))
}

// TestVerifier_resolveLies: a registry whose tag answer names a digest it
// does not hold, or whose manifest does not hash to the digest it names,
// leaves the image unresolved: never a denial about a digest nothing
// runs, never a verdict about bytes the registry disowns.
func TestVerifier_resolveLies(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	for name, tc := range map[string]struct {
		fault verifytest.Behaviour
		want  string
	}{
		"HEAD names a digest the registry does not hold": {verifytest.WrongDigestHeader(), "which it does not hold"},
		// HEAD refused, so the tag is resolved by GET, whose body is
		// corrupt.
		"GET: the manifest does not hash to the digest named": {func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.Method == http.MethodHead {
				verifytest.Status(http.StatusMethodNotAllowed)(w, r, next)
				return
			}
			verifytest.CorruptBody()(w, r, next)
		}, "for a manifest whose digest is"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app := newSignedApp(t, ss)
			app.front.On(`^/v2/app/manifests/v1$`, tc.fault)
			v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()))
			res, err := v.Explain(t.Context(), app.front.Host()+"/app:v1", "first-party")
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != verify.ResolveFailed || !strings.Contains(res.Detail, tc.want) {
				t.Errorf("Explain() = %s (%s), want ResolveFailed saying %q", res.Status, res.Detail, tc.want)
			}
		})
	}
}
