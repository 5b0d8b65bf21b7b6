// Package quorum holds the replication rules of dkvs in one place: how a
// key's number of home servers (N), the replies a read waits for (R), the
// acknowledgements a write needs (W), a consistency level and the
// linearizable mode resolve into the numbers an operation runs with.
//
// Every entry point asks it: the coordinator (Resolve), the Go client and
// the C library (Explicit, Valid), a client that routes through a server
// (Params) and that server (FromParams), the server's own defaults
// (Defaults), and the command lines of dkvs-client and the thin C client
// (Args, CommandLine, ParseCount; cs202.md section 3), so that the rules
// cannot drift apart. It is pure: no I/O and no state.
package quorum

import (
	"fmt"
	"strings"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// The defaults of the DKVS command line, which every other entry point
// shares: N=3, R=2, W=2 (R and W follow a smaller N down: min(2, N)).
const (
	DefaultN = 3
	DefaultR = 2
	DefaultW = 2
)

// MaxN is the largest N (and so R and W) of the command lines and of a
// coordinated request: DKVS tools carry the numbers in one byte, where
// 255 is no number.
const MaxN = 254

// Level is a named consistency level: how many of a key's N replicas a
// read waits for (R) or a write needs (W).
type Level int

// Levels. LevelDefault leaves R and W to the numbers given (or the cs202
// defaults, min(2, N)).
const (
	LevelDefault Level = iota
	LevelOne           // 1
	LevelQuorum        // N/2 + 1
	LevelAll           // N
)

// ParseLevel parses ONE, QUORUM or ALL (any case).
func ParseLevel(s string) (Level, error) {
	switch strings.ToUpper(s) {
	case "ONE":
		return LevelOne, nil
	case "QUORUM":
		return LevelQuorum, nil
	case "ALL":
		return LevelAll, nil
	}
	return LevelDefault, fmt.Errorf("consistency level %q: want ONE, QUORUM or ALL: %w", s, errcode.InvalidArg)
}

// String returns the level's name.
func (l Level) String() string {
	switch l {
	case LevelOne:
		return "ONE"
	case LevelQuorum:
		return "QUORUM"
	case LevelAll:
		return "ALL"
	}
	return "DEFAULT"
}

// Valid reports whether l is one of the levels.
func (l Level) Valid() bool { return l >= LevelDefault && l <= LevelAll }

// Count returns R or W for a key with n replicas.
func (l Level) Count(n int) int {
	switch l {
	case LevelOne:
		return 1
	case LevelQuorum:
		return Majority(n)
	case LevelAll:
		return n
	}
	return min(2, n)
}

// Majority returns n/2+1.
func Majority(n int) int { return n/2 + 1 }

// Kind says which count of a request an operation uses: R for a read, W
// for a write (a put or a delete).
type Kind uint8

// Kinds.
const (
	Read Kind = iota
	Write
)

// String returns "R" or "W", the name of the kind's count in messages.
func (k Kind) String() string {
	if k == Read {
		return "R"
	}
	return "W"
}

// Req says how a request is replicated. The zero value is N=3 with R and W
// of min(2, N), in the default (sloppy) mode.
type Req struct {
	// N is the number of home replicas (0 means 3). N above the number of
	// servers means all of them, and R and W follow it down.
	N int
	// R and W, when non-zero, are the replies a read waits for and the
	// acknowledgements a write needs; they win over Level.
	R, W int
	// Level sets R and W from N when they are not given.
	Level Level
	// Linearizable asks for strict majority quorums on home replicas: R
	// and W default to a majority and may not be less.
	Linearizable bool
}

// count returns the R or W the request gives for k (0: not given).
func (r Req) count(k Kind) int {
	if k == Read {
		return r.R
	}
	return r.W
}

// withCount returns the request with R or W set to q.
func (r Req) withCount(k Kind, q int) Req {
	if k == Read {
		r.R = q
	} else {
		r.W = q
	}
	return r
}

// n returns N, DefaultN when not given.
func (r Req) n() int {
	if r.N == 0 {
		return DefaultN
	}
	return r.N
}

// pick returns the count for a key with n replicas when the request gives
// given (0: not given): the number given wins over the level, the level
// over the linearizable mode's majority, and that over min(2, n).
func (r Req) pick(given, n int) int {
	switch {
	case given > 0:
		return given
	case r.Level != LevelDefault:
		return r.Level.Count(n)
	case r.Linearizable:
		return Majority(n)
	}
	return min(2, n)
}

// Valid checks what a request can get wrong whatever the ring and the
// operation: N, R and W not negative, and a known level. A client checks
// it before a request leaves for a server that will resolve it.
func (r Req) Valid() error {
	if r.N < 0 || r.R < 0 || r.W < 0 {
		return fmt.Errorf("N=%d R=%d W=%d level %d: must not be negative: %w", r.N, r.R, r.W, r.Level, errcode.InvalidArg)
	}
	if !r.Level.Valid() {
		return fmt.Errorf("consistency level %d: want 0 (default), 1 (ONE), 2 (QUORUM) or 3 (ALL): %w", r.Level, errcode.InvalidArg)
	}
	return nil
}

// Counts returns the N, R and W the request asks for before a ring
// clamps them: N (DefaultN when 0), and R and W as pick chooses them. It
// checks nothing; Resolve does.
func (r Req) Counts() (n, read, write int) {
	n = r.n()
	return n, r.pick(r.R, n), r.pick(r.W, n)
}

// Resolve returns the N and the R (k is Read) or W (k is Write) that an
// operation runs with on a ring of servers servers: N above the ring
// means every server, and R or W follows it down. R or W above the N
// asked for, a negative N, R or W, and in linearizable mode an R or W
// below a majority of the (clamped) N are errors wrapping
// errcode.InvalidArg.
func (r Req) Resolve(k Kind, servers int) (n, q int, err error) {
	n, given := r.n(), r.count(k)
	if n < 1 || given < 0 {
		return 0, 0, fmt.Errorf("N=%d %s=%d: must be positive: %w", n, k, given, errcode.InvalidArg)
	}
	if given > n {
		return 0, 0, fmt.Errorf("%s=%d is above N=%d: %w", k, given, n, errcode.InvalidArg)
	}
	if n > servers {
		n = servers // every server; R and W follow below
	}
	q = r.pick(given, n)
	if given > 0 {
		q = min(q, n)
	}
	if r.Linearizable && q < Majority(n) {
		return 0, 0, fmt.Errorf("linearizable mode needs %s of at least a majority of N=%d (%d), got %d: %w",
			k, n, Majority(n), q, errcode.InvalidArg)
	}
	return n, q, nil
}

// Explicit returns the request of a plain put, get or delete call that
// gives n and r or w as numbers (the Go client's Put, Get and Delete, C's
// dkvs_put, dkvs_get and dkvs_del): both must be at least 1, since 0
// would silently mean a default there.
func Explicit(k Kind, n, q int) (Req, error) {
	if n < 1 || q < 1 {
		return Req{}, fmt.Errorf("N=%d %s=%d: both must be at least 1: %w", n, k, q, errcode.InvalidArg)
	}
	return Req{N: n}.withCount(k, q), nil
}

// Defaults checks and completes the replication a server uses for the
// requests that leave it to the server (RESP commands, coordinated
// requests with the server-defaults flag): N 0 means DefaultN and must be
// 1 to MaxN; R and W must be 0 to N and, in linearizable mode, 0 or at
// least a majority of N. An R or W of 0 is left 0 (for Resolve to take
// from the level or the majority) when a level or the linearizable mode
// is set, and becomes min(2, N) otherwise. Errors wrap
// errcode.InvalidArg.
func (r Req) Defaults() (Req, error) {
	r.N = r.n()
	if r.N < 1 || r.N > MaxN {
		return Req{}, fmt.Errorf("N=%d: want 1 to %d: %w", r.N, MaxN, errcode.InvalidArg)
	}
	if err := r.Valid(); err != nil {
		return Req{}, err
	}
	for _, k := range []Kind{Read, Write} {
		q := r.count(k)
		if q > r.N {
			return Req{}, fmt.Errorf("%s=%d is above N=%d: %w", k, q, r.N, errcode.InvalidArg)
		}
		if r.Linearizable && q != 0 && q < Majority(r.N) {
			return Req{}, fmt.Errorf("linearizable mode needs %s of at least a majority of N=%d (%d), got %d: %w",
				k, r.N, Majority(r.N), q, errcode.InvalidArg)
		}
		if q == 0 && r.Level == LevelDefault && !r.Linearizable {
			r = r.withCount(k, min(2, r.N))
		}
	}
	return r, nil
}

// Params are the replication parameters of a coordinated request (coord-get,
// coord-put, coord-delete in docs/protocol.md) as they travel, before any
// check: the numbers are as wide as the wire's varints.
type Params struct {
	// Defaults asks for the server's own replication (Defaults).
	Defaults bool
	// Linearizable asks for the linearizable mode.
	Linearizable bool
	// Level is a Level as a byte.
	Level uint8
	// N is the number of home replicas; Q is R for a read, W for a write.
	N, Q uint64
}

// Params returns the parameters that carry r for an operation of kind k
// to a server that coordinates it. A request that chooses nothing (N, R,
// W and Level zero) asks for the server's defaults; otherwise N 0 is sent
// as DefaultN. The server checks the rest (FromParams).
func (r Req) Params(k Kind) (Params, error) {
	if err := r.Valid(); err != nil {
		return Params{}, err
	}
	p := Params{Linearizable: r.Linearizable}
	if r.N == 0 && r.R == 0 && r.W == 0 && r.Level == LevelDefault {
		p.Defaults = true
		return p, nil
	}
	p.N, p.Level, p.Q = uint64(r.n()), uint8(r.Level), uint64(r.count(k))
	return p, nil
}

// FromParams returns the request a server runs for the parameters of a
// coordinated operation of kind k: def (the server's Defaults) when p
// asks for them, in linearizable mode if p asks for it too; otherwise N
// (1 to MaxN), Q (0 to N) and the level as given. Values out of range are
// errors wrapping errcode.InvalidArg, since a client sent them.
func FromParams(k Kind, p Params, def Req) (Req, error) {
	if p.Defaults {
		if p.N != 0 || p.Q != 0 || p.Level != uint8(LevelDefault) {
			return Req{}, fmt.Errorf("N=%d, R or W=%d and level %d given with the server-defaults flag: they must be 0: %w",
				p.N, p.Q, p.Level, errcode.InvalidArg)
		}
		def.Linearizable = def.Linearizable || p.Linearizable
		return def, nil
	}
	if p.N < 1 || p.N > MaxN {
		return Req{}, fmt.Errorf("N=%d: want 1 to %d (or the server-defaults flag): %w", p.N, MaxN, errcode.InvalidArg)
	}
	if p.Q > p.N {
		return Req{}, fmt.Errorf("%s=%d is above N=%d: %w", k, p.Q, p.N, errcode.InvalidArg)
	}
	if !Level(p.Level).Valid() {
		return Req{}, fmt.Errorf("consistency level %d: want 0 to 3: %w", p.Level, errcode.InvalidArg)
	}
	req := Req{N: int(p.N), Level: Level(p.Level), Linearizable: p.Linearizable}
	return req.withCount(k, int(p.Q)), nil
}
