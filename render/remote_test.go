package render

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pregate/pregate/render/rendertest"
	"github.com/pregate/pregate/render/sops"
)

// The remote bases these tests fetch, from git and HTTP servers on the
// loopback interface: a kustomize base deploying infraImage, and bases
// that try to read what a remote base may not.
//
// The tests that fetch do not run in parallel with the package's other
// tests, only their own subtests do: a build holds fluxcd/pkg/kustomize's
// lock while it fetches, for seconds under -race, and the time bounds of
// other tests would count that wait. Top-level tests that are not
// parallel run before the others start.
const (
	infraImage = "ghcr.io/acme/infra:1.0"
	appImage   = "ghcr.io/acme/app:1.0"
)

func deploymentYAML(name, image string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + ", namespace: shop}\n" +
		"spec: {template: {spec: {containers: [{name: " + name + ", image: \"" + image + "\"}]}}}\n"
}

var infraRepo = map[string]string{
	"base/kustomization.yaml": "resources: [deploy.yaml]\n",
	"base/deploy.yaml":        deploymentYAML("infra", infraImage),
}

// remoteTree is a flux bootstrap layout whose Kustomization apps renders
// ./apps: app.yaml and the kustomization lines given.
func remoteTree(t *testing.T, kustomization string) string {
	t.Helper()
	return writeTree(t, remoteFiles(kustomization))
}

func remoteFiles(kustomization string) map[string]string {
	return map[string]string{
		"clusters/prod/apps.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  path: ./apps
  sourceRef: {kind: GitRepository, name: flux-system}
`,
		"apps/kustomization.yaml": "resources:\n  - app.yaml\n" + kustomization,
		"apps/app.yaml":           deploymentYAML("app", appImage),
	}
}

func renderRemote(t *testing.T, root string, opts ...Option) *Result {
	t.Helper()
	res, err := Render(t.Context(), root, filepath.Join(root, "clusters", "prod"), opts...)
	if err != nil {
		t.Fatalf("Render() = %v", err)
	}
	return res
}

// imageFiles maps each image to the files it was found in.
func imageFiles(res *Result) map[string][]string {
	out := map[string][]string{}
	for _, img := range res.Images {
		for _, l := range img.Locations {
			out[img.Ref] = append(out[img.Ref], l.File)
		}
	}
	return out
}

// TestRender_remoteBases: remote bases are fetched by default, as
// kustomize-controller fetches them, in each URL form kustomize takes, and
// their objects are traced to the kustomization file naming them.
func TestRender_remoteBases(t *testing.T) { //nolint:tparallel // not parallel with the package: see the top of the file
	git := newGitServer(t, map[string]map[string]string{"infra": infraRepo})
	files := rendertest.NewFileServer(t, map[string]string{"/deploy.yaml": deploymentYAML("infra", infraImage)})
	for name, entry := range map[string]string{
		"repo.git//path?ref=":    git.URL + "/infra.git//base?ref=v1",
		"repo.git/path?ref=":     git.URL + "/infra.git/base?ref=v1",
		"repo//path?ref=":        git.URL + "/infra//base?ref=v1",
		"?version=":              git.URL + "/infra.git//base?version=v1",
		"default branch":         git.URL + "/infra.git//base",
		"file:// repository":     "file://" + filepath.ToSlash(git.dir) + "/infra.git//base?ref=v1",
		"http file":              files.URL + "/deploy.yaml",
		"git timeout in the URL": git.URL + "/infra.git//base?ref=v1&timeout=20s",
		"user name in the URL":   strings.Replace(git.URL, "://", "://pregate@", 1) + "/infra.git//base?ref=v1",
		"mixed-case http scheme": "HTTP" + strings.TrimPrefix(git.URL, "http") + "/infra.git//base?ref=v1",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := remoteTree(t, "  - "+entry+"\n")
			before := snapshot(t, root)
			res := renderRemote(t, root)
			if len(res.Gaps) != 0 {
				t.Fatalf("gaps: %v", res.Gaps)
			}
			want := map[string][]string{appImage: {"apps/app.yaml"}, infraImage: {"apps/kustomization.yaml"}}
			if diff := cmp.Diff(want, imageFiles(res)); diff != "" {
				t.Errorf("images and their files (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
				t.Errorf("Render changed the source tree (-before +after):\n%s", diff)
			}
		})
	}
	t.Cleanup(func() { // after the subtests
		if !git.fetched() {
			t.Errorf("the git server saw no fetch: %v", git.Requests())
		}
	})
}

// TestRender_remoteBaseFiles: objects from remote bases named in two
// kustomization files are each traced to the file naming theirs.
func TestRender_remoteBaseFiles(t *testing.T) { // not parallel with the package: see the top of the file
	const otherImage = "ghcr.io/acme/other:1.0"
	git := newGitServer(t, map[string]map[string]string{"infra": infraRepo})
	files := rendertest.NewFileServer(t, map[string]string{"/other.yaml": deploymentYAML("other", otherImage)})
	tree := remoteFiles("  - sub\n  - " + strings.Replace(git.URL, "://", "://pregate@", 1) + "/infra.git//base?ref=v1\n")
	tree["apps/sub/kustomization.yaml"] = "resources:\n  - " + files.URL + "/other.yaml\n"
	res := renderRemote(t, writeTree(t, tree))
	want := map[string][]string{
		appImage:   {"apps/app.yaml"},
		infraImage: {"apps/kustomization.yaml"},
		otherImage: {"apps/sub/kustomization.yaml"},
	}
	if diff := cmp.Diff(want, imageFiles(res)); diff != "" || len(res.Gaps) != 0 {
		t.Errorf("gaps %v; images and their files (-want +got):\n%s", res.Gaps, diff)
	}
}

// TestRender_remoteBaseDecrypting: a Kustomization that decrypts builds
// its decrypted files from memory over the secure file system; that file
// system lets kustomize read its clone of a remote base too.
func TestRender_remoteBaseDecrypting(t *testing.T) { // not parallel with the package: see the top of the file
	git := newGitServer(t, map[string]map[string]string{"infra": infraRepo})
	dir := filepath.Join("testdata", "render", "sops")
	key := ageKeys(t, dir, "../../sops/age.agekey")
	root := copyTree(t, filepath.Join(dir, "src"))
	kfile := filepath.Join(root, "infra", "config", "kustomization.yaml")
	b, err := os.ReadFile(kfile)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), "  - cluster-secrets.sops.yaml\n",
		"  - cluster-secrets.sops.yaml\n  - "+git.URL+"/infra.git//base?ref=v1\n", 1))
	if err := os.WriteFile(kfile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Render(t.Context(), root, filepath.Join(root, "clusters", "prod"),
		WithDecryption(func(context.Context, Object) (sops.Keys, error) { return key, nil }))
	if err != nil {
		t.Fatalf("Render() = %v", err)
	}
	if !slices.ContainsFunc(res.Images, func(img Image) bool { return img.Ref == infraImage }) || len(res.Gaps) != 0 {
		t.Errorf("images %v, gaps %v; want %s and no gap", res.Images, res.Gaps, infraImage)
	}
	env := findObject(t, res.Objects, "Secret/flux-system/registry-env")
	if !strings.Contains(env.Content["data"].(map[string]any)["REGISTRY_PASSWORD"].(string), "Y29ycmVjdC1ob3Jz") {
		t.Errorf("registry-env = %v, want REGISTRY_PASSWORD decrypted", env.Content["data"])
	}
}

// TestRender_remoteBaseGaps: a remote base that cannot be fetched makes
// its Kustomization a RemoteBase gap that names the kustomization file, the
// entry and kustomize's cause, bounded, without the URL's credentials or
// kustomize's temporary directories.
func TestRender_remoteBaseGaps(t *testing.T) { //nolint:tparallel // not parallel with the package: see the top of the file
	git := newGitServer(t, map[string]map[string]string{"infra": infraRepo})
	files := rendertest.NewFileServer(t, nil)
	closed := "http://" + rendertest.ClosedAddress(t)
	for name, tc := range map[string]struct {
		entry string
		shown string // the entry as the message shows it
		cause string
	}{
		"missing ref":        {entry: git.URL + "/infra.git//base?ref=v2", cause: "couldn't find remote ref v2"},
		"missing path":       {entry: git.URL + "/infra.git//nope?ref=v1", cause: "<clone>/nope"},
		"missing repository": {entry: git.URL + "/nope.git//base?ref=v1", cause: "not found"},
		"unreachable host":   {entry: closed + "/infra.git//base?ref=v1", cause: "Failed to connect to 127.0.0.1"},
		"missing http file":  {entry: files.URL + "/missing.yaml", cause: "status code 404 (Not Found)"},
		"credentials in the URL": {
			entry: strings.Replace(closed, "://", "://pregate:s3cret@", 1) + "/infra.git//base?ref=v1",
			shown: closed + "/infra.git//base?ref=v1", cause: "Failed to connect to 127.0.0.1",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := renderRemote(t, remoteTree(t, "  - "+tc.entry+"\n"))
			g := onlyGap(t, res)
			if tc.shown == "" {
				tc.shown = tc.entry
			}
			prefix := "apps/kustomization.yaml refers to remote " + tc.shown + ", which could not be fetched or built: "
			if g.Reason != RemoteBaseGap || g.Object != "Kustomization/flux-system/apps" || g.File != "clusters/prod/apps.yaml" ||
				!strings.HasPrefix(g.Message, prefix) || !strings.Contains(g.Message, tc.cause) {
				t.Errorf("gap = %+v\nwant RemoteBase of Kustomization/flux-system/apps (clusters/prod/apps.yaml), message %q…%q", g, prefix, tc.cause)
			}
			checkMessage(t, g.Message)
			if len(res.Images) != 0 {
				t.Errorf("images %v: the Kustomization was not rendered", res.Images)
			}
		})
	}
}

// checkMessage checks what no remote base message may hold.
func checkMessage(t *testing.T, msg string) {
	t.Helper()
	for _, bad := range []string{"s3cret", filepath.Join(os.TempDir(), "kustomize-"), "\n"} {
		if strings.Contains(msg, bad) {
			t.Errorf("the message holds %q: %s", bad, msg)
		}
	}
	if len(msg) > maxEntryLen+maxCauseLen+200 {
		t.Errorf("the message is %d bytes long: %s", len(msg), msg)
	}
}

func onlyGap(t *testing.T, res *Result) Gap {
	t.Helper()
	if len(res.Gaps) != 1 {
		t.Fatalf("gaps = %v, want one", res.Gaps)
	}
	return res.Gaps[0]
}

// TestRender_remoteBaseConfined: a remote base reads only its own clone:
// kustomize refuses one that reaches into the host's files or the
// revision's, and the Kustomization is a gap.
func TestRender_remoteBaseConfined(t *testing.T) { //nolint:tparallel // not parallel with the package: see the top of the file
	// The roots are known before the repository is made, so that its
	// bases can name the revision's files by their absolute paths.
	roots := t.TempDir()
	secret := filepath.Join(roots, "revision", "apps", "secret.env")
	git := newGitServer(t, map[string]map[string]string{"evil": {
		"passwd/kustomization.yaml":   "resources: [../../../../../../../../etc/passwd]\n",
		"etc/kustomization.yaml":      "configMapGenerator: [{name: x, files: [/etc/passwd]}]\n",
		"revision/kustomization.yaml": "configMapGenerator: [{name: x, envs: [" + secret + "]}]\n",
		"absolute/kustomization.yaml": "resources: [" + filepath.Join(roots, "absolute", "apps") + "]\n",
	}})
	for name, tc := range map[string]struct{ path, refusal string }{
		"../ out of the clone":        {"passwd", "is not in or below"},
		"an absolute host file":       {"etc", "is not in or below"},
		"a file of the revision":      {"revision", "is not in or below '<clone>/revision'"},
		"a directory of the revision": {"absolute", "cannot be absolute"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := filepath.Join(roots, tc.path)
			files := remoteFiles("  - " + git.URL + "/evil.git//" + tc.path + "?ref=v1\n")
			files["apps/secret.env"] = "TOKEN=hunter2\n"
			rendertest.WriteFiles(t, root, files)
			res := renderRemote(t, root)
			g := onlyGap(t, res)
			if g.Reason != RemoteBaseGap || !strings.Contains(g.Message, tc.refusal) {
				t.Errorf("gap = %+v, want RemoteBase, message with %q", g, tc.refusal)
			}
			if strings.Contains(g.Message, "hunter2") {
				t.Errorf("the message holds the revision's secret: %s", g.Message)
			}
			checkMessage(t, g.Message)
		})
	}
}

// TestRender_remoteBasesDisabled: WithoutRemoteBases refuses every remote
// reference, bases and files alike, before building: a gap saying what
// disabled them, and not one request. kustomize itself would still fetch
// an http(s) patch.
func TestRender_remoteBasesDisabled(t *testing.T) { //nolint:tparallel // not parallel with the package: see the top of the file
	git := newGitServer(t, map[string]map[string]string{"infra": infraRepo})
	const patched = "ghcr.io/acme/patched:2.0"
	files := rendertest.NewFileServer(t, map[string]string{
		"/deploy.yaml": deploymentYAML("infra", infraImage),
		"/patch.yaml":  deploymentYAML("app", patched),
		"/app.env":     "A=b\n",
	})
	for name, tc := range map[string]struct {
		kustomization string
		entry         string
		fetched       string // the image fetching it gives
	}{
		"git base":  {kustomization: "  - " + git.URL + "/infra.git//base?ref=v1\n", entry: git.URL + "/infra.git//base?ref=v1", fetched: infraImage},
		"http file": {kustomization: "  - " + files.URL + "/deploy.yaml\n", entry: files.URL + "/deploy.yaml", fetched: infraImage},
		"http patch": {kustomization: "patches:\n  - path: " + files.URL + "/patch.yaml\n", entry: files.URL + "/patch.yaml",
			fetched: patched},
		"http generator file": {kustomization: "configMapGenerator:\n  - name: x\n    envs: [" + files.URL + "/app.env]\n",
			entry: files.URL + "/app.env", fetched: appImage},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := remoteTree(t, tc.kustomization)
			g := onlyGap(t, renderRemote(t, root, WithoutRemoteBases("--offline")))
			want := "apps/kustomization.yaml refers to remote " + tc.entry + "; remote bases are disabled by --offline"
			if g.Reason != RemoteBaseGap || g.Message != want {
				t.Errorf("gap = %+v, want RemoteBase %q", g, want)
			}

			// Allowed, the same tree fetches it.
			res := renderRemote(t, root)
			if len(res.Gaps) != 0 || !slices.ContainsFunc(res.Images, func(img Image) bool { return img.Ref == tc.fetched }) {
				t.Errorf("with remote bases: images %v, gaps %v; want %s", res.Images, res.Gaps, tc.fetched)
			}
		})
	}
	t.Run("in a component of the Flux Kustomization", func(t *testing.T) {
		t.Parallel()
		tree := remoteFiles("")
		tree["clusters/prod/apps.yaml"] += "  components: [../components/infra]\n"
		tree["components/infra/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n" +
			"resources:\n  - " + files.URL + "/deploy.yaml\n"
		root := rendertest.WriteTree(t, tree)
		g := onlyGap(t, renderRemote(t, root, WithoutRemoteBases("--offline")))
		want := "components/infra/kustomization.yaml refers to remote " + files.URL + "/deploy.yaml; remote bases are disabled by --offline"
		if g.Reason != RemoteBaseGap || g.Message != want {
			t.Errorf("gap = %+v, want RemoteBase %q", g, want)
		}
		res := renderRemote(t, root)
		if diff := cmp.Diff(map[string][]string{appImage: {"apps/app.yaml"}, infraImage: {"components/infra/kustomization.yaml"}}, imageFiles(res)); diff != "" || len(res.Gaps) != 0 {
			t.Errorf("with remote bases: gaps %v; images and their files (-want +got):\n%s", res.Gaps, diff)
		}
	})
	t.Run("no request", func(t *testing.T) {
		t.Parallel()
		root := remoteTree(t, "  - "+git.URL+"/other.git//base?ref=v1\npatches:\n  - path: "+files.URL+"/other.yaml\n")
		g := onlyGap(t, renderRemote(t, root, WithoutRemoteBases("")))
		if !strings.HasSuffix(g.Message, "; remote bases are disabled") {
			t.Errorf("gap = %+v", g)
		}
		for _, s := range []interface{ Requests() []string }{git, files} {
			for _, r := range s.Requests() {
				if strings.Contains(r, "other") {
					t.Errorf("the server saw %s with remote bases disabled", r)
				}
			}
		}
	})
}

// TestRender_remoteBaseCancelled: kustomize's HTTP fetch takes no context
// and has no timeout; a render whose context ends while it fetches returns
// then, with the context's error and no gap, and leaves the fetch to end
// by itself.
func TestRender_remoteBaseCancelled(t *testing.T) { // not parallel with the package: see the top of the file
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	release := make(chan struct{})
	stalled := rendertest.NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the fetch has begun
		<-release
		http.NotFound(w, r)
	}))
	t.Cleanup(func() { close(release) }) // before the server closes
	root := remoteTree(t, "  - "+stalled.URL+"/deploy.yaml\n")
	type rendered struct {
		res *Result
		err error
	}
	done := make(chan rendered, 1)
	go func() {
		res, err := Render(ctx, root, filepath.Join(root, "clusters", "prod"))
		done <- rendered{res, err}
	}()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Render() = %+v, %v; want the context's error", r.res, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Render() still waits for the fetch 30s after its context was cancelled")
	}
	if len(stalled.Requests()) == 0 {
		t.Error("the server saw no request")
	}
}

// TestRender_remoteCloneRemoved: kustomize clones a remote base into a
// temporary directory of its own and removes it after the build, whether it
// succeeds or fails. Not parallel: it points $TMPDIR at a directory of
// its own to see that.
func TestRender_remoteCloneRemoved(t *testing.T) {
	git := newGitServer(t, map[string]map[string]string{"infra": infraRepo})
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for _, entry := range []string{git.URL + "/infra.git//base?ref=v1", git.URL + "/infra.git//nope?ref=v1"} {
		renderRemote(t, remoteTree(t, "  - "+entry+"\n"))
	}
	if !git.fetched() {
		t.Fatalf("the git server saw no fetch: %v", git.Requests())
	}
	left, err := filepath.Glob(filepath.Join(tmp, "kustomize-*"))
	if err != nil || len(left) != 0 {
		t.Errorf("left in $TMPDIR: %v %v", left, err)
	}
}

func TestRedactURLs(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://user:token@git.example/r.git//b?ref=v1":     "https://git.example/r.git//b?ref=v1",
		"failed to run 'git fetch http://u:p@h/r v1': fatal": "failed to run 'git fetch http://h/r v1': fatal",
		`Get "https://u:***@h/x": refused`:                   `Get "https://h/x": refused`,
		"ssh://git@github.com/acme/infra":                    "ssh://github.com/acme/infra",
		"git@github.com:acme/infra.git":                      "git@github.com:acme/infra.git",
		"https://h/a@b":                                      "https://h/a@b",
	} {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}
