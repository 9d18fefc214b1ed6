package controller

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
)

// TestGateReconciler_reconcile_artifact: a Gate with spec.artifact
// republishes the revision it allows as an ExternalArtifact served over
// HTTP, byte for byte or with every image pinned to its verified digest;
// a revision it blocks never replaces it, and both the Gate and the
// ExternalArtifact say which revision is held back and why; the revision
// allowed next replaces it; an ExternalArtifact deleted comes back.
func TestGateReconciler_reconcile_artifact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	signed, digest := f.pushSigned("acme/web:v1")
	unsigned, _ := f.pushUnsigned("acme/init:v1")
	files := manifests("web", signed)
	src, rev1 := f.ociRepository("app", files)

	plain := f.createGate("plain", src, func(g *v1alpha1.Gate) { g.Spec.Artifact = &v1alpha1.ArtifactSpec{} })
	pinned := f.createGate("pinned", src, func(g *v1alpha1.Gate) {
		g.Spec.Artifact = &v1alpha1.ArtifactSpec{Name: "pinned-app", PinDigests: true}
	})

	ea := f.servedArtifact("plain", rev1)
	if got := fetchArtifact(t, ea.Status.Artifact); len(got) != 1 || got["deploy/app.yaml"] != files["deploy/app.yaml"] {
		t.Errorf("republished byte for byte: %v, want the source's files as they are", got)
	}
	if ref := ea.Spec.SourceRef; ref == nil || ref.Kind != v1alpha1.GateKind || ref.Name != plain.Name || metav1.GetControllerOf(ea) == nil {
		t.Errorf("ExternalArtifact spec.sourceRef %+v, owner %v; want the Gate, controlling it", ref, metav1.GetControllerOf(ea))
	}
	served := f.servedArtifact("pinned-app", rev1)
	got := fetchArtifact(t, served.Status.Artifact)
	wantImage := signed + "@" + digest
	if !strings.Contains(got["deploy/manifests.yaml"], "image: "+wantImage+"\n") || got["deploy/kustomization.yaml"] == "" {
		t.Errorf("republished pinned: %v, want deploy/manifests.yaml running %s and a kustomization.yaml", got, wantImage)
	}
	g := f.eventually(pinned, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Artifact).NotTo(BeNil())
		g.Expect(got.Status.Artifact.Digest).To(Equal(served.Status.Artifact.Digest))
		g.Expect(apimeta.IsStatusConditionTrue(got.Status.Conditions, sourcev1.ArtifactInStorageCondition)).To(BeTrue())
	})
	checkConformant(t, g)

	// Revision 2 adds an unsigned init container: blocked, and revision 1
	// is still what both ExternalArtifacts serve.
	rev2 := f.setRevision(src, map[string]string{"deploy/app.yaml": strings.Replace(files["deploy/app.yaml"], "      containers:",
		"      initContainers:\n        - name: init\n          image: "+unsigned+"\n      containers:", 1)})
	for _, tc := range []struct {
		gate *v1alpha1.Gate
		ea   *sourcev1.ExternalArtifact
	}{{plain, ea}, {pinned, served}} {
		f.deniedFor(tc.gate, rev2, gate.NoSignaturesReason, func(g Gomega, got *v1alpha1.Gate) {
			g.Expect(got.Status.Artifact.Revision).To(Equal(rev1))
			held := apimeta.FindStatusCondition(got.Status.Conditions, sourcev1.ArtifactOutdatedCondition)
			g.Expect(held).NotTo(BeNil())
			g.Expect(held.Message).To(And(ContainSubstring("revision "+rev2+" is held back"), ContainSubstring(unsigned)))
		})
		now := &sourcev1.ExternalArtifact{}
		f.g.Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(t.Context(), client.ObjectKeyFromObject(tc.ea), now)).To(Succeed())
			ready := apimeta.FindStatusCondition(now.Status.Conditions, meta.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Message).To(HavePrefix("serving revision " + rev1 + "; revision " + rev2 + " is held back: "))
		}).WithTimeout(waitTimeout).WithPolling(waitPolling).Should(Succeed())
		if !now.Status.Artifact.HasDigest(tc.ea.Status.Artifact.Digest) || now.Status.Artifact.URL != tc.ea.Status.Artifact.URL {
			t.Errorf("ExternalArtifact %s after the blocked revision serves %+v, want %+v as before", tc.ea.Name, now.Status.Artifact, tc.ea.Status.Artifact)
		}
	}

	// Revision 3 signs nothing new but drops the init container again:
	// allowed, and served in place of revision 1.
	rev3 := f.setRevision(src, map[string]string{"deploy/app.yaml": files["deploy/app.yaml"], "deploy/extra.yaml": "# revision 3\n"})
	f.readyFor(plain, rev3)
	ea3 := f.servedArtifact("plain", rev3)
	if got := fetchArtifact(t, ea3.Status.Artifact); got["deploy/extra.yaml"] != "# revision 3\n" {
		t.Errorf("revision 3 republished: %v", got)
	}

	// Deleted, the ExternalArtifact is created again with what was served.
	if err := k8sClient.Delete(t.Context(), ea3); err != nil {
		t.Fatal(err)
	}
	back := f.servedArtifact("plain", rev3)
	if back.UID == ea3.UID || back.Status.Artifact.Digest != ea3.Status.Artifact.Digest {
		t.Errorf("after deletion: uid %s (was %s), digest %s (was %s); want a new object serving the same artifact", back.UID, ea3.UID, back.Status.Artifact.Digest, ea3.Status.Artifact.Digest)
	}
}

// servedArtifact waits until the ExternalArtifact name serves revision and
// is Ready, and returns it.
func (f *fixture) servedArtifact(name, revision string) *sourcev1.ExternalArtifact {
	f.t.Helper()
	ea := &sourcev1.ExternalArtifact{}
	f.g.Eventually(func(g Gomega) {
		g.Expect(k8sClient.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, ea)).To(Succeed())
		g.Expect(ea.Status.Artifact).NotTo(BeNil())
		g.Expect(ea.Status.Artifact.Revision).To(Equal(revision))
		g.Expect(apimeta.IsStatusConditionTrue(ea.Status.Conditions, meta.ReadyCondition)).To(BeTrue(), "Ready: %+v", ea.Status.Conditions)
	}).WithTimeout(waitTimeout).WithPolling(waitPolling).Should(Succeed(), "ExternalArtifact %s/%s", f.ns, name)
	return ea
}

// fetchArtifact downloads an artifact as kustomize-controller does,
// checks its digest and size, and returns its files.
func fetchArtifact(t *testing.T, art *meta.Artifact) map[string]string {
	t.Helper()
	resp, err := http.Get(art.URL) //nolint:noctx // a test's loopback download
	if err != nil {
		t.Fatalf("downloading %s: %v", art.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("downloading %s: %s %v", art.URL, resp.Status, err)
	}
	if d := fmt.Sprintf("sha256:%x", sha256.Sum256(body)); d != art.Digest || art.Size == nil || *art.Size != int64(len(body)) {
		t.Fatalf("%s: digest %s, %d bytes; the artifact says %s, %v", art.URL, d, len(body), art.Digest, art.Size)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(b)
		}
	}
}
