package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// A Cache with WithCacheDir keeps each result it stores in a file of its
// own too, for the Caches of later processes:
//
//	<dir>/<h[:2]>/<h>.json    h: hex SHA-256 of the key (fingerprint NUL repository@digest)
//
// holding one line of compact JSON, the envelope:
//
//	{"version":2,"key":"…","created":"…","expires":"…","access":["…"],"result":{…},"sha256":"…"}
//
// created and expires are RFC 3339 times in UTC; access are the access
// names of the credentials that resolved the subject (see Cache.known:
// "anonymous" or a SHA-256 of the credentials, never a secret), sorted;
// result is the Result's JSON; and
// sha256 is the hex SHA-256 of the envelope as it would be with sha256
// empty. A file is read only if it is exactly what encoding it again gives
// (json.Marshal of the decoded envelope, sha256 included) and its sha256
// matches: any changed byte, truncation or addition fails one check or the
// other. Files are written whole to a temporary file in the same directory
// and renamed into place, so readers, in this process or another, see the
// old file or the new one, never a part.
const (
	// cacheDirVersion is the envelope's version. Change it when the
	// envelope's or Result's JSON changes: entries of another version are
	// ignored, then overwritten.
	cacheDirVersion = 4
	// maxCacheFileSize bounds what is read of, and written to, one file. A
	// Result is a few KiB.
	maxCacheFileSize = 1 << 20
)

// errInexact says a Result's JSON does not decode to the Result (a string
// that is not UTF-8): it is kept in memory only.
var errInexact = errors.New("the result does not round-trip through JSON")

// WithCacheDir keeps the Cache's results in files under dir as well as in
// memory, so that a Cache of a later process (`pregate check --cache-dir`)
// has them: on a miss in memory the Cache reads dir, and each result it
// stores, and each access it grants, it writes there. The key, the ttl and
// what is stored are the Cache's (see Cache); a result read from dir is
// kept until the earliest of its writer's expiry, its computation plus
// this Cache's ttl, and now plus this Cache's ttl. Several processes may
// share dir.
//
// dir is created (0700) if it does not exist. A dir that cannot be
// created, or that users other than its owner may write to, is not used
// (anyone who can write to it can make any image pass); the Cache then
// works from memory alone. A file that cannot be read, is damaged, holds
// another key, or is of another version is a miss, then overwritten. Each
// of these, and a failure to write, is reported to WithCacheWarnings'
// function, never an error: the Cache verifies instead.
//
// The files are checked against damage, not forgery: dir must be as
// trusted as pregate's configuration. Do not restore it from a less
// trusted source, such as a CI cache that pull requests can write.
func WithCacheDir(dir string) CacheOption {
	return func(o *cacheOptions) error {
		if dir == "" {
			return errors.New("cache dir must not be empty")
		}
		o.dir = dir
		return nil
	}
}

// WithCacheWarnings sets the function told of what goes wrong with the
// dir of WithCacheDir: an unusable dir, an entry ignored (once per
// damaged file, however many callers find it), the first failure to
// write. Calls are made one
// at a time, from any goroutine. By default warnings are dropped.
func WithCacheWarnings(warn func(error)) CacheOption {
	return func(o *cacheOptions) error {
		if warn == nil {
			return errors.New("cache warnings function must not be nil")
		}
		o.warn = warn
		return nil
	}
}

// cacheEnvelope is the content of a cache file (see cacheDirVersion).
type cacheEnvelope struct {
	Version int             `json:"version"`
	Key     string          `json:"key"`
	Created time.Time       `json:"created"`
	Expires time.Time       `json:"expires"`
	Access  []string        `json:"access"`
	Result  json.RawMessage `json:"result"`
	SHA256  string          `json:"sha256"`
}

// entryError says why the file of an entry cannot be used.
type entryError struct {
	file fs.FileInfo // what Lstat said of the file, nil if it could not
	err  error
}

func (e *entryError) Error() string { return e.err.Error() }
func (e *entryError) Unwrap() error { return e.err }

// fileOf returns the file an entryError in err's chain is about, if any.
func fileOf(err error) fs.FileInfo {
	if e, ok := errors.AsType[*entryError](err); ok {
		return e.file
	}
	return nil
}

// sameVersion says whether a and b, from Lstat, are the same file with the
// same content, as far as they tell. Two nils are.
func sameVersion(a, b fs.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// dirStore reads and writes the files of a Cache's dir.
type dirStore struct {
	root string
}

// openDirStore creates dir if need be and checks that it is a directory
// only its owner may write to.
func openDirStore(dir string) (*dirStore, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("finding cache dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating cache dir: %w", err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("reading cache dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("cache dir %s is not a directory", root)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("cache dir %s is writable by others (%s): its results could be forged", root, fi.Mode().Perm())
	}
	return &dirStore{root: root}, nil
}

// path returns the file of key.
func (s *dirStore) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(s.root, h[:2], h+".json")
}

// load returns the entry stored for key, nil if there is none or it
// expired at now for a Cache whose ttl is ttl (a file expired for its
// writer too is removed). The error says why a file there cannot be used.
func (s *dirStore) load(key string, now time.Time, ttl time.Duration) (*cacheEntry, error) {
	p := s.path(key)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		// Nothing there. (Something in the way of its directory fails the
		// write, which is reported.)
		return nil, nil
	}
	if err != nil {
		return nil, &entryError{err: fmt.Errorf("ignoring cache entry: %w", err)}
	}
	b, err := readCacheFile(p, fi)
	if err != nil {
		return nil, &entryError{file: fi, err: fmt.Errorf("ignoring cache entry %s: %w", p, err)}
	}
	e, err := decodeCacheEntry(key, b)
	if err != nil {
		return nil, &entryError{file: fi, err: fmt.Errorf("ignoring cache entry %s: %w", p, err)}
	}
	written := e.expires
	e.expires = keptUntil(e, now, ttl)
	if !now.Before(e.expires) {
		if !now.Before(written) { // expired for its writer too
			removeIfSame(p, fi)
		}
		return nil, nil
	}
	return e, nil
}

// keptUntil is when an entry read from a file expires for a Cache whose
// ttl is ttl, at now: the earliest of the writer's expiry, the
// computation plus ttl, and now plus ttl.
func keptUntil(e *cacheEntry, now time.Time, ttl time.Duration) time.Time {
	t := e.expires
	for _, u := range []time.Time{e.created.Add(ttl), now.Add(ttl)} {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// readCacheFile reads the file p, of which Lstat said fi, if it is a
// regular file of at most maxCacheFileSize bytes.
func readCacheFile(p string, fi fs.FileInfo) ([]byte, error) {
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening: %w", err)
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCacheFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(b) > maxCacheFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxCacheFileSize)
	}
	return b, nil
}

// removeIfSame removes the file p if it is still the one fi describes (a
// process may have written a fresh one since).
func removeIfSame(p string, fi fs.FileInfo) {
	if now, err := os.Lstat(p); err == nil && os.SameFile(fi, now) {
		_ = os.Remove(p)
	}
}

// save writes e to its file, replacing what is there.
func (s *dirStore) save(e *cacheEntry) error {
	b, err := encodeCacheEntry(e)
	if err != nil {
		return err
	}
	p := s.path(e.key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("writing cache entry: %w", err)
	}
	if err := writeFileAtomic(p, b); err != nil {
		return fmt.Errorf("writing cache entry %s: %w", p, err)
	}
	return nil
}

// writeFileAtomic writes b to a temporary file (0600) next to p and renames
// it to p. What was at p is replaced, a directory too.
func writeFileAtomic(p string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", f.Name(), err)
	}
	err = os.Rename(f.Name(), p)
	if fi, lerr := os.Lstat(p); err != nil && lerr == nil && fi.IsDir() {
		// A directory cannot be renamed over: what is in it is no entry.
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing the directory in the way: %w", err)
		}
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		return fmt.Errorf("renaming into place: %w", err)
	}
	return nil
}

// encodeCacheEntry returns the content of e's file.
func encodeCacheEntry(e *cacheEntry) ([]byte, error) {
	res, err := json.Marshal(e.res)
	if err != nil {
		return nil, fmt.Errorf("encoding the result: %w", err)
	}
	if back, err := decodeResult(res); err != nil || !sameResult(e.res, back) {
		return nil, errInexact
	}
	env := cacheEnvelope{
		Version: cacheDirVersion, Key: e.key, Created: e.created.UTC(), Expires: e.expires.UTC(),
		Access: accessList(e.access), Result: res,
	}
	if env.SHA256, err = envelopeSum(env); err != nil {
		return nil, err
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encoding the cache entry: %w", err)
	}
	if len(b) > maxCacheFileSize {
		return nil, fmt.Errorf("the cache entry is larger than %d bytes", maxCacheFileSize)
	}
	return b, nil
}

// decodeCacheEntry returns the entry of key that b, a file's content,
// holds, if it is whole and for key.
func decodeCacheEntry(key string, b []byte) (*cacheEntry, error) {
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	var env cacheEnvelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("not a cache entry: %w", err)
	}
	if env.Version != cacheDirVersion {
		return nil, fmt.Errorf("unknown version %d, want %d", env.Version, cacheDirVersion)
	}
	if env.Key != key {
		return nil, fmt.Errorf("holds the entry of another key (%.100q)", env.Key)
	}
	if err := checkEnvelope(env, b); err != nil {
		return nil, err
	}
	res, err := decodeResult(env.Result)
	if err != nil {
		return nil, err
	}
	e := &cacheEntry{key: key, res: res, created: env.Created, expires: env.Expires, access: map[string]bool{}}
	for _, a := range env.Access {
		e.access[a] = true
	}
	return e, nil
}

// checkEnvelope checks that b, from which env was decoded, is env's
// canonical encoding and that env's sha256 is its sum.
func checkEnvelope(env cacheEnvelope, b []byte) error {
	canonical, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("encoding the cache entry again: %w", err)
	}
	if !bytes.Equal(canonical, b) {
		return errors.New("not in canonical form")
	}
	sum, err := envelopeSum(env)
	if err != nil {
		return err
	}
	if sum != env.SHA256 {
		return fmt.Errorf("sha256 mismatch: the content sums to %.12s…, the file says %.12s…", sum, env.SHA256)
	}
	return nil
}

// envelopeSum returns the hex SHA-256 of env's encoding with SHA256 empty.
func envelopeSum(env cacheEnvelope) (string, error) {
	env.SHA256 = ""
	b, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("encoding the cache entry: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// decodeResult decodes a Result's JSON, refusing fields a Result does not
// have.
func decodeResult(b []byte) (Result, error) {
	var res Result
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return Result{}, fmt.Errorf("decoding the result: %w", err)
	}
	return res, nil
}

// sameResult says whether a and b are the same Result as far as JSON can
// tell: empty slices are nil ones, and Subject.named is not the Result's.
func sameResult(a, b Result) bool {
	norm := func(r Result) Result {
		r.Subject.named = false
		if len(r.Considered) == 0 {
			r.Considered = nil
		}
		if len(r.Lookups) == 0 {
			r.Lookups = nil
		}
		return r
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// accessList returns the names in access, sorted, never nil.
func accessList(access map[string]bool) []string {
	out := make([]string, 0, len(access))
	for a := range access {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}
