package coord

import (
	"fmt"
	"strings"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

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

// DefaultN is the number of home replicas when Req.N is zero.
const DefaultN = 3

// resolve returns the request's effective N and its R (read) or W (write)
// count q, clamped to the ring.
func (c *Coordinator) resolve(req Req, read bool) (n, q int, err error) {
	n = req.N
	if n == 0 {
		n = DefaultN
	}
	given, name := req.W, "W"
	if read {
		given, name = req.R, "R"
	}
	if n < 1 || given < 0 {
		//lint:ignore ST1005 the message starts with N, cs202's name for the replica count
		return 0, 0, fmt.Errorf("N=%d %s=%d: must be positive: %w", n, name, given, errcode.InvalidArg)
	}
	if given > n {
		return 0, 0, fmt.Errorf("%s=%d is above N=%d: %w", name, given, n, errcode.InvalidArg)
	}
	if s := len(c.addrs); n > s {
		n = s // every server; R and W follow below
	}
	switch {
	case given > 0:
		q = min(given, n)
	case req.Level != LevelDefault:
		q = req.Level.Count(n)
	case req.Linearizable:
		q = Majority(n)
	default:
		q = min(2, n)
	}
	if req.Linearizable && q < Majority(n) {
		return 0, 0, fmt.Errorf("linearizable mode needs %s of at least a majority of N=%d (%d), got %d: %w",
			name, n, Majority(n), q, errcode.InvalidArg)
	}
	return n, q, nil
}
