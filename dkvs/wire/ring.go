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

// OpStream asks a server for the records that the sender gains in a move
// of the ring and that this server holds (a StreamRequest); it answers
// a StreamResponse.
const OpStream Op = 23

// Stream passes.
const (
	// StreamPrimary asks only for the records this server is the first
	// live current home of (the bulk copy: each record once).
	StreamPrimary = 0
	// StreamAll asks for every such record this server holds.
	StreamAll = 1
	// StreamVerify asks for the same records as StreamAll without their
	// values (key, version, flags): the verification after every server
	// knows the move, where the requester fetches (with get) only the
	// records it lacks or holds older. Most of them arrived in the first
	// pass, so the second costs keys and versions, not values.
	StreamVerify = 2
)

// StreamRequest asks for one page of the records the requester gains in
// move Move, held by the receiver, after key After in ring order (the
// key's SHA-1 position, then the key; empty: from the start).
type StreamRequest struct {
	Move uint64 // the epoch the move began in
	Dest string // the requester, the server that gains them
	Pass uint8  // StreamPrimary, StreamAll or StreamVerify
	// Skip lists current homes the requester found down: with
	// StreamPrimary, the first home not among them is the source.
	Skip     []string
	After    []byte
	MaxBytes uint32
}

// Append appends the body.
func (m StreamRequest) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, m.Move)
	b = AppendBytes(b, []byte(m.Dest))
	b = append(b, m.Pass)
	b = binary.AppendUvarint(b, uint64(len(m.Skip)))
	for _, s := range m.Skip {
		b = AppendBytes(b, []byte(s))
	}
	b = AppendBytes(b, m.After)
	return binary.BigEndian.AppendUint32(b, m.MaxBytes)
}

// maxSkip bounds a stream request's skip list (a ring has at most a few
// hundred servers; anything bigger is garbage).
const maxSkip = 4096

// DecodeStreamRequest decodes a stream request body.
func DecodeStreamRequest(body []byte) (StreamRequest, error) {
	r := reader{b: body}
	var m StreamRequest
	if len(r.b) < 8 {
		return m, errors.New("stream request: move id truncated")
	}
	m.Move = binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	m.Dest = string(r.bytes("dest"))
	m.Pass = r.u8("pass")
	if r.err == nil && m.Pass > StreamVerify {
		r.fail("stream pass")
	}
	n := r.uvarint("skip count")
	if r.err == nil && n > maxSkip {
		r.fail("skip count")
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		m.Skip = append(m.Skip, string(r.bytes("skip")))
	}
	m.After = r.bytes("after")
	m.MaxBytes = r.u32("max bytes")
	return m, r.done()
}

// StreamResponse is one page of a stream: records (compressed payload),
// and where the next page starts when More is set: Next is a key, in
// ring order, and may be past the last record (the sender scanned further
// without finding more).
type StreamResponse struct {
	Records []KeyRecord
	More    bool
	Next    []byte
}

// Append appends the body.
func (m StreamResponse) Append(b []byte) []byte {
	var fl uint8
	if m.More {
		fl = 1
	}
	b = append(b, fl)
	b = AppendBytes(b, m.Next)
	return appendPayload(b, appendKeyRecords(nil, m.Records), true)
}

// DecodeStreamResponse decodes a stream page.
func DecodeStreamResponse(body []byte) (StreamResponse, error) {
	r := reader{b: body}
	fl := r.u8("stream flags")
	if r.err == nil && fl > 1 {
		r.fail("stream flags")
	}
	m := StreamResponse{More: fl == 1, Next: r.bytes("next")}
	payload := r.payload()
	if r.err != nil {
		return m, r.done()
	}
	pr := reader{b: payload}
	m.Records = pr.keyRecords(len(payload))
	if err := pr.done(); err != nil {
		return m, err
	}
	return m, r.done()
}
