package admission

import (
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/verify"
)

// Reads is what the engine reads of an image's signatures under the
// rule: the places and formats of its Format.
func (r Rule) Reads() verify.Reads {
	legacy := verify.Reads{
		Sources: []verify.Step{verify.SignatureTagStep, verify.AttestationTagStep},
		Formats: []verify.Format{verify.SimpleSigningFormat, verify.DSSEFormat},
	}
	switch r.Format {
	case KyvernoCosign, LegacyFormat:
		return legacy
	case KyvernoSigstoreBundle, BundleFormat:
		// Both count every verified bundle as a signature, an
		// attestation-only one included: Kyverno's fetchBundles keeps every
		// bundle for a rule without a predicate type
		// (cpol/cosign/sigstore.go), and policy-controller's bundle path is
		// cosign's, which accepts a bundle of any predicate type
		// (research/sigstore-formats.md, §1.5).
		return verify.Reads{
			Sources:          []verify.Step{verify.ReferrersStep, verify.FallbackTagStep},
			Formats:          []verify.Format{verify.BundleFormat},
			AttestationsSign: true,
		}
	case KyvernoIVPOL:
		return verify.Reads{
			Sources:          []verify.Step{verify.ReferrersStep, verify.SignatureTagStep, verify.AttestationTagStep},
			BundlesFirst:     true,
			AttestationsSign: true,
		}
	}
	// Notary: nothing pregate reads is what it reads.
	return verify.Reads{Sources: []verify.Step{"notation"}}
}

// AttestorPolicies are the two ways an ImageValidatingPolicy attestor is
// checked, as Policies are for a rule; with predicateType, the attestation
// of that type it must have signed too.
func (r Rule) AttestorPolicies(a Attestor, predicateType string, trusted root.TrustedMaterial) (engine, own *verify.Policy) {
	name := r.ID() + " attestor " + a.Name
	var atts []verify.Attestation
	if predicateType != "" {
		name += " attestation " + predicateType
		atts = []verify.Attestation{{Name: predicateType, PredicateType: predicateType}}
	}
	auths := []verify.Authority{a.Authority}
	own = &verify.Policy{Name: name, Authorities: auths, Attestations: atts, Trusted: trusted}
	engine = &verify.Policy{Name: name + " (as " + string(r.Engine) + " reads it)", Authorities: auths,
		Attestations: atts, Trusted: trusted, Reads: r.Reads()}
	return engine, own
}

// Policies are the two ways the rule is checked: as its engine reads
// signatures (Reads), and as pregate reads them (every place and format),
// with the same signers and trust material. Their names tell them apart
// in results.
func (r Rule) Policies(trusted root.TrustedMaterial) (engine, own *verify.Policy) {
	own = &verify.Policy{Name: r.ID(), Authorities: r.Authorities, Attestations: r.Attestations, Trusted: trusted}
	engine = &verify.Policy{Name: r.ID() + " (as " + string(r.Engine) + " reads it)", Authorities: r.Authorities,
		Attestations: r.Attestations, Trusted: trusted, Reads: r.Reads()}
	return engine, own
}
