package controller

// The package's tests run against a real kube-apiserver and etcd (envtest,
// through fluxcd/pkg/runtime/testenv), started once in TestMain with
// pregate's CRDs (manifests/crd/bases) and the Flux CRDs a Gate refers to
// (testdata/crd/flux, see its ORIGIN). The binaries are built from the Go
// module proxy by `make envtest-assets`; `make test` builds them and sets
// KUBEBUILDER_ASSETS. Without them the package fails: it never skips
// silently. Under -short (make test-unit) no control plane is started and
// the tests that need one skip.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/runtime/testenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
)

var (
	// testEnv is the control plane and a started manager with a cached
	// client; nil under -short.
	testEnv *testenv.Environment
	// testEnvStartup is how long starting the control plane, installing the
	// CRDs and creating the manager took.
	testEnvStartup time.Duration
)

// crdPaths are the CRD directories installed into the control plane,
// relative to this package.
var crdPaths = []string{
	filepath.Join("..", "..", "manifests", "crd", "bases"),
	filepath.Join("testdata", "crd", "flux"),
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	if err := checkAssets(os.Getenv("KUBEBUILDER_ASSETS")); err != nil {
		fmt.Fprintf(os.Stderr, "envtest: %v\n", err)
		return 1
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintf(os.Stderr, "envtest: building the scheme: %v\n", err)
			return 1
		}
	}

	start := time.Now()
	// New panics if the control plane does not start; that fails the
	// package with envtest's error.
	testEnv = testenv.New(testenv.WithScheme(scheme), testenv.WithCRDPath(crdPaths...))
	testEnvStartup = time.Since(start)

	ctx, cancel := context.WithCancel(context.Background())
	managerErr := make(chan error, 1)
	go func() { managerErr <- testEnv.Start(ctx) }()

	code := m.Run()

	cancel()
	stopStart := time.Now()
	if err := testEnv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "envtest: stopping the control plane: %v\n", err)
		code = 1
	}
	if err := <-managerErr; err != nil {
		fmt.Fprintf(os.Stderr, "envtest: running the manager: %v\n", err)
		code = 1
	}
	fmt.Fprintf(os.Stderr, "envtest: control plane started in %s, stopped in %s\n",
		testEnvStartup.Round(time.Millisecond), time.Since(stopStart).Round(time.Millisecond))
	return code
}

// checkAssets reports why the control plane binaries in dir cannot run, and
// how to get them.
func checkAssets(dir string) error {
	const build = "`make envtest-assets` builds kube-apiserver and etcd into bin/k8s/<version>-linux-amd64 " +
		"(about 10 minutes the first time); `make test` builds them and sets KUBEBUILDER_ASSETS, " +
		"or run KUBEBUILDER_ASSETS=$PWD/bin/k8s/<version>-linux-amd64 go test ./gate/controller"
	if dir == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: %s", build)
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("KUBEBUILDER_ASSETS=%s is not an absolute path: %s", dir, build)
	}
	var missing []string
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no executable %s in KUBEBUILDER_ASSETS=%s: %s", strings.Join(missing, " or "), dir, build)
	}
	return nil
}

// TestEnvtest_smoke checks that the control plane runs here with every CRD
// the controller needs: a Gate, a GitRepository and a Kustomization are
// created and read back from the API server.
func TestEnvtest_smoke(t *testing.T) {
	if testEnv == nil {
		t.Skip("-short: no control plane")
	}
	ctx := t.Context()

	dc, err := discovery.NewDiscoveryClientForConfig(testEnv.Config)
	if err != nil {
		t.Fatalf("creating a discovery client: %v", err)
	}
	version, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("getting the server version: %v", err)
	}
	t.Logf("kube-apiserver %s: control plane up with CRDs in %s", version.GitVersion, testEnvStartup.Round(time.Millisecond))

	ns, err := testEnv.CreateNamespace(ctx, "smoke")
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}

	repo := flux("source.toolkit.fluxcd.io/v1", "GitRepository", ns.Name, "apps", map[string]any{
		"interval": "5m",
		"url":      "https://example.com/acme/apps.git",
		"ref":      map[string]any{"branch": "main"},
	})
	ks := flux("kustomize.toolkit.fluxcd.io/v1", "Kustomization", ns.Name, "apps", map[string]any{
		"interval":  "10m",
		"path":      "./deploy",
		"prune":     true,
		"sourceRef": map[string]any{"kind": "GitRepository", "name": "apps"},
	})
	gate := &v1alpha1.Gate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "apps"},
		Spec: v1alpha1.GateSpec{
			KustomizationRef: &v1alpha1.KustomizationReference{Name: "apps"},
			Interval:         metav1.Duration{Duration: 10 * time.Minute},
		},
	}

	for _, obj := range []client.Object{repo, ks, gate} {
		// CreateAndWait also waits until the manager's cached client sees
		// the object, as the reconciler will.
		if err := testEnv.CreateAndWait(ctx, obj); err != nil {
			t.Fatalf("creating %s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(obj), err)
		}
	}

	// Read back from the API server itself, not the cache.
	reader := testEnv.GetAPIReader()

	gotRepo := flux("source.toolkit.fluxcd.io/v1", "GitRepository", "", "", nil)
	if err := reader.Get(ctx, client.ObjectKeyFromObject(repo), gotRepo); err != nil {
		t.Fatalf("getting GitRepository: %v", err)
	}
	if got, _, _ := unstructured.NestedString(gotRepo.Object, "spec", "ref", "branch"); got != "main" {
		t.Errorf("GitRepository spec.ref.branch = %q, want %q", got, "main")
	}
	// The CRD's schema is applied: timeout is defaulted by the API server.
	if got, _, _ := unstructured.NestedString(gotRepo.Object, "spec", "timeout"); got != "60s" {
		t.Errorf("GitRepository spec.timeout = %q, want the CRD default %q", got, "60s")
	}

	gotKs := flux("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "", "", nil)
	if err := reader.Get(ctx, client.ObjectKeyFromObject(ks), gotKs); err != nil {
		t.Fatalf("getting Kustomization: %v", err)
	}
	if got, _, _ := unstructured.NestedString(gotKs.Object, "spec", "sourceRef", "name"); got != "apps" {
		t.Errorf("Kustomization spec.sourceRef.name = %q, want %q", got, "apps")
	}

	var gotGate v1alpha1.Gate
	if err := reader.Get(ctx, client.ObjectKeyFromObject(gate), &gotGate); err != nil {
		t.Fatalf("getting Gate: %v", err)
	}
	if got := gotGate.Spec.KustomizationRef; got == nil || got.Name != "apps" {
		t.Errorf("Gate spec.kustomizationRef = %+v, want name apps", got)
	}
	if got, want := gotGate.Spec.UnmatchedImages, v1alpha1.UnmatchedImagesDeny; got != want {
		t.Errorf("Gate spec.unmatchedImages = %q, want the CRD default %q", got, want)
	}

	// The CRD's CEL validation runs: a Gate with both references is refused.
	bad := gate.DeepCopy()
	bad.ResourceVersion = ""
	bad.Name = "both-refs"
	bad.Spec.SourceRef = &v1alpha1.SourceReference{Kind: "GitRepository", Name: "apps"}
	if err := testEnv.Create(ctx, bad); err == nil {
		t.Errorf("creating a Gate with sourceRef and kustomizationRef succeeded, want a validation error")
	}
}

// flux returns a Flux object of kind in namespace with spec, as unstructured:
// pregate does not import the Flux API modules yet.
func flux(apiVersion, kind, namespace, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}
