package verify_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/verify"
	"github.com/pregate/pregate/verify/verifytest"
)

const (
	ghIssuer     = "https://token.actions.githubusercontent.com"
	goodIdentity = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	evilIdentity = "https://github.com/acme-evil/app/.github/workflows/release.yml@refs/heads/main"
	slsaType     = "https://slsa.dev/provenance/v1"
	sbomType     = "https://spdx.dev/Document"
	imgRepo      = "registry.example/acme/app"
)

// Manifest digests in these tests are the digests of labels.
var (
	imgDigest      = digestOf([]byte("image"))
	otherImgDigest = digestOf([]byte("other image"))
)

// The artifacts discovery would produce.

func bundleArtifact(src verify.Step, manifest string, content []byte) verify.Artifact {
	return verify.Artifact{
		Source: src, Manifest: digestOf([]byte(manifest)), Layer: digestOf([]byte(manifest + "/layer")),
		Format: verify.BundleFormat, MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", Content: content,
	}
}

func referrer(content []byte) verify.Artifact {
	return bundleArtifact(verify.ReferrersStep, string(content), content)
}

func sigTagArtifact(payload []byte, ann map[string]string) verify.Artifact {
	return verify.Artifact{
		Source: verify.SignatureTagStep, Manifest: digestOf([]byte("sig:" + string(payload))), Layer: digestOf(payload),
		Format: verify.SimpleSigningFormat, MediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
		Content: payload, Annotations: ann,
	}
}

func attTagArtifact(envelope []byte, ann map[string]string) verify.Artifact {
	return verify.Artifact{
		Source: verify.AttestationTagStep, Manifest: digestOf([]byte("att:" + string(envelope))), Layer: digestOf(envelope),
		Format: verify.DSSEFormat, MediaType: "application/vnd.dsse.envelope.v1+json",
		Content: envelope, Annotations: ann,
	}
}

// allLookupsOK are the four discovery lookups, all successful.
func allLookupsOK(found int) []verify.Lookup {
	return []verify.Lookup{
		{Step: verify.ReferrersStep, URL: "https://registry.example/v2/acme/app/referrers/" + imgDigest, Status: 200, Found: found},
		{Step: verify.FallbackTagStep, URL: "https://registry.example/v2/acme/app/manifests/sha256-x", Status: 404},
		{Step: verify.SignatureTagStep, URL: "https://registry.example/v2/acme/app/manifests/sha256-x.sig", Status: 404},
		{Step: verify.AttestationTagStep, URL: "https://registry.example/v2/acme/app/manifests/sha256-x.att", Status: 404},
	}
}

func referrersFailed() []verify.Lookup {
	ls := allLookupsOK(0)
	ls[0].Status = 0
	ls[0].Err = `GET https://registry.example/v2/acme/app/referrers/sha256:…: redirected (303) to https://blocked.example/: dial tcp: i/o timeout`
	return ls
}

func discoveryWith(lookups []verify.Lookup, arts ...verify.Artifact) verify.Discovery {
	return verify.Discovery{
		Subject:   verify.Subject{Ref: imgRepo + ":1.0", Repository: imgRepo, Digest: imgDigest},
		Artifacts: arts,
		Lookups:   lookups,
	}
}

func discovered(arts ...verify.Artifact) verify.Discovery {
	return discoveryWith(allLookupsOK(len(arts)), arts...)
}

// Policies.

func keylessAuthority(name string, ids ...verify.Identity) verify.Authority {
	// VirtualSigstore certificates carry no SCTs (sigstore-formats.md §3.3).
	return verify.Authority{Name: name, Keyless: &verify.Keyless{Identities: ids}, IgnoreSCT: true}
}

func ghIdentity(subject string) verify.Identity {
	return verify.Identity{Issuer: ghIssuer, Subject: subject}
}

func firstPartyPolicy(tm root.TrustedMaterial, auths ...verify.Authority) *verify.Policy {
	if len(auths) == 0 {
		auths = []verify.Authority{keylessAuthority("release-workflow", ghIdentity(goodIdentity))}
	}
	return &verify.Policy{Name: "first-party", Authorities: auths, Trusted: tm}
}

func keyAuthority(t *testing.T, name string, pem []byte) verify.Authority {
	t.Helper()
	k, err := verify.NewKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	return verify.Authority{Name: name, Key: k, IgnoreTlog: true}
}

// want describes the expected Result.
type checkWant struct {
	status verify.Status
	// detail and reason hold substrings of Detail and of the first
	// Consideration's Reason.
	detail []string
	reason []string
	kind   string
	signer string
}

func checkPolicy(t *testing.T, p *verify.Policy, d verify.Discovery, w checkWant) verify.Result {
	t.Helper()
	res := p.Check(d)
	if res.Status != w.status {
		t.Errorf("Check() status = %s, want %s\ndetail: %s\nconsidered: %+v", res.Status, w.status, res.Detail, res.Considered)
	}
	if res.Status == verify.Verified && w.status != verify.Verified {
		t.Errorf("Check() = Verified for a case that must fail")
	}
	for _, s := range w.detail {
		if !strings.Contains(res.Detail, s) {
			t.Errorf("Check() detail = %q, want it to contain %q", res.Detail, s)
		}
	}
	if !strings.HasPrefix(res.Detail, d.Subject.Digest) && w.status != verify.ResolveFailed {
		t.Errorf("Check() detail = %q, want it to start with the digest", res.Detail)
	}
	if len(w.reason) > 0 || w.kind != "" || w.signer != "" {
		if len(res.Considered) == 0 {
			t.Fatalf("Check() considered nothing; detail %q", res.Detail)
		}
		c := res.Considered[0]
		for _, s := range w.reason {
			if !strings.Contains(c.Reason, s) {
				t.Errorf("Check() reason = %q, want it to contain %q", c.Reason, s)
			}
		}
		if w.kind != "" && c.Kind != w.kind {
			t.Errorf("Check() kind = %q, want %q", c.Kind, w.kind)
		}
		if w.signer != "" && !strings.Contains(c.Signer, w.signer) {
			t.Errorf("Check() signer = %q, want it to contain %q", c.Signer, w.signer)
		}
	}
	if got := p.Check(d); got.Detail != res.Detail || got.Status != res.Status {
		t.Errorf("Check() is not deterministic: %q, then %q", res.Detail, got.Detail)
	}
	return res
}

func TestCheck(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	other := verifytest.NewSigstore(t) // a Sigstore deployment the policies do not trust
	key := verifytest.NewKeySigner(t)
	otherKey := verifytest.NewKeySigner(t)

	privateRoot, err := verify.TrustedRootFromJSON(ss.TrustedRootJSON())
	if err != nil {
		t.Fatal(err)
	}

	signed := ss.MustSignImage(t, goodIdentity, ghIssuer, imgDigest)
	signedByEvil := ss.MustSignImage(t, evilIdentity, ghIssuer, imgDigest)
	signedOther := ss.MustSignImage(t, goodIdentity, ghIssuer, otherImgDigest)
	signedUntrusted := other.MustSignImage(t, goodIdentity, ghIssuer, imgDigest)
	slsa := ss.MustAttestImage(t, goodIdentity, ghIssuer, imgDigest, slsaType, map[string]any{"buildDefinition": map[string]any{"buildType": "x"}})
	slsaByEvil := ss.MustAttestImage(t, evilIdentity, ghIssuer, imgDigest, slsaType, nil)
	slsaOther := ss.MustAttestImage(t, goodIdentity, ghIssuer, otherImgDigest, slsaType, nil)
	legacyPayload, legacyAnn := ss.MustLegacySignature(t, goodIdentity, ghIssuer, imgDigest, imgRepo)
	legacyOtherPayload, legacyOtherAnn := ss.MustLegacySignature(t, goodIdentity, ghIssuer, otherImgDigest, imgRepo)
	legacyEnv, legacyEnvAnn := ss.MustLegacyAttestation(t, goodIdentity, ghIssuer, imgDigest, slsaType, nil)
	keySigned := key.MustSignImage(t, imgDigest)
	keySLSA := key.MustAttestImage(t, imgDigest, slsaType, nil)
	keyLegacyPayload, keyLegacyAnn := key.MustLegacySignature(t, imgDigest, imgRepo)
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	manifestDigest := digestOf(manifest)
	messageSigned := ss.MustSignMessage(t, goodIdentity, ghIssuer, manifest)

	keyAuth := keyAuthority(t, "release-key", key.PublicKeyPEM())
	otherKeyAuth := keyAuthority(t, "old-key", otherKey.PublicKeyPEM())
	slsaRequired := func(p *verify.Policy) *verify.Policy {
		p.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: slsaType}}
		return p
	}

	tests := map[string]struct {
		policy *verify.Policy
		disc   verify.Discovery
		want   checkWant
	}{
		"keyless v3 bundle": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(signed)),
			want: checkWant{status: verify.Verified, kind: verify.SignatureKind, signer: goodIdentity,
				detail: []string{"1 signature found (referrers)", `trusted by authority "release-workflow" of policy "first-party"`}},
		},
		"keyless v3 bundle, private trusted root from JSON": {
			policy: firstPartyPolicy(privateRoot),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.Verified},
		},
		"keyless v3 bundle, signed timestamps (TSA)": {
			policy: firstPartyPolicy(privateRoot, verify.Authority{Name: "tsa", Keyless: &verify.Keyless{Identities: []verify.Identity{ghIdentity(goodIdentity)}}, IgnoreSCT: true, SignedTimestamps: true}),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.Verified},
		},
		"keyless v3 bundle, tlog ignored (current time)": {
			policy: firstPartyPolicy(privateRoot, verify.Authority{Name: "no-tlog", Keyless: &verify.Keyless{Identities: []verify.Identity{ghIdentity(goodIdentity)}}, IgnoreSCT: true, IgnoreTlog: true}),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.Verified},
		},
		"keyless without IgnoreSCT needs SCTs": {
			policy: firstPartyPolicy(ss.Material(), verify.Authority{Name: "sct", Keyless: &verify.Keyless{Identities: []verify.Identity{ghIdentity(goodIdentity)}}}),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{`authority "sct"`, "signed certificate timestamp"}},
		},
		"wrong identity": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(signedByEvil)),
			want: checkWant{status: verify.IdentityMismatch, signer: evilIdentity,
				detail: []string{"1 signature found (referrers)", "signed by " + evilIdentity + " (issuer " + ghIssuer + `), which no authority of policy "first-party" trusts`},
				reason: []string{"no matching CertificateIdentity"}},
		},
		"wrong issuer": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("gitlab", verify.Identity{Issuer: "https://gitlab.com", Subject: goodIdentity})),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.IdentityMismatch, reason: []string{`expected issuer value "https://gitlab.com"`}},
		},
		"regexp is anchored: a prefix does not match": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("acme", verify.Identity{Issuer: ghIssuer, SubjectRegExp: `https://github\.com/acme`})),
			disc:   discovered(referrer(signedByEvil)),
			want:   checkWant{status: verify.IdentityMismatch, reason: []string{`^(?:https://github\.com/acme)$`}},
		},
		"regexp is anchored: a substring does not match": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("acme", verify.Identity{Issuer: ghIssuer, SubjectRegExp: `github\.com/acme`})),
			disc:   discovered(referrer(signedByEvil)),
			want:   checkWant{status: verify.IdentityMismatch},
		},
		"regexp matching the whole identity": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("acme", verify.Identity{Issuer: ghIssuer, SubjectRegExp: `https://github\.com/acme/.+`})),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.Verified},
		},
		"regexp for the whole identity rejects acme-evil": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("acme", verify.Identity{Issuer: ghIssuer, SubjectRegExp: `https://github\.com/acme/.+`})),
			disc:   discovered(referrer(signedByEvil)),
			want:   checkWant{status: verify.IdentityMismatch},
		},
		"issuer regexp is anchored": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("gh", verify.Identity{IssuerRegExp: `githubusercontent`, Subject: goodIdentity})),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.IdentityMismatch},
		},
		"any identity may match": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("two", ghIdentity(evilIdentity), ghIdentity(goodIdentity))),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.Verified},
		},
		"any authority may accept": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("evil-only", ghIdentity(evilIdentity)), keyAuth, keylessAuthority("good", ghIdentity(goodIdentity))),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.Verified, detail: []string{`authority "good"`}},
		},
		"signature over another digest": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(signedOther)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"statement subject is " + otherImgDigest + ", not this image"}},
		},
		"untrusted CA (another Sigstore deployment)": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(signedUntrusted)),
			want: checkWant{status: verify.InvalidSignature, signer: goodIdentity, reason: []string{`authority "release-workflow"`,
				"its log entry is from a Rekor log the trust root does not list", "its certificate was not issued by a Fulcio CA of the trust root"}},
		},
		"untrusted CA, tlog ignored": {
			policy: firstPartyPolicy(ss.Material(), verify.Authority{Name: "no-tlog", Keyless: &verify.Keyless{Identities: []verify.Identity{ghIdentity(goodIdentity)}}, IgnoreSCT: true, IgnoreTlog: true}),
			disc:   discovered(referrer(signedUntrusted)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"failed to verify leaf certificate", "(its certificate was not issued by a Fulcio CA of the trust root)"}},
		},
		"only an SLSA attestation: not signed": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(slsa)),
			want: checkWant{status: verify.NoSignatures, kind: slsaType,
				detail: []string{"no signature found", "1 attestation found (referrers), and an attestation is not a signature"},
				reason: []string{"attestation of " + slsaType, "not a signature"}},
		},
		"only a key-signed SLSA attestation: not signed": {
			policy: firstPartyPolicy(nil, keyAuth),
			disc:   discovered(referrer(keySLSA)),
			want:   checkWant{status: verify.NoSignatures, kind: slsaType},
		},
		"legacy keyless simple signing": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact(legacyPayload, legacyAnn)),
			want:   checkWant{status: verify.Verified, detail: []string{"1 signature found (signature-tag)"}, signer: goodIdentity},
		},
		"legacy keyless simple signing, private trusted root": {
			policy: firstPartyPolicy(privateRoot),
			disc:   discovered(sigTagArtifact(legacyPayload, legacyAnn)),
			want:   checkWant{status: verify.Verified},
		},
		"legacy keyless simple signing, signed timestamps": {
			policy: firstPartyPolicy(privateRoot, verify.Authority{Name: "tsa", Keyless: &verify.Keyless{Identities: []verify.Identity{ghIdentity(goodIdentity)}}, IgnoreSCT: true, SignedTimestamps: true}),
			disc:   discovered(sigTagArtifact(legacyPayload, legacyAnn)),
			want:   checkWant{status: verify.Verified},
		},
		"legacy payload naming another digest": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact(legacyOtherPayload, legacyOtherAnn)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"payload names image " + otherImgDigest + ", not this image"}},
		},
		"legacy signature with the payload of another image (replay)": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact(legacyOtherPayload, legacyAnn)),
			want:   checkWant{status: verify.InvalidSignature},
		},
		"legacy signature, wrong identity": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("evil-only", ghIdentity(evilIdentity))),
			disc:   discovered(sigTagArtifact(legacyPayload, legacyAnn)),
			want:   checkWant{status: verify.IdentityMismatch},
		},
		"legacy attestation satisfies a requirement": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(referrer(signed), attTagArtifact(legacyEnv, legacyEnvAnn)),
			want:   checkWant{status: verify.Verified, detail: []string{`attestations verified: "provenance" (` + slsaType + ")"}},
		},
		"legacy attestation alone: not signed": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(attTagArtifact(legacyEnv, legacyEnvAnn)),
			want:   checkWant{status: verify.NoSignatures},
		},
		// A trusted signer's cosign sign-blob over bytes that hash to the
		// image digest (its manifest) is not a signature of the image.
		"message signature over the image manifest: not an image signature": {
			policy: firstPartyPolicy(ss.Material()),
			disc: verify.Discovery{
				Subject:   verify.Subject{Ref: imgRepo + ":1.0", Repository: imgRepo, Digest: manifestDigest},
				Artifacts: []verify.Artifact{referrer(messageSigned)}, Lookups: allLookupsOK(1),
			},
			want: checkWant{status: verify.InvalidSignature, reason: []string{"a message signature (as cosign sign-blob makes) signs a blob's bytes, not an image"}},
		},
		"message signature over another manifest": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(messageSigned)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"a message signature (as cosign sign-blob makes) signs a blob's bytes, not an image"}},
		},
		"key-signed bundle, right key": {
			policy: firstPartyPolicy(nil, keyAuth),
			disc:   discovered(referrer(keySigned)),
			want:   checkWant{status: verify.Verified, signer: "public key " + key.Hint(), detail: []string{`authority "release-key"`}},
		},
		"key-signed bundle, another key": {
			policy: firstPartyPolicy(nil, otherKeyAuth),
			disc:   discovered(referrer(keySigned)),
			want: checkWant{status: verify.InvalidSignature, reason: []string{`authority "old-key"`, "verify",
				"signed with a key with hint " + key.Hint() + "; the authority trusts public key " + otherKey.Hint()}},
		},
		"key-signed bundle, keyless policy": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(keySigned)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"signed with a public key", "no key authority"}},
		},
		"keyless bundle, key policy": {
			policy: firstPartyPolicy(ss.Material(), keyAuth),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"signed with a certificate claiming " + goodIdentity, "no keyless authority"}},
		},
		"key-signed bundle, tlog required": {
			policy: firstPartyPolicy(ss.Material(), verify.Authority{Name: "key-tlog", Key: &verify.Key{PEM: key.PublicKeyPEM()}}),
			disc:   discovered(referrer(keySigned)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{`authority "key-tlog"`, "transparency log"}},
		},
		"key-signed legacy, right key": {
			policy: firstPartyPolicy(nil, keyAuth),
			disc:   discovered(sigTagArtifact(keyLegacyPayload, keyLegacyAnn)),
			want:   checkWant{status: verify.Verified},
		},
		"key-signed legacy, Key literal (parsed in Check)": {
			policy: firstPartyPolicy(nil, verify.Authority{Name: "literal", Key: &verify.Key{PEM: key.PublicKeyPEM()}, IgnoreTlog: true}),
			disc:   discovered(sigTagArtifact(keyLegacyPayload, keyLegacyAnn)),
			want:   checkWant{status: verify.Verified},
		},
		"key-signed legacy, another key": {
			policy: firstPartyPolicy(nil, otherKeyAuth),
			disc:   discovered(sigTagArtifact(keyLegacyPayload, keyLegacyAnn)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{`authority "old-key"`, "not signed by the trusted public key " + otherKey.Hint()}},
		},
		"required attestation present": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(referrer(signed), referrer(slsa)),
			want:   checkWant{status: verify.Verified, detail: []string{"1 signature found (referrers), 1 attestation found (referrers)", "attestations verified"}},
		},
		"required attestation, key-signed": {
			policy: slsaRequired(firstPartyPolicy(nil, keyAuth)),
			disc:   discovered(referrer(keySigned), referrer(keySLSA)),
			want:   checkWant{status: verify.Verified},
		},
		"required attestation missing": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.AttestationMissing, detail: []string{`but required attestation "provenance" (` + slsaType + ") was not found"}},
		},
		"required attestation of another type": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(referrer(signed), referrer(ss.MustAttestImage(t, goodIdentity, ghIssuer, imgDigest, sbomType, nil))),
			want:   checkWant{status: verify.AttestationMissing},
		},
		"required attestation by an untrusted signer": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(referrer(signed), referrer(slsaByEvil)),
			want:   checkWant{status: verify.AttestationMissing, detail: []string{"was found but rejected", evilIdentity}},
		},
		"required attestation about another image": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(referrer(signed), referrer(slsaOther)),
			want:   checkWant{status: verify.AttestationMissing, detail: []string{"not this image"}},
		},
		"required attestation missing, and a lookup failed": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discoveryWith(referrersFailed(), bundleArtifact(verify.FallbackTagStep, "s", signed)),
			want:   checkWant{status: verify.AttestationMissing, detail: []string{"1 lookup failed (referrers: "}},
		},
		"a rejected signature beside an accepted one": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(signedByEvil), referrer(signed), referrer([]byte("{"))),
			want:   checkWant{status: verify.Verified},
		},
		"the same manifest in two places counts once": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(bundleArtifact(verify.FallbackTagStep, "m", signed), bundleArtifact(verify.ReferrersStep, "m", signed)),
			want:   checkWant{status: verify.Verified, detail: []string{"1 signature found (referrers);"}},
		},
		"malformed bundle JSON": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer([]byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": `))),
			want:   checkWant{status: verify.InvalidSignature, kind: verify.UnknownKind, reason: []string{"malformed bundle"}, detail: []string{"1 unreadable artifact found (referrers); none verified: malformed bundle"}},
		},
		"bundle JSON of the wrong types": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer([]byte(`{"mediaType": 3, "dsseEnvelope": []}`))),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"malformed bundle"}},
		},
		"bundle with truncated base64 signature": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(truncateSig(t, signed))),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"malformed bundle"}},
		},
		"bundle of an unknown version": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(withMediaType(t, signed, "application/vnd.dev.sigstore.bundle.v0.9+json"))),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"not yet supported"}},
		},
		"bundle with the old media type form": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(referrer(withMediaType(t, signed, "application/vnd.dev.sigstore.bundle+json;version=0.3"))),
			want:   checkWant{status: verify.Verified},
		},
		"legacy signature with truncated base64": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact(legacyPayload, withAnnotation(legacyAnn, "dev.cosignproject.cosign/signature", legacyAnn["dev.cosignproject.cosign/signature"][:11]))),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"decoding base64"}},
		},
		"legacy signature without signature": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact(legacyPayload, withAnnotation(legacyAnn, "dev.cosignproject.cosign/signature", ""))),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"no dev.cosignproject.cosign/signature annotation"}},
		},
		"legacy signature with a garbled Rekor bundle": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact(legacyPayload, withAnnotation(legacyAnn, "dev.sigstore.cosign/bundle", `{"SignedEntryTimestamp": 7}`))),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"dev.sigstore.cosign/bundle"}},
		},
		"legacy signature with a garbled certificate": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact(legacyPayload, withAnnotation(legacyAnn, "dev.sigstore.cosign/certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))),
			want:   checkWant{status: verify.InvalidSignature},
		},
		"legacy payload that is not JSON": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact([]byte("not json"), legacyAnn)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"malformed simple-signing payload"}},
		},
		"legacy payload of another type": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(sigTagArtifact([]byte(`{"critical":{"type":"atomic container signature","image":{"docker-manifest-digest":"`+imgDigest+`"}}}`), legacyAnn)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{`critical.type is "atomic container signature"`}},
		},
		"legacy attestation envelope that is not JSON": {
			policy: slsaRequired(firstPartyPolicy(ss.Material())),
			disc:   discovered(attTagArtifact([]byte("{]"), legacyEnvAnn)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"malformed DSSE envelope"}},
		},
		"artifact that could not be read": {
			policy: firstPartyPolicy(ss.Material()),
			disc: discovered(verify.Artifact{Source: verify.ReferrersStep, Manifest: digestOf([]byte("m")), Format: verify.BundleFormat,
				Err: "GET blob sha256:…: 500 Internal Server Error"}),
			want: checkWant{status: verify.InvalidSignature, reason: []string{"could not be read: GET blob"}},
		},
		"unknown format": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(verify.Artifact{Source: verify.ReferrersStep, Manifest: digestOf([]byte("m")), Format: "x", Content: signed}),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{`unsupported format "x"`}},
		},
		"nothing found": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discovered(),
			want:   checkWant{status: verify.NoSignatures, detail: []string{"no signature found (looked up: referrers, fallback-tag, signature-tag, attestation-tag)"}},
		},
		"nothing found, a lookup failed": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discoveryWith(referrersFailed()),
			want:   checkWant{status: verify.LookupFailed, detail: []string{"no signature found, and 1 lookup failed (referrers: GET", "so absence cannot be concluded"}},
		},
		"only an attestation, a lookup failed": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discoveryWith(referrersFailed(), bundleArtifact(verify.FallbackTagStep, "a", slsa)),
			want:   checkWant{status: verify.LookupFailed, detail: []string{"1 attestation found (fallback-tag), and an attestation is not a signature"}},
		},
		"a rejected signature, a lookup failed": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discoveryWith(referrersFailed(), bundleArtifact(verify.FallbackTagStep, "s", signedOther)),
			want:   checkWant{status: verify.InvalidSignature, detail: []string{"none verified", "and 1 lookup failed (referrers: "}},
		},
		"an untrusted signer, a lookup failed": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discoveryWith(referrersFailed(), bundleArtifact(verify.FallbackTagStep, "s", signedByEvil)),
			want:   checkWant{status: verify.IdentityMismatch, detail: []string{"which no authority", "1 lookup failed"}},
		},
		"signed, though a lookup failed": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   discoveryWith(referrersFailed(), bundleArtifact(verify.FallbackTagStep, "s", signed)),
			want:   checkWant{status: verify.Verified, detail: []string{"1 signature found (fallback-tag)"}},
		},
		"static pass": {
			policy: &verify.Policy{Name: "allow", Authorities: []verify.Authority{{Name: "everything", Static: &verify.Static{Pass: true}}}},
			disc:   discovered(),
			want:   checkWant{status: verify.Verified, detail: []string{`policy "allow" accepts every image (static authority "everything")`}},
		},
		"static fail": {
			policy: &verify.Policy{Name: "deny", Authorities: []verify.Authority{{Name: "nothing", Static: &verify.Static{}}}},
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.StaticFail, detail: []string{`policy "deny" rejects every image (static authority "nothing")`}},
		},
		"static fail beside a keyless authority": {
			policy: firstPartyPolicy(ss.Material(), verify.Authority{Name: "nothing", Static: &verify.Static{}}, keylessAuthority("good", ghIdentity(goodIdentity))),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.Verified},
		},
		"invalid authority": {
			policy: firstPartyPolicy(ss.Material(), keylessAuthority("broken", verify.Identity{Issuer: ghIssuer, SubjectRegExp: "("})),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{`no usable authority: authority "broken": identity 0: subjectRegExp`}},
		},
		"keyless authority without trust root": {
			policy: firstPartyPolicy(nil),
			disc:   discovered(referrer(signed)),
			want:   checkWant{status: verify.InvalidSignature, reason: []string{"needs a trust root"}},
		},
		"subject without digest": {
			policy: firstPartyPolicy(ss.Material()),
			disc:   verify.Discovery{Subject: verify.Subject{Ref: imgRepo + ":1.0"}},
			want:   checkWant{status: verify.ResolveFailed, detail: []string{imgRepo + ":1.0: nothing to verify without a digest"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := checkPolicy(t, tc.policy, tc.disc, tc.want)
			t.Logf("status %s\ndetail: %s", res.Status, res.Detail)
			for _, c := range res.Considered {
				t.Logf("considered %s %s kind=%s accepted=%v authority=%q signer=%q\n  reason: %s", c.Source, c.Format, c.Kind, c.Accepted, c.Authority, c.Signer, c.Reason)
			}
		})
	}
}

// TestCheck_hostileBundles feeds truncations and corruptions of valid
// artifacts to Check: none may verify, none may panic.
func TestCheck_hostileBundles(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	signed := ss.MustSignImage(t, goodIdentity, ghIssuer, imgDigest)
	payload, ann := ss.MustLegacySignature(t, goodIdentity, ghIssuer, imgDigest, imgRepo)
	p := firstPartyPolicy(ss.Material())

	if res := p.Check(discovered(referrer(signed))); res.Status != verify.Verified {
		t.Fatalf("Check(valid bundle) = %s (%s), want Verified", res.Status, res.Detail)
	}
	for n := 0; n < len(signed); n += 7 {
		if res := p.Check(discovered(referrer(signed[:n]))); res.Status != verify.InvalidSignature {
			t.Errorf("Check(bundle truncated to %d bytes) = %s (%s), want InvalidSignature", n, res.Status, res.Detail)
		}
	}
	// A byte of the JSON flipped: Check must answer (no panic); what it
	// answers depends on the byte (the RFC 3161 timestamp, say, is not
	// checked by an authority that takes the log's time).
	for i := 0; i < len(signed); i += 23 {
		b := append([]byte(nil), signed...)
		b[i] ^= 0x20
		_ = p.Check(discovered(referrer(b)))
	}
	// A bit flipped in anything signed or signing: never Verified.
	for _, path := range [][]string{
		{"dsseEnvelope", "payload"},
		{"dsseEnvelope", "signatures", "0", "sig"},
		{"verificationMaterial", "certificate", "rawBytes"},
		{"verificationMaterial", "tlogEntries", "0", "canonicalizedBody"},
		{"verificationMaterial", "tlogEntries", "0", "inclusionPromise", "signedEntryTimestamp"},
		{"verificationMaterial", "tlogEntries", "0", "logId", "keyId"},
	} {
		for _, at := range []int{0, 10, 50, -1} {
			b := flipBase64(t, signed, path, at)
			if res := p.Check(discovered(referrer(b))); res.Status == verify.Verified {
				t.Errorf("Check(bundle with %v flipped at %d) = Verified", path, at)
			}
		}
	}
	for key, v := range ann {
		for _, n := range []int{0, 1, len(v) / 2} {
			if key == "dev.sigstore.cosign/rfc3161timestamp" || key == "dev.sigstore.cosign/chain" {
				if n == 0 {
					continue // optional: the log carries the time, the trust root the chain
				}
			}
			if res := p.Check(discovered(sigTagArtifact(payload, withAnnotation(ann, key, v[:n])))); res.Status == verify.Verified {
				t.Errorf("Check(legacy with %s cut to %d bytes) = Verified", key, n)
			}
		}
	}
}

// flipBase64 decodes the base64 string at path in a bundle's JSON, flips
// a bit of byte at (negative: from the end) and encodes it again.
func flipBase64(t *testing.T, b []byte, path []string, at int) []byte {
	t.Helper()
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	parent, leaf := m, path[len(path)-1]
	for _, k := range path[:len(path)-1] {
		switch v := parent.(type) {
		case map[string]any:
			parent = v[k]
		case []any:
			parent = v[0]
		}
	}
	obj, ok := parent.(map[string]any)
	if !ok {
		t.Fatalf("no object at %v", path)
	}
	s, ok := obj[leaf].(string)
	if !ok {
		t.Fatalf("no string at %v", path)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%v: %v", path, err)
	}
	if at < 0 {
		at += len(raw)
	}
	raw[at%len(raw)] ^= 0x01
	obj[leaf] = base64.StdEncoding.EncodeToString(raw)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	key := verifytest.NewKeySigner(t)
	tests := map[string]struct {
		policy verify.Policy
		err    string // "" for valid
	}{
		"keyless":          {policy: verify.Policy{Authorities: []verify.Authority{keylessAuthority("a", ghIdentity(goodIdentity))}, Trusted: ss.Material()}},
		"key without tlog": {policy: verify.Policy{Authorities: []verify.Authority{{Key: &verify.Key{PEM: key.PublicKeyPEM()}, IgnoreTlog: true}}}},
		"static":           {policy: verify.Policy{Authorities: []verify.Authority{{Static: &verify.Static{Pass: true}}}}},
		"no authorities":   {policy: verify.Policy{Name: "p"}, err: `policy "p": no authorities`},
		"two kinds": {
			policy: verify.Policy{Authorities: []verify.Authority{{Name: "x", Static: &verify.Static{}, Key: &verify.Key{PEM: key.PublicKeyPEM()}}}},
			err:    `authority "x": set exactly one of keyless, key and static (2 set)`,
		},
		"no kind":            {policy: verify.Policy{Authorities: []verify.Authority{{}}}, err: `authority "#0": set exactly one`},
		"keyless, no ids":    {policy: verify.Policy{Authorities: []verify.Authority{keylessAuthority("a")}, Trusted: ss.Material()}, err: "keyless without identities"},
		"keyless, no root":   {policy: verify.Policy{Authorities: []verify.Authority{keylessAuthority("a", ghIdentity(goodIdentity))}}, err: "needs a trust root"},
		"identity no issuer": {policy: verify.Policy{Authorities: []verify.Authority{keylessAuthority("a", verify.Identity{Subject: "x"})}, Trusted: ss.Material()}, err: "no issuer"},
		"identity no subject": {
			policy: verify.Policy{Authorities: []verify.Authority{keylessAuthority("a", verify.Identity{Issuer: "x"})}, Trusted: ss.Material()}, err: "no subject",
		},
		"identity both subjects": {
			policy: verify.Policy{Authorities: []verify.Authority{keylessAuthority("a", verify.Identity{Issuer: "x", Subject: "y", SubjectRegExp: "y"})}, Trusted: ss.Material()},
			err:    "both subject and subjectRegExp",
		},
		"bad regexp": {
			policy: verify.Policy{Authorities: []verify.Authority{keylessAuthority("a", verify.Identity{IssuerRegExp: "[", Subject: "y"})}, Trusted: ss.Material()},
			err:    "issuerRegExp: error parsing regexp",
		},
		"bad key":            {policy: verify.Policy{Authorities: []verify.Authority{{Key: &verify.Key{PEM: []byte("nope")}, IgnoreTlog: true}}}, err: "parsing public key"},
		"key, tlog, no root": {policy: verify.Policy{Authorities: []verify.Authority{{Key: &verify.Key{PEM: key.PublicKeyPEM()}}}}, err: "checking the transparency log needs a trust root"},
		"key, TSA, no root": {
			policy: verify.Policy{Authorities: []verify.Authority{{Key: &verify.Key{PEM: key.PublicKeyPEM()}, IgnoreTlog: true, SignedTimestamps: true}}},
			err:    "checking signed timestamps needs a trust root",
		},
		"attestation without type": {
			policy: verify.Policy{Authorities: []verify.Authority{{Static: &verify.Static{}}}, Attestations: []verify.Attestation{{Name: "slsa"}}},
			err:    `attestation 0 ("slsa"): no predicate type`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	key := verifytest.NewKeySigner(t)
	if _, err := verify.NewKey(key.PublicKeyPEM()); err != nil {
		t.Errorf("NewKey(ECDSA P-256) = %v", err)
	}
	for name, pem := range map[string][]byte{
		"empty":       nil,
		"not PEM":     []byte("hello"),
		"certificate": []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		"truncated":   key.PublicKeyPEM()[:40],
	} {
		if _, err := verify.NewKey(pem); err == nil {
			t.Errorf("NewKey(%s) = nil error, want an error", name)
		}
	}
}

// withAnnotation returns a copy of m with annotation k set to v,
// or removed if v is empty.
func withAnnotation(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if v == "" {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// truncateSig cuts the DSSE signature of a bundle so that it is no longer
// valid base64.
func truncateSig(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sigs := m["dsseEnvelope"].(map[string]any)["signatures"].([]any)
	s := sigs[0].(map[string]any)
	sig := s["sig"].(string)
	s["sig"] = sig[:len(sig)/2+1]
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withMediaType(t *testing.T, b []byte, mt string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["mediaType"] = mt
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheck_keyAuthorityRefusesCertificates: a key authority trusts its
// key and nothing else. A keyless bundle from any signer, whose
// certificate chains to the trust root's Fulcio CA and which carries a log
// entry and an RFC 3161 timestamp the trust root also vouches for, never
// passes for the key: with and without the transparency log, with and
// without signed timestamps, for a v3 bundle and a legacy signature.
func TestCheck_keyAuthorityRefusesCertificates(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	key := verifytest.NewKeySigner(t)
	bundle := ss.MustSignImage(t, evilIdentity, ghIssuer, imgDigest)
	legacyPayload, legacyAnn := ss.MustLegacySignature(t, evilIdentity, ghIssuer, imgDigest, imgRepo)
	artifacts := map[string]verify.Artifact{
		"v3 bundle":        referrer(bundle),
		"legacy signature": sigTagArtifact(legacyPayload, legacyAnn),
	}
	for what, art := range artifacts {
		for _, ignoreTlog := range []bool{false, true} {
			for _, signedTimestamps := range []bool{false, true} {
				name := fmt.Sprintf("%s, ignoreTlog=%t, signedTimestamps=%t", what, ignoreTlog, signedTimestamps)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					k, err := verify.NewKey(key.PublicKeyPEM())
					if err != nil {
						t.Fatal(err)
					}
					auth := verify.Authority{Name: "release-key", Key: k, IgnoreTlog: ignoreTlog, SignedTimestamps: signedTimestamps}
					p := firstPartyPolicy(ss.Material(), auth)
					res := p.Check(discovered(art))
					if res.Status == verify.Verified {
						t.Fatalf("a certificate-signed artifact verified under a key authority: %s", res.Detail)
					}
					if res.Status != verify.InvalidSignature {
						t.Errorf("status = %s, want %s (%s)", res.Status, verify.InvalidSignature, res.Detail)
					}
					if len(res.Considered) != 1 || res.Considered[0].Accepted {
						t.Fatalf("considered = %+v, want one rejected artifact", res.Considered)
					}
					if r := res.Considered[0].Reason; !strings.Contains(r, "policy \"first-party\" has no keyless authority") {
						t.Errorf("reason = %q, want it to say the policy trusts no certificate", r)
					}
				})
			}
		}
	}
}

// TestCheck_untrustedTextIsBounded: what a signer writes into its
// certificate is quoted clipped, and as a claim until the certificate
// verifies: a 40 KiB SAN neither reaches a detail whole nor is stated as
// the signer's identity when nothing vouches for it.
func TestCheck_untrustedTextIsBounded(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	other := verifytest.NewSigstore(t)
	huge := "https://github.com/acme/app/" + strings.Repeat("A", 40<<10)
	trustedHuge := ss.MustSignImage(t, huge, ghIssuer, imgDigest)
	untrustedHuge := other.MustSignImage(t, huge, ghIssuer, imgDigest)

	for name, tc := range map[string]struct {
		bundle  []byte
		status  verify.Status
		claimed bool
	}{
		"a trusted CA's certificate, another identity": {trustedHuge, verify.IdentityMismatch, false},
		"an untrusted CA's certificate":                {untrustedHuge, verify.InvalidSignature, true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := firstPartyPolicy(ss.Material()).Check(discovered(referrer(tc.bundle)))
			if res.Status != tc.status {
				t.Fatalf("status = %s, want %s: %.300s", res.Status, tc.status, res.Detail)
			}
			c := res.Considered[0]
			for what, text := range map[string]string{"detail": res.Detail, "signer": c.Signer, "reason": c.Reason} {
				if len(text) > 2048 || strings.Contains(text, strings.Repeat("A", 300)) {
					t.Errorf("%s is %d bytes and quotes the SAN whole: %.300s", what, len(text), text)
				}
			}
			if !strings.Contains(c.Signer, "AAAA…") {
				t.Errorf("signer does not show the SAN clipped: %.300s", c.Signer)
			}
			if got := strings.HasPrefix(c.Signer, "a certificate claiming "); got != tc.claimed {
				t.Errorf("signer = %.80s…; stated as a claim: %t, want %t", c.Signer, got, tc.claimed)
			}
		})
	}
}

// TestCheck_reads: a policy that reads only some places and formats, as an
// admission engine does, does not see the rest: a cosign v3 bundle is not a
// signature to one that reads legacy tags only, a failed referrers lookup
// does not make its answer undecided, and a legacy signature is one.
func TestCheck_reads(t *testing.T) {
	t.Parallel()
	ss := verifytest.NewSigstore(t)
	bundle := referrer(ss.MustSignImage(t, goodIdentity, ghIssuer, imgDigest))
	legacyPayload, legacyAnn := ss.MustLegacySignature(t, goodIdentity, ghIssuer, imgDigest, imgRepo)
	legacy := sigTagArtifact(legacyPayload, legacyAnn)
	legacyOnly := func() *verify.Policy {
		p := firstPartyPolicy(ss.Material())
		p.Reads = verify.Reads{Sources: []verify.Step{verify.SignatureTagStep, verify.AttestationTagStep},
			Formats: []verify.Format{verify.SimpleSigningFormat, verify.DSSEFormat}}
		return p
	}
	bundlesOnly := func() *verify.Policy {
		p := firstPartyPolicy(ss.Material())
		p.Reads = verify.Reads{Formats: []verify.Format{verify.BundleFormat}}
		return p
	}
	slsa := referrer(ss.MustAttestImage(t, goodIdentity, ghIssuer, imgDigest, slsaType, nil))
	env, envAnn := ss.MustLegacyAttestation(t, goodIdentity, ghIssuer, imgDigest, slsaType, nil)
	legacyAtt := attTagArtifact(env, envAnn)
	bundleByEvil := referrer(ss.MustSignImage(t, evilIdentity, ghIssuer, imgDigest))
	bundlesFirst := func() *verify.Policy {
		p := firstPartyPolicy(ss.Material())
		p.Reads = verify.Reads{BundlesFirst: true}
		return p
	}
	attestationsSign := func() *verify.Policy {
		p := firstPartyPolicy(ss.Material())
		p.Reads = verify.Reads{AttestationsSign: true}
		return p
	}
	// As Kyverno's SigstoreBundle verifier reads: referrers listed with a
	// bundle artifactType, the fallback tag only without a referrers API.
	sigstoreBundle := func() *verify.Policy {
		p := firstPartyPolicy(ss.Material())
		p.Reads = verify.Reads{Formats: []verify.Format{verify.BundleFormat},
			ArtifactTypePrefix: "application/vnd.dev.sigstore.bundle", FallbackWithoutAPI: true}
		return p
	}
	listedAs := func(a verify.Artifact, src verify.Step, artifactType string) verify.Artifact {
		a.Source, a.ArtifactType = src, artifactType
		return a
	}
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// An attestation requirement with a condition over the statement.
	conditioned := func(want string) *verify.Policy {
		p := firstPartyPolicy(ss.Material())
		p.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: slsaType, Condition: func(statement []byte) ([]verify.ConditionValue, error) {
			holds := strings.Contains(string(statement), want)
			v := []verify.ConditionValue{{Expression: "contains " + want, Value: fmt.Sprint(holds), Holds: holds}}
			if !holds {
				return v, fmt.Errorf("no %q in the statement", want)
			}
			return v, nil
		}}}
		return p
	}
	// As policy-controller reads an authority that lists attestations.
	attestationsOnly := func() *verify.Policy {
		p := firstPartyPolicy(ss.Material())
		p.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: slsaType}}
		p.Reads = verify.Reads{AttestationsOnly: true}
		return p
	}
	noAPI := allLookupsOK(1)
	noAPI[0].Status, noAPI[0].Found = 404, 0
	noAPI[1].Status, noAPI[1].Found = 200, 1
	for name, tc := range map[string]struct {
		policy *verify.Policy
		disc   verify.Discovery
		want   checkWant
	}{
		"legacy reader, bundle only": {legacyOnly(), discovered(bundle),
			checkWant{status: verify.NoSignatures, detail: []string{"signature-tag"}}},
		"legacy reader, bundle only, referrers failed": {legacyOnly(), discoveryWith(referrersFailed(), bundle),
			checkWant{status: verify.NoSignatures}},
		"legacy reader, legacy signature": {legacyOnly(), discovered(bundle, legacy),
			checkWant{status: verify.Verified, signer: goodIdentity}},
		"bundle reader, legacy only": {bundlesOnly(), discovered(legacy),
			checkWant{status: verify.NoSignatures}},
		"bundle reader, bundle": {bundlesOnly(), discovered(legacy, bundle),
			checkWant{status: verify.Verified, signer: goodIdentity}},
		"reads everything": {firstPartyPolicy(ss.Material()), discovered(bundle),
			checkWant{status: verify.Verified}},
		"attestations sign, attestation-only bundle": {attestationsSign(), discovered(slsa),
			checkWant{status: verify.Verified, reason: []string{"counted as a signature"}}},
		"attestations sign, legacy attestation": {attestationsSign(), discovered(legacyAtt),
			checkWant{status: verify.NoSignatures}},
		"bundles first, bundle and legacy": {bundlesFirst(), discovered(bundleByEvil, legacy),
			checkWant{status: verify.IdentityMismatch}},
		"bundles first, legacy only": {bundlesFirst(), discovered(legacy),
			checkWant{status: verify.Verified}},
		"artifactType filter, bundle listed as a bundle": {sigstoreBundle(), discovered(listedAs(bundle, verify.ReferrersStep, bundleType)),
			checkWant{status: verify.Verified, signer: goodIdentity}},
		"artifactType filter, bundle listed as empty": {sigstoreBundle(),
			discovered(listedAs(bundle, verify.ReferrersStep, "application/vnd.oci.empty.v1+json")),
			checkWant{status: verify.NoSignatures}},
		"fallback without API, API answered": {sigstoreBundle(),
			discovered(listedAs(bundle, verify.FallbackTagStep, bundleType)),
			checkWant{status: verify.NoSignatures}},
		"fallback without API, no API": {sigstoreBundle(),
			discoveryWith(noAPI, listedAs(bundle, verify.FallbackTagStep, bundleType)),
			checkWant{status: verify.Verified, signer: goodIdentity}},
		"pregate, bundle listed as empty in the fallback tag": {firstPartyPolicy(ss.Material()),
			discovered(listedAs(bundle, verify.FallbackTagStep, "application/vnd.oci.empty.v1+json")),
			checkWant{status: verify.Verified, signer: goodIdentity}},
		"attestations only, attestation without signature": {attestationsOnly(), discovered(slsa),
			checkWant{status: verify.Verified, detail: []string{"checks attestations only"}}},
		"attestations only, signature without attestation": {attestationsOnly(), discovered(bundle),
			checkWant{status: verify.AttestationMissing, detail: []string{"checks attestations only, but required attestation \"provenance\""}}},
		"pregate, attestation without signature": {func() *verify.Policy {
			p := attestationsOnly()
			p.Reads = verify.Reads{}
			return p
		}(), discovered(slsa), checkWant{status: verify.NoSignatures}},
		"attestation condition holds": {conditioned(slsaType), discovered(bundle, slsa),
			checkWant{status: verify.Verified}},
		"attestation condition fails": {conditioned("refs/heads/main"), discovered(bundle, slsa),
			checkWant{status: verify.AttestationMissing, detail: []string{`its conditions do not hold: no "refs/heads/main" in the statement`}}},
		"pregate, attestation-only bundle": {firstPartyPolicy(ss.Material()), discovered(slsa),
			checkWant{status: verify.NoSignatures, detail: []string{"an attestation is not a signature"}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := checkPolicy(t, tc.policy, tc.disc, tc.want)
			for _, c := range res.Considered {
				if len(tc.policy.Reads.Formats) > 0 && !slices.Contains(tc.policy.Reads.Formats, c.Format) {
					t.Errorf("considered %s from %s, which the policy does not read", c.Format, c.Source)
				}
			}
		})
	}
}
