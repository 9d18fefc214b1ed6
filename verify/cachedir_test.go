package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
)

const dirTTL = 10 * time.Minute

// Tests of the Cache's dir, in the package: they call Cache.result and
// Cache.known as a Verifier does, with a compute function that counts its
// calls. (TestCache_dir, in cache_test.go, goes through Verifiers.)

// warnings collects what a Cache reports to WithCacheWarnings.
type warnings struct {
	mu   sync.Mutex
	errs []error
}

func (w *warnings) add(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.errs = append(w.errs, err)
}

func (w *warnings) list() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.errs)
}

// checkWarnings checks that w holds n warnings, each saying want.
func checkWarnings(t *testing.T, w *warnings, n int, want string) {
	t.Helper()
	errs := w.list()
	if len(errs) != n {
		t.Errorf("%d warnings, want %d: %v", len(errs), n, errs)
		return
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("warning %q, want one saying %q", err, want)
		}
	}
}

// dirFixture is a cache dir, the clock of the Caches on it, and one
// subject whose result is res.
type dirFixture struct {
	dir   string
	clock *clocktesting.FakePassiveClock
	res   Result
	calls atomic.Int64 // of compute
}

const (
	dirFP      = "fp"
	dirSubject = "registry.example/app@sha256:abababababababababababababababababababababababababababababababab"
	dirKey     = dirFP + "\x00" + dirSubject
)

func newDirFixture(t *testing.T) *dirFixture {
	t.Helper()
	return &dirFixture{
		dir:   filepath.Join(t.TempDir(), "cache"),
		clock: clocktesting.NewFakePassiveClock(time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)),
		res:   fullResult(),
	}
}

// cache returns a new Cache on the fixture's dir, as a new process has.
func (f *dirFixture) cache(t *testing.T, opts ...CacheOption) *Cache {
	t.Helper()
	c, err := NewCache(dirTTL, append([]CacheOption{WithCacheDir(f.dir), WithCacheClock(f.clock)}, opts...)...)
	if err != nil {
		t.Fatalf("NewCache() = %v", err)
	}
	return c
}

func (f *dirFixture) compute(context.Context) Result {
	f.calls.Add(1)
	return f.res
}

// result asks c for the fixture's result, as a caller with access
// "anonymous" (see Registry.access), and checks it.
func (f *dirFixture) result(t *testing.T, c *Cache) {
	t.Helper()
	res, err := c.result(t.Context(), dirFP, dirSubject, "anonymous", f.compute)
	if err != nil {
		t.Fatalf("result() = %v", err)
	}
	if diff := cmp.Diff(f.res, res, cmp.AllowUnexported(Subject{})); diff != "" {
		t.Errorf("result() (-want +got):\n%s", diff)
	}
}

// checkCalls checks that compute was called n times in all.
func (f *dirFixture) checkCalls(t *testing.T, n int64) {
	t.Helper()
	if got := f.calls.Load(); got != n {
		t.Errorf("compute was called %d times, want %d", got, n)
	}
}

// file returns the file of the fixture's subject.
func (f *dirFixture) file(t *testing.T, c *Cache) string {
	t.Helper()
	if c.dir == nil {
		t.Fatal("the Cache has no dir")
	}
	return c.dir.path(dirKey)
}

// fullResult is a Result with every field set.
func fullResult() Result {
	return Result{
		Policy: "first-party",
		Subject: Subject{
			Ref: "registry.example/app:v1", Repository: "registry.example/app",
			Digest:    "sha256:" + strings.Repeat("ab", 32),
			MediaType: "application/vnd.oci.image.index.v1+json", Size: 1 << 40,
		},
		Status: Verified,
		Detail: `verified by "github" <ci> & co: ✓ ` + "\u2028\x00\t",
		Considered: []Consideration{{
			Artifact: "sha256:" + strings.Repeat("cd", 32), Source: ReferrersStep, ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json", Format: BundleFormat,
			Kind: "signature", Accepted: true, Authority: "github",
			Reason:     "signed by https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
			Signer:     "https://github.com/acme/app (https://token.actions.githubusercontent.com)",
			Conditions: []ConditionValue{{Expression: "predicate.buildDefinition.externalParameters.workflow.ref == 'refs/heads/main'", Value: "true", Holds: true}},
		}, {
			Artifact: "sha256:" + strings.Repeat("ef", 32), Source: SignatureTagStep, Format: SimpleSigningFormat,
			Kind: "signature", Reason: "no certificate",
		}},
		Lookups: []Lookup{{
			Step: ReferrersStep, URL: "https://registry.example/v2/app/referrers/sha256:" + strings.Repeat("ab", 32),
			Status: 200, Found: 2, Err: "a failed lookup, after a verified signature", Duration: 1234567891 * time.Nanosecond, Attempts: 3,
		}, {
			Step: BlobStep, URL: "https://registry.example/v2/app/blobs/sha256:" + strings.Repeat("01", 32),
			Status: 200, Found: 1, Duration: -1, Attempts: 1,
		}},
	}
}

// checkAllSet fails unless every exported field in v is set, every slice
// holds something and its first element is all set: a round trip of v
// tests every field.
func checkAllSet(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				checkAllSet(t, path+"."+f.Name, v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty", path)
			return
		}
		checkAllSet(t, path+"[0]", v.Index(0)) // the others may show zeros
	default:
		if v.IsZero() {
			t.Errorf("%s is not set", path)
		}
	}
}

// TestCacheDir_roundTrip: a Result, its expiry and its access names come
// back from a file as they went in.
func TestCacheDir_roundTrip(t *testing.T) {
	t.Parallel()
	want := &cacheEntry{
		key: dirKey, res: fullResult(),
		created: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC), expires: time.Date(2030, 1, 2, 3, 14, 5, 6, time.UTC),
		access: map[string]bool{"anonymous": true, "4e1f…": true},
	}
	checkAllSet(t, "Result", reflect.ValueOf(want.res))
	b, err := encodeCacheEntry(want)
	if err != nil {
		t.Fatalf("encodeCacheEntry() = %v", err)
	}
	got, err := decodeCacheEntry(dirKey, b)
	if err != nil {
		t.Fatalf("decodeCacheEntry() = %v", err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(cacheEntry{}, Subject{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"version", "key", "created", "expires", "access", "result", "sha256"} {
		if _, ok := env[field]; !ok {
			t.Errorf("the envelope has no %q: %s", field, b)
		}
	}

	// Through two Caches: the second one's result is the first one's.
	f := newDirFixture(t)
	f.result(t, f.cache(t))
	f.result(t, f.cache(t))
	f.checkCalls(t, 1)
}

// TestCacheDir_inexact: a Result JSON cannot carry exactly (a string that
// is not UTF-8) is kept in memory only.
func TestCacheDir_inexact(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	f.res.Detail = "not UTF-8: \xff"
	var w warnings
	c := f.cache(t, WithCacheWarnings(w.add))
	f.result(t, c)
	f.result(t, c)
	f.checkCalls(t, 1)
	checkFiles(t, f.dir, 0)
	f.result(t, f.cache(t))
	f.checkCalls(t, 2)
	checkWarnings(t, &w, 0, "")
}

// TestCacheDir_sharedBetweenProcesses: a Cache on a dir another filled
// answers without computing, and counts a hit; the files are private.
func TestCacheDir_sharedBetweenProcesses(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	var w warnings
	first := f.cache(t, WithCacheWarnings(w.add))
	f.result(t, first)
	second := f.cache(t, WithCacheWarnings(w.add))
	f.result(t, second)
	f.checkCalls(t, 1)
	if diff := cmp.Diff(CacheStats{Hits: 1, Entries: 1}, second.Stats()); diff != "" {
		t.Errorf("Stats() (-want +got):\n%s", diff)
	}
	checkWarnings(t, &w, 0, "")
	checkFiles(t, f.dir, 1)
	checkModes(t, f.dir)
}

// checkFiles checks that dir holds n files (no temporary file is left).
func checkFiles(t *testing.T, dir string, n int) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if len(files) != n {
		t.Errorf("%s holds %d files, want %d: %q", dir, len(files), n, files)
	}
}

// checkModes checks that the directories under dir are 0700, the files
// 0600.
func checkModes(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = fs.ModeDir | 0o700
		}
		if fi.Mode() != want {
			t.Errorf("%s is %s, want %s", p, fi.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCacheDir_expired: a file is kept for its writer's ttl, and no longer
// than the reader's from the computation; then it is a miss, and removed.
func TestCacheDir_expired(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	start := f.clock.Now()
	f.result(t, f.cache(t))

	f.clock.SetTime(start.Add(dirTTL - time.Nanosecond))
	f.result(t, f.cache(t))
	f.checkCalls(t, 1)

	// A reader with a shorter ttl counts it from the computation.
	short, err := NewCache(dirTTL/2, WithCacheDir(f.dir), WithCacheClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	f.result(t, short)
	f.checkCalls(t, 2) // and writes its own, kept for dirTTL/2

	f.clock.SetTime(start.Add(dirTTL - time.Nanosecond + dirTTL/2))
	f.result(t, f.cache(t))
	f.checkCalls(t, 3)

	// Expired, and what replaces it is not stored: the file is removed.
	f.clock.SetTime(f.clock.Now().Add(dirTTL))
	f.res.Status = LookupFailed
	f.result(t, f.cache(t))
	f.checkCalls(t, 4)
	checkFiles(t, f.dir, 0)
}

// TestCacheDir_expiryOrder: a result read from dir, which expires before
// those computed since, is kept in memory as it expires.
func TestCacheDir_expiryOrder(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	start := f.clock.Now()
	f.result(t, f.cache(t)) // expires at start+dirTTL

	f.clock.SetTime(start.Add(dirTTL / 2))
	c := f.cache(t, WithCacheMaxEntries(2))
	other := func(subject string) {
		t.Helper()
		if _, err := c.result(t.Context(), dirFP, subject, "", f.compute); err != nil {
			t.Fatal(err)
		}
	}
	other("registry.example/b@sha256:01") // expires at start+1.5*dirTTL
	f.result(t, c)                        // read: expires at start+dirTTL, first
	other("registry.example/c@sha256:02") // full: drops the result read
	if _, ok := c.get(dirKey); ok {
		t.Error("the Cache dropped another result than the one that expires first")
	}
	f.result(t, c) // read again (and drops b)
	f.checkCalls(t, 3)
	f.clock.SetTime(start.Add(dirTTL))
	if diff := cmp.Diff(CacheStats{Hits: 2, Misses: 2, Evictions: 2, Entries: 1}, c.Stats()); diff != "" {
		t.Errorf("Stats() (-want +got):\n%s", diff)
	}
}

// TestCacheDir_uncacheable: what the Cache does not keep in memory, it
// does not write.
func TestCacheDir_uncacheable(t *testing.T) {
	t.Parallel()
	for _, status := range []Status{LookupFailed, ResolveFailed, NoSignatures, InvalidSignature, ""} {
		f := newDirFixture(t)
		f.res.Status = status // with a failed lookup
		f.result(t, f.cache(t))
		f.result(t, f.cache(t))
		f.checkCalls(t, 2)
		checkFiles(t, f.dir, 0)
	}
}

// TestCacheDir_access: a digest reference is known to a later process
// with credentials that resolved it, and those granted later are written.
func TestCacheDir_access(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	f.result(t, f.cache(t)) // as "anonymous"
	known := func(c *Cache, access string, want bool) {
		t.Helper()
		res, ok := c.known(dirFP, dirSubject, access)
		if ok != want {
			t.Errorf("known(%q) = %t, want %t", access, ok, want)
		}
		if ok && res.Status != f.res.Status {
			t.Errorf("known(%q) = %s, want %s", access, res.Status, f.res.Status)
		}
	}
	c := f.cache(t)
	known(c, "anonymous", true)
	known(c, "robot", false)
	known(c, "", false)
	if _, err := c.result(t.Context(), dirFP, dirSubject, "robot", f.compute); err != nil {
		t.Fatal(err)
	}
	f.checkCalls(t, 1)
	later := f.cache(t)
	known(later, "robot", true)
	known(later, "anonymous", true)
	known(later, "other", false)
	if s := later.Stats(); s.Hits != 2 || s.Misses != 0 {
		t.Errorf("Stats() = %+v, want 2 hits and no miss", s)
	}
}

// TestCacheDir_damaged: a damaged file is a miss, reported once, then
// rewritten with the result computed, which a later Cache is served.
func TestCacheDir_damaged(t *testing.T) {
	t.Parallel()
	write := func(b []byte) func(*testing.T, string, []byte) {
		return func(t *testing.T, p string, _ []byte) {
			t.Helper()
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	other, err := encodeCacheEntry(&cacheEntry{key: dirFP + "\x00registry.example/other@sha256:00", res: fullResult(), expires: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// damage damages file p, whose content was good.
		damage func(t *testing.T, p string, good []byte)
		want   string // in the warning
	}{
		{"empty", write(nil), "empty"},
		{"garbage", write([]byte("\x89PNG\r\n\x1a\n\x00\x00garbage")), "not a cache entry"},
		{"another JSON", write([]byte(`{"hello":"world"}`)), "not a cache entry"},
		{"null", write([]byte(`null`)), "unknown version 0"},
		{"another key", write(other), "another key"},
		{"unknown version", func(t *testing.T, p string, good []byte) {
			write(reversioned(t, good, cacheDirVersion+1))(t, p, good)
		}, fmt.Sprintf("unknown version %d", cacheDirVersion+1)},
		{"a newline appended", func(t *testing.T, p string, good []byte) {
			write(append(slices.Clone(good), '\n'))(t, p, good)
		}, "not in canonical form"},
		{"doubled", func(t *testing.T, p string, good []byte) {
			write(append(slices.Clone(good), good...))(t, p, good)
		}, "not in canonical form"},
		{"too large", write(bytes.Repeat([]byte(" "), maxCacheFileSize+1)), "larger than"},
		{"a directory", func(t *testing.T, p string, _ []byte) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(p, "in-it"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"a symlink", func(t *testing.T, p string, _ []byte) {
			if err := os.Rename(p, p+".elsewhere"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(p)+".elsewhere", p); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newDirFixture(t)
			p, good := f.stored(t)
			tc.damage(t, p, good)
			f.checkIgnoredOnce(t, p, good, tc.want)
		})
	}

	// Some bytes changed, and some truncations, through Caches; every one
	// of them is in TestDecodeCacheEntry_damaged.
	t.Run("bytes changed", func(t *testing.T) {
		t.Parallel()
		f := newDirFixture(t)
		p, good := f.stored(t)
		for i := 0; i < len(good); i += 29 {
			b := slices.Clone(good)
			b[i] ^= 0x20
			write(b)(t, p, good)
			if !f.checkIgnoredOnce(t, p, good, "ignoring cache entry") {
				t.Fatalf("changing byte %d (%q in %q) was not caught", i, good[i], good[max(0, i-20):min(len(good), i+20)])
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		t.Parallel()
		f := newDirFixture(t)
		p, good := f.stored(t)
		for n := 1; n < len(good); n += 31 {
			write(good[:n])(t, p, good)
			if !f.checkIgnoredOnce(t, p, good, "ignoring cache entry") {
				t.Fatalf("truncating to %d bytes was not caught", n)
			}
		}
	})
}

// TestDecodeCacheEntry_damaged: every byte changed, and every truncation,
// fails decodeCacheEntry.
func TestDecodeCacheEntry_damaged(t *testing.T) {
	t.Parallel()
	good, err := encodeCacheEntry(&cacheEntry{
		key: dirKey, res: fullResult(), created: time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC),
		expires: time.Date(2030, 1, 2, 3, 14, 5, 6, time.UTC), access: map[string]bool{"anonymous": true, "4e1f": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeCacheEntry(dirKey, good); err != nil {
		t.Fatalf("decodeCacheEntry() of the good file = %v", err)
	}
	for i := range good {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			b := slices.Clone(good)
			b[i] ^= mask
			if _, err := decodeCacheEntry(dirKey, b); err == nil {
				t.Errorf("byte %d ^ %#x (%q in %q) was not caught", i, mask, good[i], good[max(0, i-20):min(len(good), i+20)])
			}
		}
	}
	for n := range good {
		if _, err := decodeCacheEntry(dirKey, good[:n]); err == nil {
			t.Errorf("truncating to %d bytes was not caught", n)
		}
	}
}

// stored has a Cache store the fixture's result, and returns its file and
// the file's content.
func (f *dirFixture) stored(t *testing.T) (string, []byte) {
	t.Helper()
	c := f.cache(t)
	f.result(t, c)
	p := f.file(t, c)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

// checkIgnoredOnce checks that a new Cache ignores the damaged file p and
// reports it once, computes the result and writes it (good, again), and
// that a Cache after it is served the file. It says whether all went so.
func (f *dirFixture) checkIgnoredOnce(t *testing.T, p string, good []byte, want string) bool {
	t.Helper()
	failed := t.Failed()
	calls := f.calls.Load()
	var w warnings
	f.result(t, f.cache(t, WithCacheWarnings(w.add)))
	f.checkCalls(t, calls+1)
	checkWarnings(t, &w, 1, want)
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, good) {
		t.Errorf("after the miss the file holds %q, %v; want it rewritten, %q", got, err, good)
	}
	f.result(t, f.cache(t))
	f.checkCalls(t, calls+1)
	return failed || !t.Failed()
}

// reversioned returns the file good with its version changed, and its
// sha256 right.
func reversioned(t *testing.T, good []byte, version int) []byte {
	t.Helper()
	var env cacheEnvelope
	if err := json.Unmarshal(good, &env); err != nil {
		t.Fatal(err)
	}
	env.Version = version
	sum, err := envelopeSum(env)
	if err != nil {
		t.Fatal(err)
	}
	env.SHA256 = sum
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCacheDir_damagedReportedOnce: a damage is reported once per Cache,
// however many callers find it, until the entry is rewritten.
func TestCacheDir_damagedReportedOnce(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	first := f.cache(t)
	f.result(t, first)
	p := f.file(t, first)
	damage := func() {
		t.Helper()
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	damage()

	// Many callers at once.
	var w warnings
	c := f.cache(t, WithCacheWarnings(w.add))
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() { f.result(t, c) })
	}
	wg.Wait()
	checkWarnings(t, &w, 1, "ignoring cache entry")

	// A result that is not stored leaves the damage: found again, not
	// reported again.
	damage()
	f.res.Status = LookupFailed
	var w2 warnings
	c = f.cache(t, WithCacheWarnings(w2.add))
	for range 3 {
		f.result(t, c)
	}
	checkWarnings(t, &w2, 1, "ignoring cache entry")

	// Rewritten, then damaged again: reported again. (Another subject
	// drops it from memory, which holds one.)
	f.res.Status = Verified
	var w3 warnings
	c = f.cache(t, WithCacheWarnings(w3.add), WithCacheMaxEntries(1))
	f.result(t, c)
	damage()
	if _, err := c.result(t.Context(), dirFP, "registry.example/b@sha256:01", "", f.compute); err != nil {
		t.Fatal(err)
	}
	f.result(t, c)
	checkWarnings(t, &w3, 2, "ignoring cache entry")
}

// TestCacheDir_concurrent: Caches of several processes read and write the
// same files at once (run it with -race): none reads a part of a file,
// and every result is the one computed.
func TestCacheDir_concurrent(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	var w warnings
	caches := []*Cache{f.cache(t, WithCacheWarnings(w.add)), f.cache(t, WithCacheWarnings(w.add))}
	subjects := []string{dirSubject, "registry.example/b@sha256:01", "registry.example/c@sha256:02"}
	resultOf := func(i int) Result {
		r := fullResult()
		r.Subject.Digest = subjects[i]
		return r
	}
	access := []string{"anonymous", "robot", "ci", "admin"}
	var wg sync.WaitGroup
	for i := range 96 {
		wg.Go(func() {
			c := caches[i%2]
			if i%4 == 3 { // a process of its own
				c = f.cache(t, WithCacheWarnings(w.add))
			}
			s, a := i%len(subjects), access[i%len(access)]
			compute := func(context.Context) Result { f.calls.Add(1); return resultOf(s) }
			res, err := c.result(t.Context(), dirFP, subjects[s], a, compute)
			if err != nil || res.Subject.Digest != subjects[s] {
				t.Errorf("result(%s) = %s, %v", subjects[s], res.Subject.Digest, err)
			}
			if res, ok := c.known(dirFP, subjects[s], a); !ok || res.Subject.Digest != subjects[s] {
				t.Errorf("known(%s, %s) = %s, %t", subjects[s], a, res.Subject.Digest, ok)
			}
		})
	}
	wg.Wait()
	checkWarnings(t, &w, 0, "")
	checkFiles(t, f.dir, len(subjects))

	calls := f.calls.Load()
	later := f.cache(t, WithCacheWarnings(w.add))
	for s := range subjects {
		res, err := later.result(t.Context(), dirFP, subjects[s], "anonymous", f.compute)
		if err != nil || res.Subject.Digest != subjects[s] {
			t.Errorf("later result(%s) = %s, %v", subjects[s], res.Subject.Digest, err)
		}
	}
	f.checkCalls(t, calls)
}

// TestCacheDir_unusable: a dir that cannot be used is reported, and the
// Cache works from memory.
func TestCacheDir_unusable(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		// setup spoils dir, before the Cache, or after it, when given c.
		before, after func(t *testing.T, dir string)
		want          string
	}{
		"cannot be created": {
			before: func(t *testing.T, dir string) { mustTouch(t, filepath.Dir(dir)) }, // its parent is a file
			want:   "not using the cache dir",
		},
		"a file": {
			before: func(t *testing.T, dir string) { mustTouch(t, dir) },
			want:   "not a directory",
		},
		"writable by others": {
			before: func(t *testing.T, dir string) {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, 0o770); err != nil {
					t.Fatal(err)
				}
			},
			want: "writable by others",
		},
		"gone, a file in its place": {
			after: func(t *testing.T, dir string) {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				mustTouch(t, dir)
			},
			want: "writing cache entry",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newDirFixture(t)
			f.dir = filepath.Join(f.dir, "sub")
			if tc.before != nil {
				tc.before(t, f.dir)
			}
			var w warnings
			c := f.cache(t, WithCacheWarnings(w.add))
			if tc.after != nil {
				tc.after(t, f.dir)
			}
			f.result(t, c)
			f.result(t, c)
			f.checkCalls(t, 1)
			// Another subject: a failure to write is reported once.
			if _, err := c.result(t.Context(), dirFP, "registry.example/b@sha256:01", "", f.compute); err != nil {
				t.Fatal(err)
			}
			checkWarnings(t, &w, 1, tc.want)
		})
	}
}

// TestCacheDir_unwritable: entries the Cache cannot write are reported
// once; what is there is still read. The write is blocked by a regular
// file where an entry's directory must go, which holds for root too
// (a read-only mode would not).
func TestCacheDir_unwritable(t *testing.T) {
	t.Parallel()
	f := newDirFixture(t)
	f.result(t, f.cache(t))
	f.checkCalls(t, 1)
	subjects := []string{"registry.example/b@sha256:01", "registry.example/c@sha256:02"}
	store := &dirStore{root: f.dir}
	for _, s := range subjects {
		mustTouch(t, filepath.Dir(store.path(dirFP+"\x00"+s)))
	}
	var w warnings
	c := f.cache(t, WithCacheWarnings(w.add))
	f.result(t, c)
	f.checkCalls(t, 1)
	for _, s := range subjects {
		if _, err := c.result(t.Context(), dirFP, s, "", f.compute); err != nil {
			t.Fatal(err)
		}
	}
	f.checkCalls(t, 3)
	checkWarnings(t, &w, 1, "writing cache entry")
}

// mustTouch creates an empty regular file at p, and its directory.
func mustTouch(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}
