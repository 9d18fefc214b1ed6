package controller

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/pkg/apis/meta"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestGateReconciler_announce_whileVerifying: a new source revision
// withdraws the Gate's Ready=True at once, even while the Gate's worker
// is busy verifying (held here by the registry): the Gate shows
// Ready=Unknown, verifying the new revision, before any worker is free;
// once the registry answers, the new revision is verified.
func TestGateReconciler_announce_whileVerifying(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withFront())
	web, _ := f.pushSigned("acme/web:1.0")
	repo, rev1 := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)
	f.readyFor(gate, rev1)

	// The Gate's worker verifies revision 1 again and waits on the
	// registry.
	resolve := "/v2/acme/web/manifests/1.0"
	release := make(chan struct{})
	// firstDone closes when the first request held ends (answered, or
	// given up by the verifier).
	var (
		first     atomic.Bool
		firstDone = make(chan struct{})
	)
	block := verifytest.Block(release)
	f.front.On("^"+resolve+"$", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if first.CompareAndSwap(false, true) {
			defer close(firstDone)
		}
		block(w, r, next)
	})
	before := f.front.Count(resolve)
	f.requestReconcile(gate)
	f.g.Eventually(func() int { return f.front.Count(resolve) }).WithTimeout(waitTimeout).Should(BeNumerically(">", before),
		"the controller resolving the image again")

	rev2 := f.setRevision(repo, manifests("web-v2", web))
	f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.LastAttemptedRevision).To(Equal(rev2))
		g.Expect(got.Status.LastVerifiedRevision).To(Equal(rev1))
		ready := apimeta.FindStatusCondition(got.Status.Conditions, meta.ReadyCondition)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionUnknown))
		g.Expect(ready.Message).To(Equal("verifying revision " + rev2))
	})
	select {
	case <-firstDone:
		t.Errorf("revision 2 was announced only once the held verification had given up: the announcement waited for the worker")
	default:
	}
	close(release)
	f.readyFor(gate, rev2)
}
