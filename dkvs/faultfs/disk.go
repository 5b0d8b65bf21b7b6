package faultfs

import (
	"fmt"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Disk is a file system with a capacity: a write that would take the size
// of the files in its directories above the capacity fails with ENOSPC
// (writing nothing), and GetDiskUsage reports the space left, as statfs
// would. SetCapacity changes the capacity: space freed, or taken by
// someone else.
type Disk struct {
	vfs.FS
	dirs []string

	mu       sync.Mutex
	capacity int64
}

var _ vfs.FS = (*Disk)(nil)

// NewDisk returns fs with a capacity of capacity bytes for the files in
// dirs (not recursive: Pebble keeps its files in one directory).
func NewDisk(fs vfs.FS, capacity int64, dirs ...string) *Disk {
	return &Disk{FS: fs, dirs: dirs, capacity: capacity}
}

// SetCapacity sets the capacity.
func (d *Disk) SetCapacity(capacity int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.capacity = capacity
}

// Used returns the size of the files.
func (d *Disk) Used() int64 {
	var used int64
	for _, dir := range d.dirs {
		names, err := d.FS.List(dir)
		if err != nil {
			continue
		}
		for _, n := range names {
			if fi, err := d.FS.Stat(d.FS.PathJoin(dir, n)); err == nil && !fi.IsDir() {
				used += fi.Size()
			}
		}
	}
	return used
}

// room fails with ENOSPC when n more bytes do not fit.
func (d *Disk) room(name string, n int) error {
	d.mu.Lock()
	capacity := d.capacity
	d.mu.Unlock()
	if d.Used()+int64(n) > capacity {
		return &vfsPathError{op: "write", path: name, err: syscall.ENOSPC}
	}
	return nil
}

type vfsPathError struct {
	op, path string
	err      error
}

func (e *vfsPathError) Error() string { return fmt.Sprintf("%s %s: %v", e.op, e.path, e.err) }
func (e *vfsPathError) Unwrap() error { return e.err }

// GetDiskUsage implements vfs.FS.
func (d *Disk) GetDiskUsage(string) (vfs.DiskUsage, error) {
	d.mu.Lock()
	capacity := d.capacity
	d.mu.Unlock()
	used := d.Used()
	free := capacity - used
	if free < 0 {
		free = 0
	}
	return vfs.DiskUsage{AvailBytes: uint64(free), TotalBytes: uint64(capacity), UsedBytes: uint64(used)}, nil
}

func (d *Disk) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &diskFile{File: f, disk: d, name: name}, nil
}

// Create implements vfs.FS.
func (d *Disk) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := d.FS.Create(name, category)
	return d.wrap(name, f, err)
}

// OpenReadWrite implements vfs.FS.
func (d *Disk) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := d.FS.OpenReadWrite(name, category, opts...)
	return d.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS.
func (d *Disk) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := d.FS.ReuseForWrite(oldname, newname, category)
	return d.wrap(newname, f, err)
}

// Unwrap implements vfs.FS.
func (d *Disk) Unwrap() vfs.FS { return d.FS }

// diskFile checks the room before each write. A write over bytes already
// there (a recycled log) is counted as growth too: the disk is a little
// stricter than a real one.
type diskFile struct {
	vfs.File
	disk *Disk
	name string
}

func (f *diskFile) Write(p []byte) (int, error) {
	if err := f.disk.room(f.name, len(p)); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *diskFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.disk.room(f.name, len(p)); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}
