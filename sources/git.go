package sources

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Git is a git repository at one revision, as Argo CD syncs it or a Flux
// GitRepository checks it out.
type Git struct {
	// URL is the repository: https://…, http://…, ssh://… or scp-like
	// user@host:path.
	URL string
	// Revision is a branch, a tag, or a full commit SHA (what Argo CD
	// passes as $ARGOCD_APP_REVISION); empty or HEAD is the remote's
	// default branch.
	Revision string
	// Auth are the credentials, if the repository needs any.
	Auth GitAuth
}

// GitAuth are credentials for a git repository, as a Flux GitRepository
// Secret or an Argo CD repository Secret holds them.
type GitAuth struct {
	// Username and Password authenticate over HTTPS (a token is a
	// password; the username then defaults to "git").
	Username, Password string
	// SSHKey is a PEM private key for SSH, SSHKeyPassword its passphrase,
	// and KnownHosts the known_hosts lines the server's key must match:
	// without them an SSH host is not trusted.
	SSHKey         []byte
	SSHKeyPassword string
	KnownHosts     []byte
}

// fullSHA is a commit SHA-1 written out.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Clone checks out g at its revision into dst, fetching that revision
// only (a shallow fetch of one branch, tag or commit; a commit the server
// will not send by itself is looked for among its branches, then in the
// whole history), and copies the files as Local does (no .git, symlinks
// recorded in Tree.Skipped, .sourceignore honoured, the size limits of
// opts). Tree.Revision is in Flux's form: "<branch or tag>@sha1:<hex>",
// or "sha1:<hex>" for a commit given by its SHA. Credentials never appear
// in errors or in Tree.Source.
func Clone(ctx context.Context, g Git, dst string, opts ...Option) (*Tree, error) {
	shown := safeGitURL(g.URL)
	tree, err := cloneGit(ctx, g, dst, opts)
	if err != nil {
		if u, perr := url.Parse(g.URL); perr == nil {
			err = redact(err, g.URL, u)
		}
		return nil, fmt.Errorf("git %s at %s: %w", shown, cmp.Or(g.Revision, "HEAD"), err)
	}
	tree.Source = shown
	return tree, nil
}

func cloneGit(ctx context.Context, g Git, dst string, opts []Option) (*Tree, error) {
	auth, err := g.Auth.method(g.URL)
	if err != nil {
		return nil, err
	}
	checkout, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dst)), ".git-checkout-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(checkout)

	rev := strings.TrimPrefix(g.Revision, "refs/heads/")
	var (
		repo     *git.Repository
		name     string // the branch or tag the revision is shown with
		fetchErr error
	)
	switch {
	case fullSHA.MatchString(rev):
		repo, fetchErr = fetchCommit(ctx, g.URL, auth, plumbing.NewHash(rev), checkout)
	case rev == "" || rev == "HEAD":
		repo, fetchErr = cloneRef(ctx, g.URL, auth, "", checkout)
		if fetchErr == nil {
			if head, err := repo.Head(); err == nil {
				name = head.Name().Short()
			}
		}
	default:
		name = strings.TrimPrefix(rev, "refs/tags/")
		ref := plumbing.NewBranchReferenceName(rev)
		if strings.HasPrefix(rev, "refs/tags/") {
			ref = plumbing.ReferenceName(rev)
		}
		repo, fetchErr = cloneRef(ctx, g.URL, auth, ref, checkout)
		if isMissingRef(fetchErr) && !strings.HasPrefix(rev, "refs/") {
			repo, fetchErr = cloneRef(ctx, g.URL, auth, plumbing.NewTagReferenceName(rev), checkout)
		}
		if isMissingRef(fetchErr) {
			return nil, fmt.Errorf("no branch or tag %q", rev)
		}
	}
	if fetchErr != nil {
		return nil, explainGitError(fetchErr)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, fmt.Errorf("reading the checked-out revision: %w", err)
	}
	revision := "sha1:" + head.Hash().String()
	if name != "" {
		revision = name + "@" + revision
	}
	return copyLocal(ctx, checkout, dst, append(opts, WithRevision(revision)))
}

// cloneRef clones the one branch or tag ref (the default branch when
// empty), one commit deep, checking it out into dir.
func cloneRef(ctx context.Context, url string, auth transport.AuthMethod, ref plumbing.ReferenceName, dir string) (*git.Repository, error) {
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	return git.CloneContext(ctx, memory.NewStorage(), osfs.New(dir), &git.CloneOptions{
		URL: url, Auth: auth, ReferenceName: ref, SingleBranch: true, Depth: 1, Tags: git.NoTags,
	})
}

// fetchCommit fetches the commit hash and checks it out into dir: by its
// SHA, one commit deep, where the server allows that; else among the
// tips of its branches and tags; else in the whole history.
func fetchCommit(ctx context.Context, url string, auth transport.AuthMethod, hash plumbing.Hash, dir string) (*git.Repository, error) {
	attempts := []struct {
		specs []config.RefSpec
		depth int
	}{
		{[]config.RefSpec{config.RefSpec("+" + hash.String() + ":refs/pregate/revision")}, 1},
		{[]config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}, 1},
		{[]config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}, 0},
	}
	var last error
	for _, a := range attempts {
		repo, err := git.Init(memory.NewStorage(), osfs.New(dir))
		if err != nil {
			return nil, err
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{url}}); err != nil {
			return nil, err
		}
		err = repo.FetchContext(ctx, &git.FetchOptions{Auth: auth, RefSpecs: a.specs, Depth: a.depth, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			if authFailure(err) || ctx.Err() != nil {
				return nil, err
			}
			last = err
			continue
		}
		if _, err := repo.CommitObject(hash); err != nil {
			last = fmt.Errorf("no commit %s", hash)
			continue
		}
		wt, err := repo.Worktree()
		if err != nil {
			return nil, err
		}
		if err := wt.Checkout(&git.CheckoutOptions{Hash: hash, Force: true}); err != nil {
			return nil, fmt.Errorf("checking out %s: %w", hash, err)
		}
		return repo, nil
	}
	return nil, last
}

// emptyDir makes dir an empty directory.
func emptyDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o700)
}

func isMissingRef(err error) bool {
	var noMatch git.NoMatchingRefSpecError
	return err != nil && (errors.Is(err, plumbing.ErrReferenceNotFound) || errors.As(err, &noMatch) ||
		strings.Contains(err.Error(), "couldn't find remote ref"))
}

func authFailure(err error) bool {
	return errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed)
}

// explainGitError says what a failed fetch means for the user.
func explainGitError(err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fmt.Errorf("the server asks for credentials, and those given (if any) were refused: %w", err)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("the credentials given were refused: %w", err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("no such repository (or no access to it): %w", err)
	}
	return err
}

// method is the go-git authentication for the repository url.
func (a GitAuth) method(rawURL string) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, fmt.Errorf("repository URL: %w", err)
	}
	switch ep.Protocol {
	case "ssh":
		if len(a.SSHKey) == 0 {
			return nil, errors.New("an ssh repository needs a private key (identity or sshPrivateKey)")
		}
		if len(a.KnownHosts) == 0 {
			return nil, errors.New("an ssh repository needs known_hosts: the server's host key is not trusted blindly")
		}
		user := cmp.Or(ep.User, "git")
		keys, err := gitssh.NewPublicKeys(user, a.SSHKey, a.SSHKeyPassword)
		if err != nil {
			return nil, fmt.Errorf("reading the ssh private key: %w", err)
		}
		callback, err := knownHostsCallback(a.KnownHosts)
		if err != nil {
			return nil, err
		}
		keys.HostKeyCallback = callback
		return keys, nil
	case "http", "https":
		if a.Username == "" && a.Password == "" {
			return nil, nil
		}
		return &githttp.BasicAuth{Username: cmp.Or(a.Username, "git"), Password: a.Password}, nil
	case "file":
		return nil, errors.New("a local repository path is not a git source: check a directory instead")
	}
	return nil, fmt.Errorf("unsupported repository URL scheme %q", ep.Protocol)
}

// knownHostsCallback checks host keys against known_hosts lines.
func knownHostsCallback(lines []byte) (ssh.HostKeyCallback, error) {
	f, err := os.CreateTemp("", "pregate-known-hosts-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(lines); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	cb, err := knownhosts.New(f.Name())
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	return cb, nil
}

// safeGitURL is a repository URL without userinfo, query or fragment.
func safeGitURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		// scp-like user@host:path: the user is not a secret, but a
		// password cannot be written there.
		return raw
	}
	return safeURL(u)
}
