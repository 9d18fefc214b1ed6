// Package v1alpha1 holds the pregate API, group gate.pregate.dev, version
// v1alpha1: Gate (what to gate), TrustPolicy (which signatures an image
// needs) and TrustRoot (whose Sigstore instance to trust). The same
// TrustPolicy and TrustRoot objects are CRDs for the controller and YAML
// files for the CLI; package config loads, defaults and validates them.
//
// The types register with apimachinery's runtime.Scheme, not
// controller-runtime's, so that this package stays free of cluster clients.
//
// +kubebuilder:object:generate=true
// +groupName=gate.pregate.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every kind in this package.
var GroupVersion = schema.GroupVersion{Group: "gate.pregate.dev", Version: "v1alpha1"}

// The kinds of this package.
const (
	GateKind        = "Gate"
	TrustPolicyKind = "TrustPolicy"
	TrustRootKind   = "TrustRoot"
)

var (
	// SchemeBuilder registers the kinds of this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Gate{}, &GateList{},
		&TrustPolicy{}, &TrustPolicyList{},
		&TrustRoot{}, &TrustRootList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
