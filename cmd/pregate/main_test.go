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
	// Tests stay on loopback: a request for any other host (a chart
	// repository a fixture names) goes to a proxy that refuses it.
	for _, v := range []string{"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		os.Setenv(v, "http://127.0.0.1:9") //nolint:usetesting // as above
	}
	for _, v := range []string{"NO_PROXY", "no_proxy"} {
		os.Unsetenv(v) //nolint:usetesting // as above
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
