package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestCheckReportsAdmission: a revision that ships a cosign v3 signed image
// and the Kyverno policy of the seed outage (type: Cosign, the default)
// is blocked, and the reports say that the rule can never pass, what
// exists, why Kyverno misses it and the fix, though pregate's own policy
// verifies the image.
func TestCheckReportsAdmission(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	ss := verifytest.NewSigstore(t)
	const id = "https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main"
	const issuer = "https://token.actions.githubusercontent.com"
	ref, dig := verifytest.PushRandomImage(t, host+"/acme/web:1.0")
	verifytest.PushBundle(t, ref, ss.MustSignImage(t, id, issuer, dig), verify.CosignSignPredicateType)

	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers: [{name: web, image: "%s/acme/web:1.0"}]
`, host),
		"policy.yaml": fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release-workflow
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          attestors:
            - entries:
                - keyless:
                    issuer: %s
                    subject: "https://github.com/acme/*"
                    ctlog: {ignoreSCT: true}
`, host, issuer),
	})
	res := checkTree(t, ss, host, id, issuer, dir, ".")
	v := res.Verdict
	if v.Allowed || v.Reason != gate.AdmissionDeniedReason || v.Summary.Verified != 1 || len(v.Admission) != 1 {
		t.Fatalf("verdict %s (%s): %s; admission %+v; want blocked by the admission policy with the image verified by pregate",
			State(v), v.Reason, v.Message, v.Admission)
	}
	if len(res.Admission) != 1 || res.Admission[0].File != "policy.yaml" {
		t.Errorf("admission policies read: %+v; want the revision's policy.yaml", res.Admission)
	}

	var text bytes.Buffer
	if err := Check(&text, Text, res, "test"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Deny (can never pass)",
		"ClusterPolicy/first-party-signed rule release-workflow can never pass for " + host + "/acme/web:1.0",
		"exists: a cosign v3 Sigstore bundle as an OCI referrer (referrers API), signed by " + id,
		"why:    in kyverno@1.19, verifyImages type: Cosign (the default) reads cosign's legacy format only",
		"fix:    set type: SigstoreBundle",
		"BLOCKED (AdmissionDenied): admission would deny 1 of 1 images",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	image := host + "/acme/web:1.0"
	rule := "ClusterPolicy/first-party-signed rule release-workflow"

	junit := ciJUnitOf(t, v)
	if err := ciValidateJUnit(t, ciXmllint(t), junit); err != nil {
		t.Fatalf("JUnit with admission predictions violates the XSD: %v\n%s", err, junit)
	}
	c := ciTestcase(t, ciParseJUnit(t, junit), junitAdmissionName, image, rule)
	if c.Failure == nil || c.Failure.Type != "AdmissionDenied/NeverPasses" || !strings.Contains(c.Failure.Body, "set type: SigstoreBundle") {
		t.Errorf("JUnit admission testcase %+v: want a failure of type AdmissionDenied/NeverPasses with the fix", c)
	}

	sarif := ciSARIFOf(t, v)
	if err := ciValidateSARIF(t, sarif); err != nil {
		t.Fatalf("SARIF with admission predictions violates the schema: %v\n%s", err, sarif)
	}
	r := ciResultAt(t, ciParseSARIF(t, sarif).Runs[0], "Admission/NeverPasses", "deployment.yaml")
	if r.Level != "error" || !strings.Contains(r.Message.Text, "can never pass") {
		t.Errorf("SARIF admission result %+v: want an error saying the rule can never pass", r)
	}

	var annotated bool
	for _, cmd := range ciParseCommands(t, ciAnnotationsOf(t, v)) {
		if cmd.kind == "error" && strings.Contains(cmd.props["title"], "admission: deny "+image) && cmd.props["file"] == "deployment.yaml" {
			annotated = true
		}
	}
	if !annotated {
		t.Errorf("no error annotation of the admission denial at deployment.yaml:\n%s", ciAnnotationsOf(t, v))
	}
	if summary := string(ciSummaryOf(t, v)); !strings.Contains(summary, "### Admission policies (1 of 1 predictions not admitted)") ||
		!strings.Contains(summary, "Deny, can never pass") {
		t.Errorf("the step summary lacks the admission table:\n%s", summary)
	}

	var js bytes.Buffer
	if err := Check(&js, JSON, res, "test"); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Admission []gate.Admission `json:"admission"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil || len(out.Admission) != 1 || !out.Admission[0].NeverPasses {
		t.Errorf("JSON report admission %+v (%v); want the prediction that can never pass:\n%s", out.Admission, err, js.String())
	}
}
