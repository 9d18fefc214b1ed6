package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/sync/singleflight"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// Bounds on what Charts downloads and keeps.
const (
	// DefaultMaxArchiveSize bounds a chart archive (50 MiB).
	DefaultMaxArchiveSize int64 = 50 << 20
	// DefaultMaxIndexSize bounds a repository index.yaml (50 MiB, as
	// source-controller's helm.MaxIndexSize).
	DefaultMaxIndexSize int64 = 50 << 20
	// DefaultMaxMemory bounds the archives a Charts keeps in memory.
	DefaultMaxMemory int64 = 256 << 20
	// DefaultFetchTimeout bounds one fetch: a repository index, an OCI
	// resolution, an archive.
	DefaultFetchTimeout = 2 * time.Minute
	// DefaultResolveTTL is how long a Charts trusts what a repository said
	// (which version a constraint selects, which digest a tag has) before
	// asking again.
	DefaultResolveTTL = 10 * time.Minute
)

// ChartsConfig configures NewCharts; the zero value is usable.
type ChartsConfig struct {
	// Dir, when set, keeps chart archives on disk (blobs/sha256/<hex>,
	// checked against their name when read) and what each chart reference
	// resolved to (refs/), so that a later process, or an offline one,
	// finds them.
	Dir string
	// Offline makes no network request: references and archives must be
	// in the cache.
	Offline bool
	// HTTPClient fetches indexes and archives of HTTP repositories, and its
	// Transport is used for OCI registries (default: http.DefaultClient).
	HTTPClient *http.Client
	// Keychain authenticates to OCI registries (default:
	// authn.DefaultKeychain).
	Keychain authn.Keychain
	// MaxArchiveSize, MaxIndexSize and MaxMemory override the defaults.
	MaxArchiveSize int64
	MaxIndexSize   int64
	MaxMemory      int64
	// ResolveTTL overrides DefaultResolveTTL.
	ResolveTTL time.Duration
	// FetchTimeout overrides DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Charts fetches remote chart archives and keeps them by digest. It is safe
// for concurrent use; share one per process: each digest is fetched once
// however many HelmReleases use it, concurrent requests for the same
// reference or digest wait for one fetch.
type Charts struct {
	cfg   ChartsConfig
	group singleflight.Group

	mu       sync.Mutex
	blobs    map[string][]byte
	memBytes int64
	resolved map[string]resolution
	indexes  map[string]cachedIndex

	indexFetches, tagLists, manifestFetches, archiveFetches atomic.Int64
}

// Stats counts what a Charts has asked the network for.
type Stats struct {
	// IndexFetches counts index.yaml downloads.
	IndexFetches int64
	// TagLists counts OCI tag listings.
	TagLists int64
	// ManifestFetches counts OCI manifest requests.
	ManifestFetches int64
	// ArchiveFetches counts chart archives downloaded (HTTP, OCI layers,
	// artifacts).
	ArchiveFetches int64
}

// Requests is the number of network requests counted.
func (s Stats) Requests() int64 {
	return s.IndexFetches + s.TagLists + s.ManifestFetches + s.ArchiveFetches
}

// resolution is what a chart reference resolved to.
type resolution struct {
	Key      string `json:"key"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
	URL      string `json:"url"`
	Digest   string `json:"digest,omitempty"`
	Revision string `json:"revision,omitempty"`
	expires  time.Time
}

type cachedIndex struct {
	index   *repo.IndexFile
	expires time.Time
}

// NewCharts returns a Charts configured by cfg.
func NewCharts(cfg ChartsConfig) *Charts {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Keychain == nil {
		cfg.Keychain = authn.DefaultKeychain
	}
	if cfg.MaxArchiveSize <= 0 {
		cfg.MaxArchiveSize = DefaultMaxArchiveSize
	}
	if cfg.MaxIndexSize <= 0 {
		cfg.MaxIndexSize = DefaultMaxIndexSize
	}
	if cfg.MaxMemory <= 0 {
		cfg.MaxMemory = DefaultMaxMemory
	}
	if cfg.ResolveTTL <= 0 {
		cfg.ResolveTTL = DefaultResolveTTL
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Charts{
		cfg:      cfg,
		blobs:    map[string][]byte{},
		resolved: map[string]resolution{},
		indexes:  map[string]cachedIndex{},
	}
}

// Stats returns what c has fetched so far.
func (c *Charts) Stats() Stats {
	return Stats{
		IndexFetches:    c.indexFetches.Load(),
		TagLists:        c.tagLists.Load(),
		ManifestFetches: c.manifestFetches.Load(),
		ArchiveFetches:  c.archiveFetches.Load(),
	}
}

// shared holds the Charts this process uses for each cache directory and
// mode when Render is not given one.
var shared = struct {
	sync.Mutex
	m map[[2]string]*Charts
}{m: map[[2]string]*Charts{}}

func sharedCharts(dir string, offline bool) *Charts {
	key := [2]string{dir, fmt.Sprint(offline)}
	shared.Lock()
	defer shared.Unlock()
	c, ok := shared.m[key]
	if !ok {
		c = NewCharts(ChartsConfig{Dir: dir, Offline: offline})
		shared.m[key] = c
	}
	return c
}

// resolve returns what key resolves to: from memory while fresh, from the
// disk cache when offline, or by calling fn once for all concurrent
// callers.
func (c *Charts) resolve(ctx context.Context, key string, fn func(context.Context) (resolution, error)) (resolution, error) {
	c.mu.Lock()
	r, ok := c.resolved[key]
	c.mu.Unlock()
	if ok && (c.cfg.Offline || c.cfg.Now().Before(r.expires)) {
		return r, nil
	}
	if c.cfg.Offline {
		r, err := c.readRef(key)
		if err != nil {
			return resolution{}, fmt.Errorf("%w: %s was never resolved with this cache: %w", ErrOffline, key, err)
		}
		c.remember(r)
		return r, nil
	}
	v, err := c.do(ctx, "resolve\x00"+key, func(ctx context.Context) (any, error) {
		r, err := fn(ctx)
		if err != nil {
			return resolution{}, err
		}
		r.Key = key
		c.remember(r)
		return r, c.writeRef(r)
	})
	if err != nil {
		return resolution{}, err
	}
	return v.(resolution), nil
}

// do runs fn once for all concurrent callers with the same key. fn runs
// under FetchTimeout and is not cancelled when one caller gives up; each
// caller waits only as long as its own ctx allows.
func (c *Charts) do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := c.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
		defer cancel()
		return fn(fctx)
	})
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s: %w", strings.ReplaceAll(key, "\x00", " "), ctx.Err())
	}
}

// remember keeps r in memory until the TTL passes.
func (c *Charts) remember(r resolution) {
	r.expires = c.cfg.Now().Add(c.cfg.ResolveTTL)
	c.mu.Lock()
	c.resolved[r.Key] = r
	c.mu.Unlock()
}

// archive returns the archive r names: from memory or the disk cache when
// its digest is known and kept there, else by calling fetch once for all
// concurrent callers and checking the digest. A resolution without a digest
// (an index entry without one) learns it from the download.
func (c *Charts) archive(ctx context.Context, r resolution, fetch func(context.Context) ([]byte, error)) ([]byte, string, error) {
	if r.Digest != "" {
		if b := c.cached(r.Digest); b != nil {
			return b, r.Digest, nil
		}
	}
	if c.cfg.Offline {
		return nil, "", fmt.Errorf("%w: %s (digest %q)", ErrOffline, r.URL, r.Digest)
	}
	key := "archive\x00" + r.Digest
	if r.Digest == "" {
		key = "url\x00" + r.URL
	}
	v, err := c.do(ctx, key, func(ctx context.Context) (any, error) {
		return c.download(ctx, r, fetch)
	})
	if err != nil {
		return nil, "", err
	}
	a := v.(fetched)
	return a.data, a.digest, nil
}

// fetched is a downloaded archive and its digest.
type fetched struct {
	data   []byte
	digest string
}

// download fetches an archive unless another caller just cached it, checks
// its digest and keeps it.
func (c *Charts) download(ctx context.Context, r resolution, fetch func(context.Context) ([]byte, error)) (fetched, error) {
	if r.Digest != "" {
		if b := c.cached(r.Digest); b != nil {
			return fetched{b, r.Digest}, nil
		}
	}
	c.archiveFetches.Add(1)
	b, err := fetch(ctx)
	if err != nil {
		return fetched{}, err
	}
	got := sha256Digest(b)
	if r.Digest != "" && got != r.Digest {
		return fetched{}, fmt.Errorf("%w: %s has digest %s, expected %s", ErrIntegrity, r.URL, got, r.Digest)
	}
	if err := c.store(got, b); err != nil {
		return fetched{}, err
	}
	if r.Digest == "" && r.Key != "" {
		r.Digest = got
		c.remember(r)
		if err := c.writeRef(r); err != nil {
			return fetched{}, err
		}
	}
	return fetched{b, got}, nil
}

// cached returns the archive with digest d from memory or disk, or nil. A
// file on disk whose content does not match its name is removed.
func (c *Charts) cached(d string) []byte {
	c.mu.Lock()
	b, ok := c.blobs[d]
	c.mu.Unlock()
	if ok {
		return b
	}
	p, ok := c.blobPath(d)
	if !ok {
		return nil
	}
	b, err := readFileBounded(p, c.cfg.MaxArchiveSize)
	if err != nil {
		return nil
	}
	if sha256Digest(b) != d {
		_ = os.Remove(p)
		return nil
	}
	c.keep(d, b)
	return b
}

// store keeps an archive in memory and on disk.
func (c *Charts) store(d string, b []byte) error {
	c.keep(d, b)
	p, ok := c.blobPath(d)
	if !ok {
		return nil
	}
	if err := writeFileAtomic(p, b); err != nil {
		return fmt.Errorf("caching chart archive %s: %w", d, err)
	}
	return nil
}

// keep holds b in memory while the memory budget allows.
func (c *Charts) keep(d string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.blobs[d]; ok || c.memBytes+int64(len(b)) > c.cfg.MaxMemory {
		return
	}
	c.blobs[d] = b
	c.memBytes += int64(len(b))
}

// blobPath is where the archive with digest d is kept on disk.
func (c *Charts) blobPath(d string) (string, bool) {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if c.cfg.Dir == "" || !ok || !isHex(hexPart, 64) {
		return "", false
	}
	return filepath.Join(c.cfg.Dir, "blobs", "sha256", hexPart), true
}

// refPath is where the resolution of key is kept on disk.
func (c *Charts) refPath(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.cfg.Dir, "refs", hex.EncodeToString(sum[:])+".json")
}

func (c *Charts) writeRef(r resolution) error {
	if c.cfg.Dir == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the resolution of %s: %w", r.Key, err)
	}
	if err := writeFileAtomic(c.refPath(r.Key), b); err != nil {
		return fmt.Errorf("caching the resolution of %s: %w", r.Key, err)
	}
	return nil
}

func (c *Charts) readRef(key string) (resolution, error) {
	if c.cfg.Dir == "" {
		return resolution{}, errors.New("no cache directory")
	}
	b, err := readFileBounded(c.refPath(key), 1<<20)
	if err != nil {
		return resolution{}, err
	}
	var r resolution
	if err := json.Unmarshal(b, &r); err != nil {
		return resolution{}, fmt.Errorf("reading the cached resolution: %w", err)
	}
	if r.Key != key {
		return resolution{}, fmt.Errorf("cached resolution is for %q", r.Key)
	}
	return r, nil
}

// httpGet downloads url, failing past limit bytes.
func (c *Charts) httpGet(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("requesting %s: %w", url, err)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("requesting %s: %w", url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: GET %s: %s", ErrChartNotFound, url, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	case resp.ContentLength > limit:
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrTooLarge, url, resp.ContentLength, limit)
	}
	return readBounded(resp.Body, limit, url)
}

// readBounded reads r to the end, failing past limit bytes.
func readBounded(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is more than %d bytes", ErrTooLarge, what, limit)
	}
	return b, nil
}

// readFileBounded reads a regular file of at most limit bytes.
func readFileBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return readBounded(f, limit, path)
}

// writeFileAtomic writes b to path through a temporary file, so a reader
// never sees part of it.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// sha256Digest is "sha256:<hex>" of b.
func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// normalizeDigest turns an index entry's digest (Helm writes bare hex) into
// "sha256:<hex>"; anything else is "".
func normalizeDigest(d string) string {
	d = strings.ToLower(strings.TrimPrefix(d, "sha256:"))
	if !isHex(d, 64) {
		return ""
	}
	return "sha256:" + d
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// isNotExist reports a missing file.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
