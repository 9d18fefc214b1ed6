// Package render turns a revision's file tree into the Kubernetes objects the
// GitOps engine would apply, with Flux Kustomization semantics, and pulls out
// every container image those objects would run, with where each appears.
//
// Rendering is a pure function of the tree: nothing here touches the network.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/pregate/pregate/gate"
)

// Object is one rendered Kubernetes object with where it came from.
type Object struct {
	// Content is the object as decoded from YAML/JSON.
	Content map[string]any
	// Origin is where the object was rendered from.
	Origin Origin
}

// Origin tells where a rendered object came from.
type Origin struct {
	// File is the path of the source file, relative to the source root and
	// slash-separated ("apps/base/deployment.yaml"). Empty when kustomize
	// generated the object (configMapGenerator, …).
	File string `json:"file,omitempty"`
	// Chain is the Flux Kustomization chain that applies the object, outermost
	// first, for example ["Kustomization/flux-system/flux-system",
	// "Kustomization/flux-system/apps"]. Empty for a plain directory render.
	Chain []string `json:"chain,omitempty"`
}

// Kind returns the object's kind.
func (o Object) Kind() string { return str(o.Content, "kind") }

// APIVersion returns the object's apiVersion.
func (o Object) APIVersion() string { return str(o.Content, "apiVersion") }

// Group returns the API group of the object ("" for the core group).
func (o Object) Group() string {
	gv := o.APIVersion()
	if i := strings.Index(gv, "/"); i >= 0 {
		return gv[:i]
	}
	return ""
}

// Name returns metadata.name.
func (o Object) Name() string { return str(metadata(o.Content), "name") }

// Namespace returns metadata.namespace.
func (o Object) Namespace() string { return str(metadata(o.Content), "namespace") }

// ID names the object the way kubectl does: Kind/namespace/name, or
// Kind/name for cluster-scoped objects.
func (o Object) ID() string {
	if ns := o.Namespace(); ns != "" {
		return fmt.Sprintf("%s/%s/%s", o.Kind(), ns, o.Name())
	}
	return fmt.Sprintf("%s/%s", o.Kind(), o.Name())
}

func metadata(m map[string]any) map[string]any {
	md, _ := m["metadata"].(map[string]any)
	return md
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// Image is one container image reference, deduplicated across the revision.
type Image struct {
	// Ref is the normalised reference: registry, repository and tag and/or
	// digest, as a container runtime resolves it
	// ("index.docker.io/library/nginx:latest").
	Ref string `json:"ref"`
	// Registry, Repository, Tag and Digest are Ref's parts. Tag is empty for
	// a digest-only reference; Digest is empty for a tag-only reference.
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	Digest     string `json:"digest,omitempty"`
	// Mutable is true when the reference carries no digest: what it names
	// can change after it was checked.
	Mutable bool `json:"mutable"`
	// Locations lists every place the image appears, sorted.
	Locations []Location `json:"locations"`
}

// Location is one place an image reference appears.
type Location struct {
	Origin
	// Object names the Kubernetes object: Kind/namespace/name.
	Object     string `json:"object"`
	APIVersion string `json:"apiVersion"`
	// Container is the container's name.
	Container string `json:"container"`
	// Path is the container's path in the object,
	// "spec.template.spec.initContainers[0]".
	Path string `json:"path"`
	// Raw is the reference exactly as written in the rendered object.
	Raw string `json:"raw"`
}

// GapReason says why part of a revision could not be rendered or read.
type GapReason string

// The coverage gaps render reports.
const (
	// HelmReleaseGap: a HelmRelease's chart is not rendered, so its images are
	// not known.
	HelmReleaseGap GapReason = "HelmRelease"
	// OtherSourceGap: a Flux Kustomization applies a different source than
	// the one being rendered.
	OtherSourceGap GapReason = "OtherSource"
	// RemoteBaseGap: a kustomization refers to a remote base or component,
	// which pregate does not fetch.
	RemoteBaseGap GapReason = "RemoteBase"
	// BuildFailedGap: a Flux Kustomization's path could not be built.
	BuildFailedGap GapReason = "BuildFailed"
	// MissingPathGap: a Flux Kustomization's path does not exist.
	MissingPathGap GapReason = "MissingPath"
	// SubstituteFromGap: a postBuild.substituteFrom ConfigMap or Secret is
	// neither in the revision nor given on the command line.
	SubstituteFromGap GapReason = "SubstituteFromMissing"
	// UnresolvedImageGap: a container's image is still a template after
	// rendering, is not a valid reference, is missing, or the pod spec
	// holding it is malformed.
	UnresolvedImageGap GapReason = "UnresolvedImage"
)

// GapReasons are the reasons of the gaps that block a revision unless the
// user allows them, kind by kind (gate.Config.AllowGaps). OtherSourceGap is
// not among them: it is informational.
var GapReasons = []GapReason{
	HelmReleaseGap, RemoteBaseGap, BuildFailedGap, MissingPathGap, SubstituteFromGap, UnresolvedImageGap,
}

// Informational says whether a gap of this reason is another source's
// business, reported but never blocking: a Flux Kustomization of another
// source applies what that source's own gate checks.
func (r GapReason) Informational() bool { return r == OtherSourceGap }

// Gap is a part of the revision whose images pregate cannot list. A gap is
// never skipped in silence: the report carries it, and unless it is
// informational or allowed by kind, it keeps the revision from being
// allowed.
type Gap struct {
	Reason GapReason `json:"reason"`
	// Origin is where the unrendered part is.
	Origin
	// Object names the object concerned (Kind/namespace/name), if any.
	Object string `json:"object,omitempty"`
	// Path is the field path within Object, for an image gap.
	Path string `json:"path,omitempty"`
	// Message explains the gap in one line.
	Message string `json:"message"`
}

func (g Gap) String() string {
	var b strings.Builder
	b.WriteString(string(g.Reason))
	if g.File != "" {
		b.WriteString(" " + g.File)
	}
	if g.Object != "" {
		b.WriteString(" " + g.Object)
	}
	if g.Path != "" {
		b.WriteString(" " + g.Path)
	}
	b.WriteString(": " + g.Message)
	return b.String()
}

// DecodeObjects decodes a multi-document YAML (or JSON) file into objects,
// naming the file and document in errors. Empty documents are skipped.
func DecodeObjects(name string, data []byte) ([]map[string]any, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []map[string]any
	for i := 0; ; i++ {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		o := Object{Content: obj}
		if o.Kind() == "" || o.APIVersion() == "" {
			return nil, fmt.Errorf("%s: document %d: no apiVersion or kind", name, i+1)
		}
		out = append(out, obj)
	}
}

// Gate returns what the revision rendered to, in the gate package's terms.
func (r *Result) Gate() gate.Rendered {
	out := gate.Rendered{Images: make([]gate.Image, 0, len(r.Images)), Gaps: make([]gate.Gap, 0, len(r.Gaps))}
	for _, img := range r.Images {
		gi := gate.Image{Ref: img.Ref, Locations: make([]gate.Location, 0, len(img.Locations))}
		for _, l := range img.Locations {
			gi.Locations = append(gi.Locations, gate.Location{File: l.File, Chain: l.Chain, Object: l.Object, Container: l.Container, Path: l.Path})
		}
		out.Images = append(out.Images, gi)
	}
	for _, g := range r.Gaps {
		out.Gaps = append(out.Gaps, gate.Gap{Reason: string(g.Reason), File: g.File, Object: g.Object, Path: g.Path, Message: g.Message,
			Informational: g.Reason.Informational()})
	}
	return out
}
