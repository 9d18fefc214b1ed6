package helm

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/fluxcd/pkg/apis/kustomize"
	"helm.sh/helm/v4/pkg/postrenderer"
	"sigs.k8s.io/kustomize/api/builtins" //nolint:staticcheck // helm-controller's CommonRenderer uses these transformers; the same ones give the same output
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pregate/pregate/render/internal/kustomizelock"
)

// The post-renderers follow helm-controller's internal/postrender package
// (build.go, kustomize.go, common_renderer.go, combined.go): one Kustomize
// renderer per spec.postRenderers[].kustomize in order, then
// spec.commonMetadata, then the origin labels, which win over common
// labels of the same key.

// buildPostRenderer returns the HelmRelease's post-renderers combined.
func buildPostRenderer(r *release) postrenderer.PostRenderer {
	var rs combined
	for _, p := range r.Spec.PostRenderers {
		if p.Kustomize != nil {
			rs = append(rs, kustomizeRenderer{patches: p.Kustomize.Patches, images: p.Kustomize.Images})
		}
	}
	if cm := r.Spec.CommonMetadata; cm != nil {
		rs = append(rs, metadataRenderer{labels: cm.Labels, annotations: cm.Annotations})
	}
	rs = append(rs, metadataRenderer{labels: originLabels(r)})
	return rs
}

// originLabels are the labels helm-controller puts on everything it
// installs.
func originLabels(r *release) map[string]string {
	return map[string]string{
		helmGroup + "/name":      r.Name,
		helmGroup + "/namespace": r.Namespace,
	}
}

// combined runs post-renderers in order.
type combined []postrenderer.PostRenderer

// Run implements postrenderer.PostRenderer.
func (c combined) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	out := in
	for _, r := range c {
		var err error
		if out, err = r.Run(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// kustomizeRenderer applies patches and image overrides with a Kustomize
// build over the rendered manifests, as helm-controller's Kustomize does.
type kustomizeRenderer struct {
	patches []kustomize.Patch
	images  []kustomize.Image
}

// Run implements postrenderer.PostRenderer.
func (k kustomizeRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	const input = "helm-output.yaml"
	cfg := kustypes.Kustomization{}
	cfg.APIVersion = kustypes.KustomizationVersion
	cfg.Kind = kustypes.KustomizationKind
	cfg.Resources = []string{input}
	for _, img := range k.images {
		cfg.Images = append(cfg.Images, kustypes.Image{Name: img.Name, NewName: img.NewName, NewTag: img.NewTag, Digest: img.Digest})
	}
	for _, p := range k.patches {
		cfg.Patches = append(cfg.Patches, kustypes.Patch{Patch: p.Patch, Target: kustomizeSelector(p.Target)})
	}
	kustomization, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the post-render kustomization: %w", err)
	}
	fs := filesys.MakeFsInMemory()
	if err := fs.WriteFile(input, in.Bytes()); err != nil {
		return nil, fmt.Errorf("writing the rendered manifests: %w", err)
	}
	if err := fs.WriteFile("kustomization.yaml", kustomization); err != nil {
		return nil, fmt.Errorf("writing the post-render kustomization: %w", err)
	}
	// helm-controller serialises its builds against kustomize's global
	// state (kubernetes-sigs/kustomize#3659); this build sets no OpenAPI
	// schema, so it shares the loaded one with render's builds.
	unlock := kustomizelock.Shared()
	defer unlock()
	resMap, err := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	}).Run(fs, ".")
	if err != nil {
		return nil, fmt.Errorf("kustomize post-render: %w", err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize post-render: %w", err)
	}
	return bytes.NewBuffer(out), nil
}

// kustomizeSelector is helm-controller's adaptSelector.
func kustomizeSelector(s *kustomize.Selector) *kustypes.Selector {
	if s == nil {
		return nil
	}
	out := &kustypes.Selector{}
	out.Group = s.Group
	out.Kind = s.Kind
	out.Version = s.Version
	out.Name = s.Name
	out.Namespace = s.Namespace
	out.LabelSelector = s.LabelSelector
	out.AnnotationSelector = s.AnnotationSelector
	return out
}

// metadataRenderer sets labels and annotations on every object with
// Kustomize's transformers, as helm-controller's CommonRenderer and
// OriginLabels do.
type metadataRenderer struct {
	labels, annotations map[string]string
}

// Run implements postrenderer.PostRenderer.
func (m metadataRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	var ts []resmap.Transformer
	if m.labels != nil {
		ts = append(ts, &builtins.LabelTransformerPlugin{
			Labels:     m.labels,
			FieldSpecs: []kustypes.FieldSpec{{Path: "metadata/labels", CreateIfNotPresent: true}},
		})
	}
	if m.annotations != nil {
		ts = append(ts, &builtins.AnnotationsTransformerPlugin{
			Annotations: m.annotations,
			FieldSpecs:  []kustypes.FieldSpec{{Path: "metadata/annotations", CreateIfNotPresent: true}},
		})
	}
	if len(ts) == 0 {
		return in, nil
	}
	// kustomize's transformers may read its OpenAPI schema.
	unlock := kustomizelock.Shared()
	defer unlock()
	resMap, err := resmap.NewFactory(provider.NewDefaultDepProvider().GetResourceFactory()).NewResMapFromBytes(in.Bytes())
	if err != nil {
		return nil, fmt.Errorf("parsing the rendered manifests: %w", err)
	}
	for _, t := range ts {
		if err := t.Transform(resMap); err != nil {
			return nil, fmt.Errorf("setting common metadata: %w", err)
		}
	}
	out, err := resMap.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("encoding the post-rendered manifests: %w", err)
	}
	return bytes.NewBuffer(out), nil
}
