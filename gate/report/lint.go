package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/pregate/pregate/gate/pipeline"
)

// Lint writes what `pregate policy lint` read of policy files and its
// findings: text, JSON (the LintResult), or GitHub workflow commands (an
// annotation on the policy's file per error and warning, then the text).
func Lint(w io.Writer, f Format, res pipeline.LintResult) error {
	switch f {
	case JSON:
		return writeJSON(w, res)
	case Text:
		return lintText(w, res)
	case GitHub:
		var b strings.Builder
		for _, f := range res.Findings {
			kind := ghWarning
			switch f.Severity {
			case "error":
				kind = ghError
			case "info":
				continue
			}
			msg := f.Message
			if f.Fix != "" {
				msg += "; fix: " + f.Fix
			}
			title := "pregate policy lint: " + f.Check + " in " + f.Policy
			if f.Rule != "" {
				title += " rule " + f.Rule
			}
			b.WriteString(ghAnnotation{kind: kind, file: f.File, title: title, message: msg}.command())
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		return lintText(w, res)
	}
	return unsupported(f, "policy lint")
}

func lintText(w io.Writer, res pipeline.LintResult) error {
	var b strings.Builder
	for _, p := range res.Policies {
		fmt.Fprintf(&b, "%s: %s (%s)\n", p.File, p.ID, p.Engine)
		for _, r := range p.Rules {
			fmt.Fprintf(&b, "  rule %s: %s\n", r.Name, r.Action)
			fmt.Fprintf(&b, "    images:       %s\n", strings.Join(r.Images, ", "))
			if len(r.Skip) > 0 {
				fmt.Fprintf(&b, "    skip:         %s\n", strings.Join(r.Skip, ", "))
			}
			fmt.Fprintf(&b, "    reads:        %s\n", r.Reads)
			fmt.Fprintf(&b, "    signers:      %s\n", strings.Join(r.Signers, "; "))
			if len(r.Attestations) > 0 {
				fmt.Fprintf(&b, "    attestations: %s\n", strings.Join(r.Attestations, ", "))
			}
		}
	}
	if len(res.Policies) > 0 {
		b.WriteString("\n")
	}
	errs, warnings := 0, 0
	for _, f := range res.Findings {
		where := f.Policy
		if f.Rule != "" {
			where += " rule " + f.Rule
		}
		fmt.Fprintf(&b, "%s [%s] %s: %s\n", f.Severity, f.Check, where, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", f.Fix)
		}
		switch f.Severity {
		case "error":
			errs++
		case "warning":
			warnings++
		}
	}
	fmt.Fprintf(&b, "%d policies, %d errors, %d warnings\n", len(res.Policies), errs, warnings)
	_, err := io.WriteString(w, b.String())
	return err
}
