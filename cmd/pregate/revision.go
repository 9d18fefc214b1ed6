package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"helm.sh/helm/v4/pkg/chart/common"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/render/helm"
	"github.com/pregate/pregate/render/sops"
	"github.com/pregate/pregate/sources"
)

// renderFlags are the flags of the commands that render a local revision.
type renderFlags struct {
	root              string
	sourceRef         string
	kustomizationFile string
	substituteFrom    []string
	sopsAgeKeys       []string
	sopsPGPKeys       []string
	allowGaps         []string
	strict            bool // deprecated: gaps block unless allowed
	offline           bool
	noRemoteBases     bool
	chartCacheDir     string
	kubeVersion       string
	apiVersions       []string
	git               gitFlags
}

// gitFlags check a revision of a git repository instead of a local tree.
type gitFlags struct {
	url, revision, credentials string
}

func (f *renderFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.root, "root", "", "the source's root directory, which Flux Kustomization paths are relative to (default: the git work tree holding PATH; outside one, the current directory if PATH is inside it, else PATH)")
	fs.StringVar(&f.sourceRef, "source-ref", "", "the Flux source this tree is, as Kind/namespace/name: Kustomizations of this source are followed, others are gaps (default: the source of the Flux Kustomization in PATH that applies PATH itself, as flux bootstrap writes it, else "+render.DefaultSourceRef.String()+")")
	fs.StringVar(&f.kustomizationFile, "kustomization-file", "", "render PATH as the Flux Kustomization in this file (its images, patches, targetNamespace, postBuild, …), like flux build kustomization")
	fs.StringArrayVar(&f.substituteFrom, "substitute-from", nil, "a YAML file of ConfigMaps and Secrets that live in the cluster, for postBuild.substituteFrom (repeatable)")
	fs.StringArrayVar(&f.sopsAgeKeys, "sops-age-key", nil, "an age identity file, as age-keygen writes it (it may hold several), to decrypt SOPS-encrypted Secrets and files with, as kustomize-controller does for Flux Kustomizations with spec.decryption.provider sops (repeatable; default: the file $"+sopsAgeKeyFileEnv+" names, if set)")
	fs.StringArrayVar(&f.sopsPGPKeys, "sops-pgp-key", nil, "a PGP private key file (armored or binary, without passphrase) to decrypt SOPS-encrypted Secrets and files with, like --sops-age-key (repeatable)")
	fs.StringArrayVar(&f.allowGaps, "allow-gap", nil, "let coverage gaps of this kind not block the revision (repeatable): "+strings.Join(gapKinds(), ", "))
	fs.BoolVar(&f.noRemoteBases, "no-remote-bases", false, "do not fetch remote kustomize bases, components and files (git repositories, http(s) URLs), as kustomize-controller's --no-remote-bases: a kustomization that refers to one is a RemoteBase gap (default: fetched with git and HTTP, as kustomize-controller does)")
	fs.BoolVar(&f.strict, "strict", false, "coverage gaps block by default")
	fs.BoolVar(&f.offline, "offline", false, "make no network request to render: no remote bases (as --no-remote-bases); HelmRelease charts come from the chart cache or are gaps")
	fs.StringVar(&f.chartCacheDir, "chart-cache-dir", defaultChartCacheDir(), "where HelmRelease charts are kept between runs, by digest (empty: in memory only); safe to share between concurrent runs")
	fs.StringVar(&f.kubeVersion, "kube-version", "", "the Kubernetes version charts see in .Capabilities.KubeVersion (default "+helm.DefaultKubeVersion+", as helm template)")
	fs.StringArrayVar(&f.apiVersions, "api-versions", nil, "an API version charts see in .Capabilities.APIVersions beyond Helm's defaults, as group/version or group/version/Kind (repeatable)")
	fs.StringVar(&f.git.url, "git-url", "", "check a revision of this git repository (https://, ssh://, or user@host:path), fetched shallow, instead of local directories: each PATH is a directory of the repository (as an Argo CD hook does with $ARGOCD_APP_SOURCE_REPO_URL)")
	fs.StringVar(&f.git.revision, "git-revision", "", "with --git-url, the branch, tag or commit SHA to check ($ARGOCD_APP_REVISION; default: the default branch)")
	fs.StringVar(&f.git.credentials, "git-credentials", "", "with --git-url, a directory holding the repository's credentials as files, as a Secret mounted there: username and password (or a token as password) for https; identity or sshPrivateKey, and known_hosts, for ssh (Flux's and Argo CD's Secret keys)")
	_ = fs.MarkDeprecated("strict", "coverage gaps block by default; use --allow-gap KIND to let a kind through")
}

// gapKinds lists the gap reasons --allow-gap takes: render's, and an
// admission rule pregate cannot predict.
func gapKinds() []string {
	out := make([]string, 0, len(render.GapReasons)+1)
	for _, r := range render.GapReasons {
		out = append(out, string(r))
	}
	return append(out, string(gate.AdmissionGap))
}

// allowedGaps returns the --allow-gap kinds, checked.
func (f *renderFlags) allowedGaps() ([]string, error) {
	for _, k := range f.allowGaps {
		if !slices.Contains(gapKinds(), k) {
			return nil, fmt.Errorf("--allow-gap %q: want one of %s", k, strings.Join(gapKinds(), ", "))
		}
	}
	return f.allowGaps, nil
}

// renderer reads the flags' files (--kustomization-file,
// --substitute-from) once, for every path.
func (f *renderFlags) renderer() (render.SourceRef, []render.Option, error) {
	var ref render.SourceRef
	if f.sourceRef != "" {
		var err error
		if ref, err = render.ParseSourceRef(f.sourceRef); err != nil {
			return ref, nil, fmt.Errorf("--source-ref: %w", err)
		}
	}
	if f.kubeVersion != "" {
		if _, err := common.ParseKubeVersion(f.kubeVersion); err != nil {
			return ref, nil, fmt.Errorf("--kube-version: %w", err)
		}
	}
	opts := []render.Option{render.WithHelm(f.helmOptions()...)}
	switch {
	case f.offline:
		opts = append(opts, render.WithoutRemoteBases("--offline"))
	case f.noRemoteBases:
		opts = append(opts, render.WithoutRemoteBases("--no-remote-bases"))
	default:
		noGitPrompt()
	}
	if f.kustomizationFile != "" {
		objs, err := readObjects(f.kustomizationFile)
		if err != nil {
			return ref, nil, fmt.Errorf("--kustomization-file: %w", err)
		}
		if len(objs) != 1 {
			return ref, nil, fmt.Errorf("--kustomization-file %s: want one Flux Kustomization, found %d objects", f.kustomizationFile, len(objs))
		}
		opts = append(opts, render.WithKustomization(objs[0]))
	}
	for _, file := range f.substituteFrom {
		objs, err := readObjects(file)
		if err != nil {
			return ref, nil, fmt.Errorf("--substitute-from: %w", err)
		}
		opts = append(opts, render.WithSubstituteFrom(objs))
	}
	keys, err := f.decryptionKeys()
	if err != nil {
		return ref, nil, err
	}
	if !keys.Empty() {
		opts = append(opts, render.WithDecryptionKeys(keys))
	}
	return ref, opts, nil
}

// helmOptions are the options HelmReleases render with: one chart cache
// for the run, on disk unless --chart-cache-dir is empty.
func (f *renderFlags) helmOptions() []helm.Option {
	charts := helm.NewCharts(helm.ChartsConfig{Dir: f.chartCacheDir, Offline: f.offline})
	return []helm.Option{helm.WithCharts(charts), helm.WithCapabilities(f.kubeVersion, f.apiVersions)}
}

// defaultChartCacheDir is the charts directory beside the verdict cache,
// or "" when there is no user cache directory.
func defaultChartCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "pregate", "charts")
}

// sopsAgeKeyFileEnv names the age key file sops reads by default.
const sopsAgeKeyFileEnv = "SOPS_AGE_KEY_FILE"

// decryptionKeys reads the --sops-age-key and --sops-pgp-key files; with
// no --sops-age-key, the age key file $SOPS_AGE_KEY_FILE names, as sops
// does. Errors name the file, never a key.
func (f *renderFlags) decryptionKeys() (sops.Keys, error) {
	ageFlag, ageFiles := "--sops-age-key", f.sopsAgeKeys
	if env := os.Getenv(sopsAgeKeyFileEnv); len(ageFiles) == 0 && env != "" {
		ageFlag, ageFiles = "$"+sopsAgeKeyFileEnv, []string{env}
	}
	var keys sops.Keys
	for _, set := range []struct {
		flag  string
		files []string
		parse func([]byte) (sops.Keys, error)
	}{{ageFlag, ageFiles, sops.ParseAgeKeys}, {"--sops-pgp-key", f.sopsPGPKeys, sops.ParsePGPKeys}} {
		for _, file := range set.files {
			b, err := os.ReadFile(file)
			if err != nil {
				return sops.Keys{}, fmt.Errorf("%s: %w", set.flag, err)
			}
			k, err := set.parse(b)
			if err != nil {
				return sops.Keys{}, fmt.Errorf("%s %s: %w", set.flag, file, err)
			}
			keys = keys.With(k)
		}
	}
	return keys, nil
}

// sources are the pipeline's sources for the paths: each source root
// (--root, or the git work tree holding a path) is copied once, as
// source-controller would archive it, and its paths rendered in the copy.
func (f *renderFlags) sources(paths []string) ([]pipeline.Source, error) {
	ref, opts, err := f.renderer()
	if err != nil {
		return nil, err
	}
	if f.git.url != "" {
		src, err := f.git.source(paths)
		if err != nil {
			return nil, err
		}
		src.Ref, src.Render = ref, opts
		return []pipeline.Source{src}, nil
	}
	if f.git.revision != "" || f.git.credentials != "" {
		return nil, errors.New("--git-revision and --git-credentials need --git-url")
	}
	var out []pipeline.Source
	byRoot := map[string]int{}
	for _, path := range paths {
		root, rel, err := f.locate(path)
		if err != nil {
			return nil, err
		}
		i, ok := byRoot[root]
		if !ok {
			i = len(out)
			byRoot[root] = i
			out = append(out, pipeline.Source{Root: root, Ref: ref, Render: opts, Open: func(ctx context.Context, dir string) (*sources.Tree, error) {
				return sources.Local(ctx, root, dir)
			}})
		}
		out[i].Paths = append(out[i].Paths, rel)
		out[i].Name = strings.Join(out[i].Paths, ",")
	}
	return out, nil
}

// source is the repository at the revision, its paths to render.
func (g gitFlags) source(paths []string) (pipeline.Source, error) {
	repo := sources.Git{URL: g.url, Revision: g.revision}
	if g.credentials != "" {
		auth, err := readGitCredentials(g.credentials)
		if err != nil {
			return pipeline.Source{}, fmt.Errorf("--git-credentials: %w", err)
		}
		repo.Auth = auth
	}
	var rels []string
	for _, p := range paths {
		rel := path.Clean(strings.TrimPrefix(filepath.ToSlash(p), "/"))
		if !filepath.IsLocal(rel) && rel != "." {
			return pipeline.Source{}, fmt.Errorf("%s: with --git-url, a PATH is a directory inside the repository", p)
		}
		rels = append(rels, rel)
	}
	return pipeline.Source{
		Name: strings.Join(rels, ","), Root: g.url, Paths: rels,
		Open: func(ctx context.Context, dir string) (*sources.Tree, error) {
			tree, err := sources.Clone(ctx, repo, dir)
			if err != nil {
				return nil, err
			}
			for _, rel := range rels {
				if fi, err := os.Stat(filepath.Join(tree.Root, filepath.FromSlash(rel))); err != nil || !fi.IsDir() {
					return nil, fmt.Errorf("git %s at %s: no directory %s", tree.Source, tree.Revision, rel)
				}
			}
			return tree, nil
		},
	}, nil
}

// readGitCredentials reads the files of a mounted Secret of git
// credentials: Flux's GitRepository keys (username, password, identity,
// known_hosts) or Argo CD's repository keys (username, password,
// sshPrivateKey). A key that is not there is not set.
func readGitCredentials(dir string) (sources.GitAuth, error) {
	if fi, err := os.Stat(dir); err != nil {
		return sources.GitAuth{}, err
	} else if !fi.IsDir() {
		return sources.GitAuth{}, fmt.Errorf("%s is not a directory", dir)
	}
	read := func(names ...string) ([]byte, error) {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err == nil {
				return b, nil
			}
			if !os.IsNotExist(err) {
				return nil, err
			}
		}
		return nil, nil
	}
	var auth sources.GitAuth
	for _, k := range []struct {
		names []string
		into  *[]byte
	}{
		{[]string{"identity", "sshPrivateKey"}, &auth.SSHKey},
		{[]string{"known_hosts"}, &auth.KnownHosts},
	} {
		b, err := read(k.names...)
		if err != nil {
			return auth, err
		}
		*k.into = b
	}
	for _, k := range []struct {
		name string
		into *string
	}{{"username", &auth.Username}, {"password", &auth.Password}} {
		b, err := read(k.name)
		if err != nil {
			return auth, err
		}
		*k.into = strings.TrimRight(string(b), "\r\n")
	}
	return auth, nil
}

// locate finds the source root holding path and path's place in it.
func (f *renderFlags) locate(path string) (root, rel string, err error) {
	if fi, err := os.Stat(path); err != nil {
		return "", "", err
	} else if !fi.IsDir() {
		return "", "", fmt.Errorf("%s is not a directory", path)
	}
	root = f.root
	if root == "" {
		if root, err = sources.WorkTree(path); err != nil {
			return "", "", err
		}
		if root == "" {
			root = outsideWorkTree(path)
		}
	}
	rel, err = relativeTo(root, path)
	if err != nil {
		return "", "", err
	}
	return root, filepath.ToSlash(rel), nil
}

// outsideWorkTree is the source root of a path outside any git work
// tree: the current directory when path is inside it (a Flux repository
// unpacked from a tarball is rendered from its root, so that its
// Kustomizations' paths resolve), else path itself.
func outsideWorkTree(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if _, err := relativeTo(wd, path); err == nil {
			return wd
		}
	}
	return path
}

func readObjects(file string) ([]map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return render.DecodeObjects(file, b)
}

// relativeTo returns path relative to root, refusing a path outside it.
func relativeTo(root, path string) (string, error) {
	ar, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	ap, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(ar); err == nil {
		ar = r
	}
	if p, err := filepath.EvalSymlinks(ap); err == nil {
		ap = p
	}
	rel, err := filepath.Rel(ar, ap)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("%s is not inside the source root %s", path, root)
	}
	return rel, nil
}

// noGitPrompt keeps the git kustomize runs to fetch remote bases from
// asking for credentials on the terminal, where it would wait past
// kustomize's timeout, unseen behind pregate's output: a base that needs
// credentials the git configuration does not give fails at once, and is a
// gap. GIT_TERMINAL_PROMPT set in the environment is left as it is.
func noGitPrompt() {
	if _, set := os.LookupEnv("GIT_TERMINAL_PROMPT"); !set {
		_ = os.Setenv("GIT_TERMINAL_PROMPT", "0")
	}
}
