package helm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pregate/pregate/render/helm"
)

func TestRenderOfflineColdCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := podinfoRepo(t)
	charts, _ := newCharts(t, true)
	_, err := helm.Render(ctx, podinfoRelease(t, "podinfo", "6.x", ""),
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
		helm.WithCharts(charts))
	if !errors.Is(err, helm.ErrOffline) {
		t.Fatalf("err = %v, want ErrOffline", err)
	}
	for _, part := range []string{"HelmRelease/apps/podinfo", "podinfo@6.x", r.URL() + "/", "offline"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %q", err, part)
		}
	}
	if n := r.Requests(); n != 0 {
		t.Errorf("offline render made %d requests", n)
	}

	// The shared Charts of WithOffline (no cache directory) is cold too.
	_, err = helm.Render(ctx, chartRefRelease(t, "OCIRepository"),
		helm.WithSourceObjects([]map[string]any{ociRepository(t, "podinfo", "oci://127.0.0.1:1/charts/podinfo", "{tag: 6.14.1}")}),
		helm.WithOffline())
	if !errors.Is(err, helm.ErrOffline) {
		t.Fatalf("err = %v, want ErrOffline", err)
	}
}

func TestRenderCacheHit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, archive := podinfoRepo(t)
	charts, dir := newCharts(t, false)
	render := func(c *helm.Charts) (*helm.Result, error) {
		return helm.Render(ctx, podinfoRelease(t, "podinfo", "6.x", ""),
			helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
			helm.WithCharts(c))
	}
	step := func(name string, c *helm.Charts, wantRequests int) {
		t.Helper()
		before := r.Requests()
		res, err := render(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Chart.Digest != "sha256:"+sha256Hex(archive) {
			t.Errorf("%s: digest %s", name, res.Chart.Digest)
		}
		if n := r.Requests() - before; n != wantRequests {
			t.Errorf("%s: %d requests, want %d", name, n, wantRequests)
		}
	}
	step("cold", charts, 2)                                             // index.yaml and the archive
	step("warm", charts, 0)                                             // everything in memory
	step("new process", helm.NewCharts(helm.ChartsConfig{Dir: dir}), 1) // index.yaml again; the archive from disk
	step("offline", helm.NewCharts(helm.ChartsConfig{Dir: dir, Offline: true}), 0)

	// A cached archive that no longer matches its digest is not used:
	// online it is fetched again, offline it is missing.
	blob := filepath.Join(dir, "blobs", "sha256", sha256Hex(archive))
	if err := os.WriteFile(blob, []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := render(helm.NewCharts(helm.ChartsConfig{Dir: dir, Offline: true})); !errors.Is(err, helm.ErrOffline) {
		t.Errorf("tampered cache offline: err = %v, want ErrOffline", err)
	}
	step("tampered cache", helm.NewCharts(helm.ChartsConfig{Dir: dir}), 2)

	// WithChartCache and WithOffline share one Charts per directory and
	// mode in the process.
	shared := t.TempDir()
	opts := []helm.Option{
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
		helm.WithChartCache(shared),
	}
	before := r.Requests()
	for range 2 {
		if _, err := helm.Render(ctx, podinfoRelease(t, "podinfo", "6.x", ""), opts...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := helm.Render(ctx, podinfoRelease(t, "podinfo", "6.x", ""), append(opts, helm.WithOffline())...); err != nil {
		t.Fatalf("offline from the shared cache: %v", err)
	}
	if n := r.Requests() - before; n != 2 {
		t.Errorf("three renders through the shared cache made %d requests, want 2", n)
	}
}

func TestRenderConcurrentSharedChart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := podinfoRepo(t)
	charts, _ := newCharts(t, false)
	opts := []helm.Option{
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
		helm.WithCharts(charts),
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = helm.Render(ctx, podinfoRelease(t, fmt.Sprintf("podinfo-%d", i), "6.x", ""), opts...)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if s := charts.Stats(); s.IndexFetches != 1 || s.ArchiveFetches != 1 {
		t.Errorf("stats = %+v, want one index and one archive fetch for %d HelmReleases", s, n)
	}
}

func TestRenderHungRepository(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	charts := helm.NewCharts(helm.ChartsConfig{FetchTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := helm.Render(ctx, podinfoRelease(t, "podinfo", "6.x", ""),
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", srv.URL, "default")}),
		helm.WithCharts(charts))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "HelmRelease/apps/podinfo") {
		t.Fatalf("err = %v, want the caller's deadline, naming the HelmRelease", err)
	}

	// The fetch itself is bounded by FetchTimeout.
	charts = helm.NewCharts(helm.ChartsConfig{FetchTimeout: 200 * time.Millisecond})
	_, err = helm.Render(context.Background(), podinfoRelease(t, "podinfo", "6.x", ""),
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", srv.URL, "default")}),
		helm.WithCharts(charts))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the fetch timeout", err)
	}
}
