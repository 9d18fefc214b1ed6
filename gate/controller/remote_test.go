package controller

import (
	"strings"
	"testing"

	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/render/rendertest"
)

// TestRenderDefaults_remoteBases: every Gate renders remote bases as the
// controller's --no-remote-bases says: fetched by default, as
// kustomize-controller does, else a gap naming the flag, without a
// request. No control plane needed.
func TestRenderDefaults_remoteBases(t *testing.T) {
	t.Parallel()
	const remoteImage = "ghcr.io/acme/infra:1.0"
	srv := rendertest.NewFileServer(t, map[string]string{
		"/infra.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: infra}\nspec: {containers: [{name: infra, image: " + remoteImage + "}]}\n",
	})
	for _, noRemoteBases := range []bool{false, true} {
		// One at a time: the server's requests are counted for each.
		root := rendertest.WriteTree(t, map[string]string{"kustomization.yaml": "resources: [" + srv.URL + "/infra.yaml]\n"})
		before := len(srv.Requests())
		r := &GateReconciler{NoRemoteBases: noRemoteBases}
		res, err := render.Render(t.Context(), root, root, r.renderDefaults()...)
		fetched := len(srv.Requests()) > before
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
