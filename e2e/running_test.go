package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestCheckRunningFromCluster: `pregate check --running-from-cluster`
// reads the Pods that run from the cluster of a kubeconfig (a real
// kube-apiserver), and blocks a revision whose admission policy would no
// longer admit them, naming them; the namespace a Pod runs in is read
// too. The Pods run an image signed with a cosign v3 bundle, and the
// revision adds a Kyverno ClusterPolicy of the default type: Cosign, which
// reads legacy signatures only.
func TestCheckRunningFromCluster(t *testing.T) {
	t.Parallel()
	bin := e2eBinary(t, "PREGATE_BIN", "the pregate binary", "make build", "bin/pregate")
	cfg, env := startControlPlane(t)
	admin := newClient(t, cfg)

	registry := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	key := verifytest.NewKeySigner(t)
	web := registry + "/acme/web:1.0"
	ref, digest := verifytest.PushRandomImage(t, web)
	verifytest.PushBundle(t, ref, key.MustSignImage(t, digest), verify.CosignSignPredicateType)

	createAll(t, admin, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "shop"}}})
	for _, name := range []string{"web-7d9f-a", "web-7d9f-b"} {
		createAll(t, admin, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: web}}},
		})
	}

	work := t.TempDir()
	must(t, os.Mkdir(filepath.Join(work, "revision"), 0o700))
	writeTestFile(t, filepath.Join(work, "key.pub"), string(key.PublicKeyPEM()))
	var pub strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(key.PublicKeyPEM())), "\n") {
		pub.WriteString("                      " + line + "\n")
	}
	writeTestFile(t, filepath.Join(work, "revision", "policy.yaml"), fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release-key
      match: {any: [{resources: {kinds: [Pod], namespaceSelector: {matchLabels: {team: shop}}}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          attestors:
            - entries:
                - keys:
                    rekor: {ignoreTlog: true}
                    publicKeys: |
%s`, registry, pub.String()))
	writeTestFile(t, filepath.Join(work, "revision", "app.yaml"), podYAML(registry+"/library/redis:7"))

	// A kubeconfig with the rights the flag's help asks for.
	user, err := env.AddUser(envtest.User{Name: "ci", Groups: []string{"system:masters"}}, nil)
	must(t, err)
	b, err := user.KubeConfig()
	must(t, err)
	kubeconfig := filepath.Join(work, "kubeconfig")
	must(t, os.WriteFile(kubeconfig, b, 0o600))

	sentinel := newNetworkSentinel(t)
	pregate := &offlineBinary{bin: bin, dir: work, env: append(offlineEnv(t, t.TempDir(), sentinel), "KUBECONFIG="+kubeconfig), sentinel: sentinel}
	check := func(extra ...string) binaryRun {
		return pregate.run(t, append([]string{"check", "revision", "--root", ".", "--images", registry + "/acme/**", "--key", "key.pub",
			"--insecure-ignore-tlog", "--unmatched-images", "allow", "--running-from-cluster"}, extra...)...)
	}
	r := check()
	if r.code != 1 || !strings.Contains(r.stdout, "BLOCKED (RunningPodsDenied): after this revision, 2 running pods in shop could not be re-admitted if evicted: shop/web-7d9f-a, shop/web-7d9f-b run "+web) ||
		!strings.Contains(r.stdout, "set type: SigstoreBundle") {
		t.Errorf("want blocked for the running Pods, with the fix:\n%s", r)
	}
	if r := check("--running-pods", "warn"); r.code != 0 || !strings.Contains(r.stdout, "Deny (warns)") {
		t.Errorf("with --running-pods warn, want allowed and the Pods reported:\n%s", r)
	}
	// The namespace's labels come from the cluster: a selector that does
	// not select it leaves its Pods alone.
	policy := filepath.Join(work, "revision", "policy.yaml")
	doc, err := os.ReadFile(policy)
	must(t, err)
	writeTestFile(t, policy, strings.Replace(string(doc), "team: shop", "team: billing", 1))
	if r := check(); r.code != 0 || !strings.Contains(r.stdout, "Running pods: ") {
		t.Errorf("with a namespace selector that selects no namespace of theirs, want allowed:\n%s", r)
	}
	if r := pregate.run(t, "check", "revision", "--root", ".", "--images", registry+"/acme/**", "--key", "key.pub", "--insecure-ignore-tlog",
		"--running-from-cluster", "--kubeconfig", filepath.Join(work, "missing")); r.code != 2 || !strings.Contains(r.stderr, "--running-from-cluster") {
		t.Errorf("a kubeconfig that is not there: want exit 2 naming the flag:\n%s", r)
	}
}
