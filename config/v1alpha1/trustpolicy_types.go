package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds on the lists of a TrustPolicy. The CRD enforces them with maxItems
// and package config with the same numbers; they also keep the cost of the
// CEL rules on list items within what the API server accepts.
const (
	MaxImages           = 64
	MaxAuthorities      = 16
	MaxIdentities       = 16
	MaxAttestations     = 16
	MaxImagePullSecrets = 16
)

// TrustPolicy says which signatures and attestations the images it matches
// must carry. Every TrustPolicy that matches an image must pass; within one
// policy, any one of its authorities may satisfy it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tp,categories=pregate
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Trust Root",type=string,JSONPath=`.spec.trustRootRef`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrustPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TrustPolicySpec `json:"spec"`
}

// TrustPolicySpec is the desired behaviour of a TrustPolicy.
type TrustPolicySpec struct {
	// Images are the globs of the images this policy applies to, matched
	// against fully-qualified references with Sigstore policy-controller's
	// semantics: "*" matches within one path segment, "**" across segments,
	// and the tag or digest is part of the name ("ghcr.io/acme/**",
	// "index.docker.io/library/nginx:*"). An image matched by any glob is
	// subject to the policy.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	Images []ImagePattern `json:"images"`

	// Mode says what a failure means: enforce blocks the revision, warn lets
	// it through with a warning, audit only records the result.
	// +kubebuilder:default=enforce
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// TrustRootRef names the TrustRoot whose Sigstore instance signed the
	// images. Empty means the Sigstore public-good instance.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	TrustRootRef string `json:"trustRootRef,omitempty"`

	// Authorities are the signers this policy trusts: an image passes when
	// any one of them verifies a signature over its digest.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	Authorities []Authority `json:"authorities"`

	// Attestations are the in-toto attestations an image must also carry,
	// each signed by one of the authorities. Every one is required.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Attestations []Attestation `json:"attestations,omitempty"`

	// ImagePullSecrets name kubernetes.io/dockerconfigjson Secrets with
	// credentials for the registries of the images this policy covers. The
	// controller reads them; the CLI uses the local docker configuration.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ImagePullSecrets []SecretReference `json:"imagePullSecrets,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
}

// ImagePattern selects images by glob.
type ImagePattern struct {
	// Glob is a glob over fully-qualified image references.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Glob string `json:"glob"`
}

// Mode is what a failing TrustPolicy does to a revision.
// +kubebuilder:validation:Enum=enforce;warn;audit
type Mode string

const (
	// ModeEnforce blocks the revision. The default.
	ModeEnforce Mode = "enforce"
	// ModeWarn lets the revision through and reports a warning.
	ModeWarn Mode = "warn"
	// ModeAudit lets the revision through and only records the result.
	ModeAudit Mode = "audit"
)

// Authority is one signer a TrustPolicy trusts. Exactly one of Keyless, Key
// and Static is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.keyless), has(self.key), has(self.static)].filter(x, x).size() == 1",message="exactly one of keyless, key and static must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.static) || !((has(self.insecureIgnoreTlog) && self.insecureIgnoreTlog) || (has(self.insecureIgnoreSCT) && self.insecureIgnoreSCT) || (has(self.signedTimestamps) && self.signedTimestamps))",message="a static authority verifies no signature: insecureIgnoreTlog, insecureIgnoreSCT and signedTimestamps do not apply"
// +kubebuilder:validation:XValidation:rule="!has(self.key) || !has(self.insecureIgnoreSCT) || !self.insecureIgnoreSCT",message="insecureIgnoreSCT applies only to keyless authorities"
type Authority struct {
	// Name identifies the authority in results and messages.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Keyless trusts Fulcio certificates issued to the given identities.
	// +optional
	Keyless *KeylessAuthority `json:"keyless,omitempty"`

	// Key trusts signatures made with a public key.
	// +optional
	Key *KeyAuthority `json:"key,omitempty"`

	// Static passes or fails every image without looking at signatures.
	// +optional
	Static *StaticAuthority `json:"static,omitempty"`

	// InsecureIgnoreTlog accepts signatures that have no transparency-log
	// entry. Without a log entry or signed timestamp, a keyless signature
	// cannot be tied to the certificate's validity period.
	// +optional
	InsecureIgnoreTlog bool `json:"insecureIgnoreTlog,omitempty"`

	// InsecureIgnoreSCT accepts Fulcio certificates without an embedded
	// signed certificate timestamp (certificate-transparency proof).
	// Keyless authorities only.
	// +optional
	InsecureIgnoreSCT bool `json:"insecureIgnoreSCT,omitempty"`

	// SignedTimestamps requires RFC 3161 timestamps from a timestamp
	// authority of the trust root.
	// +optional
	SignedTimestamps bool `json:"signedTimestamps,omitempty"`
}

// KeylessAuthority trusts certificates from the trust root's Fulcio whose
// issuer and subject match one of its identities.
type KeylessAuthority struct {
	// Identities are the accepted certificate identities; any one matches.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	Identities []Identity `json:"identities"`
}

// Identity is one accepted certificate identity: the OIDC issuer and the
// subject (the certificate's SAN: a workflow URI, an email address, ...),
// each given exactly or as a regular expression. A regular expression (RE2
// syntax) must match the whole issuer or subject: it is anchored at both
// ends.
//
// +kubebuilder:validation:XValidation:rule="has(self.issuer) != has(self.issuerRegExp)",message="exactly one of issuer and issuerRegExp must be set"
// +kubebuilder:validation:XValidation:rule="has(self.subject) != has(self.subjectRegExp)",message="exactly one of subject and subjectRegExp must be set"
type Identity struct {
	// Issuer is the exact OIDC issuer, such as
	// "https://token.actions.githubusercontent.com".
	// +kubebuilder:validation:MinLength=1
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// IssuerRegExp is a regular expression the whole OIDC issuer must match.
	// +kubebuilder:validation:MinLength=1
	// +optional
	IssuerRegExp string `json:"issuerRegExp,omitempty"`

	// Subject is the exact certificate subject, such as
	// "https://github.com/acme/app/.github/workflows/release.yaml@refs/heads/main".
	// +kubebuilder:validation:MinLength=1
	// +optional
	Subject string `json:"subject,omitempty"`

	// SubjectRegExp is a regular expression the whole certificate subject
	// must match.
	// +kubebuilder:validation:MinLength=1
	// +optional
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// KeyAuthority trusts signatures made with one public key, given inline or
// in a Secret. Exactly one of Data and SecretRef is set.
//
// +kubebuilder:validation:XValidation:rule="has(self.data) != has(self.secretRef)",message="exactly one of data and secretRef must be set"
type KeyAuthority struct {
	// Data is the PEM-encoded public key (ECDSA, RSA or Ed25519).
	// +kubebuilder:validation:MinLength=1
	// +optional
	Data string `json:"data,omitempty"`

	// SecretRef names a Secret key that holds the PEM-encoded public key.
	// Only the controller reads Secrets; the CLI reports an authority that
	// uses one as unusable.
	// +optional
	SecretRef *SecretKeySelector `json:"secretRef,omitempty"`

	// HashAlgorithm is the digest algorithm the signature was made over.
	// +kubebuilder:default=sha256
	// +optional
	HashAlgorithm HashAlgorithm `json:"hashAlgorithm,omitempty"`
}

// HashAlgorithm is the digest algorithm of a key-based signature, as cosign
// and policy-controller name it.
// +kubebuilder:validation:Enum=sha224;sha256;sha384;sha512
type HashAlgorithm string

// The hash algorithms of key-based signatures.
const (
	SHA224 HashAlgorithm = "sha224"
	SHA256 HashAlgorithm = "sha256"
	SHA384 HashAlgorithm = "sha384"
	SHA512 HashAlgorithm = "sha512"
)

// SecretKeySelector names one key of a Secret.
type SecretKeySelector struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// Key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// StaticAuthority decides without looking at signatures.
type StaticAuthority struct {
	// Action is pass (accept every matching image) or fail (reject it).
	// +required
	Action StaticAction `json:"action"`

	// Message is reported for a failing image.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// StaticAction is the decision of a static authority.
// +kubebuilder:validation:Enum=pass;fail
type StaticAction string

// The decisions of a static authority.
const (
	StaticActionPass StaticAction = "pass"
	StaticActionFail StaticAction = "fail"
)

// Attestation is an in-toto attestation the images must carry, signed by one
// of the policy's authorities.
type Attestation struct {
	// Name identifies the attestation in results and messages.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// PredicateType is the in-toto predicate type URI, such as
	// "https://slsa.dev/provenance/v1".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	PredicateType string `json:"predicateType"`

	// Conditions must all hold on the verified in-toto statement for the
	// attestation to count: CEL expressions over statement (the whole
	// statement), predicate (its predicate), predicateType, subject and
	// now (the time of the check), with the Kubernetes CEL libraries.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Conditions []AttestationCondition `json:"conditions,omitempty"`
}

// AttestationCondition is a CEL expression an attestation's statement must
// hold true, and what to say when it does not.
type AttestationCondition struct {
	// Expression is a CEL bool, such as
	// "predicate.buildDefinition.externalParameters.workflow.ref == 'refs/heads/main'".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`

	// Message says what a statement that does not hold it lacks.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// +kubebuilder:object:root=true

// TrustPolicyList is a list of TrustPolicies.
type TrustPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrustPolicy `json:"items"`
}
