package render

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/pregate/pregate/render/helm"
)

// Flux API groups render knows about.
const (
	kustomizeGroup = "kustomize.toolkit.fluxcd.io"
	helmGroup      = "helm.toolkit.fluxcd.io"
	sourceGroup    = "source.toolkit.fluxcd.io"
)

// SourceRef names a Flux source: GitRepository/flux-system/flux-system.
type SourceRef struct {
	Kind, Namespace, Name string
}

func (s SourceRef) String() string { return s.Kind + "/" + s.Namespace + "/" + s.Name }

// ParseSourceRef parses Kind/namespace/name.
func ParseSourceRef(s string) (SourceRef, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return SourceRef{}, fmt.Errorf("source reference %q: want Kind/namespace/name", s)
	}
	return SourceRef{Kind: parts[0], Namespace: parts[1], Name: parts[2]}, nil
}

// DefaultSourceRef is the source flux bootstrap creates.
var DefaultSourceRef = SourceRef{Kind: "GitRepository", Namespace: "flux-system", Name: "flux-system"}

type options struct {
	source        SourceRef
	sourceGiven   bool
	kustomization map[string]any
	substitutes   []map[string]any
	helm          []helm.Option
	keys          KeysFunc
	// noRemoteBases refuses remote bases; noRemoteBasesBy says why.
	noRemoteBases   bool
	noRemoteBasesBy string
}

// Option configures Render.
type Option func(*options) error

// WithSourceRef names the Flux source the tree is a revision of. Flux
// Kustomizations in the tree that apply this source are followed; those that
// apply another source are reported as gaps. Default: the source of the
// Flux Kustomization that applies the rendered path itself (flux
// bootstrap's self-applying Kustomization, whatever its kind and name), or
// of the Kustomization given WithKustomization; without either,
// DefaultSourceRef. Result.Source says which was used, and
// Result.SourceFrom where it was found.
func WithSourceRef(s SourceRef) Option {
	return func(o *options) error {
		if s.Kind == "" || s.Name == "" {
			return fmt.Errorf("source reference %v: kind and name are required", s)
		}
		o.source, o.sourceGiven = s, true
		return nil
	}
}

// WithKustomization renders the path as the given Flux Kustomization object
// would (its images, patches, prefixes, targetNamespace, components,
// commonMetadata and postBuild), as `flux build kustomization
// --kustomization-file` does. Default: the path is rendered as a plain
// directory, like the Kustomization flux bootstrap creates.
func WithKustomization(obj map[string]any) Option {
	return func(o *options) error {
		u := Object{Content: obj}
		if u.Group() != kustomizeGroup || u.Kind() != "Kustomization" {
			return fmt.Errorf("%s is not a Flux Kustomization (%s)", u.ID(), u.APIVersion())
		}
		o.kustomization = obj
		return nil
	}
}

// WithSubstituteFrom adds ConfigMaps and Secrets that live in the cluster,
// not in the revision, for postBuild.substituteFrom. Objects of other kinds
// are ignored. Default: none; only objects found in the revision are used.
func WithSubstituteFrom(objs []map[string]any) Option {
	return func(o *options) error {
		o.substitutes = append(o.substitutes, objs...)
		return nil
	}
}

// Result is what a revision renders to.
type Result struct {
	// Objects are every rendered object, in render order.
	Objects []Object `json:"-"`
	// Images are every container image, deduplicated and sorted.
	Images []Image `json:"images"`
	// Kustomizations are the Flux Kustomizations found and what became of
	// each, sorted by object.
	Kustomizations []Kustomization `json:"kustomizations"`
	// HelmReleases are the HelmReleases found and what became of each,
	// sorted by object.
	HelmReleases []HelmRelease `json:"helmReleases"`
	// Gaps are the parts whose images could not be listed, sorted.
	Gaps []Gap `json:"gaps"`
	// Source is the Flux source the tree was rendered as; SourceFrom is
	// the Flux Kustomization it was taken from (Kind/namespace/name), or
	// empty when it was given or is the default.
	Source     SourceRef `json:"sourceRef"`
	SourceFrom string    `json:"sourceRefFrom,omitempty"`
}

// KustomizationStatus says what render did with a Flux Kustomization.
type KustomizationStatus string

// The outcomes for a Flux Kustomization found in the revision.
const (
	// Rendered: its path was rendered with its spec.
	Rendered KustomizationStatus = "Rendered"
	// Cycle: it is already on the chain that applies it (the
	// flux-system Kustomization applying itself, or a longer loop); it is
	// rendered once.
	Cycle KustomizationStatus = "Cycle"
	// Duplicate: an object with the same name was already rendered from
	// another place in the revision.
	Duplicate KustomizationStatus = "Duplicate"
	// NotRendered: it could not be rendered; a Gap says why.
	NotRendered KustomizationStatus = "NotRendered"
)

// Kustomization is a Flux Kustomization found in the revision.
type Kustomization struct {
	// Object is Kustomization/namespace/name.
	Object string `json:"object"`
	// Path is spec.path, relative to the source root ("." for the root).
	Path string `json:"path"`
	// Origin is where the Kustomization object itself was found.
	Origin
	Status KustomizationStatus `json:"status"`
}

// Error is an error rendering a path of the revision.
type Error struct {
	// Path is the directory being rendered, relative to the source root.
	Path string
	// Object is the Flux Kustomization being rendered, if any.
	Object string
	// File is the file at fault, relative to the source root, if known.
	File string
	Err  error

	root string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("rendering ")
	if e.Object != "" {
		b.WriteString(e.Object + " ")
	}
	b.WriteString("path " + e.Path)
	if e.File != "" {
		b.WriteString(" (" + e.File + ")")
	}
	b.WriteString(": ")
	b.WriteString(relativize(e.Err.Error(), e.root))
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// relativize rewrites absolute paths under root in a message to paths
// relative to the source root, so messages name the files users know.
func relativize(msg, root string) string {
	if root == "" {
		return msg
	}
	return strings.ReplaceAll(msg, root+string(filepath.Separator), "")
}

// unit is one render of a path: the plain root, or a Flux Kustomization.
type unit struct {
	ks     map[string]any // nil for the plain root
	id     string         // Kustomization/ns/name, or "" for the plain root
	path   string         // slash-separated, relative to root, cleaned
	chain  []string       // the Kustomizations applying this unit, outermost first, including id
	origin Origin         // where the Kustomization object was found
	// partial: render without the substituteFrom objects that are not
	// found; the variables they may hold are unknown (postBuildVars).
	partial bool
}

type renderer struct {
	root    string
	opts    options
	result  Result
	seen    map[string]bool // Kustomization ids rendered or queued
	pool    *varPool
	pending []unit // units waiting for a substituteFrom object
	dec     *decryption

	// build builds one unit. It is renderUnit; tests wrap it to count the
	// builds, which are what a render spends its time on.
	build func(context.Context, unit) (built, error)
	// workers is how many builds may run at once; ahead are those running
	// ahead of the traversal (ahead.go), nil when workers is 1.
	workers int
	ahead   *aheadBuilds

	// helmReleases are the HelmReleases found, rendered once the
	// traversal is done.
	helmReleases []Object
}

// Render renders dir, a directory inside root, as Flux would apply it, and
// follows every Flux Kustomization it finds that applies the same source.
// root is the source's root directory (the extracted artifact). Render
// writes nothing under root: the kustomization files it generates are seen
// by kustomize in memory. Builds of independent Kustomizations run at the
// same time, on every CPU (ahead.go), with the result of a sequential
// render.
//
// An error means the path itself could not be rendered. What could not be
// rendered below it is reported as Gaps in the Result.
func Render(ctx context.Context, root, dir string, opts ...Option) (*Result, error) {
	r, rel, err := newRenderer(root, dir, opts)
	if err != nil {
		return nil, err
	}
	// kustomize reads any file under root without bounds of its own.
	if file, err := guardYAML(r.root); err != nil {
		return nil, &Error{Path: rel, File: file, Err: fmt.Errorf("not rendered: %w", err), root: r.root}
	}
	res, err := r.render(ctx, rel)
	return res, r.dec.redactErr(err)
}

// newRenderer applies the options and resolves root, and dir relative to it.
func newRenderer(root, dir string, opts []Option) (*renderer, string, error) {
	o := options{source: DefaultSourceRef}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, "", err
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, "", fmt.Errorf("resolving root %s: %w", root, err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, "", fmt.Errorf("resolving root: %w", err)
	}
	rel, err := relPath(root, dir)
	if err != nil {
		return nil, "", err
	}
	r := &renderer{root: root, opts: o, seen: map[string]bool{}, pool: newVarPool(o.substitutes), dec: newDecryption(o.keys),
		workers: runtime.GOMAXPROCS(0)}
	r.build = r.renderUnit
	return r, rel, nil
}

// render renders rel, the directory Render was given, and all it applies.
func (r *renderer) render(ctx context.Context, rel string) (*Result, error) {
	if r.workers > 1 {
		r.ahead = newAheadBuilds(ctx, r.workers)
		defer r.ahead.stop()
	}
	first := unit{path: rel}
	if r.opts.kustomization != nil {
		ks := Object{Content: r.opts.kustomization}
		first = r.kustomizationUnit(ks, nil)
		first.path = rel
		r.adoptSource(ks)
	}
	objs, err := r.renderRoot(ctx, first, nil)
	if err != nil {
		return nil, err
	}
	if first.ks == nil {
		// flux bootstrap's layout: the directory holds the Kustomization that
		// applies it (flux-system). Render the directory as that Kustomization,
		// with its spec, as Flux does. The plain build just made is the one
		// renderRoot would otherwise make to find its substituteFrom objects.
		if self, ok := r.appliesItself(objs, rel); ok {
			r.adoptSource(self)
		}
		if self, ok := r.selfKustomization(objs, rel); ok {
			first = r.kustomizationUnit(self, nil)
			if objs, err = r.renderRoot(ctx, first, objs); err != nil {
				return nil, err
			}
		}
	}
	if first.id != "" {
		r.seen[first.id] = true
		r.record(first, Rendered)
	}
	r.add(objs)
	if err := r.follow(ctx, first, objs); err != nil {
		return nil, err
	}
	if err := r.drainPending(ctx); err != nil {
		return nil, err
	}
	r.renderHelmReleases(ctx)
	r.finish()
	r.addLines(rel)
	r.result.Source = r.opts.source
	return &r.result, nil
}

// appliesItself finds, among the objects rendered from the plain root
// path, a Flux Kustomization of any source whose path is that directory.
func (r *renderer) appliesItself(objs []Object, rel string) (Object, bool) {
	for _, o := range objs {
		if isKustomization(o) && specPath(o) == rel {
			return o, true
		}
	}
	return Object{}, false
}

// adoptSource makes the source the Kustomization o applies the tree's
// source, unless one was given.
func (r *renderer) adoptSource(o Object) {
	if r.opts.sourceGiven {
		return
	}
	if ref := sourceRefOf(o); ref.Kind != "" && ref.Name != "" {
		r.opts.source = ref
		r.result.SourceFrom = o.ID()
	}
}

// renderRoot renders the first Kustomization. Its substituteFrom objects
// may be among the objects its own path renders (they are in the cluster
// from the previous revision): when one is missing, the path is rendered
// plainly once to find them. plain are the path's plain objects when the
// caller has built them already, nil otherwise; they are pooled before the
// first try. What is still missing then is missing for good: the path is
// rendered without it (unit.partial).
func (r *renderer) renderRoot(ctx context.Context, u unit, plain []Object) ([]Object, error) {
	if plain == nil {
		b, err := r.build(ctx, u)
		if !isMissingVars(err) {
			return r.use(u, b, err)
		}
		if b, err = r.build(ctx, unit{path: u.path}); err == nil {
			plain = b.objs
		}
	}
	r.pool.add(plain)
	b, err := r.build(ctx, u)
	if isMissingVars(err) {
		u.partial = true
		b, err = r.build(ctx, u)
	}
	return r.use(u, b, err)
}

// use takes the objects of the build b of u, and records what else it
// found.
func (r *renderer) use(u unit, b built, err error) ([]Object, error) {
	r.dec.commit(u, b)
	return b.objs, err
}

// isMissingVars says whether err is a substituteFrom object not found.
func isMissingVars(err error) bool {
	var missing *missingVarsError
	return errors.As(err, &missing)
}

// relPath returns dir relative to root, slash-separated, refusing paths
// outside root.
func relPath(root, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", dir, err)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	if !isInside(root, abs) {
		return "", fmt.Errorf("path %s is outside the source root %s", dir, root)
	}
	rel, _ := filepath.Rel(root, abs) // isInside has made sure it resolves
	return filepath.ToSlash(rel), nil
}

// selfKustomization finds, among the objects rendered from the plain root
// path, the Flux Kustomization of this source whose path is that same
// directory.
func (r *renderer) selfKustomization(objs []Object, rel string) (Object, bool) {
	for _, o := range objs {
		if !isKustomization(o) || !r.sameSource(o) {
			continue
		}
		if specPath(o) == rel {
			return o, true
		}
	}
	return Object{}, false
}

func (r *renderer) kustomizationUnit(o Object, parent []string) unit {
	p := specPath(o)
	id := o.ID()
	chain := append(append([]string(nil), parent...), id)
	return unit{ks: o.Content, id: id, path: p, chain: chain, origin: o.Origin}
}

func isKustomization(o Object) bool {
	return o.Group() == kustomizeGroup && o.Kind() == "Kustomization"
}

// specPath returns a Flux Kustomization's spec.path, cleaned and relative
// to the source root.
func specPath(o Object) string {
	spec, _ := o.Content["spec"].(map[string]any)
	p, _ := spec["path"].(string)
	if filepath.IsAbs(p) {
		// Flux joins the path securely under the source root.
		p = strings.TrimLeft(p, "/")
	}
	p = path.Clean("/" + filepath.ToSlash(p))
	if p == "/" {
		return "."
	}
	return p[1:]
}

func (r *renderer) sameSource(o Object) bool {
	ref := sourceRefOf(o)
	return ref.Kind == r.opts.source.Kind && ref.Name == r.opts.source.Name &&
		(ref.Namespace == "" || r.opts.source.Namespace == "" || ref.Namespace == r.opts.source.Namespace)
}

// sourceRefOf returns a Flux Kustomization's spec.sourceRef, its namespace
// defaulting to the Kustomization's, as Flux does.
func sourceRefOf(o Object) SourceRef {
	spec, _ := o.Content["spec"].(map[string]any)
	ref, _ := spec["sourceRef"].(map[string]any)
	s := SourceRef{Kind: str(ref, "kind"), Namespace: str(ref, "namespace"), Name: str(ref, "name")}
	if s.Namespace == "" {
		s.Namespace = o.Namespace()
	}
	return s
}

// add records a unit's objects.
func (r *renderer) add(objs []Object) {
	r.result.Objects = append(r.result.Objects, objs...)
	r.pool.add(objs)
}

// follow finds Flux objects in a unit's output: Kustomizations of this
// source are rendered in turn, depth first, in name order; others, and
// HelmReleases, become gaps.
func (r *renderer) follow(ctx context.Context, parent unit, objs []Object) error {
	var next []Object
	for _, o := range objs {
		switch {
		case o.Group() == helmGroup && o.Kind() == "HelmRelease":
			r.helmReleases = append(r.helmReleases, o)
		case isKustomization(o):
			next = append(next, o)
		}
	}
	sort.SliceStable(next, func(i, j int) bool { return next[i].ID() < next[j].ID() })
	r.buildAhead(parent, next)
	for _, o := range next {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.visit(ctx, parent, o); err != nil {
			return err
		}
	}
	return nil
}

// visit handles one Flux Kustomization object found in parent's output.
func (r *renderer) visit(ctx context.Context, parent unit, o Object) error {
	u := r.kustomizationUnit(o, parent.chain)
	switch {
	case !r.sameSource(o):
		r.gap(Gap{Reason: OtherSourceGap, Origin: o.Origin, Object: u.id,
			Message: fmt.Sprintf("applies %s, not %s; render that source separately", sourceRefOf(o), r.opts.source)})
		r.record(u, NotRendered)
	case u.id == parent.id:
		// A Kustomization applying itself, as flux bootstrap's does.
	case slices.Contains(parent.chain, u.id):
		r.record(u, Cycle)
	case r.seen[u.id]:
		r.record(u, Duplicate)
	default:
		r.seen[u.id] = true
		b, err := r.take(ctx, u)
		if isMissingVars(err) {
			// Another part of the revision may still produce the object.
			r.pending = append(r.pending, u)
			return nil
		}
		return r.settle(ctx, u, b, err)
	}
	return nil
}

// settle records what building a nested Kustomization gave: a gap when it
// failed, else its objects, which are followed in turn.
func (r *renderer) settle(ctx context.Context, u unit, b built, err error) error {
	if err != nil && ctx.Err() != nil {
		// Cut short, not failed: no gap, and no verdict on what is left.
		return err
	}
	objs, err := r.use(u, b, err)
	if err != nil {
		r.gapFor(u, err)
		r.record(u, NotRendered)
		return nil
	}
	r.add(objs)
	r.record(u, Rendered)
	return r.follow(ctx, u, objs)
}

// record notes what became of a Flux Kustomization.
func (r *renderer) record(u unit, status KustomizationStatus) {
	r.result.Kustomizations = append(r.result.Kustomizations,
		Kustomization{Object: u.id, Path: u.path, Origin: u.origin, Status: status})
}

// drainPending renders the units that waited for substituteFrom objects,
// until none makes progress; then those still waiting are rendered without
// what is missing (unit.partial).
func (r *renderer) drainPending(ctx context.Context) error {
	for len(r.pending) > 0 {
		pending := r.pending
		r.pending = nil
		var stuck []unit
		for _, u := range pending {
			b, err := r.build(ctx, u)
			if isMissingVars(err) {
				stuck = append(stuck, u)
				continue
			}
			if err := r.settle(ctx, u, b, err); err != nil {
				return err
			}
		}
		if len(stuck) < len(pending) {
			r.pending = append(r.pending, stuck...)
			continue
		}
		// No progress, so no new objects: what is missing now is missing
		// for good. What these render may hold Kustomizations that wait in
		// turn.
		for _, u := range stuck {
			u.partial = true
			b, err := r.build(ctx, u)
			if err := r.settle(ctx, u, b, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// gapFor turns the error rendering a nested Kustomization into a gap.
func (r *renderer) gapFor(u unit, err error) {
	g := Gap{Reason: BuildFailedGap, Origin: u.origin, Object: u.id, Message: relativize(err.Error(), r.root)}
	var missing *missingVarsError
	var remote *remoteBaseError
	var re *Error
	switch {
	case errors.As(err, &missing):
		g.Reason = SubstituteFromGap
	case errors.As(err, &remote):
		g.Reason = RemoteBaseGap
	case errors.Is(err, errPathMissing):
		g.Reason = MissingPathGap
		g.Message = fmt.Sprintf("path %s does not exist in the revision", u.path)
		r.gap(g)
		return
	}
	if errors.As(err, &re) {
		g.Message = relativize(re.Err.Error(), r.root)
	}
	r.gap(g)
}

func (r *renderer) gap(g Gap) {
	// A Kustomization of another source applies what that source's own
	// gate checks: reported, never blocking.
	g.Informational = g.Reason == OtherSourceGap
	r.result.Gaps = append(r.result.Gaps, g)
}

// finish extracts the images, adds the gaps decryption left, takes the
// decrypted strings out of every gap message and sorts everything.
func (r *renderer) finish() {
	images, gaps := imagesExplained(append(slices.Clip(r.result.Objects), r.helmObjects()...), r.dec.explainImage)
	r.result.Images = images
	r.result.Gaps = append(r.result.Gaps, gaps...)
	r.result.Gaps = r.dec.finishGaps(r.result.Gaps)
	// compareGaps compares every field, so the order never depends on the
	// order of rendering.
	slices.SortFunc(r.result.Gaps, compareGaps)
	slices.SortStableFunc(r.result.Kustomizations, func(a, b Kustomization) int {
		return cmp.Or(strings.Compare(a.Object, b.Object), slices.Compare(a.Chain, b.Chain))
	})
	if r.result.Images == nil {
		r.result.Images = []Image{}
	}
	if r.result.Gaps == nil {
		r.result.Gaps = []Gap{}
	}
	if r.result.Kustomizations == nil {
		r.result.Kustomizations = []Kustomization{}
	}
	slices.SortStableFunc(r.result.HelmReleases, func(a, b HelmRelease) int {
		return cmp.Or(strings.Compare(a.Object, b.Object), slices.Compare(a.Chain, b.Chain))
	})
	if r.result.HelmReleases == nil {
		r.result.HelmReleases = []HelmRelease{}
	}
}

// joinUnder joins a slash path under root, never escaping it.
func joinUnder(root, rel string) (string, error) {
	return securejoin.SecureJoin(root, filepath.FromSlash(rel))
}
