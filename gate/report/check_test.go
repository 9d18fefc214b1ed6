package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/sources"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestCheckReports runs a real check (kustomize overlay, loopback
// registry, in-process Sigstore) and reads its reports as CI would: they
// validate against their schemas, and each denied image is located at the
// line of the manifest, or of the overlay's images: entry, that set it.
func TestCheckReports(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	ss := verifytest.NewSigstore(t)
	const id = "https://github.com/acme/web/.github/workflows/release.yml@refs/tags/v1.0.0"
	const issuer = "https://token.actions.githubusercontent.com"
	ref, dig := verifytest.PushRandomImage(t, host+"/acme/web:1.0")
	verifytest.PushBundle(t, ref, ss.MustSignImage(t, id, issuer, dig), verify.CosignSignPredicateType)
	verifytest.PushRandomImage(t, host+"/acme/worker:0.9")

	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"base/kustomization.yaml": "resources: [deployment.yaml, job.yaml]\n",
		"base/deployment.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: web
          image: %[1]s/acme/web:0.1
        - name: worker
          image: %[1]s/acme/worker:0.9
`, host),
		"base/job.yaml": fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: migrate
          image: %s/acme/migrate:dev
`, host),
		"prod/kustomization.yaml": fmt.Sprintf(`resources: [../base]
images:
  - name: %[1]s/acme/web
    newTag: "1.0"
  - name: %[1]s/acme/migrate
    newName: %[1]s/acme/worker
    newTag: "0.9"
`, host),
	})

	res := checkTree(t, ss, host, id, issuer, dir, "prod")
	if res.Verdict.Allowed || res.Verdict.Summary.Verified != 1 || res.Verdict.Summary.Denied != 1 {
		t.Fatalf("verdict %s: %s; want web verified and worker denied", State(res.Verdict), res.Verdict.Message)
	}
	write := func(f Format) []byte {
		var a, b bytes.Buffer
		if err := Check(&a, f, res, "test"); err != nil {
			t.Fatal(err)
		}
		if err := Check(&b, f, res, "test"); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("%s: two writes differ (%v)", f, err)
		}
		return a.Bytes()
	}

	sarif := write(SARIF)
	if err := ciValidateSARIF(t, sarif); err != nil {
		t.Fatalf("SARIF of a real check violates the schema: %v\n%s", err, sarif)
	}
	run := ciParseSARIF(t, sarif).Runs[0]
	// The worker in the Deployment stands at line 11 of the base; the
	// Job's image was set by the overlay's second images: entry, line 5,
	// with the Job's own line 9 as the related location.
	at := map[string]int{}
	for _, r := range run.Results {
		for _, l := range r.Locations {
			at[l.PhysicalLocation.ArtifactLocation.URI] = l.PhysicalLocation.Region.StartLine
		}
		for _, l := range r.RelatedLocations {
			at["related "+l.PhysicalLocation.ArtifactLocation.URI] = l.PhysicalLocation.Region.StartLine
		}
	}
	want := map[string]int{"base/deployment.yaml": 11, "prod/kustomization.yaml": 5, "related base/job.yaml": 9}
	if fmt.Sprint(at) != fmt.Sprint(want) {
		t.Errorf("SARIF locations %v, want %v", at, want)
	}

	if err := ciValidateJUnit(t, ciXmllint(t), write(JUnit)); err != nil {
		t.Errorf("JUnit of a real check violates the schema: %v", err)
	}
	annotations := string(write(GitHub))
	for _, w := range []string{"::error file=base/deployment.yaml,line=11,", "::error file=prod/kustomization.yaml,line=5,"} {
		if !strings.Contains(annotations, w) {
			t.Errorf("annotations lack %q:\n%s", w, annotations)
		}
	}
}

// writeTree writes files (slash paths) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkTree runs a real check of path in dir, with a TrustPolicy
// trusting id for host's acme images and the in-process Sigstore ss.
func checkTree(t *testing.T, ss *verifytest.Sigstore, host, id, issuer, dir, path string) *pipeline.Result {
	t.Helper()
	set, err := config.Load("policy.yaml", fmt.Appendf(nil, `apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: first-party}
spec:
  images: [{glob: "%s/acme/**"}]
  authorities: [{name: release, insecureIgnoreSCT: true, keyless: {identities: [{issuer: %q, subject: %q}]}}]
`, host, issuer, id))
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Check(t.Context(), pipeline.Options{
		Policies: pipeline.Policies{Set: set, Trust: func(*v1alpha1.TrustRoot) (root.TrustedMaterial, error) { return ss.Material(), nil }},
		Registry: []verify.RegistryOption{verify.WithLookupTimeout(5 * time.Second)},
	}, pipeline.Source{
		Name: path, Root: dir, Ref: render.DefaultSourceRef, Paths: []string{path},
		Open: func(ctx context.Context, d string) (*sources.Tree, error) { return sources.Local(ctx, dir, d) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
