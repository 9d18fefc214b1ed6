package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
)

// Status is what a verdict puts in a Gate's status: the summary, the
// images (failures first, at most v1alpha1.MaxImageResults) and the
// coverage gaps (blocking first, at most v1alpha1.MaxGapResults).
func Status(v gate.Verdict) (*v1alpha1.ImageSummary, []v1alpha1.ImageResult, []v1alpha1.CoverageGap) {
	sum := &v1alpha1.ImageSummary{
		Total: int32(v.Summary.Total), Verified: int32(v.Summary.Verified), //nolint:gosec // image counts are far below 2^31
		Warned: int32(v.Summary.Warned), Denied: int32(v.Summary.Denied), //nolint:gosec // likewise
	}
	for _, g := range v.Gaps {
		sum.Gaps++
		if g.Blocking {
			sum.BlockingGaps++
		}
	}
	return sum, imageResults(v.Images), gapResults(v.Gaps)
}

// MaxStatusMessage bounds the messages of status.images and status.gaps
// (their CRD's maxLength): a message quoting a registry or a signer must
// never make the status too large to record the verdict.
const MaxStatusMessage = 1024

// maxLocations bounds the locations listed per image in the status.
const maxLocations = 9

func imageResults(ivs []gate.ImageVerdict) []v1alpha1.ImageResult {
	out := make([]v1alpha1.ImageResult, 0, min(len(ivs), v1alpha1.MaxImageResults))
	for _, iv := range ivs {
		if len(out) == v1alpha1.MaxImageResults {
			break
		}
		res := v1alpha1.ImageResult{
			Image:  iv.Ref,
			Digest: iv.Digest,
			Pinned: iv.Pinned,
			Policy: strings.Join(iv.Policies, ","),
			Result: imageResultType(iv.Outcome),
			Reason: string(iv.Status),
		}
		if iv.Outcome != gate.Passed {
			res.Message = gate.Clip(iv.Detail, MaxStatusMessage)
		}
		for i, l := range iv.Locations {
			if i == maxLocations {
				res.Locations = append(res.Locations, fmt.Sprintf("and %d more", len(iv.Locations)-maxLocations))
				break
			}
			loc := l.Where() + " " + l.Path
			if l.File != "" {
				loc += " (" + l.File + ")"
			}
			res.Locations = append(res.Locations, loc)
		}
		out = append(out, res)
	}
	return out
}

func gapResults(gaps []gate.Gap) []v1alpha1.CoverageGap {
	sorted := slices.Clone(gaps)
	slices.SortStableFunc(sorted, func(a, b gate.Gap) int {
		switch {
		case a.Blocking == b.Blocking:
			return 0
		case a.Blocking:
			return -1
		default:
			return 1
		}
	})
	out := make([]v1alpha1.CoverageGap, 0, min(len(sorted), v1alpha1.MaxGapResults))
	for _, g := range sorted {
		if len(out) == v1alpha1.MaxGapResults {
			break
		}
		obj := g.Object
		if g.Path != "" {
			obj = strings.TrimSpace(obj + " " + g.Path)
		}
		out = append(out, v1alpha1.CoverageGap{Kind: string(g.Reason), Blocking: g.Blocking, Object: obj, File: g.File, Message: gate.Clip(g.Message, MaxStatusMessage)})
	}
	return out
}

func imageResultType(o gate.Outcome) v1alpha1.ImageResultType {
	switch o {
	case gate.Denied:
		return v1alpha1.ImageDenied
	case gate.Warned:
		return v1alpha1.ImageWarned
	case gate.Audited:
		return v1alpha1.ImageAudited
	case gate.Allowed:
		return v1alpha1.ImageAllowed
	default:
		return v1alpha1.ImageVerified
	}
}

// maxAdmissionMessage bounds status.admission[].message (its CRD's
// maxLength).
const maxAdmissionMessage = 2048

// AdmissionStatus is what a verdict puts in a Gate's status.admission: the
// predictions that are not admissions, denials first, at most
// v1alpha1.MaxAdmissionResults.
func AdmissionStatus(v gate.Verdict) []v1alpha1.AdmissionResult {
	var out []v1alpha1.AdmissionResult
	for _, a := range v.Admission {
		if a.Outcome == gate.AdmissionAdmit {
			continue
		}
		if len(out) == v1alpha1.MaxAdmissionResults {
			break
		}
		out = append(out, admissionResult(a))
	}
	return out
}

// admissionResult is a prediction as a Gate's status holds it.
func admissionResult(a gate.Admission) v1alpha1.AdmissionResult {
	msg := a.Message
	if a.NeverPasses {
		msg = fmt.Sprintf("%s; can never pass: %s exists, and %s; fix: %s", a.Message, a.Exists, a.Why, a.Fix)
	}
	return v1alpha1.AdmissionResult{Image: a.Image, Policy: a.Policy, Rule: a.Rule, Engine: a.Engine,
		Outcome: string(a.Outcome), NeverPasses: a.NeverPasses, Message: gate.Clip(msg, maxAdmissionMessage)}
}

// RunningStatus is what a verdict puts in a Gate's status.running: the
// counts, and the predictions for running Pods that are not admissions,
// those the revision brings first, at most v1alpha1.MaxRunningResults.
// Nil when the running Pods were not checked.
func RunningStatus(v gate.Verdict) *v1alpha1.RunningStatus {
	if v.RunningSummary == nil {
		return nil
	}
	out := &v1alpha1.RunningStatus{Pods: v.RunningSummary.Pods, Images: v.RunningSummary.Images, Denied: v.RunningSummary.Denied}
	for _, r := range v.Running {
		if len(out.Results) == v1alpha1.MaxRunningResults {
			break
		}
		out.Results = append(out.Results, v1alpha1.RunningResult{AdmissionResult: admissionResult(r.Admission),
			Pods: r.Pods, PodCount: r.PodCount, Before: string(r.Before), Blocking: r.Blocking})
	}
	return out
}

// ReadinessStatus is what a verdict puts in a Gate's status.readiness,
// within its bounds.
func ReadinessStatus(v gate.Verdict) []v1alpha1.PolicyReadiness {
	var out []v1alpha1.PolicyReadiness
	for _, r := range v.Readiness[:min(len(v.Readiness), v1alpha1.MaxReadiness)] {
		pr := v1alpha1.PolicyReadiness{Policy: r.Policy, Engine: r.Engine, Action: r.Action, Ready: r.Ready}
		for _, n := range r.Namespaces[:min(len(r.Namespaces), v1alpha1.MaxReadinessNamespaces)] {
			pr.Namespaces = append(pr.Namespaces, v1alpha1.NamespaceReadiness{Namespace: n.Namespace, Images: n.Images,
				WouldDeny: n.DeniedCount, Undecided: n.Undecided, Denied: n.Denied[:min(len(n.Denied), 10)]})
		}
		out = append(out, pr)
	}
	return out
}
