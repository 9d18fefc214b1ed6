package e2e

// The e2e tests drive real binaries: pregate itself and the tools it is
// tested against (cosign). `make test` builds each one and names it in an
// environment variable; a test that needs one and does not find it fails,
// saying how to get it, rather than skipping and hiding the gap.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// e2eBinary returns the absolute path of the binary the environment
// variable env names, or fails the test saying how to build it: target
// (the make invocation that builds it, into path) or `make test`, which
// builds every binary the e2e tests need and sets the variables.
func e2eBinary(t testing.TB, env, what, target, path string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: this test runs %s. Run it with `make test`, which builds it and sets %s; "+
			"or run `%s` and set %s=%s", env, what, env, target, env, path)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("%s=%q: %v", env, p, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err != nil:
		t.Fatalf("%s=%q: %v; `%s` builds it (or run `make test`)", env, p, err, target)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		t.Fatalf("%s=%q is not an executable file; `%s` builds it (or run `make test`)", env, p, target)
	}
	return abs
}

// binaryRun is one finished run of a binary.
type binaryRun struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r binaryRun) String() string {
	return "$ " + strings.Join(r.args, " ") + "\nexit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// runBinary runs bin with args in dir with exactly the environment env
// (nothing is inherited), bounded by timeout, and returns what it printed
// and its exit code. It fails the test if the binary could not be run or
// was killed.
func runBinary(t testing.TB, timeout time.Duration, dir string, env []string, bin string, args ...string) binaryRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := binaryRun{args: append([]string{filepath.Base(bin)}, args...), stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running %s: %v (timeout %s)\n%s", strings.Join(r.args, " "), err, timeout, r)
	}
	return r
}

// offlineBinary runs one binary offline: in dir, with only env (see
// offlineEnv), each run checked against the network sentinel.
type offlineBinary struct {
	bin      string
	dir      string
	env      []string
	sentinel *networkSentinel
}

// run runs the binary with args and fails the test if the run sent a
// request off the machine (the sentinel refused it, so the run may have
// gone on without what it wanted).
func (b *offlineBinary) run(t testing.TB, args ...string) binaryRun {
	t.Helper()
	before := len(b.sentinel.Requests())
	r := runBinary(t, offlineTimeout, b.dir, b.env, b.bin, args...)
	if reqs := b.sentinel.Requests()[before:]; len(reqs) > 0 {
		t.Errorf("%s tried to reach the network (refused by the test's proxy):\n%s\n%s", strings.Join(r.args, " "), strings.Join(reqs, "\n"), r)
	}
	return r
}

// offlineTimeout bounds one run of a binary under test; against loopback
// servers each takes well under a second.
const offlineTimeout = 2 * time.Minute

// offlineEnv returns a minimal environment for a binary under test: home,
// config, cache and temporary directories under root, and every HTTP(S)
// proxy variable pointing at sentinel, so that any request to a
// non-loopback host is refused by, and recorded in, the sentinel (Go never
// proxies loopback addresses, so the test registries are reached
// directly). Nothing of the caller's environment is inherited: no
// credentials, no user configuration, no COSIGN_* or SIGSTORE_* variables.
func offlineEnv(t testing.TB, root string, sentinel *networkSentinel) []string {
	t.Helper()
	dirs := map[string]string{
		"HOME":            "home",
		"XDG_CONFIG_HOME": "home/.config",
		"XDG_CACHE_HOME":  "home/.cache",
		"XDG_DATA_HOME":   "home/.local/share",
		"DOCKER_CONFIG":   "docker",
		"TMPDIR":          "tmp",
	}
	var env []string
	for k, d := range dirs {
		p := filepath.Join(root, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, k+"="+p)
	}
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		env = append(env, k+"="+sentinel.URL())
	}
	slices.Sort(env)
	return env
}

// networkSentinel is a loopback HTTP proxy that refuses every request and
// records it: the binaries under test are pointed at it, and a request it
// saw is one that would have left the machine.
type networkSentinel struct {
	srv *httptest.Server

	mu   sync.Mutex
	seen []string
}

func newNetworkSentinel(t testing.TB) *networkSentinel {
	t.Helper()
	s := &networkSentinel{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.Host+r.URL.Path)
		s.mu.Unlock()
		http.Error(w, "e2e: this test runs offline", http.StatusForbidden)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the proxy URL to put in HTTP(S)_PROXY.
func (s *networkSentinel) URL() string { return s.srv.URL }

// Requests returns the requests the sentinel refused, in order.
func (s *networkSentinel) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}
