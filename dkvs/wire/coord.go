package wire

import "encoding/binary"

// Coordinated operations: the receiving server runs the quorum operation
// on the ring for a client that does not know it (or chooses not to),
// with the client's replication parameters or the server's defaults.

// Coordinated operations.
const (
	OpCoordGet    Op = 10 // quorum read on the ring, coordinated by the receiving server
	OpCoordPut    Op = 11 // quorum write on the ring, coordinated by the receiving server
	OpCoordDelete Op = 12 // quorum delete (a tombstone) on the ring, coordinated by the receiving server
)

// Coordinated-operation statuses. They never close the connection: a
// request that decodes but cannot be carried out is answered with one of
// them and the connection stays usable.
const (
	// StatusFailed: the coordinated operation failed; the body carries its
	// DKVS error code and a message (see AppendFailure).
	StatusFailed Status = 6
	// StatusUnknown: a coordinated write failed after some replica may
	// have applied it, so it may or may not become visible; the body is a
	// message. Its error code is ERR_NETWORK.
	StatusUnknown Status = 7
)

// IsCoord reports whether o is a coordinated operation.
func (o Op) IsCoord() bool { return o == OpCoordGet || o == OpCoordPut || o == OpCoordDelete }

// Coordinated-operation parameter flags.
const (
	// CoordLinearizable asks for linearizable mode (strict majority
	// quorums on home replicas).
	CoordLinearizable = 1 << 0
	// CoordDefaults asks for the server's N, R or W and level: N, Q and
	// Level must then be zero.
	CoordDefaults   = 1 << 1
	coordFlagsKnown = CoordLinearizable | CoordDefaults
)

// Consistency levels carried by CoordParams.Level (as in coord.Level).
const (
	CoordLevelDefault = 0
	CoordLevelOne     = 1
	CoordLevelQuorum  = 2
	CoordLevelAll     = 3
)

// CoordParams are the replication parameters of a coordinated operation.
// N, Q and TimeoutMS are carried as they were sent, however large: the
// server checks them and answers StatusFailed with ERR_INVALID_ARGUMENT
// rather than treating a value out of range as undecodable.
type CoordParams struct {
	// Flags: CoordLinearizable, CoordDefaults.
	Flags uint8
	// Level is one of the CoordLevel constants.
	Level uint8
	// N is the number of home replicas (1 to 254; 0 with CoordDefaults).
	N uint64
	// Q is R for coord-get and W for coord-put and coord-delete: 0 means
	// from Level, or min(2, N).
	Q uint64
	// TimeoutMS is how long the client waits for the answer, in
	// milliseconds (0: the server's default). The server caps it.
	TimeoutMS uint64
}

func (p CoordParams) append(b []byte) []byte {
	b = append(b, p.Flags, p.Level)
	b = binary.AppendUvarint(b, p.N)
	b = binary.AppendUvarint(b, p.Q)
	return binary.AppendUvarint(b, p.TimeoutMS)
}

func (r *reader) coordParams() CoordParams {
	p := CoordParams{Flags: r.u8("coord flags"), Level: r.u8("coord level")}
	if p.Flags&^coordFlagsKnown != 0 {
		r.fail("unknown coord flags")
	}
	if p.Level > CoordLevelAll {
		r.fail("unknown consistency level")
	}
	p.N = r.uvarint("coord n")
	p.Q = r.uvarint("coord quorum")
	p.TimeoutMS = r.uvarint("coord timeout")
	return p
}

// CoordRequest is the body of coord-get, coord-put and coord-delete: the
// parameters, the key and (coord-put only) the value.
type CoordRequest struct {
	Params CoordParams
	Key    []byte
	Value  []byte // coord-put only
}

// Append appends the body of a request of operation op.
func (m CoordRequest) Append(b []byte, op Op) []byte {
	b = m.Params.append(b)
	b = AppendBytes(b, m.Key)
	if op == OpCoordPut {
		b = AppendBytes(b, m.Value)
	}
	return b
}

// DecodeCoordRequest decodes the body of a request of operation op (one of
// the coordinated operations).
func DecodeCoordRequest(op Op, body []byte) (CoordRequest, error) {
	r := reader{b: body}
	if !op.IsCoord() {
		r.fail("not a coordinated operation")
	}
	m := CoordRequest{Params: r.coordParams(), Key: r.bytes("key")}
	if op == OpCoordPut {
		m.Value = r.bytes("value")
		if m.Value == nil && r.err == nil {
			m.Value = []byte{}
		}
	}
	return m, r.done()
}

// AppendFailure appends the body of a StatusFailed response: the error's
// code as one byte, 256 + code (the exit status of cs202.md section 4,
// e.g. 0x84 = 132 for ERR_NETWORK), then the message (bytes).
func AppendFailure(b []byte, code uint8, msg string) []byte {
	return AppendMessage(append(b, code), msg)
}

// DecodeFailure decodes the body of a StatusFailed response.
func DecodeFailure(body []byte) (code uint8, msg string, err error) {
	r := reader{b: body}
	code = r.u8("code")
	m := r.bytes("message")
	return code, string(m), r.done()
}
