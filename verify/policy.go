package verify

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp/syntax"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/cryptoutils/goodkey"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// CosignSignPredicateType is the in-toto predicate type of a cosign v3
// image signature: a DSSE statement with this predicate type whose subject
// is the image digest is a signature; any other predicate type makes the
// statement an attestation.
const CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// SignatureKind is Consideration.Kind for an artifact judged as a
// signature. An attestation's Kind is its predicate type, and an artifact
// that could not be read or classified has Kind UnknownKind.
const (
	SignatureKind = "signature"
	UnknownKind   = "unknown"
)

// Policy says which signatures and attestations an image needs. Check
// judges a Discovery against it; Validate reports configuration errors
// up front (Check also rejects what an invalid authority would accept,
// naming the error).
//
// The authorities are compiled (identities, keys, trust material) once,
// by the first Validate or Check, and the result is reused by every later
// call, concurrent ones included: a Policy is not to be changed after its
// first use.
type Policy struct {
	// Name identifies the policy in results and messages.
	Name string
	// Authorities: any one of them may accept the image's signature.
	Authorities []Authority
	// Attestations: every one must be present and verified (by any
	// authority).
	Attestations []Attestation
	// Trusted is the policy's trust root (Fulcio CAs, Rekor logs, CT logs,
	// TSAs). It may be nil only when every authority is a key or static
	// authority that checks neither the transparency log nor signed
	// timestamps.
	Trusted root.TrustedMaterial
	// Reads, when set, limits the places and formats the policy reads, as
	// an admission engine that reads only some of them does: what it does
	// not read is not there for it. Zero reads everything.
	Reads Reads
	// Fingerprint identifies what the policy verifies with: two policies
	// with the same Fingerprint give the same Result for the same digest
	// (at the same time: see Cache). It covers the name (results quote
	// it), the authorities, the attestations and the trust material.
	// config.Set.Compile sets it; empty means unknown, and a Cache then
	// shares none of the policy's results.
	Fingerprint string

	// compiled holds the *compiledPolicy of the first use. An
	// atomic.Value, unlike atomic.Pointer, may be copied with the Policy
	// before first use without go vet objecting.
	compiled atomic.Value
}

// Reads limits what a policy reads of a Discovery: the places
// (ReferrersStep, FallbackTagStep, SignatureTagStep, AttestationTagStep)
// and the storage formats. An empty list reads every one.
type Reads struct {
	Sources []Step
	Formats []Format
	// BundlesFirst reads only Sigstore bundles when there are any, and
	// the other formats only when there are none, as Kyverno's
	// ImageValidatingPolicy cosign verifier does.
	BundlesFirst bool
	// AttestationsSign counts a verified Sigstore bundle as a signature
	// whatever it states, an attestation included, as Kyverno's
	// SigstoreBundle verifier does for a rule with no attestation type.
	AttestationsSign bool
	// ArtifactTypePrefix, when set, reads only the referrers whose listing
	// gives an artifactType starting with it, as Kyverno's SigstoreBundle
	// verifier does: one the registry lists with another (GHCR's fallback
	// tag gives application/vnd.oci.empty.v1+json) is not seen.
	ArtifactTypePrefix string
	// AttestationsOnly checks only the required attestations when there
	// are any, no signature, as policy-controller does with an authority
	// that lists attestations.
	AttestationsOnly bool
	// FallbackWithoutAPI reads the referrers fallback tag only when the
	// registry has no referrers API, as go-containerregistry's
	// remote.Referrers does: a registry whose API answers, even with an
	// empty list, is not asked for the tag.
	FallbackWithoutAPI bool
}

// IsZero says whether r reads everything, as pregate does.
func (r Reads) IsZero() bool {
	return len(r.Sources) == 0 && len(r.Formats) == 0 && !r.AttestationsSign && !r.BundlesFirst &&
		r.ArtifactTypePrefix == "" && !r.FallbackWithoutAPI && !r.AttestationsOnly
}

// String says what r reads, for fingerprints and messages.
func (r Reads) String() string {
	if r.IsZero() {
		return "every place and format"
	}
	var parts []string
	for _, s := range r.Sources {
		parts = append(parts, string(s))
	}
	for _, f := range r.Formats {
		parts = append(parts, string(f))
	}
	if r.AttestationsSign {
		parts = append(parts, "attestations-sign")
	}
	if r.BundlesFirst {
		parts = append(parts, "bundles-first")
	}
	if r.ArtifactTypePrefix != "" {
		parts = append(parts, "artifactType="+r.ArtifactTypePrefix+"*")
	}
	if r.FallbackWithoutAPI {
		parts = append(parts, "fallback-without-api")
	}
	if r.AttestationsOnly {
		parts = append(parts, "attestations-only")
	}
	return strings.Join(parts, ",")
}

// filter keeps what r reads of d: the artifacts from its places in its
// formats, and the lookups of its places (besides resolving, and the
// manifests and blobs read).
func (r Reads) filter(d Discovery) Discovery {
	if r.IsZero() {
		return d
	}
	api := r.FallbackWithoutAPI && slices.ContainsFunc(d.Lookups, func(l Lookup) bool {
		return l.Step == ReferrersStep && l.Status == http.StatusOK
	})
	place := func(s Step) bool {
		if api && s == FallbackTagStep {
			return false
		}
		return len(r.Sources) == 0 || slices.Contains(r.Sources, s)
	}
	listing := func(a Artifact) bool {
		listed := a.Source == ReferrersStep || a.Source == FallbackTagStep
		return r.ArtifactTypePrefix == "" || !listed || strings.HasPrefix(a.ArtifactType, r.ArtifactTypePrefix)
	}
	out := d
	out.Artifacts = nil
	for _, a := range d.Artifacts {
		if place(a.Source) && listing(a) && (len(r.Formats) == 0 || slices.Contains(r.Formats, a.Format)) {
			out.Artifacts = append(out.Artifacts, a)
		}
	}
	if r.BundlesFirst && slices.ContainsFunc(out.Artifacts, func(a Artifact) bool { return a.Format == BundleFormat }) {
		out.Artifacts = slices.DeleteFunc(out.Artifacts, func(a Artifact) bool { return a.Format != BundleFormat })
	}
	out.Lookups = nil
	for _, l := range d.Lookups {
		switch l.Step {
		case ReferrersStep, FallbackTagStep, SignatureTagStep, AttestationTagStep:
			if !place(l.Step) {
				continue
			}
		}
		out.Lookups = append(out.Lookups, l)
	}
	return out
}

// Authority is one way to accept a signature: keyless identities, a
// public key, or a static verdict. Exactly one of Keyless, Key and Static
// is set.
type Authority struct {
	Name    string
	Keyless *Keyless
	Key     *Key
	Static  *Static
	// IgnoreTlog, IgnoreSCT and SignedTimestamps mean what cosign's
	// --insecure-ignore-tlog, --insecure-ignore-sct and
	// --use-signed-timestamps mean (see verifierOptions).
	IgnoreTlog       bool
	IgnoreSCT        bool
	SignedTimestamps bool
}

// Keyless accepts Fulcio certificates whose identity matches any of
// Identities.
type Keyless struct {
	Identities []Identity
}

// Identity matches a certificate's OIDC issuer and subject (SAN). Set one
// of Issuer and IssuerRegExp, and one of Subject and SubjectRegExp. Exact
// values compare exactly; regular expressions (RE2) must match the whole
// value: "https://github.com/acme/" does not match
// "https://github.com/acme-evil/x".
type Identity struct {
	Issuer        string
	IssuerRegExp  string
	Subject       string
	SubjectRegExp string
}

// Key accepts signatures made with one public key. Build it with NewKey
// or NewKeyWithHash, which parse and validate the PEM up front; a Key
// literal is parsed when its policy is compiled.
type Key struct {
	// PEM is a PKIX public key (ECDSA, RSA or Ed25519) in PEM form.
	PEM []byte
	// Hash is the digest ECDSA and RSA signatures were made over
	// (crypto.SHA224, SHA256, SHA384 or SHA512: cosign's
	// --signature-digest-algorithm, a TrustPolicy's key.hashAlgorithm).
	// Zero means the default for the key's type (LoadDefaultVerifier):
	// SHA-256 for P-256 and RSA keys, SHA-384 for P-384, SHA-512 for P-521.
	// Ed25519 keys ignore it.
	Hash crypto.Hash

	verifier signature.Verifier
	loaded   crypto.Hash // the Hash verifier was loaded with
	hint     string
}

// Static accepts (Pass) or rejects every image without looking at its
// signatures.
type Static struct {
	Pass bool
}

// Attestation is an attestation the policy requires.
type Attestation struct {
	// Name identifies the requirement in messages.
	Name string
	// PredicateType is the in-toto predicate type that must be present
	// ("https://slsa.dev/provenance/v1").
	PredicateType string
	// Condition, when set, must accept the verified in-toto statement
	// (its JSON) for the attestation to count; its error says why not.
	// The values, when it gives them, say what each of its conditions
	// evaluated to, for the record (Consideration.Conditions).
	Condition func(statement []byte) ([]ConditionValue, error) `json:"-"`
}

// ConditionValue is what one condition of an attestation evaluated to on
// a verified statement.
type ConditionValue struct {
	// Expression is the condition, Value what it evaluated to (or the
	// error it failed with), bounded; Holds whether it holds.
	Expression string `json:"expression"`
	Value      string `json:"value"`
	Holds      bool   `json:"holds"`
}

// NewKey parses and validates a PEM public key, which verifies with the
// default hash for its type (see Key.Hash).
func NewKey(pem []byte) (*Key, error) {
	return NewKeyWithHash(pem, 0)
}

// NewKeyWithHash parses and validates a PEM public key whose ECDSA or RSA
// signatures are made over hash h (0 for the key type's default).
func NewKeyWithHash(pem []byte, h crypto.Hash) (*Key, error) {
	v, hint, err := loadKey(pem, h)
	if err != nil {
		return nil, err
	}
	return &Key{PEM: pem, Hash: h, verifier: v, loaded: h, hint: hint}, nil
}

// loadKey parses a PEM public key into a verifier with hash h (0: the
// hash its type calls for), and computes cosign's key hint (base64 of the
// SHA-256 of the PKIX DER).
func loadKey(pem []byte, h crypto.Hash) (signature.Verifier, string, error) {
	if len(pem) == 0 {
		return nil, "", errors.New("no public key given")
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
	if err != nil {
		return nil, "", fmt.Errorf("parsing public key: %w", err)
	}
	if err := goodkey.ValidatePubKey(pub); err != nil {
		return nil, "", fmt.Errorf("validating public key: %w", err)
	}
	var v signature.Verifier
	if h == 0 {
		v, err = signature.LoadDefaultVerifier(pub)
	} else {
		v, err = signature.LoadVerifierWithOpts(pub, options.WithHash(h))
	}
	if err != nil {
		return nil, "", fmt.Errorf("loading public key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return v, base64.StdEncoding.EncodeToString(sum[:]), nil
}

// Validate reports the first configuration error in the policy: no
// authority, an authority with zero or several kinds, an identity without
// issuer or subject, a regular expression that does not compile, a key
// that does not parse, a keyless or transparency-log-checking authority
// without a trust root, an attestation without predicate type, required
// attestations beside a static pass authority (which accepts every image
// before any attestation is looked at).
func (p *Policy) Validate() error {
	if len(p.Authorities) == 0 {
		return fmt.Errorf("policy %q: no authorities", p.Name)
	}
	c := p.authorities()
	if len(c.invalid) > 0 {
		return fmt.Errorf("policy %q: %w", p.Name, c.invalid[0])
	}
	for i, a := range p.Attestations {
		if a.PredicateType == "" {
			return fmt.Errorf("policy %q: attestation %d (%q): no predicate type", p.Name, i, a.Name)
		}
	}
	if c.pass != nil && len(p.Attestations) > 0 {
		return fmt.Errorf("policy %q: static authority %q passes every image without looking at its attestations, so the %d required attestations would never be checked: remove the static authority or the attestations",
			p.Name, c.pass.name, len(p.Attestations))
	}
	return nil
}

// compiledPolicy is a Policy's authorities made ready to check with, and
// what they were made from.
type compiledPolicy struct {
	// pass is the first static authority that passes, if any.
	pass *authority
	// staticFails names the static authorities that fail, in order.
	staticFails []string
	// auths are the keyless and key authorities, in order.
	auths []*authority
	// invalid holds the errors of the authorities that do not compile, in
	// order.
	invalid []error
}

// authorities returns the policy's compiled authorities, compiling them
// on first use. Concurrent first calls may each compile the same; one
// result is kept.
func (p *Policy) authorities() *compiledPolicy {
	if c, ok := p.compiled.Load().(*compiledPolicy); ok {
		return c
	}
	c := &compiledPolicy{}
	for i := range p.Authorities {
		a, err := p.compile(i)
		switch {
		case err != nil:
			c.invalid = append(c.invalid, err)
		case a.static == nil:
			c.auths = append(c.auths, a)
		case a.static.Pass:
			if c.pass == nil {
				c.pass = a
			}
		default:
			c.staticFails = append(c.staticFails, a.name)
		}
	}
	p.compiled.Store(c)
	return c
}

// authorityName names authority i in messages.
func (p *Policy) authorityName(i int) string {
	if n := p.Authorities[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("#%d", i)
}

// authority is an Authority ready to verify: identities anchored and
// compiled, key parsed, trust material assembled.
type authority struct {
	name     string
	static   *Static
	key      *Key
	keyless  bool
	ids      []sgverify.CertificateIdentity
	material root.TrustedMaterial
	opts     Authority
}

// compile readies authority i of the policy.
func (p *Policy) compile(i int) (*authority, error) {
	a := p.Authorities[i]
	name := p.authorityName(i)
	n := 0
	for _, set := range []bool{a.Keyless != nil, a.Key != nil, a.Static != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("authority %q: set exactly one of keyless, key and static (%d set)", name, n)
	}
	c := &authority{name: name, opts: a}
	switch {
	case a.Static != nil:
		c.static = a.Static
		return c, nil
	case a.Keyless != nil:
		if len(a.Keyless.Identities) == 0 {
			return nil, fmt.Errorf("authority %q: keyless without identities", name)
		}
		for j, id := range a.Keyless.Identities {
			cid, err := id.compile()
			if err != nil {
				return nil, fmt.Errorf("authority %q: identity %d: %w", name, j, err)
			}
			c.ids = append(c.ids, cid)
		}
		if p.Trusted == nil {
			return nil, fmt.Errorf("authority %q: keyless verification needs a trust root (Fulcio CA), and the policy has none", name)
		}
		c.keyless = true
		c.material = p.Trusted
		return c, nil
	default:
		k := *a.Key
		if k.verifier == nil || k.loaded != k.Hash {
			v, hint, err := loadKey(k.PEM, k.Hash)
			if err != nil {
				return nil, fmt.Errorf("authority %q: %w", name, err)
			}
			k.verifier, k.loaded, k.hint = v, k.Hash, hint
		}
		c.key = &k
		expiring := root.NewExpiringKey(k.verifier, time.Time{}, time.Time{})
		keys := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return expiring, nil
		})
		needRoot := !a.IgnoreTlog || a.SignedTimestamps
		switch {
		case needRoot && p.Trusted == nil:
			what := "the transparency log"
			if a.IgnoreTlog {
				what = "signed timestamps"
			}
			return nil, fmt.Errorf("authority %q: checking %s needs a trust root, and the policy has none (set IgnoreTlog for keys used without Rekor)", name, what)
		case needRoot:
			c.material = root.TrustedMaterialCollection{keys, p.Trusted}
		default:
			c.material = keys
		}
		return c, nil
	}
}

// compile turns an Identity into a sigstore-go CertificateIdentity with
// anchored regular expressions.
func (id Identity) compile() (sgverify.CertificateIdentity, error) {
	switch {
	case id.Issuer == "" && id.IssuerRegExp == "":
		return sgverify.CertificateIdentity{}, errors.New("no issuer (set issuer or issuerRegExp)")
	case id.Issuer != "" && id.IssuerRegExp != "":
		return sgverify.CertificateIdentity{}, errors.New("both issuer and issuerRegExp set")
	case id.Subject == "" && id.SubjectRegExp == "":
		return sgverify.CertificateIdentity{}, errors.New("no subject (set subject or subjectRegExp)")
	case id.Subject != "" && id.SubjectRegExp != "":
		return sgverify.CertificateIdentity{}, errors.New("both subject and subjectRegExp set")
	}
	issuerRE, err := anchor(id.IssuerRegExp)
	if err != nil {
		return sgverify.CertificateIdentity{}, fmt.Errorf("issuerRegExp: %w", err)
	}
	subjectRE, err := anchor(id.SubjectRegExp)
	if err != nil {
		return sgverify.CertificateIdentity{}, fmt.Errorf("subjectRegExp: %w", err)
	}
	return sgverify.NewShortCertificateIdentity(id.Issuer, issuerRE, id.Subject, subjectRE)
}

// anchor makes a regular expression match whole values only:
// sigstore-go's matchers call MatchString, which finds a match anywhere.
// sigstore-go compiles the anchored expression; re is only parsed here, on
// its own, so that an error names it and so that it cannot close the group
// it is wrapped in ("a)|(b" would match any value starting with "a").
func anchor(re string) (string, error) {
	if re == "" {
		return "", nil
	}
	if _, err := syntax.Parse(re, syntax.Perl); err != nil {
		return "", err
	}
	return `^(?:` + re + `)$`, nil
}

// String renders the identity for messages.
func (id Identity) String() string {
	s, i := id.Subject, id.Issuer
	if id.SubjectRegExp != "" {
		s = "/" + id.SubjectRegExp + "/"
	}
	if id.IssuerRegExp != "" {
		i = "/" + id.IssuerRegExp + "/"
	}
	return s + " (issuer " + i + ")"
}
