// Package gate is pregate's core: Check gathers what a revision renders to
// and what verifying each image found (all the I/O, behind small
// interfaces), and Evaluate decides (pure: policies and findings in, a
// sorted, deterministic Verdict out).
//
// A returned error means "could not decide" and is worth retrying; a denial
// is a Verdict, not an error.
//
// gate imports only the standard library; the renderer, verifier and
// fetchers that feed it live in render, verify and sources.
package gate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Revision names what is being gated.
type Revision struct {
	// Source is where it came from: "GitRepository/flux-system/apps", a
	// directory, an artifact URL.
	Source string `json:"source"`
	// ID is the revision in Flux form ("main@sha1:…"); empty when unknown.
	ID string `json:"id,omitempty"`
}

// Origin is where something in a revision came from.
type Origin struct {
	// File is the path of the source file, relative to the source root and
	// slash-separated ("apps/base/deployment.yaml"); for an object from a
	// remote base, the kustomization file naming the base. Empty when
	// kustomize generated the object (configMapGenerator, …).
	File string `json:"file,omitempty"`
	// Line is the 1-based line in File this is about (for an image, the
	// line of its image field); 0 when not known.
	Line int `json:"line,omitempty"`
	// Chain is the Flux Kustomization chain that applies the object, outermost
	// first, for example ["Kustomization/flux-system/flux-system",
	// "Kustomization/flux-system/apps"]. Empty for a plain directory render.
	Chain []string `json:"chain,omitempty"`
	// HelmRelease is set for an object a chart rendered: the HelmRelease
	// (HelmRelease/namespace/name) that installs it. File and Line are then
	// the HelmRelease's, and Chain ends with it.
	HelmRelease string `json:"helmRelease,omitempty"`
	// Template is the chart file that rendered the object
	// ("podinfo/templates/deployment.yaml"); set with HelmRelease.
	Template string `json:"template,omitempty"`
}

// Location is one place an image reference appears in the rendered
// revision.
type Location struct {
	Origin
	// Object names the Kubernetes object: Kind/namespace/name.
	Object     string `json:"object"`
	APIVersion string `json:"apiVersion"`
	// Container is the container's name.
	Container string `json:"container"`
	// Path is the container's path in the object,
	// "spec.template.spec.initContainers[0]".
	Path string `json:"path"`
	// Raw is the reference exactly as written in the rendered object.
	Raw string `json:"raw"`
	// SetBy is where the reference was set when that is not File: the
	// kustomize images: entry or the postBuild variable that produced it.
	SetBy *Origin `json:"setBy,omitempty"`
	// Labels are the object's labels, which admission policies select
	// by; nil when it has none. Not reported.
	Labels map[string]string `json:"-"`
	// Pod is the Pod the object runs as admission sees it before the API
	// server's defaults: apiVersion, kind, its template's metadata in the
	// object's namespace, and its spec (the object itself for a Pod);
	// shared with the object, never to be changed. Nil when not known.
	Pod map[string]any `json:"-"`
}

func (l Location) String() string {
	if l.File == "" {
		return l.Where()
	}
	return l.Where() + " (" + l.File + ")"
}

// Where names the object the location is in: Kind/namespace/name, and for
// an object a chart rendered, its HelmRelease and template first
// ("HelmRelease/apps/web → web/templates/deployment.yaml → Deployment/apps/web").
func (l Location) Where() string {
	if l.HelmRelease == "" {
		return l.Object
	}
	return l.HelmRelease + " → " + l.Template + " → " + l.Object
}

// Image is one container image reference, deduplicated across the
// revision.
type Image struct {
	// Ref is the normalised reference: registry, repository and tag and/or
	// digest, as a container runtime resolves it
	// ("index.docker.io/library/nginx:latest").
	Ref string `json:"ref"`
	// Registry, Repository, Tag and Digest are Ref's parts. Tag is empty for
	// a digest-only reference; Digest is empty for a tag-only reference.
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag,omitempty"`
	Digest     string `json:"digest,omitempty"`
	// Mutable is true when the reference carries no digest: what it names
	// can change after it was checked.
	Mutable bool `json:"mutable"`
	// Locations lists every place the image appears, sorted.
	Locations []Location `json:"locations"`
}

// GapReason says why part of a revision could not be rendered or read;
// render defines the reasons.
type GapReason string

// Gap is a part of the revision whose images could not be listed: a blind
// spot. A gap blocks the revision (the verdict is undecided) unless it is
// informational or its reason is one the Config allows.
type Gap struct {
	Reason GapReason `json:"reason"`
	// Origin is where the unrendered part is.
	Origin
	// Object names the object concerned (Kind/namespace/name), if any.
	Object string `json:"object,omitempty"`
	// Path is the field path within Object, for an image gap.
	Path string `json:"path,omitempty"`
	// Message explains the gap in one line.
	Message string `json:"message"`
	// Informational marks a gap that is another source's business (a
	// Flux Kustomization of another source, gated on its own): reported,
	// never blocking.
	Informational bool `json:"informational,omitempty"`
	// Blocking is set by Evaluate (and Config.MarkBlocking): the gap keeps
	// the revision from being allowed.
	Blocking bool `json:"blocking"`
}

func (g Gap) String() string {
	var b strings.Builder
	b.WriteString(string(g.Reason))
	for _, s := range []string{g.File, g.Object, g.Path} {
		if s != "" {
			b.WriteString(" " + s)
		}
	}
	b.WriteString(": " + g.Message)
	return b.String()
}

// Rendered is what a revision renders to.
type Rendered struct {
	Images []Image
	Gaps   []Gap
}

// Render returns r: a revision rendered before the check is its own
// Renderer.
func (r Rendered) Render(context.Context) (Rendered, error) { return r, nil }

// Status is the outcome of verifying one image against one policy.
type Status string

// The statuses a Verifier reports. Only Verified passes.
const (
	Verified           Status = "Verified"
	NoSignatures       Status = "NoSignatures"
	LookupFailed       Status = "LookupFailed"
	IdentityMismatch   Status = "IdentityMismatch"
	InvalidSignature   Status = "InvalidSignature"
	AttestationMissing Status = "AttestationMissing"
	StaticFail         Status = "StaticFail"
	ResolveFailed      Status = "ResolveFailed"
)

// transient says whether a status rests on a failed lookup rather than on
// what the registry holds: retrying may change it.
func (s Status) transient() bool { return s == LookupFailed || s == ResolveFailed }

// Finding is what verifying one image against one policy found.
type Finding struct {
	Image  string `json:"image"`
	Policy string `json:"policy"`
	// Digest is what the image reference resolved to; every finding is
	// about this digest. Empty when it could not be resolved.
	Digest string `json:"digest,omitempty"`
	Status Status `json:"status"`
	// Detail explains Status in one deterministic line.
	Detail string `json:"detail"`
	// Mode is the policy's mode, set by Evaluate: what a failure of this
	// finding does.
	Mode Mode `json:"mode,omitempty"`
}

// Renderer renders a revision's files.
type Renderer interface {
	Render(ctx context.Context) (Rendered, error)
}

// Verifier verifies one image against one policy. Registry and signature
// failures are Findings; an error means the verifier itself could not run
// (a policy it did not compile, a cancelled context).
type Verifier interface {
	Verify(ctx context.Context, image string, policy Policy) (Finding, error)
}

// Gate checks revisions against a set of policies.
type Gate struct {
	Renderer Renderer
	Verifier Verifier
	Config   Config
	// Concurrency bounds the verifications in flight; default 8.
	Concurrency int
	// Timeout bounds verifying the revision's images, all of them; zero
	// is no bound. An image not verified when it runs out is a
	// LookupFailed finding naming the deadline: the verdict is undecided,
	// never allowed.
	Timeout time.Duration
}

// DefaultTimeout is the Timeout the CLI and the controller give a Gate
// unless told otherwise.
const DefaultTimeout = 5 * time.Minute

// revisionDeadlineError is the cause of a context ended by Gate.Timeout.
type revisionDeadlineError struct{ d time.Duration }

func (e *revisionDeadlineError) Error() string {
	return fmt.Sprintf("not verified: the %s allowed to verify the revision's images ran out", e.d)
}

// Check renders the revision, verifies every image against every policy
// that matches it, and evaluates the result.
func (g *Gate) Check(ctx context.Context, rev Revision) (Verdict, error) {
	rendered, err := g.Renderer.Render(ctx)
	if err != nil {
		return Verdict{}, fmt.Errorf("rendering %s: %w", rev, err)
	}
	findings, err := g.verify(ctx, rendered.Images)
	if err != nil {
		return Verdict{}, err
	}
	return Evaluate(g.Config, rev, rendered, findings), nil
}

func (r Revision) String() string {
	if r.ID == "" {
		return r.Source
	}
	return r.Source + "@" + r.ID
}

// verify runs the verifier for each image and each policy matching it,
// each pair once, at most Concurrency at a time.
func (g *Gate) verify(ctx context.Context, images []Image) ([]Finding, error) {
	type job struct {
		image  string
		policy Policy
	}
	var jobs []job
	seen := map[[2]string]bool{}
	for _, img := range images {
		for _, p := range g.Config.matching(img.Ref) {
			if k := [2]string{img.Ref, p.Name}; !seen[k] {
				seen[k] = true
				jobs = append(jobs, job{img.Ref, p})
			}
		}
	}
	limit := g.Concurrency
	if limit <= 0 {
		limit = 8
	}
	parent := ctx
	if g.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, g.Timeout, &revisionDeadlineError{g.Timeout})
		defer cancel()
	}
	// cutShort is the finding for a job the revision's deadline ended,
	// when it was the deadline and not the caller that ended it.
	cutShort := func(j job) (Finding, bool) {
		var rd *revisionDeadlineError
		if parent.Err() != nil || !errors.As(context.Cause(ctx), &rd) {
			return Finding{}, false
		}
		return Finding{Image: j.image, Policy: j.policy.Name, Status: LookupFailed, Detail: rd.Error()}, true
	}
	findings := make([]Finding, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				if f, ok := cutShort(j); ok {
					findings[i] = f
					return
				}
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			f, err := g.Verifier.Verify(ctx, j.image, j.policy)
			if err != nil {
				if f, ok := cutShort(j); ok {
					findings[i] = f
					return
				}
				errs[i] = fmt.Errorf("verifying %s against policy %q: %w", j.image, j.policy.Name, err)
				return
			}
			f.Image, f.Policy = j.image, j.policy.Name
			findings[i] = f
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(findings, func(a, b int) bool {
		if findings[a].Image != findings[b].Image {
			return findings[a].Image < findings[b].Image
		}
		return findings[a].Policy < findings[b].Policy
	})
	return findings, nil
}
