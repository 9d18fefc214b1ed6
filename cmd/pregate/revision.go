package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/sources"
)

// renderFlags are the flags of the commands that render a local revision.
type renderFlags struct {
	root              string
	sourceRef         string
	kustomizationFile string
	substituteFrom    []string
	allowGaps         []string
	strict            bool // deprecated: gaps block unless allowed
}

func (f *renderFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.root, "root", "", "the source's root directory, which Flux Kustomization paths are relative to (default: the git work tree holding PATH; outside one, the current directory if PATH is inside it, else PATH)")
	fs.StringVar(&f.sourceRef, "source-ref", render.DefaultSourceRef.String(), "the Flux source this tree is, as Kind/namespace/name: Kustomizations of this source are followed, others are gaps")
	fs.StringVar(&f.kustomizationFile, "kustomization-file", "", "render PATH as the Flux Kustomization in this file (its images, patches, targetNamespace, postBuild, …), like flux build kustomization")
	fs.StringArrayVar(&f.substituteFrom, "substitute-from", nil, "a YAML file of ConfigMaps and Secrets that live in the cluster, for postBuild.substituteFrom (repeatable)")
	fs.StringArrayVar(&f.allowGaps, "allow-gap", nil, "let coverage gaps of this kind not block the revision (repeatable): "+strings.Join(gapKinds(), ", "))
	fs.BoolVar(&f.strict, "strict", false, "coverage gaps block by default")
	_ = fs.MarkDeprecated("strict", "coverage gaps block by default; use --allow-gap KIND to let a kind through")
}

// gapKinds lists the gap reasons --allow-gap takes.
func gapKinds() []string {
	out := make([]string, len(render.GapReasons))
	for i, r := range render.GapReasons {
		out[i] = string(r)
	}
	return out
}

// allowedGaps returns the --allow-gap kinds, checked.
func (f *renderFlags) allowedGaps() ([]string, error) {
	for _, k := range f.allowGaps {
		if !slices.Contains(gapKinds(), k) {
			return nil, fmt.Errorf("--allow-gap %q: want one of %s", k, strings.Join(gapKinds(), ", "))
		}
	}
	return f.allowGaps, nil
}

// revision is a rendered local revision.
type revision struct {
	Root     string // the source root as given or found
	Path     string // the rendered path, relative to Root
	Revision string // the git revision, if any
	Source   render.SourceRef
	Skipped  []sources.Skipped
	Result   *render.Result
}

// localRenderer renders local paths with the options of the flags, read
// once for all paths.
type localRenderer struct {
	root   string
	source render.SourceRef
	opts   []render.Option
}

// renderer reads the flags' files (--kustomization-file,
// --substitute-from) and returns a renderer for their paths.
func (f *renderFlags) renderer() (*localRenderer, error) {
	ref, err := render.ParseSourceRef(f.sourceRef)
	if err != nil {
		return nil, fmt.Errorf("--source-ref: %w", err)
	}
	opts := []render.Option{render.WithSourceRef(ref)}
	if f.kustomizationFile != "" {
		objs, err := readObjects(f.kustomizationFile)
		if err != nil {
			return nil, fmt.Errorf("--kustomization-file: %w", err)
		}
		if len(objs) != 1 {
			return nil, fmt.Errorf("--kustomization-file %s: want one Flux Kustomization, found %d objects", f.kustomizationFile, len(objs))
		}
		opts = append(opts, render.WithKustomization(objs[0]))
	}
	for _, file := range f.substituteFrom {
		objs, err := readObjects(file)
		if err != nil {
			return nil, fmt.Errorf("--substitute-from: %w", err)
		}
		opts = append(opts, render.WithSubstituteFrom(objs))
	}
	return &localRenderer{root: f.root, source: ref, opts: opts}, nil
}

// render copies the source holding path as source-controller would
// archive it, and renders path in the copy.
func (lr *localRenderer) render(ctx context.Context, path string) (*revision, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", path)
	}
	root := lr.root
	if root == "" {
		var err error
		if root, err = sources.WorkTree(path); err != nil {
			return nil, err
		}
		if root == "" {
			root = outsideWorkTree(path)
		}
	}
	rel, err := relativeTo(root, path)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "pregate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	tree, err := sources.Local(ctx, root, filepath.Join(work, "src"))
	if err != nil {
		return nil, err
	}
	res, err := render.Render(ctx, tree.Root, filepath.Join(tree.Root, rel), lr.opts...)
	if err != nil {
		return nil, err
	}
	return &revision{Root: root, Path: filepath.ToSlash(rel), Revision: tree.Revision, Source: lr.source, Skipped: tree.Skipped, Result: res}, nil
}

// outsideWorkTree is the source root of a path outside any git work
// tree: the current directory when path is inside it (a Flux repository
// unpacked from a tarball is rendered from its root, so that its
// Kustomizations' paths resolve), else path itself.
func outsideWorkTree(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if _, err := relativeTo(wd, path); err == nil {
			return wd
		}
	}
	return path
}

func readObjects(file string) ([]map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return render.DecodeObjects(file, b)
}

// relativeTo returns path relative to root, refusing a path outside it.
func relativeTo(root, path string) (string, error) {
	ar, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	ap, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(ar); err == nil {
		ar = r
	}
	if p, err := filepath.EvalSymlinks(ap); err == nil {
		ap = p
	}
	rel, err := filepath.Rel(ar, ap)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("%s is not inside the source root %s", path, root)
	}
	return rel, nil
}
