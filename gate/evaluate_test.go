package gate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func mustPolicy(t *testing.T, name string, mode Mode, globs ...string) Policy {
	t.Helper()
	p := Policy{Name: name, Mode: mode}
	for _, g := range globs {
		c, err := CompileGlob(g)
		if err != nil {
			t.Fatal(err)
		}
		p.Images = append(p.Images, c)
	}
	return p
}

func img(ref, object string) Image {
	return Image{Ref: ref, Locations: []Location{{File: "apps/deploy.yaml", Object: object, Path: "spec.template.spec.containers[0]"}}}
}

func finding(image, policy string, s Status, detail string) Finding {
	return Finding{Image: image, Policy: policy, Digest: "sha256:" + strings.Repeat("a", 64), Status: s, Detail: detail}
}

const (
	app   = "ghcr.io/acme/app:1.0"
	api   = "ghcr.io/acme/api:2.0"
	nginx = "index.docker.io/library/nginx:1.27"
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	firstParty := func(t *testing.T, mode Mode) Policy { return mustPolicy(t, "first-party", mode, "ghcr.io/acme/**") }
	for name, tc := range map[string]struct {
		// inputs
		policies  func(t *testing.T) []Policy
		unmatched Unmatched
		allowGaps []string
		images    []Image
		gaps      []Gap
		findings  []Finding
		// expected outputs
		allowed   bool
		undecided bool
		retry     bool
		reason    string
		message   string
		outcomes  map[string]Outcome
	}{
		"all verified, third party allowed": {
			policies:  func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			unmatched: AllowUnmatched,
			images:    []Image{img(app, "Deployment/apps/app"), img(nginx, "Deployment/apps/web")},
			findings:  []Finding{finding(app, "first-party", Verified, "ok")},
			allowed:   true, reason: SucceededReason,
			message:  "1 of 2 images verified, 1 allowed",
			outcomes: map[string]Outcome{app: Passed, nginx: Allowed},
		},
		"unsigned first-party image is denied": {
			policies:  func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			unmatched: AllowUnmatched,
			images:    []Image{img(app, "Deployment/apps/app"), img(api, "Deployment/apps/api")},
			findings: []Finding{
				finding(app, "first-party", Verified, "ok"),
				finding(api, "first-party", NoSignatures, "no signatures found"),
			},
			reason:   NoSignaturesReason,
			message:  `1 of 2 images denied: ghcr.io/acme/api:2.0 in Deployment/apps/api (apps/deploy.yaml): policy "first-party": no signatures found`,
			outcomes: map[string]Outcome{app: Passed, api: Denied},
		},
		"identity mismatch": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:   []Image{img(api, "Deployment/apps/api")},
			findings: []Finding{finding(api, "first-party", IdentityMismatch, "signed by someone else")},
			reason:   IdentityMismatchReason,
			message:  `1 of 1 images denied: ghcr.io/acme/api:2.0 in Deployment/apps/api (apps/deploy.yaml): policy "first-party": signed by someone else`,
			outcomes: map[string]Outcome{api: Denied},
		},
		"only lookup failures: retry, registry unreachable": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:   []Image{img(app, "Deployment/apps/app"), img(api, "Deployment/apps/api")},
			findings: []Finding{
				finding(app, "first-party", LookupFailed, "referrers: 503"),
				finding(api, "first-party", ResolveFailed, "dial tcp: refused"),
			},
			undecided: true, retry: true, reason: RegistryUnreachableReason,
			message:  `2 of 2 images denied: ghcr.io/acme/api:2.0 in Deployment/apps/api (apps/deploy.yaml): policy "first-party": dial tcp: refused; ghcr.io/acme/app:1.0 in Deployment/apps/app (apps/deploy.yaml): policy "first-party": referrers: 503`,
			outcomes: map[string]Outcome{app: Denied, api: Denied},
		},
		"a definite denial outranks a lookup failure": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:   []Image{img(app, "Deployment/apps/app"), img(api, "Deployment/apps/api")},
			findings: []Finding{
				finding(app, "first-party", LookupFailed, "referrers: 503"),
				finding(api, "first-party", InvalidSignature, "signature over another digest"),
			},
			reason:   VerificationFailedReason,
			message:  `2 of 2 images denied: ghcr.io/acme/api:2.0 in Deployment/apps/api (apps/deploy.yaml): policy "first-party": signature over another digest`,
			outcomes: map[string]Outcome{app: Denied, api: Denied},
		},
		"warn mode reports but does not block": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Warn)} },
			images:   []Image{img(api, "Deployment/apps/api")},
			findings: []Finding{finding(api, "first-party", NoSignatures, "no signatures found")},
			allowed:  true, reason: SucceededReason,
			message:  "0 of 1 images verified, 1 warned",
			outcomes: map[string]Outcome{api: Warned},
		},
		"audit mode records only": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Audit)} },
			images:   []Image{img(api, "Deployment/apps/api")},
			findings: []Finding{finding(api, "first-party", NoSignatures, "no signatures found")},
			allowed:  true, reason: SucceededReason,
			message:  "0 of 1 images verified, 1 audited",
			outcomes: map[string]Outcome{api: Audited},
		},
		"every matching policy must pass": {
			policies: func(t *testing.T) []Policy {
				return []Policy{firstParty(t, Enforce), mustPolicy(t, "provenance", Enforce, "ghcr.io/acme/app*")}
			},
			images: []Image{img(app, "Deployment/apps/app")},
			findings: []Finding{
				finding(app, "first-party", Verified, "ok"),
				finding(app, "provenance", AttestationMissing, "no SLSA provenance"),
			},
			reason:   VerificationFailedReason,
			message:  `1 of 1 images denied: ghcr.io/acme/app:1.0 in Deployment/apps/app (apps/deploy.yaml): policy "provenance": no SLSA provenance`,
			outcomes: map[string]Outcome{app: Denied},
		},
		"enforce failure outranks a warn failure on the same image": {
			policies: func(t *testing.T) []Policy {
				return []Policy{mustPolicy(t, "a-warn", Warn, "ghcr.io/**"), firstParty(t, Enforce)}
			},
			images: []Image{img(app, "Deployment/apps/app")},
			findings: []Finding{
				finding(app, "a-warn", NoSignatures, "warned"),
				finding(app, "first-party", IdentityMismatch, "wrong signer"),
			},
			reason:   IdentityMismatchReason,
			message:  `1 of 1 images denied: ghcr.io/acme/app:1.0 in Deployment/apps/app (apps/deploy.yaml): policy "first-party": wrong signer`,
			outcomes: map[string]Outcome{app: Denied},
		},
		"unmatched images are denied by default": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:   []Image{img(nginx, "Deployment/apps/web")},
			reason:   UnmatchedImageReason,
			message:  `1 of 1 images denied: index.docker.io/library/nginx:1.27 in Deployment/apps/web (apps/deploy.yaml): no policy matches; unmatched images are denied`,
			outcomes: map[string]Outcome{nginx: Denied},
		},
		"unmatched warn": {
			policies:  func(t *testing.T) []Policy { return nil },
			unmatched: WarnUnmatched,
			images:    []Image{img(nginx, "Deployment/apps/web")},
			allowed:   true, reason: SucceededReason,
			message:  "0 of 1 images verified, 1 warned",
			outcomes: map[string]Outcome{nginx: Warned},
		},
		"a missing finding never passes": {
			policies:  func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:    []Image{img(app, "Deployment/apps/app")},
			undecided: true, retry: true, reason: RegistryUnreachableReason,
			message:  `1 of 1 images denied: ghcr.io/acme/app:1.0 in Deployment/apps/app (apps/deploy.yaml): policy "first-party": not verified`,
			outcomes: map[string]Outcome{app: Denied},
		},
		"a gap blocks by default: undecided": {
			policies:  func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:    []Image{img(app, "Deployment/apps/app")},
			gaps:      []Gap{{Reason: "HelmRelease", File: "infra/nginx.yaml", Object: "HelmRelease/ingress/nginx", Message: "chart not rendered"}},
			findings:  []Finding{finding(app, "first-party", Verified, "ok")},
			undecided: true, reason: CoverageGapReason,
			message:  "images not seen: 1 coverage gap blocking: HelmRelease infra/nginx.yaml HelmRelease/ingress/nginx: chart not rendered",
			outcomes: map[string]Outcome{app: Passed},
		},
		"an allowed gap kind does not block": {
			policies:  func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			allowGaps: []string{"HelmRelease"},
			images:    []Image{img(app, "Deployment/apps/app")},
			gaps: []Gap{
				{Reason: "HelmRelease", Object: "HelmRelease/ingress/nginx", Message: "chart not rendered"},
				{Reason: "OtherSource", Object: "Kustomization/flux-system/infra", Message: "applies GitRepository/flux-system/infra", Informational: true},
			},
			findings: []Finding{finding(app, "first-party", Verified, "ok")},
			allowed:  true, reason: SucceededReason,
			message:  "1 of 1 images verified; 2 coverage gaps (0 blocking)",
			outcomes: map[string]Outcome{app: Passed},
		},
		"allowing one kind leaves the others blocking": {
			policies:  func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			allowGaps: []string{"HelmRelease"},
			images:    []Image{img(app, "Deployment/apps/app")},
			gaps: []Gap{
				{Reason: "HelmRelease", Object: "HelmRelease/ingress/nginx", Message: "chart not rendered"},
				{Reason: "UnresolvedImage", File: "apps/app.yaml", Object: "Deployment/apps/app", Path: "spec.template.spec.containers[1]", Message: "still a template"},
			},
			findings:  []Finding{finding(app, "first-party", Verified, "ok")},
			undecided: true, reason: CoverageGapReason,
			message:  "images not seen: 1 coverage gap blocking: UnresolvedImage apps/app.yaml Deployment/apps/app: still a template",
			outcomes: map[string]Outcome{app: Passed},
		},
		"another source's Kustomization is informational": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:   []Image{img(app, "Deployment/apps/app")},
			gaps:     []Gap{{Reason: "OtherSource", Object: "Kustomization/flux-system/infra", Message: "applies GitRepository/flux-system/infra", Informational: true}},
			findings: []Finding{finding(app, "first-party", Verified, "ok")},
			allowed:  true, reason: SucceededReason,
			message:  "1 of 1 images verified; 1 coverage gap (0 blocking)",
			outcomes: map[string]Outcome{app: Passed},
		},
		"a definite denial outranks a gap": {
			policies: func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:   []Image{img(api, "Deployment/apps/api")},
			gaps:     []Gap{{Reason: "HelmRelease", Object: "HelmRelease/ingress/nginx", Message: "chart not rendered"}},
			findings: []Finding{finding(api, "first-party", NoSignatures, "no signatures found")},
			reason:   NoSignaturesReason,
			message:  `1 of 1 images denied: ghcr.io/acme/api:2.0 in Deployment/apps/api (apps/deploy.yaml): policy "first-party": no signatures found; 1 coverage gap`,
			outcomes: map[string]Outcome{api: Denied},
		},
		"a gap and a failed lookup: undecided, retried": {
			policies:  func(t *testing.T) []Policy { return []Policy{firstParty(t, Enforce)} },
			images:    []Image{img(api, "Deployment/apps/api")},
			gaps:      []Gap{{Reason: "BuildFailed", File: "apps/kustomization.yaml", Object: "Kustomization/flux-system/apps", Message: "accumulating resources"}},
			findings:  []Finding{finding(api, "first-party", LookupFailed, "referrers: 503")},
			undecided: true, retry: true, reason: CoverageGapReason,
			message:  `images not seen: 1 coverage gap blocking: BuildFailed apps/kustomization.yaml Kustomization/flux-system/apps: accumulating resources; and 1 of 1 images could not be verified: ghcr.io/acme/api:2.0 in Deployment/apps/api (apps/deploy.yaml): policy "first-party": referrers: 503`,
			outcomes: map[string]Outcome{api: Denied},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Policies: tc.policies(t), Unmatched: tc.unmatched, AllowGaps: tc.allowGaps}
			rev := Revision{Source: "GitRepository/flux-system/apps", ID: "main@sha1:1234"}
			got := Evaluate(cfg, rev, Rendered{Images: tc.images, Gaps: tc.gaps}, tc.findings)
			if got.Allowed != tc.allowed || got.Undecided != tc.undecided || got.Retry != tc.retry || got.Reason != tc.reason {
				t.Errorf("Evaluate() = allowed %v undecided %v retry %v reason %s, want %v %v %v %s",
					got.Allowed, got.Undecided, got.Retry, got.Reason, tc.allowed, tc.undecided, tc.retry, tc.reason)
			}
			if got.Message != tc.message {
				t.Errorf("Evaluate().Message =\n  %s\nwant\n  %s", got.Message, tc.message)
			}
			outcomes := map[string]Outcome{}
			for _, iv := range got.Images {
				outcomes[iv.Ref] = iv.Outcome
			}
			if !reflect.DeepEqual(outcomes, tc.outcomes) {
				t.Errorf("outcomes = %v, want %v", outcomes, tc.outcomes)
			}
			// Deterministic: shuffled input, same verdict.
			rev2 := Evaluate(cfg, rev, Rendered{Images: reversed(tc.images), Gaps: tc.gaps}, reversed(tc.findings))
			if !reflect.DeepEqual(got, rev2) {
				t.Errorf("Evaluate() depends on input order:\n%+v\n%+v", got, rev2)
			}
		})
	}
}

func TestEvaluate_sortsFailuresFirst(t *testing.T) {
	t.Parallel()
	cfg := Config{Policies: []Policy{mustPolicy(t, "p", Enforce, "ghcr.io/**")}, Unmatched: AllowUnmatched}
	images := []Image{img("ghcr.io/a:1", "Pod/a"), img("ghcr.io/b:1", "Pod/b"), img("docker.io/x:1", "Pod/x"), img("ghcr.io/c:1", "Pod/c")}
	findings := []Finding{finding("ghcr.io/a:1", "p", Verified, ""), finding("ghcr.io/b:1", "p", NoSignatures, "none"), finding("ghcr.io/c:1", "p", NoSignatures, "none")}
	v := Evaluate(cfg, Revision{}, Rendered{Images: images}, findings)
	var order []string
	for _, iv := range v.Images {
		order = append(order, iv.Ref+"="+string(iv.Outcome))
	}
	want := []string{"ghcr.io/b:1=Denied", "ghcr.io/c:1=Denied", "ghcr.io/a:1=Verified", "docker.io/x:1=Allowed"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
	if v.Summary != (Summary{Total: 4, Verified: 1, Denied: 2, Unmatched: 1}) {
		t.Errorf("summary = %+v", v.Summary)
	}
}

func TestEvaluate_boundsOffenders(t *testing.T) {
	t.Parallel()
	cfg := Config{Policies: []Policy{mustPolicy(t, "p", Enforce, "ghcr.io/**")}}
	var images []Image
	var findings []Finding
	for _, r := range []string{"ghcr.io/a:1", "ghcr.io/b:1", "ghcr.io/c:1", "ghcr.io/d:1", "ghcr.io/e:1"} {
		images = append(images, img(r, "Pod/x"))
		findings = append(findings, finding(r, "p", NoSignatures, "none"))
	}
	v := Evaluate(cfg, Revision{}, Rendered{Images: images}, findings)
	if !strings.HasSuffix(v.Message, "; and 2 more") || strings.Contains(v.Message, "ghcr.io/d:1") {
		t.Errorf("Message = %s, want three offenders then \"and 2 more\"", v.Message)
	}
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}

type fakeRenderer struct {
	rendered Rendered
	err      error
}

func (f fakeRenderer) Render(context.Context) (Rendered, error) { return f.rendered, f.err }

type fakeVerifier struct {
	status map[string]Status
	calls  atomic.Int32
	err    error
}

func (f *fakeVerifier) Verify(_ context.Context, image string, _ Policy) (Finding, error) {
	f.calls.Add(1)
	if f.err != nil {
		return Finding{}, f.err
	}
	return Finding{Status: f.status[image], Detail: "fake", Digest: "sha256:d"}, nil
}

func TestGateCheck(t *testing.T) {
	t.Parallel()
	cfg := Config{Policies: []Policy{mustPolicy(t, "p", Enforce, "ghcr.io/**"), mustPolicy(t, "q", Warn, "ghcr.io/acme/**")}, Unmatched: AllowUnmatched}
	rendered := Rendered{Images: []Image{img(app, "Pod/a"), img(api, "Pod/b"), img(nginx, "Pod/c")}}
	v := &fakeVerifier{status: map[string]Status{app: Verified, api: NoSignatures}}
	g := &Gate{Renderer: fakeRenderer{rendered: rendered}, Verifier: v, Config: cfg, Concurrency: 2}
	verdict, err := g.Check(t.Context(), Revision{Source: "dir"})
	if err != nil {
		t.Fatal(err)
	}
	// 2 first-party images × 2 policies; nginx matches none.
	if n := v.calls.Load(); n != 4 {
		t.Errorf("Verify called %d times, want 4", n)
	}
	if verdict.Allowed || verdict.Reason != NoSignaturesReason {
		t.Errorf("Check() = %+v, want denied NoSignatures", verdict)
	}
	if got := verdict.Images[0]; got.Ref != api || len(got.Findings) != 2 || got.Findings[0].Policy != "p" || got.Digest != "sha256:d" {
		t.Errorf("first image verdict = %+v", got)
	}

	boom := errors.New("boom")
	_, err = (&Gate{Renderer: fakeRenderer{err: boom}, Verifier: v, Config: cfg}).Check(t.Context(), Revision{Source: "dir"})
	if !errors.Is(err, boom) {
		t.Errorf("Check() with a render error = %v, want it wrapped", err)
	}
	_, err = (&Gate{Renderer: fakeRenderer{rendered: rendered}, Verifier: &fakeVerifier{err: boom}, Config: cfg}).Check(t.Context(), Revision{Source: "dir"})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "verifying ghcr.io/acme/") {
		t.Errorf("Check() with a verifier error = %v, want it wrapped with the image", err)
	}
}

// TestEvaluate_pinned: every image with a resolved digest is reported
// pinned to it, the verdict being about that digest, not the tag.
func TestEvaluate_pinned(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, "first-party", Enforce, "ghcr.io/acme/**")
	dg := "sha256:" + strings.Repeat("a", 64)
	pinnedRef := "ghcr.io/acme/api:2.0@" + dg
	v := Evaluate(Config{Policies: []Policy{p}, Unmatched: AllowUnmatched}, Revision{Source: "x"},
		Rendered{Images: []Image{img(app, "Deployment/apps/app"), img(pinnedRef, "Deployment/apps/api"), img(nginx, "Deployment/apps/web")}},
		[]Finding{finding(app, "first-party", Verified, "ok"), finding(pinnedRef, "first-party", Verified, "ok")})
	got := map[string]string{}
	for _, iv := range v.Images {
		got[iv.Ref] = iv.Pinned
	}
	want := map[string]string{app: app + "@" + dg, pinnedRef: pinnedRef, nginx: ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pinned = %v, want %v", got, want)
	}
}

// TestEvaluate_boundsMessage: details quote registries and signers; the
// verdict's message, a condition message, stays small whatever they say.
func TestEvaluate_boundsMessage(t *testing.T) {
	t.Parallel()
	p := mustPolicy(t, "first-party", Enforce, "ghcr.io/acme/**")
	huge := strings.Repeat("x", 40<<10)
	var images []Image
	var findings []Finding
	for i := range 5 {
		ref := fmt.Sprintf("ghcr.io/acme/app%d:1", i)
		images = append(images, img(ref, "Deployment/apps/app"))
		findings = append(findings, finding(ref, "first-party", IdentityMismatch, huge))
	}
	v := Evaluate(Config{Policies: []Policy{p}}, Revision{Source: "x"},
		Rendered{Images: images, Gaps: []Gap{{Reason: "HelmRelease", Message: huge}}}, findings)
	if len(v.Message) > maxVerdictLength || strings.Contains(v.Message, strings.Repeat("x", maxQuotedDetail+1)) {
		t.Errorf("message is %d bytes", len(v.Message))
	}
	if !strings.Contains(v.Message, "x…") || !strings.Contains(v.Message, "and 2 more") {
		t.Errorf("message does not clip and count: %.200s", v.Message)
	}
}

// hangingVerifier verifies every image but hang, which it holds until the
// caller gives up.
type hangingVerifier struct{ hang string }

func (h hangingVerifier) Verify(ctx context.Context, image string, _ Policy) (Finding, error) {
	if image == h.hang {
		<-ctx.Done()
		return Finding{}, ctx.Err()
	}
	return Finding{Status: Verified, Detail: "ok", Digest: "sha256:d"}, nil
}

// TestGateCheck_timeout: an image not verified within the revision's
// deadline is a failed lookup naming it, the rest keep their findings,
// and the verdict is undecided (never allowed); the caller's own
// cancellation stays an error.
func TestGateCheck_timeout(t *testing.T) {
	t.Parallel()
	cfg := Config{Policies: []Policy{mustPolicy(t, "p", Enforce, "ghcr.io/**")}}
	rendered := Rendered{Images: []Image{img(app, "Pod/a"), img(api, "Pod/b")}}
	g := &Gate{Renderer: fakeRenderer{rendered: rendered}, Verifier: hangingVerifier{hang: api}, Config: cfg, Timeout: 50 * time.Millisecond}
	v, err := g.Check(t.Context(), Revision{Source: "dir"})
	if err != nil {
		t.Fatalf("Check() = %v, want a verdict", err)
	}
	if v.Allowed || !v.Undecided || !v.Retry || v.Reason != RegistryUnreachableReason {
		t.Errorf("verdict = allowed %t undecided %t retry %t %s, want undecided, retried, RegistryUnreachable", v.Allowed, v.Undecided, v.Retry, v.Reason)
	}
	want := "not verified: the 50ms allowed to verify the revision's images ran out"
	if !strings.Contains(v.Message, want) || v.Summary.Verified != 1 {
		t.Errorf("verdict = %d verified, %q; want 1 verified and %q", v.Summary.Verified, v.Message, want)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := g.Check(ctx, Revision{Source: "dir"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Check(cancelled) = %v, want context.Canceled", err)
	}
}
