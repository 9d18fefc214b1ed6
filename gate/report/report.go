// Package report owns every form pregate shows a result in: the text
// tables and JSON documents of the CLI, the JUnit, SARIF and GitHub
// reports CI systems read, and the Gate status the controller writes.
// Commands only choose a format; what each format holds, and its schema,
// are decided here, from what the pipeline returned.
//
// Every report is deterministic: the same result gives the same bytes.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pregate/pregate/gate/pipeline"
)

// Format is a report format.
type Format string

// The formats. Text and JSON exist for every command; the CI formats for
// check only.
const (
	Text   Format = "text"
	JSON   Format = "json"
	JUnit  Format = "junit"
	SARIF  Format = "sarif"
	GitHub Format = "github"
)

// CheckFormats are the formats of a check report; the other commands
// take Text and JSON.
var CheckFormats = []Format{Text, JSON, JUnit, SARIF, GitHub}

// ParseFormat checks a format name against the ones allowed.
func ParseFormat(s string, allowed []Format) (Format, error) {
	for _, f := range allowed {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("must be %s", Names(allowed))
}

// Names lists formats for a message: "text, json or junit".
func Names(fs []Format) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// APIVersion versions the JSON reports; within it fields are only ever
// added (docs/output.md).
const APIVersion = "pregate.dev/v1alpha1"

// Check writes the report of a check. tool is pregate's version, which
// the SARIF report names.
func Check(w io.Writer, f Format, res *pipeline.Result, tool string) error {
	switch f {
	case Text:
		return verdictText(w, res.Verdict)
	case JSON:
		return writeJSON(w, verdictDocument(res))
	case JUnit:
		return writeJUnit(w, res.Verdict)
	case SARIF:
		return writeSARIF(w, res.Verdict, tool)
	case GitHub:
		return writeGitHubAnnotations(w, res.Verdict)
	}
	return unsupported(f, "check")
}

// GitHubSummary writes the Markdown step summary of a check, for
// $GITHUB_STEP_SUMMARY.
func GitHubSummary(w io.Writer, res *pipeline.Result) error {
	return writeGitHubSummary(w, res.Verdict)
}

// Images writes the images a rendering found (one rendered path).
func Images(w io.Writer, f Format, res *pipeline.Result) error {
	switch f {
	case Text:
		return imagesText(w, res.Renders[0])
	case JSON:
		return writeJSON(w, imagesDocument(res.Renders[0]))
	}
	return unsupported(f, "images")
}

// Explain writes what explaining one image found.
func Explain(w io.Writer, f Format, res *pipeline.Result) error {
	switch f {
	case Text:
		return explanationText(w, res)
	case JSON:
		return writeJSON(w, explanationDocument(res))
	}
	return unsupported(f, "explain")
}

func unsupported(f Format, what string) error {
	return fmt.Errorf("%s has no %s report", what, f)
}

// writeJSON prints v as indented JSON, the form of every JSON report.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Version writes pregate's version.
func Version(w io.Writer, f Format, version, commit, goVersion string) error {
	switch f {
	case Text:
		_, err := fmt.Fprintf(w, "version: %s\ncommit:  %s\ngo:      %s\n", version, commit, goVersion)
		return err
	case JSON:
		return writeJSON(w, struct {
			Version string `json:"version"`
			Commit  string `json:"commit"`
			Go      string `json:"go"`
		}{version, commit, goVersion})
	}
	return unsupported(f, "version")
}
