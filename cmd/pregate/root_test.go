package main

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err        error
		wantCode   int
		wantStderr string
	}{
		"success": {err: nil, wantCode: exitOK},
		"blocked, report already printed": {
			err:      &exitError{code: exitBlocked},
			wantCode: exitBlocked,
		},
		"wrapped exit error": {
			err:        fmt.Errorf("checking: %w", &exitError{code: exitBlocked, err: errors.New("2 images unsigned")}),
			wantCode:   exitBlocked,
			wantStderr: "pregate: checking: 2 images unsigned\n",
		},
		"any other error cannot decide": {
			err:        errors.New("rendering apps: no kustomization.yaml"),
			wantCode:   exitUndecided,
			wantStderr: "pregate: rendering apps: no kustomization.yaml\n",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			if got := exitCode(tc.err, &stderr); got != tc.wantCode || stderr.String() != tc.wantStderr {
				t.Errorf("exitCode(%v) = %d, stderr %q; want %d, stderr %q", tc.err, got, stderr.String(), tc.wantCode, tc.wantStderr)
			}
		})
	}
}
