package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// TestOpenKeepsTheCause: a data directory that cannot be opened fails
// with errcode.IO and with the operating system's error, so that a caller
// (or a person reading a test failure) can tell which.
func TestOpenKeepsTheCause(t *testing.T) {
	cases := []struct {
		name  string
		dir   func(t *testing.T) string
		cause error
		root  bool // meaningful for root too
	}{
		{"below a file", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "data")
		}, syscall.ENOTDIR, true},
		{"unwritable parent", func(t *testing.T) string {
			parent := filepath.Join(t.TempDir(), "ro")
			if err := os.Mkdir(parent, 0o500); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(parent, "data")
		}, fs.ErrPermission, false},
		{"unreadable", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o000); err != nil {
				t.Fatal(err)
			}
			return dir
		}, fs.ErrPermission, false},
		{"manifest missing", func(t *testing.T) string {
			// The engine's own error, which wraps the file's.
			dir := t.TempDir()
			d, err := Open(Options{Dir: dir, NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			manifests, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			if err != nil || len(manifests) == 0 {
				t.Fatalf("no manifest in %s: %v", dir, err)
			}
			for _, m := range manifests {
				if err := os.Remove(m); err != nil {
					t.Fatal(err)
				}
			}
			return dir
		}, fs.ErrNotExist, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.root && os.Geteuid() == 0 {
				t.Skip("root is not refused")
			}
			d, err := Open(Options{Dir: tc.dir(t), NoSync: true})
			if err == nil {
				d.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tc.cause) || errcode.Of(err) != errcode.IO {
				t.Fatalf("got %v (%s), want %v and errcode.IO", err, errcode.Of(err).Name(), tc.cause)
			}
		})
	}
}
