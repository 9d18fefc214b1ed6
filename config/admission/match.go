package admission

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pregate/pregate/gate"
)

// Object is a resource an admission engine is asked to admit: a workload
// as it is applied, or a Pod it runs.
type Object struct {
	Group, Version, Kind string
	Namespace, Name      string
	// Labels are the object's labels; nil when not known, which every
	// selector is taken to select.
	Labels map[string]string
	// NamespaceLabels are its namespace's labels; nil when not known,
	// which every namespace selector is taken to select.
	NamespaceLabels map[string]string
	// Pod is a Pod's content as admission sees it (gate.Location.Pod);
	// nil for a workload, or when not known.
	Pod map[string]any
}

// Objects are what an admission engine is asked to admit for the image:
// for each place it appears, the object (Kind/namespace/name) and, for a
// workload, the Pods it runs, with their template's labels and a name not
// known yet. nsLabels gives a namespace's labels (nil when not known). An
// image with no place is taken to run in a Pod of no known namespace or
// labels.
func Objects(img gate.Image, nsLabels func(namespace string) map[string]string) []Object {
	var out []Object
	seen := map[string]bool{} // two places in one object are one object, and one Pod
	add := func(key string, o Object) {
		if !seen[key] {
			seen[key] = true
			out = append(out, o)
		}
	}
	for _, l := range img.Locations {
		kind, rest, _ := strings.Cut(l.Object, "/")
		ns, name, namespaced := strings.Cut(rest, "/")
		if !namespaced {
			ns, name = "", rest
		}
		gv, _ := schema.ParseGroupVersion(l.APIVersion)
		labels := l.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		o := Object{Group: gv.Group, Version: gv.Version, Kind: kind, Namespace: ns, Name: name,
			Labels: labels, NamespaceLabels: nsLabels(ns)}
		if gv.Group == "" && kind == "Pod" {
			o.Pod = l.Pod
			add(l.Object, o)
			continue
		}
		add(l.Object, o)
		add("Pod of "+l.Object, Object{Version: "v1", Kind: "Pod", Namespace: ns, Labels: podLabels(l.Pod),
			NamespaceLabels: o.NamespaceLabels, Pod: l.Pod})
	}
	if len(out) == 0 {
		out = append(out, Object{Version: "v1", Kind: "Pod"})
	}
	return out
}

// podLabels are the labels of a Pod's content; nil (not known) without
// it.
func podLabels(pod map[string]any) map[string]string {
	if pod == nil {
		return nil
	}
	md, _ := pod["metadata"].(map[string]any)
	raw, _ := md["labels"].(map[string]any)
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// Match says which objects a rule applies to: those any filter of Any
// selects (every object when Any is empty) that every filter of All
// selects, unless every filter of ExcludeAll, or one of ExcludeAny,
// selects them (Kyverno's match and exclude; the other engines fill in
// what they have of it).
type Match struct {
	Any, All               []Filter
	ExcludeAny, ExcludeAll []Filter
}

// Filter selects objects by kind, namespace and labels; what it leaves
// empty selects every object.
type Filter struct {
	// Kinds are the kinds selected, any of them.
	Kinds []Kind
	// Namespaces are namespace names, Kyverno wildcards allowed.
	Namespaces []string
	// NamespaceSelector selects namespaces by label, Selector objects.
	NamespaceSelector, Selector labels.Selector
	// Never selects no object: the filter asks for operations other than
	// creating one.
	Never bool
}

// Kind names a kind of object, as Kyverno (Group, Version, Kind with
// wildcards) or policy-controller (Resource, with an exact Group and a
// Version exact or "*") spell it. A kind naming a subresource selects no
// object: creating one is not creating a Pod.
type Kind struct {
	Group, Version, Kind string
	Resource             string
	Subresource          string
	// AnyStar makes "*" in Group, Version or Resource match any, as an
	// admission policy's resource rules read it; policy-controller
	// compares them exactly.
	AnyStar bool
}

// Applies says whether the rule applies to o.
func (m Match) Applies(o Object) bool {
	selects := func(f Filter) bool { return f.Selects(o) }
	if len(m.ExcludeAny) > 0 && slices.ContainsFunc(m.ExcludeAny, selects) {
		return false
	}
	if len(m.ExcludeAll) > 0 && !slices.ContainsFunc(m.ExcludeAll, func(f Filter) bool { return !f.Selects(o) }) {
		return false
	}
	if len(m.Any) > 0 && !slices.ContainsFunc(m.Any, selects) {
		return false
	}
	return !slices.ContainsFunc(m.All, func(f Filter) bool { return !f.Selects(o) })
}

// ReadsNamespaces says whether the match selects namespaces by label.
func (m Match) ReadsNamespaces() bool {
	return slices.ContainsFunc(slices.Concat(m.Any, m.All, m.ExcludeAny, m.ExcludeAll),
		func(f Filter) bool { return f.NamespaceSelector != nil })
}

// Selects says whether the filter selects o.
func (f Filter) Selects(o Object) bool {
	if f.Never {
		return false
	}
	if len(f.Kinds) > 0 && !slices.ContainsFunc(f.Kinds, func(k Kind) bool { return k.selects(o) }) {
		return false
	}
	if len(f.Namespaces) > 0 && !slices.ContainsFunc(f.Namespaces, func(ns string) bool { return wildcard(ns, o.Namespace) }) {
		return false
	}
	if f.NamespaceSelector != nil && o.NamespaceLabels != nil && !f.NamespaceSelector.Matches(labels.Set(o.NamespaceLabels)) {
		return false
	}
	return f.Selector == nil || o.Labels == nil || f.Selector.Matches(labels.Set(o.Labels))
}

func (k Kind) selects(o Object) bool {
	if k.Subresource != "" {
		return false
	}
	if k.Resource != "" {
		// policy-controller's GetMatchingPolicies guesses the resource
		// from the kind as meta.UnsafeGuessKindToResource does.
		gvr, _ := meta.UnsafeGuessKindToResource(schema.GroupVersionKind{Group: o.Group, Version: o.Version, Kind: o.Kind})
		is := func(want, got string) bool { return want == got || (k.AnyStar && want == "*") }
		return is(k.Resource, gvr.Resource) && is(k.Group, o.Group) && (k.Version == "*" || k.Version == o.Version)
	}
	return wildcard(k.Group, o.Group) && wildcard(k.Version, o.Version) && wildcard(k.Kind, o.Kind)
}

// runsPods says whether the kind selects Pods or a built-in workload
// that runs them.
func (k Kind) runsPods() bool {
	for _, o := range podKinds {
		if k.selects(o) {
			return true
		}
	}
	return false
}

// podKinds are Pods and the built-in workloads, as admission sees them.
var podKinds = []Object{
	{Version: "v1", Kind: "Pod"},
	{Version: "v1", Kind: "ReplicationController"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"},
}

// kyvernoKind reads a Kyverno kind selector as its ParseKindSelector does
// (pkg/utils/kube/kind.go): Kind, Version/Kind, Group/Version/Kind, each
// part a wildcard, and the forms naming a subresource.
func kyvernoKind(s string) Kind {
	parts := strings.Split(s, "/")
	last := strings.Split(parts[len(parts)-1], ".")
	parts = append(parts[:len(parts)-1], last...)
	version := func(v string) bool { return v == "*" || kubeVersion.MatchString(v) }
	switch len(parts) {
	case 1:
		return Kind{Group: "*", Version: "*", Kind: parts[0]}
	case 2:
		switch {
		case parts[0] == "*" && parts[1] == "*":
			return Kind{Group: "*", Version: "*", Kind: "*"}
		case parts[0] == "*" && strings.ToLower(parts[1]) == parts[1]:
			return Kind{Group: "*", Version: "*", Kind: "*", Subresource: parts[1]}
		case version(parts[0]):
			return Kind{Group: "*", Version: parts[0], Kind: parts[1]}
		}
		return Kind{Group: "*", Version: "*", Kind: parts[0], Subresource: parts[1]}
	case 3:
		if version(parts[0]) {
			return Kind{Group: "*", Version: parts[0], Kind: parts[1], Subresource: parts[2]}
		}
		return Kind{Group: parts[0], Version: parts[1], Kind: parts[2]}
	}
	return Kind{Group: parts[0], Version: parts[1], Kind: parts[2], Subresource: strings.Join(parts[3:], "/")}
}

// kubeVersion is an API version, as Kyverno tells one from a kind.
var kubeVersion = regexp.MustCompile(`^v\d+((alpha|beta)\d+)?$`)

// readSelector reads a label selector into to, if there is one; one that
// does not read is said unsupported, and selects every object.
func readSelector(to *labels.Selector, raw any, where string) []string {
	if raw == nil {
		return nil
	}
	s, err := labelSelector(raw)
	if err != nil {
		return []string{fmt.Sprintf("%s, which does not read: %v", where, err)}
	}
	*to = s
	return nil
}
