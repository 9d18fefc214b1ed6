package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pregate/pregate/config/v1alpha1"
	gatecontroller "github.com/pregate/pregate/gate/controller"
	"github.com/pregate/pregate/sources/sourcestest"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// The controller's identity as manifests/ installs it.
const (
	controllerNamespace = "pregate-system"
	controllerAccount   = "pregate-controller"
	shardLabel          = "sharding.fluxcd.io/key"
)

// TestController runs the pregate binary as a controller against a real
// kube-apiserver, as the Deployment in manifests/ runs it: with exactly the
// RBAC manifests/ grants its service account, leader election and a watch
// label selector (a Flux-style shard). It checks that a Gate of the shard
// is verified and one outside it is left alone; that the probes and the
// metrics endpoint answer; that only the leader serves artifacts; that a
// standby replica takes over the Lease, and the artifact server, when the
// leader is stopped with SIGTERM (which exits 0 and releases it) and
// reconciles on `flux reconcile`-style requests; and that nothing leaves
// the machine.
func TestController(t *testing.T) {
	t.Parallel()
	bin := e2eBinary(t, "PREGATE_BIN", "the pregate binary", "make build", "bin/pregate")
	ctx := t.Context()
	cfg, env := startControlPlane(t)
	admin := newClient(t, cfg)
	install(t, admin)
	kubeconfig := serviceAccountKubeconfig(t, env)

	// A signed image, a source whose revision runs it, a policy that
	// trusts its signer, and two Gates on the source: one in the shard.
	registry := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	sigstore := verifytest.NewSigstore(t)
	const signer, issuer = "https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main", "https://token.actions.githubusercontent.com"
	ref, digest := verifytest.PushRandomImage(t, registry+"/acme/web:1.0")
	verifytest.PushBundle(t, ref, sigstore.MustSignImage(t, signer, issuer, digest), verify.CosignSignPredicateType)
	arts := sourcestest.NewServer(t)
	art := arts.Publish(t, "gitrepository/apps/apps", map[string]string{"deploy/app.yaml": podYAML(registry + "/acme/web:1.0")}, sourcestest.GitRevision)
	createAll(t, admin,
		&v1alpha1.TrustRoot{
			ObjectMeta: metav1.ObjectMeta{Name: "test"},
			Spec:       v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(sigstore.TrustedRootJSON())}},
		},
		&v1alpha1.TrustPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "acme"},
			Spec: v1alpha1.TrustPolicySpec{
				Images:       []v1alpha1.ImagePattern{{Glob: registry + "/**"}},
				TrustRootRef: "test",
				Authorities: []v1alpha1.Authority{{
					Name:    "release",
					Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{{Issuer: issuer, Subject: signer}}},
					// The test Sigstore has no CT log.
					InsecureIgnoreSCT: true,
				}},
			},
		},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}},
		&sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "apps"},
			Spec: sourcev1.GitRepositorySpec{
				URL: "https://git.example.com/acme/apps.git", Interval: metav1.Duration{Duration: time.Minute},
				Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
			},
		},
	)
	repo := &sourcev1.GitRepository{}
	must(t, admin.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "apps"}, repo))
	repo.Status.Artifact = &meta.Artifact{Path: art.Path, URL: art.URL, Revision: art.Revision, Digest: art.Digest, Size: &art.Size, LastUpdateTime: metav1.Now()}
	repo.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.SucceededReason, LastTransitionTime: metav1.Now()}}
	must(t, admin.Status().Update(ctx, repo))
	gate := func(name string, labels map[string]string) *v1alpha1.Gate {
		return &v1alpha1.Gate{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name, Labels: labels},
			Spec: v1alpha1.GateSpec{
				SourceRef: &v1alpha1.SourceReference{Kind: sourcev1.GitRepositoryKind, Name: "apps"},
				Path:      "./deploy",
				Interval:  metav1.Duration{Duration: 10 * time.Minute},
			},
		}
	}
	sharded, other := gate("sharded", map[string]string{shardLabel: "shard1"}), gate("other", nil)
	createAll(t, admin, sharded, other)

	sentinel := newNetworkSentinel(t)
	run := func(name string) *process {
		dir := t.TempDir()
		health, metrics, storage := freePort(t), freePort(t), freePort(t)
		p := startProcess(t, name, append(offlineEnv(t, dir, sentinel),
			"KUBECONFIG="+kubeconfig,
			// As the Deployment passes them through the downward API.
			"RUNTIME_NAMESPACE="+controllerNamespace, "RUNTIME_SERVICE_ACCOUNT="+controllerAccount,
		), bin, "controller",
			"--watch-label-selector="+shardLabel+" in (shard1)",
			"--enable-leader-election",
			"--leader-election-lease-duration=6s", "--leader-election-renew-deadline=4s", "--leader-election-retry-period=500ms",
			"--health-addr="+health, "--metrics-addr="+metrics,
			"--storage-path="+t.TempDir(), "--storage-addr="+storage, "--storage-adv-addr="+storage,
			"--tuf-cache="+filepath.Join(dir, "tuf"),
			"--retry-interval=1s",
		)
		p.health, p.metrics, p.storage = health, metrics, storage
		return p
	}

	leader := run("leader")
	got := waitGate(t, admin, sharded, func(g *v1alpha1.Gate) bool {
		return g.Status.LastVerifiedRevision == art.Revision && readyStatus(g) == metav1.ConditionTrue
	}, leader)
	t.Logf("Gate %s: Ready=True for %s", got.Name, got.Status.LastVerifiedRevision)

	// The shard's selector leaves the other Gate to another controller.
	g := NewWithT(t)
	g.Consistently(func(g Gomega) {
		g.Expect(admin.Get(ctx, client.ObjectKeyFromObject(other), other)).To(Succeed())
		g.Expect(other.Status).To(BeZero(), "status of the Gate outside the shard")
	}).WithTimeout(2 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, "http://"+leader.health+path); code != http.StatusOK {
			t.Errorf("GET %s: HTTP %d %s", path, code, body)
		}
	}
	_, metrics := httpGet(t, "http://"+leader.metrics+"/metrics")
	for _, want := range []string{
		`pregate_gate_ready{name="sharded",namespace="apps",status="True"} 1`,
		`pregate_registry_requests_total{code="200",host="` + registry + `"}`,
		`pregate_verdict_cache_misses_total 1`,
		`controller_runtime_reconcile_total{controller="gate",result="success"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `name="other"`) {
		t.Errorf("/metrics has series of the Gate outside the shard")
	}
	// The artifact server is a runnable of the elected leader.
	g.Eventually(func() (int, error) { return storageGet(t, leader) }).
		WithTimeout(10*time.Second).WithPolling(100*time.Millisecond).
		Should(Equal(http.StatusOK), "GET / of the leader's artifact server\n%s", leader)

	// Events are written into the Gate's namespace with the service
	// account's rights (by the recorder, after the verdict).
	g.Eventually(func(g Gomega) []string {
		var events eventsv1.EventList
		g.Expect(admin.List(ctx, &events, client.InNamespace("apps"))).To(Succeed())
		var reasons []string
		for _, e := range events.Items {
			if e.Regarding.Name == sharded.Name {
				reasons = append(reasons, e.Type+"/"+e.Reason)
			}
		}
		return reasons
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).
		Should(Equal([]string{corev1.EventTypeNormal + "/Succeeded"}), "Events about Gate %s", sharded.Name)

	// A standby replica waits for the Lease, and serves no artifacts
	// meanwhile (its port refuses connections); the leader's SIGTERM hands
	// both over, and the new leader handles a reconcile request.
	holder := leaseHolder(t, admin, leader)
	standby := run("standby")
	waitHTTP(t, "http://"+standby.health+"/readyz", standby)
	g.Consistently(func(g Gomega) {
		g.Expect(leaseHolder(t, admin, leader)).To(Equal(holder), "the Lease's holder")
		g.Expect(storageGet(t, leader)).To(Equal(http.StatusOK), "GET / of the leader's artifact server")
		_, err := storageGet(t, standby)
		g.Expect(err).To(MatchError(syscall.ECONNREFUSED), "GET / of the standby's artifact server")
	}).WithTimeout(1500*time.Millisecond).WithPolling(100*time.Millisecond).
		Should(Succeed(), "while the leader runs, over a few of the standby's retry periods\n%s", standby)
	if code := leader.stop(t); code != 0 {
		t.Errorf("the leader exited %d on SIGTERM, want 0\n%s", code, leader)
	}
	// The leader releases the Lease as it exits: the standby takes it
	// within a few of its retry periods, well before the Lease would have
	// expired (lease duration 6 s after the last renewal).
	g.Eventually(func() string { return leaseHolder(t, admin, standby) }).
		WithTimeout(4*time.Second).WithPolling(100*time.Millisecond).
		Should(And(Not(BeEmpty()), Not(Equal(holder))), "the Lease's holder after the leader stopped\n%s", standby)
	g.Eventually(func() (int, error) { return storageGet(t, standby) }).
		WithTimeout(10*time.Second).WithPolling(100*time.Millisecond).
		Should(Equal(http.StatusOK), "GET / of the new leader's artifact server\n%s", standby)
	token := time.Now().Format(time.RFC3339Nano)
	must(t, admin.Get(ctx, client.ObjectKeyFromObject(sharded), sharded))
	patch := client.MergeFrom(sharded.DeepCopy())
	sharded.Annotations = map[string]string{meta.ReconcileRequestAnnotation: token}
	must(t, admin.Patch(ctx, sharded, patch))
	waitGate(t, admin, sharded, func(g *v1alpha1.Gate) bool {
		return g.Status.LastHandledReconcileAt == token && readyStatus(g) == metav1.ConditionTrue
	}, standby)

	if code := standby.stop(t); code != 0 {
		t.Errorf("the standby exited %d on SIGTERM, want 0\n%s", code, standby)
	}
	if h := leaseHolder(t, admin, standby); h != "" {
		t.Errorf("the Lease is still held by %s after SIGTERM; the controller releases it on exit", h)
	}
	for _, p := range []*process{leader, standby} {
		if errs := p.loggedErrors(t); len(errs) > 0 {
			t.Errorf("the %s logged errors:\n%s\n%s", p.name, strings.Join(errs, "\n"), p)
		}
	}
	if reqs := sentinel.Requests(); len(reqs) > 0 {
		t.Errorf("the controller tried to reach the network:\n%s", strings.Join(reqs, "\n"))
	}
}

// startControlPlane starts a kube-apiserver and etcd (from
// KUBEBUILDER_ASSETS, which `make test` sets) with the CRDs of manifests/
// and Flux's, and stops them when the test ends.
func startControlPlane(t *testing.T) (*rest.Config, *envtest.Environment) {
	t.Helper()
	env := startEnvtest(t, filepath.Join("..", "gate", "controller", "testdata", "crd", "flux"))
	return env.Config, env
}

// startEnvtest starts a kube-apiserver and etcd with the CRDs of
// manifests/ and those of crdDirs, and stops them when the test ends.
func startEnvtest(t *testing.T, crdDirs ...string) *envtest.Environment {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: this test runs a kube-apiserver and etcd. Run it with `make test`, " +
			"which builds them (`make envtest-assets`) and sets KUBEBUILDER_ASSETS")
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, obj := range buildManifests(t) {
		if obj.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, crd))
		crds = append(crds, crd)
	}
	env := &envtest.Environment{CRDs: crds, CRDDirectoryPaths: crdDirs, ErrorIfCRDPathMissing: true}
	if _, err := env.Start(); err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	return env
}

// buildManifests is what `kubectl apply -k manifests/` applies.
func buildManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../manifests")
	if err != nil {
		t.Fatalf("kustomize build manifests: %v", err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		must(t, err)
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
	return objs
}

// install creates what manifests/ holds but the CRDs (installed with the
// control plane): the namespace, service account, RBAC, and the
// Deployment, Service and NetworkPolicy, which the API server must accept
// (nothing runs them here).
func install(t *testing.T, c client.Client) {
	t.Helper()
	for _, obj := range buildManifests(t) {
		if obj.GetKind() == "CustomResourceDefinition" {
			continue
		}
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatalf("kubectl apply -k manifests/: %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// controller's service account, with only the rights manifests/ binds to
// it.
func serviceAccountKubeconfig(t *testing.T, env *envtest.Environment) string {
	t.Helper()
	return userKubeconfig(t, env, envtest.User{
		Name:   "system:serviceaccount:" + controllerNamespace + ":" + controllerAccount,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + controllerNamespace, "system:authenticated"},
	})
}

// userKubeconfig writes a kubeconfig that authenticates as u.
func userKubeconfig(t *testing.T, env *envtest.Environment, u envtest.User) string {
	t.Helper()
	user, err := env.AddUser(u, nil)
	must(t, err)
	b, err := user.KubeConfig()
	must(t, err)
	p := filepath.Join(t.TempDir(), "kubeconfig")
	must(t, os.WriteFile(p, b, 0o600))
	return p
}

func newClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	must(t, gatecontroller.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	must(t, err)
	return c
}

func createAll(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// podYAML is a revision's one Deployment running image.
func podYAML(image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: %s
`, image)
}

func readyStatus(g *v1alpha1.Gate) metav1.ConditionStatus {
	for _, c := range g.Status.Conditions {
		if c.Type == meta.ReadyCondition {
			return c.Status
		}
	}
	return ""
}

// waitGate waits up to a minute for ok to hold of gate, and returns it;
// on timeout it fails with the Gate's status and what p printed.
func waitGate(t *testing.T, c client.Client, gate *v1alpha1.Gate, ok func(*v1alpha1.Gate) bool, p *process) *v1alpha1.Gate {
	t.Helper()
	got := &v1alpha1.Gate{}
	NewWithT(t).Eventually(func(g Gomega) {
		if p.exited() {
			StopTrying("the controller exited").Now()
		}
		g.Expect(c.Get(t.Context(), client.ObjectKeyFromObject(gate), got)).To(Succeed())
		g.Expect(ok(got)).To(BeTrue(), "Gate %s/%s: status %+v", gate.Namespace, gate.Name, got.Status)
	}).WithTimeout(time.Minute).WithPolling(100*time.Millisecond).Should(Succeed(), "%s", p)
	return got
}

// leaseHolder is the holder of the controller's leader election Lease, ""
// when it is free or there is none.
func leaseHolder(t *testing.T, c client.Client, p *process) string {
	t.Helper()
	var leases coordinationv1.LeaseList
	must(t, c.List(t.Context(), &leases, client.InNamespace(controllerNamespace)))
	switch len(leases.Items) {
	case 0:
		return ""
	case 1:
		if h := leases.Items[0].Spec.HolderIdentity; h != nil {
			return *h
		}
		return ""
	default:
		t.Fatalf("%d Leases in %s, want the controller's one\n%s", len(leases.Items), controllerNamespace, p)
		return ""
	}
}

// probeClient reads the controller's probes and metrics. It has its own
// transport: closing any httptest.Server closes the idle connections of
// http.DefaultTransport, which can break a request of a parallel test.
var probeClient = &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}

func get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return probeClient.Do(req)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := get(t.Context(), url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp.StatusCode, string(b)
}

// storageGet is the HTTP status of GET / of p's artifact server (a
// listing of its storage directory), or why there is none.
func storageGet(t *testing.T, p *process) (int, error) {
	resp, err := get(t.Context(), "http://"+p.storage+"/")
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Body.Close()
}

// waitHTTP waits up to 30 s for url to answer 200.
func waitHTTP(t *testing.T, url string, p *process) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		if p.exited() {
			StopTrying("the controller exited").Now()
		}
		resp, err := get(t.Context(), url)
		g.Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "GET %s\n%s", url, p)
}

// freePort is a loopback address no one listens on, for a server of the
// binary under test.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	must(t, l.Close())
	return addr
}

// process is a long-running binary under test.
type process struct {
	name                     string
	cmd                      *exec.Cmd
	stdout, stderr           *syncBuffer
	done                     chan struct{}
	health, metrics, storage string
}

// startProcess starts bin with args and exactly env; it is killed when
// the test ends, if it still runs.
func startProcess(t *testing.T, name string, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.CommandContext(t.Context(), bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to 30 s, and returns the exit code.
func (p *process) stop(t *testing.T) int {
	t.Helper()
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the %s did not exit within 30 s of SIGTERM\n%s", p.name, p)
	}
	return p.cmd.ProcessState.ExitCode()
}

// loggedErrors are the error lines of the process's JSON log, but the
// one controller-runtime's manager writes when, stopping, it releases the
// leader election Lease (it reports its own release as "leader election
// lost" after the stop sequence began; the exit stays clean).
func (p *process) loggedErrors(t *testing.T) []string {
	t.Helper()
	var errs []string
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		var entry struct{ Level, Msg, Error string }
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("the %s logged a line that is not JSON: %q", p.name, line)
			continue
		}
		if entry.Level != "error" || shutdownNoise(entry.Msg, entry.Error) {
			continue
		}
		errs = append(errs, line)
	}
	return errs
}

// shutdownNoise says whether an error line is what client-go's leader
// election logs when SIGTERM cancels it mid-renewal: the Lease is released
// all the same (the test checks it), so it is not an error of pregate's.
func shutdownNoise(msg, err string) bool {
	switch {
	case msg == "error received after stop sequence was engaged" && err == "leader election lost":
		return true
	case msg == "Error retrieving lease lock" && err == "context canceled":
		return true
	}
	return false
}

func (p *process) String() string {
	return fmt.Sprintf("%s: $ %s\nstdout:\n%s\nstderr:\n%s", p.name, strings.Join(p.cmd.Args, " "), p.stdout, p.stderr)
}

// syncBuffer is a bytes.Buffer safe for a process to write while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
