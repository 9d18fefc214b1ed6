package controller

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/admission"
)

// +kubebuilder:rbac:groups=kyverno.io,resources=clusterpolicies;policies,verbs=list
// +kubebuilder:rbac:groups=policies.kyverno.io,resources=imagevalidatingpolicies;namespacedimagevalidatingpolicies,verbs=list
// +kubebuilder:rbac:groups=policy.sigstore.dev,resources=clusterimagepolicies;trustroots,verbs=list

// admissionKinds are the admission policies the controller reads from the
// cluster, beside those a revision applies: each in the version the API
// server prefers, and none when its CRD is not installed.
var admissionKinds = []schema.GroupKind{
	{Group: "kyverno.io", Kind: "ClusterPolicy"},
	{Group: "kyverno.io", Kind: "Policy"},
	{Group: "policies.kyverno.io", Kind: "ImageValidatingPolicy"},
	{Group: "policies.kyverno.io", Kind: "NamespacedImageValidatingPolicy"},
	{Group: "policy.sigstore.dev", Kind: "ClusterImagePolicy"},
	{Group: "policy.sigstore.dev", Kind: "TrustRoot"},
}

// clusterAdmissionPolicies lists the cluster's admission policies, read
// live (unstructured objects are not cached). A policy that does not read
// is an error naming it: the engine would enforce it.
func (r *GateReconciler) clusterAdmissionPolicies(ctx context.Context) ([]*admission.Policy, error) {
	var out []*admission.Policy
	for _, gk := range admissionKinds {
		mapping, err := r.RESTMapper().RESTMapping(gk)
		if apimeta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("admission policies: finding %s: %w", gk, err)
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(mapping.GroupVersionKind.GroupVersion().WithKind(gk.Kind + "List"))
		if err := r.List(ctx, list); err != nil {
			return nil, fmt.Errorf("admission policies: listing %s: %w", gk, err)
		}
		for i := range list.Items {
			obj := list.Items[i].Object
			where := "cluster " + gk.Kind + " " + list.Items[i].GetName()
			p, ok, err := admission.Read(where, obj)
			if err != nil {
				return nil, fmt.Errorf("admission policies: %w", err)
			}
			if ok {
				out = append(out, p)
			}
		}
	}
	cm, err := r.policyControllerConfig(ctx, out)
	if err != nil {
		return nil, err
	}
	if cm != nil {
		out = append(out, cm)
	}
	return out, nil
}

// policyControllerConfig reads policy-controller's configuration
// ConfigMap, for its no-match-policy, when the cluster has
// ClusterImagePolicies: nil when it is not there (the default applies).
func (r *GateReconciler) policyControllerConfig(ctx context.Context, policies []*admission.Policy) (*admission.Policy, error) {
	if r.PolicyControllerNamespace == "" || !slices.ContainsFunc(policies, func(p *admission.Policy) bool { return p.Kind == "ClusterImagePolicy" }) {
		return nil, nil
	}
	cm := &unstructured.Unstructured{}
	cm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	key := types.NamespacedName{Namespace: r.PolicyControllerNamespace, Name: admission.PolicyControllerConfigMap}
	if err := r.Get(ctx, key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("admission policies: reading ConfigMap %s: %w", key, err)
	}
	p, _, err := admission.Read("cluster ConfigMap "+key.String(), cm.Object)
	return p, err
}

// namespaceLabels are the labels of a namespace of the cluster, read live.
func (r *GateReconciler) namespaceLabels(ctx context.Context, name string) (map[string]string, bool, error) {
	return NamespaceLabels(ctx, r.Client, name)
}

// NamespaceLabels are the labels of the namespace of that name, read
// with c; false when there is none.
func NamespaceLabels(ctx context.Context, c client.Reader, name string) (map[string]string, bool, error) {
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return ns.Labels, true, nil
}
