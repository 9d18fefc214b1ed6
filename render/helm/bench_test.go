package helm_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/verify/verifytest"
)

// BenchmarkRender100HelmReleases renders 100 HelmReleases over four chart
// references with three distinct archives: podinfo 6.14.1 and 6.13.0 and
// the parent chart from an HTTP repository, and podinfo 6.14.1 again from
// an OCIRepository (the same archive, so the same digest). "cold" starts
// every iteration with an empty Charts, "warm" shares one. It reports
// archive fetches and network requests per iteration (cold: 3 archives,
// one per digest), time per HelmRelease and the process's peak RSS.
func BenchmarkRender100HelmReleases(b *testing.B) {
	ctx := context.Background()
	latest := packageChart(b, loadChart(b, podinfoDir, ""))
	r := newChartRepo(b, latest,
		packageChart(b, loadChart(b, podinfoDir, "6.13.0")),
		packageChart(b, loadChart(b, parentDir, "", podinfoDir)))
	host := verifytest.NewRegistry(b)
	pushChart(b, latest, host+"/charts/podinfo:6.14.1")
	sources := []map[string]any{
		helmRepository(b, "podinfo", r.URL(), "default"),
		ociRepository(b, "podinfo", "oci://"+host+"/charts/podinfo", "{tag: 6.14.1}"),
	}
	releases := make([]map[string]any, 100)
	for i := range releases {
		switch i % 4 {
		case 0:
			releases[i] = podinfoRelease(b, fmt.Sprintf("latest-%d", i), "6.x", "")
		case 1:
			releases[i] = podinfoRelease(b, fmt.Sprintf("older-%d", i), "<6.14.0", "")
		case 2:
			hr := podinfoRelease(b, fmt.Sprintf("parent-%d", i), "1.0.0", "  values: {tags: {backend: true}}\n")
			hr["spec"].(map[string]any)["chart"].(map[string]any)["spec"].(map[string]any)["chart"] = "parent"
			releases[i] = hr
		default:
			hr := chartRefRelease(b, "OCIRepository")
			hr["metadata"].(map[string]any)["name"] = fmt.Sprintf("oci-%d", i)
			releases[i] = hr
		}
	}
	renderAll := func(b *testing.B, charts *helm.Charts) {
		b.Helper()
		work := make(chan map[string]any)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for hr := range work {
					if _, err := helm.Render(ctx, hr, helm.WithSourceObjects(sources), helm.WithCharts(charts)); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				}
			})
		}
		for _, hr := range releases {
			work <- hr
		}
		close(work)
		wg.Wait()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
	}
	report := func(b *testing.B, s helm.Stats) {
		b.ReportMetric(float64(s.ArchiveFetches)/float64(b.N), "fetches/op")
		b.ReportMetric(float64(s.Requests())/float64(b.N), "requests/op")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(releases)), "ms/HelmRelease")
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
			b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
		}
	}

	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		var total helm.Stats
		for b.Loop() {
			charts := helm.NewCharts(helm.ChartsConfig{})
			renderAll(b, charts)
			s := charts.Stats()
			total.ArchiveFetches += s.ArchiveFetches
			total.IndexFetches += s.IndexFetches
			total.ManifestFetches += s.ManifestFetches
			total.TagLists += s.TagLists
		}
		report(b, total)
	})
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		charts := helm.NewCharts(helm.ChartsConfig{})
		renderAll(b, charts)
		before := charts.Stats()
		for b.Loop() {
			renderAll(b, charts)
		}
		after := charts.Stats()
		report(b, helm.Stats{
			ArchiveFetches:  after.ArchiveFetches - before.ArchiveFetches,
			IndexFetches:    after.IndexFetches - before.IndexFetches,
			ManifestFetches: after.ManifestFetches - before.ManifestFetches,
			TagLists:        after.TagLists - before.TagLists,
		})
	})
}
