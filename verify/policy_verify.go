package verify

import (
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// maxBundleSize bounds the bundle JSON Check parses. Signature bundles
// are a few KiB; an attestation bundle carries its predicate (an SBOM can
// run to megabytes), so this is the size of the largest layer discovery
// reads.
const maxBundleSize = maxBlobSize

// parseBundle parses a Sigstore bundle of any version sigstore-go accepts
// (v0.1 to v0.3, old and new media-type forms) and validates its shape
// (content, verification material, inclusion promise or proof as the
// version requires, no certificate chain in v0.3).
func parseBundle(b []byte) (*bundle.Bundle, error) {
	if len(b) > maxBundleSize {
		return nil, fmt.Errorf("bundle is %d bytes, more than the %d allowed", len(b), maxBundleSize)
	}
	var bb bundle.Bundle
	if err := bb.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("malformed bundle: %w", err)
	}
	return &bb, nil
}

// verifierOptions maps the authority to sigstore-go verifier options the
// way cosign v3 does (CheckOpts.verificationOptions in
// pkg/cosign/verify.go):
//
//	keyless, unless IgnoreSCT          WithSignedCertificateTimestamps(1)
//	unless IgnoreTlog                  WithTransparencyLog(1), and unless signed timestamps:
//	                                   WithIntegratedTimestamps(1) (keyless) or
//	                                   WithNoObserverTimestamps() (key)
//	SignedTimestamps                   WithSignedTimestamps(1)
//	IgnoreTlog without signed timestamps
//	                                   WithCurrentTime() (keyless) or
//	                                   WithNoObserverTimestamps() (key)
//
// Like cosign (rekorV2Bundle), a keyless authority that checks the log
// switches to signed timestamps by itself when every log entry of the
// entity is a Rekor v2 entry, which carries no integrated time.
func (a *authority) verifierOptions(entity sgverify.SignedEntity) []sgverify.VerifierOption {
	signedTimestamps := a.opts.SignedTimestamps
	if !signedTimestamps && a.keyless && !a.opts.IgnoreTlog && onlyRekorV2(entity) {
		signedTimestamps = true
	}
	var opts []sgverify.VerifierOption
	if a.keyless && !a.opts.IgnoreSCT {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	if !a.opts.IgnoreTlog {
		opts = append(opts, sgverify.WithTransparencyLog(1))
		if !signedTimestamps {
			if a.keyless {
				opts = append(opts, sgverify.WithIntegratedTimestamps(1))
			} else {
				opts = append(opts, sgverify.WithNoObserverTimestamps())
			}
		}
	}
	if signedTimestamps {
		opts = append(opts, sgverify.WithSignedTimestamps(1))
	}
	if a.opts.IgnoreTlog && !signedTimestamps {
		if a.keyless {
			opts = append(opts, sgverify.WithCurrentTime())
		} else {
			opts = append(opts, sgverify.WithNoObserverTimestamps())
		}
	}
	return opts
}

// onlyRekorV2 says whether the entity has log entries and none of them
// carries an integrated time (Rekor v2).
func onlyRekorV2(entity sgverify.SignedEntity) bool {
	entries, err := entity.TlogEntries()
	if err != nil || len(entries) == 0 {
		return false
	}
	for _, e := range entries {
		if !e.IntegratedTime().IsZero() {
			return false
		}
	}
	return true
}

// errNotKeySigned rejects, for a key authority, an entity that is not
// signed with a key.
var errNotKeySigned = errors.New("not signed with a public key: a key authority accepts only signatures made with its key")

// verify checks one signed entity against the authority: the
// signature over artifact (the image digest for Check; a file or digest
// for the conformance vectors), the certificate chain or key, the
// transparency log, timestamps and SCTs as verifierOptions sets them, and
// the certificate identity (keyless) or the key (key). It is the one
// bundle-verification path: Check and the conformance test both use it.
func (a *authority) verify(entity sgverify.SignedEntity, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	if a.static != nil {
		return nil, errors.New("a static authority verifies nothing")
	}
	if a.key != nil {
		// A key authority trusts its key and nothing else. sigstore-go's
		// WithKey refuses a certificate too; this does not rest on it: a
		// certificate chaining to the trust root's Fulcio CA, with a log
		// entry or a signed timestamp, must never pass for the key.
		if vc, err := entity.VerificationContent(); err != nil || vc == nil || vc.Certificate() != nil || vc.PublicKey() == nil {
			return nil, errNotKeySigned
		}
	}
	// Check reads only the verified statement's predicate type
	// (checkResult): sigstore-go need not parse the predicate, which for
	// an SBOM or provenance attestation is most of the work.
	v, err := sgverify.NewVerifier(a.material, append(a.verifierOptions(entity), sgverify.WithoutStatementPredicate())...)
	if err != nil {
		return nil, fmt.Errorf("configuring the verifier: %w", err)
	}
	var policy []sgverify.PolicyOption
	if a.key != nil {
		policy = append(policy, sgverify.WithKey())
	} else {
		for _, id := range a.ids {
			policy = append(policy, sgverify.WithCertificateIdentity(id))
		}
	}
	return v.Verify(entity, sgverify.NewPolicy(artifact, policy...))
}
