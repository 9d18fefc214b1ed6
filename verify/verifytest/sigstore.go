package verifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The formats the signing helpers produce (research/sigstore-formats.md).
// The registry helpers (registry.go) push them.
const (
	inTotoStatementType = "https://in-toto.io/Statement/v1"
	inTotoPayloadType   = "application/vnd.in-toto+json"

	// The legacy layer annotations cosign writes.
	fxAnnSignature   = "dev.cosignproject.cosign/signature"
	fxAnnCertificate = "dev.sigstore.cosign/certificate"
	fxAnnChain       = "dev.sigstore.cosign/chain"
	fxAnnBundle      = "dev.sigstore.cosign/bundle"
	fxAnnRFC3161     = "dev.sigstore.cosign/rfc3161timestamp"
)

// Sigstore is test support for pregate's verify package: a private
// Sigstore deployment in memory, built on
// sigstore-go's VirtualSigstore: a Fulcio CA (root and intermediate), a
// Rekor log, a CT log key and an RFC 3161 timestamp authority.
//
// Its quirks (sigstore-go pkg/testing/ca): leaf certificates carry the
// identity as an email SAN and the issuer in the legacy OID
// 1.3.6.1.4.1.57264.1.1, and have no SCTs, so keyless authorities must set
// IgnoreSCT; validity windows are relative to when things are made: the
// CA is valid from 5h before GenerateSigstore to 1h after, the TSA
// certificate for 5 minutes either side of it, a leaf for 10 minutes from
// signing, and the log's integrated time is 5 minutes after signing.
// Verify what you sign within minutes; never commit the output.
//
// The signing helpers return errors, for programs such as the demo; the
// Must… forms take a testing.TB and fail the test instead. None needs a
// registry: the registry helpers push what they make.
type Sigstore struct {
	vs       *ca.VirtualSigstore
	rootJSON []byte
}

// GenerateSigstore makes a new deployment with fresh keys.
func GenerateSigstore() (*Sigstore, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, fmt.Errorf("creating virtual sigstore: %w", err)
	}
	s := &Sigstore{vs: vs}
	if s.rootJSON, err = trustedRootJSON(vs); err != nil {
		return nil, err
	}
	return s, nil
}

// NewSigstore is GenerateSigstore for tests.
func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	s, err := GenerateSigstore()
	return must(t, s, err)
}

// Material is the deployment's trust material, in memory.
func (s *Sigstore) Material() root.TrustedMaterial { return s.vs }

// TrustedRootJSON is the deployment's trusted_root.json, as a private
// deployment publishes it (Fulcio CA chain, Rekor log key, CT log key,
// TSA chain).
func (s *Sigstore) TrustedRootJSON() []byte { return append([]byte(nil), s.rootJSON...) }

// TrustPEM is the deployment's trust material as an admission policy
// gives it: the Fulcio root and intermediates (PEM certificates), and the
// Rekor and CT log public keys (PEM).
func (s *Sigstore) TrustPEM(t testing.TB) (roots, rekorKey, ctlogKey string) {
	t.Helper()
	cas := s.vs.FulcioCertificateAuthorities()
	fca, ok := cas[0].(*root.FulcioCertificateAuthority)
	if len(cas) != 1 || !ok {
		t.Fatalf("the in-process Sigstore has %d certificate authorities (%T)", len(cas), cas[0])
	}
	var b strings.Builder
	for _, c := range append(fca.Intermediates, fca.Root) {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	key := func(logs map[string]*root.TransparencyLog) string {
		if len(logs) != 1 {
			t.Fatalf("the in-process Sigstore has %d logs, want 1", len(logs))
		}
		for _, l := range logs {
			der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		}
		return ""
	}
	return b.String(), key(s.vs.RekorLogs()), key(s.vs.CTLogs())
}

// TSAPEM is the in-process Sigstore's timestamp authority as PEM
// certificates, its root first, then its intermediates and its leaf: a
// TSA chain as policies give one.
func (s *Sigstore) TSAPEM(t testing.TB) string {
	t.Helper()
	tsas := s.vs.TimestampingAuthorities()
	tsa, ok := tsas[0].(*root.SigstoreTimestampingAuthority)
	if len(tsas) != 1 || !ok {
		t.Fatalf("the in-process Sigstore has %d timestamp authorities (%T)", len(tsas), tsas[0])
	}
	var b strings.Builder
	for _, c := range append(append([]*x509.Certificate{tsa.Root}, tsa.Intermediates...), tsa.Leaf) {
		if c != nil {
			_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
	}
	return b.String()
}

// trustedRootJSON serialises the VirtualSigstore's material. It works
// around VirtualSigstore's log IDs, which hold the hex string rather than
// the raw key ID bytes a trusted root stores: serialised as they are, the
// logs would not match any entry after a round trip.
func trustedRootJSON(vs *ca.VirtualSigstore) ([]byte, error) {
	fix := func(logs map[string]*root.TransparencyLog) (map[string]*root.TransparencyLog, error) {
		out := make(map[string]*root.TransparencyLog, len(logs))
		for id, l := range logs {
			raw, err := hex.DecodeString(id)
			if err != nil {
				return nil, fmt.Errorf("decoding log ID %q: %w", id, err)
			}
			c := *l
			c.ID = raw
			out[id] = &c
		}
		return out, nil
	}
	rekor, err := fix(vs.RekorLogs())
	if err != nil {
		return nil, err
	}
	ct, err := fix(vs.CTLogs())
	if err != nil {
		return nil, err
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), ct, vs.TimestampingAuthorities(), rekor)
	if err != nil {
		return nil, fmt.Errorf("assembling trusted root: %w", err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding trusted root: %w", err)
	}
	return b, nil
}

// SignImage signs an image digest ("sha256:…") the way cosign v3 does
// keyless: a v0.3 bundle holding a DSSE in-toto statement of predicate
// type https://sigstore.dev/cosign/sign/v1 whose subject is the digest,
// the Fulcio leaf certificate for identity (SAN) and issuer, a Rekor dsse
// entry with inclusion proof and promise, and an RFC 3161 timestamp.
func (s *Sigstore) SignImage(identity, issuer, digest string) ([]byte, error) {
	return s.AttestImage(identity, issuer, digest, CosignSignPredicateType, struct{}{})
}

// MustSignImage is SignImage for tests.
func (s *Sigstore) MustSignImage(t testing.TB, identity, issuer, digest string) []byte {
	t.Helper()
	b, err := s.SignImage(identity, issuer, digest)
	return must(t, b, err)
}

// AttestImage makes a keyless attestation bundle like SignImage's, with
// predicateType and predicate (any JSON-encodable value; nil is {}).
func (s *Sigstore) AttestImage(identity, issuer, digest, predicateType string, predicate any) ([]byte, error) {
	stmt, err := statementJSON(digest, predicateType, predicate)
	if err != nil {
		return nil, err
	}
	ent, err := s.vs.AttestAtTime(identity, issuer, stmt, time.Now().Add(5*time.Minute), true)
	if err != nil {
		return nil, fmt.Errorf("attesting: %w", err)
	}
	sc, err := ent.SignatureContent()
	if err != nil {
		return nil, err
	}
	env, err := protoEnvelope(sc.EnvelopeContent().RawEnvelope())
	if err != nil {
		return nil, err
	}
	vm, err := s.material(ent)
	if err != nil {
		return nil, err
	}
	return marshalBundle("0.3", vm, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env})
}

// MustAttestImage is AttestImage for tests.
func (s *Sigstore) MustAttestImage(t testing.TB, identity, issuer, digest, predicateType string, predicate any) []byte {
	t.Helper()
	b, err := s.AttestImage(identity, issuer, digest, predicateType, predicate)
	return must(t, b, err)
}

// SignMessage signs artifact (an image manifest, say) with a message
// signature: a v0.1 bundle holding the signature over the artifact's
// SHA-256, the leaf certificate, a Rekor hashedrekord entry with its
// inclusion promise (no proof, hence v0.1) and an RFC 3161 timestamp. The
// image it signs is sha256 of artifact.
func (s *Sigstore) SignMessage(identity, issuer string, artifact []byte) ([]byte, error) {
	ent, err := s.vs.SignAtTimeWithVersion(identity, issuer, artifact, time.Now().Add(5*time.Minute), "v0.1")
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	sc, err := ent.SignatureContent()
	if err != nil {
		return nil, err
	}
	ms := sc.MessageSignatureContent()
	if ms == nil {
		return nil, errors.New("virtual sigstore entity has no message signature")
	}
	vm, err := s.material(ent)
	if err != nil {
		return nil, err
	}
	return marshalBundle("0.1", vm, &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: ms.Digest()},
		Signature:     ms.Signature(),
	}})
}

// MustSignMessage is SignMessage for tests.
func (s *Sigstore) MustSignMessage(t testing.TB, identity, issuer string, artifact []byte) []byte {
	t.Helper()
	b, err := s.SignMessage(identity, issuer, artifact)
	return must(t, b, err)
}

// material assembles a v0.3 bundle's verification material from a
// VirtualSigstore entity: the leaf certificate, the log entries (with the
// kind, version and inclusion promise the entity leaves out) and the
// timestamps.
func (s *Sigstore) material(ent *ca.TestEntity) (*protobundle.VerificationMaterial, error) {
	vc, err := ent.VerificationContent()
	if err != nil {
		return nil, err
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return nil, errors.New("virtual sigstore entity has no certificate")
	}
	entries, err := ent.TlogEntries()
	if err != nil {
		return nil, err
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
	}
	for _, e := range entries {
		tle, err := s.completeEntry(e)
		if err != nil {
			return nil, err
		}
		vm.TlogEntries = append(vm.TlogEntries, tle)
	}
	tss, err := ent.Timestamps()
	if err != nil {
		return nil, err
	}
	if len(tss) > 0 {
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{}
		for _, ts := range tss {
			vm.TimestampVerificationData.Rfc3161Timestamps = append(vm.TimestampVerificationData.Rfc3161Timestamps,
				&protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
		}
	}
	return vm, nil
}

// completeEntry copies a log entry and adds its kind, version and SET.
func (s *Sigstore) completeEntry(e *tlog.Entry) (*protorekor.TransparencyLogEntry, error) {
	tle, ok := proto.Clone(e.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	if !ok {
		return nil, errors.New("cloning log entry")
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(tle.CanonicalizedBody, &kv); err != nil {
		return nil, fmt.Errorf("reading log entry body: %w", err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion}
	set, err := s.vs.RekorSignPayload(rekorPayload(tle))
	if err != nil {
		return nil, fmt.Errorf("signing entry timestamp: %w", err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle, nil
}

func rekorPayload(tle *protorekor.TransparencyLogEntry) tlog.RekorPayload {
	return tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
	}
}

// LegacySignature signs an image digest the way cosign v2 (and v3 with
// --new-bundle-format=false) does keyless: the simple-signing payload
// naming digest and dockerRef, which is the layer of the .sig manifest,
// and its annotations: the base64 signature over the payload, the PEM
// leaf certificate and chain, the Rekor hashedrekord entry with its SET
// (dev.sigstore.cosign/bundle) and the RFC 3161 timestamp over the
// signature.
func (s *Sigstore) LegacySignature(identity, issuer, digest, dockerRef string) (payload []byte, annotations map[string]string, err error) {
	payload, err = fxSimpleSigningPayload(digest, dockerRef)
	if err != nil {
		return nil, nil, err
	}
	ent, err := s.vs.SignAtTimeWithVersion(identity, issuer, payload, time.Now().Add(5*time.Minute), "v0.1")
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	sc, err := ent.SignatureContent()
	if err != nil {
		return nil, nil, err
	}
	ann, err := s.legacyAnnotations(ent, sc.Signature())
	if err != nil {
		return nil, nil, err
	}
	ann[fxAnnSignature] = base64.StdEncoding.EncodeToString(sc.Signature())
	return payload, ann, nil
}

// MustLegacySignature is LegacySignature for tests.
func (s *Sigstore) MustLegacySignature(t testing.TB, identity, issuer, digest, dockerRef string) (payload []byte, annotations map[string]string) {
	t.Helper()
	payload, annotations, err := s.LegacySignature(identity, issuer, digest, dockerRef)
	if err != nil {
		t.Fatal(err)
	}
	return payload, annotations
}

// LegacyAttestation attests an image digest the way cosign v2 does
// keyless: the DSSE envelope JSON that is the layer of the .att manifest,
// and its annotations (certificate, chain, Rekor dsse entry with SET, an
// empty signature annotation, and the RFC 3161 timestamp, which cosign
// takes over the payload).
func (s *Sigstore) LegacyAttestation(identity, issuer, digest, predicateType string, predicate any) (envelope []byte, annotations map[string]string, err error) {
	stmt, err := statementJSON(digest, predicateType, predicate)
	if err != nil {
		return nil, nil, err
	}
	ent, err := s.vs.AttestAtTime(identity, issuer, stmt, time.Now().Add(5*time.Minute), false)
	if err != nil {
		return nil, nil, fmt.Errorf("attesting: %w", err)
	}
	sc, err := ent.SignatureContent()
	if err != nil {
		return nil, nil, err
	}
	envelope, err = json.Marshal(sc.EnvelopeContent().RawEnvelope())
	if err != nil {
		return nil, nil, err
	}
	ann, err := s.legacyAnnotations(ent, stmt)
	if err != nil {
		return nil, nil, err
	}
	ann[fxAnnSignature] = ""
	return envelope, ann, nil
}

// MustLegacyAttestation is LegacyAttestation for tests.
func (s *Sigstore) MustLegacyAttestation(t testing.TB, identity, issuer, digest, predicateType string, predicate any) (envelope []byte, annotations map[string]string) {
	t.Helper()
	envelope, annotations, err := s.LegacyAttestation(identity, issuer, digest, predicateType, predicate)
	if err != nil {
		t.Fatal(err)
	}
	return envelope, annotations
}

// legacyAnnotations renders an entity's material as cosign's legacy
// layer annotations; the RFC 3161 timestamp covers stamped.
func (s *Sigstore) legacyAnnotations(ent *ca.TestEntity, stamped []byte) (map[string]string, error) {
	vc, err := ent.VerificationContent()
	if err != nil {
		return nil, err
	}
	leaf := vc.Certificate()
	cas := s.vs.FulcioCertificateAuthorities()
	fca, ok := cas[0].(*root.FulcioCertificateAuthority)
	if leaf == nil || !ok {
		return nil, errors.New("virtual sigstore has no certificate chain")
	}
	var chain []byte
	for _, c := range append(append([]*x509.Certificate(nil), fca.Intermediates...), fca.Root) {
		chain = append(chain, pemCert(c)...)
	}
	entries, err := ent.TlogEntries()
	if err != nil || len(entries) != 1 {
		return nil, fmt.Errorf("virtual sigstore entity has %d log entries, want 1 (%w)", len(entries), err)
	}
	tle, err := s.completeEntry(entries[0])
	if err != nil {
		return nil, err
	}
	rb, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": tle.InclusionPromise.SignedEntryTimestamp,
		"Payload":              rekorPayload(tle),
	})
	if err != nil {
		return nil, err
	}
	tsr, err := s.vs.TimestampResponse(stamped)
	if err != nil {
		return nil, fmt.Errorf("timestamping: %w", err)
	}
	ts, err := json.Marshal(map[string][]byte{"SignedRFC3161Timestamp": tsr})
	if err != nil {
		return nil, err
	}
	return map[string]string{
		fxAnnCertificate: string(pemCert(leaf)),
		fxAnnChain:       string(chain),
		fxAnnBundle:      string(rb),
		fxAnnRFC3161:     string(ts),
	}, nil
}

// KeySigner signs with one ECDSA P-256 key, as `cosign sign --key` does
// with a key from `cosign generate-key-pair`, without a transparency log
// (--tlog-upload=false): authorities verifying its signatures set
// IgnoreTlog.
type KeySigner struct {
	key    *ecdsa.PrivateKey
	hint   string
	pubPEM []byte
}

// GenerateKeySigner makes a signer with a fresh key.
func GenerateKeySigner() (*KeySigner, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &KeySigner{
		key:    key,
		hint:   base64.StdEncoding.EncodeToString(sum[:]),
		pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	}, nil
}

// NewKeySigner is GenerateKeySigner for tests.
func NewKeySigner(t testing.TB) *KeySigner {
	t.Helper()
	k, err := GenerateKeySigner()
	return must(t, k, err)
}

// PublicKeyPEM is the public key, as cosign.pub holds it.
func (k *KeySigner) PublicKeyPEM() []byte { return append([]byte(nil), k.pubPEM...) }

// Hint is the key hint cosign writes into bundles: the base64 SHA-256
// of the PKIX public key.
func (k *KeySigner) Hint() string { return k.hint }

// SignImage signs an image digest as `cosign sign --key
// --tlog-upload=false` does: a v0.3 bundle holding a DSSE cosign/sign/v1
// statement and a public key hint, without log entries or timestamps.
func (k *KeySigner) SignImage(digest string) ([]byte, error) {
	return k.AttestImage(digest, CosignSignPredicateType, struct{}{})
}

// MustSignImage is SignImage for tests.
func (k *KeySigner) MustSignImage(t testing.TB, digest string) []byte {
	t.Helper()
	b, err := k.SignImage(digest)
	return must(t, b, err)
}

// AttestImage is SignImage with another predicate.
func (k *KeySigner) AttestImage(digest, predicateType string, predicate any) ([]byte, error) {
	stmt, err := statementJSON(digest, predicateType, predicate)
	if err != nil {
		return nil, err
	}
	sig, err := k.sign(dsse.PAE(inTotoPayloadType, stmt))
	if err != nil {
		return nil, err
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: k.hint}},
	}
	env := &protodsse.Envelope{Payload: stmt, PayloadType: inTotoPayloadType, Signatures: []*protodsse.Signature{{Sig: sig}}}
	return marshalBundle("0.3", vm, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env})
}

// MustAttestImage is AttestImage for tests.
func (k *KeySigner) MustAttestImage(t testing.TB, digest, predicateType string, predicate any) []byte {
	t.Helper()
	b, err := k.AttestImage(digest, predicateType, predicate)
	return must(t, b, err)
}

// LegacySignature signs an image digest as `cosign sign --key
// --new-bundle-format=false --tlog-upload=false` does: the simple-signing
// payload and its one annotation, the base64 signature.
func (k *KeySigner) LegacySignature(digest, dockerRef string) (payload []byte, annotations map[string]string, err error) {
	payload, err = fxSimpleSigningPayload(digest, dockerRef)
	if err != nil {
		return nil, nil, err
	}
	sig, err := k.sign(payload)
	if err != nil {
		return nil, nil, err
	}
	return payload, map[string]string{fxAnnSignature: base64.StdEncoding.EncodeToString(sig)}, nil
}

// MustLegacySignature is LegacySignature for tests.
func (k *KeySigner) MustLegacySignature(t testing.TB, digest, dockerRef string) (payload []byte, annotations map[string]string) {
	t.Helper()
	payload, annotations, err := k.LegacySignature(digest, dockerRef)
	if err != nil {
		t.Fatal(err)
	}
	return payload, annotations
}

func (k *KeySigner) sign(msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, k.key, sum[:])
}

// fxSimpleSigningPayload is SimpleSigningPayload, the payload cosign signs
// for an image in the legacy format, for a digest checked to be
// algorithm:hex.
func fxSimpleSigningPayload(digest, dockerRef string) ([]byte, error) {
	if _, _, err := splitDigest(digest); err != nil {
		return nil, err
	}
	return SimpleSigningPayload(dockerRef, digest), nil
}

// statementJSON is the in-toto v1 statement cosign v3 signs: the digest
// as its only subject.
func statementJSON(digest, predicateType string, predicate any) ([]byte, error) {
	alg, hx, err := splitDigest(digest)
	if err != nil {
		return nil, err
	}
	if predicateType == "" {
		return nil, errors.New("no predicate type")
	}
	if predicate == nil {
		predicate = struct{}{}
	}
	return json.Marshal(map[string]any{
		"_type":         inTotoStatementType,
		"subject":       []any{map[string]any{"digest": map[string]string{alg: hx}}},
		"predicateType": predicateType,
		"predicate":     predicate,
	})
}

func splitDigest(digest string) (alg, hx string, err error) {
	alg, hx, ok := strings.Cut(digest, ":")
	if !ok || alg == "" {
		return "", "", fmt.Errorf("digest %q: want algorithm:hex", digest)
	}
	if _, err := hex.DecodeString(hx); err != nil || hx == "" {
		return "", "", fmt.Errorf("digest %q: not hex", digest)
	}
	return alg, hx, nil
}

func protoEnvelope(env *dsse.Envelope) (*protodsse.Envelope, error) {
	if env == nil {
		return nil, errors.New("no DSSE envelope")
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("decoding DSSE payload: %w", err)
	}
	out := &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType}
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("decoding DSSE signature: %w", err)
		}
		out.Signatures = append(out.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
	}
	return out, nil
}

// marshalBundle validates a bundle with sigstore-go and renders its JSON.
func marshalBundle(version string, vm *protobundle.VerificationMaterial, content any) ([]byte, error) {
	mt, err := bundle.MediaTypeString(version)
	if err != nil {
		return nil, err
	}
	pb := &protobundle.Bundle{MediaType: mt, VerificationMaterial: vm}
	switch c := content.(type) {
	case *protobundle.Bundle_DsseEnvelope:
		pb.Content = c
	case *protobundle.Bundle_MessageSignature:
		pb.Content = c
	default:
		return nil, fmt.Errorf("unsupported bundle content %T", content)
	}
	if _, err := bundle.NewBundle(pb); err != nil {
		return nil, fmt.Errorf("validating bundle: %w", err)
	}
	return protojson.Marshal(pb)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// must returns v, or fails the test on err: the tail of the helpers for
// tests that wrap a helper returning an error.
func must[T any](t testing.TB, v T, err error) T {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
