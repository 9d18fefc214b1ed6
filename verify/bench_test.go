package verify_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// fixedRendering is a Renderer that returns a fixed rendering: the render
// half of `pregate check` is benchmarked in render/, this is the verify
// half.
type fixedRendering gate.Rendered

func (r fixedRendering) Render(context.Context) (gate.Rendered, error) { return gate.Rendered(r), nil }

// BenchmarkCheck200 is `pregate check` without its render step: gate.Check
// of a revision with 200 distinct images, each in its own repository and
// referenced by tag, each signed keyless with a cosign v3 bundle, against
// one enforce policy that matches them all. Half the images are in a
// loopback registry with the OCI referrers API (their bundles are found
// there), half in one without it (their bundles are in the sha256-<hex>
// fallback tag), as on a mixed fleet of registries.
//
//   - cold: a new Registry and Verifier each iteration, as each `pregate
//     check` run starts: every repository is pinged, every tag resolved,
//     every digest discovered and every bundle verified.
//   - warm: a new Registry and Verifier each iteration, as each controller
//     reconcile has, sharing one verify.Cache that holds the previous
//     iterations' verdicts: every tag is still resolved (tags move), and the
//     verdict for the digest comes from the cache.
//
// It reports images/s, registry-requests/image (Registry.Requests) and
// peak-RSS-MiB, the process's peak resident set (getrusage ru_maxrss),
// which includes the setup: the in-memory registries and the signing.
// Setup (pushing and signing 200 images) is not timed. The test Sigstore's
// certificates are valid for minutes (see verifytest.Sigstore): keep runs
// short, -benchtime 3x, say.
func BenchmarkCheck200(b *testing.B) {
	const images = 200
	ss := verifytest.NewSigstore(b)
	hosts := []string{
		verifytest.NewRegistry(b, verifytest.WithReferrersAPI(true)),
		verifytest.NewRegistry(b, verifytest.WithReferrersAPI(false)),
	}
	var globs []*gate.Glob
	for _, h := range hosts {
		g, err := gate.CompileGlob(h + "/**")
		if err != nil {
			b.Fatal(err)
		}
		globs = append(globs, g)
	}
	var rev fixedRendering
	for i := range images {
		ref := fmt.Sprintf("%s/team-%d/app-%03d:1.%d", hosts[i%len(hosts)], i%10, i, i)
		img, dig := verifytest.PushRandomImage(b, ref)
		verifytest.PushBundle(b, img, ss.MustSignImage(b, goodIdentity, ghIssuer, dig), verifytest.CosignSignPredicateType)
		rev.Images = append(rev.Images, gate.Image{Ref: ref, Locations: []gate.Location{{
			File:      "apps/app.yaml",
			Object:    fmt.Sprintf("Deployment/apps/app-%03d", i),
			Container: "app",
			Path:      "spec.template.spec.containers[0].image",
		}}})
	}
	policy := firstPartyPolicy(ss.Material())
	policy.Fingerprint = "bench" // as config.Compile sets it; an empty one is never shared
	policies := []*verify.Policy{policy}
	cfg := gate.Config{
		Policies:  []gate.Policy{{Name: "first-party", Images: globs, Mode: gate.Enforce}},
		Unmatched: gate.DenyUnmatched,
	}
	revision := gate.Revision{Source: "bench", ID: "main@sha1:0000000000000000000000000000000000000000"}
	check := func(b *testing.B, v *verify.Verifier) {
		g := gate.Gate{Renderer: rev, Verifier: v, Config: cfg, Concurrency: 8}
		verdict, err := g.Check(b.Context(), revision)
		if err != nil {
			b.Fatalf("Check() = %v", err)
		}
		if !verdict.Allowed || verdict.Summary.Verified != images {
			b.Fatalf("Check() verified %d of %d images (allowed %t): %s", verdict.Summary.Verified, images, verdict.Allowed, verdict.Message)
		}
	}

	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		requests, runs := 0, 0
		for b.Loop() {
			r := newRegistry(b)
			v, err := verify.NewVerifier(r, policies)
			if err != nil {
				b.Fatal(err)
			}
			check(b, v)
			requests += r.Requests().Total
			runs++
		}
		reportCheck(b, images*runs, requests)
	})

	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		cache, err := verify.NewCache(time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		run := func() int {
			r := newRegistry(b)
			v, err := verify.NewVerifier(r, policies, verify.WithCache(cache))
			if err != nil {
				b.Fatal(err)
			}
			check(b, v)
			return r.Requests().Total
		}
		run() // fills the cache
		requests, runs := 0, 0
		for b.Loop() {
			requests += run()
			runs++
		}
		if s := cache.Stats(); s.Hits < uint64(images*runs) {
			b.Fatalf("cache hits = %d, want at least %d", s.Hits, images*runs)
		}
		reportCheck(b, images*runs, requests)
	})
}

// reportCheck reports the throughput, the requests per image and the
// process's peak RSS.
func reportCheck(b *testing.B, verified, requests int) {
	b.Helper()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(verified)/s, "images/s")
	}
	b.ReportMetric(float64(requests)/float64(verified), "registry-requests/image")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB") // Linux reports KiB
}
