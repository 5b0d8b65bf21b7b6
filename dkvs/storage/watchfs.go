package storage

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// watchFS is the file system Pebble runs on: the data directory's own
// (the operating system's, or a test's), with three changes.
//
//   - Preallocation is off. Pebble reserves 110% of the memtable size for
//     every new write-ahead log (fallocate with KEEP_SIZE: du counts it, ls
//     does not) and keeps several logs until their memtables are flushed,
//     which made a store of a few MiB take hundreds on disk. Logs are still
//     recycled (a recycled log is rewritten in place, which is what spares
//     a synced write a metadata update), so synced writes do not pay for
//     it: see docs/performance.md.
//   - Every error of a write, a sync or a read is reported to onError
//     before Pebble sees it, so that the store refuses new writes before a
//     second writer can reach a log writer that has failed (Pebble panics
//     on a write to a failed log).
//   - Syncs of write-ahead logs are timed, so that a sync that has not
//     come back for seconds (a stalled disk) is seen while it lasts.
type watchFS struct {
	vfs.FS
	onError func(op, path string, err error)
	syncs   *syncTracker
	// preallocate passes Pebble's preallocation through, as before issue
	// 19: only for the benchmark that compares the two.
	preallocate bool
}

var _ vfs.FS = (*watchFS)(nil)

// isLog reports whether path names a write-ahead log.
func isLog(path string) bool { return strings.HasSuffix(path, ".log") }

func (w *watchFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		w.onError("open", name, err)
		return nil, err
	}
	return &watchFile{File: f, fs: w, path: name, log: isLog(name)}, nil
}

// Create implements vfs.FS.
func (w *watchFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := w.FS.Create(name, category)
	return w.wrap(name, f, err)
}

// OpenReadWrite implements vfs.FS.
func (w *watchFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := w.FS.OpenReadWrite(name, category, opts...)
	return w.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS.
func (w *watchFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := w.FS.ReuseForWrite(oldname, newname, category)
	return w.wrap(newname, f, err)
}

// Open implements vfs.FS. Files opened for reading are watched for read
// errors; a file that does not exist is not an error worth reporting.
func (w *watchFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := w.FS.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	return &watchFile{File: f, fs: w, path: name}, nil
}

// Unwrap implements vfs.FS.
func (w *watchFS) Unwrap() vfs.FS { return w.FS }

type watchFile struct {
	vfs.File
	fs   *watchFS
	path string
	log  bool
}

func (f *watchFile) check(op string, err error) error {
	if err != nil {
		f.fs.onError(op, f.path, err)
	}
	return err
}

func (f *watchFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.check("write", err)
}

func (f *watchFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.check("write", err)
}

func (f *watchFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	if err != nil && n == 0 && !isEOF(err) {
		f.check("read", err)
	}
	return n, err
}

func (f *watchFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	if err != nil && !isEOF(err) {
		f.check("read", err)
	}
	return n, err
}

// Preallocate does nothing (see watchFS).
func (f *watchFile) Preallocate(offset, length int64) error {
	if f.fs.preallocate {
		return f.File.Preallocate(offset, length)
	}
	return nil
}

func (f *watchFile) timed(sync func() error) error {
	if !f.log {
		return f.check("sync", sync())
	}
	f.fs.syncs.begin()
	err := sync()
	f.fs.syncs.end()
	return f.check("sync", err)
}

func (f *watchFile) Sync() error     { return f.timed(f.File.Sync) }
func (f *watchFile) SyncData() error { return f.timed(f.File.SyncData) }

func (f *watchFile) SyncTo(length int64) (bool, error) {
	var full bool
	err := f.timed(func() error {
		var err error
		full, err = f.File.SyncTo(length)
		return err
	})
	return full, err
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// syncTracker follows the syncs of write-ahead logs under way: a disk is
// stalled when a sync has been waiting for longer than a threshold with
// none completed meanwhile.
type syncTracker struct {
	inflight atomic.Int64
	progress atomic.Int64 // unix nanoseconds of the last sync begun on an idle log, or ended
	now      func() time.Time
}

func (t *syncTracker) begin() {
	if t.inflight.Add(1) == 1 {
		t.progress.Store(t.now().UnixNano())
	}
}

func (t *syncTracker) end() {
	t.progress.Store(t.now().UnixNano())
	t.inflight.Add(-1)
}

// stalled returns how long syncs have been waiting without progress, or
// zero when none waits.
func (t *syncTracker) stalled() time.Duration {
	if t.inflight.Load() <= 0 {
		return 0
	}
	d := t.now().Sub(time.Unix(0, t.progress.Load()))
	if d < 0 {
		return 0
	}
	return d
}
