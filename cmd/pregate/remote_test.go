package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pregate/pregate/render/rendertest"
)

// TestImagesCmd_remoteBases: remote bases are fetched by default, as
// kustomize-controller fetches them; --no-remote-bases and --offline make
// them a gap that says which flag disabled them, without a request.
func TestImagesCmd_remoteBases(t *testing.T) {
	t.Parallel()
	const remoteImage = "ghcr.io/acme/infra:1.0"
	for _, tc := range []struct {
		flags []string
		gap   string // "" when the remote base is fetched
	}{
		{flags: nil},
		{flags: []string{"--no-remote-bases"}, gap: "remote bases are disabled by --no-remote-bases"},
		{flags: []string{"--offline"}, gap: "remote bases are disabled by --offline"},
		{flags: []string{"--offline", "--no-remote-bases"}, gap: "remote bases are disabled by --offline"},
	} {
		t.Run(strings.Join(append([]string{"flags"}, tc.flags...), " "), func(t *testing.T) {
			t.Parallel()
			srv := rendertest.NewFileServer(t, map[string]string{"/infra.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: infra, namespace: shop}\n" +
				"spec: {template: {spec: {containers: [{name: infra, image: " + remoteImage + "}]}}}\n"})
			root := rendertest.WriteTree(t, map[string]string{
				"clusters/prod/apps.yaml": "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\n" +
					"spec: {path: ./apps, sourceRef: {kind: GitRepository, name: flux-system}}\n",
				"apps/kustomization.yaml": "resources:\n  - " + srv.URL + "/infra.yaml\n",
			})
			var stdout, stderr bytes.Buffer
			args := append([]string{"images", filepath.Join(root, "clusters", "prod"), "--root", root, "-o", "json"}, tc.flags...)
			code := run(t.Context(), args, &stdout, &stderr)
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
				t.Fatalf("exit %d, output is not JSON: %v\n%s\nstderr: %s", code, err, stdout.String(), stderr.String())
			}
			fetched := len(srv.Requests()) > 0
			if tc.gap == "" {
				if code != exitOK || len(doc.Images) != 1 || doc.Images[0].Ref != remoteImage || !fetched {
					t.Errorf("exit %d, images %+v, fetched %v; want %s fetched\nstderr: %s", code, doc.Images, fetched, remoteImage, stderr.String())
				}
				return
			}
			if code != exitUndecided || len(doc.Gaps) != 1 || doc.Gaps[0].Reason != "RemoteBase" || !strings.HasSuffix(doc.Gaps[0].Message, tc.gap) {
				t.Errorf("exit %d, gaps %+v; want one RemoteBase gap ending %q", code, doc.Gaps, tc.gap)
			}
			if fetched {
				t.Errorf("%v: the server saw a request", tc.flags)
			}
		})
	}
}
