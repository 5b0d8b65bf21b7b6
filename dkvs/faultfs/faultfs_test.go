package faultfs

import (
	"errors"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestDisk: writes fit until the capacity, then fail with ENOSPC; the
// usage reported follows; raising the capacity makes room again.
func TestDisk(t *testing.T) {
	mem := vfs.NewMem()
	if err := mem.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	d := NewDisk(mem, 100, "d")
	f, err := d.Create("d/f", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 60)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the capacity: %v", err)
	}
	u, err := d.GetDiskUsage("d")
	if err != nil || u.AvailBytes != 40 || u.TotalBytes != 100 {
		t.Fatalf("usage %+v %v", u, err)
	}
	d.SetCapacity(200)
	if _, err := f.Write(make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
}

// TestInjector: a rule applies to its operation and files only, until
// cleared.
func TestInjector(t *testing.T) {
	in := &Injector{}
	fs := Wrap(vfs.NewMem(), in)
	in.Set(Rule{Op: Sync, Files: ".log", Err: syscall.EIO})
	for _, c := range []struct {
		name string
		want error
	}{{"a.log", syscall.EIO}, {"a.sst", nil}} {
		f, err := fs.Create(c.name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatalf("%s: write: %v", c.name, err)
		}
		if err := f.Sync(); !errors.Is(err, c.want) {
			t.Fatalf("%s: sync: %v, want %v", c.name, err, c.want)
		}
		f.Close()
	}
	in.Clear()
	f, _ := fs.Create("b.log", vfs.WriteCategoryUnspecified)
	if err := f.Sync(); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
	if in.Hits() != 1 {
		t.Fatalf("hits %d", in.Hits())
	}
}
