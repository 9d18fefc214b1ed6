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

	all, err := Trust{Roots: roots, RekorKey: rekorKey, CTLogKey: ctlogKey, TSAChain: private.TSAPEM(t)}.Material(load)
	if err != nil || loads != 0 {
		t.Fatalf("Material() = %v, default loaded %d times; want no error, not loaded", err, loads)
	}
	want := private.Material().TimestampingAuthorities()[0].(*root.SigstoreTimestampingAuthority)
	if got := all.TimestampingAuthorities(); len(got) != 1 || !got[0].(*root.SigstoreTimestampingAuthority).Root.Equal(want.Root) ||
		!got[0].(*root.SigstoreTimestampingAuthority).Leaf.Equal(want.Leaf) || len(got[0].(*root.SigstoreTimestampingAuthority).Intermediates) != len(want.Intermediates) {
		t.Errorf("TSAs = %+v, want the policy's chain, its leaf apart", got)
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
		"no TSA root":      {Trust{Roots: roots, RekorKey: rekorKey, CTLogKey: ctlogKey, TSAChain: "nope"}, "timestamp authorities: no self-signed root certificate"},
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

// TestResolveTrustRoots: rules naming TrustRoots get their trust in copies;
// a TUF repository TrustRoot, or a missing one, is named unsupported; the
// TrustRoots are left out.
func TestResolveTrustRoots(t *testing.T) {
	t.Parallel()
	cip := &Policy{Engine: PolicyController, Kind: "ClusterImagePolicy", Name: "p", Rules: []Rule{
		{Name: "keys", TrustRoots: TrustRootRefs{Keyless: "keys", Log: "keys"}},
		{Name: "tuf", TrustRoots: TrustRootRefs{Keyless: "tuf"}},
		{Name: "missing", TrustRoots: TrustRootRefs{Log: "nope"}},
		{Name: "default"},
	}}
	keys := &Policy{Engine: PolicyController, Kind: "TrustRoot", Name: "keys",
		TrustRoot: &NamedTrust{Trust: Trust{Roots: "R", RekorKey: "K", CTLogKey: "C"}}}
	var tuf trustRoot
	tufPolicy := &Policy{Engine: PolicyController, Kind: "TrustRoot", Name: "tuf"}
	readTrustRoot(tufPolicy, tuf)

	got := ResolveTrustRoots([]*Policy{keys, cip, tufPolicy})
	if len(got) != 1 || got[0].Name != "p" {
		t.Fatalf("ResolveTrustRoots() = %+v, want the ClusterImagePolicy only", got)
	}
	rules := got[0].Rules
	if rules[0].Trust != (Trust{Roots: "R", RekorKey: "K", CTLogKey: "C"}) || len(rules[0].Unsupported) != 0 {
		t.Errorf("rule naming keys: %+v", rules[0])
	}
	if u := strings.Join(rules[1].Unsupported, "; "); !strings.Contains(u, `TrustRoot "tuf": a TUF repository`) {
		t.Errorf("rule naming a TUF TrustRoot: unsupported %q", u)
	}
	if u := strings.Join(rules[2].Unsupported, "; "); !strings.Contains(u, `trustRootRef "nope": no TrustRoot of that name was given`) {
		t.Errorf("rule naming a missing TrustRoot: unsupported %q", u)
	}
	if !rules[3].Trust.IsZero() || len(rules[3].Unsupported) != 0 {
		t.Errorf("rule naming none: %+v", rules[3])
	}
	if !cip.Rules[0].Trust.IsZero() || len(cip.Rules[2].Unsupported) != 0 {
		t.Errorf("ResolveTrustRoots changed its input: %+v", cip.Rules)
	}
}
