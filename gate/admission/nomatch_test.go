package admission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	predict "github.com/pregate/pregate/gate/admission"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestPolicyControllerScope: policy-controller checks Pods only in the
// namespaces that opt in, and there denies (or warns of) an image no
// ClusterImagePolicy matches, as its no-match-policy says.
func TestPolicyControllerScope(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	read := func(doc string) *admission.Policy { return readPolicy(t, doc) }
	cip := read(`{apiVersion: policy.sigstore.dev/v1beta1, kind: ClusterImagePolicy, metadata: {name: first-party},
  spec: {images: [{glob: "ghcr.io/acme/**"}], authorities: [{static: {action: pass}}]}}`)
	config := func(v string) *admission.Policy {
		return read(`{apiVersion: v1, kind: ConfigMap, metadata: {name: config-policy-controller, namespace: cosign-system}, data: {no-match-policy: ` + v + `}}`)
	}
	image := func(ref, registry, repo, ns string) gate.Image {
		return gate.Image{Ref: ref, Registry: registry, Repository: repo, Tag: "1", Locations: []gate.Location{{Object: "Deployment/" + ns + "/web", Path: "spec.template.spec.containers[0].image"}}}
	}
	acme := func(ns string) gate.Image { return image("ghcr.io/acme/app:1", "ghcr.io", "acme/app", ns) }
	redis := func(ns string) gate.Image {
		return image("index.docker.io/library/redis:1", "index.docker.io", "library/redis", ns)
	}
	namespaces := map[string]map[string]string{
		"shop":  {admission.NamespaceOptIn: "true"},
		"infra": {"team": "infra"},
	}
	for name, tc := range map[string]struct {
		policies []*admission.Policy
		images   []gate.Image
		want     []string // "outcome image rule", in order
	}{
		"covered, opted in":              {[]*admission.Policy{cip}, []gate.Image{acme("shop")}, []string{"Admit ghcr.io/acme/app:1 static-pass"}},
		"not covered, opted in":          {[]*admission.Policy{cip}, []gate.Image{redis("shop")}, []string{"Deny index.docker.io/library/redis:1 no-match-policy"}},
		"not covered, not opted in":      {[]*admission.Policy{cip}, []gate.Image{redis("infra"), acme("infra")}, nil},
		"not covered, namespace unknown": {[]*admission.Policy{cip}, []gate.Image{redis("elsewhere")}, []string{"Deny index.docker.io/library/redis:1 no-match-policy"}},
		"no-match-policy warn":           {[]*admission.Policy{cip, config("warn")}, []gate.Image{redis("shop")}, []string{"Warn index.docker.io/library/redis:1 no-match-policy"}},
		"no-match-policy allow":          {[]*admission.Policy{config("allow"), cip}, []gate.Image{redis("shop")}, nil},
		"no-match-policy misspelt":       {[]*admission.Policy{cip, config("Allow")}, []gate.Image{redis("shop")}, []string{"Deny index.docker.io/library/redis:1 no-match-policy"}},
		"no ClusterImagePolicy at all":   {nil, []gate.Image{redis("shop")}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := compile(t, ss.Material(), tc.policies...)
			c.Namespaces = namespaces
			preds, err := c.Check(t.Context(), tc.images, func(_ context.Context, ref string, vp *verify.Policy) (verify.Result, error) {
				return vp.Check(verify.Discovery{Subject: verify.Subject{Ref: ref, Repository: strings.Split(ref, ":")[0], Digest: digest}}), nil
			}, 2)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range preds {
				rule := p.Rule
				if rule == "authorities[0]" {
					rule = "static-pass"
				}
				got = append(got, string(p.Outcome)+" "+p.Image+" "+rule)
				if p.Rule == "no-match-policy" && (!strings.Contains(p.Message, "no ClusterImagePolicy glob matches index.docker.io/library/redis@") || p.Engine != "policy-controller@0.15") {
					t.Errorf("no-match prediction %+v: want the name matched and the release", p)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("predictions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestKyvernoNamespaceSelector: a rule with a namespaceSelector applies in
// the namespaces whose labels it selects, and in those not known.
func TestKyvernoNamespaceSelector(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	doc := strings.Replace(kyverno("Enforce", "Cosign"), "match: {any: [{resources: {kinds: [Pod]}}]}",
		"match: {any: [{resources: {kinds: [Pod], namespaceSelector: {matchLabels: {signing: enforced}}}}]}", 1)
	p := readPolicy(t, doc)
	if u := p.Rules[0].Unsupported; len(u) > 0 {
		t.Fatalf("unsupported: %q", u)
	}
	c := compile(t, ss.Material(), p)
	c.Namespaces = map[string]map[string]string{"shop": {"signing": "enforced"}, "lab": {}}
	for ns, want := range map[string]int{"shop": 1, "lab": 0, "unknown": 1} {
		img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0", Locations: []gate.Location{{Object: "Deployment/" + ns + "/web"}}}
		preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, ref string, vp *verify.Policy) (verify.Result, error) {
			return vp.Check(verify.Discovery{Subject: verify.Subject{Ref: ref, Repository: repo, Digest: digest}}), nil
		}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(preds) != want {
			t.Errorf("namespace %s: %d predictions (%+v), want %d", ns, len(preds), preds, want)
		}
	}
}

// TestRequiresDigest: a rule that verifies a digest without writing one in
// (Kyverno verifyDigest with mutateDigest: false, an ImageValidatingPolicy's
// validationConfigurations alike) denies an image named by tag; one named
// by digest goes on to its signatures.
func TestRequiresDigest(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	kyvernoDoc := strings.Replace(kyverno("Enforce", "Cosign"), "          type: Cosign", "          type: Cosign\n          mutateDigest: false", 1)
	ivpolDoc := strings.Replace(ivpolPolicy("Deny", oneIdentity, signatures), "  validations:", "  validationConfigurations: {mutateDigest: false}\n  validations:", 1)
	for name, doc := range map[string]string{"ClusterPolicy": kyvernoDoc, "ImageValidatingPolicy": ivpolDoc} {
		c := compile(t, ss.Material(), readPolicy(t, doc))
		for raw, byTag := range map[string]bool{repo + ":1.0": true, repo + ":1.0@" + digest: false} {
			img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0", Locations: []gate.Location{{Object: "Deployment/shop/web", Raw: raw}}}
			preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, ref string, vp *verify.Policy) (verify.Result, error) {
				return vp.Check(verify.Discovery{Subject: verify.Subject{Ref: ref, Repository: repo, Digest: digest}}), nil
			}, 2)
			if err != nil || len(preds) != 1 {
				t.Fatalf("%s: Check() = %+v, %v", name, preds, err)
			}
			p := preds[0]
			if got := strings.Contains(p.Message, "named by tag"); got != byTag || p.Outcome != predict.Deny {
				t.Errorf("%s, image %s: %+v; want denied, for its tag: %v", name, raw, p, byTag)
			}
		}
	}
}

// TestMatchSelectsObjects: a rule applies to the objects its match
// selects, the workload as applied or the Pods it runs, each with its own
// labels. policy-controller checks both: a ClusterImagePolicy whose
// spec.match names pods leaves the Deployment to no-match-policy.
func TestMatchSelectsObjects(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	img := gate.Image{Ref: "ghcr.io/acme/app:1", Registry: "ghcr.io", Repository: "acme/app", Tag: "1", Locations: []gate.Location{{
		Object: "Deployment/shop/web", APIVersion: "apps/v1", Path: "spec.template.spec.containers[0]",
		Labels: map[string]string{"tier": "web"},
		Pod:    map[string]any{"metadata": map[string]any{"namespace": "shop", "labels": map[string]any{"app": "web"}}},
	}}}
	cip := func(selector string) *admission.Policy {
		return readPolicy(t, `{apiVersion: policy.sigstore.dev/v1beta1, kind: ClusterImagePolicy, metadata: {name: pods},
  spec: {images: [{glob: "ghcr.io/acme/**"}], match: [{resource: pods, version: v1, selector: {matchLabels: {app: `+selector+`}}}],
  authorities: [{static: {action: pass}}]}}`)
	}
	allow := readPolicy(t, `{apiVersion: v1, kind: ConfigMap, metadata: {name: config-policy-controller, namespace: cosign-system}, data: {no-match-policy: allow}}`)
	kyvernoSelector := func(app string) *admission.Policy {
		return readPolicy(t, strings.Replace(kyverno("Enforce", "Cosign"), "match: {any: [{resources: {kinds: [Pod]}}]}",
			"match: {any: [{resources: {kinds: [Pod], selector: {matchLabels: {app: "+app+"}}}}]}", 1))
	}
	for name, tc := range map[string]struct {
		policies []*admission.Policy
		want     []string // "outcome rule"
	}{
		"its Pods selected, the Deployment left to no-match": {[]*admission.Policy{cip("web")}, []string{"Admit authorities[0]", "Deny no-match-policy"}},
		"no-match allowed":          {[]*admission.Policy{cip("web"), allow}, []string{"Admit authorities[0]"}},
		"neither selected":          {[]*admission.Policy{cip("db")}, []string{"Deny no-match-policy"}},
		"Kyverno, its Pods' labels": {[]*admission.Policy{kyvernoSelector("web")}, []string{"Deny release-workflow"}},
		"Kyverno, other labels":     {[]*admission.Policy{kyvernoSelector("db")}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := compile(t, ss.Material(), tc.policies...)
			preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, ref string, vp *verify.Policy) (verify.Result, error) {
				return vp.Check(verify.Discovery{Subject: verify.Subject{Ref: ref, Repository: "ghcr.io/acme/app", Digest: digest}}), nil
			}, 2)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range preds {
				got = append(got, string(p.Outcome)+" "+p.Rule)
				if p.Rule != "no-match-policy" {
					continue
				}
				if tc.policies[0].Rules[0].Engine == admission.PolicyController && name != "neither selected" &&
					(!strings.Contains(p.Message, "none selects Deployment/shop/web") || strings.Contains(p.Message, "a Pod") || !strings.Contains(p.Fix, "spec.match")) {
					t.Errorf("no-match prediction %+v: want the Deployment named, alone, and the fix", p)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("predictions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
