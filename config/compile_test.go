package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// fingerprintPolicies is a policy of each kind: keyless on the default
// trust root, keyless on a named inline trusted root, key-based with Rekor,
// key-based without, static.
const fingerprintPolicies = `
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: keyless}
spec:
  images: [{glob: "ghcr.io/acme/**"}]
  authorities:
    - name: release
      keyless:
        identities:
          - issuer: https://token.actions.githubusercontent.com
            subjectRegExp: https://github\.com/acme/[^/]+/\.github/workflows/release\.yaml@refs/heads/main
  attestations:
    - {name: provenance, predicateType: https://slsa.dev/provenance/v1}
---
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: internal}
spec:
  images: [{glob: "registry.acme.example/**"}]
  trustRootRef: internal
  authorities:
    - name: ci
      keyless:
        identities:
          - {issuer: https://ci.acme.example, subject: release-bot@acme.example}
---
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: key-rekor}
spec:
  images: [{glob: "index.docker.io/library/*"}]
  authorities:
    - name: upstream
      key:
        data: |
          -----BEGIN PUBLIC KEY-----
          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU94fM0ghv/7xe7TYwXx9RxMXaXNi
          7XLgcn0krQ+QnBIEkbbtElQNFru3/T1n6CrMHQHOzJsZvuCE69YnEoC1hQ==
          -----END PUBLIC KEY-----
---
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: key-only}
spec:
  images: [{glob: "quay.io/acme/**"}]
  authorities:
    - name: upstream
      insecureIgnoreTlog: true
      key:
        data: |
          -----BEGIN PUBLIC KEY-----
          MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU94fM0ghv/7xe7TYwXx9RxMXaXNi
          7XLgcn0krQ+QnBIEkbbtElQNFru3/T1n6CrMHQHOzJsZvuCE69YnEoC1hQ==
          -----END PUBLIC KEY-----
---
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: static}
spec:
  images: [{glob: "legacy.acme.example/**"}]
  authorities:
    - {name: refuse, static: {action: fail}}
`

// upstreamKey is the body of the key both key policies trust, as
// indented in fingerprintPolicies; otherKey is another ECDSA P-256 key.
const (
	upstreamKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEU94fM0ghv/7xe7TYwXx9RxMXaXNi\n          7XLgcn0krQ+QnBIEkbbtElQNFru3/T1n6CrMHQHOzJsZvuCE69YnEoC1hQ=="
	otherKey    = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYI4heOTrNrZO27elFE8ynfrdPMik\n          ttRkbe+vJKQ50G6bfwQ3WyhLpRwwwohelDAm8xRzJ56nYsIa3VHivVvpmA=="
)

// trustedRootDoc is a TrustRoot named internal holding rootJSON inline.
func trustedRootDoc(rootJSON []byte) string {
	return `
---
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustRoot
metadata: {name: internal}
spec:
  trustedRoot:
    data: '` + string(rootJSON) + `'
`
}

// fingerprintEnv is what the fingerprint tests compile with: two test
// Sigstore deployments' trusted roots and a TrustSource whose default
// material can be switched, as a TUF refresh would.
type fingerprintEnv struct {
	rootA, rootB []byte
}

func newFingerprintEnv(t *testing.T) *fingerprintEnv {
	t.Helper()
	return &fingerprintEnv{
		rootA: verifytest.NewSigstore(t).TrustedRootJSON(),
		rootB: verifytest.NewSigstore(t).TrustedRootJSON(),
	}
}

// source returns a TrustSource whose default is defaultRoot and which reads
// TrustRoots' inline trusted_root.json, each call parsing afresh (new
// objects, same content).
func source(defaultRoot []byte) TrustSource {
	return func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
		if tr == nil {
			return verify.TrustedRootFromJSON(defaultRoot)
		}
		if tr.Spec.TrustedRoot == nil || tr.Spec.TrustedRoot.Data == "" {
			return nil, errors.New("only inline trusted roots in this test")
		}
		return verify.TrustedRootFromJSON([]byte(tr.Spec.TrustedRoot.Data))
	}
}

// fingerprints compiles doc and returns each policy's fingerprint by name.
func fingerprints(t *testing.T, doc string, trust TrustSource) map[string]string {
	t.Helper()
	s, err := Load("policies.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	c, err := s.Compile(trust)
	if err != nil {
		t.Fatalf("Compile() = %v", err)
	}
	out := map[string]string{}
	for _, p := range c.Verify {
		out[p.Name] = p.Fingerprint
	}
	return out
}

func TestCompile_fingerprintIsStable(t *testing.T) {
	t.Parallel()
	e := newFingerprintEnv(t)
	doc := fingerprintPolicies + trustedRootDoc(e.rootB)
	first := fingerprints(t, doc, source(e.rootA))
	second := fingerprints(t, doc, source(e.rootA))
	seen := map[string]string{}
	for name, fp := range first {
		if len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
			t.Errorf("Fingerprint of %s = %q, want 64 hex digits", name, fp)
		}
		if second[name] != fp {
			t.Errorf("Fingerprint of %s = %q, then %q from the same input, want them equal", name, fp, second[name])
		}
		if other, dup := seen[fp]; dup {
			t.Errorf("policies %s and %s have the same Fingerprint %s", other, name, fp)
		}
		seen[fp] = name
	}
	if len(first) != 5 {
		t.Errorf("compiled %d policies, want 5", len(first))
	}
}

// TestCompile_fingerprintChanges changes one thing at a time and checks
// which fingerprints move: those of the policies whose results may
// change, and only those.
func TestCompile_fingerprintChanges(t *testing.T) {
	t.Parallel()
	e := newFingerprintEnv(t)
	base := fingerprintPolicies + trustedRootDoc(e.rootB)
	all := []string{"keyless", "internal", "key-rekor", "key-only", "static"}
	for name, tc := range map[string]struct {
		doc         string
		defaultRoot []byte // nil: rootA
		changed     []string
	}{
		"an identity regexp": {
			doc:     strings.Replace(base, `workflows/release\.yaml@refs/heads/main`, `workflows/release\.yaml@refs/tags/v.+`, 1),
			changed: []string{"keyless"},
		},
		"an exact identity": {
			doc:     strings.Replace(base, "subject: release-bot@acme.example", "subject: deploy-bot@acme.example", 1),
			changed: []string{"internal"},
		},
		"a key": {
			doc:     strings.Replace(base, upstreamKey, otherKey, 1), // key-rekor's; key-only's is the second
			changed: []string{"key-rekor"},
		},
		"an attestation": {
			doc:     strings.Replace(base, "https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2", 1),
			changed: []string{"keyless"},
		},
		"an authority option": {
			doc:     strings.Replace(base, "    - name: ci\n", "    - name: ci\n      signedTimestamps: true\n", 1),
			changed: []string{"internal"},
		},
		"a static action": {
			doc:     strings.Replace(base, "action: fail", "action: pass", 1),
			changed: []string{"static"},
		},
		"the name": {
			doc:     strings.Replace(base, "{name: key-only}", "{name: key-only-2}", 1),
			changed: []string{"key-only"}, // compared under its old name below
		},
		"the named trust root's content": {
			doc:     fingerprintPolicies + trustedRootDoc(e.rootA),
			changed: []string{"internal"},
		},
		"the default trust material (a TUF refresh)": {
			doc:         base,
			defaultRoot: e.rootB,
			changed:     []string{"keyless", "key-rekor"},
		},
		"images and mode (they decide where the policy applies, not its result)": {
			doc:     strings.Replace(strings.Replace(base, `"ghcr.io/acme/**"`, `"ghcr.io/acme/app:*"`, 1), "  images: [{glob: \"quay.io/acme/**\"}]\n", "  images: [{glob: \"quay.io/acme/**\"}]\n  mode: warn\n", 1),
			changed: nil,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tc.doc == base && tc.defaultRoot == nil {
				t.Fatal("the case changes nothing")
			}
			want := fingerprints(t, base, source(e.rootA))
			dr := tc.defaultRoot
			if dr == nil {
				dr = e.rootA
			}
			got := fingerprints(t, tc.doc, source(dr))
			if fp, ok := got["key-only-2"]; ok {
				got["key-only"] = fp
			}
			for _, p := range all {
				changed := got[p] != want[p]
				if changed != slices.Contains(tc.changed, p) {
					t.Errorf("Fingerprint of %s changed: %t, want %t (%s, then %s)", p, changed, !changed, want[p], got[p])
				}
			}
		})
	}
}

// opaqueMaterial is trust material the fingerprint cannot look into.
type opaqueMaterial struct{ root.TrustedMaterial }

// TestCompile_fingerprintOfOpaqueMaterial: material that is not a
// *root.TrustedRoot is identified by a spec that holds it (an inline
// trusted_root.json) and otherwise leaves the policy without a
// fingerprint.
func TestCompile_fingerprintOfOpaqueMaterial(t *testing.T) {
	t.Parallel()
	e := newFingerprintEnv(t)
	parsed := source(e.rootA)
	opaque := func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
		m, err := parsed(tr)
		if err != nil {
			return nil, err
		}
		return opaqueMaterial{m}, nil
	}
	got := fingerprints(t, fingerprintPolicies+trustedRootDoc(e.rootB), opaque)
	for p, wantSet := range map[string]bool{
		"keyless":   false, // the default: nothing says what it is
		"key-rekor": false,
		"internal":  true, // inline: the spec is the material
		"key-only":  true, // no trust material used
		"static":    true,
	} {
		if (got[p] != "") != wantSet {
			t.Errorf("Fingerprint of %s with opaque material = %q, want set: %t", p, got[p], wantSet)
		}
	}
	other := fingerprints(t, fingerprintPolicies+trustedRootDoc(e.rootA), opaque)
	if other["internal"] == got["internal"] {
		t.Errorf("Fingerprint of internal did not change with its inline trusted root")
	}
}
