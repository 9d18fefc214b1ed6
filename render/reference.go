package render

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pregate/pregate/gate"
)

// ErrUnrenderedTemplate is returned, wrapped, by ParseReference for a
// reference that still holds template syntax ("${IMAGE}", "$(IMAGE)",
// "{{ .Values.image }}") after rendering. Some of these parse as valid
// references ("$(REGISTRY).io/app:1"), so they are rejected before parsing.
var ErrUnrenderedTemplate = errors.New("reference is still a template after rendering")

// templateMarkers are the openings of the template syntaxes that can be left
// in an image reference: Flux postBuild and shell "${…}", Kubernetes "$(…)",
// Go templates and Helm "{{…}}".
var templateMarkers = []string{"${", "$(", "{{"}

// ParseReference normalises raw the way a container runtime resolves it,
// using go-containerregistry's name.ParseReference with default options:
// "nginx" becomes "index.docker.io/library/nginx:latest". The registry host
// is spelt one way (gate.CanonicalHost): "GHCR.IO:443/acme/app:1" is
// "ghcr.io/acme/app:1" and "registry-1.docker.io/library/nginx:1" is
// "index.docker.io/library/nginx:1", so that a policy's globs see every
// spelling of a registry as the one they are written for.
//
// A reference written with both a tag and a digest ("repo:tag@sha256:…")
// keeps both: Ref reads "registry/repo:tag@sha256:…" and Tag and Digest are
// set. (name.ParseReference parses it as a name.Digest and drops the tag.)
//
// The returned Image has no Locations. The error wraps ErrUnrenderedTemplate
// for a template leftover, or a *name.ErrBadName for a reference
// go-containerregistry rejects.
func ParseReference(raw string) (Image, error) {
	img, err := parseImageReference(raw)
	if err != nil {
		return Image{}, fmt.Errorf("parsing image reference %q: %w", raw, err)
	}
	return img, nil
}

// parseImageReference is ParseReference without the wrapping, so that Images
// can word its own gap message around the bare cause.
func parseImageReference(raw string) (Image, error) {
	if isTemplate(raw) {
		return Image{}, ErrUnrenderedTemplate
	}
	canonical := gate.CanonicalReference(raw)
	ref, err := name.ParseReference(canonical)
	if err != nil {
		return Image{}, explainBadReference(canonical, err)
	}
	switch r := ref.(type) {
	case name.Tag:
		return imageFromTag(r), nil
	case name.Digest:
		return imageFromDigest(r), nil
	default:
		return Image{}, fmt.Errorf("unexpected reference type %T", ref)
	}
}

// isTemplate reports whether raw still holds template syntax.
func isTemplate(raw string) bool {
	for _, m := range templateMarkers {
		if strings.Contains(raw, m) {
			return true
		}
	}
	return false
}

// explainBadReference returns the reason go-containerregistry rejects raw.
// name.ParseReference only says "could not parse reference"; the constructor
// that applies to raw (NewDigest when it holds an "@", NewTag otherwise)
// says why. When that constructor accepts raw (ParseReference refuses URL
// schemes up front), ParseReference's own error is the reason.
func explainBadReference(raw string, err error) error {
	var cause error
	if strings.Contains(raw, "@") {
		_, cause = name.NewDigest(raw)
	} else {
		_, cause = name.NewTag(raw)
	}
	if cause != nil {
		return cause
	}
	return err
}

// imageFromTag builds the Image for a tag reference (the tag may be the
// implicit "latest").
func imageFromTag(t name.Tag) Image {
	repo := t.Context()
	return Image{
		Ref:        t.Name(),
		Registry:   repo.RegistryStr(),
		Repository: repo.RepositoryStr(),
		Tag:        t.TagStr(),
		Mutable:    true,
	}
}

// imageFromDigest builds the Image for a digest reference, restoring the tag
// name.NewDigest drops from a "repo:tag@digest" reference.
func imageFromDigest(d name.Digest) Image {
	repo := d.Context()
	img := Image{
		Ref:        d.Name(),
		Registry:   repo.RegistryStr(),
		Repository: repo.RepositoryStr(),
		Digest:     d.DigestStr(),
	}
	if tag := explicitTag(d.String()); tag != "" {
		img.Tag = tag
		img.Ref = repo.Tag(tag).Name() + "@" + img.Digest
	}
	return img
}

// explicitTag returns the tag written before the "@" of a digest reference
// as originally written, or "" when there is none. It parses the part before
// the "@" with name.NewTag as name.NewDigest does, but with no default tag,
// so that only a tag that was written comes back. When name.NewTag rejects
// that part, name.NewDigest read it as a bare repository: there is no tag.
func explicitTag(original string) string {
	base, _, ok := strings.Cut(original, "@")
	if !ok {
		return ""
	}
	t, err := name.NewTag(base, name.WithDefaultTag(""))
	if err != nil {
		return ""
	}
	return t.TagStr()
}
