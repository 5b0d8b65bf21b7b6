package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dkvs/dkvs/dkvs/diskspace"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// What a server does when its storage fails (issue 19; docs/design.md,
// "When the disk fails").
//
// The storage refuses writes itself (storage.RefusedError) the moment it
// is full, stalled or failed, and the server answers such a write at once
// with wire.StatusStorage and the state, which coordinators take as a
// replica that is down for writes (a hint goes to a fallback); its ping
// answers carry the state too, so that its peers and clients skip it for
// writes until it is ok again. Reads are still served.
//
//   - Full: the free space of the data directory's file system, read every
//     second, is below Config.MinFreeSpace. New values are refused,
//     deletions taken; the server takes values again once the space is back
//     (with a margin), by itself.
//   - Slow: a sync of the write-ahead log has waited for seconds. Writes are
//     refused until it returns, by itself.
//   - Failed: the engine failed. Pebble cannot go on after a failed log
//     write (it panics on the next one, holding its commit lock for ever),
//     and a second instance on the same directory in the same process
//     would race the first one's background work, so the server does not
//     reopen its store: it logs one line, keeps answering (reads, and pings
//     saying it failed) for FaultExitDelay, and then, once the free space
//     is back above the minimum (and above storage.OpenSpace) when the
//     cause was a full disk, stops as on SIGTERM and returns an error:
//     dkvs-server exits 129 (ERR_IO) for its supervisor to restart it. Pebble's recovery at open replays the log:
//     every acknowledged write is kept.

// DefaultFaultExitDelay is how long a server whose storage failed keeps
// answering before it stops.
const DefaultFaultExitDelay = 2 * time.Second

// ErrStorageFailed is what ServeAll returns (wrapped, with the cause) when
// it stopped because the storage failed. It wraps errcode.IO.
var ErrStorageFailed = storage.ErrFailed

// storageWatch is the server's side of its storage's health.
type storageWatch struct {
	faults chan storage.Fault
	disk   *diskspace.Monitor // nil: in memory
	exit   chan error         // the server must stop: the storage failed
}

// watchStorage prepares cfg's storage options so that a fault reaches the
// server; call it before opening the storage.
func watchStorage(cfg *Config) *storageWatch {
	w := &storageWatch{faults: make(chan storage.Fault, 1), exit: make(chan error, 1)}
	cfg.Storage.OnFault = func(f storage.Fault) {
		select {
		case w.faults <- f:
		default:
		}
	}
	return w
}

// startStorageWatch sets up the free space check once the storage is
// open, and says what Open did with a damaged directory.
func (s *Server) startStorageWatch() {
	if to, what := s.db.MovedAside(); to != "" {
		s.log.Warn("data directory damaged: moved aside; starting empty, anti-entropy refills it from the other replicas",
			"moved_to", to, "damage", what)
	}
	if s.db.InMemory() {
		return
	}
	stater := s.cfg.DiskStater
	if stater == nil {
		fs := s.cfg.Storage.FS
		if fs == nil {
			fs = vfs.Default
		}
		stater = diskspace.VFS{FS: fs}
	}
	dir := s.cfg.Storage.Dir
	if dir == "" {
		dir = "data" // the storage's default on a given file system
	}
	s.sw.disk = diskspace.New(diskspace.Options{
		Dir:    dir,
		Stater: stater,
		Min:    s.cfg.MinFreeSpace,
		OnCheck: func(u diskspace.Usage, min uint64, low bool) {
			switch {
			case min == 0:
				s.db.SetSpace(storage.NoSpaceLimit, "")
			case low:
				s.db.SetSpace(0, s.sw.disk.Describe())
			default:
				s.db.SetSpace(int64(u.Free-min), s.sw.disk.Describe())
			}
		},
		OnChange: func(low bool, detail string) {
			if low {
				s.log.Warn("free space below the minimum: new values refused, deletions taken", "detail", detail)
			} else {
				s.log.Info("free space back above the minimum: writes taken again", "detail", detail)
			}
		},
	})
	s.sw.disk.Check()
}

// superviseStorage runs with the background work: it checks the free
// space every second and, when the storage fails, decides when the
// server stops (see above).
func (s *Server) superviseStorage(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var fault *storage.Fault
	var exitAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-s.sw.faults:
			fault = &f
			delay := s.cfg.FaultExitDelay
			if delay <= 0 {
				delay = DefaultFaultExitDelay
			}
			exitAt = time.Now().Add(delay)
			s.logFault(f, delay)
			if s.sw.disk != nil {
				s.sw.disk.Check()
			}
		case <-t.C:
			if s.sw.disk != nil {
				s.sw.disk.Check()
			}
		}
		if fault == nil || time.Now().Before(exitAt) {
			continue
		}
		if fault.DiskFull && !s.spaceBack() {
			continue
		}
		select {
		case s.sw.exit <- fmt.Errorf("%w: %s", ErrStorageFailed, fault.Error()):
		default:
		}
		return
	}
}

// spaceBack reports whether the free space is back above the minimum,
// and above what opening the store again needs (storage.OpenSpace),
// after a fault caused by a full disk: a restart before would wait in
// Open, or fail again at once.
func (s *Server) spaceBack() bool {
	u, min, _, ok := s.sw.disk.Last()
	return !ok || u.Free >= max(min, storage.OpenSpace)
}

func (s *Server) logFault(f storage.Fault, delay time.Duration) {
	action := fmt.Sprintf("writes refused; the server stops in %v and exits with status 129 for its supervisor to restart it", delay)
	if f.DiskFull {
		action = "writes refused; the server stops and exits with status 129 for its supervisor to restart it " +
			"once the free space is back above the minimum (" + s.diskDetail() + ")"
	}
	if f.Damaged {
		action += "; the data directory is marked damaged: the restart refuses it unless --on-damage=rebuild"
	}
	s.log.Error("storage failed", "err", f.Error(), "disk_full", f.DiskFull, "damaged", f.Damaged, "action", action)
}

func (s *Server) diskDetail() string {
	if s.sw.disk == nil {
		return "free space unknown"
	}
	return s.sw.disk.Describe()
}

// storageState is what the server's ping answers say of its storage.
func (s *Server) storageState() wire.StorageState {
	return wire.StorageState(s.db.Health().State)
}

// storageRefusal answers a write the storage refused, or reports false.
func storageRefusal(err error) (wire.Frame, bool) {
	if st, ok := storage.Refused(err); ok {
		return wire.Frame{Flags: uint8(wire.StatusStorage), Body: wire.AppendRefusal(nil, wire.StorageState(st), err.Error())}, true
	}
	if errors.Is(err, storage.ErrCorrupt) {
		return fail(wire.StatusCorrupt, "%v", err), true
	}
	return wire.Frame{}, false
}

// storageStats adds the storage's state and counters to the stats.
func (s *Server) storageStats(out *wire.Stats) {
	h := s.db.Health()
	out.Storage = wire.StorageState(h.State).String()
	out.StorageError = h.Cause
	st := s.db.Stats()
	out.CorruptRecords, out.Quarantined, out.WritesRefused, out.DiskSlow = st.Corrupt, st.Quarantined, st.Refused, st.DiskSlow
	if s.sw.disk != nil {
		if u, min, _, ok := s.sw.disk.Last(); ok {
			out.DiskFree, out.DiskTotal, out.MinFree = int64(u.Free), int64(u.Total), int64(min)
		}
	}
}
