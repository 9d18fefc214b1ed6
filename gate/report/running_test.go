package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pregate/pregate/gate"
)

// runningVerdict is a revision blocked for the running Pods its policy
// would no longer admit, with a denial that was there before and a policy
// in Audit not ready for Enforce.
func runningVerdict() gate.Verdict {
	v := gate.Verdict{Allowed: true, Reason: gate.SucceededReason, Summary: gate.Summary{Total: 1, Verified: 1},
		Images: []gate.ImageVerdict{{Ref: "ghcr.io/acme/api:2", Outcome: gate.Passed, Status: "Verified"}}}
	deny := gate.Admission{Engine: "kyverno@1.19", Policy: "ClusterPolicy/first-party-signed", Rule: "release", Action: "Enforce",
		Image: "ghcr.io/acme/web:1", Outcome: gate.AdmissionDeny, Message: "no signature found (looked up: signature-tag, attestation-tag)",
		NeverPasses: true, Exists: "a cosign v3 Sigstore bundle", Why: "type: Cosign reads legacy signatures only", Fix: "set type: SigstoreBundle"}
	before := deny
	before.Image, before.Policy = "ghcr.io/acme/old:1", "ClusterPolicy/legacy"
	v.AddRunning(gate.RunningPodsDeny, []gate.Running{
		{Admission: deny, Pods: []string{"shop/web-1", "shop/web-2"}, PodCount: 25, Namespaces: []string{"shop"}, PolicyFile: "policies/signed.yaml"},
		{Admission: before, Pods: []string{"ops/old-1"}, PodCount: 1, Namespaces: []string{"ops"}, Before: gate.AdmissionDeny},
	}, gate.RunningSummary{Pods: 40, Images: 6, Denied: 25})
	v.Readiness = []gate.Readiness{{Engine: "kyverno@1.19", Policy: "ClusterPolicy/audit-signed", Action: "Audit", Namespaces: []gate.NamespaceReadiness{
		{Namespace: "shop", Images: 3, Denied: []string{"ghcr.io/acme/web:1"}, DeniedCount: 1},
		{Namespace: "billing", Images: 2, Ready: true},
	}}}
	return v
}

// TestReportsRunning: every format says which running Pods the revision
// would no longer admit (blocking), which were denied before (not), and
// each Audit policy's readiness for Enforce by namespace.
func TestReportsRunning(t *testing.T) {
	t.Parallel()
	v := runningVerdict()
	if v.Allowed || v.Reason != gate.RunningDeniedReason {
		t.Fatalf("verdict %s (%s): %s; want blocked for the running Pods", State(v), v.Reason, v.Message)
	}

	var text bytes.Buffer
	if err := verdictText(&text, v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Running pods: 40 pods, 6 images checked; 25 no longer admitted after this revision",
		"Deny (blocks)  -       ghcr.io/acme/web:1  shop/web-1,shop/web-2 +23",
		"Deny           Deny    ghcr.io/acme/old:1",
		"READY FOR ENFORCE",
		"no                 ClusterPolicy/audit-signed  Audit  shop       3       1: ghcr.io/acme/web:1",
		"BLOCKED (RunningPodsDenied): after this revision, 25 running pods in shop could not be re-admitted if evicted: shop/web-1, shop/web-2, 23 more run",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}

	junit := ciJUnitOf(t, v)
	if err := ciValidateJUnit(t, ciXmllint(t), junit); err != nil {
		t.Fatalf("JUnit with running predictions violates the XSD: %v\n%s", err, junit)
	}
	doc := ciParseJUnit(t, junit)
	if c := ciTestcase(t, doc, junitRunningName, "ghcr.io/acme/web:1", "ClusterPolicy/first-party-signed rule release"); c.Failure == nil || c.Failure.Type != gate.RunningDeniedReason {
		t.Errorf("JUnit running testcase %+v: want a RunningPodsDenied failure", c)
	}
	if c := ciTestcase(t, doc, junitRunningName, "ghcr.io/acme/old:1", "ClusterPolicy/legacy rule release"); c.Failure != nil {
		t.Errorf("JUnit testcase of a denial that was there before %+v: want no failure", c)
	}
	if c := ciTestcase(t, doc, junitReadinessName, "ClusterPolicy/audit-signed", "namespace shop"); c.Failure != nil || !strings.Contains(c.SystemOut, "not ready for Enforce") {
		t.Errorf("JUnit readiness testcase %+v: want a pass saying not ready", c)
	}

	sarif := ciSARIFOf(t, v)
	if err := ciValidateSARIF(t, sarif); err != nil {
		t.Fatalf("SARIF with running predictions violates the schema: %v\n%s", err, sarif)
	}
	r := ciResultAt(t, ciParseSARIF(t, sarif).Runs[0], gate.RunningDeniedReason, "policies/signed.yaml")
	if r.Level != "error" || !strings.Contains(r.Message.Text, "shop/web-1,shop/web-2 +23 run ghcr.io/acme/web:1: Deny") {
		t.Errorf("SARIF running result %+v: want an error at the policy naming the Pods", r)
	}

	var annotated bool
	for _, cmd := range ciParseCommands(t, ciAnnotationsOf(t, v)) {
		if strings.Contains(cmd.props["title"], "running pods: deny ghcr.io/acme/web:1 on 25 pods") {
			annotated = cmd.kind == "error" && cmd.props["file"] == "policies/signed.yaml"
		}
		if strings.Contains(cmd.props["title"], "ghcr.io/acme/old:1") {
			t.Errorf("annotation of a denial that was there before: %+v", cmd)
		}
	}
	if !annotated {
		t.Errorf("no error annotation at the policy file:\n%s", ciAnnotationsOf(t, v))
	}
	summary := string(ciSummaryOf(t, v))
	for _, want := range []string{"### Running pods (40 pods, 6 images checked; 25 no longer admitted after this revision)", "| Deny, blocks | - |", "### Ready for Enforce", "| no | <code>ClusterPolicy/audit-signed</code> | Audit | shop | 3 |"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the step summary lacks %q:\n%s", want, summary)
		}
	}

	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back gate.Verdict
	if err := json.Unmarshal(b, &back); err != nil || len(back.Running) != 2 || !back.Running[0].Blocking || back.RunningSummary.Denied != 25 || len(back.Readiness) != 1 {
		t.Errorf("JSON round trip %+v (%v)", back, err)
	}
}
