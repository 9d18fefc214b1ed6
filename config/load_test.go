package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/v1alpha1"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadFiles loads the testdata files into one Set, as the CLI does.
func loadFiles(t *testing.T, names ...string) (*Set, error) {
	t.Helper()
	var all Set
	for _, n := range names {
		s, err := Load(n, readTestdata(t, n))
		if err != nil {
			return nil, err
		}
		if err := all.Add(s); err != nil {
			return nil, err
		}
	}
	return &all, all.Validate()
}

func TestLoad_examples(t *testing.T) {
	t.Parallel()
	set, err := loadFiles(t, "first-party.yaml", "trust-roots.yaml", "internal.yaml")
	if err != nil {
		t.Fatalf("loading the examples: %v", err)
	}

	var policies, roots []string
	for _, p := range set.TrustPolicies() {
		policies = append(policies, p.Name)
	}
	for _, r := range set.TrustRoots() {
		roots = append(roots, r.Name)
	}
	if want := []string{"docker-library", "first-party", "internal-ci", "legacy-registry"}; !slices.Equal(policies, want) {
		t.Errorf("TrustPolicies() = %q, want %q", policies, want)
	}
	if want := []string{"internal", "internal-from-secret", "internal-tuf", "public-good"}; !slices.Equal(roots, want) {
		t.Errorf("TrustRoots() = %q, want %q", roots, want)
	}

	// Defaults.
	fp, _ := set.TrustPolicy("first-party")
	if fp.Spec.Mode != v1alpha1.ModeEnforce {
		t.Errorf("first-party: mode = %q, want the default %q", fp.Spec.Mode, v1alpha1.ModeEnforce)
	}
	dl, _ := set.TrustPolicy("docker-library")
	if got := []v1alpha1.HashAlgorithm{dl.Spec.Authorities[0].Key.HashAlgorithm, dl.Spec.Authorities[1].Key.HashAlgorithm}; !slices.Equal(got, []v1alpha1.HashAlgorithm{v1alpha1.SHA256, v1alpha1.SHA512}) {
		t.Errorf("docker-library: hash algorithms = %q, want the default sha256 and the given sha512", got)
	}
	if dl.Spec.Mode != v1alpha1.ModeWarn {
		t.Errorf("docker-library: mode = %q, want warn as written", dl.Spec.Mode)
	}

	// What the CRD decodes, the file decodes: labels, nested unions.
	if got := fp.Labels["pregate.dev/tier"]; got != "prod" {
		t.Errorf("first-party: label pregate.dev/tier = %q, want prod", got)
	}
	if r, ok := set.TrustRoot("internal-from-secret"); !ok || r.Spec.TrustedRoot.SecretRef.Key != "trusted_root.json" {
		t.Errorf("TrustRoot(internal-from-secret) = %+v, %t; want its secretRef", r, ok)
	}

	if got, ok := set.Origin(v1alpha1.TrustPolicyKind, "legacy-registry"); !ok || got != (Origin{"first-party.yaml", 3}) {
		t.Errorf("Origin(TrustPolicy, legacy-registry) = %v, %t; want first-party.yaml (document 3)", got, ok)
	}
	if got, ok := set.Origin(v1alpha1.TrustRootKind, "internal"); !ok || got != (Origin{"trust-roots.yaml", 3}) {
		t.Errorf("Origin(TrustRoot, internal) = %v, %t; want trust-roots.yaml (document 3)", got, ok)
	}
	if _, ok := set.Origin(v1alpha1.TrustRootKind, "first-party"); ok {
		t.Errorf("Origin(TrustRoot, first-party) found an object; first-party is a TrustPolicy")
	}
}

// header is the start of a TrustPolicy document named name.
func header(kind, name string) string {
	return "apiVersion: gate.pregate.dev/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
}

// policy is a TrustPolicy document with the given spec, indented by two.
func policy(name, spec string) string {
	return header("TrustPolicy", name) + "spec:\n" + indent(spec, 2)
}

// trustRoot is a TrustRoot document with the given spec, indented by two.
func trustRoot(name, spec string) string {
	return header("TrustRoot", name) + "spec:\n" + indent(spec, 2)
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// validSpec is a TrustPolicy spec with no problems, for cases that break one
// thing elsewhere.
const validSpec = `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: github
    keyless:
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subjectRegExp: https://github\.com/acme/.*
`

// keyAuthority is an authorities list with one key authority holding pem.
func keyAuthority(pem string) string {
	return "images:\n  - glob: ghcr.io/acme/**\nauthorities:\n  - name: k\n    key:\n      data: |\n" + indent(pem, 8)
}

const (
	certificatePEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	privateKeyPEM  = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
	garbageKeyPEM  = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
)

// publicKeyPEM generates a key with generate and returns its public half
// as a PKIX PEM block.
func publicKeyPEM(t *testing.T, generate func() (any, error)) string {
	t.Helper()
	pub, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

const trustedRootMediaType = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

func TestLoad_errors(t *testing.T) {
	t.Parallel()
	ecdsaPEM := string(readTestdata(t, "keys/ecdsa.pub"))
	x25519PEM := string(readTestdata(t, "keys/x25519.pub"))
	rsaPKCS1PEM := string(readTestdata(t, "keys/rsa-pkcs1.pub"))
	// Keys that parse but that sigstore rejects.
	rsa1024PEM := publicKeyPEM(t, func() (any, error) {
		k, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			return nil, err
		}
		return &k.PublicKey, nil
	})
	p224PEM := publicKeyPEM(t, func() (any, error) {
		k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return &k.PublicKey, nil
	})
	var manyPullSecrets strings.Builder
	manyPullSecrets.WriteString("imagePullSecrets:\n")
	for i := range v1alpha1.MaxImagePullSecrets + 1 {
		fmt.Fprintf(&manyPullSecrets, "  - {name: registry-%d, namespace: pregate-system}\n", i)
	}
	manyImages := "images:\n" + strings.Repeat("  - glob: ghcr.io/acme/**\n", 1) +
		func() string {
			var b strings.Builder
			for i := range v1alpha1.MaxImages {
				fmt.Fprintf(&b, "  - glob: ghcr.io/acme/app%d:*\n", i)
			}
			return b.String()
		}() + strings.TrimPrefix(validSpec, "images:\n  - glob: ghcr.io/acme/**\n")

	tests := map[string]struct {
		file string
		want string
	}{
		// Identities.
		"subject regexp does not compile": {
			file: policy("first-party", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: github
    keyless:
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subject: https://github.com/acme/app/.github/workflows/release.yaml@refs/heads/main
        - issuer: https://token.actions.githubusercontent.com
          subjectRegExp: (
`),
			want: `policies/prod.yaml: TrustPolicy "first-party": spec.authorities[0].keyless.identities[1].subjectRegExp: Invalid value: "(": error parsing regexp: missing closing )`,
		},
		"issuer regexp does not compile, the offending part named": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: github
    keyless:
      identities:
        - issuerRegExp: https://a**
          subject: me@acme.example
`),
			want: "policies/prod.yaml: TrustPolicy \"p\": spec.authorities[0].keyless.identities[0].issuerRegExp: Invalid value: \"https://a**\": error parsing regexp: invalid nested repetition operator: `**`",
		},
		"issuer exact and regexp": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: github
    keyless:
      identities:
        - issuer: https://token.actions.githubusercontent.com
          issuerRegExp: https://token\.actions\.githubusercontent\.com
          subject: me@acme.example
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].keyless.identities[0].issuerRegExp: Forbidden: exactly one of issuer and issuerRegExp must be set`,
		},
		"neither issuer nor subject": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: github
    keyless:
      identities:
        - {}
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].keyless.identities[0].issuer: Required value: exactly one of issuer and issuerRegExp must be set
policies/prod.yaml: TrustPolicy "p": spec.authorities[0].keyless.identities[0].subject: Required value: exactly one of subject and subjectRegExp must be set`,
		},
		"no identities": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: github
    keyless:
      identities: []
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].keyless.identities: Required value: at least one identity is required`,
		},

		// Authorities.
		"no authorities": {
			file: policy("p", "images:\n  - glob: ghcr.io/acme/**\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities: Required value: at least one authority is required`,
		},
		"authority of no kind": {
			file: policy("p", "images:\n  - glob: ghcr.io/acme/**\nauthorities:\n  - name: nothing\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0]: Required value: exactly one of keyless, key and static must be set`,
		},
		"authority of two kinds": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: both
    keyless:
      identities:
        - {issuer: https://issuer.example, subject: me@acme.example}
    static:
      action: pass
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0]: Forbidden: keyless and static are set: exactly one of keyless, key and static must be set`,
		},
		"authority names missing and repeated": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - static: {action: pass}
  - name: a
    static: {action: pass}
  - name: a
    static: {action: pass}
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].name: Required value
policies/prod.yaml: TrustPolicy "p": spec.authorities[2].name: Duplicate value: "a"`,
		},
		"static action missing and unsupported": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: a
    static: {}
  - name: b
    static: {action: allow}
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].static.action: Required value: "pass" or "fail"
policies/prod.yaml: TrustPolicy "p": spec.authorities[1].static.action: Unsupported value: "allow": supported values: "pass", "fail"`,
		},
		"static with verification options": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: a
    static: {action: pass}
    insecureIgnoreTlog: true
    signedTimestamps: true
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].insecureIgnoreTlog: Forbidden: a static authority verifies no signature
policies/prod.yaml: TrustPolicy "p": spec.authorities[0].signedTimestamps: Forbidden: a static authority verifies no signature`,
		},

		// Keys.
		"key is not PEM": {
			file: policy("p", keyAuthority("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI me@acme.example")),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: not a PEM-encoded public key: no PEM block found`,
		},
		"key is a certificate": {
			file: policy("p", keyAuthority(certificatePEM)),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: PEM block type is "CERTIFICATE", want "PUBLIC KEY"`,
		},
		"key is a private key": {
			file: policy("p", keyAuthority(privateKeyPEM)),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: is a private key (EC PRIVATE KEY): give the public key`,
		},
		"two keys": {
			file: policy("p", keyAuthority(ecdsaPEM+ecdsaPEM)),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: holds more than one PEM block: give exactly one public key`,
		},
		"key is not DER": {
			file: policy("p", keyAuthority(garbageKeyPEM)),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: the PUBLIC KEY block is not a DER-encoded public key`,
		},
		"PKCS #1 key labelled PKIX": {
			file: policy("p", keyAuthority(strings.ReplaceAll(rsaPKCS1PEM, "RSA PUBLIC KEY", "PUBLIC KEY"))),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: parsing the public key: x509: failed to parse public key (use ParsePKCS1PublicKey instead for this key format)`,
		},
		"X25519 key": {
			file: policy("p", keyAuthority(x25519PEM)),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: *ecdh.PublicKey keys are not supported: use ECDSA, RSA or Ed25519`,
		},
		"RSA key of 1024 bits": {
			file: policy("p", keyAuthority(rsa1024PEM)),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: validating public key: key size not supported: 1024: sigstore accepts RSA keys of 2048, 3072 or 4096 bits, ECDSA keys on P-256, P-384 or P-521, and Ed25519 keys`,
		},
		"P-224 key": {
			file: policy("p", keyAuthority(p224PEM)),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.data: Invalid value: validating public key: ECDSA curve P-224 not allowed: sigstore accepts RSA keys of 2048, 3072 or 4096 bits, ECDSA keys on P-256, P-384 or P-521, and Ed25519 keys`,
		},
		"key from nowhere": {
			file: policy("p", "images:\n  - glob: ghcr.io/acme/**\nauthorities:\n  - name: k\n    key: {hashAlgorithm: sha256}\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key: Required value: exactly one of data and secretRef must be set`,
		},
		"key inline and from a Secret": {
			file: policy("p", keyAuthority(ecdsaPEM)+"      secretRef: {name: k, namespace: ns, key: cosign.pub}\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.secretRef: Forbidden: exactly one of data and secretRef must be set`,
		},
		"key Secret reference incomplete": {
			file: policy("p", "images:\n  - glob: ghcr.io/acme/**\nauthorities:\n  - name: k\n    key:\n      secretRef: {name: Cosign_Key, key: cosign.pub}\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.secretRef.name: Invalid value: "Cosign_Key": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')
policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.secretRef.namespace: Required value: a TrustPolicy or TrustRoot is cluster-scoped`,
		},
		"hash algorithm": {
			file: policy("p", keyAuthority(ecdsaPEM)+"      hashAlgorithm: md5\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].key.hashAlgorithm: Unsupported value: "md5": supported values: "sha224", "sha256", "sha384", "sha512"`,
		},
		"SCT with a key": {
			file: policy("p", keyAuthority(ecdsaPEM)+"    insecureIgnoreSCT: true\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.authorities[0].insecureIgnoreSCT: Forbidden: applies only to keyless authorities: a public key has no certificate to carry an SCT`,
		},

		// Images, mode, references.
		"no images": {
			file: policy("p", strings.TrimPrefix(validSpec, "images:\n  - glob: ghcr.io/acme/**\n")),
			want: `policies/prod.yaml: TrustPolicy "p": spec.images: Required value: at least one image glob is required`,
		},
		"globs": {
			file: policy("p", "images:\n  - glob: nginx\n  - glob: ghcr.io/acme/.+\n  - glob: ghcr.io/acme/app\n  - glob: ''\n  - glob: ghcr.io/acme/**\n  - glob: ghcr.io/acme/**\n"+
				strings.TrimPrefix(validSpec, "images:\n  - glob: ghcr.io/acme/**\n")),
			want: `policies/prod.yaml: TrustPolicy "p": spec.images[0].glob: Invalid value: "nginx": matches no image: "nginx" is not a registry host and images are matched by their fully-qualified name, as in "index.docker.io/library/nginx:*"
policies/prod.yaml: TrustPolicy "p": spec.images[1].glob: Invalid value: "ghcr.io/acme/.+": "+" is not allowed: a glob is not a regular expression; it may hold letters, digits, "-_:/.@", "*" (within a path segment) and "**" (across segments)
policies/prod.yaml: TrustPolicy "p": spec.images[2].glob: Invalid value: "ghcr.io/acme/app": matches no image: a reference always ends in a tag or a digest (":latest" if none is written); "ghcr.io/acme/app:*" matches any tag, "ghcr.io/acme/app@*" any digest
policies/prod.yaml: TrustPolicy "p": spec.images[3].glob: Required value
policies/prod.yaml: TrustPolicy "p": spec.images[5].glob: Duplicate value: "ghcr.io/acme/**"`,
		},
		"too many images": {
			file: policy("p", manyImages),
			want: `policies/prod.yaml: TrustPolicy "p": spec.images: Too many: 65: must have at most 64 items`,
		},
		"mode": {
			file: policy("p", validSpec+"mode: strict\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.mode: Unsupported value: "strict": supported values: "enforce", "warn", "audit"`,
		},
		"trust root reference": {
			file: policy("p", validSpec+"trustRootRef: Internal Root\n"),
			want: `policies/prod.yaml: TrustPolicy "p": spec.trustRootRef: Invalid value: "Internal Root": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		},

		// Image pull secrets.
		"image pull secrets": {
			file: policy("p", validSpec+`imagePullSecrets:
  - {name: Registry_Creds, namespace: pregate-system}
  - {namespace: pregate-system}
  - {name: registry}
  - {name: registry, namespace: pregate.system}
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.imagePullSecrets[0].name: Invalid value: "Registry_Creds": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')
policies/prod.yaml: TrustPolicy "p": spec.imagePullSecrets[1].name: Required value
policies/prod.yaml: TrustPolicy "p": spec.imagePullSecrets[2].namespace: Required value: a TrustPolicy is cluster-scoped
policies/prod.yaml: TrustPolicy "p": spec.imagePullSecrets[3].namespace: Invalid value: "pregate.system": must not contain dots`,
		},
		"too many image pull secrets": {
			file: policy("p", validSpec+manyPullSecrets.String()),
			want: `policies/prod.yaml: TrustPolicy "p": spec.imagePullSecrets: Too many: 17: must have at most 16 items`,
		},

		// Attestations.
		"attestations": {
			file: policy("p", validSpec+`attestations:
  - predicateType: https://slsa.dev/provenance/v1
  - name: sbom
  - name: sbom
    predicateType: slsaprovenance
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.attestations[0].name: Required value
policies/prod.yaml: TrustPolicy "p": spec.attestations[1].predicateType: Required value
policies/prod.yaml: TrustPolicy "p": spec.attestations[2].name: Duplicate value: "sbom"
policies/prod.yaml: TrustPolicy "p": spec.attestations[2].predicateType: Invalid value: "slsaprovenance": must be a predicate type URI, such as "https://slsa.dev/provenance/v1" (cosign's short names are not accepted)`,
		},
		"attestations with only static authorities": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: a
    static: {action: pass}
attestations:
  - name: provenance
    predicateType: https://slsa.dev/provenance/v1
`),
			want: `policies/prod.yaml: TrustPolicy "p": spec.attestations: Forbidden: attestations are verified by a keyless or key authority, and every authority is static`,
		},

		// Names.
		"no name": {
			file: "apiVersion: gate.pregate.dev/v1alpha1\nkind: TrustPolicy\nspec:\n" + indent(validSpec, 2),
			want: `policies/prod.yaml: document 1: TrustPolicy: metadata.name: Required value`,
		},
		"invalid name": {
			file: policy("First_Party", validSpec),
			want: `policies/prod.yaml: TrustPolicy "First_Party": metadata.name: Invalid value: "First_Party": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		},
		"duplicate names in one file": {
			file: policy("p", validSpec) + "---\n" + trustRoot("p", "publicGood: {}") + "---\n" + policy("p", validSpec),
			want: `policies/prod.yaml: TrustPolicy "p": duplicate name: also defined in document 1`,
		},

		// Trust roots.
		"trust root of no kind": {
			file: trustRoot("r", "{}"),
			want: `policies/prod.yaml: TrustRoot "r": spec: Required value: exactly one of publicGood, tuf and trustedRoot must be set`,
		},
		"trust root of three kinds": {
			file: trustRoot("r", "publicGood: {}\ntuf: {mirror: 'https://tuf.example', root: '{}'}\ntrustedRoot: {data: '{}'}\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec: Forbidden: publicGood, tuf and trustedRoot are set: exactly one of publicGood, tuf and trustedRoot must be set`,
		},
		"TUF mirror over http": {
			file: trustRoot("r", "tuf:\n  mirror: http://tuf.acme.example\n  root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": [{}]}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.tuf.mirror: Invalid value: "http://tuf.acme.example": must be an https URL (http only for localhost, 127.0.0.1 and [::1])`,
		},
		"TUF mirror with credentials": {
			file: trustRoot("r", "tuf:\n  mirror: https://bot:hunter2@tuf.acme.example\n  root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": [{}]}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.tuf.mirror: Invalid value: "https://bot:xxxxx@tuf.acme.example": must not hold credentials`,
		},
		"TUF mirror without a host": {
			file: trustRoot("r", "tuf:\n  mirror: tuf.acme.example\n  root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": [{}]}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.tuf.mirror: Invalid value: "tuf.acme.example": must be an https URL (http only for localhost, 127.0.0.1 and [::1])`,
		},
		"TUF mirror and root missing": {
			file: trustRoot("r", "tuf: {}"),
			want: `policies/prod.yaml: TrustRoot "r": spec.tuf.mirror: Required value
policies/prod.yaml: TrustRoot "r": spec.tuf.root: Required value: the content of the mirror's initial root.json`,
		},
		"TUF root is not JSON": {
			file: trustRoot("r", "tuf:\n  mirror: https://tuf.acme.example\n  root: 'signed: {}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.tuf.root: Invalid value: not a TUF root.json: invalid character 's' looking for beginning of value`,
		},
		"TUF root is another role": {
			file: trustRoot("r", "tuf:\n  mirror: https://tuf.acme.example\n  root: '{\"signed\": {\"_type\": \"timestamp\"}, \"signatures\": [{}]}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.tuf.root: Invalid value: not a TUF root.json: signed._type must be "root"`,
		},
		"TUF root unsigned": {
			file: trustRoot("r", "tuf:\n  mirror: https://tuf.acme.example\n  root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": []}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.tuf.root: Invalid value: not a TUF root.json: it has no signatures`,
		},
		"trusted root is not JSON": {
			file: trustRoot("r", "trustedRoot:\n  data: 'mediaType: x'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.trustedRoot.data: Invalid value: not a trusted_root.json: invalid character 'm' looking for beginning of value`,
		},
		"trusted root of another media type": {
			file: trustRoot("r", "trustedRoot:\n  data: '{\"mediaType\": \"application/vnd.dev.sigstore.bundle.v0.3+json\"}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.trustedRoot.data: Invalid value: mediaType is "application/vnd.dev.sigstore.bundle.v0.3+json", want "` + trustedRootMediaType + `"`,
		},
		"trusted root without a media type": {
			file: trustRoot("r", "trustedRoot:\n  data: '{\"tlogs\": []}'\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.trustedRoot.data: Invalid value: mediaType is "", want "` + trustedRootMediaType + `"`,
		},
		"trusted root from nowhere": {
			file: trustRoot("r", "trustedRoot: {}"),
			want: `policies/prod.yaml: TrustRoot "r": spec.trustedRoot: Required value: exactly one of data and secretRef must be set`,
		},
		"trusted root inline and from a Secret": {
			file: trustRoot("r", "trustedRoot:\n  data: '{}'\n  secretRef: {name: tr, namespace: ns, key: trusted_root.json}\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.trustedRoot.secretRef: Forbidden: exactly one of data and secretRef must be set`,
		},
		"trusted root Secret key": {
			file: trustRoot("r", "trustedRoot:\n  secretRef: {name: tr, namespace: ns, key: 'trusted root.json'}\n"),
			want: `policies/prod.yaml: TrustRoot "r": spec.trustedRoot.secretRef.key: Invalid value: "trusted root.json": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
		},

		// Decoding.
		"unknown fields": {
			file: policy("p", validSpec+"modes: enforce\n") + "  authorityz: []\nstatus: {}\n",
			want: `policies/prod.yaml: TrustPolicy "p": unknown field "spec.authorityz"
policies/prod.yaml: TrustPolicy "p": unknown field "spec.modes"
policies/prod.yaml: TrustPolicy "p": unknown field "status"`,
		},
		"unknown nested fields": {
			file: policy("p", `images:
  - glob: ghcr.io/acme/**
authorities:
  - name: github
    keyless:
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subjectRegex: https://github\.com/acme/.*
`) + "  labelz: {}\n",
			want: `policies/prod.yaml: TrustPolicy "p": unknown field "spec.authorities[0].keyless.identities[0].subjectRegex"
policies/prod.yaml: TrustPolicy "p": unknown field "spec.labelz"`,
		},
		"unknown metadata field": {
			file: strings.Replace(policy("p", validSpec), "metadata:\n", "metadata:\n  label: {}\n", 1),
			want: `policies/prod.yaml: TrustPolicy "p": unknown field "metadata.label"`,
		},
		"wrong type": {
			file: policy("p", "images: ghcr.io/acme/**\n"),
			want: `policies/prod.yaml: TrustPolicy "p": json: cannot unmarshal string into Go struct field TrustPolicySpec.spec.images of type []v1alpha1.ImagePattern`,
		},
		"duplicate YAML key": {
			file: policy("p", validSpec+"mode: warn\nmode: enforce\n"),
			want: "policies/prod.yaml: document 1: yaml: unmarshal errors:\n  line 15: key \"mode\" already set in map",
		},
		"malformed YAML in the second document": {
			file: policy("a", validSpec) + "---\n# a comment\n" + header("TrustPolicy", "b") + "spec:\n  images:\n  - glob: ghcr.io/**\n   authorities: []\n",
			want: `policies/prod.yaml: document 2: yaml: line 22: did not find expected key`,
		},
		"tab indentation": {
			file: header("TrustPolicy", "p") + "spec:\n\timages: []\n",
			want: `policies/prod.yaml: document 1: yaml: line 6: found character that cannot start any token`,
		},
		"unsupported kind": {
			file: policy("a", validSpec) + "---\napiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata:\n  name: cip\n",
			want: `policies/prod.yaml: document 2: unsupported kind "ClusterImagePolicy" of apiVersion "policy.sigstore.dev/v1beta1": policy files hold gate.pregate.dev/v1alpha1 TrustPolicy, gate.pregate.dev/v1alpha1 TrustRoot`,
		},
		"unsupported version": {
			file: strings.Replace(policy("a", validSpec), "v1alpha1", "v1beta1", 1),
			want: `policies/prod.yaml: document 1: unsupported kind "TrustPolicy" of apiVersion "gate.pregate.dev/v1beta1": policy files hold gate.pregate.dev/v1alpha1 TrustPolicy, gate.pregate.dev/v1alpha1 TrustRoot`,
		},
		"Gate is not a policy": {
			file: header("Gate", "g"),
			want: `policies/prod.yaml: document 1: unsupported kind "Gate" of apiVersion "gate.pregate.dev/v1alpha1": policy files hold gate.pregate.dev/v1alpha1 TrustPolicy, gate.pregate.dev/v1alpha1 TrustRoot`,
		},
		"no kind": {
			file: "apiVersion: gate.pregate.dev/v1alpha1\nmetadata:\n  name: p\n",
			want: `policies/prod.yaml: document 1: apiVersion and kind must be set`,
		},
		"bad apiVersion": {
			file: "apiVersion: a/b/c\nkind: TrustPolicy\n",
			want: `policies/prod.yaml: document 1: TrustPolicy: apiVersion "a/b/c": unexpected GroupVersion string: a/b/c`,
		},
		"kind is not a string": {
			file: "apiVersion: gate.pregate.dev/v1alpha1\nkind: [TrustPolicy]\n",
			want: `policies/prod.yaml: document 1: json: cannot unmarshal array into Go struct field .kind of type string`,
		},
		"a scalar": {
			file: "TrustPolicy\n",
			want: `policies/prod.yaml: document 1: not an object: a document holds one TrustPolicy or TrustRoot`,
		},
		"not an object": {
			file: "- apiVersion: gate.pregate.dev/v1alpha1\n  kind: TrustPolicy\n",
			want: `policies/prod.yaml: document 1: not an object: a document holds one TrustPolicy or TrustRoot`,
		},

		// Several problems in several documents, empty documents skipped.
		"every problem of the file": {
			file: "---\n# nothing here\n---\n" + policy("a", validSpec+"mode: strict\ntrustRootRef: X\n") + "---\n---\n" +
				trustRoot("r", "tuf: {mirror: 'ftp://tuf.example', root: '{}'}") + "---\nkind: TrustPolicy\n",
			want: `policies/prod.yaml: TrustPolicy "a": spec.mode: Unsupported value: "strict": supported values: "enforce", "warn", "audit"
policies/prod.yaml: TrustPolicy "a": spec.trustRootRef: Invalid value: "X": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')
policies/prod.yaml: TrustRoot "r": spec.tuf.mirror: Invalid value: "ftp://tuf.example": must be an https URL (http only for localhost, 127.0.0.1 and [::1])
policies/prod.yaml: TrustRoot "r": spec.tuf.root: Invalid value: not a TUF root.json: signed._type must be "root"
policies/prod.yaml: document 3: TrustPolicy: apiVersion and kind must be set`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			set, err := Load("policies/prod.yaml", []byte(tt.file))
			if err == nil {
				t.Fatalf("Load() = %d policies, %d roots, nil error; want\n%s", len(set.TrustPolicies()), len(set.TrustRoots()), tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("Load() error (-want +got):\n%s", diff)
			}
			if set != nil {
				t.Errorf("Load() returned a Set with its error")
			}
			if _, ok := errors.AsType[*ObjectError](err); !ok {
				t.Errorf("Load() error is not an *ObjectError: %#v", err)
			}
		})
	}
}

func TestLoad_valid(t *testing.T) {
	t.Parallel()
	rsaPKCS1PEM := string(readTestdata(t, "keys/rsa-pkcs1.pub"))
	ed25519PEM := string(readTestdata(t, "keys/ed25519.pub"))
	tests := map[string]string{
		"RSA PKCS #1 key": policy("p", keyAuthority(rsaPKCS1PEM)),
		"Ed25519 key":     policy("p", keyAuthority(ed25519PEM)),
		"key from a Secret": policy("p",
			"images:\n  - glob: ghcr.io/acme/**\nauthorities:\n  - name: k\n    key:\n      secretRef: {name: cosign, namespace: pregate-system, key: cosign.pub}\n"),
		"TUF mirror on localhost over http": trustRoot("r",
			"tuf:\n  mirror: http://localhost:8080/tuf\n  root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": [{}]}'\n"),
		"TUF mirror on 127.0.0.1 over http": trustRoot("r",
			"tuf:\n  mirror: http://127.0.0.1:8080\n  root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": [{}]}'\n"),
		"TUF mirror on [::1] over http": trustRoot("r",
			"tuf:\n  mirror: http://[::1]:8080\n  root: '{\"signed\": {\"_type\": \"root\"}, \"signatures\": [{}]}'\n"),
		"JSON":                     `{"apiVersion": "gate.pregate.dev/v1alpha1", "kind": "TrustRoot", "metadata": {"name": "r"}, "spec": {"publicGood": {}}}`,
		"empty file":               "",
		"only comments":            "# nothing yet\n---\n# still nothing\n",
		"separators with CRLF":     strings.ReplaceAll("---\n"+trustRoot("r", "publicGood: {}")+"---\n", "\n", "\r\n"),
		"unsigned mode is audited": policy("p", validSpec+"mode: audit\n"),
		"image pull secrets":       policy("p", validSpec+"imagePullSecrets:\n  - {name: ghcr-creds, namespace: pregate-system}\n"),
		"static pass with a message": policy("p",
			"images:\n  - glob: '**'\nauthorities:\n  - name: any\n    static: {action: pass, message: trusted}\n"),
	}
	for name, file := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Load("policies/prod.yaml", []byte(file)); err != nil {
				t.Errorf("Load() error: %v", err)
			}
		})
	}
}

func TestSet_Add(t *testing.T) {
	t.Parallel()
	load := func(name, data string) *Set {
		t.Helper()
		s, err := Load(name, []byte(data))
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		return s
	}
	a := load("policies/a.yaml", policy("first-party", validSpec)+"---\n"+trustRoot("internal", "publicGood: {}"))
	b := load("policies/b.yaml", policy("third-party", validSpec)+"---\n"+trustRoot("internal", "publicGood: {}")+"---\n"+policy("first-party", validSpec))

	var set Set
	if err := set.Add(a); err != nil {
		t.Fatalf("Add(a): %v", err)
	}
	err := set.Add(b)
	want := `policies/b.yaml: TrustPolicy "first-party": duplicate name: also defined in policies/a.yaml (document 1)
policies/b.yaml: TrustRoot "internal": duplicate name: also defined in policies/a.yaml (document 2)`
	if err == nil {
		t.Fatalf("Add(b) = nil, want\n%s", want)
	}
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("Add(b) error (-want +got):\n%s", diff)
	}
	if !errors.Is(err, ErrDuplicateName) {
		t.Errorf("Add(b) error does not wrap ErrDuplicateName: %#v", err)
	}
	if _, ok := set.TrustPolicy("third-party"); ok {
		t.Errorf("a failed Add added third-party; want nothing added")
	}

	c := load("policies/c.yaml", policy("third-party", validSpec))
	if err := set.Add(c); err != nil {
		t.Fatalf("Add(c): %v", err)
	}
	if got, _ := set.Origin(v1alpha1.TrustPolicyKind, "third-party"); got != (Origin{"policies/c.yaml", 1}) {
		t.Errorf("Origin(third-party) = %v, want policies/c.yaml (document 1)", got)
	}
}

func TestSet_Validate(t *testing.T) {
	t.Parallel()
	policies, err := Load("policies/internal.yaml", readTestdata(t, "internal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var set Set
	if err := set.Add(policies); err != nil {
		t.Fatal(err)
	}
	want := `policies/internal.yaml: TrustPolicy "internal-ci": spec.trustRootRef: Not found: "internal"`
	if err := set.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() without trust roots = %v, want %s", err, want)
	}

	roots, err := Load("roots.yaml", readTestdata(t, "trust-roots.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Add(roots); err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(); err != nil {
		t.Errorf("Validate() with trust roots = %v, want nil", err)
	}
}

// TestCRDBounds checks that the CRD and package config agree on the list
// bounds: controller-gen reads the markers, config the constants.
func TestCRDBounds(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "manifests", "crd", "bases", "gate.pregate.dev_trustpolicies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	spec := lookup(t, crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties")
	for path, want := range map[string]int{
		"images":       v1alpha1.MaxImages,
		"authorities":  v1alpha1.MaxAuthorities,
		"attestations": v1alpha1.MaxAttestations,
	} {
		if got := lookup(t, spec, path, "maxItems"); got != float64(want) {
			t.Errorf("CRD spec.%s.maxItems = %v, want %d (run make generate, or align the marker with the constant)", path, got, want)
		}
	}
	ids := lookup(t, spec, "authorities", "items", "properties", "keyless", "properties", "identities", "maxItems")
	if ids != float64(v1alpha1.MaxIdentities) {
		t.Errorf("CRD spec.authorities[].keyless.identities.maxItems = %v, want %d", ids, v1alpha1.MaxIdentities)
	}
}

// lookup walks a decoded YAML document by map keys and list indexes.
func lookup(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("lookup %v: %q: not a map", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("lookup %v: [%d]: not a list that long", path, k)
			}
			v = l[k]
		}
	}
	return v
}
