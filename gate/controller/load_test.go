package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	"github.com/fluxcd/pkg/runtime/conditions"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
)

// loadScale is the shape of a load run: Gates over sources whose revisions
// share signed images. Source s references perSource consecutive images
// starting at s*images/sources (wrapping), so with perSource = k *
// images/sources every image is referenced by exactly k sources; Gate g
// gates source g%sources.
type loadScale struct {
	gates, sources, images, perSource int
}

// fullLoad: 50 Gates over 20 sources sharing 500 signed images. Each source
// references 75 images, so that every image is in 3 sources (and so is
// verified for 7 or 8 Gates): with 25 per source, 20 sources could only
// cover 500 images once each.
var fullLoad = loadScale{gates: 50, sources: 20, images: 500, perSource: 75}

// raceLoad is half of fullLoad, with the same sharing (every image in 3
// sources): what TestGateReconciler_load runs under -race, which makes it
// about 6 times slower (a minute on 2 CPUs at full scale).
// PREGATE_LOAD=full runs fullLoad under -race too.
var raceLoad = loadScale{gates: 25, sources: 10, images: 250, perSource: 75}

// raceEnabled says whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func (s loadScale) imagesOf(source int) []int {
	stride := s.images / s.sources
	out := make([]int, s.perSource)
	for j := range out {
		out[j] = (source*stride + j) % s.images
	}
	return out
}

// loadImage is one signed image of a load run and the registry paths its
// verification reads.
type loadImage struct {
	ref    string // as the manifests write it, through the Front
	repo   string // "load/app-007"
	digest string
	// referrer is the digest of the bundle's referrer manifest, layer the
	// digest of the bundle blob.
	referrer, layer string
}

// loadResult is what a load run measured.
type loadResult struct {
	toReady    time.Duration
	reconciles uint64
	// requests: what the controller's RequestCounter counted for the
	// registry during the run; front: what the Front received.
	requests, front int
	discovery       int // the Front's requests for the four places, referrer manifests and bundle blobs
	resolves, pings int
	heapBefore      uint64 // HeapAlloc after a GC, before the Gates are created
	heapPeak        uint64 // highest HeapAlloc sampled while waiting
	heapAfter       uint64 // HeapAlloc after a GC, once every Gate is Ready
	rssBefore       int64  // peak RSS of the process before the Gates are created, KiB
	rssAfter        int64  // peak RSS once every Gate is Ready, KiB
	cacheMisses     uint64
	cacheHits       uint64
}

// TestGateReconciler_load creates 50 Gates over 20 sources sharing 500
// signed images and measures the time until every Gate is Ready=True, the
// registry requests made, and memory. It asserts that each image's
// signatures were discovered exactly once, whatever the number of Gates
// verifying it (the shared verdict cache), and derives the rest of the
// request count from verify's documented behaviour.
//
// It is not parallel: the other tests wait for it, so the figures are the
// controller's alone. Under -race it runs at half the scale (raceLoad). Memory is process-wide: envtest runs kube-apiserver
// and etcd as separate processes, so the RSS is this test binary: the
// controller, and the test's in-memory registry, Sigstore and artifact
// server (the setup, measured before the Gates are created).
func TestGateReconciler_load(t *testing.T) {
	needsControlPlane(t)
	if testing.Short() {
		t.Skip("-short")
	}
	sc := fullLoad
	if raceEnabled() && os.Getenv("PREGATE_LOAD") != "full" {
		sc = raceLoad
	}
	res := runLoad(t, sc)
	t.Logf("load %d Gates, %d sources, %d images (%d per source), race detector %t: all Ready in %s, %d reconciles",
		sc.gates, sc.sources, sc.images, sc.perSource, raceEnabled(), res.toReady.Round(time.Millisecond), res.reconciles)
	t.Logf("load registry requests: %d counted by the controller, %d received by the registry: %d discovery (3 per image), %d resolves, %d handshakes",
		res.requests, res.front, res.discovery, res.resolves, res.pings)
	t.Logf("load verdict cache: %d misses, %d hits", res.cacheMisses, res.cacheHits)
	t.Logf("load memory: heap %s before the Gates, %s peak, %s after (after GC); peak RSS %s before the Gates, %s after",
		mib(int64(res.heapBefore)), mib(int64(res.heapPeak)), mib(int64(res.heapAfter)), mib(res.rssBefore*1024), mib(res.rssAfter*1024))
}

// BenchmarkGateReconciler_load is the load test as a benchmark: each
// iteration sets up new images (timer stopped), so the verdict cache never
// answers from an earlier iteration. Run it alone:
//
//	go test -run '^$' -bench GateReconciler_load -benchtime 1x ./gate/controller
func BenchmarkGateReconciler_load(b *testing.B) {
	needsControlPlane(b)
	var requests, reconcileCount, heapGrowth float64
	for range b.N {
		res := runLoad(b, fullLoad)
		requests += float64(res.requests)
		reconcileCount += float64(res.reconciles)
		heapGrowth += float64(res.heapPeak-min(res.heapPeak, res.heapBefore)) / (1 << 20)
	}
	b.ReportMetric(requests/float64(b.N), "registry-requests/op")
	b.ReportMetric(reconcileCount/float64(b.N), "reconciles/op")
	b.ReportMetric(heapGrowth/float64(b.N), "peak-heap-growth-MiB/op")
}

func runLoad(tb testing.TB, sc loadScale) loadResult {
	tb.Helper()
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
	}
	ctx := tb.Context()
	f := newFixture(tb, withFront())

	// Push and sign the images, a few at a time.
	setup := time.Now()
	images := make([]loadImage, sc.images)
	eg, egctx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	for i := range images {
		eg.Go(func() error {
			repo := fmt.Sprintf("load/app-%03d", i)
			digestRef, digest, err := f.pusher.PushRandomImage(egctx, f.registry+"/"+repo+":v1")
			if err != nil {
				return err
			}
			bundle, err := f.sigstore.SignImage(signerID, signerIssuer, digest)
			if err != nil {
				return fmt.Errorf("signing %s: %w", digestRef, err)
			}
			referrer, err := f.pusher.PushBundle(egctx, digestRef, bundle, verify.CosignSignPredicateType)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(bundle)
			images[i] = loadImage{ref: f.host + "/" + repo + ":v1", repo: repo, digest: digest, referrer: referrer, layer: "sha256:" + hex.EncodeToString(sum[:])}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		tb.Fatalf("pushing images: %v", err)
	}

	sources := make([]*sourcev1.GitRepository, sc.sources)
	revisions := make([]string, sc.sources)
	for s := range sources {
		var refs []string
		for _, i := range sc.imagesOf(s) {
			refs = append(refs, images[i].ref)
		}
		sources[s], revisions[s] = f.gitRepository(fmt.Sprintf("src-%02d", s), manifests(fmt.Sprintf("app-%02d", s), refs...))
	}
	tb.Logf("load setup: %d images pushed and signed, %d sources, in %s", sc.images, sc.sources, time.Since(setup).Round(time.Millisecond))

	// Everything a Gate needs exists; measure from here.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res := loadResult{heapBefore: ms.HeapAlloc, heapPeak: ms.HeapAlloc, rssBefore: maxRSS(tb)}
	requestsBefore := hostRequests(f.host)
	frontBefore := f.front.CountMatching(".")
	cacheBefore := reconciler.Cache.Stats()

	if b, ok := tb.(*testing.B); ok {
		b.StartTimer()
	}
	start := time.Now()
	gates := make([]*v1alpha1.Gate, sc.gates)
	for g := range gates {
		gates[g] = f.createGate(fmt.Sprintf("gate-%02d", g), sources[g%sc.sources])
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		// The manager's cache, not the API server: polling the API server
		// for 50 large statuses costs it (and so the run) more than the
		// controller's own reads.
		var list v1alpha1.GateList
		if err := testEnv.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
			tb.Fatalf("listing Gates: %v", err)
		}
		ready, lines := 0, []string(nil)
		for _, g := range list.Items {
			want := revisions[gateIndex(tb, g.Name)%sc.sources]
			if conditions.IsReady(&g) && g.Status.LastVerifiedRevision == want && g.Status.ObservedGeneration == g.Generation {
				ready++
			} else {
				lines = append(lines, g.Name+": "+describe(&g)+": "+conditions.GetMessage(&g, meta.ReadyCondition))
			}
		}
		if ready == sc.gates {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d Gates Ready after %s:\n%s", ready, sc.gates, time.Since(start).Round(time.Second), strings.Join(lines, "\n"))
		}
		runtime.ReadMemStats(&ms)
		res.heapPeak = max(res.heapPeak, ms.HeapAlloc)
		select {
		case <-ctx.Done():
			tb.Fatal(ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	res.toReady = time.Since(start)
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
	}

	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.heapAfter, res.rssAfter = ms.HeapAlloc, maxRSS(tb)
	res.requests = hostRequests(f.host) - requestsBefore
	res.front = f.front.CountMatching(".") - frontBefore
	cache := reconciler.Cache.Stats()
	res.cacheMisses, res.cacheHits = cache.Misses-cacheBefore.Misses, cache.Hits-cacheBefore.Hits

	// Discovery: each digest's referrers, its referrer manifest and its
	// bundle blob, read once however many Gates verify it; the other
	// places never, the signature the referrers API lists settling it.
	for _, img := range images {
		hx := strings.TrimPrefix(img.digest, "sha256:")
		for p, want := range map[string]int{
			"/v2/" + img.repo + "/referrers/" + img.digest:         1,
			"/v2/" + img.repo + "/manifests/" + img.referrer:       1,
			"/v2/" + img.repo + "/blobs/" + img.layer:              1,
			"/v2/" + img.repo + "/manifests/sha256-" + hx:          0,
			"/v2/" + img.repo + "/manifests/sha256-" + hx + ".sig": 0,
			"/v2/" + img.repo + "/manifests/sha256-" + hx + ".att": 0,
		} {
			if n := f.front.Count(p); n != want {
				tb.Errorf("GET %s: %d requests, want %d", p, n, want)
			}
			res.discovery += want
		}
	}
	// Each reconcile's Verifier resolves each tag of its revision once;
	// the registry is pinged (GET /v2/) once for every Gate and
	// repository (the controller's Hosts keep its answer), and, anonymous,
	// asks for no token.
	wantResolves := map[string]int{}
	for _, g := range gates {
		n := reconciles(tb, f.ns, g.Name)
		res.reconciles += n
		for _, i := range sc.imagesOf(gateIndex(tb, g.Name) % sc.sources) {
			wantResolves[images[i].repo] += int(n)
		}
	}
	for _, img := range images {
		p := "/v2/" + img.repo + "/manifests/v1"
		got := f.front.Count(p)
		if got != wantResolves[img.repo] {
			tb.Errorf("HEAD %s: %d requests, want %d (one per reconcile of a Gate whose revision has it)", p, got, wantResolves[img.repo])
		}
		res.resolves += got
	}
	res.pings = f.front.Count("/v2/")
	if res.pings != 1 {
		tb.Errorf("GET /v2/: %d requests, want 1 (%d reconciles × %d repositories)", res.pings, res.reconciles, sc.perSource)
	}
	if want := res.discovery + res.resolves + res.pings; res.front != want {
		tb.Errorf("the registry received %d requests, want %d: %d discovery + %d resolves + %d handshakes", res.front, want, res.discovery, res.resolves, res.pings)
	}
	// go-containerregistry's handshake tries https first, which a plain
	// HTTP registry cannot answer: the controller counts that attempt (as
	// status 0), the registry never sees it.
	if want := res.front + res.pings; res.requests != want {
		tb.Errorf("the controller counted %d requests to %s, want %d: %d received + %d https handshake attempts", res.requests, f.host, want, res.front, res.pings)
	}
	if res.cacheMisses != uint64(sc.images) {
		tb.Errorf("verdict cache: %d misses, want %d (one per image)", res.cacheMisses, sc.images)
	}

	// The Gates go now, not after the benchmark's other iterations.
	for _, g := range gates {
		if err := k8sClient.Delete(context.Background(), g); client.IgnoreNotFound(err) != nil {
			tb.Errorf("deleting Gate %s: %v", g.Name, err)
		}
	}
	return res
}

func gateIndex(tb testing.TB, name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "gate-%d", &i); err != nil {
		tb.Fatalf("Gate %q: %v", name, err)
	}
	return i
}

// hostRequests is how many requests to host the controller has counted.
func hostRequests(host string) int {
	n := 0
	for _, c := range reconciler.RequestStats.Snapshot().ByHost[host] {
		n += c
	}
	return n
}

// maxRSS is the peak resident set size of this process, in KiB (Linux
// getrusage).
func maxRSS(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return ru.Maxrss
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
