package sops

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	pgparmor "github.com/ProtonMail/go-crypto/openpgp/armor"
)

// Names and extensions of the decryption Secret's entries, as
// kustomize-controller reads spec.decryption.secretRef.
const (
	ageKeyExt      = ".agekey"
	pgpKeyExt      = ".asc"
	vaultTokenName = "sops.vault-token" //nolint:gosec // an entry name, not a credential
	awsKMSName     = "sops.aws-kms"
	azureKVName    = "sops.azure-kv"
	gcpKMSName     = "sops.gcp-kms"
)

// Keys are decryption keys: age identities and PGP private keys. The zero
// value has none (it decrypts nothing, and passes unencrypted objects
// through). Keys are immutable and safe for concurrent use; they never
// print their secrets (String, GoString and Format show public keys only).
type Keys struct {
	age      []age.Identity
	ageIDs   []string
	pgp      openpgp.EntityList
	pgpIDs   []string
	unusable []string
	checkMAC bool
}

// ParseAgeKeys parses age identities: the content of an age key file or of
// a Secret's *.agekey entry. One identity per line; empty lines and lines
// starting with '#' are skipped, as sops does. X25519
// (AGE-SECRET-KEY-1…) and post-quantum hybrid (AGE-SECRET-KEY-PQ-1…)
// identities are supported; plugin identities (AGE-PLUGIN-…) are not, as
// they run external programs. It fails when b holds no identity.
func ParseAgeKeys(b []byte) (Keys, error) {
	k, err := Keys{}.withAge(b, "")
	if err != nil {
		return Keys{}, err
	}
	if len(k.age) == 0 {
		return Keys{}, errors.New("sops: no age identity found")
	}
	return k, nil
}

// ParsePGPKeys parses PGP private keys, armored or binary: the content of a
// Secret's *.asc entry. Keys protected by a passphrase are kept but cannot
// decrypt (kustomize-controller's gpg cannot use them either). It fails
// when b holds no private key.
func ParsePGPKeys(b []byte) (Keys, error) {
	k, err := Keys{}.withPGP(b, "")
	if err != nil {
		return Keys{}, err
	}
	if len(k.pgp) == 0 {
		return Keys{}, errors.New("sops: no PGP private key found")
	}
	return k, nil
}

// KeysFromSecret reads the keys of a decoded Secret object as
// kustomize-controller reads the Secret named by a Kustomization's
// spec.decryption.secretRef: entries ending in .agekey are age identities,
// entries ending in .asc PGP keys. Values come from data (base64) and
// stringData (plain, taking precedence, as the API server merges them).
// The cloud credentials and Vault token entries (sops.aws-kms,
// sops.azure-kv, sops.gcp-kms, sops.vault-token) are recorded as unusable:
// pregate decrypts offline. Errors name the entry, never its content.
func KeysFromSecret(s map[string]any) (Keys, error) {
	if kind, ok := s["kind"].(string); ok && kind != "Secret" {
		return Keys{}, fmt.Errorf("sops: reading decryption keys: a %s is not a Secret", clip(kind, 100))
	}
	entries, err := secretEntries(s)
	if err != nil {
		return Keys{}, err
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	var k Keys
	for _, name := range names {
		if k, err = k.withEntry(name, entries[name]); err != nil {
			return Keys{}, err
		}
	}
	return k, nil
}

// withEntry adds one Secret entry.
func (k Keys) withEntry(name string, value []byte) (Keys, error) {
	switch filepath.Ext(name) {
	case ageKeyExt:
		return k.withAge(value, name)
	case pgpKeyExt:
		return k.withPGP(value, name)
	}
	switch name {
	case vaultTokenName, awsKMSName, azureKVName, gcpKMSName:
		k.unusable = append(slices.Clip(k.unusable), name)
	}
	return k, nil
}

// secretEntries returns a Secret's data (decoded) and stringData.
func secretEntries(s map[string]any) (map[string][]byte, error) {
	out := map[string][]byte{}
	if data, ok := s["data"].(map[string]any); ok {
		for name, v := range data {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("sops: reading decryption key entry %q: not a string", clip(name, 200))
			}
			b, err := base64.StdEncoding.DecodeString(str)
			if err != nil {
				return nil, fmt.Errorf("sops: reading decryption key entry %q: not base64", clip(name, 200))
			}
			out[name] = b
		}
	}
	if data, ok := s["stringData"].(map[string]any); ok {
		for name, v := range data {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("sops: reading decryption key entry %q: not a string", clip(name, 200))
			}
			out[name] = []byte(str)
		}
	}
	return out, nil
}

// With returns the keys of k and other together; a MAC check set on either
// applies.
func (k Keys) With(other Keys) Keys {
	return Keys{
		age:      slices.Concat(k.age, other.age),
		ageIDs:   slices.Concat(k.ageIDs, other.ageIDs),
		pgp:      slices.Concat(k.pgp, other.pgp),
		pgpIDs:   slices.Concat(k.pgpIDs, other.pgpIDs),
		unusable: slices.Concat(k.unusable, other.unusable),
		checkMAC: k.checkMAC || other.checkMAC,
	}
}

// WithMACCheck returns k set to verify each document's MAC, failing with a
// *MACError when values were changed after encryption. kustomize-controller
// does not verify MACs, and an object's MAC only verifies if the file it
// came from lists its keys in sorted order (kustomize-controller hands
// objects to sops as JSON with sorted keys); files verify as written.
func (k Keys) WithMACCheck() Keys {
	k.checkMAC = true
	return k
}

// Unusable names the Secret entries read but not usable offline (cloud KMS
// credentials, Vault token).
func (k Keys) Unusable() []string { return slices.Clone(k.unusable) }

// Empty reports whether k holds no key.
func (k Keys) Empty() bool { return len(k.age) == 0 && len(k.pgp) == 0 }

// String lists the public side of the keys only.
func (k Keys) String() string {
	var parts []string
	if len(k.ageIDs) > 0 {
		parts = append(parts, "age "+strings.Join(k.ageIDs, ", "))
	}
	if len(k.pgpIDs) > 0 {
		parts = append(parts, "pgp "+strings.Join(k.pgpIDs, ", "))
	}
	if len(k.unusable) > 0 {
		parts = append(parts, "unusable "+strings.Join(k.unusable, ", "))
	}
	if k.checkMAC {
		parts = append(parts, "MAC check")
	}
	return "sops.Keys{" + strings.Join(parts, "; ") + "}"
}

// GoString is String, so %#v shows no secret either.
func (k Keys) GoString() string { return k.String() }

// Format prints String for every verb, so no verb reaches the secrets.
func (k Keys) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// withAge adds the age identities of a key file; entry names the Secret
// entry for errors. Like sops, lines are not trimmed.
func (k Keys) withAge(b []byte, entry string) (Keys, error) {
	if len(b) > maxKeyFile {
		return Keys{}, keyError(entry, "age", "larger than 1 MiB")
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxKeyFile)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, pub, err := parseAgeIdentity(line)
		if err != nil {
			return Keys{}, keyError(entry, "age", fmt.Sprintf("line %d: %v", n, err))
		}
		k.age = append(slices.Clip(k.age), id)
		k.ageIDs = append(slices.Clip(k.ageIDs), pub)
	}
	if err := sc.Err(); err != nil {
		return Keys{}, keyError(entry, "age", "unreadable")
	}
	return k, nil
}

// parseAgeIdentity parses one identity and returns its recipient. Parse
// errors are not passed on: they may quote parts of the key.
func parseAgeIdentity(line string) (age.Identity, string, error) {
	switch {
	case strings.HasPrefix(line, "AGE-PLUGIN-"):
		return nil, "", errors.New("age plugin identities are not supported")
	case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
		id, err := age.ParseHybridIdentity(line)
		if err != nil {
			return nil, "", errors.New("not a valid post-quantum age identity")
		}
		return id, id.Recipient().String(), nil
	case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, "", errors.New("not a valid age identity")
		}
		return id, id.Recipient().String(), nil
	default:
		return nil, "", errors.New("unknown identity type")
	}
}

// withPGP adds the PGP keys of an armored or binary key file.
func (k Keys) withPGP(b []byte, entry string) (Keys, error) {
	if len(b) > maxKeyFile {
		return Keys{}, keyError(entry, "PGP", "larger than 1 MiB")
	}
	ents, err := readPGPKeys(b)
	if err != nil {
		return Keys{}, keyError(entry, "PGP", err.Error())
	}
	for _, e := range ents {
		if e.PrivateKey == nil {
			continue
		}
		k.pgp = append(slices.Clip(k.pgp), e)
		k.pgpIDs = append(slices.Clip(k.pgpIDs), fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	return k, nil
}

// readPGPKeys reads every armored key block of b, or b as binary keys.
func readPGPKeys(b []byte) (ents openpgp.EntityList, err error) {
	defer func() {
		if recover() != nil {
			ents, err = nil, errors.New("not a PGP key")
		}
	}()
	if !bytes.Contains(b, []byte("-----BEGIN PGP")) {
		if ents, err = openpgp.ReadKeyRing(bytes.NewReader(b)); err != nil {
			return nil, errors.New("not a PGP key")
		}
		return ents, nil
	}
	for _, block := range armorBlocks(b) {
		blk, err := pgparmor.Decode(bytes.NewReader(block))
		if err != nil {
			return nil, errors.New("not an armored PGP key")
		}
		el, err := openpgp.ReadKeyRing(blk.Body)
		if err != nil {
			return nil, errors.New("not a PGP key")
		}
		ents = append(ents, el...)
	}
	return ents, nil
}

// armorBlocks splits text at each armor header, so every block of a file
// with several keys is read (gpg --import reads them all).
func armorBlocks(b []byte) [][]byte {
	var out [][]byte
	const begin = "-----BEGIN PGP"
	for {
		i := bytes.Index(b, []byte(begin))
		if i < 0 {
			return out
		}
		b = b[i:]
		next := bytes.Index(b[len(begin):], []byte(begin))
		if next < 0 {
			return append(out, b)
		}
		out = append(out, b[:len(begin)+next])
		b = b[len(begin)+next:]
	}
}

// keyError is a key that does not parse; it names the Secret entry.
func keyError(entry, kind, reason string) error {
	if entry == "" {
		return fmt.Errorf("sops: reading %s keys: %s", kind, reason)
	}
	return fmt.Errorf("sops: reading %s keys from decryption Secret entry %q: %s", kind, clip(entry, 200), reason)
}
