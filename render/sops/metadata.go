package sops

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// metadataKey is the top-level key holding SOPS metadata in JSON, YAML and
// INI files; flat formats (dotenv) prefix each flattened entry with
// metadataPrefix instead.
const (
	metadataKey    = "sops"
	metadataPrefix = metadataKey + "_"
	// defaultUnencryptedSuffix applies when a file names no encryption rule.
	defaultUnencryptedSuffix = "_unencrypted"
)

// errNoMetadata is a file without SOPS metadata.
var errNoMetadata = errors.New("sops metadata not found")

// storedMetadata is the metadata as a SOPS file stores it. Field names and
// decoding (weakly typed, unknown fields ignored) follow sops' own
// stores.metadata, so files sops accepts decode the same way.
type storedMetadata struct {
	ShamirThreshold         int           `mapstructure:"shamir_threshold"`
	KeyGroups               []storedGroup `mapstructure:"key_groups"`
	LastModified            string        `mapstructure:"lastmodified"`
	MAC                     string        `mapstructure:"mac"`
	UnencryptedSuffix       string        `mapstructure:"unencrypted_suffix"`
	EncryptedSuffix         string        `mapstructure:"encrypted_suffix"`
	UnencryptedRegex        string        `mapstructure:"unencrypted_regex"`
	EncryptedRegex          string        `mapstructure:"encrypted_regex"`
	UnencryptedCommentRegex string        `mapstructure:"unencrypted_comment_regex"`
	EncryptedCommentRegex   string        `mapstructure:"encrypted_comment_regex"`
	MACOnlyEncrypted        bool          `mapstructure:"mac_only_encrypted"`
	Version                 string        `mapstructure:"version"`
	// The flat key lists, one group, as sops writes a single group.
	storedGroup `mapstructure:",squash"`
}

// storedGroup is one key group: every master key in it encrypts the same
// data key (or the same Shamir share of it).
type storedGroup struct {
	KMS     []storedKMSKey   `mapstructure:"kms"`
	GCPKMS  []storedGCPKey   `mapstructure:"gcp_kms"`
	HCKMS   []storedHCKMSKey `mapstructure:"hckms"`
	AzureKV []storedAzureKey `mapstructure:"azure_kv"`
	HCVault []storedVaultKey `mapstructure:"hc_vault"`
	PGP     []storedPGPKey   `mapstructure:"pgp"`
	Age     []storedAgeKey   `mapstructure:"age"`
}

type storedAgeKey struct {
	Recipient string `mapstructure:"recipient"`
	Enc       string `mapstructure:"enc"`
}

type storedPGPKey struct {
	CreatedAt   string `mapstructure:"created_at"`
	Enc         string `mapstructure:"enc"`
	Fingerprint string `mapstructure:"fp"`
}

type storedKMSKey struct {
	Arn        string             `mapstructure:"arn"`
	Role       string             `mapstructure:"role"`
	Context    map[string]*string `mapstructure:"context"`
	CreatedAt  string             `mapstructure:"created_at"`
	Enc        string             `mapstructure:"enc"`
	AwsProfile string             `mapstructure:"aws_profile"`
}

type storedGCPKey struct {
	ResourceID string `mapstructure:"resource_id"`
	CreatedAt  string `mapstructure:"created_at"`
	Enc        string `mapstructure:"enc"`
}

type storedHCKMSKey struct {
	KeyID     string `mapstructure:"key_id"`
	CreatedAt string `mapstructure:"created_at"`
	Enc       string `mapstructure:"enc"`
}

type storedAzureKey struct {
	VaultURL  string `mapstructure:"vault_url"`
	Name      string `mapstructure:"name"`
	Version   string `mapstructure:"version"`
	CreatedAt string `mapstructure:"created_at"`
	Enc       string `mapstructure:"enc"`
}

type storedVaultKey struct {
	VaultAddress string `mapstructure:"vault_address"`
	EnginePath   string `mapstructure:"engine_path"`
	KeyName      string `mapstructure:"key_name"`
	CreatedAt    string `mapstructure:"created_at"`
	Enc          string `mapstructure:"enc"`
}

// keyKind is the type of a master key.
type keyKind int

const (
	kindAge keyKind = iota
	kindPGP
	kindOther
)

// masterKey is one master key of a group: how it is identified (an age
// recipient, a PGP fingerprint, a KMS key; all public) and the data key it
// encrypts.
type masterKey struct {
	kind keyKind
	id   string
	enc  string
}

// metadata is the validated metadata needed for decryption.
type metadata struct {
	groups           [][]masterKey
	threshold        int
	lastModified     time.Time
	mac              string
	macOnlyEncrypted bool
	rules            rules
}

// decodeMetadata turns the metadata mapping of a file into metadata,
// rejecting what sops rejects: a wrong type, a lastmodified or created_at
// that is not RFC 3339, more than one encryption rule, no key at all.
func decodeMetadata(tree branch) (metadata, error) {
	raw, err := toGo(tree)
	if err != nil {
		return metadata{}, err
	}
	var sm storedMetadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &sm, WeaklyTypedInput: true})
	if err != nil {
		return metadata{}, fmt.Errorf("preparing the metadata decoder: %w", err)
	}
	if err := dec.Decode(raw); err != nil {
		return metadata{}, &clippedError{msg: "invalid sops metadata: " + err.Error()}
	}
	return sm.validate()
}

// validate checks stored metadata and converts it.
func (sm *storedMetadata) validate() (metadata, error) {
	lastModified, err := time.Parse(time.RFC3339, sm.LastModified)
	if err != nil {
		return metadata{}, &clippedError{msg: "invalid sops metadata: lastmodified " + err.Error()}
	}
	groups, err := sm.groups()
	if err != nil {
		return metadata{}, err
	}
	r, err := sm.rules()
	if err != nil {
		return metadata{}, err
	}
	return metadata{
		groups:           groups,
		threshold:        sm.ShamirThreshold,
		lastModified:     lastModified,
		mac:              sm.MAC,
		macOnlyEncrypted: sm.MACOnlyEncrypted,
		rules:            r,
	}, nil
}

// rules returns the encryption rules; no rule means the default
// unencrypted suffix.
func (sm *storedMetadata) rules() (rules, error) {
	set := 0
	for _, s := range []string{sm.UnencryptedSuffix, sm.EncryptedSuffix, sm.UnencryptedRegex,
		sm.EncryptedRegex, sm.UnencryptedCommentRegex, sm.EncryptedCommentRegex} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return rules{}, errors.New("invalid sops metadata: more than one of encrypted_suffix, unencrypted_suffix, " +
			"encrypted_regex, unencrypted_regex, encrypted_comment_regex and unencrypted_comment_regex")
	}
	r := rules{
		unencryptedSuffix: sm.UnencryptedSuffix,
		encryptedSuffix:   sm.EncryptedSuffix,
		unencryptedRegex:  newRule(sm.UnencryptedRegex),
		encryptedRegex:    newRule(sm.EncryptedRegex),
		unencryptedCmtRe:  newRule(sm.UnencryptedCommentRegex),
		encryptedCmtRe:    newRule(sm.EncryptedCommentRegex),
	}
	if set == 0 {
		r.unencryptedSuffix = defaultUnencryptedSuffix
	}
	return r, nil
}

// groups returns the key groups: the flat key lists form one group when any
// is set, else key_groups.
func (sm *storedMetadata) groups() ([][]masterKey, error) {
	flat := storedGroup{KMS: sm.KMS, GCPKMS: sm.GCPKMS, HCKMS: sm.HCKMS, AzureKV: sm.AzureKV,
		HCVault: sm.HCVault, PGP: sm.PGP, Age: sm.Age}
	var stored []storedGroup
	switch {
	case !flat.empty():
		stored = []storedGroup{flat}
	case len(sm.KeyGroups) > 0:
		stored = sm.KeyGroups
	default:
		return nil, errors.New("invalid sops metadata: no keys found")
	}
	var out [][]masterKey
	total := 0
	for _, g := range stored {
		keys, err := g.keys()
		if err != nil {
			return nil, err
		}
		total += len(keys)
		if total > maxMasterKeys {
			return nil, fmt.Errorf("invalid sops metadata: more than %d master keys", maxMasterKeys)
		}
		out = append(out, keys)
	}
	return out, nil
}

// empty reports whether the group has no key.
func (g *storedGroup) empty() bool {
	return len(g.KMS)+len(g.GCPKMS)+len(g.HCKMS)+len(g.AzureKV)+len(g.HCVault)+len(g.PGP)+len(g.Age) == 0
}

// keys returns the master keys of a group in the order sops tries them:
// age first, then PGP, then the others in the order sops lists them. Keys
// other than age must have an RFC 3339 created_at, as sops requires.
func (g *storedGroup) keys() ([]masterKey, error) {
	var keys []masterKey
	for _, e := range g.entries() {
		if e.check != nil {
			if err := e.check(); err != nil {
				return nil, err
			}
		}
		if e.kind != kindAge {
			if _, err := time.Parse(time.RFC3339, e.createdAt); err != nil {
				return nil, &clippedError{msg: "invalid sops metadata: created_at of " + e.id + ": " + err.Error()}
			}
		}
		keys = append(keys, masterKey{kind: e.kind, id: e.id, enc: e.enc})
	}
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].kind < keys[j].kind })
	return keys, nil
}

// storedEntry is a master key of any type, before validation.
type storedEntry struct {
	kind      keyKind
	id, enc   string
	createdAt string
	check     func() error
}

// entries lists a group's master keys in sops' order: AWS KMS, GCP KMS,
// HuaweiCloud KMS, Azure Key Vault, Vault, PGP, age.
func (g *storedGroup) entries() []storedEntry {
	var out []storedEntry
	for _, k := range g.KMS {
		out = append(out, storedEntry{kind: kindOther, id: "awskms " + k.Arn, enc: k.Enc, createdAt: k.CreatedAt})
	}
	for _, k := range g.GCPKMS {
		out = append(out, storedEntry{kind: kindOther, id: "gcpkms " + k.ResourceID, enc: k.Enc, createdAt: k.CreatedAt})
	}
	for _, k := range g.HCKMS {
		id := k.KeyID
		out = append(out, storedEntry{kind: kindOther, id: "hckms " + id, enc: k.Enc, createdAt: k.CreatedAt,
			check: func() error { return validHCKMSKeyID(id) }})
	}
	for _, k := range g.AzureKV {
		out = append(out, storedEntry{kind: kindOther, id: "azurekv " + k.VaultURL + "/keys/" + k.Name + "/" + k.Version,
			enc: k.Enc, createdAt: k.CreatedAt})
	}
	for _, k := range g.HCVault {
		out = append(out, storedEntry{kind: kindOther, id: "hcvault " + k.VaultAddress + "/v1/" + k.EnginePath + "/keys/" + k.KeyName,
			enc: k.Enc, createdAt: k.CreatedAt})
	}
	for _, k := range g.PGP {
		out = append(out, storedEntry{kind: kindPGP, id: k.Fingerprint, enc: k.Enc, createdAt: k.CreatedAt})
	}
	for _, k := range g.Age {
		out = append(out, storedEntry{kind: kindAge, id: k.Recipient, enc: k.Enc})
	}
	return out
}

// validHCKMSKeyID checks a HuaweiCloud KMS key ID ("region:key-uuid") as
// sops does when it loads one.
func validHCKMSKeyID(id string) error {
	region, uuid, ok := strings.Cut(strings.TrimSpace(id), ":")
	if !ok || strings.TrimSpace(region) == "" || strings.TrimSpace(uuid) == "" {
		return &clippedError{msg: fmt.Sprintf("invalid sops metadata: hckms key ID %q is not region:key-uuid", id)}
	}
	return nil
}

// toGo converts a metadata branch to plain Go maps and slices for decoding,
// dropping comments.
func toGo(v any) (any, error) {
	switch v := v.(type) {
	case branch:
		m := make(map[string]any, len(v))
		for _, it := range v {
			if _, ok := it.key.(comment); ok {
				continue
			}
			k, ok := it.key.(string)
			if !ok {
				return nil, fmt.Errorf("invalid sops metadata: a key of type %T", it.key)
			}
			gv, err := toGo(it.value)
			if err != nil {
				return nil, err
			}
			m[k] = gv
		}
		return m, nil
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			if _, ok := e.(comment); ok {
				continue
			}
			gv, err := toGo(e)
			if err != nil {
				return nil, err
			}
			out = append(out, gv)
		}
		return out, nil
	default:
		return v, nil
	}
}
