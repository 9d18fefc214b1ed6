package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/pregate/pregate/gate"
)

// The JUnit report: one <testsuites> holding two suites.
//
//   - "pregate": a testcase per image and matching policy (classname the
//     image reference, name the policy), and one per image no policy
//     matches (name "no matching policy").
//   - "pregate coverage": a testcase per gap.
//
// Every enforced policy that did not verify an image is a <failure> (type
// the finding's status), or an <error> when the status rests on a failed
// lookup (LookupFailed, ResolveFailed: pregate could not decide).
//
// A failing policy in warn or audit mode is a passing testcase whose
// <system-out> starts with "warned (not enforced):" or "audited (not
// enforced):": CI must not go red for what pregate itself lets through. An unmatched image fails when it is Denied and
// passes otherwise, again with a <system-out> saying why.
//
// A blocking gap is an <error>: pregate could not see those images. A gap
// that does not block passes, with a <system-out> saying why.
//
// Nothing varies between two writes of one verdict: no timestamps, no
// durations, no host names.

// Bounds on the JUnit report: a message attribute (it quotes registries
// and signers), a body's text and the locations a body lists.
const (
	junitMaxMessage   = 1024
	junitMaxBody      = 8192
	junitMaxLocations = 100
)

// The names the JUnit report uses.
const (
	junitSuiteName     = "pregate"
	junitCoverageName  = "pregate coverage"
	junitUnmatched     = "no matching policy"
	junitAdmissionName = "pregate admission"
	junitRunningName   = "pregate running pods"
	junitReadinessName = "pregate enforce readiness"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
	SystemOut  string           `xml:"system-out,omitempty"`
}

type junitProperties struct {
	Property []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// junitProblem is a <failure> or an <error>.
type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// writeJUnit writes the verdict as JUnit XML.
func writeJUnit(w io.Writer, v gate.Verdict) error {
	doc := junitDocument(v)
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	if _, err := w.Write(append(out, '\n')); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	return nil
}

// junitDocument builds the report's two suites and totals them.
func junitDocument(v gate.Verdict) junitSuites {
	images := junitSuite{
		Name:       junitSuiteName,
		Properties: junitVerdictProperties(v),
		SystemOut:  junitBody(fmt.Sprintf("%s (%s): %s", State(v), v.Reason, v.Message)),
	}
	for _, iv := range v.Images {
		images.Cases = append(images.Cases, junitImageCases(iv)...)
	}
	coverage := junitSuite{Name: junitCoverageName}
	for _, g := range v.Gaps {
		coverage.Cases = append(coverage.Cases, junitGapCase(g))
	}
	doc := junitSuites{Name: junitSuiteName}
	suites := []junitSuite{images, coverage}
	if len(v.Admission) > 0 {
		suites = append(suites, junitAdmissionSuite(v))
	}
	if v.RunningSummary != nil {
		suites = append(suites, junitRunningSuite(v))
	}
	if len(v.Readiness) > 0 {
		suites = append(suites, junitReadinessSuite(v))
	}
	for _, s := range suites {
		s.count()
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Suites = append(doc.Suites, s)
	}
	return doc
}

// count sets the suite's counts from its testcases.
func (s *junitSuite) count() {
	s.Tests = len(s.Cases)
	for _, c := range s.Cases {
		switch {
		case c.Failure != nil:
			s.Failures++
		case c.Error != nil:
			s.Errors++
		}
	}
}

// junitVerdictProperties records the verdict itself on the images suite.
func junitVerdictProperties(v gate.Verdict) *junitProperties {
	return &junitProperties{Property: []junitProperty{
		{"revision", junitAttr(v.Revision.String())},
		{"state", State(v)},
		{"allowed", strconv.FormatBool(v.Allowed)},
		{"undecided", strconv.FormatBool(v.Undecided)},
		{"retry", strconv.FormatBool(v.Retry)},
		{"reason", junitAttr(v.Reason)},
	}}
}

// junitImageCases gives an image's testcases: one per matching policy, or
// one "no matching policy" case.
func junitImageCases(iv gate.ImageVerdict) []junitCase {
	if len(iv.Policies) == 0 {
		return []junitCase{junitUnmatchedCase(iv)}
	}
	cases := make([]junitCase, 0, len(iv.Policies))
	for _, p := range iv.Policies {
		cases = append(cases, junitPolicyCase(iv, policyFinding(iv, p)))
	}
	return cases
}

// policyFinding is the image's finding for a policy. A missing finding is
// never a pass: it reads as a lookup that did not happen, as Evaluate
// judges it.
func policyFinding(iv gate.ImageVerdict, policy string) gate.Finding {
	for _, f := range iv.Findings {
		if f.Policy == policy {
			return f
		}
	}
	return gate.Finding{Image: iv.Ref, Policy: policy, Status: gate.LookupFailed, Detail: "not verified"}
}

// junitPolicyCase is the testcase of one image and one policy.
func junitPolicyCase(iv gate.ImageVerdict, f gate.Finding) junitCase {
	c := junitCase{Classname: junitAttr(iv.Ref), Name: junitAttr(f.Policy)}
	detail := fmt.Sprintf("policy %q: %s: %s", f.Policy, f.Status, f.Detail)
	switch {
	case f.Status == gate.Verified:
		c.SystemOut = junitBody("verified: " + detail)
	case f.Mode == gate.Warn || f.Mode == gate.Audit:
		c.SystemOut = junitBody(notEnforced[f.Mode] + " (not enforced): " + detail + "\n" + junitWhere(iv))
	default:
		p := &junitProblem{Message: junitAttr(f.Detail), Type: junitAttr(string(f.Status)), Body: junitProblemBody(iv, f.Digest, detail)}
		if f.Status == gate.LookupFailed || f.Status == gate.ResolveFailed {
			c.Error = p
		} else {
			c.Failure = p
		}
	}
	return c
}

// notEnforced names what a failure in a mode that does not block is.
var notEnforced = map[gate.Mode]string{gate.Warn: "warned", gate.Audit: "audited"}

// junitUnmatchedCase is the testcase of an image no policy matches.
func junitUnmatchedCase(iv gate.ImageVerdict) junitCase {
	c := junitCase{Classname: junitAttr(iv.Ref), Name: junitUnmatched}
	if iv.Outcome == gate.Denied {
		c.Failure = &junitProblem{Message: junitAttr(iv.Detail), Type: gate.UnmatchedImageReason, Body: junitProblemBody(iv, iv.Digest, iv.Detail)}
		return c
	}
	c.SystemOut = junitBody(strings.ToLower(string(iv.Outcome)) + ": " + iv.Detail + "\n" + junitWhere(iv))
	return c
}

// junitProblemBody is a failure's text: what failed, the image, and where
// it appears.
func junitProblemBody(iv gate.ImageVerdict, digest, detail string) string {
	var b strings.Builder
	b.WriteString(detail + "\nimage: " + iv.Ref + "\n")
	if digest != "" {
		b.WriteString("digest: " + digest + "\n")
	}
	b.WriteString(junitWhere(iv))
	return junitBody(b.String())
}

// junitWhere lists an image's locations, one a line, at most
// junitMaxLocations of them.
func junitWhere(iv gate.ImageVerdict) string {
	if len(iv.Locations) == 0 {
		return "locations: none recorded\n"
	}
	var b strings.Builder
	b.WriteString("locations:\n")
	for i, l := range iv.Locations {
		if i == junitMaxLocations {
			fmt.Fprintf(&b, "  and %d more\n", len(iv.Locations)-i)
			break
		}
		b.WriteString("  " + locationLine(l) + "\n")
	}
	return b.String()
}

// locationLine says where an image appears in one line:
// "apps/web.yaml:12 Deployment/apps/web container web
// (spec.template.spec.containers[0]), set by apps/kustomization.yaml:7".
func locationLine(l gate.Location) string {
	where := originString(l.Origin)
	if where == "" {
		where = "(generated)"
	}
	s := where + " " + l.Object
	if l.Container != "" {
		s += " container " + l.Container
	}
	if l.Path != "" {
		s += " (" + l.Path + ")"
	}
	if l.SetBy != nil {
		if by := originString(*l.SetBy); by != "" {
			s += ", set by " + by
		}
	}
	return s
}

// originString is "file:line", "file" when the line is unknown, or ""
// when the file is.
func originString(o gate.Origin) string {
	switch {
	case o.File == "":
		return ""
	case o.Line > 0:
		return o.File + ":" + strconv.Itoa(o.Line)
	default:
		return o.File
	}
}

// junitGapCase is the coverage testcase of one gap: an error when it
// blocks.
func junitGapCase(g gate.Gap) junitCase {
	where := strings.TrimSpace(strings.Join([]string{originString(g.Origin), g.Object, g.Path}, " "))
	if where == "" {
		where = "revision"
	}
	c := junitCase{Classname: junitAttr("coverage gap " + string(g.Reason)), Name: junitAttr(where)}
	text := fmt.Sprintf("%s %s: %s", g.Reason, where, g.Message)
	if len(g.Chain) > 0 {
		text += "\napplied by: " + strings.Join(g.Chain, " > ")
	}
	switch {
	case g.Blocking:
		c.Error = &junitProblem{Message: junitAttr(g.Message), Type: junitAttr(gate.CoverageGapReason + "/" + string(g.Reason)), Body: junitBody(text)}
	case g.Informational:
		c.SystemOut = junitBody("informational, not blocking: " + text)
	default:
		c.SystemOut = junitBody("allowed, not blocking: " + text)
	}
	return c
}

// junitAttr makes text an attribute value: one line, at most
// junitMaxMessage bytes, only characters XML 1.0 allows.
func junitAttr(s string) string {
	return xmlChars(gate.Clip(s, junitMaxMessage))
}

// junitBody makes text element content: lines kept, other control
// characters and characters XML 1.0 does not allow dropped, at most
// junitMaxBody bytes. encoding/xml escapes the rest ("]]>" included).
func junitBody(s string) string {
	s = strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, xmlChars(s))
	return cutMarked(s, junitMaxBody, "\n… (truncated)")
}

// xmlChars drops what XML 1.0's Char production excludes: invalid UTF-8,
// the C0 controls but tab, newline and carriage return, surrogates, U+FFFE
// and U+FFFF.
func xmlChars(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}
