package sops_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/getsops/sops/v3/keys"

	"github.com/pregate/pregate/render/sops"
)

// FuzzDecrypt feeds hostile objects and files to every entry point: none
// may panic, and no error may carry the fixtures' decrypted secret unless
// the input itself holds it.
func FuzzDecrypt(f *testing.F) {
	for _, name := range []string{"secret.enc.yaml", "configmap.enc.yaml", "app.enc.env", "config.enc.json",
		"settings.enc.ini", "token.enc.bin", "pgp-secret.enc.yaml"} {
		f.Add(read(f, name))
	}
	f.Add([]byte("kind: Secret\nmetadata: {name: x}\ndata: {f.yaml: " +
		base64.StdEncoding.EncodeToString(read(f, "secret.enc.yaml")) + "}\n"))
	f.Add([]byte(`{"sops": {"mac": "ENC[x]", "key_groups": [{"age": [{"enc": "x"}]}, {}], "shamir_threshold": 0}}`))
	// PGP keys are left out: RSA under the fuzzer's instrumentation makes
	// each execution take seconds. TestCLIPGPFixture covers PGP.
	k := cliKeys(f)
	keys := []sops.Keys{k, k.WithMACCheck(), {}}
	f.Fuzz(func(t *testing.T, in []byte) {
		holdsSecret := bytes.Contains(in, []byte(secretValue))
		check := func(err error) {
			if err != nil && !holdsSecret && strings.Contains(err.Error(), secretValue) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		}
		var obj map[string]any
		if yaml.Unmarshal(in, &obj) == nil && obj != nil {
			sops.Encrypted(obj)
			for _, k := range keys {
				_, err := k.Decrypt(obj)
				check(err)
			}
		}
		for _, name := range []string{"f.yaml", "f.json", "f.env", "f.ini", "f", ".dockerconfigjson"} {
			_, err := k.DecryptFile(name, in)
			check(err)
			_, err = keys[1].DecryptEnvFile(name, in)
			check(err)
		}
	})
}

// FuzzDecryptMatchesSops encrypts arbitrary plaintext with the sops library
// in every format and checks DecryptFile, MAC check on, returns exactly what
// sops' own decryption returns wherever sops can decrypt it.
func FuzzDecryptMatchesSops(f *testing.F) {
	for _, fl := range files {
		f.Add([]byte(fl.plain))
	}
	for _, name := range []string{"secret.plain.yaml", "configmap.plain.yaml", "app.plain.env", "config.plain.json", "settings.plain.ini"} {
		f.Add(read(f, name))
	}
	id := newIdentity(f)
	k := id.keys.WithMACCheck()
	names := map[string]string{"yaml": "f.yaml", "json": "f.json", "dotenv": "f.env", "ini": "f.ini", "binary": "f"}
	f.Fuzz(func(t *testing.T, plain []byte) {
		for format, name := range names {
			e := encryption{format: format, groups: [][]keys.MasterKey{ageKeys(id.recipient())}}
			enc, err := encryptE(plain, e)
			if err != nil {
				continue
			}
			want, macOK, err := decryptMAC(enc, format, format)
			if err != nil {
				continue
			}
			got, err := k.DecryptFile(name, enc.data)
			var me *sops.MACError
			if !macOK {
				// sops finds the MAC broken (its own round trip changed the
				// file, e.g. INI line continuations): so must the check.
				if !errors.As(err, &me) {
					t.Fatalf("%s: DecryptFile(%q) = %v; sops finds the MAC broken", format, plain, err)
				}
				if got, err = id.keys.DecryptFile(name, enc.data); err != nil {
					t.Fatalf("%s: DecryptFile(%q) without MAC check = %v; sops decrypts it", format, plain, err)
				}
			}
			if err != nil {
				t.Fatalf("%s: DecryptFile(%q) = %v; sops decrypts it", format, plain, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: DecryptFile(%q) = %q; sops gives %q", format, plain, got, want)
			}
		}
	})
}
