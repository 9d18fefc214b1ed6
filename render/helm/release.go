package helm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
)

const helmGroup = "helm.toolkit.fluxcd.io"

// release is a decoded HelmRelease.
type release struct {
	helmv2.HelmRelease
}

// decodeRelease decodes a HelmRelease of any helm.toolkit.fluxcd.io version
// into helm-controller's v2 types. Fields the v2 API does not know are
// ignored, as the API server prunes them.
func decodeRelease(obj map[string]any) (*release, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if !strings.HasPrefix(apiVersion, helmGroup+"/") || kind != "HelmRelease" {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q is not a %s HelmRelease", ErrInvalidHelmRelease, apiVersion, kind, helmGroup)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding: %w", ErrInvalidHelmRelease, err)
	}
	var r release
	if err := json.Unmarshal(raw, &r.HelmRelease); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidHelmRelease, err)
	}
	if r.Name == "" || r.Namespace == "" {
		return nil, fmt.Errorf("%w: metadata.name and metadata.namespace are required", ErrInvalidHelmRelease)
	}
	if (r.Spec.Chart == nil) == (r.Spec.ChartRef == nil) {
		// helm-controller's isValidChartRef: exactly one of the two.
		return nil, fmt.Errorf("%w: exactly one of spec.chart and spec.chartRef must be set", ErrInvalidHelmRelease)
	}
	return &r, nil
}

// id is "HelmRelease/namespace/name".
func (r *release) id() string { return "HelmRelease/" + r.Namespace + "/" + r.Name }

// releaseName is the Helm release name helm-controller installs:
// spec.releaseName, else "<targetNamespace>-<name>" or "<name>"
// (HelmRelease.GetReleaseName), shortened by helm-controller's
// internal/release.ShortenName.
func (r *release) releaseName() string { return shortenName(r.GetReleaseName()) }

// shortenName follows helm-controller's internal/release/name.go: a name
// longer than 53 characters becomes its first 40 characters, "-", and the
// first 12 hex digits of its SHA-256.
func shortenName(name string) string {
	const maxLength, hashLength = 53, 12
	if len(name) <= maxLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxLength-hashLength-1] + "-" + hex.EncodeToString(sum[:])[:hashLength]
}

// fail wraps err with the HelmRelease, chart and repository.
func (r *release) fail(ref *chartRef, op string, err error) error {
	e := &RenderError{HelmRelease: r.id(), Op: op, Err: err}
	if ref != nil {
		e.Chart = ref.describe()
		e.Repository = ref.repository()
	}
	return e
}

// describeObject names a (possibly malformed) object for an error.
func describeObject(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	if kind == "" {
		kind = "HelmRelease"
	}
	md, _ := obj["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	return kind + "/" + ns + "/" + name
}
