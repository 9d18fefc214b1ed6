package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrustedRootMediaType is the media type of a Sigstore trusted_root.json
// that pregate reads (sigstore-go's root.TrustedRootMediaType01).
const TrustedRootMediaType = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

// TrustRoot is the key material of one Sigstore instance: its Fulcio
// certificate authorities, Rekor and certificate-transparency log keys and
// timestamp authorities. A TrustPolicy names one with spec.trustRootRef; a
// policy that names none trusts the Sigstore public-good instance.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tr,categories=pregate
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrustRoot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TrustRootSpec `json:"spec"`
}

// TrustRootSpec says where the key material comes from. Exactly one of
// PublicGood, TUF and TrustedRoot is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.publicGood), has(self.tuf), has(self.trustedRoot)].filter(x, x).size() == 1",message="exactly one of publicGood, tuf and trustedRoot must be set"
type TrustRootSpec struct {
	// PublicGood is the Sigstore public-good instance, its trusted root
	// fetched through its TUF repository from the root embedded in pregate.
	// +optional
	PublicGood *PublicGoodTrustRoot `json:"publicGood,omitempty"`

	// TUF is a private TUF repository that serves a trusted_root.json target.
	// +optional
	TUF *TUFTrustRoot `json:"tuf,omitempty"`

	// TrustedRoot is a trusted_root.json given directly, for a private
	// Sigstore deployment without TUF or an air-gapped cluster.
	// +optional
	TrustedRoot *TrustedRootSource `json:"trustedRoot,omitempty"`
}

// PublicGoodTrustRoot selects the Sigstore public-good instance. It has no
// fields.
type PublicGoodTrustRoot struct{}

// TUFTrustRoot is a TUF repository serving a trusted_root.json target.
type TUFTrustRoot struct {
	// Mirror is the base URL of the TUF repository. It must be https; http
	// is accepted only for localhost, 127.0.0.1 and [::1], for tests.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))",message="must be an https URL (http only for localhost, 127.0.0.1 and [::1])"
	Mirror string `json:"mirror"`

	// Root is the content of the repository's initial root.json, the trust
	// anchor from which every later root is verified.
	// +required
	// +kubebuilder:validation:MinLength=1
	Root string `json:"root"`
}

// TrustedRootSource is a trusted_root.json, inline or in a Secret. Exactly
// one of Data and SecretRef is set.
//
// +kubebuilder:validation:XValidation:rule="has(self.data) != has(self.secretRef)",message="exactly one of data and secretRef must be set"
type TrustedRootSource struct {
	// Data is the content of the trusted_root.json, whose mediaType is
	// "application/vnd.dev.sigstore.trustedroot+json;version=0.1".
	// +kubebuilder:validation:MinLength=1
	// +optional
	Data string `json:"data,omitempty"`

	// SecretRef names a Secret key that holds the trusted_root.json. Only the
	// controller reads Secrets.
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`
}

// +kubebuilder:object:root=true

// TrustRootList is a list of TrustRoots.
type TrustRootList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrustRoot `json:"items"`
}
