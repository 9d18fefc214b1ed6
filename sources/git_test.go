package sources_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pregate/pregate/sources"
	"github.com/pregate/pregate/sources/sourcestest"
)

// TestClone checks out revisions from a git server on loopback, as the
// Argo CD hook does: a branch (and the same branch once it has moved), a
// tag, the commit an older sync names by SHA (not a branch tip any more),
// the default branch; and fails, saying why and never showing a password,
// for a revision or repository that is not there and for credentials
// missing or refused.
func TestClone(t *testing.T) {
	t.Parallel()
	srv := sourcestest.NewGitServer(t, sourcestest.WithGitBasicAuth("argocd", "s3cret-token"))
	first := srv.Commit("apps", map[string]string{"deploy/app.yaml": "revision: 1\n", "README.md": "apps\n"})
	srv.Tag("apps", "v1")
	second := srv.Commit("apps", map[string]string{"deploy/app.yaml": "revision: 2\n"})
	auth := sources.GitAuth{Username: "argocd", Password: "s3cret-token"}
	url := srv.URL("apps")

	t.Run("revisions", func(t *testing.T) { checkRevisions(t, url, auth, first, second) })

	// The branch moves again: the same revision name gives the new commit.
	third := srv.Commit("apps", map[string]string{"deploy/app.yaml": "revision: 3\n"})
	tree, err := sources.Clone(t.Context(), sources.Git{URL: url, Revision: "main", Auth: auth}, filepath.Join(t.TempDir(), "tree"))
	if err != nil || tree.Revision != "main@sha1:"+third {
		t.Errorf("after the branch moved: %v, %v; want main@sha1:%s", tree, err, third)
	}

	for name, tc := range map[string]struct {
		g    sources.Git
		want string
	}{
		"no credentials":    {sources.Git{URL: url, Revision: "main"}, "the server asks for credentials"},
		"wrong password":    {sources.Git{URL: url, Revision: "main", Auth: sources.GitAuth{Username: "argocd", Password: "wrong-password"}}, "refused"},
		"password in URL":   {sources.Git{URL: strings.Replace(url, "http://", "http://argocd:wrong-password@", 1), Revision: "main"}, "refused"},
		"missing branch":    {sources.Git{URL: url, Revision: "release-9", Auth: auth}, `no branch or tag "release-9"`},
		"missing commit":    {sources.Git{URL: url, Revision: strings.Repeat("0", 40), Auth: auth}, "no commit 0000000000"},
		"missing repo":      {sources.Git{URL: srv.URL("nothing"), Revision: "main", Auth: auth}, "nothing.git"},
		"ssh without hosts": {sources.Git{URL: "ssh://git@127.0.0.1:1/apps.git", Auth: sources.GitAuth{SSHKey: []byte("key")}}, "needs known_hosts"},
		"ssh without key":   {sources.Git{URL: "git@127.0.0.1:apps.git"}, "needs a private key"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := sources.Clone(t.Context(), tc.g, filepath.Join(t.TempDir(), "tree"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows a password: %v", err)
			}
		})
	}
}

// checkRevisions clones each kind of revision of the repository at url,
// whose main branch has the commits first (tagged v1) and second.
func checkRevisions(t *testing.T, url string, auth sources.GitAuth, first, second string) {
	for name, tc := range map[string]struct {
		revision, want, content string
	}{
		"branch":         {"main", "main@sha1:" + second, "revision: 2\n"},
		"refs/heads":     {"refs/heads/main", "main@sha1:" + second, "revision: 2\n"},
		"tag":            {"v1", "v1@sha1:" + first, "revision: 1\n"},
		"moved-from SHA": {first, "sha1:" + first, "revision: 1\n"},
		"tip SHA":        {second, "sha1:" + second, "revision: 2\n"},
		"default branch": {"", "main@sha1:" + second, "revision: 2\n"},
		"HEAD":           {"HEAD", "main@sha1:" + second, "revision: 2\n"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dst := filepath.Join(t.TempDir(), "tree")
			tree, err := sources.Clone(t.Context(), sources.Git{URL: url, Revision: tc.revision, Auth: auth}, dst)
			if err != nil {
				t.Fatal(err)
			}
			if tree.Revision != tc.want || tree.Source != url {
				t.Errorf("revision %q from %q, want %q from %q", tree.Revision, tree.Source, tc.want, url)
			}
			b, err := os.ReadFile(filepath.Join(tree.Root, "deploy", "app.yaml"))
			if err != nil || string(b) != tc.content {
				t.Errorf("deploy/app.yaml = %q, %v; want %q", b, err, tc.content)
			}
			if _, err := os.Stat(filepath.Join(tree.Root, ".git")); !os.IsNotExist(err) {
				t.Errorf(".git in the tree: %v", err)
			}
		})
	}

}

// TestClone_ssh fetches over SSH from the loopback git server with a
// private key and known_hosts, as from a Flux or Argo CD Secret, and
// refuses a server whose host key known_hosts does not hold, and a key
// the server does not authorize.
func TestClone_ssh(t *testing.T) {
	t.Parallel()
	srv := sourcestest.NewGitServer(t)
	sha := srv.Commit("apps", map[string]string{"deploy/app.yaml": "revision: 1\n"})
	key, keyPEM := sshKey(t)
	addr, hostKey := srv.ServeSSH(key)
	url := "ssh://git@" + addr + "/apps.git"
	hosts := func(k ssh.PublicKey) []byte {
		return []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, k) + "\n")
	}

	tree, err := sources.Clone(t.Context(), sources.Git{URL: url, Revision: sha,
		Auth: sources.GitAuth{SSHKey: keyPEM, KnownHosts: hosts(hostKey)}}, filepath.Join(t.TempDir(), "tree"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(tree.Root, "deploy", "app.yaml")); err != nil || string(b) != "revision: 1\n" || tree.Revision != "sha1:"+sha {
		t.Errorf("revision %s, deploy/app.yaml %q, %v", tree.Revision, b, err)
	}

	otherHost, _ := sshKey(t)
	_, otherPEM := sshKey(t)
	for name, tc := range map[string]struct {
		auth sources.GitAuth
		want string
	}{
		"unknown host key":   {sources.GitAuth{SSHKey: keyPEM, KnownHosts: hosts(otherHost)}, "key mismatch"},
		"key not authorized": {sources.GitAuth{SSHKey: otherPEM, KnownHosts: hosts(hostKey)}, "unable to authenticate"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := sources.Clone(t.Context(), sources.Git{URL: url, Revision: "main", Auth: tc.auth}, filepath.Join(t.TempDir(), "tree"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// sshKey is a new ed25519 key pair: its public key, and its private key
// in OpenSSH PEM, as an ssh Secret holds it.
func sshKey(t *testing.T) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(block)
}
