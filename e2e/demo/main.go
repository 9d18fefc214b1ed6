// Command demo is `make demo`: pregate gating the two clusters of examples/
// against images in a local registry, with no network.
//
// It starts go-containerregistry's in-memory registry on a loopback port
// (referrers API on, so a cosign v3 bundle is an OCI referrer and nothing
// else), makes a private Sigstore in process (sigstore-go's VirtualSigstore:
// Fulcio, Rekor, TSA), pushes the images examples/apps runs, signed or not as
// the story needs, and then runs the real pregate binary on the production
// cluster (allowed), the staging cluster (blocked) and pregate explain on the
// two images that block staging. It exits non-zero when a verdict is not the
// expected one, so `make demo` is also a smoke test.
//
// Run it from the repository root: it passes --root . to pregate.
//
//	go run ./e2e/demo -pregate bin/pregate
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pregate/pregate/verify/verifytest"
)

const (
	issuer         = "https://token.actions.githubusercontent.com"
	policyTemplate = "examples/policies/first-party.yaml"
)

// workflow is the certificate identity GitHub Actions gives a workflow run.
func workflow(repo, file, ref string) string {
	return "https://github.com/acme/" + repo + "/.github/workflows/" + file + "@" + ref
}

func main() {
	pregate := flag.String("pregate", "bin/pregate", "the pregate binary to run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Stdout, *pregate)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, pregate string) error {
	start := time.Now()
	if _, err := os.Stat(filepath.Join("examples", "clusters")); err != nil {
		return errors.New("run the demo from the repository root (make demo): it renders ./examples")
	}
	if _, err := os.Stat(pregate); err != nil {
		return fmt.Errorf("-pregate: %w (make build writes bin/pregate)", err)
	}
	dir, err := os.MkdirTemp("", "pregate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	host, stopRegistry, err := verifytest.StartRegistry(ctx, verifytest.WithReferrersAPI(true))
	if err != nil {
		return err
	}
	defer stopRegistry()
	sigstore, err := verifytest.GenerateSigstore()
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "A local OCI registry at %s (referrers API on) and an in-process Sigstore (Fulcio, Rekor, TSA).\n\n", host)
	imgs, err := pushImages(ctx, out, host, sigstore)
	if err != nil {
		return err
	}
	files, err := writeFiles(dir, host, sigstore)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDEMO=%s: the trust policy (%s with ${REGISTRY} filled in), the Sigstore's trusted_root.json and the cluster's registry-vars ConfigMap.\n", dir, policyTemplate)

	trust := []string{"--policy", files.policy, "--trusted-root", files.trustedRoot}
	check := func(cluster string) []string {
		return slices.Concat([]string{"check", "examples/clusters/" + cluster, "--root", "."}, trust,
			[]string{"--substitute-from", files.vars, "--unmatched-images", "allow"})
	}
	steps := []step{
		{
			title: "Production runs web (cosign v3 bundle, an OCI referrer only), api (legacy .sig) and redis (third party, no policy).",
			args:  check("production"),
			want:  exitAllowed,
			// Both signature formats verify; redis passes as unmatched.
			rows: map[string]string{imgs.web: "Verified", imgs.api: "Verified", imgs.redis: "Allowed"},
		},
		{
			title: "Staging adds worker (never signed) and billing (signed by a test workflow on a branch).",
			args:  check("staging"),
			want:  exitBlocked,
			rows: map[string]string{
				imgs.worker: "Denied (NoSignatures)", imgs.billing: "Denied (IdentityMismatch)",
				imgs.web: "Verified", imgs.api: "Verified", imgs.redis: "Allowed",
			},
		},
		{
			title: "On call: why is worker denied? Every lookup made and what it found.",
			args:  slices.Concat([]string{"explain", imgs.worker}, trust),
			want:  exitDenied,
		},
		{
			title: "On call: why is billing denied? The signature found and the identity it names.",
			args:  slices.Concat([]string{"explain", imgs.billing}, trust),
			want:  exitDenied,
		},
	}
	var failed []string
	for i, s := range steps {
		fmt.Fprintf(out, "\n==> %d/%d %s Expect %s.\n", i+1, len(steps), s.title, s.want)
		if err := s.run(ctx, out, pregate, dir); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(out, "!!! %v\n", err)
			failed = append(failed, fmt.Sprintf("step %d: %v", i+1, err))
			continue
		}
		fmt.Fprintf(out, "--> exit %d, as expected\n", s.want.code)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d steps did not end as expected:\n  %s", len(failed), len(steps), strings.Join(failed, "\n  "))
	}
	fmt.Fprintf(out, "\nDemo done in %s: production allowed, staging blocked by worker (no signature) and billing (wrong signer), each for its real reason.\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// images are the tag references of the pushed images.
type images struct{ web, api, worker, billing, redis string }

// pushImages pushes random images under the names examples/apps uses and
// signs them as the story needs. The verifier sees them only through the
// registry protocol.
func pushImages(ctx context.Context, out io.Writer, host string, sigstore *verifytest.Sigstore) (images, error) {
	var p verifytest.Pusher
	imgs := images{
		web:     host + "/acme/web:1.4.0",
		api:     host + "/acme/api:2.3.1",
		worker:  host + "/acme/worker:0.9.0-rc1",
		billing: host + "/acme/billing:1.1.0",
		redis:   host + "/library/redis:7.4",
	}
	// bundle signs like cosign v3: a Sigstore bundle stored as a referrer.
	bundle := func(identity string) func(digestRef, digest string) error {
		return func(digestRef, digest string) error {
			b, err := sigstore.SignImage(identity, issuer, digest)
			if err != nil {
				return err
			}
			_, err = p.PushBundle(ctx, digestRef, b, verifytest.CosignSignPredicateType)
			return err
		}
	}
	// legacy signs like cosign v2: a simple-signing payload in a .sig tag.
	legacy := func(identity string) func(digestRef, digest string) error {
		return func(digestRef, digest string) error {
			d, err := name.NewDigest(digestRef)
			if err != nil {
				return err
			}
			payload, ann, err := sigstore.LegacySignature(identity, issuer, digest, d.Context().Name())
			if err != nil {
				return err
			}
			_, err = p.PushLegacySignature(ctx, digestRef, payload, ann)
			return err
		}
	}
	pushes := []struct {
		ref  string
		what string
		sign func(digestRef, digest string) error
	}{
		{imgs.web, "cosign v3 bundle (OCI referrer), by acme/web release.yml@refs/tags/v1.4.0",
			bundle(workflow("web", "release.yml", "refs/tags/v1.4.0"))},
		{imgs.api, "legacy .sig tag, by acme/api release.yml@refs/tags/v2.3.1",
			legacy(workflow("api", "release.yml", "refs/tags/v2.3.1"))},
		{imgs.worker, "unsigned", nil},
		{imgs.billing, "cosign v3 bundle (OCI referrer), by acme/billing test.yml@refs/heads/dev",
			bundle(workflow("billing", "test.yml", "refs/heads/dev"))},
		{imgs.redis, "unsigned, third party", nil},
	}
	fmt.Fprintln(out, "Pushed:")
	for _, ps := range pushes {
		digestRef, digest, err := p.PushRandomImage(ctx, ps.ref)
		if err != nil {
			return images{}, err
		}
		if ps.sign != nil {
			if err := ps.sign(digestRef, digest); err != nil {
				return images{}, fmt.Errorf("signing %s: %w", ps.ref, err)
			}
		}
		fmt.Fprintf(out, "  %-24s %s  %s\n", strings.TrimPrefix(ps.ref, host+"/"), digest[:len("sha256:")+12], ps.what)
	}
	// The incident's premise: a cosign v3 signature leaves no tag behind,
	// neither .sig nor the sha256-<hex> fallback.
	repo, err := name.NewRepository(host + "/acme/web")
	if err != nil {
		return images{}, err
	}
	tags, err := remote.List(repo, remote.WithContext(ctx))
	if err != nil {
		return images{}, err
	}
	if !slices.Equal(tags, []string{"1.4.0"}) {
		return images{}, fmt.Errorf("acme/web has tags %v, want only 1.4.0: its bundle must live only as an OCI referrer", tags)
	}
	fmt.Fprintln(out, "acme/web has one tag, 1.4.0: its signature is reachable only through the referrers API.")
	return imgs, nil
}

// demoFiles are the paths of the files the demo writes for pregate.
type demoFiles struct{ policy, trustedRoot, vars string }

func writeFiles(dir, host string, sigstore *verifytest.Sigstore) (demoFiles, error) {
	f := demoFiles{
		policy:      filepath.Join(dir, "first-party.yaml"),
		trustedRoot: filepath.Join(dir, "trusted_root.json"),
		vars:        filepath.Join(dir, "registry-vars.yaml"),
	}
	tmpl, err := os.ReadFile(policyTemplate)
	if err != nil {
		return f, err
	}
	if !bytes.Contains(tmpl, []byte("${REGISTRY}")) {
		return f, fmt.Errorf("%s: no ${REGISTRY} to fill in", policyTemplate)
	}
	policy := bytes.ReplaceAll(tmpl, []byte("${REGISTRY}"), []byte(host))
	// What lives in the cluster, for the apps Kustomizations'
	// postBuild.substituteFrom.
	vars := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: registry-vars
  namespace: flux-system
data:
  REGISTRY: %q
`, host)
	for path, b := range map[string][]byte{f.policy: policy, f.trustedRoot: sigstore.TrustedRootJSON(), f.vars: []byte(vars)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

// exit is an exit code of pregate check and explain.
type exit struct {
	code int
	name string
}

var (
	exitAllowed = exit{0, "ALLOWED (exit 0)"}
	exitBlocked = exit{1, "BLOCKED (exit 1)"}
	exitDenied  = exit{1, "DENIED (exit 1)"}
)

func (e exit) String() string { return e.name }

// step is one pregate command of the demo.
type step struct {
	title string
	args  []string
	want  exit
	// rows maps an image to the RESULT its row of the check table must
	// show.
	rows map[string]string
}

// run runs pregate with s.args, streaming its output to out, and checks
// its exit code and rows.
func (s step) run(ctx context.Context, out io.Writer, pregate, dir string) error {
	fmt.Fprintf(out, "$ %s\n\n", commandLine(shortPath(pregate), s.args, dir))
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, pregate, s.args...)
	cmd.Stdout = io.MultiWriter(out, &buf)
	cmd.Stderr = io.MultiWriter(out, &buf)
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return err
	}
	if code != s.want.code {
		return fmt.Errorf("pregate %s exited %d, want %s", s.args[0], code, s.want)
	}
	for img, result := range s.rows {
		if !hasRow(buf.String(), img, result) {
			return fmt.Errorf("pregate %s: no row for %s with result %q", s.args[0], img, result)
		}
	}
	return nil
}

// hasRow reports whether the check table in output has a row for img whose
// RESULT column is result.
func hasRow(output, img, result string) bool {
	for line := range strings.Lines(output) {
		// IMAGE  DIGEST  RESULT  POLICY  ...
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[0] == img && strings.HasPrefix(strings.Join(fields[2:], " "), result+" ") {
			return true
		}
	}
	return false
}

// shortPath is path relative to the working directory when it lies below
// it (bin/pregate), else path as given.
func shortPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}

// commandLine renders a pregate command readably: the temp dir as $DEMO,
// each flag with its value on a continuation line.
func commandLine(pregate string, args []string, dir string) string {
	var lines []string
	cur := pregate
	for i := 0; i < len(args); i++ {
		a := strings.ReplaceAll(args[i], dir, "$DEMO")
		if strings.HasPrefix(a, "--") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			i++
			a += " " + strings.ReplaceAll(args[i], dir, "$DEMO")
		}
		if strings.HasPrefix(a, "--") && len(cur)+1+len(a) > 76 {
			lines = append(lines, cur)
			cur = "   "
		}
		cur += " " + a
	}
	return strings.Join(append(lines, cur), " \\\n")
}
