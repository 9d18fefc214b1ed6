package render

import (
	"bytes"
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// RepublishOptions say how Republish lays out a rendered revision.
type RepublishOptions struct {
	// Path is the directory the revision was rendered from, relative to
	// the source root ("." is the root): its objects are written there.
	Path string
	// Artifact is the source the files are served as (an
	// ExternalArtifact): each Flux Kustomization of the rendered source
	// is rewritten to apply its own output from it.
	Artifact SourceRef
	// Pinned maps a normalised image reference (Image.Ref) to the
	// reference pinned to its verified digest, as Pin takes it.
	Pinned map[string]string
}

// RepublishedDir is where Republish writes the output of a Flux
// Kustomization the revision applies, under the artifact root.
const RepublishedDir = "_kustomizations"

// Republish lays out what res rendered as the files of an artifact that
// Flux applies as it is, every image in Pinned pinned (see Pin):
//
//   - the objects rendered from o.Path go to o.Path/manifests.yaml, with a
//     kustomization.yaml listing it;
//   - the objects each Flux Kustomization of the same source rendered go
//     to _kustomizations/<namespace>/<name>/, likewise, and that
//     Kustomization is rewritten to apply them from o.Artifact: its
//     sourceRef and path change, and what render already applied
//     (images, patches, components, postBuild, targetNamespace, name
//     prefix and suffix, common metadata) is dropped;
//   - a HelmRelease whose chart rendered images in Pinned gets a
//     post-renderer pinning them, as helm-controller applies it.
//
// It refuses what it cannot republish as verified: a Kustomization of the
// source that decrypts SOPS secrets (its output holds them decrypted), or
// one render did not render once (a cycle, a duplicate, a failure), and a
// chart rendering one repository at two tags. It returns the files by
// slash-separated path and how many image fields were pinned.
func Republish(res *Result, o RepublishOptions) (map[string][]byte, int, error) {
	top := path.Clean(o.Path)
	// The Kustomizations of the source among the objects: each applies
	// its own directory of the artifact.
	units := map[string]string{} // Kustomization ID → its directory
	for _, obj := range res.Objects {
		if !isKustomization(obj) || !sameSourceAs(obj, res.Source) {
			continue
		}
		id := obj.ID()
		if status, _ := kustomizationStatus(res, id); status != Rendered {
			return nil, 0, fmt.Errorf("%s: not republished: it was not rendered once (%s)", id, cmp.Or(string(status), "not found"))
		}
		if _, dup := units[id]; dup {
			return nil, 0, fmt.Errorf("%s: not republished: it is in the revision twice", id)
		}
		if decrypts(obj.Content) {
			return nil, 0, fmt.Errorf("%s decrypts SOPS-encrypted objects: republishing its rendered output would serve them decrypted; republish the source's files instead (pinDigests: false)", id)
		}
		_, ns, name := splitID(id)
		units[id] = path.Join(RepublishedDir, ns, name)
	}
	objs, pinned := Pin(res.Objects, o.Pinned)
	byDir := map[string][]Object{top: nil}
	for _, d := range units {
		byDir[d] = nil
	}
	for _, obj := range objs {
		switch {
		case isKustomization(obj) && sameSourceAs(obj, res.Source):
			retarget(obj, o.Artifact, units[obj.ID()])
		case obj.Kind() == "HelmRelease" && obj.Group() == "helm.toolkit.fluxcd.io":
			n, err := pinChart(obj, res.Images, o.Pinned)
			if err != nil {
				return nil, 0, err
			}
			pinned += n
		}
		// An object goes with the innermost Kustomization that applies it.
		d := top
		for _, id := range slices.Backward(obj.Origin.Chain) {
			if u, ok := units[id]; ok {
				d = u
				break
			}
		}
		byDir[d] = append(byDir[d], obj)
	}
	files := map[string][]byte{}
	for d, list := range byDir {
		resources := "resources: []\n"
		if len(list) > 0 {
			b, err := EncodeYAML(list)
			if err != nil {
				return nil, 0, err
			}
			resources = "resources:\n  - manifests.yaml\n"
			files[path.Join(d, "manifests.yaml")] = b
		}
		files[path.Join(d, "kustomization.yaml")] = []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + resources)
	}
	return files, pinned, nil
}

// buildFields are what a Flux Kustomization's build applies: in a
// republished revision they are already applied.
var buildFields = []string{"images", "patches", "patchesStrategicMerge", "patchesJson6902", "components", "postBuild",
	"targetNamespace", "namePrefix", "nameSuffix", "commonMetadata", "decryption"}

// retarget makes a Flux Kustomization apply dir of the artifact.
func retarget(obj Object, artifact SourceRef, dir string) {
	spec, _ := obj.Content["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		obj.Content["spec"] = spec
	}
	for _, f := range buildFields {
		delete(spec, f)
	}
	ref := map[string]any{"kind": artifact.Kind, "name": artifact.Name}
	if artifact.Namespace != "" {
		ref["namespace"] = artifact.Namespace
	}
	spec["sourceRef"] = ref
	spec["path"] = "./" + dir
}

// pinChart adds to a HelmRelease a post-renderer that pins the images its
// chart rendered, by kustomize images entries as helm-controller applies
// them. It returns how many it pins.
func pinChart(obj Object, images []Image, pinned map[string]string) (int, error) {
	id := obj.ID()
	var entries []any
	names := map[string]string{}
	for _, img := range images {
		p, ok := pinned[img.Ref]
		if !ok {
			continue
		}
		for _, l := range img.Locations {
			if l.HelmRelease != id {
				continue
			}
			name := imageName(l.Raw)
			if prev, ok := names[name]; ok {
				if prev != p {
					return 0, fmt.Errorf("%s: its chart renders %s as both %s and %s: a post-renderer cannot pin both", id, name, prev, p)
				}
				continue
			}
			names[name] = p
			_, digest, _ := strings.Cut(p, "@")
			e := map[string]any{"name": name, "digest": digest}
			if img.Tag != "" {
				e["newTag"] = img.Tag
			}
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return 0, nil
	}
	spec, _ := obj.Content["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		obj.Content["spec"] = spec
	}
	post, _ := spec["postRenderers"].([]any)
	spec["postRenderers"] = append(post, map[string]any{"kustomize": map[string]any{"images": entries}})
	return len(entries), nil
}

// imageName is a reference as written, less its tag and digest: the name
// a kustomize images entry matches.
func imageName(raw string) string {
	name, _, _ := strings.Cut(raw, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name
}

func sameSourceAs(o Object, src SourceRef) bool {
	ref := sourceRefOf(o)
	return ref.Kind == src.Kind && ref.Name == src.Name && (src.Namespace == "" || ref.Namespace == src.Namespace)
}

func kustomizationStatus(res *Result, id string) (KustomizationStatus, bool) {
	for _, k := range res.Kustomizations {
		if k.Object == id {
			return k.Status, true
		}
	}
	return "", false
}

// splitID splits Kind/namespace/name.
func splitID(id string) (kind, namespace, name string) {
	kind, rest, _ := strings.Cut(id, "/")
	namespace, name, ok := strings.Cut(rest, "/")
	if !ok {
		return kind, "", rest
	}
	return kind, namespace, name
}

// EncodeYAML writes objs as one multi-document YAML stream, in order.
func EncodeYAML(objs []Object) ([]byte, error) {
	var b bytes.Buffer
	for i, obj := range objs {
		y, err := yaml.Marshal(obj.Content)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", obj.ID(), err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}
