package e2e

import (
	"maps"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestManifests builds manifests/ as `kubectl apply -k manifests/` does and
// checks what it installs: the three CRDs, least-privilege RBAC, and a
// hardened controller Deployment.
func TestManifests(t *testing.T) {
	t.Parallel()
	byKind := map[string][]map[string]any{}
	for _, u := range buildManifests(t) {
		obj, kind := u.Object, u.GetKind()
		byKind[kind] = append(byKind[kind], obj)
		if kind != "CustomResourceDefinition" && kind != "Namespace" && kind != "ClusterRole" && kind != "ClusterRoleBinding" {
			if ns := str(obj, "metadata", "namespace"); ns != "pregate-system" {
				t.Errorf("%s %s is in namespace %q, want pregate-system", kind, str(obj, "metadata", "name"), ns)
			}
		}
	}

	var crds []string
	for _, c := range byKind["CustomResourceDefinition"] {
		crds = append(crds, str(c, "metadata", "name"))
	}
	slices.Sort(crds)
	if want := []string{"gates.gate.pregate.dev", "trustpolicies.gate.pregate.dev", "trustroots.gate.pregate.dev"}; !slices.Equal(crds, want) {
		t.Errorf("CRDs = %v, want %v", crds, want)
	}

	// RBAC: nothing written but Gate status, events and the Gates' own
	// ExternalArtifacts; Secrets, ConfigMaps
	// and ServiceAccounts only read one by one; no wildcards.
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, role := range byKind[kind] {
			rules, _ := role["rules"].([]any)
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				groups, resources, verbs := strs(rule["apiGroups"]), strs(rule["resources"]), strs(rule["verbs"])
				if slices.Contains(groups, "*") || slices.Contains(resources, "*") || slices.Contains(verbs, "*") {
					t.Errorf("%s rule %v uses a wildcard", kind, rule)
				}
				writes := slices.ContainsFunc(verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" })
				for _, res := range resources {
					switch {
					case res == "secrets" || res == "configmaps" || res == "serviceaccounts":
						if !slices.Equal(verbs, []string{"get"}) {
							t.Errorf("%s may %v %s, want get only", kind, verbs, res)
						}
					case writes && res != "gates/status" && res != "events" && res != "externalartifacts" && res != "externalartifacts/status" && (kind != "Role" || res != "leases"):
						t.Errorf("%s may %v %s; the controller writes only Gate status, events, ExternalArtifacts and (in its namespace) its lease", kind, verbs, res)
					}
				}
			}
		}
	}
	if len(byKind["Role"]) != 1 || str(byKind["Role"][0], "metadata", "namespace") != "pregate-system" {
		t.Errorf("want one namespaced Role (leader election) in pregate-system, got %d", len(byKind["Role"]))
	}

	// The artifact server is reachable from the Flux namespace only, and
	// its Service is the address the controller advertises.
	var artifactIngress bool
	for _, np := range byKind["NetworkPolicy"] {
		b, err := yaml.Marshal(np)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Spec struct {
				Ingress []struct {
					From []struct {
						NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector"`
					} `json:"from"`
					Ports []struct {
						Port string `json:"port"`
					} `json:"ports"`
				} `json:"ingress"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		for _, in := range p.Spec.Ingress {
			if len(in.Ports) != 1 || in.Ports[0].Port != "http" {
				continue
			}
			artifactIngress = len(in.From) == 1 && in.From[0].NamespaceSelector != nil &&
				maps.Equal(in.From[0].NamespaceSelector.MatchLabels, map[string]string{"kubernetes.io/metadata.name": "flux-system"})
		}
	}
	if !artifactIngress {
		t.Errorf("no NetworkPolicy lets only flux-system reach the artifact server's port http")
	}
	var artifactService bool
	for _, svc := range byKind["Service"] {
		artifactService = artifactService || str(svc, "metadata", "name") == "pregate-artifacts"
	}
	if !artifactService {
		t.Errorf("no pregate-artifacts Service")
	}

	// The controller runs non-root, read-only, without privileges, with
	// resource requests and probes.
	deps := byKind["Deployment"]
	if len(deps) != 1 {
		t.Fatalf("want one Deployment, got %d", len(deps))
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					ServiceAccountName string `json:"serviceAccountName"`
					SecurityContext    struct {
						RunAsNonRoot   *bool `json:"runAsNonRoot"`
						SeccompProfile struct {
							Type string `json:"type"`
						} `json:"seccompProfile"`
					} `json:"securityContext"`
					Containers []struct {
						Image           string   `json:"image"`
						Args            []string `json:"args"`
						SecurityContext struct {
							AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
							ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
							Capabilities             struct {
								Drop []string `json:"drop"`
							} `json:"capabilities"`
						} `json:"securityContext"`
						Resources struct {
							Requests map[string]string `json:"requests"`
						} `json:"resources"`
						LivenessProbe  *struct{} `json:"livenessProbe"`
						ReadinessProbe *struct{} `json:"readinessProbe"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	b, err := yaml.Marshal(deps[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "pregate-controller" || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("pod spec = %+v, want the pregate-controller service account, non-root, RuntimeDefault seccomp", pod)
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext = %+v, want no privilege escalation, read-only root, all capabilities dropped", sc)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("container lacks resource requests or probes: %+v", c)
	}
	if !slices.Contains(c.Args, "--storage-path=/data") || !slices.Contains(c.Args, "--storage-adv-addr=pregate-artifacts.$(RUNTIME_NAMESPACE).svc.cluster.local.") {
		t.Errorf("container args %v: want the artifact storage on /data, advertised at the pregate-artifacts Service", c.Args)
	}
	if len(c.Args) == 0 || c.Args[0] != "controller" || !strings.HasPrefix(c.Image, "ghcr.io/pregate/pregate:") {
		t.Errorf("container runs %s %v, want the pregate image running `controller`", c.Image, c.Args)
	}
}

func str(obj map[string]any, path ...string) string {
	var cur any = obj
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
