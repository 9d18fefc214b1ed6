package e2e

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify/verifytest"
)

// fluxNS is where the e2e's Flux objects and Gates live, as with `flux
// bootstrap`; the apps they apply go to appsNS.
const (
	fluxNS = "flux-system"
	appsNS = "apps"
)

// TestFluxGate runs pregate's controller with the real Flux
// source-controller and kustomize-controller, a loopback registry and the
// real cosign CLI, and shows that Flux applies only what the Gate
// verified:
//
//  1. a revision pushed as a Flux OCI artifact, whose image cosign signed,
//     is verified, republished pinned as the Gate's ExternalArtifact and
//     applied from it: the Deployment runs the verified digest;
//  2. the next revision adds an unsigned init container: the Gate blocks
//     it naming the image and where it is, the ExternalArtifact still
//     serves revision 1 and the Deployment is unchanged;
//  3. cosign signs the init container's image: revision 2 is allowed and
//     applied;
//  4. a verified image's tag is moved to an unsigned image: what runs is
//     still the verified digest, and a revision resolving the moved tag
//     is blocked;
//  5. the same flows through dependsOn health gating, without the
//     ExternalArtifact;
//  6. a revision that changes a TrustPolicy is checked under it before it
//     is applied;
//  7. the controller is killed mid-verification and started again: no
//     stale Ready, the artifact served before is served again, and the
//     revision is verified and applied;
//
// and measures, for a revision of 50 images, the time from pushing it to
// the Gate's verdict and to the applied Deployments.
func TestFluxGate(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: runs the real Flux controllers, cosign and pregate; `make test` runs it")
	}
	t.Parallel()
	e := newFluxGateEnv(t)

	// 1. A signed revision is republished pinned and applied.
	web := e.push("e2e/web:v1")
	e.cosign.sign(t, "cosign.key", e.direct(web), bundleFlags)
	end := step(t, "1. a signed revision: verified, republished pinned, applied")
	start := time.Now()
	rev1 := e.pushRevision("app", map[string]string{"deploy/web.yaml": deploymentYAML("web", web)})
	e.waitGateReady("app", rev1)
	verdictAfter := time.Since(start)
	webPinned := web + "@" + e.digest(web)
	e.flux.waitKustomization(t, client.ObjectKey{Namespace: fluxNS, Name: "app"}, rev1)
	e.flux.waitDeployment(t, client.ObjectKey{Namespace: appsNS, Name: "web"}, webPinned)
	t.Logf("revision 1: verdict %s and applied %s after the push", verdictAfter.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	served1 := e.served("app", rev1)
	end()

	// 2. An unsigned init container: blocked, revision 1 still served.
	end = step(t, "2. an unsigned init container: blocked; revision 1 still served and applied")
	initImage := e.push("e2e/init:v1")
	withInit := withInitContainer(deploymentYAML("web", web), initImage)
	rev2 := e.pushRevision("app", map[string]string{"deploy/web.yaml": withInit})
	g := e.waitGateBlocked("app", rev2, "NoSignatures")
	if msg := readyMessage(g); !strings.Contains(msg, initImage) || !strings.Contains(msg, "Deployment/apps/web") {
		t.Errorf("Gate blocked with %q, want the image %s and where it is (Deployment/apps/web)", msg, initImage)
	}
	if held := apimeta.FindStatusCondition(g.Status.Conditions, sourcev1.ArtifactOutdatedCondition); held == nil || !strings.Contains(held.Message, "revision "+rev2+" is held back") {
		t.Errorf("ArtifactOutdated = %+v, want revision 2 held back", held)
	}
	e.waitArtifactHeld("app", served1, rev2)
	e.unchanged("web", webPinned, rev1, "app")
	end()

	// 3. The init container's image signed: revision 2 goes through.
	end = step(t, "3. the init container's image signed: revision 2 applied")
	e.cosign.sign(t, "cosign.key", e.direct(initImage), bundleFlags)
	e.reverify("app", rev2)
	e.flux.waitKustomization(t, client.ObjectKey{Namespace: fluxNS, Name: "app"}, rev2)
	d := e.flux.waitDeployment(t, client.ObjectKey{Namespace: appsNS, Name: "web"}, webPinned)
	if ic := d.Spec.Template.Spec.InitContainers; len(ic) != 1 || ic[0].Image != initImage+"@"+e.digest(initImage) {
		t.Errorf("init containers %+v, want %s pinned", ic, initImage)
	}
	end()

	// 4. The verified tag moved to an unsigned image.
	end = step(t, "4. a verified tag moved: what runs is the verified digest")
	verifytest.PushRandomImage(t, e.direct(web))
	if e.digest(web) == strings.TrimPrefix(webPinned, web+"@") {
		t.Fatal("the tag did not move")
	}
	rev3 := e.pushRevision("app", map[string]string{"deploy/web.yaml": withInit, "deploy/config.yaml": configMapYAML(appsNS, "web-config")})
	e.waitGateBlocked("app", rev3, "NoSignatures")
	e.unchanged("web", webPinned, rev2, "app")
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: appsNS, Name: "web-config"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("ConfigMap of the blocked revision 3: %v, want not applied", err)
	}
	end()

	// 6. A revision changing a TrustPolicy is held to it before apply.
	end = step(t, "6. a revision changing its TrustPolicy: checked under it before apply")
	webV2 := e.push("e2e/web:v2")
	e.cosign.sign(t, "cosign.key", e.direct(webV2), bundleFlags)
	rev4 := e.pushRevision("app", map[string]string{
		"deploy/web.yaml":    deploymentYAML("web", webV2),
		"deploy/policy.yaml": e.trustPolicyYAML("other.pub"),
	})
	g = e.waitGateBlocked("app", rev4, "VerificationFailed", "IdentityMismatch", "NoSignatures")
	if !slices.ContainsFunc(g.Status.Images, func(r v1alpha1.ImageResult) bool {
		return r.Result == v1alpha1.ImageDenied && strings.Contains(r.Message, `policy "`+e.policy+`.revision"`)
	}) {
		t.Errorf("image results %+v, want a denial by the revision's copy of the policy, %s.revision", g.Status.Images, e.policy)
	}
	e.unchanged("web", webPinned, rev2, "app")
	end()

	// 5. Health gating with dependsOn, without the ExternalArtifact.
	e.healthGating()

	// 7. The controller killed mid-verification, then started again.
	end = step(t, "7. the controller killed mid-verification and restarted")
	served2 := e.currentArtifact("app")
	if served2.Revision != rev2 {
		t.Fatalf("the ExternalArtifact serves %s, want revision 2 (%s)", served2.Revision, rev2)
	}
	release := e.holdManifest("e2e/web", "v2")
	rev5 := e.pushRevision("app", map[string]string{"deploy/web.yaml": deploymentYAML("web", webV2)})
	e.flux.waitFor(t, "the Gate verifying revision 5, its image's manifest held", func(g Gomega) {
		gate := e.gate(g, "app")
		g.Expect(gate.Status.LastAttemptedRevision).To(Equal(rev5))
		g.Expect(apimeta.FindStatusCondition(gate.Status.Conditions, meta.ReadyCondition)).To(HaveField("Status", metav1.ConditionUnknown))
		g.Expect(e.front.CountMatching(`^/v2/e2e/web/manifests/v2$`)).To(BeNumerically(">", 0))
	})
	held := e.front.CountMatching(`^/v2/e2e/web/manifests/v2$`)
	watch := e.watchGate("app")
	must(t, e.pregate.cmd.Process.Kill())
	<-e.pregate.done
	if code, _ := tryGet(served2.URL); code != 0 {
		t.Errorf("the artifact server answered %d with the controller killed", code)
	}
	// Restarted, still held: it serves what it served, and says nothing
	// of revision 5 until it has verified it.
	e.startController()
	e.flux.waitFor(t, "the restarted controller serving revision 2's artifact", func(g Gomega) {
		code, body := tryGet(served2.URL)
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(fmt.Sprintf("sha256:%x", sha256.Sum256(body))).To(Equal(served2.Digest))
	})
	e.flux.waitFor(t, "the restarted controller verifying revision 5 again", func(g Gomega) {
		g.Expect(e.front.CountMatching(`^/v2/e2e/web/manifests/v2$`)).To(BeNumerically(">", held))
	})
	release()
	e.waitGateReady("app", rev5)
	e.flux.waitKustomization(t, client.ObjectKey{Namespace: fluxNS, Name: "app"}, rev5)
	e.flux.waitDeployment(t, client.ObjectKey{Namespace: appsNS, Name: "web"}, webV2+"@"+e.digest(webV2))
	for _, s := range watch() {
		if s.ready == metav1.ConditionTrue && (s.attempted != s.verified || s.attempted == rev5 && s.verified != rev5) {
			t.Errorf("a stale Ready was shown: %+v", s)
		}
	}
	end()

	// The time a 50-image revision takes, from the push to the verdict and
	// to the applied Deployments.
	e.fiftyImages()

	if errs := e.pregate.loggedErrors(t); len(errs) > 0 {
		t.Errorf("the pregate controller logged errors:\n%s", strings.Join(errs, "\n"))
	}
	if reqs := e.flux.sentinel.Requests(); len(reqs) > 0 {
		t.Errorf("something tried to reach the network:\n%s", strings.Join(reqs, "\n"))
	}
	if reqs := e.sentinel.Requests(); len(reqs) > 0 {
		t.Errorf("pregate or cosign tried to reach the network:\n%s", strings.Join(reqs, "\n"))
	}
}

// fluxGateEnv is what TestFluxGate runs on: the control plane with Flux,
// pregate's controller with its artifact server, a registry behind a
// Front (images are named by the Front; pushes and cosign go to the
// registry itself), cosign with two key pairs, and a TrustPolicy
// trusting one of them.
type fluxGateEnv struct {
	t        *testing.T
	flux     *fluxControllers
	c        client.Client
	registry string
	front    *verifytest.Front
	cosign   *cosignCLI
	work     string
	sentinel *networkSentinel
	policy   string

	pregateBin, kubeconfig, storage, storageAddr string
	pregate                                      *process
}

func newFluxGateEnv(t *testing.T) *fluxGateEnv {
	t.Helper()
	e := &fluxGateEnv{t: t, policy: "e2e-keys"}
	e.pregateBin = e2eBinary(t, "PREGATE_BIN", "the pregate binary", "make build", "bin/pregate")
	cosignBin := e2eBinary(t, "PREGATE_COSIGN", "the real cosign CLI (v3)", "make cosign", "bin/cosign-<COSIGN_VERSION in the Makefile>")

	end := step(t, "start the control plane and the Flux controllers")
	env := startFluxControlPlane(t)
	e.flux = startFlux(t, env)
	e.c = e.flux.client
	install(t, e.c)
	e.kubeconfig = serviceAccountKubeconfig(t, env)
	end()

	e.registry = verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	e.front = verifytest.NewFront(t, e.registry)
	e.sentinel = newNetworkSentinel(t)
	root := t.TempDir()
	e.work = filepath.Join(root, "work")
	must(t, os.Mkdir(e.work, 0o700))
	e.cosign = &cosignCLI{offlineBinary{bin: cosignBin, dir: e.work, sentinel: e.sentinel, env: append(offlineEnv(t, filepath.Join(root, "cosign"), e.sentinel),
		"COSIGN_PASSWORD=", "TUF_ROOT="+filepath.Join(root, "cosign", "tuf"))}}
	e.cosign.mustRun(t, "generate-key-pair")
	e.cosign.mustRun(t, "generate-key-pair", "--output-key-prefix", "other")
	e.cosign.mustRun(t, "signing-config", "create", "--out", "signing-config.json")
	writeTestFile(t, filepath.Join(e.work, "trusted-root.json"), `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)

	policy := &v1alpha1.TrustPolicy{}
	must(t, yaml.Unmarshal([]byte(e.trustPolicyYAML("cosign.pub")), policy))
	createAll(t, e.c, policy, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNS}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appsNS}})

	e.storage, e.storageAddr = filepath.Join(root, "storage"), freePort(t)
	e.startController()

	// The source, and the setup of manifests/flux/external-artifact.yaml:
	// the Gate republishing it pinned, and the app Kustomization applying
	// the Gate's ExternalArtifact.
	var (
		gate = &v1alpha1.Gate{}
		app  = &kustomizev1.Kustomization{}
	)
	fromManifest(t, "external-artifact.yaml", gate, app)
	app.Spec.RetryInterval = &metav1.Duration{Duration: 2 * time.Second}
	createAll(t, e.c, e.ociRepository("app"), gate, app)
	return e
}

// startController starts pregate's controller as manifests/ runs it:
// with its service account's rights, leader election, and the artifact
// server on the same storage directory and address as before.
func (e *fluxGateEnv) startController() {
	t := e.t
	t.Helper()
	dir := t.TempDir()
	health, metrics := freePort(t), freePort(t)
	e.pregate = startProcess(t, "pregate-controller", append(offlineEnv(t, dir, e.sentinel),
		"KUBECONFIG="+e.kubeconfig, "RUNTIME_NAMESPACE="+controllerNamespace, "RUNTIME_SERVICE_ACCOUNT="+controllerAccount,
	), e.pregateBin, "controller",
		"--enable-leader-election",
		"--leader-election-lease-duration=4s", "--leader-election-renew-deadline=3s", "--leader-election-retry-period=500ms",
		"--health-addr="+health, "--metrics-addr="+metrics,
		"--tuf-cache="+filepath.Join(dir, "tuf"),
		"--retry-interval=1s",
		// A signature added is seen at the next reconcile.
		"--verdict-cache-ttl=1s",
		"--storage-path="+e.storage, "--storage-addr="+e.storageAddr, "--storage-adv-addr="+e.storageAddr,
	)
	e.pregate.health, e.pregate.metrics = health, metrics
	e.flux.dumpProcess(e.pregate)
	waitHTTP(t, "http://"+health+"/readyz", e.pregate)
}

// trustPolicyYAML is the e2e's TrustPolicy: images of the Front signed
// with the key pair whose public key is pubFile (in the cosign work
// directory), with no transparency log (cosign signs offline).
func (e *fluxGateEnv) trustPolicyYAML(pubFile string) string {
	pub, err := os.ReadFile(filepath.Join(e.work, pubFile))
	must(e.t, err)
	return fmt.Sprintf(`apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata:
  name: %s
spec:
  images: [{glob: "%s/**"}]
  authorities:
    - name: release-key
      insecureIgnoreTlog: true
      key:
        data: |
%s`, e.policy, e.front.Host(), indentLines(strings.TrimSpace(string(pub)), "          ")+"\n")
}

func (e *fluxGateEnv) ociRepository(name string) *sourcev1.OCIRepository {
	return &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Namespace: fluxNS, Name: name},
		Spec: sourcev1.OCIRepositorySpec{
			URL:       "oci://" + e.registry + "/e2e/manifests/" + name,
			Reference: &sourcev1.OCIRepositoryRef{Tag: "latest"},
			Insecure:  true,
			Interval:  &metav1.Duration{Duration: 10 * time.Minute},
		},
	}
}

// push pushes a random image to repoTag and returns its name through the
// Front, as revisions name it.
func (e *fluxGateEnv) push(repoTag string) string {
	verifytest.PushRandomImage(e.t, e.registry+"/"+repoTag)
	return e.front.Host() + "/" + repoTag
}

// direct is an image named through the Front, named at the registry.
func (e *fluxGateEnv) direct(image string) string {
	return e.registry + strings.TrimPrefix(image, e.front.Host())
}

// digest is what image's tag names now.
func (e *fluxGateEnv) digest(image string) string {
	e.t.Helper()
	resp, err := http.Head("http://" + e.registry + "/v2/" + strings.Replace(strings.TrimPrefix(image, e.front.Host()+"/"), ":", "/manifests/", 1)) //nolint:noctx // loopback
	must(e.t, err)
	resp.Body.Close()
	return resp.Header.Get("Docker-Content-Digest")
}

// pushRevision pushes files as the next revision of the OCIRepository
// name and has source-controller fetch it now; it returns the revision.
func (e *fluxGateEnv) pushRevision(name string, files map[string]string) string {
	e.t.Helper()
	rev := pushFluxArtifact(e.t, e.registry+"/e2e/manifests/"+name+":latest", files)
	e.requestReconcile(&sourcev1.OCIRepository{}, name)
	e.flux.waitOCIRepository(e.t, client.ObjectKey{Namespace: fluxNS, Name: name}, rev)
	return rev
}

// requestReconcile asks the controller of obj (fetched by name in fluxNS)
// to reconcile it now, as `flux reconcile` does.
func (e *fluxGateEnv) requestReconcile(obj client.Object, name string) {
	e.t.Helper()
	key := client.ObjectKey{Namespace: fluxNS, Name: name}
	must(e.t, e.c.Get(e.t.Context(), key, obj))
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[meta.ReconcileRequestAnnotation] = time.Now().Format(time.RFC3339Nano)
	obj.SetAnnotations(ann)
	must(e.t, e.c.Patch(e.t.Context(), obj, patch))
}

// gate reads the Gate name, for a wait to poll (it may not exist yet).
func (e *fluxGateEnv) gate(g Gomega, name string) *v1alpha1.Gate {
	gate := &v1alpha1.Gate{}
	g.Expect(e.c.Get(e.t.Context(), client.ObjectKey{Namespace: fluxNS, Name: name}, gate)).To(Succeed())
	return gate
}

// waitGateReady waits until the Gate name has verified revision and is
// Ready, and returns it.
func (e *fluxGateEnv) waitGateReady(name, revision string) *v1alpha1.Gate {
	e.t.Helper()
	var g *v1alpha1.Gate
	e.flux.waitFor(e.t, fmt.Sprintf("Gate %s Ready for %s", name, revision), func(gm Gomega) {
		g = e.gate(gm, name)
		gm.Expect(g.Status.LastVerifiedRevision).To(Equal(revision))
		gm.Expect(apimeta.IsStatusConditionTrue(g.Status.Conditions, meta.ReadyCondition)).To(BeTrue(), "conditions %+v", g.Status.Conditions)
	})
	return g
}

// waitGateBlocked waits until the Gate name has attempted revision and
// blocked it with one of reasons, and returns it.
func (e *fluxGateEnv) waitGateBlocked(name, revision string, reasons ...string) *v1alpha1.Gate {
	e.t.Helper()
	var g *v1alpha1.Gate
	e.flux.waitFor(e.t, fmt.Sprintf("Gate %s blocking %s", name, revision), func(gm Gomega) {
		g = e.gate(gm, name)
		gm.Expect(g.Status.LastAttemptedRevision).To(Equal(revision))
		ready := apimeta.FindStatusCondition(g.Status.Conditions, meta.ReadyCondition)
		gm.Expect(ready).NotTo(BeNil())
		gm.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		gm.Expect(reasons).To(ContainElement(ready.Reason), "Ready %+v", ready)
	})
	return g
}

func readyMessage(g *v1alpha1.Gate) string {
	if c := apimeta.FindStatusCondition(g.Status.Conditions, meta.ReadyCondition); c != nil {
		return c.Message
	}
	return ""
}

// served waits until the ExternalArtifact name serves revision, Ready,
// and returns its artifact.
func (e *fluxGateEnv) served(name, revision string) *meta.Artifact {
	e.t.Helper()
	ea := &sourcev1.ExternalArtifact{}
	e.flux.waitFor(e.t, fmt.Sprintf("ExternalArtifact %s serving %s", name, revision), func(g Gomega) {
		g.Expect(e.c.Get(e.t.Context(), client.ObjectKey{Namespace: fluxNS, Name: name}, ea)).To(Succeed())
		g.Expect(ea.Status.Artifact).NotTo(BeNil())
		g.Expect(ea.Status.Artifact.Revision).To(Equal(revision))
		g.Expect(apimeta.IsStatusConditionTrue(ea.Status.Conditions, meta.ReadyCondition)).To(BeTrue())
	})
	return ea.Status.Artifact
}

// currentArtifact is what the ExternalArtifact name serves now.
func (e *fluxGateEnv) currentArtifact(name string) *meta.Artifact {
	e.t.Helper()
	ea := &sourcev1.ExternalArtifact{}
	must(e.t, e.c.Get(e.t.Context(), client.ObjectKey{Namespace: fluxNS, Name: name}, ea))
	if ea.Status.Artifact == nil {
		e.t.Fatalf("ExternalArtifact %s serves nothing", name)
	}
	return ea.Status.Artifact
}

// reverify asks the Gate name to verify again, every 2 s, until it is
// Ready for revision: a signature added shows once the verdict cache
// (1 s here) has let the last verdict go.
func (e *fluxGateEnv) reverify(name, revision string) {
	e.t.Helper()
	last := time.Time{}
	e.flux.waitFor(e.t, fmt.Sprintf("Gate %s Ready for %s, verified again", name, revision), func(g Gomega) {
		if time.Since(last) > 2*time.Second {
			e.requestReconcile(&v1alpha1.Gate{}, name)
			last = time.Now()
		}
		gate := e.gate(g, name)
		g.Expect(gate.Status.LastVerifiedRevision).To(Equal(revision))
		g.Expect(apimeta.IsStatusConditionTrue(gate.Status.Conditions, meta.ReadyCondition)).To(BeTrue())
	})
}

// waitArtifactHeld waits until the ExternalArtifact name says revision
// held is held back, still serving art.
func (e *fluxGateEnv) waitArtifactHeld(name string, art *meta.Artifact, held string) {
	e.t.Helper()
	e.flux.waitFor(e.t, fmt.Sprintf("ExternalArtifact %s holding back %s", name, held), func(g Gomega) {
		ea := &sourcev1.ExternalArtifact{}
		g.Expect(e.c.Get(e.t.Context(), client.ObjectKey{Namespace: fluxNS, Name: name}, ea)).To(Succeed())
		g.Expect(ea.Status.Artifact).NotTo(BeNil())
		g.Expect(ea.Status.Artifact.Digest).To(Equal(art.Digest))
		ready := apimeta.FindStatusCondition(ea.Status.Conditions, meta.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Message).To(HavePrefix("serving revision " + art.Revision + "; revision " + held + " is held back: "))
	})
	if code, body := tryGet(art.URL); code != http.StatusOK || fmt.Sprintf("sha256:%x", sha256.Sum256(body)) != art.Digest {
		e.t.Errorf("GET %s: HTTP %d; want the artifact still served, as stored", art.URL, code)
	}
}

// unchanged checks, for a few seconds, that the Kustomization ks has
// applied revision and no other, and the Deployment name runs image.
func (e *fluxGateEnv) unchanged(name, image, revision, ks string) {
	e.t.Helper()
	e.requestReconcile(&kustomizev1.Kustomization{}, ks)
	NewWithT(e.t).Consistently(func(g Gomega) {
		k := &kustomizev1.Kustomization{}
		g.Expect(e.c.Get(e.t.Context(), client.ObjectKey{Namespace: fluxNS, Name: ks}, k)).To(Succeed())
		g.Expect(k.Status.LastAppliedRevision).To(Equal(revision))
		d := &appsv1.Deployment{}
		g.Expect(e.c.Get(e.t.Context(), client.ObjectKey{Namespace: appsNS, Name: name}, d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(image))
	}).WithTimeout(3*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), "Kustomization %s and Deployment %s", ks, name)
}

// holdManifest makes the Front hold requests for repo's manifest at tag
// until the returned function is called (or 2 minutes pass).
func (e *fluxGateEnv) holdManifest(repo, tag string) (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	e.front.On(`^/v2/`+repo+`/manifests/`+tag+`$`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		select {
		case <-ch:
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
		case <-time.After(2 * time.Minute):
			http.Error(w, "held", http.StatusServiceUnavailable)
		}
	})
	return func() {
		once.Do(func() { close(ch) })
		e.front.Clear()
	}
}

// gateState is what a reader of a Gate saw at one moment.
type gateState struct {
	ready               metav1.ConditionStatus
	attempted, verified string
}

// watchGate records the states of the Gate name every 50 ms until the
// returned function is called, which returns them.
func (e *fluxGateEnv) watchGate(name string) (stop func() []gateState) {
	done := make(chan struct{})
	var (
		mu     sync.Mutex
		states []gateState
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			g := &v1alpha1.Gate{}
			if err := e.c.Get(e.t.Context(), client.ObjectKey{Namespace: fluxNS, Name: name}, g); err == nil {
				s := gateState{attempted: g.Status.LastAttemptedRevision, verified: g.Status.LastVerifiedRevision}
				if c := apimeta.FindStatusCondition(g.Status.Conditions, meta.ReadyCondition); c != nil {
					s.ready = c.Status
				}
				mu.Lock()
				states = append(states, s)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() []gateState {
		close(done)
		wg.Wait()
		return states
	}
}

// healthGating: the dependsOn pattern of docs/flux.md, with the
// healthCheckExprs documented there.
func (e *fluxGateEnv) healthGating() {
	t := e.t
	end := step(t, "5. health gating: a signed revision applied after the Gate's verdict")
	webHG := e.push("e2e/web-hg:v1")
	e.cosign.sign(t, "cosign.key", e.direct(webHG), bundleFlags)
	gateYAML := `apiVersion: gate.pregate.dev/v1alpha1
kind: Gate
metadata: {name: hg, namespace: flux-system}
spec:
  sourceRef: {kind: OCIRepository, name: hg}
  path: ./deploy
  interval: 10m
`
	files := map[string]string{"gate/gate.yaml": gateYAML, "deploy/web.yaml": deploymentYAML("web-hg", webHG)}
	createAll(t, e.c, e.ociRepository("hg"))
	rev1 := e.pushRevision("hg", files)
	// The setup of manifests/flux/health-gating.yaml, on the source hg.
	gateKS, appKS := &kustomizev1.Kustomization{}, &kustomizev1.Kustomization{}
	fromManifest(t, "health-gating.yaml", gateKS, appKS)
	gateKS.Name, gateKS.Spec.SourceRef.Name, gateKS.Spec.HealthChecks[0].Name = "hg-gate", "hg", "hg"
	appKS.Name, appKS.Spec.SourceRef.Name, appKS.Spec.DependsOn[0].Name = "hg-app", "hg", "hg-gate"
	// A verdict here takes a second, not minutes; retries come quickly.
	gateKS.Spec.Timeout = &metav1.Duration{Duration: 30 * time.Second}
	for _, k := range []*kustomizev1.Kustomization{gateKS, appKS} {
		k.Spec.RetryInterval = &metav1.Duration{Duration: 2 * time.Second}
	}
	createAll(t, e.c, gateKS, appKS)
	e.waitGateReady("hg", rev1)
	e.flux.waitKustomization(t, client.ObjectKey{Namespace: fluxNS, Name: "hg-app"}, rev1)
	e.flux.waitDeployment(t, client.ObjectKey{Namespace: appsNS, Name: "web-hg"}, webHG)
	end()

	end = step(t, "5. health gating: an unsigned init container holds the app back")
	initHG := e.push("e2e/init-hg:v1")
	files["deploy/web.yaml"] = withInitContainer(deploymentYAML("web-hg", webHG), initHG)
	rev2 := e.pushRevision("hg", files)
	e.waitGateBlocked("hg", rev2, "NoSignatures")
	e.flux.waitFor(t, "Kustomization hg-gate failing its health check on revision 2", func(g Gomega) {
		k := &kustomizev1.Kustomization{}
		g.Expect(e.c.Get(t.Context(), client.ObjectKey{Namespace: fluxNS, Name: "hg-gate"}, k)).To(Succeed())
		g.Expect(k.Status.LastAttemptedRevision).To(Equal(rev2))
		g.Expect(apimeta.IsStatusConditionFalse(k.Status.Conditions, meta.ReadyCondition)).To(BeTrue(), "conditions %+v", k.Status.Conditions)
	})
	e.unchanged("web-hg", webHG, rev1, "hg-app")
	end()

	end = step(t, "5. health gating: signed, the app applies revision 2")
	e.cosign.sign(t, "cosign.key", e.direct(initHG), bundleFlags)
	e.reverify("hg", rev2)
	e.requestReconcile(&kustomizev1.Kustomization{}, "hg-gate")
	e.flux.waitKustomization(t, client.ObjectKey{Namespace: fluxNS, Name: "hg-app"}, rev2)
	d := e.flux.waitDeployment(t, client.ObjectKey{Namespace: appsNS, Name: "web-hg"}, webHG)
	if ic := d.Spec.Template.Spec.InitContainers; len(ic) != 1 || ic[0].Image != initHG {
		t.Errorf("init containers %+v, want %s", ic, initHG)
	}
	end()
}

// fiftyImages measures a revision of 50 Deployments, each running its own
// image that cosign signed: the time from the push to the Gate's verdict,
// and to every Deployment applied with its pinned digest.
func (e *fluxGateEnv) fiftyImages() {
	t := e.t
	const n = 50
	end := step(t, "50 images: pushed and signed")
	images := make([]string, n)
	direct := make([]string, n)
	for i := range images {
		images[i] = e.push(fmt.Sprintf("e2e/many/svc-%02d:v1", i))
		direct[i] = e.direct(images[i])
	}
	e.cosign.mustRun(t, append(append([]string{"sign", "--key", "cosign.key", "--allow-http-registry", "-y"}, bundleFlags...), direct...)...)
	files := map[string]string{}
	for i, img := range images {
		files[fmt.Sprintf("deploy/svc-%02d.yaml", i)] = deploymentYAML(fmt.Sprintf("svc-%02d", i), img)
	}
	end()

	end = step(t, "50 images: from the push to the verdict and to the applied Deployments")
	start := time.Now()
	rev := pushFluxArtifact(t, e.registry+"/e2e/manifests/app:latest", files)
	e.requestReconcile(&sourcev1.OCIRepository{}, "app")
	e.flux.waitOCIRepository(t, client.ObjectKey{Namespace: fluxNS, Name: "app"}, rev)
	fetched := time.Since(start)
	g := e.waitGateReady("app", rev)
	verdict := time.Since(start)
	if g.Status.Summary == nil || g.Status.Summary.Verified != n {
		t.Errorf("summary %+v, want %d images verified", g.Status.Summary, n)
	}
	e.flux.waitKustomization(t, client.ObjectKey{Namespace: fluxNS, Name: "app"}, rev)
	e.flux.waitFor(t, "the 50 Deployments running their pinned images", func(gm Gomega) {
		var list appsv1.DeploymentList
		gm.Expect(e.c.List(t.Context(), &list, client.InNamespace(appsNS))).To(Succeed())
		pinned := 0
		for _, d := range list.Items {
			if strings.HasPrefix(d.Name, "svc-") && strings.Contains(d.Spec.Template.Spec.Containers[0].Image, "@sha256:") {
				pinned++
			}
		}
		gm.Expect(pinned).To(Equal(n))
	})
	applied := time.Since(start)
	t.Logf("50-image revision: source fetched %s, Gate verdict %s, all Deployments applied %s after the push",
		fetched.Round(time.Millisecond), verdict.Round(time.Millisecond), applied.Round(time.Millisecond))
	end()
}

// fromManifest decodes the objects of manifests/flux/name into objs, in
// order, and checks there are no more.
func fromManifest(t *testing.T, name string, objs ...any) {
	t.Helper()
	docs := readYAMLObjects(t, filepath.Join("..", "manifests", "flux", name))
	if len(docs) != len(objs) {
		t.Fatalf("manifests/flux/%s holds %d objects, want %d", name, len(docs), len(objs))
	}
	for i, d := range docs {
		must(t, runtime.DefaultUnstructuredConverter.FromUnstructured(d.Object, objs[i]))
	}
}

// withInitContainer adds an init container running image to a Deployment
// of deploymentYAML.
func withInitContainer(deployment, image string) string {
	return strings.Replace(deployment, "      containers:\n", "      initContainers:\n        - name: init\n          image: "+image+"\n      containers:\n", 1)
}

func configMapYAML(namespace, name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  key: value\n", name, namespace)
}

// tryGet GETs url; code 0 when nothing answered.
func tryGet(url string) (int, []byte) {
	resp, err := probeClient.Get(url) //nolint:noctx // loopback probe
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}
