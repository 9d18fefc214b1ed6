package config

import (
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/verify"
)

// TrustSource turns a TrustRoot into trust material; nil asks for the
// default (the Sigstore public-good instance, unless the caller says
// otherwise). Fetching it is the caller's I/O: the CLI reads files and TUF
// repositories, the controller Secrets.
type TrustSource func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error)

// Compiled is a validated Set turned into what the gate decides with and
// what the verifier verifies with, policy for policy.
type Compiled struct {
	Gate   []gate.Policy
	Verify []*verify.Policy
}

// Compile turns the set's trust policies into gate and verify policies.
// Trust material is asked of trust only for policies that need it (keyless
// authorities, or a transparency log or timestamps to check), once per
// trust root.
func (s *Set) Compile(trust TrustSource) (*Compiled, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := &Compiled{}
	material := map[string]root.TrustedMaterial{}
	var errs []error
	for _, p := range s.TrustPolicies() {
		gp, vp, err := s.compilePolicy(p, trust, material)
		if err != nil {
			at, _ := s.Origin(v1alpha1.TrustPolicyKind, p.Name)
			errs = append(errs, fmt.Errorf("%s: TrustPolicy %q: %w", at, p.Name, err))
			continue
		}
		out.Gate = append(out.Gate, gp)
		out.Verify = append(out.Verify, vp)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (s *Set) compilePolicy(p *v1alpha1.TrustPolicy, trust TrustSource, material map[string]root.TrustedMaterial) (gate.Policy, *verify.Policy, error) {
	gp := gate.Policy{Name: p.Name, Mode: gate.Mode(p.Spec.Mode)}
	for _, img := range p.Spec.Images {
		g, err := gate.CompileGlob(img.Glob)
		if err != nil {
			return gate.Policy{}, nil, err
		}
		gp.Images = append(gp.Images, g)
	}
	vp := &verify.Policy{Name: p.Name}
	needsTrust := false
	for i, a := range p.Spec.Authorities {
		va := verify.Authority{Name: a.Name, IgnoreTlog: a.InsecureIgnoreTlog, IgnoreSCT: a.InsecureIgnoreSCT, SignedTimestamps: a.SignedTimestamps}
		switch {
		case a.Keyless != nil:
			needsTrust = true
			k := &verify.Keyless{}
			for _, id := range a.Keyless.Identities {
				k.Identities = append(k.Identities, verify.Identity{Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp})
			}
			va.Keyless = k
		case a.Key != nil:
			if a.Key.Data == "" {
				return gate.Policy{}, nil, fmt.Errorf("spec.authorities[%d].key: a secretRef is read by the controller only; give the key inline as data", i)
			}
			key, err := verify.NewKey([]byte(a.Key.Data))
			if err != nil {
				return gate.Policy{}, nil, fmt.Errorf("spec.authorities[%d].key.data: %w", i, err)
			}
			va.Key = key
			needsTrust = needsTrust || !a.InsecureIgnoreTlog || a.SignedTimestamps
		case a.Static != nil:
			va.Static = &verify.Static{Pass: a.Static.Action == v1alpha1.StaticActionPass}
		}
		vp.Authorities = append(vp.Authorities, va)
	}
	for _, at := range p.Spec.Attestations {
		vp.Attestations = append(vp.Attestations, verify.Attestation{Name: at.Name, PredicateType: at.PredicateType})
	}
	if needsTrust {
		m, err := s.material(p.Spec.TrustRootRef, trust, material)
		if err != nil {
			return gate.Policy{}, nil, err
		}
		vp.Trusted = m
	}
	if err := vp.Validate(); err != nil {
		return gate.Policy{}, nil, err
	}
	return gp, vp, nil
}

// material resolves a trust root by name ("" for the default), once.
func (s *Set) material(name string, trust TrustSource, cache map[string]root.TrustedMaterial) (root.TrustedMaterial, error) {
	if m, ok := cache[name]; ok {
		return m, nil
	}
	var tr *v1alpha1.TrustRoot
	if name != "" {
		var ok bool
		if tr, ok = s.TrustRoot(name); !ok {
			return nil, fmt.Errorf("spec.trustRootRef: TrustRoot %q not found", name)
		}
	}
	m, err := trust(tr)
	if err != nil {
		if name == "" {
			return nil, fmt.Errorf("loading the Sigstore public-good trust root: %w", err)
		}
		return nil, fmt.Errorf("loading TrustRoot %q: %w", name, err)
	}
	cache[name] = m
	return m, nil
}
