package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// run the command line in-process; no server is needed for the cases that
// fail before connecting.
func runCLI(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"dkvs-client"}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestInvalidCommandLines(t *testing.T) {
	dir := t.TempDir()
	// Port 1 on 127.0.0.1: nothing listens there, so anything that gets as
	// far as the network fails with ERR_NETWORK or ERR_NOT_FOUND, not 134.
	os.WriteFile(filepath.Join(dir, "servers.txt"), []byte("127.0.0.1 1 1\n"), 0o644)
	invalid := [][]string{
		{},                              // no command at all
		{"frobnicate", "--", "a"},       // unknown command
		{"get", "abc"},                  // no "--"
		{"get", "abc", "--", "x"},       // a word before "--"
		{"get", "--"},                   // too few arguments
		{"get", "--", "a", "b"},         // too many
		{"put", "--", "a"},              // too few
		{"put", "--", "a", "b", "c"},    // too many
		{"del", "--"},                   //
		{"cat", "--", "a"},              // K >= 1 plus dest
		{"find", "--", "a"},             //
		{"substr", "--", "k", "1", "2"}, // three instead of four
		{"substr", "--", "k", "x", "2", "d"},
		{"get", "-r", "0", "--", "a"},
		{"get", "-r", "-1", "--", "a"},
		{"get", "-r", "abc", "--", "a"},
		{"get", "-r", "1234abc", "--", "a"},
		{"get", "-r", "255", "--", "a"},
		{"get", "-r", "3", "-n", "2", "--", "a"},
		{"put", "-w", "3", "-n", "2", "--", "a", "b"},
		{"get", "-r"},                    // flag with no value
		{"get", "-r", "--", "a"},         // "--" taken as the value
		{"get", "-x", "1", "--", "a"},    // unknown flag
		{"get", "--bogus", "--", "a"},    //
		{"dump-ring", "--", "extra"},     //
		{"dump", "--server", "nonsense"}, // not IP:PORT
		{"bench", "--concurrency", "-1"}, // bench checks its workload first
		{"bench", "--keys", "0"},
		{"bench", "--", "extra"},
	}
	for _, args := range invalid {
		stdout, stderr, code := runCLI(t, dir, args...)
		if code != errcode.InvalidCommand.ExitStatus() {
			t.Errorf("%q: exit %d, want 134 (stderr %q)", args, code, stderr)
			continue
		}
		if !strings.HasPrefix(stderr, "ERROR: ") {
			t.Errorf("%q: stderr %q", args, stderr)
		}
		if !strings.Contains(stdout, "Usage: dkvs-client") {
			t.Errorf("%q: no usage on stdout", args)
		}
		if strings.HasPrefix(stdout, "FAIL") {
			t.Errorf("%q: FAIL printed for a command-line error", args)
		}
	}
}

func TestAcceptedCommandLines(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "servers.txt"), []byte("127.0.0.1 1 1\n"), 0o644)
	// These parse; they fail only at the network (nothing listens).
	for _, args := range [][]string{
		{"get", "--", "a"},
		{"get", "-w", "1", "--", "a"}, // -w is ignored by get
		{"get", "-n", "1", "-r", "1", "--", "-looks-like-a-flag"},
		{"put", "--", "a", ""},          // empty value
		{"put", "-r=1", "--", "a", "b"}, // -r=1 form
		{"del", "-n", "7", "--", "a"},
		{"cat", "--", "a", "b", "dest"},
	} {
		stdout, stderr, code := runCLI(t, dir, args...)
		if code != errcode.Network.ExitStatus() && code != errcode.NotFound.ExitStatus() {
			t.Errorf("%q: exit %d (stderr %q)", args, code, stderr)
		}
		if !strings.HasPrefix(stdout, "FAIL\n") {
			t.Errorf("%q: stdout %q, want FAIL first", args, stdout)
		}
	}
	stdout, _, code := runCLI(t, dir, "help")
	if code != 0 || !strings.HasPrefix(stdout, "Usage: dkvs-client") {
		t.Errorf("help: exit %d %q", code, stdout)
	}
	if _, _, code := runCLI(t, dir, "--help"); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
}

func TestServersFileErrors(t *testing.T) {
	cases := []struct {
		content string
		code    errcode.Code
	}{
		{"", errcode.InvalidConfig},
		{"127.0.001 1234 1\n", errcode.Address},
		{"256.0.0.1 1234 1\n", errcode.Address},
		{"127.0.0.1 0 1\n", errcode.InvalidConfig},
		{"127.0.0.1 70000 1\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 0\n", errcode.InvalidConfig},
		{"127.0.0.1 1234 x\n", errcode.InvalidConfig},
	}
	for _, tc := range cases {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "servers.txt"), []byte(tc.content), 0o644)
		_, stderr, code := runCLI(t, dir, "get", "--", "a")
		if code != tc.code.ExitStatus() {
			t.Errorf("%q: exit %d, want %d (%s)", tc.content, code, tc.code.ExitStatus(), stderr)
		}
	}
	_, _, code := runCLI(t, t.TempDir(), "get", "--", "a") // no servers.txt
	if code != errcode.IO.ExitStatus() {
		t.Errorf("missing servers.txt: exit %d", code)
	}
}

func TestSubstrRange(t *testing.T) {
	v := "hello bbb"
	cases := []struct {
		pos, length int
		want        string
		bad         bool
	}{
		{2, 5, "llo b", false},
		{-1, 1, "b", false},
		{-5, 4, "o bb", false},
		{0, 9, "hello bbb", false},
		{0, 0, "", false},
		{9, 0, "", false},
		{-9, 9, "hello bbb", false},
		{3, 7, "", true},
		{3, -1, "", true},
		{-2, 3, "", true},
		{10, 0, "", true},
		{-10, 1, "", true},
	}
	for _, tc := range cases {
		from, to, err := substrRange(len(v), tc.pos, tc.length)
		if tc.bad {
			if errcode.Of(err) != errcode.InvalidCommand {
				t.Errorf("%d %d: %v", tc.pos, tc.length, err)
			}
			continue
		}
		if err != nil || v[from:to] != tc.want {
			t.Errorf("%d %d: %q %v, want %q", tc.pos, tc.length, v[from:to], err, tc.want)
		}
	}
}

func TestRequestOf(t *testing.T) {
	cases := []struct {
		args    []string
		want    dkvs.Request
		invalid bool
	}{
		{[]string{"x"}, dkvs.Request{N: 3, R: 2, W: 2}, false},
		{[]string{"x", "-c", "ONE"}, dkvs.Request{N: 3, R: 1, W: 1}, false},
		{[]string{"x", "-c", "quorum", "-n", "5"}, dkvs.Request{N: 5, R: 3, W: 3}, false},
		{[]string{"x", "-c", "ALL"}, dkvs.Request{N: 3, R: 3, W: 3}, false},
		{[]string{"x", "-c", "ALL", "-r", "1", "-n", "3"}, dkvs.Request{N: 3, R: 1, W: 3}, false}, // numbers win
		{[]string{"x", "-c", "ALL", "-r", "1"}, dkvs.Request{N: 1, R: 1, W: 1}, false},            // -r alone sets N (cs202)
		{[]string{"x", "-c", "ONE", "-w", "2"}, dkvs.Request{N: 2, R: 1, W: 2}, false},
		{[]string{"x", "-c", "LINEARIZABLE"}, dkvs.Request{N: 3, R: 2, W: 2, Linearizable: true}, false},
		{[]string{"x", "-c", "linearizable", "-n", "5"}, dkvs.Request{N: 5, R: 3, W: 3, Linearizable: true}, false},
		{[]string{"--linearizable", "x", "-n", "4"}, dkvs.Request{N: 4, R: 3, W: 3, Linearizable: true}, false},
		{[]string{"x", "-c", "LINEARIZABLE", "-r", "1", "-n", "3"}, dkvs.Request{}, true},
		{[]string{"x", "-c", "SOME"}, dkvs.Request{}, true},
		{[]string{"x", "-c", ""}, dkvs.Request{}, true},
	}
	for _, tc := range cases {
		var got dkvs.Request
		var gotErr error
		app := &cli.App{
			Flags: []cli.Flag{&cli.BoolFlag{Name: "linearizable"}},
			Commands: []*cli.Command{{Name: "x", Flags: quorumFlags(), Action: func(c *cli.Context) error {
				got, gotErr = requestOf(c)
				return nil
			}}},
		}
		if err := app.Run(append([]string{"app"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if tc.invalid {
			if errcode.Of(gotErr) != errcode.InvalidCommand {
				t.Errorf("%q: %v, want ERR_INVALID_COMMAND", tc.args, gotErr)
			}
			continue
		}
		if gotErr != nil || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.args, got, gotErr, tc.want)
		}
	}
}

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		bad  bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"get k", []string{"get", "k"}, false},
		{"  put  k   v ", []string{"put", "k", "v"}, false},
		{`put k "hello world"`, []string{"put", "k", "hello world"}, false},
		{`put k 'it''s'`, []string{"put", "k", "its"}, false},
		{`put k 'a "b" c'`, []string{"put", "k", `a "b" c`}, false},
		{`put k "a \"q\" \\ \n\t"`, []string{"put", "k", "a \"q\" \\ \n\t"}, false},
		{`put k ""`, []string{"put", "k", ""}, false},
		{`put k a\ b`, []string{"put", "k", "a b"}, false},
		{`put "k"ey v`, []string{"put", "key", "v"}, false},
		{"put\tk\tv", []string{"put", "k", "v"}, false},
		{`put k "open`, nil, true},
		{`put k 'open`, nil, true},
	}
	for _, tc := range cases {
		got, err := splitWords(tc.in)
		if tc.bad != (err != nil) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestLinearizableBeforeOrAfterCommand checks that --linearizable counts
// whether given before the command (global) or after it, for a command
// that defines the flag too (bench): the command's own flag hides the
// global one from c.Bool.
func TestLinearizableBeforeOrAfterCommand(t *testing.T) {
	cases := []struct {
		args []string
		want dkvs.Request
	}{
		{[]string{"y", "-n", "4"}, dkvs.Request{N: 4, R: 2, W: 2}},
		{[]string{"y", "--linearizable", "-n", "4"}, dkvs.Request{N: 4, R: 3, W: 3, Linearizable: true}},
		{[]string{"--linearizable", "y", "-n", "4"}, dkvs.Request{N: 4, R: 3, W: 3, Linearizable: true}},
	}
	for _, tc := range cases {
		var got dkvs.Request
		var gotErr error
		app := &cli.App{
			Flags: []cli.Flag{&cli.BoolFlag{Name: "linearizable"}},
			Commands: []*cli.Command{{Name: "y", Flags: append(quorumFlags(), &cli.BoolFlag{Name: "linearizable"}),
				Action: func(c *cli.Context) error {
					got, gotErr = requestOf(c)
					return nil
				}}},
		}
		if err := app.Run(append([]string{"app"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if gotErr != nil || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.args, got, gotErr, tc.want)
		}
	}
}
