package admission

import (
	"fmt"
	"strconv"
	"strings"
)

// Profile is one release of an admission engine: which of the engine's
// known quirks (the ways it finds or judges signatures other than pregate
// does) it has. Predictions follow the profile of the engine the cluster
// runs; without one they follow the newest release known.
type Profile struct {
	Engine Engine
	// Version is the release, "1.19" or "1.19.0": a minor version alone
	// stands for its newest patch release.
	Version string
	v       version
}

// String is the profile as --engine takes it: "kyverno@1.19".
func (p Profile) String() string { return string(p.Engine) + "@" + p.Version }

// Quirk is one way some releases of an engine find or judge signatures,
// where pregate's own reading differs: what the engine does, the releases
// that do it, and where that is in the engine's code or tracker.
type Quirk struct {
	// ID names the quirk in predictions and docs.
	ID     string
	Engine Engine
	// Since is the first release that does it; Until, when set, the first
	// that no longer does.
	Since, Until string
	// Does says what the engine does; Source where it is shown.
	Does, Source string
}

// The quirks' IDs.
const (
	QuirkCosignLegacyOnly       = "kyverno-cosign-legacy-only"
	QuirkReferrersAPIFirst      = "referrers-api-first"
	QuirkBundlesOnly            = "bundles-only"
	QuirkBundleArtifactType     = "kyverno-sigstorebundle-artifacttype"
	QuirkBundleMaxReferrers     = "kyverno-sigstorebundle-max-referrers"
	QuirkBundleAttestationSigns = "kyverno-sigstorebundle-attestation-signs"
	QuirkBundleNoKeys           = "kyverno-sigstorebundle-no-keys"
	QuirkBundlePublicGoodOnly   = "kyverno-sigstorebundle-public-good-only"
	QuirkIVPOLBundlesFirst      = "kyverno-ivpol-bundles-first"
	QuirkOneIdentity            = "bundle-one-identity"
	QuirkIVPOLKeyTlogCrash      = "kyverno-ivpol-key-tlog-crash"
	QuirkIVPOLKeyBundle         = "kyverno-ivpol-key-bundle-regression"
	QuirkIVPOLRequiredIgnored   = "kyverno-ivpol-required-ignored"
	QuirkPCLegacyUnlessBundle   = "policy-controller-legacy-unless-bundle"
	QuirkPCBundleKeylessOnly    = "policy-controller-bundle-keyless-only"
	QuirkPCBundleNoSignatures   = "policy-controller-bundle-no-signatures"
	QuirkPCAttestationsOnly     = "policy-controller-attestations-only"
)

// MaxBundleReferrers is how many referrers Kyverno's SigstoreBundle
// verifier takes before it fails the image.
const MaxBundleReferrers = 50

// quirks are the known quirks, each read in the engine's source at the
// release tags named (kyverno/kyverno v1.17.0-v1.19.0, sigstore/
// policy-controller v0.13.0-v0.15.1) or reported in the issue named, and
// tested in this package and gate/admission. docs/admission.md lists them.
var quirks = []Quirk{
	{ID: QuirkCosignLegacyOnly, Engine: Kyverno, Since: "1.10",
		Does: "verifyImages type: Cosign (the default) reads cosign's legacy format only, from the sha256-<digest>.sig and .att tags; " +
			"cosignOCI11 only swaps in cosign's experimental OCI 1.1 lookup of legacy signatures",
		Source: "kyverno pkg/image/verifiers/cpol/cosign/cosign.go (pkg/cosign/cosign.go in 1.17): its CheckOpts never set NewBundleFormat"},
	{ID: QuirkReferrersAPIFirst, Engine: Kyverno, Since: "1.13",
		Does: "Sigstore bundles are listed through the registry's referrers API, and the sha256-<digest> fallback tag is read only when the registry has no referrers API: " +
			"an API that answers, even with an empty list, hides the tag",
		Source: "go-containerregistry remote.Referrers (pkg/v1/remote/referrers.go), called by kyverno cpol/cosign/sigstore.go fetchBundles and by cosign GetBundles for ImageValidatingPolicy; kyverno#16678, kyverno#17343"},
	{ID: QuirkBundlesOnly, Engine: Kyverno, Since: "1.13",
		Does:   "verifyImages type: SigstoreBundle reads Sigstore bundles only, never cosign's legacy .sig and .att tags",
		Source: "kyverno pkg/image/verifiers/cpol/cosign/sigstore.go fetchBundles"},
	{ID: QuirkBundlesOnly, Engine: PolicyController, Since: "0.13",
		Does:   "an authority with signatureFormat: bundle reads Sigstore bundles only, never cosign's legacy .sig and .att tags",
		Source: "cosign pkg/cosign/verify.go verifyImageAttestationsSigstoreBundle, from policy-controller pkg/webhook/validator.go"},
	{ID: QuirkReferrersAPIFirst, Engine: PolicyController, Since: "0.13",
		Does:   "with signatureFormat: bundle, Sigstore bundles are listed through the registry's referrers API, and the sha256-<digest> fallback tag is read only when the registry has no referrers API",
		Source: "go-containerregistry remote.Referrers, called by cosign GetBundles from policy-controller pkg/webhook/validator.go"},
	{ID: QuirkBundleArtifactType, Engine: Kyverno, Since: "1.13",
		Does: "verifyImages type: SigstoreBundle keeps only the referrers whose listing gives an artifactType starting application/vnd.dev.sigstore.bundle; " +
			"cosign <= v3.0.6 (go-containerregistry < v0.21.6) listed its bundles in the fallback tag as application/vnd.oci.empty.v1+json",
		Source: "kyverno pkg/image/verifiers/cpol/cosign/sigstore.go fetchBundles (pkg/cosign/sigstore.go in 1.17); kyverno#16664"},
	{ID: QuirkBundleMaxReferrers, Engine: Kyverno, Since: "1.13",
		Does:   fmt.Sprintf("verifyImages type: SigstoreBundle fails an image with more than %d referrers of any kind: \"too many referrers found, max limit is %d\"", MaxBundleReferrers, MaxBundleReferrers),
		Source: "kyverno pkg/image/verifiers/cpol/cosign/sigstore.go fetchBundles (attestationlimit)"},
	{ID: QuirkBundleAttestationSigns, Engine: Kyverno, Since: "1.13",
		Does:   "verifyImages type: SigstoreBundle counts every verified bundle as a signature, an attestation-only one included",
		Source: "kyverno pkg/image/verifiers/cpol/cosign/sigstore.go fetchBundles: no predicate type filter for a signature rule"},
	{ID: QuirkBundleNoKeys, Engine: Kyverno, Since: "1.13", Until: "1.19",
		Does: "verifyImages type: SigstoreBundle verifies no key attestor: 1.17 fails it (\"there must be subject alternative name criteria\"), " +
			"1.18 ignores the key (\"no matching signatures found\")",
		Source: "kyverno pkg/cosign/sigstore.go buildPolicy (1.17), kyverno#15239 (1.18); keys verified from 1.19 (kyverno#16800)"},
	{ID: QuirkBundlePublicGoodOnly, Engine: Kyverno, Since: "1.13",
		Does:   "verifyImages type: SigstoreBundle ignores an attestor's roots, rekor and ctlog keys: its trust material is always the trusted root of the TUF repository Kyverno runs with (the Sigstore public-good instance unless --tufMirror and --tufRoot say otherwise)",
		Source: "kyverno pkg/image/verifiers/cpol/cosign/sigstore.go (no use of roots, rekor.pubkey, ctlog.pubkey)"},
	{ID: QuirkIVPOLBundlesFirst, Engine: Kyverno, Since: "1.17",
		Does: "an ImageValidatingPolicy cosign attestor verifies Sigstore bundles when any is listed, and cosign's legacy format only when none is; " +
			"any verified bundle, an attestation included, counts as a signature",
		Source: "kyverno pkg/image/verifiers/ivpol/cosign/verifier.go buildCheckOptsWithBundleDetection (cosign.GetBundles, then VerifyImageAttestations); kyverno#14652"},
	{ID: QuirkOneIdentity, Engine: Kyverno, Since: "1.17",
		Does:   "a keyless attestor with several identities fails every image it reads a Sigstore bundle of: \"unsupported: multiple identities are not supported at this time\"",
		Source: "cosign pkg/cosign/verify.go verificationOptions (the sigstore-go bundle path), from kyverno pkg/image/verifiers/ivpol/cosign/opts.go"},
	{ID: QuirkOneIdentity, Engine: PolicyController, Since: "0.13",
		Does:   "with signatureFormat: bundle, a keyless authority with several identities fails every image: \"unsupported: multiple identities are not supported at this time\"",
		Source: "cosign pkg/cosign/verify.go verificationOptions, from policy-controller pkg/webhook/validator.go"},
	{ID: QuirkIVPOLKeyTlogCrash, Engine: Kyverno, Since: "1.17", Until: "1.19",
		Does:   "an ImageValidatingPolicy key or certificate attestor that checks the transparency log crashes the admission controller on an image with Sigstore bundles (no trust material), so the request fails",
		Source: "kyverno#16435; fixed in 1.19.0 by kyverno#16298"},
	{ID: QuirkIVPOLKeyBundle, Engine: Kyverno, Since: "1.19.0",
		Does:   "an ImageValidatingPolicy key attestor fails an image whose signatures are Sigstore bundles only: \"accepted signatures do not match threshold, Found: 0, Expected 1\"",
		Source: "kyverno#17363 (a regression in 1.19.0, open; its fix kyverno#17380 was closed)"},
	{ID: QuirkIVPOLRequiredIgnored, Engine: Kyverno, Since: "1.17", Until: "1.19",
		Does:   "an ImageValidatingPolicy's validationConfigurations.required has no effect: an image its matchImageReferences cover that no validation verifies is admitted when the validations hold",
		Source: "kyverno#16853; fixed in 1.19.0 by kyverno#16987 (pkg/image/verification/evaluator/policy.go EnforceRequired)"},
	{ID: QuirkPCLegacyUnlessBundle, Engine: PolicyController, Since: "0.10",
		Does:   "a ClusterImagePolicy authority reads cosign's legacy format only, from the .sig and .att tags, unless it says signatureFormat: bundle",
		Source: "policy-controller pkg/webhook/validator.go checkOptsFromAuthority: NewBundleFormat only for signatureFormat \"bundle\""},
	{ID: QuirkPCBundleKeylessOnly, Engine: PolicyController, Since: "0.13",
		Does:   "signatureFormat: bundle takes keyless authorities only: \"when using the new bundle format, the authority must be keyless\"",
		Source: "policy-controller pkg/webhook/validator.go checkOptsFromAuthority"},
	{ID: QuirkPCBundleNoSignatures, Engine: PolicyController, Since: "0.13",
		Does: "with signatureFormat: bundle, an authority that lists no attestations fails every image, a cosign v3 signature included: " +
			"\"bundle support for image signatures is not yet implemented\"",
		Source: "cosign pkg/cosign/verify.go VerifyImageSignatures, from policy-controller pkg/webhook/validator.go validSignatures; policy-controller#1899, #1958 (fix #1968 open)"},
	{ID: QuirkPCAttestationsOnly, Engine: PolicyController, Since: "0.10",
		Does:   "an authority that lists attestations checks only them, not signatures",
		Source: "policy-controller pkg/webhook/validator.go ValidatePolicy: case len(authority.Attestations) > 0 comes before the signature check"},
}

// releases are the releases whose quirks are known, oldest first: each
// engine's newest is the default profile. A minor version stands for its
// newest patch, as read in its source: Kyverno 1.19 is 1.19.0, whose
// successors' changes are not known here.
var releases = map[Engine][]string{
	Kyverno:          {"1.17", "1.18", "1.19"},
	PolicyController: {"0.13", "0.14", "0.15"},
}

// Known are the profiles of every known release, by engine, oldest first.
func Known() []Profile {
	var out []Profile
	for _, e := range []Engine{Kyverno, PolicyController} {
		for _, v := range releases[e] {
			out = append(out, mustProfile(e, v))
		}
	}
	return out
}

// Newest is the profile of engine's newest known release.
func Newest(e Engine) Profile {
	rs := releases[e]
	return mustProfile(e, rs[len(rs)-1])
}

func mustProfile(e Engine, v string) Profile {
	p, err := ParseProfile(string(e) + "@" + v)
	if err != nil {
		panic(err) // the tables above are wrong
	}
	return p
}

// ParseProfile reads an engine release as --engine takes it:
// "kyverno@1.19", "policy-controller@v0.15.1"; an engine alone is its
// newest known release. A release older than the oldest known is refused:
// its quirks are not known.
func ParseProfile(s string) (Profile, error) {
	name, ver, found := strings.Cut(strings.TrimSpace(s), "@")
	e := Engine(strings.ToLower(name))
	rs, ok := releases[e]
	if !ok {
		return Profile{}, fmt.Errorf("engine %q: want kyverno or policy-controller", name)
	}
	if !found {
		return Newest(e), nil
	}
	ver = strings.TrimPrefix(ver, "v")
	v, err := parseVersion(ver)
	if err != nil {
		return Profile{}, fmt.Errorf("engine %s: version %q: %w", e, ver, err)
	}
	if v.less(bound(rs[0])) {
		return Profile{}, fmt.Errorf("engine %s: version %s is older than the oldest known (%s); pregate does not know how it reads signatures", e, ver, rs[0])
	}
	return Profile{Engine: e, Version: ver, v: v}, nil
}

// Has says whether the profile's release has the quirk.
func (p Profile) Has(id string) bool {
	_, ok := p.Quirk(id)
	return ok
}

// Quirk is the profile's quirk of that ID, if its release has it.
func (p Profile) Quirk(id string) (Quirk, bool) {
	for _, q := range quirks {
		if q.ID == id && q.Engine == p.Engine && q.in(p.v) {
			return q, true
		}
	}
	return Quirk{}, false
}

// Quirks are the quirks the profile's release has.
func (p Profile) Quirks() []Quirk {
	var out []Quirk
	for _, q := range quirks {
		if q.Engine == p.Engine && q.in(p.v) {
			out = append(out, q)
		}
	}
	return out
}

// Cite is the quirk in a sentence, for release p: what the engine does,
// and its source.
func (q Quirk) Cite(p Profile) string {
	s := "in " + p.String() + ", " + q.Does
	if q.Source != "" {
		s += " (" + q.Source + ")"
	}
	return s
}

// in says whether release v has the quirk.
func (q Quirk) in(v version) bool {
	if v.less(bound(q.Since)) {
		return false
	}
	return q.Until == "" || v.less(bound(q.Until))
}

// bound is a quirk's Since or Until: a minor version alone is its first
// patch release.
func bound(s string) version {
	v, _ := parseVersion(s)
	if v.patch == anyPatch {
		v.patch = 0
	}
	return v
}

// Profiles are the engine releases a cluster runs, one per engine.
type Profiles map[Engine]Profile

// ParseProfiles reads --engine values; an engine given twice is an error.
func ParseProfiles(values []string) (Profiles, error) {
	out := Profiles{}
	for _, s := range values {
		p, err := ParseProfile(s)
		if err != nil {
			return nil, err
		}
		if prev, ok := out[p.Engine]; ok {
			return nil, fmt.Errorf("engine %s given twice (%s, %s)", p.Engine, prev, p)
		}
		out[p.Engine] = p
	}
	return out, nil
}

// For is the profile of engine e: the one given, else the newest known.
func (ps Profiles) For(e Engine) Profile {
	if p, ok := ps[e]; ok {
		return p
	}
	return Newest(e)
}

// version is a release number; a missing patch is the newest patch of its
// minor.
type version struct{ major, minor, patch int }

const anyPatch = 1 << 30

func parseVersion(s string) (version, error) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return version{}, fmt.Errorf("want MAJOR.MINOR or MAJOR.MINOR.PATCH")
	}
	var n [3]int
	n[2] = anyPatch
	for i, part := range parts {
		v, err := strconv.Atoi(part)
		if err != nil || v < 0 || v >= anyPatch {
			return version{}, fmt.Errorf("want MAJOR.MINOR or MAJOR.MINOR.PATCH")
		}
		n[i] = v
	}
	return version{n[0], n[1], n[2]}, nil
}

func (v version) less(w version) bool {
	if v.major != w.major {
		return v.major < w.major
	}
	if v.minor != w.minor {
		return v.minor < w.minor
	}
	return v.patch < w.patch
}
