package controller

import (
	"context"
	"errors"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/runtime/predicates"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
)

// AddToScheme adds the kinds the controller reads and writes to a scheme:
// Kubernetes' own, pregate's, and Flux's sources and Kustomizations.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, sourcev1.AddToScheme, kustomizev1.AddToScheme} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}

// UncachedObjects are the kinds the controller reads live, one object at a
// time, when a Gate or policy names it: never listed, watched or cached,
// so it needs no more than get on them. Give them to the client's
// CacheOptions.DisableFor.
func UncachedObjects() []client.Object {
	return []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}, &corev1.ServiceAccount{}, &corev1.Namespace{}, &sourcev1.HelmChart{}, &sourcev1.HelmRepository{}}
}

// Field indexes on Gates.
const (
	// sourceIndex: "Kind/namespace/name" of a Gate's sourceRef.
	sourceIndex = ".spec.sourceRef"
	// kustomizationIndex: "namespace/name" of a Gate's kustomizationRef.
	kustomizationIndex = ".spec.kustomizationRef"
)

// Options configure the controller's watches.
type Options struct {
	// RateLimiter spaces out retries; default controller-runtime's.
	RateLimiter workqueue.TypedRateLimiter[reconcile.Request]
	// MaxConcurrentReconciles bounds the Gates reconciled at once; default 4.
	MaxConcurrentReconciles int
	// ServiceAccount is the controller's own service account, whose image
	// pull secrets every Gate may use; empty for none.
	ServiceAccount types.NamespacedName
}

// SetupWithManager registers the controller: it watches Gates; the Flux
// sources and Kustomizations they reference, for new revisions; and
// TrustPolicies and TrustRoots, for changed trust.
func (r *GateReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Gate{}, sourceIndex, func(o client.Object) []string {
		g := o.(*v1alpha1.Gate)
		if ref := g.Spec.SourceRef; ref != nil {
			return []string{fmt.Sprintf("%s/%s/%s", ref.Kind, namespaceOr(ref.Namespace, g.Namespace), ref.Name)}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing Gates by source: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Gate{}, kustomizationIndex, func(o client.Object) []string {
		g := o.(*v1alpha1.Gate)
		if ref := g.Spec.KustomizationRef; ref != nil {
			return []string{namespaceOr(ref.Namespace, g.Namespace) + "/" + ref.Name}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing Gates by Kustomization: %w", err)
	}
	r.serviceAccount = opts.ServiceAccount
	r.trust = newTrustCache(r.TrustRefresh)
	if r.Hosts == nil {
		hosts, err := verify.NewHosts()
		if err != nil {
			return err
		}
		r.Hosts = hosts
	}
	workers := opts.MaxConcurrentReconciles
	if workers <= 0 {
		workers = 4
	}

	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Gate{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicates.ReconcileRequestedPredicate{}))).
		Watches(&kustomizev1.Kustomization{}, handler.EnqueueRequestsFromMapFunc(r.gatesForKustomization),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.TrustPolicy{}, handler.EnqueueRequestsFromMapFunc(r.allGates),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&v1alpha1.TrustRoot{}, handler.EnqueueRequestsFromMapFunc(r.allGates),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A Gate's own ExternalArtifact deleted is created again.
		Owns(&sourcev1.ExternalArtifact{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
			UpdateFunc: func(event.UpdateEvent) bool { return false },
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, RateLimiter: opts.RateLimiter})
	if err := r.watchSources(b).Complete(r); err != nil {
		return err
	}

	// New revisions are announced from a queue of their own, whatever the
	// verifying workers are busy with (see announce).
	announcer := ctrl.NewControllerManagedBy(mgr).Named(announcerName).
		For(&v1alpha1.Gate{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2})
	return r.watchSources(announcer).Complete(reconcile.Func(r.announce))
}

// watchSources makes b reconcile the Gates of each Flux source whose
// revision changes.
func (r *GateReconciler) watchSources(b *builder.TypedBuilder[reconcile.Request]) *builder.TypedBuilder[reconcile.Request] {
	for _, kind := range []string{sourcev1.GitRepositoryKind, sourcev1.OCIRepositoryKind, sourcev1.BucketKind, sourcev1.ExternalArtifactKind} {
		obj, _ := newSource(kind)
		b = b.Watches(obj.(client.Object), handler.EnqueueRequestsFromMapFunc(r.gatesForSource(kind)),
			builder.WithPredicates(revisionChanged{}))
	}
	return b
}

// gatesForSource maps a Flux source to the Gates that verify it, directly
// or through a Kustomization.
func (r *GateReconciler) gatesForSource(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		key := fmt.Sprintf("%s/%s/%s", kind, o.GetNamespace(), o.GetName())
		reqs := r.requestsFor(ctx, client.MatchingFields{sourceIndex: key})
		var ks kustomizev1.KustomizationList
		if err := r.List(ctx, &ks); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing Kustomizations")
			return reqs
		}
		for _, k := range ks.Items {
			ref := k.Spec.SourceRef
			if ref.Kind == kind && ref.Name == o.GetName() && namespaceOr(ref.Namespace, k.Namespace) == o.GetNamespace() {
				reqs = append(reqs, r.requestsFor(ctx, client.MatchingFields{kustomizationIndex: k.Namespace + "/" + k.Name})...)
			}
		}
		return reqs
	}
}

func (r *GateReconciler) gatesForKustomization(ctx context.Context, o client.Object) []reconcile.Request {
	return r.requestsFor(ctx, client.MatchingFields{kustomizationIndex: o.GetNamespace() + "/" + o.GetName()})
}

// allGates maps a change of trust to every Gate: any may select it.
func (r *GateReconciler) allGates(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.requestsFor(ctx)
}

func (r *GateReconciler) requestsFor(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var gates v1alpha1.GateList
	if err := r.List(ctx, &gates, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing Gates")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(gates.Items))
	for _, g := range gates.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: g.Namespace, Name: g.Name}})
	}
	return reqs
}

// revisionChanged passes source events whose artifact revision changed.
type revisionChanged struct{ predicate.Funcs }

func (revisionChanged) Create(event.CreateEvent) bool   { return true }
func (revisionChanged) Delete(event.DeleteEvent) bool   { return true }
func (revisionChanged) Generic(event.GenericEvent) bool { return false }

func (revisionChanged) Update(e event.UpdateEvent) bool {
	oldSrc, ok1 := e.ObjectOld.(sourcev1.Source)
	newSrc, ok2 := e.ObjectNew.(sourcev1.Source)
	if !ok1 || !ok2 {
		return false
	}
	oldA, newA := oldSrc.GetArtifact(), newSrc.GetArtifact()
	switch {
	case newA == nil:
		return false
	case oldA == nil:
		return true
	default:
		return oldA.Revision != newA.Revision || oldA.Digest != newA.Digest
	}
}

// keychain gathers registry credentials for a Gate: its own image pull
// secrets, those of its TrustPolicies, then the controller service
// account's, then the process's docker configuration. A Secret the Gate or
// a policy names must exist; one the service account lists but that is
// gone is skipped, as the kubelet does.
func (r *GateReconciler) keychain(ctx context.Context, obj *v1alpha1.Gate, policies []v1alpha1.TrustPolicy) (authn.Keychain, error) {
	var refs []types.NamespacedName
	for _, s := range obj.Spec.ImagePullSecrets {
		refs = append(refs, types.NamespacedName{Namespace: obj.Namespace, Name: s.Name})
	}
	for _, p := range policies {
		for _, s := range p.Spec.ImagePullSecrets {
			refs = append(refs, types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
		}
	}
	var configs [][]byte
	for _, ref := range refs {
		b, err := r.dockerConfig(ctx, ref)
		if err != nil {
			return nil, err
		}
		configs = append(configs, b)
	}
	if sa := r.serviceAccount; sa.Name != "" {
		acct := &corev1.ServiceAccount{}
		switch err := r.Get(ctx, sa, acct); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("reading ServiceAccount %s: %w", sa, err)
		default:
			for _, s := range acct.ImagePullSecrets {
				ref := types.NamespacedName{Namespace: sa.Namespace, Name: s.Name}
				b, err := r.dockerConfig(ctx, ref)
				if apierrors.IsNotFound(err) {
					ctrl.LoggerFrom(ctx).V(1).Info("skipping a missing image pull secret of the service account", "secret", ref.String())
					continue
				}
				if err != nil {
					return nil, err
				}
				configs = append(configs, b)
			}
		}
	}
	if len(configs) == 0 {
		return authn.DefaultKeychain, nil
	}
	kc, err := verify.KeychainFromDockerConfigs(configs...)
	if err != nil {
		return nil, errors.Join(errors.New("reading image pull secrets"), err)
	}
	return authn.NewMultiKeychain(kc, authn.DefaultKeychain), nil
}

// dockerConfig reads the docker configuration an image pull secret holds.
func (r *GateReconciler) dockerConfig(ctx context.Context, ref types.NamespacedName) ([]byte, error) {
	s := &corev1.Secret{}
	if err := r.Get(ctx, ref, s); err != nil {
		return nil, fmt.Errorf("reading image pull secret %s: %w", ref, err)
	}
	if b, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		return b, nil
	}
	if b, ok := s.Data[corev1.DockerConfigKey]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("image pull secret %s has neither %s nor %s", ref, corev1.DockerConfigJsonKey, corev1.DockerConfigKey)
}
