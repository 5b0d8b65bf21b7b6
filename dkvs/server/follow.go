package server

import (
	"context"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/ringrpc"
	"github.com/dkvs/dkvs/dkvs/topology"
)

// followEvery is how often a server that may have missed a ring change
// asks its peers for their ring.
const followEvery = 2 * time.Second

// followRing keeps the ring of a server that the consensus may have left
// behind: one that left the ring (the leader removes it from the
// consensus once the move is over, possibly before it applied the move's
// last epoch, and it would then believe the move under way for ever and
// never drop what it no longer owns), or one that believes a move under
// way. Every followEvery it asks the servers of its ring for theirs and
// takes a newer one. A member with no move under way learns epochs from
// the consensus and from the requests it gets, and asks nobody.
func (s *Server) followRing(ctx context.Context) {
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.coord.View().State()
		if st.Move == nil && config.Find(st.Members, s.cfg.Addr) >= 0 {
			continue
		}
		if newer, ok := s.newerRing(ctx, st); ok {
			s.coord.SetView(topology.NewView(newer))
		}
	}
}

// newerRing returns the newest ring the servers of st know, if it is
// newer than st.
func (s *Server) newerRing(ctx context.Context, st topology.State) (topology.State, bool) {
	best, found := st, false
	for _, sv := range st.AllServers() {
		addr := sv.Addr()
		if addr == s.cfg.Addr || !s.health.Up(addr) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		other, err := ringrpc.Ring(cctx, s.peers, addr)
		cancel()
		if err == nil && other.Epoch > best.Epoch {
			best, found = other, true
		}
	}
	return best, found
}
