package sops

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// encryptedValue is the format sops stores an encrypted value in (its aes
// package): AES-256-GCM ciphertext, nonce and tag, and the type the value
// had before encryption. The pattern is the one sops matches, unanchored at
// the end as there.
var encryptedValue = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// Errors of value decryption. None of them carries the value.
var (
	errNotEncrypted = errors.New("the value is not in sops' encrypted format")
	errAuth         = errors.New("AES-GCM authentication failed: the value was modified or the data key is wrong")
	errValueType    = errors.New("the decrypted value does not match its declared type")
	errBytesType    = errors.New(`values of type "bytes" make sops fail`)
)

// valueCipher decrypts values with a document's data key.
type valueCipher struct {
	aead cipher.Block
}

// newValueCipher prepares decryption with dataKey.
func newValueCipher(dataKey []byte) (*valueCipher, error) {
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		return nil, fmt.Errorf("the data key is not an AES key: %w", err)
	}
	return &valueCipher{aead: block}, nil
}

// decrypt decrypts one stored value; additionalData binds it to its place in
// the document (the path of keys, or the lastmodified time for the MAC).
// The empty string is stored as is. It returns the value with its original
// type: string, int, float64, bool, time.Time or comment.
func (c *valueCipher) decrypt(stored string, additionalData string) (any, error) {
	if stored == "" {
		return "", nil
	}
	m := encryptedValue.FindStringSubmatch(stored)
	if m == nil {
		return nil, errNotEncrypted
	}
	data, iv, tag, err := decodeParts(m[1], m[2], m[3])
	if err != nil {
		return nil, err
	}
	if len(iv) == 0 {
		return nil, errors.New("the value has an empty IV")
	}
	gcm, err := cipher.NewGCMWithNonceSize(c.aead, len(iv))
	if err != nil {
		return nil, fmt.Errorf("preparing AES-GCM: %w", err)
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(additionalData))
	if err != nil {
		return nil, errAuth
	}
	return typed(plain, m[4])
}

// decodeParts decodes the base64 data, IV and tag of a stored value.
func decodeParts(data, iv, tag string) (d, i, t []byte, err error) {
	if d, err = base64.StdEncoding.DecodeString(data); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding the ciphertext: %w", err)
	}
	if i, err = base64.StdEncoding.DecodeString(iv); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding the IV: %w", err)
	}
	if t, err = base64.StdEncoding.DecodeString(tag); err != nil {
		return nil, nil, nil, fmt.Errorf("decoding the tag: %w", err)
	}
	return d, i, t, nil
}

// typed converts decrypted bytes back to the declared type. Conversion
// errors do not wrap strconv's, which quote the value.
func typed(plain []byte, datatype string) (any, error) {
	s := string(plain)
	switch datatype {
	case "str":
		return s, nil
	case "int":
		v, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%w (int)", errValueType)
		}
		return v, nil
	case "float":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%w (float)", errValueType)
		}
		return v, nil
	case "bool":
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%w (bool)", errValueType)
		}
		return v, nil
	case "time":
		var v time.Time
		if err := v.UnmarshalText(plain); err != nil {
			return nil, fmt.Errorf("%w (time)", errValueType)
		}
		return v, nil
	case "comment":
		return comment{Value: s}, nil
	case "bytes":
		// sops decrypts these but then panics storing them in a map;
		// kustomize-controller recovers the panic and fails the build.
		return nil, errBytesType
	default:
		return nil, &clippedError{msg: fmt.Sprintf("unknown value type %q", datatype)}
	}
}
