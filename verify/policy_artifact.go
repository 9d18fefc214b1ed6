package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/pregate/pregate/gate"
)

// imageDigest is the subject digest, parsed.
type imageDigest struct {
	text string // "sha256:…"
	alg  string // "sha256"
	raw  []byte
}

func parseDigest(s string) (imageDigest, error) {
	alg, hx, ok := strings.Cut(s, ":")
	if !ok {
		return imageDigest{}, fmt.Errorf("digest %q has no algorithm", s)
	}
	var size int
	switch alg {
	case "sha256":
		size = sha256.Size
	case "sha384":
		size = sha512.Size384
	case "sha512":
		size = sha512.Size
	default:
		return imageDigest{}, fmt.Errorf("digest %q: unsupported algorithm %q", s, alg)
	}
	raw, err := hex.DecodeString(hx)
	if err != nil || len(raw) != size || strings.ToLower(hx) != hx {
		return imageDigest{}, fmt.Errorf("digest %q is not %d lower-case hex bytes", s, size)
	}
	return imageDigest{text: s, alg: alg, raw: raw}, nil
}

func (d imageDigest) artifact() sgverify.ArtifactPolicyOption {
	return sgverify.WithArtifactDigest(d.alg, d.raw)
}

// class is what an artifact turned out to be.
type class int

const (
	// unreadable: could not be read or classified; counts as a
	// signature-like artifact that did not verify.
	unreadable class = iota
	signatureClass
	attestationClass
)

// outcome is the judgement of one artifact.
type outcome struct {
	c     Consideration
	class class
	// predicateType of an attestation.
	predicateType string
	// identityMismatch: verified against the trust material, but no
	// identity of any authority matched.
	identityMismatch bool
	// required: the policy requires an attestation of this type.
	required bool
	// unfetched: the artifact's content could not be fetched, so what it
	// is, and whether it would verify, is unknown.
	unfetched bool
}

// prepared is an artifact made ready for sigstore-go.
type prepared struct {
	entity sgverify.SignedEntity
	// kind is SignatureKind or the predicate type.
	kind string
	// claim is set when the signed content is not about this image (or is
	// not an image signature): the artifact is rejected for that reason.
	claim error
	// artifact returns the artifact policy (a fresh one each time: a
	// reader is consumed by one verification).
	artifact func() sgverify.ArtifactPolicyOption
	// statement is the signed in-toto statement of a DSSE envelope.
	statement []byte
}

// prepare parses an artifact into a signed entity and reads what its
// signed content claims.
func prepare(a Artifact, d imageDigest) (*prepared, error) {
	switch a.Format {
	case BundleFormat:
		b, err := parseBundle(a.Content)
		if err != nil {
			return nil, err
		}
		p := &prepared{entity: b, artifact: d.artifact}
		switch c := b.Content.(type) {
		case *protobundle.Bundle_DsseEnvelope:
			p.kind, p.claim = statementClaims(c.DsseEnvelope.GetPayloadType(), c.DsseEnvelope.GetPayload(), d)
			p.statement = c.DsseEnvelope.GetPayload()
		case *protobundle.Bundle_MessageSignature:
			// Signature-like, but never of an image: it signs whatever
			// bytes were given to cosign sign-blob, and bytes that happen
			// to hash to the image digest (its manifest) are not a
			// statement that the image is signed.
			p.kind = SignatureKind
			p.claim = errMessageSignature
		}
		return p, nil
	case SimpleSigningFormat:
		b, err := legacySignatureBundle(a.Content, a.Annotations)
		if err != nil {
			return nil, err
		}
		payload := a.Content
		return &prepared{
			entity: b,
			kind:   SignatureKind,
			claim:  checkSimpleSigning(payload, d.text),
			artifact: func() sgverify.ArtifactPolicyOption {
				return sgverify.WithArtifact(bytes.NewReader(payload))
			},
		}, nil
	case DSSEFormat:
		b, env, err := legacyAttestationBundle(a.Content, a.Annotations)
		if err != nil {
			return nil, err
		}
		p := &prepared{entity: b, artifact: d.artifact, statement: env.Payload}
		p.kind, p.claim = statementClaims(env.PayloadType, env.Payload, d)
		return p, nil
	default:
		return nil, fmt.Errorf("unsupported format %q", a.Format)
	}
}

// The _type of in-toto statements, v1 and v0.1 (cosign v2 attestations).
const (
	inTotoStatementV1  = "https://in-toto.io/Statement/v1"
	inTotoStatementV01 = "https://in-toto.io/Statement/v0.1"
)

// statement is the part of an in-toto statement (v0.1 or v1) Check reads.
type statement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

// statementClaims classifies a DSSE payload: a cosign signature or an
// attestation of its predicate type, about this image or not.
func statementClaims(payloadType string, payload []byte, d imageDigest) (kind string, claim error) {
	if payloadType != inTotoPayloadType {
		return UnknownKind, fmt.Errorf("DSSE payload type %q is not an in-toto statement (%s)", payloadType, inTotoPayloadType)
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return UnknownKind, fmt.Errorf("malformed in-toto statement: %w", err)
	}
	if st.Type != inTotoStatementV1 && st.Type != inTotoStatementV01 {
		return UnknownKind, fmt.Errorf("payload _type %q is not an in-toto statement (%s)", gate.Clip(st.Type, maxIdentityText), inTotoStatementV1)
	}
	switch st.PredicateType {
	case "":
		return UnknownKind, errors.New("in-toto statement has no predicateType")
	case CosignSignPredicateType:
		kind = SignatureKind
	default:
		kind = gate.Clip(st.PredicateType, maxIdentityText)
	}
	want := hex.EncodeToString(d.raw)
	var named []string
	for _, s := range st.Subject {
		got, ok := s.Digest[d.alg]
		if !ok {
			continue
		}
		if strings.EqualFold(got, want) {
			return kind, nil
		}
		named = append(named, d.alg+":"+got)
	}
	if len(named) == 0 {
		return kind, fmt.Errorf("statement names no %s subject digest", d.alg)
	}
	return kind, fmt.Errorf("statement subject is %s, not this image", gate.Clip(named[0], maxIdentityText))
}

// errMessageSignature rejects a message-signature bundle as a signature of
// an image.
var errMessageSignature = errors.New("a message signature (as cosign sign-blob makes) signs a blob's bytes, not an image: " +
	"only an in-toto statement of predicate type " + CosignSignPredicateType + " or a legacy simple-signing payload signs an image")

// Bounds on signer-supplied text in considerations and details: a
// certificate's SAN and issuer, a key hint, a predicate type. Anything
// longer is clipped (gate.Clip).
const (
	maxIdentityText = 256
	maxReasonText   = 512
)

// signer is what an entity's verification material says about who
// signed it, before anything is verified: a claim, and reported as one.
type signer struct {
	key        bool   // signed with a key
	cert       bool   // signed with a certificate (keyless)
	unreadable bool   // the certificate could not be summarised
	san        string // the certificate's SAN, clipped
	issuer     string // its OIDC issuer, clipped
	hint       string // a key's hint, clipped
}

// signerOf reads the entity's (not yet verified) verification material.
func signerOf(entity sgverify.SignedEntity) signer {
	vc, err := entity.VerificationContent()
	if err != nil || vc == nil {
		return signer{unreadable: true}
	}
	if cert := vc.Certificate(); cert != nil {
		s, err := certificate.SummarizeCertificate(cert)
		if err != nil {
			return signer{cert: true, unreadable: true}
		}
		return signer{cert: true, san: gate.Clip(s.SubjectAlternativeName, maxIdentityText), issuer: gate.Clip(s.Issuer, maxIdentityText)}
	}
	// No certificate: a key, named by its hint if it has one (a legacy
	// signature names none).
	sg := signer{key: true}
	if pk := vc.PublicKey(); pk != nil {
		sg.hint = gate.Clip(pk.Hint(), maxIdentityText)
	}
	return sg
}

// identity is the signer as a verified fact, for a certificate whose
// chain verified: "SAN (issuer ISSUER)".
func (s signer) identity() string { return identityOf(s.san, s.issuer) }

// claimed is the signer as an unverified claim: "a certificate claiming
// SAN (issuer ISSUER)", "a key with hint H", "a public key", "".
func (s signer) claimed() string {
	switch {
	case s.unreadable && s.cert:
		return "an unreadable certificate"
	case s.unreadable:
		return "unreadable verification material"
	case s.cert:
		return "a certificate claiming " + s.identity()
	case s.hint != "":
		return "a key with hint " + s.hint
	case s.key:
		return "a public key"
	}
	return ""
}

func identityOf(san, issuer string) string {
	return san + " (issuer " + issuer + ")"
}

// attempt is one authority's verdict on one artifact.
type attempt struct {
	// rank orders how close the authority came: 3 accepted, 2 verified
	// but identity mismatch, 1 failed, 0 the wrong kind of authority for
	// the artifact (a key authority for a certificate, or the reverse).
	rank int
	auth *authority
	err  error
	res  *sgverify.VerificationResult
}

// evaluate judges one artifact against every (non-static) authority.
func (p *Policy) evaluate(a Artifact, auths []*authority, invalid []error, d imageDigest) (o outcome) {
	o.c = Consideration{Artifact: a.Manifest, Source: a.Source, ArtifactType: a.ArtifactType, Format: a.Format, Kind: UnknownKind}
	if o.c.Artifact == "" {
		o.c.Artifact = a.Layer
	}
	defer func() {
		// sigstore-go and the protobuf decoder are fuzzed, but a panic on
		// hostile input must never take the gate down or pass an image.
		if r := recover(); r != nil {
			o.c.Accepted = false
			o.c.Reason = fmt.Sprintf("internal error while verifying: %v", r)
			o.identityMismatch = false
		}
		// Reasons quote what registries and signers supplied.
		o.c.Reason = gate.Clip(o.c.Reason, maxReasonText)
	}()
	if a.Err != "" {
		o.c.Reason = "could not be read: " + a.Err
		o.unfetched = a.Unfetched
		return o
	}
	if a.Format == InTotoFormat {
		// Read for the record: nothing signs it.
		o.class = attestationClass
		var st statement
		if json.Unmarshal(a.Content, &st) != nil || st.PredicateType == "" {
			o.c.Kind = UnknownKind
			o.c.Reason = "an unsigned in-toto statement that does not read: nothing signs it, so it counts as no attestation"
			return o
		}
		o.predicateType = gate.Clip(st.PredicateType, maxIdentityText)
		o.c.Kind = o.predicateType
		o.required = slices.ContainsFunc(p.Attestations, func(req Attestation) bool { return req.PredicateType == st.PredicateType })
		o.c.Reason = "an unsigned in-toto statement of " + o.predicateType +
			" (as buildx stores provenance and SBOMs, in the image index): nothing signs it, so it counts as no attestation; sign it with cosign attest"
		return o
	}
	pr, err := prepare(a, d)
	if err != nil {
		o.c.Reason = err.Error()
		return o
	}
	o.c.Kind = pr.kind
	switch pr.kind {
	case SignatureKind:
		o.class = signatureClass
		if a.Format == BundleFormat {
			// A cosign v3 signature is an in-toto statement too: an
			// attestation of its predicate type when a policy requires
			// one (attestationsFound).
			o.predicateType = CosignSignPredicateType
		}
	case UnknownKind:
		o.class = unreadable
	default:
		o.class = attestationClass
		o.predicateType = pr.kind
		for _, req := range p.Attestations {
			if req.PredicateType == pr.kind {
				o.required = true
			}
		}
	}
	sg := signerOf(pr.entity)
	certSigned := sg.cert
	o.c.Signer = sg.claimed()
	if pr.claim != nil {
		o.c.Reason = pr.claim.Error()
		return o
	}

	var best *attempt
	for _, au := range auths {
		at := &attempt{auth: au}
		at.res, at.err = au.verify(pr.entity, pr.artifact())
		var nm *sgverify.ErrNoMatchingCertificateIdentity
		switch {
		case at.err == nil:
			at.rank = 3
			if err := checkResult(at.res, pr.kind); err != nil {
				at.rank, at.err, at.res = 1, err, nil
			}
		case errors.As(at.err, &nm):
			at.rank = 2
		case certSigned == au.keyless:
			at.rank = 1
		}
		if best == nil || at.rank > best.rank {
			best = at
		}
		if at.rank == 3 {
			break
		}
	}

	switch {
	case best == nil && len(invalid) > 0:
		o.c.Reason = "no usable authority: " + invalid[0].Error()
	case best == nil:
		o.c.Reason = fmt.Sprintf("policy %q has no authority that verifies signatures", p.Name)
	case best.rank == 3:
		o.c.Authority = best.auth.name
		if best.auth.key != nil {
			o.c.Signer = "public key " + best.auth.key.hint
		} else if c := best.res.Signature.Certificate; c != nil {
			o.c.Signer = identityOf(gate.Clip(c.SubjectAlternativeName, maxIdentityText), gate.Clip(c.Issuer, maxIdentityText))
		}
		switch o.class {
		case signatureClass:
			o.c.Accepted = true
			o.c.Reason = fmt.Sprintf("signed by %s, trusted by authority %q", o.c.Signer, best.auth.name)
		case attestationClass:
			o.c.Accepted = o.required
			what := fmt.Sprintf("attestation of %s signed by %s, trusted by authority %q", o.predicateType, o.c.Signer, best.auth.name)
			switch {
			case p.Reads.AttestationsSign && o.c.Format == BundleFormat && !o.required:
				// As the engine reads it: a verified bundle signs the
				// image, whatever it states.
				o.class = signatureClass
				o.c.Accepted = true
				o.c.Reason = what + "; counted as a signature, as the policy's engine counts every verified bundle"
			case o.required:
				o.c.Reason = what
				values, err := p.conditions(o.predicateType, pr.statement)
				o.c.Conditions = values
				if err != nil {
					o.c.Accepted = false
					o.c.Reason = what + ", but " + gate.Clip(err.Error(), maxReasonText)
				}
			default:
				o.c.Reason = fmt.Sprintf("%s; an attestation is not a signature, and policy %q requires no attestation of this type", what, p.Name)
			}
		}
	case best.rank == 2:
		// The certificate verified against the trust root: its identity
		// is what the trusted CA issued it to.
		o.identityMismatch = true
		o.c.Authority = best.auth.name
		o.c.Signer = sg.identity()
		o.c.Reason = fmt.Sprintf("signed by %s, which no authority of policy %q trusts (authority %q: %v)", o.c.Signer, p.Name, best.auth.name, best.err)
	case best.rank == 1:
		o.c.Authority = best.auth.name
		o.c.Reason = fmt.Sprintf("authority %q: %v", best.auth.name, best.err)
		if best.auth.keyless {
			if note := untrusted(pr.entity, best.auth.material, !best.auth.opts.IgnoreTlog); note != "" {
				o.c.Reason += " (" + note + ")"
			}
		} else if best.auth.key != nil {
			o.c.Reason += " (" + keyMismatch(sg, best.auth.key.hint) + ")"
		}
	default:
		o.c.Authority = best.auth.name
		switch {
		case sg.unreadable:
			o.c.Reason = fmt.Sprintf("signed with %s: %v", sg.claimed(), best.err)
		case certSigned:
			o.c.Reason = fmt.Sprintf("signed with %s, and policy %q has no keyless authority", sg.claimed(), p.Name)
		default:
			o.c.Reason = fmt.Sprintf("signed with a public key, and policy %q has no key authority", p.Name)
		}
	}
	if !o.c.Accepted && o.class == attestationClass && !strings.HasPrefix(o.c.Reason, "attestation of") {
		o.c.Reason = "attestation of " + o.predicateType + ": " + o.c.Reason
	}
	return o
}

// keyMismatch says which key signed and which key the authority trusts,
// when a key authority rejects a signature. A legacy signature names no
// key, so only the trusted one can be named; a bundle's hint is the
// signer's claim.
func keyMismatch(sg signer, trusted string) string {
	switch {
	case sg.hint == trusted:
		return "signed with the trusted key " + trusted + ", but the signature does not verify"
	case sg.hint != "":
		return fmt.Sprintf("signed with %s; the authority trusts public key %s", sg.claimed(), trusted)
	default:
		return "not signed by the trusted public key " + trusted
	}
}

// untrusted names what of a rejected keyless entity the trust material
// does not know: the log its entries are from, the CA that issued its
// certificate. sigstore-go reports the first check that failed, which for
// a signature from another Sigstore deployment is the log entry; this
// says why.
func untrusted(entity sgverify.SignedEntity, tm root.TrustedMaterial, tlog bool) string {
	var notes []string
	if entries, err := entity.TlogEntries(); tlog && err == nil && len(entries) > 0 {
		logs := tm.RekorLogs()
		for _, e := range entries {
			if _, ok := logs[hex.EncodeToString([]byte(e.LogKeyID()))]; !ok {
				notes = append(notes, "its log entry is from a Rekor log the trust root does not list")
				break
			}
		}
	}
	if vc, err := entity.VerificationContent(); err == nil && vc != nil && vc.Certificate() != nil {
		leaf := vc.Certificate()
		issued, known := false, false
		for _, ca := range tm.FulcioCertificateAuthorities() {
			fca, ok := ca.(*root.FulcioCertificateAuthority)
			if !ok {
				continue
			}
			known = true
			for _, c := range append(append([]*x509.Certificate(nil), fca.Intermediates...), fca.Root) {
				if c != nil && leaf.CheckSignatureFrom(c) == nil {
					issued = true
				}
			}
		}
		if known && !issued {
			notes = append(notes, "its certificate was not issued by a Fulcio CA of the trust root")
		}
	}
	return strings.Join(notes, "; ")
}

// checkResult re-reads what sigstore-go verified: a DSSE statement must
// have the predicate type it was classified by (a signature must be a
// cosign/sign/v1 statement; an attestation must not be).
func checkResult(res *sgverify.VerificationResult, kind string) error {
	if res == nil || res.Signature == nil {
		return errors.New("verification returned no result")
	}
	if res.Statement == nil {
		return nil // a message signature: its digest was checked
	}
	got := res.Statement.GetPredicateType()
	want := kind
	if kind == SignatureKind {
		want = CosignSignPredicateType
	}
	if got != want {
		return fmt.Errorf("verified statement has predicate type %q, expected %q", got, want)
	}
	return nil
}

// conditions checks a verified statement of predicate type against the
// conditions of the policy's attestations of that type: one of them must
// have none, or accept it.
func (p *Policy) conditions(predicateType string, statement []byte) ([]ConditionValue, error) {
	var first error
	var values []ConditionValue
	for _, req := range p.Attestations {
		if req.PredicateType != predicateType {
			continue
		}
		if req.Condition == nil {
			return nil, nil
		}
		vs, err := req.Condition(statement)
		if err == nil {
			return vs, nil
		}
		if first == nil {
			first, values = fmt.Errorf("its conditions do not hold: %w", err), vs
		}
	}
	return values, first
}
