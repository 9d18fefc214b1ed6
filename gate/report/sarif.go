package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/render"
)

// The SARIF report: SARIF 2.1.0, one run, shaped for GitHub code scanning.
//
// A result is an image that did not pass, at one of its locations (level
// error when Denied, warning when Warned, note when Audited), or a
// blocking gap at its file. Its rule is the image's Status (NoSignatures,
// IdentityMismatch, LookupFailed, …), UnmatchedImage for an image no
// policy matches, or CoverageGap/<gap reason> for a gap.
//
// When the reference was set elsewhere than the manifest (a kustomize
// images: entry, a postBuild variable), that place is the result's
// location, where a fix goes, and the manifest is its related location.
// Code scanning rejects a whole file for one result without a physical
// location, so a result with no file to point at (a generated object) is
// left out and a notification counts it.
//
// GitHub's limits (docs.github.com, "SARIF support for code scanning"):
// at most 25,000 results a run, of which only the top 5,000 by severity
// are kept; 1,000 locations a result (100 shown); 25,000 rules a run; a
// 10 MB gzipped upload. Results are sorted most severe first and cut
// after sarifMaxResults, or once they hold sarifMaxResultBytes of JSON;
// the run's properties and a notification say what was cut. A result has
// one location and at most one related location, and there is one rule
// per rule id among the results kept, far below the limits.

// SARIF's identity and pregate's.
const (
	sarifSchemaURI = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion   = "2.1.0"
	sarifToolName  = "pregate"
	sarifToolURI   = "https://github.com/pregate/pregate"
	sarifSrcRoot   = "%SRCROOT%"
)

// Bounds on the SARIF report.
const (
	// sarifMaxResults is the number of results code scanning keeps.
	sarifMaxResults = 5000
	// sarifMaxResultBytes bounds the results' JSON, well inside the 10 MB
	// upload limit even before gzip.
	sarifMaxResultBytes = 8 << 20
	// sarifMaxText bounds a quoted detail or message.
	sarifMaxText = 1024
)

// The SARIF levels pregate uses, most severe first.
const (
	sarifError   = "error"
	sarifWarning = "warning"
	sarifNote    = "note"
)

var sarifLevelRank = map[string]int{sarifError: 0, sarifWarning: 1, sarifNote: 2}

// Rule ids that are not image statuses.
const (
	sarifUnmatchedRule = gate.UnmatchedImageReason
	sarifGapRule       = gate.CoverageGapReason
	sarifAdmissionRule = "Admission"
	sarifRunningRule   = gate.RunningDeniedReason
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool               sarifTool                        `json:"tool"`
	Invocations        []sarifInvocation                `json:"invocations"`
	OriginalURIBaseIDs map[string]sarifArtifactLocation `json:"originalUriBaseIds"`
	Results            []sarifResult                    `json:"results"`
	Properties         sarifRunProperties               `json:"properties"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name"`
	ShortDescription     sarifText          `json:"shortDescription"`
	FullDescription      sarifText          `json:"fullDescription"`
	Help                 sarifText          `json:"help"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           sarifRuleProps     `json:"properties"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	Tags []string `json:"tags"`
}

// sarifText is a message or a multiformatMessageString: both are {text}.
type sarifText struct {
	Text string `json:"text"`
}

type sarifInvocation struct {
	ExecutionSuccessful bool                `json:"executionSuccessful"`
	Notifications       []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Descriptor sarifDescriptorRef `json:"descriptor"`
	Level      string             `json:"level"`
	Message    sarifText          `json:"message"`
}

type sarifDescriptorRef struct {
	ID string `json:"id"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	RelatedLocations    []sarifLocation   `json:"relatedLocations,omitempty"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties"`
}

type sarifLocation struct {
	ID               *int           `json:"id,omitempty"`
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
	Message          *sarifText     `json:"message,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI         string     `json:"uri,omitempty"`
	URIBaseID   string     `json:"uriBaseId,omitempty"`
	Description *sarifText `json:"description,omitempty"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	Name               string            `json:"name,omitempty"`
	FullyQualifiedName string            `json:"fullyQualifiedName"`
	Kind               string            `json:"kind"`
	Properties         map[string]string `json:"properties,omitempty"`
}

// sarifRunProperties carries the verdict and what the report left out.
type sarifRunProperties struct {
	Revision         string `json:"revision"`
	State            string `json:"state"`
	Allowed          bool   `json:"allowed"`
	Undecided        bool   `json:"undecided"`
	Retry            bool   `json:"retry"`
	Reason           string `json:"reason"`
	Message          string `json:"message"`
	Truncated        bool   `json:"truncated"`
	OmittedResults   int    `json:"omittedResults"`
	UnlocatedResults int    `json:"unlocatedResults"`
}

// writeSARIF writes the verdict as a SARIF 2.1.0 log for code scanning;
// toolVersion is pregate's version.
func writeSARIF(w io.Writer, v gate.Verdict, toolVersion string) error {
	doc, err := sarifDocument(v, toolVersion)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing the SARIF report: %w", err)
	}
	return nil
}

// sarifDocument builds the log: results sorted and bounded, then the
// rules they use.
func sarifDocument(v gate.Verdict, toolVersion string) (sarifLog, error) {
	all, unlocated := sarifResults(v)
	kept, omitted, err := sarifBound(all)
	if err != nil {
		return sarifLog{}, err
	}
	if kept == nil {
		kept = []sarifResult{}
	}
	rules := sarifRules(kept)
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name:           sarifToolName,
			InformationURI: sarifToolURI,
			Version:        toolVersion,
			Rules:          rules,
		}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: true, Notifications: sarifNotifications(omitted, unlocated)}},
		OriginalURIBaseIDs: map[string]sarifArtifactLocation{
			sarifSrcRoot: {Description: &sarifText{Text: "The source root the revision was rendered from: normally the repository root."}},
		},
		Results: kept,
		Properties: sarifRunProperties{
			Revision:         gate.Clip(v.Revision.String(), sarifMaxText),
			State:            State(v),
			Allowed:          v.Allowed,
			Undecided:        v.Undecided,
			Retry:            v.Retry,
			Reason:           v.Reason,
			Message:          gate.Clip(v.Message, 8*sarifMaxText),
			Truncated:        omitted > 0,
			OmittedResults:   omitted,
			UnlocatedResults: unlocated,
		},
	}
	return sarifLog{Schema: sarifSchemaURI, Version: sarifVersion, Runs: []sarifRun{run}}, nil
}

// sarifResults gives every result, sorted, and counts those left out for
// want of a file.
func sarifResults(v gate.Verdict) ([]sarifResult, int) {
	var out []sarifResult
	unlocated := 0
	for _, iv := range v.Images {
		level, ok := sarifImageLevel(iv.Outcome)
		if !ok {
			continue
		}
		if len(iv.Locations) == 0 {
			unlocated++
			continue
		}
		for _, l := range iv.Locations {
			r, ok := sarifImageResult(iv, l, level)
			if !ok {
				unlocated++
				continue
			}
			out = append(out, r)
		}
	}
	for _, g := range v.Gaps {
		if !g.Blocking {
			continue
		}
		r, ok := sarifGapResult(g)
		if !ok {
			unlocated++
			continue
		}
		out = append(out, r)
	}
	adm, admUnlocated := sarifAdmissionResults(v)
	out = append(out, adm...)
	unlocated += admUnlocated
	running, runningUnlocated := sarifRunningResults(v)
	out = append(out, running...)
	unlocated += runningUnlocated
	sort.SliceStable(out, func(i, j int) bool { return sarifLess(out[i], out[j]) })
	return out, unlocated
}

// sarifLess orders results most severe first, then by rule, file, line
// and fingerprint.
func sarifLess(a, b sarifResult) bool {
	if ra, rb := sarifLevelRank[a.Level], sarifLevelRank[b.Level]; ra != rb {
		return ra < rb
	}
	if a.RuleID != b.RuleID {
		return a.RuleID < b.RuleID
	}
	pa, pb := a.Locations[0].PhysicalLocation, b.Locations[0].PhysicalLocation
	if pa.ArtifactLocation.URI != pb.ArtifactLocation.URI {
		return pa.ArtifactLocation.URI < pb.ArtifactLocation.URI
	}
	if la, lb := sarifLine(pa), sarifLine(pb); la != lb {
		return la < lb
	}
	return sarifFingerprint(a) < sarifFingerprint(b)
}

func sarifLine(p *sarifPhysical) int {
	if p.Region == nil {
		return 0
	}
	return p.Region.StartLine
}

func sarifFingerprint(r sarifResult) string {
	keys := make([]string, 0, len(r.PartialFingerprints))
	for k := range r.PartialFingerprints {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + r.PartialFingerprints[k] + "\n")
	}
	return b.String()
}

// sarifBound keeps the first results within sarifMaxResults and
// sarifMaxResultBytes, and counts the rest.
func sarifBound(results []sarifResult) ([]sarifResult, int, error) {
	size := 0
	for i, r := range results {
		if i == sarifMaxResults {
			return results[:i], len(results) - i, nil
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, 0, fmt.Errorf("encoding a SARIF result: %w", err)
		}
		if size+len(b) > sarifMaxResultBytes {
			return results[:i], len(results) - i, nil
		}
		size += len(b)
	}
	return results, 0, nil
}

// sarifImageLevel is the level of an image's results; false when the
// image passed.
func sarifImageLevel(o gate.Outcome) (string, bool) {
	switch o {
	case gate.Passed, gate.Allowed:
		return "", false
	case gate.Warned:
		return sarifWarning, true
	case gate.Audited:
		return sarifNote, true
	default:
		return sarifError, true
	}
}

// sarifImageResult is the result of an image at one location; false when
// the location has no file to point at.
func sarifImageResult(iv gate.ImageVerdict, l gate.Location, level string) (sarifResult, bool) {
	manifest := sarifPhysicalAt(l.Origin)
	primary := manifest
	var related []sarifLocation
	if l.SetBy != nil && l.SetBy.File != "" {
		primary = sarifPhysicalAt(*l.SetBy)
		if manifest != nil {
			id := 1
			related = []sarifLocation{{
				ID:               &id,
				PhysicalLocation: manifest,
				Message:          &sarifText{Text: gate.Clip("The image is used here, in "+l.Object+sarifContainer(l)+".", sarifMaxText)},
			}}
		}
	}
	if primary == nil {
		return sarifResult{}, false
	}
	return sarifResult{
		RuleID:  sarifImageRule(iv),
		Level:   level,
		Message: sarifText{Text: sarifImageMessage(iv, l)},
		Locations: []sarifLocation{{
			PhysicalLocation: primary,
			LogicalLocations: sarifObject(l.Object, l.APIVersion),
		}},
		RelatedLocations:    related,
		PartialFingerprints: map[string]string{"pregateImageLocation/v1": sarifHash(iv.Ref, l.Object, l.Path)},
		Properties:          sarifImageProperties(iv, l),
	}, true
}

// sarifImageRule is an image's rule id: its status, or UnmatchedImage.
func sarifImageRule(iv gate.ImageVerdict) string {
	switch {
	case len(iv.Policies) == 0:
		return sarifUnmatchedRule
	case iv.Status == "":
		return gate.VerificationFailedReason
	default:
		return sarifRuleID(string(iv.Status))
	}
}

// sarifImageMessage says what became of the image and where it is used.
func sarifImageMessage(iv gate.ImageVerdict, l gate.Location) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is %s: %s.", iv.Ref, strings.ToLower(string(iv.Outcome)), gate.Clip(iv.Detail, sarifMaxText))
	if iv.Digest != "" {
		fmt.Fprintf(&b, " Digest %s.", iv.Digest)
	}
	fmt.Fprintf(&b, " Used in %s%s", l.Object, sarifContainer(l))
	if l.SetBy != nil && l.SetBy.File != "" {
		fmt.Fprintf(&b, ", set by %s", originString(*l.SetBy))
	}
	b.WriteString(".")
	if failing := sarifFailing(iv); len(failing) > 1 {
		b.WriteString(" Failing policies: " + strings.Join(failing, "; ") + ".")
	}
	return gate.Clip(b.String(), 4*sarifMaxText)
}

// sarifFailing lists an image's failing policies with their statuses.
func sarifFailing(iv gate.ImageVerdict) []string {
	var out []string
	for _, p := range iv.Policies {
		if f := policyFinding(iv, p); f.Status != gate.Verified {
			out = append(out, fmt.Sprintf("%q (%s)", p, f.Status))
		}
	}
	return out
}

func sarifContainer(l gate.Location) string {
	s := ""
	if l.Container != "" {
		s += ", container " + l.Container
	}
	if l.Path != "" {
		s += " (" + l.Path + ")"
	}
	return s
}

// sarifImageProperties records the image's verdict on its result.
func sarifImageProperties(iv gate.ImageVerdict, l gate.Location) map[string]any {
	p := map[string]any{
		"image":    iv.Ref,
		"outcome":  string(iv.Outcome),
		"policies": append([]string{}, iv.Policies...),
		"object":   l.Object,
		"path":     l.Path,
	}
	for k, s := range map[string]string{"digest": iv.Digest, "pinned": iv.Pinned, "status": string(iv.Status), "container": l.Container} {
		if s != "" {
			p[k] = s
		}
	}
	if len(l.Chain) > 0 {
		p["chain"] = append([]string{}, l.Chain...)
	}
	return p
}

// sarifGapResult is the result of a blocking gap; false when it has no
// file to point at.
func sarifGapResult(g gate.Gap) (sarifResult, bool) {
	at := sarifPhysicalAt(g.Origin)
	if at == nil {
		return sarifResult{}, false
	}
	where := strings.TrimSpace(g.Object + " " + g.Path)
	text := fmt.Sprintf("Coverage gap (%s)", g.Reason)
	if where != "" {
		text += " in " + where
	}
	text += ": " + gate.Clip(g.Message, sarifMaxText) + ". pregate cannot list the images there, so the revision is not allowed."
	loc := sarifLocation{PhysicalLocation: at}
	if g.Object != "" {
		loc.LogicalLocations = sarifObject(g.Object, "")
	}
	props := map[string]any{"reason": string(g.Reason)}
	if len(g.Chain) > 0 {
		props["chain"] = append([]string{}, g.Chain...)
	}
	return sarifResult{
		RuleID:              sarifGapRuleID(g.Reason),
		Level:               sarifError,
		Message:             sarifText{Text: gate.Clip(text, 4*sarifMaxText)},
		Locations:           []sarifLocation{loc},
		PartialFingerprints: map[string]string{"pregateGap/v1": sarifHash(string(g.Reason), g.File, g.Object, g.Path)},
		Properties:          props,
	}, true
}

func sarifGapRuleID(r gate.GapReason) string {
	return sarifGapRule + "/" + sarifRuleID(string(r))
}

// sarifRuleID keeps a rule id to letters, digits, '.', '_' and '-', at
// most 64 bytes: statuses and gap reasons are identifiers already.
func sarifRuleID(s string) string {
	id := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return -1
	}, s)
	if len(id) > 64 {
		id = id[:64]
	}
	if id == "" {
		return "Unknown"
	}
	return id
}

// sarifPhysicalAt points at a file and line under %SRCROOT%; nil without
// a file.
func sarifPhysicalAt(o gate.Origin) *sarifPhysical {
	if o.File == "" {
		return nil
	}
	p := &sarifPhysical{ArtifactLocation: sarifArtifactLocation{URI: sarifURI(o.File), URIBaseID: sarifSrcRoot}}
	if o.Line > 0 {
		p.Region = &sarifRegion{StartLine: o.Line}
	}
	return p
}

// sarifURI makes a slash-separated relative path a relative URI
// reference: spaces, '%', '#', '?' escaped, and "./" before a first
// segment with a colon so it does not read as a scheme.
func sarifURI(file string) string {
	u := url.URL{Path: file}
	return u.String()
}

// sarifObject is a Kubernetes object ("Kind/namespace/name") as a logical
// location.
func sarifObject(object, apiVersion string) []sarifLogical {
	if object == "" {
		return nil
	}
	l := sarifLogical{FullyQualifiedName: object, Kind: "resource"}
	parts := strings.Split(object, "/")
	l.Name = parts[len(parts)-1]
	props := map[string]string{}
	if len(parts) > 1 {
		props["kubernetesKind"] = parts[0]
	}
	if apiVersion != "" {
		props["apiVersion"] = apiVersion
	}
	if len(props) > 0 {
		l.Properties = props
	}
	return []sarifLogical{l}
}

// sarifHash is a stable fingerprint of its parts.
func sarifHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sarifNotifications says what the report left out.
func sarifNotifications(omitted, unlocated int) []sarifNotification {
	var out []sarifNotification
	if omitted > 0 {
		out = append(out, sarifNotification{
			Descriptor: sarifDescriptorRef{ID: "pregate/truncated"},
			Level:      sarifWarning,
			Message: sarifText{Text: fmt.Sprintf("Results left out, the least severe: %d. Code scanning keeps at most %d results a run, and this report holds at most %d MiB of them; the JSON report lists them all.",
				omitted, sarifMaxResults, sarifMaxResultBytes>>20)},
		})
	}
	if unlocated > 0 {
		out = append(out, sarifNotification{
			Descriptor: sarifDescriptorRef{ID: "pregate/unlocated"},
			Level:      sarifWarning,
			Message: sarifText{Text: fmt.Sprintf("Results left out for want of a file to point at (a generated object, a gap without a file): %d. Code scanning rejects a result without a physical location; the JSON report lists them.",
				unlocated)},
		})
	}
	return out
}

// sarifRules gives the rules the results use, sorted by id, and sets each
// result's ruleIndex.
func sarifRules(results []sarifResult) []sarifRule {
	ids := map[string]bool{}
	for _, r := range results {
		ids[r.RuleID] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	index := map[string]int{}
	rules := make([]sarifRule, len(sorted))
	for i, id := range sorted {
		index[id] = i
		rules[i] = sarifRuleFor(id)
	}
	for i := range results {
		results[i].RuleIndex = index[results[i].RuleID]
	}
	return rules
}

// sarifRuleTexts are a rule's short and full descriptions and help.
type sarifRuleTexts struct{ short, full, help string }

// sarifImageRules describe the image rules, by id.
var sarifImageRules = map[string]sarifRuleTexts{
	string(gate.NoSignatures): {
		"Image has no signatures",
		"Every lookup for the image's signatures and attestations succeeded and none was found: nothing vouches for what would run.",
		"Sign the image (for example with cosign) with an identity a matching policy trusts, or use an image that is signed.",
	},
	string(gate.IdentityMismatch): {
		"Image signed by an identity no policy trusts",
		"The image has signatures, but none is by an identity (certificate issuer and subject, or key) that a matching policy trusts.",
		"Sign the image with a trusted identity, or add the signer's identity to the policy if it should be trusted.",
	},
	string(gate.InvalidSignature): {
		"Image signature does not verify",
		"A signature or its certificate, transparency log entry or timestamp did not verify against the image's digest.",
		"Re-sign the image; check that the signature is for this digest and that the policy's trust roots are current.",
	},
	string(gate.AttestationMissing): {
		"Required attestation missing",
		"The image is signed, but an attestation a matching policy requires (for example SLSA provenance) was not found or did not verify.",
		"Attach the required attestation to the image, signed by a trusted identity.",
	},
	string(gate.StaticFail): {
		"Image rejected by a static policy",
		"A static policy rejects the image whatever its signatures.",
		"Use an image the policy allows, or change the policy.",
	},
	string(gate.LookupFailed): {
		"Signature lookup failed",
		"A registry lookup failed and nothing verified the image, so pregate could not conclude whether it is signed. The revision is undecided; a retry may decide.",
		"Check the registry's availability and the credentials pregate uses, then retry.",
	},
	string(gate.ResolveFailed): {
		"Image reference could not be resolved",
		"pregate could not resolve the image reference to a digest, so it could not verify it. The revision is undecided; a retry may decide.",
		"Check that the image exists and that the registry is reachable with the credentials pregate uses.",
	},
	sarifUnmatchedRule: {
		"No trust policy matches the image",
		"No trust policy's image globs match the reference, and unmatched images are not allowed.",
		"Add a trust policy that covers the image, or change the image to one a policy covers.",
	},
	gate.VerificationFailedReason: {
		"Image verification failed",
		"The image did not verify against a matching policy.",
		"See the result's message for the policy and the reason.",
	},
}

// sarifGapTexts explain the gap reasons render reports.
var sarifGapTexts = map[gate.GapReason]string{
	render.HelmReleaseGap:     "A HelmRelease's chart is not rendered, so its images are not known.",
	render.OtherSourceGap:     "A Flux Kustomization applies a different source, gated on its own.",
	render.RemoteBaseGap:      "A kustomization refers to a remote base, component or file that could not be fetched or built, or remote bases are disabled.",
	render.BuildFailedGap:     "A Flux Kustomization's path could not be built.",
	render.MissingPathGap:     "A Flux Kustomization's path does not exist in the revision.",
	render.SubstituteFromGap:  "A postBuild.substituteFrom ConfigMap or Secret is neither in the revision nor given on the command line.",
	render.UnresolvedImageGap: "A container's image is still a template after rendering, is not a valid reference, is missing, or its pod spec is malformed.",
	render.EncryptedGap:       "SOPS-encrypted content could not be decrypted (no key given, or none opens it), so what depends on its values is not known.",
}

// sarifRuleFor describes a rule id.
func sarifRuleFor(id string) sarifRule {
	t, ok := sarifImageRules[id]
	if adm, isAdm := sarifAdmissionRuleFor(id); isAdm {
		t, ok = adm, true
	}
	switch {
	case ok:
	case id == sarifRunningRule:
		t = sarifRuleTexts{
			"Running pods no longer admitted",
			"An admission policy this revision adds or changes would deny Pods that run in the cluster now, the next time they are created (an eviction, a rollout, a node drain).",
			"Make the policy read the signatures those images have (see the message for the rule and why), sign the images as it reads them, or apply the policy in Audit first.",
		}
	case strings.HasPrefix(id, sarifGapRule+"/"):
		reason := strings.TrimPrefix(id, sarifGapRule+"/")
		why, known := sarifGapTexts[gate.GapReason(reason)]
		if !known {
			why = "Part of the revision could not be rendered."
		}
		t = sarifRuleTexts{
			"Coverage gap: " + reason,
			why + " pregate cannot list the images there, and never allows what it could not see.",
			"Make the part renderable, or allow gaps of this kind explicitly (--allow-gap " + reason + ") if another check covers them.",
		}
	default:
		t = sarifRuleTexts{
			"Image failed verification: " + id,
			"Verifying the image against a matching policy ended with status " + id + ".",
			"See the result's message for the policy and the reason.",
		}
	}
	return sarifRule{
		ID:                   id,
		Name:                 strings.ReplaceAll(id, "/", ""),
		ShortDescription:     sarifText{Text: t.short},
		FullDescription:      sarifText{Text: t.full},
		Help:                 sarifText{Text: t.help},
		DefaultConfiguration: sarifConfiguration{Level: sarifError},
		Properties:           sarifRuleProps{Tags: []string{"container-image", "supply-chain"}},
	}
}
