package admission

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// kyvernoPolicy is the part of a Kyverno ClusterPolicy or Policy
// (kyverno.io/v1, v2beta1) that decides image verification.
type kyvernoPolicy struct {
	Spec struct {
		ValidationFailureAction          string `json:"validationFailureAction"`
		Admission                        *bool  `json:"admission"`
		ValidationFailureActionOverrides []struct {
			Action     string   `json:"action"`
			Namespaces []string `json:"namespaces"`
		} `json:"validationFailureActionOverrides"`
		Rules []kyvernoRule `json:"rules"`
	} `json:"spec"`
}

type kyvernoRule struct {
	Name     string       `json:"name"`
	Match    kyvernoMatch `json:"match"`
	Exclude  kyvernoMatch `json:"exclude"`
	Validate *struct {
		FailureAction string `json:"failureAction"`
	} `json:"validate"`
	VerifyImages []kyvernoVerifyImages `json:"verifyImages"`
}

type kyvernoMatch struct {
	Any       []kyvernoFilter   `json:"any"`
	All       []kyvernoFilter   `json:"all"`
	Resources *kyvernoResources `json:"resources"`
	kyvernoUserInfo
}

type kyvernoFilter struct {
	Resources kyvernoResources `json:"resources"`
	kyvernoUserInfo
}

// kyvernoUserInfo selects by who makes the request: said unsupported.
type kyvernoUserInfo struct {
	Subjects     any `json:"subjects"`
	Roles        any `json:"roles"`
	ClusterRoles any `json:"clusterRoles"`
}

func (u kyvernoUserInfo) empty() bool {
	return u.Subjects == nil && u.Roles == nil && u.ClusterRoles == nil
}

type kyvernoResources struct {
	Kinds             []string `json:"kinds"`
	Namespaces        []string `json:"namespaces"`
	Selector          any      `json:"selector"`
	NamespaceSelector any      `json:"namespaceSelector"`
	Operations        []string `json:"operations"`
	// Names and Annotations are said unsupported.
	Name        string   `json:"name"`
	Names       []string `json:"names"`
	Annotations any      `json:"annotations"`
}

type kyvernoVerifyImages struct {
	ImageReferences     []string             `json:"imageReferences"`
	SkipImageReferences []string             `json:"skipImageReferences"`
	Type                string               `json:"type"`
	FailureAction       string               `json:"failureAction"`
	Attestors           []kyvernoAttestorSet `json:"attestors"`
	Attestations        []struct {
		Type          string               `json:"type"`
		PredicateType string               `json:"predicateType"`
		Attestors     []kyvernoAttestorSet `json:"attestors"`
		Conditions    []kyvernoAnyAll      `json:"conditions"`
	} `json:"attestations"`
	Repository   string `json:"repository"`
	Required     *bool  `json:"required"`
	VerifyDigest *bool  `json:"verifyDigest"`
	MutateDigest *bool  `json:"mutateDigest"`
}

type kyvernoAttestorSet struct {
	Count   *int              `json:"count"`
	Entries []kyvernoAttestor `json:"entries"`
}

type kyvernoAttestor struct {
	Keyless *struct {
		Subject              string            `json:"subject"`
		SubjectRegExp        string            `json:"subjectRegExp"`
		Issuer               string            `json:"issuer"`
		IssuerRegExp         string            `json:"issuerRegExp"`
		Roots                string            `json:"roots"`
		Rekor                *kyvernoRekor     `json:"rekor"`
		CTLog                *kyvernoCTLog     `json:"ctlog"`
		AdditionalExtensions map[string]string `json:"additionalExtensions"`
	} `json:"keyless"`
	Keys *struct {
		PublicKeys         string        `json:"publicKeys"`
		SignatureAlgorithm string        `json:"signatureAlgorithm"`
		KMS                string        `json:"kms"`
		Secret             any           `json:"secret"`
		Rekor              *kyvernoRekor `json:"rekor"`
		CTLog              *kyvernoCTLog `json:"ctlog"`
	} `json:"keys"`
	Certificates any `json:"certificates"`
	Attestor     any `json:"attestor"`
}

type kyvernoRekor struct {
	URL        string `json:"url"`
	PubKey     string `json:"pubkey"`
	IgnoreTlog bool   `json:"ignoreTlog"`
}

type kyvernoCTLog struct {
	IgnoreSCT    bool   `json:"ignoreSCT"`
	TSACertChain string `json:"tsaCertChain"`
	PubKey       string `json:"pubkey"`
}

// readKyverno reads the verifyImages rules of a ClusterPolicy or Policy.
func readKyverno(p *Policy, raw kyvernoPolicy) error {
	policyAction, err := kyvernoAction(raw.Spec.ValidationFailureAction, Audit)
	if err != nil {
		return fmt.Errorf("spec.validationFailureAction: %w", err)
	}
	for ri, r := range raw.Spec.Rules {
		if len(r.VerifyImages) == 0 {
			continue
		}
		match, unsupported := kyvernoRuleMatch(r, p.Namespace)
		action := policyAction
		if r.Validate != nil && r.Validate.FailureAction != "" {
			if action, err = kyvernoAction(r.Validate.FailureAction, policyAction); err != nil {
				return fmt.Errorf("rules[%d].validate.failureAction: %w", ri, err)
			}
		}
		var overrides []ActionOverride
		for oi, o := range raw.Spec.ValidationFailureActionOverrides {
			a, err := kyvernoAction(o.Action, "")
			if err != nil || a == "" {
				return fmt.Errorf("spec.validationFailureActionOverrides[%d].action: %q is not Enforce or Audit", oi, o.Action)
			}
			overrides = append(overrides, ActionOverride{Action: a, Namespaces: o.Namespaces})
		}
		for vi, v := range r.VerifyImages {
			name := r.Name
			if len(r.VerifyImages) > 1 {
				name = fmt.Sprintf("%s[%d]", r.Name, vi)
			}
			rule := Rule{Policy: p.ID(), Name: name, Engine: Kyverno, Images: v.ImageReferences,
				Skip: v.SkipImageReferences, Match: match, Action: action, ActionOverrides: overrides,
				Unsupported: append([]string(nil), unsupported...)}
			if v.FailureAction != "" {
				if rule.Action, err = kyvernoAction(v.FailureAction, action); err != nil {
					return fmt.Errorf("rules[%d].verifyImages[%d].failureAction: %w", ri, vi, err)
				}
			}
			switch v.Type {
			case "", "Cosign":
				rule.Format = KyvernoCosign
			case "SigstoreBundle":
				rule.Format = KyvernoSigstoreBundle
			case "Notary":
				rule.Format = KyvernoNotary
				rule.Unsupported = append(rule.Unsupported, "type: Notary (Notation signatures)")
			default:
				return fmt.Errorf("rules[%d].verifyImages[%d].type: %q is not Cosign, SigstoreBundle or Notary", ri, vi, v.Type)
			}
			if v.Repository != "" {
				rule.Unsupported = append(rule.Unsupported, "repository (signatures in another repository)")
			}
			// verifyDigest and mutateDigest default to true: Kyverno
			// writes the digest in before it checks there is one.
			rule.RequiresDigest = (v.VerifyDigest == nil || *v.VerifyDigest) && v.MutateDigest != nil && !*v.MutateDigest
			// required (default true) is checked by the validating
			// webhook, of the annotation the mutating one wrote after it
			// verified the image (pkg/engine/handlers/validation/
			// validate_image.go): on a Pod's creation the verification
			// runs whatever it says, so required: false changes nothing
			// pregate predicts.
			auths, trusts, sets, more, err := kyvernoAttestors(v.Attestors, rule.Format)
			if err != nil {
				return fmt.Errorf("rules[%d].verifyImages[%d].attestors: %w", ri, vi, err)
			}
			rule.Authorities, rule.AttestorSets = auths, sets
			rule.regexps = kyvernoRegexps(v.Attestors)
			rule.Unsupported = append(rule.Unsupported, more...)
			for ai, a := range v.Attestations {
				pt := a.PredicateType
				if pt == "" {
					pt = a.Type
				}
				if pt == "" {
					return fmt.Errorf("rules[%d].verifyImages[%d].attestations[%d]: no type", ri, vi, ai)
				}
				att := verify.Attestation{Name: pt, PredicateType: pt}
				if len(a.Conditions) > 0 {
					check, unsupported := compileConditions(a.Conditions)
					for _, u := range unsupported {
						rule.Unsupported = append(rule.Unsupported, fmt.Sprintf("attestations[%d].conditions: %s", ai, u))
					}
					if check != nil {
						att.Condition = func(statement []byte) ([]verify.ConditionValue, error) { return nil, check(statement) }
					}
				}
				rule.Attestations = append(rule.Attestations, att)
				if len(a.Attestors) > 0 {
					attAuths, attTrusts, attSets, more, err := kyvernoAttestors(a.Attestors, rule.Format)
					if err != nil {
						return fmt.Errorf("rules[%d].verifyImages[%d].attestations[%d].attestors: %w", ri, vi, ai, err)
					}
					if len(rule.Authorities) == 0 {
						rule.Authorities, trusts, rule.AttestorSets = attAuths, attTrusts, attSets
					}
					rule.Unsupported = append(rule.Unsupported, more...)
				}
			}
			if len(rule.Authorities) == 0 && len(rule.Unsupported) == 0 {
				return fmt.Errorf("rules[%d].verifyImages[%d]: no attestor", ri, vi)
			}
			// One verify policy checks the rule, with one trust material.
			if len(trusts) > 0 && slices.ContainsFunc(trusts, func(t Trust) bool { return t != trusts[0] }) {
				rule.Unsupported = append(rule.Unsupported, "attestors with different roots or log keys")
			} else if len(trusts) > 0 {
				rule.Trust = trusts[0]
			}
			if raw.Spec.Admission != nil && !*raw.Spec.Admission {
				rule.inactive("spec.admission: false (background scans only)")
			}
			p.Rules = append(p.Rules, rule)
		}
	}
	return nil
}

// kyvernoAction reads a validationFailureAction or failureAction: Enforce
// or Audit, in either case, as Kyverno accepts them.
func kyvernoAction(s string, def Action) (Action, error) {
	switch strings.ToLower(s) {
	case "":
		return def, nil
	case "enforce":
		return Enforce, nil
	case "audit":
		return Audit, nil
	}
	return "", fmt.Errorf("%q is not Enforce or Audit", s)
}

// kyvernoRuleMatch reads which objects a rule applies to. A rule that
// matches no Pod and no built-in workload is said unsupported rather than
// guessed, as are names, annotations and who makes the request.
func kyvernoRuleMatch(r kyvernoRule, policyNamespace string) (Match, []string) {
	var m Match
	var unsupported []string
	pods := false
	filters := func(list []kyvernoFilter, where string, match bool) []Filter {
		var out []Filter
		for i, kf := range list {
			f, more := kyvernoFilterOf(kf, fmt.Sprintf("%s[%d]", where, i), !match)
			unsupported = append(unsupported, more...)
			pods = pods || (match && !f.Never && (len(f.Kinds) == 0 || slices.ContainsFunc(f.Kinds, Kind.runsPods)))
			out = append(out, f)
		}
		return out
	}
	legacy := func(mt kyvernoMatch) []kyvernoFilter {
		if mt.Resources == nil && mt.empty() {
			return nil
		}
		f := kyvernoFilter{kyvernoUserInfo: mt.kyvernoUserInfo}
		if mt.Resources != nil {
			f.Resources = *mt.Resources
		}
		return []kyvernoFilter{f}
	}
	m.Any = filters(r.Match.Any, "match.any", true)
	m.All = filters(append(r.Match.All, legacy(r.Match)...), "match.all", true)
	if !pods {
		unsupported = append(unsupported, "a match without Pods")
	}
	m.ExcludeAny = filters(r.Exclude.Any, "exclude.any", false)
	m.ExcludeAll = filters(append(r.Exclude.All, legacy(r.Exclude)...), "exclude.all", false)
	if policyNamespace != "" {
		// A namespaced Policy applies in its own namespace only.
		m.All = append(m.All, Filter{Namespaces: []string{policyNamespace}})
	}
	return m, unsupported
}

// kyvernoFilterOf reads one filter of a match or an exclude, with what
// it asks that is not evaluated. A filter whose operations leave out
// CREATE selects nothing pregate sees; an exclude by who makes the
// request is taken to exclude nothing, so that the rule is predicted (and
// Undecided for it).
func kyvernoFilterOf(kf kyvernoFilter, where string, exclude bool) (Filter, []string) {
	var unsupported []string
	rs := kf.Resources
	f := Filter{Namespaces: rs.Namespaces}
	for _, k := range rs.Kinds {
		f.Kinds = append(f.Kinds, kyvernoKind(k))
	}
	unsupported = append(unsupported, readSelector(&f.Selector, rs.Selector, where+".resources.selector")...)
	unsupported = append(unsupported, readSelector(&f.NamespaceSelector, rs.NamespaceSelector, where+".resources.namespaceSelector")...)
	if rs.Name != "" || len(rs.Names) > 0 {
		unsupported = append(unsupported, where+".resources.names (a Pod's name is not known before it is created)")
	}
	if rs.Annotations != nil {
		unsupported = append(unsupported, where+".resources.annotations")
	}
	if !kf.empty() {
		unsupported = append(unsupported, where+": subjects, roles or clusterRoles (who makes the request)")
		f.Never = f.Never || exclude
	}
	if len(rs.Operations) > 0 && !slices.ContainsFunc(rs.Operations, func(op string) bool { return strings.EqualFold(op, "CREATE") }) {
		f.Never = true
	}
	return f, unsupported
}

// kyvernoAttestors turns attestor sets into authorities. Every set must
// pass, and count entries of a set (all by default); one set that one
// entry satisfies is what a verify.Policy expresses, anything more is
// said unsupported.
//
// Each authority comes with the trust material its entry gives (roots,
// rekor.pubkey, ctlog.pubkey and tsaCertChain), except under type: SigstoreBundle, which
// ignores them: its trust material is the TUF root Kyverno runs with
// (QuirkBundlePublicGoodOnly), the default trust material here too.
func kyvernoAttestors(sets []kyvernoAttestorSet, format Format) ([]verify.Authority, []Trust, []AttestorSet, []string, error) {
	var auths []verify.Authority
	var trusts []Trust
	var unsupported []string
	var pos [][2]int // the set and entry of each of auths
	own := func(roots string, rekor *kyvernoRekor, ctlog *kyvernoCTLog) Trust {
		var t Trust
		if format == KyvernoSigstoreBundle {
			return t
		}
		t.Roots = roots
		if rekor != nil {
			t.RekorKey = rekor.PubKey
		}
		if ctlog != nil {
			t.CTLogKey, t.TSAChain = ctlog.PubKey, ctlog.TSACertChain
		}
		return t
	}
	// A TSA chain makes cosign require signed timestamps
	// (pkg/image/verifiers/cpol/cosign/cosign.go UseSignedTimestamps).
	timestamps := func(ctlog *kyvernoCTLog) bool {
		return format != KyvernoSigstoreBundle && ctlog != nil && ctlog.TSACertChain != ""
	}
	for si, set := range sets {
		for ei, e := range set.Entries {
			name := fmt.Sprintf("attestors[%d].entries[%d]", si, ei)
			switch {
			case e.Keyless != nil:
				k := e.Keyless
				id := verify.Identity{Issuer: k.Issuer, Subject: k.Subject}
				if strings.ContainsAny(k.Subject, "*?") {
					id.Subject, id.SubjectRegExp = "", wildcardRegexp(k.Subject)
				}
				if strings.ContainsAny(k.Issuer, "*?") {
					id.Issuer, id.IssuerRegExp = "", wildcardRegexp(k.Issuer)
				}
				if k.SubjectRegExp != "" {
					id.Subject, id.SubjectRegExp = "", unanchored(k.SubjectRegExp)
				}
				if k.IssuerRegExp != "" {
					id.Issuer, id.IssuerRegExp = "", unanchored(k.IssuerRegExp)
				}
				if id.Subject == "" && id.SubjectRegExp == "" {
					id.SubjectRegExp = ".*"
				}
				if id.Issuer == "" && id.IssuerRegExp == "" {
					id.IssuerRegExp = ".*"
				}
				a := verify.Authority{Name: name, Keyless: &verify.Keyless{Identities: []verify.Identity{id}}}
				if k.Rekor != nil {
					a.IgnoreTlog = k.Rekor.IgnoreTlog
				}
				if k.CTLog != nil {
					a.IgnoreSCT = k.CTLog.IgnoreSCT
				}
				a.SignedTimestamps = timestamps(k.CTLog)
				if len(k.AdditionalExtensions) > 0 {
					unsupported = append(unsupported, name+".keyless.additionalExtensions")
				}
				auths = append(auths, a)
				trusts = append(trusts, own(k.Roots, k.Rekor, k.CTLog))
				pos = append(pos, [2]int{si, ei})
			case e.Keys != nil:
				if e.Keys.PublicKeys == "" || e.Keys.KMS != "" || e.Keys.Secret != nil {
					unsupported = append(unsupported, name+": a key from a KMS or a Secret")
					continue
				}
				if strings.Contains(e.Keys.PublicKeys, "{{") {
					// Kyverno substitutes variables (a ConfigMap of the
					// policy's context, the request) at admission.
					unsupported = append(unsupported, name+": publicKeys from a variable ("+gate.Clip(strings.TrimSpace(e.Keys.PublicKeys), 80)+")")
					continue
				}
				for ki, pem := range splitPEM(e.Keys.PublicKeys) {
					key, err := verify.NewKey([]byte(pem))
					if err != nil {
						return nil, nil, nil, nil, fmt.Errorf("%s.keys.publicKeys[%d]: %w", name, ki, err)
					}
					a := verify.Authority{Name: name, Key: key}
					if e.Keys.Rekor != nil {
						a.IgnoreTlog = e.Keys.Rekor.IgnoreTlog
					}
					if e.Keys.CTLog != nil {
						a.IgnoreSCT = e.Keys.CTLog.IgnoreSCT
					}
					a.SignedTimestamps = timestamps(e.Keys.CTLog)
					auths = append(auths, a)
					trusts = append(trusts, own("", e.Keys.Rekor, e.Keys.CTLog))
					pos = append(pos, [2]int{si, ei})
				}
			case e.Certificates != nil:
				unsupported = append(unsupported, name+".certificates")
			case e.Attestor != nil:
				unsupported = append(unsupported, name+".attestor (nested attestors)")
			default:
				return nil, nil, nil, nil, fmt.Errorf("%s: no keyless, keys or certificates", name)
			}
		}
	}
	return auths, trusts, attestorSets(sets, auths, pos), unsupported, nil
}

// attestorSets groups auths by the set and entry they came from, when
// they need more than any one of them: several sets (every one must
// pass), or a set whose count (all its entries by default) is above one.
func attestorSets(sets []kyvernoAttestorSet, auths []verify.Authority, pos [][2]int) []AttestorSet {
	out := make([]AttestorSet, len(sets))
	many := len(sets) > 1
	for si, set := range sets {
		out[si].Need = len(set.Entries)
		if set.Count != nil {
			out[si].Need = *set.Count
		}
		many = many || out[si].Need > 1
	}
	if !many {
		return nil
	}
	for i, a := range auths {
		set := &out[pos[i][0]]
		entry := fmt.Sprintf("attestors[%d].entries[%d]", pos[i][0], pos[i][1])
		if n := len(set.Entries); n > 0 && set.Entries[n-1].Name == entry {
			set.Entries[n-1].Authorities = append(set.Entries[n-1].Authorities, a)
			continue
		}
		set.Entries = append(set.Entries, AttestorEntry{Name: entry, Authorities: []verify.Authority{a}})
	}
	return out
}

// splitPEM splits a block of PEM public keys, as Kyverno does for
// publicKeys holding several.
func splitPEM(s string) []string {
	const begin = "-----BEGIN"
	var out []string
	for _, part := range strings.Split(s, begin) {
		if strings.TrimSpace(part) != "" {
			out = append(out, begin+part)
		}
	}
	return out
}

// kyvernoRegexps are the keyless regexps of attestor sets, as written.
func kyvernoRegexps(sets []kyvernoAttestorSet) []string {
	var out []string
	for _, set := range sets {
		for _, e := range set.Entries {
			if e.Keyless == nil {
				continue
			}
			for _, re := range []string{e.Keyless.SubjectRegExp, e.Keyless.IssuerRegExp} {
				if re != "" {
					out = append(out, re)
				}
			}
		}
	}
	return out
}
