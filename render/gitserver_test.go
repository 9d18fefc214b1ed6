package render

import (
	"io"
	"net/http/cgi"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pregate/pregate/render/rendertest"
)

// gitServer serves git repositories over smart HTTP with git's own
// http-backend, as a self-hosted git server serves a remote kustomize base.
type gitServer struct {
	*rendertest.Server
	// dir holds the bare repositories, NAME.git.
	dir string
}

// newGitServer serves, under /NAME.git, a repository NAME for each key of
// repos, of one commit of the files given (slash paths), tagged v1.
// Without the git executable the test fails: kustomize fetches remote
// bases with it, so there is nothing to test without it.
func newGitServer(t testing.TB, repos map[string]map[string]string) *gitServer {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("the git executable is needed to fetch remote bases, as kustomize does: %v", err)
	}
	dir := t.TempDir()
	for name, files := range repos {
		work := rendertest.WriteTree(t, files)
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
	return &gitServer{Server: rendertest.NewServer(t, backend), dir: dir}
}

// fetched says whether a git client has fetched from the server.
func (s *gitServer) fetched() bool {
	for _, r := range s.Requests() {
		if strings.HasSuffix(r, "/git-upload-pack") {
			return true
		}
	}
	return false
}

func runGit(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=pregate", "GIT_AUTHOR_EMAIL=pregate@example.invalid",
		"GIT_COMMITTER_NAME=pregate", "GIT_COMMITTER_EMAIL=pregate@example.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
