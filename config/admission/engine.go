package admission

import (
	"slices"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/verify"
)

// bundleArtifactType is the artifactType prefix of a Sigstore bundle.
const bundleArtifactType = "application/vnd.dev.sigstore.bundle"

// Reads is what the engine release p reads of an image's signatures under
// the rule: the places and formats of its Format, and the profile's quirks
// of that Format.
func (r Rule) Reads(p Profile) verify.Reads {
	legacy := verify.Reads{
		Sources: []verify.Step{verify.SignatureTagStep, verify.AttestationTagStep},
		Formats: []verify.Format{verify.SimpleSigningFormat, verify.DSSEFormat},
	}
	apiFirst := p.Has(QuirkReferrersAPIFirst)
	switch r.Format {
	case KyvernoCosign:
		return legacy
	case LegacyFormat:
		legacy.AttestationsOnly = p.Has(QuirkPCAttestationsOnly)
		return legacy
	case KyvernoSigstoreBundle:
		reads := verify.Reads{
			Sources:            []verify.Step{verify.ReferrersStep, verify.FallbackTagStep},
			Formats:            []verify.Format{verify.BundleFormat},
			AttestationsSign:   p.Has(QuirkBundleAttestationSigns),
			FallbackWithoutAPI: apiFirst,
		}
		if p.Has(QuirkBundleArtifactType) {
			reads.ArtifactTypePrefix = bundleArtifactType
		}
		return reads
	case BundleFormat:
		return verify.Reads{
			Sources:            []verify.Step{verify.ReferrersStep, verify.FallbackTagStep},
			Formats:            []verify.Format{verify.BundleFormat},
			FallbackWithoutAPI: apiFirst,
			AttestationsOnly:   p.Has(QuirkPCAttestationsOnly),
		}
	case KyvernoIVPOL:
		return verify.Reads{
			Sources:            []verify.Step{verify.ReferrersStep, verify.FallbackTagStep, verify.SignatureTagStep, verify.AttestationTagStep},
			BundlesFirst:       p.Has(QuirkIVPOLBundlesFirst),
			AttestationsSign:   p.Has(QuirkIVPOLBundlesFirst),
			FallbackWithoutAPI: apiFirst,
		}
	}
	// Notary: nothing pregate reads is what it reads.
	return verify.Reads{Sources: []verify.Step{"notation"}}
}

// engineAuthorities are the rule's authorities that the engine release
// can verify with at all: Kyverno's SigstoreBundle verifies no key before
// 1.19 (QuirkBundleNoKeys).
func (r Rule) engineAuthorities(p Profile) []verify.Authority {
	if r.Format != KyvernoSigstoreBundle || !p.Has(QuirkBundleNoKeys) {
		return r.Authorities
	}
	return slices.DeleteFunc(slices.Clone(r.Authorities), func(a verify.Authority) bool { return a.Key != nil })
}

// AttestorPolicies are the two ways an ImageValidatingPolicy attestor is
// checked, as Policies are for a rule; with predicateType, the attestation
// of that type it must have signed too.
func (r Rule) AttestorPolicies(p Profile, a Attestor, predicateType string, trusted root.TrustedMaterial) (engine, own *verify.Policy) {
	name := r.ID() + " attestor " + a.Name
	var atts []verify.Attestation
	if predicateType != "" {
		name += " attestation " + predicateType
		atts = []verify.Attestation{{Name: predicateType, PredicateType: predicateType}}
	}
	auths := []verify.Authority{a.Authority}
	own = &verify.Policy{Name: name, Authorities: auths, Attestations: atts, Trusted: trusted}
	engine = &verify.Policy{Name: name + " (as " + p.String() + " reads it)", Authorities: auths,
		Attestations: atts, Trusted: trusted, Reads: r.Reads(p)}
	return engine, own
}

// Policies are the two ways the rule is checked: as the engine release p
// reads signatures (Reads), and as pregate reads them (every place and
// format), with the same signers and trust material. Their names tell them
// apart in results. engine is nil when p verifies none of the rule's
// signers (Kyverno's SigstoreBundle before 1.19 verifies no key).
func (r Rule) Policies(p Profile, trusted root.TrustedMaterial) (engine, own *verify.Policy) {
	own = &verify.Policy{Name: r.ID(), Authorities: r.Authorities, Attestations: r.Attestations, Trusted: trusted}
	if auths := r.engineAuthorities(p); len(auths) > 0 {
		engine = &verify.Policy{Name: r.ID() + " (as " + p.String() + " reads it)", Authorities: auths,
			Attestations: r.Attestations, Trusted: trusted, Reads: r.Reads(p)}
	}
	return engine, own
}
