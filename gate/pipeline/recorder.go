package pipeline

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// recorder is the gate's Verifier: it verifies with a verify.Verifier,
// keeps each whole Result for the shells (the gate itself needs only the
// finding), and reports progress.
type recorder struct {
	verifier *verify.Verifier
	progress func(Progress)

	mu           sync.Mutex
	results      []verify.Result
	left         map[string]int // image → verifications still to come
	resolvedRefs map[string]bool
	p            Progress
}

// newRecorder counts the verifications each image needs under cfg.
func newRecorder(cfg gate.Config, images []gate.Image, progress func(Progress)) *recorder {
	r := &recorder{progress: progress, left: map[string]int{}, resolvedRefs: map[string]bool{}}
	for _, img := range images {
		n := 0
		for _, p := range cfg.Policies {
			if p.Matches(img.Ref) {
				n++
			}
		}
		if n > 0 && r.left[img.Ref] == 0 {
			r.left[img.Ref] = n
			r.p.Total++
		}
	}
	return r
}

// Verify implements gate.Verifier.
func (r *recorder) Verify(ctx context.Context, image string, policy gate.Policy) (gate.Finding, error) {
	res, err := r.verifier.Check(ctx, image, policy)
	if err != nil {
		return gate.Finding{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
	if r.left[image]--; r.left[image] == 0 {
		r.p.Verified++
		r.report()
	}
	return res.Finding(), nil
}

// resolved is told by the verifier of each reference it resolved.
func (r *recorder) resolved(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.left[ref] == 0 || r.resolvedRefs[ref] {
		return
	}
	r.resolvedRefs[ref] = true
	r.p.Resolved++
	r.report()
}

// report tells the progress function; r.mu is held.
func (r *recorder) report() {
	if r.progress != nil {
		r.progress(r.p)
	}
}

// sorted returns the results by image, then policy.
func (r *recorder) sorted() []verify.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.results)
	slices.SortFunc(out, func(a, b verify.Result) int {
		return cmp.Or(cmp.Compare(a.Subject.Ref, b.Subject.Ref), cmp.Compare(a.Policy, b.Policy))
	})
	if out == nil {
		out = []verify.Result{}
	}
	return out
}
