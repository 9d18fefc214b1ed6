package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

func TestNewRegistry_options(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		opts    []verify.RegistryOption
		wantErr string
	}{
		"defaults":            {},
		"nil option ignored":  {opts: []verify.RegistryOption{nil}},
		"all set":             {opts: []verify.RegistryOption{verify.WithKeychain(authn.DefaultKeychain), verify.WithTransport(http.DefaultTransport), verify.WithLookupTimeout(time.Second), verify.WithInsecure("registry.internal:5000", "10.1.2.3"), verify.WithUserAgent("pregate/v1")}},
		"nil keychain":        {opts: []verify.RegistryOption{verify.WithKeychain(nil)}, wantErr: "keychain must not be nil"},
		"nil transport":       {opts: []verify.RegistryOption{verify.WithTransport(nil)}, wantErr: "transport must not be nil"},
		"zero timeout":        {opts: []verify.RegistryOption{verify.WithLookupTimeout(0)}, wantErr: "lookup timeout must be positive, got 0s"},
		"negative timeout":    {opts: []verify.RegistryOption{verify.WithLookupTimeout(-time.Second)}, wantErr: "lookup timeout must be positive"},
		"no insecure names":   {opts: []verify.RegistryOption{verify.WithInsecure()}, wantErr: "at least one registry name"},
		"insecure with path":  {opts: []verify.RegistryOption{verify.WithInsecure("registry.internal/app")}, wantErr: `insecure registry "registry.internal/app": registries must be valid RFC 3986 URI authorities`},
		"insecure bad name":   {opts: []verify.RegistryOption{verify.WithInsecure("bad host")}, wantErr: `insecure registry "bad host"`},
		"empty user agent":    {opts: []verify.RegistryOption{verify.WithUserAgent(" ")}, wantErr: "user agent must be a non-empty single line"},
		"two-line user agent": {opts: []verify.RegistryOption{verify.WithUserAgent("a\r\nX-Evil: 1")}, wantErr: "user agent must be a non-empty single line"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := verify.NewRegistry(tc.opts...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("NewRegistry() = %v, want no error", err)
			case tc.wantErr == "" && r == nil:
				t.Fatal("NewRegistry() = nil, want a Registry")
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("NewRegistry() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	img, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	head, err := remote.Head(mustDigest(t, img))
	if err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t)

	for _, ref := range []string{host + "/app:v1", img} {
		got, l, err := r.Resolve(t.Context(), ref)
		if err != nil {
			t.Fatalf("Resolve(%q) = %v", ref, err)
		}
		want := verify.Subject{Ref: ref, Repository: host + "/app", Digest: dig, MediaType: string(head.MediaType), Size: head.Size}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(verify.Subject{})); diff != "" {
			t.Errorf("Resolve(%q) (-want +got):\n%s", ref, diff)
		}
		wantLookup := verify.Lookup{Step: verify.ResolveStep, URL: "http://" + host + "/v2/app/manifests/" + strings.TrimPrefix(strings.TrimPrefix(ref, host+"/app"), ":"), Status: 200, Found: 1, Attempts: 1}
		wantLookup.URL = strings.Replace(wantLookup.URL, "manifests/@", "manifests/", 1)
		if diff := cmp.Diff(wantLookup, l, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Duration" }, cmp.Ignore())); diff != "" {
			t.Errorf("Resolve(%q) lookup (-want +got):\n%s", ref, diff)
		}
	}
}

func TestResolve_notFound(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	verifytest.PushRandomImage(t, host+"/app:v1")
	r := newRegistry(t)

	for _, ref := range []string{host + "/app:missing", host + "/app@sha256:" + strings.Repeat("0", 64), host + "/other:v1"} {
		_, l, err := r.Resolve(t.Context(), ref)
		if !errors.Is(err, verify.ErrNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrNotFound", ref, err)
			continue
		}
		if want := "resolving " + ref + ": manifest not found (HTTP 404)"; err.Error() != want {
			t.Errorf("Resolve(%q) = %q, want %q", ref, err, want)
		}
		if l.Status != 404 || l.Found != 0 {
			t.Errorf("Resolve(%q) lookup = %+v, want a 404 with nothing found", ref, l)
		}
	}
}

func TestResolve_unreachable(t *testing.T) {
	t.Parallel()
	hole := verifytest.BlackHole(t)
	r := newRegistry(t, verify.WithLookupTimeout(testTimeout))
	ref := hole + "/app:v1"

	start := time.Now()
	_, l, err := r.Resolve(t.Context(), ref)
	elapsed := time.Since(start)

	want := "resolving " + ref + ": contacting registry " + hole + ": no answer within 300ms"
	if err == nil || err.Error() != want {
		t.Errorf("Resolve(%q) = %v, want %q", ref, err, want)
	}
	if !l.Failed() || l.Status != 0 {
		t.Errorf("Resolve(%q) lookup = %+v, want a failure with no status", ref, l)
	}
	if elapsed > 5*testTimeout {
		t.Errorf("Resolve(%q) took %s, want less than %s", ref, elapsed, 5*testTimeout)
	}
}

func TestResolve_cancelled(t *testing.T) {
	t.Parallel()
	hole := verifytest.BlackHole(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := newRegistry(t).Resolve(ctx, hole+"/app:v1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve() with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestResolve_errors(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	verifytest.PushRandomImage(t, host+"/app:v1")
	front := verifytest.NewFront(t, host)
	front.On(`/manifests/broken$`, verifytest.Status(http.StatusBadGateway))
	r := newRegistry(t)

	tests := map[string]struct {
		ref     string
		wantErr string
	}{
		"invalid reference": {ref: "Not A Ref", wantErr: `resolving "Not A Ref": `},
		"5xx":               {ref: front.Host() + "/app:broken", wantErr: "resolving " + front.Host() + "/app:broken: HTTP 502 Bad Gateway (UNKNOWN: Bad Gateway)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, l, err := r.Resolve(t.Context(), tc.ref)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("Resolve(%q) = %v, want an error starting %q", tc.ref, err, tc.wantErr)
			}
			if !l.Failed() {
				t.Errorf("Resolve(%q) lookup = %+v, want it failed", tc.ref, l)
			}
		})
	}
}

// TestResolve_getWhenHeadFails: some registries refuse HEAD on manifests.
func TestResolve_getWhenHeadFails(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	_, dig := verifytest.PushRandomImage(t, host+"/app:v1")
	front := verifytest.NewFront(t, host)
	front.On(`/manifests/v1$`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})

	got, l, err := newRegistry(t).Resolve(t.Context(), front.Host()+"/app:v1")
	if err != nil {
		t.Fatalf("Resolve() = %v", err)
	}
	if got.Digest != dig || l.Status != 200 || l.Found != 1 {
		t.Errorf("Resolve() = %+v, %+v, want digest %s from a GET", got, l, dig)
	}
	if n := front.Count("/v2/app/manifests/v1"); n != 2 {
		t.Errorf("manifest requests = %d, want a HEAD and a GET", n)
	}
}

// TestWithInsecure reaches a registry by a name that is not local over plain
// HTTP, which only WithInsecure allows; WithTransport points the name at the
// loopback registry.
func TestWithInsecure(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	verifytest.PushRandomImage(t, host+"/app:v1")
	var (
		mu  sync.Mutex
		uas []string
	)
	front := verifytest.NewFront(t, host)
	front.On(`^/v2/app/`, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		uas = append(uas, r.UserAgent())
		mu.Unlock()
		next.ServeHTTP(w, r)
	})
	dialer := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, front.Host())
	}}
	const ref = "registry.internal:5000/app:v1"

	secure := newRegistry(t, verify.WithTransport(tr))
	if _, _, err := secure.Resolve(t.Context(), ref); err == nil {
		t.Errorf("Resolve(%q) without WithInsecure succeeded over plain HTTP", ref)
	}
	insecure := newRegistry(t, verify.WithTransport(tr), verify.WithInsecure("registry.internal:5000"), verify.WithUserAgent("pregate-test/1.0"))
	got, l, err := insecure.Resolve(t.Context(), ref)
	if err != nil {
		t.Fatalf("Resolve(%q) with WithInsecure = %v", ref, err)
	}
	if got.Repository != "registry.internal:5000/app" || !strings.HasPrefix(l.URL, "http://registry.internal:5000/") {
		t.Errorf("Resolve(%q) = %+v, %+v, want it read over http from registry.internal:5000", ref, got, l)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(uas) == 0 || !strings.HasPrefix(uas[len(uas)-1], "pregate-test/1.0 go-containerregistry") {
		t.Errorf("User-Agent = %q, want pregate-test/1.0 then go-containerregistry", uas)
	}
}

// TestRegistry_sharesHandshake checks that concurrent lookups of different
// references in one repository make one authentication handshake (one
// ping of /v2/), and that the cancellation of the caller whose handshake
// it is does not fail the others: they make their own.
func TestRegistry_sharesHandshake(t *testing.T) {
	t.Parallel()
	host := verifytest.NewRegistry(t)
	const n = 4
	for i := range n {
		verifytest.PushRandomImage(t, fmt.Sprintf("%s/app:v%d", host, i))
	}
	// waitingFor says how many callers of r's session wait for a
	// handshake in flight (the one whose handshake it is included).
	waitingFor := func(r *verify.Registry) int {
		return countStacks(func(g string) bool {
			return strings.Contains(g, "verify.awaitFlight(") && calls(g, "verify.(*Registry).session", r)
		})
	}

	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		front := verifytest.NewFront(t, host)
		release := make(chan struct{})
		front.On(`^/v2/$`, verifytest.Block(release))
		r := newRegistry(t)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, _, errs[i] = r.Resolve(t.Context(), fmt.Sprintf("%s/app:v%d", front.Host(), i)) })
		}
		waitUntil(t, fmt.Sprintf("%d resolves wait for one handshake", n), func() bool {
			return waitingFor(r) >= n || front.Count("/v2/") > 1
		})
		close(release)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Resolve(app:v%d) = %v", i, err)
			}
		}
		if got := front.Count("/v2/"); got != 1 {
			t.Errorf("%d concurrent resolves in one repository pinged the registry %d times, want once", n, got)
		}
	})

	t.Run("first caller cancelled", func(t *testing.T) {
		t.Parallel()
		front := verifytest.NewFront(t, host)
		r := newRegistry(t)
		resolve := func(tag string) func(context.Context) (verify.Subject, error) {
			return func(ctx context.Context) (verify.Subject, error) {
				s, _, err := r.Resolve(ctx, front.Host()+"/app:"+tag)
				return s, err
			}
		}
		got, err := cancelFirstCaller(t, front, `^/v2/$`, resolve("v0"), resolve("v1"), func() {
			waitUntil(t, "2 resolves wait for one handshake", func() bool { return waitingFor(r) >= 2 })
		})
		if err != nil || got.Digest == "" {
			t.Errorf("Resolve() of the live caller = %+v, %v; want the image: the other caller's cancellation is not its failure", got, err)
		}
		if n := front.Count("/v2/"); n != 2 {
			t.Errorf("the registry was pinged %d times, want 2 (the cancelled handshake, then the live caller's own)", n)
		}
	})
}
