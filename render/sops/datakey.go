package sops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/ProtonMail/go-crypto/openpgp"
	pgparmor "github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/getsops/sops/v3/shamir"
)

// errNoKey marks a master key none of the Keys opens.
var errNoKey = errors.New("no matching key")

// dataKeyError is a data key that could not be recovered. When every
// master key failed for want of a key, noKey is set and the caller reports
// a *NoKeyError; otherwise err says what is wrong with the key material.
type dataKeyError struct {
	noKey bool
	err   error
}

func (e *dataKeyError) Error() string { return e.err.Error() }
func (e *dataKeyError) Unwrap() error { return e.err }

// dataKey recovers a document's data key as sops'
// Metadata.GetDataKeyWithKeyServices does: each key group yields its part
// from the first master key that opens it (age first, then PGP); one group
// yields the key itself, several groups are combined with Shamir's secret
// sharing once enough parts (shamir_threshold) are recovered.
func (k Keys) dataKey(meta *metadata) ([]byte, error) {
	var parts [][]byte
	var failure error
	for _, group := range meta.groups {
		part, err := k.openGroup(group)
		if err != nil {
			if !errors.Is(err, errNoKey) && failure == nil {
				failure = err
			}
			continue
		}
		parts = append(parts, part)
	}
	if len(meta.groups) == 1 && len(parts) == 1 {
		return parts[0], nil
	}
	if len(meta.groups) > 1 && len(parts) > 0 && len(parts) >= meta.threshold {
		key, err := shamir.Combine(parts)
		if err != nil {
			return nil, &dataKeyError{err: fmt.Errorf("combining the Shamir parts of the data key: %w", err)}
		}
		return key, nil
	}
	if failure != nil {
		return nil, &dataKeyError{err: failure}
	}
	return nil, &dataKeyError{noKey: true, err: errNoKey}
}

// openGroup returns the part of the data key a group encrypts, from the
// first of its master keys that opens.
func (k Keys) openGroup(group []masterKey) ([]byte, error) {
	var failure error
	for _, mk := range group {
		part, err := k.openKey(mk)
		if err == nil {
			return part, nil
		}
		if !errors.Is(err, errNoKey) && failure == nil {
			failure = err
		}
	}
	if failure != nil {
		return nil, failure
	}
	return nil, errNoKey
}

// openKey decrypts the data key one master key holds.
func (k Keys) openKey(mk masterKey) ([]byte, error) {
	if len(mk.enc) > maxEncryptedKey {
		return nil, fmt.Errorf("the data key encrypted for %s is larger than %d bytes", clip(mk.id, 100), maxEncryptedKey)
	}
	switch mk.kind {
	case kindAge:
		return k.openAge(mk)
	case kindPGP:
		return k.openPGP(mk)
	default:
		return nil, errNoKey
	}
}

// openAge decrypts an age-encrypted (armored) data key with the age
// identities, as sops' age key source does.
func (k Keys) openAge(mk masterKey) ([]byte, error) {
	if len(k.age) == 0 {
		return nil, errNoKey
	}
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(mk.enc)), k.age...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, errNoKey
		}
		return nil, fmt.Errorf("age-decrypting the data key for %s: %w", clip(mk.id, 100), err)
	}
	b, err := readBounded(r)
	if err != nil {
		return nil, fmt.Errorf("age-decrypting the data key for %s: %w", clip(mk.id, 100), err)
	}
	return b, nil
}

// openPGP decrypts a PGP-encrypted (armored) data key with the PGP private
// keys. kustomize-controller has gpg do this; OpenPGP in Go opens the same
// messages for keys without a passphrase, the only keys gpg can use there.
func (k Keys) openPGP(mk masterKey) ([]byte, error) {
	if len(k.pgp) == 0 {
		return nil, errNoKey
	}
	block, err := pgparmor.Decode(strings.NewReader(mk.enc))
	if err != nil {
		return nil, fmt.Errorf("reading the PGP-encrypted data key for %s: %w", clip(mk.id, 100), err)
	}
	md, err := openpgp.ReadMessage(block.Body, k.pgp, nil, nil)
	if errors.Is(err, pgperrors.ErrKeyIncorrect) {
		return nil, errNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("PGP-decrypting the data key for %s: %w", clip(mk.id, 100), err)
	}
	if !md.IsEncrypted || md.DecryptedWith.Entity == nil {
		return nil, fmt.Errorf("the data key for %s is not PGP-encrypted", clip(mk.id, 100))
	}
	b, err := readBounded(md.UnverifiedBody)
	if err != nil {
		return nil, fmt.Errorf("PGP-decrypting the data key for %s: %w", clip(mk.id, 100), err)
	}
	return b, nil
}

// readBounded reads a decrypted data key, which is 32 bytes (33 for a
// Shamir part); a payload larger than maxDataKey is refused.
func readBounded(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxDataKey+1))
	if err != nil {
		return nil, err
	}
	if n > maxDataKey {
		return nil, fmt.Errorf("the decrypted data key is larger than %d bytes", maxDataKey)
	}
	return buf.Bytes(), nil
}
