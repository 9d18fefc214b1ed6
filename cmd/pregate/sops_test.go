package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The render package's sops case: cluster-config decrypts a Secret and a
// secretGenerator's files that apps substitutes from.
const (
	sopsTree   = "../../render/testdata/render/sops/src"
	sopsAgeKey = "../../render/testdata/sops/age.agekey"
	// sopsSecret is a value the tree's encrypted Secret and files hold.
	sopsSecret = "correct-horse-battery-staple"
)

// imagesJSON runs pregate images on the sops tree with extra flags and
// returns the exit code, the image refs and gap reasons it lists, and its
// output.
func imagesJSON(t *testing.T, extra ...string) (code int, refs, gaps []string, out string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := append([]string{"images", sopsTree + "/clusters/prod", "--root", sopsTree, "-o", "json"}, extra...)
	code = run(t.Context(), args, &stdout, &stderr)
	var doc struct {
		Images []struct {
			Ref string `json:"ref"`
		} `json:"images"`
		Gaps []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"gaps"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	for _, img := range doc.Images {
		refs = append(refs, img.Ref)
	}
	for _, g := range doc.Gaps {
		gaps = append(gaps, g.Reason+": "+g.Message)
	}
	return code, refs, gaps, stdout.String() + stderr.String()
}

func TestImagesCmd_sopsAgeKey(t *testing.T) {
	t.Parallel()
	code, refs, gaps, out := imagesJSON(t, "--sops-age-key", sopsAgeKey)
	if code != exitOK {
		t.Fatalf("exit code = %d, want %d; gaps: %v", code, exitOK, gaps)
	}
	want := []string{"ghcr.io/acme/proxy:1.0.0", "ghcr.io/acme/web:1.2.0",
		"mirror.prod.internal.example/worker:2.0.0", "registry.prod.internal.example/api:3.1.0"}
	if diff := cmp.Diff(want, refs); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if strings.Contains(out, sopsSecret) {
		t.Errorf("the output shows a decrypted value:\n%s", out)
	}
}

func TestImagesCmd_sopsNoKey(t *testing.T) {
	t.Parallel()
	code, refs, gaps, _ := imagesJSON(t)
	if code != exitUndecided {
		t.Errorf("exit code = %d, want %d", code, exitUndecided)
	}
	// The images that use no encrypted value are listed.
	if diff := cmp.Diff([]string{"ghcr.io/acme/proxy:1.0.0", "ghcr.io/acme/web:1.2.0"}, refs); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if len(gaps) != 3 || !strings.Contains(gaps[0], "${CLUSTER_DOMAIN} from Secret/flux-system/cluster-secrets (SOPS-encrypted; no key given)") {
		t.Errorf("gaps = %q, want 3 Encrypted gaps, the first naming ${CLUSTER_DOMAIN} and its Secret", gaps)
	}
	if code, _, _, _ := imagesJSON(t, "--allow-gap", "Encrypted"); code != exitOK {
		t.Errorf("with --allow-gap Encrypted: exit code = %d, want %d", code, exitOK)
	}
}

func TestImagesCmd_sopsKeyErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notKey := filepath.Join(dir, "not-a-key")
	if err := os.WriteFile(notKey, []byte("AGE-SECRET-KEY-1NOTAKEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args     []string
		inStderr string
	}{
		"missing age key file": {[]string{"--sops-age-key", filepath.Join(dir, "missing")}, "--sops-age-key: open " + filepath.Join(dir, "missing")},
		"not an age key":       {[]string{"--sops-age-key", notKey}, "--sops-age-key " + notKey + ": sops: reading age keys: line 1: not a valid age identity"},
		"not a PGP key":        {[]string{"--sops-pgp-key", sopsAgeKey}, "--sops-pgp-key " + sopsAgeKey + ": sops: reading PGP keys: "},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"images", sopsTree + "/clusters/prod", "--root", sopsTree}, tc.args...)
			if code := run(t.Context(), args, &stdout, &stderr); code != exitUndecided {
				t.Errorf("exit code = %d, want %d", code, exitUndecided)
			}
			if !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.inStderr)
			}
			if strings.Contains(stderr.String(), "NOTAKEY") {
				t.Errorf("stderr quotes the key: %q", stderr.String())
			}
		})
	}
}

// TestImagesCmd_sopsPGPKey: a PGP key is read and used; the tree's files
// are encrypted for age only, so it opens nothing, and the gaps say so.
func TestImagesCmd_sopsPGPKey(t *testing.T) {
	t.Parallel()
	code, _, gaps, _ := imagesJSON(t, "--sops-pgp-key", "../../render/sops/testdata/cli/pgp.asc")
	if code != exitUndecided {
		t.Errorf("exit code = %d, want %d", code, exitUndecided)
	}
	if !strings.Contains(strings.Join(gaps, "\n"), "(SOPS-encrypted; none of the keys given opens it)") {
		t.Errorf("gaps = %q, want them to say no key given opens the Secret", gaps)
	}
}

// TestImagesCmd_sopsAgeKeyFileEnv: without --sops-age-key, the file
// $SOPS_AGE_KEY_FILE names is used, as sops does.
func TestImagesCmd_sopsAgeKeyFileEnv(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", sopsAgeKey)
	if code, refs, gaps, _ := imagesJSON(t); code != exitOK || len(refs) != 4 {
		t.Errorf("exit code = %d, images = %v, gaps = %v; want 0 and 4 images", code, refs, gaps)
	}
}
