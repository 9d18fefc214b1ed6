package verify_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// The tests in this file build their own discoveries: a legacy .sig
// manifest whose layers are simple-signing payloads, signed with a key.

const (
	pcRepo         = "registry.example/acme/compiled"
	pcSignatureAnn = "dev.cosignproject.cosign/signature"
	pcIssuer       = "https://token.actions.githubusercontent.com"
	pcIdentity     = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

var pcDigest = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("compiled image")))

// pcSigned is a discovery of one .sig manifest holding the legacy
// signatures of pcDigest by signers, one layer each (the same payload, so
// the same layer digest, as cosign writes them).
func pcSigned(t *testing.T, signers ...signature.Signer) verify.Discovery {
	t.Helper()
	payload := verifytest.SimpleSigningPayload(pcRepo, pcDigest)
	d := verify.Discovery{Subject: verify.Subject{Repository: pcRepo, Digest: pcDigest}}
	for _, s := range signers {
		sig, err := s.SignMessage(strings.NewReader(string(payload)))
		if err != nil {
			t.Fatal(err)
		}
		d.Artifacts = append(d.Artifacts, verify.Artifact{
			Source:      verify.SignatureTagStep,
			Manifest:    fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("sig manifest"))),
			Layer:       fmt.Sprintf("sha256:%x", sha256.Sum256(payload)),
			Format:      verify.SimpleSigningFormat,
			MediaType:   "application/vnd.dev.cosign.simplesigning.v1+json",
			Content:     payload,
			Annotations: map[string]string{pcSignatureAnn: base64.StdEncoding.EncodeToString(sig)},
		})
	}
	for _, step := range []verify.Step{verify.ReferrersStep, verify.FallbackTagStep, verify.SignatureTagStep, verify.AttestationTagStep} {
		d.Lookups = append(d.Lookups, verify.Lookup{Step: step, URL: "https://registry.example/" + string(step)})
	}
	return d
}

// pcSigner returns a signer over hash h with a fresh key of the kind
// generate makes, and the public key in PEM.
func pcSigner(t *testing.T, generate func() (crypto.Signer, error), h crypto.Hash) (signature.Signer, []byte) {
	t.Helper()
	priv, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := signature.LoadSigner(priv, h)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func pcECDSA(c elliptic.Curve) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) }
}

func pcRSA() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }

func pcEd25519() (crypto.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

func pcKeyPolicy(name string, keys ...*verify.Key) *verify.Policy {
	p := &verify.Policy{Name: name}
	for i, k := range keys {
		p.Authorities = append(p.Authorities, verify.Authority{Name: fmt.Sprintf("key-%d", i), Key: k, IgnoreTlog: true})
	}
	return p
}

func pcStatus(t *testing.T, p *verify.Policy, d verify.Discovery) verify.Result {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	return p.Check(d)
}

// TestNewKeyWithHash: a key authority verifies signatures made over the
// hash it is given, and only those.
func TestNewKeyWithHash(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		generate func() (crypto.Signer, error)
		signed   crypto.Hash
		accepts  []crypto.Hash // 0: NewKey, the key type's default
		rejects  []crypto.Hash
	}{
		"ECDSA P-384, SHA-512": {pcECDSA(elliptic.P384()), crypto.SHA512, []crypto.Hash{crypto.SHA512}, []crypto.Hash{0, crypto.SHA256, crypto.SHA384}},
		"ECDSA P-384, SHA-384": {pcECDSA(elliptic.P384()), crypto.SHA384, []crypto.Hash{0, crypto.SHA384}, []crypto.Hash{crypto.SHA256, crypto.SHA512}},
		"ECDSA P-256, SHA-256": {pcECDSA(elliptic.P256()), crypto.SHA256, []crypto.Hash{0, crypto.SHA256}, []crypto.Hash{crypto.SHA512}},
		"RSA, SHA-512":         {pcRSA, crypto.SHA512, []crypto.Hash{crypto.SHA512}, []crypto.Hash{0, crypto.SHA256}},
		"Ed25519 ignores hash": {pcEd25519, crypto.SHA512, []crypto.Hash{0, crypto.SHA256, crypto.SHA512}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			signer, pub := pcSigner(t, tc.generate, tc.signed)
			d := pcSigned(t, signer)
			check := func(h crypto.Hash, want verify.Status) {
				t.Helper()
				k, err := verify.NewKeyWithHash(pub, h)
				if err != nil {
					t.Fatalf("NewKeyWithHash(%v) = %v", h, err)
				}
				if res := pcStatus(t, pcKeyPolicy("key", k), d); res.Status != want {
					t.Errorf("key with hash %v: Check() = %s (%s), want %s", h, res.Status, res.Detail, want)
				}
				// A Key literal with a Hash is loaded when compiled.
				if res := pcStatus(t, pcKeyPolicy("literal", &verify.Key{PEM: pub, Hash: h}), d); res.Status != want {
					t.Errorf("Key{Hash: %v}: Check() = %s (%s), want %s", h, res.Status, res.Detail, want)
				}
			}
			for _, h := range tc.accepts {
				check(h, verify.Verified)
			}
			for _, h := range tc.rejects {
				check(h, verify.InvalidSignature)
			}
		})
	}
	if _, err := verify.NewKeyWithHash(verifytest.NewKeySigner(t).PublicKeyPEM(), crypto.MD5); err == nil {
		t.Error("NewKeyWithHash(MD5) = nil error, want an error")
	}
}

// TestCheck_legacySignaturesSharingALayer: cosign lists the same
// simple-signing payload once per signer in a .sig manifest; a signature
// by a trusted key is found whichever layer carries it.
func TestCheck_legacySignaturesSharingALayer(t *testing.T) {
	t.Parallel()
	untrusted, _ := pcSigner(t, pcECDSA(elliptic.P256()), crypto.SHA256)
	trusted, pub := pcSigner(t, pcECDSA(elliptic.P256()), crypto.SHA256)
	k, err := verify.NewKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]signature.Signer{{untrusted, trusted}, {trusted, untrusted}} {
		res := pcStatus(t, pcKeyPolicy("key", k), pcSigned(t, order...))
		if res.Status != verify.Verified {
			t.Errorf("Check() = %s (%s), want Verified", res.Status, res.Detail)
		}
		if len(res.Considered) != 2 {
			t.Errorf("Check() considered %d artifacts, want 2: %+v", len(res.Considered), res.Considered)
		}
	}
}

// TestPolicy_compiledOnce: a policy is compiled once and checked many
// times, concurrently, with the same results; a copy made before first use
// compiles on its own.
func TestPolicy_compiledOnce(t *testing.T) {
	t.Parallel()
	signer1, pub1 := pcSigner(t, pcECDSA(elliptic.P256()), crypto.SHA256)
	signer2, pub2 := pcSigner(t, pcECDSA(elliptic.P256()), crypto.SHA256)
	k1, err := verify.NewKey(pub1)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := verify.NewKey(pub2)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := pcSigned(t, signer1), pcSigned(t, signer2)

	p := pcKeyPolicy("key", k1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if err := p.Validate(); err != nil {
					t.Errorf("Validate() = %v", err)
				}
				if res := p.Check(d1); res.Status != verify.Verified {
					t.Errorf("Check() = %s (%s), want Verified", res.Status, res.Detail)
				}
				if res := p.Check(d2); res.Status != verify.InvalidSignature {
					t.Errorf("Check() = %s (%s), want InvalidSignature", res.Status, res.Detail)
				}
			}
		})
	}
	wg.Wait()

	// A copy made before first use is compiled on its own.
	fresh := pcKeyPolicy("key", k2)
	q := *fresh
	if res := q.Check(d2); res.Status != verify.Verified {
		t.Errorf("copy: Check() = %s (%s), want Verified", res.Status, res.Detail)
	}
	broken := verify.Policy{Name: "broken", Authorities: []verify.Authority{{Name: "broken", Key: &verify.Key{PEM: []byte("nope")}, IgnoreTlog: true}}}
	if err := broken.Validate(); err == nil || !strings.Contains(err.Error(), "parsing public key") {
		t.Errorf("Validate() of a broken key = %v, want a key parsing error", err)
	}

	ss := verifytest.NewSigstore(t)
	keyless := &verify.Policy{Name: "keyless", Authorities: []verify.Authority{{
		Name: "ci", Keyless: &verify.Keyless{Identities: []verify.Identity{{Issuer: pcIssuer, Subject: pcIdentity}}}, IgnoreSCT: true,
	}}}
	withRoot := *keyless
	if err := keyless.Validate(); err == nil || !strings.Contains(err.Error(), "needs a trust root") {
		t.Errorf("Validate() without trust root = %v, want an error", err)
	}
	withRoot.Trusted = ss.Material()
	if err := withRoot.Validate(); err != nil {
		t.Errorf("Validate() after setting the trust root = %v", err)
	}
}

// TestIdentity_regexpStaysAnchored: an identity regular expression
// matches whole values, and cannot close the group it is anchored in.
func TestIdentity_regexpStaysAnchored(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	d := verify.Discovery{Subject: verify.Subject{Repository: pcRepo, Digest: pcDigest}}
	bundle := ss.MustSignImage(t, pcIdentity, pcIssuer, pcDigest)
	d.Artifacts = []verify.Artifact{{
		Source: verify.ReferrersStep, Manifest: fmt.Sprintf("sha256:%x", sha256.Sum256(bundle)), Format: verify.BundleFormat,
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: bundle,
	}}
	policy := func(subjectRE string) *verify.Policy {
		return &verify.Policy{Name: "p", Trusted: ss.Material(), Authorities: []verify.Authority{{
			Name: "ci", Keyless: &verify.Keyless{Identities: []verify.Identity{{Issuer: pcIssuer, SubjectRegExp: subjectRE}}}, IgnoreSCT: true,
		}}}
	}
	for re, want := range map[string]verify.Status{
		`https://github\.com/acme/app/.+`: verify.Verified,
		`https://github\.com/acme/`:       verify.IdentityMismatch, // a prefix only
		`.+/release\.yml@refs/heads/main`: verify.Verified,
		`release\.yml`:                    verify.IdentityMismatch,
	} {
		if res := pcStatus(t, policy(re), d); res.Status != want {
			t.Errorf("subjectRegExp %q: Check() = %s (%s), want %s", re, res.Status, res.Detail, want)
		}
	}
	for _, re := range []string{`x)|(.*`, `[`, `https://github\.com/acme/app/.+)|(?:x`} {
		if err := policy(re).Validate(); err == nil || !strings.Contains(err.Error(), "subjectRegExp: error parsing regexp") {
			t.Errorf("subjectRegExp %q: Validate() = %v, want a subjectRegExp parse error", re, err)
		}
	}
}

// TestValidate_staticPassWithAttestations: a static pass accepts every
// image without looking at attestations, so it cannot stand beside
// required attestations.
func TestValidate_staticPassWithAttestations(t *testing.T) {
	t.Parallel()
	signer, pub := pcSigner(t, pcECDSA(elliptic.P256()), crypto.SHA256)
	k, err := verify.NewKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	slsa := []verify.Attestation{{Name: "provenance", PredicateType: "https://slsa.dev/provenance/v1"}}
	p := &verify.Policy{
		Name: "release",
		Authorities: []verify.Authority{
			{Name: "release-key", Key: k, IgnoreTlog: true},
			{Name: "everything", Static: &verify.Static{Pass: true}},
		},
		Attestations: slsa,
	}
	err = p.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want an error")
	}
	for _, s := range []string{`policy "release"`, `static authority "everything"`, "attestations"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Validate() = %q, want it to contain %q", err, s)
		}
	}
	// Checked anyway, the requirement stands.
	if res := p.Check(pcSigned(t, signer)); res.Status != verify.AttestationMissing {
		t.Errorf("Check() = %s (%s), want AttestationMissing", res.Status, res.Detail)
	}

	// Without attestations the static pass is valid; a static fail beside
	// attestations never accepts anything, and is valid too.
	noAtt := &verify.Policy{Name: "release", Authorities: p.Authorities}
	if err := noAtt.Validate(); err != nil {
		t.Errorf("Validate() without attestations = %v", err)
	}
	staticFail := &verify.Policy{Name: "release", Attestations: slsa,
		Authorities: []verify.Authority{p.Authorities[0], {Name: "nothing", Static: &verify.Static{}}}}
	if err := staticFail.Validate(); err != nil {
		t.Errorf("Validate() with a static fail = %v", err)
	}
}
