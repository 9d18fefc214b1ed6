package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pregate/pregate/gate"
)

const ciToolVersion = "v0.0.0-test"

// ciSARIFSchema is the official SARIF 2.1.0 schema, compiled once from
// testdata (never fetched), with formats asserted.
var ciSARIFSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open(filepath.Join("testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("reading the SARIF schema: %w", err)
	}
	const url = "https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("adding the SARIF schema: %w", err)
	}
	return c.Compile(url)
})

// ciValidateSARIF checks a SARIF document against the schema.
func ciValidateSARIF(t *testing.T, out []byte) error {
	t.Helper()
	sch, err := ciSARIFSchema()
	if err != nil {
		t.Fatalf("compiling the SARIF schema: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(inst)
}

// ciSARIFOf writes the verdict's SARIF twice, checks both writes are equal
// and valid, and returns them.
func ciSARIFOf(t *testing.T, v gate.Verdict) []byte {
	t.Helper()
	out := ciWriteTwice(t, func(b *bytes.Buffer) error { return writeSARIF(b, v, ciToolVersion) })
	if err := ciValidateSARIF(t, out); err != nil {
		t.Fatalf("the SARIF report violates the SARIF 2.1.0 schema: %v", err)
	}
	return out
}

func ciParseSARIF(t *testing.T, out []byte) sarifLog {
	t.Helper()
	var doc sarifLog
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(doc.Runs))
	}
	return doc
}

func TestSARIFGolden(t *testing.T) {
	fixtures := ciFixtures()
	for _, name := range ciFixtureNames {
		t.Run(name, func(t *testing.T) {
			ciGolden(t, name+".sarif", ciSARIFOf(t, fixtures[name]))
		})
	}
}

func TestSARIFSchemaRejectsBrokenLogs(t *testing.T) {
	valid := ciSARIFOf(t, ciBlocked())
	for name, edit := range map[string]func(map[string]any){
		"wrong version": func(doc map[string]any) { doc["version"] = "2.0.0" },
		"no driver name": func(doc map[string]any) {
			run := doc["runs"].([]any)[0].(map[string]any)
			delete(run["tool"].(map[string]any)["driver"].(map[string]any), "name")
		},
		"bad level": func(doc map[string]any) {
			run := doc["runs"].([]any)[0].(map[string]any)
			run["results"].([]any)[0].(map[string]any)["level"] = "fatal"
		},
		"line 0": func(doc map[string]any) {
			run := doc["runs"].([]any)[0].(map[string]any)
			loc := run["results"].([]any)[0].(map[string]any)["locations"].([]any)[0].(map[string]any)
			loc["physicalLocation"].(map[string]any)["region"] = map[string]any{"startLine": 0}
		},
	} {
		t.Run(name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(valid, &doc); err != nil {
				t.Fatal(err)
			}
			edit(doc)
			broken, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := ciValidateSARIF(t, broken); err == nil {
				t.Error("the schema accepted a broken log")
			}
		})
	}
}

// ciResultAt finds the result of a rule at a file.
func ciResultAt(t *testing.T, run sarifRun, rule, uri string) sarifResult {
	t.Helper()
	for _, r := range run.Results {
		if r.RuleID == rule && r.Locations[0].PhysicalLocation.ArtifactLocation.URI == uri {
			return r
		}
	}
	t.Fatalf("no %s result at %s", rule, uri)
	return sarifResult{}
}

func TestSARIFContent(t *testing.T) {
	doc := ciParseSARIF(t, ciSARIFOf(t, ciBlocked()))
	if doc.Schema != "https://json.schemastore.org/sarif-2.1.0.json" || doc.Version != "2.1.0" {
		t.Errorf("$schema %q version %q", doc.Schema, doc.Version)
	}
	run := doc.Runs[0]
	d := run.Tool.Driver
	if d.Name != "pregate" || d.InformationURI != "https://github.com/pregate/pregate" || d.Version != ciToolVersion {
		t.Errorf("driver = %+v", d)
	}
	var ids []string
	for i, r := range d.Rules {
		ids = append(ids, r.ID)
		if r.ShortDescription.Text == "" || r.FullDescription.Text == "" || r.Help.Text == "" || r.DefaultConfiguration.Level == "" {
			t.Errorf("rule %s is not fully described: %+v", r.ID, r)
		}
		for _, res := range run.Results {
			if res.RuleID == r.ID && res.RuleIndex != i {
				t.Errorf("result of %s has ruleIndex %d, want %d", r.ID, res.RuleIndex, i)
			}
		}
	}
	want := "CoverageGap/HelmRelease IdentityMismatch LookupFailed NoSignatures UnmatchedImage"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("rules %s, want %s (sorted; none for passing images, audited ones only as notes)", got, want)
	}

	// 2 web locations, worker, miner, api (warning), batch (note), 1 gap.
	if len(run.Results) != 7 {
		t.Fatalf("%d results, want 7", len(run.Results))
	}
	var levels []string
	for _, r := range run.Results {
		levels = append(levels, r.Level)
	}
	if got := strings.Join(levels, " "); got != "error error error error error warning note" {
		t.Errorf("levels %s, want errors first", got)
	}

	// Set by a kustomization: that is the location, the manifest related.
	web := ciResultAt(t, run, "NoSignatures", "apps/web/kustomization.yaml")
	if p := web.Locations[0].PhysicalLocation; p.ArtifactLocation.URIBaseID != "%SRCROOT%" || p.Region == nil || p.Region.StartLine != 7 {
		t.Errorf("set-by location = %+v", p)
	}
	if len(web.RelatedLocations) != 1 || web.RelatedLocations[0].PhysicalLocation.ArtifactLocation.URI != "apps/web/deployment.yaml" ||
		web.RelatedLocations[0].PhysicalLocation.Region.StartLine != 21 {
		t.Errorf("related locations = %+v, want the manifest at line 21", web.RelatedLocations)
	}
	if ll := web.Locations[0].LogicalLocations; len(ll) != 1 || ll[0].FullyQualifiedName != "Deployment/apps/web" || ll[0].Name != "web" || ll[0].Properties["kubernetesKind"] != "Deployment" {
		t.Errorf("logical locations = %+v", ll)
	}
	if !strings.Contains(web.Message.Text, ciWebRef) || !strings.Contains(web.Message.Text, "no signatures found") || !strings.Contains(web.Message.Text, `"slsa" (AttestationMissing)`) {
		t.Errorf("message = %q", web.Message.Text)
	}

	// Line 0: no region.
	job := ciResultAt(t, run, "NoSignatures", "apps/web/job.yaml")
	if job.Locations[0].PhysicalLocation.Region != nil || len(job.RelatedLocations) != 0 {
		t.Errorf("a location without a line has a region: %+v", job.Locations[0].PhysicalLocation)
	}
	if web.PartialFingerprints["pregateImageLocation/v1"] == job.PartialFingerprints["pregateImageLocation/v1"] {
		t.Error("two locations of one image share a fingerprint")
	}

	if r := ciResultAt(t, run, "UnmatchedImage", "apps/web/deployment.yaml"); r.Level != "error" {
		t.Errorf("unmatched denied image: %+v", r)
	}
	if r := ciResultAt(t, run, "IdentityMismatch", "apps/api/deployment.yaml"); r.Level != "warning" {
		t.Errorf("warned image: level %s, want warning", r.Level)
	}
	gap := ciResultAt(t, run, "CoverageGap/HelmRelease", "apps/monitoring/release.yaml")
	if gap.Level != "error" || gap.Locations[0].PhysicalLocation.Region.StartLine != 1 || gap.PartialFingerprints["pregateGap/v1"] == "" {
		t.Errorf("gap result = %+v", gap)
	}

	p := run.Properties
	if p.State != "BLOCKED" || p.Truncated || p.OmittedResults != 0 || p.UnlocatedResults != 0 {
		t.Errorf("run properties = %+v", p)
	}
	if len(run.Invocations) != 1 || !run.Invocations[0].ExecutionSuccessful || len(run.Invocations[0].Notifications) != 0 {
		t.Errorf("invocations = %+v", run.Invocations)
	}
}

// Fingerprints depend on the image, the object and the path, not on
// lines or the order of the verdict.
func TestSARIFFingerprintsAreStable(t *testing.T) {
	fingerprints := func(v gate.Verdict) map[string]bool {
		out := map[string]bool{}
		for _, r := range ciParseSARIF(t, ciSARIFOf(t, v)).Runs[0].Results {
			for _, f := range r.PartialFingerprints {
				out[f] = true
			}
		}
		return out
	}
	before := ciBlocked()
	after := ciBlocked()
	for i := range after.Images {
		for j := range after.Images[i].Locations {
			after.Images[i].Locations[j].Line += 10
		}
	}
	after.Images[0], after.Images[1] = after.Images[1], after.Images[0]
	a, b := fingerprints(before), fingerprints(after)
	if len(a) != 7 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("fingerprints changed when lines moved:\n%v\n%v", a, b)
	}
}

func TestSARIFUnlocatedResultsAreLeftOut(t *testing.T) {
	run := ciParseSARIF(t, ciSARIFOf(t, ciUndecided())).Runs[0]
	// The SubstituteFromMissing gap has no file; the other gap and the
	// image do.
	if len(run.Results) != 2 {
		t.Fatalf("%d results, want 2", len(run.Results))
	}
	for _, r := range run.Results {
		if len(r.Locations) != 1 || r.Locations[0].PhysicalLocation == nil || r.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" {
			t.Errorf("result without a physical location: %+v", r)
		}
	}
	if run.Properties.UnlocatedResults != 1 || run.Properties.Truncated {
		t.Errorf("properties = %+v", run.Properties)
	}
	n := run.Invocations[0].Notifications
	if len(n) != 1 || n[0].Descriptor.ID != "pregate/unlocated" || !strings.Contains(n[0].Message.Text, "file to point at (a generated object, a gap without a file): 1.") {
		t.Errorf("notifications = %+v", n)
	}
	if r := ciResultAt(t, run, "ResolveFailed", "api.yaml"); !strings.Contains(r.Message.Text, `"second" (LookupFailed)`) {
		t.Errorf("message = %q", r.Message.Text)
	}
}

func TestSARIFHostileText(t *testing.T) {
	out := ciSARIFOf(t, ciHostileVerdict())
	run := ciParseSARIF(t, out).Runs[0]
	uris := map[string]bool{}
	for _, r := range run.Results {
		uris[r.Locations[0].PhysicalLocation.ArtifactLocation.URI] = true
		if len(r.Message.Text) > 4*sarifMaxText || strings.ContainsAny(r.Message.Text, "\n\r\x00\x1b") {
			t.Errorf("message not bounded to one line: %d bytes", len(r.Message.Text))
		}
		if strings.ContainsAny(r.RuleID, " <>[]:\n") || len(r.RuleID) > len(gate.CoverageGapReason)+1+64 {
			t.Errorf("rule id %q not sanitised", r.RuleID)
		}
	}
	for _, want := range []string{"./a:b/kustomization.yaml", "apps/we,b:x%2520/dep%20loy.yaml"} {
		if !uris[want] {
			t.Errorf("no result at %q; uris %v", want, uris)
		}
	}
	if len(run.Properties.Message) > 8*sarifMaxText {
		t.Errorf("run message is %d bytes", len(run.Properties.Message))
	}
}

// ciManyImages is a verdict denying n images, each at one location in an
// object with a name pad bytes long.
func ciManyImages(n, pad int) gate.Verdict {
	v := gate.Verdict{Reason: gate.NoSignaturesReason, Message: "many"}
	for i := range n {
		ref := fmt.Sprintf("ghcr.io/acme/app%05d:1", i)
		v.Images = append(v.Images, gate.ImageVerdict{
			Ref: ref, Outcome: gate.Denied, Status: gate.NoSignatures, Policies: []string{"p"},
			Detail:    "no signatures",
			Findings:  []gate.Finding{{Image: ref, Policy: "p", Status: gate.NoSignatures, Detail: "none"}},
			Locations: []gate.Location{ciLoc(fmt.Sprintf("apps/app%05d.yaml", i), 3, "Deployment/apps/app"+strings.Repeat("x", pad), "app", "spec.template.spec.containers[0]")},
		})
	}
	return v
}

func TestSARIFTruncation(t *testing.T) {
	for _, tc := range []struct {
		name        string
		images, pad int
		kept        int
	}{
		{"by count", sarifMaxResults + 250, 10, sarifMaxResults},
		{"by size", 3000, 4000, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := ciSARIFOf(t, ciManyImages(tc.images, tc.pad))
			run := ciParseSARIF(t, out).Runs[0]
			kept := len(run.Results)
			if tc.kept >= 0 && kept != tc.kept {
				t.Errorf("%d results kept, want %d", kept, tc.kept)
			}
			if kept == 0 || kept >= tc.images {
				t.Fatalf("%d of %d results kept: nothing was cut", kept, tc.images)
			}
			if len(out) > 10<<20 {
				t.Errorf("the log is %d bytes, over 10 MB", len(out))
			}
			p := run.Properties
			if !p.Truncated || p.OmittedResults != tc.images-kept {
				t.Errorf("properties = %+v, want truncated with %d omitted", p, tc.images-kept)
			}
			n := run.Invocations[0].Notifications
			if len(n) != 1 || n[0].Descriptor.ID != "pregate/truncated" || !strings.HasPrefix(n[0].Message.Text, fmt.Sprintf("Results left out, the least severe: %d.", tc.images-kept)) {
				t.Errorf("notifications = %+v", n)
			}
			// What is kept is the start of the sorted list.
			if got := run.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI; got != "apps/app00000.yaml" {
				t.Errorf("first result at %s", got)
			}
		})
	}
}
