package render

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pregate/pregate/render/sops"
)

// sopsSecret is a value the sops case's encrypted Secret and files hold.
const sopsSecret = "correct-horse-battery-staple"

// TestRenderDecryptedValuesStayHidden renders the sops case with its key,
// plus a Pod whose image is a decrypted value that is no valid reference:
// the gap quoting it must not show it, and neither may anything else in the
// Result but its objects.
func TestRenderDecryptedValuesStayHidden(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "render", "sops")
	c, opts := readCase(t, dir)
	root := copyTree(t, filepath.Join(dir, c.Src))
	bad := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: apps\nspec:\n  containers:\n    - name: bad\n      image: ${DB_PASSWORD}:not:a:reference\n"
	if err := os.WriteFile(filepath.Join(root, "apps", "bad.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Render(t.Context(), root, filepath.Join(root, "clusters", "prod"), opts...)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	// The objects hold the decrypted values: decryption did happen.
	secret := findObject(t, res.Objects, "Secret/flux-system/cluster-secrets")
	if got := secret.Content["stringData"].(map[string]any)["DB_PASSWORD"]; got != sopsSecret {
		t.Fatalf("cluster-secrets DB_PASSWORD = %v, want it decrypted", got)
	}
	if env := findObject(t, res.Objects, "Secret/flux-system/registry-env"); !strings.Contains(env.Content["data"].(map[string]any)["REGISTRY_PASSWORD"].(string), "Y29ycmVjdC1ob3Jz") {
		t.Errorf("registry-env = %v, want REGISTRY_PASSWORD decrypted", env.Content["data"])
	}
	var gap *Gap
	for i, g := range res.Gaps {
		if strings.Contains(g.Message, sopsSecret) {
			t.Errorf("gap %s shows a decrypted value", g)
		}
		if g.Object == "Pod/apps/bad" {
			gap = &res.Gaps[i]
		}
	}
	if gap == nil || gap.Reason != UnresolvedImageGap || !strings.Contains(gap.Message, `image "***:not:a:reference"`) {
		t.Errorf("the bad Pod's gap = %v, want an UnresolvedImage gap with the value redacted", gap)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), sopsSecret) {
		t.Errorf("the Result's JSON shows a decrypted value:\n%s", b)
	}
}

func findObject(t *testing.T, objs []Object, id string) Object {
	t.Helper()
	for _, o := range objs {
		if o.ID() == id {
			return o
		}
	}
	t.Fatalf("no %s among the rendered objects", id)
	return Object{}
}

// TestRenderDecryptionKeys checks which Kustomizations the keys are asked
// for, once each and only when they have something to decrypt, and that a
// KeysFunc error is a gap, not a failure.
func TestRenderDecryptionKeys(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "render", "sops")
	key := ageKeys(t, dir, "../../sops/age.agekey")
	for _, tc := range []struct {
		name     string
		err      error
		want     []string // the Kustomizations asked for, in order
		wantGaps []string // Object: message of the Encrypted gaps on Kustomizations
		images   int
	}{
		// cluster-config decrypts; apps finds cluster-secrets decrypted.
		{name: "keys", want: []string{"Kustomization/flux-system/cluster-config"}, images: 4},
		// Without keys, apps tries its own for the still encrypted
		// Secret; each failure is a gap on its Kustomization.
		{name: "error", err: errors.New("Secret flux-system/sops-age not found"),
			want: []string{"Kustomization/flux-system/cluster-config", "Kustomization/flux-system/apps"},
			wantGaps: []string{
				"Kustomization/flux-system/apps: reading its decryption keys: Secret flux-system/sops-age not found",
				"Kustomization/flux-system/cluster-config: reading its decryption keys: Secret flux-system/sops-age not found",
			},
			images: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var asked []string
			keys := func(_ context.Context, ks Object) (sops.Keys, error) {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, ks.ID())
				return key, tc.err
			}
			root := copyTree(t, filepath.Join(dir, "src"))
			// flux-system decrypts too, but has nothing encrypted: its
			// keys are not asked for.
			sync := filepath.Join(root, "clusters", "prod", "flux-system", "gotk-sync.yaml")
			b, err := os.ReadFile(sync)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n"...)
			if err := os.WriteFile(sync, b, 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := Render(t.Context(), root, filepath.Join(root, "clusters", "prod"), WithDecryption(keys))
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if diff := cmp.Diff(tc.want, asked); diff != "" {
				t.Errorf("keys asked for (-want +got):\n%s", diff)
			}
			var gaps []string
			for _, g := range res.Gaps {
				if g.Reason == EncryptedGap && strings.HasPrefix(g.Object, "Kustomization/") {
					gaps = append(gaps, g.Object+": "+g.Message)
				}
			}
			if diff := cmp.Diff(tc.wantGaps, gaps); diff != "" {
				t.Errorf("gaps (-want +got):\n%s", diff)
			}
			if len(res.Images) != tc.images {
				t.Errorf("images = %v, want %d", res.Images, tc.images)
			}
		})
	}
}

func TestWithDecryptionNil(t *testing.T) {
	t.Parallel()
	if _, err := Render(t.Context(), t.TempDir(), t.TempDir(), WithDecryption(nil)); err == nil {
		t.Error("Render(WithDecryption(nil)) succeeded, want an error")
	}
}

func TestVarRefs(t *testing.T) {
	t.Parallel()
	for text, want := range map[string][]varRef{
		"plain text":             nil,
		"${A}":                   {{name: "A"}},
		"x-${A:=a}-$B":           {{name: "A", op: ":="}}, // Flux reads ${VAR} only
		"${A^^}":                 {{name: "A", op: "^^", transformed: true}},
		"${#A}":                  {{name: "A", op: "#", transformed: true}},
		"${A:0:7}":               {{name: "A", op: ":", transformed: true}},
		"${A:-${B}}":             {{name: "A", op: ":-"}, {name: "B"}},
		"${A/x/${B}}":            {{name: "A", op: "/", transformed: true}, {name: "B", transformed: true}},
		"${A:-${B,,}}":           {{name: "A", op: ":-"}, {name: "B", op: ",,", transformed: true}},
		"${A:-${B:-${C//a/b}}}z": {{name: "A", op: ":-"}, {name: "B", op: ":-"}, {name: "C", op: "//", transformed: true}},
		"${unclosed":             nil,
	} {
		if diff := cmp.Diff(want, varRefs(text), cmp.AllowUnexported(varRef{})); diff != "" {
			t.Errorf("varRefs(%q) (-want +got):\n%s", text, diff)
		}
	}
}

// TestPostBuildVarsUnknown checks that a variable hidden in an encrypted
// object is unknown, and that later sources win either way, as in Flux.
func TestPostBuildVarsUnknown(t *testing.T) {
	t.Parallel()
	encrypted := map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "enc", "namespace": "ns"},
		"stringData": map[string]any{"X": "ENC[AES256_GCM,data:eA==,iv:,tag:,type:str]", "Z": "ENC[AES256_GCM,data:eg==,iv:,tag:,type:str]"},
		"sops":       map[string]any{"mac": "ENC[AES256_GCM,data:bWFj,iv:,tag:,type:str]"}}
	generated := map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "gen", "namespace": "ns"},
		// "W=ENC[…]" from an envs file that was not decrypted.
		"data": map[string]any{"W": "RU5DW0FFUzI1Nl9HQ00sZGF0YTplQT09LGl2OnRhZzp0eXBlOnN0cl0=", "V": "dg=="}}
	plain := map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "plain", "namespace": "ns"},
		"data":     map[string]any{"X": "1", "Y": "2"}}
	pool := newVarPool([]map[string]any{encrypted, generated, plain})
	ks := map[string]any{"apiVersion": kustomizeGroup + "/v1", "kind": "Kustomization",
		"metadata": map[string]any{"name": "apps", "namespace": "ns"},
		"spec": map[string]any{"postBuild": map[string]any{
			"substituteFrom": []any{
				map[string]any{"kind": "ConfigMap", "name": "plain"},
				map[string]any{"kind": "Secret", "name": "enc"},
				map[string]any{"kind": "Secret", "name": "gen"},
			},
			"substitute": map[string]any{"Z": "3"},
		}}}
	var opened []string
	open := func(obj map[string]any) (map[string]any, string) {
		opened = append(opened, Object{Content: obj}.ID())
		return obj, "SOPS-encrypted; no key given"
	}
	v, _, err := pool.vars(unit{ks: ks}, open)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"Y": "2", "Z": "3", "V": "v"}, v.known); diff != "" {
		t.Errorf("known (-want +got):\n%s", diff)
	}
	wantUnknown := map[string]unknownVar{
		"X": {where: "Secret/ns/enc (SOPS-encrypted; no key given)", reason: EncryptedGap},
		"W": {where: "Secret/ns/gen (SOPS-encrypted; no key given)", reason: EncryptedGap},
	}
	if diff := cmp.Diff(wantUnknown, v.unknown, cmp.AllowUnexported(unknownVar{})); diff != "" {
		t.Errorf("unknown (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Secret/ns/enc", "Secret/ns/gen"}, opened); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
	subs := v.substitutions()
	if subs["X"] != "${X}" || subs["W"] != "${W}" || subs["Y"] != "2" {
		t.Errorf("substitutions = %v, want X and W as references to themselves", subs)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	d := newDecryption(nil)
	d.rememberObject(
		map[string]any{"kind": "Secret", "metadata": map[string]any{"name": "ENC[n]"},
			"data": map[string]any{"a": "ENC[a]"}, "stringData": map[string]any{"b": "ENC[b]", "c": "same"}},
		map[string]any{"kind": "Secret", "metadata": map[string]any{"name": "cluster-secrets"},
			"data": map[string]any{"a": "c2VjcmV0LXRva2Vu"}, "stringData": map[string]any{"b": "hunter22", "c": "same", "d": "abc"}})
	d.rememberFile([]byte("A=ENC[x]\n"), []byte("A=line-value\n"))
	d.rememberFile([]byte(`{"token": "ENC[x]", "n": 1}`), []byte("{\n  \"token\": \"json-value\",\n  \"n\": 1\n}\n"))
	for msg, want := range map[string]string{
		"token secret-token, b hunter22, d abc, c same": "token ***, b ***, d abc, c same",
		"Secret/flux-system/cluster-secrets":            "Secret/flux-system/cluster-secrets",
		"env: A=line-value; value line-value":           "env: ***; value ***",
		"base64 c2VjcmV0LXRva2Vu":                       "base64 ***",
		"json: json-value.":                             "json: ***.",
	} {
		if got := d.redact(msg); got != want {
			t.Errorf("redact(%q) = %q, want %q", msg, got, want)
		}
	}
	err := &Error{Path: "apps", Object: "Kustomization/ns/apps", Err: errors.New("value hunter22 rejected")}
	got := d.redactErr(err)
	var re *Error
	if !errors.As(got, &re) || re.Object != "Kustomization/ns/apps" || strings.Contains(got.Error(), "hunter22") {
		t.Errorf("redactErr = %v, want an *Error without the value", got)
	}
	if plain := errors.New("nothing secret"); d.redactErr(plain) != plain { //nolint:errorlint // the very error, not a wrapper
		t.Error("redactErr changed an error without decrypted values")
	}
}
