package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tidwall/redcon"
)

// chunkReader returns data in chunks of the given sizes (cycled), like a
// network connection would.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		n = max(1, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

var testLimits = guardLimits{maxArgs: 1000, maxRequest: 1 << 16, maxInline: 1 << 10}

// readAll reads every command redcon gets through a guard.
func readAll(data []byte, sizes []int, lim guardLimits) ([]redcon.Command, *guard, error) {
	g := newGuard(&chunkReader{data: data, sizes: sizes}, lim)
	rd := redcon.NewReader(g)
	var cmds []redcon.Command
	for {
		cmd, err := rd.ReadCommand()
		if err != nil {
			return cmds, g, err
		}
		cmds = append(cmds, cmd)
	}
}

func TestGuard(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		args    [][]string // commands expected before the error
		wantErr string     // "" means io.EOF
	}{
		{"one", "*1\r\n$4\r\nPING\r\n", [][]string{{"PING"}}, ""},
		{"two", "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", [][]string{{"PING"}, {"ECHO", ""}}, ""},
		{"inline", "GET a\r\nGET b\n", [][]string{{"GET", "a"}, {"GET", "b"}}, ""},
		{"args at limit", "*1000\r\n", nil, ""},
		{"args over limit", "*1001\r\n", nil, "Protocol error: invalid multibulk length"},
		{"19 digits", "*1\r\n$1000000000000000000\r\n", nil, "Protocol error: invalid bulk length"},
		{"request limit", "*1\r\n$65530\r\n", nil, "Protocol error: request larger than 65536 bytes"},
		{"inline limit", strings.Repeat("x", 1<<10+1), nil, "Protocol error: too big inline request"},
		{"inline at limit", strings.Repeat("x", 1<<10) + "\n", [][]string{{strings.Repeat("x", 1<<10)}}, ""},
		{"error after good", "*1\r\n$4\r\nPING\r\n*1\r\n%", [][]string{{"PING"}}, "Protocol error: expected '$', got '%'"},
		{"bad CRLF after payload", "*1\r\n$1\r\nab", nil, "Protocol error: invalid bulk length"},
		{"bad LF after payload", "*1\r\n$1\r\na\rb", nil, "Protocol error: invalid bulk length"},
		{"bad LF after count", "*1\rx", nil, "Protocol error: invalid multibulk length"},
		{"empty count", "*\r\n", nil, "Protocol error: invalid multibulk length"},
	}
	for _, c := range cases {
		for _, sizes := range [][]int{nil, {1}, {3, 1, 7}} {
			cmds, _, err := readAll([]byte(c.in), sizes, testLimits)
			var got [][]string
			for _, cmd := range cmds {
				var args []string
				for _, a := range cmd.Args {
					args = append(args, string(a))
				}
				got = append(got, args)
			}
			if len(got) != len(c.args) {
				t.Errorf("%s %v: commands %q, want %q", c.name, sizes, got, c.args)
			} else {
				for i := range got {
					if strings.Join(got[i], "|") != strings.Join(c.args[i], "|") {
						t.Errorf("%s %v: command %d = %q, want %q", c.name, sizes, i, got[i], c.args[i])
					}
				}
			}
			if c.wantErr == "" {
				if !errors.Is(err, io.EOF) {
					t.Errorf("%s %v: error %v, want EOF", c.name, sizes, err)
				}
			} else if err == nil || err.Error() != c.wantErr {
				t.Errorf("%s %v: error %v, want %q", c.name, sizes, err, c.wantErr)
			}
		}
	}
}

// TestGuardReadsWholeCommands: the guard keeps reading until a command
// ends, so a command arriving byte by byte reaches redcon in one piece.
func TestGuardReadsWholeCommands(t *testing.T) {
	in := []byte(strings.Repeat("*2\r\n$4\r\nECHO\r\n$10\r\n0123456789\r\n", 3))
	g := newGuard(&chunkReader{data: in, sizes: []int{1}}, testLimits)
	p := make([]byte, 4096)
	n, err := g.Read(p)
	if err != nil || n != len(in)/3 {
		t.Fatalf("Read = %d, %v; want one whole command of %d bytes", n, err, len(in)/3)
	}
	if g.framed != 1 || !g.atBoundary() {
		t.Fatalf("framed %d, boundary %v", g.framed, g.atBoundary())
	}
	// A full p returns even mid-command.
	n, err = g.Read(p[:5])
	if err != nil || n != 5 || g.atBoundary() {
		t.Fatalf("Read into 5 bytes = %d, %v", n, err)
	}
}

// FuzzRequestStream feeds arbitrary bytes, cut into arbitrary chunks,
// through the guard into redcon's reader: it must never panic or hang,
// and when the guard passes everything, redcon must have produced one
// command per multibulk the guard framed.
func FuzzRequestStream(f *testing.F) {
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"), uint8(0))
	f.Add([]byte("PING\r\nSET a \"b c\"\r\n"), uint8(3))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$9223372036854775807\r\n"), uint8(1))
	f.Add([]byte("*999999999999999999\r\n"), uint8(2))
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$-1\r\n"), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var sizes []int
		if chunk > 0 {
			sizes = []int{int(chunk), 1, int(chunk) * 3}
		}
		cmds, g, err := readAll(data, sizes, testLimits)
		for _, cmd := range cmds {
			if len(cmd.Args) == 0 || len(cmd.Args) > int(testLimits.maxArgs) {
				t.Fatalf("command with %d args", len(cmd.Args))
			}
		}
		if errors.Is(err, io.EOF) && !g.inlineSeen && g.atBoundary() && uint64(len(cmds)) != g.framed {
			t.Fatalf("redcon gave %d commands, guard framed %d", len(cmds), g.framed)
		}
		if !bytes.HasPrefix(data, []byte("*")) && !g.inlineSeen && len(data) > 0 {
			t.Fatalf("inline input not noticed")
		}
	})
}
