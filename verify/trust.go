package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrTrustRootUnavailable is returned (wrapped) when no trusted root can
// be had from a TUF repository: the repository could not be reached or
// refused the update, and no valid cached copy exists.
var ErrTrustRootUnavailable = errors.New("trusted root unavailable")

// trustedRootTarget is the TUF target holding the trusted root.
const trustedRootTarget = "trusted_root.json"

// TrustedRootFromJSON parses a Sigstore trusted root (trusted_root.json,
// media type application/vnd.dev.sigstore.trustedroot+json;version=0.1):
// the Fulcio CAs, Rekor logs, CT logs and timestamp authorities of a
// Sigstore deployment, public or private. A root that holds none of them
// is an error.
func TrustedRootFromJSON(b []byte) (root.TrustedMaterial, error) {
	tr, err := root.NewTrustedRootFromJSON(b)
	if err != nil {
		return nil, fmt.Errorf("parsing trusted root: %w", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 && len(tr.RekorLogs()) == 0 &&
		len(tr.TimestampingAuthorities()) == 0 && len(tr.CTLogs()) == 0 {
		return nil, errors.New("parsing trusted root: it holds no certificate authority, log or timestamp authority")
	}
	return tr, nil
}

// TUFOption configures PublicGood and TUFMirror.
type TUFOption func(*tufOptions) error

type tufOptions struct {
	cacheDir string
	offline  bool
	client   *http.Client
	timeout  time.Duration
}

// DefaultTUFTimeout bounds one TUF update (all its requests) unless
// WithTUFTimeout says otherwise.
const DefaultTUFTimeout = 60 * time.Second

// DefaultTUFCacheDir is where TUF metadata and targets are cached unless
// WithTUFCacheDir says otherwise: the user cache directory
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux) + pregate/tuf,
// or the temporary directory + pregate/tuf when there is none (a
// container without HOME). Each repository gets its own subdirectory.
func DefaultTUFCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "pregate", "tuf")
}

// WithTUFCacheDir sets the cache directory (default DefaultTUFCacheDir()).
// Commands may map an environment variable such as TUF_ROOT onto it.
func WithTUFCacheDir(dir string) TUFOption {
	return func(o *tufOptions) error {
		if dir == "" {
			return errors.New("TUF cache directory is empty")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithTUFOffline never contacts the repository: the trusted root comes
// from the cache alone, whose metadata must be complete and unexpired
// (sigstore-go's ForceCache). A cold cache is an ErrTrustRootUnavailable
// error. By default the repository is asked first and the cache is the
// fallback.
func WithTUFOffline() TUFOption {
	return func(o *tufOptions) error {
		o.offline = true
		return nil
	}
}

// WithTUFHTTPClient sets the HTTP client for the repository (default
// http.DefaultClient); use it for proxies, custom CAs or tests.
func WithTUFHTTPClient(c *http.Client) TUFOption {
	return func(o *tufOptions) error {
		if c == nil {
			return errors.New("TUF HTTP client is nil")
		}
		o.client = c
		return nil
	}
}

// WithTUFTimeout bounds one update, all its requests together (default
// DefaultTUFTimeout).
func WithTUFTimeout(d time.Duration) TUFOption {
	return func(o *tufOptions) error {
		if d <= 0 {
			return fmt.Errorf("TUF timeout must be positive, got %s", d)
		}
		o.timeout = d
		return nil
	}
}

func newTUFOptions(opts []TUFOption) (*tufOptions, error) {
	o := &tufOptions{cacheDir: DefaultTUFCacheDir(), client: http.DefaultClient, timeout: DefaultTUFTimeout}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("invalid TUF option: %w", err)
		}
	}
	return o, nil
}

// PublicGood returns the trusted root of the Sigstore public-good
// instance through its TUF repository (https://tuf-repo-cdn.sigstore.dev),
// anchored in the TUF root embedded in sigstore-go.
//
// It refreshes the metadata from the repository and caches it. When the
// refresh fails (no network, repository down), it falls back to the cache
// if its metadata is complete and unexpired, and logs the refresh error
// (logr from ctx). When the cache is cold too, as on a fresh machine with
// the network off, it returns an ErrTrustRootUnavailable error naming
// both failures: there is no trusted root in the binary to fall back to,
// by design (an air-gapped deployment gives TrustedRootFromJSON a
// trusted_root.json instead, or mirrors the repository: TUFMirror).
//
// Every call contacts the repository (unless WithTUFOffline): call it
// once per process, or per refresh period, and share the material.
func PublicGood(ctx context.Context, opts ...TUFOption) (root.TrustedMaterial, error) {
	o, err := newTUFOptions(opts)
	if err != nil {
		return nil, err
	}
	return fetchTrustedRoot(ctx, tuf.DefaultMirror, tuf.DefaultRoot(), o)
}

// TUFMirror returns the trusted root served by a TUF repository at
// mirrorURL (a private mirror of the public-good repository, or the
// repository of a private Sigstore deployment), anchored in rootJSON, the
// repository's TUF root.json (required: the public-good anchor does not
// sign a private repository). cacheDir "" means the default (see
// DefaultTUFCacheDir; a WithTUFCacheDir option overrides both). It falls
// back to the cache as PublicGood does.
func TUFMirror(ctx context.Context, mirrorURL string, rootJSON []byte, cacheDir string, opts ...TUFOption) (root.TrustedMaterial, error) {
	u, err := url.Parse(mirrorURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("TUF mirror URL %q: want an http(s) URL without credentials", redactMirrorURL(mirrorURL))
	}
	if len(rootJSON) == 0 {
		return nil, fmt.Errorf("TUF mirror %s: no root.json given", mirrorURL)
	}
	if cacheDir != "" {
		opts = append([]TUFOption{WithTUFCacheDir(cacheDir)}, opts...)
	}
	o, err := newTUFOptions(opts)
	if err != nil {
		return nil, err
	}
	return fetchTrustedRoot(ctx, mirrorURL, rootJSON, o)
}

// redactMirrorURL hides what a malformed URL might carry.
func redactMirrorURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<unparseable URL>"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	return u.String()
}

func fetchTrustedRoot(ctx context.Context, repo string, anchor []byte, o *tufOptions) (root.TrustedMaterial, error) {
	cachedRoot := filepath.Join(o.cacheDir, tuf.URLToPath(repo), "root.json")
	// sigstore-go's client overwrites the cached root.json with the root
	// it is given before it walks the rotations, so keep the newest root
	// this cache has verified for the cache-only attempt.
	before, _ := os.ReadFile(cachedRoot)
	if !o.offline {
		tctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		tr, onlineErr := trustedRootFromTUF(tctx, repo, anchor, o, false)
		if onlineErr == nil {
			return tr, nil
		}
		after, _ := os.ReadFile(cachedRoot)
		tr, cacheErr := trustedRootFromTUF(ctx, repo, newestRoot(anchor, before, after), o, true)
		if cacheErr != nil {
			return nil, fmt.Errorf("%w: updating from TUF repository %s: %w; and no usable cache in %s: %w",
				ErrTrustRootUnavailable, repo, onlineErr, o.cacheDir, cacheErr)
		}
		logr.FromContextOrDiscard(ctx).Info("using cached TUF metadata: the repository could not be reached",
			"repository", repo, "cacheDir", o.cacheDir, "error", onlineErr.Error())
		return tr, nil
	}
	tr, err := trustedRootFromTUF(ctx, repo, newestRoot(anchor, before), o, true)
	if err != nil {
		return nil, fmt.Errorf("%w: offline, and no usable cache of TUF repository %s in %s: %w",
			ErrTrustRootUnavailable, repo, o.cacheDir, err)
	}
	return tr, nil
}

// newestRoot returns the TUF root.json with the highest version among
// the candidates that parse (the first candidate when none does).
func newestRoot(candidates ...[]byte) []byte {
	best, bestVersion := candidates[0], int64(-1)
	for _, c := range candidates {
		var r struct {
			Signed struct {
				Version int64 `json:"version"`
			} `json:"signed"`
		}
		if len(c) == 0 || json.Unmarshal(c, &r) != nil {
			continue
		}
		if r.Signed.Version > bestVersion {
			best, bestVersion = c, r.Signed.Version
		}
	}
	return best
}

// trustedRootFromTUF runs one sigstore-go TUF client, anchored in
// anchor: online (the TUF client workflow against the repository) or from
// the cache alone.
func trustedRootFromTUF(ctx context.Context, repo string, anchor []byte, o *tufOptions, fromCache bool) (root.TrustedMaterial, error) {
	opts := &tuf.Options{
		Root:              anchor,
		CachePath:         o.cacheDir,
		RepositoryBaseURL: repo,
		Context:           ctx,
		Fetcher:           &ctxFetcher{ctx: ctx, client: o.client},
	}
	if fromCache {
		ts := filepath.Join(o.cacheDir, tuf.URLToPath(repo), "timestamp.json")
		if _, err := os.Stat(ts); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("the cache is cold (%s does not exist)", ts)
		} else if err != nil {
			return nil, fmt.Errorf("reading the cache: %w", err)
		}
		opts.ForceCache = true
		opts.Fetcher = offlineFetcher{}
	}
	client, err := tuf.New(opts)
	if err != nil {
		return nil, err
	}
	b, err := client.GetTarget(trustedRootTarget)
	if err != nil {
		return nil, err
	}
	return TrustedRootFromJSON(b)
}

// errOffline is what the cache-only fetcher answers.
var errOffline = errors.New("not contacting the TUF repository: cache-only mode")

// offlineFetcher refuses every download, so cache-only mode cannot reach
// the network even when sigstore-go decides the cache needs a refresh.
type offlineFetcher struct{}

func (offlineFetcher) DownloadFile(string, int64, time.Duration) ([]byte, error) {
	return nil, errOffline
}

// ctxFetcher is go-tuf's fetcher with a context, a size limit and the
// error type go-tuf expects for HTTP statuses (a 404 for the next root
// version ends the root rotation walk).
type ctxFetcher struct {
	ctx    context.Context //nolint:containedctx // go-tuf's Fetcher interface takes no context
	client *http.Client
}

func (f *ctxFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, urlPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: urlPath}
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n > maxLength {
			return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is %d bytes, more than the %d expected", urlPath, n, maxLength)}
		}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", urlPath, err)
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is more than the %d bytes expected", urlPath, maxLength)}
	}
	return b, nil
}
