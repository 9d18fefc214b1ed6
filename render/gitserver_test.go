package render

import (
	"strings"
	"testing"

	"github.com/pregate/pregate/sources/sourcestest"
)

// gitServer serves git repositories over smart HTTP with git's own
// http-backend, as a self-hosted git server serves a remote kustomize base.
type gitServer struct {
	*sourcestest.GitServer
	// URL is where the repositories are, as NAME.git; dir holds them.
	URL string
	dir string
}

// newGitServer serves, under /NAME.git, a repository NAME for each key of
// repos, of one commit of the files given (slash paths), tagged v1.
// Without the git executable the test fails: kustomize fetches remote
// bases with it, so there is nothing to test without it.
func newGitServer(t testing.TB, repos map[string]map[string]string) *gitServer {
	t.Helper()
	s := sourcestest.NewGitServer(t)
	for name, files := range repos {
		s.Commit(name, files)
		s.Tag(name, "v1")
	}
	return &gitServer{GitServer: s, URL: s.BaseURL(), dir: s.Dir()}
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
