package verify_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// tufRepo is a TUF repository served on loopback: one ed25519 key for
// all four roles, consistent snapshots, and trusted_root.json as its one
// target.
type tufRepo struct {
	srv      *httptest.Server
	rootJSON []byte
	requests atomic.Int64

	mu    sync.Mutex
	files map[string][]byte
	down  bool
}

func newTUFRepo(t *testing.T, trustedRoot []byte) *tufRepo {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadSigner(key, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(24 * time.Hour).UTC()

	root := metadata.Root(expires)
	pub, err := metadata.KeyFromPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		if err := root.Signed.AddKey(pub, role); err != nil {
			t.Fatal(err)
		}
	}
	targets := metadata.Targets(expires)
	tf, err := metadata.TargetFile().FromBytes("trusted_root.json", trustedRoot, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	targets.Signed.Targets["trusted_root.json"] = tf
	snapshot := metadata.Snapshot(expires)
	timestamp := metadata.Timestamp(expires)

	r := &tufRepo{files: map[string][]byte{}}
	sign := func(name string, sign func(signature.Signer) (*metadata.Signature, error), bytes func(bool) ([]byte, error)) []byte {
		if _, err := sign(signer); err != nil {
			t.Fatalf("signing %s: %v", name, err)
		}
		b, err := bytes(false)
		if err != nil {
			t.Fatalf("encoding %s: %v", name, err)
		}
		return b
	}
	r.rootJSON = sign("root", root.Sign, root.ToBytes)
	r.files["/1.root.json"] = r.rootJSON
	r.files["/1.targets.json"] = sign("targets", targets.Sign, targets.ToBytes)
	r.files["/1.snapshot.json"] = sign("snapshot", snapshot.Sign, snapshot.ToBytes)
	r.files["/timestamp.json"] = sign("timestamp", timestamp.Sign, timestamp.ToBytes)
	sum := sha256.Sum256(trustedRoot)
	r.files["/targets/"+hex.EncodeToString(sum[:])+".trusted_root.json"] = trustedRoot

	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		b, ok := r.files[req.URL.Path]
		down := r.down
		r.mu.Unlock()
		switch {
		case down:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case !ok:
			http.NotFound(w, req)
		default:
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *tufRepo) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func TestTrustedRootFromJSON(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	tm, err := verify.TrustedRootFromJSON(ss.TrustedRootJSON())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tm.FulcioCertificateAuthorities()); got != 1 {
		t.Errorf("TrustedRootFromJSON() has %d Fulcio CAs, want 1", got)
	}
	if got := len(tm.RekorLogs()); got != 1 {
		t.Errorf("TrustedRootFromJSON() has %d Rekor logs, want 1", got)
	}
	if got := len(tm.TimestampingAuthorities()); got != 1 {
		t.Errorf("TrustedRootFromJSON() has %d TSAs, want 1", got)
	}
	if got := len(tm.CTLogs()); got != 1 {
		t.Errorf("TrustedRootFromJSON() has %d CT logs, want 1", got)
	}

	for name, in := range map[string]string{
		"empty":            ``,
		"not JSON":         `{`,
		"wrong media type": `{"mediaType": "application/json"}`,
		"no keys":          `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`,
		"wrong types":      `{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": {}}`,
	} {
		if _, err := verify.TrustedRootFromJSON([]byte(in)); err == nil {
			t.Errorf("TrustedRootFromJSON(%s) = nil error, want an error", name)
		}
	}
}

func TestTUFMirror(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	repo := newTUFRepo(t, ss.TrustedRootJSON())
	cache := t.TempDir()

	tm, err := verify.TUFMirror(t.Context(), repo.srv.URL, repo.rootJSON, cache)
	if err != nil {
		t.Fatalf("TUFMirror() = %v", err)
	}
	// The trusted root from the mirror verifies what the deployment signs.
	p := firstPartyPolicy(tm)
	if res := p.Check(discovered(referrer(ss.MustSignImage(t, goodIdentity, ghIssuer, imgDigest)))); res.Status != verify.Verified {
		t.Errorf("Check() with the mirror's trusted root = %s (%s), want Verified", res.Status, res.Detail)
	}

	// The repository goes away: the warm cache serves.
	repo.setDown(true)
	if _, err := verify.TUFMirror(t.Context(), repo.srv.URL, repo.rootJSON, cache); err != nil {
		t.Errorf("TUFMirror() with the repository down and a warm cache = %v, want the cached root", err)
	}
	// Offline: the cache alone, no request.
	before := repo.requests.Load()
	if _, err := verify.TUFMirror(t.Context(), repo.srv.URL, repo.rootJSON, cache, verify.WithTUFOffline()); err != nil {
		t.Errorf("TUFMirror(offline) with a warm cache = %v, want the cached root", err)
	}
	if n := repo.requests.Load() - before; n != 0 {
		t.Errorf("TUFMirror(offline) made %d requests, want 0", n)
	}

	// A cold cache and the repository down: a clear error.
	_, err = verify.TUFMirror(t.Context(), repo.srv.URL, repo.rootJSON, t.TempDir())
	t.Logf("cold cache, repository down: %v", err)
	if !errors.Is(err, verify.ErrTrustRootUnavailable) {
		t.Errorf("TUFMirror() cold and down = %v, want ErrTrustRootUnavailable", err)
	}
	if err != nil && (!strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "cache is cold")) {
		t.Errorf("TUFMirror() cold and down = %q, want it to name the 503 and the cold cache", err)
	}
	repo.setDown(false)

	// The mirror answers with metadata the anchor did not sign.
	other := newTUFRepo(t, ss.TrustedRootJSON())
	if _, err := verify.TUFMirror(t.Context(), repo.srv.URL, other.rootJSON, t.TempDir()); err == nil {
		t.Error("TUFMirror() with another repository's root.json = nil error, want an error")
	}
}

func TestTUFMirror_invalid(t *testing.T) {
	t.Parallel()
	root := []byte(`{}`)
	for name, tc := range map[string]struct {
		url  string
		root []byte
		opts []verify.TUFOption
		want string
	}{
		"relative URL":     {url: "tuf.example", root: root, want: "want an http(s) URL"},
		"ftp URL":          {url: "ftp://tuf.example", root: root, want: "want an http(s) URL"},
		"credentials":      {url: "https://user:secret@tuf.example", root: root, want: "redacted"},
		"no root":          {url: "https://tuf.example", want: "no root.json given"},
		"nil client":       {url: "https://tuf.example", root: root, opts: []verify.TUFOption{verify.WithTUFHTTPClient(nil)}, want: "HTTP client is nil"},
		"empty cache dir":  {url: "https://tuf.example", root: root, opts: []verify.TUFOption{verify.WithTUFCacheDir("")}, want: "cache directory is empty"},
		"negative timeout": {url: "https://tuf.example", root: root, opts: []verify.TUFOption{verify.WithTUFTimeout(-time.Second)}, want: "timeout must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := verify.TUFMirror(t.Context(), tc.url, tc.root, t.TempDir(), tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("TUFMirror() = %v, want an error containing %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("TUFMirror() error %q leaks the password", err)
			}
		})
	}
}

// TestPublicGood_offline runs PublicGood without network: offline with a
// cold cache, and online through a transport that refuses every request.
// Both must fail with ErrTrustRootUnavailable, and neither may reach out.
func TestPublicGood_offline(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	refuse := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		attempts.Add(1)
		return nil, errors.New("network is off")
	})}

	_, err := verify.PublicGood(t.Context(), verify.WithTUFCacheDir(t.TempDir()), verify.WithTUFOffline(), verify.WithTUFHTTPClient(refuse))
	t.Logf("offline, cold cache: %v", err)
	if !errors.Is(err, verify.ErrTrustRootUnavailable) || !strings.Contains(err.Error(), "cache is cold") {
		t.Errorf("PublicGood(offline, cold cache) = %v, want ErrTrustRootUnavailable naming the cold cache", err)
	}
	if n := attempts.Load(); n != 0 {
		t.Errorf("PublicGood(offline) made %d requests, want 0", n)
	}

	_, err = verify.PublicGood(t.Context(), verify.WithTUFCacheDir(t.TempDir()), verify.WithTUFHTTPClient(refuse))
	t.Logf("network off, cold cache: %v", err)
	if !errors.Is(err, verify.ErrTrustRootUnavailable) {
		t.Errorf("PublicGood(network off, cold cache) = %v, want ErrTrustRootUnavailable", err)
	}
	if err != nil && (!strings.Contains(err.Error(), "network is off") || !strings.Contains(err.Error(), "tuf-repo-cdn.sigstore.dev")) {
		t.Errorf("PublicGood(network off, cold cache) = %q, want it to name the repository and the network error", err)
	}
	if n := attempts.Load(); n == 0 {
		t.Error("PublicGood(online) made no request through the given client")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
