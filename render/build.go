package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// built is what building a unit gives: its objects, and what else the
// build found, which counts only once the build is used (a build made
// ahead of the traversal may be dropped, see ahead.go).
type built struct {
	objs []Object
	// gaps are those decryption and left-out objects gave.
	gaps []Gap
	// unknown are the unit's postBuild variables whose values are not
	// known.
	unknown map[string]unknownVar
	// deps are the revision's substituteFrom objects the variables were
	// read from, as the pool held them.
	deps poolDeps
}

// renderUnit builds one path the way kustomize-controller does for a
// Kustomization: generate or amend kustomization.yaml from the spec, build
// it with kustomize (fetching remote bases unless they are disabled, see
// remote.go), check each object's identity, run postBuild substitution and
// add commonMetadata. It writes nothing: the generated kustomization file
// is seen by kustomize in memory, so builds of different units can run at
// the same time.
func (r *renderer) renderUnit(ctx context.Context, u unit) (built, error) {
	var b built
	fail := func(file string, err error) (built, error) {
		return b, &Error{Path: u.path, Object: u.id, File: file, Err: err, root: r.root}
	}
	dir, err := joinUnder(r.root, u.path)
	if err != nil {
		return fail("", err)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("", errPathMissing)
	case err != nil:
		return fail("", err)
	case !fi.IsDir():
		return fail("", errors.New("path is not a directory"))
	}
	ks := u.ks
	if ks == nil {
		ks = map[string]any{"apiVersion": kustomizeGroup + "/v1", "kind": "Kustomization",
			"metadata": map[string]any{"name": "render"}, "spec": map[string]any{}}
	}
	gen, err := generateKustomization(r.root, dir, ks)
	if err != nil {
		return fail("", err)
	}
	reach, err := r.remoteBases(gen)
	if err != nil {
		return fail(remoteFile(err), err)
	}
	vars, deps, err := r.pool.vars(u, r.opener(ctx, u, &b))
	b.deps = deps
	if err != nil {
		return fail("", err)
	}
	if err := ctx.Err(); err != nil {
		return b, err
	}
	m, err := r.buildUnit(ctx, u, gen, reach, &b)
	if err != nil {
		err = reach.remotes.explain(fmt.Errorf("kustomize build: %w", err))
		return fail(remoteFile(err), err)
	}

	// Only postBuild needs the substituter, a deep copy of ks.
	postBuild := hasPostBuild(ks)
	var substituter unstructured.Unstructured
	if postBuild {
		if err := usedVars(&vars, m.Resources()); err != nil {
			return fail("", err)
		}
		substituter = withVars(ks, vars.substitutions())
	}
	b.unknown = vars.unknown
	for _, res := range m.Resources() {
		if res.GetName() == "" || res.GetKind() == "" || res.GetApiVersion() == "" {
			return fail("", fmt.Errorf("an object has no apiVersion, kind or name: %s", res.MustYaml()))
		}
		file, err := originFile(res, u.path, gen.tracked, reach.remotes)
		if err != nil {
			return fail("", err)
		}
		if err := r.decryptResource(ctx, u, res, file, &b); err != nil {
			return fail(file, err)
		}
		if postBuild {
			if out, err := leaveOut(u, res, file, vars.unknown, &b); err != nil || out {
				if err != nil {
					return fail(file, err)
				}
				continue
			}
			out, err := fluxkustomize.SubstituteVariables(ctx, nil, substituter, res,
				fluxkustomize.SubstituteWithDryRun(true),
				fluxkustomize.SubstituteWithAlways(substituteAlways(ks)))
			if err != nil {
				return fail(file, fmt.Errorf("postBuild substitution in %s/%s: %w", res.GetKind(), res.GetName(), err))
			}
			if out != nil {
				if _, err := m.Replace(out); err != nil {
					return fail(file, err)
				}
				res = out
			}
		}
		content, err := res.Map()
		if err != nil {
			return fail(file, fmt.Errorf("reading %s/%s: %w", res.GetKind(), res.GetName(), err))
		}
		setCommonMetadata(content, ks)
		b.objs = append(b.objs, Object{Content: content, Origin: Origin{File: file, Chain: u.chain}})
	}
	return b, nil
}

// usedVars adds to vars.unknown the variables the built objects use that
// may be set by a substituteFrom object not in the revision.
func usedVars(vars *postBuildVars, built []*resource.Resource) error {
	if len(vars.missing) == 0 {
		return nil
	}
	for _, res := range built {
		if substitutionDisabled(res.GetLabels(), res.GetAnnotations()) {
			continue
		}
		text, err := res.AsYAML()
		if err != nil {
			return fmt.Errorf("reading %s/%s: %w", res.GetKind(), res.GetName(), err)
		}
		vars.addUsed(string(text))
	}
	return nil
}

// errPathMissing is a Kustomization path that is not in the revision.
var errPathMissing = errors.New("path does not exist in the revision")

// generated is the kustomization file kustomize-controller would generate
// for a Flux Kustomization in dir, with origin annotations on so each
// object can be traced to its file.
type generated struct {
	dir      string
	file     string // the kustomization file's path: the one in dir, or the one to create
	manifest []byte
	k        *kustypes.Kustomization
	// tracked: origin annotations were added by us, and must be removed.
	tracked bool
}

// generateKustomization generates, without writing it, the kustomization
// file kustomize-controller would write into dir for ks.
func generateKustomization(root, dir string, ks map[string]any) (generated, error) {
	gen := fluxkustomize.NewGenerator(root, unstructured.Unstructured{Object: ks})
	manifest, kfile, _, err := gen.GenerateManifest(dir)
	if err != nil {
		return generated{}, fmt.Errorf("generating kustomization: %w", err)
	}
	var k kustypes.Kustomization
	if err := yaml.Unmarshal(manifest, &k); err != nil {
		return generated{}, fmt.Errorf("reading generated kustomization: %w", err)
	}
	tracked := !slices.Contains(k.BuildMetadata, kustypes.OriginAnnotations)
	if tracked {
		k.BuildMetadata = append(k.BuildMetadata, kustypes.OriginAnnotations)
		if manifest, err = yaml.Marshal(k); err != nil {
			return generated{}, err
		}
	}
	return generated{dir: dir, file: kfile, manifest: manifest, k: &k, tracked: tracked}, nil
}

// read reads the kustomization file of a directory as a build of the unit
// sees it: the generated one for the unit's own directory, else the one on
// disk (nil for a directory without one). Its path is "" when there is
// none.
func (g generated) read(dir string) (string, *kustypes.Kustomization, error) {
	if dir == g.dir {
		return g.file, g.k, nil
	}
	return readKustomization(dir)
}

// originFile returns the source file of a built object, relative to the
// source root (for an object from a remote base, the kustomization file
// naming it), and removes the origin annotation if we added it.
func originFile(res *resource.Resource, unitPath string, tracked bool, rs remotes) (string, error) {
	type origin struct {
		Path         string `json:"path"`
		Repo         string `json:"repo"`
		ConfiguredIn string `json:"configuredIn"`
	}
	const key = "config.kubernetes.io/origin"
	ann := res.GetAnnotations()
	raw, ok := ann[key]
	if !ok {
		return "", nil
	}
	if tracked {
		delete(ann, key)
		if err := res.SetAnnotations(ann); err != nil {
			return "", err
		}
	}
	var o origin
	if err := yaml.Unmarshal([]byte(raw), &o); err != nil {
		return "", fmt.Errorf("reading origin annotation: %w", err)
	}
	p := o.Path
	if p == "" {
		p = o.ConfiguredIn
	}
	if isRemoteOrigin(o.Repo, p) {
		return rs.fileOf(o.Repo, p), nil
	}
	if p == "" {
		return p, nil
	}
	return path.Clean(path.Join(unitPath, filepath.ToSlash(p))), nil
}

func hasPostBuild(ks map[string]any) bool {
	spec, _ := ks["spec"].(map[string]any)
	_, ok := spec["postBuild"]
	return ok
}

func substituteAlways(ks map[string]any) bool {
	spec, _ := ks["spec"].(map[string]any)
	pb, _ := spec["postBuild"].(map[string]any)
	return str(pb, "substituteStrategy") == "Always"
}

// withVars returns a copy of ks whose postBuild.substitute holds every
// variable, those from substituteFrom included, so substitution needs no
// cluster.
func withVars(ks map[string]any, vars map[string]string) unstructured.Unstructured {
	u := unstructured.Unstructured{Object: ks}
	c := u.DeepCopy()
	sub := make(map[string]any, len(vars))
	for k, v := range vars {
		sub[k] = v
	}
	if len(sub) > 0 {
		_ = unstructured.SetNestedField(c.Object, sub, "spec", "postBuild", "substitute")
	} else {
		unstructured.RemoveNestedField(c.Object, "spec", "postBuild", "substitute")
	}
	unstructured.RemoveNestedField(c.Object, "spec", "postBuild", "substituteFrom")
	return *c
}

// setCommonMetadata adds spec.commonMetadata's labels and annotations to an
// object, as kustomize-controller does before applying.
func setCommonMetadata(obj, ks map[string]any) {
	spec, _ := ks["spec"].(map[string]any)
	cm, _ := spec["commonMetadata"].(map[string]any)
	if cm == nil {
		return
	}
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		obj["metadata"] = md
	}
	for _, field := range []string{"labels", "annotations"} {
		add, _ := cm[field].(map[string]any)
		if len(add) == 0 {
			continue
		}
		have, _ := md[field].(map[string]any)
		if have == nil {
			have = map[string]any{}
			md[field] = have
		}
		for k, v := range add {
			have[k] = v
		}
	}
}

func isInside(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
