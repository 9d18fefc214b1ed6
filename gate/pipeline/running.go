package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	gateadmission "github.com/pregate/pregate/gate/admission"
	"github.com/pregate/pregate/render"
)

// runningCheck is what runs in the cluster, whose images the admission
// policies are predicted for.
type runningCheck struct {
	images []gate.Image
	pods   int
	// changed says whether the revision applies admission policies;
	// before are the policies as the cluster has them now, to tell the
	// denials the revision brings (compiled only when changed).
	changed bool
	before  gateadmission.Compiled
	// files are the files of the revision's policies, by ID.
	files map[string]string
}

// prepareRunning lists the Pods that run when the predictions need them:
// the revision applies admission policies, or a policy is in Audit or
// Warn, whose readiness for Enforce they count in. Nil when not.
func prepareRunning(ctx context.Context, o Options, res *Result, adm gateadmission.Compiled) (*runningCheck, error) {
	changed := len(res.AdmissionApplied) > 0
	if o.Running == nil || (!changed && !adm.HasAuditOrWarn()) {
		return nil, nil
	}
	list, err := o.Running(ctx)
	if err != nil {
		return nil, fail(VerifyStage, fmt.Errorf("listing the Pods that run: %w", err))
	}
	objs := make([]render.Object, 0, len(list))
	for _, content := range list {
		if content["kind"] == nil {
			// The items of a typed list carry no kind.
			content = maps.Clone(content)
			content["apiVersion"], content["kind"] = "v1", "Pod"
		}
		if content["kind"] != "Pod" {
			continue
		}
		objs = append(objs, render.Object{Content: content})
	}
	// A Pod that runs has images that read; what does not read here (a
	// Pod the API server holds is not hand-written) is left out.
	images, _ := render.Images(objs)
	rc := &runningCheck{images: images, pods: len(objs), changed: changed, files: map[string]string{}}
	for _, p := range res.Admission {
		if slices.Contains(res.AdmissionApplied, p.ID()) {
			rc.files[p.ID()] = p.File
		}
	}
	if changed {
		before := admission.ResolveTrustRoots(slices.Clone(o.Admission))
		rc.before, err = gateadmission.Compile(before, o.Engines, func() (root.TrustedMaterial, error) { return o.Policies.Trust(nil) })
		if err != nil {
			return nil, fail(PolicyStage, fmt.Errorf("the cluster's admission policies: %w", err))
		}
		// Their verify policies stand beside the revision's, of the same
		// names, in one verifier.
		for _, vp := range rc.before.VerifyPolicies() {
			vp.Name += " (as the cluster has it)"
		}
	}
	return rc, nil
}

// predict predicts the admission policies after the revision (adm) for
// the running images, and the cluster's as they are for the denials, to
// tell those the revision brings. It returns what is not admitted, the
// counts, and every prediction with its namespaces, for readiness.
func (rc *runningCheck) predict(ctx context.Context, adm gateadmission.Compiled, check gateadmission.Checker, concurrency int) ([]gate.Running, gate.RunningSummary, []gate.Placed, error) {
	now, err := adm.Check(ctx, rc.images, check, concurrency)
	if err != nil {
		return nil, gate.RunningSummary{}, nil, err
	}
	// Without a change, what is predicted now is what was.
	before := now
	if rc.changed {
		if before, err = rc.before.Check(ctx, rc.images, check, concurrency); err != nil {
			return nil, gate.RunningSummary{}, nil, err
		}
	}
	key := func(a gate.Admission) string { return a.Policy + "\x00" + a.Rule + "\x00" + a.Image }
	was := map[string]gate.AdmissionOutcome{}
	for _, a := range before {
		was[key(a)] = a.Outcome
	}
	byRef := map[string]gate.Image{}
	for _, img := range rc.images {
		byRef[img.Ref] = img
	}
	var out []gate.Running
	denied := map[string]bool{}
	for _, a := range now {
		if a.Outcome == gate.AdmissionAdmit {
			continue
		}
		pods := podsOf(byRef[a.Image])
		r := gate.Running{Admission: a, Before: was[key(a)], PodCount: len(pods), PolicyFile: rc.files[a.Policy],
			Namespaces: gateadmission.Namespaces(byRef[a.Image]), Pods: slices.Clip(pods[:min(len(pods), gate.MaxRunningPods)])}
		if r.Introduced() {
			for _, p := range pods {
				denied[p] = true
			}
		}
		out = append(out, r)
	}
	sum := gate.RunningSummary{Pods: rc.pods, Images: len(rc.images), Denied: len(denied)}
	return out, sum, placedPredictions(now, rc.images), nil
}

// podsOf are the Pods (namespace/name) an image runs in, sorted.
func podsOf(img gate.Image) []string {
	var out []string
	for _, l := range img.Locations {
		kind, rest, _ := strings.Cut(l.Object, "/")
		if kind == "Pod" && !slices.Contains(out, rest) {
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out
}

// placedPredictions puts each prediction with the namespaces its image
// runs in.
func placedPredictions(preds []gate.Admission, images []gate.Image) []gate.Placed {
	nss := map[string][]string{}
	for _, img := range images {
		nss[img.Ref] = gateadmission.Namespaces(img)
	}
	out := make([]gate.Placed, 0, len(preds))
	for _, a := range preds {
		out = append(out, gate.Placed{Admission: a, Namespaces: nss[a.Image]})
	}
	return out
}
