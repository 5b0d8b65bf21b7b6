package topology

import (
	"slices"

	"github.com/dkvs/dkvs/dkvs/config"
)

// Outcomes of a move that is over.
const (
	// Finished: the new ring became the current one.
	Finished = "finished"
	// Aborted: the move was abandoned during its streaming phase.
	Aborted = "aborted"
	// Over: the move ended while the server that saw it end was not
	// following the ring (it learned a later epoch at once), and that
	// server cannot tell how.
	Over = "over"
)

// Past is a move that is over, as a server saw it end.
type Past struct {
	Move Move `json:"move"`
	// From is the ring the move began from.
	From []config.Server `json:"from"`
	// Outcome is Finished, Aborted or Over.
	Outcome string `json:"outcome"`
	// Epoch is the epoch that ended it, and Ended when (Unix
	// milliseconds): the proposer's clock when the state says it (its
	// cleanup), else when the server learned it.
	Epoch uint64 `json:"epoch"`
	Ended int64  `json:"ended"`
}

// Ended returns the move that is over between two states of a server,
// prev and the newer next, learned at now (Unix milliseconds): prev's
// move, if next no longer has it.
func Ended(prev, next State, now int64) (Past, bool) {
	if prev.Move == nil || next.Epoch <= prev.Epoch || (next.Move != nil && next.Move.ID == prev.Move.ID) {
		return Past{}, false
	}
	mv := prev.clone().Move
	p := Past{Move: *mv, From: slices.Clone(prev.Members), Epoch: next.Epoch, Ended: now, Outcome: Over}
	// An abort ends a move one epoch after it began (streaming is its
	// only epoch); the end of a finished one is two epochs after (after
	// read-new). A cleanup of that epoch says when, by the proposer's
	// clock.
	switch {
	case next.Epoch == mv.ID+1 && next.Move == nil:
		p.Outcome, p.Epoch = Aborted, mv.ID+1
	case next.Epoch >= mv.ID+2 && sameAddrs(next.Members, mv.Target) && (next.Epoch == mv.ID+2 || next.Cleanup != nil && next.Cleanup.Epoch == mv.ID+2):
		p.Outcome, p.Epoch = Finished, mv.ID+2
	}
	if c := next.Cleanup; c != nil && c.Epoch == p.Epoch && p.Outcome != Over {
		p.Ended = c.Since
	}
	return p, true
}

func sameAddrs(a, b []config.Server) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Addr() != b[i].Addr() {
			return false
		}
	}
	return true
}
