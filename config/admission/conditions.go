package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmespath-community/go-jmespath/pkg/api"
	"github.com/jmespath-community/go-jmespath/pkg/functions"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/pregate/pregate/gate"
)

// kyvernoAnyAll is one entry of a verifyImages attestation's conditions:
// any of Any and all of All must hold.
type kyvernoAnyAll struct {
	Any []kyvernoCondition `json:"any"`
	All []kyvernoCondition `json:"all"`
}

// kyvernoCondition compares Key with Value; both may hold JMESPath
// variables ("{{ buildDefinition.buildType }}") over the attestation's
// predicate.
type kyvernoCondition struct {
	Key      any    `json:"key"`
	Operator string `json:"operator"`
	Value    any    `json:"value"`
	Message  string `json:"message"`
}

// The operators evaluated (kyverno pkg/engine/variables/operator): the
// comparisons read numbers, durations and quantities; the others
// (Duration*, semver ranges) are said unsupported.
var conditionOperators = []string{"Equals", "NotEquals", "In", "NotIn", "AnyIn", "AllIn", "AnyNotIn", "AllNotIn",
	"GreaterThan", "GreaterThanOrEquals", "LessThan", "LessThanOrEquals"}

var (
	// innermost is a variable holding none: Kyverno substitutes nested
	// variables innermost first.
	innermost       = regexp.MustCompile(`\{\{([^{}]*)\}\}`)
	functionPattern = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*\(`)
)

// compileConditions turns a Kyverno attestation's conditions into a check
// of the verified in-toto statement, as Kyverno evaluates them
// (pkg/engine/internal/utils.go EvaluateConditions): the statement's
// predicate is the root of every variable, each entry must hold. What
// pregate does not evaluate (an operator, a function of Kyverno's own
// such as time_since) is returned as unsupported.
func compileConditions(list []kyvernoAnyAll) (check func([]byte) error, unsupported []string) {
	known := map[string]bool{}
	for _, f := range append(functions.GetDefaultFunctions(), kyvernoFunctions...) {
		known[f.Name] = true
	}
	var visit func(v any)
	visit = func(v any) {
		switch v := v.(type) {
		case string:
			if !strings.Contains(v, "{{") {
				return
			}
			for _, f := range functionPattern.FindAllStringSubmatch(v, -1) {
				if u := "the JMESPath function " + f[1] + " (Kyverno's own)"; !known[f[1]] && !slices.Contains(unsupported, u) {
					unsupported = append(unsupported, u)
				}
			}
		case []any:
			for _, e := range v {
				visit(e)
			}
		case map[string]any:
			for _, e := range v {
				visit(e)
			}
		}
	}
	for _, aa := range list {
		for _, c := range append(slices.Clone(aa.Any), aa.All...) {
			if !slices.Contains(conditionOperators, c.Operator) {
				unsupported = append(unsupported, fmt.Sprintf("the condition operator %q", c.Operator))
			}
			visit(c.Key)
			visit(c.Value)
		}
	}
	if len(unsupported) > 0 {
		return nil, unsupported
	}
	return func(statement []byte) error {
		var s struct {
			Predicate any `json:"predicate"`
		}
		if err := json.Unmarshal(statement, &s); err != nil {
			return fmt.Errorf("reading the statement: %w", err)
		}
		root, ok := s.Predicate.(map[string]any)
		if !ok {
			return errors.New("the statement has no predicate object")
		}
		sub := func(v any) (any, error) { return substitute(v, root) }
		for _, aa := range list {
			if err := anyAll(aa, sub); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// anyAll evaluates one entry: all of All, and one of Any when it has any.
func anyAll(aa kyvernoAnyAll, sub func(any) (any, error)) error {
	for _, c := range aa.All {
		if err := c.holds(sub); err != nil {
			return err
		}
	}
	if len(aa.Any) == 0 {
		return nil
	}
	var first error
	for _, c := range aa.Any {
		err := c.holds(sub)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// holds says why the condition does not hold, nil when it does.
func (c kyvernoCondition) holds(sub func(any) (any, error)) error {
	key, err := sub(c.Key)
	if err != nil {
		return err
	}
	value, err := sub(c.Value)
	if err != nil {
		return err
	}
	ok, err := compare(c.Operator, key, value)
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.Operator, describeValue(c.Key), err)
	}
	if ok {
		return nil
	}
	if c.Message != "" {
		return errors.New(c.Message)
	}
	return fmt.Errorf("%s (%s) %s %s", describeValue(c.Key), describeValue(key), c.Operator, describeValue(value))
}

// substitute replaces the variables of v, innermost first: a string that
// is one variable becomes its value, a variable within a string is
// written in.
func substitute(v any, root map[string]any) (any, error) {
	switch v := v.(type) {
	case string:
		for range maxSubstitutions {
			m := innermost.FindStringSubmatchIndex(v)
			if m == nil {
				return v, nil
			}
			expr := strings.TrimSpace(v[m[2]:m[3]])
			out, err := api.Search(expr, root, kyvernoFunctions...)
			if err != nil {
				return nil, fmt.Errorf("{{%s}}: %w", gate.Clip(expr, 120), err)
			}
			if m[0] == 0 && m[1] == len(v) {
				return out, nil
			}
			str, ok := out.(string)
			if !ok {
				j, _ := json.Marshal(out)
				str = string(j)
			}
			v = v[:m[0]] + str + v[m[1]:]
		}
		return nil, fmt.Errorf("more than %d variables in %s", maxSubstitutions, gate.Clip(v, 120))
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			s, err := substitute(e, root)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	return v, nil
}

// maxSubstitutions bounds the variables substituted in one value: a
// statement's text may hold "{{" too.
const maxSubstitutions = 64

// compare applies an operator as Kyverno does: Equals compares values,
// a string value with "*" or "?" as a wildcard; the In family compare a
// key (or each of a list key) with a list of values.
func compare(op string, key, value any) (bool, error) {
	switch op {
	case "Equals":
		return equal(key, value), nil
	case "NotEquals":
		return !equal(key, value), nil
	case "GreaterThan", "GreaterThanOrEquals", "LessThan", "LessThanOrEquals":
		k, v, err := magnitudes(key, value)
		if err != nil {
			return false, err
		}
		switch op {
		case "GreaterThan":
			return k > v, nil
		case "GreaterThanOrEquals":
			return k >= v, nil
		case "LessThan":
			return k < v, nil
		}
		return k <= v, nil
	}
	keys, ok := key.([]any)
	if !ok {
		keys = []any{key}
	}
	values, ok := value.([]any)
	if !ok {
		values = []any{value}
	}
	in := func(k any) bool { return slices.ContainsFunc(values, func(v any) bool { return equal(k, v) }) }
	switch op {
	case "AnyIn":
		return slices.ContainsFunc(keys, in), nil
	case "AllIn", "In":
		return !slices.ContainsFunc(keys, func(k any) bool { return !in(k) }), nil
	case "AnyNotIn":
		return slices.ContainsFunc(keys, func(k any) bool { return !in(k) }), nil
	case "AllNotIn", "NotIn":
		return !slices.ContainsFunc(keys, in), nil
	}
	return false, fmt.Errorf("operator %q is not evaluated", op)
}

// equal compares a key with a value: numbers by value, a string value
// with wildcards as a pattern, the rest deeply.
func equal(key, value any) bool {
	if v, ok := value.(string); ok {
		if k, ok := key.(string); ok {
			return wildcard(v, k)
		}
	}
	if k, err := number(key); err == nil {
		if v, err := number(value); err == nil {
			return k == v
		}
	}
	return reflect.DeepEqual(key, value)
}

// magnitudes reads two values to compare as Kyverno's numeric operators
// do: numbers, else durations ("168h"), else quantities ("1Gi").
func magnitudes(key, value any) (float64, float64, error) {
	if k, err := number(key); err == nil {
		if v, err := number(value); err == nil {
			return k, v, nil
		}
	}
	ks, kok := key.(string)
	vs, vok := value.(string)
	if kok && vok {
		if k, err := time.ParseDuration(ks); err == nil {
			if v, err := time.ParseDuration(vs); err == nil {
				return float64(k), float64(v), nil
			}
		}
		if k, err := resource.ParseQuantity(ks); err == nil {
			if v, err := resource.ParseQuantity(vs); err == nil {
				return k.AsApproximateFloat64(), v.AsApproximateFloat64(), nil
			}
		}
	}
	return 0, 0, fmt.Errorf("%s and %s are not numbers, durations or quantities", describeValue(key), describeValue(value))
}

// kyvernoFunctions are the functions of Kyverno's own JMESPath library
// that pregate gives (kyverno pkg/engine/jmespath functions.go, time.go);
// a condition using another is not evaluated.
var kyvernoFunctions = []functions.FunctionEntry{{
	// regex_match(regex, string or number): whether the regular
	// expression matches anywhere in it.
	Name:      "regex_match",
	Arguments: []functions.ArgSpec{{Types: []functions.JpType{functions.JpString}}, {Types: []functions.JpType{functions.JpString, functions.JpNumber}}},
	Handler: func(args []any) (any, error) {
		src := fmt.Sprint(args[1])
		if f, ok := args[1].(float64); ok {
			src = strconv.FormatFloat(f, 'f', -1, 64)
		}
		return regexp.MatchString(args[0].(string), src) //nolint:forcetypeassert // the argument spec typed it
	},
}, {
	// time_since(layout, t1, t2): t2 - t1 as a duration ("1h2m3s"), t2
	// empty meaning now, the layout empty meaning RFC 3339.
	Name: "time_since",
	Arguments: []functions.ArgSpec{{Types: []functions.JpType{functions.JpString}}, {Types: []functions.JpType{functions.JpString}},
		{Types: []functions.JpType{functions.JpString}}},
	Handler: func(args []any) (any, error) {
		layout, _ := args[0].(string)
		if layout == "" {
			layout = time.RFC3339
		}
		t1, err := time.Parse(layout, args[1].(string)) //nolint:forcetypeassert // the argument spec typed it
		if err != nil {
			return nil, err
		}
		t2 := time.Now()
		if s, _ := args[2].(string); s != "" {
			if t2, err = time.Parse(layout, s); err != nil {
				return nil, err
			}
		}
		return t2.Sub(t1).String(), nil
	},
}}

// number reads a JSON number, or a string holding one.
func number(v any) (float64, error) {
	switch v := v.(type) {
	case float64:
		return v, nil
	case int:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case string:
		return strconv.ParseFloat(v, 64)
	}
	return 0, fmt.Errorf("%s is not a number", describeValue(v))
}

// describeValue quotes a value in a message, bounded.
func describeValue(v any) string {
	j, err := json.Marshal(v)
	if err != nil {
		return gate.Clip(fmt.Sprint(v), 120)
	}
	return gate.Clip(string(j), 120)
}
