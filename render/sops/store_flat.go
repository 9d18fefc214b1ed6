package sops

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// Flat formats (dotenv, INI) store metadata flattened: nested keys joined
// with "__map_" and list positions with "__list_<n>", as sops'
// stores/flatten.go does.
const (
	mapSeparator  = "__map_"
	listSeparator = "__list_"
)

// loadDotenv parses a dotenv file as sops' stores/dotenv does: one
// KEY=value per line, "\n" escapes in values, '#' lines are comments.
func loadDotenv(in []byte) ([]branch, error) {
	var b branch
	for _, line := range bytes.Split(in, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == '#' {
			b = append(b, item{key: comment{Value: string(line[1:])}})
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return nil, errors.New("parsing dotenv: a line without '='")
		}
		if len(b) >= maxNodes {
			return nil, errTooLarge
		}
		b = append(b, item{key: string(k), value: strings.ReplaceAll(string(v), `\n`, "\n")})
	}
	return []branch{b}, nil
}

// emitDotenv writes the first document as a dotenv file.
func emitDotenv(branches []branch) ([]byte, error) {
	if len(branches) == 0 {
		return nil, errors.New("no document to write")
	}
	var buf bytes.Buffer
	for _, it := range branches[0] {
		switch it.value.(type) {
		case branch, []any:
			return nil, fmt.Errorf("writing dotenv: the value of %s is not a scalar", clip(fmt.Sprint(it.key), 200))
		}
		if c, ok := it.key.(comment); ok {
			buf.WriteString("#" + c.Value + "\n")
			continue
		}
		var v string
		if s, ok := it.value.(string); ok {
			v = strings.ReplaceAll(s, "\n", `\n`)
		} else {
			v = scalarString(it.value)
		}
		fmt.Fprintf(&buf, "%s=%s\n", it.key, v)
	}
	return buf.Bytes(), nil
}

// scalarString renders a scalar as sops' stores.ValToString does for flat
// formats.
func scalarString(v any) string {
	switch v := v.(type) {
	case float64:
		s := strconv.FormatFloat(v, 'G', -1, 64)
		if !strings.ContainsAny(s, ".E") {
			s = strconv.FormatFloat(v, 'f', 1, 64)
		}
		return s
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.Format(time.RFC3339)
	case fmt.Stringer:
		return v.String()
	default:
		return fmt.Sprintf("%v", v)
	}
}

// iniOptions are the options sops reads and writes INI files with.
var iniOptions = ini.LoadOptions{AllowNonUniqueSections: true}

// loadINI parses an INI file: each section is a top-level key whose value
// holds the section's keys, with comments.
func loadINI(in []byte) (out []branch, err error) {
	defer func() {
		if recover() != nil {
			out, err = nil, errors.New("parsing INI failed")
		}
	}()
	f, err := ini.LoadSources(iniOptions, in)
	if err != nil {
		return nil, &clippedError{msg: "parsing INI: " + err.Error()}
	}
	var b branch
	for _, s := range f.Sections() {
		var entries branch
		if s.Comment != "" {
			entries = append(entries, item{key: comment{Value: stripINIComment(s.Comment)}})
		}
		for _, k := range s.Keys() {
			entries = append(entries, item{key: k.Name(), value: k.Value()})
			if k.Comment != "" {
				entries = append(entries, item{key: comment{Value: stripINIComment(k.Comment)}})
			}
		}
		b = append(b, item{key: s.Name(), value: entries})
	}
	return []branch{b}, nil
}

// stripINIComment removes the comment character and following spaces.
func stripINIComment(c string) string {
	switch {
	case strings.HasPrefix(c, ";"):
		return strings.TrimLeft(c, "; ")
	case strings.HasPrefix(c, "#"):
		return strings.TrimLeft(c, "# ")
	}
	return c
}

// emitINI writes the documents as an INI file.
func emitINI(branches []branch) (out []byte, err error) {
	defer func() {
		if recover() != nil {
			out, err = nil, errors.New("writing INI failed")
		}
	}()
	f := ini.Empty(iniOptions)
	f.DeleteSection(ini.DefaultSection)
	for _, b := range branches {
		for _, it := range b {
			if _, ok := it.key.(comment); ok {
				continue
			}
			if err := addINISection(f, it); err != nil {
				return nil, err
			}
		}
	}
	var buf bytes.Buffer
	_, _ = f.WriteTo(&buf)
	return buf.Bytes(), nil
}

// addINISection writes one section.
func addINISection(f *ini.File, it item) error {
	name, _ := it.key.(string)
	s, err := f.NewSection(name)
	if err != nil {
		return fmt.Errorf("writing INI section %s: %w", clip(name, 200), err)
	}
	entries, ok := it.value.(branch)
	if !ok {
		return errors.New("writing INI: a section value is not a mapping")
	}
	if len(entries) > 0 {
		if c, ok := entries[0].key.(comment); ok {
			s.Comment = c.Value
			entries = entries[1:]
		}
	}
	var last *ini.Key
	for _, e := range entries {
		if c, ok := e.key.(comment); ok {
			if last != nil {
				last.Comment = c.Value
			}
			continue
		}
		key, _ := e.key.(string)
		if last, err = s.NewKey(key, scalarString(e.value)); err != nil {
			return fmt.Errorf("writing INI key %s: %w", clip(key, 200), err)
		}
	}
	return nil
}

// unflatten rebuilds nested metadata from flattened keys.
func unflatten(b branch) (branch, error) {
	root := &flatNode{}
	for _, it := range b {
		if _, ok := it.key.(comment); ok {
			continue
		}
		key, ok := it.key.(string)
		if !ok {
			return nil, fmt.Errorf("invalid sops metadata: a key of type %T", it.key)
		}
		if err := root.place(tokenize(key), it.value); err != nil {
			return nil, &clippedError{msg: fmt.Sprintf("invalid sops metadata: %q: %v", key, err)}
		}
	}
	v, err := root.build()
	if err != nil {
		return nil, fmt.Errorf("invalid sops metadata: %w", err)
	}
	out, ok := v.(branch)
	if !ok {
		return nil, errors.New("invalid sops metadata: not a mapping")
	}
	return out, nil
}

// flatToken is one step of a flattened key: a map key or a list position.
type flatToken struct {
	key   string
	index int
	list  bool
}

// tokenize splits a flattened key at its separators. A list position that
// is not a number counts as 0, as in sops.
func tokenize(path string) []flatToken {
	var out []flatToken
	cur, list := 0, false
	finish := func(end int) {
		s := path[cur:end]
		if list {
			n, _ := strconv.Atoi(strings.TrimPrefix(s, listSeparator))
			out = append(out, flatToken{index: n, list: true})
		} else {
			out = append(out, flatToken{key: strings.TrimPrefix(s, mapSeparator)})
		}
		cur = end
	}
	for i := 0; i < len(path); {
		switch {
		case strings.HasPrefix(path[i:], mapSeparator):
			finish(i)
			list = false
			i += len(mapSeparator)
		case strings.HasPrefix(path[i:], listSeparator):
			finish(i)
			list = true
			i += len(listSeparator)
		default:
			i++
		}
	}
	finish(len(path))
	return out
}

// flatNode is a node of metadata being rebuilt.
type flatNode struct {
	value   any
	set     bool
	keys    map[string]*flatNode
	indices map[int]*flatNode
}

// place stores value at the path of tokens.
func (n *flatNode) place(tokens []flatToken, value any) error {
	for _, t := range tokens {
		n = n.child(t)
	}
	if n.set {
		return errors.New("duplicate value")
	}
	n.value, n.set = value, true
	return nil
}

// child returns (creating it) the child for a token.
func (n *flatNode) child(t flatToken) *flatNode {
	if t.list {
		if n.indices == nil {
			n.indices = map[int]*flatNode{}
		}
		if n.indices[t.index] == nil {
			n.indices[t.index] = &flatNode{}
		}
		return n.indices[t.index]
	}
	if n.keys == nil {
		n.keys = map[string]*flatNode{}
	}
	if n.keys[t.key] == nil {
		n.keys[t.key] = &flatNode{}
	}
	return n.keys[t.key]
}

// build converts the node: a value, a mapping with sorted keys, or a list
// whose positions run from 0 without gaps.
func (n *flatNode) build() (any, error) {
	kinds := 0
	for _, b := range []bool{n.set, len(n.keys) > 0, len(n.indices) > 0} {
		if b {
			kinds++
		}
	}
	switch {
	case kinds > 1:
		return nil, errors.New("type mismatch")
	case n.set:
		return n.value, nil
	case len(n.indices) > 0:
		return n.buildList()
	}
	names := make([]string, 0, len(n.keys))
	for k := range n.keys {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(branch, 0, len(names))
	for _, k := range names {
		v, err := n.keys[k].build()
		if err != nil {
			return nil, err
		}
		out = append(out, item{key: k, value: v})
	}
	return out, nil
}

// buildList converts list positions.
func (n *flatNode) buildList() (any, error) {
	lo, hi := math.MaxInt, math.MinInt
	for i := range n.indices {
		lo, hi = min(lo, i), max(hi, i)
	}
	if lo != 0 || hi+1 != len(n.indices) {
		return nil, errors.New("incomplete list")
	}
	out := make([]any, hi+1)
	for i, c := range n.indices {
		v, err := c.build()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
