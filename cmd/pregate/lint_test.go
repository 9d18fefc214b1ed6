package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate/pipeline"
)

// TestPolicyLint runs `pregate policy lint` over policies of each engine,
// each with one thing wrong, and checks every finding, the exit code and
// the JSON report.
func TestPolicyLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kyverno := write("kyverno.yaml", `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["ghcr.io/acme/*"]
          attestors: [{entries: [{keyless: {issuer: https://token.actions.githubusercontent.com, subjectRegExp: 'https://github\.com/acme/'}}]}]
          attestations: [{type: slsa.dev/provenance/v0.2}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
`)
	ivpol := write("ivpol.yaml", `apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: two-workflows}
spec:
  matchImageReferences: [{glob: "ghcr.io/acme/*"}]
  attestors:
    - name: release
      cosign:
        keyless:
          identities:
            - {issuer: https://token.actions.githubusercontent.com, subject: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main}
            - {issuer: https://token.actions.githubusercontent.com, subject: https://github.com/acme/app/.github/workflows/hotfix.yml@refs/heads/main}
  validations:
    - expression: images.containers.all(i, verifyImageSignatures(i, [attestors.release]) > 0)
`)
	pc := write("pc.yaml", `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: tagged}
spec:
  images: [{glob: "ghcr.io/acme/app:1.0"}]
  authorities:
    - signatureFormat: bundle
      keyless: {identities: [{issuer: https://token.actions.githubusercontent.com, subject: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main}]}
`)
	broken := write("broken.yaml", `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: typo}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages: [{type: Cosgin, attestors: [{entries: [{keyless: {issuer: i, subject: s}}]}]}]
---
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: first-party}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities: [{name: github, keyless: {identities: [{issuer: https://token.actions.githubusercontent.com, subjectRegExp: "^https://github.com/acme/.*$"}]}}]
`)

	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"policy", "lint", kyverno, ivpol, pc, broken}, &stdout, &stderr)
	if code != exitBlocked {
		t.Errorf("exit %d, want %d (errors found); stderr %q", code, exitBlocked, stderr.String())
	}
	text := stdout.String()
	for _, want := range []string{
		kyverno + ": ClusterPolicy/first-party (kyverno@1.19)",
		"warning [legacy-only] ClusterPolicy/first-party rule release: type: Cosign (the default) reads only cosign's legacy .sig and .att tags",
		`warning [unanchored-regexp] ClusterPolicy/first-party rule release: regexp "https://github\\.com/acme/" matches anywhere in the value: "https://attacker.example/?https://github.com/acme//../attacker" matches it too`,
		`fix: anchor it: ^https://github\.com/acme/$`,
		`warning [predicate-type] ClusterPolicy/first-party rule release: attestation type "slsa.dev/provenance/v0.2" is not a URI`,
		"info [not-a-policy] " + kyverno + " document 2: v1 ConfigMap is not a policy pregate reads; left out",
		`error [bundle-path-identities] ImageValidatingPolicy/two-workflows rule validations: attestor "release" lists 2 keyless identities`,
		"error [bundle-no-signatures] ClusterImagePolicy/tagged rule authorities[0]: with signatureFormat: bundle, an authority that lists no attestations fails every image (policy-controller@0.15:",
		`error [glob-matches-nothing] ClusterImagePolicy/tagged rule authorities[0]: glob "ghcr.io/acme/app:1.0" matches no image`,
		"fix: match the repository with a wildcard: ghcr.io/acme/app*",
		`error [unreadable] ` + broken + ` document 1 (ClusterPolicy): ` + broken + `: ClusterPolicy typo: rules[0].verifyImages[0].type: "Cosgin" is not Cosign, SigstoreBundle or Notary`,
		broken + ": TrustPolicy/first-party (pregate)",
		"signers:      release: keyless https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main (https://token.actions.githubusercontent.com), https://github.com/acme/app/.github/workflows/hotfix.yml@refs/heads/main",
		"4 policies, 4 errors, 3 warnings",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("lint report lacks %q:\n%s", want, text)
		}
	}

	// With only the warnings, it passes; JSON says the same.
	stdout.Reset()
	if code := run(t.Context(), []string{"policy", "lint", kyverno, "-o", "json", "--engine", "kyverno@1.18"}, &stdout, &stderr); code != exitOK {
		t.Errorf("warnings only: exit %d, want %d", code, exitOK)
	}
	var res pipeline.LintResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, stdout.String())
	}
	if len(res.Policies) != 1 || res.Policies[0].Engine != "kyverno@1.18" || len(res.Findings) != 4 {
		t.Errorf("JSON report: %+v; want one policy read for kyverno@1.18 and 4 findings", res)
	}
	for _, f := range res.Findings {
		if f.Check == "legacy-only" && f.Quirk != admission.QuirkCosignLegacyOnly {
			t.Errorf("legacy-only finding names quirk %q", f.Quirk)
		}
	}

	// GitHub annotations on the policy's file, for a merge-queue check.
	stdout.Reset()
	if code := run(t.Context(), []string{"policy", "lint", pc, "-o", "github"}, &stdout, &stderr); code != exitBlocked {
		t.Errorf("github: exit %d, want %d", code, exitBlocked)
	}
	if want := "::error file=" + pc + ",title=pregate policy lint%3A glob-matches-nothing in ClusterImagePolicy/tagged rule authorities[0]::glob \"ghcr.io/acme/app:1.0\" matches no image"; !strings.Contains(stdout.String(), want) {
		t.Errorf("github report lacks %q:\n%s", want, stdout.String())
	}

	if code := run(t.Context(), []string{"policy", "lint", filepath.Join(dir, "missing.yaml")}, &stdout, &stderr); code != exitUndecided {
		t.Errorf("a missing file: exit %d, want %d", code, exitUndecided)
	}
}

// TestPolicyLintRealPolicies: every real policy in the test data (the
// Kyverno policy library's image verification policies, policy-
// controller's examples and e2e policies; config/admission/testdata/ORIGIN
// and library/ORIGIN) is read and listed, or refused with its reason:
// policy-controller's TSA example is a template whose certChain
// placeholder is not base64, which the API server refuses too. What
// pregate does not evaluate is named.
func TestPolicyLintRealPolicies(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../config/admission/testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("test data: %v, %d files", err, len(files))
	}
	library, err := filepath.Glob("../../config/admission/testdata/library/*.yaml")
	if err != nil || len(library) < 30 {
		t.Fatalf("library test data: %v, %d files", err, len(library))
	}
	files = append(files, library...)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"policy", "lint", "-o", "json"}, files...), &stdout, &stderr)
	var res pipeline.LintResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("exit %d, JSON report: %v\n%s", code, err, stderr.String())
	}
	read := map[string]bool{}
	for _, p := range res.Policies {
		read[p.File] = true
	}
	refused := map[string]string{"../../config/admission/testdata/library/pc-with-tsa.yaml": "timestampAuthorities.0.certChain of type []uint8: illegal base64 data"}
	for _, f := range res.Findings {
		if f.Check != "unreadable" {
			continue
		}
		if want, ok := refused[f.File]; !ok || !strings.Contains(f.Message, want) {
			t.Errorf("refused: %+v", f)
		}
		read[f.File] = true
	}
	for _, f := range files {
		if !read[f] {
			t.Errorf("%s: no policy read, none refused", f)
		}
	}
	// policy-controller's own "valid policy" fixtures hold globs its
	// webhook never matches (image*, images.*): errors, named.
	nothing := 0
	for _, f := range res.Findings {
		if f.Check == "glob-matches-nothing" {
			nothing++
			if !strings.Contains(f.Message, `"image*"`) && !strings.Contains(f.Message, `"images.*"`) && !strings.Contains(f.Message, `:*"`) {
				t.Errorf("unexpected glob finding: %+v", f)
			}
		}
	}
	if nothing == 0 || code != exitBlocked {
		t.Errorf("exit %d with %d glob findings; want the fixtures' globs found, exit %d", code, nothing, exitBlocked)
	}
}
