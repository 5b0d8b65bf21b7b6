package server

import (
	"context"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// What the web console (package console) reads of the server: the ring,
// the stats of each server, and one key's record on each replica. Peers
// are asked over the connections of the background work, on which a
// refused connection fails at once: a console must not wait on a dead
// server.

// Addr returns the server's address in servers.txt (IP:PORT).
func (s *Server) Addr() string { return s.cfg.Addr }

// Ring returns the ring reads go to now: servers.txt's until the ring
// changes online, then the newest this server knows.
func (s *Server) Ring() *ring.Ring { return s.coord.View().ReadRing() }

// View returns the ring this server knows: its epoch, the move under
// way, where keys go.
func (s *Server) View() *topology.View { return s.coord.View() }

// MoveHistory returns the last moves of the ring this server saw end,
// newest first (a few, since it started).
func (s *Server) MoveHistory() []topology.Past { return s.moves.list() }

// call sends a request to the server at addr, this one answering itself
// in process.
func (s *Server) call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error) {
	if addr == s.cfg.Addr {
		if err := ctx.Err(); err != nil {
			return wire.Frame{}, fmt.Errorf("%s: %w: %w", addr, err, errcode.Network)
		}
		return s.serve(ctx, req), nil
	}
	return s.peers.Call(ctx, addr, req)
}

// PeerStats returns the stats of the server at addr (this server's own
// when addr is its address).
func (s *Server) PeerStats(ctx context.Context, addr string) (wire.Stats, error) {
	if addr == s.cfg.Addr {
		return s.Stats(), nil
	}
	f, err := s.call(ctx, addr, wire.Frame{Kind: uint8(wire.OpStats)})
	if err != nil {
		return wire.Stats{}, err
	}
	if f.Status() != wire.StatusOK {
		return wire.Stats{}, fmt.Errorf("stats %s: %s: %w", addr, f.Status(), errcode.Network)
	}
	st, err := wire.DecodeStats(f.Body)
	if err != nil {
		return wire.Stats{}, fmt.Errorf("stats %s: %w", addr, err)
	}
	return st, nil
}

// ReplicaVersion reads key's record, without its value, on the server at
// addr (this one included): found is false when that server holds no
// record of the key; a deletion is found, as a tombstone.
func (s *Server) ReplicaVersion(ctx context.Context, addr string, key []byte) (rec kv.Record, found bool, err error) {
	req := wire.Frame{Kind: uint8(wire.OpGet), Flags: wire.GetVersionOnly, Body: wire.GetRequest{Key: key}.Append(nil)}
	f, err := s.call(ctx, addr, req)
	if err != nil {
		return kv.Record{}, false, err
	}
	switch f.Status() {
	case wire.StatusOK:
		rec, err := wire.DecodeRecord(f.Body)
		if err != nil {
			return kv.Record{}, false, fmt.Errorf("get %s: %w", addr, err)
		}
		return rec, true, nil
	case wire.StatusNotFound:
		return kv.Record{}, false, nil
	}
	msg, _ := wire.DecodeMessage(f.Body)
	return kv.Record{}, false, fmt.Errorf("get %s: %s: %s", addr, f.Status(), msg)
}
