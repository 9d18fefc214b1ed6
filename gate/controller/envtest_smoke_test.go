package controller

// The package's tests run against a real kube-apiserver and etcd (envtest,
// through fluxcd/pkg/runtime/testenv), started once in TestMain with
// pregate's CRDs (manifests/crd/bases) and the Flux CRDs a Gate refers to
// (testdata/crd/flux, see its ORIGIN). The GateReconciler is registered with
// testenv's manager before it starts, wired as `pregate controller` wires it
// (see newTestReconciler), so every test sees the real controller at work.
// The binaries are built from the Go module proxy by `make envtest-assets`;
// `make test` builds them and sets KUBEBUILDER_ASSETS. Without them the
// package fails: it never skips silently. Under -short (make test-unit) no
// control plane is started and the tests that need one skip.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	artifactcfg "github.com/fluxcd/pkg/artifact/config"

	"github.com/fluxcd/pkg/runtime/testenv"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
)

var (
	// testEnv is the control plane and a started manager with a cached
	// client, running the GateReconciler; nil under -short.
	testEnv *testenv.Environment
	// testEnvStartup is how long starting the control plane, installing the
	// CRDs and creating the manager took.
	testEnvStartup time.Duration

	// k8sClient talks to the API server directly (no cache) and can watch:
	// what a test reads is what the API server holds.
	k8sClient client.WithWatch

	// reconciler is the GateReconciler the manager runs, and what it shares
	// between Gates: its request counter, verdict cache and metrics
	// (registered with metricsRegistry, not controller-runtime's global one).
	reconciler      *GateReconciler
	metricsRegistry *prometheus.Registry
	// logs records what the controller logs (errors above all); eventLog
	// records every Event the reconciler emits, as it emits it.
	logs     *logRecorder
	eventLog *eventRecorder
)

// The reconciler's settings in tests: retries come quickly so that recovery
// is seen within seconds; the rest is as `pregate controller` defaults.
const (
	testRetryInterval  = time.Second
	testLookupTimeout  = 5 * time.Second
	testWorkers        = 4
	testControllerName = "pregate-controller"
)

// testServiceAccount is the controller's own service account, whose image
// pull secrets every Gate may use. No test but the one about it creates it.
var testServiceAccount = types.NamespacedName{Namespace: "pregate-system", Name: "pregate-controller"}

// crdPaths are the CRD directories installed into the control plane,
// relative to this package.
var crdPaths = []string{
	filepath.Join("..", "..", "manifests", "crd", "bases"),
	filepath.Join("testdata", "crd", "flux"),
	filepath.Join("testdata", "crd", "admission"),
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
	if err := AddToScheme(scheme); err != nil {
		fmt.Fprintf(os.Stderr, "envtest: building the scheme: %v\n", err)
		return 1
	}

	// Before testenv.New, which would install klog otherwise: the first
	// logger set is the one controller-runtime keeps.
	logs = newLogRecorder(os.Getenv("PREGATE_TEST_LOG") != "")
	ctrl.SetLogger(logs.Logger())

	start := time.Now()
	// New panics if the control plane does not start; that fails the
	// package with envtest's error.
	testEnv = testenv.New(testenv.WithScheme(scheme), testenv.WithCRDPath(crdPaths...))
	testEnvStartup = time.Since(start)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Never used: every TrustRoot in these tests is inline.
	tufDir, err := os.MkdirTemp("", "pregate-tuf-")
	if err == nil {
		defer os.RemoveAll(tufDir)
		err = setupController(ctx, scheme, tufDir)
	}

	managerErr := make(chan error, 1)
	go func() { managerErr <- testEnv.Start(ctx) }()

	code := 1
	if err != nil {
		// The control plane runs: stop it as after the tests, once the
		// manager has started (Stop cancels what Start made).
		fmt.Fprintf(os.Stderr, "envtest: %v\n", err)
		select {
		case <-testEnv.Elected():
		case err := <-managerErr:
			managerErr <- err
		}
	} else {
		code = m.Run()
	}

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

// setupController makes the direct client and the reconciler, and
// registers the reconciler with testenv's manager.
func setupController(ctx context.Context, scheme *runtime.Scheme, tufDir string) error {
	var err error
	if k8sClient, err = client.NewWithWatch(testEnv.Config, client.Options{Scheme: scheme}); err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	if reconciler, err = newTestReconciler(scheme, tufDir); err != nil {
		return err
	}
	// Republished revisions are stored next to the TUF cache and served
	// over loopback, as --storage-path and --storage-addr make them.
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return err
	}
	if reconciler.Artifacts, err = NewArtifacts(artifactcfg.Options{StoragePath: filepath.Join(tufDir, "artifacts"), StorageAddress: addr,
		ArtifactRetentionTTL: time.Minute, ArtifactRetentionRecords: 2, ArtifactDigestAlgo: "sha256"}); err != nil {
		return err
	}
	if err := testEnv.Add(reconciler.Artifacts); err != nil {
		return err
	}
	if err := reconciler.SetupWithManager(ctx, testEnv, Options{MaxConcurrentReconciles: testWorkers, ServiceAccount: testServiceAccount}); err != nil {
		return fmt.Errorf("setting up the Gate controller: %w", err)
	}
	return nil
}

// newTestReconciler wires a GateReconciler as cmd/pregate's controller
// command does: a client that reads Secrets, ConfigMaps and ServiceAccounts
// live and everything else from the manager's cache, the manager's event
// recorder (wrapped to record), one transport, verdict cache and request
// counter for all Gates, and metrics.
func newTestReconciler(scheme *runtime.Scheme, tufDir string) (*GateReconciler, error) {
	c, err := client.New(testEnv.Config, client.Options{Scheme: scheme, Cache: &client.CacheOptions{
		Reader:     testEnv.GetCache(),
		DisableFor: UncachedObjects(),
	}})
	if err != nil {
		return nil, fmt.Errorf("creating the reconciler's client: %w", err)
	}
	cache, err := verify.NewCache(10 * time.Minute)
	if err != nil {
		return nil, err
	}
	requests := &verify.RequestCounter{}
	metrics := NewMetrics(requests, cache)
	metricsRegistry = prometheus.NewRegistry()
	for _, c := range metrics.Collectors() {
		if err := metricsRegistry.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	eventLog = &eventRecorder{inner: testEnv.GetEventRecorder(testControllerName)}
	hosts, err := verify.NewHosts()
	if err != nil {
		return nil, err
	}
	return &GateReconciler{
		Client:               c,
		EventRecorder:        eventLog,
		ControllerName:       testControllerName,
		Hosts:                hosts,
		Cache:                cache,
		RequestStats:         requests,
		LookupTimeout:        testLookupTimeout,
		TUFCacheDir:          tufDir,
		RetryInterval:        testRetryInterval,
		ArtifactFetchRetries: 1,
		MaxArtifactSize:      16 << 20,
		APIReader:            testEnv.GetAPIReader(),
		Metrics:              metrics,
	}, nil
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

	// The controller reconciles this Gate too (its source has no artifact):
	// leave nothing for it once the test is over.
	t.Cleanup(func() {
		if err := testEnv.Cleanup(context.Background(), gate); err != nil {
			t.Errorf("deleting Gate: %v", err)
		}
	})
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
// the smoke test checks the CRDs in testdata as the API server serves them,
// independently of the Go types the controller uses.
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
