package storage

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// A damaged data directory is one Pebble cannot read back: a write-ahead
// log damaged before its end (a torn end is normal after a crash and is
// not damage), a table whose block fails its checksum, or a directory a
// server running on it found damaged and marked so (damagedMarker), since
// a damaged table is found only when read. Open refuses such a directory
// with ErrDamaged and a message naming the way out; with
// Options.MoveAsideDamaged it renames it to DIR.damaged-TIME (never
// deleting it: what it holds may be the only copy of keys written with
// N=1) and starts with an empty one, which anti-entropy refills from the
// other replicas.

// damagedMarker is the file a server writes into its data directory when
// it finds the store damaged while running. Pebble ignores files it does
// not know.
const damagedMarker = "DKVS-DAMAGED"

// isDamage reports whether an error of Open says the files are damaged
// (rather than unreadable, locked, or of another format).
func isDamage(err error) bool {
	return isCorruption(err) || errors.Is(err, record.ErrInvalidChunk) ||
		errors.Is(err, record.ErrZeroedChunk) || errors.Is(err, record.ErrUnexpectedEOF) ||
		errors.Is(err, errDamagedMarker)
}

var errDamagedMarker = errors.New("marked damaged")

// damageHelp is appended to the message of a refused damaged directory.
const damageHelp = "start the server with --on-damage=rebuild to move the directory aside " +
	"and refill an empty one from the other replicas (docs/operations.md)"

// damaged wraps an error of Open that says the directory is damaged.
func damaged(dir string, err error) error {
	return fmt.Errorf("%w: %s: %w; %s", ErrDamaged, dir, err, damageHelp)
}

// checkMarker returns an error if dir holds the damage marker.
func checkMarker(fs vfs.FS, dir string) error {
	f, err := fs.Open(fs.PathJoin(dir, damagedMarker))
	if err != nil {
		return nil // no marker (or no directory yet)
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 4096))
	return fmt.Errorf("%w: %s", errDamagedMarker, strings.TrimSpace(string(b)))
}

// markDamaged writes the damage marker into the data directory, so that
// the next start refuses it (or moves it aside) rather than serving a
// store with a damaged table. Best effort: a disk that takes no write
// cannot be marked, and then the next start finds the damage by itself
// only if it reads the damaged block.
func (d *DB) markDamaged(f Fault) {
	if d.baseFS == nil || d.opts.InMemory {
		return
	}
	name := d.baseFS.PathJoin(d.dir, damagedMarker)
	w, err := d.baseFS.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	fmt.Fprintf(w, "found damaged at %s: %s\n", f.Time.UTC().Format(time.RFC3339), f.Error())
	w.Sync()
	w.Close()
	if dirf, err := d.baseFS.OpenDir(d.dir); err == nil {
		dirf.Sync()
		dirf.Close()
	}
}

// moveAside renames the damaged directory dir to dir.damaged-TIME and
// returns the new name.
func moveAside(fs vfs.FS, dir string, now time.Time) (string, error) {
	to := fmt.Sprintf("%s.damaged-%s", strings.TrimRight(dir, "/"), now.UTC().Format("20060102T150405Z"))
	for i := 1; ; i++ {
		if _, err := fs.Stat(to); err != nil {
			break
		}
		to = fmt.Sprintf("%s.damaged-%s-%d", strings.TrimRight(dir, "/"), now.UTC().Format("20060102T150405Z"), i)
	}
	if err := fs.Rename(dir, to); err != nil {
		return "", fmt.Errorf("storage: move damaged %s aside: %w: %w", dir, err, errcode.IO)
	}
	return to, nil
}
