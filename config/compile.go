package config

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// TrustSource turns a TrustRoot into trust material; nil asks for the
// default (the Sigstore public-good instance, unless the caller says
// otherwise). Fetching it is the caller's I/O: the CLI reads files and TUF
// repositories, the controller Secrets.
type TrustSource func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error)

// Compiled is a validated Set turned into what the gate decides with and
// what the verifier verifies with, policy for policy: Gate[i].Verify is
// Verify[i], which the gate hands the verifier with each image.
type Compiled struct {
	Gate   []gate.Policy
	Verify []*verify.Policy
}

// Compile turns the set's trust policies into gate and verify policies.
// Trust material is asked of trust only for policies that need it (keyless
// authorities, or a transparency log or timestamps to check), once per
// trust root.
func (s *Set) Compile(trust TrustSource) (*Compiled, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := &Compiled{}
	material := map[string]trustMaterial{}
	var errs []error
	for _, p := range s.TrustPolicies() {
		gp, vp, err := s.compilePolicy(p, trust, material)
		if err != nil {
			at, _ := s.Origin(v1alpha1.TrustPolicyKind, p.Name)
			errs = append(errs, fmt.Errorf("%s: TrustPolicy %q: %w", at, p.Name, err))
			continue
		}
		out.Gate = append(out.Gate, gp)
		out.Verify = append(out.Verify, vp)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (s *Set) compilePolicy(p *v1alpha1.TrustPolicy, trust TrustSource, material map[string]trustMaterial) (gate.Policy, *verify.Policy, error) {
	gp := gate.Policy{Name: p.Name, Mode: gate.Mode(p.Spec.Mode)}
	for _, img := range p.Spec.Images {
		g, err := gate.CompileGlob(img.Glob)
		if err != nil {
			return gate.Policy{}, nil, err
		}
		gp.Images = append(gp.Images, g)
	}
	vp := &verify.Policy{Name: p.Name}
	needsTrust := false
	for i, a := range p.Spec.Authorities {
		va := verify.Authority{Name: a.Name, IgnoreTlog: a.InsecureIgnoreTlog, IgnoreSCT: a.InsecureIgnoreSCT, SignedTimestamps: a.SignedTimestamps}
		switch {
		case a.Keyless != nil:
			needsTrust = true
			k := &verify.Keyless{}
			for _, id := range a.Keyless.Identities {
				k.Identities = append(k.Identities, verify.Identity{Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp})
			}
			va.Keyless = k
		case a.Key != nil:
			if a.Key.Data == "" {
				return gate.Policy{}, nil, fmt.Errorf("spec.authorities[%d].key: a secretRef is read by the controller only; give the key inline as data", i)
			}
			h, err := keyHash(a.Key.HashAlgorithm)
			if err != nil {
				return gate.Policy{}, nil, fmt.Errorf("spec.authorities[%d].key.hashAlgorithm: %w", i, err)
			}
			key, err := verify.NewKeyWithHash([]byte(a.Key.Data), h)
			if err != nil {
				return gate.Policy{}, nil, fmt.Errorf("spec.authorities[%d].key.data: %w", i, err)
			}
			va.Key = key
			needsTrust = needsTrust || !a.InsecureIgnoreTlog || a.SignedTimestamps
		case a.Static != nil:
			va.Static = &verify.Static{Pass: a.Static.Action == v1alpha1.StaticActionPass}
		}
		vp.Authorities = append(vp.Authorities, va)
	}
	for i, at := range p.Spec.Attestations {
		va := verify.Attestation{Name: at.Name, PredicateType: at.PredicateType}
		conds, err := compileConditions(at.Conditions)
		if err != nil {
			return gate.Policy{}, nil, fmt.Errorf("spec.attestations[%d].%w", i, err)
		}
		if len(conds) > 0 {
			va.Condition = conditionCheck(conds, time.Now)
		}
		vp.Attestations = append(vp.Attestations, va)
	}
	trustID := "none" // no trust material: keys without Rekor, static authorities
	if needsTrust {
		m, err := s.material(p.Spec.TrustRootRef, trust, material)
		if err != nil {
			return gate.Policy{}, nil, err
		}
		vp.Trusted = m.material
		trustID = m.id
	}
	if err := vp.Validate(); err != nil {
		return gate.Policy{}, nil, err
	}
	if trustID != "" {
		vp.Fingerprint = fingerprint(p, trustID)
	}
	gp.Verify = vp
	return gp, vp, nil
}

// keyHash is the hash a key authority's signatures are made over: its
// hashAlgorithm, sha256 when unset (the default the CRD declares).
// Ed25519 keys ignore it.
func keyHash(alg v1alpha1.HashAlgorithm) (crypto.Hash, error) {
	switch alg {
	case v1alpha1.SHA224:
		return crypto.SHA224, nil
	case v1alpha1.SHA256, "":
		return crypto.SHA256, nil
	case v1alpha1.SHA384:
		return crypto.SHA384, nil
	case v1alpha1.SHA512:
		return crypto.SHA512, nil
	default:
		return 0, fmt.Errorf("unsupported hash algorithm %q", alg)
	}
}

// fingerprintVersion names the encoding fingerprint hashes; change it
// whenever what the encoding means changes.
const fingerprintVersion = "pregate.dev/trustpolicy-fingerprint/v1"

// fingerprint is a TrustPolicy's verify.Policy Fingerprint: the hex SHA-256
// of a JSON encoding of everything the verification result depends on,
// given the identity of its trust material (see trustIdentity):
//
//   - the policy's name, which results and their details quote;
//   - spec.authorities and spec.attestations, as they are (fields the
//     verifier ignores, such as a static authority's message, only make
//     fingerprints differ where they need not);
//   - the trust material's identity.
//
// spec.images and spec.mode are left out: they decide which images the
// policy applies to and what a failure means, never the result of checking
// a digest, so editing them keeps the results cached for the policy. So
// are spec.imagePullSecrets: credentials decide whether an image can be
// read, which each Verifier finds out with its own Registry before any
// shared result is used. encoding/json writes struct fields in declaration
// order and sorts map keys, so equal inputs encode equally.
func fingerprint(p *v1alpha1.TrustPolicy, trustID string) string {
	b, err := json.Marshal(struct {
		Version      string                 `json:"version"`
		Name         string                 `json:"name"`
		Authorities  []v1alpha1.Authority   `json:"authorities"`
		Attestations []v1alpha1.Attestation `json:"attestations"`
		Trust        string                 `json:"trust"`
	}{fingerprintVersion, p.Name, p.Spec.Authorities, p.Spec.Attestations, trustID})
	if err != nil {
		return "" // not reached: the API types always encode; unknown means uncached
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// trustMaterial is a trust root's material and its identity ("" when it
// has none that can be trusted to change with the material).
type trustMaterial struct {
	material root.TrustedMaterial
	id       string
}

// trustIdentity names the trust material m that trust returned for tr (nil
// for the default), for fingerprints. It is the hash of two parts:
//
//   - where the material comes from: "default" for the default (the
//     Sigstore public-good instance, or whatever the TrustSource defaults
//     to), else the TrustRoot's spec (its TUF mirror and root.json, its
//     inline trusted_root.json or Secret reference);
//   - what it is: when m is a *root.TrustedRoot, a digest of its content
//     (trustedRootDigest). A TUF repository or a Secret may serve new
//     material under the same spec, so the content is what identifies it:
//     a TrustSource that refreshes from TUF makes new fingerprints when the
//     trusted root changes, and only then.
//
// Other material (a custom root.TrustedMaterial) cannot be looked into: it
// is identified by its spec only when the spec holds the material itself
// (an inline trusted_root.json), and otherwise has no identity, which
// leaves the policy without a fingerprint and its results unshared.
func trustIdentity(tr *v1alpha1.TrustRoot, m root.TrustedMaterial) string {
	source := "default"
	if tr != nil {
		b, err := json.Marshal(tr.Spec)
		if err != nil {
			return ""
		}
		source = "spec:" + string(b)
	}
	content := ""
	if t, ok := m.(*root.TrustedRoot); ok {
		content = trustedRootDigest(t)
	}
	if content == "" {
		if tr == nil || tr.Spec.TrustedRoot == nil || tr.Spec.TrustedRoot.Data == "" {
			return ""
		}
		content = "given by the spec"
	}
	sum := sha256.Sum256([]byte(source + "\x00" + content))
	return hex.EncodeToString(sum[:])
}

// trustedRootDigest is the hex SHA-256 of a canonical encoding of a
// trusted root's content: every certificate authority, timestamping
// authority, Rekor log and CT log with the fields sigstore-go verifies
// with, each list sorted. ("" when a part cannot be encoded: an authority
// of a type only a Go program can build.) It does not use
// (*root.TrustedRoot).MarshalJSON, which writes into the root (a data race
// on material shared between goroutines) and orders logs that start at the
// same time differently from call to call.
func trustedRootDigest(tr *root.TrustedRoot) string {
	certs := func(cs ...*x509.Certificate) []string {
		out := []string{}
		for _, c := range cs {
			if c != nil {
				out = append(out, base64.StdEncoding.EncodeToString(c.Raw))
			}
		}
		return out
	}
	validity := func(start, end time.Time) []string {
		return []string{start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano)}
	}
	encode := func(v any) (string, bool) {
		b, err := json.Marshal(v)
		return string(b), err == nil
	}
	type authority struct {
		Kind          string   `json:"kind"`
		URI           string   `json:"uri"`
		Root          []string `json:"root"`
		Intermediates []string `json:"intermediates"`
		Leaf          []string `json:"leaf,omitempty"`
		Validity      []string `json:"validity"`
	}
	var parts []string
	for _, ca := range tr.FulcioCertificateAuthorities() {
		f, ok := ca.(*root.FulcioCertificateAuthority)
		if !ok || f == nil {
			return ""
		}
		s, ok := encode(authority{"fulcio", f.URI, certs(f.Root), certs(f.Intermediates...), nil, validity(f.ValidityPeriodStart, f.ValidityPeriodEnd)})
		if !ok {
			return ""
		}
		parts = append(parts, s)
	}
	for _, ta := range tr.TimestampingAuthorities() {
		t, ok := ta.(*root.SigstoreTimestampingAuthority)
		if !ok || t == nil {
			return ""
		}
		s, ok := encode(authority{"tsa", t.URI, certs(t.Root), certs(t.Intermediates...), certs(t.Leaf), validity(t.ValidityPeriodStart, t.ValidityPeriodEnd)})
		if !ok {
			return ""
		}
		parts = append(parts, s)
	}
	for kind, logs := range map[string]map[string]*root.TransparencyLog{"rekor": tr.RekorLogs(), "ct": tr.CTLogs()} {
		for id, l := range logs {
			if l == nil {
				return ""
			}
			key, err := x509.MarshalPKIXPublicKey(l.PublicKey)
			if err != nil {
				return ""
			}
			s, ok := encode(struct {
				Kind          string   `json:"kind"`
				MapKey        string   `json:"mapKey"`
				ID            []byte   `json:"id"`
				BaseURL       string   `json:"baseURL"`
				Key           []byte   `json:"key"`
				HashFunc      string   `json:"hashFunc"`
				SignatureHash string   `json:"signatureHash"`
				Validity      []string `json:"validity"`
			}{kind, id, l.ID, l.BaseURL, key, l.HashFunc.String(), l.SignatureHashFunc.String(), validity(l.ValidityPeriodStart, l.ValidityPeriodEnd)})
			if !ok {
				return ""
			}
			parts = append(parts, s)
		}
	}
	slices.Sort(parts)
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// material resolves a trust root by name ("" for the default), once, and
// identifies it (trustIdentity).
func (s *Set) material(name string, trust TrustSource, cache map[string]trustMaterial) (trustMaterial, error) {
	if m, ok := cache[name]; ok {
		return m, nil
	}
	var tr *v1alpha1.TrustRoot
	if name != "" {
		var ok bool
		if tr, ok = s.TrustRoot(name); !ok {
			return trustMaterial{}, fmt.Errorf("spec.trustRootRef: TrustRoot %q not found", name)
		}
	}
	m, err := trust(tr)
	if err != nil {
		if name == "" {
			return trustMaterial{}, fmt.Errorf("loading the Sigstore public-good trust root: %w", err)
		}
		return trustMaterial{}, fmt.Errorf("loading TrustRoot %q: %w", name, err)
	}
	tm := trustMaterial{material: m, id: trustIdentity(tr, m)}
	cache[name] = tm
	return tm, nil
}
