package verify

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pregate/pregate/verify/verifytest"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"https://ghcr.io/v2/acme/app/referrers/sha256:ab":                        "https://ghcr.io/v2/acme/app/referrers/sha256:ab",
		"https://user:pass@ghcr.io/v2/acme/app/manifests/v1":                     "https://ghcr.io/v2/acme/app/manifests/v1",
		"https://cdn.example/blob?X-Amz-Signature=abc&X-Amz-Credential=k#frag":   "https://cdn.example/blob?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED",
		"https://r.example/v2/a/referrers/sha256:ab?n=10&last=sha256:cd&token=t": "https://r.example/v2/a/referrers/sha256:ab?last=sha256%3Acd&n=10&token=REDACTED",
	}
	for in, want := range tests {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactURL(u); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNextPage(t *testing.T) {
	t.Parallel()
	cur, err := url.Parse("https://r.example/v2/app/referrers/sha256:ab")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		links   []string
		want    string
		wantErr string
	}{
		"none":           {},
		"relative":       {links: []string{`</v2/app/referrers/sha256:ab?last=x>; rel="next"`}, want: "https://r.example/v2/app/referrers/sha256:ab?last=x"},
		"absolute":       {links: []string{`<https://r.example/v2/app/referrers/sha256:ab?last=y>; rel=next`}, want: "https://r.example/v2/app/referrers/sha256:ab?last=y"},
		"among others":   {links: []string{`</a>; rel="prev", </b?last=z>; rel="next"`}, want: "https://r.example/b?last=z"},
		"not next":       {links: []string{`</a>; rel="prev"`}},
		"another host":   {links: []string{`<https://evil.example/x>; rel="next"`}, wantErr: "another host (evil.example)"},
		"scheme changed": {links: []string{`<http://r.example/x>; rel="next"`}, wantErr: "another host"},
		"malformed":      {links: []string{`no brackets; rel="next"`}},
	}
	for name, tc := range tests {
		h := http.Header{}
		for _, l := range tc.links {
			h.Add("Link", l)
		}
		got, err := nextPage(cur, h)
		gotS := ""
		if got != nil {
			gotS = got.String()
		}
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: nextPage() = %v, want an error containing %q", name, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: nextPage() = %v, want no error", name, err)
		case gotS != tc.want:
			t.Errorf("%s: nextPage() = %q, want %q", name, gotS, tc.want)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	s := &session{secrets: secretsOf(&authn.AuthConfig{Username: "alice", Password: "hunter22", RegistryToken: "tok-123456"})}
	tests := map[string]string{
		"denied for hunter22":                           "denied for REDACTED",
		"got Authorization: Basic YWxpY2U6aHVudGVyMjI=": "got Authorization: Basic REDACTED",
		"got Bearer eyJhbGciOi.abc-def_ghi":             "got Bearer REDACTED",
		"token tok-123456 expired":                      "token REDACTED expired",
		"nothing secret here":                           "nothing secret here",
	}
	for in, want := range tests {
		if got := s.scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFollowRedirect(t *testing.T) {
	t.Parallel()
	req := func(raw string) *http.Request {
		r, err := http.NewRequestWithContext(t.Context(), http.MethodGet, raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Response = &http.Response{StatusCode: http.StatusTemporaryRedirect}
		return r
	}
	tests := map[string]struct {
		from, to string
		wantErr  bool
	}{
		"to a CDN":                  {from: "https://registry.example/v2/a/blobs/x", to: "https://cdn.example/x"},
		"same host":                 {from: "https://registry.example/v2/a/blobs/x", to: "https://registry.example/y"},
		"public to metadata":        {from: "https://registry.example/v2/a/blobs/x", to: "http://169.254.169.254/latest", wantErr: true},
		"public to shared space":    {from: "https://registry.example/v2/a/blobs/x", to: "http://100.100.100.200/latest", wantErr: true},
		"public to NAT64 private":   {from: "https://registry.example/v2/a/blobs/x", to: "http://[64:ff9b::a00:1]/x", wantErr: true},
		"public to this network":    {from: "https://registry.example/v2/a/blobs/x", to: "http://0.1.2.3/x", wantErr: true},
		"public to NAT64 public":    {from: "https://registry.example/v2/a/blobs/x", to: "http://[64:ff9b::5db8:d822]/x"},
		"public to loopback":        {from: "https://registry.example/v2/a/blobs/x", to: "http://127.0.0.1:8080/x", wantErr: true},
		"public to mapped private":  {from: "https://registry.example/v2/a/blobs/x", to: "http://[::ffff:10.0.0.1]/x", wantErr: true},
		"public to short loopback":  {from: "https://registry.example/v2/a/blobs/x", to: "http://127.1/x", wantErr: true},
		"public to hex loopback":    {from: "https://registry.example/v2/a/blobs/x", to: "http://0x7f000001/x", wantErr: true},
		"public to decimal private": {from: "https://registry.example/v2/a/blobs/x", to: "http://167772161/x", wantErr: true},
		"public to numeric name":    {from: "https://registry.example/v2/a/blobs/x", to: "https://1.2.3.4.example/x"},
		"private to private":        {from: "http://10.0.0.5:5000/v2/a/blobs/x", to: "http://10.0.0.6/x"},
		"to another scheme":         {from: "https://registry.example/v2/a/blobs/x", to: "ftp://cdn.example/x", wantErr: true},
	}
	for name, tc := range tests {
		err := followRedirect(req(tc.to), []*http.Request{req(tc.from)})
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: followRedirect() = %v, want error %t", name, err, tc.wantErr)
		}
	}
}

// TestSession_reusesHandshake checks that the authentication handshake
// (the registry's ping, then the repository's token) is made once and made
// again once it has expired.
func TestSession_reusesHandshake(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	r, err := NewRegistry(WithKeychain(authn.NewMultiKeychain()))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	r.hosts.now = r.now
	pings := func() int { return r.Requests().ByHost[host][http.StatusOK] }
	s := Subject{Repository: host + "/app", Digest: "sha256:" + strings.Repeat("a", 64)}

	r.Discover(t.Context(), s) // a ping (200), four places (404)
	r.Discover(t.Context(), s)
	if got := pings(); got != 1 {
		t.Errorf("pings after two discoveries = %d, want 1", got)
	}
	now = now.Add(authTTL)
	r.Discover(t.Context(), s)
	if got := pings(); got != 2 {
		t.Errorf("pings after the handshake expired = %d, want 2", got)
	}
}

// TestDiscover_overBudget checks each bound on what one image's
// discovery reads (manifests, layers, bytes): what is left out has a
// failed lookup naming it, is always the same (the last by manifest
// digest), and makes the verdict LookupFailed (the signature may be in
// what was not read), which is not cached; within the budget the verdict
// is definite and cached.
func TestDiscover_overBudget(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(true))
	img, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	layerOf := map[string]string{} // manifest digest: layer digest
	for i := range 3 {
		junk := bytes.Repeat([]byte{byte('a' + i)}, 1000) // bundles that never verify
		m := verifytest.PushReferrer(t, img, bundleType, bundleType, junk, nil)
		h, _, err := gcrv1.SHA256(bytes.NewReader(junk))
		if err != nil {
			t.Fatal(err)
		}
		layerOf[m] = h.String()
	}
	manifests := slices.Sorted(maps.Keys(layerOf))
	last := manifests[2]
	newRegistry := func(b budget) *Registry {
		r, err := NewRegistry(WithKeychain(authn.NewMultiKeychain()))
		if err != nil {
			t.Fatal(err)
		}
		r.budget = b
		return r
	}
	k, err := NewKey(verifytest.NewKeySigner(t).PublicKeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	policy := &Policy{Name: "key", Fingerprint: "fp", Authorities: []Authority{{Name: "key", Key: k, IgnoreTlog: true}}}

	for name, tc := range map[string]struct {
		budget  budget
		step    Step
		url     string // the failed lookup's URL ends so
		err     string
		notRead string // the artifact left out: manifest or layer digest
	}{
		"bytes": {
			budget: budget{manifests: 10, layers: 10, bytes: 2500}, step: BlobStep, url: "/blobs/" + layerOf[last],
			err:     "blob " + layerOf[last] + " (1000 bytes) not read: over the 500 bytes left of the budget of 10 manifests, 10 signature or attestation layers and 2500 bytes per image",
			notRead: layerOf[last],
		},
		"layers": {
			budget: budget{manifests: 10, layers: 2, bytes: 1 << 20}, step: BlobStep, url: "/blobs/" + layerOf[last],
			err:     "1 signature or attestation layers not read: over the budget of 10 manifests, 2 signature or attestation layers and 1 MiB per image",
			notRead: layerOf[last],
		},
		"manifests": {
			budget: budget{manifests: 2, layers: 10, bytes: 1 << 20}, step: ManifestStep, url: "/manifests/" + last,
			err:     "manifest " + last + " and 0 more not opened: over the budget of 2 manifests",
			notRead: last,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRegistry(tc.budget)
			for range 3 {
				d := r.Discover(t.Context(), Subject{Repository: host + "/app", Digest: dig})
				failed := d.Failures()
				if len(failed) != 1 || failed[0].Step != tc.step || !strings.HasSuffix(failed[0].URL, tc.url) || !strings.Contains(failed[0].Err, tc.err) {
					t.Fatalf("failed lookups = %+v, want one %s lookup of %s saying %q", failed, tc.step, tc.url, tc.err)
				}
				for _, a := range d.Artifacts {
					cut := a.Layer == tc.notRead || a.Manifest == tc.notRead
					if a.Unfetched != cut || cut && !strings.Contains(a.Err, "budget") {
						t.Errorf("artifact %s/%s: unfetched %t (%q); want it unfetched over the budget only for %s", a.Manifest, a.Layer, a.Unfetched, a.Err, tc.notRead)
					}
				}
			}
			c, err := NewCache(time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewVerifier(r, []*Policy{policy}, WithCache(c))
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Explain(t.Context(), img, "key")
			if err != nil || res.Status != LookupFailed || !strings.Contains(res.Detail, "budget") {
				t.Fatalf("Explain() = %s (%s), %v; want LookupFailed, naming the budget", res.Status, res.Detail, err)
			}
			if got := c.Stats().Entries; got != 0 {
				t.Errorf("cache entries = %d, want 0: a result over the budget is not kept", got)
			}
		})
	}

	// Within the budget: definite, and cached.
	c, err := NewCache(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(newRegistry(defaultBudget), []*Policy{policy}, WithCache(c))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := v.Explain(t.Context(), img, "key"); err != nil || res.Status != InvalidSignature {
		t.Fatalf("Explain() = %s (%s), %v; want InvalidSignature", res.Status, res.Detail, err)
	}
	if got := c.Stats().Entries; got != 1 {
		t.Errorf("cache entries = %d, want 1", got)
	}
}

// rawManifest is a manifest to PUT as is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

// TestDiscover_layerOverSizeLimit checks that a layer declared over the
// size limit is not fetched and has a failed blob lookup naming it.
func TestDiscover_layerOverSizeLimit(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	_, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	layer := "sha256:" + strings.Repeat("b", 64)
	raw := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":%q},`+
		`"layers":[{"mediaType":%q,"size":%d,"digest":%q}]}`,
		types.OCIManifestSchema1, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
		simpleSigningMediaType, maxBlobSize+1, layer)
	tag, err := name.NewTag(host + "/app:" + fallbackTag(dig) + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawManifest(raw), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	r, err := NewRegistry(WithKeychain(authn.NewMultiKeychain()))
	if err != nil {
		t.Fatal(err)
	}

	d := r.Discover(t.Context(), Subject{Repository: host + "/app", Digest: dig})
	want := fmt.Sprintf("blob %s (%d bytes) not read: over the %d-byte limit for one layer", layer, maxBlobSize+1, maxBlobSize)
	failed := d.Failures()
	if len(failed) != 1 || failed[0].Step != BlobStep || !strings.HasSuffix(failed[0].URL, "/blobs/"+layer) || failed[0].Err != want {
		t.Errorf("failed lookups = %+v, want one for blob %s: %q", failed, layer, want)
	}
	if len(d.Artifacts) != 1 || d.Artifacts[0].Err != "fetching blob: "+want {
		t.Errorf("artifacts = %+v, want one for layer %s, over the limit", d.Artifacts, layer)
	}
}
