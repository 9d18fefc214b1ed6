package config

import (
	"context"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/verify"
)

// DefaultTrustSource loads trust material as TrustRoots describe it: the
// Sigstore public-good instance through TUF for a nil TrustRoot (the
// default) and for spec.publicGood, the TUF mirror of spec.tuf, and the
// trusted_root.json of spec.trustedRoot.data. TUF metadata is cached in
// tufCacheDir.
//
// It reads no Secrets: a spec.trustedRoot.secretRef must have been resolved
// into spec.trustedRoot.data first, as the controller does; otherwise it is
// an error. Callers with another default (the CLI's --trusted-root) handle a
// nil TrustRoot themselves and delegate the rest.
func DefaultTrustSource(ctx context.Context, tufCacheDir string) TrustSource {
	return func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
		switch {
		case tr == nil || tr.Spec.PublicGood != nil:
			return verify.PublicGood(ctx, verify.WithTUFCacheDir(tufCacheDir))
		case tr.Spec.TUF != nil:
			return verify.TUFMirror(ctx, tr.Spec.TUF.Mirror, []byte(tr.Spec.TUF.Root), tufCacheDir)
		case tr.Spec.TrustedRoot != nil && tr.Spec.TrustedRoot.Data != "":
			return verify.TrustedRootFromJSON([]byte(tr.Spec.TrustedRoot.Data))
		case tr.Spec.TrustedRoot != nil && tr.Spec.TrustedRoot.SecretRef != nil:
			return nil, fmt.Errorf("TrustRoot %q: spec.trustedRoot.secretRef must be resolved first: only the controller reads Secrets; give spec.trustedRoot.data inline", tr.Name)
		default:
			return nil, fmt.Errorf("TrustRoot %q: no trust material", tr.Name)
		}
	}
}
