package render

import (
	"fmt"
	"strings"

	"github.com/fluxcd/pkg/envsubst/parse"
	"sigs.k8s.io/kustomize/api/resource"
)

// Variables whose values are hidden in SOPS-encrypted content, or may be
// in a substituteFrom object not in the revision, are unknown: postBuild
// substitutes each as "${VAR}" (postBuildVars.substitutions), so that the
// reference stays in the output, and what still holds one is an
// EncryptedGap or SubstituteFromGap naming the variable and where its
// value is. Everything else of the Kustomization renders.

// substituteKey set to "disabled" on an object's labels or annotations
// turns postBuild substitution off for it, as in Flux.
const substituteKey = kustomizeGroup + "/substitute"

// transformOps are the envsubst operations that read a variable's value
// (case, length, trimming, substring, replacement) instead of returning it
// or a default: applied to "${VAR}" they would give a wrong value, not the
// reference.
var transformOps = map[string]bool{
	",": true, ",,": true, "^": true, "^^": true, "#": true, "##": true, "%": true, "%%": true,
	":": true, "/#": true, "/%": true, "/": true, "//": true,
}

// varRef is a variable reference in a text.
type varRef struct {
	name string
	op   string // the envsubst operation: "" for ${VAR}, ":-" for ${VAR:-default}, …
	// transformed: the reference transforms the value, or is an argument
	// of a transformation.
	transformed bool
}

// String shows the reference without its arguments.
func (v varRef) String() string {
	if v.op == "" {
		return "${" + v.name + "}"
	}
	return "${" + v.name + v.op + "…}"
}

// varRefs returns the variable references in text as Flux's envsubst
// parses them; none when it does not parse (substitution reports that).
func varRefs(text string) []varRef {
	if !strings.Contains(text, "$") {
		return nil
	}
	t, err := parse.Parse(text)
	if err != nil {
		return nil
	}
	var out []varRef
	var walk func(n parse.Node, inTransform bool)
	walk = func(n parse.Node, inTransform bool) {
		switch n := n.(type) {
		case *parse.ListNode:
			for _, c := range n.Nodes {
				walk(c, inTransform)
			}
		case *parse.FuncNode:
			tr := inTransform || transformOps[n.Name]
			out = append(out, varRef{name: n.Param, op: n.Name, transformed: tr})
			for _, a := range n.Args {
				walk(a, tr)
			}
		}
	}
	walk(t.Root, false)
	return out
}

// substitutionDisabled says whether postBuild leaves an object alone.
func substitutionDisabled(labels, annotations map[string]string) bool {
	return labels[substituteKey] == "disabled" || annotations[substituteKey] == "disabled"
}

// leaveOut says whether a built object must be left out because
// substitution cannot keep an unknown variable in it as "${VAR}": it
// transforms one (${VAR^^}, ${VAR:0:7}, ${#VAR}, …), which would give a
// wrong value. A gap names the object, the variable and where its value is.
func leaveOut(u unit, res *resource.Resource, file string, unknown map[string]unknownVar, b *built) (bool, error) {
	if len(unknown) == 0 || substitutionDisabled(res.GetLabels(), res.GetAnnotations()) {
		return false, nil
	}
	text, err := res.AsYAML()
	if err != nil {
		return false, fmt.Errorf("reading %s/%s: %w", res.GetKind(), res.GetName(), err)
	}
	for _, ref := range varRefs(string(text)) {
		why, ok := unknown[ref.name]
		if !ok || !ref.transformed {
			continue
		}
		id := res.GetKind() + "/" + res.GetName()
		if ns := res.GetNamespace(); ns != "" {
			id = res.GetKind() + "/" + ns + "/" + res.GetName()
		}
		b.gaps = append(b.gaps, Gap{Reason: why.reason, Origin: Origin{File: file, Chain: u.chain}, Object: id,
			Message: fmt.Sprintf("%s transforms the value of ${%s}, which is not known: from %s; the object is left out",
				ref, ref.name, why.where)})
		return true, nil
	}
	return false, nil
}

// explainImage says why an image that is not a usable reference is so
// because of a value that is not known: the unknown variables it holds and
// where their values are (looked up in the Kustomization that rendered
// obj, then in those applying it, as a value may be handed down), or its
// being ciphertext itself. The reason is SubstituteFromGap when one of the
// variables may come from an object not in the revision, else EncryptedGap.
func (d *decryption) explainImage(obj Object, raw string) (GapReason, string, bool) {
	if isCiphertext(raw) {
		return EncryptedGap, "it is SOPS-encrypted and was not decrypted", true
	}
	labels, _ := metadata(obj.Content)["labels"].(map[string]any)
	annotations, _ := metadata(obj.Content)["annotations"].(map[string]any)
	if str(labels, substituteKey) == "disabled" || str(annotations, substituteKey) == "disabled" {
		return "", "", false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	reason := EncryptedGap
	seen := map[string]bool{}
	for _, ref := range varRefs(raw) {
		if seen[ref.name] {
			continue
		}
		seen[ref.name] = true
		for i := len(obj.Origin.Chain) - 1; i >= 0; i-- {
			if why, ok := d.unknown[obj.Origin.Chain[i]][ref.name]; ok {
				parts = append(parts, fmt.Sprintf("${%s} from %s", ref.name, why.where))
				if why.reason == SubstituteFromGap {
					reason = SubstituteFromGap
				}
				break
			}
		}
	}
	return reason, strings.Join(parts, "; "), len(parts) > 0
}
