package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"regexp/syntax"
	"strings"

	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// omitted stands for a value too long or too sensitive to repeat in a
// message (a PEM key, a root.json): "Invalid value: <detail>".
var omitted = field.OmitValueType{}

// DefaultTrustPolicy sets the defaults the CRD declares: mode enforce and
// hashAlgorithm sha256.
func DefaultTrustPolicy(p *v1alpha1.TrustPolicy) {
	if p.Spec.Mode == "" {
		p.Spec.Mode = v1alpha1.ModeEnforce
	}
	for i := range p.Spec.Authorities {
		if k := p.Spec.Authorities[i].Key; k != nil && k.HashAlgorithm == "" {
			k.HashAlgorithm = v1alpha1.SHA256
		}
	}
}

// ValidateTrustPolicy checks a defaulted TrustPolicy on its own: everything
// the CRD's schema checks, and what it cannot (globs, regular expressions,
// public keys). It does not check that spec.trustRootRef exists; see
// (*Set).Validate.
func ValidateTrustPolicy(p *v1alpha1.TrustPolicy) field.ErrorList {
	errs := validateObjectName(p.Name, field.NewPath("metadata", "name"))
	spec := field.NewPath("spec")
	errs = append(errs, validateImages(p.Spec.Images, spec.Child("images"))...)
	if !oneOf(p.Spec.Mode, v1alpha1.ModeEnforce, v1alpha1.ModeWarn, v1alpha1.ModeAudit) {
		errs = append(errs, field.NotSupported(spec.Child("mode"), p.Spec.Mode,
			[]v1alpha1.Mode{v1alpha1.ModeEnforce, v1alpha1.ModeWarn, v1alpha1.ModeAudit}))
	}
	if p.Spec.TrustRootRef != "" {
		errs = append(errs, validateObjectName(p.Spec.TrustRootRef, spec.Child("trustRootRef"))...)
	}
	errs = append(errs, validateAuthorities(p.Spec.Authorities, spec.Child("authorities"))...)
	errs = append(errs, validateAttestations(p.Spec.Attestations, p.Spec.Authorities, spec.Child("attestations"))...)
	errs = append(errs, validateImagePullSecrets(p.Spec.ImagePullSecrets, spec.Child("imagePullSecrets"))...)
	return errs
}

func validateImages(images []v1alpha1.ImagePattern, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case len(images) == 0:
		return field.ErrorList{field.Required(path, "at least one image glob is required")}
	case len(images) > v1alpha1.MaxImages:
		errs = append(errs, field.TooMany(path, len(images), v1alpha1.MaxImages))
	}
	seen := make(map[string]bool, len(images))
	for i, img := range images {
		p := path.Index(i).Child("glob")
		if img.Glob == "" {
			errs = append(errs, field.Required(p, ""))
			continue
		}
		if seen[img.Glob] {
			errs = append(errs, field.Duplicate(p, img.Glob))
			continue
		}
		seen[img.Glob] = true
		if len(img.Glob) > 512 {
			errs = append(errs, field.TooLong(p, img.Glob, 512))
			continue
		}
		if _, err := gate.CompileGlob(img.Glob); err != nil {
			detail := err.Error()
			if ge, ok := errors.AsType[*gate.GlobError](err); ok {
				detail = ge.Reason
			}
			errs = append(errs, field.Invalid(p, img.Glob, detail))
		}
	}
	return errs
}

func validateAuthorities(auths []v1alpha1.Authority, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case len(auths) == 0:
		return field.ErrorList{field.Required(path, "at least one authority is required")}
	case len(auths) > v1alpha1.MaxAuthorities:
		errs = append(errs, field.TooMany(path, len(auths), v1alpha1.MaxAuthorities))
	}
	seen := make(map[string]bool, len(auths))
	for i := range auths {
		a := &auths[i]
		p := path.Index(i)
		switch {
		case a.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case seen[a.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), a.Name))
		default:
			seen[a.Name] = true
			errs = append(errs, validateMaxLength(a.Name, 63, p.Child("name"))...)
		}
		errs = append(errs, validateAuthority(a, p)...)
	}
	return errs
}

func validateAuthority(a *v1alpha1.Authority, path *field.Path) field.ErrorList {
	var set []string
	if a.Keyless != nil {
		set = append(set, "keyless")
	}
	if a.Key != nil {
		set = append(set, "key")
	}
	if a.Static != nil {
		set = append(set, "static")
	}
	switch len(set) {
	case 0:
		return field.ErrorList{field.Required(path, "exactly one of keyless, key and static must be set")}
	case 1:
	default:
		return field.ErrorList{field.Forbidden(path,
			fmt.Sprintf("%s are set: exactly one of keyless, key and static must be set", andList(set)))}
	}

	var errs field.ErrorList
	switch {
	case a.Keyless != nil:
		errs = validateKeyless(a.Keyless, path.Child("keyless"))
	case a.Key != nil:
		errs = validateKey(a.Key, path.Child("key"))
		if a.InsecureIgnoreSCT {
			errs = append(errs, field.Forbidden(path.Child("insecureIgnoreSCT"),
				"applies only to keyless authorities: a public key has no certificate to carry an SCT"))
		}
	case a.Static != nil:
		if !oneOf(a.Static.Action, v1alpha1.StaticActionPass, v1alpha1.StaticActionFail) {
			p := path.Child("static", "action")
			if a.Static.Action == "" {
				errs = append(errs, field.Required(p, `"pass" or "fail"`))
			} else {
				errs = append(errs, field.NotSupported(p, a.Static.Action,
					[]v1alpha1.StaticAction{v1alpha1.StaticActionPass, v1alpha1.StaticActionFail}))
			}
		}
		errs = append(errs, validateMaxLength(a.Static.Message, 1024, path.Child("static", "message"))...)
		for _, flag := range []struct {
			name string
			set  bool
		}{
			{"insecureIgnoreTlog", a.InsecureIgnoreTlog},
			{"insecureIgnoreSCT", a.InsecureIgnoreSCT},
			{"signedTimestamps", a.SignedTimestamps},
		} {
			if flag.set {
				errs = append(errs, field.Forbidden(path.Child(flag.name), "a static authority verifies no signature"))
			}
		}
	}
	return errs
}

func validateKeyless(k *v1alpha1.KeylessAuthority, path *field.Path) field.ErrorList {
	path = path.Child("identities")
	var errs field.ErrorList
	switch {
	case len(k.Identities) == 0:
		return field.ErrorList{field.Required(path, "at least one identity is required")}
	case len(k.Identities) > v1alpha1.MaxIdentities:
		errs = append(errs, field.TooMany(path, len(k.Identities), v1alpha1.MaxIdentities))
	}
	for i, id := range k.Identities {
		p := path.Index(i)
		errs = append(errs, validateMatcher("issuer", id.Issuer, id.IssuerRegExp, p)...)
		errs = append(errs, validateMatcher("subject", id.Subject, id.SubjectRegExp, p)...)
	}
	return errs
}

// validateMatcher checks one exact-or-regexp pair of an Identity: exactly one
// of name and nameRegExp, and a regexp that compiles.
func validateMatcher(name, exact, re string, path *field.Path) field.ErrorList {
	reName := name + "RegExp"
	switch {
	case exact == "" && re == "":
		return field.ErrorList{field.Required(path.Child(name), fmt.Sprintf("exactly one of %s and %s must be set", name, reName))}
	case exact != "" && re != "":
		return field.ErrorList{field.Forbidden(path.Child(reName), fmt.Sprintf("exactly one of %s and %s must be set", name, reName))}
	case re != "":
		if _, err := regexp.Compile(re); err != nil {
			return field.ErrorList{field.Invalid(path.Child(reName), re, regexpError(re, err))}
		}
	}
	return nil
}

// regexpError is the reason re does not compile, without repeating re:
// "error parsing regexp: missing closing )".
func regexpError(re string, err error) string {
	se, ok := errors.AsType[*syntax.Error](err)
	if !ok {
		return err.Error()
	}
	msg := "error parsing regexp: " + string(se.Code)
	if se.Expr != re {
		msg += ": `" + se.Expr + "`"
	}
	return msg
}

var hashAlgorithms = []v1alpha1.HashAlgorithm{v1alpha1.SHA224, v1alpha1.SHA256, v1alpha1.SHA384, v1alpha1.SHA512}

func validateKey(k *v1alpha1.KeyAuthority, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case k.Data == "" && k.SecretRef == nil:
		errs = append(errs, field.Required(path, "exactly one of data and secretRef must be set"))
	case k.Data != "" && k.SecretRef != nil:
		errs = append(errs, field.Forbidden(path.Child("secretRef"), "exactly one of data and secretRef must be set"))
	case k.Data != "":
		if err := parsePublicKey([]byte(k.Data)); err != nil {
			errs = append(errs, field.Invalid(path.Child("data"), omitted, err.Error()))
		} else if _, err := verify.NewKey([]byte(k.Data)); err != nil {
			// The key parses, but sigstore rejects it (an RSA key of 1024
			// bits, a P-224 curve, a weak modulus): say so now rather than
			// when the policy is compiled.
			errs = append(errs, field.Invalid(path.Child("data"), omitted, err.Error()+": "+sigstoreKeys))
		}
	default:
		errs = append(errs, validateSecretKeySelector(k.SecretRef, path.Child("secretRef"))...)
	}
	if !oneOf(k.HashAlgorithm, hashAlgorithms...) {
		errs = append(errs, field.NotSupported(path.Child("hashAlgorithm"), k.HashAlgorithm, hashAlgorithms))
	}
	return errs
}

// sigstoreKeys is what sigstore's key checks (verify.NewKey) accept.
const sigstoreKeys = "sigstore accepts RSA keys of 2048, 3072 or 4096 bits, ECDSA keys on P-256, P-384 or P-521, and Ed25519 keys"

// parsePublicKey checks that data is one PEM-encoded ECDSA, RSA or Ed25519
// public key, as sigstore's cryptoutils.UnmarshalPEMToPublicKey reads it:
// a PKIX "PUBLIC KEY" block or a PKCS #1 "RSA PUBLIC KEY" block.
func parsePublicKey(data []byte) error {
	block, rest := pem.Decode(data)
	if block == nil {
		return errors.New("not a PEM-encoded public key: no PEM block found")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("holds more than one PEM block: give exactly one public key")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return fmt.Errorf("is a private key (%s): give the public key", block.Type)
		}
		return fmt.Errorf("PEM block type is %q, want \"PUBLIC KEY\"", block.Type)
	}
	if err != nil {
		// The asn1 errors of a block that is not DER at all say nothing a
		// user can act on.
		_, structural := errors.AsType[asn1.StructuralError](err)
		_, syntactic := errors.AsType[asn1.SyntaxError](err)
		if structural || syntactic {
			return fmt.Errorf("the %s block is not a DER-encoded public key", block.Type)
		}
		return fmt.Errorf("parsing the public key: %w", err)
	}
	switch key.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("%T keys are not supported: use ECDSA, RSA or Ed25519", key)
	}
}

func validateImagePullSecrets(refs []v1alpha1.SecretReference, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(refs) > v1alpha1.MaxImagePullSecrets {
		errs = append(errs, field.TooMany(path, len(refs), v1alpha1.MaxImagePullSecrets))
	}
	for i, ref := range refs {
		p := path.Index(i)
		errs = append(errs, validateObjectName(ref.Name, p.Child("name"))...)
		if ref.Namespace == "" {
			errs = append(errs, field.Required(p.Child("namespace"), "a TrustPolicy is cluster-scoped"))
		} else {
			errs = append(errs, messages(p.Child("namespace"), ref.Namespace, utilvalidation.IsDNS1123Label(ref.Namespace))...)
		}
	}
	return errs
}

func validateSecretKeySelector(ref *v1alpha1.SecretKeySelector, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	} else {
		errs = append(errs, messages(path.Child("name"), ref.Name, utilvalidation.IsDNS1123Subdomain(ref.Name))...)
	}
	if ref.Namespace == "" {
		errs = append(errs, field.Required(path.Child("namespace"), "a TrustPolicy or TrustRoot is cluster-scoped"))
	} else {
		errs = append(errs, messages(path.Child("namespace"), ref.Namespace, utilvalidation.IsDNS1123Label(ref.Namespace))...)
	}
	if ref.Key == "" {
		errs = append(errs, field.Required(path.Child("key"), ""))
	} else {
		errs = append(errs, messages(path.Child("key"), ref.Key, utilvalidation.IsConfigMapKey(ref.Key))...)
	}
	return errs
}

func validateAttestations(atts []v1alpha1.Attestation, auths []v1alpha1.Authority, path *field.Path) field.ErrorList {
	if len(atts) == 0 {
		return nil
	}
	var errs field.ErrorList
	if len(atts) > v1alpha1.MaxAttestations {
		errs = append(errs, field.TooMany(path, len(atts), v1alpha1.MaxAttestations))
	}
	verifies := len(auths) == 0 // reported as missing authorities already
	for _, a := range auths {
		verifies = verifies || a.Keyless != nil || a.Key != nil
	}
	if !verifies {
		errs = append(errs, field.Forbidden(path,
			"attestations are verified by a keyless or key authority, and every authority is static"))
	}
	seen := make(map[string]bool, len(atts))
	for i, att := range atts {
		p := path.Index(i)
		switch {
		case att.Name == "":
			errs = append(errs, field.Required(p.Child("name"), ""))
		case seen[att.Name]:
			errs = append(errs, field.Duplicate(p.Child("name"), att.Name))
		default:
			seen[att.Name] = true
			errs = append(errs, validateMaxLength(att.Name, 63, p.Child("name"))...)
		}
		if len(att.Conditions) > MaxConditions {
			errs = append(errs, field.TooMany(p.Child("conditions"), len(att.Conditions), MaxConditions))
		}
		for j, c := range att.Conditions {
			cp := p.Child("conditions").Index(j)
			if strings.TrimSpace(c.Expression) == "" {
				errs = append(errs, field.Required(cp.Child("expression"), ""))
				continue
			}
			errs = append(errs, validateMaxLength(c.Expression, 4096, cp.Child("expression"))...)
			errs = append(errs, validateMaxLength(c.Message, 1024, cp.Child("message"))...)
			if _, err := compileConditions([]v1alpha1.AttestationCondition{c}); err != nil {
				_, why, _ := strings.Cut(err.Error(), ": ")
				errs = append(errs, field.Invalid(cp.Child("expression"), c.Expression, why))
			}
		}
		if att.PredicateType == "" {
			errs = append(errs, field.Required(p.Child("predicateType"), ""))
		} else if len(att.PredicateType) > 1024 {
			errs = append(errs, field.TooLong(p.Child("predicateType"), att.PredicateType, 1024))
		} else if u, err := url.Parse(att.PredicateType); err != nil || !u.IsAbs() || (u.Host == "" && u.Opaque == "") {
			errs = append(errs, field.Invalid(p.Child("predicateType"), att.PredicateType,
				`must be a predicate type URI, such as "https://slsa.dev/provenance/v1" (cosign's short names are not accepted)`))
		}
	}
	return errs
}

// ValidateTrustRoot checks a TrustRoot: everything the CRD's schema checks,
// and that the TUF root and trusted_root.json it holds parse.
func ValidateTrustRoot(r *v1alpha1.TrustRoot) field.ErrorList {
	errs := validateObjectName(r.Name, field.NewPath("metadata", "name"))
	spec := field.NewPath("spec")
	var set []string
	if r.Spec.PublicGood != nil {
		set = append(set, "publicGood")
	}
	if r.Spec.TUF != nil {
		set = append(set, "tuf")
	}
	if r.Spec.TrustedRoot != nil {
		set = append(set, "trustedRoot")
	}
	switch len(set) {
	case 0:
		return append(errs, field.Required(spec, "exactly one of publicGood, tuf and trustedRoot must be set"))
	case 1:
	default:
		return append(errs, field.Forbidden(spec,
			fmt.Sprintf("%s are set: exactly one of publicGood, tuf and trustedRoot must be set", andList(set))))
	}
	switch {
	case r.Spec.TUF != nil:
		errs = append(errs, validateTUF(r.Spec.TUF, spec.Child("tuf"))...)
	case r.Spec.TrustedRoot != nil:
		errs = append(errs, validateTrustedRoot(r.Spec.TrustedRoot, spec.Child("trustedRoot"))...)
	}
	return errs
}

const mirrorSchemes = "must be an https URL (http only for localhost, 127.0.0.1 and [::1])"

func validateTUF(t *v1alpha1.TUFTrustRoot, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	p := path.Child("mirror")
	if t.Mirror == "" {
		errs = append(errs, field.Required(p, ""))
	} else if len(t.Mirror) > 2048 {
		errs = append(errs, field.TooLong(p, t.Mirror, 2048))
	} else if u, err := url.Parse(t.Mirror); err != nil {
		errs = append(errs, field.Invalid(p, omitted, fmt.Sprintf("not a URL: %v", err)))
	} else {
		switch {
		case u.User != nil:
			errs = append(errs, field.Invalid(p, u.Redacted(), "must not hold credentials"))
		case u.Host == "":
			errs = append(errs, field.Invalid(p, t.Mirror, mirrorSchemes))
		case u.Scheme == "https":
		case u.Scheme == "http" && oneOf(u.Hostname(), "localhost", "127.0.0.1", "::1"):
		default:
			errs = append(errs, field.Invalid(p, t.Mirror, mirrorSchemes))
		}
	}
	p = path.Child("root")
	if t.Root == "" {
		return append(errs, field.Required(p, "the content of the mirror's initial root.json"))
	}
	var root struct {
		Signed *struct {
			Type string `json:"_type"`
		} `json:"signed"`
		Signatures []json.RawMessage `json:"signatures"`
	}
	switch err := json.Unmarshal([]byte(t.Root), &root); {
	case err != nil:
		errs = append(errs, field.Invalid(p, omitted, fmt.Sprintf("not a TUF root.json: %v", err)))
	case root.Signed == nil || root.Signed.Type != "root":
		errs = append(errs, field.Invalid(p, omitted, `not a TUF root.json: signed._type must be "root"`))
	case len(root.Signatures) == 0:
		errs = append(errs, field.Invalid(p, omitted, "not a TUF root.json: it has no signatures"))
	}
	return errs
}

func validateTrustedRoot(t *v1alpha1.TrustedRootSource, path *field.Path) field.ErrorList {
	switch {
	case t.Data == "" && t.SecretRef == nil:
		return field.ErrorList{field.Required(path, "exactly one of data and secretRef must be set")}
	case t.Data != "" && t.SecretRef != nil:
		return field.ErrorList{field.Forbidden(path.Child("secretRef"), "exactly one of data and secretRef must be set")}
	case t.SecretRef != nil:
		return validateSecretKeySelector(t.SecretRef, path.Child("secretRef"))
	}
	p := path.Child("data")
	var tr struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal([]byte(t.Data), &tr); err != nil {
		return field.ErrorList{field.Invalid(p, omitted, fmt.Sprintf("not a trusted_root.json: %v", err))}
	}
	if tr.MediaType != v1alpha1.TrustedRootMediaType {
		return field.ErrorList{field.Invalid(p, omitted, fmt.Sprintf("mediaType is %q, want %q",
			tr.MediaType, v1alpha1.TrustedRootMediaType))}
	}
	return nil
}

// validateObjectName checks the name of an object or a reference to one: a
// DNS subdomain, as Kubernetes requires of object names.
func validateObjectName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "")}
	}
	return messages(path, name, utilvalidation.IsDNS1123Subdomain(name))
}

func validateMaxLength(s string, n int, path *field.Path) field.ErrorList {
	if len(s) > n {
		return field.ErrorList{field.TooLong(path, s, n)}
	}
	return nil
}

// messages turns the messages of a k8s.io/apimachinery/pkg/util/validation
// check into errors.
func messages(path *field.Path, value string, msgs []string) field.ErrorList {
	errs := make(field.ErrorList, len(msgs))
	for i, m := range msgs {
		errs[i] = field.Invalid(path, value, m)
	}
	return errs
}

// andList joins words as "a and b" or "a, b and c".
func andList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

func oneOf[T comparable](v T, allowed ...T) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}
