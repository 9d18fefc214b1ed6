package verify_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// signedApp is an image app:v1 signed keyless (cosign v3) in a registry
// with the referrers API, read through a Front.
type signedApp struct {
	host      string
	front     *verifytest.Front
	img       string // digest reference on the registry
	digest    string
	signature string // the referrer manifest's digest
	layer     string // its bundle layer's digest
}

func newSignedApp(t *testing.T, ss *verifytest.Sigstore) *signedApp {
	t.Helper()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	img, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	b := ss.MustSignImage(t, goodIdentity, ghIssuer, dig)
	return &signedApp{
		host:      host,
		front:     verifytest.NewFront(t, host),
		img:       img,
		digest:    dig,
		signature: verifytest.PushBundle(t, img, b, verifytest.CosignSignPredicateType),
		layer:     digestOf(b),
	}
}

// requests counts the requests for app's manifests, blobs and referrers the
// Front received, by path (tags and digests shortened), leaving out the
// registry's ping (/v2/).
func (a *signedApp) requests() map[string]int {
	tag := strings.Replace(a.digest, ":", "-", 1)
	return map[string]int{
		"manifests/v1":       a.front.Count("/v2/app/manifests/v1"),
		"manifests/v2":       a.front.Count("/v2/app/manifests/v2"),
		"referrers":          a.front.Count("/v2/app/referrers/" + a.digest),
		"fallback tag":       a.front.Count("/v2/app/manifests/" + tag),
		".sig":               a.front.Count("/v2/app/manifests/" + tag + ".sig"),
		".att":               a.front.Count("/v2/app/manifests/" + tag + ".att"),
		"signature manifest": a.front.Count("/v2/app/manifests/" + a.signature),
		"signature bundle":   a.front.Count("/v2/app/blobs/" + a.layer),
		"all of app":         a.front.CountMatching(`^/v2/app/`),
	}
}

// wantRequests is what verifying app once asks for: each tag resolved
// once, the referrers API read once, the signature manifest and bundle
// fetched once; nothing else, the signature found there settling the
// verdict.
func wantRequests(tags ...string) map[string]int {
	want := map[string]int{
		"manifests/v1": 0, "manifests/v2": 0,
		"referrers": 1, "fallback tag": 0, ".sig": 0, ".att": 0, "signature manifest": 1, "signature bundle": 1,
	}
	for _, tag := range tags {
		want["manifests/"+tag] = 1
	}
	want["all of app"] = len(tags) + 3
	return want
}

// everyPlace adds to want the other places, read when what the referrers
// API lists does not verify.
func everyPlace(want map[string]int) map[string]int {
	want["fallback tag"], want[".sig"], want[".att"] = 1, 1, 1
	want["all of app"] += 3
	return want
}

func checkRequests(t *testing.T, a *signedApp, want map[string]int) {
	t.Helper()
	got := a.requests()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("the registry got %d requests for %s, want %d (all: %v)", got[k], k, n, got)
		}
	}
}

// finding is what the gate would have of an Explain.
func finding(res verify.Result, err error) (gate.Finding, error) {
	return res.Finding(), err
}

func newTestVerifier(t *testing.T, r *verify.Registry, policies ...*verify.Policy) *verify.Verifier {
	t.Helper()
	v, err := verify.NewVerifier(r, policies)
	if err != nil {
		t.Fatalf("NewVerifier() = %v", err)
	}
	return v
}

// TestVerifier_once checks that, however many callers ask at once, a
// Verifier resolves each reference once and discovers each digest once,
// and asks nothing again afterwards.
func TestVerifier_once(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	key := verifytest.NewKeySigner(t)
	keyPol := &verify.Policy{Name: "key", Authorities: []verify.Authority{keyAuthority(t, "cosign.pub", key.PublicKeyPEM())}}

	t.Run("one image, two policies", func(t *testing.T) {
		t.Parallel()
		app := newSignedApp(t, ss)
		v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()), keyPol)
		ref := app.front.Host() + "/app:v1"
		// Hold the resolve, then the discovery, until every caller waits
		// for the one that makes it.
		resolved, discovered := make(chan struct{}), make(chan struct{})
		app.front.On(`^/v2/app/manifests/v1$`, verifytest.Block(resolved))
		app.front.On(`^/v2/app/referrers/`, verifytest.Block(discovered))
		policies := []string{"first-party", "key", "first-party", "key"}

		results := make([]verify.Result, len(policies))
		errs := make([]error, len(policies))
		var wg sync.WaitGroup
		for i, p := range policies {
			wg.Go(func() { results[i], errs[i] = v.Explain(t.Context(), ref, p) })
		}
		waitForRequest(t, app.front, "/v2/app/manifests/v1")
		waitForJoiners(t, v, len(policies))
		close(resolved)
		waitForRequest(t, app.front, "/v2/app/referrers/"+app.digest)
		waitForJoiners(t, v, len(policies))
		close(discovered)
		wg.Wait()

		wantStatus := map[string]verify.Status{"first-party": verify.Verified, "key": verify.InvalidSignature}
		for i, res := range results {
			if errs[i] != nil {
				t.Fatalf("Explain(%s, %s) = %v", ref, policies[i], errs[i])
			}
			if res.Status != wantStatus[policies[i]] || res.Subject.Digest != app.digest || res.Policy != policies[i] {
				t.Errorf("Explain(%s, %s) = %s about %s (%s), want %s about %s", ref, policies[i], res.Status, res.Subject.Digest, res.Detail, wantStatus[policies[i]], app.digest)
			}
		}
		// The key policy's signature is nowhere: every place is read,
		// once.
		checkRequests(t, app, everyPlace(wantRequests("v1")))

		// And once more: everything is cached.
		for _, p := range policies {
			if f, err := finding(v.Explain(t.Context(), ref, p)); err != nil || f.Status != wantStatus[p] || f.Digest != app.digest {
				t.Errorf("Verify(%s, %s) again = %+v, %v; want %s about %s", ref, p, f, err, wantStatus[p], app.digest)
			}
		}
		checkRequests(t, app, everyPlace(wantRequests("v1")))
	})

	t.Run("one digest, two tags", func(t *testing.T) {
		t.Parallel()
		app := newSignedApp(t, ss)
		tagAs(t, app.img, app.host+"/app:v2")
		v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()))
		refs := []string{app.front.Host() + "/app:v1", app.front.Host() + "/app:v2", app.front.Host() + "/app:v1", app.front.Host() + "/app:v2"}
		resolved, discovered := make(chan struct{}), make(chan struct{})
		app.front.On(`^/v2/app/manifests/v[12]$`, verifytest.Block(resolved))
		app.front.On(`^/v2/app/referrers/`, verifytest.Block(discovered))

		results := make([]verify.Result, len(refs))
		errs := make([]error, len(refs))
		var wg sync.WaitGroup
		for i, ref := range refs {
			wg.Go(func() { results[i], errs[i] = v.Explain(t.Context(), ref, "first-party") })
		}
		// Two resolves (one per tag), each with two callers waiting.
		waitForRequest(t, app.front, "/v2/app/manifests/v1")
		waitForRequest(t, app.front, "/v2/app/manifests/v2")
		waitForJoiners(t, v, len(refs))
		close(resolved)
		// One discovery of the digest the two tags share.
		waitForRequest(t, app.front, "/v2/app/referrers/"+app.digest)
		waitForJoiners(t, v, len(refs))
		close(discovered)
		wg.Wait()

		for i, res := range results {
			if errs[i] != nil {
				t.Fatalf("Explain(%s) = %v", refs[i], errs[i])
			}
			if res.Status != verify.Verified || res.Subject.Digest != app.digest || res.Subject.Ref != refs[i] {
				t.Errorf("Explain(%s) = %s about %+v (%s), want Verified about %s", refs[i], res.Status, res.Subject, res.Detail, app.digest)
			}
		}
		checkRequests(t, app, wantRequests("v1", "v2"))
	})
}

// tagAs tags the image at digest reference img as tag ("host/repo:tag").
func tagAs(t *testing.T, img, tag string) {
	t.Helper()
	d, err := name.NewDigest(img)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(d, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("reading %s: %v", img, err)
	}
	if err := remote.Tag(tg, desc, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("tagging %s as %s: %v", img, tag, err)
	}
}

func TestVerifier_unknownPolicy(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	r := newRegistry(t)
	v := newTestVerifier(t, r, firstPartyPolicy(ss.Material()))
	ref := app.front.Host() + "/app:v1"

	res, err := v.Explain(t.Context(), ref, "nope")
	if err == nil || !strings.Contains(err.Error(), `no policy named "nope"`) {
		t.Errorf("Explain(unknown policy) = %+v, %v; want an error naming the policy", res, err)
	}
	for _, p := range []gate.Policy{{Name: "nope"}, {Name: "first-party", Verify: firstPartyPolicy(ss.Material())}} {
		f, err := v.Verify(t.Context(), ref, p)
		if err == nil || f.Status != "" || !strings.Contains(err.Error(), "not compiled for this verifier") {
			t.Errorf("Verify(a policy the verifier was not made with) = %+v, %v; want an error and no finding", f, err)
		}
	}
	if n := r.Requests().Total; n != 0 {
		t.Errorf("an unknown policy made %d registry requests, want none", n)
	}
	if got, want := v.Policies(), []string{"first-party"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Policies() = %v, want %v", got, want)
	}
}

// TestVerifier_staticNeedsNoRegistry: a policy that decides every image
// by a static authority is answered without a single registry request (a
// resolve per image for nothing costs rate limit and webhook time).
func TestVerifier_staticNeedsNoRegistry(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	app := newSignedApp(t, ss)
	r := newRegistry(t)
	pass := &verify.Policy{Name: "third-party", Authorities: []verify.Authority{{Name: "anything", Static: &verify.Static{Pass: true}}}}
	fail := &verify.Policy{Name: "banned", Authorities: []verify.Authority{{Name: "never", Static: &verify.Static{Pass: false}}}}
	v := newTestVerifier(t, r, pass, fail)
	for _, ref := range []string{app.front.Host() + "/app:v1", app.front.Host() + "/does-not-exist:v1"} {
		for policy, want := range map[string]verify.Status{"third-party": verify.Verified, "banned": verify.StaticFail} {
			res, err := v.Explain(t.Context(), ref, policy)
			if err != nil {
				t.Fatalf("Explain(%s, %s): %v", ref, policy, err)
			}
			if res.Status != want || res.Subject.Ref != ref || res.Subject.Digest != "" || len(res.Lookups) != 0 {
				t.Errorf("Explain(%s, %s) = %s %+v, %d lookups; want %s with no digest and no lookup", ref, policy, res.Status, res.Subject, len(res.Lookups), want)
			}
		}
	}
	if n := r.Requests().Total; n != 0 {
		t.Errorf("static policies made %d registry requests, want none", n)
	}
}

func TestNewVerifier_invalid(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	r := newRegistry(t)
	for name, tc := range map[string]struct {
		policies []*verify.Policy
		want     string
	}{
		"a name twice":         {[]*verify.Policy{firstPartyPolicy(ss.Material()), firstPartyPolicy(ss.Material())}, `policy "first-party" is given twice`},
		"keyless without root": {[]*verify.Policy{firstPartyPolicy(nil)}, "needs a trust root"},
		"no authority":         {[]*verify.Policy{{Name: "empty"}}, "no authorities"},
	} {
		if _, err := verify.NewVerifier(r, tc.policies); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewVerifier(%s) = %v, want an error containing %q", name, err, tc.want)
		}
	}
}

// TestVerifier_cancelled checks that a cancelled context is an error, never
// a finding (a LookupFailed or ResolveFailed would blame the registry), and
// that nothing a cancelled call saw is cached.
func TestVerifier_cancelled(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)

	t.Run("before the call", func(t *testing.T) {
		t.Parallel()
		app := newSignedApp(t, ss)
		v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		ref := app.front.Host() + "/app:v1"

		res, err := v.Explain(ctx, ref, "first-party")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Explain(cancelled) = %+v, %v; want context.Canceled", res, err)
		}
		if f, err := finding(v.Explain(ctx, ref, "first-party")); !errors.Is(err, context.Canceled) {
			t.Errorf("Verify(cancelled) = %+v, %v; want context.Canceled", f, err)
		}
		if f, err := finding(v.Explain(t.Context(), ref, "first-party")); err != nil || f.Status != verify.Verified {
			t.Errorf("Verify() after a cancelled call = %+v, %v; want Verified", f, err)
		}
	})

	t.Run("during discovery", func(t *testing.T) {
		t.Parallel()
		app := newSignedApp(t, ss)
		v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()))
		ref := app.front.Host() + "/app:v1"
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// Cancel once discovery has begun, and never answer.
		app.front.On(`^/v2/app/referrers/`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			cancel()
			verifytest.Block(nil)(w, r, next)
		})

		res, err := v.Explain(ctx, ref, "first-party")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Explain() cancelled during discovery = %s (%s), %v; want context.Canceled", res.Status, res.Detail, err)
		}
		checkNothingCached(t, app, v, ref)
	})

	t.Run("deadline during discovery", func(t *testing.T) {
		t.Parallel()
		app := newSignedApp(t, ss)
		// The lookup timeout is longer than the caller's deadline: the
		// deadline ends the call, not a lookup.
		v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()))
		ref := app.front.Host() + "/app:v1"
		app.front.On(`^/v2/app/referrers/`, verifytest.Block(nil))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()

		res, err := v.Explain(ctx, ref, "first-party")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Explain() past its deadline = %s (%s), %v; want context.DeadlineExceeded", res.Status, res.Detail, err)
		}
		checkNothingCached(t, app, v, ref)
	})
}

// checkNothingCached checks that, after a call was cancelled during
// discovery, verifying again with a live context discovers again and
// verifies.
func checkNothingCached(t *testing.T, app *signedApp, v *verify.Verifier, ref string) {
	t.Helper()
	app.front.Clear()
	f, err := finding(v.Explain(t.Context(), ref, "first-party"))
	if err != nil || f.Status != verify.Verified || f.Digest != app.digest {
		t.Errorf("Verify() after a cancelled call = %+v, %v; want Verified about %s", f, err, app.digest)
	}
	if n := app.front.Count("/v2/app/referrers/" + app.digest); n != 2 {
		t.Errorf("the referrers API was asked %d times, want 2 (the cancelled discovery is not cached)", n)
	}
}

// TestVerifier_anotherCallersCancellation checks that when callers share a
// resolve or a discovery, one caller's cancellation is not another's
// finding: the caller whose context is live gets the image's real status,
// not a LookupFailed or ResolveFailed that only records "cancelled".
func TestVerifier_anotherCallersCancellation(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	for name, path := range map[string]string{ // the request held while the second caller joins
		"resolve":   `^/v2/app/manifests/v1$`,
		"discovery": `^/v2/app/referrers/`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app := newSignedApp(t, ss)
			v := newTestVerifier(t, newRegistry(t), firstPartyPolicy(ss.Material()))
			ref := app.front.Host() + "/app:v1"
			explain := func(ctx context.Context) (verify.Result, error) { return v.Explain(ctx, ref, "first-party") }
			second, err := cancelFirstCaller(t, app.front, path, explain, explain, func() { waitForJoiners(t, v, 2) })
			if err != nil {
				t.Fatalf("Explain() of the live caller = %v", err)
			}
			if second.Status != verify.Verified {
				t.Errorf("Explain() of the live caller = %s (%s), want Verified: the other caller's cancellation is not a finding about the image", second.Status, second.Detail)
			}
		})
	}
}

// TestVerifier_buildxAttestations: an image index as buildx pushes it
// with --provenance holds an attestation manifest with an unsigned in-toto
// statement. It is read, shown, and counts as no attestation: nothing
// signs it.
func TestVerifier_buildxAttestations(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	ss := verifytest.NewSigstore(t)
	const provenance = "https://slsa.dev/provenance/v0.2"
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"` + provenance + `","subject":[],"predicate":{"builder":{"id":"https://github.com/docker/buildx@v0.19.0"}}}`)
	ref, digest, _ := verifytest.PushBuildxIndex(t, host+"/acme/app:1.0", provenance, statement)
	verifytest.PushBundle(t, ref, ss.MustSignImage(t, goodIdentity, ghIssuer, digest), verify.CosignSignPredicateType)
	reg, err := verify.NewRegistry(verify.WithLookupTimeout(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p := firstPartyPolicy(ss.Material())
	p.Authorities[0].IgnoreSCT = true
	p.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: provenance}}
	v := newTestVerifier(t, reg, p)
	res, err := v.Explain(t.Context(), host+"/acme/app:1.0", p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != verify.AttestationMissing {
		t.Errorf("status %s (%s); want %s: the provenance is not signed", res.Status, res.Detail, verify.AttestationMissing)
	}
	var seen bool
	for _, c := range res.Considered {
		if c.Source == verify.IndexAttestationStep && c.Format == verify.InTotoFormat {
			seen = c.Kind == provenance && !c.Accepted && strings.Contains(c.Reason, "an unsigned in-toto statement of "+provenance) &&
				strings.Contains(c.Reason, "nothing signs it")
		}
	}
	if !seen {
		t.Errorf("considered %+v; want buildx's provenance, unsigned, not accepted", res.Considered)
	}
	found := false
	for _, l := range res.Lookups {
		found = found || (l.Step == verify.IndexAttestationStep && l.Found == 1 && l.Err == "")
	}
	if !found {
		t.Errorf("lookups %+v; want the index read, one attestation manifest found", res.Lookups)
	}
}
