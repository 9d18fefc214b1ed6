package render

// Pin returns copies of objs whose container images are pinned: every
// image whose normalised reference (ParseReference's Ref) is a key of
// pinned is rewritten to its value ("registry/repository:tag@sha256:…"),
// in every pod spec Images reads (containers, initContainers and
// ephemeralContainers of Pods, PodTemplates, the built-in workloads, CronJob
// templates and custom resources with a root-level spec.template.spec).
// Everything else, other images included, is copied as it is; objs are not
// changed. It returns how many image fields it rewrote.
func Pin(objs []Object, pinned map[string]string) ([]Object, int) {
	out := make([]Object, len(objs))
	n := 0
	for i, obj := range objs {
		c := Object{Content: deepCopy(obj.Content).(map[string]any), Origin: cloneOrigin(obj.Origin)}
		s := imageScan{c: &imageCollector{parsed: map[string]parsedImageRef{}, byRef: map[string]int{}}, obj: c, id: c.ID()}
		if spec, _, ok := s.podSpec(); ok {
			for _, field := range containerFields {
				list, _ := spec[field].([]any)
				for _, entry := range list {
					container, ok := entry.(map[string]any)
					if !ok {
						continue
					}
					raw, _ := container["image"].(string)
					img, err := parseImageReference(raw)
					if err != nil {
						continue
					}
					if p, ok := pinned[img.Ref]; ok {
						container["image"] = p
						n++
					}
				}
			}
		}
		out[i] = c
	}
	return out, n
}

// deepCopy copies a decoded YAML or JSON value: maps and lists are copied,
// scalars shared.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	default:
		return v
	}
}
