package e2e

// TestHostile feeds pregate's real code paths what a hostile or broken world
// hands them: registries that fail, lie, stall, redirect and amplify
// (verify.Verifier over verifytest's registry and Front), malformed and
// misdirected signature material (verify.Policy.Check), hostile artifact
// tarballs (sources.Fetch), hostile revisions (render.Render, then
// gate.Evaluate) and hostile policy files (config.Load, then Compile). Each
// case says what the product must answer; the tally at the end counts the
// answers that say "verified" (or allowed, or accepted) where they must not,
// the panics, and the answers given for the wrong reason.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/sources"
	"github.com/pregate/pregate/sources/sourcestest"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// The signers and policy of the hostile cases.
const (
	hostileIssuer   = "https://token.actions.githubusercontent.com"
	hostileIdentity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	hostileEvil     = "https://github.com/acme-evil/app/.github/workflows/release.yml@refs/heads/main"
	hostilePolicy   = "first-party"
	hostileSLSA     = "https://slsa.dev/provenance/v1"
	// hostileRepo is the repository of the hand-built discoveries.
	hostileRepo = "registry.example/acme/app"
)

// The categories of hostile cases, and how many each must have at least.
const (
	catRegistry  = "A-registry"
	catSignature = "B-signature"
	catTarball   = "C-tarball"
	catTree      = "D-tree"
	catPolicy    = "E-policy"
)

var hostileMinimum = map[string]int{catRegistry: 55, catSignature: 25, catTarball: 12, catTree: 10, catPolicy: 10}

// hostileOutcome is what one case came to.
type hostileOutcome struct {
	// verified: the answer says the image or revision is verified or
	// allowed, or (tarballs, policy files) the input was accepted.
	verified bool
	// status is the answer's status ("LookupFailed"); "error" when the
	// code returned an error and "ok" when it accepted the input; for a
	// verdict "allowed", "undecided/<Reason>" or "denied/<Reason>".
	status string
	// detail is the answer's detail, or the error's message.
	detail string
	// problems are further expectations the case found unmet: a file left
	// behind, a verdict about another digest, a bound not kept.
	problems []string
	// crashed: the code under test took its process down (a render run
	// in a child process that ran out of memory); counted as a panic.
	crashed bool
}

// hostileWant is what a case expects.
type hostileWant struct {
	status string
	// contains are substrings the detail must hold.
	contains []string
	// orGap: a verdict left undecided by a coverage gap is right too
	// (an error must then still hold contains).
	orGap bool
	// maxDetail, when set, is a bound on the detail's length.
	maxDetail int
}

// verified says whether the case expects a verified (or allowed, or
// accepted) answer.
func (w hostileWant) verified() bool {
	return w.status == string(verify.Verified) || w.status == "ok" || w.status == "allowed"
}

// wrongReasons says how o differs from what w expects, besides being
// verified where it must not be (which wrongReasons also reports as a
// status difference).
func (w hostileWant) wrongReasons(o hostileOutcome) []string {
	var why []string
	if !w.orGap || o.status != "undecided/"+gate.CoverageGapReason {
		if o.status != w.status {
			want := w.status
			if w.orGap {
				want += " or undecided/" + gate.CoverageGapReason
			}
			why = append(why, fmt.Sprintf("status %s, want %s", o.status, want))
		}
		for _, s := range w.contains {
			if !strings.Contains(o.detail, s) {
				why = append(why, fmt.Sprintf("detail lacks %q", s))
			}
		}
	}
	if w.maxDetail > 0 && len(o.detail) >= w.maxDetail {
		why = append(why, fmt.Sprintf("detail is %d bytes, want under %d", len(o.detail), w.maxDetail))
	}
	return append(why, o.problems...)
}

func wantStatus(s verify.Status, contains ...string) hostileWant {
	return hostileWant{status: string(s), contains: contains}
}

func wantError(contains ...string) hostileWant {
	return hostileWant{status: "error", contains: contains}
}

func wantErrorOrGap(contains ...string) hostileWant {
	return hostileWant{status: "error", contains: contains, orGap: true}
}

// hostileCase is one hostile input and what the product must answer.
type hostileCase struct {
	cat, name string
	want      hostileWant
	run       func(t *testing.T) hostileOutcome
}

// hostileRecord is what became of one case.
type hostileRecord struct {
	c        hostileCase
	out      hostileOutcome
	panicked string // the panic value and stack, if it panicked
	aborted  bool   // the case stopped (t.FailNow) before answering
	took     time.Duration
}

func (r hostileRecord) falseVerified() bool {
	return r.panicked == "" && !r.aborted && r.out.verified && !r.c.want.verified()
}

func (r hostileRecord) wrongReasons() []string {
	switch {
	case r.panicked != "":
		return nil
	case r.aborted:
		return []string{"the case could not run (setup failed or FailNow)"}
	}
	return r.c.want.wrongReasons(r.out)
}

func (r hostileRecord) String() string {
	detail := r.out.detail
	if len(detail) > 600 {
		detail = detail[:600] + "…"
	}
	return fmt.Sprintf("%s/%s: got %s (verified=%t) in %s: %s", r.c.cat, r.c.name, r.out.status, r.out.verified, r.took.Round(time.Millisecond), detail)
}

// TestHostile runs every hostile case in a subtest of its own, in parallel,
// each inside a recover, and tallies: no case may answer "verified" where
// it must not, panic, or answer for the wrong reason.
func TestHostile(t *testing.T) {
	if root := os.Getenv(childRootEnv); root != "" {
		renderChild(root, os.Getenv(childDirEnv))
		return
	}
	t.Parallel()
	start := time.Now()
	fx := newHostileFixtures(t)
	var cases []hostileCase
	cases = append(cases, registryCases(fx)...)
	cases = append(cases, signatureCases(t, fx)...)
	cases = append(cases, tarballCases(t)...)
	cases = append(cases, treeCases()...)
	cases = append(cases, policyFileCases(t, fx)...)

	perCat := map[string]int{}
	names := map[string]bool{}
	for _, c := range cases {
		perCat[c.cat]++
		if names[c.cat+"/"+c.name] {
			t.Fatalf("case %s/%s is named twice", c.cat, c.name)
		}
		names[c.cat+"/"+c.name] = true
	}

	var (
		mu      sync.Mutex
		records []hostileRecord
	)
	// The group returns once every parallel case has finished.
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.cat+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				rec := hostileRecord{c: c}
				began := time.Now()
				answered := false
				defer func() {
					if r := recover(); r != nil {
						rec.panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
					} else if !answered {
						rec.aborted = true
					}
					rec.took = time.Since(began)
					mu.Lock()
					records = append(records, rec)
					mu.Unlock()
					switch {
					case rec.panicked != "":
						t.Errorf("PANIC: %s", rec.panicked)
					case rec.falseVerified():
						t.Errorf("FALSE VERIFIED: %s", rec)
					case len(rec.wrongReasons()) > 0:
						t.Errorf("WRONG REASON (%s): %s", strings.Join(rec.wrongReasons(), "; "), rec)
					default:
						t.Logf("%s", rec)
					}
				}()
				rec.out = c.run(t)
				if rec.out.crashed {
					rec.panicked = "crash: " + rec.out.detail
				}
				answered = true
			})
		}
	})

	slices.SortFunc(records, func(a, b hostileRecord) int {
		return strings.Compare(a.c.cat+"/"+a.c.name, b.c.cat+"/"+b.c.name)
	})
	var falseVerified, panics, wrong []string
	for _, r := range records {
		switch {
		case r.panicked != "":
			panics = append(panics, fmt.Sprintf("%s/%s: %s", r.c.cat, r.c.name, firstLine(r.panicked)))
		case r.falseVerified():
			falseVerified = append(falseVerified, r.String())
		}
		if why := r.wrongReasons(); len(why) > 0 && !r.falseVerified() {
			wrong = append(wrong, fmt.Sprintf("[%s] %s", strings.Join(why, "; "), r))
		}
	}
	var cats []string
	for _, cat := range []string{catRegistry, catSignature, catTarball, catTree, catPolicy} {
		cats = append(cats, fmt.Sprintf("%s %d", cat, perCat[cat]))
		if perCat[cat] < hostileMinimum[cat] {
			t.Errorf("category %s has %d cases, want at least %d", cat, perCat[cat], hostileMinimum[cat])
		}
	}
	if len(records) != len(cases) {
		t.Errorf("%d cases ran, %d were defined", len(records), len(cases))
	}
	if len(cases) < 110 {
		t.Errorf("%d cases, want at least 110", len(cases))
	}
	t.Logf("cases per category: %s; took %s", strings.Join(cats, ", "), time.Since(start).Round(100*time.Millisecond))
	t.Logf("hostile: %d cases: %d false \"verified\" (must be 0), %d panics (must be 0), %d wrong reasons (must be 0)",
		len(records), len(falseVerified), len(panics), len(wrong))
	if len(falseVerified)+len(panics)+len(wrong) > 0 {
		t.Errorf("hostile cases answered wrongly:\nfalse \"verified\":\n\t%s\npanics:\n\t%s\nwrong reasons:\n\t%s",
			strings.Join(falseVerified, "\n\t"), strings.Join(panics, "\n\t"), strings.Join(wrong, "\n\t"))
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// hostileFixtures are what the cases share: signers, policies, a gzip bomb
// and the pool of a good TLS registry.
type hostileFixtures struct {
	ss    *verifytest.Sigstore // the trusted deployment
	other *verifytest.Sigstore // one no policy trusts
	key   *verifytest.KeySigner
	// otherKey is a key no policy of the key-signed cases trusts.
	otherKey *verifytest.KeySigner
	// own signs the hand-made bundles (see ownBundle).
	own     *ecdsa.PrivateKey
	ownHint string
	ownPEM  []byte

	// bomb is a gzip bomb answer (64 MiB of zeros), built once.
	bomb verifytest.Behaviour
	// goodPool trusts a TLS registry of its own and nothing else.
	goodPool *x509.CertPool
}

func newHostileFixtures(t *testing.T) *hostileFixtures {
	t.Helper()
	own, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(own.Public())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	_, pool := verifytest.NewTLSRegistry(t)
	return &hostileFixtures{
		ss:       verifytest.NewSigstore(t),
		other:    verifytest.NewSigstore(t),
		key:      verifytest.NewKeySigner(t),
		otherKey: verifytest.NewKeySigner(t),
		own:      own,
		ownHint:  base64.StdEncoding.EncodeToString(sum[:]),
		ownPEM:   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		bomb:     verifytest.GzipBomb(64 << 20),
		goodPool: pool,
	}
}

// keylessPolicy trusts hostileIdentity on the test Sigstore. Its
// certificates carry no SCTs, hence IgnoreSCT.
func (fx *hostileFixtures) keylessPolicy() *verify.Policy {
	return &verify.Policy{
		Name: hostilePolicy,
		Authorities: []verify.Authority{{
			Name:      "release-workflow",
			Keyless:   &verify.Keyless{Identities: []verify.Identity{{Issuer: hostileIssuer, Subject: hostileIdentity}}},
			IgnoreSCT: true,
		}},
		Trusted: fx.ss.Material(),
	}
}

// keyPolicy trusts one public key, without a transparency log.
func keyPolicy(t testing.TB, name string, pemKey []byte) *verify.Policy {
	t.Helper()
	k, err := verify.NewKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	return &verify.Policy{Name: name, Authorities: []verify.Authority{{Name: name, Key: k, IgnoreTlog: true}}}
}

func hostileDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// resultOutcome is the outcome of a verification Result.
func resultOutcome(res verify.Result) hostileOutcome {
	return hostileOutcome{verified: res.Status == verify.Verified, status: string(res.Status), detail: res.Detail}
}

// ---------------------------------------------------------------------------
// A. Registry faults: Explain through a Front that injects them.

// regEnv is one registry holding app:v1, signed keyless (cosign v3 bundle),
// read through a Front.
type regEnv struct {
	host     string
	front    *verifytest.Front
	img      string // app:v1's digest reference on the registry
	digest   string
	referrer string // the signature's referrer manifest
	layer    string // the bundle blob
}

func newSignedRegistry(t *testing.T, fx *hostileFixtures, api bool) *regEnv {
	t.Helper()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(api))
	img, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	b := fx.ss.MustSignImage(t, hostileIdentity, hostileIssuer, dig)
	ref := verifytest.PushBundle(t, img, b, verifytest.CosignSignPredicateType)
	return &regEnv{host: host, front: verifytest.NewFront(t, host), img: img, digest: dig, referrer: ref, layer: hostileDigest(b)}
}

// The places a fault is put.
const (
	atResolve   = "resolve"   // the tag: HEAD (and GET) /v2/app/manifests/v1
	atReferrers = "referrers" // the referrers API
	atManifest  = "manifest"  // the signature's referrer manifest
	atBlob      = "blob"      // the bundle blob
	atFallback  = "fallback"  // the sha256-<hex> fallback tag
	atAll       = "all"       // every request for the repository
)

func (e *regEnv) pattern(at string) string {
	switch at {
	case atResolve:
		return `^/v2/app/manifests/v1$`
	case atReferrers:
		return `^/v2/app/referrers/`
	case atManifest:
		return `^/v2/app/manifests/` + regexp.QuoteMeta(e.referrer) + `$`
	case atBlob:
		return `^/v2/app/blobs/` + regexp.QuoteMeta(e.layer) + `$`
	case atFallback:
		return `^/v2/app/manifests/sha256-[0-9a-f]{64}$`
	case atAll:
		return `^/v2/app/`
	}
	panic("unknown place " + at)
}

// explainTimeouts are the registry's lookup timeout and the image's.
type explainTimeouts struct{ lookup, image time.Duration }

var defaultTimeouts = explainTimeouts{lookup: 500 * time.Millisecond, image: 3 * time.Second}

// explain verifies ref against the keyless policy with a fresh Registry
// and Verifier.
func explain(t *testing.T, fx *hostileFixtures, ref string, to explainTimeouts, opts ...verify.RegistryOption) (verify.Result, hostileOutcome) {
	t.Helper()
	r, err := verify.NewRegistry(append([]verify.RegistryOption{
		verify.WithKeychain(authn.NewMultiKeychain()),
		verify.WithLookupTimeout(to.lookup),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewVerifier(r, []*verify.Policy{fx.keylessPolicy()}, verify.WithImageTimeout(to.image))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := v.Explain(ctx, ref, hostilePolicy)
	if err != nil {
		return res, hostileOutcome{status: "error", detail: err.Error()}
	}
	return res, resultOutcome(res)
}

// regFault is a fault a Front injects at one place.
type regFault struct {
	name string
	b    func(fx *hostileFixtures, e *regEnv) verifytest.Behaviour
	// want overrides, by place, the default expectation (ResolveFailed at
	// the resolve, LookupFailed elsewhere).
	want map[string]hostileWant
	// at limits the fault to these places; nil is the resolve, the
	// referrers API, the referrer manifest and the blob.
	at []string
}

func status(code int) func(*hostileFixtures, *regEnv) verifytest.Behaviour {
	return func(*hostileFixtures, *regEnv) verifytest.Behaviour { return verifytest.Status(code) }
}

func fixed(b verifytest.Behaviour) func(*hostileFixtures, *regEnv) verifytest.Behaviour {
	return func(*hostileFixtures, *regEnv) verifytest.Behaviour { return b }
}

// failTimes answers the first n requests with b, then passes them on.
func failTimes(n int32, b verifytest.Behaviour) verifytest.Behaviour {
	var seen atomic.Int32
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if seen.Add(1) <= n {
			b(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	}
}

// delayHeaders passes each request on after d (HEAD requests included).
func delayHeaders(d time.Duration) verifytest.Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}
}

// headUnaffected expects Verified from a fault at the resolve that only
// touches an answer's body: the resolve is a HEAD, whose answer has none.
var headUnaffected = map[string]hostileWant{atResolve: wantStatus(verify.Verified)}

// refuseHead answers a HEAD with 405, as a registry that does not serve
// HEAD for manifests does, and gives a GET to b: the resolve must GET.
func refuseHead(b verifytest.Behaviour) verifytest.Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		b(w, r, next)
	}
}

func passOn(w http.ResponseWriter, r *http.Request, next http.Handler) { next.ServeHTTP(w, r) }

func registryFaults() []regFault {
	return []regFault{
		{name: "500", b: status(http.StatusInternalServerError)},
		{name: "502", b: status(http.StatusBadGateway)},
		{name: "503", b: status(http.StatusServiceUnavailable)},
		{name: "504", b: status(http.StatusGatewayTimeout)},
		{name: "429 Retry-After 30", b: fixed(verifytest.TooManyRequests("30"))},
		{name: "429", b: fixed(verifytest.TooManyRequests(""))},
		// The resolve is a HEAD: a fault in a body it does not read cannot
		// change it (see the same faults on a GET resolve, below).
		{name: "reset mid-body", b: fixed(verifytest.ResetMidBody()), want: headUnaffected},
		{name: "truncated body", b: fixed(verifytest.TruncatedBody()), want: headUnaffected},
		{name: "no answer", b: fixed(verifytest.Block(nil))},
		// Each body slower than the lookup timeout (16 bytes per 200ms).
		{name: "slowloris body", b: fixed(verifytest.SlowBody(200*time.Millisecond, 16)), want: headUnaffected},
		{name: "corrupt body", b: fixed(verifytest.CorruptBody()), want: headUnaffected},
		// The bytes are intact, and checked against their digest where they
		// have one: a wrong Content-Type is no integrity failure.
		{name: "Content-Type text/html", b: fixed(verifytest.WrongContentType("text/html")), want: map[string]hostileWant{
			atResolve: wantStatus(verify.Verified), atReferrers: wantStatus(verify.Verified),
			atManifest: wantStatus(verify.Verified), atBlob: wantStatus(verify.Verified),
		}},
		{name: "huge manifest 8 MiB", b: fixed(verifytest.HugeManifest(8 << 20))},
		{name: "gzip bomb", b: func(fx *hostileFixtures, _ *regEnv) verifytest.Behaviour { return fx.bomb }},
		{name: "redirect loop", b: fixed(verifytest.RedirectLoop())},
		{name: "303 to a black hole", b: func(_ *hostileFixtures, e *regEnv) verifytest.Behaviour {
			return e.front.RedirectToBlackHole(http.StatusSeeOther)
		}},
		{name: "307 to a black hole", b: func(_ *hostileFixtures, e *regEnv) verifytest.Behaviour {
			return verifytest.RedirectTo(e.front.BlackHole(), http.StatusTemporaryRedirect)
		}},
		{name: "wrong Docker-Content-Digest", b: fixed(verifytest.WrongDigestHeader()), at: []string{atResolve}},
		{name: "404", b: status(http.StatusNotFound), at: []string{atResolve, atManifest, atBlob}},
	}
}

func registryCases(fx *hostileFixtures) []hostileCase {
	var cases []hostileCase
	faultCase := func(name string, api bool, at string, to explainTimeouts, want hostileWant,
		fault func(*hostileFixtures, *regEnv) verifytest.Behaviour) hostileCase {
		return hostileCase{cat: catRegistry, name: name, want: want, run: func(t *testing.T) hostileOutcome {
			e := newSignedRegistry(t, fx, api)
			e.front.On(e.pattern(at), fault(fx, e))
			_, out := explain(t, fx, e.front.Host()+"/app:v1", to)
			return out
		}}
	}
	for _, f := range registryFaults() {
		places := f.at
		if places == nil {
			places = []string{atResolve, atReferrers, atManifest, atBlob}
		}
		for _, at := range places {
			want, ok := f.want[at]
			switch {
			case ok:
			case at == atResolve:
				want = wantStatus(verify.ResolveFailed)
			default:
				want = wantStatus(verify.LookupFailed)
			}
			cases = append(cases, faultCase(f.name+" at "+at, true, at, defaultTimeouts, want, f.b))
		}
	}

	// The resolve by GET (HEAD refused), and the body faults on it.
	for _, f := range []struct {
		name  string
		fault verifytest.Behaviour
		want  hostileWant
	}{
		{"intact", passOn, wantStatus(verify.Verified)},
		{"Content-Type text/html", verifytest.WrongContentType("text/html"), wantStatus(verify.Verified)},
		{"corrupt body", verifytest.CorruptBody(), wantStatus(verify.ResolveFailed)},
		{"truncated body", verifytest.TruncatedBody(), wantStatus(verify.ResolveFailed)},
		{"reset mid-body", verifytest.ResetMidBody(), wantStatus(verify.ResolveFailed)},
		{"slowloris body", verifytest.SlowBody(200*time.Millisecond, 16), wantStatus(verify.ResolveFailed)},
		{"wrong Docker-Content-Digest", verifytest.WrongDigestHeader(), wantStatus(verify.ResolveFailed)},
	} {
		cases = append(cases, faultCase(f.name+" at resolve by GET (HEAD refused)", true, atResolve, defaultTimeouts, f.want, fixed(refuseHead(f.fault))))
	}

	// A registry answering every request just within the lookup timeout
	// cannot hold the image past its deadline.
	short := explainTimeouts{lookup: 500 * time.Millisecond, image: time.Second}
	cases = append(cases,
		faultCase("every answer 300ms late, image deadline 1s", true, atAll, short,
			wantStatus(verify.LookupFailed, "cut short"), fixed(delayHeaders(300*time.Millisecond))),
		faultCase("every body 350ms slow, image deadline 1s", true, atAll, short,
			wantStatus(verify.LookupFailed, "cut short"), fixed(verifytest.SlowBody(350*time.Millisecond, 1<<20))),
	)

	// What a retry fixes.
	for _, at := range []string{atReferrers, atBlob} {
		cases = append(cases,
			faultCase("503 once at "+at, true, at, defaultTimeouts, wantStatus(verify.Verified),
				func(*hostileFixtures, *regEnv) verifytest.Behaviour {
					return failTimes(1, verifytest.Status(http.StatusServiceUnavailable))
				}),
			faultCase("429 once at "+at, true, at, defaultTimeouts, wantStatus(verify.Verified),
				func(*hostileFixtures, *regEnv) verifytest.Behaviour {
					return failTimes(1, verifytest.TooManyRequests(""))
				}),
			faultCase("reset mid-body once at "+at, true, at, defaultTimeouts, wantStatus(verify.Verified),
				func(*hostileFixtures, *regEnv) verifytest.Behaviour { return failTimes(1, verifytest.ResetMidBody()) }),
		)
	}

	// The referrers API off: the signature is in the fallback tag.
	for _, f := range []struct {
		name  string
		fault func(*hostileFixtures, *regEnv) verifytest.Behaviour
	}{
		{"500", status(http.StatusInternalServerError)},
		{"no answer", fixed(verifytest.Block(nil))},
		{"corrupt body", fixed(verifytest.CorruptBody())},
	} {
		cases = append(cases, faultCase(f.name+" at the fallback tag (no referrers API)", false, atFallback, defaultTimeouts,
			wantStatus(verify.LookupFailed), f.fault))
	}
	// The referrers API redirected off-host, the signature in the fallback
	// tag: the fallback is read, and verifies.
	cases = append(cases, faultCase("referrers API 303 to a black hole, signature in the fallback tag", false, atReferrers, defaultTimeouts,
		wantStatus(verify.Verified), func(_ *hostileFixtures, e *regEnv) verifytest.Behaviour {
			return e.front.RedirectToBlackHole(http.StatusSeeOther)
		}))

	cases = append(cases,
		hostileCase{cat: catRegistry, name: "amplification 256x256", want: wantStatus(verify.LookupFailed, "over the budget"),
			run: func(t *testing.T) hostileOutcome {
				host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
				front := verifytest.NewFront(t, host)
				img, _ := verifytest.PushRandomImage(t, host+"/app:v1")
				amp := verifytest.NewAmplification(t, img, 256, 256)
				front.On(`^/v2/`, amp.Behaviour())
				_, out := explain(t, fx, front.Host()+"/app:v1", defaultTimeouts)
				if n := front.CountMatching(`/blobs/`); n > 128 {
					out.problems = append(out.problems, fmt.Sprintf("%d blob GETs for one image, want at most 128", n))
				}
				return out
			}},
		hostileCase{cat: catRegistry, name: "split view: HEAD names an unsigned image", want: wantStatus(verify.NoSignatures),
			run: func(t *testing.T) hostileOutcome {
				e := newSignedRegistry(t, fx, true)
				_, other := verifytest.PushRandomImage(t, e.host+"/app:other")
				e.front.On(e.pattern(atResolve), verifytest.SplitView(other))
				res, out := explain(t, fx, e.front.Host()+"/app:v1", defaultTimeouts)
				if res.Subject.Digest != other {
					out.problems = append(out.problems, fmt.Sprintf("the verdict is about %s, not %s, the digest the HEAD named", res.Subject.Digest, other))
				}
				return out
			}},
	)
	for _, kind := range []verifytest.BadTLS{verifytest.UntrustedCert, verifytest.ExpiredCert, verifytest.WrongHostCert} {
		cases = append(cases, hostileCase{cat: catRegistry, name: "TLS " + kind.String(), want: wantStatus(verify.ResolveFailed, "certificate"),
			run: func(t *testing.T) hostileOutcome {
				e := newSignedRegistry(t, fx, true)
				bad, _ := verifytest.NewBadTLSFront(t, e.host, kind)
				_, out := explain(t, fx, bad+"/app:v1", defaultTimeouts, verify.WithTransport(verifytest.TransportTrusting(fx.goodPool)))
				return out
			}})
	}
	return cases
}

// ---------------------------------------------------------------------------
// B. Malformed signature material: Check on hand-built discoveries.

var (
	hostileImgDigest   = hostileDigest([]byte("image"))
	hostileOtherDigest = hostileDigest([]byte("other image"))
)

// okLookups are the four places, all read: found artifacts in the
// referrers API, nothing in the tags.
func okLookups(found int) []verify.Lookup {
	base := "https://registry.example/v2/acme/app/"
	tag := strings.Replace(hostileImgDigest, ":", "-", 1)
	return []verify.Lookup{
		{Step: verify.ReferrersStep, URL: base + "referrers/" + hostileImgDigest, Status: 200, Found: found},
		{Step: verify.FallbackTagStep, URL: base + "manifests/" + tag, Status: 404},
		{Step: verify.SignatureTagStep, URL: base + "manifests/" + tag + ".sig", Status: 404},
		{Step: verify.AttestationTagStep, URL: base + "manifests/" + tag + ".att", Status: 404},
	}
}

func discoveryOf(digest string, arts ...verify.Artifact) verify.Discovery {
	return verify.Discovery{
		Subject:   verify.Subject{Ref: hostileRepo + ":1.0", Repository: hostileRepo, Digest: digest},
		Artifacts: arts,
		Lookups:   okLookups(len(arts)),
	}
}

func bundleArt(content []byte) verify.Artifact {
	return verify.Artifact{
		Source: verify.ReferrersStep, Manifest: hostileDigest(append([]byte("manifest of "), content...)), Layer: hostileDigest(content),
		Format: verify.BundleFormat, MediaType: verifytest.BundleMediaType, Content: content,
	}
}

func sigTagArt(payload []byte, ann map[string]string) verify.Artifact {
	return verify.Artifact{
		Source: verify.SignatureTagStep, Manifest: hostileDigest(append([]byte("sig manifest of "), payload...)), Layer: hostileDigest(payload),
		Format: verify.SimpleSigningFormat, MediaType: verifytest.SimpleSigningMediaType, Content: payload, Annotations: ann,
	}
}

func attTagArt(env []byte, ann map[string]string) verify.Artifact {
	return verify.Artifact{
		Source: verify.AttestationTagStep, Manifest: hostileDigest(append([]byte("att manifest of "), env...)), Layer: hostileDigest(env),
		Format: verify.DSSEFormat, MediaType: verifytest.DSSEMediaType, Content: env, Annotations: ann,
	}
}

// editJSON decodes b, lets edit change it and encodes it again.
func editJSON(t testing.TB, b []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func withAnn(ann map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for key, val := range ann {
		out[key] = val
	}
	out[k] = v
	return out
}

// statement is an in-toto statement; predicateType and typ are left out
// when empty, subjects lists digests ("sha256:…").
func statement(typ, predicateType string, subjects ...string) []byte {
	m := map[string]any{"predicate": map[string]any{}}
	if typ != "" {
		m["_type"] = typ
	}
	if predicateType != "" {
		m["predicateType"] = predicateType
	}
	subj := []any{}
	for _, d := range subjects {
		alg, hx, _ := strings.Cut(d, ":")
		subj = append(subj, map[string]any{"digest": map[string]string{alg: hx}})
	}
	m["subject"] = subj
	b, _ := json.Marshal(m)
	return b
}

const inTotoStatement = "https://in-toto.io/Statement/v1"

// ownBundle is a v0.3 bundle, signed with fx.own as `cosign sign --key
// --tlog-upload=false` signs: a DSSE envelope of payloadType over payload,
// with the key's hint. signatures < 0 signs it once; 0 leaves no signature.
func (fx *hostileFixtures) ownBundle(t testing.TB, payloadType string, payload []byte, signatures int) []byte {
	t.Helper()
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
	sum := sha256.Sum256([]byte(pae))
	sig, err := ecdsa.SignASN1(rand.Reader, fx.own, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sigs := []any{}
	if signatures != 0 {
		sigs = append(sigs, map[string]any{"sig": base64.StdEncoding.EncodeToString(sig)})
	}
	b, err := json.Marshal(map[string]any{
		"mediaType":            "application/vnd.dev.sigstore.bundle.v0.3+json",
		"verificationMaterial": map[string]any{"publicKey": map[string]any{"hint": fx.ownHint}},
		"dsseEnvelope": map[string]any{
			"payload":     base64.StdEncoding.EncodeToString(payload),
			"payloadType": payloadType,
			"signatures":  sigs,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The legacy annotations cosign writes.
const (
	annSignature   = "dev.cosignproject.cosign/signature"
	annCertificate = "dev.sigstore.cosign/certificate"
	annChain       = "dev.sigstore.cosign/chain"
	annBundle      = "dev.sigstore.cosign/bundle"
)

func signatureCases(t *testing.T, fx *hostileFixtures) []hostileCase {
	t.Helper()
	ss := fx.ss
	keyless := fx.keylessPolicy()
	signed := ss.MustSignImage(t, hostileIdentity, hostileIssuer, hostileImgDigest)
	ownKey := keyPolicy(t, "own-key", fx.ownPEM)
	keyOnly := keyPolicy(t, "release-key", fx.key.PublicKeyPEM())
	otherKeyOnly := keyPolicy(t, "old-key", fx.otherKey.PublicKeyPEM())
	payload, ann := ss.MustLegacySignature(t, hostileIdentity, hostileIssuer, hostileImgDigest, hostileRepo)
	otherPayload, otherAnn := ss.MustLegacySignature(t, hostileIdentity, hostileIssuer, hostileOtherDigest, hostileRepo)
	envelope, envAnn := ss.MustLegacyAttestation(t, hostileIdentity, hostileIssuer, hostileImgDigest, hostileSLSA, nil)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`)
	garbagePEM := "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZSBjZXJ0aWZpY2F0ZQ==\n-----END CERTIFICATE-----\n"
	signStmt := func(subjects ...string) []byte {
		return statement(inTotoStatement, verifytest.CosignSignPredicateType, subjects...)
	}
	inToto := "application/vnd.in-toto+json"

	// Controls: what the malformed cases are made from verifies.
	for name, c := range map[string]struct {
		p *verify.Policy
		d verify.Discovery
	}{
		"keyless bundle":   {keyless, discoveryOf(hostileImgDigest, bundleArt(signed))},
		"hand-made bundle": {ownKey, discoveryOf(hostileImgDigest, bundleArt(fx.ownBundle(t, inToto, signStmt(hostileImgDigest), -1)))},
		"legacy signature": {keyless, discoveryOf(hostileImgDigest, sigTagArt(payload, ann))},
	} {
		if res := c.p.Check(c.d); res.Status != verify.Verified {
			t.Fatalf("control %s: Check() = %s (%s), want Verified", name, res.Status, res.Detail)
		}
	}

	checkCase := func(name string, p *verify.Policy, d verify.Discovery, want hostileWant) hostileCase {
		return hostileCase{cat: catSignature, name: name, want: want, run: func(*testing.T) hostileOutcome {
			return resultOutcome(p.Check(d))
		}}
	}
	invalid := wantStatus(verify.InvalidSignature)
	bundleCase := func(name string, p *verify.Policy, content []byte, want hostileWant) hostileCase {
		return checkCase(name, p, discoveryOf(hostileImgDigest, bundleArt(content)), want)
	}
	flipSig := editJSON(t, signed, func(m map[string]any) {
		s := obj(obj(m["dsseEnvelope"])["signatures"].([]any)[0])
		raw, _ := base64.StdEncoding.DecodeString(s["sig"].(string))
		raw[len(raw)/2] ^= 0x01
		s["sig"] = base64.StdEncoding.EncodeToString(raw)
	})
	hugeSAN := "https://github.com/acme/app/" + strings.Repeat("a", 40<<10)

	return []hostileCase{
		bundleCase("bundle not JSON", keyless, []byte("this is not a bundle"), invalid),
		bundleCase("bundle JSON truncated", keyless, signed[:len(signed)/2], invalid),
		bundleCase("bundle empty object", keyless, []byte("{}"), invalid),
		bundleCase("bundle JSON null", keyless, []byte("null"), invalid),
		bundleCase("bundle JSON array", keyless, []byte(`[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}]`), invalid),
		bundleCase("bundle wrong mediaType", keyless, editJSON(t, signed, func(m map[string]any) { m["mediaType"] = "application/json" }), invalid),
		bundleCase("bundle unknown version", keyless, editJSON(t, signed, func(m map[string]any) {
			m["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.9+json"
		}), invalid),
		bundleCase("bundle without verification material", keyless, editJSON(t, signed, func(m map[string]any) { delete(m, "verificationMaterial") }), invalid),
		bundleCase("bundle certificate bytes garbage", keyless, editJSON(t, signed, func(m map[string]any) {
			obj(m["verificationMaterial"])["certificate"] = map[string]any{"rawBytes": base64.StdEncoding.EncodeToString([]byte("garbage certificate"))}
		}), invalid),
		bundleCase("bundle signature bit flipped", keyless, flipSig, invalid),
		bundleCase("certificate from another Sigstore (untrusted CA)", keyless, fx.other.MustSignImage(t, hostileIdentity, hostileIssuer, hostileImgDigest), invalid),
		bundleCase("cosign-sign statement about another digest", keyless, ss.MustSignImage(t, hostileIdentity, hostileIssuer, hostileOtherDigest), invalid),
		bundleCase("attestation only (SLSA)", keyless, ss.MustAttestImage(t, hostileIdentity, hostileIssuer, hostileImgDigest, hostileSLSA, nil), wantStatus(verify.NoSignatures)),
		checkCase("message signature over the manifest bytes", keyless,
			discoveryOf(hostileDigest(manifest), bundleArt(ss.MustSignMessage(t, hostileIdentity, hostileIssuer, manifest))), invalid),
		bundleCase("signed by an identity the policy does not trust", keyless, ss.MustSignImage(t, hostileEvil, hostileIssuer, hostileImgDigest), wantStatus(verify.IdentityMismatch)),
		bundleCase("signer with a 40 KiB SAN", keyless, ss.MustSignImage(t, hugeSAN, hostileIssuer, hostileImgDigest),
			hostileWant{status: string(verify.IdentityMismatch), maxDetail: 4 << 10}),
		bundleCase("key-signed bundle, authority of another key", otherKeyOnly, fx.key.MustSignImage(t, hostileImgDigest), invalid),
		bundleCase("keyless bundle, key-only policy", keyOnly, signed, invalid),
		// Hand-made, validly signed DSSE envelopes of what must not sign an image.
		bundleCase("DSSE payload type not in-toto", ownKey, fx.ownBundle(t, "application/vnd.cosign+json", signStmt(hostileImgDigest), -1), invalid),
		bundleCase("in-toto statement with another subject digest", ownKey, fx.ownBundle(t, inToto, signStmt(hostileOtherDigest), -1), invalid),
		bundleCase("statement without predicateType", ownKey, fx.ownBundle(t, inToto, statement(inTotoStatement, "", hostileImgDigest), -1), invalid),
		bundleCase("statement of another _type", ownKey, fx.ownBundle(t, inToto,
			statement("https://example.com/NotAStatement/v1", verifytest.CosignSignPredicateType, hostileImgDigest), -1), invalid),
		bundleCase("statement without subject", ownKey, fx.ownBundle(t, inToto, signStmt(), -1), invalid),
		bundleCase("DSSE envelope without signatures", ownKey, fx.ownBundle(t, inToto, signStmt(hostileImgDigest), 0), invalid),
		// Legacy .sig and .att layers.
		checkCase("legacy payload naming another digest", keyless, discoveryOf(hostileImgDigest, sigTagArt(otherPayload, otherAnn)), invalid),
		checkCase("legacy payload not JSON", keyless, discoveryOf(hostileImgDigest, sigTagArt([]byte("not json"), ann)), invalid),
		checkCase("legacy signature of another payload", keyless,
			discoveryOf(hostileImgDigest, sigTagArt(payload, withAnn(ann, annSignature, otherAnn[annSignature]))), invalid),
		checkCase("legacy signature annotation not base64", keyless,
			discoveryOf(hostileImgDigest, sigTagArt(payload, withAnn(ann, annSignature, "!!! not base64 !!!"))), invalid),
		checkCase("legacy certificate annotation garbage", keyless,
			discoveryOf(hostileImgDigest, sigTagArt(payload, withAnn(ann, annCertificate, garbagePEM))), invalid),
		checkCase("legacy certificate annotation not PEM", keyless,
			discoveryOf(hostileImgDigest, sigTagArt(payload, withAnn(ann, annCertificate, "garbage, not a certificate"))), invalid),
		checkCase("legacy chain annotation garbage", keyless,
			discoveryOf(hostileImgDigest, sigTagArt(payload, withAnn(ann, annChain, garbagePEM))), invalid),
		checkCase("legacy chain annotation not PEM", keyless,
			discoveryOf(hostileImgDigest, sigTagArt(payload, withAnn(ann, annChain, "garbage, not a chain"))), invalid),
		checkCase("legacy rekor bundle annotation garbage", keyless,
			discoveryOf(hostileImgDigest, sigTagArt(payload, withAnn(ann, annBundle, `{"SignedEntryTimestamp": "garbage", "Payload": 7`))), invalid),
		checkCase("legacy key-signed payload, authority of another key", otherKeyOnly,
			discoveryOf(hostileImgDigest, sigTagArt(fx.key.MustLegacySignature(t, hostileImgDigest, hostileRepo))), invalid),
		checkCase("legacy attestation envelope not JSON", keyless, discoveryOf(hostileImgDigest, attTagArt([]byte("{]"), envAnn)), invalid),
		checkCase("legacy attestation only", keyless, discoveryOf(hostileImgDigest, attTagArt(envelope, envAnn)), wantStatus(verify.NoSignatures)),
		// Artifacts discovery could not read.
		checkCase("listed artifact not fetched (Unfetched)", keyless, discoveryOf(hostileImgDigest, verify.Artifact{
			Source: verify.ReferrersStep, Manifest: hostileDigest([]byte("m")), Format: verify.BundleFormat,
			Err: "fetching blob: HTTP 500 Internal Server Error", Unfetched: true,
		}), wantStatus(verify.LookupFailed)),
		checkCase("artifact read but unparseable (Err, not Unfetched)", keyless, discoveryOf(hostileImgDigest, verify.Artifact{
			Source: verify.ReferrersStep, Manifest: hostileDigest([]byte("m")), Format: verify.BundleFormat,
			Err: "parsing manifest: unexpected end of JSON input",
		}), invalid),
		checkCase("artifact of an unknown format", keyless, discoveryOf(hostileImgDigest, verify.Artifact{
			Source: verify.ReferrersStep, Manifest: hostileDigest([]byte("m")), Format: "x-unknown", Content: signed,
		}), invalid),
	}
}

// ---------------------------------------------------------------------------
// C. Hostile tarballs: sources.Fetch from a loopback server.

// tarball returns the entries as a gzipped tar stream, written as given.
func tarball(t testing.TB, entries ...sourcestest.Entry) []byte {
	t.Helper()
	b, err := sourcestest.RawTarball(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bombTarball is a gzipped tar of one file of size zero bytes: small
// compressed, size inflated.
func bombTarball(t testing.TB, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(gw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: size}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for rem := size; rem > 0; rem -= int64(len(zeros)) {
		if _, err := tw.Write(zeros[:min(rem, int64(len(zeros)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	if _, err := gw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarballCases(t *testing.T) []hostileCase {
	t.Helper()
	big := strings.Repeat("x", 2048)
	other := hostileDigest([]byte("something else"))
	fetchCase := func(name string, body func(t testing.TB) []byte, digest string, opts []sources.Option, contains ...string) hostileCase {
		return hostileCase{cat: catTarball, name: name, want: wantError(contains...), run: func(t *testing.T) hostileOutcome {
			b := body(t)
			a := sources.Artifact{URL: sourcestest.ServeBytes(t, b), Digest: digest}
			if a.Digest == "" {
				a.Digest = hostileDigest(b)
			}
			dst := filepath.Join(t.TempDir(), "tree")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			tree, err := sources.Fetch(ctx, a, dst, append([]sources.Option{sources.WithRetries(0)}, opts...)...)
			var out hostileOutcome
			if err != nil {
				out = hostileOutcome{status: "error", detail: err.Error()}
			} else {
				out = hostileOutcome{verified: true, status: "ok", detail: "extracted into " + tree.Root}
			}
			if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 && out.status == "error" {
				out.problems = append(out.problems, fmt.Sprintf("the destination holds %d entries after the error", len(entries)))
			}
			return out
		}}
	}
	tb := func(entries ...sourcestest.Entry) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return tarball(t, entries...) }
	}
	return []hostileCase{
		fetchCase("path traversal", tb(sourcestest.File("ok.yaml", "a"), sourcestest.File("../evil", "x")), "", nil, `"../evil"`),
		fetchCase("nested path traversal", tb(sourcestest.File("a/../../evil", "x")), "", nil, `"a/../../evil"`),
		fetchCase("dot dot directory", tb(sourcestest.Dir("..")), "", nil, `entry ".." escapes the root`),
		fetchCase("absolute path", tb(sourcestest.File("ok.yaml", "a"), sourcestest.File("/etc/x", "x")), "", nil, `"/etc/x"`),
		fetchCase("symlink escaping", tb(sourcestest.File("ok.yaml", "a"), sourcestest.Symlink("link", "../../etc/passwd")), "", nil,
			`entry "link" is a symlink to "../../etc/passwd", outside the root`),
		fetchCase("symlink to an absolute path", tb(sourcestest.File("ok.yaml", "a"), sourcestest.Symlink("link", "/etc")), "", nil,
			`entry "link" is a symlink to "/etc", outside the root`),
		fetchCase("hard link", tb(sourcestest.File("ok.yaml", "a"), sourcestest.HardLink("hl", "ok.yaml")), "", nil, `entry "hl" is a hard link to "ok.yaml"`),
		fetchCase("character device", tb(sourcestest.Special("dev/null", tar.TypeChar)), "", nil, `entry "dev/null" is a device`),
		fetchCase("block device", tb(sourcestest.Special("dev/sda", tar.TypeBlock)), "", nil, `entry "dev/sda" is a device`),
		fetchCase("named pipe", tb(sourcestest.Special("fifo", tar.TypeFifo)), "", nil, `entry "fifo" is a named pipe`),
		fetchCase("extracted size over WithMaxSize", tb(sourcestest.File("a.yaml", big), sourcestest.File("b.yaml", big)), "",
			[]sources.Option{sources.WithMaxSize(3000)}, `"b.yaml"`, "3000 bytes"),
		fetchCase("download over WithMaxDownloadSize", tb(sourcestest.File("a.yaml", big)), "",
			[]sources.Option{sources.WithMaxDownloadSize(10)}, "max download size of 10 bytes"),
		fetchCase("too many entries", tb(sourcestest.File("1", ""), sourcestest.File("2", ""), sourcestest.File("3", ""), sourcestest.File("4", "")), "",
			[]sources.Option{sources.WithMaxFiles(3)}, `entry "4" exceeds the limit of 3 entries`),
		fetchCase("digest mismatch", tb(sourcestest.File("a.yaml", "a")), other, nil, "/artifact.tar.gz", other),
		fetchCase("not gzip", func(testing.TB) []byte { return []byte("<html>this is not an artifact</html>") }, "", nil, "gzip"),
		fetchCase("gzip of garbage", func(t testing.TB) []byte { return gzipOf(t, bytes.Repeat([]byte("garbage!"), 100)) }, "", nil,
			"extracting archive"),
		fetchCase("gzip bomb: 100 MiB in one file", func(t testing.TB) []byte { return bombTarball(t, "bomb.yaml", 100<<20) }, "",
			[]sources.Option{sources.WithMaxSize(1 << 20)}, `"bomb.yaml"`, "1048576 bytes"),
	}
}

// ---------------------------------------------------------------------------
// D. Hostile revisions: Render, then Evaluate with no findings.

func deployment(name, container string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: apps
spec:
  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
    spec:
      containers:
%s`, name, name, name, container)
}

func withImage(image string) string {
	return "        - name: app\n          image: " + image + "\n"
}

func fluxKustomization(name, path string) string {
	return fmt.Sprintf(`apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: %s
  namespace: flux-system
spec:
  interval: 10m
  path: %s
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
`, name, path)
}

// aliasBomb is a "billion laughs": nine levels of nine aliases.
func aliasBomb(prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(`a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for c := 'b'; c <= 'i'; c++ {
		prev := string(c - 1)
		fmt.Fprintf(&b, "%c: &%c [*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s,*%s]\n", c, c, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	return b.String()
}

// deepNesting is a document with depth nested flow sequences.
func deepNesting(prefix string, depth int) string {
	return prefix + "deep: " + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "\n"
}

// deepMapping is a document with depth nested flow mappings.
func deepMapping(prefix string, depth int) string {
	return prefix + "deep: " + strings.Repeat("{a: ", depth) + "b" + strings.Repeat("}", depth) + "\n"
}

// renderAndEvaluate renders dir, a directory of root, and evaluates what
// it rendered to with one policy for ghcr.io/** and unmatched images
// denied, with no findings: an error is the render's; otherwise the
// outcome is the verdict's.
func renderAndEvaluate(ctx context.Context, root, dir, name string) hostileOutcome {
	glob, err := gate.CompileGlob("ghcr.io/**")
	if err != nil {
		panic(err)
	}
	cfg := gate.Config{Policies: []gate.Policy{{Name: "ghcr", Images: []*gate.Glob{glob}, Mode: gate.Enforce}}, Unmatched: gate.DenyUnmatched}
	res, err := render.Render(ctx, root, dir)
	if err != nil {
		return hostileOutcome{status: "error", detail: err.Error()}
	}
	v := gate.Evaluate(cfg, gate.Revision{Source: "hostile/" + name}, gate.Rendered{Images: res.Images, Gaps: res.Gaps}, nil)
	out := hostileOutcome{verified: v.Allowed, detail: v.Message}
	switch {
	case v.Allowed:
		out.status = "allowed"
	case v.Undecided:
		out.status = "undecided/" + v.Reason
	default:
		out.status = "denied/" + v.Reason
	}
	return out
}

// The environment of a render run in a child process (see
// renderInChild): the tree's root and the directory to render.
const (
	childRootEnv = "PREGATE_HOSTILE_RENDER_ROOT"
	childDirEnv  = "PREGATE_HOSTILE_RENDER_DIR"
	// childOutcome starts the line that carries the child's outcome.
	childOutcome = "pregate-hostile-outcome: "
	// childMemory is what the child may use before it is stopped.
	childMemory = 1 << 30
)

// childResult is a hostileOutcome as a child process reports it.
type childResult struct {
	Verified bool   `json:"verified"`
	Status   string `json:"status"`
	Detail   string `json:"detail"`
	Crashed  bool   `json:"crashed"`
}

// renderChild is TestHostile in a child process: it renders the tree the
// environment names, reports the outcome on stdout and returns. It stops
// the process, reporting a crash, when its memory passes childMemory: a
// render that grows without bound would otherwise take the machine down.
func renderChild(root, dir string) {
	report := func(r childResult) {
		b, _ := json.Marshal(r)
		_, _ = os.Stdout.WriteString(childOutcome + string(b) + "\n")
	}
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		tick := time.NewTicker(5 * time.Millisecond)
		for range tick.C {
			metrics.Read(sample)
			if used := sample[0].Value.Uint64(); used > childMemory {
				report(childResult{Status: "crash", Crashed: true,
					Detail: fmt.Sprintf("the render's memory passed %d MiB (%d MiB in use): it would have run out", childMemory>>20, used>>20)})
				os.Exit(3)
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			report(childResult{Status: "panic", Crashed: true, Detail: fmt.Sprintf("%v\n%s", r, debug.Stack())})
		}
	}()
	out := renderAndEvaluate(context.Background(), root, dir, "child")
	report(childResult{Verified: out.verified, Status: out.status, Detail: out.detail})
}

// renderInChild renders dir of root in a child process (the test binary
// running renderChild), killed after limit: for trees that may exhaust
// the memory or the time of the process. A child that dies without
// reporting crashed.
func renderInChild(t *testing.T, root, dir string, limit time.Duration) hostileOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHostile$", "-test.count=1")
	cmd.Env = append(os.Environ(), childRootEnv+"="+root, childDirEnv+"="+dir, "GOMAXPROCS=1")
	output, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(output), "\n") {
		if rest, ok := strings.CutPrefix(line, childOutcome); ok {
			var r childResult
			if jerr := json.Unmarshal([]byte(rest), &r); jerr != nil {
				t.Fatalf("decoding the child's outcome %q: %v", rest, jerr)
			}
			return hostileOutcome{verified: r.Verified, status: r.Status, detail: r.Detail, crashed: r.Crashed}
		}
	}
	if ctx.Err() != nil {
		return hostileOutcome{status: "timeout", detail: fmt.Sprintf("still rendering after %s: killed", limit)}
	}
	tail := string(output)
	if len(tail) > 2000 {
		tail = tail[:2000]
	}
	return hostileOutcome{status: "crash", crashed: true, detail: fmt.Sprintf("the render died (%v): %s", err, tail)}
}

// treeSpec is a revision's tree: files (paths relative to the root;
// "../" reaches beside it) and a setup run after they are written.
type treeSpec struct {
	// dir is the directory to render, relative to the root ("" for the
	// root).
	dir   string
	files map[string]string
	setup func(t *testing.T, root string)
	// isolate renders in a child process killed after isolate (see
	// renderInChild).
	isolate time.Duration
}

func treeCase(name string, spec treeSpec, want hostileWant) hostileCase {
	return hostileCase{cat: catTree, name: name, want: want, run: func(t *testing.T) hostileOutcome {
		root := filepath.Join(t.TempDir(), "src")
		if err := os.MkdirAll(root, 0o750); err != nil {
			t.Fatal(err)
		}
		for p, content := range spec.files {
			f := filepath.Join(root, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(f), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if spec.setup != nil {
			spec.setup(t, root)
		}
		dir := filepath.Join(root, filepath.FromSlash(spec.dir))
		if spec.isolate > 0 {
			return renderInChild(t, root, dir, spec.isolate)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		return renderAndEvaluate(ctx, root, dir, name)
	}}
}

func treeCases() []hostileCase {
	files := func(f map[string]string) treeSpec { return treeSpec{files: f} }
	app := deployment("app", withImage("ghcr.io/acme/app:1.0"))
	helmRelease := `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: 6.x
      sourceRef:
        kind: HelmRepository
        name: podinfo
`
	invalidUTF8 := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata:\n  k: \"\xff\xfe\xfd\"\n"
	configMap := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n"
	kustomization := func(resources ...string) string {
		return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + strings.Join(resources, "\n  - ") + "\n"
	}
	outside := deployment("outside", withImage("docker.io/evil/miner:latest"))
	return []hostileCase{
		treeCase("malformed YAML", files(map[string]string{"deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: [\n"}),
			wantErrorOrGap("deploy.yaml")),
		// A render that exhausts the memory would take the test down with
		// it: it runs in a child process, stopped at 1 GiB.
		treeCase("YAML alias bomb", treeSpec{files: map[string]string{"bomb.yaml": aliasBomb(configMap)}, isolate: 20 * time.Second},
			wantErrorOrGap("bomb.yaml")),
		treeCase("document without kind", files(map[string]string{"nokind.yaml": "apiVersion: v1\nmetadata:\n  name: x\ndata: {}\n", "app.yaml": app}),
			wantErrorOrGap("nokind.yaml")),
		treeCase("document without apiVersion", files(map[string]string{"noapi.yaml": "kind: ConfigMap\nmetadata:\n  name: x\ndata: {}\n", "app.yaml": app}),
			wantErrorOrGap("noapi.yaml")),
		treeCase("kustomization naming a missing resource", files(map[string]string{
			"kustomization.yaml": kustomization("app.yaml", "missing.yaml"),
			"app.yaml":           app,
		}), wantErrorOrGap("missing.yaml")),
		// Remote bases are fetched, as kustomize-controller does: these are
		// on the loopback interface, where nothing listens on port 1.
		treeCase("kustomization with a remote base", files(map[string]string{
			"kustomization.yaml": kustomization("app.yaml", "https://127.0.0.1:1/acme/infra//base?ref=main"),
			"app.yaml":           app,
		}), wantErrorOrGap("kustomization.yaml")),
		treeCase("kustomization reaching outside the root", files(map[string]string{
			"kustomization.yaml": kustomization("app.yaml", "../outside.yaml"),
			"app.yaml":           app,
			"../outside.yaml":    outside,
		}), wantErrorOrGap("outside.yaml")),
		treeCase("symlink to a file outside the root", treeSpec{
			files: map[string]string{"kustomization.yaml": kustomization("app.yaml", "link.yaml"), "app.yaml": app, "../outside.yaml": outside},
			setup: func(t *testing.T, root string) {
				if err := os.Symlink(filepath.Join(root, "..", "outside.yaml"), filepath.Join(root, "link.yaml")); err != nil {
					t.Fatal(err)
				}
			},
		}, wantErrorOrGap("link.yaml")),
		treeCase("HelmRelease", files(map[string]string{"helmrelease.yaml": helmRelease}), wantErrorOrGap("helmrelease.yaml")),
		treeCase("HelmRelease beside an image", files(map[string]string{"helmrelease.yaml": helmRelease, "app.yaml": app}),
			wantErrorOrGap("helmrelease.yaml")),
		treeCase("image still a template ${IMAGE}", files(map[string]string{"app.yaml": deployment("app", withImage("${IMAGE}"))}),
			wantErrorOrGap("app.yaml")),
		treeCase("container without image", files(map[string]string{"app.yaml": deployment("app", "        - name: app\n")}),
			wantErrorOrGap("app.yaml")),
		treeCase("image that is not a reference", files(map[string]string{"app.yaml": deployment("app", withImage(`"ghcr.io/acme/app:NOT A TAG!"`))}),
			wantErrorOrGap("app.yaml")),
		// 10,000 levels are within the YAML decoder's bound; one more is not.
		treeCase("10,001-level nested sequence", files(map[string]string{"deep.yaml": deepNesting(configMap, 10001), "app.yaml": app}),
			wantErrorOrGap("deep.yaml")),
		treeCase("100,000-level nested sequence", files(map[string]string{"deep.yaml": deepNesting(configMap, 100000), "app.yaml": app}),
			wantErrorOrGap("deep.yaml")),
		treeCase("10,001-level nested mapping", files(map[string]string{"deep.yaml": deepMapping(configMap, 10001), "app.yaml": app}),
			wantErrorOrGap("deep.yaml")),
		// Within the decoder's bound, but rendering it costs time that grows
		// faster than its size: it runs in a child process, killed after 5s.
		treeCase("10,000-level nested mapping", treeSpec{files: map[string]string{"deep.yaml": deepMapping(configMap, 10000)}, isolate: 5 * time.Second},
			wantErrorOrGap("deep.yaml")),
		treeCase("non-UTF-8 file", files(map[string]string{"bad.yaml": invalidUTF8, "app.yaml": app}), wantErrorOrGap("bad.yaml")),
		treeCase("Flux Kustomization of a missing path", treeSpec{dir: "clusters/prod", files: map[string]string{
			"clusters/prod/apps.yaml": fluxKustomization("apps", "./apps/missing"),
			"clusters/prod/app.yaml":  app,
		}}, wantErrorOrGap("apps.yaml")),
		treeCase("Flux Kustomization of a path with a remote base", treeSpec{dir: "clusters/prod", files: map[string]string{
			"clusters/prod/apps.yaml": fluxKustomization("apps", "./apps"),
			"apps/kustomization.yaml": kustomization("app.yaml", "http://127.0.0.1:1/acme/infra.git/base?ref=main"),
			"apps/app.yaml":           app,
		}}, wantErrorOrGap("apps/kustomization.yaml")),
	}
}

// ---------------------------------------------------------------------------
// E. Hostile policy files: config.Load, then Compile.

const policyFile = "policies/p.yaml"

func policyDoc(spec string) string {
	return "apiVersion: gate.pregate.dev/v1alpha1\nkind: TrustPolicy\nmetadata:\n  name: p\nspec:\n" + spec
}

const keylessSpec = `  authorities:
    - name: gh
      keyless:
        identities:
          - issuer: https://token.actions.githubusercontent.com
            subject: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main
`

func imagesSpec(globs ...string) string {
	s := "  images:\n"
	for _, g := range globs {
		s += "    - glob: " + g + "\n"
	}
	return s
}

func keySpec(pemKey string) string {
	s := "  authorities:\n    - name: k\n      insecureIgnoreTlog: true\n      key:\n        data: |\n"
	for _, l := range strings.Split(strings.TrimSuffix(pemKey, "\n"), "\n") {
		s += "          " + l + "\n"
	}
	return s
}

func policyFileCases(t *testing.T, fx *hostileFixtures) []hostileCase {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024 := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	// The trust roots come from the test Sigstore: nothing is fetched.
	trust := config.TrustSource(func(*v1alpha1.TrustRoot) (root.TrustedMaterial, error) { return fx.ss.Material(), nil })
	failingTrust := config.TrustSource(func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
		return nil, errors.New("no trust material in this test")
	})
	loadCase := func(name, data string, trust config.TrustSource, contains ...string) hostileCase {
		return hostileCase{cat: catPolicy, name: name, want: wantError(append([]string{policyFile}, contains...)...), run: func(*testing.T) hostileOutcome {
			set, err := config.Load(policyFile, []byte(data))
			if err != nil {
				return hostileOutcome{status: "error", detail: err.Error()}
			}
			if _, err := set.Compile(trust); err != nil {
				return hostileOutcome{status: "error", detail: err.Error()}
			}
			return hostileOutcome{verified: true, status: "ok", detail: "loaded and compiled"}
		}}
	}
	good := imagesSpec("ghcr.io/acme/**") + keylessSpec
	named := `TrustPolicy "p"`
	// Control: the good policy loads and compiles.
	if set, err := config.Load(policyFile, []byte(policyDoc(good))); err != nil {
		t.Fatalf("control policy: %v", err)
	} else if _, err := set.Compile(trust); err != nil {
		t.Fatalf("control policy: %v", err)
	}
	return []hostileCase{
		loadCase("malformed YAML", policyDoc(good)+"  mode: [enforce\n", trust, "line"),
		loadCase("tab-indented YAML", policyDoc("\timages: []\n"), trust),
		loadCase("YAML alias bomb", aliasBomb(policyDoc(good)), trust),
		loadCase("unknown field", policyDoc(good+"  authorityz: []\n"), trust, named, "authorityz"),
		loadCase("invalid identity regexp", policyDoc(imagesSpec("ghcr.io/acme/**")+strings.Replace(keylessSpec,
			"subject: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", "subjectRegExp: 'https://github\\.com/(acme'", 1)), trust,
			named, "subjectRegExp"),
		loadCase("glob nginx (not fully qualified)", policyDoc(imagesSpec("nginx")+keylessSpec), trust, named, `"nginx"`),
		loadCase("glob with +", policyDoc(imagesSpec("ghcr.io/acme/app+x:*")+keylessSpec), trust, named, `"+"`),
		loadCase("glob GHCR.IO/**", policyDoc(imagesSpec("GHCR.IO/**")+keylessSpec), trust, named, "GHCR.IO/**"),
		loadCase("glob docker.io/library/nginx:*", policyDoc(imagesSpec("docker.io/library/nginx:*")+keylessSpec), trust, named, "index.docker.io"),
		loadCase("empty glob", policyDoc(imagesSpec(`""`)+keylessSpec), trust, named),
		loadCase("duplicate policy names in one file", policyDoc(good)+"---\n"+policyDoc(good), trust, named, "duplicate name"),
		loadCase("wrong apiVersion", strings.Replace(policyDoc(good), "gate.pregate.dev/v1alpha1", "gate.pregate.dev/v1", 1), trust, "gate.pregate.dev/v1"),
		loadCase("wrong kind", strings.Replace(policyDoc(good), "kind: TrustPolicy", "kind: ClusterImagePolicy", 1), trust, "ClusterImagePolicy"),
		loadCase("key PEM garbage", policyDoc(imagesSpec("ghcr.io/acme/**")+keySpec("-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END PUBLIC KEY-----\n")), trust,
			named, "key.data"),
		loadCase("RSA-1024 key", policyDoc(imagesSpec("ghcr.io/acme/**")+keySpec(rsa1024)), trust, named, "1024"),
		loadCase("static pass beside required attestations", policyDoc(imagesSpec("ghcr.io/acme/**")+keylessSpec+
			"    - name: everything\n      static:\n        action: pass\n  attestations:\n    - name: provenance\n      predicateType: https://slsa.dev/provenance/v1\n"),
			trust, named, "static"),
		loadCase("static pass alone with required attestations", policyDoc(imagesSpec("ghcr.io/acme/**")+
			"  authorities:\n    - name: everything\n      static:\n        action: pass\n  attestations:\n    - name: provenance\n      predicateType: https://slsa.dev/provenance/v1\n"),
			trust, named, "static"),
		loadCase("no authorities", policyDoc(imagesSpec("ghcr.io/acme/**")), trust, named, "authorities"),
		loadCase("no images", policyDoc(keylessSpec), trust, named, "images"),
		loadCase("not an object", "- apiVersion: gate.pregate.dev/v1alpha1\n  kind: TrustPolicy\n", trust),
		loadCase("hash algorithm md5", policyDoc(imagesSpec("ghcr.io/acme/**")+strings.Replace(keySpec(string(fx.key.PublicKeyPEM())),
			"      key:\n", "      key:\n        hashAlgorithm: md5\n", 1)), trust, named, "md5"),
		loadCase("trust root that cannot be had", policyDoc(good), failingTrust, named, "no trust material"),
	}
}
