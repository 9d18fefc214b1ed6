package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// TestCompile_keyHashAlgorithm: a key authority's hashAlgorithm is the
// hash its signatures are checked over. A legacy signature made over
// SHA-512 verifies under hashAlgorithm sha512 and is rejected under sha256
// (the default) and sha384.
func TestCompile_keyHashAlgorithm(t *testing.T) {
	t.Parallel()
	const repo = "registry.example/acme/app"
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("image")))
	payload := verifytest.SimpleSigningPayload(repo, digest)

	for name, generate := range map[string]func() (crypto.Signer, error){
		"ECDSA P-384": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) },
		"RSA 2048":    func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			priv, err := generate()
			if err != nil {
				t.Fatal(err)
			}
			signer, err := signature.LoadSigner(priv, crypto.SHA512)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := signer.SignMessage(strings.NewReader(string(payload)))
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.MarshalPKIXPublicKey(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			d := verify.Discovery{
				Subject: verify.Subject{Repository: repo, Digest: digest},
				Artifacts: []verify.Artifact{{
					Source:      verify.SignatureTagStep,
					Manifest:    fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("sig manifest"))),
					Layer:       fmt.Sprintf("sha256:%x", sha256.Sum256(payload)),
					Format:      verify.SimpleSigningFormat,
					MediaType:   "application/vnd.dev.cosign.simplesigning.v1+json",
					Content:     payload,
					Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)},
				}},
			}

			for hashAlgorithm, want := range map[string]verify.Status{
				"hashAlgorithm: sha512": verify.Verified,
				"hashAlgorithm: sha384": verify.InvalidSignature,
				"hashAlgorithm: sha256": verify.InvalidSignature,
				"":                      verify.InvalidSignature, // the default, sha256
			} {
				doc := `
apiVersion: gate.pregate.dev/v1alpha1
kind: TrustPolicy
metadata: {name: release}
spec:
  images: [{glob: "registry.example/**"}]
  authorities:
    - name: release-key
      insecureIgnoreTlog: true
      key:
        ` + hashAlgorithm + `
        data: |
` + keyDataIndented(pub) + `
`
				s, err := Load("policies.yaml", []byte(doc))
				if err != nil {
					t.Fatalf("Load() = %v", err)
				}
				c, err := s.Compile(func(*v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
					return nil, errors.New("no trust material needed")
				})
				if err != nil {
					t.Fatalf("Compile() = %v", err)
				}
				if res := c.Verify[0].Check(d); res.Status != want {
					t.Errorf("%q: Check() = %s (%s), want %s", hashAlgorithm, res.Status, res.Detail, want)
				}
			}
		})
	}
}

// keyDataIndented is a PEM block indented as key.data's block scalar
// above needs it.
func keyDataIndented(pub []byte) string {
	pad := strings.Repeat(" ", 10)
	return pad + strings.ReplaceAll(strings.TrimSuffix(string(pub), "\n"), "\n", "\n"+pad)
}

func TestKeyHash(t *testing.T) {
	t.Parallel()
	for alg, want := range map[v1alpha1.HashAlgorithm]crypto.Hash{
		"": crypto.SHA256, v1alpha1.SHA224: crypto.SHA224, v1alpha1.SHA256: crypto.SHA256,
		v1alpha1.SHA384: crypto.SHA384, v1alpha1.SHA512: crypto.SHA512,
	} {
		if got, err := keyHash(alg); err != nil || got != want {
			t.Errorf("keyHash(%q) = %v, %v; want %v", alg, got, err, want)
		}
	}
	if _, err := keyHash("md5"); err == nil {
		t.Error(`keyHash("md5") = nil error, want an error`)
	}
}
