package helm

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/fluxcd/pkg/runtime/transform"
	"github.com/opencontainers/go-digest"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/ignore"
	"sigs.k8s.io/yaml"
)

// maxSymlinkDepth bounds how many symlinked directories a chart directory
// may nest.
const maxSymlinkDepth = 16

// loadLocal builds a chart from a GitRepository or Bucket revision on disk,
// as source-controller's localChartBuilder does: the chart directory (or a
// packaged chart) at spec.chart.spec.chart, its version marked with the
// revision under reconcileStrategy Revision and with the HelmChart's
// generation when valuesFiles (relative to the source root) are merged into
// its default values, and the dependencies missing from charts/ resolved
// (local ones from the revision, remote ones through charts).
func loadLocal(ctx context.Context, charts *Charts, ref *chartRef) (*loadedChart, error) {
	src, t := ref.local, ref.template
	root, err := filepath.Abs(src.Root)
	if err != nil {
		return nil, fmt.Errorf("resolving the source root: %w", err)
	}
	p, err := securejoin.SecureJoin(root, t.chart)
	if err != nil {
		return nil, fmt.Errorf("%w: chart path %q: %w", ErrInvalidChart, t.chart, err)
	}
	ref.url = p
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: no chart at %q in %s: %w", ErrChartNotFound, t.chart, ref.source, err)
	}
	isDir := fi.IsDir()
	ch, err := loadChartPath(root, p, isDir)
	if err != nil {
		return nil, err
	}
	meta, err := revisionMetadata(src, t.reconcileStrategy)
	if err != nil {
		return nil, err
	}
	if len(t.valuesFiles) > 0 {
		vals, err := mergeFileValues(root, t.valuesFiles, t.ignoreMissingValuesFiles)
		if err != nil {
			return nil, err
		}
		if err := overwriteDefaultValues(ch, vals); err != nil {
			return nil, err
		}
		meta = joinMetadata(meta, helmChartGeneration)
	}
	if err := setVersionMetadata(ch, meta); err != nil {
		return nil, err
	}
	if isDir {
		if err := buildDependencies(ctx, charts, root, p, ch); err != nil {
			return nil, err
		}
	}
	return &loadedChart{chart: ch, url: p, revision: src.Revision, source: ref.source}, nil
}

// loadChartPath loads a chart directory or a packaged chart inside root.
func loadChartPath(root, p string, isDir bool) (*chart.Chart, error) {
	if !isDir {
		data, err := readFileBounded(p, DefaultMaxArchiveSize)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidChart, err)
		}
		return loadArchive(data)
	}
	files, err := readChartDir(root, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidChart, err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidChart, err)
	}
	return ch, nil
}

// revisionMetadata is the version metadata reconcileStrategy Revision adds
// (helmchart_controller.go buildFromTarballArtifact): the first 12 hex
// digits of the Git commit or Bucket digest.
func revisionMetadata(src *LocalSource, strategy string) (string, error) {
	if strategy != "Revision" {
		return "", nil
	}
	rev := src.Revision
	switch src.Kind {
	case "Bucket":
		if d := digest.Digest(rev); d.Validate() == nil {
			rev = d.Encoded()
		}
	default:
		rev = gitHash(rev)
	}
	if len(rev) < 12 {
		return "", fmt.Errorf("%w: reconcileStrategy Revision needs the source revision, got %q", ErrInvalidChart, src.Revision)
	}
	return rev[:12], nil
}

// gitHash extracts the commit hash from a GitRepository revision
// ("<ref>@sha1:<hex>", "sha1:<hex>", or the legacy "<branch>/<hex>"), as
// fluxcd/pkg/git.ExtractHashFromRevision does.
func gitHash(rev string) string {
	if i := strings.LastIndex(rev, ":"); i >= 0 {
		return rev[i+1:]
	}
	if i := strings.LastIndex(rev, "/"); i >= 0 {
		return rev[i+1:]
	}
	return rev
}

func joinMetadata(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// mergeFileValues follows source-controller's mergeFileValues: values files
// relative to the source root, which they may not leave, merged in order.
func mergeFileValues(root string, paths []string, ignoreMissing bool) (map[string]any, error) {
	merged := map[string]any{}
	for _, p := range paths {
		sp, err := securejoin.SecureJoin(root, p)
		if err != nil {
			return nil, fmt.Errorf("%w: values file %q: %w", ErrInvalidValues, p, err)
		}
		fi, err := os.Stat(sp)
		if err != nil && ignoreMissing && isNotExist(err) {
			continue
		}
		if err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: no values file found at path '%s'", ErrInvalidValues, p)
		}
		b, err := readFileBounded(sp, archive.MaxDecompressedFileSize)
		if err != nil {
			return nil, fmt.Errorf("%w: could not read values from file '%s': %w", ErrInvalidValues, p, err)
		}
		values := map[string]any{}
		if err := yaml.Unmarshal(b, &values); err != nil {
			return nil, fmt.Errorf("%w: unmarshaling values from '%s' failed: %w", ErrInvalidValues, p, err)
		}
		merged = transform.MergeMaps(merged, values)
	}
	return merged, nil
}

// readChartDir reads a chart directory as Helm's loader.LoadDir does
// (.helmignore and its defaults, a UTF-8 BOM stripped, Helm's size limits),
// but never leaves root: a symlink must resolve inside it, and symlinked
// directories nest at most maxSymlinkDepth deep.
func readChartDir(root, dir string) ([]*archive.BufferedFile, error) {
	rules := ignore.Empty()
	if _, err := os.Stat(filepath.Join(dir, ignore.HelmIgnore)); err == nil {
		b, err := readFileBounded(filepath.Join(dir, ignore.HelmIgnore), archive.MaxDecompressedFileSize)
		if err != nil {
			return nil, err
		}
		if rules, err = ignore.Parse(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("parsing .helmignore: %w", err)
		}
	}
	rules.AddDefaults()
	w := &dirReader{root: root, rules: rules, budget: archive.MaxDecompressedChartSize}
	if err := w.walk(dir, "", 0); err != nil {
		return nil, err
	}
	return w.files, nil
}

// dirReader collects a chart directory's files.
type dirReader struct {
	root   string
	rules  *ignore.Rules
	budget int64
	files  []*archive.BufferedFile
}

// walk reads dir, whose files are named prefix/... in the chart.
func (w *dirReader) walk(dir, prefix string, depth int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if prefix != "" {
			name = prefix + "/" + name
		}
		if err := w.entry(filepath.Join(dir, e.Name()), name, depth); err != nil {
			return err
		}
	}
	return nil
}

// entry reads one directory entry.
func (w *dirReader) entry(p, name string, depth int) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := w.resolveLink(p, name)
		if err != nil {
			return err
		}
		if fi, err = os.Stat(target); err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		p = target
		if fi.IsDir() {
			if depth >= maxSymlinkDepth {
				return fmt.Errorf("%s: symlinked directories nest more than %d deep", name, maxSymlinkDepth)
			}
			depth++
		}
	}
	if w.rules.Ignore(name, fi) {
		return nil
	}
	if fi.IsDir() {
		return w.walk(p, name, depth)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("cannot load irregular file %s as it has file mode type bits set", name)
	}
	if fi.Size() > archive.MaxDecompressedFileSize {
		return fmt.Errorf("%w: chart file %q is larger than the maximum file size %d", ErrTooLarge, name, archive.MaxDecompressedFileSize)
	}
	if w.budget -= fi.Size(); w.budget < 0 {
		return fmt.Errorf("%w: chart is larger than the maximum size %d", ErrTooLarge, archive.MaxDecompressedChartSize)
	}
	data, err := readFileBounded(p, archive.MaxDecompressedFileSize)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	w.files = append(w.files, &archive.BufferedFile{Name: name, ModTime: fi.ModTime(), Data: data})
	return nil
}

// resolveLink resolves a symlink, which must stay inside root.
func (w *dirReader) resolveLink(p, name string) (string, error) {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("resolving symlink %s: %w", name, err)
	}
	rootReal, err := filepath.EvalSymlinks(w.root)
	if err != nil {
		return "", fmt.Errorf("resolving the source root: %w", err)
	}
	rel, err := filepath.Rel(rootReal, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("symlink %s points outside the source", name)
	}
	return target, nil
}

// buildDependencies adds the dependencies Chart.lock (or Chart.yaml) names
// and charts/ lacks, as source-controller's DependencyManager does: a local
// one (no repository, or file://) from the revision, a remote one (https://
// or oci://) through charts; an alias renames the chart.
func buildDependencies(ctx context.Context, charts *Charts, root, chartDir string, ch *chart.Chart) error {
	reqs := ch.Metadata.Dependencies
	if ch.Lock != nil {
		reqs = ch.Lock.Dependencies
	}
	for _, dep := range missingDependencies(ch.Dependencies(), reqs) {
		sub, err := loadDependency(ctx, charts, root, chartDir, dep)
		if err != nil {
			return fmt.Errorf("dependency %q: %w", dep.Name, err)
		}
		if dep.Alias != "" {
			sub.Metadata.Name = dep.Alias
		}
		ch.AddDependency(sub)
	}
	return nil
}

// missingDependencies is source-controller's collectMissing.
func missingDependencies(current []*chart.Chart, reqs []*chart.Dependency) []*chart.Dependency {
	if len(current) == len(reqs) {
		return nil
	}
	var missing []*chart.Dependency
	for _, dep := range reqs {
		name := orDefault(dep.Alias, dep.Name)
		found := false
		for _, c := range current {
			if c.Name() == name {
				found = true
			}
		}
		if !found {
			missing = append(missing, dep)
		}
	}
	return missing
}

// loadDependency loads one missing dependency.
func loadDependency(ctx context.Context, charts *Charts, root, chartDir string, dep *chart.Dependency) (*chart.Chart, error) {
	if dep.Repository == "" || strings.HasPrefix(dep.Repository, "file://") {
		return loadLocalDependency(root, chartDir, dep)
	}
	u, err := normalizeRepoURL(dep.Repository)
	if err != nil {
		return nil, err
	}
	var data []byte
	if strings.HasPrefix(u, "oci://") {
		data, _, err = charts.fromOCI(ctx, helmOCIRequest(u, dep.Name, dep.Version, false))
	} else {
		data, _, err = charts.fromIndex(ctx, u, dep.Name, dep.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("fetching %s %s from %s: %w", dep.Name, dep.Version, u, err)
	}
	return loadArchive(data)
}

// loadLocalDependency follows DependencyManager.addLocalDependency: the
// chart at the file:// path (or charts/<name>) relative to the chart,
// inside the source, whose version must satisfy the dependency's.
func loadLocalDependency(root, chartDir string, dep *chart.Dependency) (*chart.Chart, error) {
	rel, err := filepath.Rel(root, chartDir)
	if err != nil {
		return nil, fmt.Errorf("locating the chart in the source: %w", err)
	}
	target := filepath.Join(rel, "charts", dep.Name)
	if dep.Repository != "" {
		u, err := url.Parse(dep.Repository)
		if err != nil {
			return nil, fmt.Errorf("parsing local chart reference %q: %w", dep.Repository, err)
		}
		target = filepath.Join(rel, u.Host, u.Path)
	}
	p, err := securejoin.SecureJoin(root, target)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidChart, dep.Repository, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: no chart found at '%s' (reference '%s')", ErrChartNotFound, target, dep.Repository)
	}
	constraint, err := semver.NewConstraint(dep.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid version/constraint format '%s': %w", ErrInvalidChart, dep.Version, err)
	}
	sub, err := loadChartPath(root, p, fi.IsDir())
	if err != nil {
		return nil, err
	}
	ver, err := semver.NewVersion(sub.Metadata.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: chart version %q: %w", ErrInvalidChart, sub.Metadata.Version, err)
	}
	if !constraint.Check(ver) {
		return nil, fmt.Errorf("%w: can't get a valid version for constraint '%s'", ErrChartNotFound, dep.Version)
	}
	return sub, nil
}
