package helm_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/render/helm/helmtest"
)

const (
	podinfoDir = "testdata/charts/podinfo"
	parentDir  = "testdata/charts/parent"
	// podinfoImage is the image podinfo 6.14.1 runs by default.
	podinfoImage = "ghcr.io/stefanprodan/podinfo:6.14.1"
)

// loadChart is helmtest.Load; packageChart is helmtest.Package.
func loadChart(t testing.TB, dir, version string, deps ...string) *chart.Chart {
	t.Helper()
	return helmtest.Load(t, dir, version, deps...)
}

func packageChart(t testing.TB, ch *chart.Chart) []byte {
	t.Helper()
	return helmtest.Package(t, ch)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// chartRepo is helmtest.Repo.
type chartRepo = helmtest.Repo

func newChartRepo(t testing.TB, archives ...[]byte) *chartRepo {
	t.Helper()
	return helmtest.NewRepo(t, archives...)
}

// pushChart is helmtest.Push.
func pushChart(t testing.TB, archive []byte, ref string) string {
	t.Helper()
	return helmtest.Push(t, archive, ref)
}

// object decodes a YAML document.
func object(t testing.TB, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("decoding %q: %v", doc, err)
	}
	return m
}

// helmRepository is a HelmRepository object.
func helmRepository(t testing.TB, name, url, typ string) map[string]any {
	return object(t, fmt.Sprintf(`
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: %s, namespace: flux-system}
spec: {url: %q, type: %q, interval: 10m}
`, name, url, typ))
}

// configMap and secret are values sources.
func configMap(name string, data map[string]string) map[string]any {
	d := map[string]any{}
	for k, v := range data {
		d[k] = v
	}
	return map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "apps"}, "data": d}
}

func secret(name string, data map[string]string) map[string]any {
	d := map[string]any{}
	for k, v := range data {
		d[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	return map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": "apps"}, "data": d}
}

// localParentChart is the parent chart as source-controller builds it from
// the revision: both dependencies added from ../podinfo, the aliased one
// renamed.
func localParentChart(t testing.TB, version string) *chart.Chart {
	t.Helper()
	ch := loadChart(t, parentDir, version, podinfoDir)
	backend := loadChart(t, podinfoDir, "")
	backend.Metadata.Name = "backend"
	ch.AddDependency(backend)
	return ch
}

// oracleObject is what Helm's install action renders for one object.
type oracleObject = helmtest.Object

// oracle renders ch with values the way `helm template` does: what Render
// must match, less what helm-controller adds.
func oracle(t testing.TB, ch *chart.Chart, values map[string]any, name, namespace string) []oracleObject {
	t.Helper()
	return helmtest.Template(t, ch, values, name, namespace, helm.DefaultKubeVersion, nil)
}

// oracleCaps is oracle with `--kube-version` and `--api-versions`.
func oracleCaps(t testing.TB, ch *chart.Chart, values map[string]any, name, namespace, kubeVersion string, apiVersions []string) []oracleObject {
	t.Helper()
	return helmtest.Template(t, ch, values, name, namespace, kubeVersion, apiVersions)
}

// compareWithOracle checks that Render's objects are Helm's, once the
// origin labels helm-controller adds (which it checks) and the CRDs are set
// aside, and the random names of test hooks are blanked. Where the
// HelmRelease has post-renderers, the caller edits want the way they
// should have.
func compareWithOracle(t *testing.T, res *helm.Result, want []oracleObject, hrName string) {
	const hrNamespace = "apps"
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the oracle rendered nothing")
	}
	var got []oracleObject
	for _, o := range res.Objects {
		if o.CRD {
			continue
		}
		labels, _ := o.Content["metadata"].(map[string]any)["labels"].(map[string]any)
		if labels["helm.toolkit.fluxcd.io/name"] != hrName || labels["helm.toolkit.fluxcd.io/namespace"] != hrNamespace {
			t.Errorf("%s %s: origin labels missing: %v", o.Template, o.Content["kind"], labels)
		}
		delete(labels, "helm.toolkit.fluxcd.io/name")
		delete(labels, "helm.toolkit.fluxcd.io/namespace")
		if len(labels) == 0 {
			delete(o.Content["metadata"].(map[string]any), "labels")
		}
		got = append(got, oracleObject{Template: o.Template, Hooks: o.Hooks, Content: o.Content})
	}
	normalize := func(objs []oracleObject) []oracleObject {
		var manifest, hooks []oracleObject
		for _, o := range objs {
			if len(o.Hooks) == 0 {
				manifest = append(manifest, o)
				continue
			}
			if strings.Contains(o.Template, "/tests/") {
				md := o.Content["metadata"].(map[string]any)
				md["name"] = "<test hook>"
			}
			hooks = append(hooks, o)
		}
		sort.SliceStable(hooks, func(i, j int) bool { return hooks[i].Template < hooks[j].Template })
		return append(manifest, hooks...)
	}
	if diff := cmp.Diff(normalize(want), normalize(got)); diff != "" {
		t.Errorf("rendered objects differ from Helm's (-helm +render):\n%s", diff)
	}
}

// find returns the first object of kind whose template ends in suffix.
func find(t testing.TB, res *helm.Result, kind, templateSuffix string) map[string]any {
	t.Helper()
	for _, o := range res.Objects {
		if o.Content["kind"] == kind && strings.HasSuffix(o.Template, templateSuffix) {
			return o.Content
		}
	}
	t.Fatalf("no %s from *%s among %d objects", kind, templateSuffix, len(res.Objects))
	return nil
}

// images lists the container images of a workload's pod template.
func images(obj map[string]any) []string {
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	var out []string
	for _, key := range []string{"initContainers", "containers"} {
		cs, _ := pod[key].([]any)
		for _, c := range cs {
			img, _ := c.(map[string]any)["image"].(string)
			out = append(out, img)
		}
	}
	return out
}

// newCharts is a Charts for one test, caching in a fresh directory.
func newCharts(t testing.TB, offline bool) (*helm.Charts, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "charts")
	return helm.NewCharts(helm.ChartsConfig{Dir: dir, Offline: offline}), dir
}
