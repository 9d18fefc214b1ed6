package report

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/pregate/pregate/gate"
)

func ciAnnotationsOf(t *testing.T, v gate.Verdict) []byte {
	t.Helper()
	return ciWriteTwice(t, func(b *bytes.Buffer) error { return writeGitHubAnnotations(b, v) })
}

func ciSummaryOf(t *testing.T, v gate.Verdict) []byte {
	t.Helper()
	out := ciWriteTwice(t, func(b *bytes.Buffer) error { return writeGitHubSummary(b, v) })
	if len(out) > ghSummaryLimit {
		t.Fatalf("the step summary is %d bytes, over GitHub's limit of %d", len(out), ghSummaryLimit)
	}
	return out
}

// ciCommand is a workflow command as the Actions runner reads it.
type ciCommand struct {
	kind  string
	props map[string]string
	data  string
}

// The runner's unescaping, in its order: %25 last.
var (
	ciUnescapeData     = strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace
	ciUnescapeProperty = strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%").Replace
)

// ciParseCommands reads workflow commands as the runner does: one a line,
// "::kind key=value,…::data".
func ciParseCommands(t *testing.T, out []byte) []ciCommand {
	t.Helper()
	var cmds []ciCommand
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		rest, ok := strings.CutPrefix(line, "::")
		if !ok {
			t.Fatalf("not a workflow command: %q", line)
		}
		head, data, ok := strings.Cut(rest, "::")
		if !ok {
			t.Fatalf("no data separator: %q", line)
		}
		c := ciCommand{props: map[string]string{}, data: ciUnescapeData(data)}
		kind, props, _ := strings.Cut(head, " ")
		c.kind = kind
		if props != "" {
			for _, p := range strings.Split(props, ",") {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					t.Fatalf("bad property %q in %q", p, line)
				}
				c.props[k] = ciUnescapeProperty(v)
			}
		}
		cmds = append(cmds, c)
	}
	return cmds
}

func TestGitHubGolden(t *testing.T) {
	fixtures := ciFixtures()
	for _, name := range ciFixtureNames {
		t.Run(name, func(t *testing.T) {
			ciGolden(t, name+".annotations", ciAnnotationsOf(t, fixtures[name]))
			ciGolden(t, name+".summary.md", ciSummaryOf(t, fixtures[name]))
		})
	}
}

func TestGitHubAnnotations(t *testing.T) {
	cmds := ciParseCommands(t, ciAnnotationsOf(t, ciBlocked()))
	var got []string
	for _, c := range cmds {
		got = append(got, fmt.Sprintf("%s %s:%s", c.kind, c.props["file"], c.props["line"]))
	}
	want := []string{
		"error apps/web/kustomization.yaml:7", // set by: where the fix goes
		"error apps/web/job.yaml:",            // line unknown
		"error apps/worker/deployment.yaml:18",
		"error apps/web/deployment.yaml:40",
		"warning apps/api/deployment.yaml:12",
		"notice apps/batch/cronjob.yaml:",
		"error apps/monitoring/release.yaml:1", // the blocking gap
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("annotations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	web := cmds[0]
	if web.props["title"] != "pregate: "+ciWebRef+" Denied (NoSignatures)" {
		t.Errorf("title = %q", web.props["title"])
	}
	for _, want := range []string{ciWebRef + " is denied: policy \"first-party\": no signatures found", ciWebDig, "Deployment/apps/web container web"} {
		if !strings.Contains(web.data, want) {
			t.Errorf("message %q lacks %q", web.data, want)
		}
	}
	if _, ok := cmds[1].props["line"]; ok {
		t.Error("line written for a location without one")
	}
}

func TestGitHubAnnotationsWithoutFile(t *testing.T) {
	cmds := ciParseCommands(t, ciAnnotationsOf(t, ciUndecided()))
	if len(cmds) != 3 {
		t.Fatalf("%d annotations, want 3", len(cmds))
	}
	gap := cmds[1]
	if _, ok := gap.props["file"]; ok || gap.kind != "error" || !strings.Contains(gap.data, "SubstituteFromMissing") {
		t.Errorf("gap without a file: %+v", gap)
	}
}

func TestGitHubAnnotationsEscaping(t *testing.T) {
	out := ciAnnotationsOf(t, ciHostileVerdict())
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 commands: ciHostile text started a line of its own:\n%s", len(lines), out)
	}
	cmds := ciParseCommands(t, out)
	if c := cmds[0]; c.props["file"] != "a:b/kustomization.yaml" || c.props["line"] != "2" {
		t.Errorf("properties %v: ':' and ',' not escaped as the runner unescapes them", c.props)
	}
	if c := cmds[1]; c.props["file"] != "apps/we,b:x%20/dep loy.yaml" || c.kind != "warning" {
		t.Errorf("properties %v", c.props)
	}
	for _, c := range cmds {
		if len(c.props) == 0 || strings.ContainsAny(c.data, "\r\n\x00\x1b") {
			t.Errorf("command %+v: control characters in its message", c)
		}
		if !strings.Contains(c.data, "::error::owned %0A 100%") {
			t.Errorf("message %q lost its text: '::' and '%%' should pass through escaped", c.data)
		}
		if len(c.data) > 4*ghMaxText {
			t.Errorf("message is %d bytes", len(c.data))
		}
	}
}

func TestGitHubAnnotationsCap(t *testing.T) {
	v := ciManyImages(120, 0)
	for i := range 7 {
		v.Images[i].Outcome = gate.Warned
	}
	cmds := ciParseCommands(t, ciAnnotationsOf(t, v))
	count := map[string]int{}
	for _, c := range cmds {
		count[c.kind]++
	}
	if count["error"] != ghMaxAnnotations || count["warning"] != 7 || count["notice"] != 1 {
		t.Errorf("counts %v, want %d errors, 7 warnings and a notice", count, ghMaxAnnotations)
	}
	last := cmds[len(cmds)-1]
	if last.kind != "notice" || !strings.HasPrefix(last.data, "63 more errors not written as annotations") {
		t.Errorf("last annotation = %+v", last)
	}
}

func TestGitHubSummary(t *testing.T) {
	md := string(ciSummaryOf(t, ciBlocked()))
	for _, want := range []string{
		"## ❌ pregate: BLOCKED (VerificationFailed)\n",
		"**Revision:** <code>GitRepository/flux-system/flux-system\\@main\\@sha1\\:5ab9</code>",
		"| 7 | 1 | 1 | 1 | 3 | 2 | 2 | 1 |",
		"### Images that did not pass (5)",
		"<details>\n<summary>2 images passed</summary>",
		"### Coverage gaps (2)",
		// The digest shortened, the failing policies, where.
		"| <code>ghcr\\.io/acme/web\\:1\\.4\\.0</code> | <code>sha256\\:111111111111…</code> | Denied \\(NoSignatures\\) | first-party, slsa | " +
			"<code>apps/web/deployment\\.yaml\\:21</code> set by <code>apps/web/kustomization\\.yaml\\:7</code> and 1 more | policy &quot;first-party&quot;\\: no signatures found |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	// Passing images come after the failing ones, inside the details.
	if i, j := strings.Index(md, "<details>"), strings.Index(md, "nginx"); i < 0 || j < i {
		t.Error("passing images are not in the collapsed section")
	}
	if strings.Contains(md, "NOTE") {
		t.Error("a small summary says it was cut")
	}
}

// ciUnescapedPipe matches a '|' no backslash escapes.
var ciUnescapedPipe = regexp.MustCompile(`(^|[^\\])\|`)

func TestGitHubSummaryHostileText(t *testing.T) {
	md := string(ciSummaryOf(t, ciHostileVerdict()))
	for _, bad := range []string{"<script", "](", "![", "`code`", "*bold*", "\n# heading", "\r", "\x00", "\x1b"} {
		if strings.Contains(md, bad) {
			t.Errorf("ciHostile %q reached the summary unescaped", bad)
		}
	}
	if regexp.MustCompile(`(^|[^\\])@octocat`).MatchString(md) {
		t.Error("a mention reached the summary unescaped")
	}
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := len(ciUnescapedPipe.FindAllString(line, -1)) - 1
		if cells != 5 && cells != 6 && cells != 8 {
			t.Errorf("a row has %d cells: ciHostile text split it\n%s", cells, line)
		}
	}
	if !strings.Contains(md, "evil \\]\\]&gt; &lt;script&gt;") {
		t.Errorf("the ciHostile detail is not shown escaped:\n%s", md)
	}
}

func TestGitHubSummaryLimit(t *testing.T) {
	v := ciManyImages(3000, 1000)
	for i := range v.Images {
		v.Images[i].Detail = strings.Repeat("<|>", 400)
	}
	v.Gaps = []gate.Gap{{Reason: "HelmRelease", Origin: gate.Origin{File: "x.yaml"}, Message: "m", Blocking: true}}
	md := string(ciSummaryOf(t, v))
	if len(md) < ghSummaryLimit/2 {
		t.Errorf("the summary is %d bytes: it was cut far below the limit", len(md))
	}
	note := regexp.MustCompile(`This summary was cut to stay within GitHub's 1 MiB step summary limit: (\d+) image rows and 1 gap row not shown`)
	m := note.FindStringSubmatch(md)
	if m == nil {
		t.Fatalf("no truncation note:\n%s", md[len(md)-2000:])
	}
	shown := strings.Count(md, "| <code>ghcr")
	if fmt.Sprint(3000-shown) != m[1] {
		t.Errorf("%d rows shown and %s said left out, of 3000", shown, m[1])
	}
	if !strings.Contains(md, "### Coverage gaps (1)") {
		t.Error("the gaps section is gone")
	}
}
