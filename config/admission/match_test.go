package admission

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/gate"
)

// readDoc reads one policy from YAML.
func readDoc(t *testing.T, doc string) *Policy {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	p, ok, err := Read("p.yaml", obj)
	if err != nil || !ok {
		t.Fatalf("Read = %v, %v", ok, err)
	}
	return p
}

// deployment is an image in a Deployment of namespace shop, labelled
// tier: web, whose Pods are labelled app: web.
var deployment = gate.Image{Ref: "ghcr.io/acme/web:1", Locations: []gate.Location{{
	Object: "Deployment/shop/web", APIVersion: "apps/v1", Path: "spec.template.spec.containers[0]",
	Labels: map[string]string{"tier": "web"},
	Pod:    map[string]any{"metadata": map[string]any{"namespace": "shop", "labels": map[string]any{"app": "web"}}},
}}}

// TestObjects: a workload is admitted as itself and as the Pods it runs,
// each with its own labels; a Pod is admitted once; an image with no
// place is a Pod of no known namespace or labels.
func TestObjects(t *testing.T) {
	t.Parallel()
	ns := func(n string) map[string]string {
		if n == "shop" {
			return map[string]string{"env": "prod"}
		}
		return nil
	}
	got := Objects(deployment, ns)
	want := []string{"apps/v1 Deployment shop/web map[tier:web] ns map[env:prod]", "/v1 Pod shop/ map[app:web] ns map[env:prod]"}
	if len(got) != len(want) {
		t.Fatalf("Objects = %+v, want %d", got, len(want))
	}
	for i, o := range got {
		if s := fmt.Sprintf("%s/%s %s %s/%s %v ns %v", o.Group, o.Version, o.Kind, o.Namespace, o.Name, o.Labels, o.NamespaceLabels); s != want[i] {
			t.Errorf("Objects[%d] = %s, want %s", i, s, want[i])
		}
	}
	pod := gate.Image{Locations: []gate.Location{{Object: "Pod/other/p", APIVersion: "v1"}}}
	if got := Objects(pod, ns); len(got) != 1 || got[0].Kind != "Pod" || got[0].Labels == nil || got[0].NamespaceLabels != nil {
		t.Errorf("Objects(pod) = %+v, want the Pod once, with known (empty) labels and its namespace's not known", got)
	}
	if got := Objects(gate.Image{Ref: "x"}, ns); len(got) != 1 || got[0].Kind != "Pod" || got[0].Labels != nil {
		t.Errorf("Objects(no place) = %+v, want one Pod of unknown labels", got)
	}
}

// TestKyvernoMatch: match and exclude as Kyverno reads them (any, all,
// the legacy resources block), by kind, namespace, the object's labels
// and its namespace's, and operations.
func TestKyvernoMatch(t *testing.T) {
	t.Parallel()
	policy := func(match string) string {
		return `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  rules:
  - name: r
` + match + `
    verifyImages:
    - imageReferences: ["*"]
      attestors: [{entries: [{keys: {publicKeys: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIcbqK2RAVZOfPzo+kbOhNYq8DK9fB2BGbU7jAXEvYthJ3vRcYq8l7g9UAXXiz9P2awFuTa4COcZU2IdEDVU0uA==\n-----END PUBLIC KEY-----"}}]}]`
	}
	objects := Objects(deployment, func(string) map[string]string { return map[string]string{"env": "prod"} })
	deploy, pod := objects[0], objects[1]
	for _, tc := range []struct {
		name, match     string
		deploy, pod     bool
		unsupportedHint string
	}{
		{"pods", "    match: {any: [{resources: {kinds: [Pod]}}]}", false, true, ""},
		{"pods by their labels", "    match: {any: [{resources: {kinds: [Pod], selector: {matchLabels: {app: web}}}}]}", false, true, ""},
		{"pods of other labels", "    match: {any: [{resources: {kinds: [Pod], selector: {matchLabels: {app: db}}}}]}", false, false, ""},
		{"the deployment's labels are not its pods'", "    match: {any: [{resources: {kinds: [Pod], selector: {matchLabels: {tier: web}}}}]}", false, false, ""},
		{"deployments by theirs", "    match: {any: [{resources: {kinds: [apps/v1/Deployment], selector: {matchLabels: {tier: web}}}}]}", true, false, ""},
		{"version and kind", "    match: {any: [{resources: {kinds: [v1/Pod]}}]}", false, true, ""},
		{"a subresource", "    match: {any: [{resources: {kinds: [Pod/exec, Deployment]}}]}", true, false, ""},
		{"legacy resources", "    match: {resources: {kinds: [Pod], namespaces: [sh*]}}", false, true, ""},
		{"another namespace", "    match: {resources: {kinds: [Pod], namespaces: [kube-system]}}", false, false, ""},
		{"namespace labels", "    match: {any: [{resources: {kinds: [Pod], namespaceSelector: {matchLabels: {env: dev}}}}]}", false, false, ""},
		{"all must select", "    match: {all: [{resources: {kinds: [Pod]}}, {resources: {namespaces: [other]}}]}", false, false, ""},
		{"any may", "    match: {any: [{resources: {kinds: [Pod], namespaces: [other]}}, {resources: {kinds: [Pod], selector: {matchLabels: {app: web}}}}]}", false, true, ""},
		{"excluded by labels", "    match: {any: [{resources: {kinds: [Pod, Deployment]}}]}\n    exclude: {any: [{resources: {selector: {matchLabels: {app: web}}}}]}", true, false, ""},
		{"exclude all must select", "    match: {any: [{resources: {kinds: [Pod]}}]}\n    exclude: {all: [{resources: {namespaces: [shop]}}, {resources: {namespaces: [other]}}]}", false, true, ""},
		{"updates only", "    match: {any: [{resources: {kinds: [Pod], operations: [UPDATE]}}]}", false, false, "a match without Pods"},
		{"names", "    match: {any: [{resources: {kinds: [Pod], names: [web-*]}}]}", false, true, "match.any[0].resources.names"},
		{"subjects", "    match: {any: [{resources: {kinds: [Pod]}}]}\n    exclude: {any: [{subjects: [{kind: User, name: admin}]}]}", false, true, "exclude.any[0]: subjects"},
		{"task runs", "    match: {any: [{resources: {kinds: [tekton.dev/v1/TaskRun]}}]}", false, false, "a match without Pods"},
	} {
		p := readDoc(t, policy(tc.match))
		r := p.Rules[0]
		if got := r.Match.Applies(deploy); got != tc.deploy {
			t.Errorf("%s: applies to the Deployment = %v, want %v", tc.name, got, tc.deploy)
		}
		if got := r.Match.Applies(pod); got != tc.pod {
			t.Errorf("%s: applies to its Pods = %v, want %v", tc.name, got, tc.pod)
		}
		got := strings.Join(r.Unsupported, "; ")
		if (tc.unsupportedHint == "") != (got == "") || !strings.Contains(got, tc.unsupportedHint) {
			t.Errorf("%s: unsupported %q, want %q", tc.name, got, tc.unsupportedHint)
		}
	}
	// A namespaced Policy applies in its own namespace only, whatever
	// its match says.
	ns := readDoc(t, strings.Replace(strings.Replace(policy("    match: {any: [{resources: {kinds: [Pod]}}]}"), "ClusterPolicy", "Policy", 1), "{name: p}", "{name: p, namespace: other}", 1))
	if ns.Rules[0].Match.Applies(pod) {
		t.Error("a Policy of namespace other applies in shop")
	}
}

func TestKyvernoKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Kind
	}{
		{"Pod", Kind{Group: "*", Version: "*", Kind: "Pod"}},
		{"v1/Pod", Kind{Group: "*", Version: "v1", Kind: "Pod"}},
		{"*/Pod", Kind{Group: "*", Version: "*", Kind: "Pod"}},
		{"apps/v1/Deployment", Kind{Group: "apps", Version: "v1", Kind: "Deployment"}},
		{"Pod/exec", Kind{Group: "*", Version: "*", Kind: "Pod", Subresource: "exec"}},
		{"Pod.status", Kind{Group: "*", Version: "*", Kind: "Pod", Subresource: "status"}},
		{"*/*", Kind{Group: "*", Version: "*", Kind: "*"}},
		{"*/scale", Kind{Group: "*", Version: "*", Kind: "*", Subresource: "scale"}},
		{"v1/Pod/status", Kind{Group: "*", Version: "v1", Kind: "Pod", Subresource: "status"}},
	} {
		if got := kyvernoKind(tc.in); got != tc.want {
			t.Errorf("kyvernoKind(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// TestPolicyControllerMatch: spec.match selects by resource (guessed
// from the kind, as policy-controller does), exact group, version exact
// or "*", and the object's labels: a match on pods does not select the
// Deployment, which policy-controller's webhook checks as well.
func TestPolicyControllerMatch(t *testing.T) {
	t.Parallel()
	p := readFile(t, "library/pc-cip-match-resource-label.yaml")
	r := p.Rules[0]
	if len(r.Unsupported) > 0 {
		t.Fatalf("unsupported %q", r.Unsupported)
	}
	objects := Objects(deployment, func(string) map[string]string { return nil })
	labelled := objects[1]
	labelled.Labels = map[string]string{"match": "match"}
	for _, tc := range []struct {
		name string
		o    Object
		want bool
	}{
		{"the Deployment", objects[0], false},
		{"its Pods, not labelled", objects[1], false},
		{"a Pod labelled match", labelled, true},
	} {
		if got := r.Match.Applies(tc.o); got != tc.want {
			t.Errorf("%s: applies = %v, want %v", tc.name, got, tc.want)
		}
	}
	exact := Kind{Group: "apps", Version: "v1", Resource: "deployments"}
	if !exact.selects(objects[0]) || (Kind{Group: "*", Version: "*", Resource: "deployments"}).selects(objects[0]) {
		t.Error("policy-controller compares group exactly; a resource rule's \"*\" is admission's, not its")
	}
	if !(Kind{Group: "*", Version: "*", Resource: "*", AnyStar: true}).selects(objects[0]) {
		t.Error("a resource rule of \"*\" selects every object")
	}
}

// TestIVPOLMatchConstraints: resourceRules, excludeResourceRules, the
// object and namespace selectors, as admission matches them.
func TestIVPOLMatchConstraints(t *testing.T) {
	t.Parallel()
	policy := func(constraints string) *Policy {
		return readDoc(t, `apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: p}
spec:
  matchConstraints:
`+constraints+`
  matchImageReferences: [{glob: "*"}]
  attestors: [{name: k, cosign: {key: {data: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIcbqK2RAVZOfPzo+kbOhNYq8DK9fB2BGbU7jAXEvYthJ3vRcYq8l7g9UAXXiz9P2awFuTa4COcZU2IdEDVU0uA==\n-----END PUBLIC KEY-----"}}}]
  validations: [{expression: "images.containers.map(i, verifyImageSignatures(i, [attestors.k])).all(e, e > 0)"}]`)
	}
	pods := `    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]`
	pod := Objects(deployment, func(string) map[string]string { return map[string]string{"env": "prod"} })[1]
	for _, tc := range []struct {
		name, constraints string
		want              bool
		unsupported       string
	}{
		{"pods", pods, true, ""},
		{"their labels", pods + "\n    objectSelector: {matchLabels: {app: web}}", true, ""},
		{"other labels", pods + "\n    objectSelector: {matchLabels: {app: db}}", false, ""},
		{"namespace labels", pods + "\n    namespaceSelector: {matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}", false, ""},
		{"excluded", pods + "\n    excludeResourceRules: [{apiGroups: [\"*\"], apiVersions: [\"*\"], operations: [\"*\"], resources: [\"*\"]}]", false, ""},
		{"updates only", `    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [pods]}]`, false, "matchConstraints without pods"},
		{"names", `    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods], resourceNames: [web]}]`, true, "resourceNames"},
	} {
		r := policy(tc.constraints).Rules[0]
		if got := r.Match.Applies(pod); got != tc.want {
			t.Errorf("%s: applies = %v, want %v", tc.name, got, tc.want)
		}
		got := strings.Join(r.Unsupported, "; ")
		if (tc.unsupported == "") != (got == "") || !strings.Contains(got, tc.unsupported) {
			t.Errorf("%s: unsupported %q, want %q", tc.name, got, tc.unsupported)
		}
	}
}

// TestSelectorUnknownLabels: labels not known (nil) are taken to be
// selected; known empty labels are not.
func TestSelectorUnknownLabels(t *testing.T) {
	t.Parallel()
	var f Filter
	if u := readSelector(&f.NamespaceSelector, map[string]any{"matchLabels": map[string]any{"signing": "enforced"}}, "ns"); u != nil {
		t.Fatal(u)
	}
	if !f.Selects(Object{}) || f.Selects(Object{NamespaceLabels: map[string]string{}}) ||
		!f.Selects(Object{NamespaceLabels: map[string]string{"signing": "enforced"}}) {
		t.Error("namespace selector: unknown labels selected, known ones matched")
	}
	if u := readSelector(&f.Selector, map[string]any{"matchLabel": map[string]any{"a": "b"}}, "selector"); len(u) != 1 || !strings.Contains(u[0], "selector, which does not read") {
		t.Errorf("a selector with an unknown field: %q, want it named", u)
	}
	if u := readSelector(&f.Selector, map[string]any{"matchExpressions": []any{map[string]any{"key": "a", "operator": "Near"}}}, "selector"); len(u) != 1 {
		t.Errorf("a selector with an unknown operator: %q, want it named", u)
	}
}

// TestInactive: a policy that does not act at admission (background scans
// only, or JSON payloads) applies to no object, and lint says why.
func TestInactive(t *testing.T) {
	t.Parallel()
	ivpol := func(evaluation string) string {
		return `apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: p}
spec:
  evaluation: ` + evaluation + `
  matchImageReferences: [{glob: "*"}]
  attestors: [{name: k, cosign: {keyless: {identities: [{issuer: i, subject: s}]}}}]
  validations: [{expression: "images.containers.map(i, verifyImageSignatures(i, [attestors.k])).all(e, e > 0)"}]`
	}
	pod := Object{Version: "v1", Kind: "Pod"}
	for doc, want := range map[string]string{
		ivpol("{mode: JSON}"):                  "evaluation.mode: JSON",
		ivpol("{admission: {enabled: false}}"): "evaluation.admission.enabled: false",
		ivpol("{admission: {enabled: true}}"):  "",
		`apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: p}
spec:
  admission: false
  rules:
  - name: r
    match: {any: [{resources: {kinds: [Pod]}}]}
    verifyImages: [{imageReferences: ["*"], attestors: [{entries: [{keyless: {issuer: i, subject: s}}]}]}]`: "spec.admission: false",
	} {
		p := readDoc(t, doc)
		r := p.Rules[0]
		if !strings.HasPrefix(r.Inactive, want) || (want == "") != (r.Inactive == "") || r.Match.Applies(pod) != (want == "") {
			t.Errorf("%s: inactive %q, applies %v; want %q", p.ID(), r.Inactive, r.Match.Applies(pod), want)
		}
		findings := Lint(p, nil)
		if got := slices.ContainsFunc(findings, func(f Finding) bool { return f.Check == "not-at-admission" }); got != (want != "") {
			t.Errorf("%s: lint %+v, want not-at-admission %v", p.ID(), findings, want != "")
		}
	}
}
