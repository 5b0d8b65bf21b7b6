// Package faultfs makes file systems fail on purpose, for tests of what a
// server does when its disk fails: errors (ENOSPC, EIO) on the writes,
// syncs or reads of chosen files, syncs that stall, and a disk of limited
// capacity that runs out of space and reports its free space. Both wrap
// any vfs.FS (Pebble's in-memory one in tests), through Pebble's errorfs
// for the first.
package faultfs

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Op is the kind of file operation a Rule applies to.
type Op uint8

// Operations.
const (
	Write Op = iota + 1 // writes to files, and their creation
	Sync                // syncs of files (fsync, fdatasync, sync_file_range)
	Read                // reads of files
)

func (o Op) String() string {
	switch o {
	case Write:
		return "write"
	case Sync:
		return "sync"
	case Read:
		return "read"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

func (o Op) matches(k errorfs.OpKind) bool {
	switch o {
	case Write:
		return k == errorfs.OpFileWrite || k == errorfs.OpFileWriteAt || k == errorfs.OpCreate || k == errorfs.OpReuseForWrite
	case Sync:
		return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
	case Read:
		return k == errorfs.OpFileRead || k == errorfs.OpFileReadAt
	}
	return false
}

// Rule says which operations fail, and how.
type Rule struct {
	Op Op
	// Files is the suffix of the names of the files concerned: ".log" for
	// write-ahead logs, ".sst" for tables; "" for every file.
	Files string
	// Err is returned by the operation (nil: none).
	Err error
	// Stall is slept before the operation runs (in a testing/synctest
	// bubble, in the bubble's time).
	Stall time.Duration
	// Block, if not nil, is waited for before the operation runs.
	Block <-chan struct{}
}

// Injector applies one Rule at a time, changed while the file system is
// in use. The zero value injects nothing. It implements
// errorfs.Injector.
type Injector struct {
	mu   sync.Mutex
	rule *Rule
	hits int
}

var _ errorfs.Injector = (*Injector)(nil)

// Set makes r the rule from now on.
func (in *Injector) Set(r Rule) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rule = &r
}

// Clear stops injecting.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rule = nil
}

// Hits returns how many operations the rules applied to.
func (in *Injector) Hits() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.hits
}

// String implements errorfs.Injector.
func (in *Injector) String() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rule == nil {
		return "faultfs: nothing"
	}
	return fmt.Sprintf("faultfs: %s of *%s: %v (stall %v)", in.rule.Op, in.rule.Files, in.rule.Err, in.rule.Stall)
}

// MaybeError implements errorfs.Injector.
func (in *Injector) MaybeError(op errorfs.Op) error {
	in.mu.Lock()
	r := in.rule
	if r == nil || !r.Op.matches(op.Kind) || !strings.HasSuffix(op.Path, r.Files) {
		in.mu.Unlock()
		return nil
	}
	in.hits++
	rule := *r
	in.mu.Unlock()
	if rule.Block != nil {
		<-rule.Block
	}
	if rule.Stall > 0 {
		time.Sleep(rule.Stall)
	}
	return rule.Err
}

// Wrap returns fs with in's faults.
func Wrap(fs vfs.FS, in *Injector) vfs.FS { return errorfs.Wrap(fs, in) }
