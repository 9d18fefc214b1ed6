package controller

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pregate/pregate/config/v1alpha1"
)

// TestTrustCache: trust material is loaded once per TrustRoot content for
// every caller, concurrent ones included; changed content is loaded at
// once; after the refresh period it is loaded again; a failed load is not
// kept.
func TestTrustCache(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	c := newTrustCache(time.Hour)
	c.now = func() time.Time { return now }
	var loads atomic.Int32
	var fail atomic.Bool
	release := make(chan struct{})
	src := c.source(func(*v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
		loads.Add(1)
		<-release
		if fail.Load() {
			return nil, errors.New("TUF repository unreachable")
		}
		return &root.BaseTrustedMaterial{}, nil
	})
	tr := func(data string) *v1alpha1.TrustRoot {
		return &v1alpha1.TrustRoot{
			ObjectMeta: metav1.ObjectMeta{Name: "private"},
			Spec:       v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: data}},
		}
	}
	load := func(tr *v1alpha1.TrustRoot) error {
		_, err := src(tr)
		return err
	}

	// Ten reconciles at once: one load.
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { errs[i] = load(tr("v1")) })
	}
	// The first load is held until all ten callers are launched: the
	// others join it, or find its result.
	close(release)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		what      string
		tr        *v1alpha1.TrustRoot
		advance   time.Duration
		fail      bool
		wantLoads int32
		wantErr   bool
	}{
		{what: "ten concurrent callers", tr: tr("v1"), wantLoads: 1},
		{what: "the same content again", tr: tr("v1"), advance: 59 * time.Minute, wantLoads: 1},
		{what: "changed content", tr: tr("v2"), wantLoads: 2},
		{what: "the default instance", tr: nil, wantLoads: 3},
		{what: "after the refresh period", tr: tr("v1"), advance: time.Minute, wantLoads: 4},
		{what: "a failed load", tr: tr("v3"), fail: true, wantLoads: 5, wantErr: true},
		{what: "after a failed load", tr: tr("v3"), wantLoads: 6},
	}
	for _, s := range steps[1:] {
		now = now.Add(s.advance)
		fail.Store(s.fail)
		err := load(s.tr)
		if (err != nil) != s.wantErr {
			t.Errorf("%s: error %v, want error %t", s.what, err, s.wantErr)
		}
		if got := loads.Load(); got != s.wantLoads {
			t.Errorf("%s: %d loads in all, want %d", s.what, got, s.wantLoads)
		}
	}
}
