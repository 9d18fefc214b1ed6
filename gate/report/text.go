package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/render"
)

// verdictText prints one row per image, failures first, then the gaps and
// the verdict.
func verdictText(w io.Writer, v gate.Verdict) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tRESULT\tPOLICY\tWHERE\tDETAIL")
	for _, iv := range v.Images {
		where := "-"
		if len(iv.Locations) > 0 {
			where = iv.Locations[0].String()
			if n := len(iv.Locations) - 1; n > 0 {
				where += fmt.Sprintf(" +%d", n)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", iv.Ref, dash(shortDigest(iv.Digest)), result(iv), dash(strings.Join(iv.Policies, ",")), where, iv.Detail)
	}
	if len(v.Gaps) > 0 {
		fmt.Fprintln(tw, "\nGAP\tBLOCKS\tOBJECT\tFILE\tMESSAGE")
		for _, g := range v.Gaps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Reason, yesNo(g.Blocking), gapObject(g.Object, g.Path), dash(g.File), g.Message)
		}
	}
	if len(v.Admission) > 0 {
		fmt.Fprintln(tw, "\nADMISSION\tIMAGE\tPOLICY\tRULE\tENGINE\tPREGATE\tMESSAGE")
		for _, a := range v.Admission {
			outcome := string(a.Outcome)
			if a.NeverPasses {
				outcome += " (can never pass)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", outcome, a.Image, a.Policy, a.Rule, a.Engine, dash(string(a.Pregate)), a.Message)
		}
	}
	if v.RunningSummary != nil {
		fmt.Fprintf(tw, "\nRunning pods: %s, %s checked; %d no longer admitted after this revision\n", plural(v.RunningSummary.Pods, "pod"),
			plural(v.RunningSummary.Images, "image"), v.RunningSummary.Denied)
		fmt.Fprintln(tw, "RUNNING\tBEFORE\tIMAGE\tPODS\tPOLICY\tRULE\tMESSAGE")
		for _, r := range v.Running {
			outcome := string(r.Outcome)
			if r.Blocking {
				outcome += " (blocks)"
			} else if r.Introduced() {
				outcome += " (warns)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", outcome, dash(string(r.Before)), r.Image, runningPods(r), r.Policy, r.Rule, r.Message)
		}
	}
	if len(v.Readiness) > 0 {
		fmt.Fprintln(tw, "\nREADY FOR ENFORCE\tPOLICY\tNOW\tNAMESPACE\tIMAGES\tWOULD DENY\tUNDECIDED")
		for _, r := range v.Readiness {
			for _, n := range r.Namespaces {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\n", yesNo(n.Ready), r.Policy, r.Action, dash(n.Namespace), n.Images, wouldDeny(n), n.Undecided)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range v.Admission {
		if a.NeverPasses {
			fmt.Fprintf(w, "\n%s rule %s can never pass for %s:\n", a.Policy, a.Rule, a.Image)
			neverPassesText(w, a)
		}
	}
	_, err := fmt.Fprintf(w, "\n%s (%s): %s\n", State(v), v.Reason, v.Message)
	return err
}

// runningPods names a prediction's running Pods, and how many more.
func runningPods(r gate.Running) string {
	s := strings.Join(r.Pods, ",")
	if n := r.PodCount - len(r.Pods); n > 0 {
		s += fmt.Sprintf(" +%d", n)
	}
	return dash(s)
}

// wouldDeny says how many images a policy would deny in Enforce in a
// namespace, and which.
func wouldDeny(n gate.NamespaceReadiness) string {
	if n.DeniedCount == 0 {
		return "0"
	}
	s := fmt.Sprintf("%d: %s", n.DeniedCount, strings.Join(n.Denied, ","))
	if m := n.DeniedCount - len(n.Denied); m > 0 {
		s += fmt.Sprintf(" +%d", m)
	}
	return s
}

// neverPassesText says what exists, why the engine misses it and the fix.
func neverPassesText(w io.Writer, a gate.Admission) {
	fmt.Fprintf(w, "  exists: %s\n  why:    %s\n  fix:    %s\n", a.Exists, a.Why, a.Fix)
}

// State names a verdict: ALLOWED, BLOCKED or UNDECIDED.
func State(v gate.Verdict) string {
	switch {
	case v.Allowed:
		return "ALLOWED"
	case v.Undecided:
		return "UNDECIDED"
	default:
		return "BLOCKED"
	}
}

// result is an image's result: "Denied (NoSignatures)", "Verified".
func result(iv gate.ImageVerdict) string {
	if iv.Status == "" || iv.Outcome == gate.Passed {
		return string(iv.Outcome)
	}
	return fmt.Sprintf("%s (%s)", iv.Outcome, iv.Status)
}

// imagesText prints the image table, then the Kustomizations and gaps,
// kubectl style.
func imagesText(w io.Writer, r pipeline.Rendered) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tMUTABLE\tOBJECT\tCONTAINER\tFILE")
	locations, mutable := 0, 0
	for _, img := range r.Images {
		if img.Mutable {
			mutable++
		}
		for _, l := range img.Locations {
			locations++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Ref, yesNo(img.Mutable), l.Where(), container(l), dash(l.File))
		}
	}
	if len(r.Kustomizations) > 0 {
		fmt.Fprintln(tw, "\nKUSTOMIZATION\tPATH\tSTATUS\tAPPLIED BY\tFILE")
		for _, k := range r.Kustomizations {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Object, k.Path, k.Status, dash(last(k.Chain)), dash(k.File))
		}
	}
	if len(r.HelmReleases) > 0 {
		fmt.Fprintln(tw, "\nHELMRELEASE\tCHART\tSTATUS\tAPPLIED BY\tFILE")
		for _, h := range r.HelmReleases {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Object, dash(strings.TrimSuffix(h.Chart+" "+h.Version, " ")), h.Status, dash(last(h.Chain)), dash(h.File))
		}
	}
	if len(r.Gaps) > 0 {
		fmt.Fprintln(tw, "\nGAP\tOBJECT\tFILE\tMESSAGE")
		for _, g := range r.Gaps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Reason, gapObject(g.Object, g.Path), dash(g.File), g.Message)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rendered := 0
	for _, k := range r.Kustomizations {
		if k.Status == render.Rendered {
			rendered++
		}
	}
	summary := fmt.Sprintf("\n%s", plural(len(r.Images), "image"))
	if mutable > 0 {
		summary += fmt.Sprintf(" (%d by tag only)", mutable)
	}
	summary += fmt.Sprintf(" in %s", plural(locations, "place"))
	if len(r.Kustomizations) > 0 {
		summary += fmt.Sprintf(", %d of %s rendered", rendered, plural(len(r.Kustomizations), "Flux Kustomization"))
	}
	if len(r.HelmReleases) > 0 {
		n := 0
		for _, h := range r.HelmReleases {
			if h.Status == render.HelmReleaseRendered {
				n++
			}
		}
		summary += fmt.Sprintf(", %d of %s rendered", n, plural(len(r.HelmReleases), "HelmRelease"))
	}
	summary += fmt.Sprintf(", %s", plural(len(r.Gaps), "coverage gap"))
	if r.Revision != "" {
		summary += " at " + r.Revision
	}
	if r.RefFrom != "" {
		summary += fmt.Sprintf("\nsource %s, as %s applies it", r.Ref, r.RefFrom)
	}
	_, err := fmt.Fprintln(w, summary)
	return err
}

// explanationText prints each policy's lookups and considerations, then
// the image's verdict.
func explanationText(w io.Writer, res *pipeline.Result) error {
	modes := map[string]gate.Mode{}
	for _, p := range res.Policies.Gate {
		modes[p.Name] = p.Mode
	}
	iv := res.Verdict.Images[0]
	fmt.Fprintf(w, "Image:    %s\n", iv.Ref)
	if iv.Digest != "" {
		fmt.Fprintf(w, "Digest:   %s\n", iv.Digest)
	}
	if len(iv.Policies) == 0 {
		fmt.Fprintf(w, "Policies: none matches\n")
	} else {
		var ps []string
		for _, p := range iv.Policies {
			ps = append(ps, fmt.Sprintf("%s (%s)", p, modes[p]))
		}
		fmt.Fprintf(w, "Policies: %s\n", strings.Join(ps, ", "))
	}
	for _, r := range res.Results {
		fmt.Fprintf(w, "\nPolicy %q: %s\n  %s\n", r.Policy, r.Status, r.Detail)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\n  LOOKUP\tSTATUS\tFOUND\tTIME\tURL\tERROR")
		for _, l := range r.Lookups {
			status := "-"
			if l.Status != 0 {
				status = fmt.Sprint(l.Status)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", l.Step, status, l.Found, l.Duration.Round(time.Millisecond), dash(l.URL), dash(l.Err))
		}
		if len(r.Considered) > 0 {
			fmt.Fprintln(tw, "\n  ARTIFACT\tFOUND IN\tFORMAT\tKIND\tACCEPTED\tSIGNER\tREASON")
			for _, c := range r.Considered {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortDigest(c.Artifact), c.Source, c.Format, c.Kind, yesNo(c.Accepted), dash(c.Signer), c.Reason)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, c := range r.Considered {
			if len(c.Conditions) == 0 {
				continue
			}
			fmt.Fprintf(w, "\n  Conditions of %s (%s):\n", c.Kind, shortDigest(c.Artifact))
			for _, v := range c.Conditions {
				mark := "holds"
				if !v.Holds {
					mark = "FAILS"
				}
				fmt.Fprintf(w, "    %s  %s = %s\n", mark, v.Expression, v.Value)
			}
		}
	}
	for _, a := range res.Verdict.Admission {
		fmt.Fprintf(w, "\nAdmission %s rule %s (%s): %s\n  %s\n", a.Policy, a.Rule, a.Engine, a.Outcome, a.Message)
		if a.NeverPasses {
			fmt.Fprintln(w, "  can never pass:")
			neverPassesText(w, a)
		}
	}
	state := State(res.Verdict)
	if state == "BLOCKED" {
		state = "DENIED"
	}
	_, err := fmt.Fprintf(w, "\n%s: %s\n", state, iv.Detail)
	return err
}

// shortDigest abbreviates sha256:<64 hex> to sha256:<12 hex>, as tables do.
func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

func container(l gate.Location) string {
	if l.Container == "" {
		return l.Path
	}
	return fmt.Sprintf("%s (%s)", l.Container, l.Path)
}

func last(chain []string) string {
	if len(chain) == 0 {
		return ""
	}
	return chain[len(chain)-1]
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// gapObject is the OBJECT cell of a gap table: the object and the path in
// it, either of which may be empty.
func gapObject(object, path string) string {
	return dash(strings.TrimSpace(object + " " + path))
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
