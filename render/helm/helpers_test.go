package helm_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/render/helm"
)

const (
	podinfoDir = "testdata/charts/podinfo"
	parentDir  = "testdata/charts/parent"
	// podinfoImage is the image podinfo 6.14.1 runs by default.
	podinfoImage = "ghcr.io/stefanprodan/podinfo:6.14.1"
)

// loadChart loads a chart directory with Helm's loader, optionally
// changing its version and vendoring dependency chart directories into
// charts/.
func loadChart(t testing.TB, dir, version string, deps ...string) *chart.Chart {
	t.Helper()
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	if version != "" {
		ch.Metadata.Version = version
	}
	for _, d := range deps {
		ch.AddDependency(loadChart(t, d, ""))
	}
	return ch
}

// packageChart packages a chart as `helm package` does.
func packageChart(t testing.TB, ch *chart.Chart) []byte {
	t.Helper()
	p, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatalf("packaging %s: %v", ch.Name(), err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// chartRepo is a loopback HTTP Helm repository that counts requests.
type chartRepo struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	count map[string]int
}

// newChartRepo serves the archives with an index.yaml listing them (with
// their digests, as `helm repo index` writes them).
func newChartRepo(t testing.TB, archives ...[]byte) *chartRepo {
	t.Helper()
	r := &chartRepo{files: map[string][]byte{}, count: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	idx := repo.NewIndexFile()
	for _, a := range archives {
		ch, err := loader.LoadArchive(bytes.NewReader(a))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s-%s.tgz", ch.Name(), ch.Metadata.Version)
		if err := idx.MustAdd(ch.Metadata, name, r.srv.URL+"/charts", sha256Hex(a)); err != nil {
			t.Fatal(err)
		}
		r.files["/charts/"+name] = a
	}
	idx.SortEntries()
	b, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	r.files["/index.yaml"] = b
	return r
}

func (r *chartRepo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.count[req.URL.Path]++
	b, ok := r.files[req.URL.Path]
	r.mu.Unlock()
	if !ok {
		http.NotFound(w, req)
		return
	}
	_, _ = w.Write(b)
}

// set replaces what the repository serves at path.
func (r *chartRepo) set(path string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[path] = b
}

// requests counts the requests served so far.
func (r *chartRepo) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.count {
		n += c
	}
	return n
}

// pushChart pushes a chart archive to an OCI registry with Helm's registry
// client, as `helm push` does, and returns the manifest digest.
func pushChart(t testing.TB, archive []byte, ref string) string {
	t.Helper()
	client, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Push(archive, ref, registry.PushOptCreationTime("2026-07-22T00:00:00Z"))
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return res.Manifest.Digest
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
type oracleObject struct {
	Template string
	Hooks    []string
	Content  map[string]any
}

// oracle renders ch with values the way `helm template` does, with Helm's
// own install action (client-only dry run), with no post-renderer: what
// Render must match, less what helm-controller adds.
func oracle(t testing.TB, ch *chart.Chart, values map[string]any, name, namespace string) []oracleObject {
	t.Helper()
	return oracleCaps(t, ch, values, name, namespace, helm.DefaultKubeVersion, nil)
}

// oracleCaps is oracle with `--kube-version` and `--api-versions`.
func oracleCaps(t testing.TB, ch *chart.Chart, values map[string]any, name, namespace, kubeVersion string, apiVersions []string) []oracleObject {
	t.Helper()
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler)))
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = name
	install.Namespace = namespace
	install.KubeVersion = kv
	install.APIVersions = apiVersions
	install.SkipCRDs = true
	out, err := install.Run(ch, values)
	if err != nil {
		t.Fatalf("oracle: helm install --dry-run=client: %v", err)
	}
	rel := out.(*releasev1.Release)
	var objs []oracleObject
	for _, doc := range strings.Split("\n"+rel.Manifest, "\n---\n") {
		rest, ok := strings.CutPrefix(doc, "# Source: ")
		if !ok {
			continue
		}
		tmpl, body, _ := strings.Cut(rest, "\n")
		objs = append(objs, oracleObject{Template: tmpl, Content: object(t, body)})
	}
	for _, h := range rel.Hooks {
		var events []string
		for _, e := range h.Events {
			events = append(events, string(e))
		}
		objs = append(objs, oracleObject{Template: h.Path, Hooks: events, Content: object(t, h.Manifest)})
	}
	return objs
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
