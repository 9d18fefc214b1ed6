// Package verifytest helps test image verification without a network: an
// in-memory OCI registry on loopback, a fault-injecting front for it, helpers
// that store signatures and attestations the way cosign does, and helpers
// that store deliberately broken ones. The helpers take a testing.TB and fail
// the test; StartRegistry and Pusher are the same for programs that are not
// tests, such as the demo, and return errors.
package verifytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types, artifact types and annotations as cosign writes them
// (research/sigstore-formats.md §1, §2).
const (
	// BundleMediaType is a Sigstore bundle v0.3: cosign v3's referrer layer
	// and artifactType.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// SimpleSigningMediaType is a legacy .sig layer.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// DSSEMediaType is a legacy .att layer.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// EmptyMediaType is the OCI empty descriptor's media type: cosign v3's
	// config, and the artifactType ggcr <= v0.21.5 (cosign v3.0.x) wrote
	// into fallback tag indexes.
	EmptyMediaType = "application/vnd.oci.empty.v1+json"
	// SPDXArtifactType is an SBOM referrer's artifactType and layer type.
	SPDXArtifactType = "application/spdx+json"
	// CosignSignPredicateType is the predicate type of a cosign v3
	// signature.
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// SLSAProvenancePredicateType is an SLSA v1 provenance attestation's.
	SLSAProvenancePredicateType = "https://slsa.dev/provenance/v1"
)

// The digest of "{}", the OCI empty blob cosign uses as config.
const emptyBlobDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

// RegistryOption configures NewRegistry.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	referrers bool
}

// WithReferrersAPI turns the OCI 1.1 referrers API on or off. It is off by
// default, as in ggcr's registry: GET /v2/<repo>/referrers/<digest> answers
// 404 and writers (ggcr's remote.Put, and so cosign) maintain the
// sha256-<hex> fallback tag instead.
func WithReferrersAPI(enabled bool) RegistryOption {
	return func(c *registryConfig) { c.referrers = enabled }
}

// NewRegistry starts go-containerregistry's in-memory registry on a loopback
// httptest server, closed when the test ends, and returns its host:port.
// The registry logs nothing.
func NewRegistry(t testing.TB, opts ...RegistryOption) string {
	t.Helper()
	srv := httptest.NewServer(registryHandler(opts))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// StartRegistry is NewRegistry for programs that are not tests, such as the
// demo: it starts the registry on a loopback port and returns its host:port
// and a func that stops it (closing its connections). ctx bounds opening the
// port only.
func StartRegistry(ctx context.Context, opts ...RegistryOption) (host string, stop func(), err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           registryHandler(opts),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // http.ErrServerClosed once stopped
	}()
	stop = func() {
		_ = srv.Close()
		<-done
	}
	return ln.Addr().String(), stop, nil
}

// registryHandler is ggcr's in-memory registry, logging nothing, whose
// referrers API lists artifactType as the distribution spec says.
func registryHandler(opts []RegistryOption) http.Handler {
	var c registryConfig
	for _, o := range opts {
		o(&c)
	}
	reg := registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(c.referrers),
	)
	if !c.referrers {
		return reg
	}
	return specArtifactTypes{reg}
}

// referrersPath is a referrers API request: /v2/<repo>/referrers/<digest>.
var referrersPath = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)

// specArtifactTypes lists a referrer's artifactType as the distribution
// spec (v1.1, "Listing Referrers") and real registries do: the manifest's
// own artifactType when it has one, else its config's media type. ggcr's
// registry gives the config's media type always, which for a cosign v3
// bundle is the empty descriptor's.
type specArtifactTypes struct{ reg http.Handler }

func (s specArtifactTypes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := referrersPath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodGet || m == nil {
		s.reg.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.reg.ServeHTTP(rec, r)
	var idx gcrv1.IndexManifest
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &idx) != nil {
		copyResponse(w, rec)
		return
	}
	for i, d := range idx.Manifests {
		get := httptest.NewRequestWithContext(r.Context(), http.MethodGet, "/v2/"+m[1]+"/manifests/"+d.Digest.String(), nil)
		got := httptest.NewRecorder()
		s.reg.ServeHTTP(got, get)
		var mf struct {
			ArtifactType string `json:"artifactType"`
		}
		if got.Code == http.StatusOK && json.Unmarshal(got.Body.Bytes(), &mf) == nil && mf.ArtifactType != "" {
			idx.Manifests[i].ArtifactType = mf.ArtifactType
		}
	}
	body, err := json.Marshal(idx)
	if err != nil {
		copyResponse(w, rec)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// Behaviour answers a request the Front intercepted. next passes the request
// on to the registry behind the Front.
type Behaviour func(w http.ResponseWriter, r *http.Request, next http.Handler)

// Front is a loopback HTTP server in front of a registry that passes requests
// through, except those matching a rule, which get that rule's Behaviour. It
// counts every request by path. Rules may be changed while it serves.
type Front struct {
	t        testing.TB
	srv      *httptest.Server
	upstream string
	proxy    http.Handler
	user     string
	pass     string
	tls      bool
	closing  chan struct{}

	mu    sync.Mutex
	rules []rule
	count map[string]int

	holeOnce sync.Once
	hole     string
}

type rule struct {
	re *regexp.Regexp
	b  Behaviour
}

// FrontOption configures NewFront.
type FrontOption func(*Front)

// WithBasicAuth makes the Front demand HTTP basic authentication with user
// and pass on every request (401 with a Basic challenge otherwise), the
// registry's ping included, as a registry with basic auth does.
func WithBasicAuth(user, pass string) FrontOption {
	return func(f *Front) { f.user, f.pass = user, pass }
}

// WithTLS makes the Front serve HTTPS, as real registries do, with a
// certificate for 127.0.0.1 and ::1 that only Pool (or CertPEM) trusts;
// HTTP/2 is offered.
func WithTLS() FrontOption {
	return func(f *Front) { f.tls = true }
}

// NewFront starts a Front for the registry at upstream (host:port). Push
// through the registry itself and read through the Front: the Front's rules
// apply to writes too.
func NewFront(t testing.TB, upstream string, opts ...FrontOption) *Front {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	tr := ownTransport()
	proxy.Transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	f := &Front{
		t:        t,
		upstream: upstream,
		proxy:    proxy,
		closing:  make(chan struct{}),
		count:    map[string]int{},
	}
	for _, o := range opts {
		o(f)
	}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if f.tls {
		f.srv.EnableHTTP2 = true
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	// Cleanups run last-registered first: release blocked answers before
	// the server waits for them.
	t.Cleanup(func() { close(f.closing) })
	return f
}

// Host returns the Front's host:port.
func (f *Front) Host() string {
	return strings.TrimPrefix(strings.TrimPrefix(f.srv.URL, "http://"), "https://")
}

// Pool returns a pool that trusts the certificate of a Front made
// WithTLS, and only it (nil for a plain HTTP Front).
func (f *Front) Pool() *x509.CertPool {
	if !f.tls {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(f.srv.Certificate())
	return pool
}

// CertPEM returns the certificate of a Front made WithTLS in PEM form,
// for a program under test to trust (SSL_CERT_FILE); nil for plain HTTP.
func (f *Front) CertPEM() []byte {
	if !f.tls {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
}

// Ref returns ref ("host/repo:tag" or "host/repo@sha256:…") with its
// registry replaced by the Front.
func (f *Front) Ref(ref string) string {
	f.t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		f.t.Fatalf("parsing %q: %v", ref, err)
	}
	sep := ":"
	if _, ok := r.(name.Digest); ok {
		sep = "@"
	}
	return f.Host() + "/" + r.Context().RepositoryStr() + sep + r.Identifier()
}

// On makes requests whose URL path matches the regular expression pattern
// get b. Rules are tried in the order they were added; the first match wins.
func (f *Front) On(pattern string, b Behaviour) {
	f.t.Helper()
	re, err := regexp.Compile(pattern)
	if err != nil {
		f.t.Fatalf("compiling %q: %v", pattern, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, rule{re: re, b: b})
}

// Clear removes every rule.
func (f *Front) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// Count returns how many requests for path the Front received.
func (f *Front) Count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[path]
}

// CountMatching returns how many requests whose path matches the regular
// expression pattern the Front received.
func (f *Front) CountMatching(pattern string) int {
	f.t.Helper()
	re, err := regexp.Compile(pattern)
	if err != nil {
		f.t.Fatalf("compiling %q: %v", pattern, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for p, c := range f.count {
		if re.MatchString(p) {
			n += c
		}
	}
	return n
}

func (f *Front) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.count[r.URL.Path]++
	var b Behaviour
	for _, ru := range f.rules {
		if ru.re.MatchString(r.URL.Path) {
			b = ru.b
			break
		}
	}
	f.mu.Unlock()

	if f.user != "" {
		if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="verifytest"`)
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	if b == nil {
		f.proxy.ServeHTTP(w, r)
		return
	}
	b(w, withClosing(r, f.closing), f.proxy)
}

type closingKey struct{}

// withClosing lets Block see the Front shutting down.
func withClosing(r *http.Request, closing chan struct{}) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), closingKey{}, closing))
}

// writeError writes an OCI distribution error answer.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
}

// Status answers with status code and an OCI error body.
func Status(code int) Behaviour {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		writeError(w, code, "UNKNOWN", http.StatusText(code))
	}
}

// TooManyRequests answers 429 with a TOOMANYREQUESTS error, and a
// Retry-After header unless retryAfter is empty.
func TooManyRequests(retryAfter string) Behaviour {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "rate limit exceeded")
	}
}

// RedirectToBlackHole answers with a redirect (code 3xx) to the same path on
// the Front's black hole (see BlackHole), as GHCR's referrers API answered
// 303 to a host an egress policy blocked.
func (f *Front) RedirectToBlackHole(code int) Behaviour {
	hole := f.BlackHole()
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		u := url.URL{Scheme: "http", Host: hole, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
		w.Header().Set("Location", u.String())
		w.WriteHeader(code)
	}
}

// BlackHole returns the host:port of a loopback listener that accepts
// connections and never answers, closed (with its connections) when the test
// ends. Every call on one Front returns the same listener.
func (f *Front) BlackHole() string {
	f.holeOnce.Do(func() { f.hole = BlackHole(f.t) })
	return f.hole
}

// BlackHole starts a loopback listener that accepts connections and never
// answers, closed (with its connections) when the test ends, and returns its
// host:port.
func BlackHole(t testing.TB) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// Block holds the request until release is closed, then passes it on. If
// the client gives up (or the test ends) first, the connection is dropped
// without an answer.
func Block(release <-chan struct{}) Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		closing, _ := r.Context().Value(closingKey{}).(chan struct{})
		select {
		case <-release:
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		case <-closing:
			panic(http.ErrAbortHandler)
		}
	}
}

// Respond answers with status code, the Content-Type contentType and body.
func Respond(code int, contentType string, body []byte) Behaviour {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(code)
		_, _ = w.Write(body)
	}
}

// EmptyReferrers answers 200 with an empty OCI image index, as GHCR has
// answered the referrers API.
func EmptyReferrers() Behaviour {
	return Respond(http.StatusOK, string(types.OCIImageIndex),
		[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`))
}

// EchoAuthorization answers with status code and an OCI error whose message
// repeats the request's Authorization header: a registry that leaks
// credentials into its errors.
func EchoAuthorization(code int) Behaviour {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		writeError(w, code, "UNKNOWN", "request had Authorization: "+r.Header.Get("Authorization"))
	}
}

// Pusher stores images, signatures and attestations in a registry the way
// cosign does, and reports failures as errors: it is for programs that are
// not tests, such as the demo (e2e/demo). Each Push… function of this package
// is the Pusher method of the same name for tests: it pushes with the test's
// context and fails the test on an error. The zero Pusher is ready to use.
// It sends requests through ggcr's remote.DefaultTransport, and the raw
// manifest PUTs of the broken-referrer helpers through rawClient.
type Pusher struct{}

// ownTransport is a transport of the package's own, not
// http.DefaultTransport: every httptest.Server's Close closes the idle
// connections of http.DefaultTransport, which breaks a request of a
// parallel test that is just reusing one ("transport connection broken:
// http: CloseIdleConnections called").
func ownTransport() *http.Transport { return http.DefaultTransport.(*http.Transport).Clone() }

// rawClient sends the raw requests of Pushers.
var rawClient = &http.Client{Transport: ownTransport()}

func parseDigest(ref string) (name.Digest, error) {
	d, err := name.NewDigest(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("parsing digest reference %q: %w", ref, err)
	}
	return d, nil
}

// PushRandomImage pushes a small random image to ref ("host/repo" or
// "host/repo:tag", which is then tagged) and returns its digest reference
// ("host/repo@sha256:…") and digest.
func (p *Pusher) PushRandomImage(ctx context.Context, ref string) (digestRef, digest string, err error) {
	img, err := random.Image(256, 1)
	if err != nil {
		return "", "", fmt.Errorf("making a random image: %w", err)
	}
	h, err := img.Digest()
	if err != nil {
		return "", "", fmt.Errorf("hashing the random image: %w", err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", "", fmt.Errorf("parsing %q: %w", ref, err)
	}
	target := name.Reference(r.Context().Digest(h.String()))
	if strings.Contains(strings.TrimPrefix(ref, r.Context().RegistryStr()), ":") {
		target = r
	}
	if err := remote.Write(target, img, remote.WithContext(ctx)); err != nil {
		return "", "", fmt.Errorf("pushing %s: %w", target, err)
	}
	return r.Context().Digest(h.String()).String(), h.String(), nil
}

// PushRandomImage is Pusher.PushRandomImage for tests.
func PushRandomImage(t testing.TB, ref string) (string, string) {
	t.Helper()
	var p Pusher
	digestRef, digest, err := p.PushRandomImage(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return digestRef, digest
}

// BundleAnnotations returns the manifest annotations cosign v3 writes on a
// bundle referrer with predicateType (the creation time fixed, so digests
// are reproducible).
func BundleAnnotations(predicateType string) map[string]string {
	return map[string]string{
		"dev.sigstore.bundle.content":       "dsse-envelope",
		"dev.sigstore.bundle.predicateType": predicateType,
		"org.opencontainers.image.created":  "2026-11-22T12:56:40Z",
	}
}

// PushBundle stores bundle as a cosign v3 signature or attestation of
// subjectRef: PushReferrer with the bundle artifact and layer type and
// BundleAnnotations(predicateType). It returns the referrer's digest.
func (p *Pusher) PushBundle(ctx context.Context, subjectRef string, bundle []byte, predicateType string) (string, error) {
	return p.PushReferrer(ctx, subjectRef, BundleMediaType, BundleMediaType, bundle, BundleAnnotations(predicateType))
}

// PushBundle is Pusher.PushBundle for tests.
func PushBundle(t testing.TB, subjectRef string, bundle []byte, predicateType string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushBundle(t.Context(), subjectRef, bundle, predicateType)
	return must(t, d, err)
}

// rawManifest is a remote.Taggable for manifest bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// referrerManifest builds the manifest cosign v3's WriteReferrer writes: an
// empty config carrying artifactType, one layer, the subject, annotations
// and a top-level artifactType.
func (p *Pusher) referrerManifest(ctx context.Context, sub name.Digest, artifactType string, layer gcrv1.Descriptor, annotations map[string]string) ([]byte, error) {
	subject, err := remote.Head(sub, remote.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading subject %s: %w", sub, err)
	}
	emptyDigest, err := gcrv1.NewHash(emptyBlobDigest)
	if err != nil {
		return nil, err
	}
	mf := gcrv1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config: gcrv1.Descriptor{
			MediaType: EmptyMediaType, Size: 2, Digest: emptyDigest, ArtifactType: artifactType,
		},
		Layers:       []gcrv1.Descriptor{layer},
		Annotations:  annotations,
		Subject:      &gcrv1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest},
		ArtifactType: artifactType,
	}
	raw, err := json.Marshal(mf)
	if err != nil {
		return nil, fmt.Errorf("encoding the referrer manifest: %w", err)
	}
	return raw, nil
}

// uploadBlob uploads b to repo and returns its descriptor with media type mt.
func (p *Pusher) uploadBlob(ctx context.Context, repo name.Repository, b []byte, mt string) (gcrv1.Descriptor, error) {
	l := static.NewLayer(b, types.MediaType(mt))
	if err := remote.WriteLayer(repo, l, remote.WithContext(ctx)); err != nil {
		return gcrv1.Descriptor{}, fmt.Errorf("uploading a blob to %s: %w", repo, err)
	}
	return descriptorOf(b, mt)
}

func descriptorOf(b []byte, mt string) (gcrv1.Descriptor, error) {
	h, size, err := gcrv1.SHA256(bytes.NewReader(b))
	if err != nil {
		return gcrv1.Descriptor{}, err
	}
	return gcrv1.Descriptor{MediaType: types.MediaType(mt), Size: size, Digest: h}, nil
}

// uploadReferrerBlobs uploads the "{}" config blob cosign v3 referrers use,
// and content as their layer of media type layerMediaType. It returns the
// layer's descriptor.
func (p *Pusher) uploadReferrerBlobs(ctx context.Context, repo name.Repository, content []byte, layerMediaType string) (gcrv1.Descriptor, error) {
	if _, err := p.uploadBlob(ctx, repo, []byte("{}"), string(types.OCIConfigJSON)); err != nil {
		return gcrv1.Descriptor{}, err
	}
	return p.uploadBlob(ctx, repo, content, layerMediaType)
}

// PushReferrer stores content as a referrer of subjectRef (a digest
// reference) exactly as cosign v3 does (research/sigstore-formats.md §1.2):
// the "{}" config blob with media type application/vnd.oci.empty.v1+json,
// one layer of layerMediaType, artifactType on the config and at the top
// level, annotations, and subject; PUT by digest with ggcr's remote.Put, which
// also appends it to the sha256-<hex> fallback tag index when the registry
// has no referrers API. It returns the referrer manifest's digest.
func (p *Pusher) PushReferrer(ctx context.Context, subjectRef, artifactType, layerMediaType string, content []byte, annotations map[string]string) (string, error) {
	sub, raw, err := p.prepareReferrer(ctx, subjectRef, artifactType, layerMediaType, content, annotations)
	if err != nil {
		return "", err
	}
	return p.putReferrer(ctx, sub, raw)
}

// prepareReferrer uploads the blobs of a cosign v3 style referrer of
// subjectRef (see uploadReferrerBlobs) and returns the parsed subject and
// the referrer manifest (see referrerManifest), not yet stored.
func (p *Pusher) prepareReferrer(ctx context.Context, subjectRef, artifactType, layerMediaType string, content []byte, annotations map[string]string) (name.Digest, []byte, error) {
	sub, err := parseDigest(subjectRef)
	if err != nil {
		return name.Digest{}, nil, err
	}
	layer, err := p.uploadReferrerBlobs(ctx, sub.Context(), content, layerMediaType)
	if err != nil {
		return name.Digest{}, nil, err
	}
	raw, err := p.referrerManifest(ctx, sub, artifactType, layer, annotations)
	if err != nil {
		return name.Digest{}, nil, err
	}
	return sub, raw, nil
}

// putListed PUTs the manifest raw by digest into sub's repository with
// putRaw, bypassing ggcr's writer (which would write today's fallback tag
// entry itself), and lists it with artifactType in sub's fallback tag
// index. It returns the manifest's digest.
func (p *Pusher) putListed(ctx context.Context, sub name.Digest, raw []byte, artifactType string) (string, error) {
	d, err := p.putRaw(ctx, sub.Context(), string(types.OCIManifestSchema1), raw)
	if err != nil {
		return "", err
	}
	desc, err := descriptorOf(raw, string(types.OCIManifestSchema1))
	if err != nil {
		return "", err
	}
	desc.ArtifactType = artifactType
	if err := p.AddFallbackEntry(ctx, sub.String(), desc); err != nil {
		return "", err
	}
	return d, nil
}

// PushReferrer is Pusher.PushReferrer for tests.
func PushReferrer(t testing.TB, subjectRef, artifactType, layerMediaType string, content []byte, annotations map[string]string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushReferrer(t.Context(), subjectRef, artifactType, layerMediaType, content, annotations)
	return must(t, d, err)
}

func (p *Pusher) putReferrer(ctx context.Context, sub name.Digest, raw []byte) (string, error) {
	h, _, err := gcrv1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	ref := sub.Context().Digest(h.String())
	if err := remote.Put(ref, rawManifest{raw: raw, mt: types.OCIManifestSchema1}, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing referrer %s: %w", ref, err)
	}
	return h.String(), nil
}

// PushReferrerWithMissingBlob stores a cosign v3 style referrer of
// subjectRef whose single layer (of layerMediaType) was never uploaded. It
// returns the referrer's digest.
func (p *Pusher) PushReferrerWithMissingBlob(ctx context.Context, subjectRef, layerMediaType string) (string, error) {
	sub, err := parseDigest(subjectRef)
	if err != nil {
		return "", err
	}
	if _, err := p.uploadBlob(ctx, sub.Context(), []byte("{}"), string(types.OCIConfigJSON)); err != nil {
		return "", err
	}
	b, err := randomBytes()
	if err != nil {
		return "", err
	}
	layer, err := descriptorOf(b, layerMediaType)
	if err != nil {
		return "", err
	}
	raw, err := p.referrerManifest(ctx, sub, BundleMediaType, layer, BundleAnnotations(CosignSignPredicateType))
	if err != nil {
		return "", err
	}
	return p.putReferrer(ctx, sub, raw)
}

// PushReferrerWithMissingBlob is Pusher.PushReferrerWithMissingBlob for
// tests.
func PushReferrerWithMissingBlob(t testing.TB, subjectRef, layerMediaType string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushReferrerWithMissingBlob(t.Context(), subjectRef, layerMediaType)
	return must(t, d, err)
}

// PushMalformedReferrer stores a manifest that is not valid JSON and lists it
// in subjectRef's fallback tag index (the referrers API cannot list what it
// cannot parse). It returns the manifest's digest.
func (p *Pusher) PushMalformedReferrer(ctx context.Context, subjectRef string) (string, error) {
	sub, err := parseDigest(subjectRef)
	if err != nil {
		return "", err
	}
	raw := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{"mediaType":`)
	return p.putListed(ctx, sub, raw, BundleMediaType)
}

// PushMalformedReferrer is Pusher.PushMalformedReferrer for tests.
func PushMalformedReferrer(t testing.TB, subjectRef string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushMalformedReferrer(t.Context(), subjectRef)
	return must(t, d, err)
}

// PushDanglingFallbackEntry lists in subjectRef's fallback tag index a
// referrer manifest that does not exist (stored, then deleted, as after a
// registry garbage collection). It returns that manifest's digest. Call it
// after every other push for subjectRef: ggcr's registry refuses to store an
// index that lists a missing manifest, so later updates of the fallback tag
// would fail.
func (p *Pusher) PushDanglingFallbackEntry(ctx context.Context, subjectRef string) (string, error) {
	b, err := randomBytes()
	if err != nil {
		return "", err
	}
	sub, raw, err := p.prepareReferrer(ctx, subjectRef, BundleMediaType, BundleMediaType, b, BundleAnnotations(CosignSignPredicateType))
	if err != nil {
		return "", err
	}
	d, err := p.putListed(ctx, sub, raw, BundleMediaType)
	if err != nil {
		return "", err
	}
	if err := remote.Delete(sub.Context().Digest(d), remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("deleting %s: %w", d, err)
	}
	return d, nil
}

// PushDanglingFallbackEntry is Pusher.PushDanglingFallbackEntry for tests.
func PushDanglingFallbackEntry(t testing.TB, subjectRef string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushDanglingFallbackEntry(t.Context(), subjectRef)
	return must(t, d, err)
}

// PushBundleEmptyArtifactType stores bundle as cosign v3.0.x did
// (research/sigstore-formats.md §1.3): the same referrer manifest as
// PushBundle, but listed in the fallback tag index with artifactType
// application/vnd.oci.empty.v1+json and no annotations, as ggcr <= v0.21.5
// wrote it. The index entry is written whether or not the registry has the
// referrers API. It returns the referrer's digest.
func (p *Pusher) PushBundleEmptyArtifactType(ctx context.Context, subjectRef string, bundle []byte, predicateType string) (string, error) {
	sub, raw, err := p.prepareReferrer(ctx, subjectRef, BundleMediaType, BundleMediaType, bundle, BundleAnnotations(predicateType))
	if err != nil {
		return "", err
	}
	return p.putListed(ctx, sub, raw, EmptyMediaType)
}

// PushBundleEmptyArtifactType is Pusher.PushBundleEmptyArtifactType for
// tests.
func PushBundleEmptyArtifactType(t testing.TB, subjectRef string, bundle []byte, predicateType string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushBundleEmptyArtifactType(t.Context(), subjectRef, bundle, predicateType)
	return must(t, d, err)
}

// AddFallbackEntry appends desc to subjectRef's sha256-<hex> fallback tag
// index, creating it if needed, keeping it sorted by digest as ggcr does.
func (p *Pusher) AddFallbackEntry(ctx context.Context, subjectRef string, desc gcrv1.Descriptor) error {
	sub, err := parseDigest(subjectRef)
	if err != nil {
		return err
	}
	tag := sub.Context().Tag(strings.Replace(sub.DigestStr(), ":", "-", 1))
	idx := gcrv1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	got, err := remote.Get(tag, remote.WithContext(ctx))
	var terr *transport.Error
	switch {
	case err == nil:
		if err := json.Unmarshal(got.Manifest, &idx); err != nil {
			return fmt.Errorf("decoding %s: %w", tag, err)
		}
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
	default:
		return fmt.Errorf("reading %s: %w", tag, err)
	}
	idx.Manifests = append(idx.Manifests, desc)
	slices.SortFunc(idx.Manifests, func(a, b gcrv1.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	raw, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := remote.Put(tag, rawManifest{raw: raw, mt: types.OCIImageIndex}, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("writing %s: %w", tag, err)
	}
	return nil
}

// AddFallbackEntry is Pusher.AddFallbackEntry for tests.
func AddFallbackEntry(t testing.TB, subjectRef string, desc gcrv1.Descriptor) {
	t.Helper()
	var p Pusher
	if err := p.AddFallbackEntry(t.Context(), subjectRef, desc); err != nil {
		t.Fatal(err)
	}
}

// putRaw PUTs a manifest by digest with plain HTTP, bypassing ggcr's writer
// (which refuses bytes that are not JSON and maintains fallback tags). It
// returns the digest.
func (p *Pusher) putRaw(ctx context.Context, repo name.Repository, mediaType string, raw []byte) (string, error) {
	d := fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	u := fmt.Sprintf("http://%s/v2/%s/manifests/%s", repo.RegistryStr(), repo.RepositoryStr(), d)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := rawClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("putting %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("putting %s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	return d, nil
}

func randomBytes() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// PushLegacySignature adds payload (a simple-signing payload) as a layer of
// the sha256-<hex>.sig manifest of subjectRef, creating it if needed, as
// cosign's legacy layout does (research/sigstore-formats.md §2.1): an OCI
// manifest with an application/vnd.oci.image.config.v1+json config and one
// layer per signature, of media type
// application/vnd.dev.cosign.simplesigning.v1+json, carrying annotations
// (dev.cosignproject.cosign/signature, dev.sigstore.cosign/certificate, …).
// It returns the digest of the .sig manifest.
func (p *Pusher) PushLegacySignature(ctx context.Context, subjectRef string, payload []byte, annotations map[string]string) (string, error) {
	return p.pushLegacy(ctx, subjectRef, ".sig", SimpleSigningMediaType, payload, annotations)
}

// PushLegacySignature is Pusher.PushLegacySignature for tests.
func PushLegacySignature(t testing.TB, subjectRef string, payload []byte, annotations map[string]string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushLegacySignature(t.Context(), subjectRef, payload, annotations)
	return must(t, d, err)
}

// PushLegacyAttestation adds envelope (a DSSE envelope) as a layer of the
// sha256-<hex>.att manifest of subjectRef, as PushLegacySignature does for
// signatures, with media type application/vnd.dsse.envelope.v1+json. Cosign
// annotates it with dev.cosignproject.cosign/signature "" and predicateType.
// It returns the digest of the .att manifest.
func (p *Pusher) PushLegacyAttestation(ctx context.Context, subjectRef string, envelope []byte, annotations map[string]string) (string, error) {
	return p.pushLegacy(ctx, subjectRef, ".att", DSSEMediaType, envelope, annotations)
}

// PushLegacyAttestation is Pusher.PushLegacyAttestation for tests.
func PushLegacyAttestation(t testing.TB, subjectRef string, envelope []byte, annotations map[string]string) string {
	t.Helper()
	var p Pusher
	d, err := p.PushLegacyAttestation(t.Context(), subjectRef, envelope, annotations)
	return must(t, d, err)
}

func (p *Pusher) pushLegacy(ctx context.Context, subjectRef, suffix, mediaType string, content []byte, annotations map[string]string) (string, error) {
	sub, err := parseDigest(subjectRef)
	if err != nil {
		return "", err
	}
	tag := sub.Context().Tag(strings.Replace(sub.DigestStr(), ":", "-", 1) + suffix)
	base, err := remote.Image(tag, remote.WithContext(ctx))
	var terr *transport.Error
	switch {
	case err == nil:
	case errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound:
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	default:
		return "", fmt.Errorf("reading %s: %w", tag, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(content, types.MediaType(mediaType)),
		Annotations: annotations,
	})
	if err != nil {
		return "", fmt.Errorf("appending to %s: %w", tag, err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("writing %s: %w", tag, err)
	}
	h, err := img.Digest()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// SimpleSigningPayload returns the simple-signing payload cosign signs for
// the image repo ("host/repo") at digest.
func SimpleSigningPayload(repo, digest string) []byte {
	b, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": repo},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	return b
}

// PushBuildxIndex pushes to ref (tagged) an image index as buildx writes
// one with --provenance or --sbom: a random linux/amd64 image, and an
// attestation manifest about it (platform unknown/unknown, annotated
// vnd.docker.reference.type: attestation-manifest) whose one layer is the
// unsigned in-toto statement, of media type application/vnd.in-toto+json
// and annotated with its predicate type. It returns the index's digest
// reference and digest, and the image's digest.
func PushBuildxIndex(t testing.TB, ref, predicateType string, statement []byte) (digestRef, digest, imageDigest string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	imgDigest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	att, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:       static.NewLayer(statement, "application/vnd.in-toto+json"),
		Annotations: map[string]string{"in-toto.io/predicate-type": predicateType},
	})
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: gcrv1.Descriptor{Platform: &gcrv1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: att, Descriptor: gcrv1.Descriptor{
			Platform:    &gcrv1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": imgDigest.String()},
		}},
	)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.Context().Digest(h.String()).String(), h.String(), imgDigest.String()
}
