package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

// goroutineStacks returns the stack of every goroutine, one per element,
// as runtime.Stack prints them.
func goroutineStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// countStacks returns how many goroutines' stacks match.
func countStacks(match func(stack string) bool) int {
	n := 0
	for _, g := range goroutineStacks() {
		if match(g) {
			n++
		}
	}
	return n
}

// calls reports whether stack has a frame of the method fn
// ("verify.(*Cache).result") called on recv. A traceback prints the
// receiver first, followed by "?" when it may be stale (a receiver the
// method no longer needs); fn must be a method that keeps using recv.
func calls(stack, fn string, recv any) bool {
	prefix := fmt.Sprintf("%s(%p", fn, recv)
	for _, line := range strings.Split(stack, "\n") {
		if _, rest, ok := strings.Cut(line, prefix); ok {
			rest = strings.TrimPrefix(rest, "?")
			if strings.HasPrefix(rest, ",") || strings.HasPrefix(rest, ")") {
				return true
			}
		}
	}
	return false
}

// waitUntil polls cond every millisecond until it holds, and fails the
// test if it does not within 10 seconds; what says what was awaited.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		<-tick.C
	}
}

// waitForRequest waits until the Front got a request for path.
func waitForRequest(t *testing.T, f *verifytest.Front, path string) {
	t.Helper()
	waitUntil(t, "the registry got a request for "+path, func() bool { return f.Count(path) > 0 })
}

// waitForJoiners waits until n callers of v.Explain wait for a lookup
// shared in v (resolve, discover or check), whether theirs or another's.
// Request counts alone cannot show that callers overlapped: one that
// arrives after the first call ended finds v's memo instead. A caller
// waits in verify.(*Verifier).await under its own Explain frame, which
// names v; the goroutines that make the shared lookups have no Explain
// frame (they run Explain's closures, "Explain.func…").
func waitForJoiners(t *testing.T, v *verify.Verifier, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d callers wait for a lookup shared in the Verifier", n), func() bool {
		return countStacks(func(g string) bool {
			return strings.Contains(g, "verify.(*Verifier).await(") && calls(g, "verify.(*Verifier).Explain", v)
		}) >= n
	})
}

// waitForCacheWaiters waits until n callers wait in c for a verification
// in flight (the one whose verification it is included). Every caller that
// reaches the cache waits in verify.(*Cache).await, under
// verify.(*Cache).result, whose frame names c.
func waitForCacheWaiters(t *testing.T, c *verify.Cache, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d callers wait in the cache", n), func() bool {
		return countStacks(func(g string) bool {
			return strings.Contains(g, "verify.(*Cache).await(") && calls(g, "verify.(*Cache).result", c)
		}) >= n
	})
}

// cancelFirstCaller has two callers share a lookup: first makes the
// request for paths matching pattern, which the Front holds; second calls
// once it has arrived, and joined waits until second has joined first's
// lookup. Then first's context is cancelled, first returns, and the
// request is let go. It checks that first failed with context.Canceled,
// and returns what second returned.
func cancelFirstCaller[T any](t *testing.T, f *verifytest.Front, pattern string,
	first, second func(context.Context) (T, error), joined func(),
) (T, error) {
	t.Helper()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	f.On(pattern, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		verifytest.Block(release)(w, r, next)
	})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var firstErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, firstErr = first(ctx)
	}()
	<-arrived
	var res T
	var err error
	var wg sync.WaitGroup
	wg.Go(func() { res, err = second(t.Context()) })
	joined()
	cancel()
	<-done
	close(release)
	wg.Wait()
	if !errors.Is(firstErr, context.Canceled) {
		t.Errorf("the cancelled caller got %v, want context.Canceled", firstErr)
	}
	return res, err
}
