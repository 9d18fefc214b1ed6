package helm

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/fluxcd/pkg/runtime/transform"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"sigs.k8s.io/yaml"
)

// helmChartGeneration stands for the generation of the HelmChart
// helm-controller creates from a chart template; source-controller adds it
// to the chart version when valuesFiles are set. The real one is not known
// offline; a chart template that has not changed since it was created has
// generation 1.
const helmChartGeneration = "1"

// mutateVersionWithRevision follows helm-controller's
// mutateChartWithSourceRevision: the first 12 hex digits of the digest in
// an OCIRepository's or ExternalArtifact's revision ("<tag>@sha256:<hex>"
// or "sha256:<hex>") become the chart version's build metadata; a semver
// tag must equal the chart version.
func mutateVersionWithRevision(ch *chart.Chart, revision string) error {
	ver, err := semver.NewVersion(ch.Metadata.Version)
	if err != nil {
		return fmt.Errorf("%w: invalid chart version %s", ErrInvalidChart, ch.Metadata.Version)
	}
	digestPart := revision
	if tag, d, ok := strings.Cut(revision, "@"); ok {
		digestPart = d
		if tagVer, err := semver.NewVersion(strings.ReplaceAll(tag, "_", "+")); err == nil && !tagVer.Equal(ver) {
			return fmt.Errorf("%w: artifact revision %s does not match chart version %s", ErrInvalidChart, tag, ch.Metadata.Version)
		}
	}
	_, hexPart, ok := strings.Cut(digestPart, ":")
	if !ok || len(hexPart) < 12 || strings.Contains(hexPart, ":") {
		return fmt.Errorf("%w: invalid artifact revision %s", ErrInvalidChart, revision)
	}
	withMeta, err := ver.SetMetadata(hexPart[:12])
	if err != nil {
		return fmt.Errorf("%w: setting chart version metadata: %w", ErrInvalidChart, err)
	}
	ch.Metadata.Version = withMeta.String()
	return nil
}

// setVersionMetadata sets build metadata on the chart version, as
// source-controller's chart builders do for VersionMetadata.
func setVersionMetadata(ch *chart.Chart, meta string) error {
	if meta == "" {
		return nil
	}
	ver, err := semver.NewVersion(ch.Metadata.Version)
	if err != nil {
		return fmt.Errorf("%w: parsing chart version %q as SemVer: %w", ErrInvalidChart, ch.Metadata.Version, err)
	}
	withMeta, err := ver.SetMetadata(meta)
	if err != nil {
		return fmt.Errorf("%w: setting SemVer metadata %q on chart version: %w", ErrInvalidChart, meta, err)
	}
	ch.Metadata.Version = withMeta.String()
	return nil
}

// applyRemoteValuesFiles merges a remote chart's valuesFiles (paths inside
// the chart; "values.yaml" is its default values) into its default values
// and marks the version with the HelmChart's generation, as
// source-controller's remoteChartBuilder and mergeChartValues do.
func applyRemoteValuesFiles(ch *chart.Chart, t *templateSpec) error {
	if len(t.valuesFiles) == 0 {
		return nil
	}
	merged := map[string]any{}
	for _, p := range t.valuesFiles {
		name := filepath.ToSlash(filepath.Clean(p))
		if name == chartutil.ValuesfileName {
			merged = transform.MergeMaps(merged, ch.Values)
			continue
		}
		data, ok := chartFile(ch, name)
		if !ok {
			if t.ignoreMissingValuesFiles {
				continue
			}
			return fmt.Errorf("%w: no values file found at path '%s'", ErrInvalidValues, p)
		}
		values := map[string]any{}
		if err := yaml.Unmarshal(data, &values); err != nil {
			return fmt.Errorf("%w: unmarshaling values from '%s' failed: %w", ErrInvalidValues, p, err)
		}
		merged = transform.MergeMaps(merged, values)
	}
	if err := overwriteDefaultValues(ch, merged); err != nil {
		return err
	}
	return setVersionMetadata(ch, helmChartGeneration)
}

// chartFile returns the chart file called name.
func chartFile(ch *chart.Chart, name string) ([]byte, bool) {
	for _, f := range ch.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// overwriteDefaultValues follows source-controller's
// OverwriteChartDefaultValues: the merged values replace the chart's
// values.yaml.
func overwriteDefaultValues(ch *chart.Chart, vals common.Values) error {
	if vals == nil {
		return nil
	}
	var buf bytes.Buffer
	if len(vals) > 0 {
		if err := vals.Encode(&buf); err != nil {
			return fmt.Errorf("%w: encoding merged values: %w", ErrInvalidValues, err)
		}
	}
	for _, f := range ch.Raw {
		if f.Name != chartutil.ValuesfileName {
			continue
		}
		f.Data = buf.Bytes()
		for _, cf := range ch.Files {
			if cf.Name == chartutil.ValuesfileName {
				cf.Data = buf.Bytes()
			}
		}
		ch.Values = vals.AsMap()
		return nil
	}
	return fmt.Errorf("%w: the chart has no %s", ErrInvalidChart, chartutil.ValuesfileName)
}
