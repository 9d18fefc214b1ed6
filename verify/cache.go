package verify

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
)

// DefaultCacheMaxEntries bounds a Cache unless WithCacheMaxEntries says
// otherwise. A Result holds no artifact content (its considerations and
// lookups are a few KiB at most), so a full Cache holds tens of MiB at
// worst.
const DefaultCacheMaxEntries = 10_000

// Cache shares the results of verification between Verifiers, such as the
// ones a controller makes for each reconcile of each Gate: a digest checked
// against a policy is checked again only when its result has expired. Give
// it to each Verifier with WithCache. It is safe for concurrent use.
//
// What it holds, and for how long:
//
//   - Results, keyed by the policy's Fingerprint and the subject's
//     repository@digest, each for the Cache's ttl from when it was
//     computed. A policy without a Fingerprint is never cached.
//   - Only results that a retry cannot change: Verified and StaticFail
//     results, and any other status whose lookups all succeeded. A result
//     that is LookupFailed or ResolveFailed, or that is not Verified while
//     a lookup failed (the signature or attestation may be where the
//     lookup could not read), is handed to the callers that were waiting
//     for it and then forgotten: the next call verifies again.
//   - At most max entries (DefaultCacheMaxEntries): storing one more drops
//     the oldest.
//
// What it does not hold: tag to digest resolution, which each Verifier
// does itself once per lifetime (tags move, and resolving with the
// Verifier's own Registry is what proves the Verifier's credentials can
// read the image: a result is only ever looked up by a digest the asking
// Verifier resolved, or that a Verifier with the same credentials resolved
// while the result is kept); and discoveries, which carry the artifacts'
// content (up to MiBs each) and stay in the Verifier that made them.
//
// Identical verifications in flight at the same time, from any Verifiers,
// are made once: the first caller's Verifier discovers and checks, the
// others wait for its result. If the context of the caller whose
// verification it is ends, its result is neither stored nor handed out:
// the callers whose contexts are live verify again, with their own
// Verifiers.
//
// A result is as fresh as its ttl: an image signed after a failed check,
// a revoked key or a refreshed trust root with an unchanged Fingerprint
// are seen once the result expires. (Authorities that check certificates
// at the current time, keyless with IgnoreTlog and without
// SignedTimestamps, give results that depend on the clock; the Cache
// keeps them for ttl like any other.)
//
// With WithCacheDir, results also go to files in a directory, where the
// Caches of later processes find them: the same keys, ttl and choice of
// what is stored, across runs of `pregate check`.
type Cache struct {
	ttl   time.Duration
	max   int
	clock clock.PassiveClock
	dir   *dirStore   // nil: memory only
	warn  func(error) // see WithCacheWarnings

	flight singleflight.Group
	// writeMu orders the writes of dir, so that the last one written is
	// the entry as it was last.
	writeMu sync.Mutex

	warnMu      sync.Mutex
	warned      map[string]fs.FileInfo // by key, the file last reported (nil: unknown)
	writeFailed bool                   // a failure to write was reported

	mu        sync.Mutex
	entries   map[string]*list.Element // of *cacheEntry, by key
	order     *list.List               // soonest to expire first: oldest first, but for results read from dir
	hits      uint64
	misses    uint64
	evictions uint64
}

type cacheEntry struct {
	key     string
	res     Result
	created time.Time
	expires time.Time
	// access are the credentials (Registry.access) that resolved the
	// subject while the result is kept: a Verifier with the same ones may
	// have the result of a digest reference without resolving it again.
	access map[string]bool
}

// CacheStats are a Cache's counters. Hits, Misses and Evictions only grow.
// They count the calls that reach the Cache: a Verifier asks it at most
// once per policy and digest (then it remembers the answer itself), and
// never for a policy without a Fingerprint. A call whose context ends
// before it has a result counts in neither Hits nor Misses.
type CacheStats struct {
	// Hits counts calls answered without verifying: by a stored result,
	// or by joining another caller's verification in flight.
	Hits uint64
	// Misses counts calls that verified (discovered and checked), whether
	// or not the result could be stored.
	Misses uint64
	// Evictions counts results dropped, unexpired, to make room.
	Evictions uint64
	// Entries is how many unexpired results the Cache holds.
	Entries int
}

// CacheOption configures a Cache.
type CacheOption func(*cacheOptions) error

type cacheOptions struct {
	clock clock.PassiveClock
	max   int
	dir   string
	warn  func(error)
}

// WithCacheClock sets the clock that dates results. The default is the
// real clock.
func WithCacheClock(c clock.PassiveClock) CacheOption {
	return func(o *cacheOptions) error {
		if c == nil {
			return errors.New("clock must not be nil")
		}
		o.clock = c
		return nil
	}
}

// WithCacheMaxEntries bounds how many results the Cache holds; storing one
// more drops the oldest. It must be positive. The default is
// DefaultCacheMaxEntries.
func WithCacheMaxEntries(n int) CacheOption {
	return func(o *cacheOptions) error {
		if n <= 0 {
			return fmt.Errorf("max entries must be positive, got %d", n)
		}
		o.max = n
		return nil
	}
}

// NewCache returns a Cache that keeps each result for ttl, which must be
// positive.
func NewCache(ttl time.Duration, opts ...CacheOption) (*Cache, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("invalid cache: ttl must be positive, got %s", ttl)
	}
	o := &cacheOptions{clock: clock.RealClock{}, max: DefaultCacheMaxEntries, warn: func(error) {}}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("invalid cache option: %w", err)
		}
	}
	c := &Cache{
		ttl: ttl, max: o.max, clock: o.clock, warn: o.warn,
		warned: map[string]fs.FileInfo{}, entries: map[string]*list.Element{}, order: list.New(),
	}
	if o.dir != "" {
		dir, err := openDirStore(o.dir)
		if err != nil {
			c.warn(fmt.Errorf("not using the cache dir: %w", err))
		}
		c.dir = dir
	}
	return c, nil
}

// Stats returns the Cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(c.clock.Now())
	return CacheStats{Hits: c.hits, Misses: c.misses, Evictions: c.evictions, Entries: len(c.entries)}
}

// result returns the result of checking the subject repository@digest
// (subject) against the policy with fingerprint fp: a stored one, the one
// another caller is computing, or compute's. The caller resolved the
// subject with the credentials access ("" when it cannot name them), which
// the stored result remembers (see known). The error is ctx's, when it
// ended first; compute's result is then neither stored nor returned.
func (c *Cache) result(ctx context.Context, fp, subject, access string, compute func(context.Context) Result) (Result, error) {
	key := fp + "\x00" + subject
	store := func(res Result) {
		if storable(res) {
			c.put(key, res, access)
		}
	}
	res, computed, err := joinFlight(ctx, &c.flight, key, c.await, func() (Result, bool) { return c.lookup(key) }, compute, store)
	if err != nil {
		return Result{}, err
	}
	c.count(!computed)
	c.grant(key, access)
	return cloneResult(res), nil
}

// known returns the stored result of checking subject against the policy
// with fingerprint fp, if a caller with the credentials access resolved
// the subject while it is kept: the result of a digest reference, which
// such a caller need not resolve again to prove it can read it.
func (c *Cache) known(fp, subject, access string) (Result, bool) {
	if access == "" {
		return Result{}, false
	}
	key := fp + "\x00" + subject
	res, ok := c.lookup(key)
	if !ok {
		return Result{}, false
	}
	c.mu.Lock()
	el, ok := c.entries[key]
	ok = ok && el.Value.(*cacheEntry).access[access]
	c.mu.Unlock()
	if !ok {
		return Result{}, false
	}
	c.count(true)
	return cloneResult(res), true
}

// grant records that credentials access resolved the subject of the
// result stored under key, if any, in dir too.
func (c *Cache) grant(key, access string) {
	if access == "" || !c.addAccess(key, access) {
		return
	}
	c.persist(key)
}

// addAccess adds access to the entry of key, if any, and says whether it
// is new there.
func (c *Cache) addAccess(key, access string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return false
	}
	e := el.Value.(*cacheEntry)
	if e.access[access] {
		return false
	}
	if e.access == nil {
		e.access = map[string]bool{}
	}
	e.access[access] = true
	return true
}

// await waits for a shared verification, or for ctx to end. It stays a
// frame of its own: tests find the callers waiting in a Cache by it.
//
//go:noinline
func (c *Cache) await(ctx context.Context, ch <-chan singleflight.Result) (any, error) {
	return awaitFlight(ctx, ch)
}

// storable says whether res is one a retry cannot change (see Cache).
func storable(res Result) bool {
	switch res.Status {
	case Verified, StaticFail:
		// Verified: more artifacts cannot take a verified signature away.
		// StaticFail: decided without looking at the registry.
		return true
	case LookupFailed, ResolveFailed, "":
		return false
	}
	for _, l := range res.Lookups {
		if l.Failed() {
			return false
		}
	}
	return true
}

// lookup returns the unexpired result stored under key, in memory or else
// in dir (it is then kept in memory too).
func (c *Cache) lookup(key string) (Result, bool) {
	if res, ok := c.get(key); ok {
		return res, true
	}
	if c.dir == nil {
		return Result{}, false
	}
	e, err := c.dir.load(key, c.clock.Now(), c.ttl)
	if err != nil {
		c.warnEntry(key, err)
		return Result{}, false
	}
	if e == nil {
		return Result{}, false
	}
	return c.adopt(e), true
}

// get returns the unexpired result stored in memory under key.
func (c *Cache) get(key string) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return Result{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.clock.Now().Before(e.expires) {
		c.remove(el)
		return Result{}, false
	}
	return e.res, true
}

// put stores res, whose subject credentials access resolved, under key
// for the ttl, in memory (see insert) and in dir.
func (c *Cache) put(key string, res Result, access string) {
	now := c.clock.Now()
	e := &cacheEntry{key: key, res: res, created: now, expires: now.Add(c.ttl), access: map[string]bool{}}
	if access != "" {
		e.access[access] = true
	}
	c.mu.Lock()
	c.insert(e, now)
	c.mu.Unlock()
	c.persist(key)
}

// adopt keeps in memory e, read from dir, unless an unexpired result is
// there already (stored meanwhile), and returns the result it keeps.
func (c *Cache) adopt(e *cacheEntry) Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if el, ok := c.entries[e.key]; ok && now.Before(el.Value.(*cacheEntry).expires) {
		return el.Value.(*cacheEntry).res
	}
	c.insert(e, now)
	return e.res
}

// insert stores e in memory, in place of the entry of its key, dropping
// the results expired at now and then, if the Cache is full, those that
// expire first (the oldest). c.mu is held.
func (c *Cache) insert(e *cacheEntry, now time.Time) {
	if el, ok := c.entries[e.key]; ok {
		c.remove(el)
	}
	c.expire(now)
	for len(c.entries) >= c.max {
		c.remove(c.order.Front())
		c.evictions++
	}
	if el := c.lastBy(e.expires); el != nil {
		c.entries[e.key] = c.order.InsertAfter(e, el)
	} else {
		c.entries[e.key] = c.order.PushFront(e)
	}
}

// lastBy returns the last entry that expires no later than t: the back,
// unless t is a result's read from dir. c.mu is held.
func (c *Cache) lastBy(t time.Time) *list.Element {
	el := c.order.Back()
	for el != nil && t.Before(el.Value.(*cacheEntry).expires) {
		el = el.Prev()
	}
	return el
}

// persist writes the entry of key, as it is in memory, to dir.
func (c *Cache) persist(key string) {
	if c.dir == nil {
		return
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	e, ok := c.snapshot(key)
	if !ok {
		return // dropped meanwhile
	}
	if err := c.dir.save(e); err != nil && !errors.Is(err, errInexact) { // inexact: kept in memory only
		c.warnWrite(err)
	}
}

// snapshot returns a copy of the entry of key in memory.
func (c *Cache) snapshot(key string) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := *el.Value.(*cacheEntry)
	e.access = maps.Clone(e.access)
	return &e, true
}

// warnEntry reports err, about the file of key, unless it was reported
// about that file as it is: once per damaged file, however many callers
// find it.
func (c *Cache) warnEntry(key string, err error) {
	file := fileOf(err)
	c.warnMu.Lock()
	defer c.warnMu.Unlock()
	if prev, ok := c.warned[key]; ok && sameVersion(prev, file) {
		return
	}
	c.warned[key] = file
	c.warn(err)
}

// warnWrite reports err, a failure to write to dir, if it is the first:
// the others most likely have its cause.
func (c *Cache) warnWrite(err error) {
	c.warnMu.Lock()
	defer c.warnMu.Unlock()
	if c.writeFailed {
		return
	}
	c.writeFailed = true
	c.warn(err)
}

// expire drops the results expired at now, oldest first. c.mu is held.
func (c *Cache) expire(now time.Time) {
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		if now.Before(el.Value.(*cacheEntry).expires) {
			return
		}
		c.remove(el)
	}
}

// remove drops one entry. c.mu is held.
func (c *Cache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).key)
	c.order.Remove(el)
}

func (c *Cache) count(hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hit {
		c.hits++
	} else {
		c.misses++
	}
}

// cloneResult copies the slices of a shared result, so that no caller can
// change what another sees.
func cloneResult(r Result) Result {
	r.Considered = slices.Clone(r.Considered)
	r.Lookups = slices.Clone(r.Lookups)
	return r
}
