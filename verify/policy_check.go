package verify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Check judges everything discovery found for one image against the
// policy. It does no I/O: the trust material is in the policy, the
// artifacts in the discovery. (sigstore-go reads the clock only for
// authorities that verify certificates at the current time, IgnoreTlog
// without SignedTimestamps.)
//
// The status, decided in this order:
//
//   - ResolveFailed: the subject carries no usable digest.
//   - Verified: a static authority passes every image (no artifact is
//     looked at), and the policy requires no attestation. (Validate
//     rejects a static pass beside required attestations; Check ignores
//     such a static authority.)
//   - StaticFail: every authority that could accept is a static fail.
//   - Verified: a signature was accepted by an authority and every
//     required attestation was verified (by any authority). A signature is
//     a cosign v3 bundle (DSSE statement of predicate type
//     https://sigstore.dev/cosign/sign/v1 whose subject is the image
//     digest) or a legacy simple-signing payload naming the image digest.
//     Attestations never sign an image, and neither does a
//     message-signature bundle (cosign sign-blob), even over the bytes of
//     the image's manifest.
//   - LookupFailed: nothing settled it and an artifact that was listed
//     could not be fetched (Artifact.Unfetched: an error answer, a timeout,
//     a digest mismatch, a bound on discovery): it may be the signature or
//     attestation that verifies, so a denial cannot be concluded.
//   - AttestationMissing: signed, but a required attestation was not
//     found or did not verify.
//   - IdentityMismatch: a signature verified against the trust material,
//     but its signer matched no authority's identities.
//   - InvalidSignature: signature-like artifacts were found (or could not
//     be read), and none verified.
//   - LookupFailed: nothing signature-like was found and a lookup failed,
//     so absence cannot be concluded.
//   - NoSignatures: every lookup succeeded and found no signature.
//
// Failed lookups are named in Detail whatever the status, and a denial
// says which places were looked up.
// Considered has one entry per artifact, saying what it is and which
// check accepted or rejected it.
func (p *Policy) Check(d Discovery) Result {
	d = p.Reads.filter(d)
	res := Result{Policy: p.Name, Subject: d.Subject, Lookups: d.Lookups}
	dg, err := parseDigest(d.Subject.Digest)
	if err != nil {
		res.Status = ResolveFailed
		res.Detail = fmt.Sprintf("%s: nothing to verify without a digest: %v", subjectName(d.Subject), err)
		return res
	}

	if st, ok := p.static(dg.text); ok {
		st.Subject, st.Lookups = res.Subject, res.Lookups
		return st
	}
	c := p.authorities()
	arts := orderArtifacts(d.Artifacts)
	outs := make([]outcome, 0, len(arts))
	for _, a := range arts {
		o := p.evaluate(a, c.auths, c.invalid, dg)
		outs = append(outs, o)
		res.Considered = append(res.Considered, o.c)
	}
	res.Status, res.Detail = p.decide(dg, outs, d)
	if res.Status != Verified && res.Status != NoSignatures {
		res.Detail += " (looked up: " + lookedUp(d.Lookups) + ")"
	}
	return res
}

// static returns the policy's result for every image, about what (a
// digest or a reference), when its authorities decide without looking at
// any signature: a static pass and no required attestation (Verified), or
// static fails only (StaticFail). Such a result needs nothing from the
// registry, not even the digest.
func (p *Policy) static(what string) (Result, bool) {
	c := p.authorities()
	switch {
	case c.pass != nil && len(p.Attestations) == 0:
		return Result{Policy: p.Name, Status: Verified,
			Detail: fmt.Sprintf("%s: policy %q accepts every image (static authority %q)", what, p.Name, c.pass.name)}, true
	case len(c.auths) == 0 && len(c.staticFails) > 0:
		return Result{Policy: p.Name, Status: StaticFail,
			Detail: fmt.Sprintf("%s: policy %q rejects every image (static authority %q)", what, p.Name, c.staticFails[0])}, true
	}
	return Result{}, false
}

// decide turns the outcomes into a status and a one-line detail.
func (p *Policy) decide(dg imageDigest, outs []outcome, d Discovery) (Status, string) {
	found := foundSummary(outs)
	failed := failedSummary(d.Failures())
	var unfetched *outcome
	for i := range outs {
		if outs[i].unfetched {
			unfetched = &outs[i]
			break
		}
	}
	// cannotConclude is the LookupFailed detail when an artifact that
	// could not be fetched might have changed the verdict: what was
	// concluded without it (why), and that artifact.
	cannotConclude := func(why string) (Status, string) {
		return LookupFailed, fmt.Sprintf("%s: %s; %s, but an artifact could not be fetched, so a denial cannot be concluded: %s%s",
			dg.text, found, why, unfetched.c.Reason, failed)
	}

	var signed *outcome
	for i := range outs {
		if outs[i].class == signatureClass && outs[i].c.Accepted {
			signed = &outs[i]
			break
		}
	}
	attestationsOnly := p.Reads.AttestationsOnly && len(p.Attestations) > 0
	if signed != nil || attestationsOnly {
		var by string
		if signed != nil && !attestationsOnly {
			by = fmt.Sprintf("signed by %s, trusted by authority %q of policy %q", signed.c.Signer, signed.c.Authority, p.Name)
		} else {
			by = fmt.Sprintf("policy %q checks attestations only", p.Name)
		}
		missing, verified := p.attestationsFound(outs)
		if len(missing) > 0 {
			if unfetched != nil {
				return cannotConclude(by + ", " + missing[0])
			}
			detail := fmt.Sprintf("%s: %s; %s, but %s", dg.text, found, by, missing[0])
			if len(missing) > 1 {
				detail += fmt.Sprintf(" (and %d more missing)", len(missing)-1)
			}
			return AttestationMissing, detail + failed
		}
		detail := fmt.Sprintf("%s: %s; %s", dg.text, found, by)
		if len(verified) > 0 {
			detail += "; attestations verified: " + strings.Join(verified, ", ")
		}
		return Verified, detail + failed
	}

	var mismatch, rejected *outcome
	signatureLike := 0
	for i := range outs {
		o := &outs[i]
		if o.class == attestationClass {
			continue
		}
		signatureLike++
		if o.identityMismatch && mismatch == nil {
			mismatch = o
		}
		if rejected == nil {
			rejected = o
		}
	}
	switch {
	case unfetched != nil && mismatch != nil:
		return cannotConclude(fmt.Sprintf("signed by %s, which no authority of policy %q trusts", mismatch.c.Signer, p.Name))
	case unfetched != nil && unfetched != rejected:
		return cannotConclude("none verified: " + rejected.c.Reason)
	case unfetched != nil:
		return cannotConclude("none verified")
	case mismatch != nil:
		return IdentityMismatch, fmt.Sprintf("%s: %s; signed by %s, which no authority of policy %q trusts%s",
			dg.text, found, mismatch.c.Signer, p.Name, failed)
	case signatureLike > 0:
		return InvalidSignature, fmt.Sprintf("%s: %s; none verified: %s%s", dg.text, found, rejected.c.Reason, failed)
	}
	var also string
	if len(outs) > 0 {
		also = fmt.Sprintf("; %s, and an attestation is not a signature", found)
	}
	if failed != "" {
		return LookupFailed, fmt.Sprintf("%s: no signature found%s, so absence cannot be concluded%s", dg.text, failed, also)
	}
	if also != "" {
		return NoSignatures, fmt.Sprintf("%s: no signature found%s", dg.text, also)
	}
	return NoSignatures, fmt.Sprintf("%s: no signature found (looked up: %s)", dg.text, lookedUp(d.Lookups))
}

// orderArtifacts returns the artifacts in the order Discover sorts them
// (place, then manifest, then layer digest), so results do not depend on
// the order lookups finished in, and keeps a manifest only under the
// first place that lists it, as Discover merges them (Discover's own
// output has no manifest in two places; a hand-built Discovery may).
// Layers that share a digest within one manifest are all kept: a legacy
// .sig manifest signed by two keys lists the same simple-signing payload
// twice, each with its own signature annotation. Ties (Discover reads
// layers concurrently) are broken by format, signature and certificate,
// so the order is always the same.
func orderArtifacts(in []Artifact) []Artifact {
	arts := slices.Clone(in)
	slices.SortStableFunc(arts, func(a, b Artifact) int {
		return cmp.Or(
			cmp.Compare(placeRank(a.Source), placeRank(b.Source)),
			strings.Compare(a.Manifest, b.Manifest),
			strings.Compare(a.Layer, b.Layer),
			strings.Compare(string(a.Format), string(b.Format)),
			strings.Compare(a.Annotations[legacySignatureAnn], b.Annotations[legacySignatureAnn]),
			strings.Compare(a.Annotations[legacyCertificateAnn], b.Annotations[legacyCertificateAnn]),
		)
	})
	first := map[string]Step{} // manifest digest → the place that listed it first
	out := arts[:0]
	for _, a := range arts {
		if a.Manifest != "" {
			if s, seen := first[a.Manifest]; seen && s != a.Source {
				continue
			}
			first[a.Manifest] = a.Source
		}
		out = append(out, a)
	}
	return out
}

// foundSummary says what was found where: "1 signature found (referrers),
// 1 attestation found (fallback-tag)".
func foundSummary(outs []outcome) string {
	type group struct {
		n       int
		sources []Step
	}
	var order []class
	groups := map[class]*group{}
	for _, c := range []class{signatureClass, attestationClass, unreadable} {
		for _, o := range outs {
			if o.class != c {
				continue
			}
			g := groups[c]
			if g == nil {
				g = &group{}
				groups[c] = g
				order = append(order, c)
			}
			g.n++
			if !slices.Contains(g.sources, o.c.Source) {
				g.sources = append(g.sources, o.c.Source)
			}
		}
	}
	if len(order) == 0 {
		return "nothing found"
	}
	var parts []string
	for _, c := range order {
		g := groups[c]
		noun := map[class]string{signatureClass: "signature", attestationClass: "attestation", unreadable: "unreadable artifact"}[c]
		if g.n != 1 {
			noun += "s"
		}
		srcs := make([]string, len(g.sources))
		for i, s := range g.sources {
			srcs[i] = string(s)
		}
		parts = append(parts, fmt.Sprintf("%d %s found (%s)", g.n, noun, strings.Join(srcs, ", ")))
	}
	return strings.Join(parts, ", ")
}

// failedSummary names the failed lookups (Discovery.Failures), "" when
// none failed.
func failedSummary(failed []Lookup) string {
	switch len(failed) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(", and 1 lookup failed (%s: %s)", failed[0].Step, failed[0].Err)
	default:
		return fmt.Sprintf(", and %d lookups failed (first: %s: %s)", len(failed), failed[0].Step, failed[0].Err)
	}
}

// lookedUp lists the discovery steps that ran, in order.
func lookedUp(lookups []Lookup) string {
	var steps []string
	for _, l := range lookups {
		if slices.Contains(places, l.Step) && !slices.Contains(steps, string(l.Step)) {
			steps = append(steps, string(l.Step))
		}
	}
	if len(steps) == 0 {
		return "none recorded"
	}
	return strings.Join(steps, ", ")
}

func attestationName(a Attestation) string {
	if a.Name == "" || a.Name == a.PredicateType {
		return a.PredicateType
	}
	return fmt.Sprintf("%q (%s)", a.Name, a.PredicateType)
}

func subjectName(s Subject) string {
	switch {
	case s.Ref != "":
		return s.Ref
	case s.Repository != "":
		return s.Repository
	default:
		return "image"
	}
}

// attestationsFound says, for each required attestation, whether one of
// outs verified it (verified, by name) or why not (missing). A cosign v3
// signature bundle is an attestation of its predicate type
// (https://sigstore.dev/cosign/sign/v1), as policy-controller takes it.
func (p *Policy) attestationsFound(outs []outcome) (missing, verified []string) {
	for _, req := range p.Attestations {
		var rejected *outcome
		ok := false
		for i := range outs {
			o := &outs[i]
			if o.class == unreadable || o.predicateType != req.PredicateType {
				continue
			}
			if o.c.Accepted {
				ok = true
				break
			}
			if rejected == nil {
				rejected = o
			}
		}
		switch {
		case ok:
			verified = append(verified, attestationName(req))
		case rejected != nil:
			missing = append(missing, fmt.Sprintf("required attestation %s was found but rejected: %s", attestationName(req), rejected.c.Reason))
		default:
			missing = append(missing, fmt.Sprintf("required attestation %s was not found", attestationName(req)))
		}
	}
	return missing, verified
}
