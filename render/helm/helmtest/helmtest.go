// Package helmtest serves Helm charts over loopback for tests: an HTTP
// Helm repository, a transport that answers for public repository hosts
// from loopback servers, and Helm's own template action as an oracle.
package helmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/registry"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// Load loads a chart directory with Helm's loader, optionally changing its
// version and vendoring dependency chart directories into charts/.
func Load(t testing.TB, dir, version string, deps ...string) *chart.Chart {
	t.Helper()
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatalf("loading %s: %v", dir, err)
	}
	if version != "" {
		ch.Metadata.Version = version
	}
	for _, d := range deps {
		ch.AddDependency(Load(t, d, ""))
	}
	return ch
}

// Package packages a chart as `helm package` does.
func Package(t testing.TB, ch *chart.Chart) []byte {
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

// Push pushes a chart archive to an OCI registry (plain HTTP) with Helm's
// registry client, as `helm push` does, and returns the manifest digest.
func Push(t testing.TB, archive []byte, ref string) string {
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

// Repo is a loopback HTTP Helm repository that counts requests.
type Repo struct {
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	count map[string]int
}

// NewRepo serves the archives with an index.yaml listing them, with their
// digests, as `helm repo index` writes it.
func NewRepo(t testing.TB, archives ...[]byte) *Repo {
	t.Helper()
	r := &Repo{files: map[string][]byte{}, count: map[string]int{}}
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

// URL is the repository's URL.
func (r *Repo) URL() string { return r.srv.URL }

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
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

// File returns what the repository serves at path.
func (r *Repo) File(path string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.files[path]
}

// Set replaces what the repository serves at path.
func (r *Repo) Set(path string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[path] = b
}

// Requests counts the requests served so far.
func (r *Repo) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.count {
		n += c
	}
	return n
}

// Client is an HTTP client that sends a request whose URL starts with a
// key of routes (a repository URL, "https://charts.example.com/stable")
// to the value instead (a loopback base URL, as Repo.URL returns), the
// rest of the path kept; requests to 127.0.0.1 go as they are, and any
// other host is refused. A revision that names public chart repositories
// renders in a test with no request leaving the machine.
func Client(routes map[string]string) *http.Client {
	return &http.Client{Transport: routeTransport(routes)}
}

type routeTransport map[string]string

func (rt routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL.String()
	for prefix, base := range rt {
		prefix = strings.TrimSuffix(prefix, "/")
		rest, ok := strings.CutPrefix(u, prefix)
		if !ok || rest != "" && !strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, "?") {
			continue
		}
		to, err := url.Parse(strings.TrimSuffix(base, "/") + rest)
		if err != nil {
			return nil, err
		}
		out := req.Clone(req.Context())
		out.URL, out.Host = to, ""
		return loopback.RoundTrip(out)
	}
	return loopback.RoundTrip(req)
}

// loopback dials 127.0.0.1 only.
var loopback = &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		return nil, fmt.Errorf("helmtest: refusing to dial %s", addr)
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}}

// Object is one object Helm's template action rendered.
type Object struct {
	Template string
	Hooks    []string
	Content  map[string]any
}

// Template renders ch with values as `helm template --kube-version
// --api-versions` does, with Helm's own install action in client-only
// dry-run mode and no post-renderer, CRDs skipped: the oracle a rendering
// must match.
func Template(t testing.TB, ch *chart.Chart, values map[string]any, name, namespace, kubeVersion string, apiVersions []string) []Object {
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
	var objs []Object
	for _, doc := range strings.Split("\n"+rel.Manifest, "\n---\n") {
		rest, ok := strings.CutPrefix(doc, "# Source: ")
		if !ok {
			continue
		}
		tmpl, body, _ := strings.Cut(rest, "\n")
		objs = append(objs, Object{Template: tmpl, Content: decode(t, body)})
	}
	for _, h := range rel.Hooks {
		var events []string
		for _, e := range h.Events {
			events = append(events, string(e))
		}
		objs = append(objs, Object{Template: h.Path, Hooks: events, Content: decode(t, h.Manifest)})
	}
	return objs
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func decode(t testing.TB, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("decoding %q: %v", doc, err)
	}
	return m
}
