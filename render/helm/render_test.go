package helm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pregate/pregate/render/helm"
)

// podinfoRepo serves podinfo 6.14.1 and a copy versioned 6.13.0, and
// returns the 6.14.1 archive.
func podinfoRepo(t *testing.T) (*chartRepo, []byte) {
	t.Helper()
	latest := packageChart(t, loadChart(t, podinfoDir, ""))
	older := packageChart(t, loadChart(t, podinfoDir, "6.13.0"))
	return newChartRepo(t, latest, older), latest
}

// podinfoRelease is a HelmRelease of podinfo from the HelmRepository
// flux-system/podinfo, with extra spec YAML (indented by two spaces).
func podinfoRelease(t testing.TB, name, version, extraSpec string) map[string]any {
	return object(t, fmt.Sprintf(`
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: %s, namespace: apps}
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: %q
      sourceRef: {kind: HelmRepository, name: podinfo, namespace: flux-system}
%s`, name, version, extraSpec))
}

func TestRenderHelmRepositoryValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, archive := podinfoRepo(t)
	charts, _ := newCharts(t, false)
	hr := podinfoRelease(t, "podinfo", "6.x", `
  valuesFrom:
    - kind: ConfigMap
      name: podinfo-values
    - kind: Secret
      name: podinfo-secret
      valuesKey: overrides.yaml
    - kind: ConfigMap
      name: podinfo-values
      valuesKey: message
      targetPath: ui.message
      literal: true
    - kind: ConfigMap
      name: podinfo-values
      valuesKey: replicas
      targetPath: replicaCount
    - kind: ConfigMap
      name: absent
      optional: true
    - kind: Secret
      name: podinfo-secret
      valuesKey: absent.yaml
      optional: true
  values:
    image: {pullPolicy: Always}
    ui: {color: "#000000"}
`)
	sources := []map[string]any{
		configMap("podinfo-values", map[string]string{
			"values.yaml": "replicaCount: 2\nimage:\n  tag: 6.14.0\nui:\n  message: from-configmap\n",
			"message":     "hello, world {x}",
			"replicas":    "3",
		}),
		secret("podinfo-secret", map[string]string{"overrides.yaml": "image:\n  repository: registry.example/podinfo\n"}),
	}
	res, err := helm.Render(ctx, hr,
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
		helm.WithValuesSources(sources),
		helm.WithCharts(charts))
	if err != nil {
		t.Fatal(err)
	}

	wantChart := helm.ChartInfo{
		Name: "podinfo", Version: "6.14.1", AppVersion: "6.14.1",
		Digest: "sha256:" + sha256Hex(archive),
		Source: "HelmRepository/flux-system/podinfo",
		URL:    r.URL() + "/charts/podinfo-6.14.1.tgz",
	}
	if diff := cmp.Diff(wantChart, res.Chart); diff != "" {
		t.Errorf("chart (-want +got):\n%s", diff)
	}
	if want := (helm.ReleaseInfo{Name: "podinfo", Namespace: "apps", StorageNamespace: "apps"}); res.Release != want {
		t.Errorf("release = %+v, want %+v", res.Release, want)
	}
	if !strings.HasPrefix(res.ConfigDigest, "sha256:") {
		t.Errorf("config digest = %q", res.ConfigDigest)
	}
	deploy := find(t, res, "Deployment", "templates/deployment.yaml")
	if got := images(deploy); !cmp.Equal(got, []string{"registry.example/podinfo:6.14.0"}) {
		t.Errorf("deployment images = %v", got)
	}

	// What the references compose to, written out: the ConfigMap, the
	// Secret over it, the targetPaths (literal, then typed), spec.values
	// merged last.
	values := map[string]any{
		"replicaCount": int64(3),
		"image":        map[string]any{"tag": "6.14.0", "repository": "registry.example/podinfo", "pullPolicy": "Always"},
		"ui":           map[string]any{"message": "hello, world {x}", "color": "#000000"},
	}
	want := oracle(t, loadChart(t, podinfoDir, ""), values, "podinfo", "apps")
	compareWithOracle(t, res, want, "podinfo")
}

func TestRenderReleaseNameAndNamespace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := podinfoRepo(t)
	charts, _ := newCharts(t, false)
	opts := []helm.Option{
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
		helm.WithCharts(charts),
	}

	hr := podinfoRelease(t, "podinfo", "6.14.1", "  targetNamespace: web\n  storageNamespace: helm-storage\n")
	res, err := helm.Render(ctx, hr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if want := (helm.ReleaseInfo{Name: "web-podinfo", Namespace: "web", StorageNamespace: "helm-storage"}); res.Release != want {
		t.Errorf("release = %+v, want %+v", res.Release, want)
	}
	deploy := find(t, res, "Deployment", "templates/deployment.yaml")
	md := deploy["metadata"].(map[string]any)
	if md["name"] != "web-podinfo" || md["namespace"] != "web" {
		t.Errorf("deployment is %v/%v, want web/web-podinfo", md["namespace"], md["name"])
	}
	compareWithOracle(t, res, oracle(t, loadChart(t, podinfoDir, ""), nil, "web-podinfo", "web"), "podinfo")

	// A name longer than 53 characters is shortened as helm-controller's
	// ShortenName does: 40 characters, "-", 12 hex digits of its SHA-256.
	long := strings.Repeat("a", 30) + "-" + strings.Repeat("b", 30)
	sum := sha256.Sum256([]byte("web-" + long))
	wantName := ("web-" + long)[:40] + "-" + hex.EncodeToString(sum[:])[:12]
	res, err = helm.Render(ctx, podinfoRelease(t, long, "6.14.1", "  targetNamespace: web\n"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Release.Name != wantName || len(wantName) != 53 {
		t.Errorf("release name = %q, want %q", res.Release.Name, wantName)
	}

	res, err = helm.Render(ctx, podinfoRelease(t, "podinfo", "6.14.1", "  releaseName: frontend\n"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Release.Name != "frontend" || res.Release.Namespace != "apps" {
		t.Errorf("release = %+v, want frontend in apps", res.Release)
	}
}

func TestRenderPostRenderers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := podinfoRepo(t)
	charts, _ := newCharts(t, false)
	const pinned = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	hr := podinfoRelease(t, "podinfo", "6.14.1", `
  commonMetadata:
    labels: {team: web}
    annotations: {owner: web-team}
  postRenderers:
    - kustomize:
        images:
          - name: ghcr.io/stefanprodan/podinfo
            newName: registry.example/mirror/podinfo
            digest: `+pinned+`
        patches:
          - target: {kind: Deployment}
            patch: |
              apiVersion: apps/v1
              kind: Deployment
              metadata: {name: any}
              spec:
                template:
                  metadata:
                    annotations: {patched: "yes"}
`)
	res, err := helm.Render(ctx, hr,
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
		helm.WithCharts(charts))
	if err != nil {
		t.Fatal(err)
	}
	deploy := find(t, res, "Deployment", "templates/deployment.yaml")
	if got, want := images(deploy), []string{"registry.example/mirror/podinfo@" + pinned}; !cmp.Equal(got, want) {
		t.Errorf("deployment images = %v, want %v", got, want)
	}

	// Helm's output, edited as the post-renderers should: the image
	// override on every container, the patch on the Deployment, the common
	// metadata on every object.
	want := oracle(t, loadChart(t, podinfoDir, ""), nil, "podinfo", "apps")
	for _, o := range want {
		md := o.Content["metadata"].(map[string]any)
		setMap(md, "labels", "team", "web")
		setMap(md, "annotations", "owner", "web-team")
		forEachContainer(o.Content, func(c map[string]any) {
			if c["image"] == podinfoImage {
				c["image"] = "registry.example/mirror/podinfo@" + pinned
			}
		})
		if o.Content["kind"] == "Deployment" {
			tmd := o.Content["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)
			setMap(tmd, "annotations", "patched", "yes")
		}
	}
	compareWithOracle(t, res, want, "podinfo")
}

// setMap sets m[field][key] = value.
func setMap(m map[string]any, field, key string, value any) {
	sub, _ := m[field].(map[string]any)
	if sub == nil {
		sub = map[string]any{}
		m[field] = sub
	}
	sub[key] = value
}

// forEachContainer calls f on every container of a Pod or pod template.
func forEachContainer(obj map[string]any, f func(map[string]any)) {
	spec, _ := obj["spec"].(map[string]any)
	if tmpl, ok := spec["template"].(map[string]any); ok {
		spec, _ = tmpl["spec"].(map[string]any)
	}
	for _, key := range []string{"initContainers", "containers"} {
		cs, _ := spec[key].([]any)
		for _, c := range cs {
			f(c.(map[string]any))
		}
	}
}

func TestRenderChartDependencies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	archive := packageChart(t, loadChart(t, parentDir, "", podinfoDir))
	r := newChartRepo(t, archive)
	charts, _ := newCharts(t, false)
	opts := []helm.Option{
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "charts", r.URL(), "")}),
		helm.WithCharts(charts),
	}
	release := func(values string) map[string]any {
		return object(t, `
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: shop, namespace: apps}
spec:
  chart:
    spec:
      chart: parent
      sourceRef: {kind: HelmRepository, name: charts, namespace: flux-system}
  values: `+values)
	}

	values := `{tags: {backend: true}, backend: {image: {tag: "6.13.0"}}}`
	res, err := helm.Render(ctx, release(values), opts...)
	if err != nil {
		t.Fatal(err)
	}
	byTemplate := map[string][]string{}
	for _, o := range res.Objects {
		if o.Content["kind"] == "Deployment" || o.Content["kind"] == "Job" {
			byTemplate[o.Template] = append(byTemplate[o.Template], images(o.Content)...)
		}
	}
	wantImages := map[string][]string{
		"parent/charts/podinfo/templates/deployment.yaml": {podinfoImage},
		"parent/charts/backend/templates/deployment.yaml": {"ghcr.io/stefanprodan/podinfo-backend:6.13.0"},
		"parent/templates/job.yaml":                       {"docker.io/library/busybox:1.37"},
	}
	if diff := cmp.Diff(wantImages, byTemplate); diff != "" {
		t.Errorf("workload images by template (-want +got):\n%s", diff)
	}
	var crds, hooks int
	for _, o := range res.Objects {
		if o.CRD {
			crds++
			if o.Template != "parent/crds/widgets.yaml" {
				t.Errorf("CRD from %s", o.Template)
			}
		}
		if o.Template == "parent/templates/job.yaml" {
			hooks++
			if !cmp.Equal(o.Hooks, []string{"pre-install", "pre-upgrade"}) {
				t.Errorf("migrate job hooks = %v", o.Hooks)
			}
		}
	}
	if crds != 1 || hooks != 1 || !res.Objects[0].CRD {
		t.Errorf("got %d CRDs (first object CRD: %v) and %d migrate hooks, want 1 CRD first and 1 hook", crds, res.Objects[0].CRD, hooks)
	}
	want := oracle(t, loadChart(t, parentDir, "", podinfoDir), object(t, "v: "+values)["v"].(map[string]any), "shop", "apps")
	compareWithOracle(t, res, want, "shop")

	// The condition turns the podinfo subchart off; the backend tag is off
	// by default.
	res, err = helm.Render(ctx, release(`{podinfo: {enabled: false}}`), opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range res.Objects {
		if strings.Contains(o.Template, "/charts/") {
			t.Errorf("disabled subchart rendered %s", o.Template)
		}
	}
}

func TestRenderLocalChart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	hr := object(t, `
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: shop, namespace: apps}
spec:
  chart:
    spec:
      chart: ./charts/parent
      reconcileStrategy: Revision
      valuesFiles: [charts/parent/values.yaml, charts/parent/values-prod.yaml, charts/parent/absent.yaml]
      ignoreMissingValuesFiles: true
      sourceRef: {kind: GitRepository, name: infra, namespace: flux-system}
`)
	res, err := helm.Render(ctx, hr, helm.WithLocalSource(helm.LocalSource{
		Kind: "GitRepository", Namespace: "flux-system", Name: "infra",
		Root: "testdata", Revision: "main@sha1:" + commit,
	}))
	if err != nil {
		t.Fatal(err)
	}
	// The version carries the commit (reconcileStrategy Revision) and the
	// HelmChart's generation (valuesFiles), as source-controller builds it.
	if want := "1.0.0+0123456789ab.1"; res.Chart.Version != want {
		t.Errorf("chart version = %q, want %q", res.Chart.Version, want)
	}
	cm := find(t, res, "ConfigMap", "parent/templates/configmap.yaml")
	if got := cm["data"].(map[string]any)["greeting"]; got != "hello from prod" {
		t.Errorf("greeting = %v, want the values file's", got)
	}
	if got := cm["metadata"].(map[string]any)["labels"].(map[string]any)["helm.sh/chart"]; got != "parent-1.0.0_0123456789ab.1" {
		t.Errorf("helm.sh/chart = %v", got)
	}
	// Both dependencies were resolved from ../podinfo in the revision; the
	// values files turned the backend on with 3 replicas.
	backend := find(t, res, "Deployment", "charts/backend/templates/deployment.yaml")
	if got := backend["spec"].(map[string]any)["replicas"]; got != float64(3) {
		t.Errorf("backend replicas = %v, want 3", got)
	}
	find(t, res, "Deployment", "charts/podinfo/templates/deployment.yaml")

	// The oracle: the chart as source-controller packages it (dependencies
	// added, aliased one renamed, default values replaced by the merged
	// values files, version marked), rendered by Helm.
	ch := localParentChart(t, "1.0.0+0123456789ab.1")
	ch.Values = object(t, `
greeting: hello from prod
sidecar: {image: "docker.io/library/busybox:1.37"}
podinfo: {enabled: true}
tags: {backend: true}
backend:
  image: {repository: ghcr.io/stefanprodan/podinfo-backend}
  replicaCount: 3
`)
	compareWithOracle(t, res, oracle(t, ch, nil, "shop", "apps"), "shop")
}

func TestRenderCapabilities(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	hr := object(t, `
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: caps, namespace: apps}
spec:
  chart:
    spec:
      chart: charts/parent
      sourceRef: {kind: GitRepository, name: flux-system}
`)
	for _, tc := range []struct {
		opts        []helm.Option
		kube        string
		apiVersions []string
	}{
		{kube: helm.DefaultKubeVersion},
		{opts: []helm.Option{helm.WithCapabilities("v1.31.2", []string{"monitoring.coreos.com/v1"})}, kube: "v1.31.2", apiVersions: []string{"monitoring.coreos.com/v1"}},
	} {
		res, err := helm.Render(ctx, hr, append(tc.opts, helm.WithLocalRoot("testdata"))...)
		if err != nil {
			t.Fatal(err)
		}
		data := find(t, res, "ConfigMap", "parent/templates/configmap.yaml")["data"].(map[string]any)
		if data["kubeVersion"] != tc.kube || (data["monitoring"] == "true") != (len(tc.apiVersions) > 0) {
			t.Errorf("capabilities seen = %v, want kube %s, API versions %v", data, tc.kube, tc.apiVersions)
		}
		compareWithOracle(t, res, oracleCaps(t, localParentChart(t, ""), nil, "caps", "apps", tc.kube, tc.apiVersions), "caps")
	}
}

func TestRenderHelmRepositoryValuesFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := podinfoRepo(t)
	charts, _ := newCharts(t, false)
	hr := podinfoRelease(t, "podinfo", "6.14.1", "")
	hr["spec"].(map[string]any)["chart"].(map[string]any)["spec"].(map[string]any)["valuesFiles"] = []any{"values.yaml", "values-prod.yaml"}
	res, err := helm.Render(ctx, hr,
		helm.WithSourceObjects([]map[string]any{helmRepository(t, "podinfo", r.URL(), "default")}),
		helm.WithCharts(charts))
	if err != nil {
		t.Fatal(err)
	}
	// source-controller marks the version with the HelmChart's generation.
	if res.Chart.Version != "6.14.1+1" {
		t.Errorf("chart version = %q, want 6.14.1+1", res.Chart.Version)
	}
	find(t, res, "Deployment", "templates/redis/deployment.yaml") // values-prod.yaml turns Redis on
	// The oracle: `helm template -f values-prod.yaml` of the chart with
	// that version.
	prod, err := os.ReadFile(podinfoDir + "/values-prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compareWithOracle(t, res, oracle(t, loadChart(t, podinfoDir, "6.14.1+1"), object(t, string(prod)), "podinfo", "apps"), "podinfo")
}
