package admission

import (
	"strings"
	"testing"
)

func TestParseProfile(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"kyverno@1.19":              "kyverno@1.19",
		"kyverno@v1.18.2":           "kyverno@1.18.2",
		"Kyverno@1.17":              "kyverno@1.17",
		"kyverno":                   "kyverno@1.19",
		"policy-controller":         "policy-controller@0.15",
		"policy-controller@v0.15.1": "policy-controller@0.15.1",
		"policy-controller@0.13":    "policy-controller@0.13",
	} {
		p, err := ParseProfile(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseProfile(%q) = %s, %v; want %s", in, p, err, want)
		}
	}
	for in, want := range map[string]string{
		"gatekeeper@3.20":          "want kyverno or policy-controller",
		"kyverno@1.16":             "older than the oldest known (1.17)",
		"policy-controller@0.12.1": "older than the oldest known (0.13)",
		"kyverno@1":                "want MAJOR.MINOR",
		"kyverno@1.x":              "want MAJOR.MINOR",
		"kyverno@1.19.0.1":         "want MAJOR.MINOR",
	} {
		if _, err := ParseProfile(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseProfile(%q) error = %v; want it to say %q", in, err, want)
		}
	}
}

// TestProfileQuirks: each release has the quirks its source shows, and
// only those (config/admission quirks table).
func TestProfileQuirks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		profile   string
		has, lack []string
	}{
		{"kyverno@1.17", []string{QuirkCosignLegacyOnly, QuirkBundleNoKeys, QuirkIVPOLKeyTlogCrash, QuirkOneIdentity, QuirkBundleArtifactType},
			[]string{QuirkIVPOLKeyBundle, QuirkPCBundleNoSignatures}},
		{"kyverno@1.18.2", []string{QuirkBundleNoKeys, QuirkIVPOLKeyTlogCrash}, []string{QuirkIVPOLKeyBundle}},
		{"kyverno@1.19", []string{QuirkCosignLegacyOnly, QuirkIVPOLKeyBundle, QuirkReferrersAPIFirst, QuirkBundleMaxReferrers},
			[]string{QuirkBundleNoKeys, QuirkIVPOLKeyTlogCrash}},
		{"kyverno@1.19.0", []string{QuirkIVPOLKeyBundle}, []string{QuirkBundleNoKeys}},
		{"policy-controller@0.15", []string{QuirkPCLegacyUnlessBundle, QuirkPCBundleNoSignatures, QuirkPCAttestationsOnly, QuirkOneIdentity, QuirkReferrersAPIFirst},
			[]string{QuirkCosignLegacyOnly, QuirkBundleArtifactType}},
	} {
		p, err := ParseProfile(tc.profile)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range tc.has {
			if !p.Has(id) {
				t.Errorf("%s lacks quirk %s", p, id)
			}
		}
		for _, id := range tc.lack {
			if p.Has(id) {
				t.Errorf("%s has quirk %s", p, id)
			}
		}
	}
}

// TestQuirksCiteSources: every quirk says what the engine does and where
// that is shown, and names a known engine and release.
func TestQuirksCiteSources(t *testing.T) {
	t.Parallel()
	for _, q := range quirks {
		if q.Does == "" || q.Source == "" || q.ID == "" {
			t.Errorf("quirk %+v: want an ID, what the engine does and the source", q)
		}
		if _, err := parseVersion(q.Since); err != nil {
			t.Errorf("quirk %s: Since %q: %v", q.ID, q.Since, err)
		}
		if _, ok := releases[q.Engine]; !ok {
			t.Errorf("quirk %s: engine %q", q.ID, q.Engine)
		}
	}
}

func TestParseProfiles(t *testing.T) {
	t.Parallel()
	ps, err := ParseProfiles([]string{"kyverno@1.18"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ps.For(Kyverno).String(); got != "kyverno@1.18" {
		t.Errorf("For(kyverno) = %s", got)
	}
	if got := ps.For(PolicyController).String(); got != "policy-controller@0.15" {
		t.Errorf("For(policy-controller) = %s, want the newest known", got)
	}
	if _, err := ParseProfiles([]string{"kyverno@1.18", "kyverno@1.19"}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("ParseProfiles(twice) error = %v", err)
	}
}
