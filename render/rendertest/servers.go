// Package rendertest helps test rendering remote kustomize bases without
// leaving the machine: HTTP and git servers on the loopback interface that
// record what they are asked, and revision trees written to disk.
package rendertest

import (
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Server is an HTTP server on the loopback interface that records the
// requests it sees. It is closed when the test ends.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	requests []string
}

// NewServer serves h.
func NewServer(t testing.TB, h http.Handler) *Server {
	t.Helper()
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Requests are the requests the server has seen, as "METHOD URI".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// NewFileServer serves files by URL path ("/deploy.yaml"); other paths
// are not found.
func NewFileServer(t testing.TB, files map[string]string) *Server {
	t.Helper()
	return NewServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		content, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, content)
	}))
}

// GitServer serves git repositories over smart HTTP with git's own
// http-backend, as a self-hosted git server serves a remote kustomize base.
type GitServer struct {
	*Server
	// Dir holds the bare repositories, NAME.git.
	Dir string
}

// NewGitServer serves, under /NAME.git, a repository NAME for each key of
// repos, of one commit of the files given (slash paths), tagged v1.
// Without the git executable the test fails: kustomize fetches remote
// bases with it, so there is nothing to test without it.
func NewGitServer(t testing.TB, repos map[string]map[string]string) *GitServer {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("the git executable is needed to fetch remote bases, as kustomize does: %v", err)
	}
	dir := t.TempDir()
	for name, files := range repos {
		work := WriteTree(t, files)
		runGit(t, work, "init", "--quiet", "--initial-branch=main")
		runGit(t, work, "add", ".")
		runGit(t, work, "commit", "--quiet", "-m", "base")
		runGit(t, work, "tag", "v1")
		runGit(t, dir, "clone", "--quiet", "--bare", work, name+".git")
	}
	backend := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"},
		// kustomize GETs a git URL as a file first, which http-backend
		// refuses, saying so on its stderr.
		Stderr: io.Discard,
	}
	return &GitServer{Server: NewServer(t, backend), Dir: dir}
}

// Fetched says whether a git client has fetched from the server.
func (s *GitServer) Fetched() bool {
	for _, r := range s.Requests() {
		if strings.HasSuffix(r, "/git-upload-pack") {
			return true
		}
	}
	return false
}

func runGit(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=pregate", "GIT_AUTHOR_EMAIL=pregate@example.invalid",
		"GIT_COMMITTER_NAME=pregate", "GIT_COMMITTER_EMAIL=pregate@example.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ClosedAddress returns a loopback address nothing listens on.
func ClosedAddress(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// WriteTree writes files (slash paths relative to the root) into a fresh
// directory and returns it.
func WriteTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	WriteFiles(t, root, files)
	return root
}

// WriteFiles writes files (slash paths relative to root) under root.
func WriteFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
