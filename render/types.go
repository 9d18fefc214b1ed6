// Package render turns a revision's file tree into the Kubernetes objects the
// GitOps engine would apply, with Flux Kustomization semantics, and pulls out
// every container image those objects would run, with where each appears.
//
// Rendering is a function of the tree, of the remote kustomize bases it
// names (fetched as kustomize-controller fetches them, unless
// WithoutRemoteBases) and of its HelmReleases' charts (see WithHelm).
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

// render's results are in the gate's types: what render finds is what the
// gate decides on and what reports show, with nothing copied.
type (
	// Origin is gate.Origin: where an object came from.
	Origin = gate.Origin
	// Image is gate.Image: one image, deduplicated, with every location.
	Image = gate.Image
	// Location is gate.Location: one place an image appears.
	Location = gate.Location
	// Gap is gate.Gap: a part of the revision whose images are not known.
	Gap = gate.Gap
	// GapReason is gate.GapReason; render defines the reasons.
	GapReason = gate.GapReason
)

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

// The coverage gaps render reports.
const (
	// HelmReleaseGap: a HelmRelease's chart is not rendered, so its images are
	// not known.
	HelmReleaseGap GapReason = "HelmRelease"
	// OtherSourceGap: a Flux Kustomization applies a different source than
	// the one being rendered.
	OtherSourceGap GapReason = "OtherSource"
	// RemoteBaseGap: a kustomization refers to a remote base, component
	// or file that could not be fetched or built, or remote bases are
	// disabled (WithoutRemoteBases).
	RemoteBaseGap GapReason = "RemoteBase"
	// BuildFailedGap: a Flux Kustomization's path could not be built.
	BuildFailedGap GapReason = "BuildFailed"
	// MissingPathGap: a Flux Kustomization's path does not exist.
	MissingPathGap GapReason = "MissingPath"
	// SubstituteFromGap: a postBuild.substituteFrom ConfigMap or Secret is
	// neither in the revision nor given on the command line, and an image
	// holds a variable it may set (or an object transforms one, and is
	// left out). The rest of the Kustomization renders.
	SubstituteFromGap GapReason = "SubstituteFromMissing"
	// UnresolvedImageGap: a container's image is still a template after
	// rendering, is not a valid reference, is missing, or the pod spec
	// holding it is malformed.
	UnresolvedImageGap GapReason = "UnresolvedImage"
	// EncryptedGap: SOPS-encrypted content could not be decrypted (no key
	// given, or none of the keys opens it), so what depends on it is not
	// known: an image holding a variable whose value it hides, an object
	// using such a variable in a way that cannot be kept literally, or the
	// encrypted object or file itself when a key was given that does not
	// open it.
	EncryptedGap GapReason = "Encrypted"
)

// GapReasons are the reasons of the gaps that block a revision unless the
// user allows them, kind by kind (gate.Config.AllowGaps). OtherSourceGap is
// not among them: it is informational.
var GapReasons = []GapReason{
	HelmReleaseGap, RemoteBaseGap, BuildFailedGap, MissingPathGap, SubstituteFromGap, UnresolvedImageGap, EncryptedGap,
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
