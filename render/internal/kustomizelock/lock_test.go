package kustomizelock

import (
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/openapi"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

var deployment = yaml.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}

// TestSharedWaitsForExclusive: a shared build does not start while an
// exclusive one runs, and finds the default schema loaded after it,
// whatever the exclusive build left.
func TestSharedWaitsForExclusive(t *testing.T) {
	defaultVersion := func() string {
		defer Shared()()
		return openapi.GetSchemaVersion()
	}()
	unlock := Exclusive()
	// What a build with an openapi field leaves in the global schema.
	err := openapi.SetSchema(map[string]string{"path": "schema.json"}, []byte(`{"definitions": {}}`), true)
	if v := openapi.GetSchemaVersion(); err != nil || v == defaultVersion {
		unlock()
		t.Fatalf("setting a custom schema: %v; version %s", err, v)
	}
	got := make(chan struct{})
	go func() {
		defer close(got)
		defer Shared()()
		if v := openapi.GetSchemaVersion(); v != defaultVersion {
			t.Errorf("a shared build has schema version %s, want %s", v, defaultVersion)
		}
		if openapi.SchemaForResourceType(deployment) == nil {
			t.Error("no schema for Deployment in a shared build")
		}
	}()
	select {
	case <-got:
		t.Fatal("a shared build ran while an exclusive one held the lock")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	<-got
}

// TestSharedBuildsOverlap: shared builds hold the lock together.
func TestSharedBuildsOverlap(t *testing.T) {
	first := Shared()
	done := make(chan struct{})
	go func() {
		Shared()()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second shared build waited for the first")
	}
	first()
}
