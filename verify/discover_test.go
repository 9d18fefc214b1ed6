package verify_test

import (
	stdcmp "cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// testTimeout is the lookup timeout of tests that expect a lookup to time
// out; discoveries must end within a few of them.
const testTimeout = 300 * time.Millisecond

// anonymous resolves every registry to no credentials, whatever the docker
// config of the machine running the tests says.
var anonymous = authn.NewMultiKeychain()

func newRegistry(t testing.TB, opts ...verify.RegistryOption) *verify.Registry {
	t.Helper()
	r, err := verify.NewRegistry(append([]verify.RegistryOption{
		verify.WithKeychain(anonymous),
		verify.WithLookupTimeout(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return r
}

// subjectOf returns the Subject of a digest reference, read through host
// (the registry or a Front in front of it).
func subjectOf(t testing.TB, host, ref string) verify.Subject {
	t.Helper()
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatalf("parsing %q: %v", ref, err)
	}
	return verify.Subject{Ref: ref, Repository: host + "/" + d.Context().RepositoryStr(), Digest: d.DigestStr()}
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

func bundle(s string) []byte {
	return []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"` + s + `"}}`)
}

// foundBundle is the Artifact Discover makes of bundle b, stored as the
// referrer manifest ref and listed at src.
func foundBundle(src verify.Step, ref string, b []byte) verify.Artifact {
	a := verify.Artifact{
		Source: src, Manifest: ref, Layer: digestOf(b),
		Format: verify.BundleFormat, MediaType: verifytest.BundleMediaType, Content: b,
	}
	if src == verify.ReferrersStep || src == verify.FallbackTagStep {
		a.ArtifactType = verifytest.BundleMediaType // as verifytest.PushBundle lists it
	}
	return a
}

// bundled is an image signed the cosign v3 way, as pushBundled stores it.
type bundled struct {
	img      string // the image's digest reference
	digest   string
	bundle   []byte
	referrer string // the bundle's referrer manifest digest
}

// pushBundled pushes a random image to host as app:v1 and the bundle
// bundle("sig") as its referrer.
func pushBundled(t testing.TB, host string) bundled {
	t.Helper()
	img, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	b := bundle("sig")
	return bundled{img: img, digest: dig, bundle: b, referrer: verifytest.PushBundle(t, img, b, verifytest.CosignSignPredicateType)}
}

// found is the Artifact Discover makes of the bundle, listed at src.
func (s bundled) found(src verify.Step) verify.Artifact {
	return foundBundle(src, s.referrer, s.bundle)
}

// lookup is the part of a Lookup tests compare: the URL's path, not its
// host:port, and whether it failed rather than its message.
type lookup struct {
	Step   verify.Step
	Path   string
	Status int
	Found  int
	Failed bool
}

func lookups(t testing.TB, ls []verify.Lookup) []lookup {
	t.Helper()
	var out []lookup
	for _, l := range ls {
		p := ""
		if l.URL != "" {
			u, err := url.Parse(l.URL)
			if err != nil {
				t.Fatalf("Lookup URL %q: %v", l.URL, err)
			}
			p = u.Path
		}
		out = append(out, lookup{Step: l.Step, Path: p, Status: l.Status, Found: l.Found, Failed: l.Failed()})
	}
	return out
}

// paths returns the request paths Discover makes for the subject at digest
// in repository app.
func paths(digest string) (referrers, fallback, sig, att string) {
	tag := strings.Replace(digest, ":", "-", 1)
	return "/v2/app/referrers/" + digest, "/v2/app/manifests/" + tag, "/v2/app/manifests/" + tag + ".sig", "/v2/app/manifests/" + tag + ".att"
}

func manifestPath(d string) string { return "/v2/app/manifests/" + d }
func blobPath(d string) string     { return "/v2/app/blobs/" + d }

// artifactErrs keeps only whether an Artifact has an error, so tests can
// want "some error" with Err: "x".
var artifactErrs = cmp.Transformer("failed", func(a verify.Artifact) verify.Artifact {
	if a.Err != "" {
		a.Err = "x"
	}
	return a
})

func TestDiscover_referrersAPI(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	s := pushBundled(t, host)

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, host, s.img))

	want := []verify.Artifact{s.found(verify.ReferrersStep)}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	rp, fp, sp, ap := paths(s.digest)
	wantLookups := []lookup{
		{Step: verify.ReferrersStep, Path: rp, Status: 200, Found: 1},
		{Step: verify.FallbackTagStep, Path: fp, Status: 404},
		{Step: verify.SignatureTagStep, Path: sp, Status: 404},
		{Step: verify.AttestationTagStep, Path: ap, Status: 404},
		{Step: verify.ManifestStep, Path: manifestPath(s.referrer), Status: 200, Found: 1},
		{Step: verify.BlobStep, Path: blobPath(digestOf(s.bundle)), Status: 200, Found: 1},
	}
	if diff := cmp.Diff(wantLookups, lookups(t, got.Lookups)); diff != "" {
		t.Errorf("Discover() lookups (-want +got):\n%s", diff)
	}
	if f := got.Failures(); len(f) != 0 {
		t.Errorf("Discover() failures = %+v, want none", f)
	}
}

func TestDiscover_fallbackTagOnly(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t) // no referrers API
	s := pushBundled(t, host)

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, host, s.img))

	want := []verify.Artifact{s.found(verify.FallbackTagStep)}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	rp, fp, _, _ := paths(s.digest)
	wantLookups := []lookup{
		// A 404 from the referrers API only means it is not supported.
		{Step: verify.ReferrersStep, Path: rp, Status: 404},
		{Step: verify.FallbackTagStep, Path: fp, Status: 200, Found: 1},
	}
	if diff := cmp.Diff(wantLookups, lookups(t, got.Lookups)[:2]); diff != "" {
		t.Errorf("Discover() lookups (-want +got):\n%s", diff)
	}
	if f := got.Failures(); len(f) != 0 {
		t.Errorf("Discover() failures = %+v, want none", f)
	}
}

func TestDiscover_legacyTags(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, dig := verifytest.PushRandomImage(t, host+"/app")
	p1 := verifytest.SimpleSigningPayload(host+"/app", dig)
	p2 := append(verifytest.SimpleSigningPayload(host+"/app", dig), '\n')
	a1 := map[string]string{"dev.cosignproject.cosign/signature": "c2lnMQ=="}
	a2 := map[string]string{"dev.cosignproject.cosign/signature": "c2lnMg==", "dev.sigstore.cosign/certificate": "PEM"}
	verifytest.PushLegacySignature(t, img, p1, a1)
	sigManifest := verifytest.PushLegacySignature(t, img, p2, a2)
	env := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)
	a3 := map[string]string{"dev.cosignproject.cosign/signature": "", "predicateType": verifytest.SLSAProvenancePredicateType}
	attManifest := verifytest.PushLegacyAttestation(t, img, env, a3)

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, host, img))

	sigs := []verify.Artifact{
		{Source: verify.SignatureTagStep, Manifest: sigManifest, Layer: digestOf(p1), Format: verify.SimpleSigningFormat,
			MediaType: verifytest.SimpleSigningMediaType, Content: p1, Annotations: a1},
		{Source: verify.SignatureTagStep, Manifest: sigManifest, Layer: digestOf(p2), Format: verify.SimpleSigningFormat,
			MediaType: verifytest.SimpleSigningMediaType, Content: p2, Annotations: a2},
	}
	if digestOf(p2) < digestOf(p1) {
		sigs[0], sigs[1] = sigs[1], sigs[0]
	}
	want := append(sigs, verify.Artifact{
		Source: verify.AttestationTagStep, Manifest: attManifest, Layer: digestOf(env), Format: verify.DSSEFormat,
		MediaType: verifytest.DSSEMediaType, Content: env, Annotations: a3,
	})
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	rp, fp, sp, ap := paths(dig)
	wantLookups := []lookup{
		{Step: verify.ReferrersStep, Path: rp, Status: 404},
		{Step: verify.FallbackTagStep, Path: fp, Status: 404},
		{Step: verify.SignatureTagStep, Path: sp, Status: 200, Found: 2},
		{Step: verify.AttestationTagStep, Path: ap, Status: 200, Found: 1},
	}
	if diff := cmp.Diff(wantLookups, lookups(t, got.Lookups)[:4]); diff != "" {
		t.Errorf("Discover() lookups (-want +got):\n%s", diff)
	}
	if n := len(got.Lookups); n != 4+3 {
		t.Errorf("Discover() made %d lookups, want 4 places and 3 blobs: %+v", n, got.Lookups)
	}
}

func TestDiscover_mergesAllPlaces(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	img, dig := verifytest.PushRandomImage(t, host+"/app")

	// A: cosign v3.1 with a referrers API, and also listed in the fallback
	// tag (a registry that gained the API after the image was signed).
	ba := bundle("a")
	refA := verifytest.PushBundle(t, img, ba, verifytest.CosignSignPredicateType)
	raw, err := remote.Get(mustDigest(t, host+"/app@"+refA))
	if err != nil {
		t.Fatal(err)
	}
	verifytest.AddFallbackEntry(t, img, raw.Descriptor)
	// B: cosign v3.0.x: the fallback entry says "empty"; the referrers API of
	// ggcr's registry reports the config media type, "empty" too.
	bb := bundle("b")
	refB := verifytest.PushBundleEmptyArtifactType(t, img, bb, verifytest.SLSAProvenancePredicateType)
	// Legacy signature and attestation.
	payload := verifytest.SimpleSigningPayload(host+"/app", dig)
	sigManifest := verifytest.PushLegacySignature(t, img, payload, nil)
	env := []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)
	attManifest := verifytest.PushLegacyAttestation(t, img, env, nil)

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, host, img))

	want := []verify.Artifact{
		foundBundle(verify.ReferrersStep, refA, ba),
		foundBundle(verify.ReferrersStep, refB, bb),
		{Source: verify.SignatureTagStep, Manifest: sigManifest, Layer: digestOf(payload), Format: verify.SimpleSigningFormat, MediaType: verifytest.SimpleSigningMediaType, Content: payload},
		{Source: verify.AttestationTagStep, Manifest: attManifest, Layer: digestOf(env), Format: verify.DSSEFormat, MediaType: verifytest.DSSEMediaType, Content: env},
	}
	if refB < refA {
		want[0], want[1] = want[1], want[0]
	}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	rp, fp, sp, ap := paths(dig)
	wantPlaces := []lookup{
		{Step: verify.ReferrersStep, Path: rp, Status: 200, Found: 2},
		{Step: verify.FallbackTagStep, Path: fp, Status: 200, Found: 2},
		{Step: verify.SignatureTagStep, Path: sp, Status: 200, Found: 1},
		{Step: verify.AttestationTagStep, Path: ap, Status: 200, Found: 1},
	}
	gotLookups := lookups(t, got.Lookups)
	if diff := cmp.Diff(wantPlaces, gotLookups[:4]); diff != "" {
		t.Errorf("Discover() place lookups (-want +got):\n%s", diff)
	}
	// Each manifest listed twice is opened once.
	var opened []string
	for _, l := range gotLookups {
		if l.Step == verify.ManifestStep {
			opened = append(opened, l.Path)
		}
	}
	wantOpened := []string{manifestPath(refA), manifestPath(refB)}
	if diff := cmp.Diff(wantOpened, opened, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("Discover() opened manifests (-want +got):\n%s", diff)
	}
	if f := got.Failures(); len(f) != 0 {
		t.Errorf("Discover() failures = %+v, want none", f)
	}
}

func mustDigest(t testing.TB, ref string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDiscover_emptyReferrersListStillReadsFallbackTag(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t) // the fallback tag holds the bundle
	s := pushBundled(t, host)
	front := verifytest.NewFront(t, host)
	front.On(`/referrers/`, verifytest.EmptyReferrers()) // as GHCR has answered

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, front.Host(), s.img))

	want := []verify.Artifact{s.found(verify.FallbackTagStep)}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	rp, fp, _, _ := paths(s.digest)
	wantLookups := []lookup{
		{Step: verify.ReferrersStep, Path: rp, Status: 200, Found: 0},
		{Step: verify.FallbackTagStep, Path: fp, Status: 200, Found: 1},
	}
	if diff := cmp.Diff(wantLookups, lookups(t, got.Lookups)[:2]); diff != "" {
		t.Errorf("Discover() lookups (-want +got):\n%s", diff)
	}
}

// TestDiscover_referrersFailureDoesNotStopFallbackTag is the outage: the
// referrers API fails in every way seen in the wild, and the bundle in the
// fallback tag is still found, quickly, with the failure recorded.
func TestDiscover_referrersFailureDoesNotStopFallbackTag(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		behaviour  func(f *verifytest.Front) verifytest.Behaviour
		wantStatus int
		wantErr    string
		// retried: the request was sent maxAttempts times.
		retried bool
	}{
		"303 to a black hole": {
			behaviour:  func(f *verifytest.Front) verifytest.Behaviour { return f.RedirectToBlackHole(http.StatusSeeOther) },
			wantStatus: http.StatusSeeOther,
			wantErr:    "redirected (303) to http://127.0.0.1:",
		},
		"307 to a black hole": {
			behaviour: func(f *verifytest.Front) verifytest.Behaviour {
				return f.RedirectToBlackHole(http.StatusTemporaryRedirect)
			},
			wantStatus: http.StatusTemporaryRedirect,
			wantErr:    "another host",
		},
		"500": {
			behaviour:  func(*verifytest.Front) verifytest.Behaviour { return verifytest.Status(http.StatusInternalServerError) },
			wantStatus: http.StatusInternalServerError,
			wantErr:    "HTTP 500 Internal Server Error",
			retried:    true,
		},
		"502": {
			behaviour:  func(*verifytest.Front) verifytest.Behaviour { return verifytest.Status(http.StatusBadGateway) },
			wantStatus: http.StatusBadGateway,
			wantErr:    "HTTP 502 Bad Gateway",
			retried:    true,
		},
		"503": {
			behaviour:  func(*verifytest.Front) verifytest.Behaviour { return verifytest.Status(http.StatusServiceUnavailable) },
			wantStatus: http.StatusServiceUnavailable,
			wantErr:    "HTTP 503 Service Unavailable",
			retried:    true,
		},
		"429 without Retry-After": {
			behaviour:  func(*verifytest.Front) verifytest.Behaviour { return verifytest.TooManyRequests("") },
			wantStatus: http.StatusTooManyRequests,
			wantErr:    "HTTP 429 Too Many Requests (TOOMANYREQUESTS: rate limit exceeded)",
			retried:    true,
		},
		"no answer": {
			behaviour:  func(*verifytest.Front) verifytest.Behaviour { return verifytest.Block(nil) },
			wantStatus: 0,
			wantErr:    "no answer within 300ms",
		},
		"200 that is not an index": {
			behaviour: func(*verifytest.Front) verifytest.Behaviour {
				return verifytest.Respond(http.StatusOK, "text/html", []byte("<html>packages</html>"))
			},
			wantStatus: http.StatusOK,
			wantErr:    "decoding the referrers list",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			host := verifytest.NewRegistry(t)
			s := pushBundled(t, host)
			front := verifytest.NewFront(t, host)
			front.On(`/referrers/`, tc.behaviour(front))
			r := newRegistry(t, verify.WithLookupTimeout(testTimeout))

			start := time.Now()
			got := r.Discover(t.Context(), subjectOf(t, front.Host(), s.img))
			elapsed := time.Since(start)

			if elapsed > 5*testTimeout {
				t.Errorf("Discover() took %s, want less than %s", elapsed, 5*testTimeout)
			}
			want := []verify.Artifact{s.found(verify.FallbackTagStep)}
			if diff := cmp.Diff(want, got.Artifacts); diff != "" {
				t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
			}
			failures := got.Failures()
			if len(failures) != 1 || failures[0].Step != verify.ReferrersStep {
				t.Fatalf("Discover() failures = %+v, want the referrers lookup only", failures)
			}
			f := failures[0]
			rp, _, _, _ := paths(s.digest)
			if f.Status != tc.wantStatus || !strings.Contains(f.Err, tc.wantErr) || !strings.HasSuffix(f.URL, rp) {
				t.Errorf("referrers Lookup = %+v, want status %d, URL ending %s, error containing %q", f, tc.wantStatus, rp, tc.wantErr)
			}
			// A retryable answer is asked again after a backoff of about
			// 200ms, not after the second (about 400ms): without a
			// deadline, a wait is bounded by the 300ms lookup timeout.
			asked := 1
			if tc.retried {
				asked = 2
			}
			if n := front.CountMatching(`/referrers/`); n != asked || f.Attempts != asked {
				t.Errorf("the referrers API was asked %d times (%d attempts recorded), want %d", n, f.Attempts, asked)
			}
		})
	}
}

func TestDiscover_referrersRedirectOnSameHostIsFollowed(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	s := pushBundled(t, host)
	front := verifytest.NewFront(t, host)
	front.On(`^/v2/app/referrers/`, func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		http.Redirect(w, r, "/v2/moved"+strings.TrimPrefix(r.URL.Path, "/v2/app"), http.StatusTemporaryRedirect)
	})
	front.On(`^/v2/moved/referrers/`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		r.URL.Path = "/v2/app" + strings.TrimPrefix(r.URL.Path, "/v2/moved")
		next.ServeHTTP(w, r)
	})

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, front.Host(), s.img))

	if len(got.Artifacts) != 1 || got.Artifacts[0].Source != verify.ReferrersStep || got.Artifacts[0].Manifest != s.referrer {
		t.Errorf("Discover() artifacts = %+v, want %s from the referrers API", got.Artifacts, s.referrer)
	}
	if l := got.Lookups[0]; l.Status != 200 || l.Found != 1 || l.Failed() {
		t.Errorf("referrers Lookup = %+v, want 200 with 1 found", l)
	}
}

func TestDiscover_fallbackTagFailureKeepsReferrers(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	s := pushBundled(t, host)
	front := verifytest.NewFront(t, host)
	front.On(`/manifests/sha256-[0-9a-f]{64}$`, verifytest.Status(http.StatusInternalServerError))

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, front.Host(), s.img))

	want := []verify.Artifact{s.found(verify.ReferrersStep)}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	_, fp, _, _ := paths(s.digest)
	wantFailures := []lookup{{Step: verify.FallbackTagStep, Path: fp, Status: 500, Failed: true}}
	if diff := cmp.Diff(wantFailures, lookups(t, got.Failures())); diff != "" {
		t.Errorf("Discover() failures (-want +got):\n%s", diff)
	}
}

func TestDiscover_brokenReferrers(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, _ := verifytest.PushRandomImage(t, host+"/app")
	b := bundle("good")
	good := verifytest.PushBundle(t, img, b, verifytest.CosignSignPredicateType)
	malformed := verifytest.PushMalformedReferrer(t, img)
	missingBlob := verifytest.PushReferrerWithMissingBlob(t, img, verifytest.BundleMediaType)
	dangling := verifytest.PushDanglingFallbackEntry(t, img)

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, host, img))

	var missingLayer string
	for _, a := range got.Artifacts {
		if a.Manifest == missingBlob {
			missingLayer = a.Layer
		}
	}
	want := []verify.Artifact{
		foundBundle(verify.FallbackTagStep, good, b),
		{Source: verify.FallbackTagStep, Manifest: malformed, Err: "x"},
		{Source: verify.FallbackTagStep, Manifest: missingBlob, Layer: missingLayer, Format: verify.BundleFormat, MediaType: verifytest.BundleMediaType, Err: "x", Unfetched: true},
		{Source: verify.FallbackTagStep, Manifest: dangling, Err: "x", Unfetched: true},
	}
	for i := range want[1:] { // listed as bundles, whatever they hold
		want[i+1].ArtifactType = verifytest.BundleMediaType
	}
	sortArtifacts(want)
	if diff := cmp.Diff(want, got.Artifacts, artifactErrs); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	wantErrs := map[string]string{
		malformed:   "parsing manifest: ",
		missingBlob: "fetching blob: HTTP 404 Not Found (BLOB_UNKNOWN",
		dangling:    "fetching manifest: HTTP 404 Not Found (MANIFEST_UNKNOWN",
	}
	for _, a := range got.Artifacts {
		if w := wantErrs[a.Manifest]; !strings.HasPrefix(a.Err, w) {
			t.Errorf("Artifact %s Err = %q, want it to start with %q", a.Manifest, a.Err, w)
		}
	}
	// The requests that did not bring what the index promised are failed
	// lookups; the malformed manifest came back fine, it is the artifact
	// that is broken.
	var failed []lookup
	for _, l := range lookups(t, got.Failures()) {
		failed = append(failed, lookup{Step: l.Step, Status: l.Status})
	}
	wantFailed := []lookup{{Step: verify.ManifestStep, Status: 404}, {Step: verify.BlobStep, Status: 404}}
	if diff := cmp.Diff(wantFailed, failed); diff != "" {
		t.Errorf("Discover() failures (-want +got):\n%s", diff)
	}
}

// sortArtifacts sorts artifacts of one Source as Discover does: by
// Manifest, then Layer.
func sortArtifacts(as []verify.Artifact) {
	slices.SortFunc(as, func(a, b verify.Artifact) int {
		return stdcmp.Or(strings.Compare(a.Manifest, b.Manifest), strings.Compare(a.Layer, b.Layer))
	})
}

func TestDiscover_tamperedBlob(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	s := pushBundled(t, host)
	front := verifytest.NewFront(t, host)
	tampered := []byte(strings.Replace(string(s.bundle), "sig", "gis", 1)) // same length
	front.On(blobPath(digestOf(s.bundle)), verifytest.Respond(http.StatusOK, "application/octet-stream", tampered))

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, front.Host(), s.img))

	if len(got.Artifacts) != 1 {
		t.Fatalf("Discover() artifacts = %+v, want 1", got.Artifacts)
	}
	a := got.Artifacts[0]
	if !strings.Contains(a.Err, "blob digest is "+digestOf(tampered)) || a.Content != nil {
		t.Errorf("Artifact = %+v, want a digest error and no content", a)
	}
}

func TestDiscover_skipsUnrelatedReferrers(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	img, dig := verifytest.PushRandomImage(t, host+"/app")
	sbom := verifytest.PushReferrer(t, img, verifytest.SPDXArtifactType, verifytest.SPDXArtifactType, []byte(`{"spdxVersion":"SPDX-2.3"}`), nil)
	b := bundle("sig")
	ref := verifytest.PushBundle(t, img, b, verifytest.CosignSignPredicateType)

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, host, img))

	want := []verify.Artifact{foundBundle(verify.ReferrersStep, ref, b)}
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
	rp, _, _, _ := paths(dig)
	gotLookups := lookups(t, got.Lookups)
	if diff := cmp.Diff(lookup{Step: verify.ReferrersStep, Path: rp, Status: 200, Found: 2}, gotLookups[0]); diff != "" {
		t.Errorf("referrers Lookup (-want +got):\n%s", diff)
	}
	// The SBOM was opened (its descriptor is not trusted), found to hold
	// nothing of interest, and its blob left alone.
	wantSBOM := lookup{Step: verify.ManifestStep, Path: manifestPath(sbom), Status: 200, Found: 0}
	found := false
	for _, l := range gotLookups {
		found = found || l == wantSBOM
		if l.Step == verify.BlobStep && l.Path != blobPath(digestOf(b)) {
			t.Errorf("Discover() fetched blob %s, want only the bundle's", l.Path)
		}
	}
	if !found {
		t.Errorf("Discover() lookups = %+v, want %+v among them", gotLookups, wantSBOM)
	}
}

func TestDiscover_emptyArtifactTypeInFallbackIndex(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, _ := verifytest.PushRandomImage(t, host+"/app")
	b := bundle("v3.0")
	ref := verifytest.PushBundleEmptyArtifactType(t, img, b, verifytest.CosignSignPredicateType)

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, host, img))

	want := []verify.Artifact{foundBundle(verify.FallbackTagStep, ref, b)}
	want[0].ArtifactType = "application/vnd.oci.empty.v1+json" // as GHCR lists it
	if diff := cmp.Diff(want, got.Artifacts); diff != "" {
		t.Errorf("Discover() artifacts (-want +got):\n%s", diff)
	}
}

func TestDiscover_referrersPages(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	img, dig := verifytest.PushRandomImage(t, host+"/app")
	ba, bb := bundle("a"), bundle("b")
	refA := verifytest.PushBundle(t, img, ba, verifytest.CosignSignPredicateType)
	refB := verifytest.PushBundle(t, img, bb, verifytest.SLSAProvenancePredicateType)
	page := func(refs ...string) []byte {
		idx := gcrv1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
		for _, r := range refs {
			d, err := remote.Get(mustDigest(t, host+"/app@"+r))
			if err != nil {
				t.Fatal(err)
			}
			idx.Manifests = append(idx.Manifests, d.Descriptor)
		}
		b, err := json.Marshal(idx)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first, second := page(refA), page(refB)
	front := verifytest.NewFront(t, host)
	front.On(`/referrers/`, func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		if r.URL.Query().Get("last") == "" {
			w.Header().Set("Link", fmt.Sprintf(`<%s?n=1&last=%s>; rel="next"`, r.URL.Path, refA))
			_, _ = w.Write(first)
			return
		}
		_, _ = w.Write(second)
	})

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, front.Host(), img))

	if len(got.Artifacts) != 2 {
		t.Fatalf("Discover() artifacts = %+v, want 2", got.Artifacts)
	}
	rp, _, _, _ := paths(dig)
	wantLookups := []lookup{
		{Step: verify.ReferrersStep, Path: rp, Status: 200, Found: 1},
		{Step: verify.ReferrersStep, Path: rp, Status: 200, Found: 1},
	}
	if diff := cmp.Diff(wantLookups, lookups(t, got.Lookups)[:2]); diff != "" {
		t.Errorf("Discover() lookups (-want +got):\n%s", diff)
	}
	if u := got.Lookups[1].URL; !strings.Contains(u, "last="+url.QueryEscape(refA)) {
		t.Errorf("second page URL = %s, want the last= of the Link header", u)
	}
	if f := got.Failures(); len(f) != 0 {
		t.Errorf("Discover() failures = %+v, want none", f)
	}
}

func TestDiscover_referrersNextPageOnAnotherHostIsRefused(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	img, _ := verifytest.PushRandomImage(t, host+"/app")
	verifytest.PushBundle(t, img, bundle("a"), verifytest.CosignSignPredicateType)
	front := verifytest.NewFront(t, host)
	hole := front.BlackHole()
	front.On(`/referrers/`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?last=x>; rel="next"`, hole, r.URL.Path))
		next.ServeHTTP(w, r)
	})

	got := newRegistry(t).Discover(t.Context(), subjectOf(t, front.Host(), img))

	if len(got.Artifacts) != 1 {
		t.Errorf("Discover() artifacts = %+v, want the one on the first page", got.Artifacts)
	}
	f := got.Failures()
	if len(f) != 1 || f[0].Step != verify.ReferrersStep || !strings.Contains(f[0].Err, "another host") {
		t.Errorf("Discover() failures = %+v, want the referrers lookup, refusing the next page", f)
	}
}

func TestDiscover_invalidSubject(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	for _, s := range []verify.Subject{
		{Repository: "127.0.0.1:1/app", Digest: "sha256:nothex"},
		{Repository: "UPPER/case", Digest: "sha256:" + strings.Repeat("0", 64)},
	} {
		got := r.Discover(t.Context(), s)
		if len(got.Artifacts) != 0 || len(got.Lookups) != 4 || len(got.Failures()) != 4 {
			t.Errorf("Discover(%+v) = %+v, want four failed lookups", s, got)
		}
	}
}

func TestDiscover_unreachableRegistry(t *testing.T) {
	t.Parallel()
	hole := verifytest.BlackHole(t)
	r := newRegistry(t, verify.WithLookupTimeout(testTimeout))
	s := verify.Subject{Repository: hole + "/app", Digest: "sha256:" + strings.Repeat("a", 64)}

	start := time.Now()
	got := r.Discover(t.Context(), s)
	elapsed := time.Since(start)

	if elapsed > 5*testTimeout {
		t.Errorf("Discover() took %s, want less than %s", elapsed, 5*testTimeout)
	}
	if len(got.Failures()) != 4 {
		t.Fatalf("Discover() lookups = %+v, want four failures", got.Lookups)
	}
	for _, l := range got.Lookups {
		want := "contacting registry " + hole + ": no answer within 300ms"
		if l.Err != want {
			t.Errorf("Lookup %s Err = %q, want %q", l.Step, l.Err, want)
		}
	}
}

// TestDiscover_cancelled checks that a cancelled discovery reports failed
// lookups, not "nothing found".
func TestDiscover_cancelled(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, _ := verifytest.PushRandomImage(t, host+"/app")
	front := verifytest.NewFront(t, host)
	r := newRegistry(t)
	// Authenticate first, so the places are what gets cancelled.
	if _, _, err := r.Resolve(t.Context(), img); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Resolve(t.Context(), front.Ref(img)); err != nil {
		t.Fatal(err)
	}
	// Cancel once the four places are all waiting for an answer.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var arrived sync.WaitGroup
	arrived.Add(4)
	front.On(`^/v2/app/(referrers/sha256:|manifests/sha256-)`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		arrived.Done()
		verifytest.Block(nil)(w, r, next)
	})
	go func() {
		arrived.Wait()
		cancel()
	}()

	got := r.Discover(ctx, subjectOf(t, front.Host(), img))

	if len(got.Failures()) != 4 {
		t.Fatalf("Discover() lookups = %+v, want four failures", got.Lookups)
	}
	for _, l := range got.Lookups {
		if !strings.HasPrefix(l.Err, "cancelled") {
			t.Errorf("Lookup %s Err = %q, want it cancelled", l.Step, l.Err)
		}
	}
}

func TestDiscover_concurrent(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	r := newRegistry(t)
	var subjects []verify.Subject
	for range 4 {
		img, _ := verifytest.PushRandomImage(t, host+"/app")
		verifytest.PushBundle(t, img, bundle(img), verifytest.CosignSignPredicateType)
		subjects = append(subjects, subjectOf(t, host, img))
	}
	var wg sync.WaitGroup
	results := make([]verify.Discovery, 16)
	for i := range results {
		wg.Go(func() { results[i] = r.Discover(t.Context(), subjects[i%len(subjects)]) })
	}
	wg.Wait()
	for i, d := range results {
		if len(d.Artifacts) != 1 || d.Artifacts[0].Err != "" || len(d.Failures()) != 0 {
			t.Errorf("Discover() #%d = %+v, want one artifact and no failures", i, d)
		}
	}
}

// TestDiscover_basicAuthNeverLeaks reads through a registry demanding basic
// auth, one of whose endpoints repeats the Authorization header in its error.
func TestDiscover_basicAuthNeverLeaks(t *testing.T) {
	t.Parallel()
	const user, pass = "alice", "s3cret-pa55word"
	secrets := []string{pass, "YWxpY2U6czNjcmV0LXBhNTV3b3Jk" /* base64 alice:s3cret-pa55word */}
	host := verifytest.NewRegistry(t)
	pushBundled(t, host)
	front := verifytest.NewFront(t, host, verifytest.WithBasicAuth(user, pass))
	front.On(`/referrers/`, verifytest.EchoAuthorization(http.StatusInternalServerError))
	r := newRegistry(t, verify.WithKeychain(keychain{&authn.Basic{Username: user, Password: pass}}))

	s, l, err := r.Resolve(t.Context(), front.Host()+"/app:v1")
	if err != nil {
		t.Fatalf("Resolve() through basic auth: %v (%+v)", err, l)
	}
	got := r.Discover(t.Context(), s)
	_, _, missingErr := r.Resolve(t.Context(), front.Host()+"/app:missing")
	badAuth := newRegistry(t, verify.WithKeychain(keychain{&authn.Basic{Username: user, Password: "wrong-password"}}))
	_, badLookup, badErr := badAuth.Resolve(t.Context(), front.Host()+"/app:v1")

	if len(got.Artifacts) != 1 || got.Artifacts[0].Err != "" {
		t.Errorf("Discover() artifacts = %+v, want the bundle", got.Artifacts)
	}
	echo := got.Lookups[0]
	if echo.Status != 500 || !strings.Contains(echo.Err, "Basic REDACTED") {
		t.Errorf("referrers Lookup = %+v, want a 500 whose echoed credentials are redacted", echo)
	}
	if badErr == nil || !strings.Contains(badErr.Error(), "HTTP 401") {
		t.Errorf("Resolve() with a wrong password: %v, want an HTTP 401 error", badErr)
	}
	texts := []string{missingErr.Error(), badErr.Error(), badLookup.URL, badLookup.Err, l.URL}
	for _, lk := range got.Lookups {
		texts = append(texts, lk.URL, lk.Err)
	}
	for _, a := range got.Artifacts {
		texts = append(texts, a.Err)
	}
	for _, text := range texts {
		for _, sec := range append(secrets, "wrong-password") {
			if strings.Contains(text, sec) {
				t.Errorf("%q carries a credential", text)
			}
		}
	}
}

// keychain resolves every registry to one authenticator.
type keychain struct{ auth authn.Authenticator }

func (k keychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

func TestRegistry_Requests(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	r := newRegistry(t)
	s := subjectOf(t, host, pushBundled(t, host).img)
	r.Discover(t.Context(), s) // authenticates

	before := r.Requests()
	r.Discover(t.Context(), s)
	after := r.Requests()

	// referrers, manifest, blob: 200; fallback tag, .sig, .att: 404.
	want := map[int]int{}
	for status, n := range before.ByHost[host] {
		want[status] = n
	}
	want[200] += 3
	want[404] += 3
	if diff := cmp.Diff(want, after.ByHost[host]); diff != "" {
		t.Errorf("Requests().ByHost[%s] (-want +got):\n%s", host, diff)
	}
	if after.Total-before.Total != 6 {
		t.Errorf("Requests().Total grew by %d, want 6", after.Total-before.Total)
	}
}

func BenchmarkDiscover(b *testing.B) {
	for _, api := range []bool{true, false} {
		b.Run(fmt.Sprintf("referrersAPI=%t", api), func(b *testing.B) {
			host := verifytest.NewRegistry(b, verifytest.WithReferrersAPI(api))
			r := newRegistry(b)
			s := subjectOf(b, host, pushBundled(b, host).img)
			if d := r.Discover(b.Context(), s); len(d.Artifacts) != 1 || len(d.Failures()) != 0 {
				b.Fatalf("Discover() = %+v, want one artifact", d)
			}
			before, n := r.Requests().Total, 0
			for b.Loop() {
				r.Discover(b.Context(), s)
				n++
			}
			b.ReportMetric(float64(r.Requests().Total-before)/float64(n), "requests/op")
		})
	}
}
