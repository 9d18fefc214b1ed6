package v1alpha1

import (
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxImageResults bounds Gate status.images; the controller keeps failures
// first.
const MaxImageResults = 100

// Gate verifies every revision of a Flux source, or of what a Flux
// Kustomization applies, before it goes out: it renders the revision, checks
// each image against the TrustPolicies and reports the verdict in its Ready
// condition.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=pregate
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.lastAttemptedRevision`
// +kubebuilder:printcolumn:name="Verified Revision",type=string,JSONPath=`.status.lastVerifiedRevision`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Gate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec GateSpec `json:"spec"`

	// +optional
	Status GateStatus `json:"status,omitempty"`
}

// GateSpec says what to gate and how. Exactly one of SourceRef and
// KustomizationRef is set.
//
// +kubebuilder:validation:XValidation:rule="has(self.sourceRef) != has(self.kustomizationRef)",message="exactly one of sourceRef and kustomizationRef must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.kustomizationRef) || (!has(self.path) && !has(self.postBuild))",message="path and postBuild are read from the Kustomization when kustomizationRef is set"
type GateSpec struct {
	// SourceRef is the Flux source whose revisions are gated.
	// +optional
	SourceRef *SourceReference `json:"sourceRef,omitempty"`

	// KustomizationRef is a Flux Kustomization: the Gate renders exactly what
	// it would apply (its source, path, images, patches and postBuild).
	// +optional
	KustomizationRef *KustomizationReference `json:"kustomizationRef,omitempty"`

	// Path is the directory of the source to render, relative to its root.
	// Defaults to the root.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Path string `json:"path,omitempty"`

	// PostBuild is the variable substitution applied after rendering, as in a
	// Flux Kustomization.
	// +optional
	PostBuild *PostBuild `json:"postBuild,omitempty"`

	// PolicySelector selects the TrustPolicies that apply, by label. Empty
	// selects all of them.
	// +optional
	PolicySelector *metav1.LabelSelector `json:"policySelector,omitempty"`

	// UnmatchedImages says what happens to an image that no selected
	// TrustPolicy matches.
	// +kubebuilder:default=deny
	// +optional
	UnmatchedImages UnmatchedImagesAction `json:"unmatchedImages,omitempty"`

	// Interval is how often the Gate checks the source for a new revision
	// and re-verifies the current one.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	Interval metav1.Duration `json:"interval"`

	// Timeout bounds verifying a revision's images, all of them, retries
	// and waits included. An image not verified in time leaves the
	// revision undecided (Ready=False, retried). Defaults to 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// ImageTimeout bounds verifying one image: resolving it and finding
	// its signatures, retries and waits included, against a registry that
	// answers each request just in time. Defaults to 1m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern="^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"
	// +optional
	ImageTimeout *metav1.Duration `json:"imageTimeout,omitempty"`

	// Suspend stops the Gate from gating new revisions; its status keeps the
	// last verdict.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// AllowGaps lists the kinds of coverage gap that do not block a
	// revision. A coverage gap is a part of the revision whose images the
	// Gate cannot see (a HelmRelease it cannot render, a path that fails
	// to build, an image still templated, ...); by default every gap
	// blocks: the Gate is Ready=False with reason CoverageGap. A Flux
	// Kustomization of another source is reported and never blocks.
	// +kubebuilder:validation:MaxItems=8
	// +listType=set
	// +optional
	AllowGaps []GapKind `json:"allowGaps,omitempty"`

	// RunningPods says what happens when the admission policies a
	// revision applies would no longer admit Pods that run in the cluster
	// now, the next time they are created (an eviction, a rollout, a node
	// drain): deny blocks the revision (the default), warn reports it.
	// +kubebuilder:default=deny
	// +optional
	RunningPods RunningPodsAction `json:"runningPods,omitempty"`

	// ImagePullSecrets name kubernetes.io/dockerconfigjson Secrets in the
	// Gate's namespace with credentials for the registries its images and
	// their signatures are in. They are tried before the controller's own
	// service account's image pull secrets.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ImagePullSecrets []LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Artifact, when set, republishes every revision the Gate allows as a
	// Flux ExternalArtifact served by the controller's artifact server, for
	// Flux Kustomizations (sourceRef) and HelmReleases (chartRef) to apply
	// instead of the source: only verified revisions reach them. A revision
	// the Gate blocks, or cannot decide, never replaces the last one it
	// allowed.
	// +optional
	Artifact *ArtifactSpec `json:"artifact,omitempty"`
}

// ArtifactSpec says how a Gate republishes the revisions it allows.
type ArtifactSpec struct {
	// Name of the ExternalArtifact, in the Gate's namespace. Defaults to
	// the Gate's name.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern="^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
	// +optional
	Name string `json:"name,omitempty"`

	// PinDigests republishes what the Gate rendered instead of the source's
	// files: every image the Gate verified is pinned to the digest it
	// verified (repository:tag@sha256:…), wherever it appears, so a tag
	// moved after the check changes nothing that runs. The Gate's path is
	// rendered into that path of the artifact, with its postBuild applied;
	// each Flux Kustomization of the same source it renders is rewritten
	// to apply its own rendered output from the artifact. Without it, the
	// source's files are republished byte for byte.
	// +optional
	PinDigests bool `json:"pinDigests,omitempty"`
}

// SourceReference names a Flux source.
type SourceReference struct {
	// APIVersion of the source. Defaults to the version the controller
	// serves for the kind.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`

	// Kind of the source.
	// +required
	// +kubebuilder:validation:Enum=GitRepository;OCIRepository;Bucket;ExternalArtifact
	Kind string `json:"kind"`

	// Name of the source.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the source. Defaults to the Gate's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// KustomizationReference names a Flux Kustomization.
type KustomizationReference struct {
	// Name of the Kustomization.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of the Kustomization. Defaults to the Gate's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// PostBuild is Flux Kustomization post-build variable substitution.
type PostBuild struct {
	// Substitute maps variable names to values.
	// +optional
	Substitute map[string]string `json:"substitute,omitempty"`

	// SubstituteFrom lists ConfigMaps and Secrets, in the Gate's namespace,
	// whose data are variables. Later entries win.
	// +optional
	SubstituteFrom []SubstituteReference `json:"substituteFrom,omitempty"`
}

// SubstituteReference names a ConfigMap or Secret of variables.
type SubstituteReference struct {
	// Kind is ConfigMap or Secret.
	// +required
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind"`

	// Name of the ConfigMap or Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Optional tolerates a missing ConfigMap or Secret.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// UnmatchedImagesAction is what happens to an image no TrustPolicy matches.
// +kubebuilder:validation:Enum=allow;warn;deny
type UnmatchedImagesAction string

// The actions for unmatched images.
const (
	UnmatchedImagesAllow UnmatchedImagesAction = "allow"
	UnmatchedImagesWarn  UnmatchedImagesAction = "warn"
	// UnmatchedImagesDeny blocks the revision. The default.
	UnmatchedImagesDeny UnmatchedImagesAction = "deny"
)

// RunningPodsAction is what happens when a revision's admission policies
// would no longer admit running Pods.
// +kubebuilder:validation:Enum=warn;deny
type RunningPodsAction string

// The actions for running Pods a revision would no longer admit.
const (
	RunningPodsWarn RunningPodsAction = "warn"
	// RunningPodsDeny blocks the revision. The default.
	RunningPodsDeny RunningPodsAction = "deny"
)

// GapKind is a kind of coverage gap.
// +kubebuilder:validation:Enum=HelmRelease;RemoteBase;BuildFailed;MissingPath;SubstituteFromMissing;UnresolvedImage;Encrypted;AdmissionUnpredicted
type GapKind string

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// GateStatus is the observed state of a Gate.
type GateStatus struct {
	meta.ReconcileRequestStatus `json:",inline"`

	// ObservedGeneration is the generation of the spec the status is about.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are Ready, Reconciling and Stalled, as in Flux.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastAttemptedRevision is the last revision the Gate checked.
	// +optional
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`

	// LastVerifiedRevision is the last revision the Gate allowed.
	// +optional
	LastVerifiedRevision string `json:"lastVerifiedRevision,omitempty"`

	// Summary counts the images of the last attempted revision.
	// +optional
	Summary *ImageSummary `json:"summary,omitempty"`

	// Images are the per-image results of the last attempted revision,
	// failures first, at most 100 of them.
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	Images []ImageResult `json:"images,omitempty"`

	// Gaps are the coverage gaps of the last attempted revision, blocking
	// ones first, at most 50 of them.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Gaps []CoverageGap `json:"gaps,omitempty"`

	// Admission are the admission policies' predicted answers for the
	// images of the last attempted revision that are not admissions
	// (denials first), at most 50 of them: the Kyverno and
	// policy-controller policies the revision applies.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Admission []AdmissionResult `json:"admission,omitempty"`

	// Running is what the admission policies after the last attempted
	// revision do with the Pods that run in the cluster, when it applies
	// admission policies or one is in Audit or Warn.
	// +optional
	Running *RunningStatus `json:"running,omitempty"`

	// Readiness is, for each admission policy in Audit or Warn, what it
	// would deny in Enforce, namespace by namespace, at most 20 policies.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	Readiness []PolicyReadiness `json:"readiness,omitempty"`

	// Artifact is what the Gate's ExternalArtifact serves, with
	// spec.artifact: the last revision the Gate allowed, republished.
	// +optional
	Artifact *meta.Artifact `json:"artifact,omitempty"`
}

// MaxRunningResults bounds Gate status.running.results, MaxReadiness
// status.readiness and MaxReadinessNamespaces each policy's namespaces.
const (
	MaxRunningResults      = 50
	MaxReadiness           = 20
	MaxReadinessNamespaces = 50
)

// RunningStatus counts the running Pods checked and lists the predictions
// for their images that are not admissions.
type RunningStatus struct {
	// Pods and Images are the running Pods and their distinct images
	// checked; Denied the Pods the revision's policies would no longer
	// admit.
	// +required
	Pods int `json:"pods"`
	// +required
	Images int `json:"images"`
	// +required
	Denied int `json:"denied"`

	// Results are the predictions that are not admissions, those the
	// revision brings first, at most 50.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Results []RunningResult `json:"results,omitempty"`
}

// RunningResult is an admission policy's predicted answer for the image
// of running Pods.
type RunningResult struct {
	AdmissionResult `json:",inline"`

	// Pods are some of the Pods (namespace/name) that run the image, at
	// most 20; PodCount is how many do.
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=317
	// +listType=atomic
	// +optional
	Pods []string `json:"pods,omitempty"`
	// +required
	PodCount int `json:"podCount"`

	// Before is the answer of the policies as the cluster has them now;
	// empty when none covered the image.
	// +optional
	Before string `json:"before,omitempty"`

	// Blocking says the denial is the revision's and blocks it.
	// +optional
	Blocking bool `json:"blocking,omitempty"`
}

// PolicyReadiness is what an admission policy in Audit or Warn would deny
// in Enforce.
type PolicyReadiness struct {
	// Policy is the admission policy and Engine the engine release.
	// +required
	Policy string `json:"policy"`
	// +required
	Engine string `json:"engine"`
	// Action is what it does now: Audit or Warn.
	// +required
	Action string `json:"action"`
	// Ready says it would deny nothing, and nothing is undecided.
	// +required
	Ready bool `json:"ready"`
	// Namespaces are its readiness in each namespace, at most 50.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	Namespaces []NamespaceReadiness `json:"namespaces,omitempty"`
}

// NamespaceReadiness is a policy's readiness for Enforce in a namespace.
type NamespaceReadiness struct {
	// Namespace is the namespace; empty for images of no known namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Images are the images checked there, WouldDeny those it would deny
	// in Enforce, Undecided those whose answer is not known.
	// +required
	Images int `json:"images"`
	// +required
	WouldDeny int `json:"wouldDeny"`
	// +required
	Undecided int `json:"undecided"`
	// Denied names some of the images it would deny, at most 10.
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	// +optional
	Denied []string `json:"denied,omitempty"`
}

// MaxGapResults bounds Gate status.gaps.
const MaxGapResults = 50

// MaxAdmissionResults bounds Gate status.admission.
const MaxAdmissionResults = 50

// AdmissionResult is an admission policy's predicted answer for one image.
type AdmissionResult struct {
	// Image is the image reference.
	// +required
	Image string `json:"image"`

	// Policy is the admission policy (ClusterPolicy/name,
	// ClusterImagePolicy/name) and Rule the rule in it.
	// +required
	Policy string `json:"policy"`
	// +required
	Rule string `json:"rule"`

	// Engine is the engine release predicted: kyverno@1.19,
	// policy-controller@0.15.
	// +required
	Engine string `json:"engine"`

	// Outcome is what the engine is predicted to do with a Pod running
	// the image: Deny, Warn, Audit or Undecided.
	// +required
	Outcome string `json:"outcome"`

	// NeverPasses says the image has a valid signature from the rule's
	// own signers that the engine cannot see or accept.
	// +optional
	NeverPasses bool `json:"neverPasses,omitempty"`

	// Message is the engine's answer, and for a rule that can never pass,
	// what exists, why the engine misses it and the fix.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Message string `json:"message,omitempty"`
}

// CoverageGap is a part of a revision whose images could not be seen.
type CoverageGap struct {
	// Kind is why: HelmRelease, OtherSource, RemoteBase, BuildFailed,
	// MissingPath, SubstituteFromMissing, UnresolvedImage, Encrypted or
	// AdmissionUnpredicted.
	// +required
	Kind string `json:"kind"`

	// Blocking says whether the gap keeps the revision from being
	// verified (it is neither informational nor allowed by
	// spec.allowGaps).
	// +required
	Blocking bool `json:"blocking"`

	// Object is the object concerned, Kind/namespace/name.
	// +optional
	Object string `json:"object,omitempty"`

	// File is where it is in the source, relative to its root.
	// +optional
	File string `json:"file,omitempty"`

	// Message explains the gap.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// ImageSummary counts images by result.
type ImageSummary struct {
	Total    int32 `json:"total"`
	Verified int32 `json:"verified"`
	Warned   int32 `json:"warned"`
	Denied   int32 `json:"denied"`
	// Gaps counts the coverage gaps; BlockingGaps those that block.
	// +optional
	Gaps int32 `json:"gaps,omitempty"`
	// +optional
	BlockingGaps int32 `json:"blockingGaps,omitempty"`
}

// ImageResult is the verdict on one image.
type ImageResult struct {
	// Image is the reference as the revision writes it, fully qualified.
	// +required
	Image string `json:"image"`

	// Digest is the digest that was verified (the tag resolved at
	// verification time).
	// +optional
	Digest string `json:"digest,omitempty"`

	// Pinned is the image pinned to that digest, repository:tag@digest:
	// what was verified, and what to run to run exactly that.
	// +optional
	Pinned string `json:"pinned,omitempty"`

	// Policy is the TrustPolicy that decided; empty when none matched.
	// +optional
	Policy string `json:"policy,omitempty"`

	// Result is Verified, Warned, Denied, Audited or Allowed.
	// +required
	Result ImageResultType `json:"result"`

	// Reason is a CamelCase reason, such as Unsigned or IdentityMismatch.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Message explains the result.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`

	// Locations are where the image appears, such as
	// "Deployment/apps/web container=web", at most 10 of them.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Locations []string `json:"locations,omitempty"`
}

// ImageResultType is the verdict on one image.
// +kubebuilder:validation:Enum=Verified;Warned;Denied;Audited;Allowed
type ImageResultType string

// The verdicts on one image.
const (
	// ImageVerified: every policy that matches the image verified it.
	ImageVerified ImageResultType = "Verified"
	// ImageWarned: a warn-mode policy failed, or no policy matches and
	// unmatched images warn.
	ImageWarned ImageResultType = "Warned"
	// ImageDenied: the image blocks the revision.
	ImageDenied ImageResultType = "Denied"
	// ImageAudited: only audit-mode policies failed.
	ImageAudited ImageResultType = "Audited"
	// ImageAllowed: no policy matches and unmatched images are allowed.
	ImageAllowed ImageResultType = "Allowed"
)

// GetConditions returns the status conditions, for Flux's condition helpers.
func (in *Gate) GetConditions() []metav1.Condition {
	return in.Status.Conditions
}

// SetConditions sets the status conditions, for Flux's condition helpers.
func (in *Gate) SetConditions(conditions []metav1.Condition) {
	in.Status.Conditions = conditions
}

// +kubebuilder:object:root=true

// GateList is a list of Gates.
type GateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Gate `json:"items"`
}
