package verifytest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const (
	fxIdentity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	fxIssuer   = "https://token.actions.githubusercontent.com"
)

func fxDigest(s string) (string, []byte) {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:]), sum[:]
}

// The fixtures are checked with sigstore-go directly, not through
// pregate's policy code, so that a bug in one does not hide in the other.

func TestSigstore_SignImage(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	d, raw := fxDigest("image")
	b := ss.MustSignImage(t, fxIdentity, fxIssuer, d)

	// Only the bundle JSON and the trusted root JSON cross over, as with a
	// private deployment.
	tm, err := verify.TrustedRootFromJSON(ss.TrustedRootJSON())
	if err != nil {
		t.Fatalf("TrustedRootFromJSON(TrustedRootJSON()) = %v", err)
	}
	var bb bundle.Bundle
	if err := bb.UnmarshalJSON(b); err != nil {
		t.Fatalf("parsing the bundle: %v", err)
	}
	if v, _ := bb.Version(); v != "v0.3" {
		t.Errorf("bundle version = %s, want v0.3", v)
	}
	if !bb.HasInclusionProof() || !bb.HasInclusionPromise() {
		t.Errorf("bundle has inclusion proof %v, promise %v; want both", bb.HasInclusionProof(), bb.HasInclusionPromise())
	}
	if bb.GetDsseEnvelope() == nil {
		t.Fatal("bundle holds no DSSE envelope")
	}
	id, err := sgverify.NewShortCertificateIdentity(fxIssuer, "", fxIdentity, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		name string
		tm   root.TrustedMaterial
	}{{"TrustedRootJSON", tm}, {"Material", ss.Material()}} {
		v, err := sgverify.NewVerifier(m.tm, sgverify.WithTransparencyLog(1), sgverify.WithIntegratedTimestamps(1), sgverify.WithSignedTimestamps(1))
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Verify(&bb, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", raw), sgverify.WithCertificateIdentity(id)))
		if err != nil {
			t.Fatalf("verifying with %s: %v", m.name, err)
		}
		if got := res.Statement.GetPredicateType(); got != "https://sigstore.dev/cosign/sign/v1" {
			t.Errorf("predicate type = %q, want cosign/sign/v1", got)
		}
		if n := len(res.VerifiedTimestamps); n != 2 {
			t.Errorf("verified %d timestamps, want 2 (log and TSA)", n)
		}
		// The same bundle for another digest is rejected.
		_, other := fxDigest("other")
		if _, err := v.Verify(&bb, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", other), sgverify.WithCertificateIdentity(id))); err == nil {
			t.Errorf("verifying with %s for another digest: nil error", m.name)
		}
	}
}

func TestSigstore_AttestImage(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	d, raw := fxDigest("image")
	b := ss.MustAttestImage(t, fxIdentity, fxIssuer, d, "https://slsa.dev/provenance/v1", map[string]string{"builder": "ci"})
	var bb bundle.Bundle
	if err := bb.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	id, _ := sgverify.NewShortCertificateIdentity(fxIssuer, "", fxIdentity, "")
	v, _ := sgverify.NewVerifier(ss.Material(), sgverify.WithTransparencyLog(1), sgverify.WithIntegratedTimestamps(1))
	res, err := v.Verify(&bb, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", raw), sgverify.WithCertificateIdentity(id)))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Statement.GetPredicateType(); got != "https://slsa.dev/provenance/v1" {
		t.Errorf("predicate type = %q", got)
	}
	if got := res.Statement.GetPredicate().GetFields()["builder"].GetStringValue(); got != "ci" {
		t.Errorf("predicate builder = %q, want ci", got)
	}
}

func TestSigstore_LegacySignature(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	d, _ := fxDigest("image")
	payload, ann := ss.MustLegacySignature(t, fxIdentity, fxIssuer, d, "registry.example/acme/app")
	var p struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if p.Critical.Type != "cosign container image signature" || p.Critical.Image.DockerManifestDigest != d ||
		p.Critical.Identity.DockerReference != "registry.example/acme/app" {
		t.Errorf("payload = %s", payload)
	}
	for _, k := range []string{
		"dev.cosignproject.cosign/signature", "dev.sigstore.cosign/certificate", "dev.sigstore.cosign/chain",
		"dev.sigstore.cosign/bundle", "dev.sigstore.cosign/rfc3161timestamp",
	} {
		if ann[k] == "" {
			t.Errorf("annotation %s missing", k)
		}
	}
	var rb struct {
		SignedEntryTimestamp []byte
		Payload              struct {
			Body           string `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogID          string `json:"logID"`
		}
	}
	if err := json.Unmarshal([]byte(ann["dev.sigstore.cosign/bundle"]), &rb); err != nil {
		t.Fatal(err)
	}
	if len(rb.SignedEntryTimestamp) == 0 || rb.Payload.Body == "" || rb.Payload.LogID == "" {
		t.Errorf("Rekor bundle annotation = %s", ann["dev.sigstore.cosign/bundle"])
	}
	if it := time.Unix(rb.Payload.IntegratedTime, 0); time.Until(it) > 10*time.Minute || time.Since(it) > time.Minute {
		t.Errorf("integrated time %s is not around now", it)
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(ann["dev.sigstore.cosign/certificate"]))
	if err != nil || len(certs) != 1 {
		t.Fatalf("certificate annotation: %v (%d certificates)", err, len(certs))
	}
	if got := cryptoutils.GetSubjectAlternateNames(certs[0]); len(got) != 1 || got[0] != fxIdentity {
		t.Errorf("certificate SANs = %v, want %s", got, fxIdentity)
	}
}

func TestKeySigner(t *testing.T) {
	t.Parallel()
	k := verifytest.NewKeySigner(t)
	d, raw := fxDigest("image")
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(k.PublicKeyPEM())
	if err != nil {
		t.Fatalf("PublicKeyPEM() does not parse: %v", err)
	}
	sv, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	keys := root.NewTrustedPublicKeyMaterial(func(hint string) (root.TimeConstrainedVerifier, error) {
		if hint != k.Hint() {
			t.Errorf("key hint = %q, want %q", hint, k.Hint())
		}
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	var bb bundle.Bundle
	if err := bb.UnmarshalJSON(k.MustSignImage(t, d)); err != nil {
		t.Fatal(err)
	}
	if len(bb.GetVerificationMaterial().GetTlogEntries()) != 0 {
		t.Error("key-signed bundle has log entries, want none (--tlog-upload=false)")
	}
	v, err := sgverify.NewVerifier(keys, sgverify.WithNoObserverTimestamps())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(&bb, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", raw), sgverify.WithKey())); err != nil {
		t.Errorf("verifying the key-signed bundle: %v", err)
	}

	payload, ann := k.MustLegacySignature(t, d, "registry.example/acme/app")
	if !strings.Contains(string(payload), d) || len(ann) != 1 || ann["dev.cosignproject.cosign/signature"] == "" {
		t.Errorf("legacy signature = %s, %v", payload, ann)
	}
}

func TestFixtures_rejectBadDigests(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	k := verifytest.NewKeySigner(t)
	for _, d := range []string{"", "sha256", "sha256:xyz", ":00"} {
		if _, err := ss.SignImage(fxIdentity, fxIssuer, d); err == nil {
			t.Errorf("SignImage(%q) = nil error", d)
		}
		if _, _, err := ss.LegacySignature(fxIdentity, fxIssuer, d, "r"); err == nil {
			t.Errorf("LegacySignature(%q) = nil error", d)
		}
		if _, err := k.SignImage(d); err == nil {
			t.Errorf("KeySigner.SignImage(%q) = nil error", d)
		}
	}
}
