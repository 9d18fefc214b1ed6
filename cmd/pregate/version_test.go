package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"version", "-o", "json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("pregate version -o json: exit code %d, stderr %q", code, stderr.String())
	}
	var got versionInfo
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("decoding %q: %v", stdout.String(), err)
	}
	if got.Version == "" || got.Commit == "" || got.Go != runtime.Version() {
		t.Errorf("pregate version -o json = %+v, want a version, a commit and go %s", got, runtime.Version())
	}

	stdout.Reset()
	if code := run(t.Context(), []string{"version"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("pregate version: exit code %d, stderr %q", code, stderr.String())
	}
	want := "version: " + got.Version + "\ncommit:  " + got.Commit + "\ngo:      " + got.Go + "\n"
	if stdout.String() != want {
		t.Errorf("pregate version printed %q, want %q", stdout.String(), want)
	}
}

func TestVersionRejectsUnknownFormat(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"version", "-o", "yaml"}, &stdout, &stderr)
	if code != exitUndecided || stdout.Len() != 0 || !strings.Contains(stderr.String(), "must be text or json") {
		t.Errorf("pregate version -o yaml: exit code %d, stdout %q, stderr %q; want exit code %d and a message naming the formats",
			code, stdout.String(), stderr.String(), exitUndecided)
	}
}
