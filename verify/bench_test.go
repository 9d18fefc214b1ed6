package verify_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
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

// benchImages is how many images BenchmarkCheck200 verifies.
const benchImages = 200

// checkFixture is a registry holding benchImages images, each in its own
// repository, referenced by tag and signed keyless with a cosign v3
// bundle, read through a TLS Front (as real registries are served), and
// the rendering and policy that check them.
type checkFixture struct {
	front *verifytest.Front
	// rev references the images by tag; byDigest by digest.
	rev, byDigest fixedRendering
	policies      []*verify.Policy
	cfg           gate.Config
}

// newCheckFixture pushes and signs the images. referrers says whether the
// registry has the OCI referrers API (the bundles are listed there) or not
// (they are in the sha256-<hex> fallback tag); redirect makes the Front
// answer the referrers API with a 303 to another host, as GHCR has.
func newCheckFixture(b *testing.B, ss *verifytest.Sigstore, referrers, redirect bool) *checkFixture {
	b.Helper()
	host := verifytest.NewRegistry(b, verifytest.WithReferrersAPI(referrers))
	front := verifytest.NewFront(b, host, verifytest.WithTLS())
	if redirect {
		front.On(`/referrers/`, front.RedirectToBlackHole(http.StatusSeeOther))
	}
	g, err := gate.CompileGlob(front.Host() + "/**")
	if err != nil {
		b.Fatal(err)
	}
	f := &checkFixture{front: front}
	for i := range benchImages {
		repo := fmt.Sprintf("team-%d/app-%03d:1.%d", i%10, i, i)
		img, dig := verifytest.PushRandomImage(b, host+"/"+repo)
		verifytest.PushBundle(b, img, ss.MustSignImage(b, goodIdentity, ghIssuer, dig), verifytest.CosignSignPredicateType)
		loc := []gate.Location{{
			File:      "apps/app.yaml",
			Object:    fmt.Sprintf("Deployment/apps/app-%03d", i),
			Container: "app",
			Path:      "spec.template.spec.containers[0].image",
		}}
		f.rev.Images = append(f.rev.Images, gate.Image{Ref: front.Host() + "/" + repo, Locations: loc})
		f.byDigest.Images = append(f.byDigest.Images, gate.Image{Ref: front.Ref(img), Locations: loc})
	}
	policy := firstPartyPolicy(ss.Material())
	policy.Fingerprint = "bench" // as config.Compile sets it; an empty one is never shared
	f.policies = []*verify.Policy{policy}
	f.cfg = gate.Config{Policies: []gate.Policy{{Name: "first-party", Images: []*gate.Glob{g}, Mode: gate.Enforce, Verify: policy}}, Unmatched: gate.DenyUnmatched}
	return f
}

// check runs one gate.Check of rev with v.
func (f *checkFixture) check(b *testing.B, rev fixedRendering, v *verify.Verifier) {
	b.Helper()
	g := gate.Gate{Renderer: rev, Verifier: v, Config: f.cfg, Concurrency: 8}
	verdict, err := g.Check(b.Context(), gate.Revision{Source: "bench", ID: "main@sha1:0000000000000000000000000000000000000000"})
	if err != nil {
		b.Fatalf("Check() = %v", err)
	}
	if !verdict.Allowed || verdict.Summary.Verified != benchImages {
		b.Fatalf("Check() verified %d of %d images (allowed %t): %s", verdict.Summary.Verified, benchImages, verdict.Allowed, verdict.Message)
	}
}

// registry returns a new Registry reading through the fixture's TLS Front,
// sharing hosts when given.
func (f *checkFixture) registry(b *testing.B, hosts *verify.Hosts) *verify.Registry {
	b.Helper()
	if hosts == nil {
		return newRegistry(b, verify.WithTransport(verifytest.TransportTrusting(f.front.Pool())))
	}
	return newRegistry(b, verify.WithHosts(hosts))
}

// BenchmarkCheck200 is `pregate check` without its render step: gate.Check
// of a revision with 200 distinct images, each in its own repository and
// referenced by tag, each signed keyless with a cosign v3 bundle, against
// one enforce policy that matches them all, in a loopback registry served
// over TLS. It runs for each place the bundles can be found:
//
//   - referrers: the registry has the OCI referrers API, which lists them;
//   - fallback: it has none; they are in the sha256-<hex> fallback tag;
//   - 303: the referrers API redirects to another host (GHCR has), and
//     the fallback tag holds them (the registry behind has no referrers
//     API, so its writers kept the tag).
//
// and each as
//
//   - cold: a new Registry and Verifier each iteration, as each `pregate
//     check` run starts: every registry pinged, every tag resolved, every
//     digest discovered and every bundle verified;
//   - warm: a new Registry and Verifier each iteration, as each controller
//     reconcile has, sharing the controller's Hosts and one verify.Cache
//     that holds the previous iterations' verdicts: every tag is still
//     resolved (tags move), and the verdict for the digest comes from the
//     cache; warm/…/digest references the images by digest, which need no
//     request at all.
//
// It reports images/s, registry-requests/image (what the Registry sent,
// pings and retries included) and peak-RSS-MiB, the process's peak
// resident set (getrusage ru_maxrss), which includes the setup: the
// in-memory registries and the signing. Setup (pushing and signing 200
// images per place) is not timed. The test Sigstore's certificates are
// valid for minutes (see verifytest.Sigstore): keep runs short,
// -benchtime 3x, say.
func BenchmarkCheck200(b *testing.B) {
	ss := verifytest.NewSigstore(b)
	for _, place := range []struct {
		name                string
		referrers, redirect bool
	}{
		{"referrers", true, false},
		{"fallback", false, false},
		{"303", false, true},
	} {
		f := newCheckFixture(b, ss, place.referrers, place.redirect)
		b.Run("cold/"+place.name, func(b *testing.B) {
			b.ReportAllocs()
			requests, runs := 0, 0
			for b.Loop() {
				r := f.registry(b, nil)
				v, err := verify.NewVerifier(r, f.policies)
				if err != nil {
					b.Fatal(err)
				}
				f.check(b, f.rev, v)
				requests += r.Requests().Total
				runs++
			}
			reportCheck(b, benchImages*runs, requests)
		})

		for _, refs := range []struct {
			name string
			rev  fixedRendering
		}{{"", f.rev}, {"/digest", f.byDigest}} {
			b.Run("warm/"+place.name+refs.name, func(b *testing.B) {
				b.ReportAllocs()
				cache, err := verify.NewCache(time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				hosts, err := verify.NewHosts(verify.WithHostsTransport(verifytest.TransportTrusting(f.front.Pool())))
				if err != nil {
					b.Fatal(err)
				}
				run := func() int {
					r := f.registry(b, hosts)
					v, err := verify.NewVerifier(r, f.policies, verify.WithCache(cache))
					if err != nil {
						b.Fatal(err)
					}
					f.check(b, refs.rev, v)
					return r.Requests().Total
				}
				run() // fills the cache
				requests, runs := 0, 0
				for b.Loop() {
					requests += run()
					runs++
				}
				if s := cache.Stats(); s.Hits < uint64(benchImages*runs) {
					b.Fatalf("cache hits = %d, want at least %d", s.Hits, benchImages*runs)
				}
				reportCheck(b, benchImages*runs, requests)
			})
		}
	}
}

// BenchmarkCheck200CacheDir is BenchmarkCheck200 (referrers, tag
// references) as `pregate check --cache-dir` runs it: each iteration is a
// new process, with a new Registry, Verifier and verify.Cache
// (WithCacheDir), nothing in memory:
//
//   - cold: on an empty dir: every registry pinged, every tag resolved,
//     every digest discovered and every bundle verified, and every result
//     written to the dir;
//   - warm: on the dir a cold run filled: every tag is still resolved
//     (tags move) and every verdict is read from the dir. The requests are
//     the resolutions (a HEAD of each tag's manifest) and the registry's
//     ping; nothing is discovered, which the benchmark checks;
//   - warm/digest: the same, the images referenced by digest: the dir
//     knows the credentials that resolved them, so no request at all.
//
// It reports ns/op (one check of the 200 images), registry-requests/op
// (what the Registry sent, pings included), and what BenchmarkCheck200
// does.
func BenchmarkCheck200CacheDir(b *testing.B) {
	f := newCheckFixture(b, verifytest.NewSigstore(b), true, false)
	// run checks f's images by tag, as a new process on dir, and returns
	// the number of registry requests and the Cache's counters.
	run := func(b *testing.B, dir string, rev fixedRendering) (int, verify.CacheStats) {
		b.Helper()
		cache, err := verify.NewCache(time.Hour, verify.WithCacheDir(dir), verify.WithCacheWarnings(func(err error) {
			b.Errorf("cache warning: %v", err)
		}))
		if err != nil {
			b.Fatal(err)
		}
		r := f.registry(b, nil)
		v, err := verify.NewVerifier(r, f.policies, verify.WithCache(cache))
		if err != nil {
			b.Fatal(err)
		}
		f.check(b, rev, v)
		return r.Requests().Total, cache.Stats()
	}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		base := b.TempDir()
		requests, runs := 0, 0
		for b.Loop() {
			n, s := run(b, filepath.Join(base, strconv.Itoa(runs)), f.rev)
			if s.Misses != benchImages {
				b.Fatalf("cold: %d cache misses, want %d", s.Misses, benchImages)
			}
			requests += n
			runs++
		}
		reportCheck(b, benchImages*runs, requests)
		b.ReportMetric(float64(requests)/float64(runs), "registry-requests/op")
	})
	for _, refs := range []struct {
		name string
		rev  fixedRendering
	}{{"", f.rev}, {"/digest", f.byDigest}} {
		b.Run("warm"+refs.name, func(b *testing.B) {
			b.ReportAllocs()
			dir := b.TempDir()
			run(b, dir, f.rev) // fills the dir
			discoveries := f.front.CountMatching(`/referrers/`)
			requests, runs := 0, 0
			for b.Loop() {
				n, s := run(b, dir, refs.rev)
				if s.Hits != benchImages || s.Misses != 0 {
					b.Fatalf("warm: %d cache hits and %d misses, want %d and none", s.Hits, s.Misses, benchImages)
				}
				requests += n
				runs++
			}
			if n := f.front.CountMatching(`/referrers/`) - discoveries; n != 0 {
				b.Errorf("warm: %d discoveries, want none", n)
			}
			reportCheck(b, benchImages*runs, requests)
			b.ReportMetric(float64(requests)/float64(runs), "registry-requests/op")
		})
	}
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
