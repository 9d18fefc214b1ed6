package sops_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/pregate/pregate/render/sops"
)

// The files in testdata/cli were encrypted, and decrypted, by the sops 3.13.3
// CLI (and gpg) with testdata/cli/generate.sh. Decrypting them must give
// exactly what the CLI gives.

// read reads a fixture.
func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cli", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cliKeys are the fixtures' age identity.
func cliKeys(t testing.TB) sops.Keys {
	t.Helper()
	k, err := sops.ParseAgeKeys(read(t, "age.agekey"))
	if err != nil {
		t.Fatalf("ParseAgeKeys: %v", err)
	}
	return k
}

func TestCLIFixtures(t *testing.T) {
	t.Parallel()
	k := cliKeys(t).WithMACCheck()
	for _, f := range []struct{ enc, dec, name string }{
		{"secret.enc.yaml", "secret.dec.yaml", "secret.yaml"},
		{"configmap.enc.yaml", "configmap.dec.yaml", "configmap.yaml"},
		{"app.enc.env", "app.dec.env", "app.env"},
		{"config.enc.json", "config.dec.json", "config.json"},
		{"settings.enc.ini", "settings.dec.ini", "settings.ini"},
		{"token.enc.bin", "token.dec.bin", "token"},
	} {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			got, err := k.DecryptFile(f.name, read(t, f.enc))
			if err != nil {
				t.Fatalf("DecryptFile: %v", err)
			}
			if want := read(t, f.dec); !bytes.Equal(got, want) {
				t.Errorf("DecryptFile differs from sops --decrypt:\n--- sops\n%q\n--- got\n%q", want, got)
			}
		})
	}
}

func TestCLIObjects(t *testing.T) {
	t.Parallel()
	k := cliKeys(t)
	secret, err := k.Decrypt(object(t, read(t, "secret.enc.yaml")))
	if err != nil {
		t.Fatalf("Decrypt(Secret): %v", err)
	}
	if get(secret, "stringData", "password") != secretValue || get(secret, "data", "token") != "c2VjcmV0LXRva2Vu" {
		t.Errorf("Secret = %v", secret)
	}
	cm, err := k.Decrypt(object(t, read(t, "configmap.enc.yaml")))
	if err != nil {
		t.Fatalf("Decrypt(ConfigMap): %v", err)
	}
	if get(cm, "kind") != "ConfigMap" || get(cm, "immutable") != true || get(cm, "data", "level") != "debug" {
		t.Errorf("ConfigMap = %v", cm)
	}
}

func TestCLIPGPFixture(t *testing.T) {
	t.Parallel()
	k, err := sops.KeysFromSecret(map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"data": map[string]any{"sops.asc": base64.StdEncoding.EncodeToString(read(t, "pgp.asc"))},
	})
	if err != nil {
		t.Fatalf("KeysFromSecret: %v", err)
	}
	got, err := k.WithMACCheck().DecryptFile("secret.yaml", read(t, "pgp-secret.enc.yaml"))
	if err != nil {
		t.Fatalf("DecryptFile: %v", err)
	}
	if want := read(t, "secret.dec.yaml"); !bytes.Equal(got, want) {
		t.Errorf("DecryptFile differs from sops --decrypt:\n--- sops\n%s\n--- got\n%s", want, got)
	}
}
