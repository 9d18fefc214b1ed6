package controller

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"golang.org/x/sync/singleflight"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/v1alpha1"
)

// DefaultTrustRefresh is how long loaded trust material is used before it
// is loaded again, when GateReconciler.TrustRefresh is zero.
const DefaultTrustRefresh = time.Hour

// trustCache keeps the trust material of TrustRoots for all Gates. Loading
// it is not free: a TUF client contacts its repository every time (and,
// offline, waits for that to fail before it falls back to its cache), and a
// trusted root is parsed and its keys loaded. So material is loaded once
// per TrustRoot content (the default public-good instance included), shared
// by the reconciles that ask at the same time, and loaded again after the
// refresh period. A changed TrustRoot is new content, loaded at once;
// failures are not kept.
type trustCache struct {
	refresh time.Duration
	now     func() time.Time

	flight singleflight.Group

	mu      sync.Mutex
	entries map[string]trustEntry
}

type trustEntry struct {
	material root.TrustedMaterial
	loaded   time.Time
}

func newTrustCache(refresh time.Duration) *trustCache {
	if refresh <= 0 {
		refresh = DefaultTrustRefresh
	}
	return &trustCache{refresh: refresh, now: time.Now, entries: map[string]trustEntry{}}
}

// source returns load with its results kept in the cache.
func (c *trustCache) source(load config.TrustSource) config.TrustSource {
	return func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
		key := "default"
		if tr != nil {
			b, err := json.Marshal(tr.Spec)
			if err != nil {
				return nil, fmt.Errorf("TrustRoot %q: %w", tr.Name, err)
			}
			key = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		if m, ok := c.get(key); ok {
			return m, nil
		}
		v, err, _ := c.flight.Do(key, func() (any, error) {
			m, err := load(tr)
			if err != nil {
				return nil, err
			}
			c.put(key, m)
			return m, nil
		})
		if err != nil {
			return nil, err
		}
		return v.(root.TrustedMaterial), nil
	}
}

func (c *trustCache) get(key string) (root.TrustedMaterial, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || c.now().Sub(e.loaded) >= c.refresh {
		return nil, false
	}
	return e.material, true
}

// put keeps m under key and forgets material past its refresh period
// (TrustRoots changed or deleted since).
func (c *trustCache) put(key string, m root.TrustedMaterial) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for k, e := range c.entries {
		if now.Sub(e.loaded) >= c.refresh {
			delete(c.entries, k)
		}
	}
	c.entries[key] = trustEntry{material: m, loaded: now}
}
