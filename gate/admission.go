package gate

import (
	"fmt"
	"sort"
	"strings"
)

// AdmissionOutcome is what an admission controller is predicted to do
// with a Pod running an image.
type AdmissionOutcome string

// The predicted outcomes.
const (
	AdmissionAdmit     AdmissionOutcome = "Admit"
	AdmissionDeny      AdmissionOutcome = "Deny"
	AdmissionWarn      AdmissionOutcome = "Warn"
	AdmissionAudit     AdmissionOutcome = "Audit"
	AdmissionUndecided AdmissionOutcome = "Undecided"
)

// AdmissionGap is the gap an admission rule whose answer cannot be
// predicted leaves: it asks what pregate does not evaluate, or the
// registry could not be read.
const AdmissionGap GapReason = "AdmissionUnpredicted"

// AdmissionDeniedReason is the verdict's reason when an admission policy of
// the cluster would deny an image of the revision.
const AdmissionDeniedReason = "AdmissionDenied"

// Admission is the predicted answer of a cluster's admission controller
// for one image under one rule of its policies (gate/admission makes it).
type Admission struct {
	// Engine is the engine release whose answer is predicted
	// ("kyverno@1.19", "policy-controller@0.15"); Policy is Kind/name and
	// Rule the rule within it.
	Engine string `json:"engine"`
	Policy string `json:"policy"`
	Rule   string `json:"rule"`
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
	// Action is what the rule does with an image that fails it, in the
	// namespaces the image runs in: Enforce, Audit or Warn.
	Action string `json:"action,omitempty"`
	// Outcome and Message are the engine's answer, in its terms.
	Outcome AdmissionOutcome `json:"outcome"`
	Message string           `json:"message"`
	// NeverPasses: the image has a valid signature from the rule's own
	// signers that the engine cannot see or accept. Exists says what and
	// where, Why why the engine misses it, Fix what to change.
	NeverPasses bool   `json:"neverPasses,omitempty"`
	Exists      string `json:"exists,omitempty"`
	Why         string `json:"why,omitempty"`
	Fix         string `json:"fix,omitempty"`
	// Quirk names the engine's way of reading signatures that makes it
	// fail where pregate would not (config/admission's quirks).
	Quirk string `json:"quirk,omitempty"`
	// Pregate is pregate's own answer for the rule's signers, reading
	// every place and format.
	Pregate Status `json:"pregate,omitempty"`
}

// String says the prediction in one line.
func (a Admission) String() string {
	s := fmt.Sprintf("%s: %s %s rule %s: %s", a.Image, a.Outcome, a.Policy, a.Rule, a.Message)
	if a.NeverPasses {
		s += fmt.Sprintf("; can never pass: %s exists, and %s; fix: %s", a.Exists, a.Why, a.Fix)
	}
	return s
}

var admissionRank = map[AdmissionOutcome]int{AdmissionDeny: 0, AdmissionUndecided: 1, AdmissionWarn: 2, AdmissionAudit: 3, AdmissionAdmit: 4}

// AddAdmission adds the predicted admission answers to the verdict and
// decides again: a predicted denial denies the revision, and a rule that
// cannot be predicted is an AdmissionGap, blocking unless cfg allows that
// kind of gap.
func (v *Verdict) AddAdmission(cfg Config, preds []Admission) {
	if len(preds) == 0 {
		return
	}
	v.Admission = append(v.Admission, preds...)
	sort.SliceStable(v.Admission, func(i, j int) bool { return admissionLess(v.Admission[i], v.Admission[j]) })
	for _, p := range preds {
		if p.Outcome != AdmissionUndecided {
			continue
		}
		g := Gap{Reason: AdmissionGap, Object: p.Policy + " rule " + p.Rule, Message: Clip(p.Image+": "+p.Message, maxQuotedDetail)}
		g.Blocking = cfg.Blocks(g)
		v.Gaps = append(v.Gaps, g)
	}
	v.redecide()
}

// admissionLess orders predictions denials first, then by image, policy
// and rule.
func admissionLess(a, b Admission) bool {
	if admissionRank[a.Outcome] != admissionRank[b.Outcome] {
		return admissionRank[a.Outcome] < admissionRank[b.Outcome]
	}
	if a.Image != b.Image {
		return a.Image < b.Image
	}
	return a.Policy+" "+a.Rule < b.Policy+" "+b.Rule
}

// redecide decides the verdict again, from what it holds now.
func (v *Verdict) redecide() {
	v.Allowed, v.Undecided, v.Retry, v.Reason, v.Message = false, false, false, "", ""
	decide(v)
	v.Message = Clip(v.Message, maxVerdictLength)
}

// admissionDenials are the predicted denials.
func (v *Verdict) admissionDenials() []Admission {
	var out []Admission
	for _, a := range v.Admission {
		if a.Outcome == AdmissionDeny {
			out = append(out, a)
		}
	}
	return out
}

// admissionOffenders names the first predicted denials.
func admissionOffenders(as []Admission) string {
	var names []string
	for i, a := range as {
		if i == maxOffenders {
			names = append(names, fmt.Sprintf("and %d more", len(as)-maxOffenders))
			break
		}
		names = append(names, Clip(a.String(), maxQuotedDetail))
	}
	return strings.Join(names, "; ")
}
