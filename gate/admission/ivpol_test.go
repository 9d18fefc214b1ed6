package admission_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	predict "github.com/pregate/pregate/gate/admission"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

func ivpolPolicy(action, identities, validation string) string {
	return fmt.Sprintf(`apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: first-party}
spec:
  validationActions: [%s]
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  matchImageReferences: [{glob: "ghcr.io/acme/*"}]
  attestors:
    - name: release
      cosign:
        ctlog: {insecureIgnoreSCT: true}
        keyless:
          identities:
%s
  attestations:
    - name: provenance
      intoto: {type: https://slsa.dev/provenance/v1}
  validations:
    - expression: >-
        %s
      message: not signed by the release workflow
`, action, identities, validation)
}

const (
	oneIdentity  = "            - {issuer: " + issuer + ", subject: " + release + "}"
	twoIdentites = oneIdentity + "\n            - {issuer: " + issuer + ", subject: https://github.com/acme/app/.github/workflows/hotfix.yml@refs/heads/main}"
	signatures   = "images.containers.map(image, verifyImageSignatures(image, [attestors.release])).all(e, e > 0)"
	ten          = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
	costly       = ten + ".map(a, " + ten + ".map(b, " + ten + ".map(c, " + ten + ".map(d, " + ten + ".map(e, " + ten + ".map(f, " + ten + ".map(g, 1))))))).size() > 0"
	provenance   = "images.containers.map(image, verifyAttestationSignatures(image, attestations.provenance, [attestors.release])).all(e, e > 0)"
)

// withVariable declares a variable before the validations.
func withVariable(policy, name, expr string) string {
	return strings.Replace(policy, "  validations:", "  variables:\n    - name: "+name+"\n      expression: "+expr+"\n  validations:", 1)
}

// matchingBy matches images with a CEL expression instead of the glob.
func matchingBy(policy, expr string) string {
	return strings.Replace(policy, `matchImageReferences: [{glob: "ghcr.io/acme/*"}]`, "matchImageReferences: [{expression: \""+expr+"\"}]", 1)
}

// TestPredictImageValidatingPolicy evaluates ImageValidatingPolicy
// validations with cel-go, as Kyverno's cosign attestor reads signatures
// and as pregate does: bundles only through the referrers API, the legacy
// format only without bundles, any verified bundle a signature, and an
// attestor with several identities refused on the bundle path.
func TestPredictImageValidatingPolicy(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	art := func(src verify.Step, format verify.Format, content []byte, fill string) verify.Artifact {
		return verify.Artifact{Source: src, Manifest: "sha256:" + strings.Repeat(fill, 64), Format: format,
			MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: content}
	}
	bundle := art(verify.ReferrersStep, verify.BundleFormat, ss.MustSignImage(t, release, issuer, digest), "b")
	fallback := art(verify.FallbackTagStep, verify.BundleFormat, ss.MustSignImage(t, release, issuer, digest), "f")
	slsa := art(verify.ReferrersStep, verify.BundleFormat,
		ss.MustAttestImage(t, release, issuer, digest, "https://slsa.dev/provenance/v1", map[string]any{"buildDefinition": map[string]any{}}), "a")
	payload, ann := ss.MustLegacySignature(t, release, issuer, digest, repo)
	legacy := verify.Artifact{Source: verify.SignatureTagStep, Manifest: "sha256:" + strings.Repeat("c", 64), Format: verify.SimpleSigningFormat,
		MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Content: payload, Annotations: ann}
	img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0",
		Locations: []gate.Location{{Object: "Deployment/apps/web", APIVersion: "apps/v1", Path: "spec.template.spec.containers[0]",
			Pod: map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"namespace": "apps", "labels": map[string]any{"app": "web"}},
				"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": repo + ":1.0"}}}},
		}}}
	withCondition := func(policy, expr string) string {
		return strings.Replace(policy, "  matchImageReferences:", "  matchConditions: [{name: c, expression: \""+expr+"\"}]\n  matchImageReferences:", 1)
	}

	for name, tc := range map[string]struct {
		policy      string
		arts        []verify.Artifact
		outcome     predict.Outcome
		neverPasses bool
		want        []string
	}{
		"bundle":                       {ivpolPolicy("Deny", oneIdentity, signatures), []verify.Artifact{bundle}, predict.Admit, false, []string{"every validation holds"}},
		"legacy only":                  {ivpolPolicy("Deny", oneIdentity, signatures), []verify.Artifact{legacy}, predict.Admit, false, nil},
		"unsigned":                     {ivpolPolicy("Deny", oneIdentity, signatures), nil, predict.Deny, false, []string{"not signed by the release workflow"}},
		"audit":                        {ivpolPolicy("Audit", oneIdentity, signatures), nil, predict.AuditOnly, false, nil},
		"two identities, bundle":       {ivpolPolicy("Deny", twoIdentites, signatures), []verify.Artifact{bundle}, predict.Deny, true, []string{"multiple identities are not supported", "one identity per attestor"}},
		"two identities, legacy only":  {ivpolPolicy("Deny", twoIdentites, signatures), []verify.Artifact{legacy}, predict.Admit, false, nil},
		"bundle in the fallback tag":   {ivpolPolicy("Deny", oneIdentity, signatures), []verify.Artifact{fallback}, predict.Deny, true, []string{"kyverno#17343", "fallback tag"}},
		"attestation only":             {ivpolPolicy("Deny", oneIdentity, signatures), []verify.Artifact{slsa}, predict.Admit, false, []string{"pregate alone would not"}},
		"provenance required, present": {ivpolPolicy("Deny", oneIdentity, provenance), []verify.Artifact{bundle, slsa}, predict.Admit, false, nil},
		"provenance required, missing": {ivpolPolicy("Deny", oneIdentity, provenance), []verify.Artifact{bundle}, predict.Deny, false, nil},
		"variables, bundle": {withVariable(ivpolPolicy("Deny", oneIdentity, "variables.signed.all(n, n > 0)"), "signed",
			"images.containers.map(i, verifyImageSignatures(i, [attestors.release]))"), []verify.Artifact{bundle}, predict.Admit, false, nil},
		"variables, unsigned": {withVariable(ivpolPolicy("Deny", oneIdentity, "variables.signed.all(n, n > 0)"), "signed",
			"images.containers.map(i, verifyImageSignatures(i, [attestors.release]))"), nil, predict.Deny, false, []string{"not signed by the release workflow"}},
		"variable reading the Pod's name": {withVariable(ivpolPolicy("Deny", oneIdentity, signatures), "name", "object.metadata.name"),
			[]verify.Artifact{bundle}, predict.Undecided, false, []string{"variables[0] (name)", "not known before the object is created (object.metadata.name)"}},
		"validation reading the Pod's labels": {ivpolPolicy("Deny", oneIdentity, "object.metadata.labels.app == 'web' && "+signatures),
			[]verify.Artifact{bundle}, predict.Admit, false, nil},
		"validation reading the request": {ivpolPolicy("Deny", oneIdentity, "request.operation == 'CREATE' && request.namespace == 'apps' && request.kind.kind == 'Pod' && oldObject == null && "+signatures),
			[]verify.Artifact{bundle}, predict.Admit, false, nil},
		"validation reading who asks": {ivpolPolicy("Deny", oneIdentity, "request.userInfo.username != 'admin' && "+signatures),
			[]verify.Artifact{bundle}, predict.Undecided, false, []string{"(request.userInfo)"}},
		"validation reading a field not there": {ivpolPolicy("Deny", oneIdentity, "object.spec.hostNetwork == false && "+signatures),
			[]verify.Artifact{bundle}, predict.Undecided, false, []string{"no such key: hostNetwork"}},
		"match condition holds": {withCondition(ivpolPolicy("Deny", oneIdentity, signatures), "object.metadata.labels.app == 'web'"),
			nil, predict.Deny, false, []string{"not signed by the release workflow"}},
		"match condition reading who asks": {withCondition(ivpolPolicy("Deny", oneIdentity, signatures), "!request.userInfo.groups.exists(g, g == 'system:masters')"),
			nil, predict.Undecided, false, []string{"whether the rule applies is not known", `matchConditions "c"`, "(request.userInfo)"}},
		"a false match condition wins over an unknown one": {strings.Replace(withCondition(ivpolPolicy("Deny", oneIdentity, signatures), "request.userInfo.username == 'x'"),
			"matchConditions: [", "matchConditions: [{name: ns, expression: \"request.namespace == 'other'\"}, ", 1), nil, "", false, nil},
		"matched by expression": {matchingBy(ivpolPolicy("Deny", oneIdentity, signatures), "ref.startsWith('ghcr.io/acme/') && ref.matches(':[0-9.]+$')"),
			[]verify.Artifact{bundle}, predict.Admit, false, nil},
		"matched by an expression pregate cannot compile": {matchingBy(ivpolPolicy("Deny", oneIdentity, signatures), "image(ref).registry() == 'ghcr.io'"),
			[]verify.Artifact{bundle}, predict.Undecided, false, []string{"matchImageReferences[0].expression, which pregate cannot compile"}},
		"validation too costly":       {ivpolPolicy("Deny", oneIdentity, costly), []verify.Artifact{bundle}, predict.Undecided, false, []string{"cost limit exceeded"}},
		"validation does not compile": {ivpolPolicy("Deny", oneIdentity, "images.containers.all(i, nosuch(i))"), []verify.Artifact{bundle}, predict.Undecided, false, []string{"undeclared reference to 'nosuch'"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := compile(t, ss.Material(), readPolicy(t, tc.policy))
			disc := verify.Discovery{Subject: verify.Subject{Ref: img.Ref, Repository: repo, Digest: digest}, Artifacts: tc.arts,
				Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200}, {Step: verify.FallbackTagStep, Status: 200},
					{Step: verify.SignatureTagStep, Status: 404}, {Step: verify.AttestationTagStep, Status: 404}}}
			preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
				return vp.Check(disc), nil
			}, 2)
			if tc.outcome == "" {
				if err != nil || len(preds) != 0 {
					t.Fatalf("Check() = %+v, %v; want the rule not to apply", preds, err)
				}
				return
			}
			if err != nil || len(preds) != 1 {
				t.Fatalf("Check() = %+v, %v; want one prediction", preds, err)
			}
			got := preds[0]
			if got.Outcome != predict.Undecided && got.Digest != digest {
				t.Errorf("prediction about digest %q, want the image's %s", got.Digest, digest)
			}
			if got.Outcome != tc.outcome || got.NeverPasses != tc.neverPasses {
				t.Errorf("outcome %s, never passes %v; want %s, %v\n%+v", got.Outcome, got.NeverPasses, tc.outcome, tc.neverPasses, got)
			}
			text := strings.Join([]string{got.Message, got.Exists, got.Why, got.Fix}, "\n")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("prediction lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

// TestIVPOLKeyAttestorByRelease: a key attestor over an image signed only
// with a bundle, across Kyverno releases: 1.17 and 1.18 crash on it when
// the attestor checks the transparency log (kyverno#16435) and pass it
// when not; 1.19.0 fails it either way (kyverno#17363).
func TestIVPOLKeyAttestorByRelease(t *testing.T) {
	t.Parallel()
	key := verifytest.NewKeySigner(t)
	bundle := verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat("b", 64), Format: verify.BundleFormat,
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: key.MustSignImage(t, digest)}
	policy := func(ignoreTlog bool) string {
		return fmt.Sprintf(`apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: first-party}
spec:
  matchImageReferences: [{glob: "ghcr.io/acme/*"}]
  attestors:
    - name: release
      cosign:
        ctlog: {insecureIgnoreTlog: %v}
        key:
          data: |
%s  validations:
    - expression: images.containers.all(i, verifyImageSignatures(i, [attestors.release]) > 0)
`, ignoreTlog, indent(string(key.PublicKeyPEM()), "            "))
	}
	img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0"}
	disc := verify.Discovery{Subject: verify.Subject{Ref: img.Ref, Repository: repo, Digest: digest}, Artifacts: []verify.Artifact{bundle},
		Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200, Found: 1}, {Step: verify.SignatureTagStep, Status: 404}}}
	for _, tc := range []struct {
		release    string
		ignoreTlog bool
		outcome    predict.Outcome
		quirk      string
	}{
		{"kyverno@1.17", true, predict.Admit, ""},
		{"kyverno@1.18", true, predict.Admit, ""},
		{"kyverno@1.18", false, predict.Deny, admission.QuirkIVPOLKeyTlogCrash},
		{"kyverno@1.19", false, predict.Deny, admission.QuirkIVPOLKeyBundle},
		{"kyverno@1.19", true, predict.Deny, admission.QuirkIVPOLKeyBundle},
	} {
		profiles, err := admission.ParseProfiles([]string{tc.release})
		if err != nil {
			t.Fatal(err)
		}
		// Without the transparency log a key needs no trust material;
		// with it, the check has a log to fail on.
		trust := func() (root.TrustedMaterial, error) { return nil, errors.New("no trust material here") }
		if !tc.ignoreTlog {
			tm := verifytest.NewSigstore(t).Material()
			trust = func() (root.TrustedMaterial, error) { return tm, nil }
		}
		c, err := predict.Compile([]*admission.Policy{readPolicy(t, policy(tc.ignoreTlog))}, profiles, trust)
		if err != nil {
			t.Fatal(err)
		}
		check := func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
			if !tc.ignoreTlog {
				// The key signer writes no log entry: stand for a bundle
				// whose entry verified, as the real cosign's would.
				return verify.Result{Policy: vp.Name, Subject: disc.Subject, Status: verify.Verified,
					Considered: []verify.Consideration{{Source: verify.ReferrersStep, Format: verify.BundleFormat, Kind: verify.SignatureKind, Accepted: true}}}, nil
			}
			return vp.Check(disc), nil
		}
		preds, err := c.Check(t.Context(), []gate.Image{img}, check, 2)
		if err != nil || len(preds) != 1 {
			t.Fatalf("%s: Check() = %+v, %v", tc.release, preds, err)
		}
		if got := preds[0]; got.Outcome != tc.outcome || got.Quirk != tc.quirk {
			t.Errorf("%s, insecureIgnoreTlog %v: outcome %s, quirk %q; want %s, %q\n%+v", tc.release, tc.ignoreTlog, got.Outcome, got.Quirk, tc.outcome, tc.quirk, got)
		}
	}
}

// TestIVPOLRequired: an image the policy covers that its validations hold
// without verifying (an init container, where the validation reads only
// containers) is admitted by Kyverno 1.17 and 1.18, which ignore
// required (kyverno#16853), and denied by 1.19 unless required is false
// or another ImageValidatingPolicy of the request verifies it.
func TestIVPOLRequired(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	bundle := verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat("b", 64), Format: verify.BundleFormat,
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: ss.MustSignImage(t, release, issuer, digest)}
	disc := verify.Discovery{Subject: verify.Subject{Ref: repo + ":1.0", Repository: repo, Digest: digest}, Artifacts: []verify.Artifact{bundle},
		Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200, Found: 1}, {Step: verify.SignatureTagStep, Status: 404}}}
	init := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0",
		Locations: []gate.Location{{Object: "Deployment/apps/web", Path: "spec.template.spec.initContainers[0]"}}}
	containersOnly := ivpolPolicy("Deny", oneIdentity, signatures)
	notRequired := strings.Replace(containersOnly, "  validations:", "  validationConfigurations: {required: false}\n  validations:", 1)
	initToo := strings.Replace(strings.Replace(containersOnly, "images.containers", "images.initContainers", 1), "name: first-party", "name: init-containers", 1)
	for _, tc := range []struct {
		name, release string
		policies      []string
		outcome       predict.Outcome
		quirk, want   string
	}{
		{"1.18 ignores required", "kyverno@1.18", []string{containersOnly}, predict.Admit, admission.QuirkIVPOLRequiredIgnored, "admits it unverified"},
		{"1.19 requires", "kyverno@1.19", []string{containersOnly}, predict.Deny, "", "is not verified: no policy performed a signature or attestation check on it"},
		{"required: false", "kyverno@1.19", []string{notRequired}, predict.Admit, "", "every validation holds"},
		{"another policy verifies it", "kyverno@1.19", []string{containersOnly, initToo}, predict.Admit, "", "every validation holds"},
	} {
		profiles, err := admission.ParseProfiles([]string{tc.release})
		if err != nil {
			t.Fatal(err)
		}
		var policies []*admission.Policy
		for _, doc := range tc.policies {
			policies = append(policies, readPolicy(t, doc))
		}
		c, err := predict.Compile(policies, profiles, func() (root.TrustedMaterial, error) { return ss.Material(), nil })
		if err != nil {
			t.Fatal(err)
		}
		preds, err := c.Check(t.Context(), []gate.Image{init}, func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
			return vp.Check(disc), nil
		}, 2)
		if err != nil || len(preds) != len(tc.policies) {
			t.Fatalf("%s: Check() = %+v, %v", tc.name, preds, err)
		}
		got := preds[0]
		if got.Outcome != tc.outcome || got.Quirk != tc.quirk || !strings.Contains(got.Message, tc.want) {
			t.Errorf("%s: %s, quirk %q, %q; want %s, %q, %q", tc.name, got.Outcome, got.Quirk, got.Message, tc.outcome, tc.quirk, tc.want)
		}
	}
}

// TestIVPOLPodImages: validations read the Pod's images as it names them,
// all of them: Kyverno gives 0 for an image its matchImageReferences do
// not cover, so a validation over every container fails a Pod with a
// third-party sidecar, and the prediction names it. Another covered image
// is predicted on its own. A policy's own image extractors are evaluated
// over the Pod.
func TestIVPOLPodImages(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	bundle := verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat("b", 64), Format: verify.BundleFormat,
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: ss.MustSignImage(t, release, issuer, digest)}
	signed := func(ref string) verify.Discovery {
		return verify.Discovery{Subject: verify.Subject{Ref: ref, Repository: repo, Digest: digest}, Artifacts: []verify.Artifact{bundle},
			Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200, Found: 1}, {Step: verify.SignatureTagStep, Status: 404}}}
	}
	pod := func(images ...string) gate.Image {
		var containers []any
		for i, image := range images {
			containers = append(containers, map[string]any{"name": fmt.Sprint("c", i), "image": image})
		}
		return gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0", Locations: []gate.Location{{
			Object: "Deployment/apps/web", APIVersion: "apps/v1", Path: "spec.template.spec.containers[0]", Raw: images[0],
			Pod: map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"namespace": "apps"},
				"spec": map[string]any{"containers": containers}},
		}}}
	}
	extractor := strings.Replace(ivpolPolicy("Deny", oneIdentity, "images.app.map(i, verifyImageSignatures(i, [attestors.release])).all(e, e > 0)"),
		"  validations:", "  images:\n    - {name: app, expression: \"object.spec.containers.filter(c, c.name == 'c0').map(c, c.image)\"}\n  validations:", 1)
	for _, tc := range []struct {
		name    string
		policy  string
		img     gate.Image
		outcome predict.Outcome
		want    string
	}{
		{"alone", ivpolPolicy("Deny", oneIdentity, signatures), pod(repo + ":1.0"), predict.Admit, "every validation holds"},
		{"with a sidecar not covered", ivpolPolicy("Deny", oneIdentity, signatures), pod(repo+":1.0", "redis:7"), predict.Deny,
			`verifyImageSignatures("redis:7") is 0: the Pod's image redis:7 is not covered by matchImageReferences`},
		// The covered sidecar has its own prediction, which tells its
		// denial: here it is taken to verify.
		{"with a covered sidecar, unsigned", ivpolPolicy("Deny", oneIdentity, signatures), pod(repo+":1.0", "ghcr.io/acme/other:2"), predict.Admit,
			"every validation holds"},
		{"an extractor picking the app", extractor, pod(repo+":1.0", "redis:7"), predict.Admit, "every validation holds"},
	} {
		c := compile(t, ss.Material(), readPolicy(t, tc.policy))
		preds, err := c.Check(t.Context(), []gate.Image{tc.img}, func(_ context.Context, ref string, vp *verify.Policy) (verify.Result, error) {
			if ref != repo+":1.0" {
				return vp.Check(verify.Discovery{Subject: verify.Subject{Ref: ref, Repository: strings.Split(ref, ":")[0], Digest: digest}}), nil
			}
			return vp.Check(signed(ref)), nil
		}, 2)
		if err != nil || len(preds) != 1 {
			t.Fatalf("%s: Check() = %+v, %v", tc.name, preds, err)
		}
		if got := preds[0]; got.Outcome != tc.outcome || !strings.Contains(got.Message, tc.want) {
			t.Errorf("%s: %s %q; want %s, %q", tc.name, got.Outcome, got.Message, tc.outcome, tc.want)
		}
	}
}
