package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/verify/verifytest"
)

func TestCheckCmd_reports(t *testing.T) {
	reg := newSignedRegistry(t)
	dir := manifests(t, reg.signed, reg.unsigned)
	out := t.TempDir()
	summary := filepath.Join(out, "summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	var stdout, stderr bytes.Buffer
	args := append([]string{"check", dir, "--root", dir, "--no-cache", "-o", "junit",
		"--report", "sarif=" + filepath.Join(out, "pregate.sarif"),
		"--report", "json=" + filepath.Join(out, "verdict.json"),
		"--report", "github=" + filepath.Join(out, "annotations.txt"),
	}, reg.flags()...)
	if code := run(t.Context(), args, &stdout, &stderr); code != exitBlocked {
		t.Fatalf("exit code %d, want %d; stderr: %s", code, exitBlocked, stderr.String())
	}
	var suites struct {
		XMLName xml.Name `xml:"testsuites"`
	}
	if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
		t.Errorf("-o junit printed no JUnit document: %v\n%s", err, stdout.String())
	}
	var sarif struct{ Version string }
	readJSON(t, filepath.Join(out, "pregate.sarif"), &sarif)
	if sarif.Version != "2.1.0" {
		t.Errorf("SARIF version %q", sarif.Version)
	}
	var verdict struct{ Kind, Reason string }
	readJSON(t, filepath.Join(out, "verdict.json"), &verdict)
	if verdict.Kind != "Verdict" || verdict.Reason != "NoSignatures" {
		t.Errorf("JSON report %+v", verdict)
	}
	if b := readFile(t, filepath.Join(out, "annotations.txt")); !strings.Contains(b, "::error file=deploy.yaml,line=") || !strings.Contains(b, reg.unsigned) {
		t.Errorf("GitHub annotations lack the unsigned image on its manifest line:\n%s", b)
	}
	// A GitHub report was asked for: the step summary is appended.
	// (Markdown escapes punctuation with backslashes.)
	if b := strings.ReplaceAll(readFile(t, summary), `\`, ""); !strings.Contains(b, "BLOCKED (NoSignatures)") || !strings.Contains(b, "deploy.yaml:17") {
		t.Errorf("step summary lacks the verdict:\n%s", b)
	}
	// Nothing but reports: no temporary files left beside them.
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) != 4 {
		t.Errorf("%s holds %d entries (%v), want the 3 reports and the summary", out, len(entries), err)
	}
}

func TestCheckCmd_reportFlagErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ arg, want string }{
		"no file":        {"sarif", `--report "sarif": want FORMAT=FILE`},
		"empty file":     {"sarif=", `want FORMAT=FILE`},
		"unknown format": {"yaml=out.yaml", "must be text, json, junit, sarif or github"},
		"one file twice": {"json=out", "out is written twice"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := []string{"check", ".", "--images", "ghcr.io/acme/**", "--key", "/nonexistent", "--report", tc.arg}
			if name == "one file twice" {
				args = append(args, "--report", "sarif=out")
			}
			var stdout, stderr bytes.Buffer
			run(t.Context(), args, &stdout, &stderr)
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestCheckCmd_cacheDir(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)
	front := verifytest.NewFront(t, reg.host)
	dir := manifests(t, front.Ref(reg.signed), front.Ref(reg.unsigned))
	cache := t.TempDir()
	check := func(extra ...string) (stdout, stderr string) {
		t.Helper()
		var o, e bytes.Buffer
		args := append([]string{"check", dir, "--root", dir, "--cache-dir", cache}, reg.flags(append([]string{"--images", front.Host() + "/acme/**"}, extra...)...)...)
		if code := run(t.Context(), args, &o, &e); code != exitBlocked {
			t.Fatalf("exit code %d, want %d; stderr: %s", code, exitBlocked, e.String())
		}
		return o.String(), e.String()
	}
	lookups := func() int { return front.CountMatching(`/referrers/|/manifests/sha256-`) }

	cold, _ := check()
	if lookups() == 0 {
		t.Fatal("the cold run looked up no signatures")
	}
	before, resolves := lookups(), front.CountMatching(`/manifests/(1\.0|0\.9)$`)
	warm, stderr := check()
	if lookups() != before {
		t.Errorf("the warm run looked up signatures again: %d lookups, was %d", lookups(), before)
	}
	if front.CountMatching(`/manifests/(1\.0|0\.9)$`) == resolves {
		t.Error("the warm run did not resolve the tags: a tag's digest is never taken from the cache")
	}
	if warm != cold || stderr != "" {
		t.Errorf("the warm run's report differs from the cold run's:\n%s\nvs\n%s\nstderr: %s", warm, cold, stderr)
	}

	// --no-cache reads nothing.
	check("--no-cache")
	if lookups() == before {
		t.Error("--no-cache used the cache")
	}

	// A damaged entry is ignored with a warning and never trusted.
	damaged := 0
	err := filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		damaged++
		return os.WriteFile(p, []byte(`{"version":1,"result":{"status":"Verified"}}`), 0o600)
	})
	if err != nil || damaged == 0 {
		t.Fatalf("damaging %d entries: %v", damaged, err)
	}
	again, stderr := check()
	if again != cold || !strings.Contains(stderr, "warning: verdict cache") {
		t.Errorf("with damaged entries: stderr %q; report:\n%s", stderr, again)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if progressOn(&buf) != nil {
		t.Error("progress on a buffer")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if progressOn(f) != nil {
		t.Error("progress on a regular file")
	}
	if got := progressLine(pipeline.Progress{Total: 200, Resolved: 120, Verified: 80}); got != "\r\033[Kverifying 200 images: 120 resolved, 80 verified" {
		t.Errorf("progress line %q", got)
	}
	if got := progressLine(pipeline.Progress{}); got != "\r\033[K" {
		t.Errorf("the last progress line %q does not clear the line", got)
	}
}

// TestCheckCmd_noProgressWhenPiped: a check whose stderr is not a
// terminal prints nothing there but errors.
func TestCheckCmd_noProgressWhenPiped(t *testing.T) {
	t.Parallel()
	reg := newSignedRegistry(t)
	dir := manifests(t, reg.signed)
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), append([]string{"check", dir, "--root", dir, "--no-cache"}, reg.flags()...), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit code %d; stderr %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want nothing", stderr.String())
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(readFile(t, name)), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
