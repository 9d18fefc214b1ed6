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
	"slices"
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
// engine release p reads signatures, own as pregate reads them
// (admission.Rule.Policies). engine is nil when p verifies none of the
// rule's signers.
func Predict(rule admission.Rule, p admission.Profile, engine *verify.Result, own verify.Result) Prediction {
	pred := Prediction{Engine: p.String(), Policy: rule.Policy, Rule: rule.Name, Image: own.Subject.Ref,
		Digest: own.Subject.Digest, Pregate: own.Status}
	if len(rule.Unsupported) > 0 {
		pred.Outcome = Undecided
		pred.Message = "not predicted: pregate does not evaluate " + strings.Join(rule.Unsupported, "; ")
		return pred
	}
	if q, fix, ok := refusal(rule, p, engine); ok {
		// The engine fails the rule whatever the image holds.
		pred.Outcome = failed(rule.Action)
		pred.Message = q.Does
		pred.Quirk = q.ID
		if own.Status == verify.Verified {
			pred.NeverPasses = true
			pred.Exists = accepted(own)
			pred.Why = q.Cite(p)
		}
		pred.Fix = fix
		return pred
	}
	if engine == nil {
		engine = &verify.Result{Status: verify.NoSignatures, Detail: p.String() + " verifies none of the rule's signers"}
	}
	switch engine.Status {
	case verify.Verified:
		if q, ok := tooManyReferrers(rule, p, *engine); ok {
			pred.Outcome = failed(rule.Action)
			pred.Message = q.Does
			pred.Quirk = q.ID
			pred.NeverPasses = own.Status == verify.Verified
			pred.Exists = accepted(own)
			pred.Why = q.Cite(p)
			pred.Fix = "remove referrers the image does not need, or use an ImageValidatingPolicy"
			return pred
		}
		pred.Outcome = Admit
		pred.Message = engine.Detail
		if own.Status != verify.Verified {
			// The engine accepts what pregate would not, such as an
			// attestation-only bundle taken for a signature.
			pred.Message += "; pregate alone would not: " + own.Detail
		}
		return pred
	case verify.LookupFailed, verify.ResolveFailed:
		pred.Outcome = Undecided
		pred.Message = engine.Detail
		return pred
	}
	pred.Outcome = failed(rule.Action)
	pred.Message = engine.Detail
	if own.Status == verify.Verified {
		pred.NeverPasses = true
		pred.Exists = accepted(own)
		var q admission.Quirk
		q, pred.Fix = whyMissed(rule, p, *engine, own)
		pred.Quirk = q.ID
		pred.Why = q.Cite(p)
	}
	return pred
}

// refusal is the quirk by which the engine release fails the rule for
// every image, whatever signatures it has, and its fix.
func refusal(r admission.Rule, p admission.Profile, engine *verify.Result) (admission.Quirk, string, bool) {
	quirk := func(id, fix string) (admission.Quirk, string, bool) {
		q, ok := p.Quirk(id)
		return q, fix, ok
	}
	switch r.Format {
	case admission.BundleFormat:
		switch {
		case admission.HasKey(r.Authorities):
			return quirk(admission.QuirkPCBundleKeylessOnly, "verify key-signed images with signatureFormat: legacy (the .sig tag), or sign keyless")
		case len(r.Attestations) == 0:
			return quirk(admission.QuirkPCBundleNoSignatures, "list the cosign v3 signature as an attestation of the authority "+
				"(attestations: [{name: signature, predicateType: https://sigstore.dev/cosign/sign/v1}]), or also sign in the legacy format and use signatureFormat: legacy")
		case admission.MaxIdentities(r.Authorities) > 1:
			return quirk(admission.QuirkOneIdentity, "one identity per authority: split the authority, or use one identity whose subjectRegExp is an alternation")
		}
	case admission.KyvernoSigstoreBundle:
		if engine == nil {
			return quirk(admission.QuirkBundleNoKeys, "verify key-signed images with type: Cosign (legacy signatures) or an ImageValidatingPolicy, or run Kyverno 1.19 or later")
		}
	}
	return admission.Quirk{}, "", false
}

// tooManyReferrers applies Kyverno's SigstoreBundle bound on the
// referrers it lists, counted before its artifactType filter.
func tooManyReferrers(r admission.Rule, p admission.Profile, engine verify.Result) (admission.Quirk, bool) {
	q, ok := p.Quirk(admission.QuirkBundleMaxReferrers)
	if !ok || r.Format != admission.KyvernoSigstoreBundle {
		return q, false
	}
	n := 0
	for _, l := range engine.Lookups {
		if l.Step == verify.ReferrersStep || l.Step == verify.FallbackTagStep {
			n += l.Found
		}
	}
	return q, n > admission.MaxBundleReferrers
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

// whyMissed says why the rule's engine release does not see what pregate
// accepted (own), the quirk that hides it, and the fix.
func whyMissed(r admission.Rule, p admission.Profile, engine, own verify.Result) (admission.Quirk, string) {
	quirk := func(id, fix string) (admission.Quirk, string) {
		q, ok := p.Quirk(id)
		if !ok {
			q = admission.Quirk{ID: id, Does: "the engine does not read it"}
		}
		return q, fix
	}
	acc := acceptedConsiderations(own)
	all := func(f func(verify.Consideration) bool) bool {
		return len(acc) > 0 && !slices.ContainsFunc(acc, func(c verify.Consideration) bool { return !f(c) })
	}
	legacyOnly := all(func(c verify.Consideration) bool { return c.Format != verify.BundleFormat })
	hiddenByAPI := all(func(c verify.Consideration) bool { return c.Source == verify.FallbackTagStep }) && apiAnswered(engine)
	switch r.Format {
	case admission.KyvernoCosign:
		return quirk(admission.QuirkCosignLegacyOnly,
			"set type: SigstoreBundle on this verifyImages entry, or use an ImageValidatingPolicy, or also sign in the legacy format (cosign sign --new-bundle-format=false --use-signing-config=false)")
	case admission.LegacyFormat:
		if admission.HasKey(r.Authorities) {
			// The bundle format takes no key authority either.
			return quirk(admission.QuirkPCLegacyUnlessBundle, "policy-controller reads a key-signed cosign v3 bundle in no format: also sign in the legacy format "+
				"(cosign sign --new-bundle-format=false --use-signing-config=false), or sign keyless and set signatureFormat: bundle")
		}
		return quirk(admission.QuirkPCLegacyUnlessBundle, "set signatureFormat: bundle on this keyless authority, with the signature listed as an attestation")
	case admission.KyvernoSigstoreBundle, admission.BundleFormat:
		switch {
		case legacyOnly:
			return quirk(admission.QuirkBundlesOnly, "also sign with cosign v3's bundle format (the default of cosign sign in v3)")
		case hiddenByAPI:
			return quirk(admission.QuirkReferrersAPIFirst,
				"have the registry list the referrers in its referrers API, or push the signature again with a cosign that writes through it")
		case r.Format == admission.KyvernoSigstoreBundle && all(func(c verify.Consideration) bool {
			return !strings.HasPrefix(c.ArtifactType, "application/vnd.dev.sigstore.bundle")
		}):
			return quirk(admission.QuirkBundleArtifactType,
				"sign again with cosign v3.1 or later, which lists bundles with their artifactType, or use an ImageValidatingPolicy")
		}
	}
	return admission.Quirk{ID: "unknown", Does: "the engine does not accept it"}, ""
}

// acceptedConsiderations are what pregate accepted.
func acceptedConsiderations(own verify.Result) []verify.Consideration {
	var out []verify.Consideration
	for _, c := range own.Considered {
		if c.Accepted {
			out = append(out, c)
		}
	}
	return out
}

// apiAnswered says whether the registry's referrers API answered.
func apiAnswered(r verify.Result) bool {
	return slices.ContainsFunc(r.Lookups, func(l verify.Lookup) bool { return l.Step == verify.ReferrersStep && l.Status == 200 })
}
