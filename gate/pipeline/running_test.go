package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/verify/verifytest"
)

// runningPod is a Pod object as the API server lists it.
func runningPod(namespace, name, image string, labels map[string]string) map[string]any {
	l := map[string]any{}
	for k, v := range labels {
		l[k] = v
	}
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"namespace": namespace, "name": name, "labels": l},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}},
	}
}

// TestCheck_runningPods: a revision adding a policy that reads legacy
// signatures only is blocked for the running Pods whose images are signed
// with bundles only, naming them; the same revision with a policy that
// reads both formats passes. A denial that was there before the revision
// does not block it; in Warn mode a new one does not either. A policy in
// Audit reports, namespace by namespace, what it would deny in Enforce.
func TestCheck_runningPods(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	host, _, _ := strings.Cut(f.signed, "/")
	// A first-party image signed in the legacy format only, by the same
	// release workflow, which the revision deploys.
	legacy := host + "/acme/api:2.0"
	ref, dig := verifytest.PushRandomImage(t, legacy)
	payload, ann := f.sigstore.MustLegacySignature(t, releaseID, ghIssuer, dig, host+"/acme/api")
	verifytest.PushLegacySignature(t, ref, payload, ann)

	cosign := func(action string) string {
		return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: %s
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          attestors: [{entries: [{keyless: {issuer: %s, subject: %q, ctlog: {ignoreSCT: true}}}]}]
`, action, host, ghIssuer, releaseID)
	}
	ivpol := fmt.Sprintf(`apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: first-party-signed}
spec:
  validationActions: [Deny]
  matchImageReferences: [{glob: "%s/acme/*"}]
  attestors:
    - name: release
      cosign:
        ctlog: {insecureIgnoreSCT: true}
        keyless: {identities: [{issuer: %s, subject: %q}]}
  validations:
    - expression: images.containers.all(i, verifyImageSignatures(i, [attestors.release]) > 0)
      message: not signed by the release workflow
`, host, ghIssuer, releaseID)
	pods := []map[string]any{
		runningPod("shop", "web-7d9f-abcde", f.signed, map[string]string{"app": "web"}),
		runningPod("shop", "web-7d9f-fghij", f.signed, map[string]string{"app": "web"}),
		runningPod("billing", "web-5c4b-klmno", f.signed, map[string]string{"app": "web"}),
		runningPod("shop", "api-6b8c-pqrst", legacy, map[string]string{"app": "api"}),
		runningPod("kube-system", "coredns-1", "registry.k8s.io/coredns/coredns:v1.11.1", nil),
	}
	read := func(doc string) *admission.Policy {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		p, _, err := admission.Read("cluster.yaml", obj)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct {
		policy  string
		cluster []*admission.Policy
		mode    gate.RunningPods
		reason  string // the verdict's; empty: allowed
		denied  int    // running Pods denied by the revision
		before  gate.AdmissionOutcome
		audit   bool // a policy in Audit, whose readiness is told
	}{
		"a legacy-only policy added":      {policy: cosign("Enforce"), reason: gate.RunningDeniedReason, denied: 3},
		"a policy reading both formats":   {policy: ivpol},
		"the same policy, already there":  {policy: cosign("Enforce"), cluster: []*admission.Policy{read(cosign("Enforce"))}, before: gate.AdmissionDeny},
		"a legacy-only policy, warn only": {policy: cosign("Enforce"), mode: gate.RunningPodsWarn, denied: 3},
		"switched from Audit to Enforce": {policy: cosign("Enforce"), cluster: []*admission.Policy{read(cosign("Audit"))},
			reason: gate.RunningDeniedReason, denied: 3, before: gate.AdmissionAudit},
		"a legacy-only policy, in Audit":  {policy: cosign("Audit"), audit: true},
		"no policy change, none in Audit": {},
		// An ImageValidatingPolicy does not replace a ClusterPolicy of the
		// same name: the Audit one stays.
		"another kind beside the Audit one": {policy: ivpol, cluster: []*admission.Policy{read(cosign("Audit"))}, audit: true},
		"no policy change, one in Audit":    {cluster: []*admission.Policy{read(cosign("Audit"))}, audit: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"a/deploy.yaml": deployment("api", legacy)}
			if tc.policy != "" {
				files["a/policy.yaml"] = tc.policy
			}
			dir := tree(t, files)
			o := f.opts
			o.Admission, o.RunningPods = tc.cluster, tc.mode
			listed := 0
			o.Running = func(context.Context) ([]map[string]any, error) { listed++; return pods, nil }
			res, err := pipeline.Check(t.Context(), o, local(dir, "a"))
			if err != nil {
				t.Fatal(err)
			}
			v := res.Verdict
			t.Log(v.Message)
			if v.Reason != tc.reason && (tc.reason != "" || !v.Allowed) {
				t.Fatalf("allowed %v, reason %s (%s); want %q", v.Allowed, v.Reason, v.Message, tc.reason)
			}
			if tc.policy == "" && !tc.audit {
				if listed != 0 || v.RunningSummary != nil {
					t.Errorf("listed %d times, summary %+v: nothing needed the running Pods", listed, v.RunningSummary)
				}
				return
			}
			if v.RunningSummary == nil || v.RunningSummary.Pods != 5 || v.RunningSummary.Images != 3 || v.RunningSummary.Denied != tc.denied {
				t.Fatalf("running summary %+v; want 5 Pods, 3 images, %d denied", v.RunningSummary, tc.denied)
			}
			if tc.reason == gate.RunningDeniedReason {
				for _, want := range []string{"3 running pods in billing, shop could not be re-admitted if evicted", "shop/web-7d9f-abcde", "type: Cosign"} {
					if !strings.Contains(v.Message+fmt.Sprint(v.Running), want) {
						t.Errorf("message %q lacks %q", v.Message, want)
					}
				}
			}
			if tc.audit {
				if len(v.Readiness) != 1 || v.Readiness[0].Ready || v.Readiness[0].Action != "Audit" {
					t.Fatalf("readiness %+v; want the Audit policy, not ready", v.Readiness)
				}
				got := map[string]string{}
				for _, n := range v.Readiness[0].Namespaces {
					got[n.Namespace] = fmt.Sprintf("%d of %d, ready %v", n.DeniedCount, n.Images, n.Ready)
				}
				// shop: web (bundle only) would be denied, api (legacy,
				// running and in the revision) not; billing: web.
				want := map[string]string{"billing": "1 of 1, ready false", "shop": "1 of 2, ready false"}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("readiness by namespace %v, want %v", got, want)
				}
			} else if len(v.Readiness) != 0 {
				t.Errorf("readiness %+v; want none, no policy is in Audit", v.Readiness)
			}
			for _, r := range v.Running {
				if r.Image == f.signed && r.Outcome == gate.AdmissionDeny && r.Before != tc.before {
					t.Errorf("running %s: before %q, want %q", r.Image, r.Before, tc.before)
				}
				if r.Blocking != (r.Introduced() && tc.mode != gate.RunningPodsWarn) {
					t.Errorf("running %+v: blocking %v", r, r.Blocking)
				}
			}
		})
	}
}
