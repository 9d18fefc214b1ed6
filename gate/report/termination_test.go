package report

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pregate/pregate/gate"
)

// TestTerminationMessage: a verdict fits a container's termination
// message: the decision, the revision and the reason first, then each
// image that does not pass with where it is, and each blocking gap; and
// however many there are, at most 4096 bytes of valid UTF-8, the cut
// marked.
func TestTerminationMessage(t *testing.T) {
	t.Parallel()
	loc := gate.Location{Origin: gate.Origin{File: "apps/prod/worker.yaml"}, Object: "Deployment/apps/worker"}
	v := gate.Verdict{
		Revision: gate.Revision{ID: "main@sha1:abc"}, Reason: gate.NoSignaturesReason, Message: "1 of 2 images denied",
		Images: []gate.ImageVerdict{
			{Ref: "ghcr.io/acme/worker:1.0", Outcome: gate.Denied, Detail: "no signature", Locations: []gate.Location{loc}},
			{Ref: "ghcr.io/acme/web:1.0", Outcome: gate.Passed},
		},
		Gaps: []gate.Gap{
			{Reason: "HelmRelease", Object: "HelmRelease/apps/db", Message: "chart not found", Blocking: true},
			{Reason: "OtherSource", Object: "Kustomization/flux-system/infra", Message: "another source"},
		},
	}
	got := TerminationMessage(v)
	want := "pregate: BLOCKED revision main@sha1:abc: NoSignatures: 1 of 2 images denied\n" +
		"- Denied ghcr.io/acme/worker:1.0 at Deployment/apps/worker (apps/prod/worker.yaml): no signature\n" +
		"- gap HelmRelease HelmRelease/apps/db: chart not found\n"
	if got != want {
		t.Errorf("TerminationMessage =\n%s\nwant\n%s", got, want)
	}
	v.Allowed, v.Reason, v.Message, v.Images, v.Gaps = true, gate.SucceededReason, "images verified", v.Images[1:], nil
	if got := TerminationMessage(v); got != "pregate: ALLOWED revision main@sha1:abc: Succeeded: images verified\n" {
		t.Errorf("allowed: %q", got)
	}

	v.Allowed, v.Images = false, nil
	for i := range 200 {
		v.Images = append(v.Images, gate.ImageVerdict{Ref: fmt.Sprintf("ghcr.io/acme/svc-%03d:1.0", i), Outcome: gate.Denied, Detail: strings.Repeat("é", 20)})
	}
	got = TerminationMessage(v)
	if len(got) > MaxTerminationMessage || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "pregate: BLOCKED") {
		t.Errorf("200 denied images: %d bytes, valid UTF-8 %v, ends %q; want at most %d, valid, the cut marked", len(got), utf8.ValidString(got), got[len(got)-10:], MaxTerminationMessage)
	}
	if got := TerminationError(fmt.Errorf("git %s: the credentials given were refused", "https://git.example/acme")); !strings.HasPrefix(got, "pregate: UNDECIDED: git https://git.example/acme: ") {
		t.Errorf("TerminationError = %q", got)
	}
}
