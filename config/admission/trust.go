package admission

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// Trust is trust material a policy gives one of its rules or attestors,
// as the engine takes it: Kyverno's keyless roots, rekor.pubkey and
// ctlog.pubkey, an ImageValidatingPolicy attestor's roots, ctlog
// rekorPubKey and ctLogPubKey. Each piece it sets replaces that piece of
// the default trust material (the Sigstore public-good instance, or the
// private deployment's --trusted-root); the pieces it leaves empty come
// from the default.
type Trust struct {
	// Roots are PEM certificates: a certificate authority's root, and
	// intermediates.
	Roots string
	// RekorKey and CTLogKey are PEM public keys of the transparency log
	// and the certificate transparency log.
	RekorKey, CTLogKey string
}

// IsZero says whether t sets nothing.
func (t Trust) IsZero() bool { return t == Trust{} }

// Material is the trust material t describes, the pieces t leaves empty
// taken from def, which is asked only if one is.
func (t Trust) Material(def func() (root.TrustedMaterial, error)) (root.TrustedMaterial, error) {
	m := &material{}
	var base root.TrustedMaterial
	fromDefault := func() (root.TrustedMaterial, error) {
		if base == nil {
			var err error
			if base, err = def(); err != nil {
				return nil, err
			}
		}
		return base, nil
	}
	if t.Roots != "" {
		ca, err := parseRoots(t.Roots)
		if err != nil {
			return nil, fmt.Errorf("roots: %w", err)
		}
		m.cas = []root.CertificateAuthority{ca}
	} else {
		b, err := fromDefault()
		if err != nil {
			return nil, err
		}
		m.cas = b.FulcioCertificateAuthorities()
		m.tsas = b.TimestampingAuthorities()
	}
	var err error
	if m.rekor, err = logs(t.RekorKey, "rekor", func(b root.TrustedMaterial) map[string]*root.TransparencyLog { return b.RekorLogs() }, fromDefault); err != nil {
		return nil, err
	}
	if m.ct, err = logs(t.CTLogKey, "ctlog", func(b root.TrustedMaterial) map[string]*root.TransparencyLog { return b.CTLogs() }, fromDefault); err != nil {
		return nil, err
	}
	return m, nil
}

// logs is the log of the PEM key, or the default's logs when there is none.
func logs(key, what string, get func(root.TrustedMaterial) map[string]*root.TransparencyLog,
	def func() (root.TrustedMaterial, error)) (map[string]*root.TransparencyLog, error) {
	if key == "" {
		b, err := def()
		if err != nil {
			return nil, err
		}
		return get(b), nil
	}
	l, err := transparencyLog(key)
	if err != nil {
		return nil, fmt.Errorf("%s public key: %w", what, err)
	}
	return map[string]*root.TransparencyLog{hex.EncodeToString(l.ID): l}, nil
}

// material is trust material put together from pieces.
type material struct {
	root.BaseTrustedMaterial
	cas       []root.CertificateAuthority
	tsas      []root.TimestampingAuthority
	rekor, ct map[string]*root.TransparencyLog
}

func (m *material) FulcioCertificateAuthorities() []root.CertificateAuthority { return m.cas }
func (m *material) TimestampingAuthorities() []root.TimestampingAuthority     { return m.tsas }
func (m *material) RekorLogs() map[string]*root.TransparencyLog               { return m.rekor }
func (m *material) CTLogs() map[string]*root.TransparencyLog                  { return m.ct }

// parseRoots reads a PEM chain: the self-signed root, and the
// intermediates below it, in any order.
func parseRoots(s string) (*root.FulcioCertificateAuthority, error) {
	ca := &root.FulcioCertificateAuthority{}
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM %q block, want CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		if selfSigned(cert) {
			if ca.Root != nil {
				return nil, errors.New("more than one self-signed root")
			}
			ca.Root = cert
			continue
		}
		ca.Intermediates = append(ca.Intermediates, cert)
	}
	if ca.Root == nil {
		return nil, errors.New("no self-signed root certificate")
	}
	ca.ValidityPeriodStart = ca.Root.NotBefore
	ca.ValidityPeriodEnd = ca.Root.NotAfter
	return ca, nil
}

func selfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}

// transparencyLog is a log known by its PEM public key only: its ID is
// the SHA-256 of the key's DER encoding, as Rekor's and CT logs' are.
func transparencyLog(key string) (*root.TransparencyLog, error) {
	block, _ := pem.Decode([]byte(key))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256(block.Bytes)
	return &root.TransparencyLog{
		ID: id[:], PublicKey: pub, HashFunc: crypto.SHA256, SignatureHashFunc: crypto.SHA256,
		ValidityPeriodStart: time.Unix(0, 0),
	}, nil
}
