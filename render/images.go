package render

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// workloadGroupKind names a workload kind by API group and kind.
type workloadGroupKind struct {
	group, kind string
}

// Field paths from an object's root to its pod spec.
var (
	podSpecInSpec         = []string{"spec"}
	podSpecInTemplate     = []string{"template", "spec"}
	podSpecInSpecTemplate = []string{"spec", "template", "spec"}
	podSpecInJobTemplate  = []string{"spec", "jobTemplate", "spec", "template", "spec"}
)

// workloadPodSpecs maps the built-in kinds that run pods, legacy groups
// included, to where their pod spec is.
var workloadPodSpecs = map[workloadGroupKind][]string{
	{"", "Pod"}:                   podSpecInSpec,
	{"", "PodTemplate"}:           podSpecInTemplate,
	{"", "ReplicationController"}: podSpecInSpecTemplate,
	{"apps", "Deployment"}:        podSpecInSpecTemplate,
	{"apps", "StatefulSet"}:       podSpecInSpecTemplate,
	{"apps", "DaemonSet"}:         podSpecInSpecTemplate,
	{"apps", "ReplicaSet"}:        podSpecInSpecTemplate,
	{"extensions", "Deployment"}:  podSpecInSpecTemplate,
	{"extensions", "DaemonSet"}:   podSpecInSpecTemplate,
	{"extensions", "ReplicaSet"}:  podSpecInSpecTemplate,
	{"batch", "Job"}:              podSpecInSpecTemplate,
	{"batch", "CronJob"}:          podSpecInJobTemplate,
}

// containerFields are the pod spec fields that list containers.
var containerFields = []string{"containers", "initContainers", "ephemeralContainers"}

// Images lists every container image the objects would run, deduplicated by
// normalised reference, with every place each appears.
//
// It reads the pod specs of Pods, core PodTemplates, the built-in workloads
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
// Job, and CronJob's jobTemplate), matched by API group and kind, and of any
// other object whose root-level spec.template.spec has a "containers" field
// (Argo Rollouts, Knative Services, …). In each pod spec it reads
// containers, initContainers and ephemeralContainers. A containers list
// anywhere else (a policy pattern, a generator template) is not read.
//
// An image that is missing, empty, still a template, not a valid reference,
// or in a field of the wrong shape becomes an UnresolvedImageGap at its
// location instead; nothing is skipped in silence.
//
// Images is pure. Images are sorted by Ref, their locations by file, object
// and path, and gaps by file, object and path. Both results are nil when
// empty.
func Images(objs []Object) ([]Image, []Gap) {
	return imagesExplained(objs, nil)
}

// explainFunc says why an image that is not a usable reference (raw, in
// obj) is so because a value is not known (encrypted, or in an object not
// in the revision), and the reason of its gap; false when it is not.
type explainFunc func(obj Object, raw string) (GapReason, string, bool)

// imagesExplained is Images, with explain consulted for each image that is
// not a usable reference.
func imagesExplained(objs []Object, explain explainFunc) ([]Image, []Gap) {
	c := imageCollector{
		parsed:  map[string]parsedImageRef{},
		byRef:   map[string]int{},
		explain: explain,
	}
	for _, obj := range objs {
		c.object(obj)
	}
	return c.result()
}

// parsedImageRef caches the outcome of parsing one raw reference.
type parsedImageRef struct {
	img Image
	err error
}

// imageCollector gathers images and gaps across objects.
type imageCollector struct {
	parsed  map[string]parsedImageRef
	byRef   map[string]int // Ref → index in images
	images  []Image
	gaps    []Gap
	explain explainFunc // nil: none
}

// imageScan is the scan of one object.
type imageScan struct {
	c   *imageCollector
	obj Object
	id  string
	// labels are the object's labels, pod the Pod it runs
	// (Location.Pod).
	labels map[string]string
	pod    map[string]any
}

// object scans one object's pod spec, if it has one.
func (c *imageCollector) object(obj Object) {
	s := imageScan{c: c, obj: obj, id: obj.ID()}
	spec, path, ok := s.podSpec()
	if !ok {
		return
	}
	s.labels = stringMap(metadata(obj.Content)["labels"])
	s.pod = obj.Content
	if fields := strings.Split(path, "."); len(fields) > 1 {
		// The pod template's metadata is beside its spec.
		cur := obj.Content
		for _, f := range fields[:len(fields)-1] {
			cur, _ = cur[f].(map[string]any)
		}
		meta := maps.Clone(metadata(cur))
		if meta == nil {
			meta = map[string]any{}
		}
		if ns := obj.Namespace(); ns != "" {
			meta["namespace"] = ns
		}
		s.pod = map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
	}
	for _, field := range containerFields {
		s.containerList(spec[field], path+"."+field, field)
	}
}

// podSpec returns the object's pod spec and its path, or false when the
// object has none.
func (s *imageScan) podSpec() (map[string]any, string, bool) {
	gk := workloadGroupKind{s.obj.Group(), s.obj.Kind()}
	if fields, ok := workloadPodSpecs[gk]; ok {
		return s.workloadPodSpec(fields)
	}
	return customPodSpec(s.obj.Content)
}

// runsPods says whether o is a workload, or a custom resource with a pod
// template, whose images Images reads.
func runsPods(o Object) bool {
	if _, ok := workloadPodSpecs[workloadGroupKind{o.Group(), o.Kind()}]; ok {
		return true
	}
	_, _, ok := customPodSpec(o.Content)
	return ok
}

// workloadPodSpec follows fields from the root of a built-in workload. A
// missing field means there is no pod spec; a field that is not a map is a
// gap, since the workload's images cannot be read.
func (s *imageScan) workloadPodSpec(fields []string) (map[string]any, string, bool) {
	cur := s.obj.Content
	path := ""
	for _, f := range fields {
		path = joinFieldPath(path, f)
		v := cur[f]
		if v == nil {
			return nil, "", false
		}
		m, ok := v.(map[string]any)
		if !ok {
			s.gap(path, fmt.Sprintf("%s is %s, not a map", f, describeValue(v)))
			return nil, "", false
		}
		cur = m
	}
	return cur, path, true
}

// customPodSpec returns the root-level spec.template.spec of a custom
// resource when it has a "containers" field (of any shape: a malformed one
// is reported as a gap by the caller). Anything else is not a pod spec.
func customPodSpec(content map[string]any) (map[string]any, string, bool) {
	cur := content
	for _, f := range podSpecInSpecTemplate {
		m, ok := cur[f].(map[string]any)
		if !ok {
			return nil, "", false
		}
		cur = m
	}
	if _, ok := cur["containers"]; !ok {
		return nil, "", false
	}
	return cur, strings.Join(podSpecInSpecTemplate, "."), true
}

// containerList scans one list of containers at path; field names it.
func (s *imageScan) containerList(v any, path, field string) {
	if v == nil {
		return
	}
	list, ok := v.([]any)
	if !ok {
		s.gap(path, fmt.Sprintf("%s is %s, not a list", field, describeValue(v)))
		return
	}
	for i, entry := range list {
		s.container(entry, fmt.Sprintf("%s[%d]", path, i))
	}
}

// container scans one container entry at path.
func (s *imageScan) container(v any, path string) {
	c, ok := v.(map[string]any)
	if !ok {
		s.gap(path, fmt.Sprintf("container entry is %s, not a map", describeValue(v)))
		return
	}
	name, _ := c["name"].(string)
	switch image := c["image"].(type) {
	case nil:
		s.gap(path, containerPrefix(name)+"image is missing")
	case string:
		s.image(name, path, image)
	default:
		s.gap(path, containerPrefix(name)+fmt.Sprintf("image is %s, not a string", describeValue(image)))
	}
}

// image records the reference raw of the container named container at path,
// or a gap when raw is not a usable reference.
func (s *imageScan) image(container, path, raw string) {
	if raw == "" {
		s.gap(path, containerPrefix(container)+"image is empty")
		return
	}
	img, err := s.c.parse(raw)
	if err != nil {
		msg := containerPrefix(container) + imageProblem(raw, err)
		if s.c.explain != nil {
			if reason, why, ok := s.c.explain(s.obj, raw); ok {
				s.gapFor(reason, path, msg+": "+why)
				return
			}
		}
		s.gap(path, msg)
		return
	}
	s.c.add(img, Location{
		Origin:     cloneOrigin(s.obj.Origin),
		Object:     s.id,
		APIVersion: s.obj.APIVersion(),
		Container:  container,
		Path:       path,
		Raw:        raw,
		Labels:     s.labels,
		Pod:        s.pod,
	})
}

// stringMap is a map of strings (labels), without the entries that are
// not strings; nil when there are none.
func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	var out map[string]string
	for k, v := range m {
		if s, ok := v.(string); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = s
		}
	}
	return out
}

// gap records an UnresolvedImageGap at path in the scanned object.
func (s *imageScan) gap(path, msg string) {
	s.gapFor(UnresolvedImageGap, path, msg)
}

// gapFor records a gap with the given reason at path in the scanned object.
func (s *imageScan) gapFor(reason GapReason, path, msg string) {
	s.c.gaps = append(s.c.gaps, Gap{
		Reason:  reason,
		Origin:  cloneOrigin(s.obj.Origin),
		Object:  s.id,
		Path:    path,
		Message: msg,
	})
}

// parse parses raw once per Images call.
func (c *imageCollector) parse(raw string) (Image, error) {
	if p, ok := c.parsed[raw]; ok {
		return p.img, p.err
	}
	img, err := parseImageReference(raw)
	c.parsed[raw] = parsedImageRef{img: img, err: err}
	return img, err
}

// add records loc under the image with img's Ref.
func (c *imageCollector) add(img Image, loc Location) {
	i, ok := c.byRef[img.Ref]
	if !ok {
		i = len(c.images)
		c.byRef[img.Ref] = i
		img.Locations = nil
		c.images = append(c.images, img)
	}
	c.images[i].Locations = append(c.images[i].Locations, loc)
}

// result sorts and returns what was collected.
func (c *imageCollector) result() ([]Image, []Gap) {
	for i := range c.images {
		slices.SortFunc(c.images[i].Locations, compareLocations)
	}
	slices.SortFunc(c.images, func(a, b Image) int { return strings.Compare(a.Ref, b.Ref) })
	slices.SortFunc(c.gaps, compareGaps)
	return c.images, c.gaps
}

// compareLocations orders locations by file, object and path, then by every
// other field so that the order never depends on the input's.
func compareLocations(a, b Location) int {
	return cmp.Or(
		strings.Compare(a.File, b.File),
		strings.Compare(a.Object, b.Object),
		strings.Compare(a.Path, b.Path),
		strings.Compare(a.Container, b.Container),
		strings.Compare(a.Raw, b.Raw),
		strings.Compare(a.APIVersion, b.APIVersion),
		slices.Compare(a.Chain, b.Chain),
	)
}

// compareGaps orders gaps by file, object and path, then by every other
// field.
func compareGaps(a, b Gap) int {
	return cmp.Or(
		strings.Compare(a.File, b.File),
		strings.Compare(a.Object, b.Object),
		strings.Compare(a.Path, b.Path),
		strings.Compare(string(a.Reason), string(b.Reason)),
		strings.Compare(a.Message, b.Message),
		slices.Compare(a.Chain, b.Chain),
	)
}

// imageProblem words why raw is not an image.
func imageProblem(raw string, err error) string {
	if errors.Is(err, ErrUnrenderedTemplate) {
		return fmt.Sprintf("image %q is still a template after rendering", raw)
	}
	return fmt.Sprintf("image %q is not a valid reference: %v", raw, err)
}

// containerPrefix names the container at the start of a gap message, when
// it has a name.
func containerPrefix(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf("container %q: ", name)
}

// maxDescribedString bounds how much of a misplaced string a message quotes.
const maxDescribedString = 64

// describeValue says what kind of YAML value v is, for a gap message.
func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("a string (%q)", truncate(v, maxDescribedString))
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case bool:
		return fmt.Sprintf("a boolean (%t)", v)
	case float64, float32, int, int32, int64, uint, uint32, uint64:
		return fmt.Sprintf("a number (%v)", v)
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// joinFieldPath appends field to a dotted field path.
func joinFieldPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// cloneOrigin copies o so that results never share a Chain with the input
// or with each other.
func cloneOrigin(o Origin) Origin {
	o.Chain = slices.Clone(o.Chain)
	return o
}
