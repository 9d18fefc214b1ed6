package admission_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	predict "github.com/pregate/pregate/gate/admission"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestPredictWithThePolicysTrust: a policy that names a private Sigstore
// deployment's roots and log keys is checked with them, as the engine
// takes them, while the default trust material (here another deployment)
// stays for the pieces it does not name; Kyverno's SigstoreBundle ignores
// them.
func TestPredictWithThePolicysTrust(t *testing.T) {
	t.Parallel()
	public, private := verifytest.NewSigstore(t), verifytest.NewSigstore(t)
	roots, rekorKey, ctlogKey := private.TrustPEM(t)
	payload, ann := private.MustLegacySignature(t, release, issuer, digest, repo)
	legacy := verify.Artifact{Source: verify.SignatureTagStep, Manifest: "sha256:" + strings.Repeat("c", 64), Format: verify.SimpleSigningFormat,
		MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Content: payload, Annotations: ann}
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	bundle := verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat("b", 64), Format: verify.BundleFormat,
		ArtifactType: bundleType, MediaType: bundleType, Content: private.MustSignImage(t, release, issuer, digest)}

	kyverno := func(typ string, own bool) string {
		trust := ""
		if own {
			trust = "                    roots: |\n" + indent(roots, "                      ") +
				"                    rekor:\n                      pubkey: |\n" + indent(rekorKey, "                        ") +
				"                    ctlog:\n                      ignoreSCT: true\n                      pubkey: |\n" + indent(ctlogKey, "                        ")
		} else {
			trust = "                    ctlog: {ignoreSCT: true}\n"
		}
		return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: private-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["ghcr.io/acme/*"]
          type: %s
          attestors:
            - entries:
                - keyless:
                    issuer: %s
                    subject: %s
%s`, typ, issuer, release, trust)
	}
	ivpol := func(own bool) string {
		trust := "          ctlog: {insecureIgnoreSCT: true}\n"
		if own {
			trust = "          ctlog:\n            insecureIgnoreSCT: true\n            rekorPubKey: |\n" + indent(rekorKey, "              ") +
				"            ctLogPubKey: |\n" + indent(ctlogKey, "              ")
		}
		keyless := fmt.Sprintf("          keyless:\n            identities: [{issuer: %s, subject: %s}]\n", issuer, release)
		if own {
			keyless += "            roots: |\n" + indent(roots, "              ")
		}
		return `apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: private-signed}
spec:
  validationActions: [Deny]
  matchImageReferences: [{glob: "ghcr.io/acme/*"}]
  attestors:
    - name: release
      cosign:
` + keyless + trust + `  validations:
    - expression: images.containers.all(i, verifyImageSignatures(i, [attestors.release]) > 0)
      message: not signed by the release workflow
`
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	trustRoot := fmt.Sprintf(`apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata: {name: private}
spec:
  sigstoreKeys:
    certificateAuthorities: [{subject: {organization: acme, commonName: fulcio}, uri: "https://fulcio.acme.internal", certChain: %s}]
    tLogs: [{baseURL: "https://rekor.acme.internal", hashAlgorithm: sha-256, publicKey: %s}]
    ctLogs: [{baseURL: "https://ctlog.acme.internal", hashAlgorithm: sha-256, publicKey: %s}]
`, b64(roots), b64(rekorKey), b64(ctlogKey))
	cip := func(ref string) string {
		return fmt.Sprintf(`apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: private-signed}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities:
    - name: release
      keyless:
        identities: [{issuer: %s, subject: %s}]
        trustRootRef: %s
        insecureIgnoreSCT: true
      ctlog: {trustRootRef: %s}
`, issuer, release, ref, ref)
	}
	// Timestamp authorities: the private deployment's, which stamped the
	// signatures, or the public one's, which did not.
	withTSA := func(tsa string) string {
		return trustRoot + fmt.Sprintf("    timestampAuthorities: [{subject: {organization: acme, commonName: tsa}, uri: \"https://tsa.acme.internal\", certChain: %s}]\n", b64(tsa))
	}
	stamped := func(ref string) string { return cip(ref) + "      rfc3161timestamp: {trustRootRef: " + ref + "}\n" }
	kyvernoTSA := func(tsa string) string {
		return strings.Replace(kyverno("Cosign", true), "                      ignoreSCT: true\n",
			"                      ignoreSCT: true\n                      tsaCertChain: |\n"+indent(tsa, "                        "), 1)
	}
	img := gate.Image{Ref: repo + ":1.0", Repository: repo, Tag: "1.0"}
	for name, tc := range map[string]struct {
		policy  string
		art     verify.Artifact
		outcome predict.Outcome
	}{
		"ClusterImagePolicy, its TrustRoot":       {cip("private") + "---\n" + trustRoot, legacy, predict.Admit},
		"ClusterImagePolicy, TrustRoot not given": {cip("private"), legacy, predict.Undecided},
		"ClusterImagePolicy, another TrustRoot":   {cip("other") + "---\n" + trustRoot, legacy, predict.Undecided},
		"ClusterImagePolicy, its TSA":             {stamped("private") + "---\n" + withTSA(private.TSAPEM(t)), legacy, predict.Admit},
		"ClusterImagePolicy, another TSA":         {stamped("private") + "---\n" + withTSA(public.TSAPEM(t)), legacy, predict.Deny},
		"ClusterImagePolicy, a TrustRoot no TSA":  {stamped("private") + "---\n" + trustRoot, legacy, predict.Undecided},
		"Cosign, its TSA chain":                   {kyvernoTSA(private.TSAPEM(t)), legacy, predict.Admit},
		"Cosign, another TSA chain":               {kyvernoTSA(public.TSAPEM(t)), legacy, predict.Deny},
		"Cosign, the policy's roots":              {kyverno("Cosign", true), legacy, predict.Admit},
		"Cosign, default roots":                   {kyverno("Cosign", false), legacy, predict.Deny},
		"SigstoreBundle ignores its roots":        {kyverno("SigstoreBundle", true), bundle, predict.Deny},
		"ImageValidatingPolicy, its roots":        {ivpol(true), bundle, predict.Admit},
		"ImageValidatingPolicy, default root":     {ivpol(false), bundle, predict.Deny},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var policies []*admission.Policy
			for _, doc := range strings.Split(tc.policy, "\n---\n") {
				policies = append(policies, readPolicy(t, doc))
			}
			c := compile(t, public.Material(), admission.ResolveTrustRoots(policies)...)
			disc := verify.Discovery{Subject: verify.Subject{Ref: img.Ref, Repository: repo, Digest: digest}, Artifacts: []verify.Artifact{tc.art},
				Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200, Found: 1}, {Step: verify.FallbackTagStep, Status: 404},
					{Step: verify.SignatureTagStep, Status: 200}, {Step: verify.AttestationTagStep, Status: 404}}}
			preds, err := c.Check(t.Context(), []gate.Image{img}, func(_ context.Context, _ string, vp *verify.Policy) (verify.Result, error) {
				return vp.Check(disc), nil
			}, 2)
			if err != nil || len(preds) != 1 {
				t.Fatalf("Check() = %+v, %v; want one prediction", preds, err)
			}
			if got := preds[0]; got.Outcome != tc.outcome {
				t.Errorf("outcome %s, want %s\n%+v", got.Outcome, tc.outcome, got)
			}
		})
	}
}
