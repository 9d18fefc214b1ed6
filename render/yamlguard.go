package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Bounds on the YAML of a revision, checked before kustomize reads any of
// it: kustomize expands every alias (kyaml's DeAnchor) and copies every
// node, with no bound of its own, so a "billion laughs" file exhausts the
// process's memory and a deeply nested one takes minutes. Real manifests
// (CRD schemas included) nest a few dozen levels and use aliases sparingly.
const (
	maxYAMLDepth         = 512
	maxYAMLExpandedNodes = 1_000_000
	// suspectYAMLNesting is the indentation or bracket depth from which a
	// file is parsed to measure its nesting; files with neither aliases nor
	// such nesting are not parsed twice.
	suspectYAMLNesting = 128
)

// guardYAML checks every file under root that kustomize may read as YAML
// (*.yaml, *.yml, *.json, Kustomization) against the bounds above, and
// returns the first file over one (slash-separated, relative to root) and
// why.
func guardYAML(root string) (file string, err error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	tree := r.FS()
	err = fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !isYAMLName(d.Name()) {
			return nil
		}
		b, err := fs.ReadFile(tree, p)
		if err != nil {
			return err
		}
		if !suspectYAML(b) {
			return nil
		}
		if err := checkYAML(b); err != nil {
			file = p
			return err
		}
		return nil
	})
	return file, err
}

func isYAMLName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return name == "Kustomization"
}

// suspectYAML says whether b may break a bound: it has an alias, or lines
// indented, or brackets nested, beyond suspectYAMLNesting. It is a cheap
// over-approximation (quotes and comments are not told apart).
func suspectYAML(b []byte) bool {
	if bytes.IndexByte(b, '*') >= 0 {
		return true
	}
	depth := 0
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		indent := len(line) - len(bytes.TrimLeft(line, " \t-"))
		if indent > suspectYAMLNesting {
			return true
		}
		for _, c := range line {
			switch c {
			case '[', '{':
				if depth++; depth > suspectYAMLNesting {
					return true
				}
			case ']', '}':
				depth--
			}
		}
	}
	return false
}

// checkYAML parses every document of b and measures it: nesting depth and
// the number of nodes once every alias is expanded (an anchored node
// counted, with its height, once per use; computed without expanding
// anything).
func checkYAML(b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	expanded := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// Left for the decoders render uses to report, as they always
			// have: this check is about bounds, not syntax.
			return nil //nolint:nilerr // see above
		}
		m := yamlMeasure{seen: map[*yaml.Node]yamlSize{}, open: map[*yaml.Node]bool{}}
		s, err := m.measure(&doc)
		if err != nil {
			return err
		}
		if expanded += s.nodes; expanded > maxYAMLExpandedNodes {
			return errExpansion
		}
	}
}

var (
	errExpansion = fmt.Errorf("YAML aliases expand to more than %d nodes", maxYAMLExpandedNodes)
	errDepth     = fmt.Errorf("YAML nested deeper than %d levels, aliases expanded", maxYAMLDepth)
	errCycle     = errors.New("a YAML alias refers to a node that contains it")
)

// yamlSize is a node's size with its aliases expanded.
type yamlSize struct{ nodes, height int }

// yamlMeasure measures a document, remembering the size of each node an
// alias points at.
type yamlMeasure struct {
	seen map[*yaml.Node]yamlSize
	// open are the nodes being measured: an alias to one of them is a
	// node that contains itself, which would expand forever.
	open map[*yaml.Node]bool
}

// measure returns the size of n with its aliases expanded, failing beyond
// the bounds. Recursion follows the document's own nesting, which the
// YAML decoder bounds; aliases are measured once each.
func (m yamlMeasure) measure(n *yaml.Node) (yamlSize, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if s, ok := m.seen[n]; ok {
		return s, nil
	}
	if m.open[n] {
		return yamlSize{}, errCycle
	}
	m.open[n] = true
	defer delete(m.open, n)
	s := yamlSize{nodes: 1}
	for _, c := range n.Content {
		cs, err := m.measure(c)
		if err != nil {
			return yamlSize{}, err
		}
		s.nodes += cs.nodes
		s.height = max(s.height, cs.height+1)
		switch {
		case s.nodes > maxYAMLExpandedNodes:
			return yamlSize{}, errExpansion
		case s.height > maxYAMLDepth:
			return yamlSize{}, errDepth
		}
	}
	m.seen[n] = s
	return s, nil
}
