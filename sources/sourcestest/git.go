package sourcestest

import (
	"io"
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

// GitServer serves git repositories over smart HTTP on loopback with
// git's own http-backend, as a self-hosted git server does, optionally
// behind basic authentication.
type GitServer struct {
	t    testing.TB
	srv  *httptest.Server
	dir  string // bare repositories, NAME.git
	work string // their work trees, NAME

	mu       sync.Mutex
	requests []string
}

// GitServerOption configures NewGitServer.
type GitServerOption func(*gitServerConfig)

type gitServerConfig struct{ user, pass string }

// WithGitBasicAuth makes the server demand basic authentication with user
// and pass (401 with a Basic challenge otherwise; 403 for wrong ones).
func WithGitBasicAuth(user, pass string) GitServerOption {
	return func(c *gitServerConfig) { c.user, c.pass = user, pass }
}

// NewGitServer starts a git server with no repository. The git executable
// must be installed: the test fails without it.
func NewGitServer(t testing.TB, opts ...GitServerOption) *GitServer {
	t.Helper()
	var cfg gitServerConfig
	for _, o := range opts {
		o(&cfg)
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("the git executable serves the test repositories (git http-backend): %v", err)
	}
	s := &GitServer{t: t, dir: t.TempDir(), work: t.TempDir()}
	backend := &cgi.Handler{
		Path:   git,
		Args:   []string{"http-backend"},
		Env:    []string{"GIT_PROJECT_ROOT=" + s.dir, "GIT_HTTP_EXPORT_ALL=1"},
		Stderr: io.Discard,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
		s.mu.Unlock()
		if cfg.user != "" {
			user, pass, ok := r.BasicAuth()
			if !ok {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			if user != cfg.user || pass != cfg.pass {
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the clone URL of the repository name.
func (s *GitServer) URL(name string) string { return s.srv.URL + "/" + name + ".git" }

// BaseURL is the URL the repositories are under, as NAME.git.
func (s *GitServer) BaseURL() string { return s.srv.URL }

// Dir is the directory holding the bare repositories, as NAME.git.
func (s *GitServer) Dir() string { return s.dir }

// Requests are the HTTP requests the server has seen, as "METHOD URI".
func (s *GitServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Commit commits files (slash paths to contents; an empty content
// deletes the file) to the branch main of the repository name, creating
// it, pushes it, and returns the commit's SHA.
func (s *GitServer) Commit(name string, files map[string]string) string {
	s.t.Helper()
	work := filepath.Join(s.work, name)
	if _, err := os.Stat(work); os.IsNotExist(err) {
		s.git(s.dir, "init", "--quiet", "--bare", "--initial-branch=main", name+".git")
		s.git(s.work, "clone", "--quiet", filepath.Join(s.dir, name+".git"), name)
		s.git(work, "checkout", "--quiet", "-B", "main")
	}
	for p, content := range files {
		file := filepath.Join(work, filepath.FromSlash(p))
		if content == "" {
			if err := os.Remove(file); err != nil {
				s.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	s.git(work, "add", "--all")
	s.git(work, "commit", "--quiet", "--allow-empty", "-m", "commit")
	s.git(work, "push", "--quiet", "origin", "main")
	return strings.TrimSpace(s.git(work, "rev-parse", "HEAD"))
}

// Tag tags the last commit of the repository name and pushes the tag.
func (s *GitServer) Tag(name, tag string) {
	s.t.Helper()
	work := filepath.Join(s.work, name)
	s.git(work, "tag", tag)
	s.git(work, "push", "--quiet", "origin", tag)
}

func (s *GitServer) git(dir string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command("git", args...) //nolint:noctx // a test helper's short local git commands
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=pregate", "GIT_AUTHOR_EMAIL=pregate@example.invalid",
		"GIT_COMMITTER_NAME=pregate", "GIT_COMMITTER_EMAIL=pregate@example.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
