package sops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML store reads and writes documents the way sops' stores/yaml does:
// every document of a stream is a branch, comments become items of their
// own (head and foot comments before and after the entry they belong to,
// line comments inline), aliases are expanded, and decrypted documents are
// written with four-space indentation.

// yamlIndent is the indentation sops writes YAML with.
const yamlIndent = 4

// loadYAML parses a YAML stream into branches.
func loadYAML(in []byte) ([]branch, error) {
	if len(in) > 0 {
		// Like sops: decoding the first document into a map rejects
		// duplicate keys (and excessive aliasing) up front.
		if err := yaml.NewDecoder(bytes.NewReader(in)).Decode(make(map[string]any)); err != nil {
			return nil, &clippedError{msg: "parsing YAML: " + err.Error()}
		}
	}
	r := &yamlReader{}
	dec := yaml.NewDecoder(bytes.NewReader(in))
	var out []branch
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, &clippedError{msg: "parsing YAML: " + err.Error()}
		}
		b, err := r.appendNode(&doc, nil, false)
		if err != nil {
			return nil, fmt.Errorf("parsing YAML: %w", err)
		}
		out = append(out, b)
	}
}

// yamlReader converts YAML nodes to branches, bounding depth and the number
// of values (aliases can multiply a small input).
type yamlReader struct {
	depth int
	nodes int
}

// count guards the number of values read.
func (r *yamlReader) count() error {
	if r.nodes++; r.nodes > maxNodes {
		return errTooLarge
	}
	return nil
}

// enter counts a container and guards the nesting depth; leave undoes the
// depth.
func (r *yamlReader) enter() error {
	if err := r.count(); err != nil {
		return err
	}
	if r.depth++; r.depth > maxDepth {
		return errTooDeep
	}
	return nil
}

// leave ends a container.
func (r *yamlReader) leave() { r.depth-- }

// appendNode appends the entries of a document or mapping node to b.
// handled says the node's own comments were taken care of by the caller.
func (r *yamlReader) appendNode(n *yaml.Node, b branch, handled bool) (branch, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	if !handled {
		b = appendComments(b, n.HeadComment, false)
		b = appendComments(b, n.LineComment, false)
	}
	var err error
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if b, err = r.appendNode(c, b, false); err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		return nil, errors.New("YAML documents that are sequences are not supported")
	case yaml.MappingNode:
		if b, err = r.appendMapping(n, b); err != nil {
			return nil, err
		}
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return b, nil
		}
		return nil, errors.New("YAML documents that are values are not supported")
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, errors.New("an alias without anchor")
		}
		if b, err = r.appendNode(n.Alias, b, false); err != nil {
			return nil, err
		}
	}
	if !handled {
		b = appendComments(b, n.FootComment, false)
	}
	return b, nil
}

// appendMapping appends the entries of a mapping node with their comments.
func (r *yamlReader) appendMapping(n *yaml.Node, b branch) (branch, error) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		b = appendComments(b, k.HeadComment, false)
		b = appendComments(b, k.LineComment, false)
		scalar := v.Kind == yaml.ScalarNode || v.Kind == yaml.AliasNode
		if scalar {
			b = appendComments(b, v.HeadComment, false)
			b = appendComments(b, v.LineComment, true)
		}
		var key any
		_ = k.Decode(&key)
		val, err := r.value(v, scalar)
		if err != nil {
			return nil, err
		}
		b = append(b, item{key: key, value: val})
		if scalar {
			b = appendComments(b, v.FootComment, false)
		}
		b = appendComments(b, k.FootComment, false)
	}
	return b, nil
}

// value converts a value node.
func (r *yamlReader) value(n *yaml.Node, handled bool) (any, error) {
	switch n.Kind {
	case yaml.SequenceNode:
		return r.sequence(n, handled)
	case yaml.MappingNode:
		return r.appendNode(n, branch{}, handled)
	case yaml.ScalarNode:
		if err := r.count(); err != nil {
			return nil, err
		}
		var v any
		_ = n.Decode(&v)
		return v, nil
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, errors.New("an alias without anchor")
		}
		if err := r.enter(); err != nil {
			return nil, err
		}
		defer r.leave()
		return r.value(n.Alias, false)
	case yaml.DocumentNode:
		return nil, errors.New("a document inside a document")
	}
	return nil, nil
}

// sequence converts a sequence node; comments become elements.
func (r *yamlReader) sequence(n *yaml.Node, handled bool) ([]any, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	var out []any
	if !handled {
		out = appendListComments(out, n.HeadComment, false)
		out = appendListComments(out, n.LineComment, false)
	}
	for _, e := range n.Content {
		out = appendListComments(out, e.HeadComment, false)
		out = appendListComments(out, e.LineComment, true)
		v, err := r.value(e, true)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		out = appendListComments(out, e.FootComment, false)
	}
	if !handled {
		out = appendListComments(out, n.FootComment, false)
	}
	return out, nil
}

// commentLines splits a YAML comment into lines without their leading '#'.
func commentLines(text string) []string {
	if text == "" {
		return nil
	}
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line != "" {
			out = append(out, line[1:])
		}
	}
	return out
}

// appendComments appends the lines of a comment to a branch.
func appendComments(b branch, text string, inline bool) branch {
	for _, l := range commentLines(text) {
		b = append(b, item{key: comment{Value: l, Inline: inline}})
	}
	return b
}

// appendListComments appends the lines of a comment to a sequence.
func appendListComments(l []any, text string, inline bool) []any {
	for _, c := range commentLines(text) {
		l = append(l, comment{Value: c, Inline: inline})
	}
	return l
}

// emitYAML writes the documents as a YAML stream.
func emitYAML(branches []branch) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(yamlIndent)
	for _, b := range branches {
		mapping := &yaml.Node{Kind: yaml.MappingNode}
		mappingFrom(b, mapping)
		doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{mapping}}
		if err := encodeYAML(enc, doc); err != nil {
			return nil, err
		}
	}
	_ = enc.Close()
	return buf.Bytes(), nil
}

// encodeYAML encodes one document; the YAML encoder reports some problems
// by panicking, which becomes an error here.
func encodeYAML(enc *yaml.Encoder, doc *yaml.Node) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("writing the decrypted YAML failed")
		}
	}()
	if enc.Encode(doc) != nil {
		return errors.New("writing the decrypted YAML failed")
	}
	return nil
}

// nodeOf converts a value to a YAML node.
func nodeOf(v any) *yaml.Node {
	switch v := v.(type) {
	case branch:
		n := &yaml.Node{Kind: yaml.MappingNode}
		mappingFrom(v, n)
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		sequenceFrom(v, n)
		return n
	default:
		n := &yaml.Node{}
		_ = n.Encode(v)
		return n
	}
}

// pendingComments collects comment items until the entry they belong to.
type pendingComments struct {
	head, inline []string
}

// add records a comment.
func (p *pendingComments) add(c comment) {
	if c.Inline {
		p.inline = append(p.inline, c.Value)
	} else {
		p.head = append(p.head, c.Value)
	}
}

// flush puts the comments left over at the end of a mapping or sequence:
// on the container when it has no entry, else after its last entry.
func (p *pendingComments) flush(container, last *yaml.Node) {
	rest := append(p.head, p.inline...)
	if len(rest) == 0 {
		return
	}
	if last == nil {
		addHead(container, rest)
	} else {
		addFoot(last, rest)
	}
}

// mappingFrom fills a mapping node from a branch.
func mappingFrom(b branch, mapping *yaml.Node) {
	var p pendingComments
	var lastKey *yaml.Node
	for _, it := range b {
		if c, ok := it.key.(comment); ok {
			p.add(c)
			continue
		}
		if lastKey == nil {
			addHead(mapping, p.head)
			p.head = nil
		}
		k := &yaml.Node{}
		_ = k.Encode(it.key)
		addHead(k, p.head)
		p.head = nil
		v := nodeOf(it.value)
		addLine(v, p.inline)
		p.inline = nil
		mapping.Content = append(mapping.Content, k, v)
		lastKey = k
	}
	p.flush(mapping, lastKey)
}

// sequenceFrom fills a sequence node from a list.
func sequenceFrom(l []any, seq *yaml.Node) {
	var p pendingComments
	var last *yaml.Node
	for _, e := range l {
		if c, ok := e.(comment); ok {
			p.add(c)
			continue
		}
		if last == nil {
			addHead(seq, p.head)
			p.head = nil
		}
		n := nodeOf(e)
		addHead(n, p.head)
		p.head = nil
		addLine(n, p.inline)
		p.inline = nil
		seq.Content = append(seq.Content, n)
		last = n
	}
	p.flush(seq, last)
}

// commentText renders comment lines as a YAML comment.
func commentText(lines []string) string {
	return "#" + strings.Join(lines, "\n#")
}

// addHead puts comment lines before a node's own head comment.
func addHead(n *yaml.Node, lines []string) {
	if len(lines) == 0 {
		return
	}
	if n.HeadComment != "" {
		n.HeadComment = commentText(lines) + "\n" + n.HeadComment
	} else {
		n.HeadComment = commentText(lines)
	}
}

// addFoot appends comment lines to a node's foot comment.
func addFoot(n *yaml.Node, lines []string) {
	if n.FootComment != "" {
		n.FootComment += "\n" + commentText(lines)
	} else {
		n.FootComment = commentText(lines)
	}
}

// addLine appends comment lines to a node's line comment.
func addLine(n *yaml.Node, lines []string) {
	if len(lines) == 0 {
		return
	}
	if n.LineComment != "" {
		n.LineComment += "\n" + commentText(lines)
	} else {
		n.LineComment = commentText(lines)
	}
}
