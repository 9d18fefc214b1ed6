package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the tests a user cache directory of their own, so that
// check's default --cache-dir never reads or writes the user's.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pregate-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("XDG_CACHE_HOME", dir) //nolint:usetesting // for every test, before any runs
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
