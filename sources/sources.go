// Package sources turns a reference to a GitOps source revision into a file tree on local disk and
// a revision id. It fetches Flux artifacts (digest-checked download, safe extraction with size and
// entry limits) and copies local directories the way source-controller archives a checkout. It
// never renders or verifies anything.
//
// Symlinks never reach the tree, as in Flux: source-controller does not archive them and drops
// them on extraction. They are recorded in Tree.Skipped instead. A symlink in an artifact whose
// target escapes the root is an error, because no artifact produced by source-controller contains
// one.
package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Tree is a revision's files on local disk.
type Tree struct {
	// Root is the absolute directory holding the files; the caller owns and removes it.
	Root string
	// Revision is the revision in Flux form: "main@sha1:<hex>", "sha1:<hex>",
	// "latest@sha256:<hex>"; "" when unknown.
	Revision string
	// Source is a human name of where the files came from: a directory path or the artifact URL
	// (without userinfo, query or fragment).
	Source string
	// Skipped lists the entries dropped the way Flux drops them (symlinks and other non-regular
	// files), sorted by path.
	Skipped []Skipped
}

// Skipped is an entry that was left out of a Tree.
type Skipped struct {
	// Path is slash-separated and relative to Tree.Root.
	Path string
	// Reason says why the entry was left out.
	Reason string
}

// isLocalName reports whether the slash-separated name stays within the root once cleaned.
func isLocalName(name string) bool {
	if name == "" || path.IsAbs(name) || strings.Contains(name, `\`) {
		return false
	}
	clean := path.Clean(name)
	return clean != ".." && !strings.HasPrefix(clean, "../")
}

// linkEscapes reports whether the symlink at the slash-separated name, pointing at target,
// resolves outside the root. The check is lexical: symlinks are never created in a Tree, so a
// chain of links can never be followed.
func linkEscapes(name, target string) bool {
	if path.IsAbs(target) || strings.HasPrefix(target, `\`) {
		return true
	}
	return !isLocalName(path.Join(path.Dir(name), target))
}

func skippedLink(name, target string) Skipped {
	return Skipped{
		Path:   path.Clean(name),
		Reason: fmt.Sprintf("symlink to %q: symlinks are dropped, as Flux drops them", target),
	}
}

func sortSkipped(s []Skipped) {
	slices.SortFunc(s, func(a, b Skipped) int { return strings.Compare(a.Path, b.Path) })
}

// destination is the directory a Tree is written to.
type destination struct {
	root    string // absolute, symlinks resolved
	created bool   // whether we made it (and so remove it on failure)
}

// prepareDestination makes dst ready to receive a tree: it must not exist, or be an empty
// directory.
func prepareDestination(dst string) (*destination, error) {
	if dst == "" {
		return nil, errors.New("destination must not be empty")
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return nil, fmt.Errorf("resolving destination %s: %w", dst, err)
	}
	d := &destination{}
	entries, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(abs, 0o750); err != nil {
			return nil, fmt.Errorf("creating destination: %w", err)
		}
		d.created = true
	case err != nil:
		return nil, fmt.Errorf("reading destination: %w", err)
	case len(entries) > 0:
		return nil, fmt.Errorf("destination %s is not empty", abs)
	}
	if d.root, err = filepath.EvalSymlinks(abs); err != nil {
		d.root = abs
		d.cleanup()
		return nil, fmt.Errorf("resolving destination %s: %w", abs, err)
	}
	return d, nil
}

// cleanup removes everything written to the destination, and the destination itself if it was
// created by prepareDestination.
func (d *destination) cleanup() {
	if d.created {
		_ = os.RemoveAll(d.root)
		return
	}
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return
	}
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(d.root, e.Name()))
	}
}

// ctxReader fails reads once ctx is done or abort returns an error, so a long copy or extraction
// stops early.
type ctxReader struct {
	ctx   context.Context
	r     io.Reader
	abort func() error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.abort != nil {
		if err := c.abort(); err != nil {
			return 0, err
		}
	}
	return c.r.Read(p)
}
