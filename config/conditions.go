package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// MaxConditions bounds an attestation's conditions.
const MaxConditions = 16

// maxConditionValue bounds what a condition's value says.
const maxConditionValue = 256

// A condition's evaluation is bounded in time, not by CEL's cost
// tracking, which slows a comprehension over a large SBOM a
// hundredfold: conditionTimeout ends it, checked every
// conditionInterruptEvery iterations of a comprehension.
const conditionInterruptEvery = 100

var conditionTimeout = 10 * time.Second // a variable for its test

// conditionEnv is the CEL environment of a TrustPolicy attestation's
// conditions: the in-toto statement as statement, and its predicate,
// predicateType and subject apart, now the time of the check; the
// libraries are those of the ImageValidatingPolicy import
// (admission.CELLibraries), numbers compare across int and double as
// JSON gives them.
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(append(admission.CELLibraries(),
		cel.Variable("statement", cel.DynType), cel.Variable("predicate", cel.DynType),
		cel.Variable("predicateType", cel.StringType), cel.Variable("subject", cel.DynType),
		cel.Variable("now", cel.TimestampType),
		cel.CrossTypeNumericComparisons(true), cel.OptionalTypes(),
	)...)
})

// compiledCondition is one condition, compiled.
type compiledCondition struct {
	expression, message string
	prg                 cel.Program
}

// compileConditions compiles an attestation's conditions; an expression
// that does not compile, or is not a bool, is an error naming it.
func compileConditions(conds []v1alpha1.AttestationCondition) ([]compiledCondition, error) {
	if len(conds) == 0 {
		return nil, nil
	}
	env, err := conditionEnv()
	if err != nil {
		return nil, err
	}
	out := make([]compiledCondition, 0, len(conds))
	for i, c := range conds {
		ast, iss := env.Compile(c.Expression)
		if iss.Err() != nil {
			return nil, fmt.Errorf("conditions[%d]: %w", i, iss.Err())
		}
		if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
			return nil, fmt.Errorf("conditions[%d]: %q is a %s, not a bool", i, strings.TrimSpace(c.Expression), t)
		}
		prg, err := env.Program(ast, cel.InterruptCheckFrequency(conditionInterruptEvery))
		if err != nil {
			return nil, fmt.Errorf("conditions[%d]: %w", i, err)
		}
		out = append(out, compiledCondition{expression: strings.TrimSpace(c.Expression), message: c.Message, prg: prg})
	}
	return out, nil
}

// conditionCheck is the verify.Attestation.Condition of compiled
// conditions: every one must hold on the statement; each one's value is
// recorded. now gives the time of the check.
func conditionCheck(conds []compiledCondition, now func() time.Time) func(statement []byte) ([]verify.ConditionValue, error) {
	return func(statement []byte) ([]verify.ConditionValue, error) {
		var st map[string]any
		if err := json.Unmarshal(statement, &st); err != nil {
			return nil, fmt.Errorf("reading the statement: %w", err)
		}
		predicateType, _ := st["predicateType"].(string)
		vars := map[string]any{"statement": st, "predicate": st["predicate"], "predicateType": predicateType,
			"subject": st["subject"], "now": now()}
		if vars["predicate"] == nil {
			vars["predicate"] = map[string]any{}
		}
		var values []verify.ConditionValue
		var failed []string
		for _, c := range conds {
			v := verify.ConditionValue{Expression: gate.Clip(c.expression, maxConditionValue)}
			// The verify hook has no context: the bound is its own.
			ctx, cancel := context.WithTimeout(context.Background(), conditionTimeout)
			out, _, err := c.prg.ContextEval(ctx, vars)
			cancel()
			switch {
			case err != nil:
				v.Value = gate.Clip("error: "+err.Error(), maxConditionValue)
			case types.IsError(out):
				v.Value = gate.Clip(fmt.Sprintf("error: %v", out), maxConditionValue)
			default:
				b, ok := out.Value().(bool)
				v.Value, v.Holds = fmt.Sprint(out.Value()), ok && b
				if !ok {
					v.Value = gate.Clip(fmt.Sprintf("%v, not a bool", out.Value()), maxConditionValue)
				}
			}
			values = append(values, v)
			if !v.Holds {
				why := c.message
				if why == "" {
					why = fmt.Sprintf("%q is %s", v.Expression, v.Value)
				}
				failed = append(failed, why)
			}
		}
		if len(failed) > 0 {
			return values, errors.New(strings.Join(failed, "; "))
		}
		return values, nil
	}
}
