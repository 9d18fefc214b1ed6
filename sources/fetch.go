package sources

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/http/fetch"
	fluxtar "github.com/fluxcd/pkg/tar"
	"github.com/opencontainers/go-digest"
)

// ErrArtifactNotFound is returned, wrapped, when the artifact server answers 404 Not Found. The
// error also matches fetch.ErrFileNotFound with errors.Is.
var ErrArtifactNotFound error = artifactNotFoundError{}

type artifactNotFoundError struct{}

func (artifactNotFoundError) Error() string { return "artifact not found (HTTP 404)" }
func (artifactNotFoundError) Unwrap() error { return fetch.ErrFileNotFound }

// Artifact locates a Flux artifact tarball, as published in a Flux source's status.artifact.
type Artifact struct {
	// URL is the http(s) URL of the .tar.gz, as in status.artifact.url.
	URL string
	// Digest is the "<algorithm>:<hex>" digest of the .tar.gz, as in status.artifact.digest. It is
	// required.
	Digest string
	// Revision is status.artifact.revision, carried through to Tree.Revision unchanged.
	Revision string
}

// archiveName is the file name the tarball is downloaded to, in a private temporary directory.
const archiveName = "artifact.tar.gz"

// Fetch downloads a Flux artifact tarball, checks its digest and extracts it safely into dst,
// which must not exist or be an empty directory.
//
// The download is retried on 5xx answers and network errors and is capped in size. Extraction
// uses fluxcd/pkg/tar, which rejects entries whose names escape dst and caps the extracted size;
// Fetch also caps the number of entries and rejects symlinks that point outside the root, hard
// links, devices and named pipes, all of which source-controller never archives. Symlinks that stay
// within the root are dropped, as Flux drops them, and recorded in Tree.Skipped.
//
// On error nothing is left in dst (and dst is removed if Fetch created it). A 404 answer returns
// an error wrapping ErrArtifactNotFound. Errors never contain the URL's userinfo, query or
// fragment.
func Fetch(ctx context.Context, a Artifact, dst string, opts ...Option) (*Tree, error) {
	u, err := parseArtifactURL(a.URL)
	if err != nil {
		return nil, fmt.Errorf("fetching artifact: %w", err)
	}
	source := safeURL(u)
	tree, err := fetchArtifact(ctx, a, source, dst, opts)
	if err != nil {
		return nil, redact(fmt.Errorf("fetching artifact %s: %w", source, err), a.URL, u)
	}
	return tree, nil
}

func fetchArtifact(ctx context.Context, a Artifact, source, dst string, opts []Option) (*Tree, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	if a.Digest == "" {
		return nil, errors.New("missing digest: status.artifact.digest is required")
	}
	if _, err := digest.Parse(a.Digest); err != nil {
		return nil, fmt.Errorf("parsing digest %q: %w", a.Digest, err)
	}
	d, err := prepareDestination(dst)
	if err != nil {
		return nil, err
	}
	skipped, err := downloadAndExtract(ctx, a, d.root, o)
	if err != nil {
		d.cleanup()
		return nil, err
	}
	rev := a.Revision
	if o.revisionSet {
		rev = o.revision
	}
	return &Tree{Root: d.root, Revision: rev, Source: source, Skipped: skipped}, nil
}

func downloadAndExtract(ctx context.Context, a Artifact, root string, o *options) ([]Skipped, error) {
	staging, err := os.MkdirTemp("", "pregate-artifact-")
	if err != nil {
		return nil, fmt.Errorf("creating download directory: %w", err)
	}
	defer os.RemoveAll(staging)

	f := fetch.New(
		fetch.WithRetries(o.retries),
		fetch.WithMaxDownloadSize(int(o.maxDownloadSize)),
		fetch.WithFileName(archiveName),
	)
	if err := f.FetchWithContext(ctx, a.URL, a.Digest, staging); err != nil {
		if errors.Is(err, fetch.ErrFileNotFound) {
			return nil, ErrArtifactNotFound
		}
		return nil, err
	}
	return extract(ctx, filepath.Join(staging, archiveName), root, o)
}

// extract unpacks the gzipped tarball at file into root with fluxcd/pkg/tar, enforcing through
// its filter what the library does not.
func extract(ctx context.Context, file, root string, o *options) ([]Skipped, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("opening downloaded archive: %w", err)
	}
	defer f.Close()

	x := &entryFilter{maxFiles: o.maxFiles}
	// Stop reading as soon as the filter has found a violation: the filter cannot fail Untar.
	r := &ctxReader{ctx: ctx, r: f, abort: func() error { return x.err }}
	err = fluxtar.Untar(r, root, fluxtar.WithMaxUntarSize(int(o.maxSize)), fluxtar.WithFilter(x.filter))
	switch {
	case x.err != nil:
		return nil, fmt.Errorf("extracting archive: %w", x.err)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("extracting archive: %w", ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("extracting archive: %w", err)
	}
	sortSkipped(x.skipped)
	return x.skipped, nil
}

// entryFilter sees every tar entry whose name fluxcd/pkg/tar accepted, before it is written. It
// records the first violation in err and excludes every entry from then on.
type entryFilter struct {
	maxFiles int
	entries  int
	skipped  []Skipped
	err      error
}

// filter implements the fluxcd/pkg/tar filter: true excludes the entry.
func (x *entryFilter) filter(name string, fi os.FileInfo) bool {
	if x.err != nil {
		return true
	}
	h, ok := fi.Sys().(*tar.Header)
	if !ok {
		x.err = fmt.Errorf("entry %q: unexpected header type %T", name, fi.Sys())
		return true
	}
	if h.Typeflag == tar.TypeXGlobalHeader {
		return true // metadata for the whole archive (git archive writes one), not a file
	}
	x.entries++
	if x.entries > x.maxFiles {
		x.err = fmt.Errorf("entry %q exceeds the limit of %d entries", name, x.maxFiles)
		return true
	}
	if !isLocalName(name) {
		x.err = fmt.Errorf("entry %q escapes the root", name)
		return true
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir:
		return false
	case tar.TypeSymlink:
		if linkEscapes(name, h.Linkname) {
			x.err = fmt.Errorf("entry %q is a symlink to %q, outside the root", name, h.Linkname)
		} else {
			x.skipped = append(x.skipped, skippedLink(name, h.Linkname))
		}
	case tar.TypeLink:
		x.err = fmt.Errorf("entry %q is a hard link to %q; hard links are not allowed", name, h.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		x.err = fmt.Errorf("entry %q is a device; only regular files and directories are allowed", name)
	case tar.TypeFifo:
		x.err = fmt.Errorf("entry %q is a named pipe; only regular files and directories are allowed", name)
	default:
		x.err = fmt.Errorf("entry %q has unsupported type %q", name, string(rune(h.Typeflag)))
	}
	return true
}

func parseArtifactURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("missing URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, credentials included: keep only the reason.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parsing URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("unsupported URL scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

// safeURL returns u without userinfo, query or fragment.
func safeURL(u *url.URL) string {
	s := *u
	s.User = nil
	s.RawQuery = ""
	s.ForceQuery = false
	s.Fragment = ""
	s.RawFragment = ""
	return s.String()
}

// redact returns err with every spelling of the URL's secrets (userinfo, query, fragment) removed
// from its message. The libraries below Fetch quote the URL in their errors in several forms.
func redact(err error, raw string, u *url.URL) error {
	if u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		return err
	}
	safe := safeURL(u)
	forms := []string{raw, u.String(), u.Redacted()}
	if _, ok := u.User.Password(); ok {
		// net/http's spelling (stripPassword).
		forms = append(forms, strings.Replace(u.String(), u.User.String()+"@", u.User.Username()+":***@", 1))
	}
	slices.SortFunc(forms, func(a, b string) int { // longest first, so a full form wins over a piece
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	var pairs []string
	for _, f := range slices.Compact(forms) {
		pairs = append(pairs, f, safe)
	}
	if u.User != nil {
		pairs = append(pairs, u.User.String()+"@", "")
	}
	if u.RawQuery != "" {
		pairs = append(pairs, "?"+u.RawQuery, "")
	}
	if u.Fragment != "" {
		pairs = append(pairs, "#"+u.EscapedFragment(), "")
	}
	return &redactedError{err: err, r: strings.NewReplacer(pairs...)}
}

// redactedError hides secrets in the message of the error it wraps.
type redactedError struct {
	err error
	r   *strings.Replacer
}

func (e *redactedError) Error() string { return e.r.Replace(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }
