package sops

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
)

// decryptAnnotation set to "disabled" (any case) turns decryption off for
// an object, as kustomize-controller honours it.
const decryptAnnotation = "kustomize.toolkit.fluxcd.io/decrypt"

// Encrypted reports whether obj carries SOPS metadata the way
// kustomize-controller detects it: a non-empty "sops" mapping with a
// non-empty "mac".
func Encrypted(obj map[string]any) bool {
	meta, ok := obj[metadataKey].(map[string]any)
	if !ok || len(meta) == 0 {
		return false
	}
	mac, ok := meta["mac"]
	return ok && !emptyValue(mac)
}

// emptyValue is kyaml's "nil or empty" for a decoded value: null, an empty
// mapping or an empty sequence.
func emptyValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

// Decrypt returns obj as kustomize-controller would apply it, following its
// Decryptor.DecryptResource:
//
//   - an object with decryption disabled by the
//     kustomize.toolkit.fluxcd.io/decrypt: disabled annotation is returned
//     as is;
//   - an object with SOPS metadata (Encrypted) is decrypted whole: it goes
//     through sops' JSON store, so the result is what encoding/json decodes
//     (numbers are float64) and has no "sops" key;
//   - a Secret without SOPS metadata has each data value that holds an
//     encrypted file (as a secretGenerator that read an encrypted file
//     produces) decrypted, written in the format its key's extension names,
//     and base64-encoded again;
//   - anything else is returned as is.
//
// obj is not modified. A decryption failure is a *NoKeyError (no key
// opens it), a *MACError (only with WithMACCheck) or an *Error; all name
// the object, none carries a decrypted value.
func (k Keys) Decrypt(obj map[string]any) (map[string]any, error) {
	switch {
	case decryptionDisabled(obj):
		return obj, nil
	case Encrypted(obj):
		return k.decryptObject(obj)
	case obj["kind"] == "Secret":
		return k.decryptSecretData(obj)
	}
	return obj, nil
}

// decryptionDisabled reports the annotation turning decryption off.
func decryptionDisabled(obj map[string]any) bool {
	md, _ := obj["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	v, _ := ann[decryptAnnotation].(string)
	return strings.EqualFold(v, "disabled")
}

// decryptObject decrypts an object carrying SOPS metadata.
func (k Keys) decryptObject(obj map[string]any) (map[string]any, error) {
	name := objectName(obj)
	in, err := json.Marshal(obj)
	if err != nil {
		return nil, &Error{Object: name, Err: errors.New("the object cannot be encoded as JSON")}
	}
	out, err := k.decryptBytes(in, formatJSON, formatJSON)
	if err != nil {
		return nil, named(err, name, "")
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, &Error{Object: name, Err: errors.New("the decrypted object is not a JSON object")}
	}
	return res, nil
}

// decryptSecretData decrypts the data values of a Secret that hold
// encrypted files. As kustomize-controller rewrites the data map, an empty
// or malformed data field is dropped.
func (k Keys) decryptSecretData(obj map[string]any) (map[string]any, error) {
	raw, present := obj["data"]
	if !present {
		return obj, nil
	}
	out := maps.Clone(obj)
	data, _ := raw.(map[string]any)
	if len(data) == 0 {
		delete(out, "data")
		return out, nil
	}
	data = maps.Clone(data)
	for _, key := range slices.Sorted(maps.Keys(data)) {
		v, err := k.decryptDataValue(key, data[key])
		if err != nil {
			return nil, named(err, objectName(obj), key)
		}
		data[key] = v
	}
	out["data"] = data
	return out, nil
}

// decryptDataValue decrypts one Secret data value if it is the base64 of
// an encrypted file: read in the format its markers show, written in the
// format the key's extension names.
func (k Keys) decryptDataValue(key string, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	content, ok := decodeBase64(s)
	if !ok {
		// Not base64: kustomize-controller leaves it to the apply to reject.
		return v, nil
	}
	inF, ok := detectFormat(content)
	if !ok {
		return v, nil
	}
	plain, err := k.decryptBytes(content, inF, formatForPath(key))
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.EncodeToString(plain), nil
}

// decodeBase64 decodes a Secret data value.
func decodeBase64(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// objectName is Kind/namespace/name (Kind/name without a namespace), from
// the object as given: for an encrypted object these are the clear (or
// still encrypted) values, never decrypted ones.
func objectName(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	md, _ := obj["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	n, _ := md["name"].(string)
	if kind == "" {
		kind = "object"
	}
	parts := []string{clip(kind, 100)}
	if ns != "" {
		parts = append(parts, clip(ns, 100))
	}
	return strings.Join(append(parts, clip(n, 253)), "/")
}
