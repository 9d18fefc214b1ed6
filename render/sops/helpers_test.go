package sops_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	pgparmor "github.com/ProtonMail/go-crypto/openpgp/armor"
	gosops "github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/pgp"
	"github.com/getsops/sops/v3/shamir"
	"github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/stores/ini"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"github.com/getsops/sops/v3/version"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/render/sops"
)

// The secret every test encrypts; no error may ever contain it.
const secretValue = "correct-horse-battery-staple"

// identity is a generated age identity with its Keys.
type identity struct {
	id   *age.X25519Identity
	keys sops.Keys
}

// newIdentity generates an age identity and parses it with ParseAgeKeys.
func newIdentity(t testing.TB) identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	k, err := sops.ParseAgeKeys([]byte("# created: test\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return identity{id: id, keys: k}
}

// recipient is the identity's public key.
func (i identity) recipient() string { return i.id.Recipient().String() }

// encryption says how sops encrypts a test file, like sops --encrypt flags.
type encryption struct {
	format string // yaml (default), json, dotenv, ini, binary
	// groups are the key groups; a single group unless several are given.
	groups            [][]keys.MasterKey
	threshold         int
	encryptedRegex    string
	unencryptedRegex  string
	encryptedSuffix   string
	unencryptedSuffix string
	encCommentRegex   string
	macOnlyEncrypted  bool
	// pgp are the entities of the PGP master keys in groups.
	pgp []*openpgp.Entity
}

// ageKeys returns a group of sops age master keys for recipients.
func ageKeys(recipients ...string) []keys.MasterKey {
	var out []keys.MasterKey
	for _, r := range recipients {
		out = append(out, &sopsage.MasterKey{Recipient: r})
	}
	return out
}

// store returns sops' store for a format, configured as sops' defaults.
func store(format string) gosops.Store {
	switch format {
	case "json":
		return sopsjson.NewStore(&config.JSONStoreConfig{Indent: -1})
	case "binary":
		return sopsjson.NewBinaryStore(&config.JSONBinaryStoreConfig{Indent: -1})
	case "dotenv":
		return dotenv.NewStore(&config.DotenvStoreConfig{})
	case "ini":
		return ini.NewStore(&config.INIStoreConfig{})
	default:
		return sopsyaml.NewStore(&config.YAMLStoreConfig{})
	}
}

// encrypted is a file the sops library encrypted, with its data key.
type encrypted struct {
	data    []byte
	dataKey []byte
}

// sopsEncrypt encrypts plain with the sops library as sops --encrypt does:
// a random data key (split with Shamir for several groups) encrypted for
// every master key, the tree encrypted with AES-GCM, the MAC over the
// values encrypted with lastmodified as additional data.
func sopsEncrypt(t testing.TB, plain []byte, e encryption) encrypted {
	t.Helper()
	enc, err := encryptE(plain, e)
	if err != nil {
		t.Fatalf("encrypting with sops: %v", err)
	}
	return enc
}

// encryptE is sopsEncrypt returning errors (and sops' panics) instead.
func encryptE(plain []byte, e encryption) (enc encrypted, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sops panicked: %v", r)
		}
	}()
	st := store(e.format)
	branches, err := st.LoadPlainFile(plain)
	if err != nil {
		return encrypted{}, fmt.Errorf("LoadPlainFile: %w", err)
	}
	if len(branches) == 0 || st.HasSopsTopLevelKey(branches[0]) {
		return encrypted{}, errors.New("sops refuses to encrypt this file")
	}
	tree := gosops.Tree{Branches: branches, Metadata: e.metadata()}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return encrypted{}, err
	}
	if err := encryptDataKey(&tree.Metadata, dataKey, e.pgp); err != nil {
		return encrypted{}, err
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		return encrypted{}, fmt.Errorf("Encrypt: %w", err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return encrypted{}, fmt.Errorf("encrypting the MAC: %w", err)
	}
	out, err := st.EmitEncryptedFile(tree)
	if err != nil {
		return encrypted{}, fmt.Errorf("EmitEncryptedFile: %w", err)
	}
	return encrypted{data: out, dataKey: dataKey}, nil
}

// metadata is the sops metadata of an encryption, with sops' default rule.
func (e encryption) metadata() gosops.Metadata {
	m := gosops.Metadata{
		KeyGroups:             toGroups(e.groups),
		ShamirThreshold:       e.threshold,
		EncryptedRegex:        e.encryptedRegex,
		UnencryptedRegex:      e.unencryptedRegex,
		EncryptedSuffix:       e.encryptedSuffix,
		UnencryptedSuffix:     e.unencryptedSuffix,
		EncryptedCommentRegex: e.encCommentRegex,
		MACOnlyEncrypted:      e.macOnlyEncrypted,
		Version:               version.Version,
	}
	if m.EncryptedRegex == "" && m.UnencryptedRegex == "" && m.EncryptedSuffix == "" &&
		m.EncryptedCommentRegex == "" && m.UnencryptedSuffix == "" {
		m.UnencryptedSuffix = gosops.DefaultUnencryptedSuffix
	}
	return m
}

// toGroups converts master key slices to sops key groups.
func toGroups(groups [][]keys.MasterKey) []gosops.KeyGroup {
	out := make([]gosops.KeyGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, gosops.KeyGroup(g))
	}
	return out
}

// encryptDataKey encrypts the data key (or its Shamir parts) for every
// master key, as sops' UpdateMasterKeys does.
func encryptDataKey(m *gosops.Metadata, dataKey []byte, entities []*openpgp.Entity) error {
	parts := [][]byte{dataKey}
	if len(m.KeyGroups) > 1 {
		if m.ShamirThreshold == 0 {
			m.ShamirThreshold = len(m.KeyGroups)
		}
		var err error
		if parts, err = shamir.Split(dataKey, len(m.KeyGroups), m.ShamirThreshold); err != nil {
			return err
		}
	}
	for i, g := range m.KeyGroups {
		for _, k := range g {
			if pk, ok := k.(*pgp.MasterKey); ok {
				enc, err := pgpEncrypt(entityFor(entities, pk.Fingerprint), parts[i])
				if err != nil {
					return err
				}
				pk.EncryptedKey = enc
				continue
			}
			if err := k.Encrypt(parts[i]); err != nil {
				return fmt.Errorf("encrypting the data key: %w", err)
			}
		}
	}
	return nil
}

// entityFor finds the entity with a fingerprint.
func entityFor(entities []*openpgp.Entity, fp string) *openpgp.Entity {
	for _, e := range entities {
		if fingerprint(e) == fp {
			return e
		}
	}
	return nil
}

// newPGPKey generates a PGP entity and returns it with the armored private
// key, as a Secret's .asc entry holds it.
func newPGPKey(t testing.TB) (*openpgp.Entity, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("pregate test", "", "test@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := pgparmor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, buf.Bytes()
}

// fingerprint is an entity's fingerprint as sops writes it.
func fingerprint(e *openpgp.Entity) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for _, c := range e.PrimaryKey.Fingerprint {
		b = append(b, hex[c>>4], hex[c&15])
	}
	return string(b)
}

// pgpEncrypt encrypts a data key for an entity as an armored PGP message.
func pgpEncrypt(e *openpgp.Entity, data []byte) (string, error) {
	if e == nil {
		return "", errors.New("no PGP entity for the key")
	}
	var buf bytes.Buffer
	aw, err := pgparmor.Encode(&buf, "PGP MESSAGE", nil)
	if err != nil {
		return "", err
	}
	w, err := openpgp.Encrypt(aw, []*openpgp.Entity{e}, nil, nil, nil)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(data); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	if err := aw.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// sopsDecrypt decrypts with the sops library given the data key: the
// reference output kustomize-controller's SopsDecryptWithFormat produces.
func sopsDecrypt(t testing.TB, enc encrypted, in, out string) []byte {
	t.Helper()
	b, err := decryptE(enc, in, out)
	if err != nil {
		t.Fatalf("decrypting with sops: %v", err)
	}
	return b
}

// decryptE is sopsDecrypt returning errors (and sops' panics) instead.
func decryptE(enc encrypted, in, out string) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sops panicked: %v", r)
		}
	}()
	b, _, err = decryptMAC(enc, in, out)
	return b, err
}

// decryptMAC is decryptE also saying whether sops finds the MAC intact.
func decryptMAC(enc encrypted, in, out string) (b []byte, macOK bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sops panicked: %v", r)
		}
	}()
	tree, err := store(in).LoadEncryptedFile(enc.data)
	if err != nil {
		return nil, false, fmt.Errorf("LoadEncryptedFile: %w", err)
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(enc.dataKey, cipher)
	if err != nil {
		return nil, false, fmt.Errorf("Decrypt: %w", err)
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, enc.dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	macOK = err == nil && stored == mac
	b, err = store(out).EmitPlainFile(tree.Branches)
	return b, macOK, err
}

// object decodes a YAML manifest as the render package sees objects.
func object(t testing.TB, manifest []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(manifest, &m); err != nil {
		t.Fatalf("decoding manifest: %v", err)
	}
	return m
}

// get walks a decoded object.
func get(obj map[string]any, path ...string) any {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}
