package verifytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/pregate/pregate/verify/verifytest"
)

func get(t *testing.T, rawURL string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func manifest(t *testing.T, ref string) gcrv1.Manifest {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	var mf gcrv1.Manifest
	if err := json.Unmarshal(d.Manifest, &mf); err != nil {
		t.Fatalf("decoding %s: %v", ref, err)
	}
	return mf
}

// fallbackIndex reads subject's sha256-<hex> tag; nil when there is none.
func fallbackIndex(t *testing.T, host, digest string) *gcrv1.IndexManifest {
	t.Helper()
	tag, err := name.NewTag(host + "/app:" + strings.Replace(digest, ":", "-", 1))
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(tag, remote.WithContext(t.Context()))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("reading %s: %v", tag, err)
	}
	var idx gcrv1.IndexManifest
	if err := json.Unmarshal(d.Manifest, &idx); err != nil {
		t.Fatal(err)
	}
	return &idx
}

func TestPushReferrer_cosignLayout(t *testing.T) {
	t.Parallel()
	for _, api := range []bool{false, true} {
		host := verifytest.NewRegistry(t, verifytest.WithReferrersAPI(api))
		img, dig := verifytest.PushRandomImage(t, host+"/app")
		bundle := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)
		ref := verifytest.PushBundle(t, img, bundle, verifytest.CosignSignPredicateType)

		mf := manifest(t, host+"/app@"+ref)
		if mf.MediaType != "application/vnd.oci.image.manifest.v1+json" ||
			mf.Config.MediaType != verifytest.EmptyMediaType || mf.Config.Size != 2 || mf.Config.ArtifactType != verifytest.BundleMediaType ||
			mf.ArtifactType != verifytest.BundleMediaType || len(mf.Layers) != 1 || mf.Layers[0].MediaType != verifytest.BundleMediaType ||
			mf.Subject == nil || mf.Subject.Digest.String() != dig {
			t.Errorf("api=%t: referrer manifest = %+v, want cosign v3's layout", api, mf)
		}
		if diff := cmp.Diff(verifytest.BundleAnnotations(verifytest.CosignSignPredicateType), mf.Annotations); diff != "" {
			t.Errorf("api=%t: annotations (-want +got):\n%s", api, diff)
		}
		idx := fallbackIndex(t, host, dig)
		switch {
		case api && idx != nil:
			t.Errorf("api=true: fallback tag = %+v, want none (the registry keeps the list)", idx)
		case !api && (idx == nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest.String() != ref || idx.Manifests[0].ArtifactType != verifytest.BundleMediaType):
			t.Errorf("api=false: fallback tag = %+v, want %s with the bundle artifactType", idx, ref)
		}
		if resp, _ := get(t, "http://"+host+"/v2/app/blobs/"+mf.Layers[0].Digest.String()); resp.StatusCode != http.StatusOK {
			t.Errorf("api=%t: bundle blob: HTTP %d", api, resp.StatusCode)
		}
	}
}

func TestPushBundleEmptyArtifactType(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, dig := verifytest.PushRandomImage(t, host+"/app")
	ref := verifytest.PushBundleEmptyArtifactType(t, img, []byte(`{}`), verifytest.CosignSignPredicateType)

	idx := fallbackIndex(t, host, dig)
	if idx == nil || len(idx.Manifests) != 1 {
		t.Fatalf("fallback tag = %+v, want one entry", idx)
	}
	if e := idx.Manifests[0]; e.Digest.String() != ref || e.ArtifactType != verifytest.EmptyMediaType || e.Annotations != nil {
		t.Errorf("fallback entry = %+v, want %s typed %s without annotations", e, ref, verifytest.EmptyMediaType)
	}
	if mf := manifest(t, host+"/app@"+ref); mf.ArtifactType != verifytest.BundleMediaType {
		t.Errorf("manifest artifactType = %q, want the bundle type", mf.ArtifactType)
	}
}

func TestPushLegacy(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, dig := verifytest.PushRandomImage(t, host+"/app")
	p1 := verifytest.SimpleSigningPayload(host+"/app", dig)
	verifytest.PushLegacySignature(t, img, p1, map[string]string{"dev.cosignproject.cosign/signature": "one"})
	sig := verifytest.PushLegacySignature(t, img, []byte(`{"other":1}`), map[string]string{"dev.cosignproject.cosign/signature": "two"})
	att := verifytest.PushLegacyAttestation(t, img, []byte(`{"payloadType":"x"}`), map[string]string{"predicateType": "p"})

	tag := host + "/app:" + strings.Replace(dig, ":", "-", 1)
	mf := manifest(t, tag+".sig")
	if mf.Config.MediaType != "application/vnd.oci.image.config.v1+json" || len(mf.Layers) != 2 {
		t.Fatalf(".sig manifest = %+v, want an OCI config and two layers", mf)
	}
	for i, want := range []string{"one", "two"} {
		if l := mf.Layers[i]; l.MediaType != verifytest.SimpleSigningMediaType || l.Annotations["dev.cosignproject.cosign/signature"] != want {
			t.Errorf(".sig layer %d = %+v, want a simple-signing layer signed %q", i, l, want)
		}
	}
	if got := manifest(t, tag+".att"); len(got.Layers) != 1 || got.Layers[0].MediaType != verifytest.DSSEMediaType {
		t.Errorf(".att manifest = %+v, want one DSSE layer", got)
	}
	if d := manifest(t, host+"/app@"+sig); len(d.Layers) != 2 {
		t.Errorf("PushLegacySignature returned %s, not the .sig manifest's digest", sig)
	}
	if d := manifest(t, host+"/app@"+att); len(d.Layers) != 1 {
		t.Errorf("PushLegacyAttestation returned %s, not the .att manifest's digest", att)
	}
	var payload map[string]any
	if err := json.Unmarshal(p1, &payload); err != nil {
		t.Fatalf("SimpleSigningPayload() is not JSON: %v", err)
	}
}

func TestPushBroken(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, dig := verifytest.PushRandomImage(t, host+"/app")
	malformed := verifytest.PushMalformedReferrer(t, img)
	missing := verifytest.PushReferrerWithMissingBlob(t, img, verifytest.BundleMediaType)
	dangling := verifytest.PushDanglingFallbackEntry(t, img)

	idx := fallbackIndex(t, host, dig)
	var listed []string
	for _, m := range idx.Manifests {
		listed = append(listed, m.Digest.String())
	}
	for _, d := range []string{malformed, missing, dangling} {
		if d == "" || !slices.Contains(listed, d) {
			t.Errorf("fallback tag lists %v, want %s among them", listed, d)
		}
	}
	if resp, b := get(t, "http://"+host+"/v2/app/manifests/"+malformed); resp.StatusCode != 200 || json.Valid(b) {
		t.Errorf("malformed referrer: HTTP %d %q, want 200 with invalid JSON", resp.StatusCode, b)
	}
	mf := manifest(t, host+"/app@"+missing)
	if resp, _ := get(t, "http://"+host+"/v2/app/blobs/"+mf.Layers[0].Digest.String()); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing blob: HTTP %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, "http://"+host+"/v2/app/manifests/"+dangling); resp.StatusCode != http.StatusNotFound {
		t.Errorf("dangling referrer: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestFront(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	verifytest.PushRandomImage(t, host+"/app:v1")
	front := verifytest.NewFront(t, host)
	base := "http://" + front.Host()

	if resp, _ := get(t, base+"/v2/app/manifests/v1"); resp.StatusCode != http.StatusOK {
		t.Errorf("passed through: HTTP %d, want 200", resp.StatusCode)
	}
	front.On(`/manifests/v1$`, verifytest.Status(http.StatusServiceUnavailable))
	front.On(`/manifests/`, verifytest.Status(http.StatusTeapot)) // later rules lose
	if resp, _ := get(t, base+"/v2/app/manifests/v1"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("first matching rule: HTTP %d, want 503", resp.StatusCode)
	}
	front.Clear()
	front.On(`/manifests/`, verifytest.TooManyRequests("7"))
	if resp, _ := get(t, base+"/v2/app/manifests/v1"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("TooManyRequests: HTTP %d Retry-After %q, want 429 and 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	front.Clear()
	front.On(`/referrers/`, verifytest.EmptyReferrers())
	resp, b := get(t, base+"/v2/app/referrers/sha256:"+strings.Repeat("a", 64))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" || !strings.Contains(string(b), `"manifests":[]`) {
		t.Errorf("EmptyReferrers: HTTP %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if got := front.Count("/v2/app/manifests/v1"); got != 3 {
		t.Errorf("Count() = %d, want 3", got)
	}
	if got := front.CountMatching(`^/v2/app/`); got != 4 {
		t.Errorf("CountMatching() = %d, want 4", got)
	}
	if got, want := front.Ref(host+"/app@sha256:"+strings.Repeat("b", 64)), front.Host()+"/app@sha256:"+strings.Repeat("b", 64); got != want {
		t.Errorf("Ref() = %q, want %q", got, want)
	}
}

func TestFront_redirectToBlackHole(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	front := verifytest.NewFront(t, host)
	front.On(`/referrers/`, front.RedirectToBlackHole(http.StatusSeeOther))
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+front.Host()+"/v2/app/referrers/sha256:x", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "http://" + front.BlackHole() + "/v2/app/referrers/sha256:x"; resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Errorf("redirect = %d to %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// The black hole accepts and never answers.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, resp.Header.Get("Location"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GET from the black hole = %v, want a deadline exceeded", err)
	}
}

func TestFront_block(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	verifytest.PushRandomImage(t, host+"/app:v1")
	front := verifytest.NewFront(t, host)
	release := make(chan struct{})
	front.On(`/manifests/v1$`, verifytest.Block(release))

	const path = "/v2/app/manifests/v1"
	done := make(chan int, 1)
	go func() {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+front.Host()+path, nil)
		if err != nil {
			done <- -1
			return
		}
		resp, err := testClient.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()

	// Wait for the request to reach the Front, then for it not to be
	// answered.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for front.Count(path) == 0 {
		select {
		case code := <-done:
			t.Fatalf("blocked request answered %d before its release", code)
		case <-deadline:
			t.Fatal("the request never reached the Front")
		case <-tick.C:
		}
	}
	select {
	case code := <-done:
		t.Fatalf("blocked request answered %d before its release", code)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("released request: HTTP %d, want 200", code)
	}
	if got := front.Count(path); got != 1 {
		t.Errorf("Count() = %d, want 1", got)
	}
}

func TestFront_basicAuth(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	front := verifytest.NewFront(t, host, verifytest.WithBasicAuth("alice", "secret"))
	front.On(`/echo`, verifytest.EchoAuthorization(http.StatusInternalServerError))

	resp, _ := get(t, "http://"+front.Host()+"/v2/")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("without credentials: HTTP %d %q, want 401 with a Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+front.Host()+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", "secret")
	resp, err = testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), "Basic YWxpY2U6c2VjcmV0") {
		t.Errorf("EchoAuthorization: HTTP %d %s, want 500 repeating the header", resp.StatusCode, b)
	}
}

// testClient sends the tests' raw requests on a transport of its own:
// closing any httptest.Server closes http.DefaultTransport's idle
// connections, which can break a request of a parallel test.
var testClient = &http.Client{Transport: &http.Transport{}}
