package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const (
	releaseID = "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v1.0.0"
	issuer    = "https://token.actions.githubusercontent.com"
)

// signedRegistry is a loopback registry holding a keyless-signed image, an
// unsigned one and a third-party one, and the trusted root of the Sigstore
// that signed.
type signedRegistry struct {
	host                     string
	signed, unsigned, others string // references by tag
	trustedRoot              string // file
	sigstore                 *verifytest.Sigstore
}

func newSignedRegistry(t *testing.T) signedRegistry {
	t.Helper()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	ss := verifytest.NewSigstore(t)
	r := signedRegistry{
		host:     host,
		signed:   host + "/acme/web:1.0",
		unsigned: host + "/acme/worker:0.9",
		others:   host + "/library/redis:7.4",
		sigstore: ss,
	}
	ref, digest := verifytest.PushRandomImage(t, r.signed)
	verifytest.PushBundle(t, ref, ss.MustSignImage(t, releaseID, issuer, digest), verify.CosignSignPredicateType)
	verifytest.PushRandomImage(t, r.unsigned)
	verifytest.PushRandomImage(t, r.others)
	r.trustedRoot = filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(r.trustedRoot, ss.TrustedRootJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// manifests writes a directory with one Deployment running images.
func manifests(t *testing.T, images ...string) string {
	t.Helper()
	dir := t.TempDir()
	var containers strings.Builder
	for i, img := range images {
		fmt.Fprintf(&containers, "        - name: c%d\n          image: %s\n", i, img)
	}
	doc := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: shop
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
%s`, containers.String())
	if err := os.WriteFile(filepath.Join(dir, "deploy.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func (r signedRegistry) flags(extra ...string) []string {
	return append([]string{
		"--images", r.host + "/acme/**",
		"--certificate-identity-regexp", `https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/tags/v.+`,
		"--certificate-oidc-issuer", issuer,
		"--insecure-ignore-sct", "--trusted-root", r.trustedRoot,
		"--lookup-timeout", "5s",
	}, extra...)
}

func TestCheckCmd(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)
	for name, tc := range map[string]struct {
		images []string
		extra  []string
		code   int
		want   []string // in stdout
	}{
		"signed first-party and an allowed third party": {
			images: []string{reg.signed, reg.others},
			extra:  []string{"--unmatched-images", "allow"},
			code:   exitOK,
			want:   []string{"ALLOWED (Succeeded): 1 of 2 images verified, 1 allowed", "Verified"},
		},
		"an unsigned first-party image blocks": {
			images: []string{reg.signed, reg.unsigned},
			code:   exitBlocked,
			want:   []string{"BLOCKED (NoSignatures): 1 of 2 images denied: " + reg.unsigned, "Denied (NoSignatures)", "Deployment/shop/app"},
		},
		"unmatched images are denied by default": {
			images: []string{reg.signed, reg.others},
			code:   exitBlocked,
			want:   []string{"BLOCKED (UnmatchedImage)", "no policy matches; unmatched images are denied"},
		},
		"an image still templated hides what runs: undecided": {
			images: []string{reg.signed, "${WORKER_IMAGE}"},
			code:   exitUndecided,
			want:   []string{"UNDECIDED (CoverageGap): images not seen: 1 coverage gap blocking: UnresolvedImage", "Verified", "UnresolvedImage  yes"},
		},
		"an allowed gap kind lets the revision through": {
			images: []string{reg.signed, "${WORKER_IMAGE}"},
			extra:  []string{"--allow-gap", "UnresolvedImage"},
			code:   exitOK,
			want:   []string{"ALLOWED (Succeeded): 1 of 1 images verified; 1 coverage gap (0 blocking)", "UnresolvedImage  no"},
		},
		"a definite denial outranks a gap": {
			images: []string{reg.unsigned, "${WORKER_IMAGE}"},
			code:   exitBlocked,
			want:   []string{"BLOCKED (NoSignatures)", "; 1 coverage gap"},
		},
		"a registry that does not answer: undecided": {
			images: []string{"127.0.0.1:1/acme/web:1.0"},
			extra:  []string{"--images", "127.0.0.1:1/**"},
			code:   exitUndecided,
			want:   []string{"UNDECIDED (RegistryUnreachable)", "ResolveFailed"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := manifests(t, tc.images...)
			args := append([]string{"check", dir, "--root", dir}, reg.flags(tc.extra...)...)
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

func TestCheckCmd_json(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)
	dir := manifests(t, reg.signed, reg.unsigned)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"check", dir, "--root", dir, "-o", "json"}, reg.flags()...), &stdout, &stderr)
	if code != exitBlocked {
		t.Fatalf("exit code = %d, want %d; stderr: %s", code, exitBlocked, stderr.String())
	}
	var doc struct {
		APIVersion, Kind, Reason string
		Allowed                  bool
		Summary                  struct{ Total, Verified, Denied int }
		Images                   []struct {
			Ref, Digest, Outcome, Status string
			Locations                    []struct{ File, Object, Path string }
		}
		Sources []struct{ Path string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout.String())
	}
	if doc.Kind != "Verdict" || doc.Allowed || doc.Reason != "NoSignatures" || doc.Summary.Total != 2 || doc.Summary.Denied != 1 {
		t.Errorf("verdict = %+v", doc)
	}
	first := doc.Images[0]
	if first.Ref != reg.unsigned || first.Outcome != "Denied" || first.Status != "NoSignatures" || !strings.HasPrefix(first.Digest, "sha256:") {
		t.Errorf("first image = %+v, want the unsigned one, denied, with its digest", first)
	}
	if l := first.Locations[0]; l.File != "deploy.yaml" || l.Object != "Deployment/shop/app" || l.Path != "spec.template.spec.containers[1]" {
		t.Errorf("location = %+v", l)
	}
}

func TestCheckCmd_policyErrors(t *testing.T) {
	t.Parallel()
	dir := manifests(t, "ghcr.io/acme/web:1.0")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: gate.pregate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: p}\nspec:\n  images: [{glob: 'ghcr.io/acme/**'}]\n  mode: block\n  authorities: [{name: a, static: {action: pass}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args     []string
		inStderr string
	}{
		"no policy":             {args: nil, inStderr: "no trust policy"},
		"identity without glob": {args: []string{"--certificate-identity", "x"}, inStderr: "need --images"},
		"glob without identity": {args: []string{"--images", "ghcr.io/**"}, inStderr: "--images needs"},
		"key and identity":      {args: []string{"--images", "ghcr.io/**", "--key", "k.pub", "--certificate-identity", "x"}, inStderr: "not both"},
		"bad unmatched":         {args: []string{"--images", "ghcr.io/**", "--unmatched-images", "maybe"}, inStderr: "--unmatched-images"},
		"invalid policy file":   {args: []string{"--policy", bad}, inStderr: `bad.yaml: TrustPolicy "p": spec.mode: Unsupported value: "block"`},
		"missing policy file":   {args: []string{"--policy", "nope.yaml"}, inStderr: "nope.yaml"},
		"old engine": {args: []string{"--images", "ghcr.io/**", "--certificate-identity", "x", "--certificate-oidc-issuer", "y", "--engine", "kyverno@1.12"},
			inStderr: "--engine: engine kyverno: version 1.12 is older than the oldest known (1.17)"},
		"engine twice": {args: []string{"--images", "ghcr.io/**", "--certificate-identity", "x", "--certificate-oidc-issuer", "y", "--engine", "kyverno@1.18", "--engine", "kyverno"},
			inStderr: "engine kyverno given twice"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"check", dir, "--root", dir}, tc.args...), &stdout, &stderr)
			if code != exitUndecided || !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), exitUndecided, tc.inStderr)
			}
		})
	}
}

func TestExplainCmd(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"explain", reg.signed}, reg.flags()...), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code = %d; stderr: %s\n%s", code, stderr.String(), stdout.String())
	}
	for _, w := range []string{"Digest:   sha256:", "Policies: command-line (enforce)", "referrers", "fallback-tag", "signature-tag", "sigstore-bundle", releaseID, "ALLOWED"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("explain output lacks %q:\n%s", w, stdout.String())
		}
	}
	stdout.Reset()
	code = run(t.Context(), append([]string{"explain", reg.unsigned, "-o", "json"}, reg.flags()...), &stdout, &stderr)
	if code != exitBlocked {
		t.Fatalf("exit code = %d, want %d", code, exitBlocked)
	}
	var ex struct {
		Kind    string
		Results []struct {
			Status  string
			Lookups []struct{ Step string }
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Kind != "Explanation" || len(ex.Results) != 1 || ex.Results[0].Status != "NoSignatures" || len(ex.Results[0].Lookups) < 5 {
		t.Errorf("explanation = %+v", ex)
	}
}

// TestCheckCmd_pinDigests: an allowed revision is written with each
// checked image pinned to the digest verified, so that what CI applies is
// what was checked; a blocked one is not written.
func TestCheckCmd_pinDigests(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)

	dir := manifests(t, reg.signed, reg.others)
	out := filepath.Join(t.TempDir(), "pinned")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), append([]string{"check", dir, "--root", dir, "--pin-digests", out, "--unmatched-images", "allow", "-o", "json"}, reg.flags()...), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr.String())
	}
	var doc struct {
		Images []struct{ Ref, Digest, Pinned string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var pinned string
	for _, img := range doc.Images {
		if img.Ref == reg.signed {
			pinned = img.Pinned
			if pinned != reg.signed+"@"+img.Digest || img.Digest == "" {
				t.Errorf("pinned = %q, want %s@<digest %s>", pinned, reg.signed, img.Digest)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "root.yaml"))
	if err != nil {
		t.Fatalf("reading the pinned manifests: %v (stderr: %s)", err, stderr.String())
	}
	if !strings.Contains(string(b), "image: "+pinned+"\n") || !strings.Contains(string(b), "image: "+reg.others+"\n") {
		t.Errorf("pinned manifests lack %s (pinned) or %s (not checked, as written):\n%s", pinned, reg.others, b)
	}
	if !strings.Contains(stderr.String(), "1 images pinned") {
		t.Errorf("stderr = %q, want it to say how many images were pinned", stderr.String())
	}

	blocked := filepath.Join(t.TempDir(), "blocked")
	stderr.Reset()
	bdir := manifests(t, reg.unsigned)
	code = run(t.Context(), append([]string{"check", bdir, "--root", bdir, "--pin-digests", blocked}, reg.flags()...), &stdout, &stderr)
	if code != exitBlocked {
		t.Fatalf("exit code = %d, want blocked", code)
	}
	if _, err := os.Stat(blocked); err == nil || !strings.Contains(stderr.String(), "nothing written") {
		t.Errorf("a blocked revision was written, or not said so: %v, %q", err, stderr.String())
	}
}

// TestCheckCmd_runningImages: with --running-images (kubectl get pods -A
// -o yaml), a revision adding a ClusterPolicy that reads legacy
// signatures only is blocked for the running Pods of a first-party image
// signed with a cosign v3 bundle, naming them; --running-pods warn lets it
// through; a Pod that is done is left out, and a file of other objects is
// an error.
func TestCheckCmd_runningImages(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)
	dir := manifests(t, reg.others)
	policy := fmt.Sprintf(`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: first-party-signed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: release
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - imageReferences: ["%s/acme/*"]
          attestors: [{entries: [{keyless: {issuer: %s, subject: %q, ctlog: {ignoreSCT: true}}}]}]
`, reg.host, issuer, releaseID)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	pods := filepath.Join(t.TempDir(), "pods.yaml")
	if err := os.WriteFile(pods, fmt.Appendf(nil, `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: web-7d9f-a, namespace: shop, labels: {app: web}}
    spec: {containers: [{name: web, image: %[1]s}]}
    status: {phase: Running}
  - apiVersion: v1
    kind: Pod
    metadata: {name: web-7d9f-b, namespace: shop, labels: {app: web}}
    spec: {containers: [{name: web, image: %[1]s}]}
    status: {phase: Pending}
  - apiVersion: v1
    kind: Pod
    metadata: {name: migrate-x, namespace: shop}
    spec: {containers: [{name: migrate, image: %[2]s}]}
    status: {phase: Succeeded}
`, reg.signed, reg.unsigned), 0o600); err != nil {
		t.Fatal(err)
	}
	deployments := filepath.Join(t.TempDir(), "deployments.yaml")
	if err := os.WriteFile(deployments, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		extra []string
		code  int
		want  []string
	}{
		"blocked": {[]string{"--running-images", pods}, exitBlocked, []string{
			"BLOCKED (RunningPodsDenied): after this revision, 2 running pods in shop could not be re-admitted if evicted: shop/web-7d9f-a, shop/web-7d9f-b run " + reg.signed,
			"Running pods: 2 pods, 1 image checked; 2 no longer admitted after this revision"}},
		"warn only": {[]string{"--running-images", pods, "--running-pods", "warn"}, exitOK, []string{"Deny (warns)", "ALLOWED (Succeeded)"}},
		"not Pods":  {[]string{"--running-images", deployments}, exitUndecided, []string{`document 1: a "Deployment", not a Pod`}},
		"bad mode":  {[]string{"--running-images", pods, "--running-pods", "block"}, exitUndecided, []string{`--running-pods "block": want deny or warn`}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"check", dir, "--root", dir, "--unmatched-images", "allow"}, reg.flags(tc.extra...)...)
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String()+stderr.String(), w) {
					t.Errorf("output lacks %q:\nstdout:\n%s\nstderr:\n%s", w, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// TestExplainCmd_attestationConditions: explain shows every attestation
// considered and what each condition of the policy evaluated to, on an
// image whose SLSA provenance the in-process Sigstore signed: one that
// holds and one that fails, which blocks.
func TestExplainCmd_attestationConditions(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)
	image := reg.host + "/acme/api:3.0"
	ref, digest := verifytest.PushRandomImage(t, image)
	verifytest.PushBundle(t, ref, reg.sigstore.MustSignImage(t, releaseID, issuer, digest), verify.CosignSignPredicateType)
	provenance := map[string]any{"buildDefinition": map[string]any{"externalParameters": map[string]any{"workflow": map[string]any{"ref": "refs/tags/v1.0.0"}}}}
	verifytest.PushBundle(t, ref, reg.sigstore.MustAttestImage(t, releaseID, issuer, digest, "https://slsa.dev/provenance/v1", provenance), "https://slsa.dev/provenance/v1")
	policy := func(conditions string) string {
		file := filepath.Join(t.TempDir(), "policy.yaml")
		doc := fmt.Sprintf(`apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: first-party}
spec:
  images: [{glob: "%s/acme/**"}]
  authorities:
    - name: release
      insecureIgnoreSCT: true
      keyless: {identities: [{issuer: %s, subjectRegExp: "^https://github.com/acme/.+"}]}
  attestations:
    - name: provenance
      predicateType: https://slsa.dev/provenance/v1
      conditions: %s
`, reg.host, issuer, conditions)
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	tagged := `{expression: "predicate.buildDefinition.externalParameters.workflow.ref.startsWith('refs/tags/v')"}`
	main := `{expression: "predicate.buildDefinition.externalParameters.workflow.ref == 'refs/heads/main'", message: "not built from main"}`
	for name, tc := range map[string]struct {
		conditions string
		code       int
		want       []string
	}{
		"holds": {"[" + tagged + "]", exitOK, []string{"Conditions of https://slsa.dev/provenance/v1", "holds  predicate.buildDefinition.externalParameters.workflow.ref.startsWith('refs/tags/v') = true", "ALLOWED"}},
		"fails": {"[" + tagged + ", " + main + "]", exitBlocked, []string{"holds  predicate.buildDefinition.externalParameters.workflow.ref.startsWith('refs/tags/v') = true",
			"FAILS  predicate.buildDefinition.externalParameters.workflow.ref == 'refs/heads/main' = false", "its conditions do not hold: not built from main", "DENIED"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"explain", image, "--policy", policy(tc.conditions), "--trusted-root", reg.trustedRoot, "--lookup-timeout", "5s"}, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code = %d, want %d; stderr: %s\n%s", code, tc.code, stderr.String(), stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("explain output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

// TestCheckCmd_gitFlags: the git flags go together, and --policy takes a
// directory as a mounted ConfigMap lays it out (its ..data entries are
// not policy files); a directory without policy files is refused.
func TestCheckCmd_gitFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies")
	data := filepath.Join(policies, "..2026_12_03")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	policy := "apiVersion: gate.pregate.dev/v1alpha1\nkind: TrustPolicy\nmetadata: {name: p}\nspec:\n  images: [{glob: 'ghcr.io/acme/**'}]\n  authorities: [{name: a, static: {action: pass}}]\n"
	if err := os.WriteFile(filepath.Join(data, "trust.yaml"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, link := range [][2]string{{"..2026_12_03", "..data"}, {"..data/trust.yaml", "trust.yaml"}} {
		if err := os.Symlink(link[0], filepath.Join(policies, link[1])); err != nil {
			t.Fatal(err)
		}
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"revision without url":    {[]string{"--policy", policies, "--git-revision", "main"}, "--git-revision and --git-credentials need --git-url"},
		"credentials without url": {[]string{"--policy", policies, "--git-credentials", dir}, "--git-revision and --git-credentials need --git-url"},
		"path outside the repo":   {[]string{"--policy", policies, "--git-url", "https://git.example/acme/deploy.git"}, "with --git-url, a PATH is a directory inside the repository"},
		"no policy file":          {[]string{"--policy", dir}, "holds no .yaml, .yml or .json file"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"check", "../outside"}, tc.args...), &stdout, &stderr)
			if code != exitUndecided || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, stderr.String(), exitUndecided, tc.want)
			}
		})
	}
}
