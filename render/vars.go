package render

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/pregate/pregate/render/sops"
)

// varPool holds the ConfigMaps and Secrets that postBuild.substituteFrom
// may name: those given from outside the revision (the cluster's), then
// those rendered from the revision so far. Builds read it while the
// traversal adds to it.
type varPool struct {
	given map[string]map[string]any // key: Kind/namespace/name

	mu       sync.RWMutex
	revision map[string]map[string]any
	// version counts the objects added under each key of revision.
	version map[string]int
}

// poolDeps are the revision keys a build's lookups probed, with their
// versions then (0: absent). A build made ahead of the traversal holds if
// they are unchanged when the traversal reaches it.
type poolDeps map[string]int

func newVarPool(given []map[string]any) *varPool {
	p := &varPool{given: map[string]map[string]any{}, revision: map[string]map[string]any{}, version: map[string]int{}}
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
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range objs {
		if k, ok := poolKey(o); ok {
			p.revision[k] = o.Content
			p.version[k]++
		}
	}
}

// lookup finds kind/name in namespace: given objects first, then the
// revision's; an object without a namespace matches any. The revision keys
// it probes go into deps.
func (p *varPool) lookup(kind, namespace, name string, deps poolDeps) (map[string]any, bool) {
	for _, ns := range []string{namespace, ""} {
		if o, ok := p.given[kind+"/"+ns+"/"+name]; ok {
			return o, true
		}
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, ns := range []string{namespace, ""} {
		k := kind + "/" + ns + "/" + name
		deps[k] = p.version[k]
		if o, ok := p.revision[k]; ok {
			return o, true
		}
	}
	return nil, false
}

// current says whether the keys in deps are as they were.
func (p *varPool) current(deps poolDeps) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for k, v := range deps {
		if p.version[k] != v {
			return false
		}
	}
	return true
}

// missingVarsError lists the substituteFrom objects that were not found.
type missingVarsError struct {
	Missing []string // Kind/namespace/name, with why when it is not plain absence
}

func (e *missingVarsError) Error() string {
	return fmt.Sprintf("postBuild.substituteFrom: %s not in the revision; give the cluster's copy with --substitute-from FILE",
		strings.Join(e.Missing, ", "))
}

// postBuildVars are a unit's postBuild variables: those whose value is
// known, and those whose value is hidden in SOPS-encrypted content that
// could not be decrypted, each with where its value is.
type postBuildVars struct {
	known   map[string]string
	setBy   map[string]string // known variable → the substituteFrom object that set it
	unknown map[string]unknownVar
	// missing are the substituteFrom objects not found, when the unit is
	// rendered without them (unit.partial): any variable the build uses
	// and no other entry sets may be theirs.
	missing []string
}

// unknownVar is where an unknown variable's value is, and why it is not
// known: EncryptedGap (it is SOPS-encrypted) or SubstituteFromGap (the
// object that may hold it is not in the revision).
type unknownVar struct {
	where  string // "Secret/ns/name (SOPS-encrypted; no key given)"
	reason GapReason
}

// setKnown and setUnknown record a variable; a later one wins, as in
// Flux.
func (v *postBuildVars) setKnown(name, value, by string) {
	v.known[name] = strings.ReplaceAll(value, "\n", "")
	v.setBy[name] = by
	delete(v.unknown, name)
}

func (v *postBuildVars) setUnknown(name string, why unknownVar) {
	v.unknown[name] = why
	delete(v.known, name)
}

// missingWhere says where a variable that no object found sets may come
// from: the substituteFrom objects that are not in the revision.
func (v postBuildVars) missingWhere() unknownVar {
	return v.missingNote("not in the revision")
}

func (v postBuildVars) missingNote(note string) unknownVar {
	return unknownVar{where: strings.Join(v.missing, " or ") + " (" + note + "; give the cluster's copy with --substitute-from FILE)",
		reason: SubstituteFromGap}
}

// addUsed makes unknown each variable text uses that no object found or
// inline entry sets, when substituteFrom objects are missing: its value
// may be in one of them.
func (v *postBuildVars) addUsed(text string) {
	if len(v.missing) == 0 {
		return
	}
	for _, ref := range varRefs(text) {
		if _, ok := v.known[ref.name]; ok {
			continue
		}
		if _, ok := v.unknown[ref.name]; !ok {
			v.setUnknown(ref.name, v.missingWhere())
		}
	}
}

// substitutions are the values postBuild substitutes: the known ones, and
// each unknown variable as a reference to itself, so that "${VAR}" is left
// in the output as it is instead of becoming empty.
func (v postBuildVars) substitutions() map[string]string {
	out := make(map[string]string, len(v.known)+len(v.unknown))
	for k, val := range v.known {
		out[k] = val
	}
	for k := range v.unknown {
		out[k] = "${" + k + "}"
	}
	return out
}

// opener decrypts a substituteFrom object that holds SOPS-encrypted
// content. It returns the object, decrypted if it could be, and else why
// not ("SOPS-encrypted; no key given").
type opener func(obj map[string]any) (map[string]any, string)

// vars resolves a unit's postBuild variables as Flux's LoadVariables does:
// substituteFrom in order (later entries win), then the inline substitute
// map; newlines are removed from values. An object holding SOPS-encrypted
// content is given to open first; the variables whose values stay
// encrypted are unknown, not missing: the unit still renders.
//
// A substituteFrom object that is not found is a missingVarsError, unless
// u.partial: then it is in v.missing, and every variable set before it
// becomes unknown, as it may set it again.
func (p *varPool) vars(u unit, open opener) (postBuildVars, poolDeps, error) {
	spec, _ := u.ks["spec"].(map[string]any)
	pb, _ := spec["postBuild"].(map[string]any)
	if pb == nil {
		return postBuildVars{}, nil, nil
	}
	deps := poolDeps{}
	namespace := Object{Content: u.ks}.Namespace()
	v := postBuildVars{known: map[string]string{}, setBy: map[string]string{}, unknown: map[string]unknownVar{}}
	var missing []string
	refs, _ := pb["substituteFrom"].([]any)
	for _, r := range refs {
		ref, _ := r.(map[string]any)
		kind, name := str(ref, "kind"), str(ref, "name")
		optional, _ := ref["optional"].(bool)
		id := kind + "/" + namespace + "/" + name
		obj, ok := p.lookup(kind, namespace, name, deps)
		if !ok {
			if !optional {
				missing = append(missing, id)
			}
			if !optional && u.partial {
				v.missing = append(v.missing, id)
				for k := range v.known {
					v.setUnknown(k, v.missingNote("not in the revision, and may set it again after "+v.setBy[k]))
				}
			}
			continue
		}
		if err := v.addObject(kind, id, obj, open); err != nil {
			return postBuildVars{}, deps, fmt.Errorf("postBuild.substituteFrom %s: %w", id, err)
		}
	}
	if len(missing) > 0 && !u.partial {
		sort.Strings(missing)
		return postBuildVars{}, deps, &missingVarsError{Missing: missing}
	}
	inline, _ := pb["substitute"].(map[string]any)
	for k, val := range inline {
		s, ok := val.(string)
		if !ok {
			return postBuildVars{}, deps, fmt.Errorf("postBuild.substitute.%s: value is %T, want a string", k, val)
		}
		v.setKnown(k, s, "postBuild.substitute")
	}
	return v, deps, nil
}

// addObject adds the variables of a substituteFrom object. Those of an
// object still carrying SOPS metadata, and values still encrypted (a
// generated Secret that read an encrypted file), are unknown.
func (v *postBuildVars) addObject(kind, id string, obj map[string]any, open opener) error {
	why := ""
	if holdsCiphertext(obj) {
		obj, why = open(obj)
	}
	where := unknownVar{where: id + " (" + cmp.Or(why, "a SOPS-encrypted value") + ")", reason: EncryptedGap}
	if sops.Encrypted(obj) {
		for _, k := range dataKeys(kind, obj) {
			v.setUnknown(k, where)
		}
		return nil
	}
	data, err := objectData(kind, obj)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if isCiphertext(data[k]) {
			v.setUnknown(k, where)
		} else {
			v.setKnown(k, data[k], id)
		}
	}
	return nil
}

// dataKeys are the names of a ConfigMap's or Secret's data entries (SOPS
// leaves keys in clear), stringData's included for a Secret.
func dataKeys(kind string, obj map[string]any) []string {
	fields := []string{"data"}
	if kind == "Secret" {
		fields = append(fields, "stringData")
	}
	var out []string
	for _, f := range fields {
		m, _ := obj[f].(map[string]any)
		out = append(out, slices.Sorted(maps.Keys(m))...)
	}
	return out
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
