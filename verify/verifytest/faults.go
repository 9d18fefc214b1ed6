package verifytest

// Hostile registry behaviours for a Front, in-memory amplification fixtures
// and TLS registries with good and bad certificates.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// record passes r to next and returns the answer: status, headers and body.
func record(next http.Handler, r *http.Request) (int, http.Header, []byte) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	res := rec.Result()
	return res.StatusCode, res.Header, rec.Body.Bytes()
}

// writeHead writes the headers h and status code of an answer whose body has
// n bytes. A HEAD answer keeps the Content-Length it had; any other gets n.
func writeHead(w http.ResponseWriter, r *http.Request, code int, h http.Header, n int) {
	dst := w.Header()
	for k, v := range h {
		dst[k] = v
	}
	dst.Del("Transfer-Encoding")
	if r.Method != http.MethodHead {
		dst.Set("Content-Length", strconv.Itoa(n))
	}
	w.WriteHeader(code)
}

// replay writes a recorded answer (see record).
func replay(w http.ResponseWriter, r *http.Request, code int, h http.Header, body []byte) {
	writeHead(w, r, code, h, len(body))
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// closingOf returns the channel closed when the Front shuts down; nil (never
// ready) outside a Front.
func closingOf(r *http.Request) <-chan struct{} {
	c, _ := r.Context().Value(closingKey{}).(chan struct{})
	return c
}

// SlowBody models a slowloris registry, or one answering just under a
// per-request timeout: it passes the request on, sends the answer's status
// and headers (Content-Length of the full body) at once, then the body chunk
// bytes at a time, each chunk after a pause of perChunk, so the body takes
// ceil(len/chunk)×perChunk. If the client goes away (or the Front shuts
// down) during a pause, the connection is dropped at once.
func SlowBody(perChunk time.Duration, chunk int) Behaviour {
	chunk = max(chunk, 1)
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		code, h, body := record(next, r)
		writeHead(w, r, code, h, len(body))
		rc := http.NewResponseController(w)
		if err := rc.Flush(); err != nil || r.Method == http.MethodHead {
			return
		}
		closing := closingOf(r)
		for len(body) > 0 {
			tm := time.NewTimer(perChunk)
			select {
			case <-tm.C:
			case <-r.Context().Done():
				tm.Stop()
				panic(http.ErrAbortHandler)
			case <-closing:
				tm.Stop()
				panic(http.ErrAbortHandler)
			}
			n := min(chunk, len(body))
			if _, err := w.Write(body[:n]); err != nil {
				return
			}
			body = body[n:]
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// hijackHalf passes r on, then takes over the connection and writes the
// answer's status and headers (Content-Length of the full body) and the
// first half of its body (none for HEAD). It returns the connection, for the
// caller to close. Where the connection cannot be taken over (HTTP/2) it
// writes the same and aborts the answer, returning nil.
func hijackHalf(w http.ResponseWriter, r *http.Request, next http.Handler) net.Conn {
	code, h, body := record(next, r)
	half := body[:len(body)/2]
	if r.Method == http.MethodHead {
		half = nil
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeHead(w, r, code, h, len(body))
		_, _ = w.Write(half)
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	h = h.Clone()
	h.Del("Transfer-Encoding")
	if r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	fmt.Fprintf(brw, "HTTP/1.1 %03d %s\r\n", code, http.StatusText(code))
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	_, _ = brw.Write(half)
	_ = brw.Flush()
	return conn
}

// TruncatedBody models a registry (or proxy) that dies mid-answer: it passes
// the request on, sends the answer's status and headers with the
// Content-Length of the full body, then only the first half of the body, and
// closes the connection, so a client reading the body gets
// io.ErrUnexpectedEOF.
func TruncatedBody() Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if c := hijackHalf(w, r, next); c != nil {
			_ = c.Close()
		}
	}
}

// ResetMidBody models a connection reset mid-answer (a crashing registry, a
// middlebox killing the flow): it sends the answer's status, headers and
// half its body as TruncatedBody does, then resets the TCP connection
// (SO_LINGER 0 and close), so the client gets "connection reset by peer"
// (syscall.ECONNRESET), usually reading the body; if the reset overtakes the
// data, already from Do.
func ResetMidBody() Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		c := hijackHalf(w, r, next)
		if c == nil {
			return
		}
		nc := c
		if u, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
			nc = u.NetConn()
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = nc.Close()
	}
}

// hugeManifestPrefix and hugeManifestSuffix frame the padding of
// HugeManifest's body: a valid OCI image manifest with one annotation.
const (
	hugeManifestPrefix = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + emptyBlobDigest + `","size":2},` +
		`"layers":[],"annotations":{"pad":"`
	hugeManifestSuffix = `"}}`
)

// HugeManifestMinSize is the smallest size for which HugeManifest's body is
// valid JSON.
const HugeManifestMinSize = len(hugeManifestPrefix) + len(hugeManifestSuffix)

// HugeManifest models a registry answering a manifest request with an
// enormous manifest (memory exhaustion): 200, Content-Type
// application/vnd.oci.image.manifest.v1+json, Content-Length size, and a body
// of size bytes streamed without being held in memory: a valid OCI image
// manifest padded with an annotation of 'a's (if size is at least
// HugeManifestMinSize; smaller sizes get the manifest's first size bytes).
// It sends no Docker-Content-Digest. HEAD gets the headers only.
func HugeManifest(size int64) Behaviour { return hugeManifest(size, true) }

// HugeManifestUnsized is HugeManifest without a Content-Length header (the
// body is chunked): a registry whose answer's size a client cannot know
// before reading it.
func HugeManifestUnsized(size int64) Behaviour { return hugeManifest(size, false) }

func hugeManifest(size int64, sized bool) Behaviour {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
		if sized {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		body := io.MultiReader(
			strings.NewReader(hugeManifestPrefix),
			io.LimitReader(repeatReader('a'), size-int64(HugeManifestMinSize)),
			strings.NewReader(hugeManifestSuffix),
		)
		if size < int64(HugeManifestMinSize) {
			body = strings.NewReader((hugeManifestPrefix + hugeManifestSuffix)[:max(size, 0)])
		}
		_, _ = io.Copy(ctxWriter{w: w, r: r}, body)
	}
}

// repeatReader reads as an endless run of its byte.
type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = byte(b)
	for n := 1; n < len(p); n *= 2 {
		copy(p[n:], p[:n])
	}
	return len(p), nil
}

// ctxWriter writes to w until r's client goes away or the Front shuts down.
type ctxWriter struct {
	w http.ResponseWriter
	r *http.Request
}

func (c ctxWriter) Write(p []byte) (int, error) {
	select {
	case <-c.r.Context().Done():
		return 0, c.r.Context().Err()
	case <-closingOf(c.r):
		return 0, http.ErrAbortHandler
	default:
	}
	return c.w.Write(p)
}

// hugeIndexEntrySize is the size every HugeIndex entry claims.
const hugeIndexEntrySize = 512

// HugeIndex models a referrer amplification attack: it answers with 200 and
// a valid OCI image index (Content-Type
// application/vnd.oci.image.index.v1+json, exact Content-Length) listing
// entries manifests, each with a distinct sha256 digest (of its position),
// media type application/vnd.oci.image.manifest.v1+json, size 512 and
// artifactType application/vnd.dev.sigstore.bundle.v0.3+json, none of which
// exists. The body is streamed, never held in memory, so entries may be in
// the millions. Use it for a fallback tag, the referrers API or any index.
// HEAD gets the headers only.
func HugeIndex(entries int) Behaviour {
	const (
		prefix = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`
		suffix = `]}`
	)
	entries = max(entries, 0)
	entry := func(buf []byte, i int) []byte {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(i)) //nolint:gosec // i counts entries from 0: never negative
		d := sha256.Sum256(n[:])
		buf = append(buf, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`...)
		buf = hex.AppendEncode(buf, d[:])
		buf = append(buf, `","size":`...)
		buf = strconv.AppendInt(buf, hugeIndexEntrySize, 10)
		buf = append(buf, `,"artifactType":"`+BundleMediaType+`"}`...)
		return buf
	}
	entryLen := int64(len(entry(nil, 0)))
	length := int64(len(prefix)+len(suffix)) + int64(entries)*entryLen + int64(max(entries-1, 0))
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", string(types.OCIImageIndex))
		w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		bw := bufio.NewWriterSize(ctxWriter{w: w, r: r}, 64<<10)
		_, _ = bw.WriteString(prefix)
		buf := make([]byte, 0, entryLen+1)
		for i := range entries {
			buf = buf[:0]
			if i > 0 {
				buf = append(buf, ',')
			}
			if _, err := bw.Write(entry(buf, i)); err != nil {
				return
			}
		}
		_, _ = bw.WriteString(suffix)
		_ = bw.Flush()
	}
}

// Amplification is a referrer amplification fixture served from memory: a
// subject's fallback tag (sha256-<hex>) and its referrers API both list
// manifests cosign v3 style referrer manifests (artifactType and layers
// application/vnd.dev.sigstore.bundle.v0.3+json, BundleAnnotations, the
// subject), each of which lists layers one-byte layers. Every manifest and
// blob is served with correct digests, so a verifier following it naively
// makes 1 + manifests manifest GETs and manifests×layers blob GETs. Layer j
// of manifest i holds the byte (i×layers+j) mod 256, so there are at most
// 256 distinct layer blobs: a verifier that caches blobs by digest makes at
// most 256 (plus the "{}" config).
type Amplification struct {
	repo        string
	subject     string
	index       []byte
	indexDigest string
	referrers   []string
	manifests   map[string][]byte
	blobs       map[string][]byte
}

// NewAmplification builds an Amplification for subjectRef (a digest
// reference to a manifest that exists: its descriptor becomes the
// referrers' subject). Serve it through a Front with
// front.On(`^/v2/`, a.Behaviour()).
func NewAmplification(t testing.TB, subjectRef string, manifests, layers int) *Amplification {
	t.Helper()
	sub, err := parseDigest(subjectRef)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(sub, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("reading subject %s: %v", sub, err)
	}
	a, err := newAmplification(sub.Context().RepositoryStr(), gcrv1.Descriptor{
		MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest,
	}, max(manifests, 0), max(layers, 0))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newAmplification(repo string, subject gcrv1.Descriptor, manifests, layers int) (*Amplification, error) {
	a := &Amplification{
		repo:      repo,
		subject:   subject.Digest.String(),
		manifests: map[string][]byte{},
		blobs:     map[string][]byte{emptyBlobDigest: []byte("{}")},
	}
	emptyDigest, err := gcrv1.NewHash(emptyBlobDigest)
	if err != nil {
		return nil, err
	}
	idx := gcrv1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []gcrv1.Descriptor{}}
	for i := range manifests {
		ls := make([]gcrv1.Descriptor, layers)
		for j := range ls {
			b := []byte{byte((i*layers + j) % 256)} //nolint:gosec // reduced to a byte on purpose
			d, err := descriptorOf(b, BundleMediaType)
			if err != nil {
				return nil, err
			}
			a.blobs[d.Digest.String()] = b
			ls[j] = d
		}
		ann := BundleAnnotations(CosignSignPredicateType)
		ann["dev.pregate.verifytest/amplification"] = strconv.Itoa(i)
		raw, err := json.Marshal(gcrv1.Manifest{
			SchemaVersion: 2,
			MediaType:     types.OCIManifestSchema1,
			Config: gcrv1.Descriptor{
				MediaType: EmptyMediaType, Size: 2, Digest: emptyDigest, ArtifactType: BundleMediaType,
			},
			Layers:       ls,
			Annotations:  ann,
			Subject:      &subject,
			ArtifactType: BundleMediaType,
		})
		if err != nil {
			return nil, err
		}
		d, err := descriptorOf(raw, string(types.OCIManifestSchema1))
		if err != nil {
			return nil, err
		}
		d.ArtifactType = BundleMediaType
		d.Annotations = ann
		a.manifests[d.Digest.String()] = raw
		a.referrers = append(a.referrers, d.Digest.String())
		idx.Manifests = append(idx.Manifests, d)
	}
	a.index, err = json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	a.indexDigest = fmt.Sprintf("sha256:%x", sha256.Sum256(a.index))
	return a, nil
}

// Referrers returns the digests of the referrer manifests, in index order.
func (a *Amplification) Referrers() []string { return append([]string(nil), a.referrers...) }

// Index returns the image index served for the fallback tag and the
// referrers API.
func (a *Amplification) Index() []byte { return append([]byte(nil), a.index...) }

// FallbackTag returns the subject's fallback tag, sha256-<hex>.
func (a *Amplification) FallbackTag() string { return strings.Replace(a.subject, ":", "-", 1) }

// Behaviour serves, in the subject's repository, the index (for GET and HEAD
// of the fallback tag or the index's digest, and for the referrers API of
// the subject), the referrer manifests and their blobs; it passes every
// other request on.
func (a *Amplification) Behaviour() Behaviour {
	prefix := "/v2/" + a.repo + "/"
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rest, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		kind, id, _ := strings.Cut(rest, "/")
		var (
			body []byte
			ct   string
		)
		switch {
		case kind == "manifests" && (id == a.FallbackTag() || id == a.indexDigest),
			kind == "referrers" && id == a.subject:
			body, ct = a.index, string(types.OCIImageIndex)
		case kind == "manifests" && a.manifests[id] != nil:
			body, ct = a.manifests[id], string(types.OCIManifestSchema1)
		case kind == "blobs" && a.blobs[id] != nil:
			body, ct = a.blobs[id], "application/octet-stream"
		default:
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Header().Set("Docker-Content-Digest", fmt.Sprintf("sha256:%x", sha256.Sum256(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
}

// RedirectLoop models a redirect loop (a misconfigured registry or CDN): it
// answers every request with 307 to the same path with the query parameter
// loop set to one more than the request's (?loop=1, ?loop=2, …), so a
// client following redirects loops until its cap (Go's http.Client: "stopped
// after 10 redirects").
func RedirectLoop() Behaviour {
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("loop"))
		q.Set("loop", strconv.Itoa(n+1))
		w.Header().Set("Location", r.URL.EscapedPath()+"?"+q.Encode())
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

// RedirectTo models an off-host redirect (a registry sending the referrers
// API or blobs to a CDN or another registry): it answers with code (3xx) and
// a Location of the same path and query on host, a host:port reached over
// http, or a base URL ("https://host:port").
func RedirectTo(host string, code int) Behaviour {
	base := host
	if !strings.Contains(host, "://") {
		base = "http://" + host
	}
	base = strings.TrimSuffix(base, "/")
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		u := base + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", u)
		w.WriteHeader(code)
	}
}

// WrongContentType models a registry that mislabels its answers: it passes
// the request on and answers as the registry did, with the Content-Type
// replaced by ct.
func WrongContentType(ct string) Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		code, h, body := record(next, r)
		h.Set("Content-Type", ct)
		replay(w, r, code, h, body)
	}
}

// CorruptBody models corruption in storage or in transit (bit rot, a
// tampering mirror): it passes the request on and answers as the registry
// did, headers (Docker-Content-Digest included) unchanged, with one
// character of the body changed, so the body no longer matches its digest.
// A body containing "sha256:" gets the first hex digit of the last such
// digest changed (to the next hex digit), so a JSON manifest stays valid
// JSON with valid digests; any other non-empty body gets the low bit of its
// middle byte flipped.
func CorruptBody() Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		code, h, body := record(next, r)
		body = bytes.Clone(body)
		corrupt(body)
		replay(w, r, code, h, body)
	}
}

func corrupt(b []byte) {
	if i := bytes.LastIndex(b, []byte("sha256:")) + len("sha256:"); i >= len("sha256:") && i < len(b) {
		const hexDigits = "0123456789abcdef"
		if k := strings.IndexByte(hexDigits, b[i]); k >= 0 {
			b[i] = hexDigits[(k+1)%len(hexDigits)]
			return
		}
	}
	if len(b) > 0 {
		b[len(b)/2] ^= 1
	}
}

// WrongDigestHeader models a registry whose Docker-Content-Digest header
// lies: it passes the request (HEAD or GET) on and answers as the registry
// did, with the Docker-Content-Digest header replaced by another
// valid-looking sha256 digest (derived from the original, so stable), on
// every answer that had one and on every 2xx answer.
func WrongDigestHeader() Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		code, h, body := record(next, r)
		if d := h.Get("Docker-Content-Digest"); d != "" || code/100 == 2 {
			h.Set("Docker-Content-Digest", otherDigest(d, body))
		}
		replay(w, r, code, h, body)
	}
}

// otherDigest returns a sha256 digest that is neither d nor the body's.
func otherDigest(d string, body []byte) string {
	s := sha256.New()
	_, _ = io.WriteString(s, "verifytest wrong digest\x00"+d+"\x00")
	_, _ = s.Write(body)
	return fmt.Sprintf("sha256:%x", s.Sum(nil))
}

// GzipBomb models a compression bomb: it answers every request with 200,
// Content-Type application/vnd.oci.image.manifest.v1+json,
// Content-Encoding: gzip (whatever the request's Accept-Encoding) and a small
// gzip body (about size/1000 bytes, built when GzipBomb is called, which
// takes roughly a second per 100 MiB of size) that inflates to size zero
// bytes; Content-Length is the compressed size. Go's
// http.Transport inflates it transparently only when it added
// Accept-Encoding: gzip itself (the request had none, and
// DisableCompression is off), as for ggcr's clients: then resp.Body yields
// size bytes, resp.Uncompressed is true, and the Content-Encoding and
// Content-Length headers are gone (resp.ContentLength is -1). Otherwise the
// client sees the gzip bytes and the headers as sent. HEAD gets the headers
// only.
func GzipBomb(size int64) Behaviour {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		panic(err) // only for a bad level
	}
	zeros := make([]byte, 64<<10)
	for rem := max(size, 0); rem > 0; {
		n := min(rem, int64(len(zeros)))
		_, _ = zw.Write(zeros[:n]) // a bytes.Buffer does not fail
		rem -= n
	}
	_ = zw.Close()
	body := buf.Bytes()
	return func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
}

// SplitView models split-view tags (a registry or mirror showing HEAD and
// GET different contents): a HEAD of a manifest (…/manifests/<tag>) is
// answered as a HEAD of …/manifests/<headDigest> would be (its
// Docker-Content-Digest, Content-Type and Content-Length, when that manifest
// exists in the registry; otherwise the tag's own headers with
// Docker-Content-Digest headDigest), while a GET passes through to the
// registry. So HEAD says the tag points at headDigest and GET serves what it
// really points at. A verifier must bind its verdict to the digest of the
// manifest it verified.
func SplitView(headDigest string) Behaviour {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		i := strings.LastIndex(r.URL.Path, "/manifests/")
		if r.Method != http.MethodHead || i < 0 {
			next.ServeHTTP(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = r.URL.Path[:i] + "/manifests/" + headDigest
		r2.URL.RawPath = ""
		code, h, body := record(next, r2)
		if code != http.StatusOK {
			code, h, body = record(next, r)
		}
		if code/100 == 2 {
			h.Set("Docker-Content-Digest", headDigest)
		}
		replay(w, r, code, h, body)
	}
}

// NewTLSRegistry starts go-containerregistry's in-memory registry (as
// NewRegistry does) behind an HTTPS loopback server, closed when the test
// ends, and returns its host:port and a pool holding the only certificate
// that verifies it (issued for 127.0.0.1, ::1 and example.com; see
// TransportTrusting). The registry logs nothing, nor do failed handshakes.
func NewTLSRegistry(t testing.TB, opts ...RegistryOption) (host string, pool *x509.CertPool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(registryHandler(opts))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool = x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return strings.TrimPrefix(srv.URL, "https://"), pool
}

// TransportTrusting returns a new transport, a clone of
// http.DefaultTransport, that trusts only the certificates of pool.
func TransportTrusting(pool *x509.CertPool) *http.Transport {
	tr := ownTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr
}

// BadTLS is a kind of bad certificate for NewBadTLSFront.
type BadTLS int

const (
	// UntrustedCert is a self-signed certificate, valid for loopback, that
	// the returned pool does not hold: x509.UnknownAuthorityError.
	UntrustedCert BadTLS = iota + 1
	// ExpiredCert is issued for loopback by the returned pool's authority
	// but expired an hour ago: x509.CertificateInvalidError with Reason
	// x509.Expired.
	ExpiredCert
	// WrongHostCert is issued by the returned pool's authority, valid now,
	// but only for the name registry.invalid: x509.HostnameError.
	WrongHostCert
)

// String returns the kind's name, such as "ExpiredCert".
func (k BadTLS) String() string {
	switch k {
	case UntrustedCert:
		return "UntrustedCert"
	case ExpiredCert:
		return "ExpiredCert"
	case WrongHostCert:
		return "WrongHostCert"
	}
	return "BadTLS(" + strconv.Itoa(int(k)) + ")"
}

// NewBadTLSFront models a registry with a bad TLS certificate (a
// man-in-the-middle, a lapsed renewal, a misrouted name): it starts an HTTPS
// loopback server passing every request on to the registry at upstream
// (host:port), whose certificate, made now with crypto/x509 (ECDSA P-256), is
// bad as kind says, closed when the test ends. It returns the server's
// host:port and a pool holding a certificate authority of its own, which
// issued the server's certificate unless kind is UntrustedCert: a client
// trusting pool still fails verification. A client that skips verification
// reaches the registry.
func NewBadTLSFront(t testing.TB, upstream string, kind BadTLS) (host string, pool *x509.CertPool) {
	t.Helper()
	cert, pool, err := badCertificate(kind, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	tr := ownTransport()
	proxy.Transport = tr
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(tr.CloseIdleConnections)
	srv := httptest.NewUnstartedServer(proxy)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://"), pool
}

// badCertificate makes a server certificate bad as kind says, and a pool
// holding an authority of its own.
func badCertificate(kind BadTLS, now time.Time) (tls.Certificate, *x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "verifytest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := createCertificate(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "verifytest registry"},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	parent, signer := ca, caKey
	switch kind {
	case UntrustedCert:
		parent, signer = tmpl, key
	case ExpiredCert:
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-2*time.Hour), now.Add(-time.Hour)
	case WrongHostCert:
		tmpl.DNSNames, tmpl.IPAddresses = []string{"registry.invalid"}, nil
	default:
		return tls.Certificate{}, nil, fmt.Errorf("unknown BadTLS kind %d", kind)
	}
	der, err := createCertificate(tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool, nil
}

// createCertificate is x509.CreateCertificate with a random serial number.
func createCertificate(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
}
