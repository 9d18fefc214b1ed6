package sourcestest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/sources"
	"github.com/pregate/pregate/sources/sourcestest"
)

// TestServer_Publish: what the server publishes, sources.Fetch downloads,
// checks against the digest and extracts to the same files, under the
// revision a GitRepository would report.
func TestServer_Publish(t *testing.T) {
	files := map[string]string{"deploy/app.yaml": "kind: Deployment\n", "deploy/base/kustomization.yaml": "resources: []\n", "README.md": "hi\n"}
	a := sourcestest.NewServer(t).Publish(t, "gitrepository/apps/apps", files, sourcestest.GitRevision)
	if !strings.HasPrefix(a.Revision, "main@sha1:") || len(a.Revision) != len("main@sha1:")+40 {
		t.Errorf("revision %q, want main@sha1:<40 hex>", a.Revision)
	}
	tree, err := sources.Fetch(t.Context(), sources.Artifact{URL: a.URL, Digest: a.Digest, Revision: a.Revision}, filepath.Join(t.TempDir(), "src"))
	if err != nil {
		t.Fatalf("fetching %s: %v", a.URL, err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(tree.Root, filepath.FromSlash(name)))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
}

// TestTarball_deterministic: the same files make the same bytes (and so
// the same revision), whatever the map's order.
func TestTarball_deterministic(t *testing.T) {
	files := map[string]string{"a/b/c.yaml": "1", "a/d.yaml": "2", "e.yaml": "3", "f/g.yaml": "4"}
	first, err := sourcestest.Tarball(files)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := sourcestest.Tarball(files)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("Tarball gave different bytes for the same files")
		}
	}
	if sourcestest.GitRevision(first) == sourcestest.GitRevision([]byte("other")) {
		t.Error("different tarballs have the same revision")
	}
}
