package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tmpfs mounts a tmpfs of size (as mount takes it: "48m") on a new
// directory and unmounts it when the test ends, after the servers the
// test started are gone (call it before NewRing). Mounting needs root:
// CI runs the tests as root (.ci/run); for anyone else the test fails
// saying so, rather than skipping what it was written to check.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("this test needs a small file system to fill: mount -t tmpfs -o size=%s tmpfs %s failed (%v: %s); "+
			"it needs root (CI runs the tests as root: .ci/run, make test)", size, dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		// A server killed at cleanup may still hold files for a moment.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			out, err := exec.Command("umount", dir).CombinedOutput()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("umount %s: %v: %s", dir, err, out)
				return
			}
		}
	})
	return dir
}

// Ballast fills size bytes of the file system holding dir with a file,
// which Free returns.
type Ballast struct{ path string }

// NewBallast writes a file of size bytes into dir.
func NewBallast(t testing.TB, dir string, size int) *Ballast {
	t.Helper()
	p := filepath.Join(dir, "ballast")
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatalf("ballast: %v", err)
	}
	return &Ballast{path: p}
}

// Free removes the ballast: the space comes back.
func (b *Ballast) Free(t testing.TB) {
	t.Helper()
	if err := os.Remove(b.path); err != nil {
		t.Fatalf("free the ballast: %v", err)
	}
}

// Wait waits up to d for server i to exit by itself and returns its exit
// error (nil for status 0).
func (r *Ring) Wait(i int, d time.Duration) error {
	r.t.Helper()
	return r.wait(i, d)
}

// ExitCode returns the exit status an exit error stands for (0 for nil).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	panic(fmt.Sprintf("not an exit error: %v", err))
}

// TermOrExited sends SIGTERM to server i unless it already exited by
// itself, and returns its exit error once it is gone (waiting 15 s at
// most, like Term).
func (r *Ring) TermOrExited(i int) error {
	r.t.Helper()
	r.mu.Lock()
	p := r.procs[i]
	r.mu.Unlock()
	if p == nil {
		r.t.Fatalf("server %d not started", i)
	}
	p.cmd.Process.Signal(syscall.SIGTERM) // fails if it exited: then wait says how
	return r.wait(i, 15*time.Second)
}
