package admission

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/functions"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// An ImageValidatingPolicy decides with CEL validations over the Pod's
// images, calling verifyImageSignatures(image, [attestors.a, …]) (how many
// of the attestors verify the image) and verifyAttestationSignatures(image,
// attestations.x, [attestors.a, …]) (how many verify an attestation of that
// type). pregate evaluates the validations with cel-go twice, with the
// functions checking as Kyverno reads signatures and as pregate does.

// viewPolicies are the engine's and pregate's policy for one check.
type viewPolicies struct{ engine, own *verify.Policy }

// ivpolPolicies are an ImageValidatingPolicy rule's verify policies: per
// attestor, and per attestation and attestor.
type ivpolPolicies struct {
	profile      admission.Profile
	signatures   map[string]viewPolicies    // attestor name
	attestations map[[2]string]viewPolicies // attestation name, attestor name
	// variables and validations are the compiled expressions in env, or
	// compileErr why they do not compile.
	env         *cel.Env
	extractors  []*cel.Ast // the rule's ImageExtractors
	variables   []*cel.Ast
	validations []*cel.Ast
	compileErr  error
}

// newIVPOLPolicies makes the policies of an ImageValidatingPolicy rule.
func newIVPOLPolicies(r admission.Rule, profile admission.Profile, trusted trustFunc) (*ivpolPolicies, error) {
	p := &ivpolPolicies{profile: profile, signatures: map[string]viewPolicies{}, attestations: map[[2]string]viewPolicies{}}
	p.compileErr = p.compile(r)
	for _, a := range r.Attestors {
		tm, err := trusted([]verify.Authority{a.Authority}, a.Trust)
		if err != nil {
			return nil, err
		}
		e, o := r.AttestorPolicies(profile, a, "", tm)
		p.signatures[a.Name] = viewPolicies{e, o}
		for name, typ := range r.AttestationTypes {
			e, o := r.AttestorPolicies(profile, a, typ, tm)
			p.attestations[[2]string{name, a.Name}] = viewPolicies{e, o}
		}
	}
	return p, nil
}

func (p *ivpolPolicies) all() []*verify.Policy {
	var out []*verify.Policy
	for _, v := range p.signatures {
		out = append(out, v.engine, v.own)
	}
	for _, v := range p.attestations {
		out = append(out, v.engine, v.own)
	}
	return out
}

// ivpolView evaluates validations with one view's checks, and records what
// the checks found.
type ivpolView struct {
	ctx      context.Context
	rule     admission.Rule
	policies *ivpolPolicies
	engine   bool
	check    Checker
	// image is the image predicted, raws its names in the Pod.
	image string
	raws  []string
	// accepted are what verified; refused the quirks by which the engine
	// refused what verified, and notes what they say of it; digest what
	// the image resolved to; err the first check that could not run.
	accepted []verify.Result
	refused  []admission.Quirk
	notes    []string
	digest   string
	err      error
	// verified records, for each image a check was asked of, whether one
	// verified (Kyverno's ImageVerificationResults).
	verified map[string]bool
}

func (v *ivpolView) policy(vp viewPolicies) *verify.Policy {
	if v.engine {
		return vp.engine
	}
	return vp.own
}

// count checks image against each named attestor (and attestation) and
// returns how many verified.
func (v *ivpolView) count(image, attestation string, attestors ref.Val) ref.Val {
	names, err := stringList(attestors)
	if err != nil {
		return types.NewErr("%v", err)
	}
	fn := "verifyImageSignatures"
	if attestation != "" {
		fn = "verifyAttestationSignatures"
	}
	if image != v.image && !slices.Contains(v.raws, image) {
		// Another image of the Pod. Kyverno gives 0 for one its
		// matchImageReferences do not cover, and checks none; one they
		// cover has a prediction of its own, and is taken to verify here,
		// so that a denial is told on the image that causes it.
		if !v.rule.CoversRef(image) {
			v.note(fmt.Sprintf("%s(%q) is 0: the Pod's image %s is not covered by matchImageReferences", fn, image, image))
			return types.Int(0)
		}
		return types.Int(len(names))
	}
	image = v.image
	n := 0
	for _, name := range names {
		var vp viewPolicies
		var ok bool
		if attestation == "" {
			vp, ok = v.policies.signatures[name]
		} else {
			vp, ok = v.policies.attestations[[2]string{attestation, name}]
		}
		if !ok {
			return types.NewErr("no attestor %q or attestation %q", name, attestation)
		}
		res, err := v.check(v.ctx, image, v.policy(vp))
		if err != nil {
			v.err = err
			return types.NewErr("%v", err)
		}
		if v.digest == "" {
			v.digest = res.Subject.Digest
		}
		if res.Status != verify.Verified {
			continue
		}
		if v.engine && v.refuses(name, res) {
			continue
		}
		v.accepted = append(v.accepted, res)
		n++
	}
	if len(names) > 0 {
		if v.verified == nil {
			v.verified = map[string]bool{}
		}
		v.verified[image] = v.verified[image] || n > 0
	}
	return types.Int(n)
}

// note adds what the engine's view says of a check, once.
func (v *ivpolView) note(s string) {
	if v.engine && !slices.Contains(v.notes, s) {
		v.notes = append(v.notes, s)
	}
}

// refuses applies the engine release's quirks that fail an attestor
// whatever verified: several keyless identities on the bundle path
// (QuirkOneIdentity), and a key attestor over bundles (QuirkIVPOLKeyBundle,
// QuirkIVPOLKeyTlogCrash).
func (v *ivpolView) refuses(name string, res verify.Result) bool {
	bundle := slices.ContainsFunc(res.Considered, func(c verify.Consideration) bool { return c.Accepted && c.Format == verify.BundleFormat })
	if !bundle {
		return false
	}
	i := slices.IndexFunc(v.rule.Attestors, func(a admission.Attestor) bool { return a.Name == name })
	if i < 0 {
		return false
	}
	a := v.rule.Attestors[i]
	refuse := func(id, note string) bool {
		q, ok := v.policies.profile.Quirk(id)
		if ok {
			v.refused = append(v.refused, q)
			v.notes = append(v.notes, note)
		}
		return ok
	}
	switch {
	case a.Identities > 1:
		return refuse(admission.QuirkOneIdentity, fmt.Sprintf("attestor %q lists %d keyless identities, and %s's bundle path (sigstore-go) refuses them: "+
			"\"multiple identities are not supported at this time\"", name, a.Identities, v.policies.profile))
	case a.Authority.Key != nil && !a.Authority.IgnoreTlog:
		if refuse(admission.QuirkIVPOLKeyTlogCrash, fmt.Sprintf("key attestor %q checks the transparency log, and %s crashes on bundles with it (kyverno#16435)", name, v.policies.profile)) {
			return true
		}
		fallthrough
	case a.Authority.Key != nil:
		return refuse(admission.QuirkIVPOLKeyBundle, fmt.Sprintf("key attestor %q over Sigstore bundles fails in %s (kyverno#17363)", name, v.policies.profile))
	}
	return false
}

var stringSliceType = reflect.TypeFor[[]string]()

func stringList(v ref.Val) ([]string, error) {
	native, err := v.ConvertToNative(stringSliceType)
	if err != nil {
		return nil, fmt.Errorf("attestors: want a list of attestors: %w", err)
	}
	return native.([]string), nil //nolint:forcetypeassert // ConvertToNative returns the type asked
}

// validationEnv is the CEL environment of an ImageValidatingPolicy's
// validations. The image functions are bound when a view evaluates them
// (ivpolView.overloads): the expressions are compiled once per policy.
func validationEnv() (*cel.Env, error) {
	return cel.NewEnv(append(append(admission.CELLibraries(), admission.RequestVariables()...),
		cel.Variable("images", cel.MapType(cel.StringType, cel.ListType(cel.StringType))),
		cel.Variable("attestors", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("attestations", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("variables", cel.MapType(cel.StringType, cel.DynType)),
		cel.Function("verifyImageSignatures", cel.Overload(verifyImageSignaturesID,
			[]*cel.Type{cel.StringType, cel.ListType(cel.StringType)}, cel.IntType, cel.LateFunctionBinding())),
		cel.Function("verifyAttestationSignatures", cel.Overload(verifyAttestationSignaturesID,
			[]*cel.Type{cel.StringType, cel.StringType, cel.ListType(cel.StringType)}, cel.IntType, cel.LateFunctionBinding())),
	)...)
}

// The overloads of the image functions.
const (
	verifyImageSignaturesID       = "verifyImageSignatures_string_list"
	verifyAttestationSignaturesID = "verifyAttestationSignatures_string_string_list"
)

// compile compiles a rule's image extractors, variables and validations
// once; an expression that does not compile (one calling a Kyverno
// function pregate does not give) makes every prediction of the rule
// Undecided.
func (p *ivpolPolicies) compile(r admission.Rule) error {
	var err error
	if p.env, err = validationEnv(); err != nil {
		return err
	}
	comp := func(expr, what string) (*cel.Ast, error) {
		ast, iss := p.env.Compile(expr)
		if iss.Err() != nil {
			return nil, fmt.Errorf("%s: %w", what, iss.Err())
		}
		return ast, nil
	}
	for i, e := range r.ImageExtractors {
		ast, err := comp(e.Expression, fmt.Sprintf("images[%d] (%s)", i, e.Name))
		if err != nil {
			return err
		}
		p.extractors = append(p.extractors, ast)
	}
	for i, v := range r.Variables {
		ast, err := comp(v.Expression, fmt.Sprintf("variables[%d] (%s)", i, v.Name))
		if err != nil {
			return err
		}
		p.variables = append(p.variables, ast)
	}
	for i, val := range r.Validations {
		ast, err := comp(val.Expression, fmt.Sprintf("validations[%d]", i))
		if err != nil {
			return err
		}
		p.validations = append(p.validations, ast)
	}
	return nil
}

// overloads bind the image functions to this view's checks.
func (v *ivpolView) overloads() []*functions.Overload {
	return []*functions.Overload{
		{Operator: verifyImageSignaturesID, Binary: func(image, list ref.Val) ref.Val {
			return v.count(string(image.(types.String)), "", list) //nolint:forcetypeassert // the checker typed it
		}},
		{Operator: verifyAttestationSignaturesID, Function: func(args ...ref.Val) ref.Val {
			return v.count(string(args[0].(types.String)), string(args[1].(types.String)), args[2]) //nolint:forcetypeassert // likewise
		}},
	}
}

// evaluate runs every validation; the first that does not hold, or fails,
// is returned with its message.
func (v *ivpolView) evaluate(images map[string][]string, pod admission.Object) (bool, string, error) {
	if v.policies.compileErr != nil {
		return false, "", v.policies.compileErr
	}
	images, err := v.images(images, pod)
	if err != nil {
		return false, "", err
	}
	attestors := map[string]string{}
	for _, a := range v.rule.Attestors {
		attestors[a.Name] = a.Name
	}
	attestations := map[string]string{}
	for name := range v.rule.AttestationTypes {
		attestations[name] = name
	}
	// Variables are evaluated in order, each seeing those before it, as
	// the policy declares them.
	vars := map[string]any{}
	activation, err := pod.CELVars(map[string]any{"images": images, "attestors": attestors, "attestations": attestations, "variables": vars})
	if err != nil {
		return false, "", err
	}
	eval := func(ast *cel.Ast, what string) (ref.Val, error) {
		// cel.Functions is the way to bind a late-bound function per
		// program.
		prg, err := v.policies.env.Program(ast, cel.Functions(v.overloads()...), //nolint:staticcheck // see above
			cel.CostLimit(admission.CELCostLimit), cel.EvalOptions(cel.OptPartialEval))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out, err := admission.CELResult(prg.Eval(activation))
		if v.err != nil {
			return nil, v.err
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return out, nil
	}
	for i, variable := range v.rule.Variables {
		out, err := eval(v.policies.variables[i], fmt.Sprintf("variables[%d] (%s)", i, variable.Name))
		if err != nil {
			return false, "", err
		}
		vars[variable.Name] = out
	}
	for i, val := range v.rule.Validations {
		out, err := eval(v.policies.validations[i], fmt.Sprintf("validations[%d]", i))
		if err != nil {
			return false, "", err
		}
		ok, isBool := out.Value().(bool)
		if !isBool {
			return false, "", fmt.Errorf("validations[%d]: %s is not a bool", i, out.Type())
		}
		if !ok {
			msg := strings.TrimSpace(val.Message)
			if msg == "" {
				msg = fmt.Sprintf("validation %q failed", strings.TrimSpace(val.Expression))
			}
			return false, msg, nil
		}
	}
	return true, "", nil
}

// ivpolPrediction is an ImageValidatingPolicy rule's prediction for an
// image, with what the engine's verification functions recorded.
type ivpolPrediction struct {
	verified map[string]bool
	// required: the validations held, and the image must have been
	// verified, by this policy or another of the request
	// (admission.Rule.NotRequired).
	required bool
}

// images are the lists of images the validations read: the Pod's
// containers, initContainers and ephemeralContainers as it names them
// (Kyverno's image extractors for Pods), else, when the Pod is not known,
// fallback; and the rule's own extractors, evaluated over the Pod.
func (v *ivpolView) images(fallback map[string][]string, pod admission.Object) (map[string][]string, error) {
	images := fallback
	if pod.Pod != nil {
		images = map[string][]string{}
		spec, _ := pod.Pod["spec"].(map[string]any)
		for _, field := range []string{"containers", "initContainers", "ephemeralContainers"} {
			images[field] = []string{}
			list, _ := spec[field].([]any)
			for _, c := range list {
				if image, ok := c.(map[string]any)["image"].(string); ok {
					images[field] = append(images[field], image)
				}
			}
		}
	}
	if len(v.policies.extractors) == 0 {
		return images, nil
	}
	activation, err := pod.CELVars(nil)
	if err != nil {
		return nil, err
	}
	images = maps.Clone(images)
	for i, ast := range v.policies.extractors {
		e := v.rule.ImageExtractors[i]
		prg, err := v.policies.env.Program(ast, cel.CostLimit(admission.CELCostLimit), cel.EvalOptions(cel.OptPartialEval))
		if err != nil {
			return nil, fmt.Errorf("images[%d] (%s): %w", i, e.Name, err)
		}
		out, err := admission.CELResult(prg.Eval(activation))
		if err == nil {
			images[e.Name], err = stringList(out)
		}
		if err != nil {
			return nil, fmt.Errorf("images[%d] (%s): %w", i, e.Name, err)
		}
	}
	return images, nil
}

// predictIVPOL predicts an ImageValidatingPolicy rule for one image in
// each of the Pods it applies to, and keeps the first answer that does
// not admit it, else the first.
func predictIVPOL(ctx context.Context, r CompiledRule, img gate.Image, pods []admission.Object, check Checker) (gate.Admission, ivpolPrediction, error) {
	if len(pods) == 0 {
		pods = []admission.Object{{Version: "v1", Kind: "Pod"}}
	}
	var first gate.Admission
	var ip ivpolPrediction
	for i, pod := range pods {
		p, pip, err := predictIVPOLPod(ctx, r, img, pod, check)
		if err != nil {
			return gate.Admission{}, ivpolPrediction{}, err
		}
		ip.required = ip.required || pip.required
		for image, ok := range pip.verified {
			if ip.verified == nil {
				ip.verified = map[string]bool{}
			}
			ip.verified[image] = ip.verified[image] || ok
		}
		if p.Outcome != Admit {
			return p, ip, nil
		}
		if i == 0 {
			first = p
		}
	}
	return first, ip, nil
}

// predictIVPOLPod predicts an ImageValidatingPolicy rule for one image in
// one Pod, whose places in it are images (containers, initContainers,
// ephemeralContainers).
func predictIVPOLPod(ctx context.Context, r CompiledRule, img gate.Image, pod admission.Object, check Checker) (gate.Admission, ivpolPrediction, error) {
	image, images := img.Ref, podImages(img)
	p := gate.Admission{Engine: r.Profile.String(), Policy: r.Policy, Rule: r.Name, Image: image, Digest: img.Digest}
	raws := admission.RawRefs(img)
	engine := &ivpolView{ctx: ctx, rule: r.Rule, policies: r.ivpol, engine: true, check: check, image: image, raws: raws}
	own := &ivpolView{ctx: ctx, rule: r.Rule, policies: r.ivpol, check: check, image: image, raws: raws}
	engineOK, engineMsg, err := engine.evaluate(images, pod)
	if err == nil {
		var ownOK bool
		ownOK, _, err = own.evaluate(images, pod)
		if err == nil {
			p.Digest = cmp.Or(p.Digest, engine.digest, own.digest)
			p.Pregate = verify.NoSignatures
			if ownOK && (own.verified[image] || r.NotRequired) {
				p.Pregate = verify.Verified
			}
			var ip ivpolPrediction
			switch {
			case engineOK && !r.NotRequired && !engine.verified[image]:
				if q, ok := r.Profile.Quirk(admission.QuirkIVPOLRequiredIgnored); ok {
					p.Outcome = Admit
					p.Message = fmt.Sprintf("every validation holds, none verifying %s; %s admits it unverified, since it ignores required", image, r.Profile)
					p.Quirk, p.Why = q.ID, q.Cite(r.Profile)
					p.Fix = "verify every image the policy covers in a validation (images.initContainers and ephemeralContainers too): Kyverno 1.19 denies an image none verifies"
					break
				}
				p.Outcome = Admit
				p.Message = "every validation holds"
				ip = ivpolPrediction{verified: engine.verified, required: true}
			case engineOK:
				p.Outcome = Admit
				p.Message = "every validation holds"
				if p.Pregate != verify.Verified {
					p.Message += "; pregate alone would not admit it (Kyverno counts any verified bundle, an attestation included, as a signature)"
				}
				ip.verified = engine.verified
			default:
				p.Outcome = failed(r.Action)
				p.Message = engineMsg
				if len(engine.notes) > 0 {
					p.Message += ": " + strings.Join(engine.notes, "; ")
				}
				if ownOK {
					p.NeverPasses = true
					p.Exists = acceptedAll(own.accepted)
					var q admission.Quirk
					q, p.Fix = ivpolWhy(r.Profile, engine.refused, own.accepted)
					p.Quirk, p.Why = q.ID, q.Cite(r.Profile)
				}
				ip.verified = engine.verified
			}
			return p, ip, nil
		}
	}
	if ctx.Err() != nil {
		return gate.Admission{}, ivpolPrediction{}, ctx.Err()
	}
	p.Outcome = Undecided
	p.Message = "not predicted: " + err.Error()
	return p, ivpolPrediction{}, nil
}

// enforceRequired fails the ImageValidatingPolicy predictions whose
// validations held without verifying their image, unless another
// ImageValidatingPolicy verified it: Kyverno 1.19 takes the evidence from
// any policy of the request (pkg/cel/policies/ivpol/engine/engine.go
// enforceRequired), with its messages.
func enforceRequired(out []gate.Admission, ivpol []ivpolPrediction, actions []admission.Action) {
	verified, attempted := map[string]bool{}, map[string]bool{}
	for _, ip := range ivpol {
		for image, ok := range ip.verified {
			verified[image] = verified[image] || ok
			attempted[image] = true
		}
	}
	for i, ip := range ivpol {
		image := out[i].Image
		if !ip.required || verified[image] {
			continue
		}
		out[i].Outcome = failed(actions[i])
		out[i].Message = fmt.Sprintf("image %s is not verified: no policy performed a signature or attestation check on it", image)
		if attempted[image] {
			out[i].Message = fmt.Sprintf("image %s failed signature or attestation verification", image)
		}
		out[i].Message += " (its validations hold, and validationConfigurations.required is true)"
		out[i].Fix = "verify every image the policy covers in a validation (images.initContainers and ephemeralContainers too), or set validationConfigurations.required: false"
	}
}

func acceptedAll(rs []verify.Result) string {
	var parts []string
	seen := map[string]bool{}
	for _, r := range rs {
		if s := accepted(r); s != "" && !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// ivpolWhy says why the ImageValidatingPolicy engine misses what pregate
// accepts (own), the quirk that hides it, and the fix.
func ivpolWhy(p admission.Profile, refused []admission.Quirk, own []verify.Result) (admission.Quirk, string) {
	if len(refused) > 0 {
		q := refused[0]
		switch q.ID {
		case admission.QuirkOneIdentity:
			return q, "one identity per attestor: split the attestor, or use one identity whose subjectRegExp is an alternation"
		case admission.QuirkIVPOLKeyTlogCrash:
			return q, "set ctlog.insecureIgnoreTlog on the key attestor, or run Kyverno 1.19"
		}
		return q, "sign keyless, or also sign in the legacy format, until kyverno#17363 is fixed"
	}
	var fallback bool
	for _, r := range own {
		fallback = fallback || (apiAnswered(r) && slices.ContainsFunc(acceptedConsiderations(r), func(c verify.Consideration) bool {
			return c.Source == verify.FallbackTagStep
		}))
	}
	if q, ok := p.Quirk(admission.QuirkReferrersAPIFirst); ok && fallback {
		return q, "have the registry list the referrers in its referrers API, or also sign in the legacy format"
	}
	if q, ok := p.Quirk(admission.QuirkIVPOLBundlesFirst); ok {
		return q, "sign every image the policy covers with the same format, or remove the stray bundle"
	}
	return admission.Quirk{ID: "unknown", Does: "the engine does not accept it"}, ""
}
