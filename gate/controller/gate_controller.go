// Package controller is pregate's Kubernetes controller: it reconciles Gate
// objects, verifying every revision of the Flux source a Gate references
// with the same core as the CLI (gate.Gate over render and verify), and
// reports the verdict in Flux-style status conditions. It is the only
// package that talks to the cluster.
package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	"github.com/fluxcd/pkg/runtime/jitter"
	"github.com/fluxcd/pkg/runtime/patch"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/gate/report"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/sources"
	"github.com/pregate/pregate/verify"
)

// Condition reasons the Gate controller sets, beyond the gate's verdict
// reasons (gate.XxxReason) and Flux's generic ones (meta.XxxReason).
const (
	// InvalidSpecReason: the Gate's spec cannot be acted on; it is Stalled
	// until the spec changes.
	InvalidSpecReason = "InvalidSpec"
	// SourceNotFoundReason: the referenced source or Kustomization does not
	// exist (yet).
	SourceNotFoundReason = "SourceNotFound"
	// ArtifactNotReadyReason: the source has no artifact yet.
	ArtifactNotReadyReason = "ArtifactNotReady"
	// FetchFailedReason: the artifact could not be downloaded or extracted.
	FetchFailedReason = "FetchFailed"
	// RenderFailedReason: the revision could not be rendered.
	RenderFailedReason = "RenderFailed"
	// PolicyInvalidReason: a selected TrustPolicy or TrustRoot is invalid,
	// or its trust material cannot be loaded.
	PolicyInvalidReason = "PolicyInvalid"
	// NoPoliciesReason: no TrustPolicy matches the Gate's policySelector.
	NoPoliciesReason = "NoPolicies"
)

// The RBAC the controller needs, least privilege: make generate writes it to
// manifests/rbac.
//
// +kubebuilder:rbac:groups=gate.pregate.dev,resources=gates,verbs=get;list;watch
// +kubebuilder:rbac:groups=gate.pregate.dev,resources=gates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=gate.pregate.dev,resources=trustpolicies;trustroots,verbs=get;list;watch
// +kubebuilder:rbac:groups=source.toolkit.fluxcd.io,resources=gitrepositories;ocirepositories;buckets;externalartifacts,verbs=get;list;watch
// +kubebuilder:rbac:groups=source.toolkit.fluxcd.io,resources=externalartifacts,verbs=create;update;patch;delete
// +kubebuilder:rbac:groups=source.toolkit.fluxcd.io,resources=externalartifacts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=source.toolkit.fluxcd.io,resources=helmcharts;helmrepositories,verbs=get
// +kubebuilder:rbac:groups=kustomize.toolkit.fluxcd.io,resources=kustomizations,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;serviceaccounts;namespaces,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=pregate-system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=pregate-system,resources=events,verbs=create;patch

// GateReconciler reconciles Gates.
type GateReconciler struct {
	client.Client
	EventRecorder events.EventRecorder

	// ControllerName is the field manager of status patches.
	ControllerName string

	// Verification: one set of registry hosts (connections, pings,
	// per-host limits, Retry-After) and one verdict cache for all Gates.
	Hosts         *verify.Hosts
	Cache         *verify.Cache
	RequestStats  *verify.RequestCounter
	LookupTimeout time.Duration
	TUFCacheDir   string
	// TrustRefresh is how long the trust material of a TrustRoot is used
	// before it is loaded again; zero means DefaultTrustRefresh.
	TrustRefresh time.Duration

	// Retries: how soon a Gate whose verdict rests on failed lookups, or
	// whose source is not ready, is tried again.
	RetryInterval time.Duration
	// ArtifactFetchRetries is how often a failed artifact download is
	// retried within one reconcile.
	ArtifactFetchRetries int
	// MaxArtifactSize bounds a source artifact (download and extracted).
	MaxArtifactSize int64

	// Charts fetches and keeps the charts of HelmReleases for all Gates;
	// nil is a process-wide in-memory cache.
	Charts *helm.Charts

	// NoRemoteBases refuses remote kustomize bases, as kustomize-controller
	// does with its --no-remote-bases flag (see render.WithoutRemoteBases):
	// a kustomization that refers to one is a RemoteBase gap. Off, remote
	// bases are fetched as kustomize-controller fetches them by default.
	NoRemoteBases bool

	// Engines are the admission engine releases the cluster runs, whose
	// ways of reading signatures the admission predictions follow (each
	// engine's newest known when not given).
	Engines admission.Profiles
	// PolicyControllerNamespace is where policy-controller's configuration
	// ConfigMap is (its no-match-policy); empty reads none, and its
	// default (deny) applies.
	PolicyControllerNamespace string
	// APIReader reads from the API server, past the manager's cache (the
	// Pods that run, a page at a time); nil reads with the client.
	APIReader client.Reader
	// MaxRunningPods is how many running Pods are read at most when a
	// revision's admission policies are checked against them; zero is
	// DefaultMaxRunningPods.
	MaxRunningPods int
	// RunningPodsReuse is how long one listing of the running Pods serves
	// every Gate; zero lists them for each.
	RunningPodsReuse time.Duration

	// Metrics records verdicts and durations; nil records nothing.
	Metrics *Metrics

	// Artifacts are where Gates with spec.artifact republish the revisions
	// they allow; nil refuses them.
	Artifacts *Artifacts

	// Set by SetupWithManager.
	serviceAccount types.NamespacedName
	trust          *trustCache
	// running is the last listing of the Pods that run.
	running runningPodsList
}

// ownedConditions are the conditions the controller writes.
var ownedConditions = []string{meta.ReadyCondition, meta.ReconcilingCondition, meta.StalledCondition,
	sourcev1.ArtifactInStorageCondition, sourcev1.ArtifactOutdatedCondition}

// Reconcile verifies the revision a Gate's source currently holds.
func (r *GateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	start := time.Now()
	log := ctrl.LoggerFrom(ctx)

	obj := &v1alpha1.Gate{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted: a Gate holds nothing outside its own status, so only
			// its metrics go.
			r.Metrics.forget(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	patcher := patch.NewSerialPatcher(obj, r.Client)
	defer func() {
		err := errors.Join(r.syncArtifact(ctx, obj), r.finalizeStatus(ctx, obj, patcher))
		switch {
		case err == nil:
		case ctx.Err() != nil:
			// Stopping (SIGTERM, leadership lost): the next leader
			// reconciles the Gate again; nothing is recorded half.
			log.V(1).Info("status not recorded: stopping", "error", err.Error())
		default:
			retErr = errors.Join(retErr, err)
		}
		r.Metrics.record(obj, start)
	}()

	if obj.Spec.Suspend {
		log.V(1).Info("reconciliation is suspended")
		return ctrl.Result{}, nil
	}
	// The verdict before this reconcile, to tell whether it changed.
	previous := conditions.Get(obj, meta.ReadyCondition).DeepCopy()
	if err := validateSpec(obj); err != nil {
		conditions.MarkFalse(obj, meta.ReadyCondition, InvalidSpecReason, "%s", err)
		conditions.MarkStalled(obj, InvalidSpecReason, "%s", err)
		r.eventOnChange(obj, previous, corev1.EventTypeWarning, err.Error())
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	conditions.Delete(obj, meta.StalledCondition)

	res, err := r.reconcile(ctx, obj, patcher, previous)
	if err != nil {
		log.Error(err, "reconciliation failed", "reason", conditions.GetReason(obj, meta.ReadyCondition))
		r.eventOnChange(obj, previous, corev1.EventTypeWarning, conditions.GetMessage(obj, meta.ReadyCondition))
		return ctrl.Result{RequeueAfter: r.RetryInterval}, nil //nolint:nilerr // reported in the Ready condition; retried at RetryInterval, not with backoff
	}
	return res, nil
}

// reconcile resolves the source, announces a new revision, then fetches,
// renders, verifies and records the verdict. An error is already in the
// Ready condition; the caller retries.
func (r *GateReconciler) reconcile(ctx context.Context, obj *v1alpha1.Gate, patcher *patch.SerialPatcher, previous *metav1.Condition) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	src, err := r.resolveSource(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	revision := src.artifact.Revision

	// Nothing downstream may read a Ready=True that is not about this
	// revision and spec: say so before any verification starts. A revision
	// already attempted and not allowed (Ready is not True) is retried
	// without flipping Ready to Unknown and back at every retry.
	stale := conditions.IsReady(obj) && (revision != obj.Status.LastVerifiedRevision || obj.Generation != obj.Status.ObservedGeneration)
	if stale || revision != obj.Status.LastAttemptedRevision || conditions.Get(obj, meta.ReadyCondition) == nil {
		msg := fmt.Sprintf("verifying revision %s", revision)
		conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msg)
		conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msg)
		obj.Status.LastAttemptedRevision = revision
		if err := r.patch(ctx, obj, patcher); err != nil {
			return ctrl.Result{}, r.fail(obj, meta.ReconciliationFailedReason, fmt.Errorf("announcing revision %s: %w", revision, err))
		}
	}

	set, policies, err := r.policies(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	keychain, err := r.keychain(ctx, obj, policies)
	if err != nil {
		return ctrl.Result{}, r.fail(obj, meta.ReconciliationFailedReason, err)
	}
	artifact := sources.Artifact{URL: src.artifact.URL, Digest: src.artifact.Digest, Revision: revision}
	workDir := ""
	if obj.Spec.Artifact != nil {
		// The revision's files stay until they are republished.
		if workDir, err = os.MkdirTemp("", "pregate-gate-"); err != nil {
			return ctrl.Result{}, r.fail(obj, meta.ReconciliationFailedReason, err)
		}
		defer os.RemoveAll(workDir)
	}
	admissionPolicies, err := r.clusterAdmissionPolicies(ctx)
	if err != nil {
		return ctrl.Result{}, r.fail(obj, stageReasons[pipeline.PolicyStage], err)
	}
	res, err := pipeline.Check(ctx, pipeline.Options{
		Admission:       admissionPolicies,
		Engines:         r.Engines,
		NamespaceLabels: r.namespaceLabels,
		Policies:        pipeline.Policies{Set: set, Trust: r.trust.source(config.DefaultTrustSource(ctx, r.TUFCacheDir))},
		Registry: []verify.RegistryOption{verify.WithHosts(r.Hosts), verify.WithKeychain(keychain),
			verify.WithLookupTimeout(r.LookupTimeout), verify.WithStats(r.RequestStats)},
		Verifier: []verify.VerifierOption{verify.WithCache(r.Cache),
			verify.WithImageTimeout(durationOr(obj.Spec.ImageTimeout, verify.DefaultImageTimeout))},
		Unmatched:   unmatchedImages(obj),
		AllowGaps:   allowGaps(obj),
		Running:     r.runningPods,
		RunningPods: runningPodsAction(obj),
		Timeout:     durationOr(obj.Spec.Timeout, gate.DefaultTimeout),
		WorkDir:     workDir,
		RevisionTrust: func(rt pipeline.RevisionTrust) (pipeline.RevisionTrust, error) {
			return r.revisionTrust(ctx, obj, rt)
		},
	}, pipeline.Source{
		Name: src.ref.String(),
		Ref:  src.ref,
		Open: func(ctx context.Context, dir string) (*sources.Tree, error) {
			return sources.Fetch(ctx, artifact, dir, sources.WithRetries(r.ArtifactFetchRetries),
				sources.WithMaxDownloadSize(r.MaxArtifactSize), sources.WithMaxSize(4*r.MaxArtifactSize))
		},
		Paths:  []string{src.path},
		Render: src.renderOptions,
	})
	if err != nil {
		return ctrl.Result{}, r.fail(obj, stageReasons[pipeline.StageOf(err)], err)
	}
	verdict := res.Verdict
	if r.announcedSince(ctx, obj, revision) {
		// The announcer has withdrawn Ready for a newer revision while this
		// one was verified: a verdict on this one would be read as the
		// newer one's. The newer one is verified next.
		log.V(1).Info("verdict dropped: a newer revision was announced", "revision", revision)
		return ctrl.Result{RequeueAfter: time.Millisecond}, nil
	}
	r.Metrics.verdict(obj, verdict)
	if verdict.Allowed && obj.Spec.Artifact != nil {
		// Only what was verified is served; the Gate is Ready once it is.
		art, err := r.publish(ctx, obj, res, revision)
		if err != nil {
			return ctrl.Result{}, r.fail(obj, ArtifactFailedReason, fmt.Errorf("republishing revision %s: %w", revision, err))
		}
		obj.Status.Artifact = art
	}
	if err := r.setVerdict(ctx, obj, patcher, revision, verdict, previous); err != nil {
		return ctrl.Result{}, r.fail(obj, meta.ReconciliationFailedReason, err)
	}
	log.Info("revision verified", "revision", revision, "allowed", verdict.Allowed, "reason", verdict.Reason,
		"images", verdict.Summary.Total, "denied", verdict.Summary.Denied)
	if verdict.Retry {
		return ctrl.Result{RequeueAfter: r.RetryInterval}, nil
	}
	return ctrl.Result{RequeueAfter: jitter.JitteredIntervalDuration(obj.Spec.Interval.Duration)}, nil
}

// stageReasons are the Ready reasons of the pipeline's failures.
var stageReasons = map[pipeline.Stage]string{
	pipeline.PolicyStage: PolicyInvalidReason,
	pipeline.OpenStage:   FetchFailedReason,
	pipeline.RenderStage: RenderFailedReason,
	pipeline.VerifyStage: meta.ReconciliationFailedReason,
	"":                   meta.ReconciliationFailedReason,
}

// fail records a failure to decide in the Ready condition and returns it.
func (r *GateReconciler) fail(obj *v1alpha1.Gate, reason string, err error) error {
	conditions.MarkFalse(obj, meta.ReadyCondition, reason, "%s", err)
	return err
}

// setVerdict writes the verdict into the status. The images, summary and
// revision are patched first and the Ready condition after them (Flux's
// patcher writes conditions before the rest of the status): a reader never
// sees the new Ready next to the previous verdict's details.
func (r *GateReconciler) setVerdict(ctx context.Context, obj *v1alpha1.Gate, patcher *patch.SerialPatcher, revision string, v gate.Verdict, previous *metav1.Condition) error {
	obj.Status.Summary, obj.Status.Images, obj.Status.Gaps = report.Status(v)
	obj.Status.Admission = report.AdmissionStatus(v)
	obj.Status.Running, obj.Status.Readiness = report.RunningStatus(v), report.ReadinessStatus(v)
	if v.Allowed {
		obj.Status.LastVerifiedRevision = revision
		obj.Status.ObservedGeneration = obj.Generation
	}
	if err := r.patch(ctx, obj, patcher); err != nil {
		return fmt.Errorf("recording the verdict: %w", err)
	}
	if v.Allowed {
		conditions.MarkTrue(obj, meta.ReadyCondition, v.Reason, "%s", v.Message)
	} else {
		conditions.MarkFalse(obj, meta.ReadyCondition, v.Reason, "%s", v.Message)
	}
	kind := corev1.EventTypeNormal
	if !v.Allowed {
		kind = corev1.EventTypeWarning
	}
	r.eventOnChange(obj, previous, kind, fmt.Sprintf("revision %s: %s", revision, v.Message))
	return nil
}

// finalizeStatus patches the status at the end of every reconcile, the
// way Flux controllers do: a successful reconcile ends Reconciling and
// observes the generation; a failed one keeps Reconciling, retrying.
func (r *GateReconciler) finalizeStatus(ctx context.Context, obj *v1alpha1.Gate, patcher *patch.SerialPatcher) error {
	if v, ok := meta.ReconcileAnnotationValue(obj.GetAnnotations()); ok {
		obj.Status.LastHandledReconcileAt = v
	}
	switch {
	case conditions.IsTrue(obj, meta.ReadyCondition):
		conditions.Delete(obj, meta.ReconcilingCondition)
	case conditions.IsStalled(obj):
		conditions.Delete(obj, meta.ReconcilingCondition)
	case conditions.IsFalse(obj, meta.ReadyCondition):
		if rc := conditions.Get(obj, meta.ReconcilingCondition); rc != nil {
			rc.Reason = meta.ProgressingWithRetryReason
			conditions.Set(obj, rc)
		} else {
			conditions.MarkReconciling(obj, meta.ProgressingWithRetryReason, "%s", conditions.GetMessage(obj, meta.ReadyCondition))
		}
	}
	return r.patch(ctx, obj, patcher)
}

func (r *GateReconciler) patch(ctx context.Context, obj *v1alpha1.Gate, patcher *patch.SerialPatcher) error {
	opts := []patch.Option{
		patch.WithOwnedConditions{Conditions: ownedConditions},
		patch.WithFieldOwner(r.ControllerName),
	}
	if conditions.IsReady(obj) || conditions.IsStalled(obj) {
		opts = append(opts, patch.WithStatusObservedGeneration{})
	}
	// A Gate deleted while it was verified is gone: nothing to report.
	return kerrors.FilterOut(patcher.Patch(ctx, obj, opts...), apierrors.IsNotFound)
}

// eventOnChange emits an Event with the Ready condition's reason when that
// condition differs from previous (its state before the reconcile): a
// verdict or failure repeated by every retry and interval is announced
// once.
func (r *GateReconciler) eventOnChange(obj *v1alpha1.Gate, previous *metav1.Condition, kind, msg string) {
	now := conditions.Get(obj, meta.ReadyCondition)
	if now == nil || previous != nil && previous.Status == now.Status && previous.Reason == now.Reason && previous.Message == now.Message {
		return
	}
	r.event(obj, kind, now.Reason, msg)
}

func (r *GateReconciler) event(obj *v1alpha1.Gate, kind, reason, msg string) {
	if r.EventRecorder == nil {
		return
	}
	r.EventRecorder.Eventf(obj, nil, kind, reason, "Verify", "%s", msg)
}

// validateSpec checks what the CRD's schema cannot.
func validateSpec(obj *v1alpha1.Gate) error {
	switch {
	case obj.Spec.SourceRef == nil && obj.Spec.KustomizationRef == nil:
		return errors.New("spec: one of sourceRef and kustomizationRef is required")
	case obj.Spec.SourceRef != nil && obj.Spec.KustomizationRef != nil:
		return errors.New("spec: sourceRef and kustomizationRef are mutually exclusive")
	case obj.Spec.Interval.Duration <= 0:
		return errors.New("spec.interval: must be positive")
	case obj.Spec.Timeout != nil && obj.Spec.Timeout.Duration <= 0:
		return errors.New("spec.timeout: must be positive")
	case obj.Spec.ImageTimeout != nil && obj.Spec.ImageTimeout.Duration <= 0:
		return errors.New("spec.imageTimeout: must be positive")
	}
	if ref := obj.Spec.SourceRef; ref != nil {
		if _, err := newSource(ref.Kind); err != nil {
			return fmt.Errorf("spec.sourceRef.kind: %w", err)
		}
		if obj.Spec.Artifact != nil && ref.Kind == sourcev1.ExternalArtifactKind && ref.Name == artifactName(obj) && namespaceOr(ref.Namespace, obj.Namespace) == obj.Namespace {
			return errors.New("spec.sourceRef: the Gate's own ExternalArtifact (spec.artifact) cannot be its source")
		}
	}
	if _, err := policySelector(obj); err != nil {
		return fmt.Errorf("spec.policySelector: %w", err)
	}
	return nil
}

// source is what a Gate verifies: an artifact and how to render it.
type source struct {
	ref           render.SourceRef
	artifact      *meta.Artifact
	path          string
	renderOptions []render.Option
}

// newSource returns an empty Flux source object of the given kind.
func newSource(kind string) (sourcev1.Source, error) {
	switch kind {
	case sourcev1.GitRepositoryKind:
		return &sourcev1.GitRepository{}, nil
	case sourcev1.OCIRepositoryKind:
		return &sourcev1.OCIRepository{}, nil
	case sourcev1.BucketKind:
		return &sourcev1.Bucket{}, nil
	case sourcev1.ExternalArtifactKind:
		return &sourcev1.ExternalArtifact{}, nil
	default:
		return nil, fmt.Errorf("unsupported source kind %q (want GitRepository, OCIRepository, Bucket or ExternalArtifact)", kind)
	}
}

// resolveSource finds the source revision to verify, directly or through
// the referenced Flux Kustomization, and how to render it.
func (r *GateReconciler) resolveSource(ctx context.Context, obj *v1alpha1.Gate) (*source, error) {
	var (
		ref      render.SourceRef
		path     = obj.Spec.Path
		ks       map[string]any
		postFrom []v1alpha1.SubstituteReference
		varsNS   = obj.Namespace
	)
	if kr := obj.Spec.KustomizationRef; kr != nil {
		k := &kustomizev1.Kustomization{}
		key := types.NamespacedName{Namespace: namespaceOr(kr.Namespace, obj.Namespace), Name: kr.Name}
		if err := r.Get(ctx, key, k); err != nil {
			return nil, r.sourceError(obj, fmt.Sprintf("Kustomization %s", key), err)
		}
		ref = render.SourceRef{Kind: k.Spec.SourceRef.Kind, Namespace: namespaceOr(k.Spec.SourceRef.Namespace, k.Namespace), Name: k.Spec.SourceRef.Name}
		path = k.Spec.Path
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(k)
		if err != nil {
			return nil, r.fail(obj, meta.ReconciliationFailedReason, err)
		}
		u["apiVersion"], u["kind"] = kustomizev1.GroupVersion.String(), kustomizev1.KustomizationKind
		ks, varsNS = u, k.Namespace
		if pb := k.Spec.PostBuild; pb != nil {
			for _, s := range pb.SubstituteFrom {
				postFrom = append(postFrom, v1alpha1.SubstituteReference{Kind: s.Kind, Name: s.Name, Optional: s.Optional})
			}
		}
	} else {
		sr := obj.Spec.SourceRef
		ref = render.SourceRef{Kind: sr.Kind, Namespace: namespaceOr(sr.Namespace, obj.Namespace), Name: sr.Name}
		if pb := obj.Spec.PostBuild; pb != nil {
			postFrom = pb.SubstituteFrom
			ks = syntheticKustomization(obj, ref, pb)
		}
	}

	s, err := newSource(ref.Kind)
	if err != nil {
		return nil, r.fail(obj, InvalidSpecReason, err)
	}
	srcObj := s.(client.Object)
	if err := r.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, srcObj); err != nil {
		return nil, r.sourceError(obj, ref.String(), err)
	}
	artifact := s.GetArtifact()
	if artifact == nil {
		return nil, r.fail(obj, ArtifactNotReadyReason, fmt.Errorf("%s has no artifact yet", ref))
	}

	opts := r.renderDefaults()
	if ks != nil {
		opts = append(opts, render.WithKustomization(ks))
	}
	if len(postFrom) > 0 {
		objs, err := r.substituteFrom(ctx, varsNS, postFrom)
		if err != nil {
			return nil, r.fail(obj, meta.ReconciliationFailedReason, err)
		}
		opts = append(opts, render.WithSubstituteFrom(objs))
	}
	opts = append(opts, render.WithDecryption(r.decryptionKeys(obj.Namespace, varsNS)))
	return &source{ref: ref, artifact: artifact, path: cleanPath(path), renderOptions: opts}, nil
}

// renderDefaults are the render options of every Gate.
func (r *GateReconciler) renderDefaults() []render.Option {
	opts := []render.Option{r.helmOptions()}
	if r.NoRemoteBases {
		opts = append(opts, render.WithoutRemoteBases("pregate controller --no-remote-bases"))
	}
	return opts
}

func (r *GateReconciler) sourceError(obj *v1alpha1.Gate, what string, err error) error {
	if apierrors.IsNotFound(err) {
		return r.fail(obj, SourceNotFoundReason, fmt.Errorf("%s not found", what))
	}
	return r.fail(obj, meta.ReconciliationFailedReason, fmt.Errorf("getting %s: %w", what, err))
}

// syntheticKustomization is the Flux Kustomization a Gate with a sourceRef
// and a postBuild renders its path as.
func syntheticKustomization(obj *v1alpha1.Gate, ref render.SourceRef, pb *v1alpha1.PostBuild) map[string]any {
	post := map[string]any{}
	if len(pb.Substitute) > 0 {
		sub := map[string]any{}
		for k, v := range pb.Substitute {
			sub[k] = v
		}
		post["substitute"] = sub
	}
	var from []any
	for _, s := range pb.SubstituteFrom {
		from = append(from, map[string]any{"kind": s.Kind, "name": s.Name, "optional": s.Optional})
	}
	if len(from) > 0 {
		post["substituteFrom"] = from
	}
	return map[string]any{
		"apiVersion": kustomizev1.GroupVersion.String(),
		"kind":       kustomizev1.KustomizationKind,
		"metadata":   map[string]any{"name": obj.Name, "namespace": obj.Namespace},
		"spec": map[string]any{
			"path":      obj.Spec.Path,
			"postBuild": post,
			"sourceRef": map[string]any{"kind": ref.Kind, "name": ref.Name, "namespace": ref.Namespace},
		},
	}
}

// substituteFrom reads the ConfigMaps and Secrets a postBuild names, from
// the cluster, as kustomize-controller does. A missing optional one is
// left out; a missing required one is left for render to report.
func (r *GateReconciler) substituteFrom(ctx context.Context, namespace string, refs []v1alpha1.SubstituteReference) ([]map[string]any, error) {
	var out []map[string]any
	for _, ref := range refs {
		if ref.Kind != "ConfigMap" && ref.Kind != "Secret" {
			return nil, fmt.Errorf("postBuild.substituteFrom: unsupported kind %q", ref.Kind)
		}
		u, err := r.readObject(ctx, ref.Kind, namespace, ref.Name)
		if err != nil {
			return nil, fmt.Errorf("reading %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
		}
		if u != nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// policies reads the TrustPolicies the Gate selects, with the TrustRoots
// they name and the key and trust-root Secrets they refer to, into a set
// to compile, and returns it with the selected TrustPolicies.
func (r *GateReconciler) policies(ctx context.Context, obj *v1alpha1.Gate) (*config.Set, []v1alpha1.TrustPolicy, error) {
	sel, err := policySelector(obj)
	if err != nil {
		return nil, nil, r.fail(obj, InvalidSpecReason, err)
	}
	var policies v1alpha1.TrustPolicyList
	if err := r.List(ctx, &policies, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, nil, r.fail(obj, meta.ReconciliationFailedReason, fmt.Errorf("listing TrustPolicies: %w", err))
	}
	if len(policies.Items) == 0 {
		return nil, nil, r.fail(obj, NoPoliciesReason, errors.New("no TrustPolicy matches spec.policySelector"))
	}
	// Only the TrustRoots these policies name: another one, broken or with
	// a missing Secret, is no concern of this Gate.
	var all v1alpha1.TrustRootList
	if err := r.List(ctx, &all); err != nil {
		return nil, nil, r.fail(obj, meta.ReconciliationFailedReason, fmt.Errorf("listing TrustRoots: %w", err))
	}
	named := map[string]bool{}
	for _, p := range policies.Items {
		named[p.Spec.TrustRootRef] = true
	}
	var roots []v1alpha1.TrustRoot
	for _, tr := range all.Items {
		if named[tr.Name] {
			roots = append(roots, tr)
		}
	}
	if err := r.inlineSecrets(ctx, policies.Items, roots); err != nil {
		return nil, nil, r.fail(obj, PolicyInvalidReason, err)
	}
	set, err := config.FromObjects("cluster", policies.Items, roots)
	if err != nil {
		return nil, nil, r.fail(obj, PolicyInvalidReason, err)
	}
	return set, policies.Items, nil
}

// revisionTrust keeps the TrustPolicies of a revision the Gate selects,
// and inlines the Secrets they and its TrustRoots name, which must be in
// the Gate's namespace: a revision names no Secret elsewhere.
func (r *GateReconciler) revisionTrust(ctx context.Context, obj *v1alpha1.Gate, rt pipeline.RevisionTrust) (pipeline.RevisionTrust, error) {
	sel, err := policySelector(obj)
	if err != nil {
		return rt, err
	}
	var kept []v1alpha1.TrustPolicy
	for _, p := range rt.Policies {
		if !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		for _, a := range p.Spec.Authorities {
			if a.Key != nil && a.Key.SecretRef != nil && a.Key.SecretRef.Namespace != obj.Namespace {
				return rt, fmt.Errorf("TrustPolicy %q (%s): a revision's policy may name Secrets in the Gate's namespace %s only, not %s/%s",
					p.Name, rt.Files[v1alpha1.TrustPolicyKind+"/"+p.Name], obj.Namespace, a.Key.SecretRef.Namespace, a.Key.SecretRef.Name)
			}
		}
		kept = append(kept, p)
	}
	for _, tr := range rt.Roots {
		if s := tr.Spec.TrustedRoot; s != nil && s.SecretRef != nil && s.SecretRef.Namespace != obj.Namespace {
			return rt, fmt.Errorf("TrustRoot %q (%s): a revision's TrustRoot may name Secrets in the Gate's namespace %s only", tr.Name, rt.Files[v1alpha1.TrustRootKind+"/"+tr.Name], obj.Namespace)
		}
	}
	rt.Policies = kept
	return rt, r.inlineSecrets(ctx, rt.Policies, rt.Roots)
}

// policySelector selects the TrustPolicies of a Gate: all of them without
// spec.policySelector.
func policySelector(obj *v1alpha1.Gate) (labels.Selector, error) {
	if obj.Spec.PolicySelector == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(obj.Spec.PolicySelector)
}

// unmatchedImages is what the Gate does with images no policy matches:
// deny unless it says otherwise.
func unmatchedImages(obj *v1alpha1.Gate) gate.Unmatched {
	if u := gate.Unmatched(obj.Spec.UnmatchedImages); u != "" {
		return u
	}
	return gate.DenyUnmatched
}

// runningPodsAction is what running Pods the revision would no longer
// admit do to it.
func runningPodsAction(obj *v1alpha1.Gate) gate.RunningPods {
	if obj.Spec.RunningPods == v1alpha1.RunningPodsWarn {
		return gate.RunningPodsWarn
	}
	return gate.RunningPodsDeny
}

// durationOr is d's duration, or def when d is not set.
func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// allowGaps lists the kinds of coverage gap the Gate lets through.
func allowGaps(obj *v1alpha1.Gate) []string {
	out := make([]string, len(obj.Spec.AllowGaps))
	for i, k := range obj.Spec.AllowGaps {
		out[i] = string(k)
	}
	return out
}

// inlineSecrets replaces the secretRefs of keys and trusted roots with the
// Secrets' content, so the policies compile as a file's would.
func (r *GateReconciler) inlineSecrets(ctx context.Context, policies []v1alpha1.TrustPolicy, roots []v1alpha1.TrustRoot) error {
	for i := range policies {
		for j := range policies[i].Spec.Authorities {
			k := policies[i].Spec.Authorities[j].Key
			if k == nil || k.SecretRef == nil {
				continue
			}
			data, err := r.secretKey(ctx, k.SecretRef)
			if err != nil {
				return fmt.Errorf("TrustPolicy %q: spec.authorities[%d].key.secretRef: %w", policies[i].Name, j, err)
			}
			k.Data, k.SecretRef = data, nil
		}
	}
	for i := range roots {
		tr := roots[i].Spec.TrustedRoot
		if tr == nil || tr.SecretRef == nil {
			continue
		}
		data, err := r.secretKey(ctx, tr.SecretRef)
		if err != nil {
			return fmt.Errorf("TrustRoot %q: spec.trustedRoot.secretRef: %w", roots[i].Name, err)
		}
		tr.Data, tr.SecretRef = data, nil
	}
	return nil
}

func (r *GateReconciler) secretKey(ctx context.Context, ref *v1alpha1.SecretKeySelector) (string, error) {
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	if err := r.Get(ctx, key, s); err != nil {
		return "", fmt.Errorf("reading Secret %s: %w", key, err)
	}
	b, ok := s.Data[ref.Key]
	if !ok {
		return "", fmt.Errorf("secret %s has no key %q", key, ref.Key)
	}
	return string(b), nil
}

func namespaceOr(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

// cleanPath makes a Flux path ("./apps/prod", "") relative to the root.
func cleanPath(p string) string {
	p = strings.TrimLeft(filepath.ToSlash(filepath.Clean("/"+p)), "/")
	if p == "" {
		return "."
	}
	return p
}
