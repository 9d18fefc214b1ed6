package report

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pregate/pregate/gate"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// ciHostile is text a registry or a signer could send: markup for every
// format, control characters, workflow commands, newlines, invalid UTF-8
// and length.
const ciHostile = "evil ]]> <script>alert(1)</script> &amp; \x00\x01\x1b[31m\x7f \ufffe\u2028 ::error::owned %0A 100% | pipe " +
	"[link](https://evil.example) ![img](https://evil.example/x.png) *bold* _it_ `code` @octocat\r\n::warning file=x::second line\n# heading \xff\xfe "

// ciHostileLong is hostile text longer than any bound.
var ciHostileLong = ciHostile + strings.Repeat("A", 5000)

// ciFixtures are the verdicts the CI report tests write, by name.
func ciFixtures() map[string]gate.Verdict {
	return map[string]gate.Verdict{
		"blocked":   ciBlocked(),
		"allowed":   ciAllowed(),
		"undecided": ciUndecided(),
		"empty":     {},
		"hostile":   ciHostileVerdict(),
	}
}

// ciFixtureNames are ciFixtures' names, sorted.
var ciFixtureNames = []string{"allowed", "blocked", "empty", "hostile", "undecided"}

const (
	ciWebRef   = "ghcr.io/acme/web:1.4.0"
	ciWebDig   = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	ciAPIRef   = "ghcr.io/acme/api:2.0.0"
	ciAPIDig   = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	ciNginxRef = "index.docker.io/library/nginx:1.27"
)

func ciLoc(file string, line int, object, container, path string) gate.Location {
	return gate.Location{
		Origin:     gate.Origin{File: file, Line: line, Chain: []string{"Kustomization/flux-system/apps"}},
		Object:     object,
		APIVersion: "apps/v1",
		Container:  container,
		Path:       path,
	}
}

// ciBlocked has an image of each outcome and both kinds of gap.
func ciBlocked() gate.Verdict {
	web := ciLoc("apps/web/deployment.yaml", 21, "Deployment/apps/web", "web", "spec.template.spec.containers[0]")
	web.SetBy = &gate.Origin{File: "apps/web/kustomization.yaml", Line: 7}
	webJob := ciLoc("apps/web/job.yaml", 0, "Job/apps/migrate", "migrate", "spec.template.spec.containers[0]")
	return gate.Verdict{
		Revision: gate.Revision{Source: "GitRepository/flux-system/flux-system", ID: "main@sha1:5ab9"},
		Reason:   gate.VerificationFailedReason,
		Message:  "3 of 7 images denied: …",
		Summary:  gate.Summary{Total: 7, Verified: 1, Warned: 1, Denied: 3, Unmatched: 2},
		Images: []gate.ImageVerdict{
			{
				Ref: ciWebRef, Digest: ciWebDig, Pinned: ciWebRef + "@" + ciWebDig, Outcome: gate.Denied, Status: gate.NoSignatures,
				Policies: []string{"first-party", "slsa"}, Detail: `policy "first-party": no signatures found`,
				Findings: []gate.Finding{
					{Image: ciWebRef, Policy: "first-party", Digest: ciWebDig, Status: gate.NoSignatures, Detail: "no signatures found"},
					{Image: ciWebRef, Policy: "slsa", Digest: ciWebDig, Status: gate.AttestationMissing, Detail: "no SLSA provenance"},
				},
				Locations: []gate.Location{web, webJob},
			},
			{
				Ref: "ghcr.io/acme/worker:3.1", Outcome: gate.Denied, Status: gate.LookupFailed,
				Policies: []string{"first-party"}, Detail: `policy "first-party": GET https://ghcr.io/v2/: 503 Service Unavailable`,
				Findings: []gate.Finding{
					{Image: "ghcr.io/acme/worker:3.1", Policy: "first-party", Status: gate.LookupFailed, Detail: "GET https://ghcr.io/v2/: 503 Service Unavailable"},
				},
				Locations: []gate.Location{ciLoc("apps/worker/deployment.yaml", 18, "Deployment/apps/worker", "worker", "spec.template.spec.containers[0]")},
			},
			{
				Ref: "quay.io/evil/miner:latest", Outcome: gate.Denied, Policies: []string{},
				Detail: "no policy matches; unmatched images are denied", Findings: []gate.Finding{},
				Locations: []gate.Location{ciLoc("apps/web/deployment.yaml", 40, "Deployment/apps/web", "sidecar", "spec.template.spec.containers[1]")},
			},
			{
				Ref: ciAPIRef, Digest: ciAPIDig, Pinned: ciAPIRef + "@" + ciAPIDig, Outcome: gate.Warned, Status: gate.IdentityMismatch,
				Policies: []string{"partners"}, Detail: `policy "partners": signed by https://github.com/fork/api/.github/workflows/release.yml@refs/heads/main, not a trusted identity`,
				Findings: []gate.Finding{
					{Image: ciAPIRef, Policy: "partners", Digest: ciAPIDig, Status: gate.IdentityMismatch, Detail: "signed by https://github.com/fork/api/.github/workflows/release.yml@refs/heads/main, not a trusted identity", Mode: gate.Warn},
				},
				Locations: []gate.Location{ciLoc("apps/api/deployment.yaml", 12, "Deployment/apps/api", "api", "spec.template.spec.containers[0]")},
			},
			{
				Ref: "ghcr.io/acme/batch:0.9", Outcome: gate.Audited, Status: gate.NoSignatures,
				Policies: []string{"audit-all"}, Detail: `policy "audit-all": no signatures found`,
				Findings: []gate.Finding{
					{Image: "ghcr.io/acme/batch:0.9", Policy: "audit-all", Status: gate.NoSignatures, Detail: "no signatures found", Mode: gate.Audit},
				},
				Locations: []gate.Location{ciLoc("apps/batch/cronjob.yaml", 0, "CronJob/apps/batch", "batch", "spec.jobTemplate.spec.template.spec.containers[0]")},
			},
			{
				Ref: "ghcr.io/acme/db:16", Digest: ciWebDig, Outcome: gate.Passed, Status: gate.Verified,
				Policies: []string{"first-party"}, Detail: `verified by "first-party"`,
				Findings: []gate.Finding{
					{Image: "ghcr.io/acme/db:16", Policy: "first-party", Digest: ciWebDig, Status: gate.Verified, Detail: "signed by https://github.com/acme/db/.github/workflows/release.yml@refs/tags/v16"},
				},
				Locations: []gate.Location{ciLoc("apps/db/statefulset.yaml", 30, "StatefulSet/apps/db", "db", "spec.template.spec.containers[0]")},
			},
			{
				Ref: ciNginxRef, Outcome: gate.Allowed, Policies: []string{},
				Detail: "no policy matches; unmatched images are allowed", Findings: []gate.Finding{},
				Locations: []gate.Location{ciLoc("apps/proxy/deployment.yaml", 15, "Deployment/apps/proxy", "nginx", "spec.template.spec.containers[0]")},
			},
		},
		Gaps: []gate.Gap{
			{Reason: "HelmRelease", Origin: gate.Origin{File: "apps/monitoring/release.yaml", Line: 1}, Object: "HelmRelease/monitoring/prometheus", Message: "chart not rendered", Blocking: true},
			{Reason: "OtherSource", Origin: gate.Origin{File: "clusters/prod/infra.yaml", Line: 3}, Object: "Kustomization/flux-system/infra", Message: "applies GitRepository/flux-system/infra", Informational: true},
		},
	}
}

// ciAllowed passes, with an unmatched image that warns and a gap the
// config allows.
func ciAllowed() gate.Verdict {
	return gate.Verdict{
		Revision: gate.Revision{Source: "clusters/prod"},
		Allowed:  true,
		Reason:   gate.SucceededReason,
		Message:  "1 of 2 images verified, 1 warned; 1 coverage gap (0 blocking)",
		Summary:  gate.Summary{Total: 2, Verified: 1, Warned: 1, Unmatched: 1},
		Images: []gate.ImageVerdict{
			{
				Ref: ciNginxRef, Outcome: gate.Warned, Policies: []string{}, Findings: []gate.Finding{},
				Detail:    "no policy matches; unmatched images warn",
				Locations: []gate.Location{ciLoc("proxy.yaml", 9, "Deployment/default/proxy", "nginx", "spec.template.spec.containers[0]")},
			},
			{
				Ref: ciWebRef, Digest: ciWebDig, Pinned: ciWebRef + "@" + ciWebDig, Outcome: gate.Passed, Status: gate.Verified,
				Policies: []string{"first-party"}, Detail: `verified by "first-party"`,
				Findings:  []gate.Finding{{Image: ciWebRef, Policy: "first-party", Digest: ciWebDig, Status: gate.Verified, Detail: "signed"}},
				Locations: []gate.Location{ciLoc("web.yaml", 20, "Deployment/default/web", "web", "spec.template.spec.containers[0]")},
			},
		},
		Gaps: []gate.Gap{{Reason: "RemoteBase", Origin: gate.Origin{File: "base/kustomization.yaml", Line: 4}, Message: "remote base github.com/acme/base not fetched"}},
	}
}

// ciUndecided could not decide: a failed resolve and a blocking gap
// without a file.
func ciUndecided() gate.Verdict {
	return gate.Verdict{
		Revision:  gate.Revision{Source: "clusters/prod", ID: "main@sha1:abcd"},
		Undecided: true,
		Retry:     true,
		Reason:    gate.CoverageGapReason,
		Message:   "images not seen: 1 coverage gap blocking",
		Summary:   gate.Summary{Total: 1, Denied: 1},
		Images: []gate.ImageVerdict{{
			Ref: ciAPIRef, Outcome: gate.Denied, Status: gate.ResolveFailed,
			Policies: []string{"first-party", "second"}, Detail: `policy "first-party": manifest unknown`,
			// "second" has no finding: it reads as not verified.
			Findings:  []gate.Finding{{Image: ciAPIRef, Policy: "first-party", Status: gate.ResolveFailed, Detail: "manifest unknown"}},
			Locations: []gate.Location{ciLoc("api.yaml", 5, "Deployment/default/api", "api", "spec.template.spec.containers[0]")},
		}},
		Gaps: []gate.Gap{
			{Reason: "SubstituteFromMissing", Object: "Kustomization/flux-system/apps", Message: "ConfigMap flux-system/vars not found", Blocking: true},
			{Reason: "UnresolvedImage", Origin: gate.Origin{File: "apps/job.yaml", Line: 12}, Object: "Job/default/x", Path: "spec.template.spec.containers[0]", Message: "image ${IMAGE} is a template", Blocking: true},
		},
	}
}

// ciHostileVerdict carries ciHostile text everywhere a registry, a signer or
// a revision's author could put it.
func ciHostileVerdict() gate.Verdict {
	file := "apps/we,b:x%20/dep loy.yaml"
	l := ciLoc(file, 3, "Deployment/apps/"+ciHostile, "c", "spec.template.spec.containers[0]")
	l.SetBy = &gate.Origin{File: "a:b/kustomization.yaml", Line: 2}
	return gate.Verdict{
		Revision: gate.Revision{Source: ciHostile},
		Reason:   gate.IdentityMismatchReason,
		Message:  ciHostileLong,
		Summary:  gate.Summary{Total: 2, Denied: 1, Warned: 1},
		Images: []gate.ImageVerdict{
			{
				Ref: "ghcr.io/acme/x:1", Outcome: gate.Denied, Status: gate.IdentityMismatch,
				Policies: []string{"p" + ciHostile}, Detail: ciHostileLong,
				Findings:  []gate.Finding{{Policy: "p" + ciHostile, Status: gate.IdentityMismatch, Detail: ciHostileLong}},
				Locations: []gate.Location{l},
			},
			{
				Ref: "ghcr.io/acme/y:1", Outcome: gate.Warned, Status: gate.Status("Weird" + ciHostile),
				Policies: []string{"q"}, Detail: ciHostileLong,
				Findings:  []gate.Finding{{Policy: "q", Status: gate.Status("Weird" + ciHostile), Detail: ciHostileLong, Mode: gate.Warn}},
				Locations: []gate.Location{ciLoc(file, 0, "Deployment/apps/y", "y", "spec.template.spec.containers[0]")},
			},
		},
		Gaps: []gate.Gap{{Reason: gate.GapReason("Odd" + ciHostile), Origin: gate.Origin{File: file, Line: 8}, Message: ciHostileLong, Blocking: true}},
	}
}

// ciWriteTwice writes a report twice, fails unless both writes give the
// same bytes, and returns them.
func ciWriteTwice(t *testing.T, write func(*bytes.Buffer) error) []byte {
	t.Helper()
	var a, b bytes.Buffer
	if err := write(&a); err != nil {
		t.Fatal(err)
	}
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes of one verdict differ")
	}
	return a.Bytes()
}

// golden compares got with testdata/golden/name, or rewrites it under
// -update.
func ciGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

func ciJUnitOf(t *testing.T, v gate.Verdict) []byte {
	t.Helper()
	return ciWriteTwice(t, func(b *bytes.Buffer) error { return writeJUnit(b, v) })
}

func TestJUnitGolden(t *testing.T) {
	fixtures := ciFixtures()
	for _, name := range ciFixtureNames {
		t.Run(name, func(t *testing.T) {
			ciGolden(t, name+".junit.xml", ciJUnitOf(t, fixtures[name]))
		})
	}
}

// parsed JUnit, as CI tools read it.
type xTestsuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []xTestsuite `xml:"testsuite"`
}

type xTestsuite struct {
	Name       string      `xml:"name,attr"`
	Tests      int         `xml:"tests,attr"`
	Failures   int         `xml:"failures,attr"`
	Errors     int         `xml:"errors,attr"`
	Skipped    int         `xml:"skipped,attr"`
	Properties []xProperty `xml:"properties>property"`
	Cases      []xTestcase `xml:"testcase"`
	SystemOut  string      `xml:"system-out"`
}

type xProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xTestcase struct {
	Name      string    `xml:"name,attr"`
	Classname string    `xml:"classname,attr"`
	Failure   *xProblem `xml:"failure"`
	Error     *xProblem `xml:"error"`
	SystemOut string    `xml:"system-out"`
}

type xProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

func ciParseJUnit(t *testing.T, out []byte) xTestsuites {
	t.Helper()
	var doc xTestsuites
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("the JUnit report does not parse: %v\n%s", err, out)
	}
	return doc
}

// testcase finds a testcase by suite, classname and name.
func ciTestcase(t *testing.T, doc xTestsuites, suite, classname, name string) xTestcase {
	t.Helper()
	for _, s := range doc.Suites {
		if s.Name != suite {
			continue
		}
		for _, c := range s.Cases {
			if c.Classname == classname && c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("no testcase %q/%q in suite %q", classname, name, suite)
	return xTestcase{}
}

func TestJUnitContent(t *testing.T) {
	doc := ciParseJUnit(t, ciJUnitOf(t, ciBlocked()))
	if len(doc.Suites) != 2 || doc.Suites[0].Name != "pregate" || doc.Suites[1].Name != "pregate coverage" {
		t.Fatalf("suites = %+v, want pregate and pregate coverage", doc.Suites)
	}
	images, coverage := doc.Suites[0], doc.Suites[1]
	// web: 2 policies; worker, miner, api, batch, db, nginx: 1 each.
	if images.Tests != 8 || images.Failures != 3 || images.Errors != 1 || images.Skipped != 0 || len(images.Cases) != 8 {
		t.Errorf("images suite counts tests=%d failures=%d errors=%d skipped=%d cases=%d, want 8 3 1 0 8",
			images.Tests, images.Failures, images.Errors, images.Skipped, len(images.Cases))
	}
	if coverage.Tests != 2 || coverage.Failures != 0 || coverage.Errors != 1 {
		t.Errorf("coverage suite counts tests=%d failures=%d errors=%d, want 2 0 1", coverage.Tests, coverage.Failures, coverage.Errors)
	}
	if doc.Tests != 10 || doc.Failures != 3 || doc.Errors != 2 {
		t.Errorf("testsuites counts tests=%d failures=%d errors=%d, want 10 3 2", doc.Tests, doc.Failures, doc.Errors)
	}
	if !strings.Contains(images.SystemOut, "BLOCKED (VerificationFailed)") {
		t.Errorf("suite system-out = %q, want the state and reason", images.SystemOut)
	}
	props := map[string]string{}
	for _, p := range images.Properties {
		props[p.Name] = p.Value
	}
	if props["state"] != "BLOCKED" || props["reason"] != gate.VerificationFailedReason || props["revision"] != "GitRepository/flux-system/flux-system@main@sha1:5ab9" {
		t.Errorf("properties = %v", props)
	}

	c := ciTestcase(t, doc, "pregate", ciWebRef, "first-party")
	if c.Failure == nil || c.Failure.Type != "NoSignatures" || c.Failure.Message != "no signatures found" {
		t.Fatalf("denied image: failure = %+v, want type NoSignatures", c.Failure)
	}
	for _, want := range []string{ciWebDig, "apps/web/deployment.yaml:21 Deployment/apps/web container web (spec.template.spec.containers[0]), set by apps/web/kustomization.yaml:7", "apps/web/job.yaml Job/apps/migrate"} {
		if !strings.Contains(c.Failure.Body, want) {
			t.Errorf("failure body lacks %q:\n%s", want, c.Failure.Body)
		}
	}
	if c := ciTestcase(t, doc, "pregate", ciWebRef, "slsa"); c.Failure == nil || c.Failure.Type != "AttestationMissing" {
		t.Errorf("second failing policy: %+v", c)
	}
	if c := ciTestcase(t, doc, "pregate", "ghcr.io/acme/worker:3.1", "first-party"); c.Error == nil || c.Failure != nil || c.Error.Type != "LookupFailed" {
		t.Errorf("lookup failure: %+v, want an <error> of type LookupFailed", c)
	}
	if c := ciTestcase(t, doc, "pregate", "quay.io/evil/miner:latest", "no matching policy"); c.Failure == nil || c.Failure.Type != "UnmatchedImage" {
		t.Errorf("unmatched denied image: %+v, want a failure", c)
	}
	for _, p := range []struct{ ref, name, out string }{
		{ciAPIRef, "partners", "warned (not enforced): "},
		{"ghcr.io/acme/batch:0.9", "audit-all", "audited (not enforced): "},
		{"ghcr.io/acme/db:16", "first-party", "verified: "},
		{ciNginxRef, "no matching policy", "allowed: no policy matches"},
	} {
		c := ciTestcase(t, doc, "pregate", p.ref, p.name)
		if c.Failure != nil || c.Error != nil || !strings.HasPrefix(c.SystemOut, p.out) {
			t.Errorf("%s %s: %+v, want a passing testcase whose system-out starts %q", p.ref, p.name, c, p.out)
		}
	}
	if c := ciTestcase(t, doc, "pregate coverage", "coverage gap HelmRelease", "apps/monitoring/release.yaml:1 HelmRelease/monitoring/prometheus"); c.Error == nil || c.Error.Type != "CoverageGap/HelmRelease" {
		t.Errorf("blocking gap: %+v, want an error", c)
	}
	if c := ciTestcase(t, doc, "pregate coverage", "coverage gap OtherSource", "clusters/prod/infra.yaml:3 Kustomization/flux-system/infra"); c.Error != nil || !strings.HasPrefix(c.SystemOut, "informational, not blocking") {
		t.Errorf("informational gap: %+v, want a pass", c)
	}
}

func TestJUnitUnmatchedWarnedPasses(t *testing.T) {
	doc := ciParseJUnit(t, ciJUnitOf(t, ciAllowed()))
	c := ciTestcase(t, doc, "pregate", ciNginxRef, "no matching policy")
	if c.Failure != nil || !strings.HasPrefix(c.SystemOut, "warned: ") {
		t.Errorf("unmatched warned image: %+v", c)
	}
	if doc.Failures != 0 || doc.Errors != 0 {
		t.Errorf("an allowed verdict has failures=%d errors=%d", doc.Failures, doc.Errors)
	}
	if c := ciTestcase(t, doc, "pregate coverage", "coverage gap RemoteBase", "base/kustomization.yaml:4"); !strings.HasPrefix(c.SystemOut, "allowed, not blocking") {
		t.Errorf("allowed gap: %+v", c)
	}
}

func TestJUnitMissingFindingIsAnError(t *testing.T) {
	doc := ciParseJUnit(t, ciJUnitOf(t, ciUndecided()))
	c := ciTestcase(t, doc, "pregate", ciAPIRef, "second")
	if c.Error == nil || c.Error.Type != "LookupFailed" || c.Error.Message != "not verified" {
		t.Errorf("policy without a finding: %+v, want an error", c)
	}
	if c := ciTestcase(t, doc, "pregate coverage", "coverage gap SubstituteFromMissing", "Kustomization/flux-system/apps"); c.Error == nil {
		t.Errorf("blocking gap without a file: %+v", c)
	}
}

func TestJUnitHostileText(t *testing.T) {
	out := ciJUnitOf(t, ciHostileVerdict())
	if bytes.Contains(out, []byte("]]>")) || bytes.Contains(out, []byte("<script")) {
		t.Error("ciHostile markup reached the XML unescaped")
	}
	for i, r := range string(out) {
		if r == utf8.RuneError || (r < 0x20 && r != '\n') || r == 0xFFFE || r == 0x7F {
			t.Fatalf("illegal or control character %U at byte %d", r, i)
		}
	}
	doc := ciParseJUnit(t, out)
	c := doc.Suites[0].Cases[0]
	if c.Failure == nil {
		t.Fatalf("ciHostile denied image: %+v", c)
	}
	if n := len(c.Failure.Message); n > junitMaxMessage {
		t.Errorf("message attribute is %d bytes, want at most %d", n, junitMaxMessage)
	}
	if !strings.Contains(c.Failure.Message, "evil ]]> <script>") {
		t.Errorf("message lost its text: %q", c.Failure.Message)
	}
	if len(c.Name) > junitMaxMessage || strings.ContainsAny(c.Name, "\n\r\x00") {
		t.Errorf("name attribute not bounded to one line: %q", c.Name)
	}
	if len(c.Failure.Body) > junitMaxBody {
		t.Errorf("failure body is %d bytes, want at most %d", len(c.Failure.Body), junitMaxBody)
	}
}

// ciXmllint finds xmllint: $PREGATE_XMLLINT, then $PATH. Without it the
// test fails: make test and make test-unit install it.
func ciXmllint(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PREGATE_XMLLINT"); p != "" {
		return p
	}
	p, err := exec.LookPath("xmllint")
	if err == nil {
		return p
	}
	t.Fatalf("xmllint not found (set PREGATE_XMLLINT or put it on PATH): it validates the JUnit report against testdata/junit-10.xsd. `make test` installs it (Debian package libxml2-utils: apt-get install -y libxml2-utils).")
	return ""
}

// ciValidateJUnit checks a JUnit report against the Jenkins xunit-plugin
// JUnit XSD with xmllint.
func ciValidateJUnit(t *testing.T, lint string, doc []byte) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), lint, "--noout", "--schema", filepath.Join("testdata", "junit-10.xsd"), path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("xmllint: %w: %s", err, out)
	}
	return nil
}

func TestJUnitSchema(t *testing.T) {
	lint := ciXmllint(t)
	fixtures := ciFixtures()
	for _, name := range ciFixtureNames {
		t.Run(name, func(t *testing.T) {
			if err := ciValidateJUnit(t, lint, ciJUnitOf(t, fixtures[name])); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("a broken report fails", func(t *testing.T) {
		broken := bytes.Replace(ciJUnitOf(t, ciBlocked()), []byte(`<testsuite name="pregate" `), []byte(`<testsuite `), 1)
		if err := ciValidateJUnit(t, lint, broken); err == nil {
			t.Error("xmllint accepted a testsuite without a name")
		}
	})
}
