package admission

import (
	"regexp"
	"testing"
)

// TestPolicyControllerGlobCanMatch: a glob can match nothing when no name
// the webhook matches (registry/repository@sha256:<hex>) fits it.
func TestPolicyControllerGlobCanMatch(t *testing.T) {
	t.Parallel()
	for glob, want := range map[string]bool{
		"ghcr.io/acme/**":     true,
		"ghcr.io/acme/*":      true,
		"ghcr.io/acme/app*":   true,
		"ghcr.io/acme/app@*":  true,
		"*":                   true,
		"*/*":                 true,
		"**":                  true,
		"ghcr.io/acme/app":    false,
		"ghcr.io/acme/app:1":  false,
		"ghcr.io/acme/app:*":  false,
		"ghcr.io/acme/app:**": false,
		"ghcr.io/acme/*:v*":   false,
		"ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": true,
		"ghcr.io/acme/app@sha256:abc": false,
		"registry:5000/app*":          true, // a port is a ":" in the name
		"[a-z]*":                      false,
	} {
		if got := policyControllerGlobCanMatch(glob); got != want {
			t.Errorf("policyControllerGlobCanMatch(%q) = %v, want %v", glob, got, want)
		}
	}
}

// TestWiderMatch: the example an unanchored regexp is shown with does match
// it, inside another URL.
func TestWiderMatch(t *testing.T) {
	t.Parallel()
	for _, re := range []string{
		`https://github\.com/acme/`,
		`https://github.com/acme/.+/\.github/workflows/release\.yml@refs/heads/main`,
		`^https://github\.com/acme/`,
		`(foo|bar)[0-9]{2}$`,
	} {
		v := widerMatch(re)
		if v == "" {
			t.Errorf("widerMatch(%q) found none", re)
			continue
		}
		if !regexp.MustCompile(re).MatchString(v) || regexp.MustCompile("^(?:"+re+")$").MatchString(v) {
			t.Errorf("widerMatch(%q) = %q: want a value it matches only unanchored", re, v)
		}
	}
}
