package controller

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pregate/pregate/render"
)

// TestRenderDefaults_remoteBases: every Gate renders remote bases as the
// controller's --no-remote-bases says: fetched by default, as
// kustomize-controller does, else a gap naming the flag, without a
// request. No control plane needed.
func TestRenderDefaults_remoteBases(t *testing.T) {
	t.Parallel()
	const remoteImage = "ghcr.io/acme/infra:1.0"
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		_, _ = io.WriteString(w, "apiVersion: v1\nkind: Pod\nmetadata: {name: infra}\nspec: {containers: [{name: infra, image: "+remoteImage+"}]}\n")
	}))
	t.Cleanup(srv.Close)
	for _, noRemoteBases := range []bool{false, true} {
		// One at a time: the server's requests are counted for each.
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "kustomization.yaml"), []byte("resources: ["+srv.URL+"/infra.yaml]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := requests.Load()
		r := &GateReconciler{NoRemoteBases: noRemoteBases}
		res, err := render.Render(t.Context(), root, root, r.renderDefaults()...)
		fetched := requests.Load() > before
		if noRemoteBases {
			want := "kustomization.yaml refers to remote " + srv.URL + "/infra.yaml; remote bases are disabled by pregate controller --no-remote-bases"
			if err == nil || !strings.HasSuffix(err.Error(), want) || fetched {
				t.Errorf("NoRemoteBases: Render() = %v, fetched %v; want an error ending %q, no request", err, fetched, want)
			}
			continue
		}
		if err != nil || len(res.Images) != 1 || res.Images[0].Ref != remoteImage || !fetched {
			t.Errorf("remote bases on: Render() = %+v, %v, fetched %v; want %s fetched", res, err, fetched, remoteImage)
		}
	}
}
