package admission

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Read reads the admission policies among objects (decoded YAML or JSON
// documents, as render gives them), the policy-controller TrustRoots
// their rules may name (Policy.TrustRoot), and policy-controller's
// configuration ConfigMap (Policy.NoMatch). Objects of other kinds are left out;
// the bool says whether obj is one. file names where the objects came
// from, for messages.
func Read(file string, obj map[string]any) (*Policy, bool, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	namespace, _ := md["namespace"].(string)
	p := &Policy{Kind: kind, Name: name, File: file}
	fail := func(err error) (*Policy, bool, error) {
		return nil, true, fmt.Errorf("%s: %s %s: %w", file, kind, name, err)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return fail(err)
	}
	switch {
	case group == "kyverno.io" && (kind == "ClusterPolicy" || kind == "Policy"):
		p.Engine = Kyverno
		if kind == "Policy" {
			p.Namespace = namespace
		}
		var kp kyvernoPolicy
		if err := json.Unmarshal(raw, &kp); err != nil {
			return fail(err)
		}
		if err := readKyverno(p, kp); err != nil {
			return fail(err)
		}
	case group == "policies.kyverno.io" && (kind == "ImageValidatingPolicy" || kind == "NamespacedImageValidatingPolicy"):
		p.Engine = Kyverno
		if kind == "NamespacedImageValidatingPolicy" {
			p.Namespace = namespace
		}
		var iv ivpol
		if err := json.Unmarshal(raw, &iv); err != nil {
			return fail(err)
		}
		if err := readIVPOL(p, iv); err != nil {
			return fail(err)
		}
	case apiVersion == "v1" && kind == "ConfigMap" && name == PolicyControllerConfigMap:
		p.Engine = PolicyController
		p.Namespace = namespace
		data, _ := obj["data"].(map[string]any)
		readPolicyControllerConfig(p, data)
	case group == "policy.sigstore.dev" && kind == "TrustRoot":
		p.Engine = PolicyController
		var tr trustRoot
		if err := json.Unmarshal(raw, &tr); err != nil {
			return fail(err)
		}
		readTrustRoot(p, tr)
	case group == "policy.sigstore.dev" && kind == "ClusterImagePolicy":
		p.Engine = PolicyController
		var cip clusterImagePolicy
		if err := json.Unmarshal(raw, &cip); err != nil {
			return fail(err)
		}
		if err := readClusterImagePolicy(p, cip); err != nil {
			return fail(err)
		}
	default:
		return nil, false, nil
	}
	if name == "" {
		return fail(fmt.Errorf("no metadata.name"))
	}
	return p, true, nil
}
