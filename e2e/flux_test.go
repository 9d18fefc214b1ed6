package e2e

// The real Flux source-controller and kustomize-controller, built from
// their Go modules by `make flux-controllers`, run here as local processes
// against a real kube-apiserver with the CRDs of exactly those versions:
// an OCIRepository pulls a Flux OCI artifact from a loopback registry,
// and Kustomizations apply it, or an ExternalArtifact served over loopback
// HTTP, to the API server. Nothing leaves the machine: the controllers get
// a fresh home and a proxy that refuses (and records) any request to a
// non-loopback host. No kubelet runs, so applied workloads never become
// ready: a Kustomization here must not wait for them or check their
// health, and an applied object existing is what success means.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionshelpers "k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/sources/sourcestest"
	"github.com/pregate/pregate/verify/verifytest"
)

// The Flux controllers the e2e tests run, as hack/flux.mk builds them;
// their CRDs come from the same module versions.
const (
	fluxSourceControllerModule    = "github.com/fluxcd/source-controller@v1.9.6"
	fluxKustomizeControllerModule = "github.com/fluxcd/kustomize-controller@v1.9.5"
)

// The media types of a Flux OCI artifact, as `flux push artifact` writes
// it and source-controller reads it.
const (
	fluxConfigMediaType  = "application/vnd.cncf.flux.config.v1+json"
	fluxContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"
)

// fluxWaitTimeout bounds each wait for the controllers: each flow takes
// about 2 s here.
const fluxWaitTimeout = time.Minute

// TestFluxHarness checks the harness the Flux e2e tests run on: the real
// source-controller pulls a Flux OCI artifact from a loopback registry and
// the real kustomize-controller applies it; and kustomize-controller, with
// its ExternalArtifact feature gate on, applies an ExternalArtifact whose
// tarball a loopback HTTP server serves. Neither controller reaches the
// network.
func TestFluxHarness(t *testing.T) {
	if testing.Short() {
		// make test-unit; make test (CI) runs it, and builds what it needs.
		t.Skip("e2e: runs the real Flux controllers and a kube-apiserver; `make test` runs it")
	}
	t.Parallel()
	end := step(t, "start the control plane")
	env := startFluxControlPlane(t)
	end()
	end = step(t, "install the Flux CRDs and start the Flux controllers")
	flux := startFlux(t, env)
	end()
	c, ctx := flux.client, t.Context()

	end = step(t, "push a Flux OCI artifact")
	registry := verifytest.NewRegistry(t)
	image := registry + "/acme/web:1.0"
	revision := pushFluxArtifact(t, registry+"/acme/apps:v1", map[string]string{
		"deploy/web.yaml": deploymentYAML("web", image),
	})
	end()

	end = step(t, "OCIRepository and Kustomization: the Deployment is applied")
	createAll(t, c,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}},
		&sourcev1.OCIRepository{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "apps"},
			Spec: sourcev1.OCIRepositorySpec{
				URL:       "oci://" + registry + "/acme/apps",
				Reference: &sourcev1.OCIRepositoryRef{Tag: "v1"},
				Insecure:  true,
				Interval:  &metav1.Duration{Duration: time.Minute},
			},
		},
		newFluxKustomization("apps", "apps", sourcev1.OCIRepositoryKind, "apps", "./deploy"),
	)
	flux.waitOCIRepository(t, client.ObjectKey{Namespace: "apps", Name: "apps"}, revision)
	flux.waitKustomization(t, client.ObjectKey{Namespace: "apps", Name: "apps"}, revision)
	flux.waitDeployment(t, client.ObjectKey{Namespace: "apps", Name: "web"}, image)
	end()

	end = step(t, "ExternalArtifact and Kustomization: the Deployment is applied")
	arts := sourcestest.NewServer(t)
	extImage := registry + "/acme/ext:2.0"
	art := arts.Publish(t, "externalartifact/apps/ext", map[string]string{
		"ext.yaml": deploymentYAML("ext", extImage),
	}, sourcestest.OCIRevision)
	publishExternalArtifact(t, c, client.ObjectKey{Namespace: "apps", Name: "ext"}, art)
	createAll(t, c, newFluxKustomization("apps", "ext", sourcev1.ExternalArtifactKind, "ext", "./"))
	flux.waitKustomization(t, client.ObjectKey{Namespace: "apps", Name: "ext"}, art.Revision)
	flux.waitDeployment(t, client.ObjectKey{Namespace: "apps", Name: "ext"}, extImage)
	end()

	// Pruning works too: the Kustomization garbage-collects what it applied
	// when it is deleted.
	end = step(t, "delete the ExternalArtifact's Kustomization: its Deployment is pruned")
	must(t, c.Delete(ctx, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "ext"}}))
	flux.waitFor(t, "Deployment apps/ext pruned", func(g Gomega) {
		err := c.Get(ctx, client.ObjectKey{Namespace: "apps", Name: "ext"}, &appsv1.Deployment{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "getting Deployment apps/ext: %v", err)
	})
	end()

	if reqs := flux.sentinel.Requests(); len(reqs) > 0 {
		t.Errorf("the Flux controllers tried to reach the network:\n%s", strings.Join(reqs, "\n"))
	}
	for _, p := range []*process{flux.source, flux.kustomize} {
		if errs := p.loggedErrors(t); len(errs) > 0 {
			t.Errorf("the %s logged errors:\n%s", p.name, strings.Join(errs, "\n"))
		}
	}
}

// fluxControllers are source-controller and kustomize-controller running
// against a control plane with their CRDs. When the test fails, the logs
// of every process registered with dumpProcess (the two controllers at
// least) and every object of the kinds it knows are written to the test
// log.
type fluxControllers struct {
	// client is an admin client of the API server that knows pregate's,
	// Flux's and Kubernetes' kinds.
	client client.Client
	// kubeconfig is the path of an admin kubeconfig for the API server.
	kubeconfig string
	// source and kustomize are the controllers' processes.
	source, kustomize *process
	// sentinel is the proxy the controllers send what would leave the
	// machine to.
	sentinel *networkSentinel

	mu    sync.Mutex
	procs []*process
	kinds []schema.GroupVersionKind
}

// startFluxControlPlane starts a kube-apiserver and etcd with the CRDs of
// manifests/ (the Flux CRDs are startFlux's), and stops them when the
// test ends.
func startFluxControlPlane(t *testing.T) *envtest.Environment {
	t.Helper()
	return startEnvtest(t)
}

// startFlux installs the CRDs of the Flux controllers under test into
// env's API server (with server-side apply) and starts source-controller
// and kustomize-controller (ExternalArtifact feature gate on) as admins of
// it, offline, each with its own home and loopback ports; it returns when
// both answer their readiness probe. They are killed when the test ends.
func startFlux(t *testing.T, env *envtest.Environment) *fluxControllers {
	t.Helper()
	sourceBin := e2eBinary(t, "PREGATE_FLUX_SOURCE_CONTROLLER", "Flux's source-controller",
		"make flux-controllers", "bin/flux/source-controller-v1.9.6")
	kustomizeBin := e2eBinary(t, "PREGATE_FLUX_KUSTOMIZE_CONTROLLER", "Flux's kustomize-controller",
		"make flux-controllers", "bin/flux/kustomize-controller-v1.9.5")

	f := &fluxControllers{
		sentinel: newNetworkSentinel(t),
		kinds: []schema.GroupVersionKind{
			sourcev1.GroupVersion.WithKind(sourcev1.OCIRepositoryKind),
			sourcev1.GroupVersion.WithKind(sourcev1.ExternalArtifactKind),
			kustomizev1.GroupVersion.WithKind(kustomizev1.KustomizationKind),
			v1alpha1.GroupVersion.WithKind("Gate"),
			appsv1.SchemeGroupVersion.WithKind("Deployment"),
			corev1.SchemeGroupVersion.WithKind("Event"),
		},
	}
	// Registered before the processes start, so that it runs after they
	// are killed (their logs stay) and before the control plane stops.
	t.Cleanup(func() {
		if t.Failed() {
			f.dump(t)
		}
	})

	established := installFluxCRDs(t, env)
	f.client = newClient(t, env.Config)
	f.kubeconfig = adminKubeconfig(t, env)

	run := func(name, bin string, args ...string) *process {
		dir := t.TempDir()
		health, metrics := freePort(t), freePort(t)
		p := startProcess(t, name, append(offlineEnv(t, dir, f.sentinel), "KUBECONFIG="+f.kubeconfig), bin,
			append([]string{
				"--enable-leader-election=false",
				"--health-addr=" + health, "--metrics-addr=" + metrics,
				"--log-level=debug",
				// The controllers' retries, short: no reconcile here waits
				// on anything slow.
				"--requeue-dependency=2s", "--min-retry-delay=100ms", "--max-retry-delay=2s",
			}, args...)...)
		p.health, p.metrics = health, metrics
		f.dumpProcess(p)
		return p
	}
	storage := freePort(t)
	f.source = run("source-controller", sourceBin,
		"--storage-path="+t.TempDir(), "--storage-addr="+storage, "--storage-adv-addr="+storage)
	f.kustomize = run("kustomize-controller", kustomizeBin, "--feature-gates=ExternalArtifact=true")
	for _, p := range []*process{f.source, f.kustomize} {
		waitHTTP(t, "http://"+p.health+"/readyz", p)
	}
	// The API server holds every create of a custom resource for 2 s while
	// its CRD was established less than 2 s ago (customresource_handler.go,
	// for HA API servers): wait that out here, not in the test's first step.
	time.Sleep(time.Until(established.Add(2 * time.Second))) //nolint:forbidigo // a fixed hold of the API server, with nothing to poll
	return f
}

// installFluxCRDs server-side applies the CRDs of the Flux controllers
// under test, from config/crd/bases of their modules in the module cache,
// waits until the API server serves them, and returns when the last one
// was established (as the API server records it, to the second).
func installFluxCRDs(t *testing.T, env *envtest.Environment) (established time.Time) {
	t.Helper()
	ctx := t.Context()
	c, err := client.New(env.Config, client.Options{})
	must(t, err)
	var names []string
	for _, module := range []string{fluxSourceControllerModule, fluxKustomizeControllerModule} {
		files, err := filepath.Glob(filepath.Join(moduleDir(t, module), "config", "crd", "bases", "*.yaml"))
		must(t, err)
		if len(files) == 0 {
			t.Fatalf("%s has no CRDs in config/crd/bases", module)
		}
		for _, file := range files {
			for _, crd := range readYAMLObjects(t, file) {
				if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(crd), client.FieldOwner("pregate-e2e"), client.ForceOwnership); err != nil {
					t.Fatalf("applying CRD %s of %s: %v", crd.GetName(), module, err)
				}
				names = append(names, crd.GetName())
			}
		}
	}
	NewWithT(t).Eventually(func(g Gomega) {
		for _, n := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			g.Expect(c.Get(ctx, client.ObjectKey{Name: n}, crd)).To(Succeed())
			cond := apiextensionshelpers.FindCRDCondition(crd, apiextensionsv1.Established)
			g.Expect(cond).NotTo(BeNil(), "CRD %s established", n)
			g.Expect(cond.Status).To(Equal(apiextensionsv1.ConditionTrue), "CRD %s established", n)
			if cond.LastTransitionTime.After(established) {
				established = cond.LastTransitionTime.Time
			}
		}
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return established
}

// moduleDir is the directory of module ("path@version") in the module
// cache, read-only. It is found offline (GOPROXY=off): `make
// flux-controllers` downloaded the module when it built the controller.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	// Outside any module, so that nothing touches pregate's go.mod.
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", module)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &info); err != nil || jsonErr != nil || info.Dir == "" {
		stderr := ""
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("finding %s in the module cache (`make flux-controllers` downloads it): %v %s\n%s%s", module, err, info.Error, out, stderr)
	}
	return info.Dir
}

// readYAMLObjects decodes every object of a multi-document YAML file.
func readYAMLObjects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(file)
	must(t, err)
	defer f.Close()
	dec := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var objs []*unstructured.Unstructured
	for {
		doc, err := dec.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("reading %s: %v", file, err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			t.Fatalf("decoding %s: %v", file, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// adminKubeconfig writes a kubeconfig for a member of system:masters.
func adminKubeconfig(t *testing.T, env *envtest.Environment) string {
	t.Helper()
	return userKubeconfig(t, env, envtest.User{Name: "flux-admin", Groups: []string{"system:masters"}})
}

// dumpProcess adds p (the pregate controller, say) to the processes whose
// logs are written to the test log if the test fails.
func (f *fluxControllers) dumpProcess(p *process) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs = append(f.procs, p)
}

// dumpLogLines is how much of each output of a process dump writes: the
// end of it.
const dumpLogLines = 400

// dump writes the end of the logs of the registered processes and every
// object of the registered kinds, in all namespaces, as YAML (without
// managed fields) to the test log.
func (f *fluxControllers) dump(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	procs, kinds := slices.Clone(f.procs), slices.Clone(f.kinds)
	f.mu.Unlock()
	for _, p := range procs {
		t.Logf("=== %s: $ %s\n--- stdout (last %d lines):\n%s\n--- stderr (last %d lines):\n%s", p.name, strings.Join(p.cmd.Args, " "),
			dumpLogLines, tail(p.stdout.String(), dumpLogLines), dumpLogLines, tail(p.stderr.String(), dumpLogLines))
	}
	if f.client == nil {
		return
	}
	// The test's context is done by now.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, gvk := range kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := f.client.List(ctx, list); err != nil {
			t.Logf("=== %s: listing: %v", gvk.Kind, err)
			continue
		}
		var b strings.Builder
		for _, obj := range list.Items {
			unstructured.RemoveNestedField(obj.Object, "metadata", "managedFields")
			y, err := yaml.Marshal(obj.Object)
			if err != nil {
				fmt.Fprintf(&b, "# %s/%s: %v\n", obj.GetNamespace(), obj.GetName(), err)
				continue
			}
			fmt.Fprintf(&b, "---\n%s", y)
		}
		t.Logf("=== %d %s objects:\n%s", len(list.Items), gvk.Kind, b.String())
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("[%d lines before]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

// waitFor waits up to fluxWaitTimeout for check to succeed, polling, and
// logs how long that took; it gives up as soon as a Flux controller
// exits. what names the awaited state in the log and failure.
func (f *fluxControllers) waitFor(t *testing.T, what string, check func(g Gomega)) {
	t.Helper()
	start := time.Now()
	NewWithT(t).Eventually(func(g Gomega) {
		for _, p := range []*process{f.source, f.kustomize} {
			if p.exited() {
				StopTrying(p.name + " exited").Now()
			}
		}
		check(g)
	}).WithTimeout(fluxWaitTimeout).WithPolling(100*time.Millisecond).
		Should(Succeed(), "waiting for %s (%s)", what, time.Since(start).Round(time.Millisecond))
	t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
}

// waitOCIRepository waits for the OCIRepository key to have an artifact
// of revision ("TAG@sha256:<manifest digest>") and returns it.
func (f *fluxControllers) waitOCIRepository(t *testing.T, key client.ObjectKey, revision string) {
	t.Helper()
	repo := &sourcev1.OCIRepository{}
	f.waitFor(t, fmt.Sprintf("OCIRepository %s at %s", key, revision), func(g Gomega) {
		g.Expect(f.client.Get(t.Context(), key, repo)).To(Succeed())
		g.Expect(repo.Status.Artifact).NotTo(BeNil(), "artifact; status:\n%s", toYAML(repo.Status))
		g.Expect(repo.Status.Artifact.Revision).To(Equal(revision), "artifact revision; status:\n%s", toYAML(repo.Status))
	})
}

// waitKustomization waits for the Kustomization key to have applied
// revision and returns it.
func (f *fluxControllers) waitKustomization(t *testing.T, key client.ObjectKey, revision string) {
	t.Helper()
	ks := &kustomizev1.Kustomization{}
	f.waitFor(t, fmt.Sprintf("Kustomization %s applied %s", key, revision), func(g Gomega) {
		g.Expect(f.client.Get(t.Context(), key, ks)).To(Succeed())
		g.Expect(ks.Status.LastAppliedRevision).To(Equal(revision), "lastAppliedRevision; status:\n%s", toYAML(ks.Status))
	})
}

// waitDeployment waits for the Deployment key to exist with a container
// running image and returns it.
func (f *fluxControllers) waitDeployment(t *testing.T, key client.ObjectKey, image string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	f.waitFor(t, fmt.Sprintf("Deployment %s running %s", key, image), func(g Gomega) {
		g.Expect(f.client.Get(t.Context(), key, d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers).To(ContainElement(HaveField("Image", image)))
	})
	return d
}

// toYAML is v as YAML, for failure messages.
func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// step times one step of a test: it returns the function that ends the
// step, which logs its name and duration.
func step(t testing.TB, name string) (end func()) {
	t.Helper()
	start := time.Now()
	return func() {
		t.Helper()
		t.Logf("step %q took %s", name, time.Since(start).Round(time.Millisecond))
	}
}

// pushFluxArtifact pushes files (slash-separated paths relative to the
// artifact's root, to contents) as a Flux OCI artifact, as `flux push
// artifact` does, to ref ("host/repo:tag"), and returns the revision an
// OCIRepository reports for it: "tag@sha256:<manifest digest>".
func pushFluxArtifact(t testing.TB, ref string, files map[string]string) (revision string) {
	t.Helper()
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		t.Fatalf("parsing %q (want host/repo:tag): %v", ref, err)
	}
	tgz, err := sourcestest.Tarball(files)
	if err != nil {
		t.Fatalf("archiving the artifact: %v", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, fluxConfigMediaType)
	img = mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.created":  "2026-01-01T00:00:00Z",
		"org.opencontainers.image.source":   "https://git.example.com/acme/apps",
		"org.opencontainers.image.revision": "main@sha1:0000000000000000000000000000000000000000",
	}).(gcrv1.Image)
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(tgz, fluxContentMediaType)})
	if err != nil {
		t.Fatalf("building the artifact: %v", err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatalf("hashing the artifact: %v", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	if err := remote.Write(tag, img, remote.WithContext(t.Context()), remote.WithTransport(transport)); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return tag.TagStr() + "@" + digest.String()
}

// publishExternalArtifact does what the producer of an ExternalArtifact
// does: it creates the ExternalArtifact key, if need be, and sets its
// status to art (a tarball a loopback server serves) and Ready=True.
func publishExternalArtifact(t *testing.T, c client.Client, key client.ObjectKey, art sourcestest.Artifact) {
	t.Helper()
	ctx := t.Context()
	ea := &sourcev1.ExternalArtifact{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := c.Create(ctx, ea); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating ExternalArtifact %s: %v", key, err)
	}
	must(t, c.Get(ctx, key, ea))
	now := metav1.Now()
	ea.Status.Artifact = &meta.Artifact{Path: art.Path, URL: art.URL, Revision: art.Revision, Digest: art.Digest, Size: &art.Size, LastUpdateTime: now}
	ea.Status.Conditions = []metav1.Condition{{
		Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.SucceededReason,
		Message: "stored artifact for revision " + art.Revision, ObservedGeneration: ea.Generation, LastTransitionTime: now,
	}}
	if err := c.Status().Update(ctx, ea); err != nil {
		t.Fatalf("setting the status of ExternalArtifact %s: %v", key, err)
	}
}

// newFluxKustomization is a Kustomization that applies path of the source kind/source (in namespace)
// every minute, pruning, waiting for nothing and checking no health (no
// kubelet runs here).
func newFluxKustomization(namespace, name, kind, source, path string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: kustomizev1.KustomizationSpec{
			Interval:      metav1.Duration{Duration: time.Minute},
			RetryInterval: &metav1.Duration{Duration: 2 * time.Second},
			Path:          path,
			Prune:         true,
			SourceRef:     kustomizev1.CrossNamespaceSourceReference{Kind: kind, Name: source},
		},
	}
}

// deploymentYAML is a Deployment name in the namespace apps running
// image.
func deploymentYAML(name, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
        - name: %[2]s
          image: %[3]s
`, appsNS, name, image)
}
