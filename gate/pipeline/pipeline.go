// Package pipeline is pregate's one gather sequence: compile the trust
// policies, open the revision (copy a local tree or fetch a Flux
// artifact), render it, verify every image against the policies that
// match it, and evaluate. The CLI, the controller and the Argo CD hook are
// shells around it: they say where the revision and the policies come
// from and show what it returns; none of them repeats a step.
//
// A new capability that changes what a revision renders to (Helm charts,
// SOPS), which policies apply (imported admission policies) or what is
// done with a verified tree (republishing it) is a change here or below,
// not in a shell; docs/architecture.md says where each plugs in.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/gate"
	gateadmission "github.com/pregate/pregate/gate/admission"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/sources"
	"github.com/pregate/pregate/verify"
)

// Stage names a step of the sequence; an *Error says which one failed.
type Stage string

// The stages, in the order they run.
const (
	// PolicyStage: the trust policies could not be compiled, or their
	// trust material could not be loaded.
	PolicyStage Stage = "Policy"
	// OpenStage: the revision's files could not be copied or fetched.
	OpenStage Stage = "Open"
	// RenderStage: the revision could not be rendered.
	RenderStage Stage = "Render"
	// VerifyStage: verification could not run (a cancelled context, a
	// registry client that could not be set up). Registry failures are
	// not errors: they are findings in the verdict.
	VerifyStage Stage = "Verify"
)

// Error is a failure to decide, with the stage it happened in: the
// controller turns the stage into a condition reason.
type Error struct {
	Stage Stage
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func fail(s Stage, err error) error { return &Error{Stage: s, Err: err} }

// StageOf returns the stage err failed in, or "" when it is not an *Error.
func StageOf(err error) Stage {
	var e *Error
	if errors.As(err, &e) {
		return e.Stage
	}
	return ""
}

// Source is one revision tree and the paths of it to render.
type Source struct {
	// Name is how the source is shown: a directory, or the Flux source
	// as Kind/namespace/name.
	Name string
	// Root is the source root as the user knows it (a directory on disk,
	// an artifact URL), for reports; the tree itself is written elsewhere.
	Root string
	// Ref is the Flux source the tree is: Kustomizations of this source
	// are followed, others are gaps. Empty: render finds it (see
	// render.WithSourceRef), and Rendered.Ref says what it found.
	Ref render.SourceRef
	// Open writes the revision's files to dir and returns the tree:
	// sources.Local for a directory, sources.Fetch for a Flux artifact.
	Open func(ctx context.Context, dir string) (*sources.Tree, error)
	// Paths are the directories to render, slash-separated and relative
	// to the tree's root ("." is the root).
	Paths []string
	// Render are the options every path is rendered with, besides the
	// source ref.
	Render []render.Option
}

// Policies are the trust policies a check compiles.
type Policies struct {
	Set *config.Set
	// Trust loads the trust material the policies need.
	Trust config.TrustSource
}

// compile compiles the policies, loading their trust material.
func (p Policies) compile() (*config.Compiled, error) {
	if p.Set == nil || len(p.Set.TrustPolicies()) == 0 {
		return nil, fail(PolicyStage, errors.New("no trust policy"))
	}
	c, err := p.Set.Compile(p.Trust)
	if err != nil {
		return nil, fail(PolicyStage, err)
	}
	return c, nil
}

// Options configure a check.
type Options struct {
	Policies Policies
	// Registry and Verifier configure how images are verified: credentials,
	// hosts, timeouts, the verdict cache.
	Registry []verify.RegistryOption
	Verifier []verify.VerifierOption
	// Unmatched and AllowGaps are the gate's configuration besides the
	// policies.
	Unmatched gate.Unmatched
	AllowGaps []string
	// Concurrency and Timeout bound verifying the revision's images, as
	// gate.Gate's fields.
	Concurrency int
	Timeout     time.Duration
	// WorkDir is where the revision's trees are written, and stay for the
	// caller (who removes it). Empty: a temporary directory, removed when
	// the check returns.
	WorkDir string
	// Progress, when set, is told how verification advances. It is called
	// from several goroutines, one call at a time.
	Progress func(Progress)
	// Admission are the cluster's admission policies (Kyverno,
	// policy-controller) whose answers for the revision's images are
	// predicted, besides those the revision itself applies, which replace
	// any of the same kind and name here. Their keyless
	// signers are verified with Policies.Trust's default trust material.
	Admission []*admission.Policy
	// NamespaceLabels, when set, gives the labels of a namespace of the
	// cluster (found false when it has none of that name), for the
	// namespaces the revision does not define: policy-controller checks
	// Pods only in namespaces that opt in by label. Without it, such a
	// namespace is taken to opt in.
	NamespaceLabels func(ctx context.Context, namespace string) (labels map[string]string, found bool, err error)
	// Engines are the admission engine releases the cluster runs, whose
	// ways of reading signatures the predictions follow; an engine not
	// given is taken to be its newest known release.
	Engines admission.Profiles
	// Running, when set, lists the Pods that run in the cluster (their
	// objects, as the API server gives them). When the revision applies
	// admission policies, or some policy is in Audit or Warn, their images
	// are predicted too: under the policies after the revision, and under
	// those of Admission, as the cluster has them now, so that a denial
	// the revision brings is told from one that was there before.
	Running func(ctx context.Context) ([]map[string]any, error)
	// RunningPods says whether such a denial blocks the revision (the
	// default) or only warns.
	RunningPods gate.RunningPods
	// RevisionTrust, when set, prepares the TrustPolicies and TrustRoots
	// the revision applies before they are checked too (see
	// revisionTrust): the controller keeps those its Gate selects and
	// reads the Secrets they name. Without it, all of them are checked as
	// they are written.
	RevisionTrust func(RevisionTrust) (RevisionTrust, error)
}

// Progress is how far verification has come: of Total images to verify,
// Resolved have been resolved to a digest and Verified are done.
type Progress struct {
	Total, Resolved, Verified int
}

// Rendered is one rendered path of a source.
type Rendered struct {
	// Source is the Source's Name and Root its Root; Ref is the Flux
	// source the path was rendered as, RefFrom the Kustomization it was
	// found in when the Source did not say.
	Source  string
	Root    string
	Ref     render.SourceRef
	RefFrom string
	// Path is the rendered directory, relative to the tree's root.
	Path string
	// Revision is the tree's revision in Flux form, "" when unknown.
	Revision string
	// Skipped are the tree's entries left out as Flux leaves them out.
	Skipped []sources.Skipped
	// Result is what the path rendered to: objects, images with every
	// location, Flux Kustomizations and gaps.
	*render.Result
}

// Result is everything a check found.
type Result struct {
	Revision gate.Revision
	// Trees are the revision's files, one per source, in WorkDir (their
	// Root is gone when WorkDir was not given).
	Trees []*sources.Tree
	// Renders are the rendered paths, in the order given.
	Renders []Rendered
	// Rendered merges them: an image found in several paths is one image
	// with the locations of all.
	Rendered gate.Rendered
	// Policies are the compiled trust policies.
	Policies *config.Compiled
	// Results are what verifying each image against each policy that
	// matches it found: digest, lookups, signatures considered. Sorted by
	// image, then policy.
	Results []verify.Result
	// Admission are the admission policies whose answers were predicted:
	// Options.Admission, less those the revision replaces, then those the
	// revision applies.
	Admission []*admission.Policy
	// AdmissionApplied are the IDs of the admission policies the revision
	// applies (those that replace the cluster's copies, or are new).
	AdmissionApplied []string
	// Verdict is the decision.
	Verdict gate.Verdict
}

// Config is the gate configuration of o with the compiled policies.
func (o *Options) config(c *config.Compiled) gate.Config {
	cfg := gate.Config{Unmatched: o.Unmatched, AllowGaps: o.AllowGaps}
	if c != nil {
		cfg.Policies = c.Gate
	}
	return cfg
}

// Check runs the whole sequence over the sources: compile the policies,
// open and render every path, verify every image, evaluate. An error means
// pregate could not decide; its Stage says where. A denial is a Verdict.
func Check(ctx context.Context, o Options, srcs ...Source) (*Result, error) {
	compiled, err := o.Policies.compile() //nolint:contextcheck // attestation conditions bound their own evaluation
	if err != nil {
		return nil, err
	}
	res, err := renderSources(ctx, o, srcs)
	if err != nil {
		return nil, err
	}
	switch set, err := revisionTrust(o, res); {
	case err != nil:
		return nil, fail(PolicyStage, fmt.Errorf("the revision's trust policies: %w", err))
	case set != nil:
		if compiled, err = (Policies{Set: set, Trust: o.Policies.Trust}).compile(); err != nil { //nolint:contextcheck // as above
			return nil, err
		}
	}
	res.Policies = compiled
	adm, err := admissionPolicies(o, res)
	if err != nil {
		return nil, err
	}
	if err := verifyImages(ctx, o, res, adm); err != nil {
		return nil, err
	}
	return res, nil
}

// admissionPolicies compiles the admission policies given and those the
// revision applies. A policy the revision applies replaces the one of the
// same kind and name given (the cluster's copy): once applied, the
// revision's version is the one the engine enforces, so a revision that
// fixes a policy is judged by the fix. A policy several rendered paths
// hold counts once.
func admissionPolicies(o Options, res *Result) (gateadmission.Compiled, error) {
	var fromRevision []*admission.Policy
	seen := map[string]bool{}
	namespaces := map[string]map[string]string{}
	for _, r := range res.Renders {
		for _, obj := range r.Objects {
			if ns, labels, ok := namespaceLabels(obj.Content); ok {
				namespaces[ns] = labels
			}
			p, ok, err := admission.Read(obj.Origin.File, obj.Content)
			if err != nil {
				return gateadmission.Compiled{}, fail(PolicyStage, fmt.Errorf("admission policy in the revision: %w", err))
			}
			if ok && !seen[p.ID()] {
				seen[p.ID()] = true
				fromRevision = append(fromRevision, p)
			}
		}
	}
	var policies []*admission.Policy
	for _, p := range o.Admission {
		if !seen[p.ID()] {
			policies = append(policies, p)
		}
	}
	policies = admission.ResolveTrustRoots(append(policies, fromRevision...))
	res.Admission = policies
	for _, p := range fromRevision {
		res.AdmissionApplied = append(res.AdmissionApplied, p.ID())
	}
	if len(policies) == 0 {
		return gateadmission.Compiled{}, nil
	}
	c, err := gateadmission.Compile(policies, o.Engines, func() (root.TrustedMaterial, error) { return o.Policies.Trust(nil) })
	if err != nil {
		return gateadmission.Compiled{}, fail(PolicyStage, fmt.Errorf("admission policies: %w", err))
	}
	c.Namespaces = namespaces
	return c, nil
}

// namespaceLabels reads a Namespace object's name and labels.
func namespaceLabels(obj map[string]any) (string, map[string]string, bool) {
	if obj["apiVersion"] != "v1" || obj["kind"] != "Namespace" {
		return "", nil, false
	}
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if name == "" {
		return "", nil, false
	}
	labels := map[string]string{}
	raw, _ := md["labels"].(map[string]any)
	for k, v := range raw {
		if s, ok := v.(string); ok {
			labels[k] = s
		}
	}
	return name, labels, true
}

// clusterNamespaces adds to adm the labels of the namespaces the images
// run in that the revision does not define, as o.NamespaceLabels gives
// them, when the admission policies read them.
func clusterNamespaces(ctx context.Context, o Options, adm *gateadmission.Compiled, images []gate.Image) error {
	if o.NamespaceLabels == nil || !adm.ReadsNamespaces() {
		return nil
	}
	for _, img := range images {
		for _, ns := range gateadmission.Namespaces(img) {
			if _, known := adm.Namespaces[ns]; known {
				continue
			}
			labels, found, err := o.NamespaceLabels(ctx, ns)
			if err != nil {
				return fmt.Errorf("namespace %s: %w", ns, err)
			}
			if !found || labels == nil {
				// A namespace that does not exist has no label.
				labels = map[string]string{}
			}
			if adm.Namespaces == nil {
				adm.Namespaces = map[string]map[string]string{}
			}
			adm.Namespaces[ns] = labels
		}
	}
	return nil
}

// Render opens and renders the sources without verifying anything: the
// images a revision would run and its gaps, each marked blocking or not
// as Options.AllowGaps says (Check marks them too; its Verdict's gaps
// are what count there).
func Render(ctx context.Context, o Options, srcs ...Source) (*Result, error) {
	res, err := renderSources(ctx, o, srcs)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Explain verifies one image against every policy that matches it,
// reading every place signatures are kept, and evaluates it as a
// one-image revision: Results say everything that was looked up and
// considered, and the Verdict what the admission policies of
// Options.Admission will do with it.
func Explain(ctx context.Context, o Options, image string) (*Result, error) {
	ref, err := render.ParseReference(image)
	if err != nil {
		return nil, fail(RenderStage, err)
	}
	compiled, err := o.Policies.compile() //nolint:contextcheck // attestation conditions bound their own evaluation
	if err != nil {
		return nil, err
	}
	o.Verifier = append(slices.Clip(o.Verifier), verify.WithEveryPlace())
	res := &Result{
		Revision: gate.Revision{Source: ref.Ref},
		Rendered: gate.Rendered{Images: []gate.Image{ref}},
		Policies: compiled,
	}
	adm, err := admissionPolicies(o, res)
	if err != nil {
		return nil, err
	}
	if err := verifyImages(ctx, o, res, adm); err != nil {
		return nil, err
	}
	return res, nil
}

// renderSources opens each source into the work directory and renders
// each of its paths.
func renderSources(ctx context.Context, o Options, srcs []Source) (*Result, error) {
	work := o.WorkDir
	if work == "" {
		tmp, err := os.MkdirTemp("", "pregate-")
		if err != nil {
			return nil, fail(OpenStage, err)
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	res := &Result{Rendered: gate.Rendered{Images: []gate.Image{}, Gaps: []gate.Gap{}}}
	index := map[string]int{}
	var names []string
	cfg := o.config(nil) // which gaps block; the policies come later
	for i, s := range srcs {
		tree, err := s.Open(ctx, filepath.Join(work, fmt.Sprintf("src-%d", i)))
		if err != nil {
			return nil, fail(OpenStage, err)
		}
		res.Trees = append(res.Trees, tree)
		names = append(names, s.Name)
		opts := slices.Clip(s.Render)
		if s.Ref != (render.SourceRef{}) {
			opts = append(opts, render.WithSourceRef(s.Ref))
		}
		for _, p := range s.Paths {
			r, err := render.Render(ctx, tree.Root, filepath.Join(tree.Root, filepath.FromSlash(p)), opts...)
			if err != nil {
				return nil, fail(RenderStage, err)
			}
			for i := range r.Gaps {
				r.Gaps[i].Blocking = cfg.Blocks(r.Gaps[i])
			}
			res.Renders = append(res.Renders, Rendered{Source: s.Name, Root: s.Root, Ref: r.Source, RefFrom: r.SourceFrom,
				Path: p, Revision: tree.Revision, Skipped: tree.Skipped, Result: r})
			merge(&res.Rendered, index, r)
		}
	}
	res.Revision = gate.Revision{Source: strings.Join(names, ","), ID: commonRevision(res.Trees)}
	return res, nil
}

// merge adds a path's images and gaps to the revision's.
func merge(into *gate.Rendered, index map[string]int, r *render.Result) {
	for _, img := range r.Images {
		if i, ok := index[img.Ref]; ok {
			into.Images[i].Locations = append(into.Images[i].Locations, img.Locations...)
			continue
		}
		index[img.Ref] = len(into.Images)
		img.Locations = append([]gate.Location(nil), img.Locations...)
		into.Images = append(into.Images, img)
	}
	into.Gaps = append(into.Gaps, r.Gaps...)
}

// commonRevision is the trees' revision when they all have the same one
// (or none), else "".
func commonRevision(trees []*sources.Tree) string {
	id := ""
	for _, t := range trees {
		switch {
		case t.Revision == "" || t.Revision == id:
		case id == "":
			id = t.Revision
		default:
			return ""
		}
	}
	return id
}

// verifyImages verifies the rendered images against the compiled policies,
// evaluates the verdict, and adds what the admission policies adm will do
// with the images.
func verifyImages(ctx context.Context, o Options, res *Result, adm gateadmission.Compiled) error {
	cfg := o.config(res.Policies)
	rec := newRecorder(cfg, res.Rendered.Images, o.Progress)
	reg, err := verify.NewRegistry(o.Registry...)
	if err != nil {
		return fail(VerifyStage, err)
	}
	running, err := prepareRunning(ctx, o, res, adm)
	if err != nil {
		return err
	}
	policies := append(slices.Clip(res.Policies.Verify), adm.VerifyPolicies()...)
	if running != nil {
		policies = append(policies, running.before.VerifyPolicies()...)
	}
	v, err := verify.NewVerifier(reg, policies, append(slices.Clip(o.Verifier), verify.WithResolved(rec.resolved))...)
	if err != nil {
		return fail(PolicyStage, err)
	}
	rec.verifier = v
	g := &gate.Gate{Renderer: res.Rendered, Verifier: rec, Config: cfg, Concurrency: o.Concurrency, Timeout: o.Timeout}
	verdict, err := g.Check(ctx, res.Revision)
	if err != nil {
		return fail(VerifyStage, err)
	}
	if err := clusterNamespaces(ctx, o, &adm, res.Rendered.Images); err != nil {
		return fail(VerifyStage, fmt.Errorf("admission: %w", err))
	}
	check := func(ctx context.Context, image string, p *verify.Policy) (verify.Result, error) {
		return v.Check(ctx, image, gate.Policy{Name: p.Name, Verify: p})
	}
	preds, err := adm.Check(ctx, res.Rendered.Images, check, o.Concurrency)
	if err != nil {
		return fail(VerifyStage, err)
	}
	verdict.AddAdmission(cfg, preds)
	placed := placedPredictions(preds, res.Rendered.Images)
	if running != nil {
		if err := clusterNamespaces(ctx, o, &adm, running.images); err != nil {
			return fail(VerifyStage, fmt.Errorf("admission: %w", err))
		}
		if err := clusterNamespaces(ctx, o, &running.before, running.images); err != nil {
			return fail(VerifyStage, fmt.Errorf("admission: %w", err))
		}
		rs, sum, now, err := running.predict(ctx, adm, check, o.Concurrency)
		if err != nil {
			return fail(VerifyStage, err)
		}
		verdict.AddRunning(o.RunningPods, rs, sum)
		placed = append(placed, now...)
	}
	verdict.Readiness = gate.ComputeReadiness(placed)
	res.Verdict = verdict
	res.Results = rec.sorted()
	return nil
}
