package helm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"
)

// fromIndex returns the archive of chart name at the version constraint
// selects in the HTTP repository at repoURL (normalized), and what it
// resolved to.
func (c *Charts) fromIndex(ctx context.Context, repoURL, name, constraint string) ([]byte, resolution, error) {
	key := "http " + repoURL + " " + name + " " + constraint
	r, err := c.resolve(ctx, key, func(ctx context.Context) (resolution, error) {
		idx, err := c.index(ctx, repoURL)
		if err != nil {
			return resolution{}, err
		}
		cv, err := chartVersion(idx, name, constraint)
		if err != nil {
			return resolution{}, err
		}
		if len(cv.URLs) == 0 {
			return resolution{}, fmt.Errorf("%w: chart %s %s has no URL in the index", ErrChartNotFound, name, cv.Version)
		}
		u, err := repo.ResolveReferenceURL(repoURL, cv.URLs[0])
		if err != nil {
			return resolution{}, fmt.Errorf("resolving the URL of chart %s %s: %w", name, cv.Version, err)
		}
		return resolution{Name: cv.Name, Version: cv.Version, URL: u, Digest: normalizeDigest(cv.Digest)}, nil
	})
	if err != nil {
		return nil, resolution{}, err
	}
	b, d, err := c.archive(ctx, r, func(ctx context.Context) ([]byte, error) {
		return c.httpGet(ctx, r.URL, c.cfg.MaxArchiveSize)
	})
	r.Digest = d
	return b, r, err
}

// index returns the repository's parsed index.yaml, fetched at most once
// per ResolveTTL.
func (c *Charts) index(ctx context.Context, repoURL string) (*repo.IndexFile, error) {
	c.mu.Lock()
	ci, ok := c.indexes[repoURL]
	c.mu.Unlock()
	if ok && c.cfg.Now().Before(ci.expires) {
		return ci.index, nil
	}
	v, err := c.do(ctx, "index\x00"+repoURL, func(ctx context.Context) (any, error) {
		u, err := indexURL(repoURL)
		if err != nil {
			return nil, err
		}
		c.indexFetches.Add(1)
		b, err := c.httpGet(ctx, u, c.cfg.MaxIndexSize)
		if err != nil {
			return nil, fmt.Errorf("fetching the repository index: %w", err)
		}
		idx, err := parseIndex(b)
		if err != nil {
			return nil, fmt.Errorf("parsing the repository index %s: %w", u, err)
		}
		c.mu.Lock()
		c.indexes[repoURL] = cachedIndex{index: idx, expires: c.cfg.Now().Add(c.cfg.ResolveTTL)}
		c.mu.Unlock()
		return idx, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*repo.IndexFile), nil
}

// indexURL is "<repository URL>/index.yaml", as source-controller's
// ChartRepository.DownloadIndex joins it.
func indexURL(repoURL string) (string, error) {
	u, err := url.Parse(repoURL)
	if err != nil {
		return "", fmt.Errorf("parsing repository URL %q: %w", repoURL, err)
	}
	u.RawPath = path.Join(u.RawPath, "index.yaml")
	u.Path = path.Join(u.Path, "index.yaml")
	return u.String(), nil
}

// normalizeRepoURL follows source-controller's repository.NormalizeURL: an
// HTTP repository URL ends in exactly one "/", an OCI one in none.
func normalizeRepoURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parsing repository URL %q: %w", raw, err)
	}
	if u.Scheme == "oci" {
		u.Path = strings.TrimRight(u.Path, "/")
		u.RawPath = strings.TrimRight(u.RawPath, "/")
		return u.String(), nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: repository URL scheme %q", ErrUnsupported, u.Scheme)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	u.RawPath = strings.TrimRight(u.RawPath, "/") + "/"
	return u.String(), nil
}

// parseIndex follows source-controller's repository.IndexFromBytes: JSON
// or strict YAML, an apiVersion required, invalid entries dropped (except
// the duplicate-alias error some repositories produce), entries sorted.
func parseIndex(b []byte) (*repo.IndexFile, error) {
	if len(b) == 0 {
		return nil, repo.ErrEmptyIndexYaml
	}
	idx := &repo.IndexFile{}
	var err error
	if json.Valid(b) {
		err = json.Unmarshal(b, idx)
	} else {
		err = yaml.UnmarshalStrict(b, idx)
	}
	if err != nil {
		return nil, err
	}
	if idx.APIVersion == "" {
		return nil, repo.ErrNoAPIVersion
	}
	for name, cvs := range idx.Entries {
		kept := cvs[:0]
		for _, cv := range cvs {
			if cv == nil {
				continue
			}
			if cv.Metadata == nil {
				cv.Metadata = &chart.Metadata{}
			}
			if cv.APIVersion == "" {
				cv.APIVersion = chart.APIVersionV1
			}
			if err := cv.Validate(); err != nil && !skippableValidation(err) {
				continue
			}
			kept = append(kept, cv)
		}
		idx.Entries[name] = kept
	}
	idx.SortEntries()
	return idx, nil
}

// skippableValidation is source-controller's
// ignoreSkippableChartValidationError.
func skippableValidation(err error) bool {
	var verr chart.ValidationError
	return errors.As(err, &verr) && strings.HasPrefix(verr.Error(), "validation: more than one dependency with name or alias")
}

// chartVersion follows source-controller's ChartRepository.getChartVersion:
// an exact version string wins; otherwise the highest version satisfying
// the constraint ("" and "*" mean the latest stable), versions parsed
// loosely as fluxcd/pkg/version.ParseVersion does, ties broken by the
// later creation time.
func chartVersion(idx *repo.IndexFile, name, constraint string) (*repo.ChartVersion, error) {
	cvs := idx.Entries[name]
	if len(cvs) == 0 {
		return nil, fmt.Errorf("%w: no chart %q in the repository index", ErrChartNotFound, name)
	}
	if constraint != "" {
		for _, cv := range cvs {
			if cv.Version == constraint {
				return cv, nil
			}
		}
	}
	c, err := parseConstraint(constraint)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		v  *semver.Version
		cv *repo.ChartVersion
	}
	var matched []candidate
	for _, cv := range cvs {
		v, err := parseVersion(cv.Version)
		if err != nil || !c.Check(v) {
			continue
		}
		matched = append(matched, candidate{v, cv})
	}
	if len(matched) == 0 {
		return nil, fmt.Errorf("%w: no %q chart with version matching %q", ErrChartNotFound, name, constraint)
	}
	sort.SliceStable(matched, func(i, j int) bool {
		if !matched[i].v.Equal(matched[j].v) {
			return matched[j].v.LessThan(matched[i].v)
		}
		return matched[j].cv.Created.Before(matched[i].cv.Created)
	})
	return matched[0].cv, nil
}

// parseConstraint parses a version constraint, "" and "*" meaning any
// stable version.
func parseConstraint(s string) (*semver.Constraints, error) {
	if s == "" {
		s = "*"
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("invalid version constraint %q: %w", s, err)
	}
	return c, nil
}

// parseVersion is fluxcd/pkg/version.ParseVersion: three dot-separated
// parts, then Masterminds' loose parser (a "v" prefix is allowed).
func parseVersion(v string) (*semver.Version, error) {
	if len(strings.SplitN(v, ".", 3)) != 3 {
		return nil, semver.ErrInvalidSemVer
	}
	return semver.NewVersion(v)
}
