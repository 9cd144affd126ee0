package crdt

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Imports the package's own (non-test) files must not use: anything that
// does I/O, reads the clock or draws randomness.
var forbiddenDirect = []string{
	"os", "os/", "net", "net/", "syscall", "time", "io/fs", "io/ioutil", "path/filepath",
	"math/rand", "crypto/rand", "log", "log/", "runtime", "unsafe",
	"github.com/syndtr/goleveldb", "github.com/libp2p/go-libp2p/p2p", "github.com/libp2p/go-libp2p/core/host",
	"github.com/libp2p/go-libp2p/core/network", "github.com/libp2p/go-libp2p-pubsub", "github.com/libp2p/go-libp2p-kad-dht",
}

// Packages that must not appear anywhere in the dependency tree.
var forbiddenDeep = []string{
	"github.com/syndtr/goleveldb", "github.com/libp2p/go-libp2p/p2p/", "github.com/libp2p/go-libp2p/core/host",
	"github.com/libp2p/go-libp2p/core/network", "github.com/libp2p/go-libp2p-pubsub", "github.com/libp2p/go-libp2p-kad-dht",
	"github.com/ipfs/go-datastore", "github.com/meshfold/meshfold/store", "github.com/meshfold/meshfold/node",
	"github.com/meshfold/meshfold/protocol",
}

func matches(path, rule string) bool {
	if strings.HasSuffix(rule, "/") {
		return strings.HasPrefix(path, rule)
	}
	return path == rule || strings.HasPrefix(path, rule+"/")
}

// TestPurity fails if crdt imports anything that does I/O or reads the
// clock, or starts a goroutine.
func TestPurity(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, rule := range forbiddenDirect {
				if matches(path, rule) {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
		full, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(full, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s: goroutine started at %s", name, fset.Position(g.Pos()))
			}
			return true
		})
		checked++
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
	gobin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list gave %d deps", len(deps))
	}
	for _, d := range deps {
		for _, rule := range forbiddenDeep {
			if matches(d, rule) {
				t.Errorf("crdt depends on %s", d)
			}
		}
	}
}
