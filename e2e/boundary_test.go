package e2e

// The package boundaries of DESIGN.md, checked on the real import graph with
// `go list`: only gate/controller talks to the cluster, and gate, the pure
// core, depends on nothing but the standard library and pregate packages that
// are themselves pure. depguard (.golangci.yaml) flags the same direct imports
// in `make lint`; this test holds the line in `make test` as well and follows
// gate's imports transitively, which depguard cannot.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pregate/pregate"

// boundedRoots are the packages that must not talk to the cluster, each with
// its subpackages, gate/controller excepted.
var boundedRoots = []string{"gate", "render", "verify", "sources", "config"}

// controller is the one package (with its subpackages) that may import a
// cluster client.
const controller = module + "/gate/controller"

// clusterClients are the import paths, with everything below them, that only
// the controller may import.
var clusterClients = []string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go"}

// listedPackage holds the fields of `go list -json` the checks read.
type listedPackage struct {
	ImportPath   string
	Standard     bool
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

func under(path, root string) bool { return path == root || strings.HasPrefix(path, root+"/") }

// clusterClientImports returns one line per import of a cluster client by a
// package other than the controller, test files included.
func clusterClientImports(pkgs []listedPackage) []string {
	var bad []string
	for _, p := range pkgs {
		if under(p.ImportPath, controller) {
			continue
		}
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			for _, c := range clusterClients {
				if under(imp, c) {
					bad = append(bad, p.ImportPath+" imports "+imp)
				}
			}
		}
	}
	return bad
}

// impureImports takes the dependency closure of a package (`go list -deps`)
// and returns one line per import, by a pregate package in it, of something
// that is neither standard library nor pregate. Every pregate package in the
// closure is inspected, so a pregate package that gate imports has to be pure
// too.
func impureImports(closure []listedPackage) []string {
	std := make(map[string]bool, len(closure))
	for _, p := range closure {
		std[p.ImportPath] = p.Standard
	}
	var bad []string
	for _, p := range closure {
		if !under(p.ImportPath, module) {
			continue
		}
		for _, imp := range p.Imports {
			if !std[imp] && !under(imp, module) {
				bad = append(bad, p.ImportPath+" imports "+imp)
			}
		}
	}
	return bad
}

// goList runs `go list -e -json` and decodes its stream of packages. The go
// command is the one running this test: `go test` puts its GOROOT/bin first
// on PATH.
func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	args = append([]string{"list", "-e", "-json=ImportPath,Standard,Imports,TestImports,XTestImports,Error"}, args...)
	cmd := exec.CommandContext(t.Context(), "go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs
		}
		if err != nil {
			t.Fatalf("decoding the output of go %s: %v", strings.Join(args, " "), err)
		}
		if p.Error != nil {
			t.Errorf("go list cannot load %s, so its imports are not checked: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
}

func TestOnlyTheControllerImportsClusterClients(t *testing.T) {
	t.Parallel()
	patterns := make([]string, 0, len(boundedRoots))
	for _, r := range boundedRoots {
		patterns = append(patterns, module+"/"+r+"/...")
	}
	pkgs := goList(t, patterns...)
	var checked []string
	for _, p := range pkgs {
		if !under(p.ImportPath, controller) {
			checked = append(checked, p.ImportPath)
		}
	}
	// render exists from the first commit: finding nothing means the listing
	// is broken, not that the rule holds.
	if len(checked) == 0 {
		t.Fatalf("go list found no package under %v", boundedRoots)
	}
	t.Logf("checked %s", strings.Join(checked, " "))
	for _, b := range clusterClientImports(pkgs) {
		t.Errorf("%s: only %s may import %s (DESIGN.md)", b, controller, strings.Join(clusterClients, " or "))
	}
}

func TestGateIsPure(t *testing.T) {
	t.Parallel()
	goFiles, err := filepath.Glob(filepath.Join("..", "gate", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(goFiles, func(f string) bool { return !strings.HasSuffix(f, "_test.go") }) {
		t.Skip("gate has no Go files yet")
	}
	closure := goList(t, "-deps", module+"/gate")
	var checked []string
	for _, p := range closure {
		if under(p.ImportPath, module) {
			checked = append(checked, p.ImportPath)
		}
	}
	t.Logf("checked gate and the pregate packages it depends on: %s", strings.Join(checked, " "))
	for _, b := range impureImports(closure) {
		t.Errorf("%s: gate may depend only on the standard library and pure pregate packages", b)
	}
}

// TestBoundaryRulesCatch proves the two checks above can fail.
func TestBoundaryRulesCatch(t *testing.T) {
	t.Parallel()
	pkgs := []listedPackage{
		{ImportPath: module + "/render", Imports: []string{"k8s.io/apimachinery/pkg/runtime", "sigs.k8s.io/controller-runtime/pkg/client"}},
		{ImportPath: module + "/verify", XTestImports: []string{"k8s.io/client-go"}},
		{ImportPath: module + "/config/v1alpha1", Imports: []string{"sigs.k8s.io/controller-runtime-tools", "k8s.io/client-gopher"}},
		{ImportPath: module + "/gate/controller", Imports: []string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go/kubernetes"}},
	}
	want := []string{
		module + "/render imports sigs.k8s.io/controller-runtime/pkg/client",
		module + "/verify imports k8s.io/client-go",
	}
	if got := clusterClientImports(pkgs); !slices.Equal(got, want) {
		t.Errorf("clusterClientImports() = %q, want %q", got, want)
	}

	closure := []listedPackage{
		{ImportPath: module + "/gate", Imports: []string{"context", "errors", module + "/gate/policy"}},
		{ImportPath: module + "/gate/policy", Imports: []string{"path", "golang.org/x/sync/errgroup", "github.com/pregate/pregatex"}},
		{ImportPath: "context", Standard: true}, {ImportPath: "errors", Standard: true}, {ImportPath: "path", Standard: true},
		{ImportPath: "golang.org/x/sync/errgroup", Imports: []string{"context", "sync"}},
		{ImportPath: "github.com/pregate/pregatex"},
	}
	want = []string{
		module + "/gate/policy imports golang.org/x/sync/errgroup",
		module + "/gate/policy imports github.com/pregate/pregatex",
	}
	if got := impureImports(closure); !slices.Equal(got, want) {
		t.Errorf("impureImports() = %q, want %q", got, want)
	}
}
