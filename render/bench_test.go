package render

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRender renders a synthetic Flux monorepo of benchApps apps: a
// cluster directory with one Flux Kustomization per app, each app a
// kustomize overlay on its own base with an images override and postBuild
// substitution, 18 objects an app. With 80 apps that is 561 files and 1,441
// rendered objects. Builds share kustomize's OpenAPI schema and run ahead of
// the traversal on every CPU (ahead.go); cpu-s/op is the CPU time a render
// takes, all threads together.
func BenchmarkRender(b *testing.B) {
	benchRender(b, runtime.GOMAXPROCS(0))
}

// BenchmarkRenderSequential is BenchmarkRender with one build at a time.
func BenchmarkRenderSequential(b *testing.B) {
	benchRender(b, 1)
}

func benchRender(b *testing.B, workers int) {
	const benchApps = 80
	root := b.TempDir()
	files := writeBenchTree(b, root, benchApps)
	var objects, images int
	cpu := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, rel, err := newRenderer(root, filepath.Join(root, "clusters", "bench"), nil)
		if err != nil {
			b.Fatal(err)
		}
		r.workers = workers
		res, err := r.render(b.Context(), rel)
		if err != nil {
			b.Fatal(err)
		}
		objects, images = len(res.Objects), len(res.Images)
	}
	b.StopTimer()
	if objects < 1000 || files < 300 {
		b.Fatalf("rendered %d objects from %d files, want at least 1000 from 300", objects, files)
	}
	b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(files), "files")
	b.ReportMetric(float64(objects), "objects")
	b.ReportMetric(float64(images), "images")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeBenchTree writes the synthetic monorepo and returns how many files it
// holds.
func writeBenchTree(b testing.TB, root string, apps int) int {
	b.Helper()
	files := 0
	write := func(rel, content string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
		files++
	}
	write("clusters/bench/flux-system/gotk-sync.yaml", `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 10m
  path: ./clusters/bench
  sourceRef: {kind: GitRepository, name: flux-system}
`)
	for i := range apps {
		app := fmt.Sprintf("app-%03d", i)
		write("clusters/bench/"+app+".yaml", fmt.Sprintf(`apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: %[1]s, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps/%[1]s/prod
  targetNamespace: %[1]s
  sourceRef: {kind: GitRepository, name: flux-system}
  postBuild:
    substitute: {REPLICAS: "2"}
`, app))
		write("apps/"+app+"/prod/kustomization.yaml", fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [../base]
images:
  - name: ghcr.io/acme/%[1]s-web
    newTag: "1.%[2]d.0"
`, app, i))
		write("apps/"+app+"/base/kustomization.yaml", `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployments.yaml, services.yaml, config.yaml, jobs.yaml]
`)
		var deps, svcs, cms, jobs strings.Builder
		for j := range 4 {
			fmt.Fprintf(&deps, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s-%[2]d}
spec:
  replicas: ${REPLICAS}
  selector: {matchLabels: {app: %[1]s-%[2]d}}
  template:
    metadata: {labels: {app: %[1]s-%[2]d}}
    spec:
      initContainers:
        - {name: init, image: "ghcr.io/acme/init:1.0"}
      containers:
        - {name: web, image: "ghcr.io/acme/%[1]s-web:dev"}
        - {name: proxy, image: "envoyproxy/envoy:v1.3%[2]d.0"}
`, app, j)
			fmt.Fprintf(&svcs, "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s-%d}\nspec: {ports: [{port: 80}]}\n", app, j)
			fmt.Fprintf(&cms, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s-%d}\ndata: {key: value}\n", app, j)
			fmt.Fprintf(&cms, "---\napiVersion: v1\nkind: Secret\nmetadata: {name: %s-%d}\nstringData: {key: value}\n", app, j)
		}
		fmt.Fprintf(&jobs, `apiVersion: batch/v1
kind: CronJob
metadata: {name: %[1]s-report}
spec:
  schedule: "@hourly"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: "ghcr.io/acme/report@sha256:%064x"}]
`, app, i)
		write("apps/"+app+"/base/deployments.yaml", deps.String())
		write("apps/"+app+"/base/services.yaml", svcs.String())
		write("apps/"+app+"/base/config.yaml", cms.String())
		write("apps/"+app+"/base/jobs.yaml", jobs.String())
	}
	return files
}
