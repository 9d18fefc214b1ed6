package helm

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Helm's OCI media types (helm.sh/helm/v4/pkg/registry).
const (
	// ChartLayerMediaType is the layer holding a chart archive.
	ChartLayerMediaType = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	// legacyChartLayerMediaType is what Helm before 3.8 pushed.
	legacyChartLayerMediaType = "application/tar+gzip"
)

// ociRequest asks for one chart archive from an OCI repository.
type ociRequest struct {
	// repository is "host[:port]/path", without scheme or tag.
	repository string
	// Reference, in source-controller's precedence: digest, semver (with
	// semverFilter), tag, else "latest".
	digest, semver, semverFilter, tag string
	// insecure allows plain HTTP.
	insecure bool
	// layerTypes are the acceptable layer media types, the first matching
	// layer taken; none means the first layer.
	layerTypes []string
	// helmTags: tags are chart versions with "+" written "_", as Helm
	// pushes them.
	helmTags bool
}

func (q ociRequest) key() string {
	return fmt.Sprintf("oci %s digest=%s semver=%s filter=%s tag=%s layers=%s",
		q.repository, q.digest, q.semver, q.semverFilter, q.tag, strings.Join(q.layerTypes, ","))
}

// fromOCI returns the chart archive q names, and what it resolved to: the
// tag, the manifest digest (in URL and Revision) and the layer digest.
func (c *Charts) fromOCI(ctx context.Context, q ociRequest) ([]byte, resolution, error) {
	var nameOpts []name.Option
	if q.insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	repository, err := name.NewRepository(q.repository, nameOpts...)
	if err != nil {
		return nil, resolution{}, fmt.Errorf("parsing OCI repository %q: %w", q.repository, err)
	}
	r, err := c.resolve(ctx, q.key(), func(ctx context.Context) (resolution, error) {
		return c.resolveOCI(ctx, repository, q)
	})
	if err != nil {
		return nil, resolution{}, err
	}
	b, d, err := c.archive(ctx, r, func(ctx context.Context) ([]byte, error) {
		return c.ociLayer(ctx, repository, r.Digest)
	})
	r.Digest = d
	return b, r, err
}

// remoteOptions are the options of every registry request.
func (c *Charts) remoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(c.cfg.Keychain)}
	if t := c.cfg.HTTPClient.Transport; t != nil {
		opts = append(opts, remote.WithTransport(t))
	} else {
		opts = append(opts, remote.WithTransport(http.DefaultTransport))
	}
	return opts
}

// resolveOCI finds the manifest q names and the chart layer in it.
func (c *Charts) resolveOCI(ctx context.Context, repository name.Repository, q ociRequest) (resolution, error) {
	ref, version, err := c.ociReference(ctx, repository, q)
	if err != nil {
		return resolution{}, err
	}
	c.manifestFetches.Add(1)
	desc, err := remote.Get(ref, c.remoteOptions(ctx)...)
	if err != nil {
		return resolution{}, fmt.Errorf("fetching the manifest of %s: %w", ref, err)
	}
	if !desc.MediaType.IsImage() {
		return resolution{}, fmt.Errorf("%w: %s is a %s, not an OCI artifact manifest", ErrInvalidChart, ref, desc.MediaType)
	}
	manifest, err := gcrv1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		return resolution{}, fmt.Errorf("parsing the manifest of %s: %w", ref, err)
	}
	layer, err := chartLayer(manifest, q.layerTypes)
	if err != nil {
		return resolution{}, fmt.Errorf("%s: %w", ref, err)
	}
	if layer.Size > c.cfg.MaxArchiveSize {
		return resolution{}, fmt.Errorf("%w: chart layer of %s is %d bytes, more than %d", ErrTooLarge, ref, layer.Size, c.cfg.MaxArchiveSize)
	}
	revision := desc.Digest.String()
	if tag, ok := ref.(name.Tag); ok {
		revision = tag.TagStr() + "@" + revision
	}
	return resolution{
		Version:  version,
		URL:      "oci://" + repository.Name() + "@" + desc.Digest.String(),
		Digest:   layer.Digest.String(),
		Revision: revision,
	}, nil
}

// ociReference picks the reference q names, listing tags for a semver
// range, as source-controller's OCIRepositoryReconciler.getArtifactRef and
// getTagBySemver do. It returns the version the tag stands for, if any.
func (c *Charts) ociReference(ctx context.Context, repository name.Repository, q ociRequest) (name.Reference, string, error) {
	switch {
	case q.digest != "":
		return repository.Digest(q.digest), "", nil
	case q.semver != "":
		c.tagLists.Add(1)
		tags, err := remote.List(repository, c.remoteOptions(ctx)...)
		if err != nil {
			return nil, "", fmt.Errorf("listing the tags of %s: %w", repository, err)
		}
		tag, err := pickTag(tags, q.semver, q.semverFilter, q.helmTags)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", repository, err)
		}
		return repository.Tag(tag), tagVersion(tag, q.helmTags), nil
	case q.tag != "":
		return repository.Tag(q.tag), tagVersion(q.tag, q.helmTags), nil
	default:
		return repository.Tag(name.DefaultTag), "", nil
	}
}

// pickTag returns the tag of the highest version satisfying constraint
// among tags matching filter (a regular expression).
func pickTag(tags []string, constraint, filter string, helmTags bool) (string, error) {
	var match *regexp.Regexp
	if filter != "" {
		var err error
		if match, err = regexp.Compile(filter); err != nil {
			return "", fmt.Errorf("invalid semverFilter %q: %w", filter, err)
		}
	}
	c, err := parseConstraint(constraint)
	if err != nil {
		return "", err
	}
	var versions []*semver.Version
	for _, tag := range tags {
		if match != nil && !match.MatchString(tag) {
			continue
		}
		v, err := parseVersion(tagVersion(tag, helmTags))
		if err == nil && c.Check(v) {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("%w: no tag matching semver %q", ErrChartNotFound, constraint)
	}
	sort.Sort(sort.Reverse(semver.Collection(versions)))
	return versionTag(versions[0].Original(), helmTags), nil
}

// tagVersion turns an OCI tag into the version it stands for.
func tagVersion(tag string, helmTags bool) string {
	if helmTags {
		return strings.ReplaceAll(tag, "_", "+")
	}
	return tag
}

// versionTag turns a version into the OCI tag Helm pushes it as.
func versionTag(version string, helmTags bool) string {
	if helmTags {
		return strings.ReplaceAll(version, "+", "_")
	}
	return version
}

// chartLayer selects the layer holding the chart, as source-controller's
// selectLayer does: the first of the given media types, else the first.
func chartLayer(m *gcrv1.Manifest, types []string) (gcrv1.Descriptor, error) {
	if len(m.Layers) == 0 {
		return gcrv1.Descriptor{}, fmt.Errorf("%w: the artifact has no layers", ErrInvalidChart)
	}
	if len(types) == 0 {
		return m.Layers[0], nil
	}
	for _, l := range m.Layers {
		for _, t := range types {
			if string(l.MediaType) == t {
				return l, nil
			}
		}
	}
	return gcrv1.Descriptor{}, fmt.Errorf("%w: no layer of media type %s in the artifact", ErrInvalidChart, strings.Join(types, " or "))
}

// ociLayer downloads the layer with digest d.
func (c *Charts) ociLayer(ctx context.Context, repository name.Repository, d string) ([]byte, error) {
	ref := repository.Digest(d)
	layer, err := remote.Layer(ref, c.remoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("fetching chart layer %s: %w", ref, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetching chart layer %s: %w", ref, err)
	}
	defer rc.Close()
	return readBounded(rc, c.cfg.MaxArchiveSize, ref.String())
}
