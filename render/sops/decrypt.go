package sops

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"
)

// macOnlyEncryptedInit starts the MAC of a file written with
// mac_only_encrypted, so it differs from the MAC over all values
// (sops.MACOnlyEncryptedInitialization, the SHA-256 of "sops").
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34,
	0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76,
	0xf2, 0x7d, 0x69}

// errMACMismatch is a document whose MAC does not match its values.
var errMACMismatch = errors.New("MAC mismatch")

// treeDecrypter decrypts the values of a document in place and, when asked
// to, computes the MAC over its values as sops' Tree.Decrypt does.
type treeDecrypter struct {
	cipher *valueCipher
	rules  *rules
	macAll bool
	mac    hash.Hash
}

// decryptTree decrypts every branch of doc with dataKey. With checkMAC it
// verifies the document's MAC, which kustomize-controller does not.
func decryptTree(doc *document, dataKey []byte, checkMAC bool) error {
	c, err := newValueCipher(dataKey)
	if err != nil {
		return err
	}
	d := &treeDecrypter{cipher: c, rules: &doc.meta.rules, macAll: !doc.meta.macOnlyEncrypted}
	if checkMAC {
		d.mac = sha512.New()
		if doc.meta.macOnlyEncrypted {
			d.mac.Write(macOnlyEncryptedInit)
		}
	}
	w := &walker{leaf: d.leaf}
	for i, b := range doc.branches {
		nb, err := w.branch(b, nil, nil)
		if err != nil {
			return err
		}
		doc.branches[i] = nb
	}
	if checkMAC {
		return verifyMAC(c, &doc.meta, fmt.Sprintf("%X", d.mac.Sum(nil)))
	}
	return nil
}

// leaf decrypts one value if the rules say it is encrypted, and adds it to
// the MAC.
func (d *treeDecrypter) leaf(in any, path []string, comments [][]string) (any, error) {
	c, isComment := in.(comment)
	enc := d.rules.encrypted(path, comments, isComment)
	out := in
	if enc {
		ad := strings.Join(path, ":") + ":"
		switch v := in.(type) {
		case comment:
			// A comment that does not decrypt was not encrypted (older sops).
			if dv, err := d.cipher.decrypt(c.Value, ad); err == nil {
				out = dv
			}
		case string:
			dv, err := d.cipher.decrypt(v, ad)
			if err != nil {
				return nil, fmt.Errorf("decrypting the value at %s: %w", pathString(path), err)
			}
			out = dv
		default:
			return nil, fmt.Errorf("the value at %s should be encrypted but is of type %T", pathString(path), in)
		}
	}
	if d.mac != nil && (d.macAll || enc) {
		if _, ok := out.(comment); !ok {
			d.mac.Write(macBytes(out))
		}
	}
	return out, nil
}

// macBytes is the representation of a value sops hashes into the MAC.
func macBytes(v any) []byte {
	switch v := v.(type) {
	case string:
		return []byte(v)
	case int:
		return []byte(strconv.Itoa(v))
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64))
	case bool:
		if v {
			return []byte("True")
		}
		return []byte("False")
	case time.Time:
		b, _ := v.MarshalText()
		return b
	default:
		return nil
	}
}

// verifyMAC compares the MAC stored in the metadata (encrypted with the
// data key, bound to lastmodified) with the computed one.
func verifyMAC(c *valueCipher, meta *metadata, computed string) error {
	stored, err := c.decrypt(meta.mac, meta.lastModified.Format(time.RFC3339))
	if err != nil {
		return fmt.Errorf("%w: the stored MAC does not decrypt: %w", errMACMismatch, err)
	}
	if s, ok := stored.(string); !ok || s != computed {
		return fmt.Errorf("%w: the values differ from those the MAC was computed over", errMACMismatch)
	}
	return nil
}
