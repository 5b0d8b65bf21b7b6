// Package diskspace watches the free space of a server's data directory:
// it reads the file system's usage (statfs, through an interface so that
// tests give their own) every interval, and says when the free space
// falls below a minimum and when it is back above it.
package diskspace

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Usage is what a file system holds.
type Usage struct {
	Free  uint64 // bytes available to the server (statfs f_bavail)
	Total uint64 // bytes of the file system
}

// Stater returns the usage of the file system holding dir.
type Stater interface {
	Usage(dir string) (Usage, error)
}

// VFS reads the usage through a Pebble file system: vfs.Default asks the
// operating system (statfs); test file systems report their own.
type VFS struct{ FS vfs.FS }

var _ Stater = VFS{}

// Usage implements Stater.
func (v VFS) Usage(dir string) (Usage, error) {
	u, err := v.FS.GetDiskUsage(dir)
	if err != nil {
		return Usage{}, err
	}
	return Usage{Free: u.AvailBytes, Total: u.TotalBytes}, nil
}

// Minimum is a minimum free space: a number of bytes, or a percentage of
// the file system's size. The zero value is no minimum.
type Minimum struct {
	Bytes   uint64
	Percent float64
}

// DefaultMinimum is dkvs-server's --min-free-space unless given.
const DefaultMinimum = "256MiB"

var units = []struct {
	suffix string
	mult   uint64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// ParseMinimum reads a minimum: a number of bytes with an optional binary
// unit (1048576, 1024KiB, 1M, 256MiB, 2GiB), or a percentage of the file
// system's size (5%); 0 means none.
func ParseMinimum(s string) (Minimum, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f < 0 || f >= 100 || math.IsNaN(f) {
			return Minimum{}, fmt.Errorf("bad free space %q: want a percentage from 0 to 99", s)
		}
		return Minimum{Percent: f}, nil
	}
	mult := uint64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || (mult > 1 && n > math.MaxUint64/mult) {
		return Minimum{}, fmt.Errorf("bad free space %q: want bytes (e.g. 268435456, 256MiB, 1GiB) or a percentage (e.g. 5%%)", s)
	}
	return Minimum{Bytes: n * mult}, nil
}

// Of returns the minimum in bytes for a file system of total bytes.
func (m Minimum) Of(total uint64) uint64 {
	if m.Percent > 0 {
		return uint64(float64(total) * m.Percent / 100)
	}
	return m.Bytes
}

// String returns the minimum for people: 256 MiB, 5%.
func (m Minimum) String() string {
	if m.Percent > 0 {
		return strconv.FormatFloat(m.Percent, 'f', -1, 64) + "%"
	}
	return Bytes(m.Bytes)
}

// Bytes formats a number of bytes for people: 256 MiB, 1.5 GiB, 912 B.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[exp]
}

// Options configure a Monitor.
type Options struct {
	// Dir is the directory whose file system is watched.
	Dir string
	// Stater reads the usage (default VFS{vfs.Default}: statfs).
	Stater Stater
	// Min is the free space below which the file system is low.
	Min Minimum
	// Interval between reads (default 1s).
	Interval time.Duration
	// OnChange is called (from Check's goroutine) when the file system
	// becomes low, or is no longer: low is the new state, detail says it
	// in words for logs and errors.
	OnChange func(low bool, detail string)
	// OnCheck is called after every read of the usage, with the minimum
	// for it and whether the file system is low.
	OnCheck func(u Usage, min uint64, low bool)
}

// Monitor watches one file system. It is safe for concurrent use.
type Monitor struct {
	opts Options

	mu    sync.Mutex
	usage Usage // last read
	known bool  // a read succeeded
	low   bool
}

// New returns a monitor; call Check once, then Run.
func New(opts Options) *Monitor {
	if opts.Stater == nil {
		opts.Stater = VFS{FS: vfs.Default}
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	return &Monitor{opts: opts}
}

// Check reads the usage once and reports a change of state. A file
// system whose usage cannot be read (an in-memory one) is never low. To
// keep a server at the edge from flapping, a low file system is back once
// its free space exceeds the minimum by a sixteenth.
func (m *Monitor) Check() {
	u, err := m.opts.Stater.Usage(m.opts.Dir)
	m.mu.Lock()
	if err != nil {
		m.known = false
		m.mu.Unlock()
		return
	}
	min := m.opts.Min.Of(u.Total)
	low := m.low
	switch {
	case min == 0:
		low = false
	case !m.low && u.Free < min:
		low = true
	case m.low && u.Free >= min+min/16:
		low = false
	}
	changed := low != m.low
	m.usage, m.known, m.low = u, true, low
	m.mu.Unlock()
	if m.opts.OnCheck != nil {
		m.opts.OnCheck(u, min, low)
	}
	if changed && m.opts.OnChange != nil {
		m.opts.OnChange(low, m.describe(u, min))
	}
}

func (m *Monitor) describe(u Usage, min uint64) string {
	return fmt.Sprintf("%s free of %s, minimum %s (--min-free-space %s)", Bytes(u.Free), Bytes(u.Total), Bytes(min), m.opts.Min)
}

// Run checks every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Check()
		}
	}
}

// Last returns the usage last read and the minimum for it; ok is false
// when none could be read.
func (m *Monitor) Last() (u Usage, min uint64, low, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usage, m.opts.Min.Of(m.usage.Total), m.low, m.known
}

// Describe says how much is free against the minimum, from the last read.
func (m *Monitor) Describe() string {
	u, min, _, ok := m.Last()
	if !ok {
		return "free space unknown"
	}
	return m.describe(u, min)
}
