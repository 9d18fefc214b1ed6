package admission

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/pregate/pregate/verify"
)

// Severity is how much a finding matters: an error is a rule that fails
// images it should pass, whatever the registry holds.
type Severity string

// The severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is what a look at a policy alone, without a registry, shows.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check names the kind of finding: legacy-only, bundle-path-identities,
	// bundle-no-signatures, bundle-key, glob-matches-nothing,
	// unanchored-regexp, predicate-type, not-predicted, not-at-admission.
	Check string `json:"check"`
	// File is the policy's file, when known; Policy and Rule are what it
	// is about.
	File    string `json:"file,omitempty"`
	Policy  string `json:"policy"`
	Rule    string `json:"rule,omitempty"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	// Quirk is the engine's way of reading signatures behind it.
	Quirk string `json:"quirk,omitempty"`
}

// Lint is what p shows without a registry, for the engine releases of
// profiles: a read path that cannot see cosign v3's default format, a rule
// that fails every image on its bundle path, a glob that matches nothing,
// a regexp that matches more than it seems, an attestation type no
// attestation has, and what pregate does not predict.
func Lint(p *Policy, profiles Profiles) []Finding {
	var out []Finding
	for _, r := range p.Rules {
		prof := profiles.For(r.Engine)
		add := func(sev Severity, check, msg, fix string, quirk string) {
			f := Finding{Severity: sev, Check: check, File: p.File, Policy: r.Policy, Rule: r.Name, Message: msg, Fix: fix}
			if q, ok := prof.Quirk(quirk); ok {
				f.Quirk = q.ID
				f.Message += fmt.Sprintf(" (%s: %s)", prof, q.Source)
			}
			out = append(out, f)
		}
		if r.Inactive != "" {
			add(SeverityInfo, "not-at-admission", "the rule never acts at admission: "+r.Inactive+"; nothing is predicted for it", "", "")
			continue
		}
		if len(r.Unsupported) > 0 {
			add(SeverityWarning, "not-predicted", "pregate does not evaluate "+strings.Join(r.Unsupported, "; ")+
				": the rule is predicted Undecided, an AdmissionUnpredicted gap that blocks unless allowed", "", "")
		}
		switch r.Format {
		case KyvernoCosign:
			add(SeverityWarning, "legacy-only", "type: Cosign (the default) reads only cosign's legacy .sig and .att tags: an image signed by cosign v3, "+
				"whose default since v3.0 is a Sigstore bundle stored as an OCI referrer, can never pass",
				"set type: SigstoreBundle, or use an ImageValidatingPolicy, or sign in the legacy format too", QuirkCosignLegacyOnly)
		case LegacyFormat:
			if !hasStatic(r.Authorities) {
				add(SeverityWarning, "legacy-only", "the authority has no signatureFormat: bundle, so it reads only cosign's legacy .sig and .att tags: "+
					"an image signed by cosign v3 (a Sigstore bundle, its default since v3.0) can never pass",
					"set signatureFormat: bundle on this keyless authority, with the signature listed as an attestation", QuirkPCLegacyUnlessBundle)
			}
		case BundleFormat:
			switch {
			case HasKey(r.Authorities):
				add(SeverityError, "bundle-key", "signatureFormat: bundle takes keyless authorities only: every image fails",
					"verify key-signed images with signatureFormat: legacy, or sign keyless", QuirkPCBundleKeylessOnly)
			case len(r.Attestations) == 0 && prof.Has(QuirkPCBundleNoSignatures):
				add(SeverityError, "bundle-no-signatures", "with signatureFormat: bundle, an authority that lists no attestations fails every image",
					"list the cosign v3 signature as an attestation (attestations: [{name: signature, predicateType: https://sigstore.dev/cosign/sign/v1}])",
					QuirkPCBundleNoSignatures)
			}
			if n := MaxIdentities(r.Authorities); n > 1 {
				add(SeverityError, "bundle-path-identities", fmt.Sprintf("the keyless authority lists %d identities, which the bundle path refuses: every image fails", n),
					"one identity per authority: split it, or use one identity whose subjectRegExp is an alternation", QuirkOneIdentity)
			}
		case KyvernoSigstoreBundle:
			if prof.Has(QuirkBundleNoKeys) && !hasKeyless(r.Authorities) {
				add(SeverityError, "bundle-key", fmt.Sprintf("type: SigstoreBundle verifies no key attestor in %s: every image fails", prof),
					"run Kyverno 1.19 or later, or verify key-signed images with type: Cosign or an ImageValidatingPolicy", QuirkBundleNoKeys)
			}
		case KyvernoIVPOL:
			for _, a := range r.Attestors {
				if a.Identities > 1 {
					add(SeverityError, "bundle-path-identities", fmt.Sprintf("attestor %q lists %d keyless identities, which the bundle path refuses: every image with a Sigstore bundle fails", a.Name, a.Identities),
						"one identity per attestor: split it, or use one identity whose subjectRegExp is an alternation", QuirkOneIdentity)
				}
			}
		}
		if r.Engine == PolicyController {
			for _, g := range r.Images {
				if !policyControllerGlobCanMatch(g) {
					add(SeverityError, "glob-matches-nothing", fmt.Sprintf("glob %q matches no image: policy-controller matches globs against registry/repository@sha256:<digest>, with no tag", g),
						"match the repository with a wildcard: "+suggestGlob(g), "")
				}
			}
		}
		for _, re := range r.regexps {
			if strings.HasPrefix(re, "^") && strings.HasSuffix(re, "$") {
				continue
			}
			msg := fmt.Sprintf("regexp %q matches anywhere in the value", re)
			if v := widerMatch(re); v != "" {
				msg += fmt.Sprintf(": %q matches it too", v)
			}
			add(SeverityWarning, "unanchored-regexp", msg, fmt.Sprintf("anchor it: ^%s$", strings.TrimSuffix(strings.TrimPrefix(re, "^"), "$")), "")
		}
		types := make([]string, 0, len(r.Attestations)+len(r.AttestationTypes))
		for _, a := range r.Attestations {
			types = append(types, a.PredicateType)
		}
		for _, t := range r.AttestationTypes {
			types = append(types, t)
		}
		for _, t := range types {
			if !strings.HasPrefix(t, "https://") && !strings.HasPrefix(t, "http://") {
				add(SeverityWarning, "predicate-type", fmt.Sprintf("attestation type %q is not a URI: in-toto predicate types are (https://slsa.dev/provenance/v1), and an older shorthand matches no attestation", t),
					"write the predicate type in full, as the attestation states it", "")
			}
		}
	}
	return out
}

// HasKey says whether one of auths is a public key.
func HasKey(auths []verify.Authority) bool {
	return slices.ContainsFunc(auths, func(a verify.Authority) bool { return a.Key != nil })
}

func hasKeyless(auths []verify.Authority) bool {
	return slices.ContainsFunc(auths, func(a verify.Authority) bool { return a.Keyless != nil })
}

func hasStatic(auths []verify.Authority) bool {
	return slices.ContainsFunc(auths, func(a verify.Authority) bool { return a.Static != nil })
}

// MaxIdentities is the most keyless identities one of auths lists.
func MaxIdentities(auths []verify.Authority) int {
	n := 0
	for _, a := range auths {
		if a.Keyless != nil {
			n = max(n, len(a.Keyless.Identities))
		}
	}
	return n
}

// widerMatch is a value an unanchored regexp matches that its author
// likely did not mean: a value it matches, inside another URL; empty when
// none is found.
func widerMatch(re string) string {
	parsed, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return ""
	}
	v := sample(parsed)
	if !strings.HasPrefix(re, "^") {
		v = "https://attacker.example/?" + v
	}
	if !strings.HasSuffix(re, "$") {
		v += "/../attacker"
	}
	if ok, err := regexp.MatchString(re, v); err != nil || !ok {
		return ""
	}
	return v
}

// sample is a short value the expression matches.
func sample(re *syntax.Regexp) string {
	switch re.Op {
	case syntax.OpLiteral:
		return string(re.Rune)
	case syntax.OpCharClass:
		if len(re.Rune) > 0 {
			return string(re.Rune[0])
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return "x"
	case syntax.OpCapture, syntax.OpPlus:
		return sample(re.Sub[0])
	case syntax.OpRepeat:
		return strings.Repeat(sample(re.Sub[0]), re.Min)
	case syntax.OpConcat:
		var b strings.Builder
		for _, sub := range re.Sub {
			b.WriteString(sample(sub))
		}
		return b.String()
	case syntax.OpAlternate:
		return sample(re.Sub[0])
	}
	return "" // empty, anchors, star, quest
}

// suggestGlob is a glob that matches what g was likely meant to: its
// repository with a wildcard for the digest, the tag dropped, under
// index.docker.io/library when it names no registry.
func suggestGlob(g string) string {
	slash := strings.LastIndex(g, "/")
	last := g[slash+1:]
	if i := strings.Index(last, ":"); i >= 0 {
		last = last[:i]
	}
	prefix := g[:slash+1]
	if prefix == "" {
		prefix = "index.docker.io/library/"
	}
	return prefix + strings.TrimRight(last, "*.") + "*"
}

// policyControllerGlobCanMatch says whether some name policy-controller's
// webhook matches (registry/repository@sha256:<64 hex>) matches the glob,
// by walking the glob against that shape.
func policyControllerGlobCanMatch(glob string) bool {
	if _, err := policyControllerGlob(glob); err != nil {
		return false
	}
	glob = expandGlob(glob)
	// The shape: the registry host (state 0: any character but "/" and
	// "@", ":" for a port), "/" then the repository path (1: any character
	// but "@" and ":"), "@" then "sha256:" (2-8), then 64 hex digits
	// (9-72); 73 accepts.
	const host, path, digestStart = 0, 1, 9
	const accept = digestStart + 64
	const prefix = "sha256:"
	step := func(s int, c byte) (int, bool) {
		switch {
		case s == host && c == '/':
			return path, true
		case s == host:
			return host, c != '@'
		case s == path && c == '@':
			return 2, true
		case s == path:
			return path, c != ':'
		case s < digestStart:
			return s + 1, prefix[s-2] == c
		case s < accept:
			return s + 1, strings.IndexByte("0123456789abcdef", c) >= 0
		}
		return 0, false
	}
	// Tokens: a literal byte, "*" (any run without "/"), "**" (any run).
	type token struct {
		lit       byte
		star, any bool
	}
	var toks []token
	for i := 0; i < len(glob); i++ {
		switch {
		case strings.HasPrefix(glob[i:], "**"):
			toks = append(toks, token{any: true})
			i++
		case glob[i] == '*':
			toks = append(toks, token{star: true})
		default:
			toks = append(toks, token{lit: glob[i]})
		}
	}
	// A star reads any run of the characters the shape allows; "/" only
	// in the name, and a star without "/" reads every other one the name
	// allows, so the states a star can end in are those reachable with
	// representative characters.
	reps := []byte{'a', '0', '@', ':', 's', 'h', '2', '5', '6', '/'}
	states := map[int]bool{0: true}
	for _, t := range toks {
		next := map[int]bool{}
		if t.star || t.any {
			frontier := states
			for s := range states {
				next[s] = true
			}
			for len(frontier) > 0 {
				grown := map[int]bool{}
				for s := range frontier {
					for _, c := range reps {
						if c == '/' && t.star {
							continue
						}
						if n, ok := step(s, c); ok && !next[n] {
							next[n], grown[n] = true, true
						}
					}
				}
				frontier = grown
			}
		} else {
			for s := range states {
				if n, ok := step(s, t.lit); ok {
					next[n] = true
				}
			}
		}
		states = next
	}
	return states[accept]
}
