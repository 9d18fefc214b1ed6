package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pregate/pregate/gate"
)

// The layer media types Discover takes as signatures and attestations.
const (
	// bundleMediaTypePrefix starts every Sigstore bundle media type
	// ("application/vnd.dev.sigstore.bundle.v0.3+json",
	// "application/vnd.dev.sigstore.bundle+json;version=0.1").
	bundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// simpleSigningMediaType is a legacy cosign signature layer.
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// dsseMediaType is a legacy cosign attestation layer.
	dsseMediaType = "application/vnd.dsse.envelope.v1+json"
	// inTotoMediaType is an unsigned in-toto statement layer (buildx).
	inTotoMediaType = "application/vnd.in-toto+json"
)

// layerFormat says how a layer of mediaType is stored, and whether it is a
// signature or attestation at all.
func layerFormat(mediaType string) (Format, bool) {
	switch {
	case strings.HasPrefix(mediaType, bundleMediaTypePrefix):
		return BundleFormat, true
	case mediaType == simpleSigningMediaType:
		return SimpleSigningFormat, true
	case mediaType == dsseMediaType:
		return DSSEFormat, true
	case mediaType == inTotoMediaType:
		return InTotoFormat, true
	}
	return "", false
}

// places are the four places Discover reads, in the order their results are
// merged and reported, and then, for an image index, the attestation
// manifests it holds (allPlaces).
var (
	places    = []Step{ReferrersStep, FallbackTagStep, SignatureTagStep, AttestationTagStep}
	allPlaces = append(slices.Clip(places), IndexAttestationStep)
)

func placeRank(s Step) int {
	if i := slices.Index(allPlaces, s); i >= 0 {
		return i
	}
	return len(allPlaces)
}

// placesFor are the places read for s after the first: an image index
// holds buildx's attestation manifests too.
func placesFor(s Subject, steps []Step) []Step {
	if s.MediaType == string(types.OCIImageIndex) || s.MediaType == string(types.DockerManifestList) {
		return append(slices.Clip(steps), IndexAttestationStep)
	}
	return steps
}

const (
	// maxConcurrentFetches caps the manifest and blob requests Discover has
	// in flight at once for one subject.
	maxConcurrentFetches = 8
	// maxListed caps the descriptors read from one index (a referrers
	// list, a fallback tag): a longer list fails its lookup.
	maxListed = 1024
)

// budget is what discovery may read for one subject, across every place
// and stage: a registry that lists 256 manifests of 256 one-byte bundle
// layers each would otherwise cost 65,536 blob requests for one image.
// What is over it is not read, and its lookup fails: the result says so,
// is not cached, and never concludes "no signature".
type budget struct {
	// manifests are the referrer and legacy manifests opened.
	manifests int
	// layers are the signature and attestation layers considered (read,
	// or refused for their size).
	layers int
	// bytes are the layer bytes read.
	bytes int64
}

// defaultBudget is the budget per image.
var defaultBudget = budget{manifests: 128, layers: 128, bytes: 64 << 20}

func (b budget) String() string {
	size := fmt.Sprintf("%d bytes", b.bytes)
	if b.bytes%(1<<20) == 0 {
		size = fmt.Sprintf("%d MiB", b.bytes>>20)
	}
	return fmt.Sprintf("%d manifests, %d signature or attestation layers and %s per image", b.manifests, b.layers, size)
}

// Discover finds every signature and attestation stored for s.Digest in
// s.Repository. It never returns an error: every request is recorded in
// Discovery.Lookups, and a failed one has Lookup.Err set.
//
// It reads four places concurrently, each request with its own timeout
// derived from ctx, and merges what they list by manifest digest (a manifest
// listed in several places is read once and reported with the first of them
// in this order):
//
//   - the OCI 1.1 referrers API, GET /v2/<repo>/referrers/<digest>, its pages
//     followed through Link headers on the same host. A 404, 400 or 406 means
//     the registry has no referrers API: recorded, not a failure. A redirect
//     is followed only within the registry's host and port; a redirect to
//     another host is not followed and fails the lookup at once (GHCR has
//     answered 303 to its web UI, and egress policies block such hosts: a
//     redirect never delays the rest of the discovery);
//   - the sha256-<hex> referrers fallback tag index, always, even when the
//     referrers API answered 200 (GHCR has answered with an empty list);
//   - the legacy sha256-<hex>.sig and sha256-<hex>.att tag manifests.
//
// A 404 on a tag means nothing is stored there: recorded, not a failure.
// Other statuses (401, 429, 5xx), transport errors and timeouts fail that
// lookup only; the other places are still read.
//
// Every referrer manifest is opened (Step ManifestStep), whatever artifactType
// its index descriptor claims, and judged by its layers: a layer whose media
// type starts with application/vnd.dev.sigstore.bundle is a BundleFormat
// artifact, application/vnd.dev.cosign.simplesigning.v1+json a
// SimpleSigningFormat one and application/vnd.dsse.envelope.v1+json a
// DSSEFormat one, wherever the manifest was found. Each such layer is fetched
// (Step BlobStep) and checked against its digest, at most 32 MiB each.
// Referrers with no such layer (SBOMs, anything else) are skipped; they are
// counted in the Found of the lookup that listed them.
//
// What one image may cost is bounded (see budget): 128 manifests, 128
// signature or attestation layers and 64 MiB of them, taken by place (in
// the order above), manifest digest and position in the manifest, whatever
// order the answers arrived in; indexes are read up to 1024 entries and
// 4 MiB. What is over a bound is not read: its lookup fails, naming the
// bound.
//
// An artifact that was listed but could not be fetched (an error status, a
// transport failure, a digest that does not match, a bound) has Err set and
// Unfetched: what it holds is unknown. One whose content was read but does
// not parse has Err set only.
//
// Artifacts are sorted by Source (in the order above), Manifest and Layer.
// Lookups list the four places in the order above (referrers pages in page
// order), then the manifest requests and the blob requests, each sorted by
// URL. URLs and messages never carry credentials.
func (r *Registry) Discover(ctx context.Context, s Subject) Discovery {
	return r.discover(ctx, Discovery{Subject: s}, placesFor(s, places))
}

// discoverFirst reads the referrers API only: when what it lists settles
// the verdict, the other places need not be read (see Verifier).
func (r *Registry) discoverFirst(ctx context.Context, s Subject) Discovery {
	return r.discover(ctx, Discovery{Subject: s}, places[:1])
}

// discoverRest reads the places discoverFirst left, adding to d what they
// hold within what remains of d's budget, without opening again the
// manifests d opened. d is not changed.
func (r *Registry) discoverRest(ctx context.Context, d Discovery) Discovery {
	return r.discover(ctx, d, placesFor(d.Subject, places[1:]))
}

// discover reads steps (places, in places order) for prev's subject and
// returns prev with what they hold.
func (r *Registry) discover(ctx context.Context, prev Discovery, steps []Step) Discovery {
	d := prev.clone()
	s := d.Subject
	repo, err := r.parseRepository(s.Repository)
	if err != nil {
		d.addLookups(failPlaces(steps, nil, fmt.Sprintf("parsing repository %q: %v", s.Repository, err)))
		return d
	}
	nameOpts := []name.Option{name.WeakValidation}
	if r.insecure[repo.RegistryStr()] {
		nameOpts = append(nameOpts, name.Insecure)
	}
	dig, err := name.NewDigest(repo.Name()+"@"+s.Digest, nameOpts...)
	if err != nil {
		d.addLookups(failPlaces(steps, nil, fmt.Sprintf("parsing digest %q: %v", s.Digest, err)))
		return d
	}

	urls := placeURLs(repo, dig)
	hctx, cancel := context.WithTimeout(ctx, r.timeout)
	sess, err := r.session(hctx, repo)
	cancel()
	if err != nil {
		d.addLookups(failPlaces(steps, urls, err.Error()))
		return d
	}

	// Read the places concurrently.
	results := make([]placeResult, len(steps))
	var wg sync.WaitGroup
	for i, step := range steps {
		wg.Go(func() { results[i] = sess.readPlace(ctx, urls[step], step) })
	}
	wg.Wait()

	// Merge by manifest digest, the first place (in places order) winning,
	// within the budget of manifests.
	limit := r.budget
	var lookups []Lookup
	var opens []*openManifest
	var over []*openManifest
	for _, res := range results {
		lookups = append(lookups, res.lookups...)
		for _, o := range res.manifests {
			if d.opened[o.digest] {
				continue
			}
			d.opened[o.digest] = true
			if d.spent.manifests == limit.manifests {
				over = append(over, o)
				continue
			}
			d.spent.manifests++
			opens = append(opens, o)
		}
	}

	// Open each manifest, then fetch their signature and attestation
	// layers.
	run := &opening{sess: sess, sem: make(chan struct{}, maxConcurrentFetches)}
	if len(over) > 0 {
		o := over[0]
		msg := fmt.Sprintf("manifest %s and %d more not opened: over the budget of %s", o.digest, len(over)-1, limit)
		run.record(&Lookup{Step: ManifestStep, URL: redactURL(repoURL(repo, "manifests", o.digest)), Err: msg},
			o.artifact(Artifact{Err: msg, Unfetched: true}))
	}
	for _, o := range opens {
		wg.Go(func() { run.open(ctx, o, limit) })
	}
	wg.Wait()
	run.fetchLayers(ctx, opens, &d.spent, limit)

	d.addLookups(lookups)
	d.addLookups(run.lookups)
	d.Artifacts = append(d.Artifacts, run.artifacts...)
	slices.SortFunc(d.Artifacts, func(a, b Artifact) int {
		return cmp.Or(
			cmp.Compare(placeRank(a.Source), placeRank(b.Source)),
			cmp.Compare(a.Manifest, b.Manifest),
			cmp.Compare(a.Layer, b.Layer),
		)
	})
	return d
}

// clone returns a copy of d that shares nothing it may change.
func (d Discovery) clone() Discovery {
	c := d
	c.Artifacts = slices.Clone(d.Artifacts)
	c.Lookups = slices.Clone(d.Lookups)
	c.opened = maps.Clone(d.opened)
	if c.opened == nil {
		c.opened = map[string]bool{}
	}
	return c
}

// addLookups adds lookups to d and sorts them: the places first, in places
// order (pages of one place in the order they were read), then the
// manifest and the blob requests, each by URL.
func (d *Discovery) addLookups(ls []Lookup) {
	d.Lookups = append(d.Lookups, ls...)
	slices.SortStableFunc(d.Lookups, func(a, b Lookup) int {
		ra, rb := lookupRank(a.Step), lookupRank(b.Step)
		if ra != rb || ra < len(places) {
			return cmp.Compare(ra, rb)
		}
		return cmp.Or(cmp.Compare(a.URL, b.URL), cmp.Compare(a.Status, b.Status), cmp.Compare(a.Err, b.Err))
	})
}

// lookupRank orders a discovery's lookups: the places, then manifests,
// then blobs.
func lookupRank(s Step) int {
	switch s {
	case ManifestStep:
		return len(places)
	case BlobStep:
		return len(places) + 1
	}
	return placeRank(s)
}

// failPlaces returns a failed Lookup for each of steps; urls may be nil.
func failPlaces(steps []Step, urls map[Step]*url.URL, msg string) []Lookup {
	out := make([]Lookup, 0, len(steps))
	for _, step := range steps {
		out = append(out, Lookup{Step: step, URL: redactURL(urls[step]), Err: msg})
	}
	return out
}

// fallbackTag is the referrers tag schema's tag for digest: sha256-<hex>.
func fallbackTag(digest string) string { return strings.Replace(digest, ":", "-", 1) }

// placeURLs returns the URL of each place for dig in repo.
func placeURLs(repo name.Repository, dig name.Digest) map[Step]*url.URL {
	tag := fallbackTag(dig.DigestStr())
	return map[Step]*url.URL{
		ReferrersStep:        repoURL(repo, "referrers", dig.DigestStr()),
		FallbackTagStep:      repoURL(repo, "manifests", tag),
		SignatureTagStep:     repoURL(repo, "manifests", tag+".sig"),
		AttestationTagStep:   repoURL(repo, "manifests", tag+".att"),
		IndexAttestationStep: repoURL(repo, "manifests", dig.DigestStr()),
	}
}

// placeResult is what one place listed.
type placeResult struct {
	lookups   []Lookup
	manifests []*openManifest
}

// maxArtifactType bounds the artifactType an index may give a manifest.
const maxArtifactType = 256

// artifact is a with what o says of every artifact it carries.
func (o *openManifest) artifact(a Artifact) Artifact {
	a.Source, a.Manifest, a.ArtifactType = o.source, o.digest, o.artifactType
	return a
}

// openManifest is a manifest to open: listed by an index (read once
// fetched) or read directly from a legacy tag.
type openManifest struct {
	source Step
	digest string
	size   int64
	// artifactType is what the index that listed it said of it.
	artifactType string

	// read says the manifest was read: layers, or bad, are set.
	read   bool
	layers []gcrv1.Descriptor
	bad    string // why the manifest could not be parsed

	// pending are its signature and attestation layers, to fetch, at most
	// a budget's worth; layerCount is how many it has.
	pending    []pendingLayer
	layerCount int
}

// parse reads raw, the manifest's content, into o.
func (o *openManifest) parse(raw []byte) {
	o.read = true
	var mf imageManifest
	if err := json.Unmarshal(raw, &mf); err != nil {
		o.bad = err.Error()
		return
	}
	o.layers = mf.Layers
}

// pendingLayer is a signature or attestation layer to fetch: art, once its
// content is read.
type pendingLayer struct {
	art  Artifact
	desc gcrv1.Descriptor
}

// imageManifest is the part of an OCI or Docker image manifest Discover
// reads.
type imageManifest struct {
	Layers []gcrv1.Descriptor `json:"layers"`
}

// imageIndex is the part of an OCI image index Discover reads.
type imageIndex struct {
	SchemaVersion int                `json:"schemaVersion"`
	MediaType     string             `json:"mediaType"`
	Manifests     []gcrv1.Descriptor `json:"manifests"`
}

// legacyManifestTypes are the media types a .sig or .att manifest has.
var legacyManifestTypes = []string{string(types.OCIManifestSchema1), string(types.DockerManifestSchema2)}

// referrerManifestTypes are the media types a referrer may have: any
// manifest (judged by its layers), an index or a (withdrawn) OCI artifact
// manifest (no layers: skipped). Registries that negotiate content answer
// 404 to a GET whose Accept leaves out the stored type.
var referrerManifestTypes = []string{
	string(types.OCIManifestSchema1),
	string(types.DockerManifestSchema2),
	string(types.OCIImageIndex),
	string(types.DockerManifestList),
	"application/vnd.oci.artifact.manifest.v1+json",
}

func (s *session) readPlace(ctx context.Context, u *url.URL, step Step) placeResult {
	switch step {
	case ReferrersStep:
		return s.readReferrers(ctx, u)
	case FallbackTagStep:
		return s.readFallbackTag(ctx, u)
	case IndexAttestationStep:
		return s.readIndexAttestations(ctx, u)
	default:
		return s.readLegacyTag(ctx, u, step)
	}
}

// readReferrers reads the referrers API, following its pages.
func (s *session) readReferrers(ctx context.Context, u *url.URL) placeResult {
	var res placeResult
	var descs []gcrv1.Descriptor
	for page := 0; u != nil; page++ {
		a, l := s.do(ctx, request{
			step: ReferrersStep, method: http.MethodGet, url: u, strict: true,
			accept: []string{string(types.OCIImageIndex)}, limit: maxManifestSize,
		})
		var next *url.URL
		switch {
		case l.Err != "":
		case a.status == http.StatusOK:
			idx, err := parseIndex(a.body)
			if err != nil {
				l.Err = "decoding the referrers list: " + err.Error()
				break
			}
			l.Found = len(idx.Manifests)
			descs = append(descs, idx.Manifests...)
			if next, err = nextPage(u, a.header); err != nil {
				l.Err = err.Error()
			} else if next != nil && page+1 >= maxReferrersPages {
				l.Err = fmt.Sprintf("more than %d pages of referrers; the rest were not read", maxReferrersPages)
				next = nil
			}
		case page == 0 && (a.status == http.StatusNotFound || a.status == http.StatusBadRequest || a.status == http.StatusNotAcceptable):
			// No referrers API here: the fallback tag is the place.
		case a.status >= 300 && a.status < 400:
			l.Err = s.redirectMessage(a)
		default:
			l.Err = s.statusMessage(a)
		}
		res.lookups = append(res.lookups, l)
		u = next
	}
	res.manifests = s.listed(ReferrersStep, descs, &res.lookups[len(res.lookups)-1])
	return res
}

// redirectMessage describes a redirect of the referrers API that was not
// followed.
func (s *session) redirectMessage(a answer) string {
	if a.location == nil {
		return fmt.Sprintf("HTTP %d %s without a usable Location", a.status, http.StatusText(a.status))
	}
	return s.scrub(fmt.Sprintf("redirected (%d) to %s://%s, another host: the referrers API is only read from %s",
		a.status, gate.Clip(a.location.Scheme, 16), gate.Clip(a.location.Host, maxIdentityText), s.repo.RegistryStr()))
}

// nextPage returns the next page of a referrers list from a Link header
// (RFC 8288, rel="next"), which must stay on the same host.
func nextPage(cur *url.URL, h http.Header) (*url.URL, error) {
	for _, link := range h.Values("Link") {
		for _, part := range strings.Split(link, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			isNext := false
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && slices.Contains(strings.Fields(strings.Trim(v, `"`)), "next") {
					isNext = true
				}
			}
			if !isNext {
				continue
			}
			ref, err := url.Parse(target[1 : len(target)-1])
			if err != nil {
				return nil, fmt.Errorf("parsing the next page link: %w", err)
			}
			next := cur.ResolveReference(ref)
			if next.Host != cur.Host || next.Scheme != cur.Scheme {
				return nil, fmt.Errorf("the next page of referrers is on another host (%s); not read", next.Host)
			}
			return next, nil
		}
	}
	return nil, nil
}

func (s *session) readFallbackTag(ctx context.Context, u *url.URL) placeResult {
	a, l := s.do(ctx, request{
		step: FallbackTagStep, method: http.MethodGet, url: u,
		accept: []string{string(types.OCIImageIndex)}, limit: maxManifestSize,
	})
	var descs []gcrv1.Descriptor
	switch {
	case l.Err != "":
	case a.status == http.StatusOK:
		idx, err := parseIndex(a.body)
		switch {
		case err != nil:
			l.Err = "decoding the fallback tag index: " + err.Error()
		case idx.MediaType != "" && idx.MediaType != string(types.OCIImageIndex):
			l.Err = fmt.Sprintf("the fallback tag holds a %s, not an image index", idx.MediaType)
		default:
			l.Found = len(idx.Manifests)
			descs = idx.Manifests
		}
	case a.status == http.StatusNotFound:
		// No referrers stored in the fallback tag.
	default:
		l.Err = s.statusMessage(a)
	}
	res := placeResult{lookups: []Lookup{l}}
	res.manifests = s.listed(FallbackTagStep, descs, &res.lookups[0])
	return res
}

// The annotation buildx puts on an attestation manifest in an image index.
const (
	dockerReferenceType = "vnd.docker.reference.type"
	attestationManifest = "attestation-manifest"
)

// readIndexAttestations reads the image's own index for the attestation
// manifests buildx stores in it, each about one platform's image.
func (s *session) readIndexAttestations(ctx context.Context, u *url.URL) placeResult {
	a, l := s.do(ctx, request{
		step: IndexAttestationStep, method: http.MethodGet, url: u,
		accept: []string{string(types.OCIImageIndex), string(types.DockerManifestList)}, limit: maxManifestSize,
	})
	var descs []gcrv1.Descriptor
	switch {
	case l.Err != "":
	case a.status == http.StatusOK:
		idx, err := parseIndex(a.body)
		if err != nil {
			l.Err = "decoding the image index: " + err.Error()
			break
		}
		for _, d := range idx.Manifests {
			if d.Annotations[dockerReferenceType] == attestationManifest {
				descs = append(descs, d)
			}
		}
		l.Found = len(descs)
	default:
		l.Err = s.statusMessage(a)
	}
	res := placeResult{lookups: []Lookup{l}}
	res.manifests = s.listed(IndexAttestationStep, descs, &res.lookups[0])
	return res
}

// readLegacyTag reads a .sig or .att tag, which is itself the manifest whose
// layers are the signatures or attestations.
func (s *session) readLegacyTag(ctx context.Context, u *url.URL, step Step) placeResult {
	a, l := s.do(ctx, request{step: step, method: http.MethodGet, url: u, accept: legacyManifestTypes, limit: maxManifestSize})
	res := placeResult{}
	switch {
	case l.Err != "":
	case a.status == http.StatusOK:
		d, _ := digestOf("sha256", a.body) // sha256 is always supported
		o := &openManifest{source: step, digest: d, size: int64(len(a.body))}
		o.parse(a.body)
		l.Found = len(o.layers)
		res.manifests = []*openManifest{o}
	case a.status == http.StatusNotFound:
		// Nothing stored in the legacy layout.
	default:
		l.Err = s.statusMessage(a)
	}
	res.lookups = []Lookup{l}
	return res
}

// parseIndex decodes an image index (a referrers list or a fallback tag).
func parseIndex(b []byte) (*imageIndex, error) {
	var idx imageIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	if idx.SchemaVersion != 2 {
		return nil, fmt.Errorf("schemaVersion %d, want 2", idx.SchemaVersion)
	}
	return &idx, nil
}

// listed turns the descriptors an index listed into manifests to open, in
// digest order, at most maxListed of them (failing l beyond that).
func (s *session) listed(step Step, descs []gcrv1.Descriptor, l *Lookup) []*openManifest {
	slices.SortFunc(descs, func(a, b gcrv1.Descriptor) int { return cmp.Compare(a.Digest.String(), b.Digest.String()) })
	descs = slices.CompactFunc(descs, func(a, b gcrv1.Descriptor) bool { return a.Digest == b.Digest })
	if len(descs) > maxListed {
		if l.Err == "" {
			l.Err = fmt.Sprintf("lists %d referrers; only the first %d (by digest) were read", len(descs), maxListed)
		}
		descs = descs[:maxListed]
	}
	out := make([]*openManifest, 0, len(descs))
	for _, desc := range descs {
		out = append(out, &openManifest{source: step, digest: desc.Digest.String(), size: desc.Size, artifactType: gate.Clip(desc.ArtifactType, maxArtifactType)})
	}
	return out
}

// opening is the second half of a discovery: opening the listed manifests
// and fetching their signature and attestation layers, concurrently.
type opening struct {
	sess *session
	sem  chan struct{} // bounds the requests in flight

	mu        sync.Mutex
	lookups   []Lookup
	artifacts []Artifact
}

func (op *opening) record(l *Lookup, arts ...Artifact) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if l != nil {
		op.lookups = append(op.lookups, *l)
	}
	op.artifacts = append(op.artifacts, arts...)
}

// open fetches o if it was only listed, and lists its signature and
// attestation layers in o.pending, at most the budget's layers of them.
func (op *opening) open(ctx context.Context, o *openManifest, limit budget) {
	s := op.sess
	unfetched := func(l *Lookup, msg string) {
		op.record(l, o.artifact(Artifact{Err: msg, Unfetched: true}))
	}
	var l *Lookup
	if !o.read {
		u := repoURL(s.repo, "manifests", o.digest)
		if o.size > maxManifestSize {
			msg := fmt.Sprintf("manifest of %d bytes is over the %d-byte limit; not read", o.size, maxManifestSize)
			unfetched(&Lookup{Step: ManifestStep, URL: redactURL(u), Err: msg}, msg)
			return
		}
		op.sem <- struct{}{}
		a, ml := s.do(ctx, request{step: ManifestStep, method: http.MethodGet, url: u, accept: referrerManifestTypes, limit: maxManifestSize})
		<-op.sem
		l = &ml
		if l.Err == "" && a.status != http.StatusOK {
			l.Err = s.statusMessage(a)
		}
		if l.Err == "" {
			if err := checkDigest(o.digest, a.body); err != nil {
				l.Err = "manifest " + err.Error()
			}
		}
		if l.Err != "" {
			unfetched(l, "fetching manifest: "+l.Err)
			return
		}
		o.parse(a.body)
	}
	if o.bad != "" {
		op.record(l, o.artifact(Artifact{Err: "parsing manifest: " + gate.Clip(o.bad, maxReasonText)}))
		return
	}
	n := 0
	for _, layer := range o.layers {
		format, ok := layerFormat(string(layer.MediaType))
		if !ok {
			continue
		}
		if n++; n > limit.layers {
			continue // counted, not kept: over the budget whatever else is read
		}
		o.pending = append(o.pending, pendingLayer{desc: layer, art: o.artifact(Artifact{
			Layer:       layer.Digest.String(),
			Format:      format,
			MediaType:   string(layer.MediaType),
			Annotations: layer.Annotations,
		})})
	}
	o.layerCount = n
	if l != nil {
		l.Found = n
	}
	op.record(l)
}

// fetchLayers fetches the pending layers of opens, concurrently, within the
// budget's layers and bytes, spent being what the subject's discovery has
// used so far (and is updated). Layers are admitted in the order of opens
// (place, then manifest digest) and of their manifests, whatever order the
// manifests were read in, so which layers fit does not depend on timing.
// A layer over the size limit or the bytes left is not fetched: its blob
// lookup fails, naming it; the layers beyond the budget's count fail one
// lookup, naming the first (the result is not one to cache, and says
// why).
func (op *opening) fetchLayers(ctx context.Context, opens []*openManifest, spent *budget, limit budget) {
	var wg sync.WaitGroup
	refuse := func(p pendingLayer, msg string) {
		p.art.Err, p.art.Unfetched = "fetching blob: "+msg, true
		op.record(&Lookup{Step: BlobStep, URL: redactURL(repoURL(op.sess.repo, "blobs", p.art.Layer)), Err: msg}, p.art)
	}
	// What the budget leaves out is counted, and the first of it (a
	// layer, or a manifest whose layers open cut) fails one lookup.
	over := 0
	var cut func(msg string)
	leaveOut := func(n int, first func(msg string)) {
		if n > 0 && cut == nil {
			cut = first
		}
		over += n
	}
	for _, o := range opens {
		for _, p := range o.pending {
			if spent.layers == limit.layers {
				leaveOut(1, func(msg string) { refuse(p, msg) })
				continue
			}
			spent.layers++
			left := limit.bytes - spent.bytes
			switch size := p.desc.Size; {
			case size < 0:
				p.art.Err = fmt.Sprintf("fetching blob: layer has a negative size %d", size)
				op.record(nil, p.art)
			case size > maxBlobSize:
				refuse(p, fmt.Sprintf("blob %s (%d bytes) not read: over the %d-byte limit for one layer", p.art.Layer, size, maxBlobSize))
			case size > left:
				refuse(p, fmt.Sprintf("blob %s (%d bytes) not read: over the %d bytes left of the budget of %s", p.art.Layer, size, left, limit))
			default:
				spent.bytes += size
				wg.Go(func() { op.blob(ctx, p) })
			}
		}
		leaveOut(o.layerCount-len(o.pending), func(msg string) {
			op.record(&Lookup{Step: ManifestStep, URL: redactURL(repoURL(op.sess.repo, "manifests", o.digest)), Err: msg},
				o.artifact(Artifact{Err: msg, Unfetched: true}))
		})
	}
	wg.Wait()
	if over > 0 {
		cut(fmt.Sprintf("%d signature or attestation layers not read: over the budget of %s", over, limit))
	}
}

// blob fetches and checks one layer, recording the request and the
// artifact. An artifact whose blob could not be fetched whole and right is
// Unfetched.
func (op *opening) blob(ctx context.Context, p pendingLayer) {
	s := op.sess
	op.sem <- struct{}{}
	a, l := s.do(ctx, request{
		step: BlobStep, method: http.MethodGet, url: repoURL(s.repo, "blobs", p.art.Layer),
		limit: p.desc.Size,
	})
	<-op.sem
	switch {
	case l.Err != "":
	case a.status != http.StatusOK:
		l.Err = s.statusMessage(a)
	case int64(len(a.body)) != p.desc.Size:
		l.Err = fmt.Sprintf("blob has %d bytes, the manifest says %d", len(a.body), p.desc.Size)
	default:
		if err := checkDigest(p.art.Layer, a.body); err != nil {
			l.Err = "blob " + err.Error()
		} else {
			l.Found = 1
		}
	}
	if l.Err != "" {
		p.art.Err, p.art.Unfetched = "fetching blob: "+l.Err, true
	} else {
		p.art.Content = a.body
	}
	op.record(&l, p.art)
}

// checkDigest checks that b has digest want ("sha256:<hex>").
func checkDigest(want string, b []byte) error {
	h, err := gcrv1.NewHash(want)
	if err != nil {
		return err
	}
	got, err := digestOf(h.Algorithm, b)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("digest is %s, want %s", got, want)
	}
	return nil
}
