package admission

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pregate/pregate/verify"
)

// clusterImagePolicy is the part of a policy-controller ClusterImagePolicy
// (policy.sigstore.dev v1alpha1, v1beta1) that decides image verification.
type clusterImagePolicy struct {
	Spec struct {
		Images []struct {
			Glob string `json:"glob"`
		} `json:"images"`
		Authorities []struct {
			Name    string `json:"name"`
			Keyless *struct {
				URL        string `json:"url"`
				Identities []struct {
					Issuer        string `json:"issuer"`
					Subject       string `json:"subject"`
					IssuerRegExp  string `json:"issuerRegExp"`
					SubjectRegExp string `json:"subjectRegExp"`
				} `json:"identities"`
				CACert            any    `json:"ca-cert"`
				TrustRootRef      string `json:"trustRootRef"`
				InsecureIgnoreSCT bool   `json:"insecureIgnoreSCT"`
			} `json:"keyless"`
			Key *struct {
				Data          string `json:"data"`
				KMS           string `json:"kms"`
				SecretRef     any    `json:"secretRef"`
				HashAlgorithm string `json:"hashAlgorithm"`
			} `json:"key"`
			Static *struct {
				Action string `json:"action"`
			} `json:"static"`
			Source []any `json:"source"`
			CTLog  *struct {
				URL          string `json:"url"`
				TrustRootRef string `json:"trustRootRef"`
			} `json:"ctlog"`
			RFC3161Timestamp *struct {
				TrustRootRef string `json:"trustRootRef"`
			} `json:"rfc3161timestamp"`
			SignatureFormat string `json:"signatureFormat"`
			Attestations    []struct {
				Name          string `json:"name"`
				PredicateType string `json:"predicateType"`
				Policy        any    `json:"policy"`
			} `json:"attestations"`
		} `json:"authorities"`
		Mode   string `json:"mode"`
		Policy any    `json:"policy"`
		Match  []struct {
			Group    string `json:"group"`
			Version  string `json:"version"`
			Resource string `json:"resource"`
			Selector any    `json:"selector"`
		} `json:"match"`
	} `json:"spec"`
}

// readClusterImagePolicy reads a ClusterImagePolicy as one rule per
// authority: any authority may pass the policy (every matching policy must
// pass, which is for the prediction to combine).
func readClusterImagePolicy(p *Policy, raw clusterImagePolicy) error {
	action := Enforce
	switch raw.Spec.Mode {
	case "", "enforce":
	case "warn":
		action = Warn
	default:
		return fmt.Errorf("spec.mode: %q is not enforce or warn", raw.Spec.Mode)
	}
	var globs []string
	for i, g := range raw.Spec.Images {
		// policy-controller refuses a ClusterImagePolicy whose glob does
		// not compile (ValidateGlob).
		if _, err := PolicyControllerGlob(g.Glob); err != nil {
			return fmt.Errorf("spec.images[%d].glob: %w", i, err)
		}
		globs = append(globs, g.Glob)
	}
	if len(globs) == 0 {
		return fmt.Errorf("spec.images: no glob")
	}
	var policyUnsupported []string
	if raw.Spec.Policy != nil {
		policyUnsupported = append(policyUnsupported, "spec.policy (CUE or Rego)")
	}
	// Any entry of spec.match selects the object by its resource and
	// labels (pkg/apis/config/image_policies.go GetMatchingPolicies).
	var match Match
	for i, m := range raw.Spec.Match {
		f := Filter{Kinds: []Kind{{Group: m.Group, Version: m.Version, Resource: m.Resource}}}
		policyUnsupported = append(policyUnsupported, readSelector(&f.Selector, m.Selector, fmt.Sprintf("spec.match[%d].selector", i))...)
		match.Any = append(match.Any, f)
	}
	for i, a := range raw.Spec.Authorities {
		name := a.Name
		if name == "" {
			name = fmt.Sprintf("authorities[%d]", i)
		}
		rule := Rule{Policy: p.ID(), Name: name, Engine: PolicyController, Images: globs, Action: action, Match: match,
			Format: LegacyFormat, Unsupported: append([]string(nil), policyUnsupported...)}
		// policy-controller validates no value: "bundle" exactly is the
		// bundle format, anything else ("Bundle" too) the legacy one
		// (pkg/webhook/validator.go checkOptsFromAuthority).
		if a.SignatureFormat == "bundle" {
			rule.Format = BundleFormat
		}
		auth := verify.Authority{Name: name}
		switch {
		case a.Keyless != nil:
			var ids []verify.Identity
			for _, id := range a.Keyless.Identities {
				ids = append(ids, verify.Identity{Issuer: id.Issuer, Subject: id.Subject,
					IssuerRegExp: unanchored(id.IssuerRegExp), SubjectRegExp: unanchored(id.SubjectRegExp)})
				for _, re := range []string{id.SubjectRegExp, id.IssuerRegExp} {
					if re != "" {
						rule.regexps = append(rule.regexps, re)
					}
				}
			}
			if len(ids) == 0 {
				return fmt.Errorf("spec.authorities[%d].keyless: no identities", i)
			}
			auth.Keyless = &verify.Keyless{Identities: ids}
			auth.IgnoreSCT = a.Keyless.InsecureIgnoreSCT
			// keyless.ca-cert is read by no code path of policy-controller
			// (research: pc-quirks §6); keyless.trustRootRef names the
			// Fulcio chain and CT log keys, and without a ctlog block no
			// transparency log is checked with it.
			rule.TrustRoots.Keyless = a.Keyless.TrustRootRef
		case a.Key != nil:
			if a.Key.Data == "" {
				rule.Unsupported = append(rule.Unsupported, name+": a key from a KMS or a Secret")
				break
			}
			key, err := verify.NewKey([]byte(a.Key.Data))
			if err != nil {
				return fmt.Errorf("spec.authorities[%d].key.data: %w", i, err)
			}
			auth.Key = key
		case a.Static != nil:
			switch a.Static.Action {
			case "pass", "fail":
				auth.Static = &verify.Static{Pass: a.Static.Action == "pass"}
			default:
				return fmt.Errorf("spec.authorities[%d].static.action: %q is not pass or fail", i, a.Static.Action)
			}
		default:
			return fmt.Errorf("spec.authorities[%d]: no keyless, key or static", i)
		}
		if a.CTLog != nil {
			rule.TrustRoots.Log = a.CTLog.TrustRootRef
		}
		auth.IgnoreTlog = pcIgnoresTlog(a.Keyless != nil, a.Keyless != nil && a.Keyless.TrustRootRef != "", a.CTLog != nil,
			a.CTLog != nil && (a.CTLog.URL != "" || a.CTLog.TrustRootRef != ""), rule.Format)
		if ts := a.RFC3161Timestamp; ts != nil {
			// Signed timestamps instead of the log (pkg/webhook/
			// validator.go checkOptsFromAuthority): in the legacy
			// format only with a trustRootRef, whose timestamp
			// authorities it takes; in the bundle format always, from
			// the keyless authority's TrustRoot, which must be the same.
			switch {
			case rule.Format == BundleFormat && (a.Keyless == nil || ts.TrustRootRef != a.Keyless.TrustRootRef):
				rule.Unsupported = append(rule.Unsupported, name+".rfc3161timestamp: with signatureFormat: bundle, its trustRootRef must be the keyless authority's, "+
					"or policy-controller fails the authority (\"the trustRootRef for the TSA must be the same as the trustRootRef for the Keyless authority\")")
			case rule.Format == BundleFormat:
				auth.SignedTimestamps, auth.IgnoreTlog = true, true
				rule.TrustRoots.TSA = ts.TrustRootRef
			case ts.TrustRootRef != "":
				auth.SignedTimestamps, auth.IgnoreTlog = true, true
				rule.TrustRoots.TSA = ts.TrustRootRef
			}
		}
		if len(a.Source) > 0 {
			rule.Unsupported = append(rule.Unsupported, name+".source (signatures in another repository)")
		}
		for j, att := range a.Attestations {
			if att.PredicateType == "" {
				return fmt.Errorf("spec.authorities[%d].attestations[%d]: no predicateType", i, j)
			}
			rule.Attestations = append(rule.Attestations, verify.Attestation{Name: att.Name, PredicateType: predicateType(att.PredicateType)})
			if att.Policy != nil {
				rule.Unsupported = append(rule.Unsupported, fmt.Sprintf("%s.attestations[%d].policy: unsupported policy language (CUE or Rego)", name, j))
			}
		}
		if auth.Keyless != nil || auth.Key != nil || auth.Static != nil {
			rule.Authorities = []verify.Authority{auth}
		}
		p.Rules = append(p.Rules, rule)
	}
	if len(p.Rules) == 0 {
		return fmt.Errorf("spec.authorities: none")
	}
	return nil
}

// predicateType expands cosign's predicate type shorthands, which
// policy-controller takes as cosign does (cosign's
// pkg/cosign/attestation options); a URI is kept as it is.
func predicateType(t string) string {
	if full, ok := map[string]string{
		"custom":           "https://cosign.sigstore.dev/attestation/v1",
		"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
		"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
		"slsaprovenance1":  "https://slsa.dev/provenance/v1",
		"link":             "https://in-toto.io/Link/v1",
		"spdx":             "https://spdx.dev/Document",
		"spdxjson":         "https://spdx.dev/Document",
		"cyclonedx":        "https://cyclonedx.org/bom",
		"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
		"openvex":          "https://openvex.dev/ns",
	}[t]; ok {
		return full
	}
	return t
}

// trustRoot is the part of a policy-controller TrustRoot
// (policy.sigstore.dev v1alpha1) that gives trust material.
type trustRoot struct {
	Spec struct {
		SigstoreKeys *struct {
			CertificateAuthorities []struct {
				CertChain []byte `json:"certChain"`
			} `json:"certificateAuthorities"`
			TLogs []struct {
				PublicKey []byte `json:"publicKey"`
			} `json:"tLogs"`
			CTLogs []struct {
				PublicKey []byte `json:"publicKey"`
			} `json:"ctLogs"`
			TimeStampAuthorities []struct {
				CertChain []byte `json:"certChain"`
			} `json:"timestampAuthorities"`
		} `json:"sigstoreKeys"`
		Remote     any `json:"remote"`
		Repository any `json:"repository"`
	} `json:"spec"`
}

// readTrustRoot reads a TrustRoot's keys (spec.sigstoreKeys: PEM, base64
// in the object). A TUF repository (spec.remote, spec.repository) is not
// read: the rules naming it are said unsupported.
func readTrustRoot(p *Policy, raw trustRoot) {
	keys := raw.Spec.SigstoreKeys
	tr := &NamedTrust{}
	p.TrustRoot = tr
	if keys == nil {
		tr.Unsupported = "a TUF repository (spec.remote or spec.repository)"
		return
	}
	// policy-controller's legacy format takes the last timestamp
	// authority only (checkOptsFromAuthority overwrites the chain in its
	// loop); its bundle format, every one.
	for _, tsa := range keys.TimeStampAuthorities {
		tr.TSAChains = append(tr.TSAChains, string(tsa.CertChain))
	}
	var b strings.Builder
	for _, ca := range keys.CertificateAuthorities {
		b.Write(ca.CertChain)
		b.WriteString("\n")
	}
	tr.Roots = b.String()
	join := func(logs []struct {
		PublicKey []byte `json:"publicKey"`
	}) string {
		var b strings.Builder
		for _, l := range logs {
			b.Write(l.PublicKey)
			b.WriteString("\n")
		}
		return b.String()
	}
	tr.RekorKey, tr.CTLogKey = join(keys.TLogs), join(keys.CTLogs)
}

// NamedTrust is the trust material a policy-controller TrustRoot names,
// or why it cannot be used.
type NamedTrust struct {
	Trust
	// TSAChains are its timestamp authorities' PEM chains.
	TSAChains   []string
	Unsupported string
}

// TrustRootRefs are the TrustRoots a policy-controller authority names:
// keyless.trustRootRef (the certificate authorities and CT logs),
// ctlog.trustRootRef (the transparency logs) and
// rfc3161timestamp.trustRootRef (the timestamp authorities).
type TrustRootRefs struct {
	Keyless, Log, TSA string
}

// ResolveTrustRoots gives each policy-controller rule that names
// TrustRoots the trust material they hold, from the TrustRoots among
// policies, and leaves the TrustRoots out. A rule naming a TrustRoot not
// among them, or one pregate cannot read, is said unsupported: the engine
// takes the cluster's copy, which pregate does not see. Rules are
// copied, never changed in place.
func ResolveTrustRoots(policies []*Policy) []*Policy {
	roots := map[string]*NamedTrust{}
	for _, p := range policies {
		if p.TrustRoot != nil {
			roots[p.Name] = p.TrustRoot
		}
	}
	var out []*Policy
	for _, p := range policies {
		if p.TrustRoot != nil {
			continue
		}
		if !slices.ContainsFunc(p.Rules, func(r Rule) bool { return r.TrustRoots != (TrustRootRefs{}) }) {
			out = append(out, p)
			continue
		}
		cp := *p
		cp.Rules = slices.Clone(p.Rules)
		for i := range cp.Rules {
			r := &cp.Rules[i]
			named := func(ref string) (*NamedTrust, bool) {
				if ref == "" {
					return nil, false
				}
				tr, ok := roots[ref]
				switch {
				case !ok:
					r.Unsupported = append(slices.Clip(r.Unsupported), fmt.Sprintf("trustRootRef %q: no TrustRoot of that name was given", ref))
				case tr.Unsupported != "":
					r.Unsupported = append(slices.Clip(r.Unsupported), fmt.Sprintf("TrustRoot %q: %s", ref, tr.Unsupported))
				default:
					return tr, true
				}
				return nil, false
			}
			if tr, ok := named(r.TrustRoots.Keyless); ok {
				r.Trust.Roots, r.Trust.CTLogKey = tr.Roots, tr.CTLogKey
			}
			if tr, ok := named(r.TrustRoots.Log); ok {
				r.Trust.RekorKey = tr.RekorKey
			}
			if tr, ok := named(r.TrustRoots.TSA); ok {
				switch {
				case len(tr.TSAChains) == 0:
					r.Unsupported = append(slices.Clip(r.Unsupported), fmt.Sprintf("TrustRoot %q: no timestamp authorities, for rfc3161timestamp", r.TrustRoots.TSA))
				case r.Format == BundleFormat:
					r.Trust.TSAChain = strings.Join(tr.TSAChains, "\n")
				default:
					r.Trust.TSAChain = tr.TSAChains[len(tr.TSAChains)-1]
				}
			}
		}
		out = append(out, &cp)
	}
	return out
}

// PolicyControllerConfigMap is policy-controller's configuration
// ConfigMap; its no-match-policy key says what happens to an image no
// ClusterImagePolicy matches (pkg/config/store.go).
const PolicyControllerConfigMap = "config-policy-controller"

// NamespaceOptIn is the label a namespace opts in to policy-controller
// with: its webhooks' namespaceSelector takes namespaces labelled
// policy.sigstore.dev/include: "true" only (config/500-webhook-
// configuration.yaml, the Helm chart's _helpers.tpl).
const NamespaceOptIn = "policy.sigstore.dev/include"

// NoMatch is policy-controller's no-match-policy: deny (the default, and
// what any value but allow and warn means), warn or allow.
type NoMatch string

// The no-match policies.
const (
	NoMatchDeny  NoMatch = "deny"
	NoMatchWarn  NoMatch = "warn"
	NoMatchAllow NoMatch = "allow"
)

// readPolicyControllerConfig reads no-match-policy as
// pkg/config/store.go does: "allow" and "warn" exactly, anything else
// deny.
func readPolicyControllerConfig(p *Policy, data map[string]any) {
	v, _ := data["no-match-policy"].(string)
	p.NoMatch = NoMatchDeny
	switch NoMatch(v) {
	case NoMatchAllow, NoMatchWarn:
		p.NoMatch = NoMatch(v)
	}
}

// pcIgnoresTlog says whether policy-controller checks no transparency log
// entry for an authority (pkg/webhook/validator.go
// rekorClientAndKeysFromAuthority): in the legacy format, a keyless
// authority naming no TrustRoot and no ctlog checks the public-good
// Rekor's keys; otherwise only a ctlog with a URL or a trustRootRef
// makes it check one. The bundle format always checks it.
func pcIgnoresTlog(keyless, keylessTrustRoot, ctlog, ctlogSet bool, f Format) bool {
	switch {
	case f == BundleFormat:
		return false
	case keyless && !keylessTrustRoot && !ctlog:
		return false
	}
	return !ctlogSet
}
