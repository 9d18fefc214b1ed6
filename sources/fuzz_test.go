package sources

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzTarEntry is one entry of a seed tarball.
type fuzzTarEntry struct {
	name string
	typ  byte
	body string
	link string
	size int64 // the header's size when set; len(body) otherwise
}

// fuzzTarball writes the entries as a gzipped tar stream, exactly as given
// (the fuzz tests cannot use tarball, which takes a *testing.T).
func fuzzTarball(f *testing.F, gz bool, entries ...fuzzTarEntry) []byte {
	f.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	var tw *tar.Writer
	if gz {
		tw = tar.NewWriter(gw)
	} else {
		tw = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: e.size}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: h.Typeflag, PAXRecords: map[string]string{"comment": "0123abcd"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Fatalf("writing header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil && h.Size >= int64(len(e.body)) {
			f.Fatalf("writing body %q: %v", e.name, err)
		}
	}
	_ = tw.Close()
	if !gz {
		return buf.Bytes()
	}
	if err := gw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// Limits of the extraction under fuzzing: small, so that a decompression
// bomb costs little, and reachable.
const (
	fuzzMaxSize  = 1 << 20
	fuzzMaxFiles = 64
)

// FuzzExtract extracts arbitrary bytes as a Flux artifact tarball, with
// the filter Fetch uses. Invariants: extract never panics; nothing is
// created outside the destination (the directories around it are walked);
// whatever the outcome, the destination holds only regular files and
// directories (no symlink, hard link, device or pipe); on success the
// files total at most the size limit, and every skipped entry is a
// symlink with a local path.
func FuzzExtract(f *testing.F) {
	reg := func(name, body string) fuzzTarEntry { return fuzzTarEntry{name: name, typ: tar.TypeReg, body: body} }
	dir := func(name string) fuzzTarEntry { return fuzzTarEntry{name: name, typ: tar.TypeDir} }
	link := func(typ byte, name, target string) fuzzTarEntry {
		return fuzzTarEntry{name: name, typ: typ, link: target}
	}
	seeds := [][]fuzzTarEntry{
		{dir("apps/"), reg("apps/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n"), reg("kustomization.yaml", "resources: [apps]\n")},
		{{typ: tar.TypeXGlobalHeader}, reg("a.yaml", "a")},
		{reg("ok.yaml", "a"), reg("../evil", "x")},
		{reg("a/../../evil", "x")},
		{dir("..")},
		{reg("/etc/x", "x")},
		{reg(`a\..\..\evil`, "x")},
		{reg("ok.yaml", "a"), link(tar.TypeSymlink, "link", "../../etc/passwd")},
		{link(tar.TypeSymlink, "a/link", "../..")},
		{link(tar.TypeSymlink, "link", "/etc")},
		{link(tar.TypeSymlink, "a/link", "../b"), reg("a/link/x", "through the link")},
		{reg("ok.yaml", "a"), link(tar.TypeLink, "hl", "ok.yaml")},
		{link(tar.TypeLink, "hl", "../../etc/passwd")},
		{{name: "dev/null", typ: tar.TypeChar}},
		{{name: "fifo", typ: tar.TypeFifo}},
		{{name: "weird", typ: 'Z'}},
		{reg("a", ""), reg("b", ""), reg("c", ""), reg(".", "dot"), dir("a/..")},
		{{name: "big", typ: tar.TypeReg, body: "short", size: 2 * fuzzMaxSize}},
		{reg("same", "first"), reg("same", "second")},
	}
	for _, s := range seeds {
		f.Add(fuzzTarball(f, true, s...))
	}
	f.Add(fuzzTarball(f, false, reg("plain.yaml", "not gzipped")))
	f.Add([]byte("<html>this is not an artifact</html>"))
	f.Add([]byte{0x1f, 0x8b})
	f.Add([]byte{})

	o, err := newOptions([]Option{WithMaxSize(fuzzMaxSize), WithMaxFiles(fuzzMaxFiles)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// base/archive.tar.gz, and the tree under base/a/b/root: an entry
		// escaping by a few ".." lands in base, which is walked.
		base := t.TempDir()
		archive := filepath.Join(base, "archive.tar.gz")
		if err := os.WriteFile(archive, data, 0o600); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(base, "a", "b", "root")
		if err := os.MkdirAll(root, 0o750); err != nil {
			t.Fatal(err)
		}
		skipped, err := extract(t.Context(), archive, root, o)

		var total int64
		walkErr := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch p {
			case base, archive, filepath.Join(base, "a"), filepath.Join(base, "a", "b"), root:
				return nil
			}
			if !strings.HasPrefix(p, root+string(filepath.Separator)) {
				t.Errorf("extraction wrote %s, outside the destination %s", p, root)
				return nil
			}
			switch {
			case d.IsDir():
			case d.Type().IsRegular():
				info, err := d.Info()
				if err != nil {
					return err
				}
				total += info.Size()
			default:
				t.Errorf("extraction left %s of type %v in the destination", p, d.Type())
			}
			return nil
		})
		if walkErr != nil {
			t.Fatalf("walking %s: %v", base, walkErr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "extracting archive: ") {
				t.Errorf("extract error %q does not say it is about extracting", err)
			}
			return
		}
		if total > fuzzMaxSize {
			t.Errorf("extract wrote %d bytes, over the %d-byte limit", total, fuzzMaxSize)
		}
		for _, s := range skipped {
			if !isLocalName(s.Path) || !strings.HasPrefix(s.Reason, "symlink to ") {
				t.Errorf("skipped entry %+v", s)
			}
		}
	})
}
