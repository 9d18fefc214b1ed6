package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/verify"
)

// LintResult is what pregate reads of policy files without a registry: each
// policy as read, and the findings.
type LintResult struct {
	Policies []LintedPolicy      `json:"policies"`
	Findings []admission.Finding `json:"findings"`
}

// LintedPolicy is one policy as read.
type LintedPolicy struct {
	File string `json:"file"`
	// ID is Kind/name (Kind/namespace/name); Engine the engine release
	// its rules are read for, or "pregate" for a TrustPolicy.
	ID     string       `json:"id"`
	Engine string       `json:"engine"`
	Rules  []LintedRule `json:"rules,omitempty"`
}

// LintedRule is a rule as read: what it covers, how its engine reads
// signatures, its signers, attestations and action.
type LintedRule struct {
	Name         string   `json:"name"`
	Images       []string `json:"images"`
	Skip         []string `json:"skip,omitempty"`
	Reads        string   `json:"reads"`
	Signers      []string `json:"signers"`
	Attestations []string `json:"attestations,omitempty"`
	Action       string   `json:"action"`
	Unsupported  []string `json:"unsupported,omitempty"`
	Inactive     string   `json:"inactive,omitempty"`
}

// Errors says whether a finding is an error.
func (r LintResult) Errors() bool {
	for _, f := range r.Findings {
		if f.Severity == admission.SeverityError {
			return true
		}
	}
	return false
}

// LintFile reads one policy file's objects for Lint: admission policies
// (Kyverno, policy-controller) and pregate's TrustPolicies and TrustRoots.
// A policy that does not read is an error finding naming it and why; an
// object of another kind is an info finding.
func LintFile(name string, data []byte, profiles admission.Profiles, res *LintResult) {
	errFinding := func(id, msg string) {
		res.Findings = append(res.Findings, admission.Finding{Severity: admission.SeverityError, Check: "unreadable", File: name, Policy: id, Message: msg})
	}
	objs, err := render.DecodeObjects(name, data)
	if err != nil {
		errFinding(name, err.Error())
		return
	}
	var admissions []*admission.Policy
	for i, obj := range objs {
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		group, _, _ := strings.Cut(apiVersion, "/")
		if group == v1alpha1.GroupVersion.Group {
			lintTrust(name, i, obj, res)
			continue
		}
		p, ok, err := admission.Read(name, obj)
		switch {
		case err != nil:
			errFinding(fmt.Sprintf("%s document %d (%s)", name, i+1, kind), err.Error())
		case !ok:
			res.Findings = append(res.Findings, admission.Finding{Severity: admission.SeverityInfo, Check: "not-a-policy", File: name,
				Policy: fmt.Sprintf("%s document %d", name, i+1), Message: fmt.Sprintf("%s %s is not a policy pregate reads; left out", apiVersion, kind)})
		default:
			admissions = append(admissions, p)
		}
	}
	for _, p := range admissions {
		if p.TrustRoot != nil {
			res.Policies = append(res.Policies, LintedPolicy{File: name, ID: p.ID(), Engine: string(p.Engine)})
		}
	}
	for _, p := range admission.ResolveTrustRoots(admissions) {
		lp := LintedPolicy{File: name, ID: p.ID(), Engine: string(p.Engine)}
		if len(p.Rules) > 0 {
			lp.Engine = profiles.For(p.Engine).String()
		}
		for _, r := range p.Rules {
			lp.Rules = append(lp.Rules, lintedRule(r, profiles.For(r.Engine)))
		}
		res.Policies = append(res.Policies, lp)
		res.Findings = append(res.Findings, admission.Lint(p, profiles)...)
	}
}

// lintTrust reads one of pregate's own objects through the policy file
// loader, which validates it.
func lintTrust(name string, i int, obj map[string]any, res *LintResult) {
	b, err := json.Marshal(obj)
	if err == nil {
		var set *config.Set
		if set, err = config.Load(name, b); err == nil {
			for _, tp := range set.TrustPolicies() {
				res.Policies = append(res.Policies, LintedPolicy{File: name, ID: v1alpha1.TrustPolicyKind + "/" + tp.Name, Engine: "pregate",
					Rules: []LintedRule{trustPolicyRule(tp)}})
			}
			for _, tr := range set.TrustRoots() {
				res.Policies = append(res.Policies, LintedPolicy{File: name, ID: v1alpha1.TrustRootKind + "/" + tr.Name, Engine: "pregate"})
			}
			return
		}
	}
	kind, _ := obj["kind"].(string)
	res.Findings = append(res.Findings, admission.Finding{Severity: admission.SeverityError, Check: "unreadable", File: name,
		Policy: fmt.Sprintf("%s document %d (%s)", name, i+1, kind), Message: err.Error()})
}

func lintedRule(r admission.Rule, p admission.Profile) LintedRule {
	lr := LintedRule{Name: r.Name, Images: r.Images, Skip: r.Skip, Reads: r.Reads(p).String(), Action: string(r.Action), Unsupported: r.Unsupported, Inactive: r.Inactive}
	for _, a := range r.Authorities {
		lr.Signers = append(lr.Signers, describeAuthority(a, identities(a)))
	}
	for _, a := range r.Attestors {
		lr.Signers = append(lr.Signers, a.Name+": "+describeAuthority(a.Authority, identities(a.Authority)))
	}
	for _, a := range r.Attestations {
		lr.Attestations = append(lr.Attestations, a.PredicateType)
	}
	for name, t := range r.AttestationTypes {
		lr.Attestations = append(lr.Attestations, name+": "+t)
	}
	return lr
}

// identities describe a keyless authority's identities, as pregate
// matches them.
func identities(a verify.Authority) []string {
	var out []string
	if a.Keyless != nil {
		for _, id := range a.Keyless.Identities {
			out = append(out, id.Subject+id.SubjectRegExp+" ("+id.Issuer+id.IssuerRegExp+")")
		}
	}
	return out
}

func describeAuthority(a verify.Authority, ids []string) string {
	switch {
	case a.Keyless != nil:
		if len(ids) == 0 {
			return "keyless"
		}
		return "keyless " + strings.Join(ids, ", ")
	case a.Key != nil:
		return "public key"
	case a.Static != nil:
		return "static"
	}
	return "not read (Notary, KMS or a Secret)"
}

func trustPolicyRule(tp *v1alpha1.TrustPolicy) LintedRule {
	lr := LintedRule{Name: tp.Name, Reads: "every place and format", Action: string(tp.Spec.Mode)}
	for _, im := range tp.Spec.Images {
		lr.Images = append(lr.Images, im.Glob)
	}
	for _, a := range tp.Spec.Authorities {
		switch {
		case a.Keyless != nil:
			var ids []string
			for _, id := range a.Keyless.Identities {
				ids = append(ids, id.Subject+id.SubjectRegExp+" ("+id.Issuer+id.IssuerRegExp+")")
			}
			lr.Signers = append(lr.Signers, a.Name+": keyless "+strings.Join(ids, ", "))
		case a.Key != nil:
			lr.Signers = append(lr.Signers, a.Name+": public key")
		default:
			lr.Signers = append(lr.Signers, a.Name+": static")
		}
	}
	for _, a := range tp.Spec.Attestations {
		lr.Attestations = append(lr.Attestations, a.PredicateType)
	}
	return lr
}
