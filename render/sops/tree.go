package sops

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The in-memory model of a SOPS document mirrors the one sops itself uses
// (github.com/getsops/sops/v3, sops.go): an ordered list of key/value items
// per document, with comments kept as items of their own, because the
// encryption rules and the MAC depend on the order of values and on the
// comments that precede them.

// comment is a comment line of a YAML, dotenv or INI document. Its field
// names matter: sops emits a value that decrypts to a comment (type
// "comment") as a structure, and JSON and YAML spell these field names.
type comment struct {
	Value  string
	Inline bool
}

// item is one entry of a branch: a key (a string, a comment, or whatever
// scalar a YAML key decodes to) and its value.
type item struct {
	key   any
	value any
}

// branch is an ordered mapping, one document of a file or a nested mapping.
type branch []item

// document is a loaded SOPS file: its data documents and its metadata.
type document struct {
	branches []branch
	meta     metadata
}

// rules decides which values of a document are encrypted, as sops'
// Tree.shouldBeEncrypted does from the metadata's suffix, regex and comment
// rules. At most one rule is set (metadata validation enforces it).
type rules struct {
	unencryptedSuffix string
	encryptedSuffix   string
	unencryptedRegex  *rule
	encryptedRegex    *rule
	unencryptedCmtRe  *rule
	encryptedCmtRe    *rule
}

// rule is a regular expression from the metadata. sops ignores a pattern
// that does not compile (regexp.Match returns false), so an invalid pattern
// matches nothing here either.
type rule struct {
	re *regexp.Regexp
}

// newRule compiles pattern; an empty pattern is no rule.
func newRule(pattern string) *rule {
	if pattern == "" {
		return nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return &rule{}
	}
	return &rule{re: re}
}

// match reports whether s matches the rule.
func (r *rule) match(s string) bool {
	return r.re != nil && r.re.MatchString(s)
}

// anyMatch reports whether any of ss matches the rule.
func (r *rule) anyMatch(ss []string) bool {
	for _, s := range ss {
		if r.match(s) {
			return true
		}
	}
	return false
}

// encrypted reports whether the value at path (with the comments that are
// active at each nesting level) is encrypted. isComment is set when the
// value is itself a comment, which was pushed onto the last level already.
func (r *rules) encrypted(path []string, comments [][]string, isComment bool) bool {
	enc := r.unencryptedSuffix == "" || !anySuffix(path, r.unencryptedSuffix)
	if r.encryptedSuffix != "" {
		enc = anySuffix(path, r.encryptedSuffix)
	}
	if r.unencryptedRegex != nil && r.unencryptedRegex.anyMatch(path) {
		enc = false
	}
	if r.encryptedRegex != nil {
		enc = r.encryptedRegex.anyMatch(path)
	}
	if r.unencryptedCmtRe != nil && anyComment(comments, r.unencryptedCmtRe, false) {
		enc = false
	}
	if r.encryptedCmtRe != nil {
		enc = anyComment(comments, r.encryptedCmtRe, isComment)
	}
	return enc
}

// anySuffix reports whether any path component ends with suffix.
func anySuffix(path []string, suffix string) bool {
	for _, p := range path {
		if strings.HasSuffix(p, suffix) {
			return true
		}
	}
	return false
}

// anyComment reports whether an active comment matches r. With skipSelf the
// last comment of the innermost level (the comment being decided on) is not
// considered: a comment that matches the encrypted-comment rule stays clear.
func anyComment(comments [][]string, r *rule, skipSelf bool) bool {
	last := len(comments) - 1
	for i, level := range comments {
		for j, c := range level {
			if skipSelf && i == last && j == len(level)-1 {
				continue
			}
			if r.match(c) {
				return true
			}
		}
	}
	return false
}

// leafFunc is called for every scalar or comment of a document, with the
// path of keys leading to it and the active comments. It returns the
// replacement value.
type leafFunc func(v any, path []string, comments [][]string) (any, error)

// walker visits the leaves of a document in document order, the order in
// which sops computes its MAC.
type walker struct {
	leaf  leafFunc
	depth int
}

// errUnknownType is a value the walk cannot handle.
var errUnknownType = errors.New("value of a type sops cannot walk")

// value walks one value.
func (w *walker) value(v any, path []string, comments [][]string) (any, error) {
	switch v := v.(type) {
	case string, int, bool, float64, time.Time, comment:
		return w.leaf(v, path, comments)
	case []byte:
		return w.leaf(string(v), path, comments)
	case branch:
		return w.branch(v, path, comments)
	case []any:
		return w.list(v, path, comments)
	case nil:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: %T at %s", errUnknownType, v, pathString(path))
	}
}

// enter guards the nesting depth of the walk.
func (w *walker) enter() error {
	w.depth++
	if w.depth > maxDepth {
		return errTooDeep
	}
	return nil
}

// list walks a sequence; comments in it apply to the values that follow.
func (w *walker) list(in []any, path []string, comments [][]string) ([]any, error) {
	if err := w.enter(); err != nil {
		return nil, err
	}
	defer func() { w.depth-- }()
	comments = pushLevel(comments)
	top := len(comments) - 1
	for i, v := range in {
		c, isComment := v.(comment)
		if isComment {
			comments[top] = append(comments[top], c.Value)
		}
		nv, err := w.value(v, path, comments)
		if err != nil {
			return nil, err
		}
		in[i] = nv
		if !isComment {
			comments[top] = nil
		}
	}
	return in, nil
}

// branch walks a mapping; comment keys apply to the entries that follow.
func (w *walker) branch(in branch, path []string, comments [][]string) (branch, error) {
	if err := w.enter(); err != nil {
		return nil, err
	}
	defer func() { w.depth-- }()
	comments = pushLevel(comments)
	top := len(comments) - 1
	for i, it := range in {
		if c, ok := it.key.(comment); ok {
			comments[top] = append(comments[top], c.Value)
			nk, err := w.commentKey(c, path, comments)
			if err != nil {
				return nil, err
			}
			in[i].key = nk
			continue
		}
		c, valueIsComment := it.value.(comment)
		if valueIsComment {
			comments[top] = append(comments[top], c.Value)
		}
		key, ok := it.key.(string)
		if !ok {
			return nil, fmt.Errorf("a key of type %T at %s: only string keys are supported", it.key, pathString(path))
		}
		nv, err := w.value(it.value, appendPath(path, key), comments)
		if err != nil {
			return nil, err
		}
		in[i].value = nv
		if !valueIsComment {
			comments[top] = nil
		}
	}
	return in, nil
}

// commentKey walks a comment that is a key of a mapping; it stays a comment.
func (w *walker) commentKey(c comment, path []string, comments [][]string) (comment, error) {
	nv, err := w.value(c, path, comments)
	if err != nil {
		return comment{}, err
	}
	switch nv := nv.(type) {
	case comment:
		return nv, nil
	case string:
		return comment{Value: nv, Inline: c.Inline}, nil
	default:
		return comment{}, fmt.Errorf("a comment at %s decrypted to a %T", pathString(path), nv)
	}
}

// pushLevel adds a nesting level of active comments, without touching the
// caller's levels.
func pushLevel(comments [][]string) [][]string {
	out := make([][]string, len(comments), len(comments)+1)
	copy(out, comments)
	return append(out, nil)
}

// appendPath returns path with key appended, never sharing storage.
func appendPath(path []string, key string) []string {
	out := make([]string, len(path), len(path)+1)
	copy(out, path)
	return append(out, key)
}

// pathString renders a path of keys for error messages. Keys are stored in
// clear in SOPS files, so they are no secret; they are clipped to keep
// errors short.
func pathString(path []string) string {
	if len(path) == 0 {
		return "the top level"
	}
	return clip(strings.Join(path, "."), 200)
}
