package sops_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/pgp"
	"github.com/google/go-cmp/cmp"

	"github.com/pregate/pregate/render/sops"
)

const secretManifest = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: apps
  labels:
    app: db
type: Opaque
stringData:
  password: ` + secretValue + `
  port: "5432"
data:
  token: c2VjcmV0LXRva2Vu
`

// encryptSecret encrypts secretManifest for id as
// sops --encrypt --age <recipient> --encrypted-regex '^(data|stringData)$'.
func encryptSecret(t testing.TB, id identity) encrypted {
	t.Helper()
	return sopsEncrypt(t, []byte(secretManifest), encryption{
		groups:         [][]keys.MasterKey{ageKeys(id.recipient())},
		encryptedRegex: "^(data|stringData)$",
	})
}

// fluxDecrypt is what kustomize-controller applies for an encrypted
// object: the object as sorted JSON through sops' JSON store, decrypted,
// decoded by encoding/json.
func fluxDecrypt(t testing.TB, enc encrypted, obj map[string]any) map[string]any {
	t.Helper()
	in, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out := sopsDecrypt(t, encrypted{data: in, dataKey: enc.dataKey}, "json", "json")
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecryptSecretStringData(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	enc := encryptSecret(t, id)
	obj := object(t, enc.data)
	if !sops.Encrypted(obj) {
		t.Fatal("Encrypted = false for a sops-encrypted Secret")
	}
	got, err := id.keys.Decrypt(obj)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if v := get(got, "stringData", "password"); v != secretValue {
		t.Errorf("stringData.password = %v", v)
	}
	if v := get(got, "stringData", "port"); v != "5432" {
		t.Errorf("stringData.port = %#v, want the string 5432", v)
	}
	if _, ok := got["sops"]; ok {
		t.Error("the decrypted object still has sops metadata")
	}
	if sops.Encrypted(got) {
		t.Error("Encrypted = true after decryption")
	}
	if diff := cmp.Diff(fluxDecrypt(t, enc, obj), got); diff != "" {
		t.Errorf("Decrypt differs from sops' JSON decryption (-sops +got):\n%s", diff)
	}
	if _, ok := obj["sops"]; !ok {
		t.Error("Decrypt modified its input")
	}
}

func TestDecryptSecretData(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	enc := encryptSecret(t, id)
	got, err := id.keys.Decrypt(object(t, enc.data))
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	v, _ := get(got, "data", "token").(string)
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || string(b) != "secret-token" {
		t.Errorf("data.token = %q (%q, %v)", v, b, err)
	}
	if get(got, "metadata", "labels", "app") != "db" {
		t.Errorf("metadata changed: %v", got["metadata"])
	}
}

const configMapManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apps
  annotations:
    note_unencrypted: stays in clear
data:
  level: debug
  url: https://example.invalid/` + secretValue + `
replicas: 3
ratio: 0.25
immutable: true
`

func TestDecryptConfigMapWhole(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	enc := sopsEncrypt(t, []byte(configMapManifest), encryption{groups: [][]keys.MasterKey{ageKeys(id.recipient())}})
	obj := object(t, enc.data)
	if get(obj, "kind") == "ConfigMap" {
		t.Fatal("kind is in clear: the ConfigMap is not encrypted whole")
	}
	if get(obj, "metadata", "annotations", "note_unencrypted") != "stays in clear" {
		t.Fatal("the _unencrypted value was encrypted")
	}
	got, err := id.keys.Decrypt(obj)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	want := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "settings", "namespace": "apps",
			"annotations": map[string]any{"note_unencrypted": "stays in clear"}},
		"data":     map[string]any{"level": "debug", "url": "https://example.invalid/" + secretValue},
		"replicas": float64(3), "ratio": 0.25, "immutable": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decrypt (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(fluxDecrypt(t, enc, obj), got); diff != "" {
		t.Errorf("Decrypt differs from sops' JSON decryption (-sops +got):\n%s", diff)
	}
}

// TestDecryptRules covers the encryption rules sops records in the
// metadata: each file must decrypt (as an object and as a file) exactly as
// the sops library decrypts it.
func TestDecryptRules(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	const manifest = `apiVersion: v1
kind: Secret
metadata:
  name: rules
  # a comment before annotations
  annotations:
    owner_unencrypted: team-a
    # encrypt: the next value
    hidden: value
stringData:
  password_secret: ` + secretValue + `
  user: app
  list:
    - one
    - 2
    - true
    # a list comment
    - 0.5
`
	cases := map[string]encryption{
		"default suffix":      {},
		"encrypted_regex":     {encryptedRegex: "^(data|stringData)$"},
		"unencrypted_regex":   {unencryptedRegex: "^(apiVersion|kind|metadata)$"},
		"encrypted_suffix":    {encryptedSuffix: "_secret"},
		"unencrypted_suffix":  {unencryptedSuffix: "_unencrypted"},
		"encrypted_comment":   {encCommentRegex: "encrypt:"},
		"mac_only_encrypted":  {encryptedRegex: "^stringData$", macOnlyEncrypted: true},
		"regex matching none": {encryptedRegex: "^nothing$"},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e.groups = [][]keys.MasterKey{ageKeys(id.recipient())}
			enc := sopsEncrypt(t, []byte(manifest), e)
			obj := object(t, enc.data)
			got, err := id.keys.WithMACCheck().DecryptFile("secret.yaml", enc.data)
			if err != nil {
				t.Fatalf("DecryptFile: %v", err)
			}
			if want := sopsDecrypt(t, enc, "yaml", "yaml"); !bytes.Equal(got, want) {
				t.Errorf("DecryptFile differs from sops:\n--- sops\n%s\n--- got\n%s", want, got)
			}
			gotObj, err := id.keys.Decrypt(obj)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if diff := cmp.Diff(fluxDecrypt(t, enc, obj), gotObj); diff != "" {
				t.Errorf("Decrypt differs from sops (-sops +got):\n%s", diff)
			}
			if get(gotObj, "stringData", "password_secret") != secretValue {
				t.Errorf("password_secret = %v", get(gotObj, "stringData", "password_secret"))
			}
		})
	}
}

// files are plaintext files of every format a generator may read.
var files = []struct {
	name, format string
	plain        string
}{
	{"app.env", "dotenv", "# database\nDB_USER=app\nDB_PASSWORD=" + secretValue + "\nMULTI=line1\\nline2\nEMPTY=\n"},
	{"config.json", "json", `{"user": "app", "password": "` + secretValue + `", "retries": 3, "ratio": 0.5, "big": 12345678901234567890,
		"enabled": true, "none": null, "tags": ["a", "<b>", 1.0], "nested": {"empty": {}, "list": []}}`},
	{"values.yaml", "yaml", "# values\nuser: app # inline\npassword: " + secretValue +
		"\nlist:\n  - a\n  # between\n  - b\nanchors:\n  base: &base {x: 1}\n  copy: *base\nnumber: 1.5e3\n---\nsecond: doc\n"},
	{"settings.ini", "ini", "[database]\nuser = app\n; the password\npassword = " + secretValue + "\n\n[cache]\nttl = 60\n"},
	{"token", "binary", secretValue + "\x00\x01binary\n"},
	{".dockerconfigjson", "json", `{"auths": {"registry.example.invalid": {"auth": "` + secretValue + `"}}}`},
}

func TestDecryptFile(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			enc := sopsEncrypt(t, []byte(f.plain), encryption{format: f.format, groups: [][]keys.MasterKey{ageKeys(id.recipient())}})
			if bytes.Contains(enc.data, []byte(secretValue)) {
				t.Fatal("the encrypted file contains the secret")
			}
			got, err := id.keys.WithMACCheck().DecryptFile(f.name, enc.data)
			if err != nil {
				t.Fatalf("DecryptFile: %v", err)
			}
			want := sopsDecrypt(t, enc, f.format, f.format)
			if !bytes.Equal(got, want) {
				t.Errorf("DecryptFile differs from sops:\n--- sops\n%q\n--- got\n%q", want, got)
			}
			if !bytes.Contains(got, []byte(secretValue)) {
				t.Errorf("the decrypted file lacks the secret: %q", got)
			}
		})
	}
}

func TestDecryptFileFormatByName(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	env := sopsEncrypt(t, []byte("A="+secretValue+"\n"), encryption{format: "dotenv", groups: [][]keys.MasterKey{ageKeys(id.recipient())}})
	got, err := id.keys.DecryptEnvFile("vars.properties", env.data)
	if err != nil || string(got) != "A="+secretValue+"\n" {
		t.Errorf("DecryptEnvFile(no extension) = %q, %v; want dotenv", got, err)
	}
	// As a generator file without extension it is binary: no JSON
	// envelope marker, so kustomize-controller leaves it alone.
	got, err = id.keys.DecryptFile("vars.properties", env.data)
	if err != nil || !bytes.Equal(got, env.data) {
		t.Errorf("DecryptFile(no extension) = %q, %v; want it unchanged", got, err)
	}
	plain := []byte("not: encrypted\n")
	if got, err := id.keys.DecryptFile("plain.yaml", plain); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("DecryptFile(plain) = %q, %v", got, err)
	}
}

// TestDecryptSecretDataFiles covers Secrets a secretGenerator made from
// encrypted files: each data value holding an encrypted file is decrypted
// and written in the format of its key.
func TestDecryptSecretDataFiles(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	obj := map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "generated"},
		"data":     map[string]any{"plain": base64.StdEncoding.EncodeToString([]byte("clear"))},
	}
	want := map[string]string{"plain": "clear"}
	for _, f := range files {
		enc := sopsEncrypt(t, []byte(f.plain), encryption{format: f.format, groups: [][]keys.MasterKey{ageKeys(id.recipient())}})
		obj["data"].(map[string]any)[f.name] = base64.StdEncoding.EncodeToString(enc.data)
		want[f.name] = string(sopsDecrypt(t, enc, f.format, f.format))
	}
	// A YAML file stored under a .json key is written as JSON.
	y := sopsEncrypt(t, []byte("password: "+secretValue+"\n"), encryption{groups: [][]keys.MasterKey{ageKeys(id.recipient())}})
	obj["data"].(map[string]any)["converted.json"] = base64.StdEncoding.EncodeToString(y.data)
	want["converted.json"] = string(sopsDecrypt(t, y, "yaml", "json"))

	got, err := id.keys.Decrypt(obj)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	for k, w := range want {
		v, _ := get(got, "data", k).(string)
		b, _ := base64.StdEncoding.DecodeString(v)
		if string(b) != w {
			t.Errorf("data[%s] = %q, want %q", k, b, w)
		}
	}
	if strings.Contains(fmt.Sprint(obj), secretValue) {
		t.Error("Decrypt modified its input")
	}
}

func TestWrongKeyNamesRecipients(t *testing.T) {
	t.Parallel()
	owner, other := newIdentity(t), newIdentity(t)
	enc := encryptSecret(t, owner)
	_, err := other.keys.Decrypt(object(t, enc.data))
	var nk *sops.NoKeyError
	if !errors.As(err, &nk) {
		t.Fatalf("Decrypt with the wrong key = %v, want a *NoKeyError", err)
	}
	if nk.Object != "Secret/apps/db" || len(nk.Recipients) != 1 || nk.Recipients[0] != owner.recipient() {
		t.Errorf("NoKeyError = %+v", nk)
	}
	for _, s := range []string{"Secret/apps/db", owner.recipient()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if _, err := (sops.Keys{}).Decrypt(object(t, enc.data)); !errors.As(err, &nk) {
		t.Errorf("Decrypt without keys = %v, want a *NoKeyError", err)
	}
	_, err = other.keys.DecryptFile("secret.yaml", enc.data)
	if !errors.As(err, &nk) || nk.Object != "secret.yaml" {
		t.Errorf("DecryptFile with the wrong key = %v, want a *NoKeyError naming the file", err)
	}
}

func TestPGPFromSecret(t *testing.T) {
	t.Parallel()
	entity, private := newPGPKey(t)
	id := newIdentity(t)
	other := newIdentity(t)
	enc := sopsEncrypt(t, []byte(secretManifest), encryption{
		groups: [][]keys.MasterKey{{
			pgp.NewMasterKeyFromFingerprint(fingerprint(entity)),
			ageKeys(other.recipient())[0],
		}},
		encryptedRegex: "^(data|stringData)$",
		pgp:            []*openpgp.Entity{entity},
	})
	secret := map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "sops-keys"},
		"data": map[string]any{
			"identity.asc":     base64.StdEncoding.EncodeToString(private),
			"sops.vault-token": base64.StdEncoding.EncodeToString([]byte("hvs.token")),
		},
		"stringData": map[string]any{"unrelated.agekey": id.id.String()},
	}
	k, err := sops.KeysFromSecret(secret)
	if err != nil {
		t.Fatalf("KeysFromSecret: %v", err)
	}
	if got := k.Unusable(); len(got) != 1 || got[0] != "sops.vault-token" {
		t.Errorf("Unusable = %v", got)
	}
	got, err := k.Decrypt(object(t, enc.data))
	if err != nil {
		t.Fatalf("Decrypt with the PGP key: %v", err)
	}
	if get(got, "stringData", "password") != secretValue {
		t.Errorf("password = %v", get(got, "stringData", "password"))
	}
	_, err = id.keys.Decrypt(object(t, enc.data))
	var nk *sops.NoKeyError
	if !errors.As(err, &nk) || len(nk.PGP) != 1 || nk.PGP[0] != fingerprint(entity) {
		t.Errorf("Decrypt without the PGP key = %v, want a NoKeyError naming its fingerprint", err)
	}
}

func TestShamirKeyGroups(t *testing.T) {
	t.Parallel()
	a, b, c := newIdentity(t), newIdentity(t), newIdentity(t)
	enc := sopsEncrypt(t, []byte(secretManifest), encryption{
		groups:         [][]keys.MasterKey{ageKeys(a.recipient()), ageKeys(b.recipient()), ageKeys(c.recipient())},
		threshold:      2,
		encryptedRegex: "^(data|stringData)$",
	})
	got, err := a.keys.With(c.keys).Decrypt(object(t, enc.data))
	if err != nil || get(got, "stringData", "password") != secretValue {
		t.Fatalf("Decrypt with 2 of 3 groups = %v, %v", get(got, "stringData", "password"), err)
	}
	var nk *sops.NoKeyError
	if _, err := a.keys.Decrypt(object(t, enc.data)); !errors.As(err, &nk) || len(nk.Recipients) != 3 {
		t.Errorf("Decrypt with 1 of 3 groups = %v, want a NoKeyError naming 3 recipients", err)
	}
}

// tamper replaces the first occurrence of old in an encrypted file.
func tamper(t testing.TB, data []byte, old, repl string) []byte {
	t.Helper()
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("tamper: %q not found in\n%s", old, data)
	}
	return bytes.Replace(data, []byte(old), []byte(repl), 1)
}

// encValue returns the encrypted value on the line of key in a YAML file.
func encValue(t testing.TB, data []byte, key string) string {
	t.Helper()
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+": "); ok {
			return v
		}
	}
	t.Fatalf("no %s in\n%s", key, data)
	return ""
}

func TestTamperedValue(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	enc := encryptSecret(t, id)
	t.Run("encrypted value", func(t *testing.T) {
		t.Parallel()
		v := encValue(t, enc.data, "password")
		data := tamper(t, enc.data, v, strings.Replace(v, "data:", "data:AAAA", 1))
		_, err := id.keys.Decrypt(object(t, data))
		var e *sops.Error
		if !errors.As(err, &e) || e.Object != "Secret/apps/db" {
			t.Errorf("Decrypt of a modified ciphertext = %v, want an *Error naming the object", err)
		}
	})
	t.Run("moved value", func(t *testing.T) {
		t.Parallel()
		// A ciphertext is bound to its path: moving it fails.
		v := encValue(t, enc.data, "password")
		data := tamper(t, enc.data, encValue(t, enc.data, "port"), v)
		if _, err := id.keys.DecryptFile("secret.yaml", data); err == nil {
			t.Error("DecryptFile of a moved ciphertext succeeded")
		}
	})
	t.Run("clear value", func(t *testing.T) {
		t.Parallel()
		data := tamper(t, enc.data, "app: db", "app: evil")
		// kustomize-controller does not check MACs: it applies this.
		if _, err := id.keys.DecryptFile("secret.yaml", data); err != nil {
			t.Errorf("DecryptFile without MAC check = %v, want success as kustomize-controller", err)
		}
		_, err := id.keys.WithMACCheck().DecryptFile("secret.yaml", data)
		var me *sops.MACError
		if !errors.As(err, &me) || me.Object != "secret.yaml" {
			t.Errorf("DecryptFile with MAC check = %v, want a *MACError naming the file", err)
		}
	})
	t.Run("object MAC", func(t *testing.T) {
		t.Parallel()
		// Objects verify when the file lists its keys in sorted order.
		sorted := `apiVersion: v1
data:
  token: c2VjcmV0LXRva2Vu
kind: Secret
metadata:
  name: db
stringData:
  password: ` + secretValue + "\n"
		enc := sopsEncrypt(t, []byte(sorted), encryption{groups: [][]keys.MasterKey{ageKeys(id.recipient())}, encryptedRegex: "^(data|stringData)$"})
		if _, err := id.keys.WithMACCheck().Decrypt(object(t, enc.data)); err != nil {
			t.Errorf("Decrypt with MAC check of an unmodified object = %v", err)
		}
		obj := object(t, enc.data)
		obj["metadata"].(map[string]any)["name"] = "other"
		var me *sops.MACError
		if _, err := id.keys.WithMACCheck().Decrypt(obj); !errors.As(err, &me) {
			t.Errorf("Decrypt with MAC check of a modified object = %v, want a *MACError", err)
		}
	})
}

// metadataCases are hostile changes to a Secret's sops metadata; each must
// fail with an error naming the object (or pass through when kustomize-
// controller would not see SOPS metadata).
func metadataCases() map[string]func(map[string]any) {
	meta := func(o map[string]any) map[string]any { return o["sops"].(map[string]any) }
	ageKey := func(o map[string]any) map[string]any { return meta(o)["age"].([]any)[0].(map[string]any) }
	return map[string]func(map[string]any){
		"lastmodified garbage":  func(o map[string]any) { meta(o)["lastmodified"] = "yesterday" },
		"lastmodified a number": func(o map[string]any) { meta(o)["lastmodified"] = 12 },
		"age enc garbage":       func(o map[string]any) { ageKey(o)["enc"] = "garbage" },
		"age enc truncated":     func(o map[string]any) { e := ageKey(o)["enc"].(string); ageKey(o)["enc"] = e[:len(e)/2] },
		"age enc empty":         func(o map[string]any) { ageKey(o)["enc"] = "" },
		"age a string":          func(o map[string]any) { meta(o)["age"] = "age1" },
		"age a map list":        func(o map[string]any) { meta(o)["age"] = []any{[]any{1}} },
		"no keys":               func(o map[string]any) { delete(meta(o), "age") },
		"two rules":             func(o map[string]any) { meta(o)["unencrypted_suffix"] = "_x" },
		"key_groups garbage":    func(o map[string]any) { delete(meta(o), "age"); meta(o)["key_groups"] = []any{"x", 3} },
		"empty key group":       func(o map[string]any) { delete(meta(o), "age"); meta(o)["key_groups"] = []any{map[string]any{}} },
		"shamir threshold":      func(o map[string]any) { meta(o)["shamir_threshold"] = "many" },
		"pgp created_at garbage": func(o map[string]any) {
			meta(o)["pgp"] = []any{map[string]any{"fp": "AB", "enc": "x", "created_at": "now"}}
		},
		"kms only": func(o map[string]any) {
			delete(meta(o), "age")
			meta(o)["kms"] = []any{map[string]any{"arn": "arn:aws:kms:x", "enc": "x", "created_at": "2024-01-01T00:00:00Z"}}
		},
		"hckms bad id": func(o map[string]any) {
			meta(o)["hckms"] = []any{map[string]any{"key_id": "nocolon", "created_at": "2024-01-01T00:00:00Z"}}
		},
		"value not ENC":          func(o map[string]any) { o["stringData"].(map[string]any)["password"] = secretValue },
		"value a number":         func(o map[string]any) { o["stringData"].(map[string]any)["password"] = 5 },
		"value wrong type tag":   func(o map[string]any) { retype(o, "int") },
		"value unknown type tag": func(o map[string]any) { retype(o, "weird") },
		"value bytes type tag":   func(o map[string]any) { retype(o, "bytes") },
		"value bad base64": func(o map[string]any) {
			o["stringData"].(map[string]any)["password"] = "ENC[AES256_GCM,data:!!,iv:!!,tag:!!,type:str]"
		},
		"value empty iv": func(o map[string]any) {
			o["stringData"].(map[string]any)["password"] = "ENC[AES256_GCM,data:AA==,iv:,tag:AA==,type:str]"
		},
		"nested too deep":     func(o map[string]any) { o["stringData"].(map[string]any)["deep"] = deep(2000) },
		"sops duplicated key": func(o map[string]any) { meta(o)["mac"] = []any{"x"} },
	}
}

// retype changes the declared type of the encrypted password, keeping its
// ciphertext.
func retype(o map[string]any, typ string) {
	sd := o["stringData"].(map[string]any)
	v := sd["password"].(string)
	i := strings.LastIndex(v, "type:")
	sd["password"] = v[:i] + "type:" + typ + "]"
}

// deep returns a value nested n levels.
func deep(n int) any {
	var v any = "x"
	for range n {
		v = map[string]any{"a": v}
	}
	return v
}

func TestGarbageMetadata(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	enc := encryptSecret(t, id)
	for name, mutate := range metadataCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			obj := object(t, enc.data)
			mutate(obj)
			_, err := id.keys.Decrypt(obj)
			if err == nil {
				t.Fatal("Decrypt succeeded")
			}
			if !strings.Contains(err.Error(), "Secret/apps/db") {
				t.Errorf("error %q does not name the object", err)
			}
			if strings.Contains(err.Error(), secretValue) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
	t.Run("MAC garbage", func(t *testing.T) {
		t.Parallel()
		for _, mac := range []string{"", "garbage", "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]"} {
			obj := object(t, enc.data)
			obj["sops"].(map[string]any)["mac"] = mac
			// kustomize-controller does not read the MAC.
			if _, err := id.keys.Decrypt(obj); err != nil {
				t.Errorf("Decrypt with mac %q = %v, want success as kustomize-controller", mac, err)
			}
			var me *sops.MACError
			if _, err := id.keys.WithMACCheck().Decrypt(obj); !errors.As(err, &me) {
				t.Errorf("Decrypt with MAC check and mac %q = %v, want a *MACError", mac, err)
			}
		}
	})
	t.Run("truncated MAC", func(t *testing.T) {
		t.Parallel()
		obj := object(t, enc.data)
		m := obj["sops"].(map[string]any)
		m["mac"] = m["mac"].(string)[:40]
		var me *sops.MACError
		if _, err := id.keys.WithMACCheck().DecryptFile("s.yaml", tamper(t, enc.data, encValue(t, enc.data, "mac"), m["mac"].(string))); !errors.As(err, &me) {
			t.Errorf("DecryptFile with a truncated MAC = %v, want a *MACError", err)
		}
	})
}

func TestUnencryptedPassesThrough(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	cases := map[string]string{
		"configmap":         configMapManifest,
		"plain secret":      secretManifest,
		"sops without mac":  "kind: Secret\nmetadata: {name: x}\nsops: {version: 3}\n",
		"sops a string":     "kind: ConfigMap\nmetadata: {name: x}\nsops: yes\n",
		"sops mac null":     "kind: ConfigMap\nmetadata: {name: x}\nsops: {mac: null}\n",
		"decrypt disabled":  "kind: Secret\nmetadata:\n  name: x\n  annotations: {kustomize.toolkit.fluxcd.io/decrypt: Disabled}\nsops: {mac: 'ENC[x]'}\n",
		"secret plain data": "kind: Secret\nmetadata: {name: x}\ndata: {a: bm90IGVuY3J5cHRlZA==, b: '!!not base64'}\n",
	}
	for name, manifest := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			obj := object(t, []byte(manifest))
			want := object(t, []byte(manifest))
			got, err := id.keys.Decrypt(obj)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Decrypt changed an unencrypted object (-want +got):\n%s", diff)
			}
		})
	}
	if sops.Encrypted(object(t, []byte(configMapManifest))) {
		t.Error("Encrypted = true for a plain ConfigMap")
	}
	// kustomize-controller rewrites a Secret's data map: an empty one goes.
	got, err := id.keys.Decrypt(map[string]any{"kind": "Secret", "data": map[string]any{}})
	if _, ok := got["data"]; err != nil || ok {
		t.Errorf("Decrypt of an empty data map = %v, %v", got, err)
	}
}

// TestNoSecretInErrors collects the errors of every failing case and checks
// none contains the decrypted value.
func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	id, other := newIdentity(t), newIdentity(t)
	enc := encryptSecret(t, id)
	var errs []error
	collect := func(_ any, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, mutate := range metadataCases() {
		obj := object(t, enc.data)
		mutate(obj)
		collect(id.keys.Decrypt(obj))
		collect(id.keys.WithMACCheck().Decrypt(obj))
	}
	collect(other.keys.Decrypt(object(t, enc.data)))
	collect(id.keys.WithMACCheck().DecryptFile("s.yaml", tamper(t, enc.data, "app: db", "app: x")))
	for _, typ := range []string{"int", "float", "bool", "time", "bytes", "comment"} {
		obj := object(t, enc.data)
		retype(obj, typ)
		collect(id.keys.Decrypt(obj))
	}
	// A JSON file whose decrypted value cannot be written back.
	nan := sopsEncrypt(t, []byte(`{"a": "`+secretValue+`"}`), encryption{format: "json", groups: [][]keys.MasterKey{ageKeys(id.recipient())}})
	collect(id.keys.DecryptFile("nan.json", []byte(strings.Replace(string(nan.data), "type:str", "type:float", 1))))
	collect(id.keys.DecryptFile("nan.env", []byte("A="+secretValue+"\nsops_mac=ENC[\n")))
	if len(errs) < 30 {
		t.Fatalf("only %d errors collected", len(errs))
	}
	for _, err := range errs {
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, secretValue) || strings.Contains(s, "AGE-SECRET-KEY") {
				t.Errorf("error leaks a secret: %s", s)
			}
		}
	}
}

func TestParseAgeKeys(t *testing.T) {
	t.Parallel()
	a, b := newIdentity(t), newIdentity(t)
	k, err := sops.ParseAgeKeys([]byte("# comment\r\n\r\n" + a.id.String() + "\r\n" + b.id.String()))
	if err != nil {
		t.Fatalf("ParseAgeKeys: %v", err)
	}
	for _, s := range []string{a.recipient(), b.recipient()} {
		if !strings.Contains(k.String(), s) {
			t.Errorf("String() = %q lacks %s", k, s)
		}
	}
	enc := encryptSecret(t, b)
	if _, err := k.Decrypt(object(t, enc.data)); err != nil {
		t.Errorf("Decrypt with the second identity: %v", err)
	}
	for name, in := range map[string]string{
		"empty":    "# nothing\n",
		"garbage":  "AGE-SECRET-KEY-1NOTAKEY\n",
		"indented": "  " + a.id.String(),
		"plugin":   "AGE-PLUGIN-YUBIKEY-1XYZ",
		"unknown":  "ssh-ed25519 AAAA",
	} {
		if _, err := sops.ParseAgeKeys([]byte(in)); err == nil {
			t.Errorf("ParseAgeKeys(%s) succeeded", name)
		} else if strings.Contains(err.Error(), "AGE-SECRET-KEY-1") && name != "garbage" {
			t.Errorf("ParseAgeKeys(%s) error quotes the key: %v", name, err)
		}
	}
	secret := map[string]any{"kind": "Secret", "data": map[string]any{"bad.agekey": base64.StdEncoding.EncodeToString([]byte(a.id.String() + "x"))}}
	_, err = sops.KeysFromSecret(secret)
	if err == nil || !strings.Contains(err.Error(), "bad.agekey") || strings.Contains(err.Error(), a.id.String()[20:]) {
		t.Errorf("KeysFromSecret(bad key) = %v, want an error naming the entry only", err)
	}
}

func TestKeysNeverPrintSecrets(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	_, private := newPGPKey(t)
	pk, err := sops.ParsePGPKeys(private)
	if err != nil {
		t.Fatalf("ParsePGPKeys: %v", err)
	}
	k := id.keys.With(pk).WithMACCheck()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q", "%T"} {
		s := fmt.Sprintf(verb, k)
		if strings.Contains(s, "AGE-SECRET-KEY") || strings.Contains(s, id.id.String()[16:40]) {
			t.Errorf("%s of Keys leaks the identity: %s", verb, s)
		}
	}
	if !strings.Contains(k.String(), id.recipient()) {
		t.Errorf("String() = %q lacks the recipient", k)
	}
}

func TestRaceDecrypt(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	entity, private := newPGPKey(t)
	pk, err := sops.ParsePGPKeys(private)
	if err != nil {
		t.Fatalf("ParsePGPKeys: %v", err)
	}
	k := id.keys.With(pk)
	enc := encryptSecret(t, id)
	file := sopsEncrypt(t, []byte(files[0].plain), encryption{format: "dotenv", groups: [][]keys.MasterKey{ageKeys(id.recipient())}})
	pgpFile := sopsEncrypt(t, []byte(files[0].plain), encryption{format: "dotenv",
		groups: [][]keys.MasterKey{{pgp.NewMasterKeyFromFingerprint(fingerprint(entity))}}, pgp: []*openpgp.Entity{entity}})
	obj := object(t, enc.data)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := k.Decrypt(obj); err != nil {
				t.Errorf("Decrypt: %v", err)
			}
			if _, err := k.DecryptFile("app.env", file.data); err != nil {
				t.Errorf("DecryptFile(age): %v", err)
			}
			if _, err := k.DecryptFile("app.env", pgpFile.data); err != nil {
				t.Errorf("DecryptFile(PGP): %v", err)
			}
		})
	}
	wg.Wait()
}

func TestBounds(t *testing.T) {
	t.Parallel()
	id := newIdentity(t)
	huge := append([]byte(`{"mac": "ENC[`), bytes.Repeat([]byte("a"), 5<<20)...)
	if _, err := id.keys.DecryptFile("huge.json", huge); err == nil || !strings.Contains(err.Error(), "huge.json") {
		t.Errorf("DecryptFile(6 MiB) = %v", err)
	}
	deepJSON := strings.Repeat(`{"a":`, 5000) + `"x"` + strings.Repeat("}", 5000)
	deepJSON = `{"sops": {"mac": "ENC[x]"}, "d": ` + deepJSON + "}"
	if _, err := id.keys.DecryptFile("deep.json", []byte(deepJSON)); err == nil {
		t.Error("DecryptFile(deeply nested) succeeded")
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 'b'; i <= 'k'; i++ {
		bomb += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	bomb = "first: doc\n---\n" + bomb + "sops: {mac: ENC[x]}\n"
	if _, err := id.keys.DecryptFile("bomb.yaml", []byte(bomb)); err == nil {
		t.Error("DecryptFile(alias bomb) succeeded")
	}
}
