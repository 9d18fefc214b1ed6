package admission

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

func readFile(t *testing.T, name string) *Policy {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	p, ok, err := Read(name, obj)
	if err != nil || !ok {
		t.Fatalf("Read(%s) = %v, %v", name, ok, err)
	}
	return p
}

// TestRead reads real policies from the Kyverno policy library and
// policy-controller's examples (testdata/ORIGIN) and the outage's shape.
func TestRead(t *testing.T) {
	t.Parallel()
	type ruleSummary struct {
		ID, Format, Action string
		Images             []string
		Signers            []string
		Attestations       []string
		Unsupported        int
	}
	summarize := func(p *Policy) []ruleSummary {
		var out []ruleSummary
		for _, r := range p.Rules {
			s := ruleSummary{ID: r.ID(), Format: string(r.Format), Action: string(r.Action), Images: r.Images, Unsupported: len(r.Unsupported)}
			for _, a := range r.Authorities {
				switch {
				case a.Keyless != nil:
					for _, id := range a.Keyless.Identities {
						s.Signers = append(s.Signers, "keyless "+id.Issuer+id.IssuerRegExp+" "+id.Subject+id.SubjectRegExp)
					}
				case a.Key != nil:
					s.Signers = append(s.Signers, "key")
				}
			}
			for _, at := range r.Attestations {
				s.Attestations = append(s.Attestations, at.PredicateType)
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		file string
		want []ruleSummary
	}{
		{"kyverno-verify-image.yaml", []ruleSummary{{ID: "ClusterPolicy/verify-image rule verify-image", Format: "Cosign", Action: "Enforce",
			Images: []string{"ghcr.io/kyverno/test-verify-image*"}, Signers: []string{"key"}}}},
		{"kyverno-verify-image-slsa.yaml", []ruleSummary{{ID: "ClusterPolicy/verify-slsa-provenance-keyless rule check-slsa-keyless", Format: "Cosign", Action: "Audit",
			Images: []string{"myreg.org/path/repo:*"},
			Signers: []string{"keyless https://token.actions.githubusercontent.com " +
				`^https://github\.com/slsa-framework/slsa-github-generator/\.github/workflows/generator_container_slsa3\.yml@refs/tags/v.*$`},
			Attestations: []string{"https://slsa.dev/provenance/v0.2"}}}},
		{"kyverno-verify-image-ivpol.yaml", []ruleSummary{{ID: "ImageValidatingPolicy/verify-image-ivpol rule validations", Format: "ImageValidatingPolicy",
			Action: "Enforce", Images: []string{"ghcr.io/kyverno/test-verify-image*"}, Unsupported: 1}}},
		{"outage-cosign-type.yaml", []ruleSummary{{ID: "ClusterPolicy/first-party-signed rule release-workflow", Format: "Cosign", Action: "Enforce",
			Images:  []string{"ghcr.io/acme/*"},
			Signers: []string{`keyless https://token.actions.githubusercontent.com ^https://github\.com/acme/.*/\.github/workflows/release\.yml@refs/heads/main$`}}}},
		{"pc-signed-by-github-actions.yaml", []ruleSummary{{ID: "ClusterImagePolicy/image-is-signed-by-github-actions rule authorities[0]", Format: "legacy", Action: "Enforce",
			Images:  []string{"**"},
			Signers: []string{"keyless https://token.actions.githubusercontent.com https://github.com/sigstore/policy-controller/.github/workflows/policy-tester-examples.yml@refs/heads/main"}}}},
		{"pc-keyless-attestation-sbom-spdxjson.yaml", []ruleSummary{{ID: "ClusterImagePolicy/keyless-attestation-sbom-spdxjson rule keyless", Format: "legacy", Action: "Enforce",
			Images:       []string{"**"},
			Signers:      []string{"keyless https://token.actions.githubusercontent.com https://github.com/sigstore/policy-controller/.github/workflows/policy-tester-examples.yml@refs/heads/main"},
			Attestations: []string{"https://spdx.dev/Document"}, Unsupported: 1}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			p := readFile(t, tc.file)
			if diff := cmp.Diff(tc.want, summarize(p)); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
			for _, r := range p.Rules {
				if len(r.Unsupported) > 0 {
					continue // never checked: predicted Undecided
				}
				engine, own := r.Policies(Newest(r.Engine), verifytest.NewSigstore(t).Material())
				for _, vp := range []*verify.Policy{engine, own} {
					if err := vp.Validate(); err != nil {
						t.Errorf("%s: %v", r.ID(), err)
					}
				}
			}
		})
	}
}

// TestReadUnsupportedIsNamed: what a rule asks that pregate does not
// evaluate is named, so the rule is never taken to pass.
func TestReadUnsupportedIsNamed(t *testing.T) {
	t.Parallel()
	p := readFile(t, "pc-keyless-attestation-sbom-spdxjson.yaml")
	if got := strings.Join(p.Rules[0].Unsupported, "; "); !strings.Contains(got, "unsupported policy language (CUE or Rego)") {
		t.Errorf("unsupported %q: want the CUE policy named", got)
	}
	// The SLSA sample's regex_match condition is evaluated; a function
	// of Kyverno's own that pregate does not give is named.
	slsa := readFile(t, "kyverno-verify-image-slsa.yaml")
	if u := slsa.Rules[0].Unsupported; len(u) > 0 || slsa.Rules[0].Attestations[0].Condition == nil {
		t.Errorf("SLSA sample: unsupported %q, want its conditions evaluated", u)
	}
	var obj map[string]any
	doc := strings.Replace(mustRead(t, "testdata/kyverno-verify-image-slsa.yaml"), "regex_match(", "semver_compare(", 1)
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	other, _, err := Read("slsa.yaml", obj)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(other.Rules[0].Unsupported, "; "); !strings.Contains(got, "conditions: the JMESPath function semver_compare (Kyverno's own)") {
		t.Errorf("unsupported %q: want the function named", got)
	}
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadAsTheEngineDoes: what the engine accepts without a word is read
// as the engine reads it, however odd.
func TestReadAsTheEngineDoes(t *testing.T) {
	t.Parallel()
	read := func(doc string) *Policy { t.Helper(); return readDoc(t, doc) }
	// policy-controller takes any signatureFormat but "bundle" for legacy.
	p := read(`{apiVersion: policy.sigstore.dev/v1beta1, kind: ClusterImagePolicy, metadata: {name: p}, spec: {images: [{glob: "**"}], authorities: [{signatureFormat: Bundle, keyless: {identities: [{issuer: i, subject: s}]}}]}}`)
	if f := p.Rules[0].Format; f != LegacyFormat {
		t.Errorf("signatureFormat: Bundle read as %s, want %s", f, LegacyFormat)
	}
	// Kyverno's SigstoreBundle ignores an attestor's own roots; Cosign
	// takes them, for all its attestors or none.
	const roots = `{keyless: {issuer: i, subject: s, roots: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", rekor: {pubkey: "rekor key"}}}`
	kyverno := func(typ, entries string) string {
		return `{apiVersion: kyverno.io/v1, kind: ClusterPolicy, metadata: {name: p}, spec: {rules: [{name: r, match: {any: [{resources: {kinds: [Pod]}}]}, verifyImages: [{type: ` +
			typ + `, imageReferences: ["*"], attestors: [{count: 1, entries: [` + entries + `]}]}]}]}}`
	}
	if r := read(kyverno("SigstoreBundle", roots)).Rules[0]; len(r.Unsupported) != 0 || !r.Trust.IsZero() {
		t.Errorf("SigstoreBundle with roots: unsupported %q, trust %+v; want neither (the engine ignores them)", r.Unsupported, r.Trust)
	}
	if r := read(kyverno("Cosign", roots)).Rules[0]; len(r.Unsupported) != 0 || !strings.Contains(r.Trust.Roots, "MIIB") || r.Trust.RekorKey != "rekor key" {
		t.Errorf("Cosign with roots: unsupported %q, trust %+v; want the roots and the Rekor key", r.Unsupported, r.Trust)
	}
	mixed := roots + `, {keyless: {issuer: i, subject: t}}`
	if u := strings.Join(read(kyverno("Cosign", mixed)).Rules[0].Unsupported, "; "); !strings.Contains(u, "different roots or log keys") {
		t.Errorf("attestors with and without roots: unsupported %q", u)
	}
}

// TestReadErrors: a malformed policy is an error naming the file, the
// policy and the field.
func TestReadErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		obj  string
		want string
	}{
		"bad action": {`{apiVersion: kyverno.io/v1, kind: ClusterPolicy, metadata: {name: p}, spec: {validationFailureAction: Block, rules: []}}`,
			`p.yaml: ClusterPolicy p: spec.validationFailureAction: "Block" is not Enforce or Audit`},
		"bad type": {`{apiVersion: kyverno.io/v1, kind: ClusterPolicy, metadata: {name: p}, spec: {rules: [{name: r, match: {any: [{resources: {kinds: [Pod]}}]}, verifyImages: [{type: Cosgin, attestors: [{entries: [{keyless: {issuer: i, subject: s}}]}]}]}]}}`,
			`rules[0].verifyImages[0].type: "Cosgin" is not Cosign, SigstoreBundle or Notary`},
		"bad key": {`{apiVersion: kyverno.io/v1, kind: ClusterPolicy, metadata: {name: p}, spec: {rules: [{name: r, match: {any: [{resources: {kinds: [Pod]}}]}, verifyImages: [{attestors: [{entries: [{keys: {publicKeys: "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"}}]}]}]}]}}`,
			`attestors[0].entries[0].keys.publicKeys[0]`},
		"no identities": {`{apiVersion: policy.sigstore.dev/v1beta1, kind: ClusterImagePolicy, metadata: {name: p}, spec: {images: [{glob: "**"}], authorities: [{keyless: {}}]}}`,
			`spec.authorities[0].keyless: no identities`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var obj map[string]any
			if err := yaml.Unmarshal([]byte(tc.obj), &obj); err != nil {
				t.Fatal(err)
			}
			_, ok, err := Read("p.yaml", obj)
			if !ok || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read() = %v, %v; want an error containing %q", ok, err, tc.want)
			}
		})
	}
	if _, ok, err := Read("cm.yaml", map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}); ok || err != nil {
		t.Errorf("a ConfigMap: %v, %v; want not a policy", ok, err)
	}
}

// TestWildcard follows Kyverno's wildcard matching: "*" crosses "/".
func TestWildcard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"ghcr.io/acme/*", "ghcr.io/acme/app:1.0", true},
		{"ghcr.io/acme/*", "ghcr.io/acme/team/app:1.0", true},
		{"ghcr.io/acme/*", "ghcr.io/acme-evil/app:1.0", false},
		{"ghcr.io/kyverno/test-verify-image*", "ghcr.io/kyverno/test-verify-image:signed", true},
		{"*", "", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*a*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"kube-*", "kube-system", true},
	} {
		if got := wildcard(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
