package render

import (
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// recordingServer is an HTTP server on the loopback interface that records
// the requests it sees.
type recordingServer struct {
	*httptest.Server

	mu       sync.Mutex
	requests []string
}

func newRecordingServer(t *testing.T, h http.Handler) *recordingServer {
	t.Helper()
	s := &recordingServer{}
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
func (s *recordingServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// newFileServer serves files, by URL path ("/deploy.yaml").
func newFileServer(t *testing.T, files map[string]string) *recordingServer {
	t.Helper()
	return newRecordingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		content, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, content)
	}))
}

// gitServer serves git repositories over smart HTTP with git's own
// http-backend, as a self-hosted git server serves a remote kustomize
// base.
type gitServer struct {
	*recordingServer
	// dir holds the bare repositories, NAME.git.
	dir string
}

// newGitServer serves, under /NAME.git, a repository NAME for each key of
// repos, of one commit of the files given (slash paths), tagged v1.
// Without the git executable the test fails: kustomize fetches remote
// bases with it, so there is nothing to test without it.
func newGitServer(t *testing.T, repos map[string]map[string]string) *gitServer {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("the git executable is needed to fetch remote bases, as kustomize does: %v", err)
	}
	dir := t.TempDir()
	for name, files := range repos {
		work := writeTree(t, files)
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
	return &gitServer{recordingServer: newRecordingServer(t, backend), dir: dir}
}

// fetched says whether a git client fetched from the server.
func (s *gitServer) fetched() bool {
	for _, r := range s.Requests() {
		if strings.HasSuffix(r, "/git-upload-pack") {
			return true
		}
	}
	return false
}

func runGit(t *testing.T, dir string, args ...string) {
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

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
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
