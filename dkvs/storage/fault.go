package storage

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// State is what the store can take: every write, deletions only, or no
// write at all. Reads are tried in every state.
type State uint8

// States, from the healthiest. The numbers are those of the protocol
// (wire.StorageState).
const (
	// StateOK takes every write.
	StateOK State = 0
	// StateFull: the free space of the data directory's file system is
	// below the server's minimum (SetSpace); new values are refused,
	// deletions are taken (they free space once compacted).
	StateFull State = 1
	// StateSlow: a sync of the write-ahead log has been waiting for longer
	// than Options.StallThreshold; writes are refused until it completes,
	// so that they fail at once instead of waiting out their deadline.
	StateSlow State = 2
	// StateFailed: the engine failed (a write or sync error, a panic, an
	// I/O error or a damaged file found on read); the instance takes no
	// write again. Pebble cannot go on after a failed log write, so only a
	// new process recovers: see docs/design.md.
	StateFailed State = 3
)

var stateNames = [...]string{"ok", "full", "slow", "failed"}

// String returns the state's name: ok, full, slow or failed.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// DefaultStallThreshold is how long a sync of the write-ahead log may
// wait before the store refuses writes (StateSlow).
const DefaultStallThreshold = 2 * time.Second

// DefaultCloseTimeout bounds Close.
const DefaultCloseTimeout = 10 * time.Second

// Health is the store's state and why.
type Health struct {
	State State
	// Cause says why the state is not StateOK (the engine's error, the
	// free space, the length of the stall).
	Cause string
	// Since is when the store failed (zero unless StateFailed).
	Since time.Time
}

// Fault describes the failure of the store, given once to
// Options.OnFault.
type Fault struct {
	// Op is what failed: "write", "sync", "read", "open", or "panic" for
	// a panic of the engine during a write.
	Op string
	// Path is the file concerned, when known.
	Path string
	// Err is the cause.
	Err error
	// Damaged is set when a file was found damaged (a checksum mismatch
	// of the engine): the data directory is marked so, and the next Open
	// refuses it (or moves it aside, with Options.MoveAsideDamaged).
	Damaged bool
	// DiskFull is set when the cause is a file system without space
	// (ENOSPC or EDQUOT).
	DiskFull bool
	// Time is when it happened.
	Time time.Time
}

// Error describes the fault in one line.
func (f Fault) Error() string {
	var b strings.Builder
	b.WriteString(f.Op)
	if f.Path != "" {
		b.WriteString(" ")
		b.WriteString(filepath.Base(f.Path))
	}
	b.WriteString(": ")
	b.WriteString(f.Err.Error())
	return b.String()
}

// ErrFailed matches the refusals of a store that failed (StateFailed).
// It wraps errcode.IO.
var ErrFailed = fmt.Errorf("storage failed: %w", errcode.IO)

// ErrDamaged is returned by Open for a data directory with a damaged log
// or table, or marked damaged while a server ran on it. It wraps
// errcode.IO.
var ErrDamaged = fmt.Errorf("storage: data directory damaged: %w", errcode.IO)

// RefusedError is a write the store refused without handing it to the
// engine, because of its state: the write was not applied.
type RefusedError struct {
	State  State
	Detail string
}

func (e *RefusedError) Error() string {
	switch e.State {
	case StateFull:
		return "storage: write refused: disk nearly full: " + e.Detail
	case StateSlow:
		return "storage: write refused: disk stalled: " + e.Detail
	default:
		return "storage: write refused: storage failed: " + e.Detail
	}
}

// Is matches ErrFailed for a failed store.
func (e *RefusedError) Is(target error) bool { return target == ErrFailed && e.State == StateFailed }

// Unwrap returns errcode.IO.
func (e *RefusedError) Unwrap() error { return errcode.IO }

// Refused returns the state that made the store refuse a write, if err is
// such a refusal.
func Refused(err error) (State, bool) {
	var r *RefusedError
	if errors.As(err, &r) {
		return r.State, true
	}
	return StateOK, false
}

// faults is the store's fault state.
type faults struct {
	failed atomic.Bool
	wedged atomic.Bool  // a write panicked inside the engine: it cannot be closed
	space  atomic.Int64 // bytes new values may still take (SetSpace)
	once   sync.Once

	mu      sync.Mutex
	fault   Fault  // guarded by mu; set once
	fullWhy string // guarded by mu
}

// isDiskFull reports whether err says the file system has no space.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// isCorruption reports whether err says a file the engine read is damaged.
func isCorruption(err error) bool { return pebble.IsCorruptionError(err) }

// fail records the store's failure; the first one wins. The data
// directory is marked damaged when the fault says so, and OnFault is told
// in its own goroutine.
func (d *DB) fail(f Fault) {
	if f.Err == nil {
		return
	}
	if d.opening.Load() {
		return // Open reports its own errors
	}
	d.faults.once.Do(func() {
		if f.Time.IsZero() {
			f.Time = time.Now()
		}
		f.DiskFull = f.DiskFull || isDiskFull(f.Err)
		f.Damaged = f.Damaged || isCorruption(f.Err)
		d.faults.mu.Lock()
		d.faults.fault = f
		d.faults.mu.Unlock()
		d.faults.failed.Store(true)
		if f.Damaged {
			d.markDamaged(f)
		}
		if d.opts.OnFault != nil {
			go d.opts.OnFault(f)
		}
	})
}

// Fault returns the store's failure, if it failed.
func (d *DB) Fault() (Fault, bool) {
	if !d.faults.failed.Load() {
		return Fault{}, false
	}
	d.faults.mu.Lock()
	defer d.faults.mu.Unlock()
	return d.faults.fault, true
}

// NoSpaceLimit is the space budget of a store with no minimum free space
// (the budget of a store SetSpace was never called on).
const NoSpaceLimit = math.MaxInt64

// SetSpace tells the store how many bytes new values may still take
// before the free space of its file system falls below the minimum
// (budget; zero or less: the store is full), and how much is free, in
// words. Every value written spends its size from the budget until the
// next call, so that a fast writer cannot outrun a check of the file
// system made every second (at 15 MB/s, a 48 MiB disk went from its
// minimum to ENOSPC between two checks). While the budget is spent, new
// values are refused and deletions taken.
func (d *DB) SetSpace(budget int64, detail string) {
	d.faults.mu.Lock()
	d.faults.fullWhy = detail
	d.faults.mu.Unlock()
	d.faults.space.Store(budget)
}

func (d *DB) full() bool { return d.faults.space.Load() <= 0 }

// spend takes n bytes written from the space budget.
func (d *DB) spend(n int) {
	if d.faults.space.Load() != NoSpaceLimit {
		d.faults.space.Add(-int64(n))
	}
}

// Health returns the store's state: failed, slow (a log sync stalled),
// full, or ok, the first that applies.
func (d *DB) Health() Health {
	if f, ok := d.Fault(); ok {
		return Health{State: StateFailed, Cause: f.Error(), Since: f.Time}
	}
	if s := d.stalled(); s > 0 {
		return Health{State: StateSlow, Cause: fmt.Sprintf("a sync of the write-ahead log has waited %v", s.Round(time.Millisecond))}
	}
	if d.full() {
		d.faults.mu.Lock()
		defer d.faults.mu.Unlock()
		return Health{State: StateFull, Cause: d.faults.fullWhy}
	}
	return Health{State: StateOK}
}

// stalled returns how long a sync of the log has waited past the stall
// threshold, or zero.
func (d *DB) stalled() time.Duration {
	if d.stallAfter <= 0 {
		return 0
	}
	if s := d.syncs.stalled(); s >= d.stallAfter {
		return s
	}
	return 0
}

// admit returns nil when a write may go to the engine, and the refusal
// otherwise. deletion says the write only removes data (a tombstone, a
// hint or a purge), which a full store still takes.
func (d *DB) admit(deletion bool) error {
	if f, ok := d.Fault(); ok {
		d.refused.Add(1)
		return &RefusedError{State: StateFailed, Detail: f.Error()}
	}
	if s := d.stalled(); s > 0 {
		d.refused.Add(1)
		return &RefusedError{State: StateSlow, Detail: fmt.Sprintf("a sync of the write-ahead log has waited %v", s.Round(time.Millisecond))}
	}
	if !deletion && d.full() {
		d.refused.Add(1)
		d.faults.mu.Lock()
		why := d.faults.fullWhy
		d.faults.mu.Unlock()
		return &RefusedError{State: StateFull, Detail: why}
	}
	return nil
}

// engine runs a write to Pebble. An error fails the store; so does a
// panic, which Pebble raises on a write to a log that failed before: the
// engine then holds its commit lock for ever and can no longer be closed.
func (d *DB) engine(op string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			d.faults.wedged.Store(true)
			err = fmt.Errorf("the engine panicked: %v", p)
			d.fail(Fault{Op: "panic", Err: err})
		}
	}()
	if err = fn(); err != nil && !errors.Is(err, pebble.ErrClosed) {
		d.fail(Fault{Op: op, Err: err})
	}
	return err
}

// readErr turns an error of a Pebble read into the store's error: a
// damaged file or an I/O error fails the store.
func (d *DB) readErr(err error) error {
	if errors.Is(err, pebble.ErrClosed) {
		return ErrClosed
	}
	d.fail(Fault{Op: "read", Err: err})
	return fmt.Errorf("%w: %w", err, errcode.IO)
}

// backgroundRetryPause is how long a failed write of a table holds up the
// flush or compaction that made it. Pebble retries a failed flush at once
// and for ever (its source says so: no backoff yet), which on a full disk
// kept a core busy until space came back.
const backgroundRetryPause = time.Second

// onFSError is told of every failed file operation (watchFS), before
// Pebble sees the error. A failed write or sync of the log or the
// manifest fails the store at once; an error reading any file too. Errors
// writing tables (flushes and compactions, which Pebble retries) are
// logged, at most once a minute, and paused (backgroundRetryPause).
func (d *DB) onFSError(op, path string, err error) {
	base := filepath.Base(path)
	switch {
	case op == "read":
		d.fail(Fault{Op: op, Path: path, Err: err})
	case strings.HasSuffix(base, ".log") || strings.HasPrefix(base, "MANIFEST"):
		d.fail(Fault{Op: op, Path: path, Err: err})
	default:
		d.backgroundError(fmt.Errorf("%s %s: %w", op, base, err))
		time.Sleep(backgroundRetryPause)
	}
}

// backgroundError reports an error of the engine's background work
// (flushes, compactions): a damaged table fails the store; others are
// logged at most once a minute, as Pebble retries them.
func (d *DB) backgroundError(err error) {
	if isCorruption(err) {
		d.fail(Fault{Op: "compaction", Err: err, Damaged: true})
		return
	}
	now := time.Now().UnixNano()
	last := d.lastBGLog.Load()
	if now-last < int64(time.Minute) || !d.lastBGLog.CompareAndSwap(last, now) {
		return
	}
	switch {
	case d.log == nil:
	case d.opening.Load() && isDiskFull(err):
		d.log.Warn("storage: opening the store needs free space to flush its write-ahead log: waiting for it (retried every second)", "err", err)
	default:
		d.log.Warn("storage: background work failed (retried)", "err", err)
	}
}
