package admission

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// Checker checks an image against a policy: the pipeline's verifier,
// which discovers each digest once whatever the number of policies.
type Checker func(ctx context.Context, image string, p *verify.Policy) (verify.Result, error)

// Compiled are the rules of a set of admission policies with the two
// verify policies of each (admission.Rule.Policies).
type Compiled struct {
	Rules []CompiledRule
	// NoMatch is what policy-controller does with an image no
	// ClusterImagePolicy covers, when there are ClusterImagePolicies:
	// its configuration ConfigMap's no-match-policy, deny by default;
	// noMatchFrom names that ConfigMap, if given.
	NoMatch     admission.NoMatch
	noMatchFrom string
	// noMatchProfile is the policy-controller release predicted.
	noMatchProfile admission.Profile
	// Namespaces are the labels of the namespaces known (the revision's
	// Namespace objects, the cluster's): policy-controller checks Pods
	// only in namespaces labelled policy.sigstore.dev/include: "true". A
	// namespace not known is taken to opt in.
	Namespaces map[string]map[string]string
}

// CompiledRule is one rule and how it is checked; a rule asking what
// pregate does not evaluate is not checked (its policies are nil), and is
// predicted Undecided.
type CompiledRule struct {
	admission.Rule
	// Profile is the engine release predicted.
	Profile     admission.Profile
	Engine, Own *verify.Policy
	ivpol       *ivpolPolicies
	// sets are the rule's attestor sets, each entry checked as a rule of
	// its own (admission.Rule.AttestorSets).
	sets []compiledSet
}

// compiledSet is an attestor set: need of its entries must verify.
type compiledSet struct {
	need    int
	entries []CompiledRule
}

// trustFunc gives the trust material authorities need with the trust a
// policy gives them, nil when they need none.
type trustFunc func(auths []verify.Authority, own admission.Trust) (root.TrustedMaterial, error)

// Compile compiles the rules of policies for the engine releases of
// profiles (each engine's newest known when not given). trust gives the
// default trust material of keyless signers and transparency logs (the
// Sigstore public-good instance unless a private deployment's is given);
// a rule's own roots and log keys replace its pieces (admission.Trust).
// It is asked once, and only when a rule needs it.
func Compile(policies []*admission.Policy, profiles admission.Profiles, trust func() (root.TrustedMaterial, error)) (Compiled, error) {
	var c Compiled
	var def root.TrustedMaterial
	loadDefault := func() (root.TrustedMaterial, error) {
		if def == nil {
			var err error
			if def, err = trust(); err != nil {
				return nil, fmt.Errorf("loading trust material: %w", err)
			}
		}
		return def, nil
	}
	built := map[admission.Trust]root.TrustedMaterial{}
	trustFor := func(auths []verify.Authority, own admission.Trust) (root.TrustedMaterial, error) {
		if !slices.ContainsFunc(auths, needsTrust) {
			return nil, nil
		}
		if own.IsZero() {
			return loadDefault()
		}
		if m, ok := built[own]; ok {
			return m, nil
		}
		m, err := own.Material(loadDefault)
		if err != nil {
			return nil, fmt.Errorf("the policy's own trust material: %w", err)
		}
		built[own] = m
		return m, nil
	}
	for _, p := range policies {
		switch {
		case p.NoMatch != "":
			c.NoMatch, c.noMatchFrom = p.NoMatch, p.ID()
		case p.Kind == "ClusterImagePolicy" && c.NoMatch == "":
			c.NoMatch = admission.NoMatchDeny
		}
		for _, r := range p.Rules {
			cr := CompiledRule{Rule: r, Profile: profiles.For(r.Engine)}
			if len(r.Unsupported) > 0 {
				c.Rules = append(c.Rules, cr)
				continue
			}
			if r.Format == admission.KyvernoIVPOL {
				ip, err := newIVPOLPolicies(r, cr.Profile, trustFor)
				if err != nil {
					return Compiled{}, fmt.Errorf("%s: %w", r.ID(), err)
				}
				cr.ivpol = ip
				c.Rules = append(c.Rules, cr)
				continue
			}
			trusted, err := trustFor(r.Authorities, r.Trust)
			if err != nil {
				return Compiled{}, fmt.Errorf("%s: %w", r.ID(), err)
			}
			if len(r.AttestorSets) > 0 {
				cr.sets = compileSets(cr, trusted)
				c.Rules = append(c.Rules, cr)
				continue
			}
			cr.Engine, cr.Own = r.Policies(cr.Profile, trusted)
			c.Rules = append(c.Rules, cr)
		}
	}
	c.noMatchProfile = profiles.For(admission.PolicyController)
	return c, nil
}

// needsTrust says whether checking with an authority needs trust
// material: a keyless signer, or a transparency log or timestamps to
// check.
func needsTrust(a verify.Authority) bool {
	return a.Keyless != nil || (a.Key != nil && !a.IgnoreTlog) || a.SignedTimestamps
}

// VerifyPolicies are every rule's verify policies, for the verifier.
func (c Compiled) VerifyPolicies() []*verify.Policy {
	var out []*verify.Policy
	for _, r := range c.Rules {
		if r.Engine != nil {
			out = append(out, r.Engine)
		}
		if r.Own != nil {
			out = append(out, r.Own)
		}
		if r.ivpol != nil {
			out = append(out, r.ivpol.all()...)
		}
		for _, set := range r.sets {
			out = append(out, Compiled{Rules: set.entries}.VerifyPolicies()...)
		}
	}
	return out
}

// Check predicts every rule that covers an image of the revision and
// whose match selects an object it runs in (the workload, its Pods), at
// most concurrency checks at a time. An error means ctx ended.
func (c Compiled) Check(ctx context.Context, images []gate.Image, check Checker, concurrency int) ([]gate.Admission, error) {
	type job struct {
		rule    CompiledRule
		image   gate.Image
		objects []admission.Object // those the rule applies to
		// unknown says why whether the rule applies is not known.
		unknown error
	}
	var jobs []job
	var unmatched []gate.Admission
	for _, img := range images {
		objects := admission.Objects(img, c.namespaceLabels)
		policyController := make([]bool, len(objects)) // the objects a ClusterImagePolicy selects
		for _, r := range c.Rules {
			if !r.Covers(img) {
				continue
			}
			var selected []admission.Object
			var unknown error
			for i, o := range objects {
				if !r.Match.Applies(o) || (r.Rule.Engine == admission.PolicyController && !c.optedIn(o)) {
					continue
				}
				hold, err := r.ConditionsHold(o)
				if err != nil {
					unknown = cmp.Or(unknown, err)
				} else if !hold {
					continue
				}
				selected = append(selected, o)
				policyController[i] = policyController[i] || r.Rule.Engine == admission.PolicyController
			}
			if len(selected) == 0 {
				continue
			}
			r.Action = strictestAction(r.Rule, selected)
			jobs = append(jobs, job{r, img, selected, unknown})
		}
		unmatched = append(unmatched, c.noMatch(img, objects, policyController)...)
	}
	if concurrency <= 0 {
		concurrency = 8
	}
	out := make([]gate.Admission, len(jobs))
	ivpol := make([]ivpolPrediction, len(jobs))
	actions := make([]admission.Action, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			switch {
			case j.unknown != nil:
				out[i] = gate.Admission{Engine: j.rule.Profile.String(), Policy: j.rule.Policy, Rule: j.rule.Name, Image: j.image.Ref, Digest: j.image.Digest,
					Outcome: Undecided, Message: "not predicted: whether the rule applies is not known: " + j.unknown.Error()}
				return
			case j.rule.RequiresDigest && !byDigest(j.image):
				out[i] = gate.Admission{Engine: j.rule.Profile.String(), Policy: j.rule.Policy, Rule: j.rule.Name, Image: j.image.Ref,
					Outcome: failed(j.rule.Action), Message: "the image is named by tag, and the rule verifies a digest without writing one in (verifyDigest with mutateDigest: false)",
					Fix: "pin the image by digest (pregate check --pin-digests), or set mutateDigest: true"}
				return
			case len(j.rule.sets) > 0:
				out[i], errs[i] = predictSets(ctx, j.rule, j.image, check)
				return
			case j.rule.ivpol != nil:
				out[i], ivpol[i], errs[i] = predictIVPOL(ctx, j.rule, j.image, pods(j.objects), check)
				actions[i] = j.rule.Action
				return
			}
			out[i], _, errs[i] = predictRule(ctx, j.rule, j.image.Ref, check)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	enforceRequired(out, ivpol, actions)
	for i, j := range jobs {
		out[i].Action = string(j.rule.Action)
	}
	return append(anyAuthority(out), unmatched...), nil
}

// predictRule checks image as the rule's engine reads it and as pregate
// does, and predicts the engine's answer; own is pregate's check, zero
// for a rule that is not checked.
func predictRule(ctx context.Context, r CompiledRule, image string, check Checker) (p Prediction, own verify.Result, err error) {
	if r.Own == nil {
		own = verify.Result{Subject: verify.Subject{Ref: image}}
		return Predict(r.Rule, r.Profile, nil, own), own, nil
	}
	var engine *verify.Result
	if r.Engine != nil {
		res, err := check(ctx, image, r.Engine)
		if err != nil {
			return Prediction{}, own, err
		}
		engine = &res
	}
	if own, err = check(ctx, image, r.Own); err != nil {
		return Prediction{}, own, err
	}
	return Predict(r.Rule, r.Profile, engine, own), own, nil
}

// compileSets compiles each entry of a rule's attestor sets as a rule of
// its own, with the rule's trust material.
func compileSets(cr CompiledRule, trusted root.TrustedMaterial) []compiledSet {
	var out []compiledSet
	for _, set := range cr.AttestorSets {
		cs := compiledSet{need: set.Need}
		for _, e := range set.Entries {
			sub := cr
			sub.Name, sub.Authorities, sub.AttestorSets = cr.Name+" "+e.Name, e.Authorities, nil
			sub.Engine, sub.Own = sub.Policies(cr.Profile, trusted)
			cs.entries = append(cs.entries, sub)
		}
		out = append(out, cs)
	}
	return out
}

// predictSets predicts a rule with attestor sets: it passes when every
// set has need entries that pass. Each entry is predicted as a rule of
// its own; a set the engine fails while pregate's reading passes it can
// never pass, for the reason its first failing entry gives.
func predictSets(ctx context.Context, r CompiledRule, img gate.Image, check Checker) (gate.Admission, error) {
	pred := gate.Admission{Engine: r.Profile.String(), Policy: r.Policy, Rule: r.Name, Image: img.Ref, Digest: img.Digest}
	engineOK, ownOK := true, true
	var notes []string
	var missed *gate.Admission // the first entry the engine misses that pregate accepts
	for si, set := range r.sets {
		engineN, ownN := 0, 0
		for _, e := range set.entries {
			p, own, err := predictRule(ctx, e, img.Ref, check)
			if err != nil {
				return gate.Admission{}, err
			}
			pred.Digest = cmp.Or(pred.Digest, p.Digest)
			switch {
			case p.Outcome == Undecided:
				pred.Outcome, pred.Message = Undecided, e.Name+": "+p.Message
				return pred, nil
			case p.Outcome == Admit:
				engineN++
			case p.NeverPasses && missed == nil:
				missed = &p
			}
			if own.Status == verify.Verified {
				ownN++
			}
		}
		if engineN < set.need {
			engineOK = false
			notes = append(notes, fmt.Sprintf("attestors[%d]: %d of %d entries verify, %d needed", si, engineN, len(set.entries), set.need))
		}
		ownOK = ownOK && ownN >= set.need
	}
	pred.Pregate = verify.NoSignatures
	if ownOK {
		pred.Pregate = verify.Verified
	}
	if engineOK {
		pred.Outcome, pred.Message = Admit, "every attestor set passes"
		if !ownOK {
			pred.Message += "; pregate alone would not pass every set"
		}
		return pred, nil
	}
	pred.Outcome, pred.Message = failed(r.Action), strings.Join(notes, "; ")
	if ownOK && missed != nil {
		pred.NeverPasses = true
		pred.Exists, pred.Why, pred.Fix, pred.Quirk = missed.Exists, missed.Why, missed.Fix, missed.Quirk
	}
	return pred, nil
}

// byDigest says whether every place the image appears names it by
// digest.
func byDigest(img gate.Image) bool {
	if len(img.Locations) == 0 {
		return img.Digest != ""
	}
	for _, l := range img.Locations {
		if !strings.Contains(l.Raw, "@") {
			return false
		}
	}
	return true
}

// HasAuditOrWarn says whether a rule audits or warns rather than denies,
// in some namespace.
func (c Compiled) HasAuditOrWarn() bool {
	return slices.ContainsFunc(c.Rules, func(r CompiledRule) bool {
		return r.Action != admission.Enforce || slices.ContainsFunc(r.ActionOverrides, func(o admission.ActionOverride) bool { return o.Action != admission.Enforce })
	})
}

// ReadsNamespaces says whether the predictions depend on namespaces'
// labels: policy-controller's opt-in label, a namespace selector.
func (c Compiled) ReadsNamespaces() bool {
	return c.NoMatch != "" || slices.ContainsFunc(c.Rules, func(r CompiledRule) bool { return r.Match.ReadsNamespaces() })
}

// namespaceLabels are a namespace's labels, nil when it is not known.
func (c Compiled) namespaceLabels(ns string) map[string]string {
	return c.Namespaces[ns]
}

// optedIn says whether policy-controller checks the object: its namespace
// opts in, or is not known.
func (c Compiled) optedIn(o admission.Object) bool {
	return o.NamespaceLabels == nil || o.NamespaceLabels[admission.NamespaceOptIn] == "true"
}

// noMatch is policy-controller's answer for the objects of an image that
// no ClusterImagePolicy selects (pkg/webhook/validator.go
// setNoMatchingPoliciesError), when there are ClusterImagePolicies and it
// does not allow such images; selected says which objects some policy
// selects.
func (c Compiled) noMatch(img gate.Image, objects []admission.Object, selected []bool) []gate.Admission {
	var outcome Outcome
	switch c.NoMatch {
	case admission.NoMatchDeny:
		outcome = Deny
	case admission.NoMatchWarn:
		outcome = Warn
	default:
		return nil
	}
	var missed []string
	for i, o := range objects {
		if c.optedIn(o) && !selected[i] {
			missed = append(missed, describeObject(o))
		}
	}
	if len(missed) == 0 {
		return nil
	}
	from := c.noMatchFrom
	setting := fmt.Sprintf("no-match-policy is %s", c.NoMatch)
	if from == "" {
		from = "ConfigMap/" + admission.PolicyControllerConfigMap
		setting += " (the default; its ConfigMap was not given)"
	}
	why := fmt.Sprintf("no ClusterImagePolicy glob matches %s, the name policy-controller's webhook matches", admission.WebhookName(img))
	fix := ""
	if slices.Contains(selected, true) {
		why = fmt.Sprintf("the ClusterImagePolicies whose globs match %s select by spec.match, and none selects %s",
			admission.WebhookName(img), strings.Join(missed, ", "))
		fix = "add the workload's resource (or its labels) to spec.match: policy-controller checks the workload as well as its Pods, or set no-match-policy: allow"
	}
	action := admission.Enforce
	if outcome == Warn {
		action = admission.Warn
	}
	return []gate.Admission{{
		Engine: c.noMatchProfile.String(), Policy: from, Rule: "no-match-policy", Image: img.Ref, Digest: img.Digest, Outcome: outcome, Action: string(action),
		Message: why + ", and its " + setting, Fix: fix,
	}}
}

// pods are the Pods among objects.
func pods(objects []admission.Object) []admission.Object {
	var out []admission.Object
	for _, o := range objects {
		if o.Group == "" && o.Kind == "Pod" {
			out = append(out, o)
		}
	}
	return out
}

// describeObject names an object as admission sees it: Kind/namespace/name,
// or a Pod to be created.
func describeObject(o admission.Object) string {
	id := o.Kind
	if o.Namespace != "" {
		id += "/" + o.Namespace
	}
	if o.Name == "" {
		return "a " + id + " it creates"
	}
	return id + "/" + o.Name
}

// anyAuthority combines a policy-controller policy's authorities, each
// predicted as a rule of its own: any one of them admits the image (every
// matching policy must pass, any authority of a policy may). When one
// admits, it stands for the policy; otherwise every authority's answer is
// kept, each saying why it fails.
func anyAuthority(preds []gate.Admission) []gate.Admission {
	admitted := map[string]bool{}
	key := func(p gate.Admission) string { return p.Policy + "\x00" + p.Image }
	for _, p := range preds {
		if isPolicyController(p) && p.Outcome == Admit {
			admitted[key(p)] = true
		}
	}
	out := preds[:0:0]
	kept := map[string]bool{}
	for _, p := range preds {
		if isPolicyController(p) && admitted[key(p)] {
			if p.Outcome != Admit || kept[key(p)] {
				continue
			}
			kept[key(p)] = true
		}
		out = append(out, p)
	}
	return out
}

func isPolicyController(p gate.Admission) bool {
	e, _, _ := strings.Cut(p.Engine, "@")
	return e == string(admission.PolicyController)
}

// strictestAction is the rule's action for the image: with per-namespace
// overrides, the strictest among the namespaces of the objects it applies
// to (one denial is enough to break the revision).
func strictestAction(r admission.Rule, objects []admission.Object) admission.Action {
	if len(r.ActionOverrides) == 0 {
		return r.Action
	}
	rank := map[admission.Action]int{admission.Enforce: 0, admission.Warn: 1, admission.Audit: 2}
	var best admission.Action
	for _, o := range objects {
		if a := r.ActionIn(o.Namespace); best == "" || rank[a] < rank[best] {
			best = a
		}
	}
	return best
}

// Namespaces are the namespaces of the objects the image is in.
func Namespaces(img gate.Image) []string {
	var out []string
	for _, l := range img.Locations {
		if parts := strings.Split(l.Object, "/"); len(parts) == 3 && !slices.Contains(out, parts[1]) {
			out = append(out, parts[1])
		}
	}
	return out
}

// podImages are the lists of a Pod's images an ImageValidatingPolicy
// sees (images.containers, initContainers, ephemeralContainers), holding
// img where its locations put it.
func podImages(img gate.Image) map[string][]string {
	out := map[string][]string{"containers": {}, "initContainers": {}, "ephemeralContainers": {}}
	for _, l := range img.Locations {
		list := "containers"
		switch {
		case strings.Contains(l.Path, "initContainers["):
			list = "initContainers"
		case strings.Contains(l.Path, "ephemeralContainers["):
			list = "ephemeralContainers"
		}
		if len(out[list]) == 0 {
			out[list] = append(out[list], img.Ref)
		}
	}
	if len(img.Locations) == 0 {
		out["containers"] = []string{img.Ref}
	}
	return out
}
