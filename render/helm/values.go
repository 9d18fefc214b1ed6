package helm

import (
	"encoding/base64"
	"fmt"

	"github.com/fluxcd/pkg/chartutil"
	"github.com/opencontainers/go-digest"
	"helm.sh/helm/v4/pkg/chart/common"
	"k8s.io/apimachinery/pkg/types"
)

// composeValues composes the values helm-controller passes to Helm. It
// follows fluxcd/pkg/chartutil.ChartValuesFromReferences (v1.27.2, the
// version helm-controller v1.6.4 uses), with the references looked up in
// objs instead of the cluster:
//
//   - references are ConfigMaps or Secrets in the HelmRelease's namespace,
//     read at valuesKey (default "values.yaml"), merged in order;
//   - a missing object or key is skipped when the reference is optional and
//     an error otherwise;
//   - a reference with targetPath first merges spec.values into the result
//     and then sets the path with Helm's strvals (--set) semantics, or
//     verbatim when literal (the final merge below still lets spec.values
//     win where both set the same key);
//   - any other reference is parsed as a values document and merged;
//   - spec.values is merged last.
//
// Merging and path setting are chartutil's own MergeMaps, ReplacePathValue
// and ReplacePathLiteralValue.
func composeValues(r *release, objs []map[string]any) (common.Values, error) {
	inline := r.GetValues()
	if r.Spec.Values != nil && len(r.Spec.Values.Raw) > 0 && inline == nil {
		if _, err := common.ReadValues(r.Spec.Values.Raw); err != nil {
			return nil, fmt.Errorf("%w: spec.values: %w", ErrInvalidValues, err)
		}
	}
	result := common.Values{}
	for _, ref := range r.Spec.ValuesFrom {
		name := types.NamespacedName{Namespace: r.Namespace, Name: ref.Name}
		if ref.Kind != "ConfigMap" && ref.Kind != "Secret" {
			return nil, fmt.Errorf("%w: %w", ErrInvalidValues, chartutil.NewErrValuesReference(name, ref, chartutil.ErrUnsupportedRefKind, nil))
		}
		data, found, err := valuesData(objs, ref.Kind, name, ref.GetValuesKey())
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidValues, chartutil.NewErrValuesReference(name, ref, chartutil.ErrValuesDataRead, err))
		}
		if !found.object || !found.key {
			if ref.Optional {
				continue
			}
			reason := chartutil.ErrResourceNotFound
			if found.object {
				reason = chartutil.ErrKeyNotFound
			}
			return nil, fmt.Errorf("%w: %w", ErrInvalidValues, chartutil.NewErrValuesReference(name, ref, reason, nil))
		}
		if ref.TargetPath != "" {
			result = chartutil.MergeMaps(result, inline)
			merge := chartutil.ReplacePathValue
			if ref.Literal {
				merge = chartutil.ReplacePathLiteralValue
			}
			if err := merge(result, ref.TargetPath, string(data)); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidValues, chartutil.NewErrValuesReference(name, ref, chartutil.ErrValueMerge, err))
			}
			continue
		}
		values, err := common.ReadValues(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidValues, chartutil.NewErrValuesReference(name, ref, chartutil.ErrValuesDataRead, err))
		}
		result = chartutil.MergeMaps(result, values)
	}
	return chartutil.MergeMaps(result, inline), nil
}

// presence says whether a reference's object and key were found.
type presence struct{ object, key bool }

// valuesData finds the ConfigMap or Secret name in objs and returns the
// value at key. Like chartutil, it reads a ConfigMap's data (not
// binaryData) and a Secret's data; a Secret's stringData is merged over its
// data as the API server does when it stores the object.
func valuesData(objs []map[string]any, kind string, name types.NamespacedName, key string) ([]byte, presence, error) {
	obj := findObject(objs, "v1", kind, name.Namespace, name.Name)
	if obj == nil {
		return nil, presence{}, nil
	}
	if kind == "Secret" {
		if s, ok := nestedString(obj, "stringData", key); ok {
			return []byte(s), presence{true, true}, nil
		}
	}
	s, ok := nestedString(obj, "data", key)
	if !ok {
		return nil, presence{object: true}, nil
	}
	if kind == "ConfigMap" {
		return []byte(s), presence{true, true}, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, presence{true, true}, fmt.Errorf("data %q of the Secret is not base64 (is the Secret still encrypted?): %w", key, err)
	}
	return b, presence{true, true}, nil
}

// findObject returns the object of apiVersion and kind named namespace/name.
func findObject(objs []map[string]any, apiVersion, kind, namespace, name string) map[string]any {
	for _, o := range objs {
		if o["apiVersion"] != apiVersion || o["kind"] != kind {
			continue
		}
		md, _ := o["metadata"].(map[string]any)
		if md["name"] == name && md["namespace"] == namespace {
			return o
		}
	}
	return nil
}

// nestedString returns obj[field][key] if it is a string.
func nestedString(obj map[string]any, field, key string) (string, bool) {
	m, _ := obj[field].(map[string]any)
	s, ok := m[key].(string)
	return s, ok
}

// valuesDigest is helm-controller's status.lastAttemptedConfigDigest:
// chartutil.DigestValues with the canonical (SHA-256) algorithm.
func valuesDigest(v common.Values) string {
	return chartutil.DigestValues(digest.Canonical, v).String()
}
