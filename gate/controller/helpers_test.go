package controller

// Fixtures for the controller's envtest tests: a namespace per test with its
// own loopback registry, in-process Sigstore, TrustRoot and TrustPolicy, and
// an HTTP server serving Flux artifacts built from files the test writes;
// builders for Gates and Flux sources; a watch that records every state of a
// Gate; and recorders for what the controller logs and emits.

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/conditions/check"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	dto "github.com/prometheus/client_model/go"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/sources/sourcestest"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// The signer of every signed image, and the identity policies trust.
const (
	signerID     = "https://github.com/acme/web/.github/workflows/release.yml@refs/heads/main"
	signerIssuer = "https://token.actions.githubusercontent.com"
	trustedRE    = `https://github\.com/acme/.+`
	untrustedRE  = `https://github\.com/evil/.+`
)

// Deadlines for Eventually: generous, since the package runs its tests in
// parallel under -race on small machines; a passing wait returns as soon as
// the condition holds.
const (
	waitTimeout = 60 * time.Second
	waitPolling = 50 * time.Millisecond
)

// testLabel is the label every TrustPolicy of a test carries, with the
// test's namespace as its value: TrustPolicies are cluster-scoped, and each
// test's Gates select only their own.
const testLabel = "test.pregate.dev/namespace"

// needsControlPlane skips the test under -short.
func needsControlPlane(t testing.TB) {
	t.Helper()
	if testEnv == nil {
		t.Skip("-short: no control plane")
	}
}

// fixture is one test's world: a namespace, a registry with the referrers
// API, a Sigstore, the TrustRoot of that Sigstore, a TrustPolicy covering
// every image of the registry and trusting signerID, and an artifact
// server.
type fixture struct {
	t  testing.TB
	g  *WithT
	ns string
	// registry is where images are pushed; host is the registry the
	// manifests name and the controller reads: the registry itself, or the
	// Front before it.
	registry string
	host     string
	front    *verifytest.Front
	sigstore *verifytest.Sigstore
	pusher   verifytest.Pusher
	arts     *sourcestest.Server
	// name is the TrustPolicy's and the TrustRoot's.
	name string
}

type fixtureOption func(*fixtureOptions)

type fixtureOptions struct {
	front     bool
	frontOpts []verifytest.FrontOption
}

// withFront puts a fault-injecting Front, made with opts, before the
// registry: manifests name the Front, pushes go to the registry itself.
func withFront(opts ...verifytest.FrontOption) fixtureOption {
	return func(o *fixtureOptions) { o.front, o.frontOpts = true, opts }
}

func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	needsControlPlane(t)
	var o fixtureOptions
	for _, opt := range opts {
		opt(&o)
	}
	ctx := t.Context()
	ns, err := testEnv.CreateNamespace(ctx, namespacePrefix(t.Name()))
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	f := &fixture{
		t:        t,
		g:        NewWithT(t),
		ns:       ns.Name,
		registry: verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true)),
		sigstore: verifytest.NewSigstore(t),
		arts:     sourcestest.NewServer(t),
		name:     "test-" + ns.Name,
	}
	f.host = f.registry
	if o.front {
		f.front = verifytest.NewFront(t, f.registry, o.frontOpts...)
		f.host = f.front.Host()
	}
	root := &v1alpha1.TrustRoot{
		ObjectMeta: metav1.ObjectMeta{Name: f.name},
		Spec:       v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(f.sigstore.TrustedRootJSON())}},
	}
	policy := &v1alpha1.TrustPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: f.name, Labels: map[string]string{testLabel: f.ns}},
		Spec: v1alpha1.TrustPolicySpec{
			Images:       []v1alpha1.ImagePattern{{Glob: f.host + "/**"}},
			TrustRootRef: f.name,
			Authorities: []v1alpha1.Authority{{
				Name: "release",
				Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{{
					Issuer: signerIssuer, SubjectRegExp: trustedRE,
				}}},
				// The virtual Sigstore has no CT log.
				InsecureIgnoreSCT: true,
			}},
		},
	}
	for _, obj := range []client.Object{root, policy} {
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
	// Last in, first out: the Gates go before their policy, the policy
	// before the registry closes. t.Context() has ended by then.
	t.Cleanup(func() {
		ctx := context.Background()
		var gates v1alpha1.GateList
		if err := k8sClient.List(ctx, &gates, client.InNamespace(f.ns)); err != nil {
			t.Errorf("listing Gates: %v", err)
		}
		for i := range gates.Items {
			if err := k8sClient.Delete(ctx, &gates.Items[i]); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting Gate %s: %v", gates.Items[i].Name, err)
			}
		}
		for _, obj := range []client.Object{policy, root} {
			if err := k8sClient.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting %T %s: %v", obj, obj.GetName(), err)
			}
		}
	})
	return f
}

// namespacePrefix makes a test's name a namespace's generateName: lower
// case letters, digits and dashes, at most 40 of them.
func namespacePrefix(testName string) string {
	b := []byte(strings.ToLower(strings.TrimPrefix(testName, "TestGateReconciler_")))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b[:min(len(b), 40)]), "-")
}

// selector selects the fixture's TrustPolicy.
func (f *fixture) selector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{testLabel: f.ns}}
}

// pushSigned pushes a random image to repoTag ("acme/web:1.0") and signs it
// as cosign v3 does (a bundle referrer), by signerID. It returns the
// reference manifests use (through the Front, if any) and the digest.
func (f *fixture) pushSigned(repoTag string) (ref, digest string) {
	f.t.Helper()
	digestRef, digest := verifytest.PushRandomImage(f.t, f.registry+"/"+repoTag)
	verifytest.PushBundle(f.t, digestRef, f.sigstore.MustSignImage(f.t, signerID, signerIssuer, digest), verify.CosignSignPredicateType)
	return f.host + "/" + repoTag, digest
}

// pushUnsigned pushes a random image to repoTag without any signature.
func (f *fixture) pushUnsigned(repoTag string) (ref, digest string) {
	f.t.Helper()
	_, digest = verifytest.PushRandomImage(f.t, f.registry+"/"+repoTag)
	return f.host + "/" + repoTag, digest
}

// updatePolicy changes the fixture's TrustPolicy.
func (f *fixture) updatePolicy(mutate func(*v1alpha1.TrustPolicySpec)) {
	f.t.Helper()
	p := &v1alpha1.TrustPolicy{}
	if err := k8sClient.Get(f.t.Context(), client.ObjectKey{Name: f.name}, p); err != nil {
		f.t.Fatalf("getting TrustPolicy %s: %v", f.name, err)
	}
	orig := p.DeepCopy()
	mutate(&p.Spec)
	if err := k8sClient.Patch(f.t.Context(), p, client.MergeFrom(orig)); err != nil {
		f.t.Fatalf("patching TrustPolicy %s: %v", f.name, err)
	}
}

// gitRepository creates a GitRepository whose artifact holds files, as
// source-controller would have it after a successful reconcile, and
// returns it and the artifact's revision.
func (f *fixture) gitRepository(name string, files map[string]string) (*sourcev1.GitRepository, string) {
	f.t.Helper()
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{
			URL:       "https://git.example.com/acme/" + name + ".git",
			Interval:  metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if err := k8sClient.Create(f.t.Context(), repo); err != nil {
		f.t.Fatalf("creating GitRepository %s: %v", name, err)
	}
	return repo, f.setRevision(repo, files)
}

// ociRepository is gitRepository for an OCIRepository.
func (f *fixture) ociRepository(name string, files map[string]string) (*sourcev1.OCIRepository, string) {
	f.t.Helper()
	repo := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: sourcev1.OCIRepositorySpec{
			URL:       "oci://" + f.host + "/acme/manifests",
			Interval:  &metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.OCIRepositoryRef{Tag: "latest"},
		},
	}
	if err := k8sClient.Create(f.t.Context(), repo); err != nil {
		f.t.Fatalf("creating OCIRepository %s: %v", name, err)
	}
	return repo, f.setRevision(repo, files)
}

// setRevision publishes files as a new artifact of src (a GitRepository or
// an OCIRepository) and writes it into src's status with Ready=True, as
// source-controller does. It returns the revision.
func (f *fixture) setRevision(src client.Object, files map[string]string) string {
	f.t.Helper()
	return setRevision(f.t, f.arts, src, files)
}

func setRevision(t testing.TB, arts *sourcestest.Server, src client.Object, files map[string]string) string {
	t.Helper()
	ctx := context.Background() // also called from benchmarks' setup
	key := client.ObjectKeyFromObject(src)
	if err := k8sClient.Get(ctx, key, src); err != nil {
		t.Fatalf("getting %T %s: %v", src, key, err)
	}
	orig := src.DeepCopyObject().(client.Object)
	var setter interface {
		conditions.Setter
		SetArtifact(*meta.Artifact)
	}
	var revision sourcestest.Revision
	switch s := src.(type) {
	case *sourcev1.GitRepository:
		setter, revision = gitSetter{s}, sourcestest.GitRevision
	case *sourcev1.OCIRepository:
		setter, revision = ociSetter{s}, sourcestest.OCIRevision
	default:
		t.Fatalf("setRevision: unsupported source %T", src)
	}
	kind := strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", src), "*v1."))
	a := arts.Publish(t, path.Join(kind, key.Namespace, key.Name), files, revision)
	art := &meta.Artifact{Path: a.Path, URL: a.URL, Revision: a.Revision, Digest: a.Digest, Size: &a.Size, LastUpdateTime: metav1.Now()}
	setter.SetArtifact(art)
	conditions.MarkTrue(setter, meta.ReadyCondition, meta.SucceededReason, "stored artifact for revision '%s'", art.Revision)
	conditions.Delete(setter, meta.ReconcilingCondition)
	if err := k8sClient.Status().Patch(ctx, src, client.MergeFrom(orig)); err != nil {
		t.Fatalf("setting the artifact of %T %s: %v", src, key, err)
	}
	// Wait until the manager's cache, which the controller reads, has it:
	// a Gate created next then never sees the source without its artifact.
	cached := src.DeepCopyObject().(client.Object)
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(testEnv.Get(ctx, key, cached)).To(Succeed())
		a := cached.(interface{ GetArtifact() *meta.Artifact }).GetArtifact()
		g.Expect(a).NotTo(BeNil())
		g.Expect(a.Revision).To(Equal(art.Revision))
	}).WithTimeout(waitTimeout).WithPolling(10*time.Millisecond).Should(Succeed(), "the manager's cache has %s", art.Revision)
	return art.Revision
}

type gitSetter struct{ *sourcev1.GitRepository }

func (s gitSetter) SetArtifact(a *meta.Artifact) {
	s.Status.Artifact = a
	s.Status.ObservedGeneration = s.Generation
}

type ociSetter struct{ *sourcev1.OCIRepository }

func (s ociSetter) SetArtifact(a *meta.Artifact) {
	s.Status.Artifact = a
	s.Status.ObservedGeneration = s.Generation
}

// gateFor returns a Gate of the fixture's TrustPolicy on src, rendering
// ./deploy, changed by mods; createGate creates it.
func (f *fixture) gateFor(name string, src client.Object, mods ...func(*v1alpha1.Gate)) *v1alpha1.Gate {
	kind := strings.TrimPrefix(fmt.Sprintf("%T", src), "*v1.")
	g := &v1alpha1.Gate{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: v1alpha1.GateSpec{
			SourceRef:      &v1alpha1.SourceReference{Kind: kind, Name: src.GetName()},
			Path:           "./deploy",
			PolicySelector: f.selector(),
			Interval:       metav1.Duration{Duration: 10 * time.Minute},
		},
	}
	for _, m := range mods {
		m(g)
	}
	return g
}

func (f *fixture) createGate(name string, src client.Object, mods ...func(*v1alpha1.Gate)) *v1alpha1.Gate {
	f.t.Helper()
	g := f.gateFor(name, src, mods...)
	if err := k8sClient.Create(f.t.Context(), g); err != nil {
		f.t.Fatalf("creating Gate %s: %v", name, err)
	}
	return g
}

// patchGate changes a Gate's spec or metadata.
func (f *fixture) patchGate(gate *v1alpha1.Gate, mutate func(*v1alpha1.Gate)) {
	f.t.Helper()
	if err := k8sClient.Get(f.t.Context(), client.ObjectKeyFromObject(gate), gate); err != nil {
		f.t.Fatalf("getting Gate %s: %v", gate.Name, err)
	}
	orig := gate.DeepCopy()
	mutate(gate)
	if err := k8sClient.Patch(f.t.Context(), gate, client.MergeFrom(orig)); err != nil {
		f.t.Fatalf("patching Gate %s: %v", gate.Name, err)
	}
}

// requestReconcile asks the controller to reconcile gate now, as `flux
// reconcile` does, and returns the token that status.lastHandledReconcileAt
// shows once a reconcile has handled the request.
func (f *fixture) requestReconcile(gate *v1alpha1.Gate) string {
	f.t.Helper()
	token := time.Now().Format(time.RFC3339Nano)
	f.patchGate(gate, func(g *v1alpha1.Gate) {
		if g.Annotations == nil {
			g.Annotations = map[string]string{}
		}
		g.Annotations[meta.ReconcileRequestAnnotation] = token
	})
	return token
}

// eventually waits until assert passes on the Gate as the API server holds
// it, and returns that Gate.
func (f *fixture) eventually(gate *v1alpha1.Gate, assert func(g Gomega, got *v1alpha1.Gate)) *v1alpha1.Gate {
	f.t.Helper()
	got := &v1alpha1.Gate{}
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(f.t.Context(), client.ObjectKeyFromObject(gate), got)).To(Succeed())
		assert(g, got)
	}).WithTimeout(waitTimeout).WithPolling(waitPolling).Should(Succeed(), "Gate %s/%s", gate.Namespace, gate.Name)
	return got
}

// readyFor waits until the Gate has verified revision and is Ready=True,
// checks that state with the kstatus checker, and returns it.
// lastVerifiedRevision is written with the rest of the
// status (summary, images), so they are about revision too.
func (f *fixture) readyFor(gate *v1alpha1.Gate, revision string) *v1alpha1.Gate {
	f.t.Helper()
	return f.conformant(f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.LastVerifiedRevision).To(Equal(revision))
		g.Expect(got.Status.LastAttemptedRevision).To(Equal(revision))
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(lifecycle(got.Status.Conditions)).To(conditions.MatchConditions([]metav1.Condition{
			{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "images verified"},
		}))
	}))
}

// deniedFor waits until the Gate has attempted revision and is Ready=False
// with reason, still retrying (Reconciling=True), and assert passes,
// checks that state with the kstatus checker, and returns it. The conditions and the rest of the status are written by
// separate requests, so what a test asserts about the rest of the status
// belongs in assert.
func (f *fixture) deniedFor(gate *v1alpha1.Gate, revision, reason string, assert ...func(g Gomega, got *v1alpha1.Gate)) *v1alpha1.Gate {
	f.t.Helper()
	return f.conformant(f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.LastAttemptedRevision).To(Equal(revision))
		g.Expect(lifecycle(got.Status.Conditions)).To(conditions.MatchConditions([]metav1.Condition{
			{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: reason},
			{Type: meta.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: meta.ProgressingWithRetryReason},
		}))
		for _, a := range assert {
			a(g, got)
		}
	}))
}

// conformant runs the kstatus checker on gate (see checkConformant) and
// returns it.
func (f *fixture) conformant(gate *v1alpha1.Gate) *v1alpha1.Gate {
	f.t.Helper()
	checkConformant(f.t, gate)
	return gate
}

// gateConditions are the Gate's conditions for the kstatus checker: Stalled
// and Reconciling have negative polarity, as in every Flux controller.
var gateConditions = &check.Conditions{NegativePolarity: []string{meta.StalledCondition, meta.ReconcilingCondition, sourcev1.ArtifactOutdatedCondition}}

// lifecycle are the Ready, Reconciling and Stalled conditions of conds:
// those of every Gate, without spec.artifact's.
func lifecycle(conds []metav1.Condition) []metav1.Condition {
	var out []metav1.Condition
	for _, c := range conds {
		if c.Type == meta.ReadyCondition || c.Type == meta.ReconcilingCondition || c.Type == meta.StalledCondition {
			out = append(out, c)
		}
	}
	return out
}

// checkConformant runs fluxcd/pkg/runtime's kstatus checker on gate, a
// state the test has read and asserted: its conditions must be those of a
// finished reconcile, with neither failures nor warnings. (The checker does
// not fetch the Gate again: another reconcile may have started since, and
// its conditions are those of a reconcile in progress.)
func checkConformant(t testing.TB, gate *v1alpha1.Gate) {
	t.Helper()
	obj := gate.DeepCopy()
	checker := check.NewChecker(k8sClient, gateConditions)
	checker.DisableFetch = true
	fail, warn := checker.Check(context.Background(), obj)
	if fail != nil {
		t.Errorf("kstatus check of Gate %s/%s failed: %v\nconditions: %+v", obj.Namespace, obj.Name, fail, obj.Status.Conditions)
	}
	if warn != nil {
		t.Errorf("kstatus check of Gate %s/%s warned: %v\nconditions: %+v", obj.Namespace, obj.Name, warn, obj.Status.Conditions)
	}
}

// manifests is a revision's files: one Deployment running images, in
// deploy/app.yaml.
func manifests(name string, images ...string) map[string]string {
	return map[string]string{"deploy/app.yaml": deployment(name, "apps", images...)}
}

func deployment(name, namespace string, images ...string) string {
	var containers strings.Builder
	for i, img := range images {
		fmt.Fprintf(&containers, "        - name: c%d\n          image: %s\n", i, img)
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  selector:
    matchLabels: {app: %s}
  template:
    metadata:
      labels: {app: %s}
    spec:
      containers:
%s`, name, namespace, name, name, containers.String())
}

// kustomization creates a Flux Kustomization of src's path ./deploy,
// changed by mods.
func (f *fixture) kustomization(name string, src client.Object, mods ...func(*kustomizev1.Kustomization)) *kustomizev1.Kustomization {
	f.t.Helper()
	kind := strings.TrimPrefix(fmt.Sprintf("%T", src), "*v1.")
	k := &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: 10 * time.Minute},
			Path:      "./deploy",
			Prune:     true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: kind, Name: src.GetName()},
		},
	}
	for _, m := range mods {
		m(k)
	}
	if err := k8sClient.Create(f.t.Context(), k); err != nil {
		f.t.Fatalf("creating Kustomization %s: %v", name, err)
	}
	return k
}

// apiEvents returns the events.k8s.io Events about the Gate, as the API
// server holds them.
func apiEvents(g Gomega, gate *v1alpha1.Gate) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8sClient.List(context.Background(), &list, client.InNamespace(gate.Namespace))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == v1alpha1.GateKind && e.Regarding.Name == gate.Name {
			out = append(out, e)
		}
	}
	return out
}

// haveEvent matches an events.k8s.io Event of type, reason and a note that
// contains each of notes.
func haveEvent(typ, reason string, notes ...string) OmegaMatcher {
	m := []OmegaMatcher{
		HaveField("Type", typ),
		HaveField("Reason", reason),
		HaveField("ReportingController", testControllerName),
		HaveField("Action", "Verify"),
	}
	for _, n := range notes {
		m = append(m, HaveField("Note", ContainSubstring(n)))
	}
	return ContainElement(And(m...))
}

// gateWatch records every state of one Gate the API server reports through
// a watch, from before the Gate exists.
type gateWatch struct {
	t    testing.TB
	w    watch.Interface
	done chan struct{}

	mu     sync.Mutex
	states []*v1alpha1.Gate
	closed bool // the watch ended before stop
}

func watchGate(t testing.TB, namespace, name string) *gateWatch {
	t.Helper()
	w, err := k8sClient.Watch(context.Background(), &v1alpha1.GateList{},
		client.InNamespace(namespace), client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatalf("watching Gate %s/%s: %v", namespace, name, err)
	}
	gw := &gateWatch{t: t, w: w, done: make(chan struct{})}
	go func() {
		defer close(gw.done)
		for ev := range w.ResultChan() {
			g, ok := ev.Object.(*v1alpha1.Gate)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			gw.mu.Lock()
			gw.states = append(gw.states, g.DeepCopy())
			gw.mu.Unlock()
		}
		gw.mu.Lock()
		gw.closed = true
		gw.mu.Unlock()
	}()
	t.Cleanup(func() { gw.w.Stop(); <-gw.done })
	return gw
}

// snapshot returns the states recorded so far, oldest first.
func (gw *gateWatch) snapshot() []*v1alpha1.Gate {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	return slices.Clone(gw.states)
}

// stop ends the watch and returns every state recorded. It fails the test
// if the API server ended the watch early, since states may be missing.
func (gw *gateWatch) stop() []*v1alpha1.Gate {
	gw.mu.Lock()
	early := gw.closed
	gw.mu.Unlock()
	gw.w.Stop()
	<-gw.done
	if early {
		gw.t.Errorf("the API server ended the watch early: Gate states may be missing")
	}
	return gw.snapshot()
}

// describe renders a Gate state in one line for failure messages.
func describe(g *v1alpha1.Gate) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rv=%s gen=%d observed=%d attempted=%q verified=%q", g.ResourceVersion, g.Generation,
		g.Status.ObservedGeneration, g.Status.LastAttemptedRevision, g.Status.LastVerifiedRevision)
	for _, c := range g.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s/%s", c.Type, c.Status, c.Reason)
	}
	return b.String()
}

// Metrics of one Gate, from the reconciler's registry.

// gateSeries lists the metric series labelled with the Gate's namespace and
// name, as "metric{labels}".
func gateSeries(t testing.TB, namespace, name string) []string {
	t.Helper()
	families, err := metricsRegistry.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	var out []string
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == namespace && labels["name"] == name {
				out = append(out, fmt.Sprintf("%s%v", mf.GetName(), labels))
			}
		}
	}
	return out
}

// reconciles is how many reconciles of the Gate have finished (the sample
// count of pregate_gate_reconcile_duration_seconds, recorded as Reconcile
// returns).
func reconciles(t testing.TB, namespace, name string) uint64 {
	t.Helper()
	families, err := metricsRegistry.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range families {
		if mf.GetName() != "pregate_gate_reconcile_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, namespace, name) {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, namespace, name string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if (l.GetName() == "namespace" && l.GetValue() == namespace) || (l.GetName() == "name" && l.GetValue() == name) {
			n++
		}
	}
	return n == 2
}

// logRecorder is the controller-runtime logger of the tests. It records
// every error logged (controller-runtime logs a Reconcile's returned error
// as "Reconciler error", with the object's namespace and name) and every
// reconcile controller-runtime has finished handling (its V(5) "Reconcile
// successful" and "Reconcile done, ..." lines, and "Reconciler error"), and
// prints everything to stderr when verbose (PREGATE_TEST_LOG=1).
type logRecorder struct {
	sink logr.LogSink // prints; nil unless verbose

	mu       sync.Mutex
	errors   []loggedError
	finished map[string]int // by namespace/name
}

type loggedError struct {
	Msg string
	Err error
	KV  map[string]any
}

func newLogRecorder(verbose bool) *logRecorder {
	r := &logRecorder{finished: map[string]int{}}
	if verbose {
		r.sink = funcr.New(func(prefix, args string) {
			fmt.Fprintln(os.Stderr, prefix, args)
		}, funcr.Options{Verbosity: 1, LogTimestamp: true}).GetSink()
	}
	return r
}

// Logger returns a logger that records into r.
func (r *logRecorder) Logger() logr.Logger {
	return logr.New(&recordingSink{rec: r, out: r.sink})
}

// errorsFor returns the errors logged about the object namespace/name.
func (r *logRecorder) errorsFor(namespace, name string) []loggedError {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []loggedError
	for _, e := range r.errors {
		if e.KV["namespace"] == namespace && e.KV["name"] == name {
			out = append(out, e)
		}
	}
	return out
}

// reconciled is how many reconciles of namespace/name controller-runtime
// has finished handling, errors logged included.
func (r *logRecorder) reconciled(namespace, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished[namespace+"/"+name]
}

func (r *logRecorder) finish(kv map[string]any) {
	ns, _ := kv["namespace"].(string)
	name, _ := kv["name"].(string)
	r.finished[ns+"/"+name]++
}

type recordingSink struct {
	rec *logRecorder
	out logr.LogSink // prints; nil unless verbose
	kv  []any
}

func (s *recordingSink) Init(info logr.RuntimeInfo) {
	if s.out != nil {
		s.out.Init(info)
	}
}

// Enabled is true at every level: controller-runtime says it has finished a
// reconcile at V(5).
func (s *recordingSink) Enabled(int) bool { return true }

func (s *recordingSink) Info(level int, msg string, kv ...any) {
	if strings.HasPrefix(msg, "Reconcile successful") || strings.HasPrefix(msg, "Reconcile done") {
		all := merge(s.kv, kv)
		s.rec.mu.Lock()
		s.rec.finish(all)
		s.rec.mu.Unlock()
	}
	if s.out != nil && s.out.Enabled(level) {
		s.out.Info(level, msg, kv...)
	}
}

func (s *recordingSink) Error(err error, msg string, kv ...any) {
	all := merge(s.kv, kv)
	s.rec.mu.Lock()
	s.rec.errors = append(s.rec.errors, loggedError{Msg: msg, Err: err, KV: all})
	if msg == "Reconciler error" {
		s.rec.finish(all)
	}
	s.rec.mu.Unlock()
	if s.out != nil {
		s.out.Error(err, msg, kv...)
	}
}

func merge(lists ...[]any) map[string]any {
	all := map[string]any{}
	for _, pairs := range lists {
		for i := 0; i+1 < len(pairs); i += 2 {
			if k, ok := pairs[i].(string); ok {
				all[k] = pairs[i+1]
			}
		}
	}
	return all
}

func (s *recordingSink) WithValues(kv ...any) logr.LogSink {
	c := &recordingSink{rec: s.rec, kv: append(slices.Clip(s.kv), kv...)}
	if s.out != nil {
		c.out = s.out.WithValues(kv...)
	}
	return c
}

func (s *recordingSink) WithName(name string) logr.LogSink {
	c := &recordingSink{rec: s.rec, kv: s.kv}
	if s.out != nil {
		c.out = s.out.WithName(name)
	}
	return c
}

// eventRecorder passes the reconciler's Events on to the manager's
// recorder and records them as they are emitted, so that a test can count
// them without waiting for the API server.
type eventRecorder struct {
	inner events.EventRecorder

	mu  sync.Mutex
	log []emittedEvent
}

type emittedEvent struct {
	Namespace, Name    string
	Type, Reason, Note string
}

func (r *eventRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if o, ok := regarding.(client.Object); ok {
		r.mu.Lock()
		r.log = append(r.log, emittedEvent{Namespace: o.GetNamespace(), Name: o.GetName(), Type: eventtype, Reason: reason, Note: fmt.Sprintf(note, args...)})
		r.mu.Unlock()
	}
	r.inner.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

// reasons returns the reasons of the Events emitted about namespace/name,
// in order, each run of one reason counted once.
func (r *eventRecorder) reasons(namespace, name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.log {
		if e.Namespace == namespace && e.Name == name && (len(out) == 0 || out[len(out)-1] != e.Reason) {
			out = append(out, e.Reason)
		}
	}
	return out
}

// about returns the Events emitted about namespace/name, as the reconciler
// emitted them (before the API server has them).
func (r *eventRecorder) about(namespace, name string) []emittedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []emittedEvent
	for _, e := range r.log {
		if e.Namespace == namespace && e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// emitted returns the Events emitted about namespace/name with reason.
func (r *eventRecorder) emitted(namespace, name, reason string) []emittedEvent {
	var out []emittedEvent
	for _, e := range r.about(namespace, name) {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// isGone reports whether the API server no longer has obj.
func isGone(g Gomega, obj client.Object) {
	err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "getting %s: %v", client.ObjectKeyFromObject(obj), err)
}
