package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify/verifytest"
)

// runPod creates a Pod running image in the fixture's namespace; envtest
// has no kubelet, and admission looks at the spec only.
func (f *fixture) runPod(name, image string, labels map[string]string) {
	f.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
	if err := k8sClient.Create(f.t.Context(), pod); err != nil {
		f.t.Fatalf("creating Pod %s: %v", name, err)
	}
	f.t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), pod, client.GracePeriodSeconds(0)) })
}

// ownTrust is the policies' own trust material for the fixture's Sigstore
// (its roots and log keys), indented for a YAML block at indent.
func (f *fixture) ownTrust(indent string) (roots, rekor, ctlog string) {
	r, k, c := f.sigstore.TrustPEM(f.t)
	block := func(s string) string {
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
			b.WriteString(indent + line + "\n")
		}
		return b.String()
	}
	return block(r), block(k), block(c)
}

// TestGateReconciler_reconcile_runningPods: in a cluster running Pods of
// a first-party image signed only with a cosign v3 bundle and of one
// signed in the legacy format, a revision adding a ClusterPolicy that
// reads legacy signatures only is blocked, naming the Pods it could not
// admit again; the same revision with an ImageValidatingPolicy, which
// reads both, is allowed; and with the ClusterPolicy in Audit, it is
// allowed and says, for the namespace, what Enforce would deny.
func TestGateReconciler_reconcile_runningPods(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web, _ := f.pushSigned("acme/web:1.0")
	api, digest := f.pushUnsigned("acme/api:2.0")
	payload, ann := f.sigstore.MustLegacySignature(t, signerID, signerIssuer, digest, f.registry+"/acme/api")
	verifytest.PushLegacySignature(t, f.registry+"/acme/api@"+digest, payload, ann)
	f.runPod("web-7d9f-a", web, map[string]string{"app": "web"})
	f.runPod("web-7d9f-b", web, map[string]string{"app": "web"})
	f.runPod("api-5c4b-a", api, map[string]string{"app": "api"})

	roots, rekor, ctlog := f.ownTrust("                        ")
	cosign := func(action string) string {
		return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: %s}
spec:
  validationFailureAction: %s
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          attestors:
            - entries:
                - keyless:
                    issuer: %s
                    subject: %s
                    roots: |
%s                    rekor:
                      pubkey: |
%s                    ctlog:
                      ignoreSCT: true
                      pubkey: |
%s`, f.name, action, f.host, signerIssuer, signerID, roots, rekor, ctlog)
	}
	iroots, irekor, ictlog := f.ownTrust("              ")
	ivpol := fmt.Sprintf(`apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: %s}
spec:
  validationActions: [Deny]
  matchImageReferences: [{glob: "%s/acme/*"}]
  attestors:
    - name: release
      cosign:
        keyless:
          identities: [{issuer: %s, subject: %s}]
          roots: |
%s        ctlog:
          insecureIgnoreSCT: true
          rekorPubKey: |
%s          ctLogPubKey: |
%s  validations:
    - expression: images.containers.all(i, verifyImageSignatures(i, [attestors.release]) > 0)
      message: not signed by the release workflow
`, f.name, f.host, signerIssuer, signerID, iroots, irekor, ictlog)

	files := manifests("api", api)
	files["deploy/policy.yaml"] = cosign("Enforce")
	repo, rev := f.gitRepository("apps", files)
	gate := f.createGate("apps", repo)
	got := f.deniedFor(gate, rev, "RunningPodsDenied", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Running).NotTo(BeNil())
	})
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(And(
		HavePrefix(fmt.Sprintf("after this revision, 2 running pods in %s could not be re-admitted if evicted: %s/web-7d9f-a, %s/web-7d9f-b run %s", f.ns, f.ns, f.ns, web)),
		ContainSubstring("set type: SigstoreBundle")))
	f.g.Expect(got.Status.Running.Denied).To(Equal(2))
	f.g.Expect(got.Status.Running.Pods).To(BeNumerically(">=", 3), "every Pod of the cluster is listed")
	f.g.Expect(got.Status.Running.Results).To(ContainElement(And(HaveField("Image", web), HaveField("Blocking", true), HaveField("PodCount", 2),
		HaveField("Pods", ConsistOf(f.ns+"/web-7d9f-a", f.ns+"/web-7d9f-b")), HaveField("AdmissionResult.NeverPasses", true))))
	f.g.Expect(got.Status.Summary).To(Equal(&v1alpha1.ImageSummary{Total: 1, Verified: 1}), "the revision's own image passes")

	files["deploy/policy.yaml"] = ivpol
	rev = f.setRevision(repo, files)
	got = f.readyFor(gate, rev)
	f.g.Expect(got.Status.Running).To(HaveField("Denied", 0))

	files["deploy/policy.yaml"] = cosign("Audit")
	rev = f.setRevision(repo, files)
	got = f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.LastVerifiedRevision).To(Equal(rev))
		g.Expect(got.Status.Readiness).To(HaveLen(1))
	})
	f.g.Expect(got.Status.Readiness[0]).To(And(HaveField("Policy", "ClusterPolicy/"+f.name), HaveField("Action", "Audit"), HaveField("Ready", false)))
	f.g.Expect(got.Status.Readiness[0].Namespaces).To(ContainElement(And(HaveField("Namespace", f.ns),
		HaveField("WouldDeny", 1), HaveField("Denied", ConsistOf(web)))), "web (bundle only) would be denied in Enforce, api not")
}

// TestRunningPodsReused: Gates reconciled together share one listing of
// the running Pods, for RunningPodsReuse.
func TestRunningPodsReused(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "ghcr.io/acme/web:1"}}}}
	lists := 0
	c := fake.NewClientBuilder().WithObjects(pod).WithInterceptorFuncs(interceptor.Funcs{
		// The fake client knows no != field selector; the Pod runs.
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, _ ...client.ListOption) error {
			lists++
			return c.List(ctx, list)
		},
	}).Build()
	r := &GateReconciler{Client: c, RunningPodsReuse: DefaultRunningPodsReuse}
	for range 3 {
		pods, err := r.runningPods(t.Context())
		if err != nil || len(pods) != 1 {
			t.Fatalf("runningPods() = %d pods, %v", len(pods), err)
		}
	}
	if lists != 1 {
		t.Errorf("%d list requests for 3 Gates, want 1", lists)
	}
	r.running.at = time.Now().Add(-DefaultRunningPodsReuse)
	if _, err := r.runningPods(t.Context()); err != nil || lists != 2 {
		t.Errorf("after %s: %d list requests (%v), want a new listing", DefaultRunningPodsReuse, lists, err)
	}
}
