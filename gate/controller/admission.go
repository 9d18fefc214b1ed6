package controller

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

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
	return out, nil
}
