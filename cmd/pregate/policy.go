package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pregate/pregate/config"
	"github.com/pregate/pregate/config/admission"
	"github.com/pregate/pregate/config/v1alpha1"
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/verify"
)

// policyFlags are the flags that say what to trust.
type policyFlags struct {
	policyFiles    []string
	admissionFiles []string
	engines        []string

	// cosign-style flags for a one-policy run without a policy file
	images         []string
	identity       string
	identityRegexp string
	issuer         string
	issuerRegexp   string
	key            string
	ignoreTlog     bool
	ignoreSCT      bool
	useTimestamps  bool

	trustedRoot string
	tufCache    string
	unmatched   string

	lookupTimeout time.Duration
	imageTimeout  time.Duration
}

func (f *policyFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&f.policyFiles, "policy", nil, "a YAML file of TrustPolicies and TrustRoots, or a directory of them (its *.yaml, *.yml and *.json files, as a mounted ConfigMap holds them) (repeatable)")
	fs.StringArrayVar(&f.admissionFiles, "admission-policy", nil, "a YAML file of the cluster's admission policies (Kyverno ClusterPolicy/Policy verifyImages, policy-controller ClusterImagePolicy) whose answers for the images are predicted; those the revision applies are read too (repeatable)")
	fs.StringArrayVar(&f.engines, "engine", nil, "the admission engine release the cluster runs, whose way of reading signatures the predictions follow: "+
		"kyverno@1.19, policy-controller@0.15 (repeatable, one per engine; default the newest known: "+newestEngines()+")")
	fs.StringArrayVar(&f.images, "images", nil, "without --policy: the images one policy covers, as globs (ghcr.io/acme/**); repeatable")
	fs.StringVar(&f.identity, "certificate-identity", "", "keyless: the signer's certificate identity (SAN), exactly")
	fs.StringVar(&f.identityRegexp, "certificate-identity-regexp", "", "keyless: a regular expression the whole certificate identity must match")
	fs.StringVar(&f.issuer, "certificate-oidc-issuer", "", "keyless: the OIDC issuer of the signer's certificate, exactly")
	fs.StringVar(&f.issuerRegexp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the whole OIDC issuer must match")
	fs.StringVar(&f.key, "key", "", "a PEM public key file (ECDSA, RSA or Ed25519) the images must be signed with")
	fs.BoolVar(&f.ignoreTlog, "insecure-ignore-tlog", false, "with --images: do not require a transparency log entry")
	fs.BoolVar(&f.ignoreSCT, "insecure-ignore-sct", false, "with --images: do not require a certificate transparency SCT in keyless certificates")
	fs.BoolVar(&f.useTimestamps, "use-signed-timestamps", false, "with --images: require RFC 3161 timestamps from the trust root's timestamp authority")
	fs.StringVar(&f.trustedRoot, "trusted-root", "", "a trusted_root.json to use instead of the Sigstore public-good instance (a private Sigstore deployment)")
	fs.StringVar(&f.tufCache, "tuf-cache", verify.DefaultTUFCacheDir(), "where the Sigstore public-good TUF metadata is cached")
	fs.StringVar(&f.unmatched, "unmatched-images", string(gate.DenyUnmatched), "what happens to images no policy matches: allow, warn or deny")
	fs.DurationVar(&f.lookupTimeout, "lookup-timeout", verify.DefaultLookupTimeout, "the bound on each registry request")
	fs.DurationVar(&f.imageTimeout, "image-timeout", verify.DefaultImageTimeout, "the bound on verifying one image: every request, retry and wait for it")
}

// expandPolicyFiles replaces each directory of names by its policy files:
// those named *.yaml, *.yml or *.json, in name order, but hidden ones
// (a mounted ConfigMap's ..data and its timestamped copy).
func expandPolicyFiles(names []string) ([]string, error) {
	var out []string
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, name)
			continue
		}
		entries, err := os.ReadDir(name)
		if err != nil {
			return nil, err
		}
		n := len(out)
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if strings.HasPrefix(e.Name(), ".") || ext != ".yaml" && ext != ".yml" && ext != ".json" {
				continue
			}
			out = append(out, filepath.Join(name, e.Name()))
		}
		if len(out) == n {
			return nil, fmt.Errorf("directory %s holds no .yaml, .yml or .json file", name)
		}
	}
	return out, nil
}

// options reads the policies and says how to verify with them: the
// pipeline's options, less what only check sets.
func (f *policyFlags) options(ctx context.Context) (pipeline.Options, error) {
	unmatched := gate.Unmatched(f.unmatched)
	switch unmatched {
	case gate.AllowUnmatched, gate.WarnUnmatched, gate.DenyUnmatched:
	default:
		return pipeline.Options{}, fmt.Errorf("--unmatched-images %q: want allow, warn or deny", f.unmatched)
	}
	set := &config.Set{}
	files, err := expandPolicyFiles(f.policyFiles)
	if err != nil {
		return pipeline.Options{}, fmt.Errorf("--policy: %w", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			return pipeline.Options{}, fmt.Errorf("--policy: %w", err)
		}
		s, err := config.Load(file, b)
		if err != nil {
			return pipeline.Options{}, err
		}
		if err := set.Add(s); err != nil {
			return pipeline.Options{}, err
		}
	}
	flagPolicy, err := f.flagPolicy()
	if err != nil {
		return pipeline.Options{}, err
	}
	if flagPolicy != nil {
		if err := set.Add(flagPolicy); err != nil {
			return pipeline.Options{}, err
		}
	}
	if len(set.TrustPolicies()) == 0 {
		return pipeline.Options{}, errors.New("no trust policy: give --policy FILE, or --images with --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp], or --key")
	}
	adm, err := f.admissionPolicies()
	if err != nil {
		return pipeline.Options{}, err
	}
	engines, err := admission.ParseProfiles(f.engines)
	if err != nil {
		return pipeline.Options{}, fmt.Errorf("--engine: %w", err)
	}
	return pipeline.Options{
		Admission: adm,
		Engines:   engines,
		Policies:  pipeline.Policies{Set: set, Trust: f.trustSource(ctx)},
		Registry:  []verify.RegistryOption{verify.WithLookupTimeout(f.lookupTimeout), verify.WithUserAgent("pregate/" + buildVersion().Version)},
		Verifier:  []verify.VerifierOption{verify.WithImageTimeout(f.imageTimeout)},
		Unmatched: unmatched,
	}, nil
}

// newestEngines are the default engine releases, for help.
func newestEngines() string {
	return admission.Newest(admission.Kyverno).String() + ", " + admission.Newest(admission.PolicyController).String()
}

// admissionPolicies reads the --admission-policy files; a file holding no
// admission policy is an error, other objects in a file are left out.
func (f *policyFlags) admissionPolicies() ([]*admission.Policy, error) {
	var out []*admission.Policy
	for _, file := range f.admissionFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--admission-policy: %w", err)
		}
		objs, err := render.DecodeObjects(file, b)
		if err != nil {
			return nil, fmt.Errorf("--admission-policy: %w", err)
		}
		n := len(out)
		for _, obj := range objs {
			p, ok, err := admission.Read(file, obj)
			if err != nil {
				return nil, fmt.Errorf("--admission-policy: %w", err)
			}
			if ok {
				out = append(out, p)
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("--admission-policy %s: no Kyverno ClusterPolicy or Policy, ImageValidatingPolicy, nor policy-controller ClusterImagePolicy or TrustRoot", file)
		}
	}
	return out, nil
}

// flagPolicy builds the TrustPolicy the cosign-style flags describe, and
// loads it through the same validation as a policy file.
func (f *policyFlags) flagPolicy() (*config.Set, error) {
	keyless := f.identity != "" || f.identityRegexp != "" || f.issuer != "" || f.issuerRegexp != ""
	if len(f.images) == 0 {
		if keyless || f.key != "" {
			return nil, errors.New("--certificate-identity, --certificate-oidc-issuer and --key need --images: the globs of the images they cover")
		}
		return nil, nil
	}
	a := v1alpha1.Authority{Name: "flags", InsecureIgnoreTlog: f.ignoreTlog, InsecureIgnoreSCT: f.ignoreSCT, SignedTimestamps: f.useTimestamps}
	switch {
	case keyless && f.key != "":
		return nil, errors.New("give either --key or --certificate-identity/--certificate-oidc-issuer, not both")
	case f.key != "":
		b, err := os.ReadFile(f.key)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		a.Key = &v1alpha1.KeyAuthority{Data: string(b)}
	case keyless:
		a.Keyless = &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{{
			Subject: f.identity, SubjectRegExp: f.identityRegexp, Issuer: f.issuer, IssuerRegExp: f.issuerRegexp,
		}}}
	default:
		return nil, errors.New("--images needs --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp], or --key")
	}
	p := v1alpha1.TrustPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.TrustPolicyKind},
		ObjectMeta: metav1.ObjectMeta{Name: "command-line"},
		Spec:       v1alpha1.TrustPolicySpec{Authorities: []v1alpha1.Authority{a}},
	}
	for _, g := range f.images {
		p.Spec.Images = append(p.Spec.Images, v1alpha1.ImagePattern{Glob: g})
	}
	set, err := config.FromObjects("command line", []v1alpha1.TrustPolicy{p}, nil)
	if err != nil {
		return nil, err
	}
	return set, nil
}

// trustSource loads trust roots for the CLI: --trusted-root, when given, is
// the default; everything else is config.DefaultTrustSource (the
// public-good instance through TUF, TUF mirrors and inline
// trusted_root.json as the TrustRoots say; the CLI reads no Secrets).
func (f *policyFlags) trustSource(ctx context.Context) config.TrustSource {
	def := config.DefaultTrustSource(ctx, f.tufCache)
	return func(tr *v1alpha1.TrustRoot) (root.TrustedMaterial, error) {
		if tr != nil || f.trustedRoot == "" {
			return def(tr)
		}
		b, err := os.ReadFile(f.trustedRoot)
		if err != nil {
			return nil, fmt.Errorf("--trusted-root: %w", err)
		}
		m, err := verify.TrustedRootFromJSON(b)
		if err != nil {
			return nil, fmt.Errorf("--trusted-root %s: %w", f.trustedRoot, err)
		}
		return m, nil
	}
}
