package render

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pregate/pregate/render/sops"
)

// KeysFunc returns the SOPS keys to decrypt a Flux Kustomization's content
// with: in a cluster, those of the Secret its spec.decryption.secretRef
// names, read as kustomize-controller reads it (sops.KeysFromSecret).
// Render calls it at most once per Kustomization, only when something
// needs decrypting, possibly from several goroutines. Empty keys are no
// keys. An error does not fail the render: it is an EncryptedGap on the
// Kustomization, so it must not quote key material.
type KeysFunc func(ctx context.Context, kustomization Object) (sops.Keys, error)

// WithDecryption decrypts SOPS-encrypted content as kustomize-controller
// does, with the keys keys returns for each Flux Kustomization:
//
//   - for a Kustomization whose spec.decryption.provider is sops, the files
//     the secretGenerators (files and envs) and patches of its kustomization
//     files read are decrypted before the build, in memory: nothing
//     decrypted is written to disk. After the build, each object carrying
//     SOPS metadata, and each Secret holding an encrypted file, is decrypted
//     before postBuild substitution;
//   - a ConfigMap or Secret that postBuild.substituteFrom names and that is
//     still encrypted (the Kustomization applying it does not decrypt, or
//     could not) is decrypted with the keys of the Kustomization that
//     substitutes from it.
//
// What cannot be decrypted fails nothing: its values are unknown, the
// variables they would give stay in the output as "${VAR}", and what
// depends on them is an EncryptedGap naming the variable and the object
// holding it. A key that is given but does not open an object or file is
// an EncryptedGap naming it. Decrypted values appear in no gap or error
// (they are replaced by "***"); they are in Result.Objects, and in the
// images built from them.
//
// Default: nothing is decrypted, and encrypted values are unknown.
func WithDecryption(keys KeysFunc) Option {
	return func(o *options) error {
		if keys == nil {
			return errors.New("decryption: no keys function")
		}
		o.keys = keys
		return nil
	}
}

// WithDecryptionKeys is WithDecryption with the same keys for every
// Kustomization, as `pregate --sops-age-key` gives them.
func WithDecryptionKeys(keys sops.Keys) Option {
	return WithDecryption(func(context.Context, Object) (sops.Keys, error) { return keys, nil })
}

// decryptionProvider is the spec.decryption.provider kustomize-controller
// decrypts with.
const decryptionProvider = "sops"

// ciphertextMarker opens every value SOPS encrypts, and the MAC every
// encrypted document carries, whatever its format.
const ciphertextMarker = "ENC[AES256_GCM,"

// maxDecryptedFile bounds a file decrypted before the build, as
// kustomize-controller bounds it; larger files are left to kustomize as
// they are.
const maxDecryptedFile = 5 << 20

// minRedacted is the length under which a decrypted string is not
// redacted from messages: shorter ones would mangle every message.
const minRedacted = 4

// decryption is what a render learns while decrypting: the keys of each
// Kustomization, the gaps decryption left, the variables whose values
// stayed encrypted and the decrypted strings messages must not show. Builds
// may use it concurrently.
type decryption struct {
	keysFunc KeysFunc // nil: no keys

	mu      sync.Mutex
	keys    map[string]keysResult            // by Kustomization id
	gaps    []Gap                            // in the order found
	unknown map[string]map[string]unknownVar // Kustomization id → variable → where its value is
	plain   map[string]bool                  // decrypted strings
}

func newDecryption(keys KeysFunc) *decryption {
	return &decryption{keysFunc: keys, keys: map[string]keysResult{},
		unknown: map[string]map[string]unknownVar{}, plain: map[string]bool{}}
}

// decrypts says whether kustomize-controller decrypts a Kustomization's
// content.
func decrypts(ks map[string]any) bool {
	spec, _ := ks["spec"].(map[string]any)
	dec, _ := spec["decryption"].(map[string]any)
	return str(dec, "provider") == decryptionProvider
}

// keysFor returns the keys of u, asking the KeysFunc once per
// Kustomization; an error comes back on every call.
func (d *decryption) keysFor(ctx context.Context, u unit) (sops.Keys, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := d.keys[u.id]; ok {
		return k.keys, k.err
	}
	var k keysResult
	if d.keysFunc != nil {
		if got, err := d.keysFunc(ctx, Object{Content: u.ks, Origin: u.origin}); err != nil {
			k.err = err
		} else {
			k.keys = got
		}
	}
	d.keys[u.id] = k
	return k.keys, k.err
}

// keysResult is what the KeysFunc gave for a Kustomization.
type keysResult struct {
	keys sops.Keys
	err  error
}

// keysFor returns the keys of u for the build b; a KeysFunc error is a gap
// of the build, and no keys.
func (r *renderer) keysFor(ctx context.Context, u unit, b *built) sops.Keys {
	keys, err := r.dec.keysFor(ctx, u)
	if err != nil {
		g := Gap{Reason: EncryptedGap, Origin: u.origin, Object: u.id, Message: "reading its decryption keys: " + err.Error()}
		if !slices.ContainsFunc(b.gaps, func(h Gap) bool { return compareGaps(g, h) == 0 }) {
			b.gaps = append(b.gaps, g)
		}
	}
	return keys
}

// commit records what the build b of u found besides its objects, once the
// build is used: its gaps, and the variables whose values are not known.
func (d *decryption) commit(u unit, b built) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gaps = append(d.gaps, b.gaps...)
	if len(b.unknown) > 0 {
		d.unknown[u.id] = b.unknown
	}
}

// whyNot says in a few words why an object's encrypted values stay
// unknown.
func whyNot(keys sops.Keys, err error) string {
	var nk *sops.NoKeyError
	switch {
	case keys.Empty():
		return "SOPS-encrypted; no key given"
	case errors.As(err, &nk):
		return "SOPS-encrypted; none of the keys given opens it"
	default:
		return "SOPS-encrypted; it does not decrypt"
	}
}

// opener returns the function that decrypts u's substituteFrom objects
// with u's keys.
func (r *renderer) opener(ctx context.Context, u unit, b *built) opener {
	return func(obj map[string]any) (map[string]any, string) {
		keys := r.keysFor(ctx, u, b)
		if keys.Empty() {
			return obj, whyNot(keys, nil)
		}
		out, err := keys.Decrypt(obj)
		if err != nil {
			return obj, whyNot(keys, err)
		}
		r.dec.rememberObject(obj, out)
		return out, ""
	}
}

// buildUnit builds gen's directory with kustomize, which reads the
// generated kustomization file from memory. When u decrypts, the files its
// kustomization files' secretGenerators and patches read are decrypted
// first, and kustomize reads them from memory too: the tree on disk is
// never written, and never holds decrypted content.
func (r *renderer) buildUnit(ctx context.Context, u unit, gen generated, rc reach, b *built) (resmap.ResMap, error) {
	files := map[string][]byte{}
	if decrypts(u.ks) {
		files = r.decryptSources(ctx, u, gen, b)
	}
	files[gen.file] = gen.manifest
	return r.kustomizeBuild(ctx, gen.dir, rc, func(fs filesys.FileSystem) filesys.FileSystem {
		return overlayFS{FileSystem: fs, files: files}
	})
}

// sourceFile is a file kustomize-controller decrypts before the build.
type sourceFile struct {
	path string // absolute, inside the root
	name string // the name its format is decided by
	env  bool   // a secretGenerator envs file: dotenv unless named otherwise
	what string // how the kustomization uses it, for messages
}

// decryptSources decrypts the files kustomize-controller's DecryptSources
// decrypts, and returns the decrypted content by path. u's keys are asked
// for only when a file holds SOPS content. Without keys the files are
// built as they are, their values unknown; a file the keys do not open is
// a gap.
func (r *renderer) decryptSources(ctx context.Context, u unit, gen generated, b *built) map[string][]byte {
	files := map[string][]byte{}
	seen := map[string]bool{}
	for _, f := range sourceFiles(r.root, gen) {
		if seen[f.path] {
			continue
		}
		seen[f.path] = true
		fi, err := os.Lstat(f.path)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxDecryptedFile {
			continue // kustomize reports what it cannot read, in its own words
		}
		data, err := os.ReadFile(f.path)
		if err != nil || !bytes.Contains(data, []byte(ciphertextMarker)) {
			continue
		}
		keys := r.keysFor(ctx, u, b)
		if keys.Empty() {
			return files
		}
		decrypt := keys.DecryptFile
		if f.env {
			decrypt = keys.DecryptEnvFile
		}
		plain, err := decrypt(f.name, data)
		rel, _ := filepath.Rel(r.root, f.path)
		rel = filepath.ToSlash(rel)
		if err != nil {
			b.gaps = append(b.gaps, Gap{Reason: EncryptedGap, Origin: Origin{File: rel, Chain: u.chain}, Object: u.id,
				Message: fmt.Sprintf("%s %s: %v", f.what, rel, err)})
			continue
		}
		if !bytes.Equal(plain, data) {
			r.dec.rememberFile(data, plain)
			files[f.path] = plain
		}
	}
	return files
}

// sourceFiles lists, as kustomize-controller's DecryptSources walks them,
// the files read by the secretGenerators (files and envs) and patches of
// the kustomization file generated for gen's directory and of those its
// resources and components reach, inside root.
func sourceFiles(root string, gen generated) []sourceFile {
	var out []sourceFile
	seen := map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		_, k, err := gen.read(dir)
		if err != nil || k == nil {
			return
		}
		add := func(p, name, what string, env bool) {
			if abs, ok := under(root, dir, p); ok {
				out = append(out, sourceFile{path: abs, name: name, env: env, what: what})
			}
		}
		for _, gen := range k.SecretGenerator {
			for _, src := range gen.FileSources {
				key, p, found := strings.Cut(src, "=")
				if !found {
					p = key
				}
				add(p, key, "secretGenerator file", false)
			}
			for _, p := range gen.EnvSources {
				add(p, p, "secretGenerator envs file", true)
			}
		}
		for _, p := range k.Patches {
			if p.Path != "" && !strings.Contains(p.Path, "://") {
				add(p.Path, p.Path, "patch", false)
			}
		}
		for _, e := range append(append([]string(nil), k.Resources...), k.Components...) {
			if sub, ok := under(root, dir, e); ok {
				if fi, err := os.Stat(sub); err == nil && fi.IsDir() {
					walk(sub)
				}
			}
		}
	}
	walk(gen.dir)
	return out
}

// under resolves a kustomization entry, relative to dir or absolute, to a
// path inside root (symlinks resolved within it); false for one outside.
func under(root, dir, entry string) (string, bool) {
	if entry == "" {
		return "", false
	}
	p := entry
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if !isInside(root, p) {
		return "", false
	}
	rel, _ := filepath.Rel(root, p) // isInside has made sure it resolves
	abs, err := joinUnder(root, filepath.ToSlash(rel))
	return abs, err == nil
}

// overlayFS is a file system whose files at the given paths read as the
// given content.
type overlayFS struct {
	filesys.FileSystem
	files map[string][]byte
}

// ReadFile reads the overlaid content of path, symlinks resolved, else the
// file.
func (o overlayFS) ReadFile(path string) ([]byte, error) {
	if b, ok := o.files[path]; ok {
		return bytes.Clone(b), nil
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		if b, ok := o.files[resolved]; ok {
			return bytes.Clone(b), nil
		}
	}
	return o.FileSystem.ReadFile(path)
}

// decryptResource decrypts a built object as kustomize-controller's
// DecryptResource does, when u decrypts: an object carrying SOPS metadata
// whole, a Secret's data values holding encrypted files each. Without keys
// it is left as it is (its values are unknown); keys that do not open it
// are a gap.
func (r *renderer) decryptResource(ctx context.Context, u unit, res *resource.Resource, file string, b *built) error {
	if !decrypts(u.ks) {
		return nil
	}
	content, err := res.Map()
	if err != nil {
		return fmt.Errorf("reading %s/%s: %w", res.GetKind(), res.GetName(), err)
	}
	if !holdsCiphertext(content) {
		return nil
	}
	keys := r.keysFor(ctx, u, b)
	if keys.Empty() {
		return nil
	}
	out, err := keys.Decrypt(content)
	if err != nil {
		o := Object{Content: content}
		b.gaps = append(b.gaps, Gap{Reason: EncryptedGap, Origin: Origin{File: file, Chain: u.chain}, Object: o.ID(), Message: err.Error()})
		return nil //nolint:nilerr // a gap, not a failure: the object stays encrypted, its values unknown
	}
	r.dec.rememberObject(content, out)
	data, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encoding decrypted %s/%s: %w", res.GetKind(), res.GetName(), err)
	}
	if err := res.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("decoding decrypted %s/%s: %w", res.GetKind(), res.GetName(), err)
	}
	return nil
}

// isCiphertext says whether a value is, or holds, SOPS ciphertext.
func isCiphertext(s string) bool { return strings.Contains(s, ciphertextMarker) }

// holdsCiphertext says whether an object has SOPS metadata, or data or
// stringData values that hold ciphertext (base64-encoded or not).
func holdsCiphertext(obj map[string]any) bool {
	if sops.Encrypted(obj) {
		return true
	}
	for _, field := range []string{"data", "stringData"} {
		m, _ := obj[field].(map[string]any)
		for _, v := range m {
			s, _ := v.(string)
			if isCiphertext(s) {
				return true
			}
			if b, err := base64.StdEncoding.DecodeString(s); err == nil && isCiphertext(string(b)) {
				return true
			}
		}
	}
	return false
}

// rememberObject records the strings decryption revealed in an object:
// every string that differs from the encrypted object's at the same place
// (its identity aside), and the decoded data values of a Secret.
func (d *decryption) rememberObject(before, after map[string]any) {
	var found []string
	var walk func(b, a any, path string)
	walk = func(b, a any, path string) {
		switch a := a.(type) {
		case map[string]any:
			bm, _ := b.(map[string]any)
			for k, v := range a {
				walk(bm[k], v, path+"."+k)
			}
		case []any:
			bl, _ := b.([]any)
			for i, v := range a {
				var bv any
				if i < len(bl) {
					bv = bl[i]
				}
				walk(bv, v, path)
			}
		case string:
			if bs, ok := b.(string); ok && bs == a {
				return
			}
			switch path {
			case ".apiVersion", ".kind", ".metadata.name", ".metadata.namespace":
				return
			}
			found = append(found, a)
			if strings.HasPrefix(path, ".data.") {
				if dec, err := base64.StdEncoding.DecodeString(a); err == nil {
					found = append(found, revealed(nil, dec)...)
				}
			}
		}
	}
	walk(before, after, "")
	d.remember(found)
}

// rememberFile records the strings decrypting a file revealed.
func (d *decryption) rememberFile(before, after []byte) {
	d.remember(revealed(before, after))
}

// revealed returns the lines of after that are not lines of before, and
// the value part of each ("KEY=value", "key: value"), and after whole.
func revealed(before, after []byte) []string {
	had := map[string]bool{}
	for line := range strings.Lines(string(before)) {
		had[strings.TrimSpace(line)] = true
	}
	out := []string{strings.TrimSpace(string(after))}
	for line := range strings.Lines(string(after)) {
		line = strings.TrimSpace(line)
		if had[line] {
			continue
		}
		out = append(out, line)
		if i := strings.IndexAny(line, "=:"); i >= 0 {
			out = append(out, strings.Trim(line[i+1:], " \t\"',"))
		}
	}
	return out
}

// remember adds decrypted strings to redact.
func (d *decryption) remember(values []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, v := range values {
		if len(v) >= minRedacted {
			d.plain[v] = true
		}
	}
}

// redact replaces every decrypted string in msg by "***", longest first.
func (d *decryption) redact(msg string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.plain) == 0 {
		return msg
	}
	values := make([]string, 0, len(d.plain))
	for v := range d.plain {
		if strings.Contains(msg, v) {
			values = append(values, v)
		}
	}
	if len(values) == 0 {
		return msg
	}
	slices.SortFunc(values, func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	for _, v := range values {
		msg = strings.ReplaceAll(msg, v, "***")
	}
	return msg
}

// redactErr returns err, or an error with the same message less the
// decrypted strings when it holds any; an *Error stays an *Error.
func (d *decryption) redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if d.redact(msg) == msg {
		return err
	}
	var re *Error
	if errors.As(err, &re) {
		return &Error{Path: re.Path, Object: re.Object, File: re.File,
			Err: errors.New(d.redact(relativize(re.Err.Error(), re.root)))}
	}
	return errors.New(d.redact(msg))
}

// finishGaps adds the gaps decryption left to gaps, once each, and takes
// the decrypted strings out of every message.
func (d *decryption) finishGaps(gaps []Gap) []Gap {
	d.mu.Lock()
	own := slices.Clone(d.gaps)
	d.mu.Unlock()
	for _, g := range own {
		if !slices.ContainsFunc(gaps, func(h Gap) bool { return compareGaps(g, h) == 0 }) {
			gaps = append(gaps, g)
		}
	}
	for i := range gaps {
		gaps[i].Message = d.redact(gaps[i].Message)
	}
	return gaps
}
