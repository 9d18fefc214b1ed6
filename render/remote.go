package render

// Remote bases, as kustomize-controller builds them. Its --no-remote-bases
// flag is off by default, and it calls
// fluxkustomize.SecureBuild(root, dir, !noRemoteBases): kustomize fetches a
// remote git base by running the git executable (git init, fetch --depth=1
// REF, checkout, submodule update) into a directory of its own under the
// temporary directory, which SecureBuild's file system lets it read besides
// the source root and which kustomize removes after the build; a remote
// file (an http(s) URL) is fetched with an HTTP GET. A cloned base is
// confined to its clone (kustomize's RestrictionRootOnly and its repository
// containment check): it cannot read the revision's files nor the host's.
// No address is refused: a base on a loopback or private address is a
// self-hosted git server, and is fetched as kustomize-controller would
// fetch it; the git executable uses the environment's git configuration
// and credentials.
//
// Rendering with remote bases disabled goes further than kustomize, which
// still fetches http(s) files (patches, generator files, …) when told not
// to fetch remote bases: every remote reference of a kustomization is
// refused before the build, which then makes no network request at all.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/render/internal/kustomizelock"
)

// WithoutRemoteBases renders with remote kustomize bases, components and
// files refused, as kustomize-controller's --no-remote-bases flag does: a
// kustomization that refers to one is a RemoteBaseGap, and rendering makes
// no network request. by says what disabled them, for the gap's message (a
// flag: "--offline"). Default: remote bases are fetched while building, as
// kustomize-controller does by default; one that cannot be fetched or
// built is a RemoteBaseGap naming it and the cause.
func WithoutRemoteBases(by string) Option {
	return func(o *options) error {
		o.noRemoteBases, o.noRemoteBasesBy = true, by
		return nil
	}
}

// remoteRef is a remote reference in a kustomization file.
type remoteRef struct {
	file  string // the kustomization file, relative to the source root
	entry string // as written
}

// remotes are the remote references of the kustomizations a unit builds.
type remotes []remoteRef

// reach is what the kustomization files a unit builds refer to, as far as
// the build's sharing of kustomize's state goes.
type reach struct {
	// remotes are the remote references.
	remotes remotes
	// openAPI: one of them sets kustomize's OpenAPI schema (its openapi
	// field).
	openAPI bool
}

// exclusive says whether the build must run alone (kustomizelock): it sets
// the OpenAPI schema, or builds remote kustomizations, which may.
func (rc reach) exclusive() bool { return rc.openAPI || len(rc.remotes) > 0 }

// remoteBases lists the remote references of the kustomizations the unit
// gen was generated for builds, and refuses the first when remote bases are
// disabled.
func (r *renderer) remoteBases(gen generated) (reach, error) {
	rc, err := findRemotes(r.root, gen)
	if err != nil {
		return reach{}, fmt.Errorf("looking for remote bases: %w", err)
	}
	if len(rc.remotes) > 0 && r.opts.noRemoteBases {
		return reach{}, &remoteBaseError{File: rc.remotes[0].file, Entry: rc.remotes[0].entry, DisabledBy: r.opts.noRemoteBasesBy}
	}
	return rc, nil
}

// kustomizeBuild runs kustomize on dir as kustomize-controller does: on
// SecureBuild's file system for the source root, which lets kustomize read
// its clones of remote bases unless they are disabled, seen through wrap.
// A build that may set kustomize's OpenAPI schema runs alone, through
// fluxcd/pkg/kustomize's Build, which resets the schema around it as
// kustomize-controller does; the others share one loaded schema and run at
// the same time (kustomizelock).
//
// The kustomize API takes no context: when rc has remote bases to fetch
// the build runs aside, and a done ctx returns at once while the build goes
// on until its fetch ends (kustomize gives up on a git command after 27
// seconds, or the URL's ?timeout=; an HTTP GET has no bound of
// kustomize's), its result dropped. Until then it holds the lock, so other
// builds wait for it, as in kustomize-controller.
func (r *renderer) kustomizeBuild(ctx context.Context, dir string, rc reach, wrap func(filesys.FileSystem) filesys.FileSystem) (resmap.ResMap, error) {
	root, allow := r.root, !r.opts.noRemoteBases
	build := func() (resmap.ResMap, error) {
		fs, err := securefs.MakeFsOnDiskSecure(root)
		if allow {
			fs, err = securefs.MakeFsOnDiskSecureBuild(root)
		}
		if err != nil {
			return nil, err
		}
		if rc.exclusive() {
			defer kustomizelock.Exclusive()()
			return fluxkustomize.Build(wrap(fs), dir)
		}
		defer kustomizelock.Shared()()
		return sharedBuild(wrap(fs), dir)
	}
	if len(rc.remotes) == 0 {
		return build()
	}
	type built struct {
		m   resmap.ResMap
		err error
	}
	done := make(chan built, 1)
	go func() {
		m, err := build()
		done <- built{m, err}
	}()
	select {
	case b := <-done:
		return b.m, b.err
	case <-ctx.Done():
		return nil, fmt.Errorf("fetching remote bases: %w", context.Cause(ctx))
	}
}

// sharedBuild is fluxcd/pkg/kustomize's Build for a build that reads the
// default OpenAPI schema and sets none: the same kustomize options and the
// same recovery from a kustomize panic, without its lock and schema reset,
// which kustomizelock.Shared stands in for.
func sharedBuild(fs filesys.FileSystem, dir string) (m resmap.ResMap, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("recovered from kustomize build panic: %v", p)
		}
	}()
	return krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	}).Run(fs, dir)
}

// explain returns the error of a build that failed on a remote reference
// as a *remoteBaseError naming it; other errors as they are. kustomize
// names the entry it was accumulating, as written, in its errors.
func (rs remotes) explain(err error) error {
	msg := err.Error()
	var found *remoteRef
	for i := range rs {
		if strings.Contains(msg, rs[i].entry) && (found == nil || len(rs[i].entry) > len(found.entry)) {
			found = &rs[i]
		}
	}
	if found == nil {
		return err
	}
	return &remoteBaseError{File: found.file, Entry: found.entry, Err: err}
}

// fileOf returns the kustomization file an object from a remote base came
// through, given its origin annotation's repo and path: the file naming
// that repository or URL, else the one file naming remote references,
// else "".
func (rs remotes) fileOf(repo, p string) string {
	target := repo
	if target == "" {
		target, _ = remoteFileOrigin(p)
	}
	target = normalizeRemote(target)
	for _, ref := range rs {
		e := normalizeRemote(ref.entry)
		if rest, ok := strings.CutPrefix(e, target); ok && (rest == "" || rest[0] == '/' || rest[0] == '?') {
			return ref.file
		}
	}
	if len(rs) > 0 && !slices.ContainsFunc(rs, func(ref remoteRef) bool { return ref.file != rs[0].file }) {
		return rs[0].file
	}
	return ""
}

// normalizeRemote puts a remote reference in the form kustomize's origin
// annotations write it: no git:: prefix, github.com/… as https, no
// credentials and no repeated slashes.
func normalizeRemote(s string) string {
	if len(s) >= 5 && strings.EqualFold(s[:5], "git::") {
		s = s[5:]
	}
	if strings.HasPrefix(strings.ToLower(s), "github.com/") {
		s = "https://" + s
	}
	s = redactURLs(s)
	for strings.Contains(s, "//") {
		s = strings.ReplaceAll(s, "//", "/")
	}
	return s
}

// isRemoteOrigin says whether an origin annotation is of an object kustomize
// fetched: from a git repository, or a remote file.
func isRemoteOrigin(repo, p string) bool {
	_, file := remoteFileOrigin(p)
	return repo != "" || file
}

// remoteFileOrigin finds the URL in the origin path of an object from a
// remote file: kustomize writes it with its slashes collapsed, after the
// path of the kustomization naming it ("sub/https:/host/app.yaml").
func remoteFileOrigin(p string) (string, bool) {
	lower := strings.ToLower(p)
	for _, scheme := range []string{"http:/", "https:/"} {
		for i := 0; ; {
			j := strings.Index(lower[i:], scheme)
			if j < 0 {
				break
			}
			if i+j == 0 || lower[i+j-1] == '/' {
				return p[i+j:], true
			}
			i += j + 1
		}
	}
	return "", false
}

// remoteBaseError is a kustomization that refers to a remote base,
// component or file that was not fetched: remote bases are disabled, or
// fetching or building it failed.
type remoteBaseError struct {
	File  string // the kustomization file naming it, relative to the source root
	Entry string // as written
	// DisabledBy says what disabled remote bases, when they are.
	DisabledBy string
	// Err is why the build failed, when remote bases are fetched.
	Err error
}

// The bounds of what a remoteBaseError's message quotes.
const (
	maxEntryLen = 256
	maxCauseLen = 512
)

func (e *remoteBaseError) Error() string {
	entry := gate.Clip(redactURLs(e.Entry), maxEntryLen)
	if e.Err == nil {
		by := ""
		if e.DisabledBy != "" {
			by = " by " + e.DisabledBy
		}
		return fmt.Sprintf("%s refers to remote %s; remote bases are disabled%s", e.File, entry, by)
	}
	return fmt.Sprintf("%s refers to remote %s, which could not be fetched or built: %s", e.File, entry, remoteCause(e.Err, e.Entry))
}

func (e *remoteBaseError) Unwrap() error { return e.Err }

// remoteCause is kustomize's error for a remote reference, for a message:
// without the accumulation prefixes that repeat the entry, without
// credentials, with kustomize's random clone directories as <clone>, on
// one line and bounded.
func remoteCause(err error, entry string) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "'"+entry+"': "); ok {
		msg = rest
	}
	msg = strings.TrimPrefix(msg, "URL is a git repository': ")
	msg = cloneDirs().ReplaceAllString(msg, "<clone>")
	msg = strings.Join(strings.Fields(redactURLs(msg)), " ")
	return gate.Clip(msg, maxCauseLen)
}

// userinfo matches the credentials of a URL: scheme://user:password@.
var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s'"]*@`)

// redactURLs removes the credentials of every URL in s.
func redactURLs(s string) string {
	return userinfo.ReplaceAllString(s, "$1")
}

// cloneDirs matches the directories kustomize clones remote bases into
// (filesys.NewTmpConfirmedDir: $TMPDIR/kustomize-NNN).
func cloneDirs() *regexp.Regexp {
	dirs := []string{regexp.QuoteMeta(filepath.Join(os.TempDir(), "kustomize-"))}
	if prefix, err := fluxfsPrefix(); err == nil {
		dirs = append(dirs, regexp.QuoteMeta(prefix))
	}
	return regexp.MustCompile(`(?:` + strings.Join(dirs, "|") + `)[0-9]+`)
}

// fluxfsPrefix is $TMPDIR/kustomize- with symbolic links resolved, as
// SecureBuild's file system lets kustomize read it.
func fluxfsPrefix() (string, error) {
	dir, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kustomize-"), nil
}

func remoteFile(err error) string {
	var re *remoteBaseError
	if errors.As(err, &re) {
		return re.File
	}
	return ""
}

// findRemotes walks the kustomization files a build of the unit gen was
// generated for reads, from gen's own, says whether one sets the OpenAPI
// schema, and lists every remote reference in them, in the order kustomize
// meets them: the
// resources, bases, components, generators, transformers and validators
// that are not local (git repositories or URLs), and the files kustomize
// loads (patches, CRDs, configurations, replacements, generator sources,
// the OpenAPI schema) given as http(s) URLs.
func findRemotes(root string, gen generated) (reach, error) {
	seen := map[string]bool{}
	var out reach
	var walk func(dir string) error
	walk = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		kfile, k, err := gen.read(dir)
		if err != nil || kfile == "" || k == nil {
			return err // no kustomization file: a plain directory
		}
		if len(k.OpenAPI) > 0 {
			out.openAPI = true
		}
		rel, _ := filepath.Rel(root, kfile)
		add := func(e string) { out.remotes = append(out.remotes, remoteRef{file: filepath.ToSlash(rel), entry: e}) }
		for _, e := range kustomizationDirs(k) {
			local, ok := localDir(root, dir, e)
			switch {
			case ok:
				if err := walk(local); err != nil {
					return err
				}
			case local == "" && isRemote(e):
				add(e)
			}
		}
		for _, f := range kustomizationFiles(k) {
			if isRemoteFile(f) {
				add(f)
			}
		}
		return nil
	}
	// The generated kustomization holds the Flux Kustomization's own
	// components, as kustomize-controller adds them.
	if err := walk(gen.dir); err != nil {
		return reach{}, err
	}
	return out, nil
}

// localDir resolves an entry of the kustomization in dir: ok when it is a
// directory inside root, to walk; local is "" when nothing local has that
// name, and it may be remote.
func localDir(root, dir, e string) (local string, ok bool) {
	local = filepath.Join(dir, filepath.FromSlash(e))
	fi, err := os.Stat(local)
	if err != nil {
		return "", false
	}
	return local, fi.IsDir() && isInside(root, local)
}

// kustomizationDirs are the entries of k that may be directories, and so
// git repositories: kustomize tries them as a file, then as a base.
func kustomizationDirs(k *kustypes.Kustomization) []string {
	return slices.Concat(k.Resources, k.Components, k.Bases, k.Generators, k.Transformers, k.Validators) //nolint:staticcheck // Bases is deprecated but still read by kustomize.
}

// kustomizationFiles are the entries of k kustomize loads as files, which
// it fetches when they are http(s) URLs.
func kustomizationFiles(k *kustypes.Kustomization) []string {
	files := slices.Concat(k.Crds, k.Configurations)
	for _, p := range k.PatchesStrategicMerge { //nolint:staticcheck // deprecated but still read by kustomize.
		files = append(files, string(p))
	}
	for _, p := range slices.Concat(k.Patches, k.PatchesJson6902) { //nolint:staticcheck // deprecated but still read by kustomize.
		files = append(files, p.Path)
	}
	for _, r := range k.Replacements {
		files = append(files, r.Path)
	}
	var sources []kustypes.KvPairSources
	for _, g := range k.ConfigMapGenerator {
		sources = append(sources, g.KvPairSources)
	}
	for _, g := range k.SecretGenerator {
		sources = append(sources, g.KvPairSources)
	}
	for _, s := range sources {
		files = append(append(files, s.EnvSources...), s.EnvSource)
		for _, f := range s.FileSources {
			// [key=]path; a URL's query may hold a '=' too.
			_, p, _ := strings.Cut(f, "=")
			files = append(files, f, p)
		}
	}
	return append(files, k.OpenAPI["path"])
}

func readKustomization(dir string) (string, *kustypes.Kustomization, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		var k kustypes.Kustomization
		if err := yaml.Unmarshal(b, &k); err != nil {
			// kustomize reports this, in its own words, when it builds.
			return "", nil, nil //nolint:nilerr // not this walk's error to report
		}
		return p, &k, nil
	}
	return "", nil, nil
}

// isRemote says whether a kustomization entry that is not a local file
// names something kustomize would fetch: a URL, a git or OCI reference, or a
// host/path form.
func isRemote(entry string) bool {
	if strings.Contains(entry, "://") || !fluxkustomize.IsLocalRelativePath(entry) {
		return true
	}
	first, _, found := strings.Cut(entry, "/")
	return found && strings.Contains(first, ".") && !strings.HasPrefix(first, ".")
}

// isRemoteFile says whether kustomize fetches a file entry over HTTP, as
// its loader decides.
func isRemoteFile(entry string) bool {
	u, err := url.Parse(entry)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}
