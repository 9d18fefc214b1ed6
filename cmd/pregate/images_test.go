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

const monorepo = "../../render/testdata/render/monorepo/src"

func TestImagesCmd_json(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"images", monorepo + "/clusters/prod", "--root", monorepo, "-o", "json"}, &stdout, &stderr)
	// The HelmRelease hides images: the list is printed, and the command
	// fails closed.
	if code != exitUndecided {
		t.Fatalf("exit code = %d, want %d; stderr: %s", code, exitUndecided, stderr.String())
	}
	var doc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Source     struct {
			Path          string `json:"path"`
			SourceRef     string `json:"sourceRef"`
			SourceRefFrom string `json:"sourceRefFrom"`
		} `json:"source"`
		Images []struct {
			Ref       string `json:"ref"`
			Mutable   bool   `json:"mutable"`
			Locations []struct {
				File   string   `json:"file"`
				Object string   `json:"object"`
				Path   string   `json:"path"`
				Chain  []string `json:"chain"`
			} `json:"locations"`
		} `json:"images"`
		Gaps []struct {
			Reason string `json:"reason"`
			Object string `json:"object"`
			File   string `json:"file"`
		} `json:"gaps"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	if doc.APIVersion != "pregate.dev/v1alpha1" || doc.Kind != "ImageList" {
		t.Errorf("apiVersion/kind = %s/%s, want pregate.dev/v1alpha1/ImageList", doc.APIVersion, doc.Kind)
	}
	// No --source-ref: the source is the one flux bootstrap's
	// Kustomization applies the path with, and the report says so.
	if doc.Source.Path != "clusters/prod" || doc.Source.SourceRef != "GitRepository/flux-system/flux-system" || doc.Source.SourceRefFrom != "Kustomization/flux-system/flux-system" {
		t.Errorf("source = %+v", doc.Source)
	}
	var refs []string
	for _, img := range doc.Images {
		refs = append(refs, img.Ref)
	}
	want := []string{"ghcr.io/acme/frontend:3.2.1", "ghcr.io/acme/sidecar:1.0.0", "ghcr.io/acme/worker:2.0.0", "ghcr.io/stefanprodan/podinfo:6.7.1"}
	if diff := cmp.Diff(want, refs); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	worker := doc.Images[2].Locations[0]
	wantChain := []string{"Kustomization/flux-system/flux-system", "Kustomization/flux-system/apps", "Kustomization/flux-system/team-a"}
	if worker.File != "teams/a/worker.yaml" || worker.Object != "StatefulSet/team-a/worker" || !cmp.Equal(worker.Chain, wantChain) {
		t.Errorf("worker location = %+v", worker)
	}
	if len(doc.Gaps) != 2 || doc.Gaps[0].Reason != "OtherSource" || doc.Gaps[1].Reason != "HelmRelease" {
		t.Errorf("gaps = %+v, want OtherSource and HelmRelease", doc.Gaps)
	}
}

func TestImagesCmd_text(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"images", monorepo + "/clusters/prod", "--root", monorepo, "--allow-gap", "HelmRelease"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code = %d, want %d; stderr: %s", code, exitOK, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"IMAGE", "ghcr.io/stefanprodan/podinfo:6.7.1", "podinfo (spec.template.spec.containers[0])",
		"Kustomization/flux-system/team-a", "Cycle",
		"HelmRelease/ingress-nginx/ingress-nginx", "4 images (4 by tag only) in 4 places, 4 of 6 Flux Kustomizations rendered, 0 of 1 HelmRelease rendered, 2 coverage gaps",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestImagesCmd_exitCodes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args     []string
		code     int
		inStderr string
	}{
		// The OtherSource gap is informational: one gap blocks, not two.
		"a gap fails closed": {
			args: []string{"images", monorepo + "/clusters/prod", "--root", monorepo},
			code: exitUndecided, inStderr: "images not seen: 1 blocking coverage gap (HelmRelease); --allow-gap KIND lets a kind through",
		},
		"--strict is deprecated and changes nothing": {
			args: []string{"images", monorepo + "/clusters/prod", "--root", monorepo, "--strict", "--allow-gap", "HelmRelease"},
			code: exitOK,
		},
		"unknown gap kind": {
			args: []string{"images", monorepo + "/clusters/prod", "--root", monorepo, "--allow-gap", "Helm"},
			code: exitUndecided, inStderr: `--allow-gap "Helm": want one of HelmRelease, RemoteBase, BuildFailed, MissingPath, SubstituteFromMissing, UnresolvedImage, Encrypted, AdmissionUnpredicted`,
		},
		"malformed YAML names the file": {
			args: []string{"images", "../../render/testdata/render/malformed-yaml/src/app", "--root", "../../render/testdata/render/malformed-yaml/src"},
			code: exitUndecided, inStderr: "app/broken.yaml: MalformedYAMLError",
		},
		"broken kustomization names the file": {
			args: []string{"images", "../../render/testdata/render/kustomization-error/src/app", "--root", "../../render/testdata/render/kustomization-error/src"},
			code: exitUndecided, inStderr: "app/missing.yaml",
		},
		"missing path": {
			args: []string{"images", "does-not-exist"},
			code: exitUndecided, inStderr: "does-not-exist",
		},
		"path outside the root": {
			args: []string{"images", "../../render", "--root", monorepo},
			code: exitUndecided, inStderr: "is not inside the source root",
		},
		"bad source ref": {
			args: []string{"images", monorepo, "--root", monorepo, "--source-ref", "GitRepository/x"},
			code: exitUndecided, inStderr: "--source-ref",
		},
		"bad output format": {
			args: []string{"images", monorepo, "-o", "yaml"},
			code: exitUndecided, inStderr: "must be text or json",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code = %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.inStderr)
			}
		})
	}
}

func TestImagesCmd_kustomizationFile(t *testing.T) {
	t.Parallel()
	const dir = "../../render/testdata/render/postbuild"
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"images", dir + "/src/app", "--root", dir + "/src",
		"--kustomization-file", dir + "/kustomization.yaml", "--substitute-from", dir + "/cluster.yaml", "--allow-gap", "UnresolvedImage", "-o", "json"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code = %d; stderr: %s", code, stderr.String())
	}
	for _, want := range []string{`"ref": "registry.example.com/team/app:1.2.3"`, `"ref": "mirror.example.com/sidecar:2.0.0"`, `"reason": "UnresolvedImage"`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

// TestImagesCmd_rootOutsideWorkTree: a Flux repository unpacked from a
// tarball (no .git) is rendered from the current directory when PATH is
// inside it, so that its Kustomizations' paths, relative to the
// repository's root, resolve.
func TestImagesCmd_rootOutsideWorkTree(t *testing.T) {
	repo := t.TempDir() // not in a git work tree
	files := map[string]string{
		"clusters/prod/apps.yaml": `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: apps, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps/prod
  prune: true
  sourceRef: {kind: GitRepository, name: flux-system}
`,
		"apps/prod/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: ghcr.io/acme/web:1.0}]
`,
	}
	for name, content := range files {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(repo)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"images", "clusters/prod"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit code = %d, want %d; stderr: %s\n%s", code, exitOK, stderr.String(), stdout.String())
	}
	if !strings.Contains(stdout.String(), "ghcr.io/acme/web:1.0") {
		t.Errorf("the Kustomization's image is not listed:\n%s", stdout.String())
	}
}
