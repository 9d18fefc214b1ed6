package admission

import (
	"strings"
	"testing"

	"github.com/pregate/pregate/gate"
)

// TestPolicyControllerGlob: policy-controller's glob table
// (sigstore/policy-controller pkg/apis/glob/glob_test.go TestGlobMatch,
// v0.15.1, commit cc75baab), with the image as its webhook names it: the
// reference normalised (index.docker.io, library/) and resolved to a
// digest, the tag dropped. Rows whose upstream answer comes from its
// deprecated fallback to the raw image never match in the webhook, and
// say so.
func TestPolicyControllerGlob(t *testing.T) {
	t.Parallel()
	const dg = "@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		glob, name string
		match      bool
	}{
		{"index.docker.io/library/foo:latest", "index.docker.io/library/foo" + dg, false}, // a tag never matches in the webhook
		{"index.docker.io/library/foo:*", "index.docker.io/library/foo" + dg, false},
		{"index.docker.io/library/*", "index.docker.io/library/foo" + dg, true},
		{"index.docker.io/*/*", "index.docker.io/library/foo" + dg, true},
		{"index.docker.**", "index.docker.io/library/foo" + dg, true},
		{"foo", "index.docker.io/library/foo" + dg, false}, // upstream true only by the fallback
		{"index.docker.io/myuser/*", "index.docker.io/myuser/myapp" + dg, true},
		{"index.docker.io/myuser/*:latest", "index.docker.io/myuser/myapp" + dg, false},
		{"ghcr.io/*/*", "ghcr.io/foo/bar" + dg, true},
		{"ghcr.io/*/*", "ghcr.io/foo" + dg, false},
		{"ghcr.io/**", "ghcr.io/foo" + dg, true},
		{"*/**", "ghcr.io/foo" + dg, true},
		{"ghcr.io/foo", "prefix-ghcr.io/foo" + dg, false},
		{"ghcr.io/foo", "ghcr.io/foo-suffix" + dg, false},
		{"ghcr.io/foo", "ghcr.io/foo" + dg, false}, // no wildcard: the digest is never matched
		{"ghcr.io/foo*", "ghcr.io/foo" + dg, true}, // "*" crosses "@" and ":"
		{"ghcr.io/**", "ghcrxio/foo" + dg, false},
		{"*", "index.docker.io/library/foo" + dg, true},
		{"*/*", "index.docker.io/myuser/myapp" + dg, true},
		{"docker.io/library/*", "index.docker.io/library/foo" + dg, false},
	} {
		re, err := PolicyControllerGlob(tc.glob)
		if err != nil {
			t.Errorf("PolicyControllerGlob(%q) = %v", tc.glob, err)
			continue
		}
		if got := re.MatchString(tc.name); got != tc.match {
			t.Errorf("glob %q on %s = %v, want %v", tc.glob, tc.name, got, tc.match)
		}
	}
	for _, bad := range []string{"[a-z]*", "ghcr.io/acme/app?", "ghcr.io/acme/(app)"} {
		if _, err := PolicyControllerGlob(bad); err == nil {
			t.Errorf("PolicyControllerGlob(%q) compiled, want invalid glob", bad)
		}
	}
}

// TestCoversAsTheWebhookDoes: a ClusterImagePolicy glob is matched against
// the digest name, whatever tag the Pod names; a Kyverno pattern against
// the reference.
func TestCoversAsTheWebhookDoes(t *testing.T) {
	t.Parallel()
	img := gate.Image{Ref: "ghcr.io/acme/app:1.0", Registry: "ghcr.io", Repository: "acme/app", Tag: "1.0"}
	for _, tc := range []struct {
		rule Rule
		want bool
	}{
		{Rule{Engine: PolicyController, Images: []string{"ghcr.io/acme/**"}}, true},
		{Rule{Engine: PolicyController, Images: []string{"ghcr.io/acme/app:1.0"}}, false},
		{Rule{Engine: PolicyController, Images: []string{"ghcr.io/acme/app"}}, false},
		{Rule{Engine: PolicyController, Images: []string{"ghcr.io/acme/app*"}}, true},
		{Rule{Engine: Kyverno, Images: []string{"ghcr.io/acme/app:1.0"}}, true},
		{Rule{Engine: Kyverno, Images: []string{"ghcr.io/acme/*"}, Skip: []string{"*:1.0"}}, false},
	} {
		if got := tc.rule.Covers(img); got != tc.want {
			t.Errorf("%s %q (skip %q) covers %s = %v, want %v", tc.rule.Engine, tc.rule.Images, tc.rule.Skip, img.Ref, got, tc.want)
		}
	}
}

// TestCoversByExpression: an ImageValidatingPolicy's matchImageReferences,
// CEL and globs, see the image as the Pod names it.
func TestCoversByExpression(t *testing.T) {
	t.Parallel()
	img := gate.Image{Ref: "index.docker.io/library/nginx:1.27", Registry: "index.docker.io", Repository: "library/nginx", Tag: "1.27",
		Locations: []gate.Location{{Raw: "nginx:1.27"}}}
	for expr, want := range map[string]bool{
		"ref == 'nginx:1.27'":                true,
		"ref.startsWith('index.docker.io/')": false,
		"ref.split(':')[1] == '1.27'":        true,
		"1/0 == 1":                           false, // an error is no match
	} {
		e, err := compileImageExpression(expr)
		if err != nil {
			t.Fatalf("compileImageExpression(%q) = %v", expr, err)
		}
		r := Rule{Engine: Kyverno, Format: KyvernoIVPOL, imageExpressions: []imageExpression{e}}
		if got := r.Covers(img); got != want {
			t.Errorf("expression %q covers %s (as nginx:1.27) = %v, want %v", expr, img.Ref, got, want)
		}
	}
	// Globs too see the name as written (gobwas/glob on the Pod's image).
	for glob, want := range map[string]bool{"nginx:*": true, "*/library/nginx:*": false, "index.docker.io/*": false} {
		r := Rule{Engine: Kyverno, Format: KyvernoIVPOL, Images: []string{glob}}
		if got := r.Covers(img); got != want {
			t.Errorf("glob %q covers %s (as nginx:1.27) = %v, want %v", glob, img.Ref, got, want)
		}
	}
	if _, err := compileImageExpression("ref.size()"); err == nil || !strings.Contains(err.Error(), "not a bool") {
		t.Errorf("compileImageExpression(int) error = %v, want not a bool", err)
	}
}
