package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/dkvs/dkvs/tests/harness"
)

// TestShellScript drives dkvs-client shell through its standard input: a
// session of put, get, del, a failing get, settings and quit. The shell
// prints what the single commands print and goes on after failures.
func TestShellScript(t *testing.T) {
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory"}
	r.StartAll()
	script := strings.Join([]string{
		`put greeting "hello world"`,
		`get greeting`,
		`put "key with spaces" 'single "quoted"'`,
		`get "key with spaces"`,
		`del greeting`,
		`get greeting`,        // fails: not found, and the shell goes on
		`get`,                 // fails: wrong number of arguments
		`frobnicate x`,        // fails: unknown command
		`put k "unterminated`, // fails: quoting
		`set`,                 // n=3 r=2 w=2
		`set level ONE`,       // n=3 r=1 w=1
		`set r 4`,             // fails: above N
		`set level LINEARIZABLE`,
		`put lin v`,
		`get lin`,
		`cat lin lin twice`,
		`get twice`,
		`find twice lin`,
		`dump`,
		`quit`,
		`get lin`, // never runs
	}, "\n") + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Bin(t, "dkvs-client"), "shell")
	cmd.Dir = r.Dir
	cmd.Stdin = strings.NewReader(script)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("shell exited with %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	wantOut := strings.Join([]string{
		"OK",
		"OK hello world",
		"OK",
		`OK single "quoted"`,
		"OK",
		"FAIL",
		"n=3 r=2 w=2 level=DEFAULT",
		"n=3 r=1 w=1 level=ONE",
		"n=3 r=2 w=2 level=LINEARIZABLE",
		"OK",
		"OK v",
		"OK",
		"OK vv",
		"OK 0",
		"key with spaces --> single \"quoted\"",
		"lin --> v",
		"twice --> vv",
	}, "\n") + "\n"
	if out.String() != wantOut {
		t.Fatalf("stdout:\n%s\nwant:\n%s\nstderr:\n%s", out.String(), wantOut, errb.String())
	}
	errLines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	wantErr := []string{
		"ERROR: Not found",
		"ERROR: Invalid command: want key",
		"ERROR: Invalid command: unknown command",
		"ERROR: Invalid command: unterminated",
		"ERROR: Invalid command: R=4 and W=1 may not exceed N=3",
	}
	if len(errLines) != len(wantErr) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(errLines), len(wantErr), errb.String())
	}
	for i, w := range wantErr {
		if !strings.HasPrefix(errLines[i], w) {
			t.Errorf("stderr line %d: %q, want prefix %q", i, errLines[i], w)
		}
	}
}

// TestShellTerminal drives the shell through a pseudo-terminal, where it
// uses its line editor: the prompt, a request, a failing request, and the
// history file written on the way out.
func TestShellTerminal(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.Bin(t, "dkvs-client"), "shell")
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=xterm")
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var screen bytes.Buffer
	go io.Copy(&lockedBuffer{mu: &mu, b: &screen}, tty)
	expect := func(what string) {
		t.Helper()
		harness.Eventually(t, 20*time.Second, "terminal shows "+strconv.Quote(what), func() error {
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(screen.String(), what) {
				return fmt.Errorf("screen so far: %q", screen.String())
			}
			return nil
		})
	}
	expect("dkvs> ")
	io.WriteString(tty, "put k \"v w\"\r")
	expect("OK")
	io.WriteString(tty, "get k\r")
	expect("OK v w")
	io.WriteString(tty, "get missing\r")
	expect("FAIL")
	expect("ERROR: Not found")
	io.WriteString(tty, "quit\r")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shell exited with %v; screen:\n%s", err, screen.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("shell did not quit")
	}
	hist, err := os.ReadFile(filepath.Join(home, ".dkvs_history"))
	if err != nil || !strings.Contains(string(hist), `get k`) {
		t.Fatalf("history file: %q %v", hist, err)
	}
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
