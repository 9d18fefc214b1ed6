package render

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
)

// varPool holds the ConfigMaps and Secrets that postBuild.substituteFrom
// may name: those given from outside the revision (the cluster's), then
// those rendered from the revision so far.
type varPool struct {
	given    map[string]map[string]any // key: Kind/namespace/name
	revision map[string]map[string]any
}

func newVarPool(given []map[string]any) *varPool {
	p := &varPool{given: map[string]map[string]any{}, revision: map[string]map[string]any{}}
	for _, o := range given {
		if k, ok := poolKey(Object{Content: o}); ok {
			p.given[k] = o
		}
	}
	return p
}

func poolKey(o Object) (string, bool) {
	if o.Group() != "" || (o.Kind() != "ConfigMap" && o.Kind() != "Secret") {
		return "", false
	}
	return o.Kind() + "/" + o.Namespace() + "/" + o.Name(), true
}

func (p *varPool) add(objs []Object) {
	for _, o := range objs {
		if k, ok := poolKey(o); ok {
			p.revision[k] = o.Content
		}
	}
}

// lookup finds kind/name in namespace: given objects first, then the
// revision's; an object without a namespace matches any.
func (p *varPool) lookup(kind, namespace, name string) (map[string]any, bool) {
	for _, m := range []map[string]map[string]any{p.given, p.revision} {
		for _, ns := range []string{namespace, ""} {
			if o, ok := m[kind+"/"+ns+"/"+name]; ok {
				return o, true
			}
		}
	}
	return nil, false
}

// missingVarsError lists the substituteFrom objects that were not found.
type missingVarsError struct {
	Missing []string // Kind/namespace/name, with why when it is not plain absence
}

func (e *missingVarsError) Error() string {
	return fmt.Sprintf("postBuild.substituteFrom: %s not in the revision; give the cluster's copy with --substitute-from FILE",
		strings.Join(e.Missing, ", "))
}

// vars resolves a unit's postBuild variables as Flux's LoadVariables does:
// substituteFrom in order (later entries win), then the inline substitute
// map; newlines are removed from values.
func (p *varPool) vars(u unit) (map[string]string, error) {
	spec, _ := u.ks["spec"].(map[string]any)
	pb, _ := spec["postBuild"].(map[string]any)
	if pb == nil {
		return nil, nil
	}
	namespace := Object{Content: u.ks}.Namespace()
	vars := map[string]string{}
	var missing []string
	refs, _ := pb["substituteFrom"].([]any)
	for _, r := range refs {
		ref, _ := r.(map[string]any)
		kind, name := str(ref, "kind"), str(ref, "name")
		optional, _ := ref["optional"].(bool)
		id := kind + "/" + namespace + "/" + name
		obj, ok := p.lookup(kind, namespace, name)
		if ok && kind == "Secret" && obj["sops"] != nil {
			// Encrypted in git: the values are not readable here.
			ok = false
			id += " (SOPS-encrypted in the revision)"
		}
		if !ok {
			if !optional {
				missing = append(missing, id)
			}
			continue
		}
		data, err := objectData(kind, obj)
		if err != nil {
			return nil, fmt.Errorf("postBuild.substituteFrom %s: %w", id, err)
		}
		for k, v := range data {
			vars[k] = strings.ReplaceAll(v, "\n", "")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &missingVarsError{Missing: missing}
	}
	inline, _ := pb["substitute"].(map[string]any)
	for k, v := range inline {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("postBuild.substitute.%s: value is %T, want a string", k, v)
		}
		vars[k] = strings.ReplaceAll(s, "\n", "")
	}
	return vars, nil
}

// objectData returns the data of a ConfigMap, or the decoded data of a
// Secret (stringData included, as the API server merges it).
func objectData(kind string, obj map[string]any) (map[string]string, error) {
	out := map[string]string{}
	data, _ := obj["data"].(map[string]any)
	for k, v := range data {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("data.%s is %T, want a string", k, v)
		}
		if kind == "Secret" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("data.%s is not base64: %w", k, err)
			}
			s = string(b)
		}
		out[k] = s
	}
	if kind == "Secret" {
		sd, _ := obj["stringData"].(map[string]any)
		for k, v := range sd {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("stringData.%s is %T, want a string", k, v)
			}
			out[k] = s
		}
	}
	return out, nil
}
