package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pregate/pregate/verify/verifytest"
)

// speedImages is how many images BenchmarkCheckVsCosignLoop verifies;
// pregateRuns how many times it runs pregate check per iteration.
const (
	speedImages = 200
	pregateRuns = 5
)

// BenchmarkCheckVsCosignLoop measures pregate against what teams run
// without it, in the same run: `pregate check` (the whole process: copy,
// render, resolve, discover, verify, report) on a revision of 200
// Deployments, each running its own image, against a sequential loop of
// `cosign verify` over the same 200 images. Every image is signed by the
// real cosign with a key, in the v3 bundle format (an OCI referrer), in one
// loopback registry with the referrers API, served over TLS (both programs
// trust its certificate through SSL_CERT_FILE, as they would a private
// CA). Both run offline (see offlineEnv).
//
// It reports pregate-s and cosign-loop-s (wall time of one pregate check,
// the median of five, and of the loop), speedup-x (their ratio) and the
// registry requests per image each made. Setup (200 cosign sign runs) is not timed. Run it
// alone, once:
//
//	make build cosign
//	PREGATE_BIN=bin/pregate PREGATE_COSIGN=bin/cosign-v3.1.3 \
//	  go test -run '^$' -bench CheckVsCosignLoop -benchtime 1x ./e2e
func BenchmarkCheckVsCosignLoop(b *testing.B) {
	cosignBin := e2eBinary(b, "PREGATE_COSIGN", "the real cosign CLI (v3)", "make cosign", "bin/cosign-<COSIGN_VERSION in the Makefile>")
	pregateBin := e2eBinary(b, "PREGATE_BIN", "the pregate binary", "make build", "bin/pregate")

	sentinel := newNetworkSentinel(b)
	root := b.TempDir()
	work := filepath.Join(root, "work")
	revision := filepath.Join(root, "revision")
	for _, d := range []string{work, revision} {
		if err := os.Mkdir(d, 0o700); err != nil {
			b.Fatal(err)
		}
	}
	host := verifytest.NewRegistry(b, verifytest.WithReferrersAPI(true))
	front := verifytest.NewFront(b, host, verifytest.WithTLS())
	certFile := filepath.Join(root, "registry-ca.pem")
	writeTestFile(b, certFile, string(front.CertPEM()))
	env := func(name string, extra ...string) []string {
		return append(append(offlineEnv(b, filepath.Join(root, name), sentinel), "SSL_CERT_FILE="+certFile), extra...)
	}
	cosign := &cosignCLI{offlineBinary{bin: cosignBin, dir: work, env: env("cosign", "COSIGN_PASSWORD=", "TUF_ROOT="+filepath.Join(root, "cosign", "tuf")), sentinel: sentinel}}
	pregate := &offlineBinary{bin: pregateBin, dir: work, env: env("pregate"), sentinel: sentinel}

	cosign.mustRun(b, "generate-key-pair")
	cosign.mustRun(b, "signing-config", "create", "--out", "signing-config.json")
	writeTestFile(b, filepath.Join(work, "trusted-root.json"), `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)
	refs := make([]string, speedImages)
	for i := range refs {
		repo := fmt.Sprintf("team-%d/app-%03d:1.%d", i%10, i, i)
		img, _ := verifytest.PushRandomImage(b, host+"/"+repo)
		refs[i] = front.Host() + "/" + repo
		// Signed by digest through the Front, as a pipeline signs what it
		// pushed.
		cosign.mustRun(b, append(append([]string{"sign", "--key", "cosign.key", "-y"}, bundleFlags...), front.Ref(img))...)
		writeTestFile(b, filepath.Join(revision, fmt.Sprintf("app-%03d.yaml", i)), fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%03d, namespace: apps}
spec:
  selector: {matchLabels: {app: app-%03d}}
  template:
    metadata: {labels: {app: app-%03d}}
    spec:
      containers: [{name: app, image: %q}]
`, i, i, i, refs[i]))
	}
	requests := func() int { return front.CountMatching(`^/v2/`) }

	var pregateTime, loopTime time.Duration
	var pregateReqs, loopReqs int
	for b.Loop() {
		// pregate is run pregateRuns times and its median kept: one run
		// is short enough for the machine's noise to show.
		var runs []time.Duration
		for range pregateRuns {
			before := requests()
			start := time.Now()
			// --no-cache: every run is cold, as the loop is; a warm run
			// would compare a cache against the registry.
			r := pregate.run(b, "check", revision, "--root", revision, "--images", front.Host()+"/**",
				"--key", filepath.Join(work, "cosign.pub"), "--insecure-ignore-tlog", "--no-cache")
			runs = append(runs, time.Since(start))
			pregateReqs += requests() - before
			if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("ALLOWED (Succeeded): %d of %d images verified", speedImages, speedImages)) {
				b.Fatalf("pregate check did not verify every image:\n%s", r)
			}
		}
		slices.Sort(runs)
		pregateTime += runs[len(runs)/2]

		before := requests()
		start := time.Now()
		for _, ref := range refs {
			if r := cosign.run(b, "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", ref); r.code != 0 {
				b.Fatalf("cosign verify %s failed:\n%s", ref, r)
			}
		}
		loopTime += time.Since(start)
		loopReqs += requests() - before
	}
	n := float64(b.N)
	b.ReportMetric(pregateTime.Seconds()/n, "pregate-s")
	b.ReportMetric(loopTime.Seconds()/n, "cosign-loop-s")
	b.ReportMetric(loopTime.Seconds()/pregateTime.Seconds(), "speedup-x")
	b.ReportMetric(float64(pregateReqs)/n/pregateRuns/speedImages, "pregate-requests/image")
	b.ReportMetric(float64(loopReqs)/n/speedImages, "cosign-requests/image")
}
