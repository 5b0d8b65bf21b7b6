// Package wire is the native dkvs protocol: length-prefixed binary frames
// carrying a request id, and the bodies of each request and response.
//
// The byte layout is documented in docs/protocol.md; this package is its
// only implementation. Decoders never trust a length: every read is bounds
// checked, trailing bytes are an error, and frames above a size limit are
// refused before their body is read.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dkvs/dkvs/dkvs/limits"
)

// HeaderSize is the size of a frame header: length (4), kind (1), flags
// or status (1), request id (8).
const HeaderSize = 14

// headerAfterLen is the part of the header counted by the length field.
const headerAfterLen = HeaderSize - 4

// FrameRoom is what a frame may hold beyond its key and value (header,
// version, lengths): a server accepts frames of its largest key plus its
// largest value plus FrameRoom.
const FrameRoom = 4096

// DefaultMaxFrame is the largest frame accepted by default: a key and a
// value of the default limits, and room for the rest.
const DefaultMaxFrame = limits.DefaultMaxValueSize + limits.DefaultMaxKeySize + FrameRoom

// Op is the operation of a request. A response carries the op of its
// request with RespBit set.
type Op uint8

// Operations.
const (
	OpPing  Op = 1 // liveness and clock: empty body, answered with the server's clock
	OpGet   Op = 2 // read one key's record
	OpPut   Op = 3 // store a record if it is newer than the stored one
	OpScan  Op = 4 // page through a server's records in key order
	OpStats Op = 5 // counters of a server (JSON)

	OpHint     Op = 6 // store a record for another server (sloppy quorum)
	OpPutBatch Op = 7 // store many records (hint handoff, anti-entropy)
	OpAETree   Op = 8 // anti-entropy: hashes of Merkle tree nodes
	OpAEDiff   Op = 9 // anti-entropy: compare the entries of differing leaves
)

// RespBit marks a frame as a response.
const RespBit = 0x80

// GetVersionOnly is a get request flag: answer the record without its
// value (a linearizable write reads versions only).
const GetVersionOnly = 1 << 0

var opNames = map[Op]string{
	OpPing: "ping", OpGet: "get", OpPut: "put", OpScan: "scan", OpStats: "stats",
	OpHint: "hint", OpPutBatch: "put-batch", OpAETree: "ae-tree", OpAEDiff: "ae-diff",
	OpBatch: "batch", OpCoordGet: "coord-get", OpCoordPut: "coord-put", OpCoordDelete: "coord-delete",
	OpRing: "ring", OpRingChange: "ring-change", OpRaft: "raft", OpStream: "stream", OpAuth: "auth",
}

// String returns the op's name.
func (o Op) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Known reports whether o is an operation this version understands.
func (o Op) Known() bool { _, ok := opNames[o]; return ok }

// Status is the outcome carried by a response in the flags byte.
type Status uint8

// Statuses.
const (
	StatusOK          Status = 0 // body per op
	StatusNotFound    Status = 1 // the key is absent: empty body
	StatusTooLarge    Status = 2 // key or value above the server's limit: message body
	StatusBadRequest  Status = 3 // malformed or invalid request: message body
	StatusInternal    Status = 4 // the server failed (storage error): message body
	StatusUnavailable Status = 5 // the server is stopping: message body
	// StatusStorage: the server's storage refused a write without applying
	// it (full, slow or failed): a StorageState byte, then a message.
	StatusStorage Status = 8
	// StatusCorrupt: the record of the key failed its checksum; it is not
	// served, and was set aside until a repair writes the key again:
	// message body.
	StatusCorrupt Status = 9
)

var statusNames = map[Status]string{
	StatusOK: "ok", StatusNotFound: "not found", StatusTooLarge: "too large",
	StatusBadRequest: "bad request", StatusInternal: "internal error", StatusUnavailable: "unavailable",
	StatusFailed: "failed", StatusUnknown: "outcome unknown", StatusStorage: "storage refused", StatusCorrupt: "corrupt record",
	StatusStaleEpoch: "stale epoch", StatusDenied: "denied", StatusAuthRequired: "authentication required",
}

// String returns the status's name.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Frame is one decoded frame. For a request Flags holds request flags; for
// a response it holds the Status.
type Frame struct {
	Kind  uint8 // Op, with RespBit for responses
	Flags uint8
	ID    uint64
	Body  []byte
}

// Op returns the frame's operation without the response bit.
func (f Frame) Op() Op { return Op(f.Kind &^ RespBit) }

// IsResponse reports whether the frame is a response.
func (f Frame) IsResponse() bool { return f.Kind&RespBit != 0 }

// Status returns the status of a response frame.
func (f Frame) Status() Status { return Status(f.Flags) }

// Errors returned by the frame reader.
var (
	ErrFrameTooLarge = errors.New("wire: frame too large")
	ErrFrameShort    = errors.New("wire: frame length below header size")
	ErrMalformed     = errors.New("wire: malformed body")
)

// AppendHeader appends a frame header for a body of bodyLen bytes.
func AppendHeader(b []byte, kind, flags uint8, id uint64, bodyLen int) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(headerAfterLen+bodyLen))
	b = append(b, kind, flags)
	return binary.BigEndian.AppendUint64(b, id)
}

// AppendFrame appends a whole frame.
func AppendFrame(b []byte, f Frame) []byte {
	b = AppendHeader(b, f.Kind, f.Flags, f.ID, len(f.Body))
	return append(b, f.Body...)
}

// Header is a decoded frame header.
type Header struct {
	Kind    uint8
	Flags   uint8
	ID      uint64
	BodyLen int
}

// ParseHeader decodes a 14-byte header and checks its length against
// maxFrame (the largest whole frame accepted, header included).
func ParseHeader(h []byte, maxFrame int) (Header, error) {
	if len(h) < HeaderSize {
		return Header{}, io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n < headerAfterLen {
		return Header{}, ErrFrameShort
	}
	hd := Header{Kind: h[4], Flags: h[5], ID: binary.BigEndian.Uint64(h[6:14])}
	if uint64(n)+4 > uint64(maxFrame) {
		return hd, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, uint64(n)+4, maxFrame)
	}
	hd.BodyLen = int(n) - headerAfterLen
	return hd, nil
}

// ReadFrame reads one frame from r. A frame longer than maxFrame is refused
// with ErrFrameTooLarge after its header; the header is still returned so
// the caller can answer the request id. The body is freshly allocated and
// owned by the caller.
func ReadFrame(r *bufio.Reader, maxFrame int) (Frame, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Frame{}, err
	}
	hd, err := ParseHeader(hb[:], maxFrame)
	f := Frame{Kind: hd.Kind, Flags: hd.Flags, ID: hd.ID}
	if err != nil {
		return f, err
	}
	f.Body = make([]byte, hd.BodyLen)
	if _, err := io.ReadFull(r, f.Body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return f, err
	}
	return f, nil
}

// --- primitives ---

// AppendBytes appends a uvarint length and the bytes.
func AppendBytes(b, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

// reader decodes a body. The first error sticks; later reads return zero
// values, and done reports it along with any trailing bytes.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

func (r *reader) bytes(what string) []byte {
	if r.err != nil {
		return nil
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || k != uvarintLen64(n) || n > uint64(len(r.b)-k) {
		r.fail(what)
		return nil
	}
	out := r.b[k : k+int(n) : k+int(n)]
	r.b = r.b[k+int(n):]
	return out
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || k != uvarintLen64(n) {
		r.fail(what)
		return 0
	}
	r.b = r.b[k:]
	return n
}

// uvarintLen64 is the length of the minimal encoding of n; decoders refuse
// longer ones so that every message has exactly one encoding.
func uvarintLen64(n uint64) int {
	k := 1
	for n >= 0x80 {
		n >>= 7
		k++
	}
	return k
}

func (r *reader) u8(what string) uint8 {
	if r.err != nil || len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32(what string) uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	return r.err
}
