package render

import (
	"context"
	"slices"
	"sync"
)

// Building a unit is most of a render's time, and builds of different
// units are independent but for the substituteFrom objects their variables
// come from. The traversal stays sequential, so results come in the same
// order as a sequential render's; what runs ahead are the builds: when
// the traversal meets the Flux Kustomizations a unit applies, it starts
// building those it will visit, up to workers at a time, and takes each
// result when it gets there. A result holds only if the revision objects
// its variables were read from are still those the pool holds then
// (poolDeps); otherwise, or if it was waiting for an object, the unit is
// built again in place, as a sequential render would build it. A build
// writes nothing to the tree and reports its gaps with its result, so one
// that is not used leaves no trace.

// future is a build started ahead of the traversal.
type future struct {
	u    unit
	done chan struct{}
	b    built
	err  error
}

// aheadBuilds are the builds running ahead of one render.
type aheadBuilds struct {
	ctx    context.Context // done when the render ends
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	byID   map[string]*future // traversal goroutine only
}

func newAheadBuilds(ctx context.Context, workers int) *aheadBuilds {
	ctx, cancel := context.WithCancel(ctx)
	return &aheadBuilds{ctx: ctx, cancel: cancel, sem: make(chan struct{}, workers), byID: map[string]*future{}}
}

// stop cancels the builds still running and waits for them.
func (a *aheadBuilds) stop() {
	a.cancel()
	a.wg.Wait()
}

// buildAhead starts building the units of next, the Flux Kustomizations
// parent applies, that the traversal will build when it visits them as
// things stand.
func (r *renderer) buildAhead(parent unit, next []Object) {
	if r.ahead == nil {
		return
	}
	for _, o := range next {
		u := r.kustomizationUnit(o, parent.chain)
		if !r.sameSource(o) || u.id == parent.id || slices.Contains(parent.chain, u.id) || r.seen[u.id] {
			continue
		}
		if _, ok := r.ahead.byID[u.id]; ok {
			continue
		}
		f := &future{u: u, done: make(chan struct{})}
		r.ahead.byID[u.id] = f
		a := r.ahead
		a.wg.Go(func() {
			defer close(f.done)
			select {
			case a.sem <- struct{}{}:
			case <-a.ctx.Done():
				f.err = a.ctx.Err()
				return
			}
			defer func() { <-a.sem }()
			f.b, f.err = r.build(a.ctx, u)
		})
	}
}

// take returns the build of u: the one made ahead if it is of the same
// unit and the objects its variables came from are unchanged, else a new
// one.
func (r *renderer) take(ctx context.Context, u unit) (built, error) {
	if r.ahead != nil {
		if f, ok := r.ahead.byID[u.id]; ok {
			delete(r.ahead.byID, u.id)
			select {
			case <-f.done:
			case <-ctx.Done():
				return built{}, ctx.Err()
			}
			if sameUnit(f.u, u) && r.pool.current(f.b.deps) {
				return f.b, f.err
			}
		}
	}
	return r.build(ctx, u)
}

// sameUnit says whether a and b are the same render of the same object.
func sameUnit(a, b unit) bool {
	return a.id == b.id && a.partial == b.partial && slices.Equal(a.chain, b.chain)
}
