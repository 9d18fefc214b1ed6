package gate

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// RunningDeniedReason is the verdict's reason when the admission policies
// the revision adds or changes would not admit again Pods that run in the
// cluster now, were they evicted or rescheduled.
const RunningDeniedReason = "RunningPodsDenied"

// RunningPods says what a revision does when its admission policy changes
// would deny Pods already running: deny it (the default), or only warn.
type RunningPods string

// What RunningPods can say.
const (
	RunningPodsDeny RunningPods = "deny"
	RunningPodsWarn RunningPods = "warn"
)

// Running is a prediction for an image of Pods running in the cluster:
// what the admission policies after the revision do with the Pods their
// controllers create in their place.
type Running struct {
	Admission
	// Pods are the running Pods (namespace/name) with the image, at most
	// MaxRunningPods of them; PodCount is how many there are, Namespaces
	// where they run.
	Pods       []string `json:"pods"`
	PodCount   int      `json:"podCount"`
	Namespaces []string `json:"namespaces"`
	// Before is the answer of the policies as the cluster has them now;
	// a denial the revision brings has another (empty when no policy
	// covered the image before).
	Before AdmissionOutcome `json:"before,omitempty"`
	// Blocking is set by AddRunning: the denial is the revision's, and
	// the configuration blocks on it.
	Blocking bool `json:"blocking,omitempty"`
	// PolicyFile is the revision's file that holds the policy, when the
	// policy is the revision's.
	PolicyFile string `json:"policyFile,omitempty"`
}

// MaxRunningPods bounds the Pods a Running entry names.
const MaxRunningPods = 20

// Introduced says whether the denial is the revision's: the image was not
// denied before it.
func (r Running) Introduced() bool {
	return r.Outcome == AdmissionDeny && r.Before != AdmissionDeny
}

// RunningSummary counts what was checked of what runs.
type RunningSummary struct {
	// Pods and Images are the running Pods and their distinct images that
	// were checked.
	Pods   int `json:"pods"`
	Images int `json:"images"`
	// Denied are the Pods the revision's policies would no longer admit
	// (Running.Introduced).
	Denied int `json:"denied"`
}

// AddRunning adds the predictions for what runs and decides again: a
// denial the revision brings blocks it unless mode is RunningPodsWarn.
// sum counts what was checked, and the Pods denied.
func (v *Verdict) AddRunning(mode RunningPods, running []Running, sum RunningSummary) {
	v.RunningSummary = &sum
	for i := range running {
		running[i].Blocking = running[i].Introduced() && mode != RunningPodsWarn
	}
	v.Running = append(v.Running, running...)
	sort.SliceStable(v.Running, func(i, j int) bool {
		a, b := v.Running[i], v.Running[j]
		if a.Introduced() != b.Introduced() {
			return a.Introduced()
		}
		return admissionLess(a.Admission, b.Admission)
	})
	v.redecide()
}

// runningDenials are the blocking denials of running Pods.
func (v *Verdict) runningDenials() []Running {
	var out []Running
	for _, r := range v.Running {
		if r.Blocking {
			out = append(out, r)
		}
	}
	return out
}

// runningMessage says what the revision does to running Pods, naming the
// first.
func runningMessage(rs []Running, denied int) string {
	var nss []string
	for _, r := range rs {
		for _, ns := range r.Namespaces {
			if !slices.Contains(nss, ns) {
				nss = append(nss, ns)
			}
		}
	}
	sort.Strings(nss)
	pods := "pods"
	if denied == 1 {
		pods = "pod"
	}
	where := ""
	if len(nss) > 0 {
		where = " in " + strings.Join(clipList(nss, maxOffenders), ", ")
	}
	var names []string
	for i, r := range rs {
		if i == maxOffenders {
			names = append(names, fmt.Sprintf("and %d more", len(rs)-maxOffenders))
			break
		}
		pods := clipList(r.Pods, maxOffenders)
		if more := r.PodCount - len(r.Pods); more > 0 {
			pods = append(pods, fmt.Sprintf("%d more", more))
		}
		names = append(names, Clip(strings.Join(pods, ", ")+" run "+r.String(), maxQuotedDetail))
	}
	return fmt.Sprintf("after this revision, %d running %s%s could not be re-admitted if evicted: %s", denied, pods, where, strings.Join(names, "; "))
}

// clipList names the first n entries of list, and how many more.
func clipList(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(slices.Clip(list[:n]), fmt.Sprintf("%d more", len(list)-n))
}

// Readiness is what an admission policy in Audit or Warn would deny were
// it switched to Enforce: the go/no-go for the switch, namespace by
// namespace.
type Readiness struct {
	Engine string `json:"engine"`
	Policy string `json:"policy"`
	// Action is what the policy does now: Audit or Warn.
	Action     string               `json:"action"`
	Namespaces []NamespaceReadiness `json:"namespaces"`
	// Ready: in no namespace would it deny an image, or be undecided.
	Ready bool `json:"ready"`
}

// NamespaceReadiness is a policy's readiness in one namespace ("" for
// images of no known namespace).
type NamespaceReadiness struct {
	Namespace string `json:"namespace"`
	// Images are the distinct images it was predicted for there, of the
	// revision and of running Pods; Denied those it would deny in
	// Enforce (at most MaxRunningPods named, DeniedCount counts them),
	// Undecided those whose answer is not known.
	Images      int      `json:"images"`
	Denied      []string `json:"denied,omitempty"`
	DeniedCount int      `json:"deniedCount"`
	Undecided   int      `json:"undecided"`
	Ready       bool     `json:"ready"`
}

// Placed is a prediction with the namespaces its image runs in.
type Placed struct {
	Admission
	Namespaces []string
}

// ComputeReadiness gathers the predictions of the rules in Audit or Warn
// into each policy's readiness: an image whose check fails (Audit or Warn
// now) would be denied in Enforce.
func ComputeReadiness(preds []Placed) []Readiness {
	type key struct{ policy, ns string }
	type tally struct {
		images, denied, undecided map[string]bool
	}
	byPolicy := map[string]*Readiness{}
	tallies := map[key]*tally{}
	var order []string
	for _, p := range preds {
		if p.Action != "Audit" && p.Action != "Warn" {
			continue
		}
		if _, ok := byPolicy[p.Policy]; !ok {
			byPolicy[p.Policy] = &Readiness{Engine: p.Engine, Policy: p.Policy, Action: p.Action}
			order = append(order, p.Policy)
		}
		nss := p.Namespaces
		if len(nss) == 0 {
			nss = []string{""}
		}
		for _, ns := range nss {
			t, ok := tallies[key{p.Policy, ns}]
			if !ok {
				t = &tally{map[string]bool{}, map[string]bool{}, map[string]bool{}}
				tallies[key{p.Policy, ns}] = t
			}
			t.images[p.Image] = true
			switch p.Outcome {
			case AdmissionAudit, AdmissionWarn, AdmissionDeny:
				t.denied[p.Image] = true
			case AdmissionUndecided:
				t.undecided[p.Image] = true
			}
		}
	}
	sort.Strings(order)
	out := make([]Readiness, 0, len(order))
	for _, name := range order {
		r := byPolicy[name]
		r.Ready = true
		for k, t := range tallies {
			if k.policy != name {
				continue
			}
			denied := make([]string, 0, len(t.denied))
			for img := range t.denied {
				denied = append(denied, img)
			}
			sort.Strings(denied)
			nr := NamespaceReadiness{Namespace: k.ns, Images: len(t.images), DeniedCount: len(denied), Undecided: len(t.undecided)}
			nr.Denied = slices.Clip(denied[:min(len(denied), MaxRunningPods)])
			nr.Ready = nr.DeniedCount == 0 && nr.Undecided == 0
			r.Ready = r.Ready && nr.Ready
			r.Namespaces = append(r.Namespaces, nr)
		}
		sort.Slice(r.Namespaces, func(i, j int) bool { return r.Namespaces[i].Namespace < r.Namespaces[j].Namespace })
		out = append(out, *r)
	}
	return out
}
