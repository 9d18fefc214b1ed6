package sourcestest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
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
	tgz, err := sourcestest.Tarball(files)
	if err != nil {
		t.Fatal(err)
	}
	if want := sourcestest.GitRevision(tgz); a.Revision != want {
		t.Errorf("revision %q, want %q", a.Revision, want)
	}
	if !strings.HasPrefix(a.Revision, "main@sha1:") || len(a.Revision) != len("main@sha1:")+40 {
		t.Errorf("revision %q, want main@sha1:<40 hex>", a.Revision)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served, tgz) {
		t.Error("the server does not serve the bytes of Tarball(files)")
	}
	if sum := sha256.Sum256(served); a.Digest != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("digest %q, want sha256:%x (the bytes served)", a.Digest, sum)
	}
	if a.Size != int64(len(served)) {
		t.Errorf("size %d, want %d (the bytes served)", a.Size, len(served))
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
}
