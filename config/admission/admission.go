// Package admission reads the admission policies a cluster enforces image
// signatures with, so that pregate can predict what their engine will do
// with a revision's images before it is applied: Kyverno ClusterPolicy and
// Policy verifyImages rules, and Sigstore policy-controller
// ClusterImagePolicies.
//
// A policy becomes Rules: each says which images it covers, with which
// signers (verify.Authority), how its engine reads signatures (Format) and
// what a failure does (Action). What a rule asks that pregate does not
// evaluate is said in Rule.Unsupported, and the rule is then never taken
// to pass. The package reads the given bytes only; trust material comes
// from the caller.
package admission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// Engine is the admission controller that enforces a policy.
type Engine string

// The engines whose policies are read.
const (
	Kyverno          Engine = "kyverno"
	PolicyController Engine = "policy-controller"
)

// Action is what the engine does with an image that fails a rule.
type Action string

// The actions.
const (
	// Enforce: the Pod is denied.
	Enforce Action = "Enforce"
	// Audit: the Pod is admitted and the failure reported.
	Audit Action = "Audit"
	// Warn: the Pod is admitted with a warning (policy-controller mode:
	// warn).
	Warn Action = "Warn"
)

// Format is how an engine looks for an image's signatures under a rule:
// each reads some places and formats a registry keeps them in, and no
// other.
type Format string

// The formats.
const (
	// KyvernoCosign is a ClusterPolicy verifyImages entry of type Cosign,
	// the default: cosign's legacy format only, from the sha256-<hex>.sig
	// and .att tags (pkg/image/verifiers/cpol/cosign/cosign.go builds its
	// CheckOpts without NewBundleFormat).
	KyvernoCosign Format = "Cosign"
	// KyvernoSigstoreBundle is type SigstoreBundle: Sigstore bundles
	// listed by the referrers API, or its fallback tag
	// (cpol/cosign/sigstore.go fetchBundles).
	KyvernoSigstoreBundle Format = "SigstoreBundle"
	// KyvernoNotary is type Notary: Notation signatures, which pregate does
	// not verify.
	KyvernoNotary Format = "Notary"
	// LegacyFormat is a ClusterImagePolicy authority without
	// signatureFormat, or "legacy": the .sig and .att tags
	// (pkg/webhook/validator.go checkOptsFromAuthority sets
	// NewBundleFormat only for "bundle").
	LegacyFormat Format = "legacy"
	// BundleFormat is signatureFormat: bundle: Sigstore bundles, keyless
	// authorities only.
	BundleFormat Format = "bundle"
)

// Policy is one admission policy object.
type Policy struct {
	Engine Engine
	// Kind, Namespace and Name identify the object.
	Kind, Namespace, Name string
	// File is where it was read from, if known.
	File  string
	Rules []Rule
	// TrustRoot is set for a policy-controller TrustRoot, which has no
	// rules: the trust material it names (see ResolveTrustRoots).
	TrustRoot *NamedTrust
	// NoMatch is set for policy-controller's configuration ConfigMap,
	// which has no rules: its no-match-policy.
	NoMatch NoMatch
}

// ID is Kind/name, or Kind/namespace/name for a namespaced policy.
func (p Policy) ID() string {
	if p.Namespace == "" {
		return p.Kind + "/" + p.Name
	}
	return p.Kind + "/" + p.Namespace + "/" + p.Name
}

// inactive makes r apply to no object, for why.
func (r *Rule) inactive(why string) {
	r.Inactive = why
	r.Match.All = append(r.Match.All, Filter{Never: true})
}

// Rule is one image check of a policy: a verifyImages entry of a Kyverno
// rule, or a policy-controller authority.
type Rule struct {
	// Policy is the policy's ID; Name names the rule within it
	// ("verify-image", "verify-image[1]", "authorities[0]").
	Policy, Name string
	Engine       Engine
	// Images are the image patterns the rule covers, in the engine's own
	// syntax; Skip those it leaves out (Kyverno skipImageReferences).
	Images, Skip []string
	// regexps are the identity regular expressions as the policy writes
	// them, for Lint.
	regexps []string
	// imageExpressions are an ImageValidatingPolicy's CEL
	// matchImageReferences: each covers the images it holds true for.
	imageExpressions []imageExpression
	// matchConditions are an ImageValidatingPolicy's matchConditions
	// (ConditionsHold).
	matchConditions []matchCondition
	// Match says which Pods the rule applies to.
	Match Match
	// Format is how the engine reads the image's signatures.
	Format Format
	// RequiresDigest: the engine denies an image the Pod names without a
	// digest (Kyverno verifyDigest with mutateDigest: false).
	RequiresDigest bool
	// NotRequired: an ImageValidatingPolicy whose validations hold
	// admits an image none of them verified
	// (validationConfigurations.required: false; QuirkIVPOLRequiredIgnored
	// before Kyverno 1.19).
	NotRequired bool
	// Authorities are the signers any one of which satisfies the rule;
	// Trust the trust material the policy gives them (zero: the default).
	Authorities []verify.Authority
	Trust       Trust
	// AttestorSets, when set, are what a Kyverno rule needs beyond any one
	// of Authorities: every set must pass, each with at least Need of its
	// entries verifying.
	AttestorSets []AttestorSet
	// TrustRoots are the policy-controller TrustRoots the rule names,
	// whose trust ResolveTrustRoots puts in Trust.
	TrustRoots TrustRootRefs
	// Attestations are the attestations the rule requires.
	Attestations []verify.Attestation
	// Action is what a failure does; ActionOverrides change it in some
	// namespaces (Kyverno validationFailureActionOverrides).
	Action          Action
	ActionOverrides []ActionOverride
	// Unsupported says what the rule asks that pregate does not evaluate;
	// such a rule is never predicted to pass.
	Unsupported []string
	// Inactive says why the rule never acts at admission (a policy for
	// background scans only, or for JSON payloads): it applies to no
	// object.
	Inactive string

	// An ImageValidatingPolicy's named signers, the predicate types of its
	// named attestations and its CEL validations: the image passes when
	// every validation holds.
	Attestors        []Attestor
	AttestationTypes map[string]string
	Variables        []Variable
	Validations      []Validation
	// ImageExtractors are an ImageValidatingPolicy's images: named CEL
	// lists of images over the object, which validations read as
	// images.<name> beside the Pod's containers, initContainers and
	// ephemeralContainers.
	ImageExtractors []Variable
}

// AttestorSet is a Kyverno attestor set: Need of its entries must verify
// the image (count; all of them by default).
type AttestorSet struct {
	Need    int
	Entries []AttestorEntry
}

// AttestorEntry is one entry of a set: any of its authorities (a key entry
// may hold several keys) verifies it.
type AttestorEntry struct {
	Name        string
	Authorities []verify.Authority
}

// ActionOverride is the action of a rule in some namespaces (Kyverno
// wildcards).
type ActionOverride struct {
	Action     Action
	Namespaces []string
}

// ActionIn is the rule's action for a Pod in namespace: the first
// override naming it, else Action.
func (r Rule) ActionIn(namespace string) Action {
	for _, o := range r.ActionOverrides {
		for _, ns := range o.Namespaces {
			if wildcard(ns, namespace) {
				return o.Action
			}
		}
	}
	return r.Action
}

// ID names the rule in messages: "ClusterPolicy/verify-image rule
// verify-image".
func (r Rule) ID() string { return r.Policy + " rule " + r.Name }

// labelSelector reads a label selector as Kubernetes does.
func labelSelector(raw any) (labels.Selector, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var ls metav1.LabelSelector
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ls); err != nil {
		return nil, err
	}
	return metav1.LabelSelectorAsSelector(&ls)
}

// wildcard matches s against a Kyverno wildcard pattern: "*" is any run of
// characters ("/" included), "?" any one character, everything else is
// literal (kyverno/kyverno ext/wildcard). Greedy with one backtrack point,
// so it is linear in practice whatever the pattern.
func wildcard(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// wildcardRegexp turns a Kyverno wildcard into an anchored regular
// expression, for a keyless subject or issuer with "*" in it.
func wildcardRegexp(pattern string) string {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexpQuote(string(r)))
		}
	}
	b.WriteString("$")
	return b.String()
}

func regexpQuote(s string) string {
	const special = `\.+()|[]{}^$*?`
	if strings.ContainsAny(s, special) {
		return `\` + s
	}
	return s
}

// unanchored turns an engine's regular expression, which matches anywhere
// in the value unless it says otherwise (Kyverno's, and cosign's identity
// regexps, which policy-controller and ImageValidatingPolicies use, call
// regexp.MatchString), into one that verify (which anchors its
// expressions) matches the same way. Empty stays empty.
func unanchored(re string) string {
	if re == "" {
		return ""
	}
	return fmt.Sprintf(".*(?:%s).*", re)
}

// Covers says whether the rule covers an image, in its engine's own
// pattern syntax. Kyverno matches imageReferences and skipImageReferences
// with its wildcards ("*" crosses "/") against the image's reference;
// an ImageValidatingPolicy matches the image as the Pod names it
// (CoversRef); policy-controller matches its globs (PolicyControllerGlob)
// against the name its webhook sees, registry/repository@digest with no
// tag. A pattern that does not compile covers nothing.
func (r Rule) Covers(img gate.Image) bool {
	if r.Format == KyvernoIVPOL {
		return slices.ContainsFunc(RawRefs(img), r.CoversRef)
	}
	full := repositoryName(img)
	if img.Tag != "" {
		full += ":" + img.Tag
	}
	if img.Digest != "" {
		full += "@" + img.Digest
	}
	match := func(pattern string) bool {
		if r.Engine == PolicyController {
			re, err := policyControllerGlob(pattern)
			return err == nil && re.MatchString(WebhookName(img))
		}
		return wildcard(pattern, img.Ref) || wildcard(pattern, full)
	}
	for _, s := range r.Skip {
		if match(s) {
			return false
		}
	}
	return slices.ContainsFunc(r.Images, match)
}

// CoversRef says whether an ImageValidatingPolicy covers an image named
// raw, as a Pod names it: its matchImageReferences globs ("*" crosses
// "/") and CEL expressions over ref are matched against the name as
// written (kyverno pkg/cel/matching MatchImage).
func (r Rule) CoversRef(raw string) bool {
	if slices.ContainsFunc(r.Images, func(p string) bool { return wildcard(p, raw) }) {
		return true
	}
	return slices.ContainsFunc(r.imageExpressions, func(e imageExpression) bool { return e.matches(raw) })
}

// RawRefs are the image as the objects name it, else its reference.
func RawRefs(img gate.Image) []string {
	var out []string
	for _, l := range img.Locations {
		if l.Raw != "" && !slices.Contains(out, l.Raw) {
			out = append(out, l.Raw)
		}
	}
	if len(out) == 0 {
		out = []string{img.Ref}
	}
	return out
}

// repositoryName is the image's registry and repository:
// "ghcr.io/acme/app".
func repositoryName(img gate.Image) string {
	if img.Registry == "" {
		return img.Repository
	}
	return img.Registry + "/" + img.Repository
}

// WebhookName is the name policy-controller's webhook matches globs
// against: the Pod's image after its mutating webhook resolved it to a
// digest, as go-containerregistry names a digest reference
// (registry/repository@sha256:…, the tag dropped). An image not resolved
// yet stands with "…" for its digest: no glob tells one digest from
// another but by spelling it out.
func WebhookName(img gate.Image) string {
	if img.Digest == "" {
		return repositoryName(img) + "@sha256:…"
	}
	return repositoryName(img) + "@" + img.Digest
}

// policyControllerGlobChars are the characters policy-controller accepts
// in a glob.
var policyControllerGlobChars = regexp.MustCompile(`^[a-zA-Z0-9-_:/*.@]+$`)

// compiledGlobs caches policyControllerGlob: a rule's globs are matched
// against every image of a revision, and policies outlive revisions.
var compiledGlobs sync.Map // glob → *regexp.Regexp, or error

// policyControllerGlob is PolicyControllerGlob, compiled once per glob.
func policyControllerGlob(glob string) (*regexp.Regexp, error) {
	if v, ok := compiledGlobs.Load(glob); ok {
		if re, ok := v.(*regexp.Regexp); ok {
			return re, nil
		}
		return nil, v.(error) //nolint:forcetypeassert // only the two are stored
	}
	re, err := PolicyControllerGlob(glob)
	if err != nil {
		compiledGlobs.Store(glob, err)
		return nil, err
	}
	compiledGlobs.Store(glob, re)
	return re, nil
}

// expandGlob is policy-controller's expansion of the two globs it
// rewrites: "*" alone, "*/*" alone.
func expandGlob(glob string) string {
	switch glob {
	case "*":
		return "index.docker.io/library/*"
	case "*/*":
		return "index.docker.io/*/*"
	}
	return glob
}

// PolicyControllerGlob compiles a ClusterImagePolicy glob as
// policy-controller does (pkg/apis/glob/glob.go Compile): "*" alone is
// index.docker.io/library/*, "*/*" alone index.docker.io/*/*; "**" is any
// run of characters, "*" any run without "/" (":" and "@" included); the
// whole name must match.
func PolicyControllerGlob(glob string) (*regexp.Regexp, error) {
	glob = expandGlob(glob)
	if !policyControllerGlobChars.MatchString(glob) {
		return nil, fmt.Errorf("invalid glob %q", glob)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch {
		case glob[i] == '.':
			b.WriteString(`\.`)
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i++
		case glob[i] == '*':
			b.WriteString("[^/]*")
		default:
			b.WriteByte(glob[i])
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
