package admission

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
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
