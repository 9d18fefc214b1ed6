package controller

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/render"
)

// The render package's SOPS fixtures: an age key, and a Secret encrypted
// for it (stringData CLUSTER_DOMAIN prod.internal.example, DB_PASSWORD
// correct-horse-battery-staple; metadata in clear).
const (
	sopsKeyFile    = "../../render/testdata/sops/age.agekey"
	sopsSecretFile = "../../render/testdata/render/sops/src/infra/config/cluster-secrets.sops.yaml"
	sopsPlaintext  = "correct-horse-battery-staple"
)

func readFixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sopsKustomization is a Kustomization object as render hands it to a
// KeysFunc.
func sopsKustomization(namespace, secretRef string) render.Object {
	dec := map[string]any{"provider": "sops"}
	if secretRef != "" {
		dec["secretRef"] = map[string]any{"name": secretRef}
	}
	return render.Object{Content: map[string]any{
		"apiVersion": kustomizev1.GroupVersion.String(), "kind": kustomizev1.KustomizationKind,
		"metadata": map[string]any{"name": "cluster-config", "namespace": namespace},
		"spec":     map[string]any{"decryption": dec},
	}}
}

// TestGateReconciler_decryptionKeys reads keys with a fake client: the
// Secret of the Kustomization's secretRef, in an allowed namespace only.
func TestGateReconciler_decryptionKeys(t *testing.T) {
	t.Parallel()
	key := readFixture(t, sopsKeyFile)
	c := fake.NewClientBuilder().WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "sops-age"},
			Data: map[string][]byte{"identity.agekey": []byte(key)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "broken"},
			Data: map[string][]byte{"identity.agekey": []byte("AGE-SECRET-KEY-1BROKEN\n")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "sops-age"},
			Data: map[string][]byte{"identity.agekey": []byte(key)}},
	).Build()
	keys := (&GateReconciler{Client: c}).decryptionKeys("flux-system", "apps")
	recipient := key[strings.Index(key, "age1"):strings.Index(key, "\nAGE-SECRET-KEY")]
	for name, tc := range map[string]struct {
		ks      render.Object
		want    string // in the keys' String, which shows public keys only
		wantErr string
	}{
		"secretRef":           {ks: sopsKustomization("flux-system", "sops-age"), want: "sops.Keys{age " + recipient + "}"},
		"no secretRef":        {ks: sopsKustomization("flux-system", ""), want: "sops.Keys{}"},
		"missing Secret":      {ks: sopsKustomization("apps", "sops-age"), wantErr: "decryption Secret apps/sops-age not found"},
		"broken key":          {ks: sopsKustomization("flux-system", "broken"), wantErr: `decryption Secret flux-system/broken: sops: reading age keys from decryption Secret entry "identity.agekey": line 1: not a valid age identity`},
		"another namespace":   {ks: sopsKustomization("team-a", "sops-age"), wantErr: "decryption Secret team-a/sops-age not read: a Gate reads Secrets in its own namespace and its Kustomization's only"},
		"no namespace at all": {ks: sopsKustomization("", "sops-age"), wantErr: "decryption Secret /sops-age not read"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := keys(t.Context(), tc.ks)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("keys() error = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
					t.Errorf("the error quotes key material: %v", err)
				}
			case err != nil:
				t.Fatalf("keys() error = %v", err)
			case got.String() != tc.want:
				t.Errorf("keys() = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestGateReconciler_reconcile_sops: the Kustomization a Gate refers to
// decrypts a SOPS-encrypted Secret in its path with the keys of its
// spec.decryption.secretRef, and substitutes a value from it into an
// image; without that Secret, the image is a gap naming the variable.
func TestGateReconciler_reconcile_sops(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web, _ := f.pushSigned("acme/web-prod.internal.example:1.0")
	secret := strings.Replace(readFixture(t, sopsSecretFile), "namespace: flux-system", "namespace: "+f.ns, 1)
	files := manifests("web", f.host+"/acme/web-${CLUSTER_DOMAIN}:1.0")
	files["deploy/cluster-secrets.yaml"] = secret
	repo, rev := f.gitRepository("apps", files)
	ks := f.kustomization("apps", repo, func(k *kustomizev1.Kustomization) {
		k.Spec.Decryption = &kustomizev1.Decryption{Provider: "sops", SecretRef: &meta.LocalObjectReference{Name: "sops-age"}}
		k.Spec.PostBuild = &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "Secret", Name: "cluster-secrets"}}}
	})
	gate := f.createGate("apps", repo, func(g *v1alpha1.Gate) {
		g.Spec.SourceRef, g.Spec.Path = nil, ""
		g.Spec.KustomizationRef = &v1alpha1.KustomizationReference{Name: ks.Name}
	})

	// No decryption Secret yet: the image holding the variable is a gap.
	got := f.deniedFor(gate, rev, "CoverageGap", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Gaps).To(ContainElement(And(HaveField("Kind", "Encrypted"),
			HaveField("Message", ContainSubstring("${CLUSTER_DOMAIN} from Secret/"+f.ns+"/cluster-secrets (SOPS-encrypted; no key given)")))))
		g.Expect(got.Status.Gaps).To(ContainElement(And(HaveField("Kind", "Encrypted"),
			HaveField("Message", Equal("reading its decryption keys: decryption Secret "+f.ns+"/sops-age not found")))))
	})
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(ContainSubstring("Encrypted"))

	// With it, the image is exact; nothing decrypted shows in the status.
	keySecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "sops-age"},
		Data: map[string][]byte{"age.agekey": []byte(readFixture(t, sopsKeyFile))}}
	f.g.Expect(k8sClient.Create(t.Context(), keySecret)).To(Succeed())
	f.requestReconcile(gate)
	got = f.readyFor(gate, rev)
	f.g.Expect(got.Status.Images).To(ConsistOf(HaveField("Image", web)))
	status, err := json.Marshal(got.Status)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(string(status)).NotTo(ContainSubstring(sopsPlaintext))
}
