package report

import (
	"cmp"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pregate/pregate/gate"
)

// MaxTerminationMessage is the most a container's termination message
// holds: the kubelet keeps 4096 bytes of it.
const MaxTerminationMessage = 4096

// lineMax bounds each line of a termination message: text a registry or
// a signer wrote is one line, and one line does not fill the message.
const lineMax = 1024

// TerminationMessage is a verdict as a container's termination message
// (what Argo CD shows on a failed PreSync hook, and `kubectl describe pod`
// under the container's state): the decision, the revision, the reason
// and the verdict's message, then each image that does not pass and each
// blocking gap on a line, as much as MaxTerminationMessage holds.
func TerminationMessage(v gate.Verdict) string {
	var b strings.Builder
	decision := "ALLOWED"
	switch {
	case v.Undecided:
		decision = "UNDECIDED"
	case !v.Allowed:
		decision = "BLOCKED"
	}
	fmt.Fprintf(&b, "pregate: %s\n", gate.Clip(fmt.Sprintf("%s revision %s: %s: %s", decision, cmp.Or(v.Revision.ID, "(unknown)"), v.Reason, v.Message), lineMax))
	for _, iv := range v.Images {
		if iv.Outcome == gate.Passed || iv.Outcome == gate.Allowed {
			continue
		}
		where := ""
		if len(iv.Locations) > 0 {
			where = " at " + iv.Locations[0].String()
		}
		fmt.Fprintf(&b, "- %s\n", gate.Clip(fmt.Sprintf("%s %s%s: %s", iv.Outcome, iv.Ref, where, iv.Detail), lineMax))
	}
	for _, g := range v.Gaps {
		if g.Blocking {
			fmt.Fprintf(&b, "- gap %s\n", gate.Clip(g.String(), lineMax))
		}
	}
	return cutMarked(b.String(), MaxTerminationMessage, "\n…")
}

// TerminationError is, as a termination message, the error that left a
// check without a verdict.
func TerminationError(err error) string {
	return "pregate: " + gate.Clip("UNDECIDED: "+err.Error(), MaxTerminationMessage-len("pregate: \n")) + "\n"
}

// cutMarked cuts s to at most n bytes, at a rune boundary, ending with
// mark when it cuts.
func cutMarked(s string, n int, mark string) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
