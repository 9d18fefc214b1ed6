package admission

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pregate/pregate/verify"
)

// KyvernoIVPOL is how a Kyverno ImageValidatingPolicy cosign attestor reads
// signatures: Sigstore bundles when there are any, else the legacy format
// (pkg/image/verifiers/ivpol/cosign/verifier.go calls cosign.GetBundles
// first), listed through the referrers API, or its fallback tag when the
// registry has no such API (QuirkReferrersAPIFirst); any verified bundle
// counts as a signature.
const KyvernoIVPOL Format = "ImageValidatingPolicy"

// Attestor is a named signer of an ImageValidatingPolicy; its validations
// name it (attestors.<name>).
type Attestor struct {
	Name      string
	Authority verify.Authority
	// Identities is how many keyless identities it lists: Kyverno's
	// sigstore-go bundle path refuses more than one.
	Identities int
	// Trust is the trust material the attestor gives itself (zero: the
	// default).
	Trust Trust
}

// Validation is a CEL validation of an ImageValidatingPolicy.
type Validation struct {
	Expression, Message string
}

// Variable is a named CEL expression of an ImageValidatingPolicy, which
// validations read as variables.<name>.
type Variable struct {
	Name, Expression string
}

// ivpol is the part of an ImageValidatingPolicy (policies.kyverno.io
// v1alpha1, v1beta1, v1) that decides image verification.
type ivpol struct {
	Spec struct {
		ValidationActions []string `json:"validationActions"`
		Evaluation        *struct {
			Mode      string `json:"mode"`
			Admission *struct {
				Enabled *bool `json:"enabled"`
			} `json:"admission"`
		} `json:"evaluation"`
		ValidationConfigurations *struct {
			MutateDigest *bool `json:"mutateDigest"`
			VerifyDigest *bool `json:"verifyDigest"`
			Required     *bool `json:"required"`
		} `json:"validationConfigurations"`
		MatchConstraints *struct {
			ResourceRules        []ivpolResourceRule `json:"resourceRules"`
			ExcludeResourceRules []ivpolResourceRule `json:"excludeResourceRules"`
			NamespaceSelector    any                 `json:"namespaceSelector"`
			ObjectSelector       any                 `json:"objectSelector"`
		} `json:"matchConstraints"`
		MatchConditions []struct {
			Name       string `json:"name"`
			Expression string `json:"expression"`
		} `json:"matchConditions"`
		MatchImageReferences []struct {
			Glob       string `json:"glob"`
			Expression string `json:"expression"`
		} `json:"matchImageReferences"`
		Attestors []struct {
			Name   string `json:"name"`
			Cosign *struct {
				Key *struct {
					Data string `json:"data"`
					KMS  string `json:"kms"`
				} `json:"key"`
				Keyless *struct {
					Identities []struct {
						Issuer        string `json:"issuer"`
						Subject       string `json:"subject"`
						IssuerRegExp  string `json:"issuerRegExp"`
						SubjectRegExp string `json:"subjectRegExp"`
					} `json:"identities"`
					Roots string `json:"roots"`
				} `json:"keyless"`
				CTLog *struct {
					InsecureIgnoreSCT  bool   `json:"insecureIgnoreSCT"`
					InsecureIgnoreTlog bool   `json:"insecureIgnoreTlog"`
					RekorPubKey        string `json:"rekorPubKey"`
					CTLogPubKey        string `json:"ctLogPubKey"`
					TSACertChain       string `json:"tsaCertChain"`
				} `json:"ctlog"`
				Source any `json:"source"`
			} `json:"cosign"`
			Notary any `json:"notary"`
		} `json:"attestors"`
		Attestations []struct {
			Name   string `json:"name"`
			InToto *struct {
				Type string `json:"type"`
			} `json:"intoto"`
			Referrer *struct {
				Type string `json:"type"`
			} `json:"referrer"`
		} `json:"attestations"`
		Variables   []Variable   `json:"variables"`
		Validations []Validation `json:"validations"`
		Images      []Variable   `json:"images"`
		Credentials any          `json:"credentials"`
	} `json:"spec"`
}

// readIVPOL reads an ImageValidatingPolicy as one rule.
func readIVPOL(p *Policy, raw ivpol) error {
	spec := raw.Spec
	rule := Rule{Policy: p.ID(), Name: "validations", Engine: Kyverno, Format: KyvernoIVPOL, Action: Enforce,
		AttestationTypes: map[string]string{}}
	if p.Namespace != "" {
		rule.Match.All = []Filter{{Namespaces: []string{p.Namespace}}}
	}
	switch {
	case slices.Contains(spec.ValidationActions, "Deny"):
	case slices.Contains(spec.ValidationActions, "Warn"):
		rule.Action = Warn
	case slices.Contains(spec.ValidationActions, "Audit"):
		rule.Action = Audit
	case len(spec.ValidationActions) > 0:
		return fmt.Errorf("spec.validationActions: %v holds none of Deny, Warn, Audit", spec.ValidationActions)
	}
	if e := spec.Evaluation; e != nil {
		switch {
		case e.Mode == "JSON":
			rule.inactive("evaluation.mode: JSON (the policy checks JSON payloads, not Kubernetes objects)")
		case e.Admission != nil && e.Admission.Enabled != nil && !*e.Admission.Enabled:
			rule.inactive("evaluation.admission.enabled: false (background scans only)")
		}
	}
	if vc := spec.ValidationConfigurations; vc != nil {
		rule.RequiresDigest = (vc.VerifyDigest == nil || *vc.VerifyDigest) && vc.MutateDigest != nil && !*vc.MutateDigest
		rule.NotRequired = vc.Required != nil && !*vc.Required
	}
	if mc := spec.MatchConstraints; mc != nil {
		var more []string
		rule.Match.Any, more = ivpolResourceFilters(mc.ResourceRules, "matchConstraints.resourceRules")
		rule.Unsupported = append(rule.Unsupported, more...)
		if !slices.ContainsFunc(rule.Match.Any, func(f Filter) bool { return f.Selects(Object{Version: "v1", Kind: "Pod"}) }) {
			rule.Unsupported = append(rule.Unsupported, "matchConstraints without pods")
		}
		rule.Match.ExcludeAny, more = ivpolResourceFilters(mc.ExcludeResourceRules, "matchConstraints.excludeResourceRules")
		rule.Unsupported = append(rule.Unsupported, more...)
		var f Filter
		rule.Unsupported = append(rule.Unsupported, readSelector(&f.Selector, mc.ObjectSelector, "matchConstraints.objectSelector")...)
		rule.Unsupported = append(rule.Unsupported, readSelector(&f.NamespaceSelector, mc.NamespaceSelector, "matchConstraints.namespaceSelector")...)
		rule.Match.All = append(rule.Match.All, f)
	}
	for i, mc := range spec.MatchConditions {
		c, err := compileMatchCondition(mc.Name, mc.Expression)
		if err != nil {
			// Whether the rule applies is not known: it is predicted
			// Undecided wherever its match selects.
			rule.Unsupported = append(rule.Unsupported, fmt.Sprintf("matchConditions[%d] (%s), which pregate cannot compile: %v", i, mc.Name, err))
			continue
		}
		rule.matchConditions = append(rule.matchConditions, c)
	}
	for i, m := range spec.MatchImageReferences {
		switch {
		case m.Glob != "":
			rule.Images = append(rule.Images, m.Glob)
		case m.Expression != "":
			e, err := compileImageExpression(m.Expression)
			if err != nil {
				// Which images it covers is not known: every image gets
				// the rule's Undecided.
				rule.Unsupported = append(rule.Unsupported, fmt.Sprintf("matchImageReferences[%d].expression, which pregate cannot compile: %v", i, err))
				rule.Images = append(rule.Images, "*")
				continue
			}
			rule.imageExpressions = append(rule.imageExpressions, e)
		default:
			return fmt.Errorf("spec.matchImageReferences[%d]: no glob or expression", i)
		}
	}
	if len(spec.MatchImageReferences) == 0 {
		rule.Images = []string{"*"} // every image
	}
	for i, a := range spec.Attestors {
		if a.Name == "" {
			return fmt.Errorf("spec.attestors[%d]: no name", i)
		}
		at := Attestor{Name: a.Name, Authority: verify.Authority{Name: a.Name}}
		switch {
		case a.Cosign != nil && a.Cosign.Keyless != nil:
			for _, id := range a.Cosign.Keyless.Identities {
				at.Authority.Keyless = appendIdentity(at.Authority.Keyless, verify.Identity{Issuer: id.Issuer, Subject: id.Subject,
					IssuerRegExp: unanchored(id.IssuerRegExp), SubjectRegExp: unanchored(id.SubjectRegExp)})
				for _, re := range []string{id.SubjectRegExp, id.IssuerRegExp} {
					if re != "" {
						rule.regexps = append(rule.regexps, re)
					}
				}
			}
			at.Identities = len(a.Cosign.Keyless.Identities)
			if at.Identities == 0 {
				return fmt.Errorf("spec.attestors[%d].cosign.keyless: no identities", i)
			}
			at.Trust.Roots = a.Cosign.Keyless.Roots
		case a.Cosign != nil && a.Cosign.Key != nil && a.Cosign.Key.Data != "":
			key, err := verify.NewKey([]byte(a.Cosign.Key.Data))
			if err != nil {
				return fmt.Errorf("spec.attestors[%d].cosign.key.data: %w", i, err)
			}
			at.Authority.Key = key
		case a.Cosign != nil:
			rule.Unsupported = append(rule.Unsupported, a.Name+": a key from a KMS or a Secret")
		case a.Notary != nil:
			rule.Unsupported = append(rule.Unsupported, a.Name+": Notary signatures")
		default:
			return fmt.Errorf("spec.attestors[%d]: no cosign or notary", i)
		}
		if a.Cosign != nil {
			if a.Cosign.CTLog != nil {
				at.Trust.RekorKey, at.Trust.CTLogKey = a.Cosign.CTLog.RekorPubKey, a.Cosign.CTLog.CTLogPubKey
				at.Authority.IgnoreSCT = a.Cosign.CTLog.InsecureIgnoreSCT
				at.Authority.IgnoreTlog = a.Cosign.CTLog.InsecureIgnoreTlog
				// A TSA chain makes cosign require signed timestamps
				// (pkg/image/verifiers/ivpol/cosign/opts.go).
				at.Trust.TSAChain = a.Cosign.CTLog.TSACertChain
				at.Authority.SignedTimestamps = a.Cosign.CTLog.TSACertChain != ""
			}
			if a.Cosign.Source != nil {
				rule.Unsupported = append(rule.Unsupported, a.Name+".source (signatures in another repository)")
			}
		}
		rule.Attestors = append(rule.Attestors, at)
	}
	for i, a := range spec.Attestations {
		switch {
		case a.InToto != nil && a.InToto.Type != "":
			rule.AttestationTypes[a.Name] = a.InToto.Type
		case a.Referrer != nil:
			rule.Unsupported = append(rule.Unsupported, a.Name+": referrer attestations")
		default:
			return fmt.Errorf("spec.attestations[%d]: no intoto type or referrer", i)
		}
	}
	for i, v := range spec.Variables {
		if v.Name == "" || strings.TrimSpace(v.Expression) == "" {
			return fmt.Errorf("spec.variables[%d]: want a name and an expression", i)
		}
	}
	rule.Variables = spec.Variables
	for i, e := range spec.Images {
		if e.Name == "" || strings.TrimSpace(e.Expression) == "" {
			return fmt.Errorf("spec.images[%d]: want a name and an expression", i)
		}
	}
	rule.ImageExtractors = spec.Images
	if len(spec.Validations) == 0 {
		return fmt.Errorf("spec.validations: none")
	}
	for i, v := range spec.Validations {
		if strings.TrimSpace(v.Expression) == "" {
			return fmt.Errorf("spec.validations[%d]: no expression", i)
		}
	}
	rule.Validations = spec.Validations
	p.Rules = append(p.Rules, rule)
	return nil
}

func appendIdentity(k *verify.Keyless, id verify.Identity) *verify.Keyless {
	if k == nil {
		k = &verify.Keyless{}
	}
	k.Identities = append(k.Identities, id)
	return k
}

// ivpolResourceRule is a rule of an admission policy's matchConstraints.
type ivpolResourceRule struct {
	APIGroups     []string `json:"apiGroups"`
	APIVersions   []string `json:"apiVersions"`
	Resources     []string `json:"resources"`
	Operations    []string `json:"operations"`
	ResourceNames []string `json:"resourceNames"`
}

// ivpolResourceFilters reads resource rules as admission matches them:
// any group, version and resource of a rule, "*" for any, and operations
// that must include CREATE ("*" does) for the rule to select what pregate
// sees. resourceNames is said unsupported.
func ivpolResourceFilters(rules []ivpolResourceRule, where string) ([]Filter, []string) {
	var out []Filter
	var unsupported []string
	for i, rr := range rules {
		var f Filter
		for _, g := range rr.APIGroups {
			for _, v := range rr.APIVersions {
				for _, r := range rr.Resources {
					res, sub, _ := strings.Cut(r, "/")
					f.Kinds = append(f.Kinds, Kind{Group: g, Version: v, Resource: res, Subresource: sub, AnyStar: true})
				}
			}
		}
		if len(f.Kinds) == 0 {
			f.Never = true
		}
		if !slices.ContainsFunc(rr.Operations, func(op string) bool { return op == "*" || op == "CREATE" }) {
			f.Never = true
		}
		if len(rr.ResourceNames) > 0 {
			unsupported = append(unsupported, fmt.Sprintf("%s[%d].resourceNames (a Pod's name is not known before it is created)", where, i))
		}
		out = append(out, f)
	}
	return out, unsupported
}
