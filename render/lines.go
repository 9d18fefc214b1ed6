package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/konfig"
	kustutil "sigs.k8s.io/kustomize/api/pkg/util"
	kustypes "sigs.k8s.io/kustomize/api/types"
)

// Bounds on the line lookup, which reads the revision's files a second
// time after rendering.
const (
	// maxLineFileSize is the largest file read to find a line in.
	maxLineFileSize = 8 << 20
	// maxMergeDepth bounds how deep merge keys (<<) are followed.
	maxMergeDepth = 16
	// maxGeneratedDirs bounds the directories walked below a Flux
	// Kustomization path that has no kustomization file.
	maxGeneratedDirs = 4096
)

// addLines fills in, once the result is complete, the 1-based source lines
// of what it reports: for each image location, the line of the image value
// in its file and, when the value there is not the rendered one, the
// kustomize or Flux images: entry that set it (SetBy); for each gap about
// an object, and each Flux Kustomization, the line where the object's
// document starts. rel is the directory Render was given.
//
// It never fails: what cannot be found keeps Line 0 and SetBy nil.
func (r *renderer) addLines(rel string) {
	l, err := newLineFinder(r.root)
	if err != nil {
		return
	}
	defer l.close()
	units := r.lineUnits(rel)
	for i := range r.result.Images {
		locs := r.result.Images[i].Locations
		for j := range locs {
			unit, ok := units.of(locs[j].Chain)
			l.locate(&locs[j], unit, ok)
		}
	}
	for i := range r.result.Gaps {
		g := &r.result.Gaps[i]
		if g.File != "" && g.Object != "" {
			g.Line = l.objectLine(g.File, g.Object)
		}
	}
	for i := range r.result.Kustomizations {
		k := &r.result.Kustomizations[i]
		if k.File != "" {
			k.Line = l.objectLine(k.File, k.Object)
		}
	}
}

// lineUnit is what tracing an image needs of the unit that rendered it.
type lineUnit struct {
	// path is the directory built, relative to the source root.
	path string
	// id is the Flux Kustomization (Kustomization/ns/name), "" for a plain
	// directory.
	id string
	// file is where the Flux Kustomization object is, if in the revision.
	file string
	// content is the Flux Kustomization given with WithKustomization, which
	// is in no file of the revision.
	content map[string]any
}

// lineUnits maps each rendered unit to what tracing needs of it.
type lineUnits struct {
	plain lineUnit
	byID  map[string]lineUnit
}

// lineUnits lists the units rendered; rel is the directory Render was
// given, which a location without a chain was rendered from.
func (r *renderer) lineUnits(rel string) lineUnits {
	u := lineUnits{plain: lineUnit{path: rel}, byID: map[string]lineUnit{}}
	given := ""
	if r.opts.kustomization != nil {
		given = Object{Content: r.opts.kustomization}.ID()
	}
	for _, k := range r.result.Kustomizations {
		if k.Status != Rendered {
			continue
		}
		lu := lineUnit{path: k.Path, id: k.Object, file: k.File}
		if k.File == "" && k.Object == given {
			lu.content = r.opts.kustomization
		}
		u.byID[k.Object] = lu
	}
	return u
}

// of returns the unit that rendered an object applied by chain, and false
// when it is not known.
func (u lineUnits) of(chain []string) (lineUnit, bool) {
	if len(chain) == 0 {
		return u.plain, true
	}
	lu, ok := u.byID[chain[len(chain)-1]]
	return lu, ok
}

// lineFinder reads the revision's files to find lines, each file once.
type lineFinder struct {
	root     *os.Root
	docs     map[string][]*yaml.Node   // file → its documents' root nodes
	objects  map[string][]sourceObject // file → the objects in it
	kusts    map[string]*kustFile      // directory → its kustomization file, or nil
	dirs     map[string]bool           // path → is a directory
	paths    map[string][]string       // unit path and file → the kustomization directories between
	patterns map[string]*regexp.Regexp // images: name → kustomize's pattern for it
}

// newLineFinder opens root, the source root, to read files under it only.
func newLineFinder(root string) (*lineFinder, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("opening source root: %w", err)
	}
	return &lineFinder{
		root:     r,
		docs:     map[string][]*yaml.Node{},
		objects:  map[string][]sourceObject{},
		kusts:    map[string]*kustFile{},
		dirs:     map[string]bool{},
		paths:    map[string][]string{},
		patterns: map[string]*regexp.Regexp{},
	}, nil
}

// close releases the source root.
func (l *lineFinder) close() { _ = l.root.Close() }

// locate sets the line of an image location's value and, when the value
// there is not the one rendered, what set it.
func (l *lineFinder) locate(loc *Location, unit lineUnit, unitKnown bool) {
	if loc.File == "" {
		return
	}
	if loc.HelmRelease != "" {
		l.locateInHelmRelease(loc)
		return
	}
	steps, ok := parseFieldPath(loc.Path)
	if !ok || steps[len(steps)-1].index < 0 {
		return
	}
	q := objectQuery{object: loc.Object, group: groupOf(loc.APIVersion), container: steps, name: loc.Container, raw: loc.Raw}
	_, image := l.find(loc.File, q)
	if image == nil {
		return
	}
	loc.Line = image.Line
	if image.Value == loc.Raw || strings.Contains(image.Value, "${") {
		// Written as rendered, or a postBuild variable, which stands here.
		return
	}
	if !unitKnown {
		unit = lineUnit{}
	}
	loc.SetBy = l.trace(image.Value, loc.Raw, loc.File, unit)
}

// objectLine returns the line where the document of object (Kind/ns/name)
// starts in file, or 0.
func (l *lineFinder) objectLine(file, object string) int {
	q := objectQuery{object: object}
	switch kindOf(object) {
	case "Kustomization":
		q.group = kustomizeGroup
	case "HelmRelease":
		q.group = helmGroup
	}
	obj, _ := l.find(file, q)
	if obj == nil {
		return 0
	}
	return obj.node.Line
}

// groupOf returns the group of an apiVersion.
func groupOf(apiVersion string) string {
	if i := strings.Index(apiVersion, "/"); i >= 0 {
		return apiVersion[:i]
	}
	return ""
}

// kindOf returns the kind of Kind/ns/name or Kind/name.
func kindOf(object string) string {
	kind, _, _ := strings.Cut(object, "/")
	return kind
}

// splitObject splits Kind/ns/name or Kind/name.
func splitObject(object string) (kind, namespace, name string) {
	parts := strings.Split(object, "/")
	switch len(parts) {
	case 3:
		return parts[0], parts[1], parts[2]
	case 2:
		return parts[0], "", parts[1]
	}
	return "", "", ""
}

// sourceObject is one object as written in a file.
type sourceObject struct {
	node                         *yaml.Node // its mapping
	kind, group, namespace, name string
}

// objectQuery is what is known of a rendered object, to find its source.
type objectQuery struct {
	object string // Kind/ns/name, rendered
	group  string // its API group, when known
	// container, when set, is the path of a container the object must
	// have an image for: name is the container's name and raw the image
	// wanted.
	container []fieldStep
	name, raw string
}

// find returns the object in file that the query's object was rendered
// from, and the image of the query's container in it (nil when the query
// has no container or the best candidate lacks it). Candidates are objects
// of the same kind whose name is the rendered one, or part of it (a prefix
// or suffix was added), or a template; the best is the one with the
// container's image, then with the raw value there, then the exact name,
// the API group, the namespace, the longest name, and the first in the
// file.
func (l *lineFinder) find(file string, q objectQuery) (*sourceObject, *yaml.Node) {
	kind, namespace, name := splitObject(q.object)
	if kind == "" || name == "" {
		return nil, nil
	}
	objs := l.sourceObjects(file)
	var (
		best      *sourceObject
		bestImage *yaml.Node
		bestRank  []int
	)
	for i := range objs {
		o := &objs[i]
		match := nameMatch(o.name, name)
		if o.kind != kind || match == 0 {
			continue
		}
		var image *yaml.Node
		if q.container != nil {
			image = containerImage(o.node, q.container, q.name)
		}
		rank := []int{
			boolInt(image != nil),
			boolInt(image != nil && image.Value == q.raw),
			match,
			boolInt(q.group != "" && o.group == q.group),
			boolInt(o.namespace == namespace),
			len(o.name),
		}
		if best == nil || slices.Compare(rank, bestRank) > 0 {
			best, bestImage, bestRank = o, image, rank
		}
	}
	return best, bestImage
}

// containerImage returns the scalar image of the container at path in
// object m, or nil. When the entry at path is another container (a patch
// reordered the list), the container is looked up by name in the list.
func containerImage(m *yaml.Node, path []fieldStep, name string) *yaml.Node {
	last := path[len(path)-1]
	list := walk(m, path[:len(path)-1])
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	var c *yaml.Node
	if last.index < len(list.Content) && sameContainer(list.Content[last.index], name) {
		c = list.Content[last.index]
	} else {
		for _, e := range list.Content {
			if scalar(value(e, "name")) == name {
				c = e
				break
			}
		}
	}
	image := value(c, "image")
	if image == nil || image.Kind != yaml.ScalarNode {
		return nil
	}
	return image
}

// sameContainer says whether container c may be the one named name: it
// has that name, or its name is a template, or there is no name to tell.
func sameContainer(c *yaml.Node, name string) bool {
	n := scalar(value(c, "name"))
	return name == "" || n == name || strings.Contains(n, "${")
}

// boolInt ranks true above false.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nameMatch says how a source metadata.name fits a rendered one: 3 the
// same, 2 contained in it (kustomize added a prefix or suffix), 1 a
// template whose literal parts appear in it in order (postBuild
// substitutes the rest), 0 not at all.
func nameMatch(source, rendered string) int {
	switch {
	case source == "":
		return 0
	case source == rendered:
		return 3
	case strings.Contains(rendered, source):
		return 2
	case strings.Contains(source, "${") && literalsInOrder(source, rendered):
		return 1
	}
	return 0
}

// templateVar matches a postBuild variable, ${VAR} or ${VAR:=default}.
var templateVar = regexp.MustCompile(`\$\{[^}]*\}`)

// literalsInOrder says whether the text of template outside its variables
// appears in s in order.
func literalsInOrder(template, s string) bool {
	for _, lit := range templateVar.Split(template, -1) {
		i := strings.Index(s, lit)
		if i < 0 {
			return false
		}
		s = s[i+len(lit):]
	}
	return true
}

// sourceObjects returns the objects written in file: each document's
// mapping and, for a List, its items.
func (l *lineFinder) sourceObjects(file string) []sourceObject {
	if objs, ok := l.objects[file]; ok {
		return objs
	}
	var objs []sourceObject
	for _, doc := range l.documents(file) {
		if doc.Kind != yaml.MappingNode {
			continue
		}
		o := newSourceObject(doc)
		objs = append(objs, o)
		if o.kind != "List" {
			continue
		}
		if items := resolve(value(doc, "items")); items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				if it = resolve(it); it != nil && it.Kind == yaml.MappingNode {
					objs = append(objs, newSourceObject(it))
				}
			}
		}
	}
	l.objects[file] = objs
	return objs
}

// newSourceObject reads the identity of the object in mapping m.
func newSourceObject(m *yaml.Node) sourceObject {
	md := value(m, "metadata")
	return sourceObject{
		node:      m,
		kind:      scalar(value(m, "kind")),
		group:     groupOf(scalar(value(m, "apiVersion"))),
		namespace: scalar(value(md, "namespace")),
		name:      scalar(value(md, "name")),
	}
}

// documents returns the root node of each YAML document in file, aliases
// resolved; nil when the file cannot be read or is out of bounds. A
// document that does not parse ends the list.
func (l *lineFinder) documents(file string) []*yaml.Node {
	if docs, ok := l.docs[file]; ok {
		return docs
	}
	var docs []*yaml.Node
	if b, err := l.read(file); err == nil {
		docs = decodeDocuments(b)
	}
	l.docs[file] = docs
	return docs
}

// read reads a regular file under the root, of at most maxLineFileSize
// bytes. Its YAML needs no other bound here: decoded into nodes, aliases
// are not expanded (the decoder bounds nesting), and lookups follow at
// most maxMergeDepth merges, each merged mapping once.
func (l *lineFinder) read(file string) ([]byte, error) {
	f, err := l.root.Open(filepath.FromSlash(file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxLineFileSize {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", file, maxLineFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLineFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	if len(b) > maxLineFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxLineFileSize)
	}
	return b, nil
}

// decodeDocuments parses b's YAML documents into nodes, which keep their
// lines, up to the first that does not parse.
func decodeDocuments(b []byte) (docs []*yaml.Node) {
	defer func() {
		// The YAML decoder is not expected to panic; if it does, the line
		// lookup gives up on this file rather than failing the render.
		if recover() != nil {
			docs = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return docs
		}
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
			if n := resolve(doc.Content[0]); n != nil {
				docs = append(docs, n)
			}
		}
	}
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for range maxMergeDepth {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		n = n.Alias
	}
	return nil
}

// scalar returns n's value when it is a scalar, else "".
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// value returns the value of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	_, v := lookup(m, key)
	return v
}

// lookup returns the key and value nodes of key in mapping m, aliases
// resolved, as YAML merges them: the mapping's own keys first, then those
// of the mappings merged in with <<, in order.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	return lookupMerged(m, key, 0, nil)
}

// lookupMerged is lookup, depth merges down; seen holds the merged
// mappings already searched.
func lookupMerged(m *yaml.Node, key string, depth int, seen map[*yaml.Node]bool) (k, v *yaml.Node) {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode || depth > maxMergeDepth || seen[m] {
		return nil, nil
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := resolve(m.Content[i])
		switch {
		case k == nil || k.Kind != yaml.ScalarNode:
		case k.Value == "<<" && k.ShortTag() == "!!merge":
			merges = append(merges, resolve(m.Content[i+1]))
		case k.Value == key:
			return k, resolve(m.Content[i+1])
		}
	}
	if len(merges) == 0 {
		return nil, nil
	}
	if seen == nil {
		seen = map[*yaml.Node]bool{}
	}
	seen[m] = true
	for _, merge := range merges {
		from := []*yaml.Node{merge}
		if merge != nil && merge.Kind == yaml.SequenceNode {
			from = merge.Content
		}
		for _, f := range from {
			if k, v := lookupMerged(f, key, depth+1, seen); v != nil {
				return k, v
			}
		}
	}
	return nil, nil
}

// fieldStep is one step of a field path: a key, or an index (index ≥ 0).
type fieldStep struct {
	key   string
	index int
}

// parseFieldPath parses a container's path, "spec.containers[0]".
func parseFieldPath(p string) ([]fieldStep, bool) {
	var steps []fieldStep
	for part := range strings.SplitSeq(p, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" {
			return nil, false
		}
		steps = append(steps, fieldStep{key: key, index: -1})
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return nil, false
			}
			steps = append(steps, fieldStep{index: i})
			rest = strings.TrimPrefix(after, "[")
			if rest == after && rest != "" {
				return nil, false
			}
		}
	}
	return steps, len(steps) > 0
}

// walk follows steps from n and returns the node there, or nil.
func walk(n *yaml.Node, steps []fieldStep) *yaml.Node {
	for _, s := range steps {
		n = resolve(n)
		if n == nil {
			return nil
		}
		if s.index < 0 {
			n = value(n, s.key)
			continue
		}
		if n.Kind != yaml.SequenceNode || s.index >= len(n.Content) {
			return nil
		}
		n = n.Content[s.index]
	}
	return resolve(n)
}

// kustFile is what the trace needs of a kustomization file.
type kustFile struct {
	resources  []string // resources and bases, as written
	components []string
	images     []imageEntry
}

// imageEntry is one entry of an images: list.
type imageEntry struct {
	image kustypes.Image
	// origin is where the entry's name is written; nil when it is in no
	// file of the revision.
	origin *Origin
}

// trace finds what turned src, the image as written in file, into raw:
// it replays, as kustomize does, the images: entries of the kustomizations
// that build file into unit, innermost first, then those of the unit's
// Flux Kustomization, and returns where the last entry that changed the
// image is, when the replay gives raw.
func (l *lineFinder) trace(src, raw, file string, unit lineUnit) *Origin {
	var dirs []string
	if unit.path != "" {
		dirs = l.kustPath(unit.path, file)
	}
	root := len(dirs) > 0
	if !root {
		dirs = l.ancestorKusts(path.Dir(file))
	}
	var entries []imageEntry
	for i := len(dirs) - 1; i >= 0; i-- {
		next := ""
		if i+1 < len(dirs) {
			next = dirs[i+1]
		}
		entries = append(entries, l.componentImages(dirs[i], next, map[string]bool{})...)
		own := l.kustomization(dirs[i]).imagesOrNil()
		if root && i == 0 {
			own = mergeFluxImages(own, l.fluxImages(unit))
		}
		entries = append(entries, own...)
	}
	if !root {
		entries = append(entries, l.fluxImages(unit)...)
	}
	var setBy *Origin
	v := src
	for _, e := range entries {
		if out, ok := l.applyImage(v, e.image); ok {
			v, setBy = out, e.origin
		}
	}
	if v != raw || setBy == nil {
		return nil
	}
	o := *setBy
	return &o
}

// imagesOrNil returns k's images: entries; k may be nil.
func (k *kustFile) imagesOrNil() []imageEntry {
	if k == nil {
		return nil
	}
	return k.images
}

// componentImages returns the images: entries of the components dir's
// kustomization lists (and of theirs), which kustomize applies before
// dir's own; next, a component already on the path, is left out.
func (l *lineFinder) componentImages(dir, next string, seen map[string]bool) []imageEntry {
	k := l.kustomization(dir)
	if k == nil {
		return nil
	}
	var out []imageEntry
	for _, c := range k.components {
		p, ok := joinEntry(dir, c)
		if !ok || p == next || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, l.componentImages(p, "", seen)...)
		out = append(out, l.kustomization(p).imagesOrNil()...)
	}
	return out
}

// mergeFluxImages adds a Flux Kustomization's spec.images to those of the
// kustomization file of its path, as kustomize-controller does: an entry
// with the same name is amended in place, others are appended.
func mergeFluxImages(own, flux []imageEntry) []imageEntry {
	out := slices.Clone(own)
	for _, f := range flux {
		i := slices.IndexFunc(out, func(e imageEntry) bool { return e.image.Name == f.image.Name })
		if i < 0 {
			out = append(out, f)
			continue
		}
		m := out[i].image
		if f.image.NewName != "" {
			m.NewName = f.image.NewName
		}
		if f.image.NewTag != "" || f.image.Digest != "" {
			m.NewTag, m.Digest = f.image.NewTag, f.image.Digest
		}
		out[i] = imageEntry{image: m, origin: f.origin}
	}
	return out
}

// fluxImages returns the spec.images of the unit's Flux Kustomization,
// with their lines when the object is in the revision.
func (l *lineFinder) fluxImages(unit lineUnit) []imageEntry {
	if unit.id == "" {
		return nil
	}
	if unit.file != "" {
		obj, _ := l.find(unit.file, objectQuery{object: unit.id, group: kustomizeGroup})
		if obj == nil {
			return nil
		}
		return imageEntries(value(value(obj.node, "spec"), "images"), unit.file)
	}
	spec, _ := unit.content["spec"].(map[string]any)
	list, _ := spec["images"].([]any)
	var out []imageEntry
	for _, item := range list {
		m, _ := item.(map[string]any)
		if name := str(m, "name"); name != "" {
			out = append(out, imageEntry{image: kustypes.Image{Name: name, NewName: str(m, "newName"),
				NewTag: str(m, "newTag"), Digest: str(m, "digest")}})
		}
	}
	return out
}

// imageEntries reads an images: list written in file.
func imageEntries(list *yaml.Node, file string) []imageEntry {
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	var out []imageEntry
	for _, item := range list.Content {
		key, name := lookup(item, "name")
		if scalar(name) == "" {
			continue
		}
		out = append(out, imageEntry{
			image: kustypes.Image{
				Name:      name.Value,
				NewName:   scalar(value(item, "newName")),
				NewTag:    scalar(value(item, "newTag")),
				Digest:    scalar(value(item, "digest")),
				TagSuffix: scalar(value(item, "tagSuffix")),
			},
			origin: &Origin{File: file, Line: key.Line},
		})
	}
	return out
}

// applyImage applies one images: entry to an image as kustomize's image
// transformer does (api/filters/imagetag), and says whether it matched.
func (l *lineFinder) applyImage(img string, e kustypes.Image) (string, bool) {
	if !l.imageMatches(img, e.Name) {
		return img, false
	}
	name, tag, digest := kustutil.SplitImageName(img)
	if e.NewName != "" {
		name = e.NewName
	}
	switch {
	case e.NewTag != "" && e.Digest != "":
		tag, digest = e.NewTag, e.Digest
	case e.NewTag != "":
		tag, digest = e.NewTag, ""
	case e.Digest != "":
		tag, digest = "", e.Digest
	case e.TagSuffix != "":
		tag, digest = tag+e.TagSuffix, ""
	}
	if tag != "" {
		name += ":" + tag
	}
	if digest != "" {
		name += "@" + digest
	}
	return name, true
}

// imageMatches is kustomize's image.IsImageMatched: the entry's name is a
// regular expression for the image name, before an optional tag and
// digest.
func (l *lineFinder) imageMatches(img, name string) bool {
	re, ok := l.patterns[name]
	if !ok {
		re, _ = regexp.Compile("^" + name + "(:[a-zA-Z0-9_.{}-]*)?(@[a-zA-Z0-9]+([.+_-][a-zA-Z0-9]+)*:[a-zA-Z0-9_.{}-]*)?$")
		l.patterns[name] = re
	}
	return re != nil && re.MatchString(img)
}

// kustomization returns the kustomization file of dir, or nil when dir has
// none (or it cannot be read).
func (l *lineFinder) kustomization(dir string) *kustFile {
	if k, ok := l.kusts[dir]; ok {
		return k
	}
	var k *kustFile
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		file := path.Join(dir, name)
		if fi, err := l.root.Stat(filepath.FromSlash(file)); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		k = &kustFile{}
		if docs := l.documents(file); len(docs) > 0 {
			doc := docs[0]
			k.resources = append(scalars(value(doc, "resources")), scalars(value(doc, "bases"))...)
			k.components = scalars(value(doc, "components"))
			k.images = imageEntries(value(doc, "images"), file)
		}
		break
	}
	l.kusts[dir] = k
	return k
}

// scalars returns the scalar items of a sequence.
func scalars(seq *yaml.Node) []string {
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, n := range seq.Content {
		if s := scalar(resolve(n)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// joinEntry resolves a kustomization entry against dir, both relative to
// the root; false when it leaves the root or is not a local path.
func joinEntry(dir, entry string) (string, bool) {
	if entry == "" || path.IsAbs(entry) || strings.Contains(entry, "://") {
		return "", false
	}
	p := path.Join(dir, entry)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", false
	}
	return p, true
}

// isDir says whether p, relative to the root, is a directory.
func (l *lineFinder) isDir(p string) bool {
	if d, ok := l.dirs[p]; ok {
		return d
	}
	fi, err := l.root.Stat(filepath.FromSlash(p))
	d := err == nil && fi.IsDir()
	l.dirs[p] = d
	return d
}

// kustPath returns the directories whose kustomizations a build of unit
// goes through to include file, from unit down, or nil when file is not
// found that way.
func (l *lineFinder) kustPath(unit, file string) []string {
	key := unit + "\x00" + file
	if p, ok := l.paths[key]; ok {
		return p
	}
	p := l.searchKust(unit, file, true, map[string]bool{})
	l.paths[key] = p
	return p
}

// searchKust searches from dir, depth first in the order the entries are
// written, for the kustomization that lists file. top marks the unit's
// own directory, where Flux generates a kustomization when there is none.
func (l *lineFinder) searchKust(dir, file string, top bool, seen map[string]bool) []string {
	if seen[dir] {
		return nil
	}
	seen[dir] = true
	var children []string
	if k := l.kustomization(dir); k != nil {
		for _, e := range append(slices.Clone(k.resources), k.components...) {
			p, ok := joinEntry(dir, e)
			switch {
			case !ok:
			case p == file:
				return []string{dir}
			case l.isDir(p):
				children = append(children, p)
			}
		}
	} else {
		if !top {
			return nil
		}
		if l.generatedIncludes(dir, file) {
			return []string{dir}
		}
		children = l.nestedKusts(dir)
	}
	for _, c := range children {
		if sub := l.searchKust(c, file, false, seen); sub != nil {
			return append([]string{dir}, sub...)
		}
	}
	return nil
}

// generatedIncludes says whether the kustomization Flux generates for dir
// lists file itself: file is below dir with no kustomization file in
// between.
func (l *lineFinder) generatedIncludes(dir, file string) bool {
	if dir != "." && !strings.HasPrefix(file, dir+"/") {
		return false
	}
	for d := path.Dir(file); d != dir && d != "."; d = path.Dir(d) {
		if l.kustomization(d) != nil {
			return false
		}
	}
	return true
}

// errWalkBound stops a walk that reached maxGeneratedDirs.
var errWalkBound = errors.New("too many directories")

// nestedKusts lists the directories below dir that the kustomization Flux
// generates for dir lists: those with a kustomization file, not below
// another.
func (l *lineFinder) nestedKusts(dir string) []string {
	var out []string
	n := 0
	_ = fs.WalkDir(l.root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == dir {
			return nil //nolint:nilerr // what cannot be read is not listed
		}
		if n++; n > maxGeneratedDirs {
			return errWalkBound
		}
		if l.kustomization(p) != nil {
			out = append(out, p)
			return fs.SkipDir
		}
		return nil
	})
	return out
}

// ancestorKusts returns dir and the directories above it, innermost first,
// that have a kustomization file: a guess at what built a file when the
// path from its unit is not found.
func (l *lineFinder) ancestorKusts(dir string) []string {
	var out []string
	for d := dir; ; d = path.Dir(d) {
		if l.kustomization(d) != nil {
			out = append(out, d)
		}
		if d == "." || d == "/" {
			break
		}
	}
	slices.Reverse(out)
	return out
}
