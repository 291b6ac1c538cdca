package gateway_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/gatekit/gatekit/"

// TestImportRules enforces the layering of DESIGN.md: gateway imports no
// gatekit package, and each sibling (auth, validate, transform, ratelimit,
// proxy, and their subpackages) imports gateway only. Examples may import
// anything.
func TestImportRules(t *testing.T) {
	root := filepath.Join("..")
	siblings := []string{"gateway", "auth", "validate", "transform", "ratelimit", "proxy"}
	checked := 0
	for _, top := range siblings {
		dir := filepath.Join(root, top)
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				rest, ok := strings.CutPrefix(p, module)
				if !ok {
					continue
				}
				target := strings.SplitN(rest, "/", 2)[0]
				switch {
				case target == top:
					// a package's own subpackages
				case top == "gateway":
					t.Errorf("%s imports %s: gateway must not import any gatekit package", path, p)
				case target != "gateway":
					t.Errorf("%s imports %s: %s may import only gateway from gatekit", path, p, top)
				}
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Fatal("no Go files found: the test is looking in the wrong place")
	}
}
