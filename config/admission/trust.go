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
	// Roots are PEM certificates: certificate authorities' roots, and
	// intermediates.
	Roots string
	// RekorKey and CTLogKey are PEM public keys of the transparency logs
	// and the certificate transparency logs.
	RekorKey, CTLogKey string
	// TSAChain are the PEM certificates of the timestamp authorities:
	// roots, intermediates and leaves (Kyverno's ctlog.tsaCertChain, a
	// TrustRoot's timestampAuthorities).
	TSAChain string
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
		cas, err := parseRoots(t.Roots)
		if err != nil {
			return nil, fmt.Errorf("roots: %w", err)
		}
		m.cas = cas
	} else {
		b, err := fromDefault()
		if err != nil {
			return nil, err
		}
		m.cas = b.FulcioCertificateAuthorities()
	}
	// Timestamp authorities come with the certificate authorities: the
	// policy's chain, else the default's when the default's roots are
	// taken too (a policy with roots of its own and no TSA chain has no
	// timestamp authority, as cosign's CheckOpts then have none).
	switch {
	case t.TSAChain != "":
		tsas, err := parseTSAs(t.TSAChain)
		if err != nil {
			return nil, fmt.Errorf("timestamp authorities: %w", err)
		}
		m.tsas = tsas
	case t.Roots == "":
		b, err := fromDefault()
		if err != nil {
			return nil, err
		}
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
	out := map[string]*root.TransparencyLog{}
	for _, block := range pemBlocks(key) {
		l, err := transparencyLog(block)
		if err != nil {
			return nil, fmt.Errorf("%s public key: %w", what, err)
		}
		out[hex.EncodeToString(l.ID)] = l
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s public key: no PEM block", what)
	}
	return out, nil
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

// parseRoots reads PEM certificates: each self-signed one is a
// certificate authority's root, the others its intermediates, each under
// the root its chain leads to.
func parseRoots(s string) ([]root.CertificateAuthority, error) {
	roots, inters, err := parseCertificates(s)
	if err != nil {
		return nil, err
	}
	cas := make([]root.CertificateAuthority, 0, len(roots))
	for _, r := range roots {
		ca := &root.FulcioCertificateAuthority{Root: r, ValidityPeriodStart: r.NotBefore, ValidityPeriodEnd: r.NotAfter}
		ca.Intermediates = below(r, inters)
		cas = append(cas, ca)
	}
	return cas, nil
}

// parseTSAs reads PEM certificates of timestamp authorities: each
// self-signed one is an authority's root, the others under it its
// intermediates and, for one that is no certificate authority, the
// timestamping leaf (at most one per root, as cosign takes them).
func parseTSAs(s string) ([]root.TimestampingAuthority, error) {
	roots, others, err := parseCertificates(s)
	if err != nil {
		return nil, err
	}
	tsas := make([]root.TimestampingAuthority, 0, len(roots))
	for _, r := range roots {
		tsa := &root.SigstoreTimestampingAuthority{Root: r, ValidityPeriodStart: r.NotBefore, ValidityPeriodEnd: r.NotAfter}
		for _, c := range below(r, others) {
			if c.IsCA {
				tsa.Intermediates = append(tsa.Intermediates, c)
				continue
			}
			if tsa.Leaf != nil {
				return nil, errors.New("more than one timestamping certificate under one root")
			}
			tsa.Leaf = c
		}
		tsas = append(tsas, tsa)
	}
	return tsas, nil
}

// parseCertificates reads PEM certificates, the self-signed ones apart.
func parseCertificates(s string) (roots, others []*x509.Certificate, err error) {
	for _, block := range pemBlocks(s) {
		if block.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("a PEM %q block, want CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, err
		}
		if cert.CheckSignatureFrom(cert) == nil {
			roots = append(roots, cert)
		} else {
			others = append(others, cert)
		}
		if len(roots)+len(others) > maxCertificates {
			return nil, nil, fmt.Errorf("more than the %d certificates read", maxCertificates)
		}
	}
	if len(roots) == 0 {
		return nil, nil, errors.New("no self-signed root certificate")
	}
	return roots, others, nil
}

// maxCertificates bounds the certificates of a policy's roots.
const maxCertificates = 32

// below are the certificates of inters whose chain through inters leads
// to r, in the order given.
func below(r *x509.Certificate, inters []*x509.Certificate) []*x509.Certificate {
	reached := map[*x509.Certificate]bool{r: true}
	for grew := true; grew; {
		grew = false
		for _, c := range inters {
			if reached[c] {
				continue
			}
			for p := range reached {
				if c.CheckSignatureFrom(p) == nil {
					reached[c], grew = true, true
					break
				}
			}
		}
	}
	var out []*x509.Certificate
	for _, c := range inters {
		if reached[c] {
			out = append(out, c)
		}
	}
	return out
}

// transparencyLog is a log known by its PEM public key only: its ID is
// the SHA-256 of the key's DER encoding, as Rekor's and CT logs' are.
func transparencyLog(block *pem.Block) (*root.TransparencyLog, error) {
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

// pemBlocks are the PEM blocks of s, in order.
func pemBlocks(s string) []*pem.Block {
	var out []*pem.Block
	rest := []byte(s)
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		out = append(out, block)
	}
}
