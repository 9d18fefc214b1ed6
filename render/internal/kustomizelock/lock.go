// Package kustomizelock guards kustomize's process-wide OpenAPI schema, the
// one piece of global state a kustomize build reads.
//
// fluxcd/pkg/kustomize's Build resets the schema before and after every
// build and serialises builds with a lock of its own, as
// kustomize-controller does for each Kustomization; that is what a build
// that sets a schema of its own (a kustomization's openapi field) needs, and
// parsing the schema is most of the time of a small build. A build that sets
// none only reads the default schema, so such builds can share one parsed
// copy and run at the same time.
//
// Every in-process kustomize build holds this lock: Shared for a build that
// reads the default schema, Exclusive for one that may set or reset it.
package kustomizelock

import (
	"sync"

	"sigs.k8s.io/kustomize/kyaml/openapi"
)

var (
	mu sync.RWMutex
	// ready says the default schema is loaded and nothing has changed it
	// since. Written with mu held for writing.
	ready bool
)

// Shared locks for a build that reads the default schema and sets none,
// loading the schema first if an exclusive build reset it. Builds holding
// Shared run at the same time. It returns the unlock function.
func Shared() (unlock func()) {
	for {
		mu.RLock()
		if ready {
			return mu.RUnlock
		}
		mu.RUnlock()
		mu.Lock()
		if !ready {
			openapi.ResetOpenAPI()
			_ = openapi.Schema()
			ready = true
		}
		mu.Unlock()
	}
}

// Exclusive locks for a build that may set or reset the schema (one with an
// openapi field, or fluxcd/pkg/kustomize's Build, which resets it). It
// returns the unlock function; the next Shared build loads the default
// schema again.
func Exclusive() (unlock func()) {
	mu.Lock()
	ready = false
	return mu.Unlock
}
