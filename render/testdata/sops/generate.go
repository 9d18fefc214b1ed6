//go:build ignore

// generate writes the SOPS fixtures of render's golden cases sops,
// sops-no-key and sops-wrong-key with the sops library (the code the sops
// CLI runs for `sops --encrypt --age`): two age keys, and the files in
// ../render/sops/src encrypted for the first. From the repository root:
//
//	go run ./render/testdata/sops/generate.go
//
// They are test data: the keys protect nothing.
package main

import (
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
	gosops "github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/stores/dotenv"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"github.com/getsops/sops/v3/version"
)

const (
	dir       = "render/testdata/sops"
	configDir = "render/testdata/render/sops/src/infra/config"
)

func main() {
	id := newKey(filepath.Join(dir, "age.agekey"))
	newKey(filepath.Join(dir, "other.agekey"))
	recipient := id.Recipient().String()
	encrypt(sopsyaml.NewStore(&config.YAMLStoreConfig{}), recipient, "^(data|stringData)$", `# The cluster's secrets, applied by the cluster-config Kustomization.
apiVersion: v1
kind: Secret
metadata:
  name: cluster-secrets
  namespace: flux-system
type: Opaque
stringData:
  CLUSTER_DOMAIN: prod.internal.example
  DB_PASSWORD: correct-horse-battery-staple
`, "cluster-secrets.sops.yaml")
	encrypt(dotenv.NewStore(&config.DotenvStoreConfig{}), recipient, "", `PRIVATE_REGISTRY=mirror.prod.internal.example
REGISTRY_PASSWORD=correct-horse-battery-staple
`, "registry.sops.env")
	encrypt(sopsjson.NewStore(&config.JSONStoreConfig{Indent: -1}), recipient, "", `{"token": "correct-horse-battery-staple"}
`, "app-config.sops.json")
}

// newKey writes a new age identity as age-keygen writes it.
func newKey(file string) *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		log.Fatal(err)
	}
	out := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		log.Fatal(err)
	}
	return id
}

// encrypt encrypts plain for recipient as sops --encrypt does and writes it
// into the config directory.
func encrypt(st gosops.Store, recipient, encryptedRegex, plain, name string) {
	branches, err := st.LoadPlainFile([]byte(plain))
	if err != nil {
		log.Fatal(err)
	}
	meta := gosops.Metadata{
		KeyGroups:      []gosops.KeyGroup{{keys.MasterKey(&sopsage.MasterKey{Recipient: recipient})}},
		EncryptedRegex: encryptedRegex,
		Version:        version.Version,
	}
	if encryptedRegex == "" {
		meta.UnencryptedSuffix = gosops.DefaultUnencryptedSuffix
	}
	tree := gosops.Tree{Branches: branches, Metadata: meta}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		log.Fatal(err)
	}
	for _, k := range tree.Metadata.KeyGroups[0] {
		if err := k.Encrypt(dataKey); err != nil {
			log.Fatal(err)
		}
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		log.Fatal(err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	if tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339)); err != nil {
		log.Fatal(err)
	}
	out, err := st.EmitEncryptedFile(tree)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(configDir, name), out, 0o644); err != nil {
		log.Fatal(err)
	}
}
