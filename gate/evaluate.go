package gate

import (
	"fmt"
	"sort"
	"strings"
)

// Mode says what a policy's failure does.
type Mode string

// The policy modes.
const (
	// Enforce: a failure blocks the revision.
	Enforce Mode = "enforce"
	// Warn: a failure is reported as a warning; the revision may go out.
	Warn Mode = "warn"
	// Audit: a failure is recorded only.
	Audit Mode = "audit"
)

// Unmatched says what happens to an image no policy matches.
type Unmatched string

// The choices for images no policy matches.
const (
	AllowUnmatched Unmatched = "allow"
	WarnUnmatched  Unmatched = "warn"
	DenyUnmatched  Unmatched = "deny"
)

// Policy is the part of a trust policy gate needs: which images it covers
// and what its failure does, with what the Verifier checks images against.
type Policy struct {
	Name   string
	Images []*Glob
	Mode   Mode
	// Verify is the policy as the Verifier compiled it (verify's *Policy),
	// handed to it with each image; gate never looks inside.
	Verify any
}

// Matches says whether the policy covers the image reference.
func (p Policy) Matches(ref string) bool {
	for _, g := range p.Images {
		if g.Match(ref) {
			return true
		}
	}
	return false
}

// Config is what Evaluate decides with.
type Config struct {
	Policies []Policy
	// Unmatched is the fate of images no policy matches; default deny.
	Unmatched Unmatched
	// AllowGaps lists the gap reasons that do not block the revision: the
	// user's explicit opt-outs, kind by kind. Every other gap that is not
	// informational blocks: what pregate cannot see is not allowed.
	AllowGaps []string
}

// Blocks says whether a gap keeps the revision from being allowed: it is
// neither informational nor of a kind the Config allows.
func (c Config) Blocks(g Gap) bool {
	if g.Informational {
		return false
	}
	for _, r := range c.AllowGaps {
		if GapReason(r) == g.Reason {
			return false
		}
	}
	return true
}

func (c Config) matching(ref string) []Policy {
	var out []Policy
	for _, p := range c.Policies {
		if p.Matches(ref) {
			out = append(out, p)
		}
	}
	return out
}

// Outcome is what became of one image.
type Outcome string

// The image outcomes, from worst to best.
const (
	// Denied: it blocks the revision.
	Denied Outcome = "Denied"
	// Warned: a warn-mode policy failed, or no policy matched and unmatched
	// images warn.
	Warned Outcome = "Warned"
	// Audited: only audit-mode policies failed.
	Audited Outcome = "Audited"
	// Passed: every matching policy verified it.
	Passed Outcome = "Verified"
	// Allowed: no policy matched and unmatched images are allowed.
	Allowed Outcome = "Allowed"
)

var outcomeRank = map[Outcome]int{Denied: 0, Warned: 1, Audited: 2, Passed: 3, Allowed: 4}

// Reasons a Verdict gives; they become the Ready condition's reason.
const (
	SucceededReason           = "Succeeded"
	NoSignaturesReason        = "NoSignatures"
	IdentityMismatchReason    = "IdentityMismatch"
	VerificationFailedReason  = "VerificationFailed"
	RegistryUnreachableReason = "RegistryUnreachable"
	UnmatchedImageReason      = "UnmatchedImage"
	CoverageGapReason         = "CoverageGap"
)

// ImageVerdict is what became of one image and why.
type ImageVerdict struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
	// Pinned is Ref pinned to Digest, "registry/repository:tag@digest":
	// what the verdict is about. Empty when no digest was resolved.
	Pinned  string  `json:"pinned,omitempty"`
	Outcome Outcome `json:"outcome"`
	// Status is the worst status among the findings that count, or empty
	// when no policy matched.
	Status Status `json:"status,omitempty"`
	// Policies are the names of the policies that match the image.
	Policies []string `json:"policies"`
	// Detail explains the outcome in one line.
	Detail    string     `json:"detail"`
	Findings  []Finding  `json:"findings"`
	Locations []Location `json:"locations"`
}

// Summary counts the images by outcome.
type Summary struct {
	Total    int `json:"total"`
	Verified int `json:"verified"`
	Warned   int `json:"warned"`
	Denied   int `json:"denied"`
	// Unmatched counts the images no policy matched, whatever their fate.
	Unmatched int `json:"unmatched"`
}

// Verdict is the decision about one revision.
type Verdict struct {
	Revision Revision `json:"revision"`
	Allowed  bool     `json:"allowed"`
	// Undecided is true when the revision is not allowed and nothing
	// definite denies it: coverage gaps hide some of its images, or every
	// denial rests on a failed lookup. pregate could not decide, and says
	// why; it never allows what it could not see.
	Undecided bool `json:"undecided"`
	// Retry is true when the verdict rests on failed lookups: the
	// registry may answer next time.
	Retry bool `json:"retry"`
	// Reason is a XxxReason constant.
	Reason string `json:"reason"`
	// Message is one deterministic line: counts and the first offenders.
	Message string  `json:"message"`
	Summary Summary `json:"summary"`
	// Images are sorted failures first, then by reference.
	Images []ImageVerdict `json:"images"`
	Gaps   []Gap          `json:"gaps"`
	// Admission are the predicted answers of the cluster's admission
	// policies for the revision's images, denials first (AddAdmission).
	Admission []Admission `json:"admission,omitempty"`
	// Running are the predicted answers for the images of the Pods
	// running in the cluster, under the admission policies after the
	// revision, denials the revision brings first (AddRunning);
	// RunningSummary counts what was checked, nil when nothing was.
	Running        []Running       `json:"running,omitempty"`
	RunningSummary *RunningSummary `json:"runningSummary,omitempty"`
	// Readiness is, for each admission policy in Audit or Warn, what it
	// would deny in Enforce, namespace by namespace (AddReadiness).
	Readiness []Readiness `json:"readiness,omitempty"`
}

// Bounds on a Verdict's message, which becomes a condition message: how
// many images and gaps it names, how much of each one's detail it quotes
// (details quote registries and signers), and its whole length.
const (
	maxOffenders     = 3
	maxQuotedDetail  = 1024
	maxVerdictLength = 8192
)

// Evaluate decides a revision from what it rendered to and the findings of
// verifying its images. It is pure and deterministic: the same input gives
// the same Verdict, byte for byte.
func Evaluate(cfg Config, rev Revision, rendered Rendered, findings []Finding) Verdict {
	byImage := map[string][]Finding{}
	for _, f := range findings {
		byImage[f.Image] = append(byImage[f.Image], f)
	}
	v := Verdict{Revision: rev, Gaps: append([]Gap{}, rendered.Gaps...), Images: []ImageVerdict{}}
	for i := range v.Gaps {
		v.Gaps[i].Blocking = cfg.Blocks(v.Gaps[i])
	}
	for _, img := range rendered.Images {
		iv := judge(cfg, img, byImage[img.Ref])
		v.Images = append(v.Images, iv)
		v.Summary.Total++
		switch iv.Outcome {
		case Passed:
			v.Summary.Verified++
		case Warned:
			v.Summary.Warned++
		case Denied:
			v.Summary.Denied++
		}
		if len(iv.Policies) == 0 {
			v.Summary.Unmatched++
		}
	}
	sort.SliceStable(v.Images, func(i, j int) bool {
		a, b := v.Images[i], v.Images[j]
		if outcomeRank[a.Outcome] != outcomeRank[b.Outcome] {
			return outcomeRank[a.Outcome] < outcomeRank[b.Outcome]
		}
		return a.Ref < b.Ref
	})
	sort.SliceStable(v.Gaps, func(i, j int) bool {
		a, b := v.Gaps[i], v.Gaps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Path < b.Path
	})
	decide(&v)
	v.Message = Clip(v.Message, maxVerdictLength)
	return v
}

// judge decides one image: every matching policy must pass; a failing
// policy counts by its mode.
func judge(cfg Config, img Image, findings []Finding) ImageVerdict {
	iv := ImageVerdict{Ref: img.Ref, Locations: img.Locations, Policies: []string{}, Findings: []Finding{}}
	policies := cfg.matching(img.Ref)
	if len(policies) == 0 {
		switch cfg.unmatched() {
		case AllowUnmatched:
			iv.Outcome, iv.Detail = Allowed, "no policy matches; unmatched images are allowed"
		case WarnUnmatched:
			iv.Outcome, iv.Detail = Warned, "no policy matches; unmatched images warn"
		default:
			iv.Outcome, iv.Detail = Denied, "no policy matches; unmatched images are denied"
		}
		return iv
	}
	modes := map[string]Mode{}
	for _, p := range policies {
		iv.Policies = append(iv.Policies, p.Name)
		modes[p.Name] = p.Mode
	}
	sort.Strings(iv.Policies)
	iv.Findings = append(iv.Findings, findings...)
	sort.Slice(iv.Findings, func(i, j int) bool { return iv.Findings[i].Policy < iv.Findings[j].Policy })
	for i := range iv.Findings {
		iv.Findings[i].Mode = modes[iv.Findings[i].Policy]
	}

	iv.Outcome = Passed
	for _, name := range iv.Policies {
		f, ok := findingFor(iv.Findings, name)
		if !ok {
			// Check always verifies every matching policy; a missing finding
			// is a caller's bug, and never a pass.
			f = Finding{Image: img.Ref, Policy: name, Status: LookupFailed, Detail: "not verified"}
		}
		if iv.Digest == "" {
			iv.Digest = f.Digest
		}
		if f.Status == Verified {
			continue
		}
		outcome := Denied
		switch modes[name] {
		case Warn:
			outcome = Warned
		case Audit:
			outcome = Audited
		}
		if outcomeRank[outcome] < outcomeRank[iv.Outcome] {
			iv.Outcome, iv.Status = outcome, f.Status
			iv.Detail = fmt.Sprintf("policy %q: %s", name, f.Detail)
		}
	}
	if iv.Outcome == Passed {
		iv.Status = Verified
		iv.Detail = "verified by " + quoteJoin(iv.Policies)
	}
	iv.Pinned = pin(iv.Ref, iv.Digest)
	return iv
}

// pin returns ref pinned to digest: "repository:tag@digest", ref itself
// when it already names a digest, "" when digest is empty.
func pin(ref, digest string) string {
	switch {
	case digest == "":
		return ""
	case strings.Contains(ref, "@"):
		return ref
	default:
		return ref + "@" + digest
	}
}

func findingFor(fs []Finding, policy string) (Finding, bool) {
	for _, f := range fs {
		if f.Policy == policy {
			return f, true
		}
	}
	return Finding{}, false
}

func (c Config) unmatched() Unmatched {
	if c.Unmatched == "" {
		return DenyUnmatched
	}
	return c.Unmatched
}

// decide sets Allowed, Undecided, Retry, Reason and Message from the
// judged images and the gaps. A definite denial blocks; otherwise a
// blocking gap leaves the revision undecided (CoverageGap), as do denials
// that all rest on failed lookups (RegistryUnreachable, worth a retry).
func decide(v *Verdict) {
	var denied []ImageVerdict
	for _, iv := range v.Images {
		if iv.Outcome == Denied {
			denied = append(denied, iv)
		}
	}
	var blocking []Gap
	for _, g := range v.Gaps {
		if g.Blocking {
			blocking = append(blocking, g)
		}
	}
	gaps := ""
	if n := len(v.Gaps); n > 0 {
		gaps = "; " + gapCount(n)
		if nb := len(blocking); nb < n {
			gaps += fmt.Sprintf(" (%d blocking)", nb)
		}
	}
	running := ""
	if rs := v.runningDenials(); len(rs) > 0 && v.RunningSummary != nil {
		running = runningMessage(rs, v.RunningSummary.Denied)
	}
	if admitted := v.admissionDenials(); len(admitted) > 0 {
		// The admission controller will deny these Pods whatever pregate's
		// own policies say: a definite denial.
		v.Reason = AdmissionDeniedReason
		images := map[string]bool{}
		for _, a := range admitted {
			images[a.Image] = true
		}
		v.Message = fmt.Sprintf("admission would deny %d of %d images: %s", len(images), v.Summary.Total, admissionOffenders(admitted))
		if len(denied) > 0 {
			v.Message += fmt.Sprintf("; and %d of %d images denied: %s", len(denied), v.Summary.Total, offenders(denied))
		}
		if running != "" {
			v.Message += "; and " + running
		}
		v.Message += gaps
		return
	}
	if running != "" {
		// Pods that run now would be denied when next created: as
		// definite as a denial of the revision's own.
		v.Reason = RunningDeniedReason
		v.Message = running
		if len(denied) > 0 {
			v.Message += fmt.Sprintf("; and %d of %d images denied: %s", len(denied), v.Summary.Total, offenders(denied))
		}
		v.Message += gaps
		return
	}
	if len(denied) == 0 && len(blocking) == 0 {
		v.Allowed, v.Reason = true, SucceededReason
		v.Message = fmt.Sprintf("%d of %d images verified", v.Summary.Verified, v.Summary.Total)
		for _, o := range []Outcome{Warned, Audited, Allowed} {
			if n := count(v.Images, o); n > 0 {
				v.Message += fmt.Sprintf(", %d %s", n, strings.ToLower(string(o)))
			}
		}
		v.Message += gaps
		return
	}
	// A definite denial outranks a failed lookup and a gap: only when no
	// denial is definite could the next try, or seeing the rest, decide
	// otherwise.
	definite := denied[:0:0]
	for _, iv := range denied {
		if !iv.Status.transient() {
			definite = append(definite, iv)
		}
	}
	if len(definite) > 0 {
		v.Reason = reasonFor(definite)
		v.Message = fmt.Sprintf("%d of %d images denied: %s", len(denied), v.Summary.Total, offenders(definite)) + gaps
		return
	}
	v.Undecided = true
	v.Retry = len(denied) > 0
	if len(blocking) > 0 {
		v.Reason = CoverageGapReason
		var names []string
		for i, g := range blocking {
			if i == maxOffenders {
				names = append(names, fmt.Sprintf("and %d more", len(blocking)-maxOffenders))
				break
			}
			names = append(names, fmt.Sprintf("%s %s: %s", g.Reason, strings.TrimSpace(g.File+" "+g.Object), Clip(g.Message, maxQuotedDetail)))
		}
		v.Message = fmt.Sprintf("images not seen: %s blocking: %s", gapCount(len(blocking)), strings.Join(names, "; "))
		if len(denied) > 0 {
			v.Message += fmt.Sprintf("; and %d of %d images could not be verified: %s", len(denied), v.Summary.Total, offenders(denied))
		}
		return
	}
	v.Reason = reasonFor(denied)
	v.Message = fmt.Sprintf("%d of %d images denied: %s", len(denied), v.Summary.Total, offenders(denied)) + gaps
}

// gapCount says "1 coverage gap", "2 coverage gaps".
func gapCount(n int) string {
	if n == 1 {
		return "1 coverage gap"
	}
	return fmt.Sprintf("%d coverage gaps", n)
}

// offenders names the first images of a list, with where each appears
// and why it failed.
func offenders(ivs []ImageVerdict) string {
	var names []string
	for i, iv := range ivs {
		if i == maxOffenders {
			names = append(names, fmt.Sprintf("and %d more", len(ivs)-maxOffenders))
			break
		}
		where := ""
		if len(iv.Locations) > 0 {
			where = " in " + iv.Locations[0].String()
		}
		names = append(names, fmt.Sprintf("%s%s: %s", iv.Ref, where, Clip(iv.Detail, maxQuotedDetail)))
	}
	return strings.Join(names, "; ")
}

// reasonFor names the offenders' common failure, or VerificationFailed
// when they differ.
func reasonFor(offenders []ImageVerdict) string {
	reason := ""
	for _, iv := range offenders {
		r := VerificationFailedReason
		switch {
		case len(iv.Policies) == 0:
			r = UnmatchedImageReason
		case iv.Status == NoSignatures:
			r = NoSignaturesReason
		case iv.Status == IdentityMismatch:
			r = IdentityMismatchReason
		case iv.Status.transient():
			r = RegistryUnreachableReason
		}
		if reason != "" && reason != r {
			return VerificationFailedReason
		}
		reason = r
	}
	return reason
}

func count(ivs []ImageVerdict, o Outcome) int {
	n := 0
	for _, iv := range ivs {
		if iv.Outcome == o {
			n++
		}
	}
	return n
}

func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
