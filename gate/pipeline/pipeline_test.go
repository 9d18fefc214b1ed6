package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/sources"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const (
	releaseID = "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v1.0.0"
	ghIssuer  = "https://token.actions.githubusercontent.com"
)

// fixture is a loopback registry with a signed and an unsigned image, and
// the options that check against it.
type fixture struct {
	signed, unsigned string
	opts             pipeline.Options
	// sigstore signed the signed image.
	sigstore *verifytest.Sigstore
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	ss := verifytest.NewSigstore(t)
	f := fixture{signed: host + "/acme/web:1.0", unsigned: host + "/acme/worker:0.9", sigstore: ss}
	ref, dig := verifytest.PushRandomImage(t, f.signed)
	verifytest.PushBundle(t, ref, ss.MustSignImage(t, releaseID, ghIssuer, dig), verify.CosignSignPredicateType)
	verifytest.PushRandomImage(t, f.unsigned)
	policy := fmt.Sprintf(`apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: first-party}
spec:
  images: [{glob: "%s/acme/**"}]
  authorities:
    - name: release
      insecureIgnoreSCT: true
      keyless:
        identities: [{issuer: %q, subject: %q}]
`, host, ghIssuer, releaseID)
	set, err := config.Load("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	f.opts = pipeline.Options{
		Policies: pipeline.Policies{Set: set, Trust: func(*v1alpha1.TrustRoot) (root.TrustedMaterial, error) { return ss.Material(), nil }},
		Registry: []verify.RegistryOption{verify.WithLookupTimeout(5 * time.Second)},
	}
	return f
}

// tree writes files (name → content) into a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func deployment(name string, images ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: %s, namespace: shop}\nspec:\n  template:\n    spec:\n      containers:\n", name)
	for i, img := range images {
		fmt.Fprintf(&b, "        - name: c%d\n          image: %s\n", i, img)
	}
	return b.String()
}

func local(root string, paths ...string) pipeline.Source {
	return pipeline.Source{
		Name:  strings.Join(paths, ","),
		Root:  root,
		Ref:   render.DefaultSourceRef,
		Paths: paths,
		Open:  func(ctx context.Context, dir string) (*sources.Tree, error) { return sources.Local(ctx, root, dir) },
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := tree(t, map[string]string{
		"a/deploy.yaml": deployment("a", f.signed, f.unsigned),
		"b/deploy.yaml": deployment("b", f.signed),
	})
	var (
		mu    sync.Mutex
		steps []pipeline.Progress
	)
	o := f.opts
	o.Progress = func(p pipeline.Progress) {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, p)
	}
	res, err := pipeline.Check(t.Context(), o, local(dir, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verdict
	if v.Allowed || v.Reason != gate.NoSignaturesReason {
		t.Errorf("verdict: allowed %v, reason %s; want blocked, NoSignatures", v.Allowed, v.Reason)
	}
	if v.Revision.Source != "a,b" {
		t.Errorf("revision source %q, want a,b", v.Revision.Source)
	}
	// Two paths, one tree: the signed image is one image with both
	// locations, and its digest reached the verdict.
	if len(res.Renders) != 2 || len(res.Trees) != 1 {
		t.Fatalf("%d renders of %d trees, want 2 of 1", len(res.Renders), len(res.Trees))
	}
	for _, iv := range v.Images {
		if iv.Ref == f.signed {
			if len(iv.Locations) != 2 || iv.Digest == "" || !strings.HasSuffix(iv.Pinned, "@"+iv.Digest) {
				t.Errorf("signed image: %d locations, digest %q, pinned %q", len(iv.Locations), iv.Digest, iv.Pinned)
			}
			if l := iv.Locations[0]; l.File != "a/deploy.yaml" || l.Raw != f.signed || l.APIVersion != "apps/v1" {
				t.Errorf("location %+v: want file, raw and apiVersion from render", l)
			}
		}
	}
	// Every image × policy verification is kept whole, sorted.
	if len(res.Results) != 2 {
		t.Fatalf("%d results, want 2", len(res.Results))
	}
	if r := res.Results[0]; r.Subject.Ref != f.signed || r.Status != verify.Verified || len(r.Lookups) == 0 || len(r.Considered) == 0 {
		t.Errorf("result 0: %s %s, %d lookups, %d considered", r.Subject.Ref, r.Status, len(r.Lookups), len(r.Considered))
	}
	if r := res.Results[1]; r.Subject.Ref != f.unsigned || r.Status != verify.NoSignatures {
		t.Errorf("result 1: %s %s", r.Subject.Ref, r.Status)
	}
	// Progress: two images to verify, each resolved then verified once.
	if last := steps[len(steps)-1]; last != (pipeline.Progress{Total: 2, Resolved: 2, Verified: 2}) {
		t.Errorf("last progress %+v, want 2 of 2 resolved and verified", last)
	}
	if len(steps) != 4 {
		t.Errorf("%d progress reports, want 4: %+v", len(steps), steps)
	}
	// The tree was written to a temporary directory and is gone.
	if _, err := os.Stat(res.Trees[0].Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tree %s: %v, want removed", res.Trees[0].Root, err)
	}
}

func TestCheck_workDirKeepsTheTree(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := tree(t, map[string]string{"deploy.yaml": deployment("a", f.signed)})
	o := f.opts
	o.WorkDir = t.TempDir()
	res, err := pipeline.Check(t.Context(), o, local(dir, "."))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verdict.Allowed {
		t.Errorf("not allowed: %s", res.Verdict.Message)
	}
	if _, err := os.Stat(filepath.Join(res.Trees[0].Root, "deploy.yaml")); err != nil {
		t.Errorf("the verified tree is not kept: %v", err)
	}
}

func TestCheck_stages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := tree(t, map[string]string{"deploy.yaml": deployment("a", f.signed)})
	broken := tree(t, map[string]string{"kustomization.yaml": "resources: [missing.yaml]\n"})
	for name, tc := range map[string]struct {
		opts  func(pipeline.Options) pipeline.Options
		src   pipeline.Source
		stage pipeline.Stage
		want  string
	}{
		"no policy": {
			opts:  func(o pipeline.Options) pipeline.Options { o.Policies.Set = nil; return o },
			src:   local(good, "."),
			stage: pipeline.PolicyStage,
			want:  "no trust policy",
		},
		"trust material that cannot be loaded": {
			opts: func(o pipeline.Options) pipeline.Options {
				o.Policies.Trust = func(*v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
					return nil, errors.New("TUF mirror unreachable")
				}
				return o
			},
			src:   local(good, "."),
			stage: pipeline.PolicyStage,
			want:  "TUF mirror unreachable",
		},
		"a source that cannot be opened": {
			src:   local(filepath.Join(good, "nowhere"), "."),
			stage: pipeline.OpenStage,
			want:  "nowhere",
		},
		"a path that does not render": {
			src:   local(broken, "."),
			stage: pipeline.RenderStage,
			want:  "missing.yaml",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := f.opts
			if tc.opts != nil {
				o = tc.opts(o)
			}
			_, err := pipeline.Check(t.Context(), o, tc.src)
			if pipeline.StageOf(err) != tc.stage || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("error %v in stage %q; want stage %q naming %q", err, pipeline.StageOf(err), tc.stage, tc.want)
			}
		})
	}
}

func TestRender_marksBlockingGaps(t *testing.T) {
	t.Parallel()
	dir := tree(t, map[string]string{
		"deploy.yaml": deployment("a", "${IMAGE}"),
		"release.yaml": `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: apps}
spec: {chart: {spec: {chart: podinfo}}}
`,
	})
	res, err := pipeline.Render(t.Context(), pipeline.Options{AllowGaps: []string{string(render.HelmReleaseGap)}}, local(dir, "."))
	if err != nil {
		t.Fatal(err)
	}
	got := map[gate.GapReason]bool{}
	for _, g := range res.Rendered.Gaps {
		got[g.Reason] = g.Blocking
	}
	want := map[gate.GapReason]bool{render.HelmReleaseGap: false, render.UnresolvedImageGap: true}
	if len(got) != len(want) || got[render.HelmReleaseGap] || !got[render.UnresolvedImageGap] {
		t.Errorf("gaps blocking %v, want %v", got, want)
	}
	if !slices.EqualFunc(res.Renders[0].Gaps, res.Rendered.Gaps, func(a, b gate.Gap) bool { return a.Blocking == b.Blocking }) {
		t.Errorf("the path's gaps and the revision's disagree on blocking")
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := pipeline.Explain(t.Context(), f.opts, f.unsigned)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict.Allowed || len(res.Verdict.Images) != 1 || res.Verdict.Images[0].Status != gate.NoSignatures {
		t.Errorf("verdict %+v, want the image denied for NoSignatures", res.Verdict)
	}
	// explain reads every place: the referrers API and every tag.
	steps := map[verify.Step]bool{}
	for _, l := range res.Results[0].Lookups {
		steps[l.Step] = true
	}
	for _, s := range []verify.Step{verify.ResolveStep, verify.ReferrersStep, verify.FallbackTagStep, verify.SignatureTagStep} {
		if !steps[s] {
			t.Errorf("no %s lookup among %v", s, steps)
		}
	}
	if _, err := pipeline.Explain(t.Context(), f.opts, "not a reference!"); pipeline.StageOf(err) != pipeline.RenderStage {
		t.Errorf("a bad reference: %v, want a render-stage error", err)
	}
}

// TestCheck_admissionPolicyReplaced: a revision that applies a fixed
// version of a cluster admission policy is judged by the fix, not by the
// cluster's copy it replaces; and a policy two rendered paths hold counts
// once.
func TestCheck_admissionPolicyReplaced(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	host, _, _ := strings.Cut(f.signed, "/")
	kyverno := func(typ string) string {
		return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          type: %s
          attestors: [{entries: [{keyless: {issuer: %s, subject: %q, ctlog: {ignoreSCT: true}}}]}]
`, host, typ, ghIssuer, releaseID)
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(kyverno("Cosign")), &obj); err != nil {
		t.Fatal(err)
	}
	cluster, _, err := admission.Read("cluster", obj)
	if err != nil {
		t.Fatal(err)
	}
	o := f.opts
	o.Admission = []*admission.Policy{cluster}

	// The cluster's policy reads legacy tags only: the bundle-signed
	// image is denied.
	res, err := pipeline.Check(t.Context(), o, local(tree(t, map[string]string{"a/deploy.yaml": deployment("a", f.signed)}), "a"))
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Verdict; v.Allowed || v.Reason != gate.AdmissionDeniedReason {
		t.Fatalf("with the cluster's policy: allowed %v, reason %s (%s); want AdmissionDenied", v.Allowed, v.Reason, v.Message)
	}

	// The revision fixes it, in two paths.
	dir := tree(t, map[string]string{
		"a/deploy.yaml": deployment("a", f.signed),
		"a/policy.yaml": kyverno("SigstoreBundle"),
		"b/policy.yaml": kyverno("SigstoreBundle"),
	})
	res, err = pipeline.Check(t.Context(), o, local(dir, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verdict
	if !v.Allowed || len(v.Admission) != 1 || v.Admission[0].Outcome != gate.AdmissionAdmit {
		t.Errorf("with the revision's fix: allowed %v (%s), admission %+v; want allowed by the one fixed policy", v.Allowed, v.Message, v.Admission)
	}
	if len(res.Admission) != 1 || res.Admission[0].File != "a/policy.yaml" {
		t.Errorf("policies predicted: %+v; want only the revision's a/policy.yaml", res.Admission)
	}
}

// TestCheck_policyControllerNamespaces: policy-controller checks Pods in
// the namespaces that opt in, as the revision's Namespace objects or the
// cluster (Options.NamespaceLabels) label them; there an image no
// ClusterImagePolicy matches is denied by its default no-match-policy.
func TestCheck_policyControllerNamespaces(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(`{apiVersion: policy.sigstore.dev/v1beta1, kind: ClusterImagePolicy, metadata: {name: vendor},
  spec: {images: [{glob: "registry.vendor.example/**"}], authorities: [{static: {action: pass}}]}}`), &obj); err != nil {
		t.Fatal(err)
	}
	cip, _, err := admission.Read("cluster", obj)
	if err != nil {
		t.Fatal(err)
	}
	namespace := func(labels string) string {
		return "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {" + labels + "}}\n"
	}
	for name, tc := range map[string]struct {
		files   map[string]string
		cluster map[string]string // the cluster's labels of shop; nil: no such namespace
		denied  bool
	}{
		"the revision opts shop in": {map[string]string{"a/ns.yaml": namespace(`policy.sigstore.dev/include: "true"`), "a/deploy.yaml": deployment("a", f.signed)},
			nil, true},
		"the revision leaves shop out": {map[string]string{"a/ns.yaml": namespace("team: shop"), "a/deploy.yaml": deployment("a", f.signed)},
			map[string]string{"policy.sigstore.dev/include": "true"}, false},
		"the cluster opts shop in": {map[string]string{"a/deploy.yaml": deployment("a", f.signed)},
			map[string]string{"policy.sigstore.dev/include": "true"}, true},
		"the cluster leaves shop out": {map[string]string{"a/deploy.yaml": deployment("a", f.signed)},
			map[string]string{}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := f.opts
			o.Admission = []*admission.Policy{cip}
			o.NamespaceLabels = func(_ context.Context, ns string) (map[string]string, bool, error) {
				if ns != "shop" {
					t.Errorf("asked for namespace %q", ns)
				}
				return tc.cluster, tc.cluster != nil, nil
			}
			res, err := pipeline.Check(t.Context(), o, local(tree(t, tc.files), "a"))
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verdict
			if tc.denied != (v.Reason == gate.AdmissionDeniedReason) {
				t.Errorf("reason %s (%s), admission %+v; want denied by no-match-policy: %v", v.Reason, v.Message, v.Admission, tc.denied)
			}
			if tc.denied && (len(v.Admission) != 1 || v.Admission[0].Rule != "no-match-policy") {
				t.Errorf("admission %+v, want the no-match-policy's denial", v.Admission)
			}
		})
	}
}

// TestCheck_outageReplayed replays the seed outage and its kin on the
// revision that carries the policy, over a first-party image signed only
// with a cosign v3 bundle (the in-process Sigstore), in a namespace that
// opts in to policy-controller: each engine's policy that can never pass
// blocks the revision with the fix, and its fixed form passes.
func TestCheck_outageReplayed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	host, _, _ := strings.Cut(f.signed, "/")
	other := "https://github.com/acme/web/.github/workflows/hotfix.yml@refs/heads/main"
	kyverno := fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          attestors: [{entries: [{keyless: {issuer: %s, subject: %q, ctlog: {ignoreSCT: true}}}]}]
`, host, ghIssuer, releaseID)
	ivpol := func(identities ...string) string {
		var ids strings.Builder
		for _, id := range identities {
			fmt.Fprintf(&ids, "            - {issuer: %s, subject: %q}\n", ghIssuer, id)
		}
		return fmt.Sprintf(`apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: first-party-signed}
spec:
  validationActions: [Deny]
  matchImageReferences: [{glob: "%s/acme/*"}]
  attestors:
    - name: release
      cosign:
        ctlog: {insecureIgnoreSCT: true}
        keyless:
          identities:
%s  validations:
    - expression: images.containers.all(i, verifyImageSignatures(i, [attestors.release]) > 0)
      message: not signed by the release workflow
`, host, ids.String())
	}
	cip := func(authority string) string {
		return fmt.Sprintf(`apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: first-party-signed}
spec:
  images: [{glob: "%s/acme/**"}]
  authorities:
    - name: release
      keyless: {identities: [{issuer: %s, subject: %q}], insecureIgnoreSCT: true}
%s`, host, ghIssuer, releaseID, authority)
	}
	optedIn := "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {policy.sigstore.dev/include: \"true\"}}\n"
	for name, tc := range map[string]struct {
		policy string
		// fix is in the never-passing rule's fix; empty: the revision passes.
		fix string
	}{
		"ClusterPolicy type: Cosign":                {kyverno, "set type: SigstoreBundle"},
		"ClusterPolicy type: SigstoreBundle":        {strings.Replace(kyverno, "        - imageReferences:", "        - type: SigstoreBundle\n          imageReferences:", 1), ""},
		"ImageValidatingPolicy":                     {ivpol(releaseID), ""},
		"ImageValidatingPolicy with two identities": {ivpol(releaseID, other), "one identity per attestor"},
		"ClusterImagePolicy, legacy format":         {cip(""), "set signatureFormat: bundle"},
		"ClusterImagePolicy, bundle format":         {cip("      signatureFormat: bundle\n"), "predicateType: https://sigstore.dev/cosign/sign/v1"},
		"ClusterImagePolicy, bundle format, signature as attestation": {
			cip("      signatureFormat: bundle\n      attestations: [{name: signature, predicateType: \"https://sigstore.dev/cosign/sign/v1\"}]\n"), ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := tree(t, map[string]string{"a/deploy.yaml": deployment("web", f.signed), "a/policy.yaml": tc.policy, "a/ns.yaml": optedIn})
			res, err := pipeline.Check(t.Context(), f.opts, local(dir, "a"))
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verdict
			if v.Summary.Verified != 1 {
				t.Errorf("pregate's own policy: %+v, want the image verified", v.Summary)
			}
			if tc.fix == "" {
				if !v.Allowed || len(v.Admission) == 0 || v.Admission[0].Outcome != gate.AdmissionAdmit {
					t.Errorf("allowed %v (%s), admission %+v; want admitted", v.Allowed, v.Message, v.Admission)
				}
				return
			}
			if v.Allowed || v.Reason != gate.AdmissionDeniedReason || len(v.Admission) == 0 {
				t.Fatalf("allowed %v, reason %s (%s); want AdmissionDenied", v.Allowed, v.Reason, v.Message)
			}
			a := v.Admission[0]
			if !a.NeverPasses || !strings.Contains(a.Exists, "a cosign v3 Sigstore bundle as an OCI referrer") || !strings.Contains(a.Fix, tc.fix) {
				t.Errorf("admission %+v; want a rule that can never pass, naming the bundle and the fix %q", a, tc.fix)
			}
		})
	}
}

// TestCheck_revisionTrust: a revision that changes a TrustPolicy is checked
// under the policy it brings as well as the one given. One that tightens
// the policy to a signer its own image lacks is blocked before it is
// applied, naming the revision's copy; one that relaxes the policy to pass
// its unsigned image cannot approve itself; one that writes the given
// policy unchanged changes nothing; and the shell's hook sees (and may
// drop) the revision's policies.
func TestCheck_revisionTrust(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	given, _ := f.opts.Policies.Set.TrustPolicy("first-party")
	policy := func(authority string) string {
		return fmt.Sprintf(`apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: first-party}
spec:
  images: [{glob: %q}]
  authorities:
%s`, given.Spec.Images[0].Glob, authority)
	}
	const (
		same     = "    - name: release\n      insecureIgnoreSCT: true\n      keyless:\n        identities: [{issuer: %q, subject: %q}]\n"
		other    = "    - name: release\n      insecureIgnoreSCT: true\n      keyless:\n        identities: [{issuer: %q, subject: \"https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main\"}]\n"
		passEach = "    - name: anything\n      static: {action: pass}\n"
	)
	check := func(t *testing.T, o pipeline.Options, image, trust string) gate.Verdict {
		t.Helper()
		res, err := pipeline.Check(t.Context(), o, local(tree(t, map[string]string{
			"a/deploy.yaml": deployment("a", image), "a/trust.yaml": trust}), "a"))
		if err != nil {
			t.Fatal(err)
		}
		return res.Verdict
	}
	policiesOf := func(v gate.Verdict) []string {
		var out []string
		for _, iv := range v.Images {
			for _, fd := range iv.Findings {
				out = append(out, fd.Policy+"="+string(fd.Status))
			}
		}
		return out
	}

	v := check(t, f.opts, f.signed, policy(fmt.Sprintf(same, ghIssuer, releaseID)))
	if !v.Allowed || !slices.Equal(policiesOf(v), []string{"first-party=" + string(verify.Verified)}) {
		t.Errorf("unchanged policy: allowed %v, findings %v; want allowed by first-party alone", v.Allowed, policiesOf(v))
	}
	v = check(t, f.opts, f.signed, policy(fmt.Sprintf(other, ghIssuer)))
	if v.Allowed || !slices.Contains(policiesOf(v), "first-party.revision="+string(verify.IdentityMismatch)) {
		t.Errorf("tightened policy: allowed %v, findings %v; want blocked by first-party.revision", v.Allowed, policiesOf(v))
	}
	v = check(t, f.opts, f.unsigned, policy(passEach))
	if v.Allowed || !slices.Contains(policiesOf(v), "first-party="+string(verify.NoSignatures)) {
		t.Errorf("relaxed policy: allowed %v, findings %v; want still blocked by the given first-party", v.Allowed, policiesOf(v))
	}

	o := f.opts
	var seen []string
	o.RevisionTrust = func(rt pipeline.RevisionTrust) (pipeline.RevisionTrust, error) {
		for _, p := range rt.Policies {
			seen = append(seen, p.Name+"@"+rt.Files[v1alpha1.TrustPolicyKind+"/"+p.Name])
		}
		return pipeline.RevisionTrust{}, nil
	}
	if v := check(t, o, f.signed, policy(fmt.Sprintf(other, ghIssuer))); !v.Allowed || !slices.Equal(seen, []string{"first-party@a/trust.yaml"}) {
		t.Errorf("hook dropping the revision's policies: allowed %v, saw %v; want allowed, having seen first-party in a/trust.yaml", v.Allowed, seen)
	}
}
