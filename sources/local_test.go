package sources

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	gogitignore "github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"
)

// writeFiles creates files under root; a name ending in "/" is a directory, a value starting with
// "->" a symlink to the rest.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o750); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// commit creates a git repository in dir (go-git names its branch "master"), commits every file
// in it and returns the commit hash.
func commit(t *testing.T, dir string) (*git.Repository, plumbing.Hash) {
	t.Helper()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("initial", &git.CommitOptions{
		Author: &object.Signature{Name: "test", Email: "test@example.com", When: time.Unix(1700000000, 0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return repo, h
}

func TestLocal(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "src")
	writeFiles(t, src, map[string]string{
		"kustomization.yaml":        "resources: [apps]\n",
		"apps/deploy.yaml":          "kind: Deployment\n",
		"apps/empty/":               "",
		".gitignore":                "*.tmp\n",
		".github/workflows/ci.yaml": "on: push\n",
		"logo.png":                  "png",
		"apps/link-up":              "->../kustomization.yaml",
		"link-in":                   "->apps/deploy.yaml",
		"link-dir":                  "->apps",
		"link-out":                  "->../../etc/passwd",
		"link-abs":                  "->/etc/passwd",
	})
	if err := os.WriteFile(filepath.Join(src, "script.sh"), []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, h := commit(t, src)
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })

	dst := filepath.Join(t.TempDir(), "tree")
	tree, err := Local(t.Context(), src, dst)
	if err != nil {
		t.Fatalf("Local() = %v", err)
	}
	want := &Tree{
		Root:     dst,
		Revision: "master@sha1:" + h.String(),
		Source:   src,
		Skipped: []Skipped{
			{Path: "apps/link-up", Reason: `symlink to "../kustomization.yaml": symlinks are dropped, as Flux drops them`},
			{Path: "link-abs", Reason: `symlink to "/etc/passwd" points outside the tree: not followed`},
			{Path: "link-dir", Reason: `symlink to "apps": symlinks are dropped, as Flux drops them`},
			{Path: "link-in", Reason: `symlink to "apps/deploy.yaml": symlinks are dropped, as Flux drops them`},
			{Path: "link-out", Reason: `symlink to "../../etc/passwd" points outside the tree: not followed`},
			{Path: "sock", Reason: "socket: only regular files and directories are copied, as Flux does"},
		},
	}
	if diff := cmp.Diff(want, tree); diff != "" {
		t.Errorf("Local() tree mismatch (-want +got):\n%s", diff)
	}
	// No .sourceignore: source-controller's default exclusions apply (.github/, *.png).
	wantFiles := map[string]string{
		"kustomization.yaml": "resources: [apps]\n",
		"apps/":              "",
		"apps/deploy.yaml":   "kind: Deployment\n",
		"apps/empty/":        "",
		"script.sh":          "#!/bin/sh\n",
	}
	if diff := cmp.Diff(wantFiles, readTree(t, tree.Root)); diff != "" {
		t.Errorf("copied files mismatch (-want +got):\n%s", diff)
	}
	for name, want := range map[string]os.FileMode{"script.sh": 0o700, "kustomization.yaml": 0o600, "apps": 0o750 | os.ModeDir} {
		fi, err := os.Stat(filepath.Join(tree.Root, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() &^ 0o022; got != want&^0o022 { // whatever the umask
			t.Errorf("mode of %s = %v, want %v", name, got, want)
		}
	}
}

func TestLocal_sourceignore(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		".sourceignore":      "# comment\nsecret/\n/*.txt\n!keep.txt\n",
		"keep.txt":           "kept",
		"drop.txt":           "dropped",
		"logo.png":           "png",
		"secret/key.yaml":    "key",
		"sub/.sourceignore":  "*.tmp\n",
		"sub/a.tmp":          "tmp",
		"sub/a.yaml":         "a",
		"sub/nested.txt":     "anchored patterns are relative to their .sourceignore",
		"other/b.tmp":        "not ignored outside sub",
		".git/config":        "not a repository, but still excluded",
		"apps/.gitmodules":   "excluded at any depth",
		"apps/deploy.yaml":   "d",
		"apps/.gitattribute": "not a VCS file",
	})
	tree, err := Local(t.Context(), src, filepath.Join(t.TempDir(), "tree"), WithRevision(""))
	if err != nil {
		t.Fatalf("Local() = %v", err)
	}
	want := map[string]string{
		".sourceignore":      "# comment\nsecret/\n/*.txt\n!keep.txt\n",
		"keep.txt":           "kept",
		"logo.png":           "png",
		"sub/":               "",
		"sub/.sourceignore":  "*.tmp\n",
		"sub/a.yaml":         "a",
		"sub/nested.txt":     "anchored patterns are relative to their .sourceignore",
		"other/":             "",
		"other/b.tmp":        "not ignored outside sub",
		"apps/":              "",
		"apps/deploy.yaml":   "d",
		"apps/.gitattribute": "not a VCS file",
	}
	if diff := cmp.Diff(want, readTree(t, tree.Root)); diff != "" {
		t.Errorf("copied files mismatch (-want +got):\n%s", diff)
	}
	if len(tree.Skipped) != 0 {
		t.Errorf("Local() Skipped = %v, want none", tree.Skipped)
	}
}

func TestLocal_gitignore(t *testing.T) {
	t.Parallel()
	top := t.TempDir()
	writeFiles(t, top, map[string]string{
		".gitignore":        "bin/\n*.log\n",
		"deploy/app.yaml":   "a",
		"deploy/.gitignore": "local.yaml\n",
		"deploy/local.yaml": "ignored by the nested .gitignore",
		"deploy/debug.log":  "ignored by the top .gitignore",
		"deploy/bin/tool":   "ignored: bin/ matches at any depth",
	})
	commit(t, top)
	writeFiles(t, top, map[string]string{"deploy/untracked.yml": "untracked but not ignored: copied"})
	// Copy a subdirectory: the work tree's .gitignore files still apply.
	tree, err := Local(t.Context(), filepath.Join(top, "deploy"), filepath.Join(t.TempDir(), "tree"))
	if err != nil {
		t.Fatalf("Local() = %v", err)
	}
	want := map[string]string{
		"app.yaml":      "a",
		"untracked.yml": "untracked but not ignored: copied",
	}
	if diff := cmp.Diff(want, readTree(t, tree.Root)); diff != "" {
		t.Errorf("copied files mismatch (-want +got):\n%s", diff)
	}
}

func TestLocal_gitignoreAncestors(t *testing.T) {
	t.Parallel()
	top := t.TempDir()
	writeFiles(t, top, map[string]string{
		".gitignore":                  "/clusters/prod/secret.yaml\n*.bak\nbuild/\n",
		"clusters/.gitignore":         "prod/*.dec.yaml\n",
		"clusters/prod/app.yaml":      "a",
		"clusters/prod/secret.yaml":   "ignored by an anchored pattern of the top .gitignore",
		"clusters/prod/db.dec.yaml":   "ignored by the parent's .gitignore",
		"clusters/prod/old.bak":       "ignored by the top .gitignore",
		"clusters/prod/.gitignore":    "!keep.bak\n",
		"clusters/prod/keep.bak":      "brought back by its own .gitignore",
		"clusters/prod/base/x.bak":    "ignored by the top .gitignore",
		"clusters/staging/.gitignore": "*.yaml\n",
		"clusters/staging/app.yaml":   "ignored by its own .gitignore, which does not apply to prod",
		"build/out/.gitignore":        "!kept.yaml\n",
		"build/out/kept.yaml":         "in a directory the top .gitignore excludes",
	})
	commit(t, top)
	tests := map[string]map[string]string{
		"clusters/prod": {
			"app.yaml": "a",
			"keep.bak": "brought back by its own .gitignore",
			"base/":    "",
		},
		// git reads no .gitignore in an excluded directory, so nothing brings kept.yaml back.
		"build/out": {},
	}
	for dir, want := range tests {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			tree, err := Local(t.Context(), filepath.Join(top, filepath.FromSlash(dir)), filepath.Join(t.TempDir(), "tree"))
			if err != nil {
				t.Fatalf("Local() = %v", err)
			}
			if diff := cmp.Diff(want, readTree(t, tree.Root)); diff != "" {
				t.Errorf("copied files mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGitIgnoreFilter_subdirectory: for any directory of a work tree, the filter reading only the
// .gitignore files that can match below it agrees with one built from every .gitignore file.
func TestGitIgnoreFilter_subdirectory(t *testing.T) {
	t.Parallel()
	top := t.TempDir()
	writeFiles(t, top, map[string]string{
		".gitignore":             "*.log\n/a/b/c.yaml\nignored/\n!a/keep.log\n",
		".git/info/exclude":      "*.exc\n",
		"a/.gitignore":           "b/*.tmp\n!*.keep.log\n",
		"a/b/c.yaml":             "",
		"a/b/d.tmp":              "",
		"a/b/e.log":              "",
		"a/b/f.keep.log":         "",
		"a/b/g.exc":              "",
		"a/b/.gitignore":         "/h.yaml\n",
		"a/b/h.yaml":             "",
		"a/b/i/h.yaml":           "",
		"a/keep.log":             "",
		"a/ignored/x.yaml":       "",
		"a/ignored/.gitignore":   "!*.log\n",
		"a/ignored/y.log":        "",
		"a/ignored/z/.gitignore": "!*.yaml\n",
		"a/ignored/z/w.yaml":     "",
		"sib/.gitignore":         "*.yaml\n",
		"sib/s.yaml":             "",
	})
	repo, err := git.PlainInit(top, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	all, err := gogitignore.ReadPatterns(wt.Filesystem, nil)
	if err != nil {
		t.Fatal(err)
	}
	everything := gogitignore.NewMatcher(all)
	err = filepath.WalkDir(top, func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		ignored, err := gitIgnoreFilter(wt, dir)
		if err != nil {
			return err
		}
		return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || p == dir {
				return err
			}
			rel, _ := filepath.Rel(top, p)
			want := everything.Match(strings.Split(filepath.ToSlash(rel), "/"), d.IsDir())
			if got := ignored(p, d.IsDir()); got != want {
				dirRel, _ := filepath.Rel(top, dir)
				t.Errorf("copying %s: %s ignored = %v, want %v", dirRel, rel, got, want)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocal_revision(t *testing.T) {
	t.Parallel()
	repoWith := func(t *testing.T) (string, *git.Repository, plumbing.Hash) {
		src := t.TempDir()
		writeFiles(t, src, map[string]string{"apps/deploy.yaml": "kind: Deployment\n"})
		repo, h := commit(t, src)
		return src, repo, h
	}
	tests := map[string]struct {
		setup func(t *testing.T) (dir, want string)
		opts  []Option
	}{
		"branch": {setup: func(t *testing.T) (string, string) {
			src, _, h := repoWith(t)
			return src, "master@sha1:" + h.String()
		}},
		"subdirectory of a work tree": {setup: func(t *testing.T) (string, string) {
			src, _, h := repoWith(t)
			return filepath.Join(src, "apps"), "master@sha1:" + h.String()
		}},
		"detached HEAD": {setup: func(t *testing.T) (string, string) {
			src, repo, h := repoWith(t)
			wt, err := repo.Worktree()
			if err != nil {
				t.Fatal(err)
			}
			if err := wt.Checkout(&git.CheckoutOptions{Hash: h}); err != nil {
				t.Fatal(err)
			}
			return src, "sha1:" + h.String()
		}},
		"overridden": {
			setup: func(t *testing.T) (string, string) {
				src, _, _ := repoWith(t)
				return src, "main@sha1:feedbeef"
			},
			opts: []Option{WithRevision("main@sha1:feedbeef")},
		},
		"no commit yet": {setup: func(t *testing.T) (string, string) {
			src := t.TempDir()
			if _, err := git.PlainInit(src, false); err != nil {
				t.Fatal(err)
			}
			return src, ""
		}},
		"not a repository": {setup: func(t *testing.T) (string, string) {
			src := t.TempDir()
			writeFiles(t, src, map[string]string{"a.yaml": "a"})
			return src, ""
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, want := tc.setup(t)
			tree, err := Local(t.Context(), dir, filepath.Join(t.TempDir(), "tree"), tc.opts...)
			if err != nil {
				t.Fatalf("Local() = %v", err)
			}
			if tree.Revision != want {
				t.Errorf("Local() Revision = %q, want %q", tree.Revision, want)
			}
		})
	}
}

func TestLocal_errors(t *testing.T) {
	t.Parallel()
	files := map[string]string{"a.yaml": "aaaa", "b.yaml": "bbbb", "c/d.yaml": "dddd"}
	tests := map[string]struct {
		dst     func(t *testing.T, src string) string // a fresh directory when nil
		opts    []Option
		wantErr []string
		wantIs  error
		ctx     func(context.Context) context.Context
	}{
		"too many entries": {
			opts:    []Option{WithMaxFiles(3)},
			wantErr: []string{`entry "c/d.yaml" exceeds the limit of 3 entries`},
		},
		"total size over the limit": {
			opts:    []Option{WithMaxSize(10)},
			wantErr: []string{`entry "c/d.yaml" takes the total size over the limit of 10 bytes`},
		},
		"destination inside the source": {
			dst:     func(_ *testing.T, src string) string { return filepath.Join(src, "out") },
			wantErr: []string{"is inside the source directory"},
		},
		"destination is the source": {
			dst:     func(_ *testing.T, src string) string { return src },
			wantErr: []string{"is inside the source directory"},
		},
		"destination not empty": {
			dst: func(t *testing.T, _ string) string {
				d := t.TempDir()
				writeFiles(t, d, map[string]string{"mine": "x"})
				return d
			},
			wantErr: []string{"is not empty"},
		},
		"invalid option": {
			opts:    []Option{WithMaxFiles(-1)},
			wantErr: []string{"invalid option: max files must be positive, got -1"},
		},
		"cancelled": {
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			},
			wantIs: context.Canceled,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := t.TempDir()
			writeFiles(t, src, files)
			dst := filepath.Join(t.TempDir(), "tree")
			if tc.dst != nil {
				dst = tc.dst(t, src)
			}
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			tree, err := Local(ctx, src, dst, append([]Option{WithRevision("")}, tc.opts...)...)
			if err == nil {
				t.Fatalf("Local() = %+v, want an error", tree)
			}
			t.Logf("error: %v", err)
			if !strings.HasPrefix(err.Error(), "copying directory "+src+": ") {
				t.Errorf("Local() error = %q, want it to start with %q", err, "copying directory "+src+": ")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Local() error = %q, want it to contain %q", err, want)
				}
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Local() error = %v, want errors.Is %v", err, tc.wantIs)
			}
			if tc.dst == nil {
				assertNoOutput(t, dst)
			}
		})
	}
}

func TestLocal_missingSource(t *testing.T) {
	t.Parallel()
	_, err := Local(t.Context(), filepath.Join(t.TempDir(), "nope"), filepath.Join(t.TempDir(), "tree"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Local() = %v, want os.ErrNotExist", err)
	}
}
