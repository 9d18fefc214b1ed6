package config

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const (
	condSigner = "https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main"
	condIssuer = "https://token.actions.githubusercontent.com"
)

// Predicates as their producers write them (trimmed): a GitHub artifact
// attestation's SLSA v1 provenance, the SLSA generator's v0.2, an SPDX
// and a CycloneDX SBOM, and cosign's vuln predicate of a Trivy scan.
var (
	slsaV1 = map[string]any{
		"buildDefinition": map[string]any{
			"buildType": "https://actions.github.io/buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{
				"ref": "refs/heads/main", "repository": "https://github.com/acme/web", "path": ".github/workflows/release.yml"}},
		},
		"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner/github-hosted"}},
	}
	slsaV02 = map[string]any{
		"builder":   map[string]any{"id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.1.0"},
		"buildType": "https://github.com/slsa-framework/slsa-github-generator/container@v1",
		"invocation": map[string]any{"configSource": map[string]any{
			"uri": "git+https://github.com/acme/web@refs/heads/main", "entryPoint": ".github/workflows/release.yml"}},
	}
	spdx = map[string]any{"spdxVersion": "SPDX-2.3", "name": "web", "packages": []any{
		map[string]any{"name": "golang.org/x/net", "versionInfo": "v0.38.0", "licenseConcluded": "BSD-3-Clause"},
		map[string]any{"name": "github.com/acme/lib", "versionInfo": "v1.2.0", "licenseConcluded": "Apache-2.0"},
	}}
	cyclonedx = map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []any{
		map[string]any{"name": "log4j-core", "version": "2.17.1", "licenses": []any{map[string]any{"license": map[string]any{"id": "Apache-2.0"}}}},
	}}
	vuln = func(finished time.Time, severities ...string) map[string]any {
		var vulns []any
		for i, s := range severities {
			vulns = append(vulns, map[string]any{"VulnerabilityID": fmt.Sprintf("CVE-2026-%04d", i), "Severity": s})
		}
		return map[string]any{
			"scanner":  map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.58.1", "version": "0.58.1", "result": map[string]any{"Results": []any{map[string]any{"Vulnerabilities": vulns}}}},
			"metadata": map[string]any{"scanStartedOn": finished.Add(-time.Minute).Format(time.RFC3339), "scanFinishedOn": finished.Format(time.RFC3339)},
		}
	}
)

// TestAttestationConditions: a TrustPolicy's attestation conditions in CEL
// over attestations the in-process Sigstore made, of each kind users
// write them for: provenance (v1 and v0.2), SBOMs (a package, a license),
// a vulnerability scan (a severity threshold, a scan age). Each
// condition's value is recorded on the attestation considered.
func TestAttestationConditions(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("web")))
	const (
		slsaV1Type    = "https://slsa.dev/provenance/v1"
		slsaV02Type   = "https://slsa.dev/provenance/v0.2"
		spdxType      = "https://spdx.dev/Document"
		cyclonedxType = "https://cyclonedx.org/bom"
		vulnType      = "https://cosign.sigstore.dev/attestation/vuln/v1"
	)
	now := time.Now()
	for name, tc := range map[string]struct {
		predicateType string
		predicate     any
		conditions    string // YAML list
		holds         bool
		values        []string // each condition's value, in order
	}{
		"SLSA v1, main": {slsaV1Type, slsaV1, `[{expression: "predicate.buildDefinition.externalParameters.workflow.ref == 'refs/heads/main'"},
          {expression: "predicate.runDetails.builder.id.startsWith('https://github.com/actions/runner/')"}]`, true, []string{"true", "true"}},
		"SLSA v1, a tag wanted": {slsaV1Type, slsaV1, `[{expression: "predicate.buildDefinition.externalParameters.workflow.ref.startsWith('refs/tags/')", message: "not built from a tag"}]`,
			false, []string{"false"}},
		"SLSA v0.2": {slsaV02Type, slsaV02, `[{expression: "predicate.builder.id.matches('^https://github.com/slsa-framework/slsa-github-generator/.+@refs/tags/v2\\\\.')"},
          {expression: "predicate.invocation.configSource.uri.endsWith('@refs/heads/main')"}]`, true, []string{"true", "true"}},
		"SPDX, no GPL": {spdxType, spdx, `[{expression: "!predicate.packages.exists(p, p.licenseConcluded.contains('GPL'))"},
          {expression: "predicate.packages.exists(p, p.name == 'golang.org/x/net' && semver(p.versionInfo.substring(1)).isGreaterThan(semver('0.36.0')))"}]`,
			true, []string{"true", "true"}},
		"CycloneDX, log4j too old": {cyclonedxType, cyclonedx, `[{expression: "!predicate.components.exists(c, c.name == 'log4j-core' && c.version.startsWith('2.17.'))", message: "log4j-core 2.17 is banned"}]`,
			false, []string{"false"}},
		"vuln, no critical, fresh": {vulnType, vuln(now.Add(-time.Hour), "LOW", "HIGH"), `[{expression: "!predicate.scanner.result.Results.exists(r, r.Vulnerabilities.exists(v, v.Severity == 'CRITICAL'))"},
          {expression: "now - timestamp(predicate.metadata.scanFinishedOn) < duration('168h')"}]`, true, []string{"true", "true"}},
		"vuln, a critical": {vulnType, vuln(now.Add(-time.Hour), "CRITICAL"), `[{expression: "!predicate.scanner.result.Results.exists(r, r.Vulnerabilities.exists(v, v.Severity == 'CRITICAL'))"}]`,
			false, []string{"false"}},
		"vuln, a stale scan": {vulnType, vuln(now.Add(-30 * 24 * time.Hour)), `[{expression: "now - timestamp(predicate.metadata.scanFinishedOn) < duration('168h')"}]`,
			false, []string{"false"}},
		"a field the predicate lacks": {slsaV1Type, slsaV1, `[{expression: "predicate.invocation.configSource.uri != ''"}]`,
			false, []string{"error: no such key: invocation"}},
		"numbers as JSON gives them": {cyclonedxType, map[string]any{"components": []any{}, "version": 3}, `[{expression: "predicate.version > 2 && size(predicate.components) == 0"}]`,
			true, []string{"true"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			set, err := Load("policy.yaml", fmt.Appendf(nil, `apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: first-party}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities:
    - name: release
      insecureIgnoreSCT: true
      keyless: {identities: [{issuer: %s, subject: %s}]}
  attestations:
    - name: checked
      predicateType: %s
      conditions: %s
`, condIssuer, condSigner, tc.predicateType, tc.conditions))
			if err != nil {
				t.Fatal(err)
			}
			c, err := set.Compile(func(*v1alpha1.TrustRoot) (root.TrustedMaterial, error) { return ss.Material(), nil })
			if err != nil {
				t.Fatal(err)
			}
			bundle := func(content []byte, fill string) verify.Artifact {
				return verify.Artifact{Source: verify.ReferrersStep, Manifest: "sha256:" + strings.Repeat(fill, 64), Format: verify.BundleFormat,
					MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: content}
			}
			res := c.Verify[0].Check(verify.Discovery{Subject: verify.Subject{Ref: "ghcr.io/acme/web:1", Repository: "ghcr.io/acme/web", Digest: digest},
				Artifacts: []verify.Artifact{bundle(ss.MustSignImage(t, condSigner, condIssuer, digest), "a"),
					bundle(ss.MustAttestImage(t, condSigner, condIssuer, digest, tc.predicateType, tc.predicate), "b")},
				Lookups: []verify.Lookup{{Step: verify.ReferrersStep, Status: 200, Found: 2}}})
			if got := res.Status == verify.Verified; got != tc.holds {
				t.Errorf("status %s (%s); want verified %v", res.Status, res.Detail, tc.holds)
			}
			var values []string
			for _, cons := range res.Considered {
				if cons.Kind == tc.predicateType {
					for _, v := range cons.Conditions {
						values = append(values, v.Value)
					}
					if !tc.holds && !strings.Contains(cons.Reason, "its conditions do not hold") {
						t.Errorf("reason %q; want the conditions named", cons.Reason)
					}
				}
			}
			if strings.Join(values, "|") != strings.Join(tc.values, "|") {
				t.Errorf("condition values %q, want %q", values, tc.values)
			}
		})
	}
}

// TestAttestationConditions_invalid: a condition that does not compile is
// a policy error at load time, naming it.
func TestAttestationConditions_invalid(t *testing.T) {
	t.Parallel()
	for cond, want := range map[string]string{
		`{expression: "predicate.ref =="}`:            "spec.attestations[0].conditions[0].expression",
		`{expression: "nosuch(predicate)"}`:           "undeclared reference to 'nosuch'",
		`{expression: "size(predicate.packages)"}`:    "not a bool",
		`{expression: "object.metadata.name == 'x'"}`: "undeclared reference to 'object'",
	} {
		_, err := Load("policy.yaml", fmt.Appendf(nil, `apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: p}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities: [{name: release, keyless: {identities: [{issuer: %s, subject: %s}]}}]
  attestations: [{name: provenance, predicateType: "https://slsa.dev/provenance/v1", conditions: [%s]}]
`, condIssuer, condSigner, cond))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Load error = %v, want %q", cond, err, want)
		}
	}
}

// TestAttestationConditions_bounded: a condition that would run too long
// is stopped, and does not hold.
func TestAttestationConditions_bounded(t *testing.T) { //nolint:paralleltest // it sets conditionTimeout
	defer func(d time.Duration) { conditionTimeout = d }(conditionTimeout)
	conditionTimeout = 20 * time.Millisecond
	conds, err := compileConditions([]v1alpha1.AttestationCondition{{Expression: "predicate.n.all(a, predicate.n.all(b, a + b >= 0))"}})
	if err != nil {
		t.Fatal(err)
	}
	n := make([]int, 5000)
	statement, _ := json.Marshal(map[string]any{"predicate": map[string]any{"n": n}})
	start := time.Now()
	values, err := conditionCheck(conds, time.Now)(statement)
	if err == nil || len(values) != 1 || values[0].Holds || !strings.Contains(values[0].Value, "interrupted") {
		t.Errorf("conditions = %+v, %v; want stopped, not holding", values, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopped after %s", took)
	}
}

// BenchmarkAttestationConditions_5MBSBOM evaluates two conditions (a
// banned package, a license rule) over an SPDX SBOM of about 5 MB, as
// each verified attestation is: decoding the statement and walking every
// package.
func BenchmarkAttestationConditions_5MBSBOM(b *testing.B) {
	var packages []any
	for i := 0; ; i++ {
		packages = append(packages, map[string]any{
			"SPDXID": fmt.Sprintf("SPDXRef-Package-%d", i), "name": fmt.Sprintf("github.com/acme/module-%d", i),
			"versionInfo": fmt.Sprintf("v1.%d.%d", i%40, i%7), "licenseConcluded": []string{"MIT", "Apache-2.0", "BSD-3-Clause"}[i%3],
			"downloadLocation": fmt.Sprintf("https://proxy.golang.org/github.com/acme/module-%d/@v/v1.%d.%d.zip", i, i%40, i%7),
			"externalRefs": []any{map[string]any{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
				"referenceLocator": fmt.Sprintf("pkg:golang/github.com/acme/module-%d@v1.%d.%d", i, i%40, i%7)}},
		})
		if i%1000 == 999 {
			if st, _ := json.Marshal(map[string]any{"predicate": map[string]any{"packages": packages}}); len(st) > 5<<20 {
				break
			}
		}
	}
	statement, err := json.Marshal(map[string]any{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://spdx.dev/Document",
		"subject":   []any{map[string]any{"name": "ghcr.io/acme/web", "digest": map[string]any{"sha256": strings.Repeat("a", 64)}}},
		"predicate": map[string]any{"spdxVersion": "SPDX-2.3", "packages": packages}})
	if err != nil {
		b.Fatal(err)
	}
	conds, err := compileConditions([]v1alpha1.AttestationCondition{
		{Expression: "!predicate.packages.exists(p, p.name == 'github.com/acme/banned')"},
		{Expression: "predicate.packages.all(p, p.licenseConcluded in ['MIT', 'Apache-2.0', 'BSD-3-Clause'])"},
	})
	if err != nil {
		b.Fatal(err)
	}
	check := conditionCheck(conds, time.Now)
	b.SetBytes(int64(len(statement)))
	b.ReportMetric(float64(len(packages)), "packages")
	b.ResetTimer()
	for b.Loop() {
		values, err := check(statement)
		if err != nil || len(values) != 2 {
			b.Fatalf("conditions: %v, %v", values, err)
		}
	}
}
