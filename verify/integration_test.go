package verify_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// The policies the integration tests verify against (integrationPolicies).
const (
	// keylessPolicy trusts goodIdentity on the test Sigstore, its trust
	// material given in memory.
	keylessPolicy = "keyless"
	// keyPolicy trusts the test KeySigner's public key, without Rekor.
	keyPolicy = "key"
	// privateRootPolicy is keylessPolicy with the test Sigstore's
	// trusted_root.json read back with TrustedRootFromJSON, as a private
	// deployment is configured.
	privateRootPolicy = "private-root"
	// otherRootPolicy is keylessPolicy trusting another, unrelated Sigstore
	// deployment (through its trusted_root.json).
	otherRootPolicy = "other-root"
)

// faultTimeout is the lookup timeout of the cases that inject faults: small,
// so a lookup that waits for an answer that never comes ends quickly, and
// a bound on how long Explain may take.
const faultTimeout = 500 * time.Millisecond

// signers are the signing identities of the integration tests.
type signers struct {
	ss    *verifytest.Sigstore // the trusted deployment
	other *verifytest.Sigstore // an unrelated one
	key   *verifytest.KeySigner
}

func newSigners(t *testing.T) *signers {
	t.Helper()
	return &signers{ss: verifytest.NewSigstore(t), other: verifytest.NewSigstore(t), key: verifytest.NewKeySigner(t)}
}

func integrationPolicies(t *testing.T, s *signers) []*verify.Policy {
	t.Helper()
	privateRoot, err := verify.TrustedRootFromJSON(s.ss.TrustedRootJSON())
	if err != nil {
		t.Fatalf("TrustedRootFromJSON(test Sigstore) = %v", err)
	}
	otherRoot, err := verify.TrustedRootFromJSON(s.other.TrustedRootJSON())
	if err != nil {
		t.Fatalf("TrustedRootFromJSON(other Sigstore) = %v", err)
	}
	key, err := verify.NewKey(s.key.PublicKeyPEM())
	if err != nil {
		t.Fatalf("NewKey() = %v", err)
	}
	release := func() []verify.Authority {
		return []verify.Authority{keylessAuthority("release-workflow", ghIdentity(goodIdentity))}
	}
	return []*verify.Policy{
		{Name: keylessPolicy, Authorities: release(), Trusted: s.ss.Material()},
		{Name: keyPolicy, Authorities: []verify.Authority{{Name: "cosign.pub", Key: key, IgnoreTlog: true}}},
		{Name: privateRootPolicy, Authorities: release(), Trusted: privateRoot},
		{Name: otherRootPolicy, Authorities: release(), Trusted: otherRoot},
	}
}

// itEnv is one integration case's registry: pushes go to host directly,
// verification reads through front, whose rules inject the faults.
type itEnv struct {
	*signers
	api   bool // whether the registry serves the referrers API
	host  string
	front *verifytest.Front
	// digest is what the finding must be about ("" when the reference
	// cannot be resolved); setup sets it.
	digest string
	// aux is a second digest a case's expectations name.
	aux string
}

// push pushes a random image to repoTag ("app:v1") and returns its digest
// reference on the registry (to sign and push signatures to) and digest.
func (e *itEnv) push(t *testing.T, repoTag string) (string, string) {
	t.Helper()
	return verifytest.PushRandomImage(t, e.host+"/"+repoTag)
}

// ref is repoTag as read through the front.
func (e *itEnv) ref(repoTag string) string { return e.front.Host() + "/" + repoTag }

// signKeyless pushes a cosign v3 keyless signature of digest as a referrer
// of img.
func (e *itEnv) signKeyless(t *testing.T, img, digest string) {
	t.Helper()
	verifytest.PushBundle(t, img, e.ss.MustSignImage(t, goodIdentity, ghIssuer, digest), verifytest.CosignSignPredicateType)
}

// signedImage pushes app:v1, signs it keyless (cosign v3) and returns the
// reference to verify.
func signedImage(t *testing.T, e *itEnv) string {
	t.Helper()
	img, dig := e.push(t, "app:v1")
	e.digest = dig
	e.signKeyless(t, img, dig)
	return e.ref("app:v1")
}

// itWant is what a case expects.
type itWant struct {
	status verify.Status
	// detail are substrings of Result.Detail.
	detail []string
	// check asserts what else the case is about: lookups, considerations.
	check func(t *testing.T, e *itEnv, res verify.Result)
}

type itCase struct {
	name string
	// apis are the referrers API settings the case runs with; nil is both.
	apis []bool
	// timeout is the lookup timeout; 0 is 5s. When set, Explain must end
	// within 6 of them.
	timeout time.Duration
	policy  string // default keylessPolicy
	setup   func(t *testing.T, e *itEnv) string
	want    func(e *itEnv) itWant
}

// TestIntegration verifies images end to end, NewRegistry and
// NewVerifier over the in-process registry, with the referrers API on and
// off: every place signatures are stored, every format, the failures seen
// in the wild, and the results that must never read Verified.
func TestIntegration(t *testing.T) {
	t.Parallel()
	s := newSigners(t)
	policies := integrationPolicies(t, s)

	tests := []itCase{
		{
			name:  "cosign v3 keyless bundle",
			setup: signedImage,
			want: func(e *itEnv) itWant {
				src := sourceFor(e.api)
				return itWant{
					status: verify.Verified,
					detail: []string{
						fmt.Sprintf("1 signature found (%s)", src),
						"signed by " + goodIdentity + " (issuer " + ghIssuer + `), trusted by authority "release-workflow" of policy "keyless"`,
					},
					check: allOf(noFailedLookups, considered(src, verify.SignatureKind, true, "signed by "+goodIdentity), referrersAnswered),
				}
			},
		},
		{
			name: "legacy .sig keyless",
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				e.digest = dig
				payload, ann := e.ss.MustLegacySignature(t, goodIdentity, ghIssuer, dig, e.host+"/app")
				verifytest.PushLegacySignature(t, img, payload, ann)
				return e.ref("app:v1")
			},
			want: func(*itEnv) itWant {
				return itWant{
					status: verify.Verified,
					detail: []string{"1 signature found (signature-tag)", "signed by " + goodIdentity},
					check:  allOf(noFailedLookups, considered(verify.SignatureTagStep, verify.SignatureKind, true, "signed by "+goodIdentity)),
				}
			},
		},
		{
			name:   "key-signed bundle",
			policy: keyPolicy,
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				e.digest = dig
				verifytest.PushBundle(t, img, e.key.MustSignImage(t, dig), verifytest.CosignSignPredicateType)
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.Verified,
					detail: []string{fmt.Sprintf("1 signature found (%s)", sourceFor(e.api)), "signed by public key " + e.key.Hint(), `authority "cosign.pub"`},
					check:  allOf(noFailedLookups, considered(sourceFor(e.api), verify.SignatureKind, true, "public key "+e.key.Hint())),
				}
			},
		},
		{
			name:   "key-signed legacy .sig",
			policy: keyPolicy,
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				e.digest = dig
				payload, ann := e.key.MustLegacySignature(t, dig, e.host+"/app")
				verifytest.PushLegacySignature(t, img, payload, ann)
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.Verified,
					detail: []string{"1 signature found (signature-tag)", "signed by public key " + e.key.Hint()},
					check:  allOf(noFailedLookups, considered(verify.SignatureTagStep, verify.SignatureKind, true, "public key "+e.key.Hint())),
				}
			},
		},
		{
			name: "wrong identity",
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				e.digest = dig
				verifytest.PushBundle(t, img, e.ss.MustSignImage(t, evilIdentity, ghIssuer, dig), verifytest.CosignSignPredicateType)
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.IdentityMismatch,
					detail: []string{"signed by " + evilIdentity + " (issuer " + ghIssuer + `), which no authority of policy "keyless" trusts`},
					check:  considered(sourceFor(e.api), verify.SignatureKind, false, evilIdentity),
				}
			},
		},
		{
			name: "signature over another digest",
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				_, other := e.push(t, "other:v1")
				e.digest, e.aux = dig, other
				// A valid signature of other, stored as a referrer of app.
				verifytest.PushBundle(t, img, e.ss.MustSignImage(t, goodIdentity, ghIssuer, other), verifytest.CosignSignPredicateType)
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.InvalidSignature,
					detail: []string{"none verified: statement subject is " + e.aux + ", not this image"},
					check:  considered(sourceFor(e.api), verify.SignatureKind, false, e.aux),
				}
			},
		},
		{
			name: "legacy signature over another digest",
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				_, other := e.push(t, "other:v1")
				e.digest, e.aux = dig, other
				payload, ann := e.ss.MustLegacySignature(t, goodIdentity, ghIssuer, other, e.host+"/other")
				verifytest.PushLegacySignature(t, img, payload, ann)
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.InvalidSignature,
					detail: []string{"none verified: payload names image " + e.aux + ", not this image"},
					check:  considered(verify.SignatureTagStep, verify.SignatureKind, false, e.aux),
				}
			},
		},
		{
			name: "only an SLSA attestation",
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				e.digest = dig
				att := e.ss.MustAttestImage(t, goodIdentity, ghIssuer, dig, verifytest.SLSAProvenancePredicateType, map[string]any{"buildType": "test"})
				verifytest.PushBundle(t, img, att, verifytest.SLSAProvenancePredicateType)
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.NoSignatures,
					detail: []string{fmt.Sprintf("no signature found; 1 attestation found (%s), and an attestation is not a signature", sourceFor(e.api))},
					check: allOf(noFailedLookups,
						considered(sourceFor(e.api), verifytest.SLSAProvenancePredicateType, false, "an attestation is not a signature")),
				}
			},
		},
		{
			name: "unsigned",
			setup: func(t *testing.T, e *itEnv) string {
				_, dig := e.push(t, "app:v1")
				e.digest = dig
				return e.ref("app:v1")
			},
			want: func(*itEnv) itWant {
				return itWant{
					status: verify.NoSignatures,
					detail: []string{"no signature found (looked up: referrers, fallback-tag, signature-tag, attestation-tag)"},
					check:  allOf(noFailedLookups, consideredNothing),
				}
			},
		},
		{
			name: "tag moved after signing",
			setup: func(t *testing.T, e *itEnv) string {
				img, signed := e.push(t, "app:v1")
				e.signKeyless(t, img, signed)
				_, moved := e.push(t, "app:v1")
				e.digest, e.aux = moved, signed
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.NoSignatures,
					detail: []string{e.digest + ": no signature found"},
					check: func(t *testing.T, e *itEnv, res verify.Result) {
						t.Helper()
						if e.digest == e.aux {
							t.Fatal("the test pushed the same image twice")
						}
						if strings.Contains(res.Detail, e.aux) || res.Subject.Digest == e.aux {
							t.Errorf("Explain() is about %s, the digest the tag pointed to when it was signed; want %s", e.aux, e.digest)
						}
						noFailedLookups(t, e, res)
					},
				}
			},
		},
		// The referrers API fails. With the API off, cosign wrote the
		// fallback tag, which must still be read; with it on, the
		// signature is only listed by the failing API, so absence cannot
		// be concluded.
		referrersFault("303 to a host that never answers", func(e *itEnv) verifytest.Behaviour {
			return e.front.RedirectToBlackHole(http.StatusSeeOther)
		}, http.StatusSeeOther, func(e *itEnv) string { return "redirected (303) to http://" + e.front.BlackHole() + ", another host" }),
		referrersFault("500", func(*itEnv) verifytest.Behaviour { return verifytest.Status(http.StatusInternalServerError) },
			http.StatusInternalServerError, func(*itEnv) string { return "HTTP 500 Internal Server Error" }),
		referrersFault("503", func(*itEnv) verifytest.Behaviour { return verifytest.Status(http.StatusServiceUnavailable) },
			http.StatusServiceUnavailable, func(*itEnv) string { return "HTTP 503 Service Unavailable" }),
		referrersFault("429 without Retry-After", func(*itEnv) verifytest.Behaviour { return verifytest.TooManyRequests("") },
			http.StatusTooManyRequests, func(*itEnv) string {
				return "HTTP 429 Too Many Requests (TOOMANYREQUESTS: rate limit exceeded)"
			}),
		// A 429 with a Retry-After beyond the image's deadline: not asked
		// again, and the registry's wish is honoured for the other places
		// too, which are not read before it (nor at all, within the
		// deadline). The signature may be there: absence cannot be
		// concluded.
		{
			name:    "referrers API 429, Retry-After beyond the deadline",
			timeout: faultTimeout,
			setup: func(t *testing.T, e *itEnv) string {
				ref := signedImage(t, e)
				e.front.On(`/referrers/`, verifytest.TooManyRequests("30"))
				return ref
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.LookupFailed,
					detail: []string{"referrers: HTTP 429 Too Many Requests (TOOMANYREQUESTS: rate limit exceeded), retry after 30s; not tried again: retry after 30s: beyond the deadline",
						"so absence cannot be concluded"},
					check: allOf(
						failedLookups(verify.ReferrersStep, verify.FallbackTagStep, verify.SignatureTagStep, verify.AttestationTagStep),
						failedLookup(verify.FallbackTagStep, 0, "the registry asked to wait"),
						consideredNothing,
						func(t *testing.T, e *itEnv, _ verify.Result) {
							t.Helper()
							if n := e.front.CountMatching(`/manifests/sha256-`); n != 0 {
								t.Errorf("the held registry got %d tag requests, want none", n)
							}
						},
					),
				}
			},
		},
		referrersFault("no answer", func(*itEnv) verifytest.Behaviour { return verifytest.Block(nil) },
			0, func(*itEnv) string { return "no answer within " + faultTimeout.String() }),
		{
			name:    "fallback tag 500 and referrers 503",
			timeout: faultTimeout,
			setup: func(t *testing.T, e *itEnv) string {
				ref := signedImage(t, e)
				e.front.On(`/referrers/`, verifytest.Status(http.StatusServiceUnavailable))
				e.front.On(`/manifests/sha256-[0-9a-f]{64}$`, verifytest.Status(http.StatusInternalServerError))
				return ref
			},
			want: func(*itEnv) itWant {
				return itWant{
					status: verify.LookupFailed,
					detail: []string{
						"no signature found, and 2 lookups failed (first: referrers: HTTP 503 Service Unavailable",
						"so absence cannot be concluded",
					},
					check: allOf(
						failedLookups(verify.ReferrersStep, verify.FallbackTagStep),
						failedLookup(verify.ReferrersStep, http.StatusServiceUnavailable, "HTTP 503"),
						failedLookup(verify.FallbackTagStep, http.StatusInternalServerError, "HTTP 500"),
					),
				}
			},
		},
		{
			name: "malformed bundle",
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				e.digest = dig
				broken := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":`)
				verifytest.PushReferrer(t, img, verifytest.BundleMediaType, verifytest.BundleMediaType, broken,
					verifytest.BundleAnnotations(verifytest.CosignSignPredicateType))
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.InvalidSignature,
					detail: []string{fmt.Sprintf("1 unreadable artifact found (%s); none verified: malformed bundle", sourceFor(e.api))},
					check:  allOf(noFailedLookups, considered(sourceFor(e.api), verify.UnknownKind, false, "malformed bundle")),
				}
			},
		},
		{
			name: "malformed referrer manifest",
			setup: func(t *testing.T, e *itEnv) string {
				img, dig := e.push(t, "app:v1")
				e.digest = dig
				e.aux = verifytest.PushMalformedReferrer(t, img)
				return e.ref("app:v1")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.InvalidSignature,
					detail: []string{"1 unreadable artifact found (fallback-tag); none verified: could not be read: parsing manifest: "},
					check: func(t *testing.T, e *itEnv, res verify.Result) {
						t.Helper()
						considered(verify.FallbackTagStep, verify.UnknownKind, false, "parsing manifest")(t, e, res)
						if c := res.Considered[0]; c.Artifact != e.aux {
							t.Errorf("Considered[0].Artifact = %s, want the malformed manifest %s", c.Artifact, e.aux)
						}
					},
				}
			},
		},
		{
			name:   "private trusted root from JSON",
			policy: privateRootPolicy,
			setup:  signedImage,
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.Verified,
					detail: []string{"signed by " + goodIdentity, `of policy "private-root"`},
					check:  considered(sourceFor(e.api), verify.SignatureKind, true, goodIdentity),
				}
			},
		},
		{
			name:   "another deployment's trusted root",
			policy: otherRootPolicy,
			setup:  signedImage,
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.InvalidSignature,
					detail: []string{
						"none verified: authority \"release-workflow\": ",
						"its log entry is from a Rekor log the trust root does not list",
						"its certificate was not issued by a Fulcio CA of the trust root",
					},
					check: considered(sourceFor(e.api), verify.SignatureKind, false, "trust root"),
				}
			},
		},
		{
			name: "unresolvable tag",
			apis: []bool{false},
			setup: func(t *testing.T, e *itEnv) string {
				e.push(t, "app:v1")
				return e.ref("app:missing")
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.ResolveFailed,
					detail: []string{"resolving " + e.ref("app:missing") + ": manifest not found (HTTP 404)"},
					check: func(t *testing.T, _ *itEnv, res verify.Result) {
						t.Helper()
						if len(res.Lookups) != 1 || res.Lookups[0].Status != http.StatusNotFound {
							t.Errorf("Explain() lookups = %+v, want the resolve only, a 404", res.Lookups)
						}
						consideredNothing(t, e, res)
					},
				}
			},
		},
		{
			name:    "unreachable registry",
			apis:    []bool{false},
			timeout: faultTimeout,
			setup: func(t *testing.T, e *itEnv) string {
				e.aux = verifytest.BlackHole(t)
				return e.aux + "/app:v1"
			},
			want: func(e *itEnv) itWant {
				return itWant{
					status: verify.ResolveFailed,
					detail: []string{"resolving " + e.aux + "/app:v1: contacting registry " + e.aux + ": no answer within " + faultTimeout.String()},
					check: func(t *testing.T, _ *itEnv, res verify.Result) {
						t.Helper()
						if len(res.Lookups) != 1 || !res.Lookups[0].Failed() || res.Lookups[0].Status != 0 {
							t.Errorf("Explain() lookups = %+v, want one failed resolve without an answer", res.Lookups)
						}
					},
				}
			},
		},
	}

	for _, tc := range tests {
		apis := tc.apis
		if apis == nil {
			apis = []bool{true, false}
		}
		for _, api := range apis {
			t.Run(fmt.Sprintf("%s/referrersAPI=%t", tc.name, api), func(t *testing.T) {
				t.Parallel()
				runIntegrationCase(t, tc, s, policies, api)
			})
		}
	}
}

func runIntegrationCase(t *testing.T, tc itCase, s *signers, policies []*verify.Policy, api bool) {
	t.Helper()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(api))
	e := &itEnv{signers: s, api: api, host: host, front: verifytest.NewFront(t, host)}
	ref := tc.setup(t, e)
	policy := tc.policy
	if policy == "" {
		policy = keylessPolicy
	}
	timeout := tc.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	// Six lookup timeouts for the whole image, as Explain is held to.
	v, err := verify.NewVerifier(newRegistry(t, verify.WithLookupTimeout(timeout)), policies, verify.WithImageTimeout(6*timeout))
	if err != nil {
		t.Fatalf("NewVerifier() = %v", err)
	}
	w := tc.want(e)

	start := time.Now()
	res, err := v.Explain(t.Context(), ref, policy)
	elapsed := time.Since(start)

	if err != nil {
		t.Fatalf("Explain(%s, %s) = %v, want a Result", ref, policy, err)
	}
	if tc.timeout != 0 && elapsed > 6*tc.timeout {
		t.Errorf("Explain() took %s, want less than %s (6 lookup timeouts)", elapsed, 6*tc.timeout)
	}
	if res.Status != w.status {
		t.Errorf("Explain() status = %s, want %s\ndetail: %s\nconsidered: %+v\nlookups: %+v", res.Status, w.status, res.Detail, res.Considered, res.Lookups)
	}
	if res.Status == verify.Verified && w.status != verify.Verified {
		t.Errorf("Explain() = Verified for a case that must not verify")
	}
	for _, sub := range w.detail {
		if !strings.Contains(res.Detail, sub) {
			t.Errorf("Explain() detail = %q, want it to contain %q", res.Detail, sub)
		}
	}
	if res.Policy != policy || res.Subject.Ref != ref || res.Subject.Digest != e.digest {
		t.Errorf("Explain() = policy %q, subject %+v; want policy %q, ref %s, digest %q", res.Policy, res.Subject, policy, ref, e.digest)
	}
	if e.digest != "" && !strings.HasPrefix(res.Detail, e.digest+": ") {
		t.Errorf("Explain() detail = %q, want it to start with the digest %s", res.Detail, e.digest)
	}
	if len(res.Lookups) == 0 || res.Lookups[0].Step != verify.ResolveStep {
		t.Errorf("Explain() lookups = %+v, want the resolve first", res.Lookups)
	}
	if w.check != nil {
		w.check(t, e, res)
	}

	// Verify is Explain for the gate: the same verdict, about the same
	// digest.
	var gp gate.Policy
	for _, p := range policies {
		if p.Name == policy {
			gp = gate.Policy{Name: p.Name, Verify: p}
		}
	}
	f, err := v.Verify(t.Context(), ref, gp)
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	want := gate.Finding{Image: ref, Policy: policy, Digest: e.digest, Status: res.Status, Detail: res.Detail}
	if f != want {
		t.Errorf("Verify() = %+v, want %+v", f, want)
	}
}

// referrersFault is the case of a referrers API answering with behaviour:
// the failure is recorded and, with the API off, the signature in the
// fallback tag still verifies; with it on, the signature is listed only by
// the failing API and the result is LookupFailed, never NoSignatures.
func referrersFault(what string, behaviour func(e *itEnv) verifytest.Behaviour, status int, reason func(e *itEnv) string) itCase {
	return itCase{
		name:    "referrers API " + what,
		timeout: faultTimeout,
		setup: func(t *testing.T, e *itEnv) string {
			ref := signedImage(t, e)
			e.front.On(`/referrers/`, behaviour(e))
			return ref
		},
		want: func(e *itEnv) itWant {
			check := allOf(failedLookups(verify.ReferrersStep), failedLookup(verify.ReferrersStep, status, reason(e)))
			if e.api {
				return itWant{
					status: verify.LookupFailed,
					detail: []string{"no signature found, and 1 lookup failed (referrers: " + reason(e), "so absence cannot be concluded"},
					check:  allOf(check, consideredNothing),
				}
			}
			return itWant{
				status: verify.Verified,
				detail: []string{"1 signature found (fallback-tag)", "signed by " + goodIdentity},
				check:  allOf(check, considered(verify.FallbackTagStep, verify.SignatureKind, true, goodIdentity)),
			}
		},
	}
}

// sourceFor is where PushBundle's referrer is found: the referrers API
// when the registry has it, else the fallback tag.
func sourceFor(api bool) verify.Step {
	if api {
		return verify.ReferrersStep
	}
	return verify.FallbackTagStep
}

type resultCheck func(t *testing.T, e *itEnv, res verify.Result)

func allOf(checks ...resultCheck) resultCheck {
	return func(t *testing.T, e *itEnv, res verify.Result) {
		t.Helper()
		for _, c := range checks {
			c(t, e, res)
		}
	}
}

func noFailedLookups(t *testing.T, _ *itEnv, res verify.Result) {
	t.Helper()
	for _, l := range res.Lookups {
		if l.Failed() {
			t.Errorf("Explain() lookup %s %s failed: %s; want no failure", l.Step, l.URL, l.Err)
		}
	}
}

// referrersAnswered checks the referrers lookup: 200 with the signature
// listed when the registry has the API, a 404 that is not a failure when
// it has not.
func referrersAnswered(t *testing.T, e *itEnv, res verify.Result) {
	t.Helper()
	l, ok := lookupOf(res, verify.ReferrersStep)
	switch {
	case !ok:
		t.Errorf("Explain() lookups = %+v, want a referrers lookup", res.Lookups)
	case e.api && (l.Status != http.StatusOK || l.Found != 1):
		t.Errorf("referrers lookup = %+v, want 200 with 1 found", l)
	case !e.api && (l.Status != http.StatusNotFound || l.Failed()):
		t.Errorf("referrers lookup = %+v, want a 404 that is not a failure", l)
	}
}

// failedLookups checks that exactly the lookups of steps failed.
func failedLookups(steps ...verify.Step) resultCheck {
	return func(t *testing.T, _ *itEnv, res verify.Result) {
		t.Helper()
		var got []verify.Step
		for _, l := range res.Lookups {
			if l.Failed() {
				got = append(got, l.Step)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(steps) {
			t.Errorf("Explain() failed lookups = %v, want %v\nlookups: %+v", got, steps, res.Lookups)
		}
	}
}

// failedLookup checks that the lookup of step failed with status and a
// message containing reason.
func failedLookup(step verify.Step, status int, reason string) resultCheck {
	return func(t *testing.T, _ *itEnv, res verify.Result) {
		t.Helper()
		l, ok := lookupOf(res, step)
		if !ok || !l.Failed() || l.Status != status || !strings.Contains(l.Err, reason) {
			t.Errorf("%s lookup = %+v, want it failed with status %d and an error containing %q", step, l, status, reason)
		}
	}
}

func lookupOf(res verify.Result, step verify.Step) (verify.Lookup, bool) {
	for _, l := range res.Lookups {
		if l.Step == step {
			return l, true
		}
	}
	return verify.Lookup{}, false
}

// considered checks the only consideration: where the artifact came from,
// what it was judged to be, whether it was accepted, and a substring of
// its reason.
func considered(source verify.Step, kind string, accepted bool, reason string) resultCheck {
	return func(t *testing.T, _ *itEnv, res verify.Result) {
		t.Helper()
		if len(res.Considered) != 1 {
			t.Fatalf("Explain() considered %d artifacts, want 1: %+v", len(res.Considered), res.Considered)
		}
		c := res.Considered[0]
		if c.Source != source || c.Kind != kind || c.Accepted != accepted || !strings.Contains(c.Reason, reason) {
			t.Errorf("Explain() considered %+v, want source %s, kind %s, accepted %t, reason containing %q", c, source, kind, accepted, reason)
		}
	}
}

func consideredNothing(t *testing.T, _ *itEnv, res verify.Result) {
	t.Helper()
	if len(res.Considered) != 0 {
		t.Errorf("Explain() considered %+v, want nothing", res.Considered)
	}
}
