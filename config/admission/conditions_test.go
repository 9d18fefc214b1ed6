package admission

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestConditions evaluates Kyverno attestation conditions over a statement's
// predicate as Kyverno does: variables innermost first, typed when a value
// is one variable, the operators' list and wildcard semantics.
func TestConditions(t *testing.T) {
	t.Parallel()
	statement, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{
			"buildDefinition": map[string]any{"buildType": "https://actions.github.io/buildtypes/workflow/v1",
				"externalParameters": map[string]any{"workflow": map[string]any{"ref": "refs/heads/main", "repository": "https://github.com/acme/app"}}},
			"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner"}},
			"components": []any{map[string]any{"name": "openssl", "version": "3.0.13"}, map[string]any{"name": "zlib", "version": "1.3"}},
			"score":      7.5,
			"finishedOn": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cond := func(key any, op string, value any) kyvernoAnyAll {
		return kyvernoAnyAll{All: []kyvernoCondition{{Key: key, Operator: op, Value: value}}}
	}
	for name, tc := range map[string]struct {
		conditions []kyvernoAnyAll
		want       string // "" holds; else in the error
	}{
		"equals":                {[]kyvernoAnyAll{cond("{{ buildDefinition.buildType }}", "Equals", "https://actions.github.io/buildtypes/workflow/v1")}, ""},
		"equals, wildcard":      {[]kyvernoAnyAll{cond("{{ buildDefinition.externalParameters.workflow.repository }}", "Equals", "https://github.com/acme/*")}, ""},
		"equals, mismatch":      {[]kyvernoAnyAll{cond("{{ buildDefinition.externalParameters.workflow.ref }}", "Equals", "refs/tags/*")}, `"refs/heads/main"`},
		"not equals":            {[]kyvernoAnyAll{cond("{{ runDetails.builder.id }}", "NotEquals", "https://evil.example/*")}, ""},
		"any in":                {[]kyvernoAnyAll{cond("{{ components[].name }}", "AnyIn", []any{"openssl", "curl"})}, ""},
		"all not in":            {[]kyvernoAnyAll{cond("{{ components[].name }}", "AllNotIn", []any{"log4j"})}, ""},
		"all in, not all":       {[]kyvernoAnyAll{cond("{{ components[].name }}", "AllIn", []any{"openssl"})}, "AllIn"},
		"number":                {[]kyvernoAnyAll{cond("{{ score }}", "LessThan", 9)}, ""},
		"length":                {[]kyvernoAnyAll{cond("{{ length(components) }}", "GreaterThanOrEquals", 2)}, ""},
		"interpolated":          {[]kyvernoAnyAll{cond("ref={{ buildDefinition.externalParameters.workflow.ref }}", "Equals", "ref=refs/heads/main")}, ""},
		"nested":                {[]kyvernoAnyAll{cond("{{ starts_with('{{ runDetails.builder.id }}', 'https://github.com/') }}", "Equals", true)}, ""},
		"any of two":            {[]kyvernoAnyAll{{Any: []kyvernoCondition{{Key: "{{ score }}", Operator: "GreaterThan", Value: 9}, {Key: "{{ score }}", Operator: "Equals", Value: 7.5}}}}, ""},
		"message":               {[]kyvernoAnyAll{{All: []kyvernoCondition{{Key: "{{ score }}", Operator: "LessThan", Value: 5, Message: "score too high"}}}}, "score too high"},
		"every entry must hold": {[]kyvernoAnyAll{cond("{{ score }}", "LessThan", 9), cond("{{ score }}", "GreaterThan", 9)}, "GreaterThan"},
		"missing field":         {[]kyvernoAnyAll{cond("{{ nosuch.field }}", "Equals", "x")}, "null"},
	} {
		check, unsupported := compileConditions(tc.conditions)
		if len(unsupported) > 0 {
			t.Errorf("%s: unsupported %q", name, unsupported)
			continue
		}
		err := check(statement)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want it to hold", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	for conds, want := range map[string]kyvernoAnyAll{
		"the JMESPath function base64_decode (Kyverno's own)": {All: []kyvernoCondition{{Key: "{{ base64_decode(x) }}", Operator: "Equals", Value: "y"}}},
		`the condition operator "DurationLessThanOrEquals"`:   {All: []kyvernoCondition{{Key: "{{ x }}", Operator: "DurationLessThanOrEquals", Value: "168h"}}},
	} {
		_, unsupported := compileConditions([]kyvernoAnyAll{want})
		if !strings.Contains(strings.Join(unsupported, "; "), conds) {
			t.Errorf("unsupported %q, want %q", unsupported, conds)
		}
	}
	check, _ := compileConditions([]kyvernoAnyAll{cond("{{ score }}", "Equals", 1)})
	if err := check([]byte(`{"predicate": "text"}`)); err == nil || !strings.Contains(err.Error(), "no predicate object") {
		t.Errorf("a statement without a predicate object: %v", err)
	}
}
