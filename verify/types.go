// Package verify checks one container image at a time: it resolves the
// reference to a digest, discovers every signature and attestation stored
// for that digest in the registry (OCI 1.1 referrers, the sha256-<hex>
// fallback tag, the legacy .sig and .att tags), and verifies them with
// sigstore-go against a policy's authorities and trust material.
//
// Discovery (registry I/O) and checking (pure, given trust material) are
// separate: a Registry produces a Discovery, a Policy judges it.
package verify

import (
	"time"

	"github.com/pregate/pregate/gate"
)

// Subject is the image being verified, always by digest.
type Subject struct {
	// Ref is the reference as rendered ("ghcr.io/acme/app:1.2").
	Ref string `json:"ref"`
	// Repository is registry/repository ("ghcr.io/acme/app").
	Repository string `json:"repository"`
	// Digest is the manifest or index digest the reference resolved to
	// ("sha256:…"). Every verdict is about this digest.
	Digest string `json:"digest"`
	// MediaType and Size describe the resolved manifest.
	MediaType string `json:"mediaType,omitempty"`
	Size      int64  `json:"size,omitempty"`

	// named: the digest is what a HEAD answer named for a tag, the
	// manifest unread (see Registry.confirm).
	named bool
}

// Step names the kind of a registry request made during verification.
type Step string

// The registry requests verification makes.
const (
	ResolveStep        Step = "resolve"         // HEAD/GET the reference to find its digest
	ReferrersStep      Step = "referrers"       // GET /v2/<repo>/referrers/<digest>
	FallbackTagStep    Step = "fallback-tag"    // GET the sha256-<hex> referrers tag index
	SignatureTagStep   Step = "signature-tag"   // GET the legacy sha256-<hex>.sig manifest
	AttestationTagStep Step = "attestation-tag" // GET the legacy sha256-<hex>.att manifest
	// IndexAttestationStep: GET the image's own index, for the attestation
	// manifests buildx stores in it (its --provenance and --sbom).
	IndexAttestationStep Step = "index-attestation"
	ManifestStep         Step = "manifest" // GET one referrer's manifest
	BlobStep             Step = "blob"     // GET a layer blob
)

// Lookup records one registry request and what came of it.
type Lookup struct {
	Step Step `json:"step"`
	// URL is the request URL, without credentials or query secrets.
	URL string `json:"url"`
	// Status is the final HTTP status, 0 when no answer came.
	Status int `json:"status,omitempty"`
	// Found is how many descriptors (or artifacts) the answer held.
	Found int `json:"found"`
	// Err says why the request failed; empty on success and on a 404
	// that only means "nothing here".
	Err      string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
	// Attempts is how many times the request was sent: more than one
	// when the registry asked to retry (429, 5xx) or the connection
	// failed.
	Attempts int `json:"attempts,omitempty"`
}

// Failed says whether the lookup failed (as opposed to found nothing).
func (l Lookup) Failed() bool { return l.Err != "" }

// Format is how a signature or attestation is stored.
type Format string

// The storage formats verify reads.
const (
	// BundleFormat: a Sigstore bundle (v0.1–v0.3) as a referrer's single
	// layer, media type application/vnd.dev.sigstore.bundle*; cosign v3's
	// signatures and attestations.
	BundleFormat Format = "sigstore-bundle"
	// SimpleSigningFormat: a legacy cosign signature layer of a .sig
	// manifest: the simple-signing payload, with the signature, certificate,
	// chain, Rekor bundle and RFC 3161 timestamp in its annotations.
	SimpleSigningFormat Format = "cosign-simplesigning"
	// DSSEFormat: a legacy cosign attestation layer of a .att manifest: a
	// DSSE envelope, with its Rekor bundle and certificate in annotations.
	DSSEFormat Format = "cosign-dsse"
	// InTotoFormat: an unsigned in-toto statement, media type
	// application/vnd.in-toto+json, as buildx stores provenance and SBOMs
	// in an attestation manifest of the image index. Nothing signs it: it
	// is reported, and counts as no attestation.
	InTotoFormat Format = "in-toto"
)

// Artifact is one signature or attestation found for a Subject.
type Artifact struct {
	// Source is where it was found: ReferrersStep, FallbackTagStep,
	// SignatureTagStep or AttestationTagStep.
	Source Step `json:"source"`
	// Manifest is the digest of the manifest that carries it.
	Manifest string `json:"manifest"`
	// ArtifactType is what the index that listed the manifest (the
	// referrers API or the fallback tag) said its artifactType is, as the
	// registry gave it, at most 256 bytes; empty for the legacy tags.
	// Engines that filter referrers by it miss an artifact whose listing
	// says something else (Reads.ArtifactTypePrefix).
	ArtifactType string `json:"artifactType,omitempty"`
	// Layer is the digest of the layer that holds Content.
	Layer  string `json:"layer,omitempty"`
	Format Format `json:"format"`
	// MediaType is the layer's media type.
	MediaType string `json:"mediaType"`
	// Content is the layer: bundle JSON, simple-signing payload or DSSE
	// envelope JSON.
	Content []byte `json:"-"`
	// Annotations are the layer's annotations (legacy formats keep the
	// signature and its verification material there).
	Annotations map[string]string `json:"annotations,omitempty"`
	// Err is set when the artifact was found but could not be read (a
	// malformed manifest, a missing blob). Such an artifact never verifies.
	Err string `json:"error,omitempty"`
	// Unfetched says the artifact was listed but its content could not be
	// fetched (an error answer, a transport failure, a digest mismatch, a
	// bound on what discovery reads): what it holds is unknown, so it may
	// be the signature that verifies. Err says why.
	Unfetched bool `json:"unfetched,omitempty"`
}

// Discovery is everything found in the registry for one Subject.
type Discovery struct {
	Subject   Subject    `json:"subject"`
	Artifacts []Artifact `json:"artifacts"`
	// Lookups lists every request: the places read in a fixed order
	// (referrers, fallback tag, .sig tag, .att tag), then the manifests and
	// blobs they led to, sorted by URL.
	Lookups []Lookup `json:"lookups"`

	// What discovery has used of its budget, and the manifests it has
	// opened (by digest), for a later stage to go on from.
	spent  budget
	opened map[string]bool
}

// Failures returns the lookups that failed.
func (d Discovery) Failures() []Lookup {
	var out []Lookup
	for _, l := range d.Lookups {
		if l.Failed() {
			out = append(out, l)
		}
	}
	return out
}

// Status is the outcome of checking one image against one policy: the
// gate's statuses, which only Verified passes.
type Status = gate.Status

// The outcomes (see gate.Status).
const (
	// Verified: a signature satisfied one of the policy's authorities, and
	// every required attestation was found and verified.
	Verified = gate.Verified
	// NoSignatures: every lookup succeeded and no signature was found.
	NoSignatures = gate.NoSignatures
	// LookupFailed: nothing verified and at least one lookup failed, so
	// "no signature" cannot be concluded.
	LookupFailed = gate.LookupFailed
	// IdentityMismatch: a signature verified cryptographically but its
	// signer is not one the policy trusts.
	IdentityMismatch = gate.IdentityMismatch
	// InvalidSignature: signatures were found but none verified (bad
	// signature, another digest, untrusted certificate, malformed bundle).
	InvalidSignature = gate.InvalidSignature
	// AttestationMissing: the image is signed but a required attestation
	// was not found or did not verify.
	AttestationMissing = gate.AttestationMissing
	// StaticFail: the policy's static authority fails every image.
	StaticFail = gate.StaticFail
	// ResolveFailed: the reference could not be resolved to a digest.
	ResolveFailed = gate.ResolveFailed
)

// Consideration records why one artifact was accepted or rejected.
type Consideration struct {
	// Artifact is the manifest digest (and source) it came from.
	Artifact string `json:"artifact"`
	Source   Step   `json:"source"`
	// ArtifactType is what the index that listed it said it is
	// (Artifact.ArtifactType).
	ArtifactType string `json:"artifactType,omitempty"`
	Format       Format `json:"format"`
	// Kind is "signature" or the attestation's predicate type.
	Kind     string `json:"kind"`
	Accepted bool   `json:"accepted"`
	// Authority names the authority that accepted it, or that came
	// closest when rejected.
	Authority string `json:"authority,omitempty"`
	// Reason says why, in one line: the signer's identity when accepted,
	// the first failed check when rejected.
	Reason string `json:"reason"`
	// Signer is the certificate identity (SAN and issuer) or key hint.
	Signer string `json:"signer,omitempty"`
	// Conditions are what the conditions of a required attestation
	// evaluated to on its statement, when the policy has any.
	Conditions []ConditionValue `json:"conditions,omitempty"`
}

// Result is the outcome of checking one image against one policy.
type Result struct {
	Policy  string  `json:"policy"`
	Subject Subject `json:"subject"`
	Status  Status  `json:"status"`
	// Detail explains Status in one deterministic line.
	Detail     string          `json:"detail"`
	Considered []Consideration `json:"considered,omitempty"`
	Lookups    []Lookup        `json:"lookups,omitempty"`
}
