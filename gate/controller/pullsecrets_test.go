package controller

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestGateReconciler_reconcile_imagePullSecrets: images in a registry that
// demands credentials are verified with the kubernetes.io/dockerconfigjson
// Secret that the Gate, a TrustPolicy or the controller's service account
// names. Before it is named, the Gate is Ready=False and says what the
// registry answered; the password reaches neither the status nor an Event.
func TestGateReconciler_reconcile_imagePullSecrets(t *testing.T) {
	t.Parallel()
	for name, grant := range map[string]func(f *fixture, secret *corev1.Secret, gate *v1alpha1.Gate){
		"Gate": func(f *fixture, secret *corev1.Secret, gate *v1alpha1.Gate) {
			secret.Namespace = f.ns
			f.create(secret)
			f.patchGate(gate, func(g *v1alpha1.Gate) {
				g.Spec.ImagePullSecrets = []v1alpha1.LocalObjectReference{{Name: secret.Name}}
			})
		},
		"TrustPolicy": func(f *fixture, secret *corev1.Secret, _ *v1alpha1.Gate) {
			// A TrustPolicy is cluster-scoped; its Secrets may be in any
			// namespace, here the test's.
			secret.Namespace = f.ns
			f.create(secret)
			f.updatePolicy(func(s *v1alpha1.TrustPolicySpec) {
				s.ImagePullSecrets = []v1alpha1.SecretReference{{Namespace: secret.Namespace, Name: secret.Name}}
			})
		},
		"ServiceAccount": func(f *fixture, secret *corev1.Secret, _ *v1alpha1.Gate) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testServiceAccount.Namespace}}
			if err := k8sClient.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
				f.t.Fatalf("creating namespace %s: %v", ns.Name, err)
			}
			secret.Namespace = testServiceAccount.Namespace
			f.create(secret)
			f.create(&corev1.ServiceAccount{
				ObjectMeta:       metav1.ObjectMeta{Namespace: testServiceAccount.Namespace, Name: testServiceAccount.Name},
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: secret.Name}},
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			user, pass := "robot", "s3cr3t-"+name
			f := newFixture(t, withFront(verifytest.WithBasicAuth(user, pass)))
			web, _ := f.pushSigned("acme/web:1.0")
			repo, rev := f.gitRepository("apps", manifests("web", web))
			gate := f.createGate("apps", repo)
			got := f.deniedFor(gate, rev, "RegistryUnreachable")
			f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(And(ContainSubstring(web), ContainSubstring("401")), "Ready message")
			t.Logf("without credentials: %s", conditions.GetMessage(got, meta.ReadyCondition))

			grant(f, dockerConfigSecret(f.t, "registry-"+f.ns, f.host, user, pass), gate)
			got = f.readyFor(gate, rev)

			status, err := json.Marshal(got.Status)
			f.g.Expect(err).NotTo(HaveOccurred())
			f.g.Expect(string(status)).NotTo(ContainSubstring(pass), "the Gate's status")
			for _, e := range eventLog.about(f.ns, gate.Name) {
				f.g.Expect(e.Note).NotTo(ContainSubstring(pass), "Event %s", e.Reason)
			}
		})
	}
}

// dockerConfigSecret is a kubernetes.io/dockerconfigjson Secret with a
// password for host, as `kubectl create secret docker-registry` makes it.
func dockerConfigSecret(t testing.TB, name, host, user, pass string) *corev1.Secret {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"username": user, "password": pass, "auth": auth,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}
}

// create creates obj and deletes it when the test ends.
func (f *fixture) create(obj client.Object) {
	f.t.Helper()
	if err := k8sClient.Create(f.t.Context(), obj); err != nil {
		f.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
	f.t.Cleanup(func() {
		if err := k8sClient.Delete(context.Background(), obj); client.IgnoreNotFound(err) != nil {
			f.t.Errorf("deleting %T %s: %v", obj, obj.GetName(), err)
		}
	})
}
