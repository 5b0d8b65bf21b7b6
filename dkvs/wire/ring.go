package wire

import (
	"encoding/binary"
	"errors"
)

// The elastic ring's part of the protocol: requests carry the epoch of
// the ring their sender placed them with, a server that knows a newer
// epoch refuses them with that epoch's ring, and servers ask each other
// for the ring and for changes to it.

// Operations of the elastic ring.
const (
	// OpRing asks a server for the ring it knows: empty body, answered
	// with the ring state (JSON, see package topology).
	OpRing Op = 20
	// OpRingChange asks a server to change the ring (join, leave,
	// replace, remove, abort): the body is a ring command (JSON); the
	// answer is the ring state after it, or StatusFailed.
	OpRingChange Op = 21
	// OpRaft carries the consensus of the ring between servers: the body
	// is one Raft RPC (package membership).
	OpRaft Op = 22
)

// FlagEpoch, in a request's flags, says that the body starts with the
// sender's ring epoch (8 bytes, big-endian); the rest is the operation's
// body. Every operation may carry it; servers check it on the ones that
// read or write records for a key.
const FlagEpoch = 1 << 6

// StatusStaleEpoch answers a request placed with an older ring than the
// server knows: the body is the server's ring state (JSON). Nothing was
// done; the sender updates its ring and places the request again.
const StatusStaleEpoch Status = 10

// AppendEpoch appends the epoch prefix of a request body.
func AppendEpoch(b []byte, epoch uint64) []byte { return binary.BigEndian.AppendUint64(b, epoch) }

// errNoEpoch is returned for a frame that says it has an epoch and is too
// short to hold one.
var errNoEpoch = errors.New("frame flagged with an epoch is shorter than one")

// SplitEpoch returns the epoch of a request (0 when it carries none) and
// the request without it.
func SplitEpoch(f Frame) (uint64, Frame, error) {
	if f.Flags&FlagEpoch == 0 {
		return 0, f, nil
	}
	if len(f.Body) < 8 {
		return 0, f, errNoEpoch
	}
	epoch := binary.BigEndian.Uint64(f.Body)
	f.Flags &^= FlagEpoch
	f.Body = f.Body[8:]
	return epoch, f, nil
}
