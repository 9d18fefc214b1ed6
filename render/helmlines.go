package render

import (
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// locateInHelmRelease sets the lines of an image a chart rendered: Line is
// where the HelmRelease's document starts, and SetBy the line in its
// spec.values or spec.postRenderers that gave the image, when one value
// there can be told to have: the reference itself, or its repository.
// Values from valuesFrom or the chart's defaults are not traced.
func (l *lineFinder) locateInHelmRelease(loc *Location) {
	hr, _ := l.find(loc.File, objectQuery{object: loc.HelmRelease, group: helmGroup})
	if hr == nil {
		return
	}
	loc.Line = hr.node.Line
	spec := value(hr.node, "spec")
	var best *yaml.Node
	bestScore := 0
	for _, field := range []string{"values", "postRenderers"} {
		eachScalar(value(spec, field), 0, func(n *yaml.Node) {
			if s := imageValueScore(n.Value, loc.Raw); s > bestScore {
				best, bestScore = n, s
			}
		})
	}
	if best != nil {
		loc.SetBy = &Origin{File: loc.File, Line: best.Line}
	}
}

// eachScalar calls fn on every scalar below n, depth first, in document
// order, to the decoder's nesting bound.
func eachScalar(n *yaml.Node, depth int, fn func(*yaml.Node)) {
	n = resolve(n)
	if n == nil || depth > maxMergeDepth*8 {
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		fn(n)
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			eachScalar(n.Content[i], depth+1, fn)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			eachScalar(c, depth+1, fn)
		}
	}
}

// imageValueScore says how well a values scalar accounts for raw, an
// image reference a chart rendered: the whole reference beats a repository
// that ends it (with its registry, then without), longer beats shorter; 0
// is no match. A bare tag is not matched: many values are "1.2.3".
func imageValueScore(v, raw string) int {
	if v == "" || !strings.ContainsAny(v, "/") && v != raw {
		return 0
	}
	if v == raw {
		return 3 << 16
	}
	repo := raw
	if i := strings.IndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	switch {
	case repo == v:
		return 2<<16 + len(v)
	case strings.HasSuffix(repo, "/"+v):
		return 1<<16 + len(v)
	}
	return 0
}
