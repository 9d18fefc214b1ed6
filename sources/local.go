package sources

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/sourceignore/gitignore"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	gogitignore "github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// Local copies the directory dir into dst the way source-controller archives a checkout, so the
// tree holds what Flux would apply from the same files. dst must not exist or be an empty
// directory, and must not be inside dir.
//
// Only regular files and directories are copied. Entries matching the VCS patterns (.git/,
// .gitignore, .gitmodules, .gitattributes) are excluded, and so are entries matching the
// .sourceignore files found in dir and below it; when there is no .sourceignore at all,
// source-controller's default exclusions (images, archives, CI configuration) apply instead, as
// storage.SourceIgnoreFilter does. When dir is in a git work tree, entries excluded by its
// .gitignore files (those in dir and below it, and those of the directories from the top of the
// work tree down to dir) and by .git/info/exclude are left out too, as a commit never holds them.
// Symlinks are never followed or copied: each one that the ignore rules do not exclude is recorded
// in Tree.Skipped, with a reason saying whether it points outside the tree, and so is any other
// non-regular file (socket, named pipe, device). Files are written with source-controller's modes:
// 0600, or 0700 when executable; directories 0750. WithMaxFiles and WithMaxSize apply.
//
// Tree.Revision is detected from git when dir is inside a git work tree: "<branch>@sha1:<hex>",
// or "sha1:<hex>" when HEAD is detached, for the HEAD commit (uncommitted changes are copied but
// not reflected in it); "" when dir is not in a repository or the repository has no commit yet.
// WithRevision overrides it. Tree.Source is the absolute path of dir.
//
// On error nothing is left in dst (and dst is removed if Local created it).
func Local(ctx context.Context, dir, dst string, opts ...Option) (*Tree, error) {
	tree, err := copyLocal(ctx, dir, dst, opts)
	if err != nil {
		return nil, fmt.Errorf("copying directory %s: %w", dir, err)
	}
	return tree, nil
}

func copyLocal(ctx context.Context, dir, dst string, opts []Option) (*Tree, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	src, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(src); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, errors.New("not a directory")
	}
	if dst == "" {
		return nil, errors.New("destination must not be empty")
	}
	dstAbs, err := filepath.Abs(dst)
	if err != nil {
		return nil, err
	}
	if within(src, resolveExisting(dstAbs)) {
		return nil, fmt.Errorf("destination %s is inside the source directory", dstAbs)
	}

	// The repository holding src is opened once, for its .gitignore files and, unless
	// WithRevision is given, for the revision of its HEAD.
	repo, wt, err := openWorkTree(src)
	if err != nil {
		return nil, err
	}
	rev := o.revision
	if !o.revisionSet {
		if rev, err = gitRevision(repo); err != nil {
			return nil, fmt.Errorf("detecting git revision: %w", err)
		}
	}
	gitIgnored, err := gitIgnoreFilter(wt, src)
	if err != nil {
		return nil, err
	}

	// As source-controller does: the ignore domain is the directory itself, so that anchored
	// patterns ("/deploy") are relative to it.
	domain := strings.Split(src, string(filepath.Separator))
	ps, err := sourceignore.LoadIgnorePatterns(src, domain)
	if err != nil {
		return nil, fmt.Errorf("loading %s patterns: %w", sourceignore.IgnoreFile, err)
	}

	d, err := prepareDestination(dst)
	if err != nil {
		return nil, err
	}
	ignore := sourceIgnoreFilter(ps, domain)
	if gitIgnored != nil {
		// A commit never holds what .gitignore excludes (build output, say),
		// so neither does the artifact of a GitRepository.
		sourceIgnored := ignore
		ignore = func(p string, isDir bool) bool { return sourceIgnored(p, isDir) || gitIgnored(p, isDir) }
	}
	skipped, err := copyTree(ctx, src, d.root, ignore, o)
	if err != nil {
		d.cleanup()
		return nil, err
	}
	return &Tree{Root: d.root, Revision: rev, Source: abs, Skipped: skipped}, nil
}

// sourceIgnoreFilter is fluxcd/pkg/artifact's storage.SourceIgnoreFilter, which source-controller
// uses to archive a checkout: it reports whether the absolute path p is excluded. (Importing the
// storage package would pull Kubernetes API machinery into this package.)
func sourceIgnoreFilter(ps []gitignore.Pattern, domain []string) func(p string, isDir bool) bool {
	matcher := sourceignore.NewDefaultMatcher(ps, domain)
	if len(ps) > 0 {
		ps = append(sourceignore.VCSPatterns(domain), ps...)
		matcher = sourceignore.NewMatcher(ps)
	}
	return func(p string, isDir bool) bool {
		return matcher.Match(strings.Split(p, string(filepath.Separator)), isDir)
	}
}

// copier copies the entries of a directory walk from src into dst.
type copier struct {
	ctx     context.Context
	src     string
	srcRoot *os.Root
	dstRoot *os.Root
	ignore  func(p string, isDir bool) bool
	o       *options
	entries int
	size    int64
	skipped []Skipped
}

func copyTree(ctx context.Context, src, dst string, ignore func(string, bool) bool, o *options) ([]Skipped, error) {
	srcRoot, err := os.OpenRoot(src)
	if err != nil {
		return nil, err
	}
	defer srcRoot.Close()
	dstRoot, err := os.OpenRoot(dst)
	if err != nil {
		return nil, err
	}
	defer dstRoot.Close()

	c := &copier{ctx: ctx, src: src, srcRoot: srcRoot, dstRoot: dstRoot, ignore: ignore, o: o}
	if err := filepath.WalkDir(src, c.visit); err != nil {
		return nil, err
	}
	sortSkipped(c.skipped)
	return c.skipped, nil
}

func (c *copier) visit(p string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	if p == c.src {
		return nil
	}
	if c.ignore(p, d.IsDir()) {
		// source-controller walks into excluded directories, as a negated pattern may bring
		// back an entry below them; nothing can bring back the content of .git.
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		return nil
	}
	rel, err := filepath.Rel(c.src, p)
	if err != nil {
		return err
	}
	name := filepath.ToSlash(rel)
	c.entries++
	if c.entries > c.o.maxFiles {
		return fmt.Errorf("entry %q exceeds the limit of %d entries", name, c.o.maxFiles)
	}

	switch t := d.Type(); {
	case t.IsDir():
		return c.dstRoot.MkdirAll(rel, 0o750)
	case t.IsRegular():
		return c.copyFile(rel, name)
	case t&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("reading symlink %q: %w", name, err)
		}
		if linkEscapes(name, filepath.ToSlash(target)) {
			c.skipped = append(c.skipped, Skipped{
				Path:   name,
				Reason: fmt.Sprintf("symlink to %q points outside the tree: not followed", target),
			})
		} else {
			c.skipped = append(c.skipped, skippedLink(name, target))
		}
	default:
		c.skipped = append(c.skipped, Skipped{
			Path:   name,
			Reason: fmt.Sprintf("%s: only regular files and directories are copied, as Flux does", typeName(t)),
		})
	}
	return nil
}

func (c *copier) copyFile(rel, name string) error {
	in, err := c.srcRoot.Open(rel)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("entry %q changed while being copied", name)
	}
	perm := fs.FileMode(0o600)
	if fi.Mode()&0o111 != 0 {
		perm = 0o700
	}
	if parent := filepath.Dir(rel); parent != "." {
		if err := c.dstRoot.MkdirAll(parent, 0o750); err != nil {
			return err
		}
	}
	out, err := c.dstRoot.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	remaining := c.o.maxSize - c.size
	n, err := io.Copy(out, io.LimitReader(&ctxReader{ctx: c.ctx, r: in}, remaining+1))
	c.size += n
	if closeErr := out.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("copying %q: %w", name, err)
	}
	if c.size > c.o.maxSize {
		return fmt.Errorf("entry %q takes the total size over the limit of %d bytes", name, c.o.maxSize)
	}
	return nil
}

func typeName(t fs.FileMode) string {
	switch {
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	default:
		return "irregular file"
	}
}

// WorkTree returns the top directory of the git work tree that holds dir, or "" when dir is not
// in one: the root a GitRepository source would archive.
func WorkTree(dir string) (string, error) {
	_, wt, err := openWorkTree(dir)
	if err != nil || wt == nil {
		return "", err
	}
	return wt.Filesystem.Root(), nil
}

// openWorkTree opens the git repository holding dir, found by looking for .git in dir and then in
// its parents. The repository is nil when there is none, and the work tree nil when there is none
// or the repository is bare.
func openWorkTree(dir string) (*git.Repository, *git.Worktree, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening repository at %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if errors.Is(err, git.ErrIsBareRepository) {
		return repo, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening work tree at %s: %w", dir, err)
	}
	return repo, wt, nil
}

// gitIgnoreFilter returns a filter reporting whether an absolute path under dir is excluded by
// the .gitignore files of the work tree wt, which holds dir, or nil when wt is nil.
//
// It reads the patterns go-git's gitignore.ReadPatterns reads for the whole work tree, but only
// those that can match below dir: the .gitignore (and .git/info/exclude) of each directory from
// the top of the work tree down to dir's parent, then those in dir and below it. As ReadPatterns
// does, it stops going down at a directory that the patterns of its parent exclude, and at .git.
func gitIgnoreFilter(wt *git.Worktree, dir string) (func(p string, isDir bool) bool, error) {
	if wt == nil {
		return nil, nil
	}
	top := wt.Filesystem.Root()
	rel, err := filepath.Rel(top, dir)
	if err != nil || rel != "." && !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%s is not inside the work tree %s", dir, top)
	}
	var parts []string
	if rel != "." {
		parts = strings.Split(filepath.ToSlash(rel), "/")
	}
	ps := slices.Clone(wt.Excludes)
	readBelow := true
	for i, name := range parts {
		level := readIgnoreFiles(wt, parts[:i])
		ps = append(ps, level...)
		if name == ".git" || gogitignore.NewMatcher(level).Match(parts[:i+1], true) {
			// ReadPatterns reads nothing in this directory or below it.
			readBelow = false
			break
		}
	}
	if readBelow {
		below, err := gogitignore.ReadPatterns(wt.Filesystem, parts)
		if err != nil {
			return nil, fmt.Errorf("reading .gitignore files: %w", err)
		}
		ps = append(ps, below...)
	}
	m := gogitignore.NewMatcher(ps)
	return func(p string, isDir bool) bool {
		rel, err := filepath.Rel(top, p)
		if err != nil || !filepath.IsLocal(rel) {
			return false
		}
		return m.Match(strings.Split(filepath.ToSlash(rel), "/"), isDir)
	}, nil
}

// readIgnoreFiles reads the patterns of the .git/info/exclude and .gitignore files in the
// directory path of wt, as ReadPatterns reads them in each directory: a file that cannot be read
// holds no patterns.
func readIgnoreFiles(wt *git.Worktree, path []string) []gogitignore.Pattern {
	var ps []gogitignore.Pattern
	for _, name := range []string{".git/info/exclude", ".gitignore"} {
		f, err := wt.Filesystem.Open(wt.Filesystem.Join(append(slices.Clone(path), name)...))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if s := sc.Text(); !strings.HasPrefix(s, "#") && strings.TrimSpace(s) != "" {
				ps = append(ps, gogitignore.ParsePattern(s, path))
			}
		}
		_ = f.Close()
	}
	return ps
}

// gitRevision returns the Flux revision of HEAD in repo, or "" when repo is nil or has no commit.
func gitRevision(repo *git.Repository) (string, error) {
	if repo == nil {
		return "", nil
	}
	head, err := repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading HEAD: %w", err)
	}
	rev := "sha1:" + head.Hash().String()
	if head.Name().IsBranch() {
		rev = head.Name().Short() + "@" + rev
	}
	return rev, nil
}

// resolveExisting resolves the symlinks in the longest existing prefix of the absolute path p.
func resolveExisting(p string) string {
	for q := p; ; q = filepath.Dir(q) {
		if r, err := filepath.EvalSymlinks(q); err == nil {
			rest, err := filepath.Rel(q, p)
			if err != nil {
				return p
			}
			return filepath.Join(r, rest)
		}
		if filepath.Dir(q) == q {
			return p
		}
	}
}

// within reports whether p is parent or below it.
func within(parent, p string) bool {
	rel, err := filepath.Rel(parent, p)
	return err == nil && (rel == "." || filepath.IsLocal(rel))
}
