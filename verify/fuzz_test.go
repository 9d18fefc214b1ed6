package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/pregate/pregate/verify/verifytest"
)

// Fuzz targets for what verify reads from a registry: signature bundles,
// legacy cosign layers and their annotations, image indexes, manifests and
// Link headers.
//
// The FuzzCheck seed corpus (testdata/fuzz/FuzzCheck) holds real artifacts
// about fuzzSubjectDigest: bundles and legacy layers signed with the key
// fuzzSeedKeyPEM (whose private half was thrown away) and by a throwaway
// in-memory Sigstore deployment (verifytest.Sigstore). TestFuzzCheckSeeds
// checks that they are what they claim to be.

const (
	// fuzzManifest is the image the seeds sign: fuzzSubjectDigest is its
	// SHA-256 (the message-signature seed signs the manifest itself).
	fuzzManifest      = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"fuzz":"pregate"}}`
	fuzzSubjectDigest = "sha256:8f42e16db62ce0cbf0d91c072dff9e138fef6390ae91fe029338725f50087bc2"
	// fuzzOtherDigest is another image, which no seed signs.
	fuzzOtherDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	fuzzRepo        = "registry.example/acme/app"
	fuzzIdentity    = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	fuzzIssuer      = "https://token.actions.githubusercontent.com"
	fuzzSLSA        = "https://slsa.dev/provenance/v1"
	// fuzzSeedKeyPEM signed the key-signed seeds.
	fuzzSeedKeyPEM = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsnQcOwyKLJXcixnSZIPzniC5yghe
0ZD4i9tCovD3yZFZ5cBx2NlfXJy8L8y3qnoc+Xp15AnYpfY8CCo0jzypjQ==
-----END PUBLIC KEY-----
`
)

// fuzzFormats maps FuzzCheck's format selector to a Format, and the place
// an artifact of that format is found.
var fuzzFormats = []struct {
	format Format
	source Step
	media  string
}{
	{BundleFormat, ReferrersStep, "application/vnd.dev.sigstore.bundle.v0.3+json"},
	{SimpleSigningFormat, SignatureTagStep, simpleSigningMediaType},
	{DSSEFormat, AttestationTagStep, dsseMediaType},
}

// fuzzArtifact builds the artifact FuzzCheck checks: format selects the
// Format, and the annotations that are not empty are set.
func fuzzArtifact(format byte, content []byte, sig, cert, chain, rekor, rfc3161 string) Artifact {
	f := fuzzFormats[int(format)%len(fuzzFormats)]
	sum := sha256.Sum256(content)
	layer := "sha256:" + hex.EncodeToString(sum[:])
	ann := map[string]string{}
	for k, v := range map[string]string{
		legacySignatureAnn: sig, legacyCertificateAnn: cert, legacyChainAnn: chain,
		legacyBundleAnn: rekor, legacyRFC3161Ann: rfc3161,
	} {
		if v != "" {
			ann[k] = v
		}
	}
	return Artifact{
		Source: f.source, Manifest: "sha256:" + strings.Repeat("1", 64), Layer: layer,
		Format: f.format, MediaType: f.media, Content: content, Annotations: ann,
	}
}

func fuzzDiscovery(digest string, a Artifact) Discovery {
	d := Discovery{
		Subject:   Subject{Ref: fuzzRepo + ":1.0", Repository: fuzzRepo, Digest: digest},
		Artifacts: []Artifact{a},
	}
	for _, step := range places {
		d.Lookups = append(d.Lookups, Lookup{Step: step, URL: "https://registry.example/v2/acme/app/" + string(step), Status: http.StatusOK, Found: 1})
	}
	return d
}

// fuzzPolicies returns the two policies FuzzCheck checks with, neither of
// which a fuzzed artifact can satisfy:
//
//   - forge trusts a fresh key and a fresh Sigstore deployment, whose
//     private keys sign nothing: checked against the subject the seeds
//     sign, every verification runs to the signature check and fails
//     there, unless a signature can be forged;
//   - replay trusts the key that signed the seeds, and is checked
//     against another subject: a signature for one image must never be
//     accepted for another.
func fuzzPolicies(tb testing.TB) (forge, replay *Policy) {
	tb.Helper()
	fresh := verifytest.NewKeySigner(tb)
	freshKey, err := NewKey(fresh.PublicKeyPEM())
	if err != nil {
		tb.Fatal(err)
	}
	seedKey, err := NewKey([]byte(fuzzSeedKeyPEM))
	if err != nil {
		tb.Fatal(err)
	}
	ids := &Keyless{Identities: []Identity{{Issuer: fuzzIssuer, Subject: fuzzIdentity}}}
	forge = &Policy{
		Name: "forge",
		Authorities: []Authority{
			{Name: "key-no-tlog", Key: freshKey, IgnoreTlog: true},
			{Name: "key-tlog", Key: freshKey},
			{Name: "keyless", Keyless: ids, IgnoreSCT: true},
			{Name: "keyless-tsa", Keyless: ids, IgnoreSCT: true, SignedTimestamps: true},
		},
		Attestations: []Attestation{{Name: "provenance", PredicateType: fuzzSLSA}},
		Trusted:      verifytest.NewSigstore(tb).Material(),
	}
	replay = &Policy{
		Name:        "replay",
		Authorities: []Authority{{Name: "seed-key", Key: seedKey, IgnoreTlog: true}},
	}
	for _, p := range []*Policy{forge, replay} {
		if err := p.Validate(); err != nil {
			tb.Fatal(err)
		}
	}
	return forge, replay
}

// FuzzCheck judges one fuzzed artifact (a bundle, a legacy simple-signing
// layer or a legacy DSSE layer, with fuzzed legacy annotations) against
// the policies of fuzzPolicies. Invariants: prepare (bundle and legacy
// parsing, the claims of the signed content) never panics; Check never
// panics, nor recovers from a panic ("internal error while verifying");
// its one consideration is never accepted and the status is
// InvalidSignature or NoSignatures, never Verified (nor IdentityMismatch,
// which needs a verified signature).
func FuzzCheck(f *testing.F) {
	forge, replay := fuzzPolicies(f)

	// Synthetic seeds; the signed ones are in testdata/fuzz/FuzzCheck.
	statement := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + strings.TrimPrefix(fuzzSubjectDigest, "sha256:") + `"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`
	payload := verifytest.SimpleSigningPayload(fuzzRepo, fuzzSubjectDigest)
	envelope, err := json.Marshal(map[string]any{"payloadType": inTotoPayloadType, "payload": []byte(statement), "signatures": []map[string]any{{"sig": []byte("not a signature")}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(byte(0), []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payload":"`+b64(statement)+`","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AAAA"}]}}`), "", "", "", "", "")
	f.Add(byte(0), []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"AAAA"}]}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"AAAA"}}`), "", "", "", "", "")
	f.Add(byte(0), []byte(`{}`), "", "", "", "", "")
	f.Add(byte(0), []byte{}, "", "", "", "", "")
	f.Add(byte(1), payload, "AAAA", "", "", "", "")
	f.Add(byte(1), payload, "AAAA", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		`{"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","integratedTime":1,"logIndex":-1,"logID":"00"}}`, `{"SignedRFC3161Timestamp":"AAAA"}`)
	f.Add(byte(1), []byte(`{"critical":{"type":"cosign container image signature","image":{"docker-manifest-digest":"`+fuzzOtherDigest+`"}}}`), "AAAA", "", "", "", "")
	f.Add(byte(2), envelope, "", "", "", `{"SignedEntryTimestamp":"AAAA","Payload":{"body":"eyJraW5kIjoiZHNzZSIsImFwaVZlcnNpb24iOiIwLjAuMSJ9","integratedTime":1,"logIndex":0,"logID":"ab"}}`, "")
	f.Add(byte(2), []byte(`{"payloadType":"text/plain","payload":"","signatures":[{}]}`), "", "", "", "", "")
	// Real public-good bundles from the sigstore-conformance vectors (see
	// testdata/sigstore-conformance/ORIGIN): about another artifact.
	for _, c := range []string{"happy-path-v0.3", "happy-path-intoto-in-dsse-v3", "managed-key-happy-path"} {
		b, err := os.ReadFile(filepath.Join("testdata", "sigstore-conformance", c, "bundle.sigstore.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(0), b, "", "", "", "", "")
	}

	subject, err := parseDigest(fuzzSubjectDigest)
	if err != nil {
		f.Fatal(err)
	}
	other, err := parseDigest(fuzzOtherDigest)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, format byte, content []byte, sig, cert, chain, rekor, rfc3161 string) {
		a := fuzzArtifact(format, content, sig, cert, chain, rekor, rfc3161)
		// Outside Check, whose recover would hide a panic's stack.
		for _, d := range []imageDigest{subject, other} {
			if p, err := prepare(a, d); err == nil && (p == nil || p.entity == nil || p.artifact == nil || p.kind == "") {
				t.Fatalf("prepare returned an incomplete artifact %+v", p)
			}
		}
		for _, c := range []struct {
			p      *Policy
			digest string
		}{{forge, fuzzSubjectDigest}, {replay, fuzzOtherDigest}} {
			res := c.p.Check(fuzzDiscovery(c.digest, a))
			if res.Status != InvalidSignature && res.Status != NoSignatures {
				t.Fatalf("policy %q, subject %s: status %s, want InvalidSignature or NoSignatures: %s\n%+v", c.p.Name, c.digest, res.Status, res.Detail, res.Considered)
			}
			if len(res.Considered) != 1 {
				t.Fatalf("policy %q: %d considerations for one artifact", c.p.Name, len(res.Considered))
			}
			cons := res.Considered[0]
			if cons.Accepted || cons.Reason == "" {
				t.Fatalf("policy %q, subject %s: consideration %+v", c.p.Name, c.digest, cons)
			}
			if strings.Contains(cons.Reason, "internal error while verifying") {
				t.Fatalf("policy %q, subject %s: Check recovered from a panic: %s", c.p.Name, c.digest, cons.Reason)
			}
			if !strings.HasPrefix(res.Detail, c.digest+": ") {
				t.Fatalf("policy %q: detail %q does not start with the digest", c.p.Name, res.Detail)
			}
		}
	})
}

func b64(s string) string {
	b, _ := json.Marshal([]byte(s))
	return strings.Trim(string(b), `"`)
}

// TestFuzzCheckSeeds checks the signed FuzzCheck seeds: each is a real
// artifact about fuzzSubjectDigest, which parses and names the subject
// (but for the message signature, which never signs an image), and gets
// past those checks to an authority of the forge policy, which rejects
// it. The key-signed ones verify with the seed key.
func TestFuzzCheckSeeds(t *testing.T) {
	t.Parallel()
	forge, _ := fuzzPolicies(t)
	seedKey, err := NewKey([]byte(fuzzSeedKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	seeded := &Policy{Name: "seeded", Authorities: []Authority{{Name: "seed-key", Key: seedKey, IgnoreTlog: true}}}
	subject, err := parseDigest(fuzzSubjectDigest)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzCheck", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("%d FuzzCheck seeds, want at least 3", len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		vals := readFuzzCorpusFile(t, file)
		if len(vals) != 7 || len(vals[0]) != 1 {
			t.Fatalf("%s: %d values, want a format byte and 6 more", name, len(vals))
		}
		a := fuzzArtifact(vals[0][0], []byte(vals[1]), vals[2], vals[3], vals[4], vals[5], vals[6])
		p, err := prepare(a, subject)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.HasSuffix(name, "-message-signature") {
			if b, ok := p.entity.(*bundle.Bundle); !ok || b.GetMessageSignature() == nil {
				t.Errorf("%s: not a message-signature bundle", name)
			}
			continue
		}
		if p.claim != nil {
			t.Errorf("%s: %v", name, p.claim)
			continue
		}
		res := forge.Check(fuzzDiscovery(fuzzSubjectDigest, a))
		if len(res.Considered) != 1 || !strings.Contains(res.Considered[0].Reason, `authority "`) {
			t.Errorf("%s: not judged by an authority of the forge policy: %s %+v", name, res.Status, res.Considered)
		}
		if strings.HasPrefix(name, "key-") {
			res := seeded.Check(fuzzDiscovery(fuzzSubjectDigest, a))
			want := Verified
			if p.kind != SignatureKind {
				want = NoSignatures // an attestation, verified but not a signature
			}
			if res.Status != want || !strings.Contains(res.Considered[0].Reason, "trusted by authority") {
				t.Errorf("%s: status %s with the seed key, want %s: %s %+v", name, res.Status, want, res.Detail, res.Considered)
			}
		}
	}
	if d := sha256.Sum256([]byte(fuzzManifest)); "sha256:"+hex.EncodeToString(d[:]) != fuzzSubjectDigest {
		t.Errorf("fuzzSubjectDigest is not the digest of fuzzManifest")
	}
}

// readFuzzCorpusFile reads a "go test fuzz v1" file of byte, []byte and
// string values, each returned as a string.
func readFuzzCorpusFile(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a fuzz corpus file", file)
	}
	var out []string
	for _, l := range lines[1:] {
		lo, hi := strings.IndexByte(l, '('), strings.LastIndexByte(l, ')')
		if lo < 0 || hi < lo {
			t.Fatalf("%s: malformed line %q", file, l)
		}
		v, err := strconv.Unquote(l[lo+1 : hi])
		if err != nil {
			t.Fatalf("%s: %q: %v", file, l, err)
		}
		out = append(out, v)
	}
	return out
}

// FuzzParseIndex reads registry JSON as Discover does: an image index (a
// referrers list or fallback tag) and a manifest. Invariants: no panic;
// an index that parses has schemaVersion 2; a manifest is always marked
// read, and has an error (always for invalid JSON) or its layers; layerFormat and the digest
// checks do not panic on any descriptor.
func FuzzParseIndex(f *testing.F) {
	const dg = "sha256:5504f2a95018e3d8a52d80d9e1a128c6ea337581808ff9fe96f5628ce2336350"
	for _, s := range []string{
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + dg + `","size":512,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{"dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}]}`,
		`{"schemaVersion":2,"manifests":[]}`,
		`{"schemaVersion":1,"manifests":null}`,
		`{"schemaVersion":2,"manifests":[{"digest":"sha256:abc","size":-1},{"digest":"md5:00","size":1e30}]}`,
		`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"` + dg + `","size":241,"annotations":{"dev.cosignproject.cosign/signature":"MEUCIQ=="}},{"mediaType":"application/vnd.dsse.envelope.v1+json","digest":"` + dg + `","size":10}]}`,
		`{"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","digest":"sha512:` + strings.Repeat("ab", 64) + `","size":3}]}`,
		`{"layers":{}}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if idx, err := parseIndex(data); err == nil {
			if idx == nil || idx.SchemaVersion != 2 {
				t.Fatalf("parseIndex accepted %+v", idx)
			}
			for _, d := range idx.Manifests {
				_ = checkDigest(d.Digest.String(), data)
				_, _ = parseDigest(d.Digest.String())
				_ = fallbackTag(d.Digest.String())
			}
		}
		var o openManifest
		o.parse(data)
		if !o.read || (o.bad == "" && !json.Valid(data)) {
			t.Fatalf("openManifest.parse: read %t, no error for invalid JSON", o.read)
		}
		if o.bad != "" && o.layers != nil {
			t.Fatalf("openManifest.parse: error %q and %d layers", o.bad, len(o.layers))
		}
		for _, l := range o.layers {
			if format, ok := layerFormat(string(l.MediaType)); ok != (format != "") {
				t.Fatalf("layerFormat(%q) = %q, %t", l.MediaType, format, ok)
			}
			_ = checkDigest(l.Digest.String(), data)
		}
	})
}

// FuzzNextPage follows a referrers Link header. Invariants: no panic; a
// next page is never on another host or scheme than the current one; a
// header with no "<...>" target yields no page.
func FuzzNextPage(f *testing.F) {
	for _, s := range [][2]string{
		{"https://r.example/v2/app/referrers/sha256:ab", `</v2/app/referrers/sha256:ab?last=x>; rel="next"`},
		{"https://r.example/v2/app/referrers/sha256:ab", `<https://r.example/v2/app/referrers/sha256:ab?last=y>; rel=next`},
		{"https://r.example/v2/app/referrers/sha256:ab", `</a>; rel="prev", </b?last=z>; rel="next"`},
		{"https://r.example/v2/app/referrers/sha256:ab", `<https://evil.example/x>; rel="next"`},
		{"https://r.example/v2/app/referrers/sha256:ab", `<//evil.example/x>; rel="next"`},
		{"https://r.example/v2/app/referrers/sha256:ab", `<http://r.example/x>; rel="next"`},
		{"https://r.example:5000/v2/app/referrers/sha256:ab", `<https://r.example/x>; rel="next"`},
		{"https://r.example/v2/app/referrers/sha256:ab", `<https://user:pass@r.example/x>; REL="prev next"`},
		{"http://[::1]:5000/v2/app/referrers/sha256:ab", "<x>; rel=next\n</y>; rel=\"next\""},
		{"https://r.example/v2/app/referrers/sha256:ab", `no brackets; rel="next"`},
		{"https://r.example/v2/app/referrers/sha256:ab", `<%zz>; rel="next"`},
		{"https://r.example/", ``},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, current, links string) {
		cur, err := url.Parse(current)
		if err != nil || cur.Host == "" {
			return
		}
		h := http.Header{}
		for _, l := range strings.Split(links, "\n") {
			h.Add("Link", l)
		}
		next, err := nextPage(cur, h)
		if err != nil {
			if next != nil {
				t.Fatalf("nextPage returned %v with its error %v", next, err)
			}
			return
		}
		if next == nil {
			return
		}
		if next.Host != cur.Host || next.Scheme != cur.Scheme {
			t.Fatalf("nextPage(%q, %q) = %q: another host or scheme", current, links, next)
		}
		if !bytes.Contains([]byte(links), []byte("<")) {
			t.Fatalf("nextPage(%q, %q) = %q without a link target", current, links, next)
		}
	})
}
