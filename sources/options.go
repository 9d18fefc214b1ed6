package sources

import (
	"fmt"
	"math"
)

// Default limits. They bound the work a hostile or broken source can cause.
const (
	// DefaultMaxDownloadSize is the default cap on the size of a downloaded artifact tarball (50 MiB).
	DefaultMaxDownloadSize int64 = 50 << 20
	// DefaultMaxSize is the default cap on the total size of the extracted or copied files (256 MiB).
	DefaultMaxSize int64 = 256 << 20
	// DefaultMaxFiles is the default cap on the number of entries (files, directories, links) in a tree.
	DefaultMaxFiles = 20000
	// DefaultRetries is the default number of times a download is retried after a 5xx answer or a
	// network error.
	DefaultRetries = 3
)

// Option configures Fetch and Local.
type Option func(*options) error

type options struct {
	maxDownloadSize int64
	maxSize         int64
	maxFiles        int
	retries         int
	revision        string
	revisionSet     bool
}

func newOptions(opts []Option) (*options, error) {
	o := &options{
		maxDownloadSize: DefaultMaxDownloadSize,
		maxSize:         DefaultMaxSize,
		maxFiles:        DefaultMaxFiles,
		retries:         DefaultRetries,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("invalid option: %w", err)
		}
	}
	return o, nil
}

// WithMaxDownloadSize caps the size in bytes of the downloaded tarball. It must be positive.
// The default is DefaultMaxDownloadSize (50 MiB). Local ignores it.
func WithMaxDownloadSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 || n > math.MaxInt {
			return fmt.Errorf("max download size must be positive, got %d", n)
		}
		o.maxDownloadSize = n
		return nil
	}
}

// WithMaxSize caps the total size in bytes of the files written to the destination. It must be
// positive. The default is DefaultMaxSize (256 MiB).
func WithMaxSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 || n > math.MaxInt {
			return fmt.Errorf("max size must be positive, got %d", n)
		}
		o.maxSize = n
		return nil
	}
}

// WithMaxFiles caps the number of entries (files, directories, symlinks and anything else) in the
// tree. Entries excluded by .sourceignore rules do not count. It must be positive. The default is
// DefaultMaxFiles (20000).
func WithMaxFiles(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max files must be positive, got %d", n)
		}
		o.maxFiles = n
		return nil
	}
}

// WithRetries sets how many times a download is retried after a 5xx answer or a network error.
// Zero disables retries; it must not be negative. The default is DefaultRetries (3). The waits
// between attempts are those of fluxcd/pkg/http/fetch: 5s doubling up to 30s, or the server's
// Retry-After on 429 and 503. Local ignores it.
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("retries must not be negative, got %d", n)
		}
		o.retries = n
		return nil
	}
}

// WithRevision sets Tree.Revision, overriding the revision carried by the artifact (Fetch) or
// detected from git (Local, which then does not read HEAD; it still opens the repository holding
// the directory, once, for its .gitignore files). An empty string records the revision as unknown.
// By default the revision is not overridden.
func WithRevision(rev string) Option {
	return func(o *options) error {
		o.revision = rev
		o.revisionSet = true
		return nil
	}
}
