package sops

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// format is a file format sops reads and writes (its cmd/sops/formats).
type format int

const (
	formatBinary format = iota
	formatDotenv
	formatINI
	formatJSON
	formatYAML
)

// String names the format.
func (f format) String() string {
	switch f {
	case formatDotenv:
		return "dotenv"
	case formatINI:
		return "INI"
	case formatJSON:
		return "JSON"
	case formatYAML:
		return "YAML"
	default:
		return "binary"
	}
}

// dockerConfigJSONKey is the data key of a kubernetes.io/dockerconfigjson
// Secret, JSON whatever its (missing) extension says.
const dockerConfigJSONKey = ".dockerconfigjson"

// formatForPath returns the format kustomize-controller decrypts a file or
// Secret data key as: by extension (.yaml/.yml, .json, .env, .ini), a
// .dockerconfigjson key as JSON, anything else binary.
func formatForPath(name string) format {
	switch {
	case strings.HasSuffix(name, dockerConfigJSONKey), strings.HasSuffix(name, ".json"):
		return formatJSON
	case strings.HasSuffix(name, ".yaml"), strings.HasSuffix(name, ".yml"):
		return formatYAML
	case strings.HasSuffix(name, ".env"):
		return formatDotenv
	case strings.HasSuffix(name, ".ini"):
		return formatINI
	default:
		return formatBinary
	}
}

// marker returns the bytes every encrypted file of a format contains;
// kustomize-controller leaves content without them alone. (A binary file is
// stored in a JSON envelope.)
func (f format) marker() []byte {
	switch f {
	case formatDotenv:
		return []byte("sops_mac=ENC[")
	case formatINI:
		return []byte("[sops]")
	case formatYAML:
		return []byte("mac: ENC[")
	default:
		return []byte(`"mac": "ENC[`)
	}
}

// detectFormat returns the format whose marker content contains, for a
// Secret data value that holds an encrypted file. kustomize-controller
// checks the markers in random (map) order; content with markers of several
// formats is checked here in a fixed order: JSON, YAML, dotenv, INI.
func detectFormat(content []byte) (format, bool) {
	for _, f := range []format{formatJSON, formatYAML, formatDotenv, formatINI} {
		if bytes.Contains(content, f.marker()) {
			return f, true
		}
	}
	return 0, false
}

// load parses an encrypted file of a format and extracts its metadata.
func load(in []byte, f format) (*document, error) {
	var (
		branches []branch
		err      error
	)
	switch f {
	case formatYAML:
		branches, err = loadYAML(in)
	case formatDotenv:
		branches, err = loadDotenv(in)
	case formatINI:
		branches, err = loadINI(in)
	default:
		branches, err = loadJSON(in)
	}
	if err != nil {
		return nil, err
	}
	var metaTree branch
	switch f {
	case formatDotenv:
		branches, metaTree, err = extractFlatMetadata(branches)
	default:
		branches, metaTree, err = extractMetadata(branches, f == formatINI)
	}
	if err != nil {
		return nil, err
	}
	if metaTree == nil {
		return nil, errNoMetadata
	}
	meta, err := decodeMetadata(metaTree)
	if err != nil {
		return nil, err
	}
	return &document{branches: branches, meta: meta}, nil
}

// extractMetadata removes the "sops" entries from every document and
// returns the one of the first document. INI stores it flattened, with
// newlines escaped.
func extractMetadata(branches []branch, flat bool) ([]branch, branch, error) {
	var meta branch
	found := false
	for bi, b := range branches {
		kept := b[:0:0]
		for _, it := range b {
			if it.key != metadataKey {
				kept = append(kept, it)
				continue
			}
			if bi != 0 {
				continue
			}
			if found {
				return nil, nil, errors.New("invalid sops metadata: more than one sops entry")
			}
			found = true
			m, ok := it.value.(branch)
			if !ok {
				return nil, nil, errors.New("invalid sops metadata: the sops entry is not a mapping")
			}
			meta = m
		}
		branches[bi] = kept
	}
	if !flat || meta == nil {
		return branches, meta, nil
	}
	for i, it := range meta {
		if s, ok := it.value.(string); ok {
			meta[i].value = strings.ReplaceAll(s, `\n`, "\n")
		}
	}
	m, err := unflatten(meta)
	if err != nil {
		return nil, nil, err
	}
	return branches, m, nil
}

// extractFlatMetadata moves the "sops_"-prefixed entries of the first
// document (dotenv) out as metadata, unflattened.
func extractFlatMetadata(branches []branch) ([]branch, branch, error) {
	if len(branches) == 0 {
		return branches, nil, nil
	}
	var meta branch
	kept := branches[0][:0:0]
	for _, it := range branches[0] {
		if k, ok := it.key.(string); ok && strings.HasPrefix(k, metadataPrefix) {
			meta = append(meta, item{key: k[len(metadataPrefix):], value: it.value})
			continue
		}
		kept = append(kept, it)
	}
	branches[0] = kept
	if meta == nil {
		return branches, nil, nil
	}
	m, err := unflatten(meta)
	if err != nil {
		return nil, nil, err
	}
	return branches, m, nil
}

// emit writes decrypted documents in a format.
func emit(branches []branch, f format) ([]byte, error) {
	switch f {
	case formatYAML:
		return emitYAML(branches)
	case formatDotenv:
		return emitDotenv(branches)
	case formatINI:
		return emitINI(branches)
	case formatJSON:
		return emitJSON(branches)
	default:
		return emitBinary(branches)
	}
}

// decryptBytes is kustomize-controller's SopsDecryptWithFormat: load an
// encrypted file in one format, recover the data key, decrypt the values
// and write them in another format.
func (k Keys) decryptBytes(in []byte, inF, outF format) (out []byte, err error) {
	if len(in) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, len(in), maxSize)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("decrypting %s as %s failed", inF, outF)
		}
	}()
	doc, err := load(in, inF)
	if err != nil {
		return nil, fmt.Errorf("loading encrypted %s: %w", inF, err)
	}
	dataKey, err := k.dataKey(&doc.meta)
	if err != nil {
		return nil, &keyLookupError{err: err, meta: &doc.meta}
	}
	if err := decryptTree(doc, dataKey, k.checkMAC); err != nil {
		return nil, err
	}
	out, err = emit(doc.branches, outF)
	if err != nil {
		return nil, fmt.Errorf("writing decrypted %s as %s: %w", inF, outF, err)
	}
	return out, nil
}
