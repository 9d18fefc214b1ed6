package admission_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	predict "github.com/pregate/pregate/gate/admission"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const (
	issuer   = "https://token.actions.githubusercontent.com"
	release  = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	intruder = "https://github.com/acme-evil/app/.github/workflows/release.yml@refs/heads/main"
	repo     = "ghcr.io/acme/app"
)

var digest = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("image")))

// readPolicy reads the policy of a YAML document.
func readPolicy(t *testing.T, doc string) *admission.Policy {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	p, ok, err := admission.Read("policy.yaml", obj)
	if err != nil || !ok {
		t.Fatalf("Read() = %v, %v", ok, err)
	}
	return p
}

// compile compiles policies with tm for default trust material.
func compile(t *testing.T, tm root.TrustedMaterial, policies ...*admission.Policy) predict.Compiled {
	t.Helper()
	c, err := predict.Compile(policies, nil, func() (root.TrustedMaterial, error) { return tm, nil })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rule reads the one rule of a policy written in YAML.
func rule(t *testing.T, doc string) admission.Rule {
	t.Helper()
	p := readPolicy(t, doc)
	if len(p.Rules) != 1 {
		t.Fatalf("Read() = %+v, want one rule", p)
	}
	r := p.Rules[0]
	// The in-process Sigstore's Fulcio issues no SCTs (verifytest).
	for i := range r.Authorities {
		if r.Authorities[i].Keyless != nil {
			r.Authorities[i].IgnoreSCT = true
		}
	}
	return r
}

func kyverno(action, typ string) string {
	return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: %s
  rules:
    - name: release-workflow
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["ghcr.io/acme/*"]
          type: %s
          attestors:
            - entries:
                - keyless:
                    issuer: %s
                    subject: "https://github.com/acme/*/.github/workflows/release.yml@refs/heads/main"
`, action, typ, issuer)
}

func policyController(format, authority string) string {
	return fmt.Sprintf(`apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: first-party}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities:
    - name: release
      signatureFormat: %s
%s`, format, authority)
}

// TestPredict checks images signed in each format against rules of each
// engine and format, as the engine would judge them and as pregate does.
func TestPredict(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	key := verifytest.NewKeySigner(t)
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	bundle := verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat("b", 64), Format: verify.BundleFormat,
		ArtifactType: bundleType, MediaType: bundleType, Content: ss.MustSignImage(t, release, issuer, digest)}
	keyBundle := bundle
	keyBundle.Manifest, keyBundle.Content = "sha256:"+strings.Repeat("d", 64), key.MustSignImage(t, digest)
	// As cosign <= v3.0.6 listed a bundle in the fallback tag of a
	// registry without the referrers API (kyverno#16664).
	emptyListed := bundle
	emptyListed.Source, emptyListed.ArtifactType = verify.FallbackTagStep, "application/vnd.oci.empty.v1+json"
	inFallback := bundle
	inFallback.Source = verify.FallbackTagStep
	intruderBundle := bundle
	intruderBundle.Manifest, intruderBundle.Content = "sha256:"+strings.Repeat("e", 64), ss.MustSignImage(t, intruder, issuer, digest)
	attestationOnly := bundle
	attestationOnly.Manifest, attestationOnly.Content = "sha256:"+strings.Repeat("a", 64),
		ss.MustAttestImage(t, release, issuer, digest, "https://slsa.dev/provenance/v1", map[string]any{"buildDefinition": map[string]any{}})
	payload, ann := ss.MustLegacySignature(t, release, issuer, digest, repo)
	legacy := verify.Artifact{Source: verify.SignatureTagStep, Manifest: "sha256:" + strings.Repeat("c", 64), Format: verify.SimpleSigningFormat,
		MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Content: payload, Annotations: ann}
	discovered := func(arts ...verify.Artifact) verify.Discovery {
		return discoveredWith(arts, 200, 0)
	}
	noAPI := func(arts ...verify.Artifact) verify.Discovery { return discoveredWith(arts, 404, 0) }
	referrers := func(n int, arts ...verify.Artifact) verify.Discovery { return discoveredWith(arts, 200, n) }
	keyless := fmt.Sprintf("      keyless:\n        identities: [{issuer: %s, subject: %s}]\n", issuer, release)
	twoIdentities := fmt.Sprintf("      keyless:\n        identities: [{issuer: %s, subject: %s}, {issuer: %s, subject: %s}]\n", issuer, release, issuer, intruder)
	signedAsAttestation := keyless + "      attestations: [{name: signature, predicateType: https://sigstore.dev/cosign/sign/v1}]\n"
	keyAuth := "      key:\n        data: |\n" + indent(string(key.PublicKeyPEM()), "          ")
	kyvernoKey := `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release-workflow
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["ghcr.io/acme/*"]
          type: SigstoreBundle
          attestors:
            - entries:
                - keys:
                    publicKeys: |
` + indent(string(key.PublicKeyPEM()), "                      ") + `                    rekor: {ignoreTlog: true}
                    ctlog: {ignoreSCT: true}
`

	for name, tc := range map[string]struct {
		rule        string
		profile     string
		disc        verify.Discovery
		outcome     predict.Outcome
		neverPasses bool
		want        []string // in Message, Exists, Why or Fix
	}{
		// The seed outage: a cosign v3 image under the default type.
		"kyverno Cosign, bundle only": {kyverno("Enforce", "Cosign"), "", discovered(bundle), predict.Deny, true,
			[]string{"a cosign v3 Sigstore bundle as an OCI referrer (referrers API), signed by " + release,
				"type: Cosign (the default) reads cosign's legacy format only", "set type: SigstoreBundle", "signature-tag", "kyverno@1.19"}},
		"kyverno Cosign, bundle only, 1.17": {kyverno("Enforce", "Cosign"), "kyverno@1.17", discovered(bundle), predict.Deny, true, []string{"kyverno@1.17"}},
		"kyverno Cosign, audit":             {kyverno("Audit", "Cosign"), "", discovered(bundle), predict.AuditOnly, true, nil},
		"kyverno Cosign, legacy too":        {kyverno("Enforce", "Cosign"), "", discovered(bundle, legacy), predict.Admit, false, nil},
		"kyverno SigstoreBundle, bundle":    {kyverno("Enforce", "SigstoreBundle"), "", discovered(bundle), predict.Admit, false, nil},
		"kyverno SigstoreBundle, legacy only": {kyverno("Enforce", "SigstoreBundle"), "", discovered(legacy), predict.Deny, true,
			[]string{"a legacy cosign signature in the sha256-<digest>.sig tag", "reads Sigstore bundles only"}},
		"kyverno SigstoreBundle, listed as empty": {kyverno("Enforce", "SigstoreBundle"), "", noAPI(emptyListed), predict.Deny, true,
			[]string{"(sha256-<digest> fallback tag)", "artifactType starting application/vnd.dev.sigstore.bundle", "kyverno#16664", "cosign v3.1 or later"}},
		"kyverno SigstoreBundle, fallback tag without API": {kyverno("Enforce", "SigstoreBundle"), "", noAPI(inFallback), predict.Admit, false, nil},
		"kyverno SigstoreBundle, fallback tag hidden by the API": {kyverno("Enforce", "SigstoreBundle"), "", discovered(inFallback), predict.Deny, true,
			[]string{"an API that answers, even with an empty list, hides the tag", "go-containerregistry remote.Referrers"}},
		"kyverno SigstoreBundle, 50 referrers": {kyverno("Enforce", "SigstoreBundle"), "", referrers(50, bundle), predict.Admit, false, nil},
		"kyverno SigstoreBundle, 51 referrers": {kyverno("Enforce", "SigstoreBundle"), "", referrers(51, bundle), predict.Deny, true,
			[]string{"more than 50 referrers", "attestationlimit"}},
		"kyverno SigstoreBundle, attestation only": {kyverno("Enforce", "SigstoreBundle"), "", discovered(attestationOnly), predict.Admit, false,
			[]string{"pregate alone would not"}},
		"kyverno SigstoreBundle key, 1.18": {kyvernoKey, "kyverno@1.18", discovered(keyBundle), predict.Deny, true,
			[]string{"verifies no key attestor", "kyverno#15239", "run Kyverno 1.19 or later"}},
		"kyverno SigstoreBundle key, 1.19":        {kyvernoKey, "kyverno@1.19", discovered(keyBundle), predict.Admit, false, nil},
		"kyverno Cosign, unsigned":                {kyverno("Enforce", "Cosign"), "", discovered(), predict.Deny, false, nil},
		"kyverno Cosign, another signer's bundle": {kyverno("Enforce", "Cosign"), "", discovered(intruderBundle), predict.Deny, false, nil},
		"policy-controller legacy, bundle only": {policyController("legacy", keyless), "", discovered(bundle), predict.Deny, true,
			[]string{"set signatureFormat: bundle", "policy-controller@0.15"}},
		"policy-controller default, legacy": {policyController(`""`, keyless), "", discovered(legacy), predict.Admit, false, nil},
		// policy-controller#1899: no signature is read in the bundle format.
		"policy-controller bundle, signature bundle": {policyController("bundle", keyless), "", discovered(bundle), predict.Deny, true,
			[]string{"bundle support for image signatures is not yet implemented", "policy-controller#1899", "predicateType: https://sigstore.dev/cosign/sign/v1"}},
		"policy-controller bundle, signature as attestation": {policyController("bundle", signedAsAttestation), "", discovered(bundle), predict.Admit, false, nil},
		"policy-controller bundle, fallback tag hidden by the API": {policyController("bundle", signedAsAttestation), "", discovered(inFallback), predict.Deny, true,
			[]string{"in policy-controller@0.15, with signatureFormat: bundle, Sigstore bundles are listed through the registry's referrers API"}},
		"policy-controller bundle, fallback tag without API": {policyController("bundle", signedAsAttestation), "", noAPI(inFallback), predict.Admit, false, nil},
		"policy-controller bundle, signature as attestation, legacy only": {policyController("bundle", signedAsAttestation), "", discovered(legacy),
			predict.Deny, false, nil},
		"policy-controller bundle, two identities": {policyController("bundle", twoIdentities+"      attestations: [{name: signature, predicateType: https://sigstore.dev/cosign/sign/v1}]\n"),
			"", discovered(bundle), predict.Deny, true, []string{"multiple identities are not supported"}},
		"policy-controller bundle with a key": {policyController("bundle", keyAuth), "", discovered(bundle), predict.Deny, false,
			[]string{"keyless authorities only"}},
		"unsupported": {strings.Replace(kyverno("Enforce", "Cosign"), "verifyImages:", "verifyImages:\n        - imageReferences: [x]\n          repository: ghcr.io/acme/signatures\n          attestors: [{entries: [{keyless: {issuer: i, subject: s}}]}]\n      ignored:", 1),
			"", discovered(bundle), predict.Undecided, false, []string{"repository (signatures in another repository)"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := rule(t, tc.rule)
			profile := admission.Newest(r.Engine)
			if tc.profile != "" {
				var err error
				if profile, err = admission.ParseProfile(tc.profile); err != nil {
					t.Fatal(err)
				}
			}
			engine, own := r.Policies(profile, ss.Material())
			var engineRes *verify.Result
			if engine != nil {
				res := engine.Check(tc.disc)
				engineRes = &res
			}
			p := predict.Predict(r, profile, engineRes, own.Check(tc.disc))
			if p.Outcome != tc.outcome || p.NeverPasses != tc.neverPasses {
				t.Errorf("outcome %s, never passes %v; want %s, %v\n%+v", p.Outcome, p.NeverPasses, tc.outcome, tc.neverPasses, p)
			}
			text := strings.Join([]string{p.Engine, p.Message, p.Exists, p.Why, p.Fix}, "\n")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("prediction lacks %q:\n%s", w, text)
				}
			}
			if p.NeverPasses && (p.Exists == "" || p.Why == "" || p.Fix == "" || p.Quirk == "") {
				t.Errorf("a rule that can never pass must say what exists, why (the quirk) and the fix: %+v", p)
			}
		})
	}
}

func discoveredWith(arts []verify.Artifact, referrersStatus, referrersFound int) verify.Discovery {
	fallback := 404
	if referrersStatus != 200 {
		fallback = 200
	}
	return verify.Discovery{
		Subject:   verify.Subject{Ref: repo + ":1.0", Repository: repo, Digest: digest},
		Artifacts: arts,
		Lookups: []verify.Lookup{
			{Step: verify.ReferrersStep, URL: "https://ghcr.io/v2/acme/app/referrers/" + digest, Status: referrersStatus, Found: referrersFound},
			{Step: verify.FallbackTagStep, URL: "https://ghcr.io/v2/acme/app/manifests/sha256-x", Status: fallback},
			{Step: verify.SignatureTagStep, URL: "https://ghcr.io/v2/acme/app/manifests/sha256-x.sig", Status: 404},
			{Step: verify.AttestationTagStep, URL: "https://ghcr.io/v2/acme/app/manifests/sha256-x.att", Status: 404},
		},
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestPolicyControllerAnyAuthority: any authority of a ClusterImagePolicy
// may admit the image; the others' failures then do not count.
func TestPolicyControllerAnyAuthority(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	bundle := verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat("b", 64), Format: verify.BundleFormat,
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: ss.MustSignImage(t, release, issuer, digest)}
	doc := fmt.Sprintf(`apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: first-party}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities:
    - name: legacy
      keyless: {identities: [{issuer: %[1]s, subject: %[2]s}], insecureIgnoreSCT: true}
    - name: bundle
      signatureFormat: bundle
      keyless: {identities: [{issuer: %[1]s, subject: %[2]s}], insecureIgnoreSCT: true}
      attestations: [{name: signature, predicateType: "https://sigstore.dev/cosign/sign/v1"}]
`, issuer, release)
	c := compile(t, ss.Material(), readPolicy(t, doc))
	img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0"}
	check := func(arts ...verify.Artifact) []gate.Admission {
		disc := verify.Discovery{Subject: verify.Subject{Ref: img.Ref, Repository: repo, Digest: digest}, Artifacts: arts,
			Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200}, {Step: verify.SignatureTagStep, Status: 404}}}
		preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
			return vp.Check(disc), nil
		}, 2)
		if err != nil {
			t.Fatal(err)
		}
		return preds
	}
	if got := check(bundle); len(got) != 1 || got[0].Outcome != predict.Admit || got[0].Rule != "bundle" {
		t.Errorf("bundle-signed image: %+v; want one admission, by the bundle authority", got)
	}
	if got := check(); len(got) != 2 || got[0].Outcome != predict.Deny || got[1].Outcome != predict.Deny {
		t.Errorf("unsigned image: %+v; want both authorities' denials", got)
	}
}

// TestKyvernoActionOverrides: validationFailureActionOverrides make a rule
// enforced in some namespaces and audited in the others.
func TestKyvernoActionOverrides(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	doc := strings.Replace(kyverno("Audit", "Cosign"), "  rules:", "  validationFailureActionOverrides:\n    - {action: Enforce, namespaces: [prod-*]}\n  rules:", 1)
	c := compile(t, ss.Material(), readPolicy(t, doc))
	in := func(namespaces ...string) gate.Image {
		img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0"}
		for _, ns := range namespaces {
			img.Locations = append(img.Locations, gate.Location{Object: "Deployment/" + ns + "/web", Path: "spec.template.spec.containers[0]"})
		}
		return img
	}
	disc := verify.Discovery{Subject: verify.Subject{Ref: repo + ":1.0", Repository: repo, Digest: digest},
		Lookups: []verify.Lookup{{Step: verify.SignatureTagStep, Status: 404}, {Step: verify.AttestationTagStep, Status: 404}}}
	for _, tc := range []struct {
		namespaces []string
		want       predict.Outcome
	}{
		{[]string{"dev"}, predict.AuditOnly},
		{[]string{"prod-eu"}, predict.Deny},
		{[]string{"dev", "prod-eu"}, predict.Deny},
	} {
		preds, err := c.Check(t.Context(), []gate.Image{in(tc.namespaces...)}, func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
			return vp.Check(disc), nil
		}, 1)
		if err != nil || len(preds) != 1 || preds[0].Outcome != tc.want {
			t.Errorf("an unsigned image in %v: %+v, %v; want %s", tc.namespaces, preds, err, tc.want)
		}
	}
}
