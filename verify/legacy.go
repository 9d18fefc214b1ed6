package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
)

// The annotations of a legacy cosign signature or attestation layer
// (cosign pkg/oci/static/signature.go; the spec's
// dev.cosignproject.cosign/certificate is not what cosign writes).
const (
	legacySignatureAnn   = "dev.cosignproject.cosign/signature"
	legacyCertificateAnn = "dev.sigstore.cosign/certificate"
	legacyChainAnn       = "dev.sigstore.cosign/chain"
	legacyBundleAnn      = "dev.sigstore.cosign/bundle"
	legacyRFC3161Ann     = "dev.sigstore.cosign/rfc3161timestamp"
)

// simpleSigningType is critical.type of a cosign image signature payload.
const simpleSigningType = "cosign container image signature"

// inTotoPayloadType is the DSSE payload type of an in-toto statement.
const inTotoPayloadType = "application/vnd.in-toto+json"

// legacyMaterial is what a legacy layer's annotations hold besides the
// signature: the verification material, log entry and timestamp, in
// bundle form.
func legacyMaterial(ann map[string]string) (*protobundle.VerificationMaterial, error) {
	vm := &protobundle.VerificationMaterial{}
	if certPEM := ann[legacyCertificateAnn]; certPEM != "" {
		certs, err := pemCertificates([]byte(certPEM))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", legacyCertificateAnn, err)
		}
		if len(certs) != 1 {
			return nil, fmt.Errorf("annotation %s: %d certificates, want 1", legacyCertificateAnn, len(certs))
		}
		if chainPEM := ann[legacyChainAnn]; chainPEM != "" {
			chain, err := pemCertificates([]byte(chainPEM))
			if err != nil {
				return nil, fmt.Errorf("annotation %s: %w", legacyChainAnn, err)
			}
			certs = append(certs, chain...)
		}
		var chain []*protocommon.X509Certificate
		for _, der := range certs {
			chain = append(chain, &protocommon.X509Certificate{RawBytes: der})
		}
		// A v0.1 bundle may carry the chain; sigstore-go uses its leaf and
		// builds the path from the trust root's intermediates.
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{
			X509CertificateChain: &protocommon.X509CertificateChain{Certificates: chain},
		}
	} else {
		// Signed with a key: the key comes from the authority.
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}
	}
	if set := ann[legacyBundleAnn]; set != "" {
		tle, err := legacyLogEntry([]byte(set))
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", legacyBundleAnn, err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	if ts := ann[legacyRFC3161Ann]; ts != "" {
		var t struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(ts), &t); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", legacyRFC3161Ann, err)
		}
		if len(t.SignedRFC3161Timestamp) == 0 {
			return nil, fmt.Errorf("annotation %s: no SignedRFC3161Timestamp", legacyRFC3161Ann)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: t.SignedRFC3161Timestamp}},
		}
	}
	return vm, nil
}

// pemCertificates decodes every CERTIFICATE block of a PEM text.
func pemCertificates(b []byte) ([][]byte, error) {
	var out [][]byte
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a certificate", block.Type)
		}
		// Parsed even when only the leaf is used (a chain's certificates
		// are not checked against anything): malformed material never
		// verifies.
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, block.Bytes)
	}
	if len(bytes.TrimSpace(b)) != 0 {
		return nil, errors.New("text after the last PEM block")
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation
// (pkg/cosign/bundle/rekor.go): a Rekor v1 entry with its signed entry
// timestamp (SET).
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// legacyLogEntry turns cosign's Rekor bundle annotation into a log entry
// with an inclusion promise (no proof: the annotation carries none).
func legacyLogEntry(b []byte) (*protorekor.TransparencyLogEntry, error) {
	var rb rekorBundle
	if err := json.Unmarshal(b, &rb); err != nil {
		return nil, fmt.Errorf("malformed Rekor bundle: %w", err)
	}
	if len(rb.SignedEntryTimestamp) == 0 {
		return nil, errors.New("no SignedEntryTimestamp")
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("decoding the entry body: %w", err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(logID) == 0 {
		return nil, fmt.Errorf("log ID %q is not hex", rb.Payload.LogID)
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kv); err != nil {
		return nil, fmt.Errorf("malformed entry body: %w", err)
	}
	if kv.Kind == "" || kv.APIVersion == "" {
		return nil, errors.New("entry body has no kind or apiVersion")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: body,
	}, nil
}

// legacySignatureBundle converts a legacy cosign signature layer (the
// simple-signing payload and its annotations) into a v0.1 bundle: a
// message signature over the payload's SHA-256, the certificate chain or
// a key placeholder, the SET-backed log entry and the RFC 3161
// timestamp. v0.1 because legacy layers carry inclusion promises, never
// proofs, and v0.2+ require proofs.
func legacySignatureBundle(payload []byte, ann map[string]string) (*bundle.Bundle, error) {
	b64 := ann[legacySignatureAnn]
	if b64 == "" {
		return nil, fmt.Errorf("no %s annotation", legacySignatureAnn)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: decoding base64: %w", legacySignatureAnn, err)
	}
	vm, err := legacyMaterial(ann)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(payload)
	return newV01Bundle(vm, &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
		Signature:     sig,
	}})
}

// dsseEnvelope is a DSSE envelope in its JSON form.
type dsseEnvelope struct {
	PayloadType string `json:"payloadType"`
	Payload     []byte `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   []byte `json:"sig"`
	} `json:"signatures"`
}

// legacyAttestationBundle converts a legacy cosign attestation layer (a
// DSSE envelope and its annotations) into a v0.1 bundle.
func legacyAttestationBundle(envelope []byte, ann map[string]string) (*bundle.Bundle, *dsseEnvelope, error) {
	var env dsseEnvelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, nil, fmt.Errorf("malformed DSSE envelope: %w", err)
	}
	if len(env.Signatures) == 0 {
		return nil, nil, errors.New("DSSE envelope has no signature")
	}
	vm, err := legacyMaterial(ann)
	if err != nil {
		return nil, nil, err
	}
	// cosign stamps a legacy attestation's payload, not its signature, and
	// sigstore-go checks timestamps against the signature: the stamp
	// cannot verify here, so it is left out (an authority that requires
	// signed timestamps rejects legacy attestations, naming the missing
	// timestamp).
	vm.TimestampVerificationData = nil
	pe := &protodsse.Envelope{Payload: env.Payload, PayloadType: env.PayloadType}
	for _, s := range env.Signatures {
		pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: s.Sig, Keyid: s.KeyID})
	}
	b, err := newV01Bundle(vm, &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe})
	return b, &env, err
}

func newV01Bundle(vm *protobundle.VerificationMaterial, content any) (*bundle.Bundle, error) {
	mt, err := bundle.MediaTypeString("0.1")
	if err != nil {
		return nil, err
	}
	pb := &protobundle.Bundle{MediaType: mt, VerificationMaterial: vm}
	switch c := content.(type) {
	case *protobundle.Bundle_MessageSignature:
		pb.Content = c
	case *protobundle.Bundle_DsseEnvelope:
		pb.Content = c
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("assembling a v0.1 bundle: %w", err)
	}
	return b, nil
}

// simpleSigning is the payload of a legacy cosign signature
// (containers/image simple signing, as cosign writes it).
type simpleSigning struct {
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

// checkSimpleSigning requires the payload to be a cosign image signature
// naming digest: without this check a signed payload could be replayed
// onto any image. critical.identity.docker-reference is ignored, as the
// spec says.
func checkSimpleSigning(payload []byte, digest string) error {
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		return fmt.Errorf("malformed simple-signing payload: %w", err)
	}
	if ss.Critical.Type != simpleSigningType {
		return fmt.Errorf("payload critical.type is %q, not %q", ss.Critical.Type, simpleSigningType)
	}
	if got := ss.Critical.Image.DockerManifestDigest; got != digest {
		if got == "" {
			return errors.New("payload names no image digest (critical.image.docker-manifest-digest)")
		}
		return fmt.Errorf("payload names image %s, not this image", got)
	}
	return nil
}
