package sops

import (
	"errors"
	"fmt"
	"strings"
)

// Bounds on hostile input.
const (
	// maxSize bounds an encrypted file or object (kustomize-controller's
	// limit for files it decrypts).
	maxSize = 5 << 20
	// maxDepth bounds nesting.
	maxDepth = 1000
	// maxNodes bounds the values of a document, aliases expanded.
	maxNodes = 1 << 21
	// maxMasterKeys bounds the master keys of a document.
	maxMasterKeys = 256
	// maxEncryptedKey bounds an encrypted data key.
	maxEncryptedKey = 64 << 10
	// maxDataKey bounds a decrypted data key (32 bytes, 33 for a Shamir part).
	maxDataKey = 1 << 10
	// maxKeyFile bounds a key file or Secret entry with keys.
	maxKeyFile = 1 << 20
)

var (
	errTooDeep  = fmt.Errorf("nested more than %d levels", maxDepth)
	errTooLarge = errors.New("too large")
)

// Error is a failure to decrypt an object or file. It names the object
// (Kind/namespace/name) or file, and the Secret data field when one field
// failed; it never carries a decrypted value.
type Error struct {
	// Object is Kind/namespace/name of an object, or the file name.
	Object string
	// Field is the Secret data key that failed, if any.
	Field string
	// Err is the reason.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	return "sops: decrypting " + where(e.Object, e.Field) + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// NoKeyError is an encrypted object or file that none of the keys opens.
type NoKeyError struct {
	// Object is Kind/namespace/name of an object, or the file name.
	Object string
	// Field is the Secret data key holding the encrypted file, if any.
	Field string
	// Recipients are the age public keys the data key is encrypted for.
	Recipients []string
	// PGP are the fingerprints of the PGP keys it is encrypted for.
	PGP []string
	// Other are the other master keys (cloud KMS, Vault), which pregate
	// cannot use: kustomize-controller reaches them with credentials or
	// workload identity.
	Other []string
}

// Error implements error.
func (e *NoKeyError) Error() string {
	var parts []string
	if len(e.Recipients) > 0 {
		parts = append(parts, "age recipients "+list(e.Recipients))
	}
	if len(e.PGP) > 0 {
		parts = append(parts, "PGP keys "+list(e.PGP))
	}
	if len(e.Other) > 0 {
		parts = append(parts, "key services pregate cannot use offline: "+list(e.Other))
	}
	to := "no master key"
	if len(parts) > 0 {
		to = strings.Join(parts, "; ")
	}
	return "sops: decrypting " + where(e.Object, e.Field) + ": no decryption key for it; its data key is encrypted for " + to
}

// MACError is an object or file whose values do not match the MAC stored
// with them: it was modified after encryption. kustomize-controller does
// not check MACs; only Keys.WithMACCheck does.
type MACError struct {
	// Object is Kind/namespace/name of an object, or the file name.
	Object string
	// Field is the Secret data key holding the encrypted file, if any.
	Field string
	// Err is the reason.
	Err error
}

// Error implements error.
func (e *MACError) Error() string {
	return "sops: decrypting " + where(e.Object, e.Field) + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *MACError) Unwrap() error { return e.Err }

// where names an object and field.
func where(object, field string) string {
	if field == "" {
		return clip(object, 400)
	}
	return fmt.Sprintf("%s field %q", clip(object, 400), clip(field, 200))
}

// list renders public key identifiers, clipped.
func list(ids []string) string {
	const most = 8
	out := make([]string, 0, min(len(ids), most)+1)
	for i, id := range ids {
		if i == most {
			out = append(out, fmt.Sprintf("and %d more", len(ids)-most))
			break
		}
		out = append(out, clip(id, 120))
	}
	return strings.Join(out, ", ")
}

// keyLookupError is a data key that could not be recovered, with the
// metadata naming the master keys.
type keyLookupError struct {
	err  error
	meta *metadata
}

func (e *keyLookupError) Error() string { return e.err.Error() }
func (e *keyLookupError) Unwrap() error { return e.err }

// named turns an internal error into the package's error types for an
// object or file and field.
func named(err error, object, field string) error {
	var kf *keyLookupError
	var dk *dataKeyError
	if errors.As(err, &kf) && errors.As(err, &dk) && dk.noKey {
		return noKeyError(kf.meta, object, field)
	}
	if errors.Is(err, errMACMismatch) {
		return &MACError{Object: object, Field: field, Err: err}
	}
	return &Error{Object: object, Field: field, Err: err}
}

// noKeyError lists the master keys of a document.
func noKeyError(meta *metadata, object, field string) *NoKeyError {
	e := &NoKeyError{Object: object, Field: field}
	for _, g := range meta.groups {
		for _, mk := range g {
			switch mk.kind {
			case kindAge:
				e.Recipients = append(e.Recipients, mk.id)
			case kindPGP:
				e.PGP = append(e.PGP, mk.id)
			default:
				e.Other = append(e.Other, mk.id)
			}
		}
	}
	return e
}

// clippedError is an error whose message comes from parsing hostile input;
// it is clipped so errors stay short.
type clippedError struct {
	msg string
}

func (e *clippedError) Error() string { return clip(e.msg, 300) }

// clip shortens s to at most n bytes (on a rune boundary), marking the cut,
// and replaces control characters so an error stays on one line.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// isRuneStart reports whether b starts a UTF-8 sequence.
func isRuneStart(b byte) bool { return b&0xc0 != 0x80 }
