// Package config reads pregate's policy files: YAML holding TrustPolicy and
// TrustRoot objects of gate.pregate.dev/v1alpha1, the same objects the
// controller reads as custom resources. It decodes them strictly, applies
// their defaults and validates them, reporting every problem with the file,
// the object and the field, as kubectl does.
//
// config does no I/O: callers read the files and hand over their bytes.
package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/pregate/pregate/config/v1alpha1"
)

// ErrDuplicateName is wrapped in the error for an object whose kind and name
// another object of the Set already has.
var ErrDuplicateName = errors.New("duplicate name")

// Origin is where an object was read: the file name given to Load and the
// 1-based index of its document among the file's non-empty documents.
type Origin struct {
	File     string
	Document int
}

func (o Origin) String() string {
	if o.Document == 0 { // not from a file: an object read from the cluster
		return o.File
	}
	return fmt.Sprintf("%s (document %d)", o.File, o.Document)
}

// ObjectError is every problem found in one document of a policy file, in a
// deterministic order: decoding problems, then field validation.
type ObjectError struct {
	Origin
	// Kind and Name identify the object; either may be empty when the
	// document does not say.
	Kind, Name string
	// Errs are the problems: *field.Error values for validation, plain
	// errors for decoding.
	Errs []error
}

// Error returns one line per problem, each naming the file and the object:
//
//	policies/prod.yaml: TrustPolicy "first-party": spec.mode: Unsupported value: "strict": ...
func (e *ObjectError) Error() string {
	var prefix string
	switch {
	case e.Kind != "" && e.Name != "":
		prefix = fmt.Sprintf("%s: %s %q: ", e.File, e.Kind, e.Name)
	case e.Kind != "":
		prefix = fmt.Sprintf("%s: document %d: %s: ", e.File, e.Document, e.Kind)
	default:
		prefix = fmt.Sprintf("%s: document %d: ", e.File, e.Document)
	}
	lines := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		lines[i] = prefix + err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *ObjectError) Unwrap() []error {
	return e.Errs
}

// Set is the TrustPolicies and TrustRoots of one or more policy files. Build
// one with Load per file and merge them with Add; then Validate checks the
// references between objects. The zero Set is empty and ready to use.
type Set struct {
	policies map[string]entry[v1alpha1.TrustPolicy]
	roots    map[string]entry[v1alpha1.TrustRoot]
}

type entry[T any] struct {
	obj    *T
	origin Origin
}

// TrustPolicies returns the policies, sorted by name.
func (s *Set) TrustPolicies() []*v1alpha1.TrustPolicy {
	return sortedObjects(s.policies)
}

// TrustRoots returns the trust roots, sorted by name.
func (s *Set) TrustRoots() []*v1alpha1.TrustRoot {
	return sortedObjects(s.roots)
}

// TrustPolicy returns the policy of the given name.
func (s *Set) TrustPolicy(name string) (*v1alpha1.TrustPolicy, bool) {
	e, ok := s.policies[name]
	return e.obj, ok
}

// TrustRoot returns the trust root of the given name.
func (s *Set) TrustRoot(name string) (*v1alpha1.TrustRoot, bool) {
	e, ok := s.roots[name]
	return e.obj, ok
}

// Origin returns where the object of the given kind (v1alpha1.TrustPolicyKind
// or v1alpha1.TrustRootKind) and name was read.
func (s *Set) Origin(kind, name string) (Origin, bool) {
	var (
		e  Origin
		ok bool
	)
	switch kind {
	case v1alpha1.TrustPolicyKind:
		var p entry[v1alpha1.TrustPolicy]
		p, ok = s.policies[name]
		e = p.origin
	case v1alpha1.TrustRootKind:
		var r entry[v1alpha1.TrustRoot]
		r, ok = s.roots[name]
		e = r.origin
	}
	return e, ok
}

func sortedObjects[T any](m map[string]entry[T]) []*T {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]*T, len(names))
	for i, n := range names {
		out[i] = m[n].obj
	}
	return out
}

// Add merges other into s. A TrustPolicy or TrustRoot whose name s already
// holds is an error wrapping ErrDuplicateName that names both files; then
// nothing is added.
func (s *Set) Add(other *Set) error {
	errs := slices.Concat(
		duplicates(v1alpha1.TrustPolicyKind, s.policies, other.policies),
		duplicates(v1alpha1.TrustRootKind, s.roots, other.roots),
	)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for name, e := range other.policies {
		_ = insert(&s.policies, v1alpha1.TrustPolicyKind, name, e.obj, e.origin)
	}
	for name, e := range other.roots {
		_ = insert(&s.roots, v1alpha1.TrustRootKind, name, e.obj, e.origin)
	}
	return nil
}

// duplicates returns an error per name of add that have already holds, in
// the order of their origins in add.
func duplicates[T any](kind string, have, add map[string]entry[T]) []error {
	var errs []*ObjectError
	for name, e := range add {
		if prev, ok := have[name]; ok {
			errs = append(errs, duplicateError(kind, name, e.origin, prev.origin))
		}
	}
	slices.SortFunc(errs, func(a, b *ObjectError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Document, b.Document))
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

func duplicateError(kind, name string, at, prev Origin) *ObjectError {
	where := prev.String()
	if prev.File == at.File {
		where = fmt.Sprintf("document %d", prev.Document)
	}
	return &ObjectError{
		Origin: at, Kind: kind, Name: name,
		Errs: []error{fmt.Errorf("%w: also defined in %s", ErrDuplicateName, where)},
	}
}

// Validate checks the references between the objects of s, which Load cannot
// check one file at a time: every spec.trustRootRef names a TrustRoot of s.
// Call it once every file is added.
func (s *Set) Validate() error {
	var errs []error
	for _, p := range s.TrustPolicies() {
		ref := p.Spec.TrustRootRef
		if ref == "" {
			continue
		}
		if _, ok := s.roots[ref]; !ok {
			errs = append(errs, &ObjectError{
				Origin: s.policies[p.Name].origin, Kind: v1alpha1.TrustPolicyKind, Name: p.Name,
				Errs: []error{field.NotFound(field.NewPath("spec", "trustRootRef"), ref)},
			})
		}
	}
	return errors.Join(errs...)
}

// decoder decodes one document, as JSON, of the kind it is registered for
// into the objects it stands for, reporting every problem it finds. Each
// object is then defaulted and validated.
//
// pregate's own kinds decode to themselves. This is where the importers go:
// a Kyverno ClusterPolicy (kyverno.io/v1, verifyImages rules), a Kyverno
// ImageValidatingPolicy (policies.kyverno.io/v1) or a policy-controller
// ClusterImagePolicy (policy.sigstore.dev/v1beta1) decodes into
// TrustPolicies and TrustRoots.
type decoder func(doc []byte) ([]runtime.Object, []error)

var decoders = map[schema.GroupVersionKind]decoder{
	v1alpha1.GroupVersion.WithKind(v1alpha1.TrustPolicyKind): decodeStrict[v1alpha1.TrustPolicy],
	v1alpha1.GroupVersion.WithKind(v1alpha1.TrustRootKind):   decodeStrict[v1alpha1.TrustRoot],
}

// supportedKinds lists the decoders' kinds for error messages, sorted.
func supportedKinds() string {
	kinds := make([]string, 0, len(decoders))
	for gvk := range decoders {
		kinds = append(kinds, gvk.GroupVersion().String()+" "+gvk.Kind)
	}
	slices.Sort(kinds)
	return strings.Join(kinds, ", ")
}

// decodeStrict decodes doc into a T as the API server does: unknown and
// duplicate fields are errors that name the field ("unknown field
// \"spec.mode\""), and all of them are reported. The object is returned
// with the strict errors so that they can name it.
func decodeStrict[T any, PT interface {
	*T
	runtime.Object
}](doc []byte) ([]runtime.Object, []error) {
	obj := PT(new(T))
	strict, err := sigsjson.UnmarshalStrict(doc, obj,
		sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return []runtime.Object{obj}, []error{err}
	}
	return []runtime.Object{obj}, strict
}

// Load reads one policy file. name is the file's name for messages; data is
// its content: YAML (or JSON) documents separated by "---" lines, each a
// gate.pregate.dev/v1alpha1 TrustPolicy or TrustRoot. Empty documents are
// skipped.
//
// Every document is decoded strictly, defaulted (DefaultTrustPolicy) and
// validated (ValidateTrustPolicy, ValidateTrustRoot), and the error lists
// every problem of the file, document by document: a *ObjectError per
// document, joined. A YAML syntax error gives the line in the file.
// References between objects are checked by (*Set).Validate. On error, Load
// returns no Set.
func Load(name string, data []byte) (*Set, error) {
	set := &Set{}
	var errs []error
	for i, doc := range documents(data) {
		origin := Origin{File: name, Document: i + 1}
		objs, derr := decodeDocument(origin, doc)
		if derr != nil {
			errs = append(errs, derr)
		}
		for _, obj := range objs {
			if err := set.addObject(origin, obj); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// document is one YAML document of a file, converted to JSON.
type document struct {
	json []byte
	// err is the YAML error of a document that is not valid YAML.
	err error
}

// documents splits data at "---" lines, as k8s.io/apimachinery's YAMLReader
// does, converts each document to JSON and drops the empty ones (blank or
// only comments).
func documents(data []byte) []document {
	var (
		docs  []document
		chunk []string
		start = 1 // the line of data chunk starts at
	)
	flush := func(next int) {
		text := strings.Join(chunk, "\n")
		j, err := yaml.YAMLToJSONStrict([]byte(text))
		if err != nil {
			// Parse again with the lines before the document as blank lines,
			// so that the line in the error is the line in the file.
			_, err = yaml.YAMLToJSONStrict([]byte(strings.Repeat("\n", start-1) + text))
		}
		switch {
		case err != nil:
			docs = append(docs, document{err: err})
		case !bytes.Equal(j, []byte("null")):
			docs = append(docs, document{json: j})
		}
		chunk, start = nil, next
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "---") && strings.TrimSpace(line[3:]) == "" {
			flush(i + 2)
			continue
		}
		chunk = append(chunk, line)
	}
	flush(len(lines) + 1)
	return docs
}

// decodeDocument decodes one document with the decoder of its kind.
func decodeDocument(at Origin, doc document) ([]runtime.Object, error) {
	if doc.err != nil {
		return nil, &ObjectError{Origin: at, Errs: []error{doc.err}}
	}
	if doc.json[0] != '{' {
		return nil, &ObjectError{Origin: at, Errs: []error{errors.New("not an object: a document holds one TrustPolicy or TrustRoot")}}
	}
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(doc.json, &tm); err != nil {
		// apiVersion or kind is not a string.
		return nil, &ObjectError{Origin: at, Errs: []error{err}}
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, &ObjectError{Origin: at, Kind: tm.Kind, Errs: []error{errors.New("apiVersion and kind must be set")}}
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return nil, &ObjectError{Origin: at, Kind: tm.Kind, Errs: []error{fmt.Errorf("apiVersion %q: %w", tm.APIVersion, err)}}
	}
	dec, ok := decoders[gv.WithKind(tm.Kind)]
	if !ok {
		return nil, &ObjectError{Origin: at, Errs: []error{fmt.Errorf("unsupported kind %q of apiVersion %q: policy files hold %s",
			tm.Kind, tm.APIVersion, supportedKinds())}}
	}
	objs, errs := dec(doc.json)
	if len(errs) == 0 {
		return objs, nil
	}
	oe := &ObjectError{Origin: at, Kind: tm.Kind, Errs: errs}
	if len(objs) == 1 {
		if m, ok := objs[0].(interface{ GetName() string }); ok {
			oe.Name = m.GetName()
		}
	}
	// Validation of an object that did not decode cleanly would only repeat
	// its decoding problems.
	return nil, oe
}

// addObject defaults and validates obj and adds it to s.
func (s *Set) addObject(at Origin, obj runtime.Object) error {
	switch o := obj.(type) {
	case *v1alpha1.TrustPolicy:
		DefaultTrustPolicy(o)
		if errs := ValidateTrustPolicy(o); len(errs) > 0 {
			return objectError(at, v1alpha1.TrustPolicyKind, o.Name, errs)
		}
		return insert(&s.policies, v1alpha1.TrustPolicyKind, o.Name, o, at)
	case *v1alpha1.TrustRoot:
		if errs := ValidateTrustRoot(o); len(errs) > 0 {
			return objectError(at, v1alpha1.TrustRootKind, o.Name, errs)
		}
		return insert(&s.roots, v1alpha1.TrustRootKind, o.Name, o, at)
	default:
		return &ObjectError{Origin: at, Errs: []error{fmt.Errorf("decoded an unexpected %T", obj)}}
	}
}

// insert adds obj to *m unless its name is taken.
func insert[T any](m *map[string]entry[T], kind, name string, obj *T, at Origin) error {
	if prev, ok := (*m)[name]; ok {
		return duplicateError(kind, name, at, prev.origin)
	}
	if *m == nil {
		*m = make(map[string]entry[T])
	}
	(*m)[name] = entry[T]{obj: obj, origin: at}
	return nil
}

func objectError(at Origin, kind, name string, list field.ErrorList) *ObjectError {
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = e
	}
	return &ObjectError{Origin: at, Kind: kind, Name: name, Errs: errs}
}
