package controller

import (
	"fmt"
	"strings"
	"testing"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/render/helm/helmtest"
)

// TestGateReconciler_reconcile_helmRelease: a revision's HelmRelease is
// rendered with what the cluster holds, as helm-controller would render
// it: the chart from a HelmRepository that is not in the revision (served
// over loopback: the real podinfo chart), the image tag from a valuesFrom
// ConfigMap of the cluster. The chart's signed image makes the Gate
// Ready; a tag whose image is unsigned denies it, located through the
// HelmRelease and the chart's template.
func TestGateReconciler_reconcile_helmRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pushSigned("acme/podinfo:signed")
	f.pushUnsigned("acme/podinfo:unsigned")
	repo := helmtest.NewRepo(t, helmtest.Package(t, helmtest.Load(t, "../../render/testdata/charts/podinfo-6.14.1", "")))
	ctx := t.Context()
	helmRepo := &sourcev1.HelmRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.ns},
		Spec:       sourcev1.HelmRepositorySpec{URL: repo.URL(), Interval: metav1.Duration{Duration: 1e12}},
	}
	values := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo-values", Namespace: f.ns},
		Data:       map[string]string{"values.yaml": "image: {tag: signed}"},
	}
	f.g.Expect(k8sClient.Create(ctx, helmRepo)).To(Succeed())
	f.g.Expect(k8sClient.Create(ctx, values)).To(Succeed())

	release := fmt.Sprintf(`apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: %s}
spec:
  interval: 1h
  chart:
    spec:
      chart: podinfo
      version: 6.x
      sourceRef: {kind: HelmRepository, name: podinfo}
  valuesFrom:
    - kind: ConfigMap
      name: podinfo-values
  values:
    image:
      repository: %s/acme/podinfo
`, f.ns, f.host)
	src, rev := f.gitRepository("helm", map[string]string{"deploy/podinfo.yaml": release})
	gate := f.createGate("helm", src)
	got := f.readyFor(gate, rev)
	f.g.Expect(got.Status.Images).To(ContainElement(HaveField("Image", ContainSubstring("/acme/podinfo:signed"))))
	f.g.Expect(got.Status.Gaps).To(BeEmpty())

	values.Data["values.yaml"] = "image: {tag: unsigned}"
	f.g.Expect(k8sClient.Update(ctx, values)).To(Succeed())
	rev = f.setRevision(src, map[string]string{"deploy/podinfo.yaml": strings.Replace(release, "interval: 1h", "interval: 2h", 1)})
	f.deniedFor(gate, rev, "NoSignatures", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Images).To(ContainElement(And(
			HaveField("Image", ContainSubstring("/acme/podinfo:unsigned")),
			HaveField("Locations", ContainElement(ContainSubstring("HelmRelease/"+f.ns+"/podinfo → podinfo/templates/deployment.yaml"))),
		)))
	})
}
