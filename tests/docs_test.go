package tests

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/tests/harness"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the --help blocks of docs/ from the built commands")

// TestHelpInDocs keeps the --help blocks of docs/ equal to what the
// commands print: each command's --help is the one description of its
// options, and the docs show it verbatim. `make docs` rewrites them.
func TestHelpInDocs(t *testing.T) {
	for _, c := range []struct{ doc, cmd string }{
		{"docs/operations.md", "dkvs-server"},
		{"docs/cli.md", "dkvs-client"},
	} {
		path := filepath.Join(harness.BinDir(), "..", c.doc)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(harness.Bin(t, c.cmd), "--help").Output()
		if err != nil {
			t.Fatalf("%s --help: %v", c.cmd, err)
		}
		block := regexp.MustCompile("(?s)(<!-- BEGIN " + c.cmd + " --help -->\n```text\n)(.*?)(```\n<!-- END " + c.cmd + " --help -->)")
		m := block.FindSubmatchIndex(data)
		if m == nil {
			t.Fatalf("%s: no --help block of %s between its markers", c.doc, c.cmd)
		}
		have := string(data[m[4]:m[5]])
		want := string(out)
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		if have == want {
			continue
		}
		if !*updateDocs {
			t.Errorf("%s: the --help block of %s differs from its output: run make docs", c.doc, c.cmd)
			continue
		}
		updated := string(data[:m[4]]) + want + string(data[m[5]:])
		if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
