package storage

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// RangeOptions select what ScanRange returns.
type RangeOptions struct {
	// Tombstones includes tombstones.
	Tombstones bool
	// Values reads each entry's record, value included: one point read
	// per entry, on top of the index's. Without a Snapshot, the record
	// read may be newer than the index entry (a write in between): the
	// entry then carries the newer record, or is skipped if the record
	// was removed.
	Values bool
	// After resumes a scan after this key: entries up to it, in the
	// scan's order, are skipped. Its position must lie in the range. The
	// last key a scan passed to fn is the cursor to resume it from.
	After []byte
}

// RangeEntry is one record met by ScanRange.
type RangeEntry struct {
	Pos    ring.Hash // the key's ring position, ring.SHA1(Key)
	Key    []byte    // valid only during the call
	Record kv.Record // without a value unless RangeOptions.Values; a value may be kept
	Stored int       // bytes of the value as stored (after compression)
}

// ScanRange calls fn, until it returns false, for each record whose key's
// ring position p (ring.SHA1 of the key) lies in [start, end), in ring
// order: by position, then by key. The range wraps around: when end <=
// start it is [start, 2^160) followed by [0, end), so start == end is
// the whole ring, visited from start. A server's share of the ring, the
// positions (prev, pos] up to its node at pos, is ScanRange(prev+1,
// pos+1) (see ring.Hash.Next). It reads the ring index: its cost grows
// with the range, not with the store. The entries are those of a
// consistent view of the index taken when the scan starts; a Snapshot
// gives one view to several scans.
func (d *DB) ScanRange(start, end ring.Hash, o RangeOptions, fn func(RangeEntry) bool) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	return scanRange(d.db, start, end, o, fn)
}

// segment is a range of index keys, [lower, upper).
type segment struct{ lower, upper []byte }

// segments returns the index key ranges of the positions [start, end), in
// scan order.
func segments(start, end ring.Hash) []segment {
	lower := indexKey(nil, start, nil)
	if bytes.Compare(start[:], end[:]) < 0 {
		return []segment{{lower, indexKey(nil, end, nil)}}
	}
	return []segment{{lower, []byte{spaceRing + 1}}, {[]byte{spaceRing}, indexKey(nil, end, nil)}}
}

func scanRange(r pebble.Reader, start, end ring.Hash, o RangeOptions, fn func(RangeEntry) bool) error {
	segs := segments(start, end)
	if o.After != nil {
		// Drop what comes up to the cursor: the segments before the one
		// that holds it, and the start of that one.
		ik := indexKey(nil, ring.SHA1(o.After), o.After)
		for len(segs) > 0 && !(bytes.Compare(segs[0].lower, ik) <= 0 && bytes.Compare(ik, segs[0].upper) < 0) {
			segs = segs[1:]
		}
		if len(segs) == 0 {
			return fmt.Errorf("storage: resume after %q: its position is outside [%s, %s): %w", o.After, start, end, errcode.InvalidArg)
		}
		segs[0].lower = append(ik, 0)
	}
	// One iterator for both segments of a range that wraps: one view.
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: segs[0].lower, UpperBound: segs[0].upper})
	if err != nil {
		return fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	defer it.Close()
	for i, s := range segs {
		if i > 0 {
			it.SetBounds(s.lower, s.upper)
		}
		more, err := scanSegment(r, it, o, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// scanSegment scans the index through it, within its bounds; more is
// false when fn stopped the scan.
func scanSegment(r pebble.Reader, it *pebble.Iterator, o RangeOptions, fn func(RangeEntry) bool) (more bool, err error) {
	var pk []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 1+ring.HashSize {
			return false, fmt.Errorf("storage: ring index key %x: %w", k, ErrCorrupt)
		}
		e := RangeEntry{Key: k[1+ring.HashSize:]}
		copy(e.Pos[:], k[1:])
		v, err := it.ValueAndErr()
		if err != nil {
			return false, fmt.Errorf("storage: %w: %w", err, errcode.IO)
		}
		h, err := decodeIndexValue(v)
		if err != nil {
			return false, fmt.Errorf("storage: ring index of key %q: %w", e.Key, err)
		}
		e.Record, e.Stored = h.record(), h.stored
		if o.Values {
			pk = append(append(pk[:0], spaceData), e.Key...)
			rec, hd, found, err := readRecord(r, pk)
			if errors.Is(err, ErrCorrupt) {
				// Never served: a get of it sets it aside, and its
				// replicas have it (a stream's verifying pass, a read
				// repair); one bad record does not stop a range.
				continue
			}
			if err != nil {
				return false, fmt.Errorf("storage: key %q: %w", e.Key, err)
			}
			if !found {
				continue
			}
			e.Record, e.Stored = rec, hd.stored
		}
		if e.Record.Tombstone && !o.Tombstones {
			continue
		}
		if !fn(e) {
			return false, nil
		}
	}
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	return true, nil
}

// readRecord reads and decodes the record stored under pk.
func readRecord(r pebble.Reader, pk []byte) (kv.Record, header, bool, error) {
	v, closer, err := r.Get(pk)
	if errors.Is(err, pebble.ErrNotFound) {
		return kv.Record{}, header{}, false, nil
	}
	if err != nil {
		return kv.Record{}, header{}, false, fmt.Errorf("%w: %w", err, errcode.IO)
	}
	defer closer.Close()
	h, err := decodeHeader(v)
	if err != nil {
		return kv.Record{}, header{}, false, err
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return kv.Record{}, header{}, false, err
	}
	return rec, h, true, nil
}

// Snapshot is a consistent, read-only view of the store as it was when
// DB.Snapshot took it, for reading a range while writes go on (handing a
// range over). It holds back the removal of the versions it can see, so
// the disk space they take is reclaimed only once it is closed: close it
// as soon as the reading is done. DB.Close closes the snapshots still
// open. It is safe for concurrent use.
type Snapshot struct {
	d      *DB
	mu     sync.RWMutex // held shared by reads, exclusively by Close
	snap   *pebble.Snapshot
	closed bool
}

// snapshots are the snapshots a DB has open.
type snapshots struct {
	mu   sync.Mutex
	open map[*Snapshot]struct{}
}

// ErrSnapshotClosed is returned by the reads of a closed Snapshot. It
// wraps errcode.IO.
var ErrSnapshotClosed = fmt.Errorf("storage: snapshot closed: %w", errcode.IO)

// Snapshot returns a consistent view of the store as it is now. The
// caller must close it.
func (d *DB) Snapshot() (*Snapshot, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer d.leave()
	s := &Snapshot{d: d, snap: d.db.NewSnapshot()}
	d.snaps.mu.Lock()
	if d.snaps.open == nil {
		d.snaps.open = map[*Snapshot]struct{}{}
	}
	d.snaps.open[s] = struct{}{}
	d.snaps.mu.Unlock()
	return s, nil
}

// enter makes a read of the snapshot wait out Close, and fail after it.
func (s *Snapshot) enter() error {
	if err := s.d.enter(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		s.d.leave()
		return ErrSnapshotClosed
	}
	return nil
}

func (s *Snapshot) leave() {
	s.mu.RUnlock()
	s.d.leave()
}

// ScanRange is DB.ScanRange on the snapshot: values (RangeOptions.Values)
// are read from the snapshot too, so they are those of the entries.
func (s *Snapshot) ScanRange(start, end ring.Hash, o RangeOptions, fn func(RangeEntry) bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return scanRange(s.snap, start, end, o, fn)
}

// Get is DB.Get on the snapshot.
func (s *Snapshot) Get(key []byte) (rec kv.Record, found bool, err error) {
	if err := s.enter(); err != nil {
		return kv.Record{}, false, err
	}
	defer s.leave()
	rec, _, found, err = readRecord(s.snap, spaceKey(spaceData, key))
	if err != nil {
		return kv.Record{}, false, fmt.Errorf("storage: key %q: %w", key, err)
	}
	return rec, found, nil
}

// Close releases the snapshot; later reads return ErrSnapshotClosed.
// Closing it again, or after DB.Close, does nothing.
func (s *Snapshot) Close() error {
	s.mu.Lock()
	err := s.closeLocked()
	s.mu.Unlock()
	s.d.snaps.mu.Lock()
	delete(s.d.snaps.open, s)
	s.d.snaps.mu.Unlock()
	return err
}

func (s *Snapshot) closeLocked() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.snap.Close(); err != nil {
		return fmt.Errorf("storage: close snapshot: %w: %w", err, errcode.IO)
	}
	return nil
}

// closeSnapshots closes the snapshots still open, before Pebble is closed
// (it refuses to close with snapshots open). d.mu must be held
// exclusively, so no read of them is under way.
func (d *DB) closeSnapshots() error {
	d.snaps.mu.Lock()
	open := d.snaps.open
	d.snaps.open = nil
	d.snaps.mu.Unlock()
	var errs []error
	for s := range open {
		s.mu.Lock()
		errs = append(errs, s.closeLocked())
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}
