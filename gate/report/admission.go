package report

import (
	"fmt"
	"strings"

	"github.com/pregate/pregate/gate"
)

// The cluster's admission policies in every report: a predicted denial is
// an error, a warning or audit-only failure a warning or a note, and a
// rule that can never pass says what exists, why and the fix. A rule that
// cannot be predicted is a coverage gap (gate.AdmissionGap), reported with
// the gaps.

// admissionText is one prediction in one line, bounded.
func admissionText(a gate.Admission, n int) string {
	return gate.Clip(a.String(), n)
}

// imageOutcome is what a prediction is to the image, so that it is
// reported with the severity an image's own outcome has; false when the
// engine admits it (or its answer is not predicted: a coverage gap).
func imageOutcome(a gate.Admission) (gate.Outcome, bool) {
	switch a.Outcome {
	case gate.AdmissionDeny:
		return gate.Denied, true
	case gate.AdmissionWarn:
		return gate.Warned, true
	case gate.AdmissionAudit:
		return gate.Audited, true
	}
	return "", false
}

// admissionLocations are the locations of a predicted image.
func admissionLocations(v gate.Verdict, image string) []gate.Location {
	for _, iv := range v.Images {
		if iv.Ref == image {
			return iv.Locations
		}
	}
	return nil
}

// admissionTitle names what the engine does with the image.
func admissionTitle(a gate.Admission) string {
	s := fmt.Sprintf("admission: %s %s (%s rule %s)", strings.ToLower(string(a.Outcome)), a.Image, a.Policy, a.Rule)
	if a.NeverPasses {
		s += ", can never pass"
	}
	return s
}

// junitAdmissionSuite is a testcase per prediction: a failure when the
// engine would deny the Pod, a passing case with a <system-out> for a
// warning or an audit-only failure; one that cannot be predicted is a
// coverage gap.
func junitAdmissionSuite(v gate.Verdict) junitSuite {
	s := junitSuite{Name: junitAdmissionName}
	for _, a := range v.Admission {
		c := junitCase{Classname: junitAttr(a.Image), Name: junitAttr(a.Policy + " rule " + a.Rule)}
		switch a.Outcome {
		case gate.AdmissionDeny:
			typ := gate.AdmissionDeniedReason
			if a.NeverPasses {
				typ += "/NeverPasses"
			}
			c.Failure = &junitProblem{Message: junitAttr(a.Message), Type: typ, Body: junitBody(a.String())}
		case gate.AdmissionAdmit:
		default:
			c.SystemOut = junitBody(strings.ToLower(string(a.Outcome)) + " (not denied): " + a.String())
		}
		s.Cases = append(s.Cases, c)
	}
	return s
}

// ghAdmissionAnnotations annotate each location of an image the engine
// would deny (error), warn about (warning) or audit (notice).
func ghAdmissionAnnotations(v gate.Verdict) []ghAnnotation {
	var out []ghAnnotation
	for _, a := range v.Admission {
		o, failed := imageOutcome(a)
		if !failed {
			continue
		}
		kind, _ := ghImageKind(o)
		title := "pregate: " + admissionTitle(a)
		msg := admissionText(a, 4*ghMaxText)
		locs := admissionLocations(v, a.Image)
		if len(locs) == 0 {
			out = append(out, ghAnnotation{kind: kind, title: title, message: msg})
			continue
		}
		for _, l := range locs {
			out = append(out, ghAnnotation{kind: kind, file: l.File, line: l.Line, title: title, message: msg + "; used in " + locationLine(l)})
		}
	}
	return out
}

// ghAdmissionTable writes the predictions that are not admissions.
func ghAdmissionTable(s *ghSummary, v gate.Verdict) {
	var rows []gate.Admission
	for _, a := range v.Admission {
		if a.Outcome != gate.AdmissionAdmit {
			rows = append(rows, a)
		}
	}
	if len(v.Admission) == 0 {
		return
	}
	s.text(fmt.Sprintf("\n### Admission policies (%d of %d predictions not admitted)\n\n", len(rows), len(v.Admission)))
	if len(rows) == 0 {
		return
	}
	s.text("| Outcome | Image | Policy | Rule | Why |\n| --- | --- | --- | --- | --- |\n")
	for _, a := range rows {
		outcome := string(a.Outcome)
		why := a.Message
		if a.NeverPasses {
			outcome += ", can never pass"
			why = a.Exists + " exists; " + a.Why + ". Fix: " + a.Fix
		}
		s.row("admission prediction", fmt.Sprintf("| %s | %s | %s | %s | %s |\n", outcome, ghCode(a.Image), ghCode(a.Policy), ghEscape(a.Rule, ghMaxText), ghEscape(why, 2*ghMaxText)))
	}
}

// sarifAdmissionResults are a result per location of each image the
// engine would not admit.
func sarifAdmissionResults(v gate.Verdict) ([]sarifResult, int) {
	var out []sarifResult
	unlocated := 0
	for _, a := range v.Admission {
		o, failed := imageOutcome(a)
		if !failed {
			continue
		}
		level, _ := sarifImageLevel(o)
		rule := sarifAdmissionRule + "/" + sarifRuleID(string(a.Outcome))
		if a.NeverPasses {
			rule = sarifAdmissionRule + "/NeverPasses"
		}
		located := false
		for _, l := range admissionLocations(v, a.Image) {
			at := sarifPhysicalAt(l.Origin)
			if at == nil {
				continue
			}
			located = true
			out = append(out, sarifResult{
				RuleID:              rule,
				Level:               level,
				Message:             sarifText{Text: admissionText(a, 4*sarifMaxText)},
				Locations:           []sarifLocation{{PhysicalLocation: at, LogicalLocations: sarifObject(l.Object, l.APIVersion)}},
				PartialFingerprints: map[string]string{"pregateAdmission/v1": sarifHash(a.Image, a.Policy, a.Rule, l.Object, l.Path)},
				Properties: map[string]any{"engine": a.Engine, "policy": a.Policy, "rule": a.Rule,
					"outcome": string(a.Outcome), "neverPasses": a.NeverPasses, "digest": a.Digest},
			})
		}
		if !located {
			unlocated++
		}
	}
	return out, unlocated
}

// sarifAdmissionRuleFor describes an admission rule id.
func sarifAdmissionRuleFor(id string) (sarifRuleTexts, bool) {
	what, ok := strings.CutPrefix(id, sarifAdmissionRule+"/")
	if !ok {
		return sarifRuleTexts{}, false
	}
	if what == "NeverPasses" {
		return sarifRuleTexts{
			"An admission policy can never pass for the image",
			"The image has a valid signature from the policy's own signers, but the admission controller cannot see or accept it, so it will deny every Pod running the image.",
			"The result's message says what exists, why the engine misses it, and the fix.",
		}, true
	}
	return sarifRuleTexts{
		"Admission would not admit the image: " + what,
		"A cluster admission policy is predicted to " + strings.ToLower(what) + " Pods running the image.",
		"See the result's message for the policy, the rule and the engine's reason.",
	}, true
}
