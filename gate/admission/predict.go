// Package admission predicts what an admission controller will do with an
// image: for each rule of the cluster's admission policies (config/
// admission), the image is checked twice from the same discovery, once as
// the rule's engine reads signatures and once as pregate reads them, and
// the two answers make the prediction. When pregate finds a valid
// signature from the rule's own signers that the engine cannot see, the
// rule can never pass for that image, and the prediction says what exists,
// where, why the engine misses it, and the fix.
package admission

import (
	"fmt"
	"strings"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// Outcome is what the engine does with a Pod running the image.
type Outcome = gate.AdmissionOutcome

// The outcomes.
const (
	// Admit: the rule passes.
	Admit = gate.AdmissionAdmit
	// Deny: the rule fails and its action is Enforce.
	Deny = gate.AdmissionDeny
	// Warn: the rule fails and the Pod is admitted with a warning.
	Warn = gate.AdmissionWarn
	// AuditOnly: the rule fails and the failure is only reported.
	AuditOnly = gate.AdmissionAudit
	// Undecided: the rule asks what pregate does not evaluate, or the
	// registry could not be read: no prediction.
	Undecided = gate.AdmissionUndecided
)

// Prediction is the engine's answer for one rule and one image.
type Prediction = gate.Admission

// Predict combines the rule's two checks of one image: engine as the
// rule's engine reads signatures, own as pregate reads them
// (admission.Rule.Policies).
func Predict(rule admission.Rule, engine, own verify.Result) Prediction {
	p := Prediction{Engine: string(rule.Engine), Policy: rule.Policy, Rule: rule.Name, Image: own.Subject.Ref,
		Digest: own.Subject.Digest, Pregate: own.Status}
	if len(rule.Unsupported) > 0 {
		p.Outcome = Undecided
		p.Message = "not predicted: pregate does not evaluate " + strings.Join(rule.Unsupported, "; ")
		return p
	}
	if rule.Format == admission.BundleFormat && hasKeyAuthority(rule) {
		// checkOptsFromAuthority: "when using the new bundle format, the
		// authority must be keyless".
		p.Outcome = failed(rule.Action)
		p.Message = "signatureFormat: bundle takes keyless authorities only; policy-controller rejects a key authority with it"
		p.Fix = "verify key-signed images with signatureFormat: legacy (the .sig tag), or sign keyless"
		return p
	}
	switch engine.Status {
	case verify.Verified:
		p.Outcome = Admit
		p.Message = engine.Detail
		if own.Status != verify.Verified {
			// The engine accepts what pregate would not, such as an
			// attestation-only bundle taken for a signature.
			p.Message += "; pregate alone would not: " + own.Detail
		}
		return p
	case verify.LookupFailed, verify.ResolveFailed:
		p.Outcome = Undecided
		p.Message = engine.Detail
		return p
	}
	p.Outcome = failed(rule.Action)
	p.Message = engine.Detail
	if own.Status == verify.Verified {
		p.NeverPasses = true
		p.Exists = accepted(own)
		p.Why, p.Fix = whyMissed(rule)
	}
	return p
}

// failed is the outcome of a failed rule.
func failed(a admission.Action) Outcome {
	switch a {
	case admission.Audit:
		return AuditOnly
	case admission.Warn:
		return Warn
	}
	return Deny
}

func hasKeyAuthority(r admission.Rule) bool {
	for _, a := range r.Authorities {
		if a.Key != nil {
			return true
		}
	}
	return false
}

// accepted says what pregate accepted, and where it is.
func accepted(own verify.Result) string {
	var parts []string
	for _, c := range own.Considered {
		if !c.Accepted {
			continue
		}
		what := describe(c.Format, c.Source)
		if c.Kind != verify.SignatureKind {
			what += " (attestation " + c.Kind + ")"
		}
		if c.Signer != "" {
			what += ", signed by " + c.Signer
		}
		parts = append(parts, what)
	}
	return strings.Join(parts, "; ")
}

// describe names a format and a place as a user knows them.
func describe(f verify.Format, s verify.Step) string {
	var what string
	switch f {
	case verify.BundleFormat:
		what = "a cosign v3 Sigstore bundle"
	case verify.SimpleSigningFormat:
		what = "a legacy cosign signature"
	case verify.DSSEFormat:
		what = "a legacy cosign attestation"
	default:
		what = "a " + string(f)
	}
	switch s {
	case verify.ReferrersStep:
		return what + " as an OCI referrer (referrers API)"
	case verify.FallbackTagStep:
		return what + " as an OCI referrer (sha256-<digest> fallback tag)"
	case verify.SignatureTagStep:
		return what + " in the sha256-<digest>.sig tag"
	case verify.AttestationTagStep:
		return what + " in the sha256-<digest>.att tag"
	}
	return fmt.Sprintf("%s (%s)", what, s)
}

// whyMissed says why the rule's engine does not see what pregate
// accepted, and the fix, for each way an engine reads signatures.
func whyMissed(r admission.Rule) (why, fix string) {
	switch r.Format {
	case admission.KyvernoCosign:
		return "Kyverno's verifyImages type: Cosign (the default) reads only cosign's legacy format, from the sha256-<digest>.sig and .att tags " +
				"(pkg/image/verifiers/cpol/cosign/cosign.go builds its check without the bundle format)",
			"set type: SigstoreBundle on this verifyImages entry, or use an ImageValidatingPolicy, or also sign in the legacy format (cosign sign --new-bundle-format=false --use-signing-config=false)"
	case admission.KyvernoSigstoreBundle:
		return "Kyverno's type: SigstoreBundle reads only Sigstore bundles listed by the referrers API or its fallback tag",
			"also sign with cosign v3's bundle format (the default of cosign sign in v3)"
	case admission.LegacyFormat:
		return "policy-controller reads cosign's legacy format only, from the .sig and .att tags, unless the authority sets signatureFormat: bundle " +
				"(pkg/webhook/validator.go checkOptsFromAuthority)",
			"set signatureFormat: bundle on this keyless authority"
	case admission.BundleFormat:
		return "with signatureFormat: bundle policy-controller reads only Sigstore bundles",
			"sign with cosign v3's bundle format, or set signatureFormat: legacy"
	}
	return "the engine does not read it", ""
}
