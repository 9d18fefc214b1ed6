package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fluxcd/pkg/apis/meta"
	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	gatecontroller "github.com/pregate/pregate/gate/controller"
)

// The Argo CD health check of manifests/argocd/health: the argocd-cm keys
// Argo CD reads it from (resource.customizations.<what>.<group>_<kind>)
// and the bound on its messages.
const (
	argoHealthDir      = "../manifests/argocd/health"
	argoHealthKey      = "resource.customizations.health.gate.pregate.dev_Gate"
	argoHealthLibsKey  = "resource.customizations.useOpenLibs.gate.pregate.dev_Gate"
	argoHealthMaxBytes = 1024
)

// argoHealthScript reads the health check out of the argocd-cm patch
// users apply, not a copy: the script tested is the script shipped. It
// returns the script and whether Argo CD opens Lua's standard libraries to
// it (useOpenLibs).
func argoHealthScript(t *testing.T) (string, bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(argoHealthDir, "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		t.Fatalf("argocd-cm.yaml: %v", err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Name != "argocd-cm" || cm.Namespace != "argocd" {
		t.Fatalf("argocd-cm.yaml patches %s %s %s/%s, want v1 ConfigMap argocd/argocd-cm", cm.APIVersion, cm.Kind, cm.Namespace, cm.Name)
	}
	script := cm.Data[argoHealthKey]
	if strings.TrimSpace(script) == "" {
		t.Fatalf("argocd-cm.yaml has no %s", argoHealthKey)
	}
	libs, ok := cm.Data[argoHealthLibsKey]
	if ok && libs != "true" {
		t.Fatalf("%s is %q: Argo CD reads only \"true\"", argoHealthLibsKey, libs)
	}
	return script, ok
}

// argoHealthStatus is what Argo CD reads back from a health script.
type argoHealthStatus struct {
	Status  string
	Message string
}

// argoHealthCodes are the health statuses Argo CD accepts from a script;
// any other makes it Unknown ("Lua returned an invalid health status").
var argoHealthCodes = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// runArgoHealth evaluates a health script the way Argo CD's util/lua does
// (VM.ExecuteHealthLua): a fresh LState per evaluation with the standard
// libraries opened only when openLibs (useOpenLibs) is set, else only
// package, base and table (Argo CD adds a cut-down os, which the script
// does not use, so it is left out here); one second to run; the object
// as the global obj; the returned value must be a table whose status is a
// health status and whose message, if any, a string (Argo CD decodes the
// table as JSON into {status, message}).
func runArgoHealth(script string, openLibs bool, object []byte) (argoHealthStatus, error) {
	var decoded any
	if err := json.Unmarshal(object, &decoded); err != nil {
		return argoHealthStatus{}, err
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return argoHealthStatus{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", jsonToLua(L, decoded))
	if err := L.DoString(script); err != nil {
		return argoHealthStatus{}, err
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return argoHealthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", L.Get(-1).Type())
	}
	status, ok := hs.RawGetString("status").(lua.LString)
	if !ok || !argoHealthCodes[string(status)] {
		return argoHealthStatus{}, fmt.Errorf("hs.status = %v: not a health status", hs.RawGetString("status"))
	}
	var message string
	switch m := hs.RawGetString("message").(type) {
	case lua.LString:
		message = string(m)
	case *lua.LNilType:
	default:
		return argoHealthStatus{}, fmt.Errorf("hs.message is a %s, not a string", m.Type())
	}
	return argoHealthStatus{Status: string(status), Message: message}, nil
}

// jsonToLua converts a value decoded from JSON as Argo CD converts an
// object for its scripts: objects to tables, arrays to 1-based tables,
// numbers, strings and booleans to theirs, null to nil.
func jsonToLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, e := range v {
			t.RawSetString(k, jsonToLua(L, e))
		}
		return t
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, e := range v {
			t.Append(jsonToLua(L, e))
		}
		return t
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}

// argoHealthGate is a Gate of generation generation whose status has
// observedGeneration observed, the revisions given and conditions; no
// conditions leave the status empty, as on a Gate just created.
func argoHealthGate(generation, observed int64, attempted, verified string, conditions ...metav1.Condition) *v1alpha1.Gate {
	return &v1alpha1.Gate{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Gate"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "apps", Namespace: "flux-system", Generation: generation,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		},
		Spec: v1alpha1.GateSpec{
			SourceRef: &v1alpha1.SourceReference{Kind: "GitRepository", Name: "apps"},
			Interval:  metav1.Duration{Duration: 5 * time.Minute},
		},
		Status: v1alpha1.GateStatus{
			ObservedGeneration:    observed,
			LastAttemptedRevision: attempted,
			LastVerifiedRevision:  verified,
			Conditions:            conditions,
		},
	}
}

// argoHealthCondition is a condition as the controller writes it (Flux's
// conditions package stamps the Gate's generation on it).
func argoHealthCondition(typ string, status metav1.ConditionStatus, reason, message string, generation int64) metav1.Condition {
	return metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
		LastTransitionTime: metav1.NewTime(time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)),
	}
}

// TestArgoCDHealthLua runs the health check shipped in
// manifests/argocd/health under gopher-lua, as Argo CD runs it, on Gates
// in each state the controller leaves them in, built from the API types so
// that a renamed field breaks it: with the standard libraries the patch
// opens to it, and in Argo CD's default sandbox, where only a message
// longer than the bound reads differently.
func TestArgoCDHealthLua(t *testing.T) {
	t.Parallel()
	script, openLibs := argoHealthScript(t)
	if !openLibs {
		t.Errorf("argocd-cm.yaml does not set %s: long messages cannot be cut", argoHealthLibsKey)
	}

	const (
		rev1      = "main@sha1:1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
		rev2      = "main@sha1:2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
		verifying = "verifying revision " + rev2
		denied    = "1 of 2 images denied: ghcr.io/acme/worker:0.9 (deploy/worker.yaml): no signatures found"
	)
	var (
		T, F, U = metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
		ready   = func(s metav1.ConditionStatus, reason, msg string, gen int64) metav1.Condition {
			return argoHealthCondition(meta.ReadyCondition, s, reason, msg, gen)
		}
		reconciling = func(reason, msg string, gen int64) metav1.Condition {
			return argoHealthCondition(meta.ReconcilingCondition, T, reason, msg, gen)
		}
		stalled = func(reason, msg string, gen int64) metav1.Condition {
			return argoHealthCondition(meta.StalledCondition, T, reason, msg, gen)
		}
		suspended = func(g *v1alpha1.Gate) *v1alpha1.Gate { g.Spec.Suspend = true; return g }
		// Text a registry supplied, quoted at length, multi-byte.
		long     = denied + ": " + strings.Repeat("signature from ünknöwn ſigner ", 4000)
		longRev  = "main@sha1:" + strings.Repeat("ß", 3000)
		fetchMsg = "fetching artifact of GitRepository/flux-system/apps: GET http://source-controller.flux-system.svc/gitrepository/apps.tar.gz: 503 Service Unavailable"
	)

	for _, tc := range []struct {
		name    string
		gate    *v1alpha1.Gate
		status  string
		message string
		// bounded: the message is over the bound; only its beginning is
		// compared.
		bounded bool
	}{
		{
			name:   "just created, no status",
			gate:   argoHealthGate(1, 0, "", ""),
			status: "Progressing", message: "Waiting for the Gate to verify a revision",
		},
		{
			name: "verifying its first revision",
			gate: argoHealthGate(1, 0, rev2, "",
				ready(U, meta.ProgressingReason, verifying, 1), reconciling(meta.ProgressingReason, verifying, 1)),
			status: "Progressing", message: verifying,
		},
		{
			name: "verifying a new revision",
			gate: argoHealthGate(1, 1, rev2, rev1,
				ready(U, meta.ProgressingReason, verifying, 1), reconciling(meta.ProgressingReason, verifying, 1)),
			status: "Progressing", message: verifying,
		},
		{
			name:   "verified",
			gate:   argoHealthGate(1, 1, rev1, rev1, ready(T, gate.SucceededReason, "2 of 2 images verified, 1 warned", 1)),
			status: "Healthy", message: "Verified revision " + rev1 + ": 2 of 2 images verified, 1 warned",
		},
		{
			// The controller advances status.observedGeneration only with
			// Ready=True: a first revision blocked leaves it unset.
			name: "blocked, its first revision",
			gate: argoHealthGate(1, 0, rev1, "",
				ready(F, gate.NoSignaturesReason, denied, 1), reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Degraded", message: "NoSignatures: " + denied,
		},
		{
			name: "blocked, after an allowed revision",
			gate: argoHealthGate(1, 1, rev2, rev1,
				ready(F, gate.IdentityMismatchReason, "1 of 2 images denied: ghcr.io/acme/api:1.2: signed by someone@example.com, want ci@acme.dev", 1),
				reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Degraded", message: "IdentityMismatch: 1 of 2 images denied: ghcr.io/acme/api:1.2: signed by someone@example.com, want ci@acme.dev",
		},
		{
			name: "blocked, after a spec change",
			gate: argoHealthGate(2, 1, rev2, rev1,
				ready(F, gate.CoverageGapReason, "images not seen: 1 coverage gap blocking: HelmRelease apps/podinfo: chart not found", 2),
				reconciling(meta.ProgressingWithRetryReason, verifying, 2)),
			status: "Degraded", message: "CoverageGap: images not seen: 1 coverage gap blocking: HelmRelease apps/podinfo: chart not found",
		},
		{
			name: "blocked by admission",
			gate: argoHealthGate(1, 1, rev2, rev1,
				ready(F, gate.AdmissionDeniedReason, "admission would deny 1 of 3 images: ghcr.io/acme/web:2", 1),
				reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Degraded", message: "AdmissionDenied: admission would deny 1 of 3 images: ghcr.io/acme/web:2",
		},
		{
			name: "undecided, registry unreachable",
			gate: argoHealthGate(1, 1, rev2, rev1,
				ready(F, gate.RegistryUnreachableReason, "1 of 2 images denied: ghcr.io/acme/worker:0.9: registry unreachable", 1),
				reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Degraded", message: "RegistryUnreachable: 1 of 2 images denied: ghcr.io/acme/worker:0.9: registry unreachable",
		},
		{
			name: "failed to decide, fetch failed",
			gate: argoHealthGate(1, 1, rev2, rev1,
				ready(F, gatecontroller.FetchFailedReason, fetchMsg, 1), reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Degraded", message: "FetchFailed: " + fetchMsg,
		},
		{
			name: "failed to republish",
			gate: argoHealthGate(1, 1, rev2, rev1,
				ready(F, gatecontroller.ArtifactFailedReason, "republishing revision "+rev2+": disk full", 1),
				reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Degraded", message: "ArtifactFailed: republishing revision " + rev2 + ": disk full",
		},
		{
			name: "waiting for its source to exist",
			gate: argoHealthGate(1, 0, "", "",
				ready(F, gatecontroller.SourceNotFoundReason, "GitRepository flux-system/apps not found", 1),
				reconciling(meta.ProgressingWithRetryReason, "GitRepository flux-system/apps not found", 1)),
			status: "Progressing", message: "SourceNotFound: GitRepository flux-system/apps not found",
		},
		{
			name: "waiting for its source's artifact",
			gate: argoHealthGate(1, 0, "", "",
				ready(F, gatecontroller.ArtifactNotReadyReason, "GitRepository flux-system/apps has no artifact yet", 1),
				reconciling(meta.ProgressingWithRetryReason, "GitRepository flux-system/apps has no artifact yet", 1)),
			status: "Progressing", message: "ArtifactNotReady: GitRepository flux-system/apps has no artifact yet",
		},
		{
			name:   "not ready, still progressing",
			gate:   argoHealthGate(1, 1, rev2, rev1, ready(F, meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Progressing", message: "ProgressingWithRetry: " + verifying,
		},
		{
			name: "stalled, invalid spec",
			gate: argoHealthGate(2, 2, rev1, rev1,
				ready(F, gatecontroller.InvalidSpecReason, "spec.postBuild.substitute: invalid variable name \"1x\"", 2),
				stalled(gatecontroller.InvalidSpecReason, "spec.postBuild.substitute: invalid variable name \"1x\"", 2)),
			status: "Degraded", message: "InvalidSpec: spec.postBuild.substitute: invalid variable name \"1x\"",
		},
		{
			name: "stalled, spec fixed, not yet seen",
			gate: argoHealthGate(3, 2, rev1, rev1,
				ready(F, gatecontroller.InvalidSpecReason, "spec.postBuild.substitute: invalid variable name \"1x\"", 2),
				stalled(gatecontroller.InvalidSpecReason, "spec.postBuild.substitute: invalid variable name \"1x\"", 2)),
			status: "Progressing", message: "Waiting for the Gate to verify generation 3",
		},
		{
			name:   "stale, verified before a spec change",
			gate:   argoHealthGate(2, 1, rev1, rev1, ready(T, gate.SucceededReason, "2 of 2 images verified", 1)),
			status: "Progressing", message: "Waiting for the Gate to verify generation 2",
		},
		{
			name:   "stale, status.observedGeneration behind",
			gate:   argoHealthGate(2, 1, rev1, rev1, ready(T, gate.SucceededReason, "2 of 2 images verified", 2)),
			status: "Progressing", message: "Waiting for the Gate to verify generation 2",
		},
		{
			name: "stale, blocked before a spec change",
			gate: argoHealthGate(2, 0, rev1, "",
				ready(F, gate.NoSignaturesReason, denied, 1), reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Progressing", message: "Waiting for the Gate to verify generation 2",
		},
		{
			name:   "suspended",
			gate:   suspended(argoHealthGate(1, 1, rev1, rev1, ready(T, gate.SucceededReason, "2 of 2 images verified", 1))),
			status: "Suspended", message: "Gate is suspended",
		},
		{
			name:   "suspended while blocked",
			gate:   suspended(argoHealthGate(1, 0, rev1, "", ready(F, gate.NoSignaturesReason, denied, 1))),
			status: "Suspended", message: "Gate is suspended",
		},
		{
			name: "blocked, very long message",
			gate: argoHealthGate(1, 0, rev1, "",
				ready(F, gate.NoSignaturesReason, long, 1), reconciling(meta.ProgressingWithRetryReason, verifying, 1)),
			status: "Degraded", message: "NoSignatures: " + long, bounded: true,
		},
		{
			name:   "verified, very long revision",
			gate:   argoHealthGate(1, 1, longRev, longRev, ready(T, gate.SucceededReason, "2 of 2 images verified", 1)),
			status: "Healthy", message: "Verified revision " + longRev + ": 2 of 2 images verified", bounded: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			object, err := json.Marshal(tc.gate)
			if err != nil {
				t.Fatal(err)
			}
			if tc.bounded != (len(tc.message) > argoHealthMaxBytes) {
				t.Fatalf("the case says bounded %t for a message of %d bytes", tc.bounded, len(tc.message))
			}
			for _, libs := range []bool{true, false} {
				got, err := runArgoHealth(script, libs, object)
				if err != nil {
					t.Fatalf("openLibs %t: %v", libs, err)
				}
				if got.Status != tc.status {
					t.Errorf("openLibs %t: status %s (%q), want %s", libs, got.Status, got.Message, tc.status)
				}
				checkArgoHealthMessage(t, got.Message)
				switch {
				case !tc.bounded:
					if got.Message != tc.message {
						t.Errorf("openLibs %t: message\n%q, want\n%q", libs, got.Message, tc.message)
					}
				case libs:
					// Cut on a character boundary, marked.
					if !strings.HasSuffix(got.Message, "…") || !strings.HasPrefix(tc.message, strings.TrimSuffix(got.Message, "…")) ||
						len(got.Message) < argoHealthMaxBytes-8 {
						t.Errorf("openLibs %t: message %q is not the beginning of the message, cut at %d bytes", libs, got.Message, argoHealthMaxBytes)
					}
				default:
					// Nothing can be cut without the string library.
					if !strings.Contains(got.Message, fmt.Sprintf("(message of %d bytes not shown", len(tc.message))) {
						t.Errorf("openLibs %t: message %q does not say the message was left out", libs, got.Message)
					}
				}
			}
		})
	}
}

// checkArgoHealthMessage checks what any health message must be: said,
// valid UTF-8 and bounded.
func checkArgoHealthMessage(t *testing.T, message string) {
	t.Helper()
	if message == "" || !utf8.ValidString(message) || len(message) > argoHealthMaxBytes {
		t.Errorf("message of %d bytes, valid UTF-8 %t: want a valid one of 1 to %d bytes: %q",
			len(message), utf8.ValidString(message), argoHealthMaxBytes, message)
	}
}

// TestArgoCDHealthLuaUnexpectedShapes feeds the health check objects the
// controller never writes (a status of the wrong type, conditions missing
// fields or of the wrong types): it must not fail, which Argo CD would
// show as an error, and must still answer with a health status and a
// bounded message.
func TestArgoCDHealthLuaUnexpectedShapes(t *testing.T) {
	t.Parallel()
	script, _ := argoHealthScript(t)

	// The script is Lua that gopher-lua compiles.
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	if _, err := L.LoadString(script); err != nil {
		t.Fatalf("the health check does not compile: %v", err)
	}
	L.Close()

	for _, tc := range []struct {
		name, object string
		// status is the health status wanted.
		status string
	}{
		{"empty", `{}`, "Progressing"},
		{"null fields", `{"apiVersion": "gate.pregate.dev/v1alpha1", "kind": "Gate", "metadata": null, "spec": null, "status": null}`, "Progressing"},
		{"spec and status strings", `{"spec": "suspend", "status": "Ready"}`, "Progressing"},
		{"suspend a string", `{"spec": {"suspend": "true"}, "status": {}}`, "Progressing"},
		{"conditions null", `{"status": {"conditions": null}}`, "Progressing"},
		{"conditions a string", `{"status": {"conditions": "Ready=True"}}`, "Progressing"},
		{"conditions an object", `{"status": {"conditions": {"type": "Ready", "status": "True"}}}`, "Progressing"},
		{"conditions not objects, no type", `{"status": {"conditions": [1, "Ready", null, true, [], {}, {"status": "True"}]}}`, "Progressing"},
		{"Ready without status", `{"status": {"conditions": [{"type": "Ready"}]}}`, "Progressing"},
		{"type a number", `{"status": {"conditions": [{"type": 7, "status": "True"}]}}`, "Progressing"},
		{"Ready neither True, False nor Unknown", `{"status": {"conditions": [{"type": "Ready", "status": "Maybe", "message": ["x"]}]}}`, "Progressing"},
		{"Ready=True only", `{"status": {"conditions": [{"type": "Ready", "status": "True"}]}}`, "Healthy"},
		{"Ready=True, fields of other types", `{"status": {"lastVerifiedRevision": {"a": 1}, "conditions": [{"type": "Ready", "status": "True", "message": 42}]}}`, "Healthy"},
		{"generations strings", `{"metadata": {"generation": "3"}, "status": {"observedGeneration": "x", "conditions": [{"type": "Ready", "status": "True", "observedGeneration": "2"}]}}`, "Healthy"},
		{"Ready=True, no status.observedGeneration", `{"metadata": {"generation": 3}, "status": {"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 3}]}}`, "Progressing"},
		{"Ready=False only", `{"metadata": {"generation": 3}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}`, "Degraded"},
		{"Ready=False, reason and message of other types", `{"status": {"conditions": [{"type": "Ready", "status": "False", "reason": 7, "message": {"nested": true}}]}}`, "Degraded"},
		{"Stalled=True only", `{"status": {"conditions": [{"type": "Stalled", "status": "True"}]}}`, "Degraded"},
		{"Stalled=False only", `{"status": {"conditions": [{"type": "Stalled", "status": "False"}]}}`, "Progressing"},
		{"Reconciling only", `{"status": {"conditions": [{"type": "Reconciling", "status": "True", "reason": "Progressing"}]}}`, "Progressing"},
		{"Ready=Unknown, empty message", `{"status": {"conditions": [{"type": "Ready", "status": "Unknown", "message": ""}]}}`, "Progressing"},
		{"reason over the bound", `{"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "` + strings.Repeat("R", 5000) + `"}]}}`, "Degraded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, libs := range []bool{true, false} {
				got, err := runArgoHealth(script, libs, []byte(tc.object))
				if err != nil {
					t.Fatalf("openLibs %t: %v", libs, err)
				}
				if got.Status != tc.status {
					t.Errorf("openLibs %t: status %s (%q), want %s", libs, got.Status, got.Message, tc.status)
				}
				checkArgoHealthMessage(t, got.Message)
			}
		})
	}
}

// TestArgoCDHealthComponent builds an Argo CD install with the health
// check, both ways the manifests document (the kustomize Component, and a
// copy of the patch next to the kustomization), as kustomize builds it,
// whether install.yaml leaves argocd-cm without a namespace (as Argo CD's
// does) or not: argocd-cm gains the script and keeps its other keys.
func TestArgoCDHealthComponent(t *testing.T) {
	t.Parallel()
	script, _ := argoHealthScript(t)
	files := map[string]string{}
	for _, name := range []string{"kustomization.yaml", "argocd-cm.yaml"} {
		b, err := os.ReadFile(filepath.Join(argoHealthDir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	const install = `apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
%s  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
  timeout.reconciliation: 180s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-rbac-cm
`
	for _, tc := range []struct{ name, use string }{
		{"component", "components:\n  - ../pregate-health\n"},
		{"patch", "patches:\n  - path: argocd-cm.yaml\n    target:\n      kind: ConfigMap\n      name: argocd-cm\n"},
	} {
		for _, namespace := range []string{"", "  namespace: argocd\n"} {
			t.Run(fmt.Sprintf("%s/namespaced=%t", tc.name, namespace != ""), func(t *testing.T) {
				t.Parallel()
				fs := filesys.MakeFsInMemory()
				write := func(path, content string) {
					if err := fs.WriteFile(path, []byte(content)); err != nil {
						t.Fatal(err)
					}
				}
				for name, content := range files {
					write("/pregate-health/"+name, content)
				}
				write("/argocd/argocd-cm.yaml", files["argocd-cm.yaml"])
				write("/argocd/install.yaml", fmt.Sprintf(install, namespace))
				write("/argocd/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: argocd\nresources:\n  - install.yaml\n"+tc.use)
				m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/argocd")
				if err != nil {
					t.Fatalf("kustomize build: %v", err)
				}
				var found bool
				for _, r := range m.Resources() {
					if r.GetName() != "argocd-cm" {
						continue
					}
					found = true
					obj, err := r.Map()
					if err != nil {
						t.Fatal(err)
					}
					var cm corev1.ConfigMap
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &cm); err != nil {
						t.Fatal(err)
					}
					switch {
					case cm.Namespace != "argocd":
						t.Errorf("argocd-cm in namespace %q, want argocd", cm.Namespace)
					case cm.Data["timeout.reconciliation"] != "180s" || cm.Labels["app.kubernetes.io/part-of"] != "argocd":
						t.Errorf("argocd-cm lost what it had: %v %v", cm.Labels, cm.Data)
					case cm.Data[argoHealthKey] != script || cm.Data[argoHealthLibsKey] != "true":
						t.Errorf("argocd-cm has not the health check: %v", cm.Data)
					}
				}
				if !found || len(m.Resources()) != 2 {
					t.Errorf("built %d objects, argocd-cm among them %t: want install.yaml's two", len(m.Resources()), found)
				}
			})
		}
	}
}
