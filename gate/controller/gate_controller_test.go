package controller

import (
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/kustomize"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	. "github.com/onsi/gomega" //nolint:revive // Gomega's matchers read as a DSL, as in Flux's controller tests
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestGateReconciler_reconcile_unsignedImage: a signed revision makes the
// Gate Ready=True; a new revision with an unsigned first-party image makes
// it Ready=False NoSignatures, naming the image and where it appears, in the
// Ready message and status.images. Both end states pass the kstatus
// checker, and each verdict is announced by an Event with its reason.
func TestGateReconciler_reconcile_unsignedImage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web, webDigest := f.pushSigned("acme/web:1.0")
	worker, workerDigest := f.pushUnsigned("acme/worker:0.9")

	repo, rev1 := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)

	got := f.readyFor(gate, rev1)
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(Equal("1 of 1 images verified"))
	f.g.Expect(got.Status.Summary).To(Equal(&v1alpha1.ImageSummary{Total: 1, Verified: 1}))
	f.g.Expect(got.Status.Images).To(ConsistOf(And(
		HaveField("Image", web), HaveField("Digest", webDigest), HaveField("Policy", f.name),
		HaveField("Result", v1alpha1.ImageVerified), HaveField("Reason", "Verified"),
	)))
	f.g.Eventually(func(g Gomega) {
		g.Expect(apiEvents(g, gate)).To(haveEvent(corev1.EventTypeNormal, "Succeeded", "revision "+rev1, "1 of 1 images verified"))
	}).WithTimeout(waitTimeout).Should(Succeed())

	rev2 := f.setRevision(repo, manifests("web", web, worker))
	where := "Deployment/apps/web"
	got = f.deniedFor(gate, rev2, "NoSignatures", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Summary).To(Equal(&v1alpha1.ImageSummary{Total: 2, Verified: 1, Denied: 1}))
		g.Expect(got.Status.Images).To(HaveLen(2))
	})
	msg := conditions.GetMessage(got, meta.ReadyCondition)
	f.g.Expect(msg).To(And(HavePrefix("1 of 2 images denied: "), ContainSubstring(worker+" in "+where)), "Ready message")
	f.g.Expect(got.Status.LastVerifiedRevision).To(Equal(rev1), "the last verified revision stays")
	f.g.Expect(got.Status.Images[0]).To(And( // failures first
		HaveField("Image", worker), HaveField("Digest", workerDigest), HaveField("Policy", f.name),
		HaveField("Result", v1alpha1.ImageDenied), HaveField("Reason", "NoSignatures"),
		HaveField("Message", Not(BeEmpty())),
		HaveField("Locations", ConsistOf(where+" spec.template.spec.containers[1] (deploy/app.yaml)")),
	))
	f.g.Expect(got.Status.Images[1]).To(And(HaveField("Image", web), HaveField("Result", v1alpha1.ImageVerified)))
	f.g.Eventually(func(g Gomega) {
		g.Expect(apiEvents(g, gate)).To(haveEvent(corev1.EventTypeWarning, "NoSignatures", "revision "+rev2, worker))
	}).WithTimeout(waitTimeout).Should(Succeed())
}

// TestGateReconciler_reconcile_ociRepository: a Gate on an OCIRepository
// verifies its artifact as it does a GitRepository's.
func TestGateReconciler_reconcile_ociRepository(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web, _ := f.pushSigned("acme/web:1.0")
	repo, rev := f.ociRepository("apps", manifests("web", web))
	f.g.Expect(rev).To(HavePrefix("latest@sha256:"))
	gate := f.createGate("apps", repo)
	f.readyFor(gate, rev)
}

// TestGateReconciler_reconcile_neverStaleReady records every state of a
// Gate the API server reports, through a watch, across revision changes
// (signed, signed, unsigned, signed), and checks what a Flux dependsOn or
// health check reads from it:
//
//   - a state with Ready=True and no Reconciling condition is about the
//     revision the Gate last attempted (lastVerifiedRevision ==
//     lastAttemptedRevision), and about the current generation;
//   - the first state in which the Gate has seen a new revision says
//     Ready=Unknown, Reconciling=True, before any verdict on it.
func TestGateReconciler_reconcile_neverStaleReady(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web1, _ := f.pushSigned("acme/web:1.0")
	web2, _ := f.pushSigned("acme/web:2.0")
	worker, _ := f.pushUnsigned("acme/worker:0.9")

	w := watchGate(t, f.ns, "apps")
	repo, rev1 := f.gitRepository("apps", manifests("web", web1))
	gate := f.createGate("apps", repo)
	f.readyFor(gate, rev1)
	rev2 := f.setRevision(repo, manifests("web", web2))
	f.readyFor(gate, rev2)
	rev3 := f.setRevision(repo, manifests("web", web2, worker))
	f.deniedFor(gate, rev3, "NoSignatures")
	rev4 := f.setRevision(repo, manifests("web", web1, web2))
	f.readyFor(gate, rev4)
	states := w.stop()
	defer func() {
		if t.Failed() {
			var trace strings.Builder
			for _, s := range states {
				trace.WriteString(describe(s) + "\n")
			}
			t.Logf("%d states observed, oldest first:\n%s", len(states), trace.String())
		}
	}()

	firstSeen := map[string]*v1alpha1.Gate{}
	for _, s := range states {
		ready := conditions.Get(s, meta.ReadyCondition)
		if ready != nil && ready.Status == metav1.ConditionTrue && !conditions.Has(s, meta.ReconcilingCondition) {
			if s.Status.LastVerifiedRevision != s.Status.LastAttemptedRevision {
				t.Errorf("stale Ready=True: verified %q while the Gate has attempted %q: %s",
					s.Status.LastVerifiedRevision, s.Status.LastAttemptedRevision, describe(s))
			}
			if s.Status.ObservedGeneration != s.Generation {
				t.Errorf("Ready=True for generation %d, not the current %d: %s", s.Status.ObservedGeneration, s.Generation, describe(s))
			}
		}
		if rev := s.Status.LastAttemptedRevision; rev != "" && firstSeen[rev] == nil {
			firstSeen[rev] = s
		}
	}
	for _, rev := range []string{rev1, rev2, rev3, rev4} {
		s := firstSeen[rev]
		if s == nil {
			t.Errorf("no state with lastAttemptedRevision %s was observed", rev)
			continue
		}
		if !conditions.IsUnknown(s, meta.ReadyCondition) || !conditions.IsTrue(s, meta.ReconcilingCondition) ||
			conditions.GetReason(s, meta.ReconcilingCondition) != meta.ProgressingReason {
			t.Errorf("first state after seeing revision %s: %s, want Ready=Unknown and Reconciling=True/Progressing", rev, describe(s))
		}
	}
}

// TestGateReconciler_reconcile_policyChange: changing the TrustPolicy so
// that the signer no longer matches re-verifies the revision at once
// (IdentityMismatch), and changing it back allows it again; each verdict
// change is announced by an Event.
func TestGateReconciler_reconcile_policyChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web, _ := f.pushSigned("acme/web:1.0")
	repo, rev := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)
	f.readyFor(gate, rev)

	setSubject := func(re string) {
		f.updatePolicy(func(s *v1alpha1.TrustPolicySpec) {
			s.Authorities[0].Keyless.Identities[0].SubjectRegExp = re
		})
	}
	setSubject(untrustedRE)
	got := f.deniedFor(gate, rev, "IdentityMismatch", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Images).To(ConsistOf(And(HaveField("Image", web), HaveField("Reason", "IdentityMismatch"))))
	})
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(ContainSubstring(web))
	f.g.Eventually(func(g Gomega) {
		g.Expect(apiEvents(g, gate)).To(haveEvent(corev1.EventTypeWarning, "IdentityMismatch", "revision "+rev, web))
	}).WithTimeout(waitTimeout).Should(Succeed())

	setSubject(trustedRE)
	f.readyFor(gate, rev)
	f.g.Expect(eventLog.reasons(f.ns, gate.Name)).To(Equal([]string{"Succeeded", "IdentityMismatch", "Succeeded"}),
		"the reasons of the Events emitted, in order")
}

// TestGateReconciler_reconcile_suspend: a suspended Gate keeps its verdict
// and does not verify a new revision, even when asked to reconcile;
// resuming verifies it.
func TestGateReconciler_reconcile_suspend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web1, _ := f.pushSigned("acme/web:1.0")
	web2, _ := f.pushSigned("acme/web:2.0")
	repo, rev1 := f.gitRepository("apps", manifests("web", web1))
	gate := f.createGate("apps", repo)
	f.readyFor(gate, rev1)

	w := watchGate(t, f.ns, gate.Name)
	f.patchGate(gate, func(g *v1alpha1.Gate) { g.Spec.Suspend = true })
	suspended := gate.Generation
	f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.ObservedGeneration).To(Equal(suspended))
	})

	// setRevision returns once the manager's cache holds the new revision:
	// a reconcile requested now sees it.
	rev2 := f.setRevision(repo, manifests("web", web2))
	token := f.requestReconcile(gate)
	got := f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.LastHandledReconcileAt).To(Equal(token))
	})
	f.g.Expect(got.Status.LastAttemptedRevision).To(Equal(rev1), "a suspended Gate attempted the new revision")
	f.g.Expect(got.Status.LastVerifiedRevision).To(Equal(rev1))
	f.g.Expect(conditions.IsReady(got)).To(BeTrue())
	for _, s := range w.snapshot() {
		if s.Status.LastAttemptedRevision == rev2 {
			t.Errorf("a suspended Gate showed revision %s: %s", rev2, describe(s))
		}
	}

	f.patchGate(gate, func(g *v1alpha1.Gate) { g.Spec.Suspend = false })
	f.readyFor(gate, rev2)
}

// TestGateReconciler_reconcile_deletion: a deleted Gate is gone at once
// (no finalizer holds it), and the controller neither logs an error about
// it nor keeps anything about it, such as its metrics.
func TestGateReconciler_reconcile_deletion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web, _ := f.pushSigned("acme/web:1.0")
	repo, rev := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)
	got := f.readyFor(gate, rev)
	f.g.Expect(got.Finalizers).To(BeEmpty())
	f.g.Expect(gateSeries(t, f.ns, gate.Name)).NotTo(BeEmpty(), "metrics of a live Gate")
	before := logs.reconciled(f.ns, gate.Name)

	f.g.Expect(k8sClient.Delete(t.Context(), gate)).To(Succeed())
	f.g.Eventually(func(g Gomega) { isGone(g, gate) }).WithTimeout(waitTimeout).Should(Succeed())
	// The deletion is a reconcile request too: once it has been handled,
	// nothing about the Gate may be left.
	f.g.Eventually(func() int { return logs.reconciled(f.ns, gate.Name) }).WithTimeout(waitTimeout).Should(BeNumerically(">", before))
	f.g.Eventually(func() []string { return gateSeries(t, f.ns, gate.Name) }).WithTimeout(10*time.Second).
		Should(BeEmpty(), "metric series of a deleted Gate")
	f.g.Expect(logs.errorsFor(f.ns, gate.Name)).To(BeEmpty(), "errors logged about the Gate")
}

// TestGateReconciler_reconcile_deletedWhileVerifying: a Gate deleted while
// its revision is being verified is gone when the verification ends; the
// controller must not fail (and log "Reconciler error") writing the status
// of the object that no longer exists.
func TestGateReconciler_reconcile_deletedWhileVerifying(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withFront())
	web, _ := f.pushSigned("acme/web:1.0")
	resolve := "/v2/acme/web/manifests/1.0"
	release := make(chan struct{})
	f.front.On("^"+resolve+"$", verifytest.Block(release))

	repo, _ := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)
	f.g.Eventually(func() int { return f.front.Count(resolve) }).WithTimeout(waitTimeout).Should(BeNumerically(">=", 1),
		"the controller resolving the image")
	before := logs.reconciled(f.ns, gate.Name)

	f.g.Expect(k8sClient.Delete(t.Context(), gate)).To(Succeed())
	f.g.Eventually(func(g Gomega) { isGone(g, gate) }).WithTimeout(waitTimeout).Should(Succeed())
	close(release)
	// Once controller-runtime has finished handling the blocked reconcile,
	// whatever it logs about it has been logged, and nothing about the
	// Gate may be left.
	f.g.Eventually(func() int { return logs.reconciled(f.ns, gate.Name) }).WithTimeout(waitTimeout).Should(BeNumerically(">", before))
	for _, e := range logs.errorsFor(f.ns, gate.Name) {
		t.Errorf("logged about the deleted Gate: %s: %v", e.Msg, e.Err)
	}
	f.g.Eventually(func() []string { return gateSeries(t, f.ns, gate.Name) }).WithTimeout(10*time.Second).
		Should(BeEmpty(), "metric series of a Gate deleted while it was verified")
}

// TestGateReconciler_reconcile_invalidSpec: a spec the CRD admits but the
// controller cannot act on makes the Gate Stalled, Ready=False InvalidSpec
// (the API server admits a selector requirement "In" without values, and a
// zero interval, which the CRD's pattern allows); fixing the spec recovers
// it.
func TestGateReconciler_reconcile_invalidSpec(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		spoil, fix func(*v1alpha1.Gate)
		want       string // in the message
	}{
		"policySelector In without values": {
			spoil: func(g *v1alpha1.Gate) {
				g.Spec.PolicySelector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn}}
			},
			fix:  func(g *v1alpha1.Gate) { g.Spec.PolicySelector.MatchExpressions = nil },
			want: "spec.policySelector: ",
		},
		"zero interval": {
			spoil: func(g *v1alpha1.Gate) { g.Spec.Interval = metav1.Duration{} },
			fix:   func(g *v1alpha1.Gate) { g.Spec.Interval = metav1.Duration{Duration: time.Hour} },
			want:  "spec.interval: must be positive",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			web, _ := f.pushSigned("acme/web:1.0")
			repo, rev := f.gitRepository("apps", manifests("web", web))
			gate := f.createGate("apps", repo, tc.spoil) // the API server admits it

			got := f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
				g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
				g.Expect(got.Status.Conditions).To(conditions.MatchConditions([]metav1.Condition{
					{Type: meta.ReadyCondition, Status: metav1.ConditionFalse, Reason: InvalidSpecReason, Message: tc.want},
					{Type: meta.StalledCondition, Status: metav1.ConditionTrue, Reason: InvalidSpecReason, Message: tc.want},
				}))
			})
			f.g.Expect(got.Status.LastAttemptedRevision).To(BeEmpty(), "a Stalled Gate attempted a revision")
			checkConformant(t, got)
			f.g.Eventually(func(g Gomega) {
				g.Expect(apiEvents(g, gate)).To(haveEvent(corev1.EventTypeWarning, InvalidSpecReason, tc.want))
			}).WithTimeout(waitTimeout).Should(Succeed())

			f.patchGate(gate, tc.fix)
			f.readyFor(gate, rev)
		})
	}
}

// TestGateReconciler_reconcile_registryOutage: while the registry answers
// 503 to everything, a new revision with a new image (whose verdict no
// cache can answer) makes the Gate Ready=False RegistryUnreachable; when
// the registry is back, the Gate allows the revision within a few retry
// intervals.
func TestGateReconciler_reconcile_registryOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withFront())
	web1, _ := f.pushSigned("acme/web:1.0")
	repo, rev1 := f.gitRepository("apps", manifests("web", web1))
	gate := f.createGate("apps", repo)
	f.readyFor(gate, rev1)

	f.front.On(".*", verifytest.Status(503))
	web2, _ := f.pushSigned("acme/web:2.0") // to the registry itself, not the Front
	rev2 := f.setRevision(repo, manifests("web", web2))
	got := f.deniedFor(gate, rev2, "RegistryUnreachable", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Images).To(ConsistOf(And(HaveField("Image", web2), HaveField("Result", v1alpha1.ImageDenied))))
	})
	f.g.Expect(got.Status.LastVerifiedRevision).To(Equal(rev1))
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(ContainSubstring(web2))

	back := time.Now()
	f.front.Clear()
	f.readyFor(gate, rev2)
	t.Logf("Ready=True %s after the registry came back (retry interval %s)", time.Since(back).Round(time.Millisecond), testRetryInterval)
}

// TestGateReconciler_reconcile_registryOutageReason: the Ready message of a
// Gate that cannot reach its registry says what the registry answered (here
// 503 Service Unavailable to every request), not only what the https
// attempt of go-containerregistry's handshake got from a plain-HTTP
// registry.
func TestGateReconciler_reconcile_registryOutageReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withFront())
	web, _ := f.pushSigned("acme/web:1.0")
	f.front.On(".*", verifytest.Status(503))
	repo, rev := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)
	got := f.deniedFor(gate, rev, "RegistryUnreachable")
	// The Front answers 503 with an OCI error whose message is "Service
	// Unavailable".
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(ContainSubstring("Service Unavailable"), "Ready message")
}

// TestGateReconciler_reconcile_kustomizationRef: a Gate on a Flux
// Kustomization verifies what that Kustomization would apply, not the
// source's files as they are.
func TestGateReconciler_reconcile_kustomizationRef(t *testing.T) {
	t.Parallel()

	t.Run("spec.images", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		placeholder, _ := f.pushUnsigned("acme/web:placeholder")
		web, webDigest := f.pushSigned("acme/web:1.0")
		repo, rev := f.gitRepository("apps", manifests("web", placeholder))
		ks := f.kustomization("apps", repo, func(k *kustomizev1.Kustomization) {
			k.Spec.Images = []kustomize.Image{{Name: f.host + "/acme/web", NewTag: "1.0"}}
		})
		gate := f.createGate("apps", repo, func(g *v1alpha1.Gate) {
			g.Spec.SourceRef, g.Spec.Path = nil, ""
			g.Spec.KustomizationRef = &v1alpha1.KustomizationReference{Name: ks.Name}
		})
		got := f.readyFor(gate, rev)
		f.g.Expect(got.Status.Images).To(ConsistOf(And(HaveField("Image", web), HaveField("Digest", webDigest))))

		// The Kustomization changes: the Gate follows.
		orig := ks.DeepCopy()
		ks.Spec.Images = nil
		f.g.Expect(k8sClient.Patch(t.Context(), ks, client.MergeFrom(orig))).To(Succeed())
		f.deniedFor(gate, rev, "NoSignatures", func(g Gomega, got *v1alpha1.Gate) {
			g.Expect(got.Status.Images).To(ConsistOf(HaveField("Image", placeholder)))
		})
	})

	t.Run("postBuild from a ConfigMap", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		web, _ := f.pushSigned("acme/web:1.0")
		api, _ := f.pushSigned("acme/api:3.1")
		vars := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "cluster-vars"},
			Data:       map[string]string{"REGISTRY": f.host},
		}
		f.g.Expect(k8sClient.Create(t.Context(), vars)).To(Succeed())
		repo, rev1 := f.gitRepository("apps", manifests("web", "${REGISTRY}/acme/web:1.0"))
		ks := f.kustomization("apps", repo, func(k *kustomizev1.Kustomization) {
			k.Spec.PostBuild = &kustomizev1.PostBuild{SubstituteFrom: []kustomizev1.SubstituteReference{{Kind: "ConfigMap", Name: vars.Name}}}
		})
		gate := f.createGate("apps", repo, func(g *v1alpha1.Gate) {
			g.Spec.SourceRef, g.Spec.Path = nil, ""
			g.Spec.KustomizationRef = &v1alpha1.KustomizationReference{Name: ks.Name}
		})
		got := f.readyFor(gate, rev1)
		f.g.Expect(got.Status.Images).To(ConsistOf(HaveField("Image", web)))

		// A new revision of the Kustomization's source reaches the Gate.
		rev2 := f.setRevision(repo, manifests("web", "${REGISTRY}/acme/web:1.0", "${REGISTRY}/acme/api:3.1"))
		got = f.readyFor(gate, rev2)
		f.g.Expect(got.Status.Images).To(ConsistOf(HaveField("Image", web), HaveField("Image", api)))
	})
}

// TestGateReconciler_reconcile_eventsOnVerdictChange: an Event announces a
// change of verdict; reconciling again to the same verdict about the same
// revision emits none (else every retry, every interval and every
// TrustPolicy change anywhere repeats it).
func TestGateReconciler_reconcile_eventsOnVerdictChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	worker, _ := f.pushUnsigned("acme/worker:0.9")
	repo, rev := f.gitRepository("apps", manifests("worker", worker))
	gate := f.createGate("apps", repo)
	f.deniedFor(gate, rev, "NoSignatures")

	token := f.requestReconcile(gate)
	f.eventually(gate, func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.LastHandledReconcileAt).To(Equal(token))
		g.Expect(conditions.GetReason(got, meta.ReadyCondition)).To(Equal("NoSignatures"))
	})
	if got := eventLog.emitted(f.ns, gate.Name, "NoSignatures"); len(got) != 1 {
		t.Errorf("%d NoSignatures events emitted for one unchanged verdict, want 1:\n%+v", len(got), got)
	}
}

// TestGateReconciler_reconcile_eventsOnFailureChange: a Gate that cannot
// decide (here, its source does not exist) is retried every retry
// interval; the failure is announced by one Event, not one per retry, and
// logged at each.
func TestGateReconciler_reconcile_eventsOnFailureChange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	missing := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "missing"}}
	gate := f.createGate("apps", missing)
	got := f.deniedFor(gate, "", SourceNotFoundReason)
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(Equal("GitRepository/" + f.ns + "/missing not found"))
	f.g.Eventually(func() int { return len(logs.errorsFor(f.ns, gate.Name)) }).WithTimeout(waitTimeout).Should(BeNumerically(">=", 3),
		"failed reconciles logged, one per retry")
	if got := eventLog.emitted(f.ns, gate.Name, SourceNotFoundReason); len(got) != 1 {
		t.Errorf("%d SourceNotFound events emitted over %d retries of one unchanged failure, want 1:\n%+v",
			len(got), len(logs.errorsFor(f.ns, gate.Name)), got)
	}
}

// TestGateReconciler_reconcile_unrelatedTrustRoot: a TrustRoot that no
// selected TrustPolicy names is not read, so one that is broken (its
// Secret is missing) does not stop the Gate; a policy that names it makes
// the Gate PolicyInvalid, naming the TrustRoot and the Secret.
func TestGateReconciler_reconcile_unrelatedTrustRoot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	broken := &v1alpha1.TrustRoot{
		ObjectMeta: metav1.ObjectMeta{Name: "broken-" + f.ns},
		Spec: v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{
			SecretRef: &v1alpha1.SecretKeySelector{Namespace: f.ns, Name: "missing", Key: "trusted_root.json"},
		}},
	}
	f.create(broken)
	web, _ := f.pushSigned("acme/web:1.0")
	repo, rev := f.gitRepository("apps", manifests("web", web))
	gate := f.createGate("apps", repo)
	f.readyFor(gate, rev)

	f.updatePolicy(func(s *v1alpha1.TrustPolicySpec) { s.TrustRootRef = broken.Name })
	got := f.deniedFor(gate, rev, PolicyInvalidReason)
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(And(
		ContainSubstring(`TrustRoot "`+broken.Name+`"`), ContainSubstring(f.ns+"/missing")))
}

// TestGateReconciler_reconcile_coverageGap: what the Gate cannot see
// blocks. A revision whose HelmRelease the Gate does not render is
// Ready=False CoverageGap, listing the gap in status.gaps, and never
// becomes the last verified revision; allowing the gap kind in
// spec.allowGaps lets it through, the gap still reported.
func TestGateReconciler_reconcile_coverageGap(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	web, _ := f.pushSigned("acme/web:1.0")
	files := manifests("web", web)
	files["deploy/ingress.yaml"] = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: ingress-nginx, namespace: ingress}
spec:
  interval: 1h
  chart:
    spec:
      chart: ingress-nginx
      sourceRef: {kind: HelmRepository, name: ingress-nginx}
`
	repo, rev := f.gitRepository("apps", files)
	gate := f.createGate("apps", repo)
	got := f.deniedFor(gate, rev, "CoverageGap", func(g Gomega, got *v1alpha1.Gate) {
		g.Expect(got.Status.Gaps).To(ConsistOf(And(
			HaveField("Kind", "HelmRelease"), HaveField("Blocking", true),
			HaveField("Object", "HelmRelease/ingress/ingress-nginx"), HaveField("File", "deploy/ingress.yaml"),
		)))
		g.Expect(got.Status.Summary).To(Equal(&v1alpha1.ImageSummary{Total: 1, Verified: 1, Gaps: 1, BlockingGaps: 1}))
	})
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(HavePrefix("images not seen: 1 coverage gap blocking: HelmRelease deploy/ingress.yaml HelmRelease/ingress/ingress-nginx"))
	f.g.Expect(got.Status.LastVerifiedRevision).To(BeEmpty())

	f.patchGate(gate, func(g *v1alpha1.Gate) { g.Spec.AllowGaps = []v1alpha1.GapKind{"HelmRelease"} })
	got = f.readyFor(gate, rev)
	f.g.Expect(conditions.GetMessage(got, meta.ReadyCondition)).To(Equal("1 of 1 images verified; 1 coverage gap (0 blocking)"))
	f.g.Expect(got.Status.Gaps).To(ConsistOf(And(HaveField("Kind", "HelmRelease"), HaveField("Blocking", false))))
}
