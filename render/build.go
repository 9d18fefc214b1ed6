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
	"sync"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/resource"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// renderUnit builds one path the way kustomize-controller does for a
// Kustomization: generate or amend kustomization.yaml from the spec, build
// it with kustomize (fetching remote bases unless they are disabled, see
// remote.go), check each object's identity, run postBuild substitution and
// add commonMetadata.
func (r *renderer) renderUnit(ctx context.Context, u unit) ([]Object, error) {
	fail := func(file string, err error) error {
		return &Error{Path: u.path, Object: u.id, File: file, Err: err, root: r.root}
	}
	dir, err := joinUnder(r.root, u.path)
	if err != nil {
		return nil, fail("", err)
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fail("", errPathMissing)
	case err != nil:
		return nil, fail("", err)
	case !fi.IsDir():
		return nil, fail("", errors.New("path is not a directory"))
	}
	remotes, err := r.remoteBases(dir, u.ks)
	if err != nil {
		return nil, fail(remoteFile(err), err)
	}
	vars, err := r.pool.vars(u, r.opener(ctx, u))
	if err != nil {
		return nil, fail("", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// kustomize keeps global state (its OpenAPI schema, which Flux's Build
	// resets for every build); generating, building and substituting are
	// one critical section so concurrent renders cannot race on it.
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	ks := u.ks
	if ks == nil {
		ks = map[string]any{"apiVersion": kustomizeGroup + "/v1", "kind": "Kustomization",
			"metadata": map[string]any{"name": "render"}, "spec": map[string]any{}}
	}
	restore, tracked, err := writeKustomization(r.root, dir, ks)
	if err != nil {
		return nil, fail("", err)
	}
	m, err := r.buildUnit(ctx, u, dir, remotes)
	if rerr := restore(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		err = remotes.explain(fmt.Errorf("kustomize build: %w", err))
		return nil, fail(remoteFile(err), err)
	}

	// Only postBuild needs the substituter, a deep copy of ks.
	postBuild := hasPostBuild(ks)
	var substituter unstructured.Unstructured
	if postBuild {
		if err := usedVars(&vars, m.Resources()); err != nil {
			return nil, fail("", err)
		}
		substituter = withVars(ks, vars.substitutions())
	}
	r.dec.setUnknown(u, vars.unknown)
	var objs []Object
	for _, res := range m.Resources() {
		if res.GetName() == "" || res.GetKind() == "" || res.GetApiVersion() == "" {
			return nil, fail("", fmt.Errorf("an object has no apiVersion, kind or name: %s", res.MustYaml()))
		}
		file, err := originFile(res, u.path, tracked, remotes)
		if err != nil {
			return nil, fail("", err)
		}
		if err := r.decryptResource(ctx, u, res, file); err != nil {
			return nil, fail(file, err)
		}
		if postBuild {
			if out, err := r.leaveOut(u, res, file, vars.unknown); err != nil || out {
				if err != nil {
					return nil, fail(file, err)
				}
				continue
			}
			out, err := fluxkustomize.SubstituteVariables(ctx, nil, substituter, res,
				fluxkustomize.SubstituteWithDryRun(true),
				fluxkustomize.SubstituteWithAlways(substituteAlways(ks)))
			if err != nil {
				return nil, fail(file, fmt.Errorf("postBuild substitution in %s/%s: %w", res.GetKind(), res.GetName(), err))
			}
			if out != nil {
				if _, err := m.Replace(out); err != nil {
					return nil, fail(file, err)
				}
				res = out
			}
		}
		content, err := res.Map()
		if err != nil {
			return nil, fail(file, fmt.Errorf("reading %s/%s: %w", res.GetKind(), res.GetName(), err))
		}
		setCommonMetadata(content, ks)
		objs = append(objs, Object{Content: content, Origin: Origin{File: file, Chain: u.chain}})
	}
	return objs, nil
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

// kustomizeMu serialises every use of kustomize in this package.
var kustomizeMu sync.Mutex

// errPathMissing is a Kustomization path that is not in the revision.
var errPathMissing = errors.New("path does not exist in the revision")

// writeKustomization writes the kustomization file kustomize-controller
// would generate for ks into dir, with origin annotations on so each object
// can be traced to its file. It returns a function that puts back what was
// there, and whether origin tracking was added by us (and must be removed).
func writeKustomization(root, dir string, ks map[string]any) (restore func() error, tracked bool, err error) {
	gen := fluxkustomize.NewGenerator(root, unstructured.Unstructured{Object: ks})
	manifest, kfile, action, err := gen.GenerateManifest(dir)
	if err != nil {
		return nil, false, fmt.Errorf("generating kustomization: %w", err)
	}
	var k kustypes.Kustomization
	if err := yaml.Unmarshal(manifest, &k); err != nil {
		return nil, false, fmt.Errorf("reading generated kustomization: %w", err)
	}
	tracked = !slices.Contains(k.BuildMetadata, kustypes.OriginAnnotations)
	if tracked {
		k.BuildMetadata = append(k.BuildMetadata, kustypes.OriginAnnotations)
		if manifest, err = yaml.Marshal(k); err != nil {
			return nil, false, err
		}
	}
	var original []byte
	if action != fluxkustomize.CreatedAction {
		if original, err = os.ReadFile(kfile); err != nil {
			return nil, false, err
		}
	}
	if err := os.WriteFile(kfile, manifest, 0o600); err != nil {
		return nil, false, fmt.Errorf("writing kustomization: %w", err)
	}
	return func() error {
		if action == fluxkustomize.CreatedAction {
			return os.Remove(kfile)
		}
		return os.WriteFile(kfile, original, 0o600) //nolint:gosec // kfile is the kustomization file GenerateManifest found under the source root.
	}, tracked, nil
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
