package render_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pregate/pregate/render"
)

// Fuzz targets for what render reads from a revision: image references,
// YAML/JSON documents and the pod specs in them. Seed corpora are in
// testdata/fuzz/<FuzzName>; `make fuzz` runs each target for FUZZTIME.

const fuzzDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// FuzzParseReference: ParseReference never panics; an error comes with the
// zero Image, and a template leftover is always ErrUnrenderedTemplate; a
// reference it accepts is consistent: Ref is Registry/Repository plus the
// tag and/or digest, and Mutable exactly when there is no digest.
//
// Normalisation is idempotent: ParseReference(img.Ref) gives img again
// (a host canonicalised twice, "x:443:443/a" or "myregistry:443/a", must
// not turn into another registry).
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{
		"nginx",
		"nginx:1.27",
		"library/nginx",
		"docker.io/nginx",
		"DOCKER.IO/nginx",
		"index.docker.io:443/library/nginx:1",
		"registry-1.docker.io/library/nginx",
		"registry.hub.docker.com/library/nginx:1",
		"GHCR.IO/acme/app:1",
		"Ghcr.io/acme/app:1",
		"ghcr.io:443/x",
		"myregistry:443/team/app:1",
		"x:443:443/a",
		"ghcr.io:80/acme/app:1",
		"ghcr.io/Acme/app:1",
		"ghcr.io/acme/app:1.2@" + fuzzDigest,
		"ghcr.io/acme/app@" + fuzzDigest,
		"nginx@" + fuzzDigest,
		"nginx:1.27@" + fuzzDigest,
		"localhost/app:dev",
		"localhost:5000/team/app:v2@" + fuzzDigest,
		"[::1]:5000/app:1",
		"127.0.0.1:5000/app",
		"${IMAGE}",
		"ghcr.io/acme/app:${TAG:=1.0}",
		"$(REGISTRY).io/acme/app:1",
		"{{ .Values.image }}",
		"https://ghcr.io/acme/app:1",
		"nginx:",
		"nginx@sha256:abc",
		"a/b/c/d/e:f",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		img, err := render.ParseReference(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseReference(%q): empty error", raw)
			}
			if !reflect.DeepEqual(img, render.Image{}) {
				t.Fatalf("ParseReference(%q) = %+v with error %v, want the zero Image", raw, img, err)
			}
			if isTemplate(raw) && !errors.Is(err, render.ErrUnrenderedTemplate) {
				t.Fatalf("ParseReference(%q) = %v, want ErrUnrenderedTemplate", raw, err)
			}
			return
		}
		if isTemplate(raw) {
			t.Fatalf("ParseReference(%q) accepted a template leftover: %+v", raw, img)
		}
		checkImage(t, raw, img)
		again, err := render.ParseReference(img.Ref)
		if err != nil || !reflect.DeepEqual(again, img) {
			t.Fatalf("ParseReference(%q) = %+v, but ParseReference(%q) = %+v, %v", raw, img, img.Ref, again, err)
		}
	})
}

// isTemplate reports whether raw holds one of the template openings
// ParseReference documents.
func isTemplate(raw string) bool {
	return strings.Contains(raw, "${") || strings.Contains(raw, "$(") || strings.Contains(raw, "{{")
}

// checkImage checks that an Image's fields agree with each other.
func checkImage(t *testing.T, raw string, img render.Image) {
	t.Helper()
	if img.Registry == "" || img.Repository == "" {
		t.Fatalf("ParseReference(%q) = %+v: no registry or repository", raw, img)
	}
	if img.Tag == "" && img.Digest == "" {
		t.Fatalf("ParseReference(%q) = %+v: neither tag nor digest", raw, img)
	}
	if img.Mutable != (img.Digest == "") {
		t.Fatalf("ParseReference(%q) = %+v: Mutable is %t with digest %q", raw, img, img.Mutable, img.Digest)
	}
	want := img.Registry + "/" + img.Repository
	if img.Tag != "" {
		want += ":" + img.Tag
	}
	if img.Digest != "" {
		want += "@" + img.Digest
	}
	if img.Ref != want {
		t.Fatalf("ParseReference(%q).Ref = %q, want %q from its parts %+v", raw, img.Ref, want, img)
	}
	if len(img.Locations) != 0 {
		t.Fatalf("ParseReference(%q) = %+v: has locations", raw, img)
	}
}

// fuzzManifests are the image extraction golden inputs, the seeds of the
// document targets.
func fuzzManifests(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "images", "*", "input.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	out := [][]byte{
		[]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: nginx\n"),
		[]byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"n"},"spec":{"template":{"spec":{"initContainers":[{"name":"i","image":"ghcr.io/acme/init@` + fuzzDigest + `"}],"containers":[{"image":7}]}}}}`),
		[]byte("---\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: a, image: '${IMG}'}, {name: b}]\n"),
		[]byte("apiVersion: x.example/v1\nkind: Rollout\nmetadata: {name: r}\nspec: {template: {spec: {containers: {a: b}}}}\n"),
		[]byte("a: &a [*a]\n"),
		[]byte("- not\n- a map\n"),
		[]byte("apiVersion: v1\nkind: Pod\n---\nkind: NoVersion\n"),
		[]byte("{"),
		{},
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeObjects: DecodeObjects never panics; an error names the file,
// and every object it returns is a non-empty map with a string apiVersion
// and kind.
func FuzzDecodeObjects(f *testing.F) {
	for _, b := range fuzzManifests(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := render.DecodeObjects("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("DecodeObjects error %q does not start with the file name", err)
			}
			if objs != nil {
				t.Fatalf("DecodeObjects returned %d objects with its error", len(objs))
			}
			return
		}
		for i, obj := range objs {
			o := render.Object{Content: obj}
			if len(obj) == 0 || o.Kind() == "" || o.APIVersion() == "" {
				t.Fatalf("DecodeObjects object %d = %v: empty, or no apiVersion or kind", i, obj)
			}
		}
	})
}

// FuzzImages: Images, over whatever DecodeObjects accepts, never panics
// and is deterministic; every image has a non-empty Ref that is its own
// normalisation, at least one location, and every location's Raw
// reference parses to that Ref; images are sorted and unique; every gap
// is an UnresolvedImageGap with a message and an object.
func FuzzImages(f *testing.F) {
	for _, b := range fuzzManifests(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		contents, err := render.DecodeObjects("fuzz.yaml", data)
		if err != nil {
			return
		}
		objs := make([]render.Object, len(contents))
		for i, c := range contents {
			objs[i] = render.Object{Content: c, Origin: render.Origin{File: "fuzz.yaml", Chain: []string{"Kustomization/flux-system/fuzz"}}}
		}
		images, gaps := render.Images(objs)
		for i, img := range images {
			if img.Ref == "" {
				t.Fatalf("image %d has an empty Ref: %+v", i, img)
			}
			if i > 0 && images[i-1].Ref >= img.Ref {
				t.Fatalf("images not sorted and unique: %q before %q", images[i-1].Ref, img.Ref)
			}
			if len(img.Locations) == 0 {
				t.Fatalf("image %q has no location", img.Ref)
			}
			for _, loc := range img.Locations {
				parsed, err := render.ParseReference(loc.Raw)
				if err != nil || parsed.Ref != img.Ref {
					t.Fatalf("image %q at %s %s: its raw reference %q parses to %q (%v)", img.Ref, loc.Object, loc.Path, loc.Raw, parsed.Ref, err)
				}
				if loc.File != "fuzz.yaml" || loc.Object == "" || loc.Path == "" {
					t.Fatalf("image %q: incomplete location %+v", img.Ref, loc)
				}
			}
		}
		for _, g := range gaps {
			if g.Reason != render.UnresolvedImageGap || g.Message == "" || g.Object == "" || g.File != "fuzz.yaml" {
				t.Fatalf("malformed gap %+v", g)
			}
		}
		images2, gaps2 := render.Images(objs)
		if !reflect.DeepEqual(images, images2) || !reflect.DeepEqual(gaps, gaps2) {
			t.Fatalf("Images is not deterministic")
		}
		// Results must not share the input's Chain.
		for _, o := range objs {
			o.Origin.Chain[0] = "changed"
		}
		for _, img := range images {
			for _, loc := range img.Locations {
				if slices.Contains(loc.Chain, "changed") {
					t.Fatalf("image %q shares its location's Chain with the input", img.Ref)
				}
			}
		}
	})
}
