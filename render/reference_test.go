package render

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestParseReference(t *testing.T) {
	t.Parallel()
	const (
		hexA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		dgA  = "sha256:" + hexA
	)
	tests := map[string]struct {
		raw  string
		want Image
	}{
		"short name": {
			raw:  "nginx",
			want: Image{Ref: "index.docker.io/library/nginx:latest", Registry: "index.docker.io", Repository: "library/nginx", Tag: "latest", Mutable: true},
		},
		"short name with tag": {
			raw:  "nginx:1.27",
			want: Image{Ref: "index.docker.io/library/nginx:1.27", Registry: "index.docker.io", Repository: "library/nginx", Tag: "1.27", Mutable: true},
		},
		"docker.io alias": {
			raw:  "docker.io/library/nginx:latest",
			want: Image{Ref: "index.docker.io/library/nginx:latest", Registry: "index.docker.io", Repository: "library/nginx", Tag: "latest", Mutable: true},
		},
		"docker.io without library": {
			raw:  "docker.io/nginx",
			want: Image{Ref: "index.docker.io/library/nginx:latest", Registry: "index.docker.io", Repository: "library/nginx", Tag: "latest", Mutable: true},
		},
		"docker hub user repository": {
			raw:  "bitnami/redis:7.2",
			want: Image{Ref: "index.docker.io/bitnami/redis:7.2", Registry: "index.docker.io", Repository: "bitnami/redis", Tag: "7.2", Mutable: true},
		},
		"ghcr with tag": {
			raw:  "ghcr.io/acme/app:1.2",
			want: Image{Ref: "ghcr.io/acme/app:1.2", Registry: "ghcr.io", Repository: "acme/app", Tag: "1.2", Mutable: true},
		},
		"registry with port": {
			raw:  "registry.example.com:8443/team/app:v1",
			want: Image{Ref: "registry.example.com:8443/team/app:v1", Registry: "registry.example.com:8443", Repository: "team/app", Tag: "v1", Mutable: true},
		},
		"registry with port, implicit tag": {
			raw:  "registry.example.com:8443/team/app",
			want: Image{Ref: "registry.example.com:8443/team/app:latest", Registry: "registry.example.com:8443", Repository: "team/app", Tag: "latest", Mutable: true},
		},
		"localhost without port": {
			raw:  "localhost/app:dev",
			want: Image{Ref: "localhost/app:dev", Registry: "localhost", Repository: "app", Tag: "dev", Mutable: true},
		},
		"IPv6 registry": {
			raw:  "[::1]:5000/app:1",
			want: Image{Ref: "[::1]:5000/app:1", Registry: "[::1]:5000", Repository: "app", Tag: "1", Mutable: true},
		},
		"digest with port registry": {
			raw:  "localhost:5000/app@" + dgA,
			want: Image{Ref: "localhost:5000/app@" + dgA, Registry: "localhost:5000", Repository: "app", Digest: dgA, Mutable: false},
		},
		"digest on short name": {
			raw:  "nginx@" + dgA,
			want: Image{Ref: "index.docker.io/library/nginx@" + dgA, Registry: "index.docker.io", Repository: "library/nginx", Digest: dgA, Mutable: false},
		},
		"tag and digest": {
			raw:  "ghcr.io/acme/app:1.2@" + dgA,
			want: Image{Ref: "ghcr.io/acme/app:1.2@" + dgA, Registry: "ghcr.io", Repository: "acme/app", Tag: "1.2", Digest: dgA, Mutable: false},
		},
		"tag and digest on short name": {
			raw:  "nginx:1.27@" + dgA,
			want: Image{Ref: "index.docker.io/library/nginx:1.27@" + dgA, Registry: "index.docker.io", Repository: "library/nginx", Tag: "1.27", Digest: dgA, Mutable: false},
		},
		"tag and digest with port registry": {
			raw:  "localhost:5000/team/app:v2@" + dgA,
			want: Image{Ref: "localhost:5000/team/app:v2@" + dgA, Registry: "localhost:5000", Repository: "team/app", Tag: "v2", Digest: dgA, Mutable: false},
		},
		"tag and digest, latest written": {
			raw:  "docker.io/library/nginx:latest@" + dgA,
			want: Image{Ref: "index.docker.io/library/nginx:latest@" + dgA, Registry: "index.docker.io", Repository: "library/nginx", Tag: "latest", Digest: dgA, Mutable: false},
		},
		"upper-case tag": {
			raw:  "ghcr.io/acme/app:V1-RC",
			want: Image{Ref: "ghcr.io/acme/app:V1-RC", Registry: "ghcr.io", Repository: "acme/app", Tag: "V1-RC", Mutable: true},
		},
		// One spelling per registry host, so that globs written for it
		// match every spelling (a catch-all static pass or unmatched=allow
		// would otherwise let another spelling through unchecked).
		"upper-case host": {
			raw:  "GHCR.IO/acme/app:1",
			want: Image{Ref: "ghcr.io/acme/app:1", Registry: "ghcr.io", Repository: "acme/app", Tag: "1", Mutable: true},
		},
		"mixed-case host": {
			raw:  "Ghcr.io/acme/app:1",
			want: Image{Ref: "ghcr.io/acme/app:1", Registry: "ghcr.io", Repository: "acme/app", Tag: "1", Mutable: true},
		},
		"default port": {
			raw:  "ghcr.io:443/acme/app:1@" + dgA,
			want: Image{Ref: "ghcr.io/acme/app:1@" + dgA, Registry: "ghcr.io", Repository: "acme/app", Tag: "1", Digest: dgA, Mutable: false},
		},
		"docker hub API host": {
			raw:  "registry-1.docker.io/library/nginx:1",
			want: Image{Ref: "index.docker.io/library/nginx:1", Registry: "index.docker.io", Repository: "library/nginx", Tag: "1", Mutable: true},
		},
		"docker hub index host with default port": {
			raw:  "index.docker.io:443/library/nginx:1",
			want: Image{Ref: "index.docker.io/library/nginx:1", Registry: "index.docker.io", Repository: "library/nginx", Tag: "1", Mutable: true},
		},
		"upper-case docker.io, short repository": {
			raw:  "DOCKER.IO/nginx",
			want: Image{Ref: "index.docker.io/library/nginx:latest", Registry: "index.docker.io", Repository: "library/nginx", Tag: "latest", Mutable: true},
		},
		"upper-case localhost": {
			raw:  "LocalHost:5000/app:1",
			want: Image{Ref: "localhost:5000/app:1", Registry: "localhost:5000", Repository: "app", Tag: "1", Mutable: true},
		},
		"other port kept": {
			raw:  "ghcr.io:8443/acme/app:1",
			want: Image{Ref: "ghcr.io:8443/acme/app:1", Registry: "ghcr.io:8443", Repository: "acme/app", Tag: "1", Mutable: true},
		},
		"single-character repository": {
			raw:  "a",
			want: Image{Ref: "index.docker.io/library/a:latest", Registry: "index.docker.io", Repository: "library/a", Tag: "latest", Mutable: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseReference(tc.raw)
			if err != nil {
				t.Fatalf("ParseReference(%q) = %v, want no error", tc.raw, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseReference(%q) mismatch (-want +got):\n%s", tc.raw, diff)
			}
		})
	}
}

func TestParseReference_errors(t *testing.T) {
	t.Parallel()
	badName := &name.ErrBadName{}
	tests := map[string]struct {
		raw string
		// is is the error the result must wrap.
		is error
		// cause is a part of the message that says why.
		cause string
	}{
		"empty":                     {raw: "", is: badName, cause: "a repository name must be specified"},
		"flux variable":             {raw: "${APP_IMAGE}", is: ErrUnrenderedTemplate, cause: "still a template"},
		"flux variable in the tag":  {raw: "ghcr.io/acme/app:${TAG:=1.0}", is: ErrUnrenderedTemplate, cause: "still a template"},
		"kubernetes variable":       {raw: "$(IMAGE)", is: ErrUnrenderedTemplate, cause: "still a template"},
		"registry variable ggcr ok": {raw: "$(REGISTRY).io/acme/app:1", is: ErrUnrenderedTemplate, cause: "still a template"},
		"helm template":             {raw: "{{ .Values.image }}", is: ErrUnrenderedTemplate, cause: "still a template"},
		"upper-case repository":     {raw: "UPPER/Case", is: badName, cause: "repository can only contain"},
		"empty tag":                 {raw: "nginx:", is: badName, cause: "must specify a tag name after the colon"},
		"short digest":              {raw: "nginx@sha256:abc", is: badName, cause: "invalid checksum digest length"},
		"two digests":               {raw: "nginx@" + testDigestA + "@" + testDigestB, is: badName, cause: "exactly one '@'"},
		"URL scheme":                {raw: "https://ghcr.io/acme/app:1", is: badName, cause: "must not contain a URL scheme"},
		"two tags":                  {raw: "ghcr.io/acme/app:1:2", is: badName, cause: "repository can only contain"},
		"leading space":             {raw: " nginx", is: badName, cause: "repository can only contain"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseReference(tc.raw)
			if err == nil {
				t.Fatalf("ParseReference(%q) = %+v, want an error", tc.raw, got)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("ParseReference(%q) = %v, want an error wrapping %T %v", tc.raw, err, tc.is, tc.is)
			}
			if !strings.Contains(err.Error(), tc.cause) {
				t.Errorf("ParseReference(%q) = %q, want a message containing %q", tc.raw, err, tc.cause)
			}
			if diff := cmp.Diff(Image{}, got); diff != "" {
				t.Errorf("ParseReference(%q) returned an image with its error (-want +got):\n%s", tc.raw, diff)
			}
		})
	}
}

// TestParseReference_ggcrDropsTag pins the go-containerregistry behaviour
// that imageFromDigest works around: a "repo:tag@digest" reference parses
// as a name.Digest whose Name has no tag. If this starts failing,
// go-containerregistry changed and ParseReference should be revisited.
func TestParseReference_ggcrDropsTag(t *testing.T) {
	t.Parallel()
	raw := "ghcr.io/acme/app:1.2@" + testDigestA
	ref, err := name.ParseReference(raw)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := ref.(name.Digest)
	if !ok {
		t.Fatalf("name.ParseReference(%q) is a %T, want name.Digest", raw, ref)
	}
	if got, want := d.Name(), "ghcr.io/acme/app@"+testDigestA; got != want {
		t.Errorf("name.ParseReference(%q).Name() = %q, want %q", raw, got, want)
	}
}
