package server

import (
	"slices"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/topology"
)

// maxPastMoves bounds the moves of the ring a server remembers.
const maxPastMoves = 8

// moveLog remembers the last moves of the ring this server saw end, for
// the console: each state the server learns is compared with the one
// before. It is kept in memory only; a restart forgets it.
type moveLog struct {
	mu   sync.Mutex
	last topology.State
	past []topology.Past // newest first
	now  func() time.Time
}

func newMoveLog(initial topology.State, now func() time.Time) *moveLog {
	if now == nil {
		now = time.Now
	}
	return &moveLog{last: initial, now: now}
}

// observe follows a state the server learned; an older one than the
// last (views may be handed over out of order) is ignored.
func (l *moveLog) observe(st topology.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st.Epoch <= l.last.Epoch {
		return
	}
	if p, ok := topology.Ended(l.last, st, l.now().UnixMilli()); ok {
		l.past = append([]topology.Past{p}, l.past...)[:min(len(l.past)+1, maxPastMoves)]
	}
	l.last = st
}

// list returns the moves seen ending, newest first.
func (l *moveLog) list() []topology.Past {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.past)
}
