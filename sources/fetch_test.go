package sources

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/pkg/http/fetch"
	"github.com/google/go-cmp/cmp"

	"github.com/pregate/pregate/sources/sourcestest"
)

// The entries of test tarballs, written exactly as given.
type entry = sourcestest.Entry

var (
	regular   = sourcestest.File
	directory = sourcestest.Dir
	symlink   = sourcestest.Symlink
	hardlink  = sourcestest.HardLink
	special   = sourcestest.Special
)

// tarball returns the entries as a gzipped tar stream, written exactly as given.
func tarball(t *testing.T, entries ...entry) []byte {
	t.Helper()
	b, err := sourcestest.RawTarball(entries...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// serve serves body at /artifact.tar.gz and returns its URL.
var serve = sourcestest.ServeBytes

// assertNoOutput fails if dst holds anything.
func assertNoOutput(t *testing.T, dst string) {
	t.Helper()
	entries, err := os.ReadDir(dst)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("destination %s holds %d entries after an error, want none", dst, len(entries))
	}
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]string{}
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			got[rel+"/"] = ""
		case d.Type().IsRegular():
			b, err := r.ReadFile(rel)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		default:
			got[rel] = "<" + d.Type().String() + ">"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFetch(t *testing.T) {
	t.Parallel()
	good := tarball(t,
		regular("kustomization.yaml", "resources: [deploy.yaml]\n"),
		directory("apps"),
		regular("apps/deploy.yaml", "kind: Deployment\n"),
		regular("nested/deep/cm.yaml", "kind: ConfigMap\n"),
		symlink("apps/z-link", "deploy.yaml"),
		symlink("a-link", "apps"),
		special("pax_global_header", tar.TypeXGlobalHeader),
	)
	url := serve(t, good)

	tests := map[string]struct {
		opts     []Option
		revision string
		want     *Tree
	}{
		"revision carried through": {
			revision: "main@sha1:0123456789abcdef0123456789abcdef01234567",
			want: &Tree{
				Revision: "main@sha1:0123456789abcdef0123456789abcdef01234567",
				Source:   url,
			},
		},
		"revision overridden": {
			revision: "main@sha1:0123456789abcdef0123456789abcdef01234567",
			opts:     []Option{WithRevision("latest@sha256:abc")},
			want:     &Tree{Revision: "latest@sha256:abc", Source: url},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dst := filepath.Join(t.TempDir(), "tree")
			a := Artifact{URL: url, Digest: sha(good), Revision: tc.revision}
			tree, err := Fetch(t.Context(), a, dst, append([]Option{WithRetries(0)}, tc.opts...)...)
			if err != nil {
				t.Fatalf("Fetch() = %v", err)
			}
			wantRoot, _ := filepath.Abs(dst)
			tc.want.Root = wantRoot
			tc.want.Skipped = []Skipped{
				{Path: "a-link", Reason: `symlink to "apps": symlinks are dropped, as Flux drops them`},
				{Path: "apps/z-link", Reason: `symlink to "deploy.yaml": symlinks are dropped, as Flux drops them`},
			}
			if diff := cmp.Diff(tc.want, tree); diff != "" {
				t.Errorf("Fetch() tree mismatch (-want +got):\n%s", diff)
			}
			wantFiles := map[string]string{
				"kustomization.yaml":  "resources: [deploy.yaml]\n",
				"apps/":               "",
				"apps/deploy.yaml":    "kind: Deployment\n",
				"nested/":             "",
				"nested/deep/":        "",
				"nested/deep/cm.yaml": "kind: ConfigMap\n",
			}
			if diff := cmp.Diff(wantFiles, readTree(t, tree.Root)); diff != "" {
				t.Errorf("extracted files mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFetch_existingEmptyDestination(t *testing.T) {
	t.Parallel()
	body := tarball(t, regular("a.yaml", "a"))
	dst := t.TempDir()
	tree, err := Fetch(t.Context(), Artifact{URL: serve(t, body), Digest: sha(body)}, dst, WithRetries(0))
	if err != nil {
		t.Fatalf("Fetch() = %v", err)
	}
	if diff := cmp.Diff(map[string]string{"a.yaml": "a"}, readTree(t, tree.Root)); diff != "" {
		t.Errorf("extracted files mismatch (-want +got):\n%s", diff)
	}

	// A failure into an existing directory empties it but leaves it in place.
	dst = t.TempDir()
	bad := tarball(t, regular("a.yaml", "a"), symlink("link", "/etc"))
	if _, err := Fetch(t.Context(), Artifact{URL: serve(t, bad), Digest: sha(bad)}, dst, WithRetries(0)); err == nil {
		t.Fatal("Fetch() = nil error, want one")
	}
	assertNoOutput(t, dst)
	if _, err := os.Stat(dst); err != nil {
		t.Errorf("existing destination was removed: %v", err)
	}
}

func TestFetch_nonEmptyDestination(t *testing.T) {
	t.Parallel()
	body := tarball(t, regular("a.yaml", "a"))
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "keep"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Fetch(t.Context(), Artifact{URL: serve(t, body), Digest: sha(body)}, dst, WithRetries(0))
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("Fetch() = %v, want a not-empty error", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "keep")); err != nil {
		t.Errorf("caller's file was touched: %v", err)
	}
}

func TestFetch_hostile(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 2048)
	tests := map[string]struct {
		body     []byte
		digest   string // sha(body) when empty
		opts     []Option
		wantErr  []string // substrings of the message
		noDigest bool
	}{
		"path traversal": {
			body:    tarball(t, regular("ok.yaml", "a"), regular("../evil", "x")),
			wantErr: []string{`"../evil"`},
		},
		"nested path traversal": {
			body:    tarball(t, regular("a/../../evil", "x")),
			wantErr: []string{`"a/../../evil"`},
		},
		"dot dot": {
			body:    tarball(t, directory("..")),
			wantErr: []string{`entry ".." escapes the root`},
		},
		"absolute path": {
			body:    tarball(t, regular("ok.yaml", "a"), regular("/etc/x", "x")),
			wantErr: []string{`"/etc/x"`},
		},
		"symlink escaping relatively": {
			body:    tarball(t, regular("ok.yaml", "a"), symlink("link", "../../etc/passwd")),
			wantErr: []string{`entry "link" is a symlink to "../../etc/passwd", outside the root`},
		},
		"symlink escaping from a subdirectory": {
			body:    tarball(t, regular("a/ok.yaml", "a"), symlink("a/link", "../..")),
			wantErr: []string{`entry "a/link" is a symlink to "../..", outside the root`},
		},
		"symlink to an absolute path": {
			body:    tarball(t, regular("ok.yaml", "a"), symlink("link", "/etc")),
			wantErr: []string{`entry "link" is a symlink to "/etc", outside the root`},
		},
		"hard link": {
			body:    tarball(t, regular("ok.yaml", "a"), hardlink("hl", "ok.yaml")),
			wantErr: []string{`entry "hl" is a hard link to "ok.yaml"`},
		},
		"character device": {
			body:    tarball(t, special("dev/null", tar.TypeChar)),
			wantErr: []string{`entry "dev/null" is a device`},
		},
		"named pipe": {
			body:    tarball(t, special("fifo", tar.TypeFifo)),
			wantErr: []string{`entry "fifo" is a named pipe`},
		},
		"extracted size over the limit": {
			body:    tarball(t, regular("a.yaml", big), regular("b.yaml", big)),
			opts:    []Option{WithMaxSize(3000)},
			wantErr: []string{`"b.yaml"`, "3000 bytes"},
		},
		"download over the limit": {
			body:    tarball(t, regular("a.yaml", big)),
			opts:    []Option{WithMaxDownloadSize(10)},
			wantErr: []string{"max download size of 10 bytes"},
		},
		"too many entries": {
			body:    tarball(t, regular("1", ""), regular("2", ""), regular("3", ""), regular("4", "")),
			opts:    []Option{WithMaxFiles(3)},
			wantErr: []string{`entry "4" exceeds the limit of 3 entries`},
		},
		"digest mismatch": {
			body:    tarball(t, regular("a.yaml", "a")),
			digest:  sha([]byte("something else")),
			wantErr: []string{"/artifact.tar.gz", sha([]byte("something else"))},
		},
		"missing digest": {
			body:     tarball(t, regular("a.yaml", "a")),
			noDigest: true,
			wantErr:  []string{"/artifact.tar.gz", "missing digest"},
		},
		"malformed digest": {
			body:    tarball(t, regular("a.yaml", "a")),
			digest:  "sha256:nothex",
			wantErr: []string{`parsing digest "sha256:nothex"`},
		},
		"not gzip": {
			body:    []byte("<html>this is not an artifact</html>"),
			wantErr: []string{"gzip"},
		},
		"not tar": {
			body: func() []byte {
				var buf bytes.Buffer
				gw := gzip.NewWriter(&buf)
				_, _ = gw.Write(bytes.Repeat([]byte("garbage!"), 100))
				_ = gw.Close()
				return buf.Bytes()
			}(),
			wantErr: []string{"extracting archive"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := serve(t, tc.body)
			a := Artifact{URL: url, Digest: tc.digest}
			if a.Digest == "" && !tc.noDigest {
				a.Digest = sha(tc.body)
			}
			dst := filepath.Join(t.TempDir(), "tree")
			tree, err := Fetch(t.Context(), a, dst, append([]Option{WithRetries(0)}, tc.opts...)...)
			if err == nil {
				t.Fatalf("Fetch() = %+v, want an error", tree)
			}
			t.Logf("error: %v", err)
			if !strings.HasPrefix(err.Error(), "fetching artifact "+url+": ") {
				t.Errorf("Fetch() error = %q, want it to start with %q", err, "fetching artifact "+url+": ")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Fetch() error = %q, want it to contain %q", err, want)
				}
			}
			assertNoOutput(t, dst)
		})
	}
}

func TestFetch_httpErrors(t *testing.T) {
	t.Parallel()
	body := tarball(t, regular("a.yaml", "a"))

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		url := serve(t, body)
		dst := filepath.Join(t.TempDir(), "tree")
		_, err := Fetch(t.Context(), Artifact{URL: url + ".missing", Digest: sha(body)}, dst, WithRetries(3))
		t.Logf("error: %v", err)
		if !errors.Is(err, ErrArtifactNotFound) || !errors.Is(err, fetch.ErrFileNotFound) {
			t.Errorf("Fetch() = %v, want ErrArtifactNotFound and fetch.ErrFileNotFound", err)
		}
		assertNoOutput(t, dst)
	})

	t.Run("server error without retries", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		}))
		t.Cleanup(srv.Close)
		dst := filepath.Join(t.TempDir(), "tree")
		_, err := Fetch(t.Context(), Artifact{URL: srv.URL + "/a.tar.gz", Digest: sha(body)}, dst, WithRetries(0))
		t.Logf("error: %v", err)
		if err == nil || errors.Is(err, ErrArtifactNotFound) {
			t.Errorf("Fetch() = %v, want a download error", err)
		}
		if got := calls.Load(); got != 1 {
			t.Errorf("server saw %d requests, want 1", got)
		}
		assertNoOutput(t, dst)
	})

	// The waits between attempts are fluxcd/pkg/http/fetch's (at least 5s) except on a 503 or
	// 429 with Retry-After, which the client honours; that keeps this test fast.
	t.Run("unavailable then success", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)
		tree, err := Fetch(t.Context(), Artifact{URL: srv.URL + "/a.tar.gz", Digest: sha(body)},
			filepath.Join(t.TempDir(), "tree"), WithRetries(1))
		if err != nil {
			t.Fatalf("Fetch() = %v", err)
		}
		if got := calls.Load(); got != 2 {
			t.Errorf("server saw %d requests, want 2", got)
		}
		if diff := cmp.Diff(map[string]string{"a.yaml": "a"}, readTree(t, tree.Root)); diff != "" {
			t.Errorf("extracted files mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("internal error then success", func(t *testing.T) {
		if testing.Short() {
			t.Skip("fluxcd/pkg/http/fetch waits 5s before retrying a 500")
		}
		t.Parallel()
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if calls.Add(1) == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)
		if _, err := Fetch(t.Context(), Artifact{URL: srv.URL + "/a.tar.gz", Digest: sha(body)},
			filepath.Join(t.TempDir(), "tree"), WithRetries(1)); err != nil {
			t.Fatalf("Fetch() = %v", err)
		}
		if got := calls.Load(); got != 2 {
			t.Errorf("server saw %d requests, want 2", got)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		dst := filepath.Join(t.TempDir(), "tree")
		_, err := Fetch(ctx, Artifact{URL: serve(t, body), Digest: sha(body)}, dst, WithRetries(3))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Fetch() = %v, want context.Canceled", err)
		}
		assertNoOutput(t, dst)
	})
}

func TestFetch_redactsSecrets(t *testing.T) {
	t.Parallel()
	body := tarball(t, regular("a.yaml", "a"), symlink("link", "/etc"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing.tar.gz":
			http.NotFound(w, r)
		case "/broken.tar.gz":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			_, _ = w.Write(body)
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	secrets := []string{"s3cr3t-pass", "t0k3n-value", "frag-secret"}
	creds := "alice:" + secrets[0] + "@" // fake, and built so that no scanner mistakes it for a real one

	tests := map[string]struct {
		url    string
		digest string
	}{
		"404":             {url: "http://" + creds + host + "/missing.tar.gz?token=t0k3n-value"},
		"500":             {url: "http://" + creds + host + "/broken.tar.gz?token=t0k3n-value#frag-secret"},
		"digest mismatch": {url: "http://" + host + "/a.tar.gz?X-Amz-Signature=t0k3n-value", digest: sha(nil)},
		"unsafe archive":  {url: "http://" + creds + host + "/a.tar.gz?token=t0k3n-value"},
		"refused":         {url: "http://" + creds + "127.0.0.1:1/a.tar.gz?token=t0k3n-value"},
		"bad port":        {url: "http://" + creds + host + ":x/a.tar.gz?token=t0k3n-value"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if tc.digest == "" {
				tc.digest = sha(body)
			}
			_, err := Fetch(t.Context(), Artifact{URL: tc.url, Digest: tc.digest}, filepath.Join(t.TempDir(), "tree"), WithRetries(0))
			if err == nil {
				t.Fatal("Fetch() = nil error, want one")
			}
			t.Logf("error: %v", err)
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("Fetch() error = %q, leaks %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "alice") {
				t.Errorf("Fetch() error = %q, leaks the user name", err)
			}
		})
	}

	t.Run("source", func(t *testing.T) {
		t.Parallel()
		good := tarball(t, regular("a.yaml", "a"))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(good) }))
		t.Cleanup(srv.Close)
		u := strings.Replace(srv.URL, "http://", "http://"+creds, 1) + "/a.tar.gz?token=t0k3n-value"
		tree, err := Fetch(t.Context(), Artifact{URL: u, Digest: sha(good)}, filepath.Join(t.TempDir(), "tree"), WithRetries(0))
		if err != nil {
			t.Fatalf("Fetch() = %v", err)
		}
		if want := srv.URL + "/a.tar.gz"; tree.Source != want {
			t.Errorf("Fetch() Source = %q, want %q", tree.Source, want)
		}
	})
}

func TestFetch_invalidInput(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		url     string
		opts    []Option
		wantErr string
	}{
		"no URL":            {url: "", wantErr: "fetching artifact: missing URL"},
		"file scheme":       {url: "file:///etc/passwd", wantErr: `unsupported URL scheme "file"`},
		"no host":           {url: "http:///a.tar.gz", wantErr: "URL has no host"},
		"bad max size":      {url: "http://127.0.0.1:1/a.tar.gz", opts: []Option{WithMaxSize(0)}, wantErr: "max size must be positive, got 0"},
		"bad download size": {url: "http://127.0.0.1:1/a.tar.gz", opts: []Option{WithMaxDownloadSize(-1)}, wantErr: "max download size must be positive, got -1"},
		"bad max files":     {url: "http://127.0.0.1:1/a.tar.gz", opts: []Option{WithMaxFiles(0)}, wantErr: "max files must be positive, got 0"},
		"bad retries":       {url: "http://127.0.0.1:1/a.tar.gz", opts: []Option{WithRetries(-1)}, wantErr: "retries must not be negative, got -1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Fetch(t.Context(), Artifact{URL: tc.url, Digest: sha(nil)}, filepath.Join(t.TempDir(), "tree"), tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Fetch() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
