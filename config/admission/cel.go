package admission

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/cel/library"
)

// CELLibraries are the libraries of the CEL environments of an
// ImageValidatingPolicy's expressions besides Kyverno's own functions: the
// Kubernetes CEL libraries Kyverno builds on (k8s.io/apiserver
// pkg/cel/library) and cel-go's string extensions.
func CELLibraries() []cel.EnvOption {
	return []cel.EnvOption{
		ext.Strings(), library.Lists(), library.Regex(), library.URLs(), library.Quantity(),
		library.IP(), library.CIDR(), library.Format(), library.SemverLib(),
	}
}

// CELCostLimit bounds the work of one expression, as the Kubernetes CEL
// runtime bounds an admission expression's (apiserver's PerCallLimit): a
// policy's expression is outside input.
const CELCostLimit = 1_000_000

// imageExpression is a matchImageReferences expression, a CEL bool over
// ref, the image as the Pod names it (kyverno pkg/cel/compiler
// NewMatchImageEnv).
type imageExpression struct {
	source string
	prg    cel.Program
}

// compileImageExpression compiles a matchImageReferences expression.
func compileImageExpression(expr string) (imageExpression, error) {
	env, err := cel.NewEnv(append(CELLibraries(), cel.Variable("ref", cel.StringType))...)
	if err != nil {
		return imageExpression{}, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return imageExpression{}, iss.Err()
	}
	if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
		return imageExpression{}, fmt.Errorf("%q is a %s, not a bool", strings.TrimSpace(expr), ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(CELCostLimit))
	if err != nil {
		return imageExpression{}, err
	}
	return imageExpression{source: expr, prg: prg}, nil
}

// matches evaluates the expression for ref; an error, or a result that is
// not a bool, is no match.
func (e imageExpression) matches(ref string) bool {
	out, _, err := e.prg.Eval(map[string]any{"ref": ref})
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// RequestVariables declares what an ImageValidatingPolicy's expressions
// read of the request (kyverno pkg/image/verification/evaluator
// compiler.go): the object, the old one (null: a Pod is created), the
// request and the namespace's object.
func RequestVariables() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable("object", cel.DynType), cel.Variable("oldObject", cel.DynType),
		cel.Variable("request", cel.DynType), cel.Variable("namespaceObject", cel.DynType),
	}
}

// CELVars are the values of RequestVariables for the creation of o,
// with more, and what is not known before the object is created marked
// unknown: who makes the request, a created Pod's name and identity, what
// the API server and controllers write, a namespace's labels when not
// known. An expression that reads them evaluates to an unknown
// (ErrUnknown), never to a guess. The object is not known when o has no
// Pod.
func (o Object) CELVars(more map[string]any) (interpreter.PartialActivation, error) {
	vars := maps.Clone(more)
	if vars == nil {
		vars = map[string]any{}
	}
	gvk := map[string]any{"group": o.Group, "version": o.Version, "kind": o.Kind}
	gvr, _ := meta.UnsafeGuessKindToResource(schema.GroupVersionKind{Group: o.Group, Version: o.Version, Kind: o.Kind})
	resource := map[string]any{"group": gvr.Group, "version": gvr.Version, "resource": gvr.Resource}
	vars["request"] = map[string]any{"kind": gvk, "requestKind": gvk, "resource": resource, "requestResource": resource,
		"subResource": "", "namespace": o.Namespace, "name": o.Name, "operation": "CREATE", "dryRun": false}
	vars["oldObject"] = nil
	unknown := []*cel.AttributePatternType{
		cel.AttributePattern("request").QualString("userInfo"), cel.AttributePattern("request").QualString("uid"),
		cel.AttributePattern("request").QualString("options"), cel.AttributePattern("object").QualString("status"),
	}
	for _, f := range []string{"uid", "resourceVersion", "generation", "creationTimestamp", "ownerReferences", "managedFields"} {
		unknown = append(unknown, cel.AttributePattern("object").QualString("metadata").QualString(f))
	}
	if o.Name == "" {
		unknown = append(unknown, cel.AttributePattern("request").QualString("name"),
			cel.AttributePattern("object").QualString("metadata").QualString("name"),
			cel.AttributePattern("object").QualString("metadata").QualString("generateName"))
	}
	if o.Pod != nil {
		vars["object"] = o.Pod
	} else {
		unknown = append(unknown, cel.AttributePattern("object"))
	}
	if o.NamespaceLabels != nil {
		labels := map[string]any{}
		for k, v := range o.NamespaceLabels {
			labels[k] = v
		}
		vars["namespaceObject"] = map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": o.Namespace, "labels": labels}}
		for _, f := range []string{"annotations", "uid", "resourceVersion", "creationTimestamp", "managedFields"} {
			unknown = append(unknown, cel.AttributePattern("namespaceObject").QualString("metadata").QualString(f))
		}
		unknown = append(unknown, cel.AttributePattern("namespaceObject").QualString("spec"), cel.AttributePattern("namespaceObject").QualString("status"))
	} else {
		unknown = append(unknown, cel.AttributePattern("namespaceObject"))
	}
	return cel.PartialVars(vars, unknown...)
}

// ErrUnknown is an expression's answer when it reads what is not known
// before the object is created.
var ErrUnknown = errors.New("reads what is not known before the object is created")

// CELResult is an expression's value from what Program.Eval returns, or
// why there is none: ErrUnknown, naming what was read, for an unknown.
func CELResult(out ref.Val, _ *cel.EvalDetails, err error) (ref.Val, error) {
	if err != nil {
		return nil, err
	}
	if u, ok := out.(*types.Unknown); ok {
		var read []string
		for _, id := range u.IDs() {
			trails, _ := u.GetAttributeTrails(id)
			for _, t := range trails {
				if s := t.String(); !slices.Contains(read, s) {
					read = append(read, s)
				}
			}
		}
		return nil, fmt.Errorf("%w (%s)", ErrUnknown, strings.Join(read, ", "))
	}
	return out, nil
}

// matchCondition is an ImageValidatingPolicy's matchCondition, a CEL bool
// over the request.
type matchCondition struct {
	name string
	prg  cel.Program
}

// compileMatchCondition compiles a matchCondition in the admission
// environment.
func compileMatchCondition(name, expr string) (matchCondition, error) {
	env, err := cel.NewEnv(append(CELLibraries(), RequestVariables()...)...)
	if err != nil {
		return matchCondition{}, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return matchCondition{}, iss.Err()
	}
	if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
		return matchCondition{}, fmt.Errorf("%q is a %s, not a bool", strings.TrimSpace(expr), ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(CELCostLimit), cel.EvalOptions(cel.OptPartialEval))
	if err != nil {
		return matchCondition{}, err
	}
	return matchCondition{name: name, prg: prg}, nil
}

// ConditionsHold evaluates the rule's matchConditions for the creation of
// o, as admission does: one that is false means the rule does not apply;
// otherwise one that fails, or reads what is not known (ErrUnknown),
// leaves it unknown, an error naming the condition; all true, it applies.
func (r Rule) ConditionsHold(o Object) (bool, error) {
	if len(r.matchConditions) == 0 {
		return true, nil
	}
	act, err := o.CELVars(nil)
	if err != nil {
		return false, err
	}
	var first error
	for _, c := range r.matchConditions {
		out, err := CELResult(c.prg.Eval(act))
		if err == nil {
			b, ok := out.Value().(bool)
			switch {
			case !ok:
				err = fmt.Errorf("a %s, not a bool", out.Type())
			case !b:
				return false, nil
			default:
				continue
			}
		}
		if first == nil {
			first = fmt.Errorf("matchConditions %q: %w", c.name, err)
		}
	}
	return first == nil, first
}
