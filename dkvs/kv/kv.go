// Package kv is the data model of dkvs: versions from a hybrid logical
// clock, and records (a version with a value or a tombstone).
//
// Versions are totally ordered by (Wall, Logical, Writer). Replicas keep the
// newest version of each key (last writer wins); a delete is a record with
// the tombstone flag and no value, so that it too wins over older writes.
package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// VersionSize is the encoded size of a Version.
const VersionSize = 20

// Version orders writes. Wall is physical time in milliseconds since the
// Unix epoch; Logical orders writes within one millisecond (and writes made
// after the clock saw a version from the future); Writer breaks the
// remaining ties and identifies who made the version.
type Version struct {
	Wall    uint64
	Logical uint32
	Writer  uint64
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int {
	switch {
	case v.Wall != o.Wall:
		return cmp(v.Wall < o.Wall)
	case v.Logical != o.Logical:
		return cmp(v.Logical < o.Logical)
	case v.Writer != o.Writer:
		return cmp(v.Writer < o.Writer)
	}
	return 0
}

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}

// Newer reports whether v is strictly newer than o.
func (v Version) Newer(o Version) bool { return v.Compare(o) > 0 }

// IsZero reports whether v is the zero version, older than any real one.
func (v Version) IsZero() bool { return v == Version{} }

// String formats v as wall.logical@writer.
func (v Version) String() string {
	return fmt.Sprintf("%d.%d@%x", v.Wall, v.Logical, v.Writer)
}

// Time returns the wall-clock part of v.
func (v Version) Time() time.Time { return time.UnixMilli(int64(v.Wall)) }

// AppendBinary appends the 20-byte big-endian encoding of v. Encoded
// versions compare bytewise in the same order as Compare.
func (v Version) AppendBinary(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, v.Wall)
	b = binary.BigEndian.AppendUint32(b, v.Logical)
	return binary.BigEndian.AppendUint64(b, v.Writer)
}

// ErrShortVersion is returned when fewer than VersionSize bytes remain.
var ErrShortVersion = errors.New("kv: truncated version")

// DecodeVersion reads a version from the first VersionSize bytes of b.
func DecodeVersion(b []byte) (Version, error) {
	if len(b) < VersionSize {
		return Version{}, ErrShortVersion
	}
	return Version{
		Wall:    binary.BigEndian.Uint64(b[0:8]),
		Logical: binary.BigEndian.Uint32(b[8:12]),
		Writer:  binary.BigEndian.Uint64(b[12:20]),
	}, nil
}

// Record is what a replica stores for a key.
type Record struct {
	Version   Version
	Tombstone bool
	// N is the number of home replicas the key was written to, so that
	// repair knows which servers should hold it. Zero means the record
	// belongs to this server alone (pairs given to dkvs-server at start,
	// datagram puts) and is never copied elsewhere.
	N     uint8
	Value []byte
}

// Live reports whether the record holds a value (it is neither absent nor
// a tombstone).
func (r Record) Live() bool { return !r.Tombstone && !r.Version.IsZero() }

// Clock is a hybrid logical clock. Now returns versions that are strictly
// increasing and never behind any version passed to Observe, so a writer
// whose physical clock is slow still writes after what it has seen. It is
// safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     func() time.Time
	writer  uint64
	wall    uint64
	logical uint32
}

// NewClock returns a clock stamping versions with the given writer id.
// now is the physical clock; nil means time.Now.
func NewClock(writer uint64, now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now, writer: writer}
}

// Writer returns the writer id of this clock.
func (c *Clock) Writer() uint64 { return c.writer }

// Now returns a new version, newer than every version this clock returned
// or observed before.
func (c *Clock) Now() Version {
	phys := uint64(c.now().UnixMilli())
	c.mu.Lock()
	defer c.mu.Unlock()
	if phys > c.wall {
		c.wall, c.logical = phys, 0
	} else {
		c.logical++
		if c.logical == 0 { // counter wrapped: borrow a millisecond
			c.wall++
		}
	}
	return Version{Wall: c.wall, Logical: c.logical, Writer: c.writer}
}

// Observe ratchets the clock forward to a version seen elsewhere, so the
// next Now is newer than it.
func (c *Clock) Observe(v Version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.Wall > c.wall || (v.Wall == c.wall && v.Logical > c.logical) {
		c.wall, c.logical = v.Wall, v.Logical
	}
}

// After returns a version newer than v from this clock: Observe then Now.
func (c *Clock) After(v Version) Version {
	c.Observe(v)
	return c.Now()
}
