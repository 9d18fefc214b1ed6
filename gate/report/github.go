package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pregate/pregate/gate"
)

// The GitHub reports: workflow-command annotations for the log and the
// checks tab, and the Markdown step summary.

// Bounds on the GitHub reports.
const (
	// ghMaxAnnotations is how many annotations of one kind are written.
	// GitHub shows 10 errors and 10 warnings a step; the rest still reach
	// the log, up to this bound.
	ghMaxAnnotations = 50
	// ghMaxText bounds quoted text: a detail, a message.
	ghMaxText = 1024
	// ghSummaryLimit is GitHub's limit on a step summary, 1 MiB.
	ghSummaryLimit = 1 << 20
	// ghSummaryReserve is kept free of table rows for what follows the
	// last row written: closing markup and the truncation note.
	ghSummaryReserve = 16 << 10
)

// The annotation kinds.
const (
	ghError   = "error"
	ghWarning = "warning"
	ghNotice  = "notice"
)

// ghAnnotation is one workflow command: ::kind file=…,line=…,title=…::message.
type ghAnnotation struct {
	kind    string
	file    string
	line    int
	title   string
	message string
}

// writeGitHubAnnotations writes an annotation per location of each image
// that did not pass (error when Denied, warning when Warned, notice when
// Audited) and an error per blocking gap, at most ghMaxAnnotations of
// each kind, then a notice counting those left out.
func writeGitHubAnnotations(w io.Writer, v gate.Verdict) error {
	written := map[string]int{}
	left := map[string]int{}
	var b strings.Builder
	for _, a := range ghAnnotations(v) {
		if written[a.kind] == ghMaxAnnotations {
			left[a.kind]++
			continue
		}
		written[a.kind]++
		b.WriteString(a.command())
	}
	if more := ghLeftOut(left); more != "" {
		b.WriteString(ghAnnotation{kind: ghNotice, title: "pregate", message: more}.command())
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing GitHub annotations: %w", err)
	}
	return nil
}

// ghLeftOut says how many annotations of each kind were left out, or ""
// when none were.
func ghLeftOut(left map[string]int) string {
	var parts []string
	for _, k := range []string{ghError, ghWarning, ghNotice} {
		if n := left[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d more %s", n, ghPlural(n, k)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + " not written as annotations: the step summary and the JSON report list them all."
}

func ghPlural(n int, kind string) string {
	if n == 1 {
		return kind
	}
	return kind + "s"
}

// ghAnnotations lists the verdict's annotations in its order: images,
// then gaps.
func ghAnnotations(v gate.Verdict) []ghAnnotation {
	var out []ghAnnotation
	for _, iv := range v.Images {
		kind, ok := ghImageKind(iv.Outcome)
		if !ok {
			continue
		}
		title := fmt.Sprintf("pregate: %s %s", iv.Ref, result(iv))
		if len(iv.Locations) == 0 {
			out = append(out, ghAnnotation{kind: kind, title: title, message: ghImageMessage(iv, nil)})
			continue
		}
		for _, l := range iv.Locations {
			at := l.Origin
			if l.SetBy != nil && l.SetBy.File != "" {
				at = *l.SetBy
			}
			out = append(out, ghAnnotation{kind: kind, file: at.File, line: at.Line, title: title, message: ghImageMessage(iv, &l)})
		}
	}
	for _, g := range v.Gaps {
		if !g.Blocking {
			continue
		}
		out = append(out, ghAnnotation{
			kind:    ghError,
			file:    g.File,
			line:    g.Line,
			title:   "pregate: coverage gap " + string(g.Reason),
			message: ghGapText(g) + ": pregate cannot list the images there, so the revision is not allowed",
		})
	}
	out = append(out, ghAdmissionAnnotations(v)...)
	return append(out, ghRunningAnnotations(v)...)
}

// ghImageKind is the annotation kind of an image's outcome; false when it
// passed.
func ghImageKind(o gate.Outcome) (string, bool) {
	switch o {
	case gate.Passed, gate.Allowed:
		return "", false
	case gate.Warned:
		return ghWarning, true
	case gate.Audited:
		return ghNotice, true
	default:
		return ghError, true
	}
}

// ghImageMessage says what became of an image, and where, when l is set.
func ghImageMessage(iv gate.ImageVerdict, l *gate.Location) string {
	s := fmt.Sprintf("%s is %s: %s", iv.Ref, strings.ToLower(string(iv.Outcome)), gate.Clip(iv.Detail, ghMaxText))
	if iv.Digest != "" {
		s += " (digest " + iv.Digest + ")"
	}
	if l != nil {
		s += "; used in " + locationLine(*l)
	}
	return s
}

// ghGapText names a gap and says what it is.
func ghGapText(g gate.Gap) string {
	where := strings.TrimSpace(strings.Join([]string{originString(g.Origin), g.Object, g.Path}, " "))
	if where == "" {
		return fmt.Sprintf("coverage gap %s: %s", g.Reason, gate.Clip(g.Message, ghMaxText))
	}
	return fmt.Sprintf("coverage gap %s in %s: %s", g.Reason, where, gate.Clip(g.Message, ghMaxText))
}

// command is the annotation as one workflow command line; file and line
// are left out when not known.
func (a ghAnnotation) command() string {
	var props []string
	if a.file != "" {
		props = append(props, "file="+ghProperty(a.file))
		if a.line > 0 {
			props = append(props, "line="+strconv.Itoa(a.line))
		}
	}
	if a.title != "" {
		props = append(props, "title="+ghProperty(gate.Clip(a.title, ghMaxText)))
	}
	cmd := "::" + a.kind
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	return cmd + "::" + ghData(gate.Clip(a.message, 4*ghMaxText)) + "\n"
}

// ghData escapes a workflow command's message as the runner unescapes it.
var ghData = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace

// ghProperty escapes a workflow command's property value: as data, and
// ':' and ',' too, which end a property.
var ghProperty = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace

// ghStateIcon marks a verdict's state in the summary's heading.
func ghStateIcon(v gate.Verdict) string {
	switch {
	case v.Allowed:
		return "✅"
	case v.Undecided:
		return "⚠️"
	default:
		return "❌"
	}
}

// ghSummary is a step summary being written within ghSummaryLimit. Once a
// row does not fit, every later row is counted, not written, so what is
// left out is the tail of the report.
type ghSummary struct {
	b       strings.Builder
	omitted map[string]int
	full    bool
}

// text writes markup; it is small and always written.
func (s *ghSummary) text(t string) { s.b.WriteString(t) }

// row writes a table row of what, or counts it when the summary is full.
func (s *ghSummary) row(what, line string) {
	if !s.full && s.b.Len()+len(line) > ghSummaryLimit-ghSummaryReserve {
		s.full = true
	}
	if s.full {
		s.omitted[what]++
		return
	}
	s.b.WriteString(line)
}

// writeGitHubSummary writes the verdict as step-summary Markdown: the
// state and message, counts, the images that did not pass, those that did
// (collapsed), then the gaps. Text from outside (details, messages, and
// every name from the revision) is escaped so it cannot add markup, and
// the whole stays under GitHub's 1 MiB limit.
func writeGitHubSummary(w io.Writer, v gate.Verdict) error {
	s := &ghSummary{omitted: map[string]int{}}
	ghHeading(s, v)
	ghCounts(s, v)
	var failing, passing []gate.ImageVerdict
	for _, iv := range v.Images {
		if _, bad := ghImageKind(iv.Outcome); bad {
			failing = append(failing, iv)
		} else {
			passing = append(passing, iv)
		}
	}
	if len(failing) > 0 {
		s.text(fmt.Sprintf("\n### Images that did not pass (%d)\n\n", len(failing)))
		ghImageTable(s, failing, true)
	}
	if len(passing) > 0 {
		s.text(fmt.Sprintf("\n<details>\n<summary>%d %s passed</summary>\n\n", len(passing), ghNoun(len(passing), "image")))
		ghImageTable(s, passing, false)
		s.text("\n</details>\n")
	}
	ghAdmissionTable(s, v)
	ghRunningTables(s, v)
	if len(v.Gaps) > 0 {
		s.text(fmt.Sprintf("\n### Coverage gaps (%d)\n\n", len(v.Gaps)))
		ghGapTable(s, v.Gaps)
	}
	if s.full {
		s.text(fmt.Sprintf("\n> [!NOTE]\n> This summary was cut to stay within GitHub's 1 MiB step summary limit: %s not shown. The JSON report lists everything.\n", ghOmitted(s.omitted)))
	}
	if _, err := io.WriteString(w, s.b.String()); err != nil {
		return fmt.Errorf("writing the GitHub step summary: %w", err)
	}
	return nil
}

// ghHeading writes the state, the reason, the revision and the message.
func ghHeading(s *ghSummary, v gate.Verdict) {
	s.text(fmt.Sprintf("## %s pregate: %s (%s)\n\n", ghStateIcon(v), State(v), ghEscape(v.Reason, ghMaxText)))
	if rev := v.Revision.String(); rev != "" {
		s.text("**Revision:** " + ghCode(rev) + "\n\n")
	}
	s.text("**Message:** " + ghEscape(v.Message, 8*ghMaxText) + "\n")
	if v.Retry {
		s.text("\nSome registry lookups failed: a retry may decide.\n")
	}
}

// ghCounts writes the table of counts.
func ghCounts(s *ghSummary, v gate.Verdict) {
	audited, blocking := 0, 0
	for _, iv := range v.Images {
		if iv.Outcome == gate.Audited {
			audited++
		}
	}
	for _, g := range v.Gaps {
		if g.Blocking {
			blocking++
		}
	}
	s.text("\n| Images | Verified | Warned | Audited | Denied | Unmatched | Gaps | Blocking gaps |\n")
	s.text("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	s.text(fmt.Sprintf("| %d | %d | %d | %d | %d | %d | %d | %d |\n",
		v.Summary.Total, v.Summary.Verified, v.Summary.Warned, audited, v.Summary.Denied, v.Summary.Unmatched, len(v.Gaps), blocking))
}

// ghImageTable writes a table of images; failing says whether the policy
// column names the failing policies or all of them.
func ghImageTable(s *ghSummary, ivs []gate.ImageVerdict, failing bool) {
	s.text("| Image | Digest | Result | Policy | Where | Detail |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, iv := range ivs {
		policies := iv.Policies
		if failing {
			policies = ghFailingPolicies(iv)
		}
		s.row("image", fmt.Sprintf("| %s | %s | %s | %s | %s | %s |\n",
			ghCode(iv.Ref), ghDigest(iv.Digest), ghEscape(result(iv), ghMaxText), ghList(policies),
			ghWhere(iv.Locations), ghEscape(iv.Detail, ghMaxText)))
	}
}

// ghFailingPolicies names the policies that did not verify an image.
func ghFailingPolicies(iv gate.ImageVerdict) []string {
	var out []string
	for _, p := range iv.Policies {
		if policyFinding(iv, p).Status != gate.Verified {
			out = append(out, p)
		}
	}
	return out
}

// ghGapTable writes the table of gaps.
func ghGapTable(s *ghSummary, gaps []gate.Gap) {
	s.text("| Reason | Blocks | Where | Object | Message |\n| --- | --- | --- | --- | --- |\n")
	for _, g := range gaps {
		blocks := "no"
		switch {
		case g.Blocking:
			blocks = "**yes**"
		case g.Informational:
			blocks = "no (informational)"
		}
		s.row("gap", fmt.Sprintf("| %s | %s | %s | %s | %s |\n",
			ghEscape(string(g.Reason), ghMaxText), blocks, ghDash(ghCode(originString(g.Origin))),
			ghDash(ghCode(strings.TrimSpace(g.Object+" "+g.Path))), ghEscape(g.Message, ghMaxText)))
	}
}

// ghWhere is the first location as `file:line` (and where the reference
// was set), with a count of the others.
func ghWhere(ls []gate.Location) string {
	if len(ls) == 0 {
		return "–"
	}
	l := ls[0]
	where := originString(l.Origin)
	if where == "" {
		where = l.Object
	}
	s := ghCode(where)
	if l.SetBy != nil && l.SetBy.File != "" {
		s += " set by " + ghCode(originString(*l.SetBy))
	}
	if n := len(ls) - 1; n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}

// ghDigest is a digest shortened to 12 hex digits.
func ghDigest(d string) string {
	if d == "" {
		return "–"
	}
	if short := shortDigest(d); short != d {
		d = short + "…"
	}
	return ghCode(d)
}

// ghList is names as a comma-separated cell.
func ghList(names []string) string {
	if len(names) == 0 {
		return "–"
	}
	return ghEscape(strings.Join(names, ", "), ghMaxText)
}

// ghCode is text in a code span, escaped; "" stays "".
func ghCode(s string) string {
	if s == "" {
		return ""
	}
	return "<code>" + ghEscape(s, ghMaxText) + "</code>"
}

func ghDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// ghOmitted says how many rows of each kind were left out.
func ghOmitted(omitted map[string]int) string {
	var parts []string
	for _, k := range []string{"image", "gap"} {
		if n := omitted[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s %s", n, k, ghNoun(n, "row")))
		}
	}
	return strings.Join(parts, " and ")
}

func ghNoun(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// ghMarkdownSpecial are the characters that can start markup inline in
// GitHub's Markdown: code, emphasis, strikethrough, links and images,
// table cells, math, autolinks (":", ".", "@"), emoji shortcodes and
// mentions.
const ghMarkdownSpecial = "!#$()*.:@[\\]_`{|}~"

// ghEscape makes text safe inline Markdown for a table cell or a
// paragraph (never the start of a line): one line of at most n bytes,
// HTML's special characters as entities, and ghMarkdownSpecial
// backslash-escaped, so that no tag, link, image, emphasis, autolink,
// mention or cell boundary can come from the text.
func ghEscape(s string, n int) string {
	var b strings.Builder
	for _, r := range gate.Clip(s, n) {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\'':
			b.WriteString("&#39;")
		case r < 0x80 && strings.ContainsRune(ghMarkdownSpecial, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
