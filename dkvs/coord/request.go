package coord

import (
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/topology"
)

// The replication rules live in package quorum; these names keep the
// coordinator's API, and so the Go client's (dkvs.Request is Req), as it
// was.

// Level is a named consistency level: how many of a key's N replicas a
// read waits for (R) or a write needs (W).
type Level = quorum.Level

// Levels. LevelDefault leaves R and W to the numbers given (or the cs202
// defaults, min(2, N)).
const (
	LevelDefault = quorum.LevelDefault
	LevelOne     = quorum.LevelOne    // 1
	LevelQuorum  = quorum.LevelQuorum // N/2 + 1
	LevelAll     = quorum.LevelAll    // N
)

// ParseLevel parses ONE, QUORUM or ALL (any case).
func ParseLevel(s string) (Level, error) { return quorum.ParseLevel(s) }

// Majority returns n/2+1.
func Majority(n int) int { return quorum.Majority(n) }

// Req says how a request is replicated (see quorum.Req). The zero value
// is N=3 with R and W of min(2, N), in the default (sloppy) mode.
type Req = quorum.Req

// DefaultN is the number of home replicas when Req.N is zero.
const DefaultN = quorum.DefaultN

// resolve returns the request's effective N and its R (read) or W (write)
// count q, clamped to the rings of v.
func resolve(v *topology.View, req Req, read bool) (n, q int, err error) {
	k := quorum.Write
	if read {
		k = quorum.Read
	}
	return req.Resolve(k, v.RingSize())
}
