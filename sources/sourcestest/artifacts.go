// Package sourcestest serves revisions as Flux source-controller does, for
// tests: gzipped tarballs over loopback HTTP, with the digest and revision
// a source's status carries.
package sourcestest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1" //nolint:gosec // a git-like revision id, not a security check
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"sync"
	"testing"
	"time"
)

// Artifact is a published revision, as a Flux source's status.artifact
// holds it.
type Artifact struct {
	// Path is the artifact's path on the server; URL where it is served.
	Path, URL string
	// Revision is its revision id: "main@sha1:<hex>" or
	// "latest@sha256:<hex>".
	Revision string
	// Digest is "sha256:<hex>" of the tarball.
	Digest string
	Size   int64
}

// Revision makes an artifact's revision id from its tarball.
type Revision func(tgz []byte) string

// GitRevision is a GitRepository's revision: the branch main at a commit
// (here, the SHA-1 of the tarball).
func GitRevision(tgz []byte) string {
	sum := sha1.Sum(tgz) //nolint:gosec // see the import
	return "main@sha1:" + hex.EncodeToString(sum[:])
}

// OCIRevision is an OCIRepository's revision: the tag latest at a digest.
func OCIRevision(tgz []byte) string {
	sum := sha256.Sum256(tgz)
	return "latest@sha256:" + hex.EncodeToString(sum[:])
}

// Server serves artifacts over loopback HTTP, as source-controller's
// storage server does.
type Server struct {
	srv *httptest.Server

	mu    sync.Mutex
	files map[string][]byte
}

// NewServer starts a Server, closed when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{files: map[string][]byte{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// Publish archives files (slash-separated paths to contents) as
// source-controller archives a revision and serves the tarball under dir.
func (s *Server) Publish(t testing.TB, dir string, files map[string]string, revision Revision) Artifact {
	t.Helper()
	tgz, err := Tarball(files)
	if err != nil {
		t.Fatalf("archiving the revision: %v", err)
	}
	sum := sha256.Sum256(tgz)
	p := path.Join(dir, hex.EncodeToString(sum[:])+".tar.gz")
	s.mu.Lock()
	s.files["/"+p] = tgz
	s.mu.Unlock()
	return Artifact{
		Path:     p,
		URL:      s.srv.URL + "/" + p,
		Revision: revision(tgz),
		Digest:   "sha256:" + hex.EncodeToString(sum[:]),
		Size:     int64(len(tgz)),
	}
}

// Tarball is files as a gzipped tarball: directories first, then files,
// each sorted, with a fixed modification time, so that the same files
// always make the same bytes.
func Tarball(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for name := range files {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := []byte(files[name])
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ServeBytes serves body, as it is, at /artifact.tar.gz on a loopback HTTP
// server closed when the test ends, and returns its URL: for artifacts
// Publish would not make (hostile tarballs, garbage).
func ServeBytes(t testing.TB, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/artifact.tar.gz" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/artifact.tar.gz"
}

// Entry is one entry of a tarball RawTarball writes.
type Entry struct {
	Name string
	// Type is the tar type flag; tar.TypeReg when zero.
	Type byte
	Body string
	// Link is a symlink's or hard link's target.
	Link string
}

// File is a regular file entry.
func File(name, body string) Entry { return Entry{Name: name, Body: body} }

// Dir is a directory entry.
func Dir(name string) Entry { return Entry{Name: name, Type: tar.TypeDir} }

// Symlink is a symbolic link entry to target.
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Link: target}
}

// HardLink is a hard link entry to target.
func HardLink(name, target string) Entry { return Entry{Name: name, Type: tar.TypeLink, Link: target} }

// Special is an entry of another type (a device, a named pipe, a PAX
// header).
func Special(name string, typeflag byte) Entry { return Entry{Name: name, Type: typeflag} }

// RawTarball writes entries as a gzipped tar stream exactly as given:
// names, types and link targets are not checked, so that tests can serve
// the hostile archives an extractor must refuse (paths escaping the root,
// links out of it, devices). A global PAX header (tar.TypeXGlobalHeader)
// carries one record.
func RawTarball(entries ...Entry) ([]byte, error) {
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Link, Mode: 0o600}
		switch h.Typeflag {
		case 0:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Body))
		case tar.TypeReg:
			h.Size = int64(len(e.Body))
		case tar.TypeDir:
			h.Mode = 0o750
		case tar.TypeXGlobalHeader:
			h = &tar.Header{Typeflag: h.Typeflag, PAXRecords: map[string]string{"comment": "0123abcd"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing header %q: %w", e.Name, err)
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			return nil, fmt.Errorf("writing body %q: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
