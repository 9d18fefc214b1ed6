package render_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/render/helm/helmtest"
)

// exampleCharts are the charts the flux2-kustomize-helm-example
// HelmReleases install: the upstream repository URL each names, and the
// chart in testdata/charts (see its README for their origin).
var exampleCharts = map[string]string{
	"https://kubernetes.github.io/ingress-nginx": "testdata/charts/ingress-nginx-4.15.1",
	"https://charts.jetstack.io":                 "testdata/charts/cert-manager-v1.21.1",
	"https://stefanprodan.github.io/podinfo":     "testdata/charts/podinfo-6.14.1",
}

// serveExampleCharts serves each chart from a loopback HelmRepository and
// returns Helm options whose HTTP client answers the upstream URLs from
// them, and the repositories.
func serveExampleCharts(t testing.TB) ([]helm.Option, map[string]*helmtest.Repo) {
	t.Helper()
	routes := map[string]string{}
	repos := map[string]*helmtest.Repo{}
	for url, dir := range exampleCharts {
		repo := helmtest.NewRepo(t, helmtest.Package(t, helmtest.Load(t, dir, "")))
		routes[url] = repo.URL()
		repos[url] = repo
	}
	charts := helm.NewCharts(helm.ChartsConfig{HTTPClient: helmtest.Client(routes), Dir: filepath.Join(t.TempDir(), "charts")})
	return []helm.Option{helm.WithCharts(charts)}, repos
}

// TestFluxHelmExample renders both clusters of fluxcd/flux2-kustomize-
// helm-example with the charts served locally: every HelmRelease renders,
// and its images, objects and templates are exactly what Helm's own
// template action gives for the same chart and the values the HelmRelease
// has once kustomize and Flux have built it.
func TestFluxHelmExample(t *testing.T) {
	t.Parallel()
	for _, cluster := range []string{"production", "staging"} {
		t.Run(cluster, func(t *testing.T) {
			t.Parallel()
			opts, repos := serveExampleCharts(t)
			root := "testdata/flux2-kustomize-helm-example"
			res, err := render.Render(t.Context(), root, filepath.Join(root, "clusters", cluster), render.WithHelm(opts...))
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range res.Gaps {
				t.Errorf("gap: %s", g)
			}
			hrs := helmReleases(res)
			if got := slices.Sorted(maps.Keys(hrs)); !slices.Equal(got, []string{
				"HelmRelease/cert-manager/cert-manager", "HelmRelease/ingress-nginx/ingress-nginx", "HelmRelease/podinfo/podinfo",
			}) {
				t.Fatalf("HelmReleases found: %v", got)
			}
			want := map[string]string{} // image location → ref, from Helm's template action
			for _, hr := range res.HelmReleases {
				if hr.Status != render.HelmReleaseRendered {
					t.Fatalf("%s: %s", hr.Object, hr.Status)
				}
				obj := hrs[hr.Object]
				url := str(obj, "spec", "chart", "spec", "sourceRef", "name")
				var dir string
				for u, d := range exampleCharts {
					if strings.Contains(u, url) || strings.Contains(d, url) {
						dir = d
					}
				}
				if dir == "" {
					t.Fatalf("%s: no chart for source %s", hr.Object, url)
				}
				values, _ := obj.Content["spec"].(map[string]any)["values"].(map[string]any)
				name := str(obj, "spec", "releaseName")
				if name == "" {
					name = obj.Name()
				}
				oracle := helmtest.Template(t, helmtest.Load(t, dir, ""), values, name, obj.Namespace(), helm.DefaultKubeVersion, nil)
				var objs []render.Object
				for _, o := range oracle {
					if slices.Contains(o.Hooks, "test") {
						continue // helm-controller runs tests only with spec.test.enable
					}
					if md, _ := o.Content["metadata"].(map[string]any); md != nil && md["namespace"] == nil && workloadKinds[fmt.Sprint(o.Content["kind"])] {
						md["namespace"] = obj.Namespace() // helm install's default namespace
					}
					objs = append(objs, render.Object{Content: o.Content, Origin: render.Origin{HelmRelease: hr.Object, Template: o.Template}})
				}
				images, gaps := render.Images(objs)
				if len(gaps) > 0 || len(images) == 0 {
					t.Fatalf("%s: the oracle's images: %v, gaps %v", hr.Object, images, gaps)
				}
				for _, img := range images {
					for _, l := range img.Locations {
						want[locationKey(l)] = img.Ref
					}
				}
			}
			got := map[string]string{}
			for _, img := range res.Images {
				for _, l := range img.Locations {
					if l.HelmRelease != "" {
						got[locationKey(l)] = img.Ref
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("images from the charts differ from helm template (-helm +render):\n%s", diff)
			}
			for url, repo := range repos {
				if repo.Requests() == 0 {
					t.Errorf("%s was never asked", url)
				}
			}
			// The redis image podinfo's values set is traced to its line.
			for _, img := range res.Images {
				if !strings.HasPrefix(img.Ref, "public.ecr.aws/docker/library/redis:") {
					continue
				}
				l := img.Locations[0]
				if l.File != "apps/base/podinfo/release.yaml" || l.Line != 1 || l.SetBy == nil || l.SetBy.Line != 23 {
					t.Errorf("redis location %+v, set by %+v: want apps/base/podinfo/release.yaml:1 set by line 23", l, l.SetBy)
				}
			}
		})
	}
}

// workloadKinds are the namespaced kinds that run pods.
var workloadKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "Job": true, "CronJob": true, "Pod": true, "ReplicaSet": true}

// helmReleases are the rendered HelmRelease objects by ID.
func helmReleases(res *render.Result) map[string]render.Object {
	out := map[string]render.Object{}
	for _, o := range res.Objects {
		if o.Kind() == "HelmRelease" {
			out[o.ID()] = o
		}
	}
	return out
}

// locationKey names an image location in a chart's output.
func locationKey(l render.Location) string {
	return l.Where() + " " + l.Path
}

// str reads a string field of an object.
func str(o render.Object, path ...string) string {
	var v any = o.Content
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// TestHelmReleaseBehindPostBuild renders HelmReleases that a Flux
// Kustomization's postBuild substitutes into, as kustomize-controller
// applies them: the chart version and image repository come from its
// variables, and a value from a substituteFrom ConfigMap that is not in the
// revision leaves only the image that uses it a gap, naming the variable
// and the ConfigMap.
func TestHelmReleaseBehindPostBuild(t *testing.T) {
	t.Parallel()
	repo := helmtest.NewRepo(t, helmtest.Package(t, helmtest.Load(t, "testdata/charts/podinfo-6.14.1", "")))
	root := t.TempDir()
	release := func(name, values string) string {
		return fmt.Sprintf(`---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: %s, namespace: apps}
spec:
  interval: 1h
  chart:
    spec:
      chart: podinfo
      version: "${PODINFO_VERSION}"
      sourceRef: {kind: HelmRepository, name: podinfo}
  values:
%s`, name, values)
	}
	files := map[string]string{
		"clusters/dev/apps.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps
  sourceRef: {kind: GitRepository, name: flux-system}
  postBuild:
    substitute: {REGISTRY: ghcr.io/acme, PODINFO_VERSION: "6.14.x"}
    substituteFrom: [{kind: ConfigMap, name: cluster-settings}]
`,
		"apps/repo.yaml": `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: podinfo, namespace: apps}
spec: {url: "` + repo.URL() + `", interval: 1h}
`,
		"apps/known.yaml":   release("known", "    image:\n      repository: ${REGISTRY}/podinfo\n"),
		"apps/unknown.yaml": release("unknown", "    image:\n      repository: ${REGISTRY}/podinfo\n      tag: ${CANARY_TAG}\n"),
	}
	for p, content := range files {
		f := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := render.Render(t.Context(), root, filepath.Join(root, "clusters", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	var rendered []string
	for _, hr := range res.HelmReleases {
		rendered = append(rendered, fmt.Sprintf("%s %s %s", hr.Object, hr.Status, hr.Version))
	}
	if diff := cmp.Diff([]string{
		"HelmRelease/apps/known Rendered 6.14.1", "HelmRelease/apps/unknown Rendered 6.14.1",
	}, rendered); diff != "" {
		t.Errorf("HelmReleases (-want +got):\n%s", diff)
	}
	var refs []string
	for _, img := range res.Images {
		for _, l := range img.Locations {
			refs = append(refs, img.Ref+" "+l.HelmRelease)
		}
	}
	if diff := cmp.Diff([]string{"ghcr.io/acme/podinfo:6.14.1 HelmRelease/apps/known"}, refs); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if len(res.Gaps) != 1 {
		t.Fatalf("gaps: %v, want one", res.Gaps)
	}
	g := res.Gaps[0]
	if g.Reason != render.SubstituteFromGap || g.HelmRelease != "HelmRelease/apps/unknown" ||
		!strings.Contains(g.Message, "${CANARY_TAG} from ConfigMap/flux-system/cluster-settings (not in the revision") {
		t.Errorf("gap %s (%s, %s): want a SubstituteFromMissing gap in HelmRelease/apps/unknown naming ${CANARY_TAG} and its ConfigMap", g, g.Reason, g.HelmRelease)
	}
}
