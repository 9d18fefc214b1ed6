package verifytest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pregate/pregate/verify/verifytest"
)

// newClient returns a client on a transport of its own, one connection per
// request, closed when the test ends.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// do sends a request with method to rawURL with client and returns the
// answer and the error of reading its body, which it closes.
func do(t *testing.T, client *http.Client, method, rawURL string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// mustDo is do failing the test on a body read error.
func mustDo(t *testing.T, client *http.Client, method, rawURL string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := do(t, client, method, rawURL)
	if err != nil {
		t.Fatalf("reading %s %s: %v", method, rawURL, err)
	}
	return resp, b
}

func sha(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// imageFront pushes a random image to a new registry as app:v1 and returns
// a Front for it, the image's digest and its manifest as the registry
// serves it.
func imageFront(t *testing.T) (front *verifytest.Front, digest string, raw []byte) {
	t.Helper()
	host := verifytest.NewRegistry(t)
	_, digest = verifytest.PushRandomImage(t, host+"/app:v1")
	_, raw = mustDo(t, newClient(t), http.MethodGet, "http://"+host+"/v2/app/manifests/v1")
	if sha(raw) != digest {
		t.Fatalf("the registry serves %s for %s", sha(raw), digest)
	}
	return verifytest.NewFront(t, host), digest, raw
}

func TestSlowBody(t *testing.T) {
	t.Parallel()
	front, _, raw := imageFront(t)
	const perChunk, chunk = 2 * time.Millisecond, 64
	front.On(`/manifests/v1$`, verifytest.SlowBody(perChunk, chunk))
	u := "http://" + front.Host() + "/v2/app/manifests/v1"

	start := time.Now()
	resp, b := mustDo(t, newClient(t), http.MethodGet, u)
	if !bytes.Equal(b, raw) || resp.ContentLength != int64(len(raw)) {
		t.Errorf("slow body = %d bytes (Content-Length %d), want the manifest's %d", len(b), resp.ContentLength, len(raw))
	}
	if least := time.Duration((len(raw)+chunk-1)/chunk) * perChunk; time.Since(start) < least {
		t.Errorf("slow body took %v, want at least %v", time.Since(start), least)
	}

	// A client with a deadline gets its headers, then times out reading.
	front.Clear()
	front.On(`/manifests/v1$`, verifytest.SlowBody(50*time.Millisecond, 1))
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = newClient(t).Do(req)
	if err != nil {
		t.Fatalf("headers should come at once: %v", err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); !errors.Is(err, context.DeadlineExceeded) || len(b) >= len(raw) {
		t.Errorf("reading past the deadline: %d bytes, %v; want part of the body and a deadline exceeded", len(b), err)
	}
}

func TestSlowBody_stopsWhenTheClientGoes(t *testing.T) {
	t.Parallel()
	body := []byte(strings.Repeat("x", 100))
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) })
	slow := verifytest.SlowBody(time.Hour, 1)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		slow(w, r, next)
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length = %d, want %d", resp.ContentLength, len(body))
	}
	cancel()
	resp.Body.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SlowBody still answering after the client went away")
	}
}

func TestTruncatedBody(t *testing.T) {
	t.Parallel()
	front, digest, raw := imageFront(t)
	front.On(`/manifests/`, verifytest.TruncatedBody())
	resp, b, err := do(t, newClient(t), http.MethodGet, "http://"+front.Host()+"/v2/app/manifests/"+digest)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the body: %v, want io.ErrUnexpectedEOF", err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(raw)) || resp.Header.Get("Docker-Content-Digest") != digest {
		t.Errorf("headers: HTTP %d, Content-Length %d, digest %s; want the registry's 200, %d, %s",
			resp.StatusCode, resp.ContentLength, resp.Header.Get("Docker-Content-Digest"), len(raw), digest)
	}
	if !bytes.Equal(b, raw[:len(raw)/2]) {
		t.Errorf("got %d bytes, want the first half (%d) of the manifest", len(b), len(raw)/2)
	}
}

func TestResetMidBody(t *testing.T) {
	t.Parallel()
	front, digest, _ := imageFront(t)
	front.On(`/manifests/`, verifytest.ResetMidBody())
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+front.Host()+"/v2/app/manifests/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := newClient(t).Do(req)
	if err == nil {
		defer resp.Body.Close()
		var b []byte
		b, err = io.ReadAll(resp.Body)
		t.Logf("headers: HTTP %d, Content-Length %d; read %d bytes of body", resp.StatusCode, resp.ContentLength, len(b))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("error = %v, want a connection reset by peer", err)
	}
}

func TestHugeManifest(t *testing.T) {
	t.Parallel()
	front, _, _ := imageFront(t)
	const size = 256 << 10
	front.On(`/manifests/sized$`, verifytest.HugeManifest(size))
	front.On(`/manifests/unsized$`, verifytest.HugeManifestUnsized(size))
	front.On(`/manifests/endless$`, verifytest.HugeManifest(1<<40))
	front.On(`/manifests/tiny$`, verifytest.HugeManifest(10))
	base := "http://" + front.Host() + "/v2/app/manifests/"
	client := newClient(t)

	for _, tc := range []struct {
		tag           string
		contentLength int64
	}{{"sized", size}, {"unsized", -1}} {
		resp, b := mustDo(t, client, http.MethodGet, base+tc.tag)
		if resp.ContentLength != tc.contentLength || len(b) != size {
			t.Errorf("%s: Content-Length %d and %d bytes, want %d and %d", tc.tag, resp.ContentLength, len(b), tc.contentLength, size)
		}
		var mf gcrv1.Manifest
		if err := json.Unmarshal(b, &mf); err != nil || mf.SchemaVersion != 2 || len(mf.Annotations["pad"]) < size-verifytest.HugeManifestMinSize {
			t.Errorf("%s: not a padded manifest: %v", tc.tag, err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.oci.image.manifest.v1+json" {
			t.Errorf("%s: Content-Type %q", tc.tag, ct)
		}
	}
	if resp, b := mustDo(t, client, http.MethodHead, base+"sized"); resp.ContentLength != size || len(b) != 0 {
		t.Errorf("HEAD: Content-Length %d, %d bytes; want %d and none", resp.ContentLength, len(b), size)
	}
	if _, b := mustDo(t, client, http.MethodGet, base+"tiny"); len(b) != 10 {
		t.Errorf("tiny: %d bytes, want 10", len(b))
	}

	// A client that stops reading makes the server stop (else the test's
	// cleanup would wait for it forever).
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"endless", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	resp.Body.Close()
	if err != nil || n != 256<<10 || resp.ContentLength != 1<<40 {
		t.Errorf("endless: read %d bytes (%v) of Content-Length %d", n, err, resp.ContentLength)
	}
}

func TestHugeIndex(t *testing.T) {
	t.Parallel()
	front, _, _ := imageFront(t)
	const entries = 2000
	front.On(`/referrers/`, verifytest.HugeIndex(entries))
	front.On(`/manifests/none$`, verifytest.HugeIndex(0))
	client := newClient(t)
	resp, b := mustDo(t, client, http.MethodGet, "http://"+front.Host()+"/v2/app/referrers/sha256:"+strings.Repeat("a", 64))
	if resp.ContentLength != int64(len(b)) || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("Content-Length %d for %d bytes, Content-Type %q", resp.ContentLength, len(b), resp.Header.Get("Content-Type"))
	}
	var idx gcrv1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("decoding the index: %v", err)
	}
	seen := map[gcrv1.Hash]bool{}
	for _, d := range idx.Manifests {
		if !digestRE.MatchString(d.Digest.String()) || d.MediaType != "application/vnd.oci.image.manifest.v1+json" ||
			d.ArtifactType != verifytest.BundleMediaType || d.Size <= 0 || d.Size > 4096 {
			t.Fatalf("entry %+v", d)
		}
		seen[d.Digest] = true
	}
	if len(idx.Manifests) != entries || len(seen) != entries || idx.SchemaVersion != 2 {
		t.Errorf("%d entries, %d distinct digests, want %d", len(idx.Manifests), len(seen), entries)
	}
	resp, b = mustDo(t, client, http.MethodGet, "http://"+front.Host()+"/v2/app/manifests/none")
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 0 || resp.ContentLength != int64(len(b)) {
		t.Errorf("empty index %s: %v", b, err)
	}
}

func TestAmplification(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	subjectRef, subject := verifytest.PushRandomImage(t, host+"/app:v1")
	const manifests, layers = 6, 7
	amp := verifytest.NewAmplification(t, subjectRef, manifests, layers)
	front := verifytest.NewFront(t, host)
	front.On(`^/v2/`, amp.Behaviour())
	client := newClient(t)
	base := "http://" + front.Host() + "/v2/app/"

	if want := strings.Replace(subject, ":", "-", 1); amp.FallbackTag() != want {
		t.Errorf("FallbackTag() = %q, want %q", amp.FallbackTag(), want)
	}
	_, viaAPI := mustDo(t, client, http.MethodGet, base+"referrers/"+subject)
	resp, b := mustDo(t, client, http.MethodGet, base+"manifests/"+amp.FallbackTag())
	if !bytes.Equal(b, viaAPI) || !bytes.Equal(b, amp.Index()) || resp.Header.Get("Docker-Content-Digest") != sha(b) {
		t.Fatal("the referrers API, the fallback tag and Index() disagree")
	}
	var idx gcrv1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != manifests {
		t.Fatalf("index lists %d manifests, want %d", len(idx.Manifests), manifests)
	}
	// Follow it naively, checking every digest.
	for i, d := range idx.Manifests {
		if d.Digest.String() != amp.Referrers()[i] || d.ArtifactType != verifytest.BundleMediaType {
			t.Errorf("entry %d = %+v", i, d)
		}
		_, raw := mustDo(t, client, http.MethodGet, base+"manifests/"+d.Digest.String())
		if sha(raw) != d.Digest.String() || int64(len(raw)) != d.Size {
			t.Fatalf("manifest %s: digest %s, size %d", d.Digest, sha(raw), len(raw))
		}
		var mf gcrv1.Manifest
		if err := json.Unmarshal(raw, &mf); err != nil {
			t.Fatal(err)
		}
		if mf.Subject == nil || mf.Subject.Digest.String() != subject || len(mf.Layers) != layers || mf.ArtifactType != verifytest.BundleMediaType {
			t.Fatalf("manifest %s: subject %v, %d layers, artifactType %q", d.Digest, mf.Subject, len(mf.Layers), mf.ArtifactType)
		}
		for _, l := range mf.Layers {
			_, blob := mustDo(t, client, http.MethodGet, base+"blobs/"+l.Digest.String())
			if sha(blob) != l.Digest.String() || len(blob) != 1 || l.Size != 1 || l.MediaType != verifytest.BundleMediaType {
				t.Fatalf("layer %+v: got %d bytes hashing to %s", l, len(blob), sha(blob))
			}
		}
	}
	if got := front.CountMatching(`^/v2/app/blobs/`); got != manifests*layers {
		t.Errorf("%d blob GETs, want manifests×layers = %d", got, manifests*layers)
	}

	// ggcr finds the referrers and verifies each manifest's digest; the
	// subject itself passes through to the registry.
	sub, err := name.NewDigest(front.Ref(subjectRef))
	if err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(sub, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	refsIdx, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(refsIdx.Manifests) != manifests {
		t.Errorf("remote.Referrers: %d manifests, want %d", len(refsIdx.Manifests), manifests)
	}
	if _, err := remote.Get(sub.Context().Digest(amp.Referrers()[manifests-1]), remote.WithContext(t.Context())); err != nil {
		t.Error(err)
	}
	if _, err := remote.Get(sub, remote.WithContext(t.Context())); err != nil {
		t.Errorf("the subject: %v", err)
	}
}

func TestRedirectLoop(t *testing.T) {
	t.Parallel()
	front, _, _ := imageFront(t)
	front.On(`/referrers/`, verifytest.RedirectLoop())
	const path = "/v2/app/referrers/sha256:x"
	u := "http://" + front.Host() + path

	noFollow := newClient(t)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct{ from, to string }{{u, path + "?loop=1"}, {u + "?loop=4&x=y", path + "?loop=5&x=y"}} {
		resp, _ := mustDo(t, noFollow, http.MethodGet, tc.from)
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != tc.to {
			t.Errorf("%s: %d to %q, want 307 to %q", tc.from, resp.StatusCode, resp.Header.Get("Location"), tc.to)
		}
	}

	before := front.Count(path)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := newClient(t).Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Errorf("following: %v, want stopped after 10 redirects", err)
	}
	if got := front.Count(path) - before; got != 10 {
		t.Errorf("%d requests, want 10", got)
	}
}

func TestRedirectTo(t *testing.T) {
	t.Parallel()
	front, _, _ := imageFront(t)
	other := verifytest.NewRegistry(t)
	_, otherDigest := verifytest.PushRandomImage(t, other+"/app:v2")
	front.On(`/manifests/v2$`, verifytest.RedirectTo(other, http.StatusTemporaryRedirect))
	front.On(`/referrers/`, verifytest.RedirectTo("https://"+other+"/", http.StatusSeeOther))
	u := "http://" + front.Host() + "/v2/app/manifests/v2"

	noFollow := newClient(t)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		from, to string
		code     int
	}{
		{u + "?a=b", "http://" + other + "/v2/app/manifests/v2?a=b", http.StatusTemporaryRedirect},
		{"http://" + front.Host() + "/v2/app/referrers/sha256:x", "https://" + other + "/v2/app/referrers/sha256:x", http.StatusSeeOther},
	} {
		resp, _ := mustDo(t, noFollow, http.MethodGet, tc.from)
		if resp.StatusCode != tc.code || resp.Header.Get("Location") != tc.to {
			t.Errorf("%s: %d to %q, want %d to %q", tc.from, resp.StatusCode, resp.Header.Get("Location"), tc.code, tc.to)
		}
	}
	// Followed, it reaches the other registry, which has app:v2.
	if resp, b := mustDo(t, newClient(t), http.MethodGet, u); resp.StatusCode != http.StatusOK || sha(b) != otherDigest {
		t.Errorf("followed: HTTP %d, digest %s, want 200 and %s", resp.StatusCode, sha(b), otherDigest)
	}
}

func TestWrongContentType(t *testing.T) {
	t.Parallel()
	front, digest, raw := imageFront(t)
	front.On(`/manifests/`, verifytest.WrongContentType("text/html"))
	client := newClient(t)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, b := mustDo(t, client, method, "http://"+front.Host()+"/v2/app/manifests/v1")
		if resp.Header.Get("Content-Type") != "text/html" || resp.Header.Get("Docker-Content-Digest") != digest || resp.ContentLength != int64(len(raw)) {
			t.Errorf("%s: Content-Type %q, digest %q, Content-Length %d", method, resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"), resp.ContentLength)
		}
		if method == http.MethodGet && !bytes.Equal(b, raw) {
			t.Error("GET: the body changed")
		}
	}
}

func TestCorruptBody(t *testing.T) {
	t.Parallel()
	front, digest, raw := imageFront(t)
	front.On(`/(manifests|blobs)/`, verifytest.CorruptBody())
	client := newClient(t)
	base := "http://" + front.Host() + "/v2/app/"

	resp, b := mustDo(t, client, http.MethodGet, base+"manifests/"+digest)
	if len(b) != len(raw) || bytes.Equal(b, raw) || sha(b) == digest || !json.Valid(b) {
		t.Errorf("corrupt manifest: %d bytes (want %d), hashes to %s (want other than %s), valid JSON %v", len(b), len(raw), sha(b), digest, json.Valid(b))
	}
	if resp.Header.Get("Docker-Content-Digest") != digest {
		t.Errorf("Docker-Content-Digest = %q, want unchanged %q", resp.Header.Get("Docker-Content-Digest"), digest)
	}
	ref, err := name.NewDigest(front.Host() + "/app@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref, remote.WithContext(t.Context())); err == nil || !strings.Contains(err.Error(), "does not match requested digest") {
		t.Errorf("ggcr reading the corrupt manifest: %v, want a digest mismatch", err)
	}

	var mf gcrv1.Manifest
	if err := json.Unmarshal(raw, &mf); err != nil {
		t.Fatal(err)
	}
	layer := mf.Layers[0].Digest.String()
	_, b = mustDo(t, client, http.MethodGet, base+"blobs/"+layer)
	if int64(len(b)) != mf.Layers[0].Size || sha(b) == layer {
		t.Errorf("corrupt blob: %d bytes hashing to %s, want %d bytes not hashing to %s", len(b), sha(b), mf.Layers[0].Size, layer)
	}
}

func TestWrongDigestHeader(t *testing.T) {
	t.Parallel()
	front, digest, raw := imageFront(t)
	front.On(`/manifests/`, verifytest.WrongDigestHeader())
	client := newClient(t)
	u := "http://" + front.Host() + "/v2/app/manifests/v1"
	head, _ := mustDo(t, client, http.MethodHead, u)
	get, b := mustDo(t, client, http.MethodGet, u)
	for _, resp := range []*http.Response{head, get} {
		if d := resp.Header.Get("Docker-Content-Digest"); d == digest || !digestRE.MatchString(d) {
			t.Errorf("%s: Docker-Content-Digest %q, want a valid digest other than %s", resp.Request.Method, d, digest)
		}
	}
	if !bytes.Equal(b, raw) {
		t.Error("GET: the body changed")
	}
	if head.ContentLength != int64(len(raw)) {
		t.Errorf("HEAD: Content-Length %d, want %d", head.ContentLength, len(raw))
	}
}

func TestGzipBomb(t *testing.T) {
	t.Parallel()
	front, _, _ := imageFront(t)
	const size = 1 << 20
	front.On(`/manifests/`, verifytest.GzipBomb(size))
	u := "http://" + front.Host() + "/v2/app/manifests/v1"

	// A client that lets Go's transport ask for gzip gets it inflated.
	resp, b := mustDo(t, newClient(t), http.MethodGet, u)
	if len(b) != size || !resp.Uncompressed || resp.ContentLength != -1 || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("transparently inflated: %d bytes (want %d), Uncompressed %v, Content-Length %d, Content-Encoding %q",
			len(b), size, resp.Uncompressed, resp.ContentLength, resp.Header.Get("Content-Encoding"))
	}
	if !bytes.Equal(b, make([]byte, size)) {
		t.Error("the inflated body is not all zeros")
	}

	// A client that does not sees the small gzip body.
	raw := newClient(t)
	raw.Transport.(*http.Transport).DisableCompression = true
	resp, b = mustDo(t, raw, http.MethodGet, u)
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength != int64(len(b)) || len(b) > size/500 {
		t.Errorf("raw: Content-Encoding %q, Content-Length %d, %d bytes", resp.Header.Get("Content-Encoding"), resp.ContentLength, len(b))
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, zr); err != nil || n != size {
		t.Errorf("inflating: %d bytes, %v; want %d", n, err, size)
	}
}

func TestSplitView(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	_, realDigest := verifytest.PushRandomImage(t, host+"/app:v1")
	_, decoy := verifytest.PushRandomImage(t, host+"/app:decoy")
	_, decoyRaw := mustDo(t, newClient(t), http.MethodGet, "http://"+host+"/v2/app/manifests/"+decoy)
	front := verifytest.NewFront(t, host)
	front.On(`/manifests/v1$`, verifytest.SplitView(decoy))
	front.On(`/manifests/v2$`, verifytest.SplitView("sha256:"+strings.Repeat("0", 64)))
	client := newClient(t)
	u := "http://" + front.Host() + "/v2/app/manifests/v1"

	head, _ := mustDo(t, client, http.MethodHead, u)
	if head.Header.Get("Docker-Content-Digest") != decoy || head.ContentLength != int64(len(decoyRaw)) {
		t.Errorf("HEAD: digest %s, Content-Length %d; want the decoy's %s, %d", head.Header.Get("Docker-Content-Digest"), head.ContentLength, decoy, len(decoyRaw))
	}
	get, b := mustDo(t, client, http.MethodGet, u)
	if sha(b) != realDigest || get.Header.Get("Docker-Content-Digest") != realDigest {
		t.Errorf("GET: body %s, header %s; want %s", sha(b), get.Header.Get("Docker-Content-Digest"), realDigest)
	}

	// ggcr resolves the tag to the decoy by HEAD, and gets the real image.
	tag, err := name.NewTag(front.Host() + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(tag, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Get(tag, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest.String() != decoy || got.Digest.String() != realDigest {
		t.Errorf("ggcr: HEAD %s, GET %s; want %s and %s", d.Digest, got.Digest, decoy, realDigest)
	}

	// A digest the registry does not have: the tag's headers, with it.
	if err := remote.Put(tag.Context().Tag("v2"), got, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	head, _ = mustDo(t, client, http.MethodHead, "http://"+front.Host()+"/v2/app/manifests/v2")
	if want := "sha256:" + strings.Repeat("0", 64); head.StatusCode != http.StatusOK || head.Header.Get("Docker-Content-Digest") != want {
		t.Errorf("HEAD v2: HTTP %d digest %s, want 200 and %s", head.StatusCode, head.Header.Get("Docker-Content-Digest"), want)
	}
}

func TestNewTLSRegistry(t *testing.T) {
	t.Parallel()
	host, pool := verifytest.NewTLSRegistry(t)
	tr := verifytest.TransportTrusting(pool)
	t.Cleanup(tr.CloseIdleConnections)

	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(host + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context()), remote.WithTransport(tr)); err != nil {
		t.Fatalf("pushing over TLS: %v", err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	resp, b := mustDo(t, &http.Client{Transport: tr}, http.MethodGet, "https://"+host+"/v2/app/manifests/v1")
	if resp.StatusCode != http.StatusOK || sha(b) != want.String() || resp.TLS == nil {
		t.Errorf("trusting client: HTTP %d, digest %s, TLS %v; want 200 and %s over TLS", resp.StatusCode, sha(b), resp.TLS != nil, want)
	}

	// A client with the system's roots does not trust it.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+host+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	var uae x509.UnknownAuthorityError
	if _, err := newClient(t).Do(req); !errors.As(err, &uae) {
		t.Errorf("default roots: %v, want x509.UnknownAuthorityError", err)
	}
}

func TestNewBadTLSFront(t *testing.T) {
	t.Parallel()
	upstream := verifytest.NewRegistry(t)
	_, goodPool := verifytest.NewTLSRegistry(t)
	for _, tc := range []struct {
		kind  verifytest.BadTLS
		check func(error) bool
	}{
		{verifytest.UntrustedCert, func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
		{verifytest.ExpiredCert, func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}},
		{verifytest.WrongHostCert, func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			host, pool := verifytest.NewBadTLSFront(t, upstream, tc.kind)
			for name, p := range map[string]*x509.CertPool{"own pool": pool, "good registry's pool": goodPool} {
				tr := verifytest.TransportTrusting(p)
				t.Cleanup(tr.CloseIdleConnections)
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+host+"/v2/", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if !tc.check(err) {
					t.Errorf("%s: %v, want the kind's x509 error", name, err)
				}
			}
			// Skipping verification reaches the registry.
			tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the point
			t.Cleanup(tr.CloseIdleConnections)
			if resp, _ := mustDo(t, &http.Client{Transport: tr}, http.MethodGet, "https://"+host+"/v2/"); resp.StatusCode != http.StatusOK {
				t.Errorf("skipping verification: HTTP %d, want 200", resp.StatusCode)
			}
		})
	}
}
