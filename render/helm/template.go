package helm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// maxManifestSize bounds a release's rendered manifests.
const maxManifestSize = 64 << 20

// renderRelease renders ch with vals as helm-controller's action.Install
// would install it (internal/action/install.go newInstall), with Helm's
// install action in client-only dry-run mode, the mode `helm template`
// uses: no cluster is contacted, .Capabilities come from caps, lookup
// returns nothing.
func renderRelease(ctx context.Context, r *release, ch *chart.Chart, vals common.Values, caps capabilities) (_ []Object, err error) {
	// Helm's engine and Kustomize run a chart's and a HelmRelease's
	// content; whatever they do with hostile input is an error, not a
	// crash.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: rendering panicked: %v", ErrInvalidChart, p)
		}
	}()
	install, err := newInstall(r, caps)
	if err != nil {
		return nil, err
	}
	out, err := install.RunWithContext(ctx, ch, vals.AsMap())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidChart, err)
	}
	rel, ok := out.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("%w: only the Chart API v2 is supported", ErrInvalidChart)
	}
	if len(rel.Manifest) > maxManifestSize {
		return nil, fmt.Errorf("%w: the rendered manifests are %d bytes, more than %d", ErrTooLarge, len(rel.Manifest), maxManifestSize)
	}
	var objects []Object
	if policy := r.GetInstall().CRDs; policy != helmv2.Skip {
		// Install.RunWithContext has removed disabled subcharts (Helm's
		// ProcessDependencies), as helm-controller's applyCRDs does first.
		crds, err := crdObjects(ch, originLabels(r))
		if err != nil {
			return nil, err
		}
		objects = append(objects, crds...)
	}
	manifest, err := manifestObjects(rel.Manifest)
	if err != nil {
		return nil, err
	}
	objects = append(objects, manifest...)
	hooks, err := hookObjects(rel.Hooks)
	if err != nil {
		return nil, err
	}
	return append(objects, hooks...), nil
}

// newInstall configures Helm's install action as helm-controller's
// newInstall does, in client-only dry-run mode.
func newInstall(r *release, caps capabilities) (*action.Install, error) {
	kv, err := common.ParseKubeVersion(caps.kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: Kubernetes version %q: %w", ErrUnsupported, caps.kubeVersion, err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = r.releaseName()
	install.Namespace = r.GetReleaseNamespace()
	install.KubeVersion = kv
	install.APIVersions = caps.apiVersions
	spec := r.GetInstall()
	install.DisableHooks = spec.DisableHooks
	install.DisableOpenAPIValidation = spec.DisableOpenAPIValidation
	install.SkipSchemaValidation = spec.DisableSchemaValidation
	install.Replace = spec.Replace
	install.Devel = true
	install.SkipCRDs = true
	install.PostRenderer = buildPostRenderer(r)
	install.PostRenderStrategy = postRenderStrategy(r)
	return install, nil
}

// postRenderStrategy is helm-controller's toHelmPostRenderStrategy without
// the UseHelm3Defaults feature gate: Helm 4's "combined" by default.
func postRenderStrategy(r *release) action.PostRenderStrategy {
	if s := r.GetPostRenderStrategy(); s != "" {
		return action.PostRenderStrategy(s)
	}
	return action.PostRenderStrategyCombined
}

// manifestObjects splits a release manifest, which Helm writes as
// "---\n# Source: <template>\n<one document>\n" per object in install order.
func manifestObjects(manifest string) ([]Object, error) {
	var objects []Object
	for _, doc := range strings.Split("\n"+manifest, "\n---\n") {
		template := ""
		if rest, ok := strings.CutPrefix(doc, "# Source: "); ok {
			template, doc, _ = strings.Cut(rest, "\n")
		}
		content, err := decodeObject(doc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidChart, template, err)
		}
		if content != nil {
			objects = append(objects, Object{Template: template, Content: content})
		}
	}
	return objects, nil
}

// hookObjects returns the hooks in the order Helm runs them: by weight,
// then name.
func hookObjects(hooks []*releasev1.Hook) ([]Object, error) {
	sorted := append([]*releasev1.Hook(nil), hooks...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Weight != sorted[j].Weight {
			return sorted[i].Weight < sorted[j].Weight
		}
		return sorted[i].Name < sorted[j].Name
	})
	var objects []Object
	for _, h := range sorted {
		content, err := decodeObject(h.Manifest)
		if err != nil {
			return nil, fmt.Errorf("%w: hook %s: %w", ErrInvalidChart, h.Path, err)
		}
		if content == nil {
			continue
		}
		events := make([]string, 0, len(h.Events))
		for _, e := range h.Events {
			events = append(events, string(e))
		}
		objects = append(objects, Object{Template: h.Path, Hooks: events, Content: content})
	}
	return objects, nil
}

// crdObjects returns the CustomResourceDefinitions of the chart's and its
// enabled subcharts' crds/ directories, with the origin labels, as
// helm-controller's applyCRDs applies them (other kinds there are
// ignored).
func crdObjects(ch *chart.Chart, labels map[string]string) ([]Object, error) {
	var objects []Object
	for _, crd := range ch.CRDObjects() {
		docs, err := splitDocuments(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidChart, crd.Filename, err)
		}
		for _, doc := range docs {
			content, err := decodeObject(doc)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalidChart, crd.Filename, err)
			}
			if content == nil || content["kind"] != "CustomResourceDefinition" ||
				!strings.HasPrefix(fmt.Sprint(content["apiVersion"]), "apiextensions.k8s.io/") {
				continue
			}
			setLabels(content, labels)
			objects = append(objects, Object{Template: crd.Filename, CRD: true, Content: content})
		}
	}
	return objects, nil
}

// setLabels merges labels into metadata.labels.
func setLabels(obj map[string]any, labels map[string]string) {
	md, _ := obj["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
		obj["metadata"] = md
	}
	current, _ := md["labels"].(map[string]any)
	if current == nil {
		current = map[string]any{}
		md["labels"] = current
	}
	for k, v := range labels {
		current[k] = v
	}
}

// splitDocuments splits a YAML stream into its documents.
func splitDocuments(data []byte) ([]string, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []string
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, string(doc))
	}
}

// decodeObject decodes one YAML document; an empty one is nil.
func decodeObject(doc string) (map[string]any, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		return nil, err
	}
	return obj, nil
}
