package e2e

// The real cosign CLI (v3, built by `make cosign`) signs and attests images
// in a loopback registry with a key, in the Sigstore bundle format (cosign
// v3's default, stored as an OCI referrer) and in the legacy .sig/.att
// format; the real pregate binary then verifies them, and must accept
// exactly what cosign signed with the trusted key: not an image that only
// carries an attestation, not an unsigned image, not one signed with
// another key. cosign verify is run on some of them as a cross-check.
// Nothing leaves the machine: cosign and pregate get a fresh home, no
// transparency log or TUF repository, and a proxy that refuses (and
// records) any request to a non-loopback host.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const slsaProvenanceV1 = "https://slsa.dev/provenance/v1"

// cosignCLI runs cosign offline, in its own home, in a directory that
// holds the keys, the predicate and the signing config.
type cosignCLI struct{ offlineBinary }

func (c *cosignCLI) mustRun(t testing.TB, args ...string) binaryRun {
	t.Helper()
	r := c.run(t, args...)
	if r.code != 0 {
		t.Fatalf("cosign failed:\n%s", r)
	}
	return r
}

// The ways the test has cosign write a signature or attestation. Neither
// uploads to a transparency log nor reads a TUF repository.
var (
	// bundleFlags: the v3 default format (a Sigstore bundle as an OCI
	// referrer), with a signing config that names no service (no Rekor, no
	// TSA) and a trusted root that lists none: with --signing-config and no
	// --trusted-root, cosign would fetch trusted_root.json from the
	// public-good TUF repository.
	bundleFlags = []string{"--signing-config", "signing-config.json", "--trusted-root", "trusted-root.json"}
	// legacyFlags: the legacy format (.sig/.att tags). A signing config
	// needs the bundle format, so these use the deprecated flags that turn
	// it off (cosign then reads no TUF repository either).
	legacyFlags = []string{"--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false"}
)

// sign signs ref with the key pair whose private key is keyFile.
func (c *cosignCLI) sign(t testing.TB, keyFile, ref string, format []string) {
	t.Helper()
	args := append([]string{"sign", "--key", keyFile, "--allow-http-registry", "-y"}, format...)
	c.mustRun(t, append(args, ref)...)
}

// attest attaches an SLSA v1 provenance attestation to ref.
func (c *cosignCLI) attest(t *testing.T, keyFile, ref string, format []string) {
	t.Helper()
	args := append([]string{"attest", "--key", keyFile, "--allow-http-registry", "-y",
		"--type", "slsaprovenance1", "--predicate", "provenance.json"}, format...)
	c.mustRun(t, append(args, ref)...)
}

// verify runs cosign verify with the trusted key and no transparency log,
// and returns the run (exit 0: cosign accepts the image).
func (c *cosignCLI) verify(t *testing.T, ref string) binaryRun {
	t.Helper()
	return c.run(t, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-http-registry", ref)
}

// pregateExplanation is what `pregate explain -o json` prints (cmd/pregate/explain.go).
type pregateExplanation struct {
	Kind      string            `json:"kind"`
	Image     string            `json:"image"`
	Verdict   gate.ImageVerdict `json:"verdict"`
	Allowed   bool              `json:"allowed"`
	Retry     bool              `json:"retry"`
	Results   []verify.Result   `json:"results"`
	Admission []gate.Admission  `json:"admission"`
}

// pregateVerdict is what `pregate check -o json` prints (docs/output.md).
type pregateVerdict struct {
	Kind string `json:"kind"`
	gate.Verdict
}

func decodeJSON(t testing.TB, r binaryRun, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("decoding the JSON output: %v\n%s", err, r)
	}
}

// keyHint is cosign's hint for a public key: base64 of the SHA-256 of its
// PKIX DER, as bundles carry it and pregate reports the signer.
func keyHint(t *testing.T, pubFile string) string {
	t.Helper()
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", pubFile)
	}
	sum := sha256.Sum256(blk.Bytes)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func writeTestFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cosignVersion asserts the binary is cosign v3 and returns its version.
func cosignVersion(t testing.TB, c *cosignCLI) string {
	t.Helper()
	r := c.mustRun(t, "version", "--json")
	var v struct{ GitVersion string }
	decodeJSON(t, r, &v)
	if !strings.HasPrefix(v.GitVersion, "v3.") {
		t.Fatalf("PREGATE_COSIGN is cosign %q; this test needs cosign v3 (`make cosign` builds the pinned one)", v.GitVersion)
	}
	return v.GitVersion
}

func TestCosignSignedImagesVerifiedByPregate(t *testing.T) {
	if testing.Short() {
		// make test-unit; make test (CI) runs it, and builds what it needs.
		t.Skip("e2e: drives the real cosign and pregate binaries; `make test` runs it")
	}
	cosignBin := e2eBinary(t, "PREGATE_COSIGN", "the real cosign CLI (v3)", "make cosign", "bin/cosign-<COSIGN_VERSION in the Makefile>")
	pregateBin := e2eBinary(t, "PREGATE_BIN", "the pregate binary", "make build", "bin/pregate")

	sentinel := newNetworkSentinel(t)
	root := t.TempDir()
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	cosignEnv := append(offlineEnv(t, filepath.Join(root, "cosign"), sentinel),
		"COSIGN_PASSWORD=", // the generated keys are encrypted with an empty password
		"TUF_ROOT="+filepath.Join(root, "cosign", "tuf"),
	)
	cosign := &cosignCLI{offlineBinary{bin: cosignBin, dir: work, env: cosignEnv, sentinel: sentinel}}
	pregate := &offlineBinary{bin: pregateBin, dir: work, env: offlineEnv(t, filepath.Join(root, "pregate"), sentinel), sentinel: sentinel}

	t.Logf("cosign %s", cosignVersion(t, cosign))

	// The trusted key pair (cosign.key, cosign.pub), another one
	// (other.key, other.pub), and what signing needs.
	cosign.mustRun(t, "generate-key-pair")
	cosign.mustRun(t, "generate-key-pair", "--output-key-prefix", "other")
	cosign.mustRun(t, "signing-config", "create", "--out", "signing-config.json")
	writeTestFile(t, filepath.Join(work, "trusted-root.json"), `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	writeTestFile(t, filepath.Join(work, "provenance.json"), `{
  "buildDefinition": {"buildType": "https://pregate.dev/e2e/build/v1", "externalParameters": {}},
  "runDetails": {"builder": {"id": "https://pregate.dev/e2e/builder"}}
}`)
	trustedHint := keyHint(t, filepath.Join(work, "cosign.pub"))
	otherHint := keyHint(t, filepath.Join(work, "other.pub"))

	for _, referrersAPI := range []bool{true, false} {
		name := "referrers API"
		// Where a cosign v3 bundle is found: the registry lists it, or,
		// without the API, ggcr's writer (in cosign) adds it to the
		// sha256-<hex> fallback tag index.
		bundleSource := verify.ReferrersStep
		if !referrersAPI {
			name = "no referrers API"
			bundleSource = verify.FallbackTagStep
		}
		t.Run(name, func(t *testing.T) {
			host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(referrersAPI))
			push := func(repo string) string {
				ref, _ := verifytest.PushRandomImage(t, host+"/e2e/"+repo+":v1")
				return ref
			}
			var (
				bundleSigned = push("bundle-signed")      // A
				legacySigned = push("legacy-signed")      // B
				bundleAttest = push("bundle-attested")    // C
				legacyAttest = push("legacy-attested")    // D
				unsigned     = push("unsigned")           // E
				otherKey     = push("signed-another-key") // F
				otherLegacy  = push("legacy-another-key") // G
			)
			cosign.sign(t, "cosign.key", bundleSigned, bundleFlags)
			cosign.sign(t, "cosign.key", legacySigned, legacyFlags)
			cosign.attest(t, "cosign.key", bundleAttest, bundleFlags)
			cosign.attest(t, "cosign.key", legacyAttest, legacyFlags)
			cosign.sign(t, "other.key", otherKey, bundleFlags)
			cosign.sign(t, "other.key", otherLegacy, legacyFlags)

			policy := []string{"--images", host + "/**", "--key", "cosign.pub", "--insecure-ignore-tlog"}
			explain := func(t *testing.T, ref string, wantCode int) pregateExplanation {
				t.Helper()
				r := pregate.run(t, append(append([]string{"explain", ref}, policy...), "-o", "json")...)
				if r.code != wantCode {
					t.Fatalf("exit %d, want %d:\n%s", r.code, wantCode, r)
				}
				var ex pregateExplanation
				decodeJSON(t, r, &ex)
				if ex.Kind != "Explanation" || ex.Image != ref {
					t.Fatalf("kind %q about %q, want an Explanation about %s:\n%s", ex.Kind, ex.Image, ref, r)
				}
				if len(ex.Results) != 1 {
					t.Fatalf("%d results, want 1 (the command-line policy):\n%s", len(ex.Results), r)
				}
				digest := ref[strings.Index(ref, "@")+1:]
				if ex.Verdict.Digest != digest || ex.Results[0].Subject.Digest != digest {
					t.Errorf("verdict about %q (result %q), want the image digest %s", ex.Verdict.Digest, ex.Results[0].Subject.Digest, digest)
				}
				for _, l := range ex.Results[0].Lookups {
					if l.Failed() {
						t.Errorf("lookup failed: %+v", l)
					}
				}
				t.Logf("%s: %s: %s", ref, ex.Results[0].Status, ex.Results[0].Detail)
				for _, c := range ex.Results[0].Considered {
					t.Logf("  considered %s from %s (%s, %s): accepted=%v: %s", c.Artifact, c.Source, c.Format, c.Kind, c.Accepted, c.Reason)
				}
				return ex
			}
			// accepted asserts the image verified through exactly one
			// signature, of format from source, signed with the trusted key.
			accepted := func(t *testing.T, ex pregateExplanation, source verify.Step, format verify.Format) {
				t.Helper()
				res := ex.Results[0]
				if !ex.Allowed || ex.Verdict.Outcome != gate.Passed || res.Status != verify.Verified {
					t.Fatalf("allowed=%v outcome=%s status=%s, want an allowed, verified image: %s", ex.Allowed, ex.Verdict.Outcome, res.Status, res.Detail)
				}
				var sigs []verify.Consideration
				for _, c := range res.Considered {
					if c.Kind == verify.SignatureKind {
						sigs = append(sigs, c)
					}
				}
				if len(sigs) != 1 {
					t.Fatalf("%d signatures considered, want the one cosign wrote: %+v", len(sigs), res.Considered)
				}
				c := sigs[0]
				if !c.Accepted || c.Source != source || c.Format != format || c.Signer != "public key "+trustedHint {
					t.Errorf("signature considered: %+v; want accepted, found in %s, format %s, signer public key %s", c, source, format, trustedHint)
				}
			}
			// attestationOnly asserts the image is not signed: its one
			// artifact is an SLSA attestation, which pregate does not take
			// for a signature.
			attestationOnly := func(t *testing.T, ex pregateExplanation, source verify.Step, format verify.Format) {
				t.Helper()
				res := ex.Results[0]
				if ex.Allowed || res.Status != verify.NoSignatures {
					t.Fatalf("allowed=%v status=%s, want denied with %s: %s", ex.Allowed, res.Status, verify.NoSignatures, res.Detail)
				}
				if !strings.Contains(res.Detail, "an attestation is not a signature") {
					t.Errorf("detail %q does not say that an attestation is not a signature", res.Detail)
				}
				if len(res.Considered) != 1 {
					t.Fatalf("%d artifacts considered, want the attestation cosign wrote: %+v", len(res.Considered), res.Considered)
				}
				c := res.Considered[0]
				if c.Accepted || c.Kind != slsaProvenanceV1 || c.Source != source || c.Format != format ||
					!strings.Contains(c.Reason, "attestation") || !strings.Contains(c.Reason, "not a signature") {
					t.Errorf("considered %+v; want a rejected %s attestation found in %s, format %s, whose reason says it is an attestation, not a signature",
						c, slsaProvenanceV1, source, format)
				}
			}

			t.Run("A bundle signature", func(t *testing.T) {
				accepted(t, explain(t, bundleSigned, 0), bundleSource, verify.BundleFormat)
			})
			t.Run("B legacy signature", func(t *testing.T) {
				accepted(t, explain(t, legacySigned, 0), verify.SignatureTagStep, verify.SimpleSigningFormat)
			})
			t.Run("C bundle attestation only", func(t *testing.T) {
				attestationOnly(t, explain(t, bundleAttest, 1), bundleSource, verify.BundleFormat)
			})
			t.Run("D legacy attestation only", func(t *testing.T) {
				attestationOnly(t, explain(t, legacyAttest, 1), verify.AttestationTagStep, verify.DSSEFormat)
			})
			t.Run("E unsigned", func(t *testing.T) {
				ex := explain(t, unsigned, 1)
				res := ex.Results[0]
				if ex.Allowed || res.Status != verify.NoSignatures || len(res.Considered) != 0 {
					t.Errorf("allowed=%v status=%s considered=%+v, want denied with %s and nothing considered: %s",
						ex.Allowed, res.Status, res.Considered, verify.NoSignatures, res.Detail)
				}
			})
			// Attestation conditions: images that cosign signed and attested
			// (SLSA v1), in each format, against a TrustPolicy whose
			// provenance conditions hold or fail; explain shows each value.
			t.Run("H attestation conditions", func(t *testing.T) {
				pub, err := os.ReadFile(filepath.Join(work, "cosign.pub"))
				if err != nil {
					t.Fatal(err)
				}
				var key strings.Builder
				for _, line := range strings.Split(strings.TrimSpace(string(pub)), "\n") {
					key.WriteString("          " + line + "\n")
				}
				builder := `{expression: "predicate.runDetails.builder.id == 'https://pregate.dev/e2e/builder'"}`
				v2 := `{expression: "predicate.buildDefinition.buildType.endsWith('/v2')", message: "not a v2 build"}`
				policyFile := func(name, conditions string) string {
					writeTestFile(t, filepath.Join(work, name), fmt.Sprintf(`apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: release}
spec:
  images: [{glob: "%s/**"}]
  authorities:
    - name: release-key
      insecureIgnoreTlog: true
      key:
        data: |
%s  attestations:
    - name: provenance
      predicateType: %s
      conditions: %s
`, host, key.String(), slsaProvenanceV1, conditions))
					return name
				}
				holds := policyFile(fmt.Sprintf("conditions-hold-%v.yaml", referrersAPI), "["+builder+"]")
				fails := policyFile(fmt.Sprintf("conditions-fail-%v.yaml", referrersAPI), "["+builder+", "+v2+"]")
				for _, format := range []struct {
					name  string
					flags []string
				}{{"bundle", bundleFlags}, {"legacy", legacyFlags}} {
					ref := push("signed-attested-" + format.name)
					cosign.sign(t, "cosign.key", ref, format.flags)
					cosign.attest(t, "cosign.key", ref, format.flags)
					for _, tc := range []struct {
						policy string
						code   int
						values []string
					}{{holds, 0, []string{"true"}}, {fails, 1, []string{"true", "false"}}} {
						r := pregate.run(t, "explain", ref, "--policy", tc.policy, "-o", "json")
						if r.code != tc.code {
							t.Fatalf("%s, %s: exit %d, want %d:\n%s", format.name, tc.policy, r.code, tc.code, r)
						}
						var ex pregateExplanation
						decodeJSON(t, r, &ex)
						var values []string
						for _, c := range ex.Results[0].Considered {
							if c.Kind == slsaProvenanceV1 {
								for _, v := range c.Conditions {
									values = append(values, v.Value)
								}
							}
						}
						if strings.Join(values, ",") != strings.Join(tc.values, ",") {
							t.Errorf("%s, %s: condition values %q, want %q: %s", format.name, tc.policy, values, tc.values, ex.Results[0].Detail)
						}
						if tc.code == 1 && (ex.Results[0].Status != verify.AttestationMissing || !strings.Contains(ex.Results[0].Detail, "not a v2 build")) {
							t.Errorf("%s: status %s (%s); want AttestationMissing, saying why", format.name, ex.Results[0].Status, ex.Results[0].Detail)
						}
						text := pregate.run(t, "explain", ref, "--policy", tc.policy)
						if !strings.Contains(text.stdout, "Conditions of "+slsaProvenanceV1) {
							t.Errorf("%s: the text explanation lacks the conditions:\n%s", format.name, text)
						}
					}
				}
			})
			// anotherKey asserts the image is denied because its one
			// signature does not verify with the policy's key:
			// verify.Policy.Check calls that an invalid signature
			// (IdentityMismatch is for keyless signers).
			anotherKey := func(t *testing.T, ex pregateExplanation, source verify.Step, format verify.Format, signer, mismatch string) {
				t.Helper()
				res := ex.Results[0]
				if ex.Allowed || res.Status != verify.InvalidSignature {
					t.Fatalf("allowed=%v status=%s, want denied with %s: %s", ex.Allowed, res.Status, verify.InvalidSignature, res.Detail)
				}
				if len(res.Considered) != 1 {
					t.Fatalf("%d artifacts considered, want the signature cosign wrote: %+v", len(res.Considered), res.Considered)
				}
				c := res.Considered[0]
				if c.Accepted || c.Kind != verify.SignatureKind || c.Source != source || c.Format != format || c.Signer != signer {
					t.Errorf("considered %+v; want a rejected signature found in %s, format %s, signer %q", c, source, format, signer)
				}
				// The reason names the key authority whose key did not
				// verify the signature, and the detail repeats it.
				if !strings.Contains(c.Reason, `authority "flags"`) || !strings.Contains(c.Reason, "verify") || !strings.Contains(res.Detail, c.Reason) {
					t.Errorf("reason %q (detail %q) does not say that the signature did not verify with the key of authority \"flags\"", c.Reason, res.Detail)
				}
				if !strings.Contains(c.Reason, mismatch) {
					t.Errorf("reason %q does not say which key signed and which is trusted (%q)", c.Reason, mismatch)
				}
			}
			t.Run("F bundle signature, another key", func(t *testing.T) {
				// A bundle names its key by hint: the other key's.
				anotherKey(t, explain(t, otherKey, 1), bundleSource, verify.BundleFormat, "a key with hint "+otherHint,
					"signed with a key with hint "+otherHint+"; the authority trusts public key ")
			})
			t.Run("G legacy signature, another key", func(t *testing.T) {
				// A legacy signature does not name its key.
				anotherKey(t, explain(t, otherLegacy, 1), verify.SignatureTagStep, verify.SimpleSigningFormat, "a public key",
					"not signed by the trusted public key ")
			})

			t.Run("check", func(t *testing.T) {
				// A by tag (check resolves it), B and E by digest.
				deploy := func(images ...string) string {
					dir := t.TempDir()
					var containers strings.Builder
					for i, img := range images {
						fmt.Fprintf(&containers, "        - name: c%d\n          image: %s\n", i, img)
					}
					writeTestFile(t, filepath.Join(dir, "deployment.yaml"), `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: prod
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
`+containers.String())
					return dir
				}
				check := func(t *testing.T, dir string, wantCode int) pregateVerdict {
					t.Helper()
					r := pregate.run(t, append(append([]string{"check", dir}, policy...), "-o", "json")...)
					if r.code != wantCode {
						t.Fatalf("exit %d, want %d:\n%s", r.code, wantCode, r)
					}
					var v pregateVerdict
					decodeJSON(t, r, &v)
					if v.Kind != "Verdict" {
						t.Fatalf("kind %q, want a Verdict:\n%s", v.Kind, r)
					}
					t.Logf("%s (%s): %s", map[bool]string{true: "ALLOWED", false: "BLOCKED"}[v.Allowed], v.Reason, v.Message)
					return v
				}
				tagA := host + "/e2e/bundle-signed:v1"
				digestA := bundleSigned[strings.Index(bundleSigned, "@")+1:]

				v := check(t, deploy(tagA, legacySigned, unsigned), 1)
				if v.Allowed || v.Retry || v.Summary.Total != 3 || v.Summary.Verified != 2 || v.Summary.Denied != 1 {
					t.Errorf("allowed=%v retry=%v summary=%+v, want blocked with 2 of 3 images verified and 1 denied", v.Allowed, v.Retry, v.Summary)
				}
				got := map[string]gate.ImageVerdict{}
				for _, iv := range v.Images {
					got[iv.Ref] = iv
				}
				if iv := got[unsigned]; iv.Outcome != gate.Denied || iv.Status != verify.NoSignatures {
					t.Errorf("unsigned image: outcome %q status %q, want %s with %s", iv.Outcome, iv.Status, gate.Denied, verify.NoSignatures)
				}
				if iv := got[tagA]; iv.Outcome != gate.Passed || iv.Digest != digestA {
					t.Errorf("bundle-signed image by tag: outcome %q digest %q, want %s about %s", iv.Outcome, iv.Digest, gate.Passed, digestA)
				}
				if iv := got[legacySigned]; iv.Outcome != gate.Passed {
					t.Errorf("legacy-signed image: outcome %q, want %s", iv.Outcome, gate.Passed)
				}
				if !strings.Contains(v.Message, unsigned) {
					t.Errorf("message %q does not name the denied image %s", v.Message, unsigned)
				}

				v = check(t, deploy(tagA, legacySigned), 0)
				if !v.Allowed || v.Summary.Total != 2 || v.Summary.Verified != 2 {
					t.Errorf("allowed=%v summary=%+v, want allowed with both images verified", v.Allowed, v.Summary)
				}

				// The seed outage: the cluster's Kyverno policy verifies the
				// images with the trusted key under the default type: Cosign,
				// which reads only legacy .sig tags. Both images are validly
				// signed, and pregate alone allows them; with the policy, the
				// bundle-signed one is predicted denied, and the rule can never
				// pass for it. type: SigstoreBundle reads the bundle instead.
				pub, err := os.ReadFile(filepath.Join(work, "cosign.pub"))
				if err != nil {
					t.Fatal(err)
				}
				kyverno := func(typ string) string {
					file := "kyverno-" + strings.ToLower(typ) + ".yaml"
					writeTestFile(t, filepath.Join(work, file), `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release-key
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["`+host+`/e2e/*"]
          type: `+typ+`
          attestors:
            - entries:
                - keys:
                    rekor: {ignoreTlog: true}
                    publicKeys: |
`+indentLines(string(pub), "                      "))
					return file
				}
				admitted := func(t *testing.T, v pregateVerdict) map[string]gate.Admission {
					t.Helper()
					out := map[string]gate.Admission{}
					for _, a := range v.Admission {
						out[a.Image] = a
					}
					return out
				}
				withPolicy := append([]string(nil), policy...)
				policy = append(withPolicy, "--admission-policy", kyverno("Cosign"))
				v = check(t, deploy(tagA, legacySigned), 1)
				adm := admitted(t, v)
				if a := adm[tagA]; a.Outcome != gate.AdmissionDeny || !a.NeverPasses ||
					!strings.Contains(a.Exists, "cosign v3 Sigstore bundle as an OCI referrer") || !strings.Contains(a.Fix, "type: SigstoreBundle") {
					t.Errorf("bundle-signed image under type: Cosign: %+v; want a denial that can never pass, naming the bundle and the fix", a)
				}
				if a := adm[legacySigned]; a.Outcome != gate.AdmissionAdmit {
					t.Errorf("legacy-signed image under type: Cosign: %+v; want admitted", a)
				}
				if v.Allowed || v.Reason != gate.AdmissionDeniedReason || v.Summary.Verified != 2 || !strings.Contains(v.Message, tagA) {
					t.Errorf("allowed=%v reason=%s summary=%+v message %q; want blocked by admission, naming %s, with both images verified by pregate",
						v.Allowed, v.Reason, v.Summary, v.Message, tagA)
				}
				// explain says the same of the one image.
				r := pregate.run(t, append(append([]string{"explain", tagA}, policy...), "-o", "json")...)
				var ex pregateExplanation
				decodeJSON(t, r, &ex)
				if r.code != 1 || ex.Allowed || len(ex.Admission) != 1 || !ex.Admission[0].NeverPasses {
					t.Errorf("explain with the admission policy: exit %d, allowed %v, admission %+v; want denied by a rule that can never pass", r.code, ex.Allowed, ex.Admission)
				}
				policy = append(withPolicy, "--admission-policy", kyverno("SigstoreBundle"))
				v = check(t, deploy(tagA, legacySigned), 1)
				adm = admitted(t, v)
				if a := adm[tagA]; a.Outcome != gate.AdmissionAdmit {
					t.Errorf("bundle-signed image under type: SigstoreBundle: %+v; want admitted", a)
				}
				if a := adm[legacySigned]; a.Outcome != gate.AdmissionDeny || !a.NeverPasses {
					t.Errorf("legacy-signed image under type: SigstoreBundle: %+v; want a denial that can never pass", a)
				}
				// Kyverno 1.18's SigstoreBundle verifies no key attestor
				// (kyverno#15239): the same policy can never pass there.
				policy = append(policy, "--engine", "kyverno@1.18")
				v = check(t, deploy(tagA), 1)
				adm = admitted(t, v)
				if a := adm[tagA]; a.Outcome != gate.AdmissionDeny || !a.NeverPasses || a.Engine != "kyverno@1.18" ||
					a.Quirk != admission.QuirkBundleNoKeys || !strings.Contains(a.Fix, "Kyverno 1.19") {
					t.Errorf("bundle-signed image under type: SigstoreBundle on Kyverno 1.18: %+v; want a denial that can never pass, naming the quirk", a)
				}

				// An ImageValidatingPolicy with the same key reads the bundle:
				// Kyverno 1.18 admits it; 1.19.0 fails key attestors over
				// bundle-only images (kyverno#17363).
				keyData := indentLines(string(pub), "            ")
				ivpolFile := filepath.Join(work, "ivpol.yaml")
				writeTestFile(t, ivpolFile, `apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: first-party-signed}
spec:
  validationActions: [Deny]
  matchImageReferences: [{glob: "`+host+`/e2e/*"}]
  attestors:
    - name: release
      cosign:
        ctlog: {insecureIgnoreTlog: true}
        key:
          data: |
`+keyData+`  validations:
    - expression: images.containers.all(i, verifyImageSignatures(i, [attestors.release]) > 0)
      message: not signed with the release key
`)
				policy = append(withPolicy, "--admission-policy", ivpolFile, "--engine", "kyverno@1.18")
				v = check(t, deploy(tagA, legacySigned), 0)
				adm = admitted(t, v)
				if a, b := adm[tagA], adm[legacySigned]; a.Outcome != gate.AdmissionAdmit || b.Outcome != gate.AdmissionAdmit {
					t.Errorf("ImageValidatingPolicy on Kyverno 1.18: %+v, %+v; want both images admitted", a, b)
				}
				policy = append(withPolicy, "--admission-policy", ivpolFile, "--engine", "kyverno@1.19")
				v = check(t, deploy(tagA, legacySigned), 1)
				adm = admitted(t, v)
				if a := adm[tagA]; a.Outcome != gate.AdmissionDeny || !a.NeverPasses || a.Quirk != admission.QuirkIVPOLKeyBundle {
					t.Errorf("ImageValidatingPolicy on Kyverno 1.19 over the bundle-signed image: %+v; want a denial that can never pass (kyverno#17363)", a)
				}
				if a := adm[legacySigned]; a.Outcome != gate.AdmissionAdmit {
					t.Errorf("ImageValidatingPolicy on Kyverno 1.19 over the legacy-signed image: %+v; want admitted", a)
				}

				// policy-controller with the key reads the legacy format
				// only: the bundle-signed image can never pass, and the
				// bundle format takes no key.
				cipFile := filepath.Join(work, "cip.yaml")
				writeTestFile(t, cipFile, `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: first-party-signed}
spec:
  images: [{glob: "`+host+`/e2e/**"}]
  authorities:
    - name: release
      ctlog: {}
      key:
        data: |
`+indentLines(string(pub), "          "))
				policy = append(withPolicy, "--admission-policy", cipFile)
				v = check(t, deploy(tagA, legacySigned), 1)
				adm = admitted(t, v)
				if a := adm[tagA]; a.Outcome != gate.AdmissionDeny || !a.NeverPasses || a.Engine != "policy-controller@0.15" ||
					!strings.Contains(a.Fix, "--new-bundle-format=false") {
					t.Errorf("ClusterImagePolicy over the bundle-signed image: %+v; want a denial that can never pass, with the legacy-format fix", a)
				}
				if a := adm[legacySigned]; a.Outcome != gate.AdmissionAdmit {
					t.Errorf("ClusterImagePolicy over the legacy-signed image: %+v; want admitted", a)
				}
				policy = withPolicy
			})

			// cosign's own verdicts, as a cross-check.
			t.Run("cosign verify", func(t *testing.T) {
				for _, tc := range []struct {
					name   string
					ref    string
					accept bool
				}{
					{"A bundle signature", bundleSigned, true},
					{"B legacy signature", legacySigned, true},
					// research/sigstore-formats.md §1.5: cosign verify
					// accepts a bundle of any predicate type, so an image
					// that only carries an SLSA attestation passes it.
					// pregate, by design, does not take an attestation for
					// a signature (C above).
					{"C bundle attestation only", bundleAttest, true},
					{"D legacy attestation only", legacyAttest, false},
					{"E unsigned", unsigned, false},
					{"F bundle signature, another key", otherKey, false},
					{"G legacy signature, another key", otherLegacy, false},
				} {
					r := cosign.verify(t, tc.ref)
					if (r.code == 0) != tc.accept {
						t.Errorf("%s: cosign verify exit %d, want accepted=%v:\n%s", tc.name, r.code, tc.accept, r)
						continue
					}
					t.Logf("%s: cosign verify exit %d: %s", tc.name, r.code, lastLineOf(r.stderr))
				}
			})
		})
	}
}

func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// indentLines prefixes every line of s.
func indentLines(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
