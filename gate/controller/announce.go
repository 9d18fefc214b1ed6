package controller

import (
	"context"
	"fmt"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
)

// announcerName names the controller that announces new revisions.
const announcerName = "gate-announcer"

// announce withdraws a Gate's Ready=True as soon as its source has a
// revision the Gate has not verified: it sets lastAttemptedRevision to it
// and Ready=Unknown ("verifying revision …"), as the first step of a
// reconcile does, but from its own work queue, so that a Gate waiting for
// a worker of the verifying controller (busy with long verifications)
// still never shows a Ready=True that is not about its source's current
// revision to a health check reading it. It changes nothing else, and
// nothing when the Gate is suspended, has no verdict yet or is not
// Ready=True (the reconcile says the rest).
func (r *GateReconciler) announce(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &v1alpha1.Gate{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if obj.Spec.Suspend || !obj.DeletionTimestamp.IsZero() || !conditions.IsReady(obj) {
		return ctrl.Result{}, nil
	}
	revision, ok := r.currentRevision(ctx, obj)
	if !ok || revision == obj.Status.LastVerifiedRevision && revision == obj.Status.LastAttemptedRevision {
		return ctrl.Result{}, nil
	}
	before := obj.DeepCopy()
	msg := fmt.Sprintf("verifying revision %s", revision)
	conditions.MarkReconciling(obj, meta.ProgressingReason, "%s", msg)
	conditions.MarkUnknown(obj, meta.ReadyCondition, meta.ProgressingReason, "%s", msg)
	obj.Status.LastAttemptedRevision = revision
	// Only over the Gate as read: one the cache has not caught up with
	// may have a newer verdict, which must not be withdrawn.
	err := r.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(r.ControllerName))
	switch {
	case apierrors.IsConflict(err):
		return ctrl.Result{RequeueAfter: 100 * time.Millisecond}, nil
	case err != nil:
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ctrl.LoggerFrom(ctx).V(1).Info("new revision announced", "revision", revision)
	return ctrl.Result{}, nil
}

// currentRevision is the artifact revision of the Gate's source, read
// directly or through its Kustomization; false when there is none (the
// reconcile reports why).
func (r *GateReconciler) currentRevision(ctx context.Context, obj *v1alpha1.Gate) (string, bool) {
	var kind, namespace, name string
	switch {
	case obj.Spec.SourceRef != nil:
		ref := obj.Spec.SourceRef
		kind, namespace, name = ref.Kind, namespaceOr(ref.Namespace, obj.Namespace), ref.Name
	case obj.Spec.KustomizationRef != nil:
		ks := &kustomizev1.Kustomization{}
		key := types.NamespacedName{Namespace: namespaceOr(obj.Spec.KustomizationRef.Namespace, obj.Namespace), Name: obj.Spec.KustomizationRef.Name}
		if err := r.Get(ctx, key, ks); err != nil {
			return "", false
		}
		ref := ks.Spec.SourceRef
		kind, namespace, name = ref.Kind, namespaceOr(ref.Namespace, ks.Namespace), ref.Name
	default:
		return "", false
	}
	src, err := newSource(kind)
	if err != nil {
		return "", false
	}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, src.(client.Object)); err != nil {
		return "", false
	}
	if a := src.GetArtifact(); a != nil {
		return a.Revision, true
	}
	return "", false
}

// announcedSince says whether the Gate, as the API server holds it now,
// has had a revision other than revision announced.
func (r *GateReconciler) announcedSince(ctx context.Context, obj *v1alpha1.Gate, revision string) bool {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	now := &v1alpha1.Gate{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(obj), now); err != nil {
		return false
	}
	return now.Status.LastAttemptedRevision != "" && now.Status.LastAttemptedRevision != revision
}
