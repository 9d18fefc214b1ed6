package admission

import (
	"errors"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/verify/verifytest"
)

// TestTrustMaterial: each piece a policy gives replaces the default's, the
// others come from the default, which is not loaded when nothing is taken
// from it; bad pieces are errors naming the piece.
func TestTrustMaterial(t *testing.T) {
	t.Parallel()
	def, private := verifytest.NewSigstore(t), verifytest.NewSigstore(t)
	roots, rekorKey, ctlogKey := private.TrustPEM(t)
	loads := 0
	load := func() (root.TrustedMaterial, error) { loads++; return def.Material(), nil }

	all, err := Trust{Roots: roots, RekorKey: rekorKey, CTLogKey: ctlogKey}.Material(load)
	if err != nil || loads != 0 {
		t.Fatalf("Material() = %v, default loaded %d times; want no error, not loaded", err, loads)
	}
	if got, want := all.FulcioCertificateAuthorities(), private.Material().FulcioCertificateAuthorities(); len(got) != 1 || !sameRoot(got[0], want[0]) {
		t.Errorf("CAs = %v, want the policy's root", got)
	}
	for id := range private.Material().RekorLogs() {
		if _, ok := all.RekorLogs()[id]; !ok {
			t.Errorf("Rekor logs %v lack the policy's log %s", keys(all.RekorLogs()), id)
		}
	}

	onlyRoots, err := Trust{Roots: roots}.Material(load)
	if err != nil || loads != 1 {
		t.Fatalf("Material() = %v, default loaded %d times; want it loaded once", err, loads)
	}
	for id := range def.Material().CTLogs() {
		if _, ok := onlyRoots.CTLogs()[id]; !ok {
			t.Errorf("CT logs %v lack the default's %s", keys(onlyRoots.CTLogs()), id)
		}
	}

	for name, tc := range map[string]struct {
		trust Trust
		want  string
	}{
		"not PEM":          {Trust{Roots: "nope"}, "roots: no self-signed root certificate"},
		"a key for a root": {Trust{Roots: rekorKey}, `roots: a PEM "PUBLIC KEY" block, want CERTIFICATE`},
		"bad rekor key":    {Trust{Roots: roots, RekorKey: "nope"}, "rekor public key: no PEM block"},
		"bad ctlog key":    {Trust{Roots: roots, RekorKey: rekorKey, CTLogKey: roots}, "ctlog public key"},
	} {
		if _, err := tc.trust.Material(load); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Material() error = %v, want %q", name, err, tc.want)
		}
	}
	failing := func() (root.TrustedMaterial, error) { return nil, errors.New("TUF unreachable") }
	if _, err := (Trust{Roots: roots}).Material(failing); err == nil || !strings.Contains(err.Error(), "TUF unreachable") {
		t.Errorf("Material() with a failing default = %v", err)
	}
}

func sameRoot(a, b root.CertificateAuthority) bool {
	fa, ok1 := a.(*root.FulcioCertificateAuthority)
	fb, ok2 := b.(*root.FulcioCertificateAuthority)
	return ok1 && ok2 && fa.Root.Equal(fb.Root)
}

func keys(m map[string]*root.TransparencyLog) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
