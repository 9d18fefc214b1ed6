package gate

import (
	"strings"
	"testing"
)

// TestAddRunning: a denial the revision brings to running Pods blocks it,
// after a denial of its own images, and not in Warn mode; one that was
// there before does not.
func TestAddRunning(t *testing.T) {
	t.Parallel()
	deny := func(before AdmissionOutcome, pods ...string) Running {
		return Running{Admission: Admission{Policy: "ClusterPolicy/p", Rule: "r", Image: "ghcr.io/acme/web:1", Outcome: AdmissionDeny, Message: "no signature"},
			Pods: pods, PodCount: len(pods), Namespaces: []string{"shop"}, Before: before}
	}
	allowed := func() Verdict {
		return Verdict{Allowed: true, Reason: SucceededReason, Summary: Summary{Total: 1, Verified: 1}, Images: []ImageVerdict{{Outcome: Passed}}}
	}
	for name, tc := range map[string]struct {
		mode    RunningPods
		running []Running
		reason  string
		message string
	}{
		"new denial":            {"", []Running{deny("", "shop/web-1", "shop/web-2")}, RunningDeniedReason, "after this revision, 2 running pods in shop could not be re-admitted if evicted: shop/web-1, shop/web-2 run ghcr.io/acme/web:1: Deny ClusterPolicy/p rule r: no signature"},
		"was audited":           {RunningPodsDeny, []Running{deny(AdmissionAudit, "shop/web-1")}, RunningDeniedReason, "1 running pod in shop"},
		"new denial, warn only": {RunningPodsWarn, []Running{deny("", "shop/web-1")}, SucceededReason, "1 of 1 images verified"},
		"denied before":         {"", []Running{deny(AdmissionDeny, "shop/web-1")}, SucceededReason, "1 of 1 images verified"},
		"audit, not a denial":   {"", []Running{{Admission: Admission{Outcome: AdmissionAudit}, Pods: []string{"shop/web-1"}}}, SucceededReason, ""},
	} {
		v := allowed()
		denied := 0
		for _, r := range tc.running {
			if r.Introduced() {
				denied += r.PodCount
			}
		}
		v.AddRunning(tc.mode, tc.running, RunningSummary{Pods: 10, Images: 3, Denied: denied})
		if v.Reason != tc.reason || v.Allowed != (tc.reason == SucceededReason) || !strings.Contains(v.Message, tc.message) {
			t.Errorf("%s: allowed %v, %s %q; want %s %q", name, v.Allowed, v.Reason, v.Message, tc.reason, tc.message)
		}
	}
	// The revision's own admission denial comes first.
	v := allowed()
	v.AddAdmission(Config{}, []Admission{{Policy: "ClusterPolicy/p", Rule: "r", Image: "ghcr.io/acme/api:2", Outcome: AdmissionDeny, Message: "no signature"}})
	v.AddRunning("", []Running{deny("", "shop/web-1")}, RunningSummary{Pods: 1, Images: 1, Denied: 1})
	if v.Reason != AdmissionDeniedReason || !strings.Contains(v.Message, "; and after this revision, 1 running pod in shop") {
		t.Errorf("%s %q; want the admission denial, then the running Pods", v.Reason, v.Message)
	}
}

// TestComputeReadiness: each policy in Audit or Warn, namespace by
// namespace, with what it would deny in Enforce and what is not known;
// policies in Enforce are left out.
func TestComputeReadiness(t *testing.T) {
	t.Parallel()
	p := func(policy, action, image string, outcome AdmissionOutcome, nss ...string) Placed {
		return Placed{Admission: Admission{Engine: "kyverno@1.19", Policy: policy, Action: action, Image: image, Outcome: outcome}, Namespaces: nss}
	}
	got := ComputeReadiness([]Placed{
		p("ClusterPolicy/audit", "Audit", "a", AdmissionAdmit, "shop", "billing"),
		p("ClusterPolicy/audit", "Audit", "b", AdmissionAudit, "shop"),
		p("ClusterPolicy/audit", "Audit", "c", AdmissionUndecided, "billing"),
		p("ClusterPolicy/audit", "Audit", "d", AdmissionAdmit),
		p("ClusterImagePolicy/warn", "Warn", "a", AdmissionAdmit, "shop"),
		p("ClusterPolicy/enforce", "Enforce", "b", AdmissionDeny, "shop"),
	})
	if len(got) != 2 || got[0].Policy != "ClusterImagePolicy/warn" || !got[0].Ready || got[1].Policy != "ClusterPolicy/audit" || got[1].Ready {
		t.Fatalf("readiness %+v; want the Warn policy ready, the Audit one not, and no Enforce one", got)
	}
	want := []NamespaceReadiness{
		{Namespace: "", Images: 1, Ready: true},
		{Namespace: "billing", Images: 2, Undecided: 1},
		{Namespace: "shop", Images: 2, Denied: []string{"b"}, DeniedCount: 1},
	}
	if len(got[1].Namespaces) != len(want) {
		t.Fatalf("namespaces %+v, want %+v", got[1].Namespaces, want)
	}
	for i, w := range want {
		g := got[1].Namespaces[i]
		if g.Namespace != w.Namespace || g.Images != w.Images || g.DeniedCount != w.DeniedCount || g.Undecided != w.Undecided || g.Ready != w.Ready || strings.Join(g.Denied, ",") != strings.Join(w.Denied, ",") {
			t.Errorf("namespace %d: %+v, want %+v", i, g, w)
		}
	}
}
