package sops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The JSON store reads and writes documents the way sops' stores/json does:
// a top-level object read token by token (so key order and duplicate keys
// are kept, and anything after the object is ignored), integers as int and
// other numbers as float64; written back with tab indentation.

// loadJSON parses a JSON document into one branch.
func loadJSON(in []byte) ([]branch, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("parsing JSON: sops only supports a top-level object")
	}
	r := &jsonReader{dec: dec}
	b, err := r.object()
	if err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	return []branch{b}, nil
}

// jsonReader reads values from a token stream, bounding depth and size.
type jsonReader struct {
	dec   *json.Decoder
	depth int
	nodes int
}

// count guards the number of values read.
func (r *jsonReader) count() error {
	r.nodes++
	if r.nodes > maxNodes {
		return errTooLarge
	}
	return nil
}

// object reads the members of an object whose '{' was consumed.
func (r *jsonReader) object() (branch, error) {
	if r.depth++; r.depth > maxDepth {
		return nil, errTooDeep
	}
	defer func() { r.depth-- }()
	var out branch
	for {
		tok, err := r.dec.Token()
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return out, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("expected an object key")
		}
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		out = append(out, item{key: key, value: v})
	}
}

// array reads the elements of an array whose '[' was consumed.
func (r *jsonReader) array() ([]any, error) {
	if r.depth++; r.depth > maxDepth {
		return nil, errTooDeep
	}
	defer func() { r.depth-- }()
	var out []any
	for {
		if !r.dec.More() {
			if _, err := r.dec.Token(); err != nil {
				return nil, err
			}
			return out, nil
		}
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// value reads one value.
func (r *jsonReader) value() (any, error) {
	if err := r.count(); err != nil {
		return nil, err
	}
	tok, err := r.dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return r.object()
		}
		if t == '[' {
			return r.array()
		}
		return nil, fmt.Errorf("unexpected %q", rune(t))
	case json.Number:
		return jsonNumber(t)
	default:
		return t, nil
	}
}

// jsonNumber is an int when the number is an integer that fits, else a
// float64.
func jsonNumber(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil {
		return int(i), nil
	}
	f, err := n.Float64()
	if err != nil {
		return nil, errors.New("a number out of range")
	}
	return f, nil
}

// emitJSON writes the first document as indented JSON, as sops does for
// decrypted JSON output.
func emitJSON(branches []branch) ([]byte, error) {
	if len(branches) == 0 {
		return nil, errors.New("no document to write")
	}
	var compact bytes.Buffer
	if err := writeJSONValue(&compact, branches[0]); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "\t"); err != nil {
		return nil, errors.New("indenting the decrypted JSON")
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// writeJSONValue writes a value compactly; comments are dropped. Scalars
// are written by encoding/json (HTML characters escaped, a time as RFC
// 3339, a decrypted comment as its structure), as sops does. Errors never
// quote the value.
func writeJSONValue(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case branch:
		buf.WriteByte('{')
		first := true
		for _, it := range v {
			if _, ok := it.key.(comment); ok {
				continue
			}
			key, ok := it.key.(string)
			if !ok {
				return fmt.Errorf("a key of type %T", it.key)
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			kb, _ := json.Marshal(key)
			buf.Write(kb)
			buf.WriteString(": ")
			if err := writeJSONValue(buf, it.value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		first := true
		for _, e := range v {
			if _, ok := e.(comment); ok {
				continue
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			if err := writeJSONValue(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("a decrypted %T cannot be written as JSON", v)
		}
		buf.Write(b)
	}
	return nil
}

// emitBinary returns the "data" string of the first document: the content
// of a binary file sops encrypted in a JSON envelope.
func emitBinary(branches []branch) ([]byte, error) {
	if len(branches) != 1 {
		return nil, errors.New("writing binary data: there must be exactly one document")
	}
	for _, it := range branches[0] {
		if it.key == "data" {
			s, ok := it.value.(string)
			if !ok {
				return nil, errors.New(`writing binary data: the "data" key does not hold a string`)
			}
			return []byte(s), nil
		}
	}
	return nil, errors.New(`writing binary data: no "data" key`)
}
