package verify

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/data"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// The sigstore-conformance bundle-verify vectors (testdata/sigstore-
// conformance, see its ORIGIN and README.md), run through pregate's own
// bundle verification: parseBundle, then authority.verify with the
// verifier options verifierOptions derives from the authority, exactly
// as Check does for every bundle. (Check adds what is specific to images
// on top: the predicate type and the subject digest.)
//
// Each case runs twice, as the upstream protocol does: PATH (the artifact
// file) and DIGEST (sha256 of it). A directory ending in _fail must fail
// to verify. A case with key.pub verifies with a key authority, any other
// with a keyless authority for the case's identity and issuer (defaults
// from the README). The trust root is the case's trusted_root.json, or
// sigstore-go's embedded public-good test root (pkg/testing/data) as a
// stand-in for the production root, which needs the network.
//
// The authorities use pregate's defaults, which are cosign's: SCTs and
// the transparency log are required (tlog time for certificates, no
// observer time for keys), signed timestamps only when asked for or when
// every log entry is Rekor v2.

const (
	conformanceDir      = "testdata/sigstore-conformance"
	conformanceIdentity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
	conformanceIssuer   = "https://token.actions.githubusercontent.com"
)

// conformanceExceptions lists the checks (case/FORM) whose outcome
// differs from the upstream expectation, and why. Every entry must
// actually disagree: TestConformance fails on a stale one.
var conformanceExceptions = map[string]string{
	"intoto-tsa-timestamp-outside-cert-validity_fail/PATH":   tsaIgnored,
	"intoto-tsa-timestamp-outside-cert-validity_fail/DIGEST": tsaIgnored,
}

// tsaIgnored: the bundle's log entry is valid and its integrated time
// lies within the certificate's validity; only its RFC 3161 timestamp
// lies outside. pregate maps authorities to verifier options as cosign
// does, and without SignedTimestamps (--use-signed-timestamps) neither
// checks RFC 3161 timestamps: the log dates the certificate. `cosign
// verify` accepts this bundle too. An authority with SignedTimestamps
// rejects it (TestConformance_signedTimestamps).
const tsaIgnored = "RFC 3161 timestamps are checked only with SignedTimestamps, as in cosign"

func TestConformance(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(conformanceDir)
	if err != nil {
		t.Fatal(err)
	}
	defaultArtifact, err := os.ReadFile(filepath.Join(conformanceDir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	publicGood := data.TrustedRoot(t, "public-good.json")

	var (
		mu              sync.Mutex
		cases, agreeing int
		disagreed       []string
	)
	t.Cleanup(func() { // after every subtest
		sort.Strings(disagreed)
		t.Logf("sigstore-conformance bundle-verify: %d of %d checks agree with upstream; known disagreements: %v", agreeing, cases, disagreed)
	})
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		dir := filepath.Join(conformanceDir, name)
		for _, form := range []string{"PATH", "DIGEST"} {
			id := name + "/" + form
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				wantOK := !strings.HasSuffix(name, "_fail")
				err := conformanceCase(t, dir, form, false, defaultArtifact, publicGood)
				agrees := (err == nil) == wantOK
				reason, excepted := conformanceExceptions[id]
				mu.Lock()
				cases++
				switch {
				case agrees && !excepted:
					agreeing++
				case !agrees && excepted:
					disagreed = append(disagreed, id)
				}
				mu.Unlock()
				switch {
				case agrees && excepted:
					t.Errorf("listed as an exception (%s), but agrees with upstream now: remove it", reason)
				case excepted:
					t.Logf("known disagreement: %s (error: %v)", reason, err)
				case !agrees && wantOK:
					t.Errorf("verification failed, want success: %v", err)
				case !agrees:
					t.Errorf("verification succeeded, want failure")
				}
				if err != nil {
					t.Logf("error: %v", err)
				}
			})
		}
	}
}

// TestConformance_signedTimestamps checks the cases listed for tsaIgnored
// with an authority that requires signed timestamps: they must fail.
func TestConformance_signedTimestamps(t *testing.T) {
	t.Parallel()
	a, err := os.ReadFile(filepath.Join(conformanceDir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for id := range conformanceExceptions {
		name, form, _ := strings.Cut(id, "/")
		if err := conformanceCase(t, filepath.Join(conformanceDir, name), form, true, a, data.TrustedRoot(t, "public-good.json")); err == nil {
			t.Errorf("%s with SignedTimestamps: verified, want failure", id)
		}
	}
}

// conformanceCase verifies one case in one form.
// A malformed trust root or key fails the case, as a client that rejects
// it would.
func conformanceCase(t *testing.T, dir, form string, signedTimestamps bool, defaultArtifact []byte, publicGood *root.TrustedRoot) error {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return b
	}
	artifact := defaultArtifact
	if b := read("artifact"); b != nil {
		artifact = b
	}
	identity, issuer := conformanceIdentity, conformanceIssuer
	if b := read("identity"); b != nil {
		identity = strings.TrimSpace(string(b))
	}
	if b := read("issuer"); b != nil {
		issuer = strings.TrimSpace(string(b))
	}
	var tm root.TrustedMaterial = publicGood
	if b := read("trusted_root.json"); b != nil {
		var err error
		if tm, err = TrustedRootFromJSON(b); err != nil {
			return err
		}
	}
	p := &Policy{Name: "conformance", Trusted: tm}
	if key := read("key.pub"); key != nil {
		p.Authorities = []Authority{{Name: "key", Key: &Key{PEM: key}, SignedTimestamps: signedTimestamps}}
	} else {
		p.Authorities = []Authority{{Name: "keyless", Keyless: &Keyless{Identities: []Identity{{Issuer: issuer, Subject: identity}}}, SignedTimestamps: signedTimestamps}}
	}
	a, err := p.compile(0)
	if err != nil {
		return err
	}

	b, err := parseBundle(read("bundle.sigstore.json"))
	if err != nil {
		return err
	}
	var artifactPolicy sgverify.ArtifactPolicyOption
	switch form {
	case "PATH":
		artifactPolicy = sgverify.WithArtifact(bytes.NewReader(artifact))
	case "DIGEST":
		sum := sha256.Sum256(artifact)
		artifactPolicy = sgverify.WithArtifactDigest("sha256", sum[:])
	}
	_, err = a.verify(b, artifactPolicy)
	return err
}
