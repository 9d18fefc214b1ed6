package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestGateReconciler_reconcile_admission: a revision that ships the
// Kyverno policy of the seed outage (type: Cosign, the default, reading
// only legacy .sig tags) over an image signed only with cosign v3 bundles
// is blocked: the Gate says AdmissionDenied though its own TrustPolicy
// verifies the image, and status.admission says the rule can never pass.
func TestGateReconciler_reconcile_admission(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := verifytest.NewKeySigner(t)
	web, digest := f.pushSigned("acme/web:1.0")
	verifytest.PushBundle(t, f.registry+"/acme/web@"+digest, key.MustSignImage(t, digest), verify.CosignSignPredicateType)

	files := manifests("web", web)
	files["deploy/policy.yaml"] = kyvernoKeyPolicy("release-key", f.host, key)
	repo, rev := f.gitRepository("apps", files)
	gate := f.createGate("apps", repo)

	got := f.deniedFor(gate, rev, "AdmissionDenied", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Admission).To(HaveLen(1))
	})
	f.g.Expect(got.Status.Summary).To(Equal(&v1alpha1.ImageSummary{Total: 1, Verified: 1}), "pregate's own policy verifies the image")
	f.g.Expect(got.Status.Admission[0]).To(And(
		HaveField("Image", web), HaveField("Policy", "ClusterPolicy/release-key"), HaveField("Rule", "release-key"),
		HaveField("Engine", "kyverno@1.19"), HaveField("Outcome", "Deny"), HaveField("NeverPasses", true),
		HaveField("Message", And(ContainSubstring("a cosign v3 Sigstore bundle as an OCI referrer"), ContainSubstring("set type: SigstoreBundle"))),
	))
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(HavePrefix("admission would deny 1 of 1 images: " + web))
}

// TestGateReconciler_reconcile_clusterAdmissionPolicy: the controller
// reads the cluster's own admission policies, not only the revision's: a
// ClusterPolicy already in the cluster blocks a revision it would deny.
func TestGateReconciler_reconcile_clusterAdmissionPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := verifytest.NewKeySigner(t)
	web, digest := f.pushSigned("acme/web:1.0")
	verifytest.PushBundle(t, f.registry+"/acme/web@"+digest, key.MustSignImage(t, digest), verify.CosignSignPredicateType)

	var obj map[string]any
	if err := yaml.Unmarshal([]byte(kyvernoKeyPolicy(f.name, f.host, key)), &obj); err != nil {
		t.Fatal(err)
	}
	policy := &unstructured.Unstructured{Object: obj}
	if err := k8sClient.Create(t.Context(), policy); err != nil {
		t.Fatalf("creating the ClusterPolicy: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), policy) })

	repo, rev := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)
	got := f.deniedFor(gate, rev, "AdmissionDenied", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Admission).To(HaveLen(1))
	})
	f.g.Expect(got.Status.Admission[0]).To(And(HaveField("Policy", "ClusterPolicy/"+f.name), HaveField("NeverPasses", true)))
}

// kyvernoKeyPolicy is a Kyverno ClusterPolicy of the seed outage's shape:
// host's acme images must be signed with key, read with the default type:
// Cosign (legacy .sig tags only).
func kyvernoKeyPolicy(name, host string, key *verifytest.KeySigner) string {
	var pub strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(key.PublicKeyPEM())), "\n") {
		pub.WriteString("                      " + line + "\n")
	}
	return fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: %s}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release-key
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          attestors:
            - entries:
                - keys:
                    rekor: {ignoreTlog: true}
                    publicKeys: |
%s`, name, host, pub.String())
}

// TestClusterPolicyControllerScope: the controller reads what
// policy-controller's predictions depend on from the cluster: its
// ClusterImagePolicies, its config-policy-controller ConfigMap (from
// PolicyControllerNamespace) and a namespace's labels.
func TestClusterPolicyControllerScope(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns, err := testEnv.CreateNamespace(ctx, "pc-scope")
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = map[string]string{admission.NamespaceOptIn: "true"}
	if err := k8sClient.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	name := ns.Name
	create := func(doc string) {
		t.Helper()
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if err := k8sClient.Create(ctx, u); err != nil {
			t.Fatalf("creating %s: %v", u.GetKind(), err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.WithoutCancel(ctx), u) })
	}
	create(fmt.Sprintf(`{apiVersion: v1, kind: ConfigMap, metadata: {name: config-policy-controller, namespace: %s}, data: {no-match-policy: warn}}`, name))
	create(fmt.Sprintf(`{apiVersion: policy.sigstore.dev/v1beta1, kind: ClusterImagePolicy, metadata: {name: %s},
  spec: {images: [{glob: "registry.%s.example/**"}], authorities: [{static: {action: pass}}]}}`, name, name))

	r := &GateReconciler{Client: k8sClient, PolicyControllerNamespace: name}
	policies, err := r.clusterAdmissionPolicies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cip, config bool
	for _, p := range policies {
		cip = cip || p.ID() == "ClusterImagePolicy/"+name
		config = config || (p.ID() == "ConfigMap/"+name+"/config-policy-controller" && p.NoMatch == admission.NoMatchWarn)
	}
	if !cip || !config {
		t.Errorf("policies read from the cluster: %+v; want the ClusterImagePolicy and the ConfigMap's no-match-policy: warn", policies)
	}
	labels, found, err := r.namespaceLabels(ctx, name)
	if err != nil || !found || labels[admission.NamespaceOptIn] != "true" {
		t.Errorf("namespaceLabels(%s) = %v, %v, %v; want the opt-in label", name, labels, found, err)
	}
	if _, found, err := r.namespaceLabels(ctx, name+"-missing"); err != nil || found {
		t.Errorf("namespaceLabels(missing) found %v, %v; want not found", found, err)
	}
}
