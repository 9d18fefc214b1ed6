package report

import (
	"fmt"
	"strings"

	"github.com/pregate/pregate/gate"
)

// What runs in the cluster in every report: a denial the revision's
// policy changes bring to running Pods is an error when it blocks, a
// warning when it only warns; one that was there before is a note. The
// readiness of each policy in Audit or Warn for Enforce is listed,
// namespace by namespace, and fails nothing.

// runningTitle names what a policy of the revision does to running Pods.
func runningTitle(r gate.Running) string {
	return fmt.Sprintf("running pods: %s %s on %d %s (%s rule %s)", strings.ToLower(string(r.Outcome)), r.Image, r.PodCount,
		ghNoun(r.PodCount, "pod"), r.Policy, r.Rule)
}

// runningText is one running prediction in one line, bounded: its Pods,
// then the prediction.
func runningText(r gate.Running) string {
	s := runningPods(r) + " run " + r.String()
	if r.Before != "" && r.Before != r.Outcome {
		s += fmt.Sprintf(" (before the revision: %s)", r.Before)
	}
	return gate.Clip(s, 4*sarifMaxText)
}

// junitRunningSuite is a testcase per running prediction: a failure when
// it blocks the revision, a passing case with a <system-out> otherwise.
func junitRunningSuite(v gate.Verdict) junitSuite {
	s := junitSuite{Name: junitRunningName}
	for _, r := range v.Running {
		c := junitCase{Classname: junitAttr(r.Image), Name: junitAttr(r.Policy + " rule " + r.Rule)}
		switch {
		case r.Blocking:
			c.Failure = &junitProblem{Message: junitAttr(r.Message), Type: gate.RunningDeniedReason, Body: junitBody(runningText(r))}
		default:
			c.SystemOut = junitBody(strings.ToLower(string(r.Outcome)) + " (does not block): " + runningText(r))
		}
		s.Cases = append(s.Cases, c)
	}
	return s
}

// junitReadinessSuite is a testcase per policy and namespace, passing: a
// policy not ready for Enforce says what it would deny in <system-out>.
func junitReadinessSuite(v gate.Verdict) junitSuite {
	s := junitSuite{Name: junitReadinessName}
	for _, r := range v.Readiness {
		for _, n := range r.Namespaces {
			c := junitCase{Classname: junitAttr(r.Policy), Name: junitAttr("namespace " + dash(n.Namespace))}
			c.SystemOut = junitBody(readinessText(r, n))
			s.Cases = append(s.Cases, c)
		}
	}
	return s
}

// readinessText says a policy's readiness in one namespace.
func readinessText(r gate.Readiness, n gate.NamespaceReadiness) string {
	state := "ready for Enforce"
	if !n.Ready {
		state = "not ready for Enforce"
	}
	return fmt.Sprintf("%s (%s now) in namespace %s: %s; of %d %s it would deny %s, %d undecided", r.Policy, r.Action, dash(n.Namespace), state,
		n.Images, ghNoun(n.Images, "image"), wouldDeny(n), n.Undecided)
}

// ghRunningAnnotations annotate the policy file of each denial the
// revision brings to running Pods (error when it blocks, warning when
// not); a policy not from the revision's files is annotated without one.
func ghRunningAnnotations(v gate.Verdict) []ghAnnotation {
	var out []ghAnnotation
	for _, r := range v.Running {
		if !r.Introduced() {
			continue
		}
		kind := ghWarning
		if r.Blocking {
			kind = ghError
		}
		out = append(out, ghAnnotation{kind: kind, file: r.PolicyFile, title: "pregate: " + runningTitle(r), message: runningText(r)})
	}
	return out
}

// ghRunningTables write what the revision does to running Pods and each
// Audit or Warn policy's readiness for Enforce.
func ghRunningTables(s *ghSummary, v gate.Verdict) {
	if sum := v.RunningSummary; sum != nil {
		s.text(fmt.Sprintf("\n### Running pods (%d %s, %d %s checked; %d no longer admitted after this revision)\n\n",
			sum.Pods, ghNoun(sum.Pods, "pod"), sum.Images, ghNoun(sum.Images, "image"), sum.Denied))
		if len(v.Running) > 0 {
			s.text("| Outcome | Before | Image | Pods | Policy | Rule | Why |\n| --- | --- | --- | --- | --- | --- | --- |\n")
			for _, r := range v.Running {
				outcome := string(r.Outcome)
				switch {
				case r.Blocking:
					outcome += ", blocks"
				case r.Introduced():
					outcome += ", warns"
				}
				s.row("running prediction", fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |\n", outcome, dash(string(r.Before)), ghCode(r.Image),
					ghEscape(runningPods(r), ghMaxText), ghCode(r.Policy), ghEscape(r.Rule, ghMaxText), ghEscape(r.Message, 2*ghMaxText)))
			}
		}
	}
	if len(v.Readiness) == 0 {
		return
	}
	s.text("\n### Ready for Enforce\n\n| Ready | Policy | Now | Namespace | Images | Would deny | Undecided |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range v.Readiness {
		for _, n := range r.Namespaces {
			s.row("readiness", fmt.Sprintf("| %s | %s | %s | %s | %d | %s | %d |\n", yesNo(n.Ready), ghCode(r.Policy), r.Action, ghEscape(dash(n.Namespace), ghMaxText),
				n.Images, ghEscape(wouldDeny(n), 2*ghMaxText), n.Undecided))
		}
	}
}

// sarifRunningResults are a result at the policy file for each denial
// the revision brings to running Pods; one whose policy is not from the
// revision's files is counted unlocated.
func sarifRunningResults(v gate.Verdict) ([]sarifResult, int) {
	var out []sarifResult
	unlocated := 0
	for _, r := range v.Running {
		if !r.Introduced() {
			continue
		}
		at := sarifPhysicalAt(gate.Origin{File: r.PolicyFile})
		if at == nil {
			unlocated++
			continue
		}
		level := sarifWarning
		if r.Blocking {
			level = sarifError
		}
		out = append(out, sarifResult{
			RuleID:              sarifRunningRule,
			Level:               level,
			Message:             sarifText{Text: runningText(r)},
			Locations:           []sarifLocation{{PhysicalLocation: at}},
			PartialFingerprints: map[string]string{"pregateRunning/v1": sarifHash(r.Image, r.Policy, r.Rule)},
			Properties: map[string]any{"engine": r.Engine, "policy": r.Policy, "rule": r.Rule, "outcome": string(r.Outcome),
				"before": string(r.Before), "pods": r.Pods, "podCount": r.PodCount, "namespaces": r.Namespaces},
		})
	}
	return out, unlocated
}
