package admission_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pregate/pregate/gate"
	predict "github.com/pregate/pregate/gate/admission"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestKyvernoAttestorSets: every attestor set of a verifyImages entry must
// pass, each with count of its entries (all by default).
func TestKyvernoAttestorSets(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	key := verifytest.NewKeySigner(t)
	const hotfix = "https://github.com/acme/app/.github/workflows/hotfix.yml@refs/heads/main"
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	art := func(fill string, content []byte) verify.Artifact {
		return verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat(fill, 64), Format: verify.BundleFormat,
			ArtifactType: bundleType, MediaType: bundleType, Content: content}
	}
	byRelease := art("a", ss.MustSignImage(t, release, issuer, digest))
	byHotfix := art("b", ss.MustSignImage(t, hotfix, issuer, digest))
	byKey := art("c", key.MustSignImage(t, digest))
	keyless := func(subject string) string {
		return fmt.Sprintf("{keyless: {issuer: %s, subject: %q, ctlog: {ignoreSCT: true}}}", issuer, subject)
	}
	keyEntry := "{keys: {publicKeys: " + fmt.Sprintf("%q", string(key.PublicKeyPEM())) + ", rekor: {ignoreTlog: true}, ctlog: {ignoreSCT: true}}}"
	policy := func(typ, attestors string) string {
		return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: two-signers}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["ghcr.io/acme/*"]
          type: %s
          attestors: %s
`, typ, attestors)
	}
	twoSets := "[{entries: [" + keyless(release) + "]}, {entries: [" + keyEntry + "]}]"
	bothOf := "[{entries: [" + keyless(release) + ", " + keyless(hotfix) + "]}]"
	oneOf := "[{count: 1, entries: [" + keyless(release) + ", " + keyless(hotfix) + "]}]"
	for name, tc := range map[string]struct {
		policy      string
		arts        []verify.Artifact
		outcome     predict.Outcome
		neverPasses bool
		message     string
	}{
		"two sets, both signed":        {policy("SigstoreBundle", twoSets), []verify.Artifact{byRelease, byKey}, predict.Admit, false, "every attestor set passes"},
		"two sets, one signed":         {policy("SigstoreBundle", twoSets), []verify.Artifact{byRelease}, predict.Deny, false, "attestors[1]: 0 of 1 entries verify, 1 needed"},
		"both of two, one signed":      {policy("SigstoreBundle", bothOf), []verify.Artifact{byRelease}, predict.Deny, false, "attestors[0]: 1 of 2 entries verify, 2 needed"},
		"both of two, both signed":     {policy("SigstoreBundle", bothOf), []verify.Artifact{byRelease, byHotfix}, predict.Admit, false, ""},
		"one of two, one signed":       {policy("SigstoreBundle", oneOf), []verify.Artifact{byHotfix}, predict.Admit, false, ""},
		"two sets under Cosign, never": {policy("Cosign", twoSets), []verify.Artifact{byRelease, byKey}, predict.Deny, true, "attestors[0]: 0 of 1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := readPolicy(t, tc.policy)
			if u := p.Rules[0].Unsupported; len(u) > 0 {
				t.Fatalf("unsupported: %q", u)
			}
			c := compile(t, ss.Material(), p)
			img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0"}
			disc := verify.Discovery{Subject: verify.Subject{Ref: img.Ref, Repository: repo, Digest: digest}, Artifacts: tc.arts,
				Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200, Found: len(tc.arts)}, {Step: verify.FallbackTagStep, Status: 404},
					{Step: verify.SignatureTagStep, Status: 404}, {Step: verify.AttestationTagStep, Status: 404}}}
			preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
				return vp.Check(disc), nil
			}, 2)
			if err != nil || len(preds) != 1 {
				t.Fatalf("Check() = %+v, %v", preds, err)
			}
			got := preds[0]
			if got.Outcome != tc.outcome || got.NeverPasses != tc.neverPasses || !strings.Contains(got.Message, tc.message) {
				t.Errorf("%+v\nwant %s, never passes %v, message with %q", got, tc.outcome, tc.neverPasses, tc.message)
			}
			if got.NeverPasses && (got.Fix == "" || got.Quirk == "") {
				t.Errorf("a set that can never pass must say the fix and the quirk: %+v", got)
			}
		})
	}
}

// TestKyvernoAttestationConditions: an attestation whose conditions do not
// hold over its predicate does not count, for the engine nor for pregate.
func TestKyvernoAttestationConditions(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	const slsa = "https://slsa.dev/provenance/v1"
	provenance := func(ref string) verify.Artifact {
		return verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat(ref[len(ref)-1:], 64), Format: verify.BundleFormat,
			ArtifactType: bundleType, MediaType: bundleType, Content: ss.MustAttestImage(t, release, issuer, digest, slsa,
				map[string]any{"buildDefinition": map[string]any{"externalParameters": map[string]any{"workflow": map[string]any{"ref": ref}}}})}
	}
	signature := verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat("5", 64), Format: verify.BundleFormat,
		ArtifactType: bundleType, MediaType: bundleType, Content: ss.MustSignImage(t, release, issuer, digest)}
	doc := strings.Replace(kyverno("Enforce", "SigstoreBundle"), "          attestors:", `          attestations:
            - type: `+slsa+`
              conditions:
                - all:
                    - key: "{{ buildDefinition.externalParameters.workflow.ref }}"
                      operator: Equals
                      value: refs/heads/main
                      message: not built from main
          attestors:`, 1)
	p := readPolicy(t, doc)
	if u := p.Rules[0].Unsupported; len(u) > 0 {
		t.Fatalf("unsupported: %q", u)
	}
	p.Rules[0] = rule(t, doc) // the in-process Fulcio issues no SCT
	c := compile(t, ss.Material(), p)
	for name, tc := range map[string]struct {
		arts    []verify.Artifact
		outcome predict.Outcome
		message string
	}{
		"built from main":  {[]verify.Artifact{signature, provenance("refs/heads/main")}, predict.Admit, ""},
		"built from a tag": {[]verify.Artifact{signature, provenance("refs/tags/v1")}, predict.Deny, "not built from main"},
		"no provenance":    {[]verify.Artifact{signature}, predict.Deny, "was not found"},
	} {
		img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0"}
		disc := verify.Discovery{Subject: verify.Subject{Ref: img.Ref, Repository: repo, Digest: digest}, Artifacts: tc.arts,
			Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200, Found: len(tc.arts)}, {Step: verify.FallbackTagStep, Status: 404}}}
		preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
			return vp.Check(disc), nil
		}, 2)
		if err != nil || len(preds) != 1 {
			t.Fatalf("%s: Check() = %+v, %v", name, preds, err)
		}
		if got := preds[0]; got.Outcome != tc.outcome || got.NeverPasses || !strings.Contains(got.Message, tc.message) {
			t.Errorf("%s: %+v; want %s with %q", name, got, tc.outcome, tc.message)
		}
	}
}
