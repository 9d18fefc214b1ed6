package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/render/helm/helmtest"
)

// TestImagesCmd_helmRelease renders a HelmRelease whose chart (the real
// podinfo chart) is served by a loopback HelmRepository: its images are
// listed through the HelmRelease and template, the chart is kept in
// --chart-cache-dir, and --offline renders from there without a request,
// or is a gap naming the chart when the cache is empty.
func TestImagesCmd_helmRelease(t *testing.T) {
	t.Parallel()
	repo := helmtest.NewRepo(t, helmtest.Package(t, helmtest.Load(t, "../../render/testdata/charts/podinfo-6.14.1", "")))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "podinfo.yaml"), []byte(`apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: podinfo, namespace: apps}
spec: {url: "`+repo.URL()+`", interval: 1h}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: podinfo, namespace: apps}
spec:
  interval: 1h
  chart:
    spec:
      chart: podinfo
      version: 6.x
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
    image:
      repository: ghcr.io/acme/podinfo
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "charts")
	images := func(extra ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"images", dir, "--root", dir, "--chart-cache-dir", cache}, extra...)
		code := run(t.Context(), args, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}

	code, out := images()
	if code != exitOK {
		t.Fatalf("exit code %d:\n%s", code, out)
	}
	for _, want := range []string{
		"ghcr.io/acme/podinfo:6.14.1",
		"HelmRelease/apps/podinfo → podinfo/templates/deployment.yaml → Deployment/apps/podinfo",
		"podinfo 6.14.1  Rendered",
		"1 of 1 HelmRelease rendered, 0 coverage gaps",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	fetched := repo.Requests()
	if fetched != 2 {
		t.Errorf("%d requests to the chart repository, want 2 (index, archive)", fetched)
	}

	// Offline, from the cache: the same images, no request.
	code, offline := images("--offline")
	if code != exitOK || repo.Requests() != fetched {
		t.Errorf("--offline: exit code %d, %d more requests:\n%s", code, repo.Requests()-fetched, offline)
	}
	if !strings.Contains(offline, "ghcr.io/acme/podinfo:6.14.1") {
		t.Errorf("--offline lost the chart's image:\n%s", offline)
	}

	// Offline with nothing cached: a blocking gap naming the chart.
	cache = filepath.Join(t.TempDir(), "empty")
	code, out = images("--offline")
	if code != exitUndecided || repo.Requests() != fetched {
		t.Errorf("--offline, empty cache: exit code %d (want %d), %d more requests:\n%s", code, exitUndecided, repo.Requests()-fetched, out)
	}
	for _, want := range []string{"HelmRelease/apps/podinfo", "podinfo@6.x from " + repo.URL(), "offline", "0 of 1 HelmRelease rendered, 1 coverage gap"} {
		if !strings.Contains(out, want) {
			t.Errorf("--offline, empty cache: output lacks %q:\n%s", want, out)
		}
	}
}
