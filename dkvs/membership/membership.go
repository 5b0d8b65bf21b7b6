// Package membership decides the ring's epochs by consensus: a Raft log
// (github.com/hashicorp/raft) whose entries are ring commands (join,
// leave, replace, remove, the phases of a move, abort), applied by every
// server to the same topology.State in the same order.
//
// The voters are the first five servers of the current ring
// (topology.State.Voters); every other member follows the log as a
// non-voter, so that every server learns each epoch from the log itself.
// servers.txt is epoch 1: on a fresh ring the first voters bootstrap Raft
// with each other, and the first leader records servers.txt in the log.
// The log, Raft's own state and its snapshots live in the server's store
// (storage.Consensus), and its RPCs travel as OpRaft frames on the
// server's connections: the consensus has no port, file or network of
// its own.
//
// The leader also drives moves: it keeps Raft's voters in line with the
// ring, advances a move to read-new once every server of the new ring
// reported its ranges streamed and verified, and ends it once every live
// server knows reads switched.
package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/ringrpc"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Config configures a Node.
type Config struct {
	// Self is this server's address (IP:PORT).
	Self string
	// Seeds is servers.txt: epoch 1, and the first voters.
	Seeds []config.Server
	// Store holds the log, Raft's state, snapshots and the last ring state.
	Store storage.Consensus
	// Caller reaches the other servers (the server's peer connections).
	Caller Caller
	// OnChange is told of every new ring state, in order (it runs on
	// Raft's apply goroutine: it must not block for long).
	OnChange func(topology.State)
	// Up is the failure detector's belief about a server; nil: all up.
	Up func(addr string) bool
	// Logger receives the consensus's notable events; nil discards.
	Logger *slog.Logger
	// Now is the clock stamped on commands (default time.Now).
	Now func() time.Time
	// Tick is how often the leader looks at the ring (default 500ms).
	Tick time.Duration
	// CleanupGrace is how long the servers keep what a move took away
	// from them; the leader clears the state's cleanup note twice that
	// long after the move ended.
	CleanupGrace time.Duration
}

// Node is one server's part in the ring's consensus.
type Node struct {
	cfg  Config
	log  *slog.Logger
	raft *raft.Raft
	fsm  *fsm
	tr   *frameTransport
}

// New starts the consensus of a server. A server of servers.txt among its
// first voters bootstraps Raft when its store has no consensus state yet;
// any other waits to be added by the leader.
func New(cfg Config) (*Node, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: log}
	last, err := LastState(cfg.Store, cfg.Seeds)
	if err != nil {
		return nil, err
	}
	stored := last.Epoch
	// The state machine starts from servers.txt whatever this server
	// stored last: Raft replays the log (or a snapshot and the log after
	// it) onto it, and every server must apply the same commands to the
	// same state. The replay goes through older states again: those are
	// not stored over a newer one, and the server's view ignores them.
	n.fsm = &fsm{state: topology.Initial(cfg.Seeds), onChange: func(s topology.State) {
		if s.Epoch >= stored {
			stored = s.Epoch
			if err := writeRing(cfg.Store, s.Encode()); err != nil {
				log.Warn("consensus: storing the ring state failed", "err", err)
			}
		}
		if cfg.OnChange != nil {
			cfg.OnChange(s)
		}
	}}
	logs := logStore{cfg.Store}
	snaps := &snapStore{c: cfg.Store}
	n.tr = newFrameTransport(cfg.Self, cfg.Caller)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Self)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{log}})
	rc.SnapshotThreshold = 1024
	rc.TrailingLogs = 1024
	// A server demoted from the voters (the first servers of the ring
	// changed) or removed from the ring goes on as a follower rather than
	// stop its consensus: it still applies the log, as every member does.
	rc.ShutdownOnRemove = false
	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("consensus: %w: %w", err, errcode.IO)
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, logs, snaps, n.tr)
	if err != nil {
		return nil, fmt.Errorf("consensus: %w: %w", err, errcode.IO)
	}
	n.raft = r
	if !has {
		voters := topology.Initial(cfg.Seeds).Voters()
		if slices.Contains(voters, cfg.Self) {
			var servers []raft.Server
			for _, v := range voters {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(v), Address: raft.ServerAddress(v)})
			}
			if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				r.Shutdown()
				return nil, fmt.Errorf("consensus: bootstrap: %w: %w", err, errcode.IO)
			}
		}
	}
	return n, nil
}

// LastState returns the ring state stored at the last apply, or epoch 1
// (seeds) when none is: what a server knows of the ring before its
// consensus runs.
func LastState(store storage.Consensus, seeds []config.Server) (topology.State, error) {
	start := topology.Initial(seeds)
	b, ok, err := readRing(store)
	if err != nil {
		return start, err
	}
	if ok {
		if s, err := topology.Decode(b); err == nil && s.Epoch >= start.Epoch {
			return s, nil
		}
	}
	return start, nil
}

// slogWriter passes Raft's log lines on to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn("consensus", "raft", strings.TrimSpace(string(p)))
	return len(p), nil
}

// State returns the ring state this server applied last.
func (n *Node) State() topology.State {
	s, _ := n.fsm.current()
	return s
}

// Leader returns the address of the leader this server knows, or "".
func (n *Node) Leader() string {
	addr, _ := n.raft.LeaderWithID()
	return string(addr)
}

// IsLeader reports whether this server leads the consensus.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Close stops this server's part in the consensus.
func (n *Node) Close() error {
	err := n.raft.Shutdown().Error()
	n.tr.Close()
	return err
}

// HandleRaft answers one OpRaft request.
func (n *Node) HandleRaft(ctx context.Context, body []byte) ([]byte, error) {
	return n.tr.handle(ctx, body)
}

// applyTimeout bounds one proposal.
const applyTimeout = 10 * time.Second

// Propose runs a ring command through the consensus and returns the state
// after it, or why it was refused. A server that does not lead sends it
// to the leader.
func (n *Node) Propose(ctx context.Context, cmd topology.Command) (topology.State, error) {
	if cmd.At == 0 {
		cmd.At = n.cfg.Now().UnixMilli()
	}
	if n.IsLeader() {
		f := n.raft.Apply(cmd.Encode(), applyTimeout)
		if err := f.Error(); err != nil {
			return topology.State{}, fmt.Errorf("ring %s: %w: %w", cmd.Op, err, errcode.Network)
		}
		switch r := f.Response().(type) {
		case error:
			if errors.Is(r, topology.ErrMoveInProgress) {
				// The same command again (its answer was lost, or the
				// operator asked twice): the move it asked for is under way.
				if cur, _ := n.fsm.current(); cur.Underway(cmd) {
					return cur, nil
				}
			}
			return topology.State{}, r
		case topology.State:
			return r, nil
		}
		return topology.State{}, fmt.Errorf("ring %s: no answer from the state machine: %w", cmd.Op, errcode.Runtime)
	}
	leader := n.Leader()
	if leader == "" {
		return topology.State{}, fmt.Errorf("ring %s: no leader is known (fewer than a majority of the first %d servers answer?): %w",
			cmd.Op, topology.MaxVoters, errcode.Network)
	}
	return ringrpc.Send(ctx, n.cfg.Caller, leader, cmd)
}

// HandleChange answers an OpRingChange request: a ring command from an
// operator or from a server. Joins and replacements are checked first:
// the new server must answer, or writes to it during the move would fail.
func (n *Node) HandleChange(ctx context.Context, body []byte) wire.Frame {
	cmd, err := topology.DecodeCommand(body)
	if err == nil && (cmd.Op == topology.OpJoin || cmd.Op == topology.OpReplace) {
		err = n.ping(ctx, cmd.Server.Addr())
	}
	var st topology.State
	if err == nil {
		st, err = n.Propose(ctx, cmd)
	}
	if err != nil {
		code := errcode.Of(err)
		return wire.Frame{Flags: uint8(wire.StatusFailed), Body: wire.AppendFailure(nil, uint8(code.ExitStatus()), err.Error())}
	}
	return wire.Frame{Flags: uint8(wire.StatusOK), Body: st.Encode()}
}

func (n *Node) ping(ctx context.Context, addr string) error {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	f, err := n.cfg.Caller.Call(pctx, addr, wire.Frame{Kind: uint8(wire.OpPing)})
	if err == nil && f.Status() != wire.StatusOK {
		err = fmt.Errorf("%s", f.Status())
	}
	if err != nil {
		return fmt.Errorf("%s does not answer (start it first, with the ring's servers.txt): %w: %w", addr, err, errcode.Network)
	}
	return nil
}

// Run does the leader's work while this server leads, until ctx ends:
// it records servers.txt as the first state, keeps Raft's voters those of
// the ring, and moves moves along.
func (n *Node) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.raft.LeaderCh():
		case <-t.C:
		}
		if n.IsLeader() {
			n.lead(ctx)
		}
	}
}

func (n *Node) lead(ctx context.Context) {
	s, initialized := n.fsm.current()
	if !initialized {
		if _, err := n.Propose(ctx, topology.Command{Op: topology.OpInit, Members: n.cfg.Seeds}); err != nil {
			n.log.Warn("consensus: recording the first ring failed", "err", err)
		}
		return
	}
	if err := n.reconcile(s); err != nil {
		n.log.Warn("consensus: changing the voters failed", "err", err)
	}
	if s.Cleanup != nil && n.cfg.Now().Sub(time.UnixMilli(s.Cleanup.Since)) > 2*n.cfg.CleanupGrace {
		if _, err := n.Propose(ctx, topology.Command{Op: topology.OpCleaned, MoveID: s.Cleanup.Epoch}); err != nil {
			n.log.Warn("consensus: clearing the cleanup note failed", "err", err)
		}
	}
	if s.Move == nil {
		return
	}
	switch s.Move.Phase {
	case topology.Streaming:
		for _, t := range s.Move.Target {
			if !slices.Contains(s.Move.Streamed, t.Addr()) {
				return // not every server of the new ring is ready
			}
		}
		// Every new home has its data: reads may switch.
		n.advance(ctx, s)
	case topology.ReadNew:
		// Reads leave the old homes only once every live server knows
		// they go to the new: a coordinator of the previous epoch would
		// still read the old, which stop getting writes once it ends.
		if n.reached(ctx, s) {
			n.advance(ctx, s)
		}
	}
}

func (n *Node) advance(ctx context.Context, s topology.State) {
	if _, err := n.Propose(ctx, topology.Command{Op: topology.OpAdvance, MoveID: s.Move.ID, Phase: s.Move.Phase}); err != nil {
		n.log.Warn("consensus: advancing the move failed", "move", s.Move.ID, "phase", s.Move.Phase, "err", err)
	} else {
		n.log.Info("ring move advanced", "move", s.Move.ID, "kind", s.Move.Kind, "server", s.Move.Server, "from", s.Move.Phase)
	}
}

// reached reports whether every server of s believed up knows s's epoch
// or a later one.
func (n *Node) reached(ctx context.Context, s topology.State) bool {
	for _, sv := range s.AllServers() {
		addr := sv.Addr()
		if n.cfg.Up != nil && !n.cfg.Up(addr) {
			continue // a server that is down serves nothing; it learns the log when it returns
		}
		if addr == n.cfg.Self {
			continue
		}
		e, err := ringrpc.Epoch(ctx, n.cfg.Caller, addr)
		if err != nil || e < s.Epoch {
			return false
		}
	}
	return true
}

// reconcile keeps Raft's configuration that of the ring: the ring's
// voters vote, its other servers (and a move's new ones) follow, and a
// server that left is removed.
func (n *Node) reconcile(s topology.State) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	have := map[string]raft.ServerSuffrage{}
	for _, sv := range f.Configuration().Servers {
		have[string(sv.ID)] = sv.Suffrage
	}
	voters := s.Voters()
	want := map[string]bool{}
	for _, sv := range s.AllServers() {
		want[sv.Addr()] = true
	}
	for _, v := range voters {
		if sf, ok := have[v]; !ok || sf != raft.Voter {
			if err := n.raft.AddVoter(raft.ServerID(v), raft.ServerAddress(v), 0, 0).Error(); err != nil {
				return err
			}
		}
	}
	for _, sv := range s.AllServers() {
		addr := sv.Addr()
		if _, ok := have[addr]; !ok && !slices.Contains(voters, addr) {
			if err := n.raft.AddNonvoter(raft.ServerID(addr), raft.ServerAddress(addr), 0, 0).Error(); err != nil {
				return err
			}
		}
	}
	self := n.cfg.Self
	if (!want[self] || !slices.Contains(voters, self)) && len(voters) > 0 {
		// This leader is to leave the voters: hand the leadership over
		// first; the next leader changes the voters.
		return n.raft.LeadershipTransfer().Error()
	}
	for id, sf := range have {
		switch {
		case !want[id]:
			if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
				return err
			}
		case sf == raft.Voter && !slices.Contains(voters, id):
			if err := n.raft.DemoteVoter(raft.ServerID(id), 0, 0).Error(); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ io.Writer = slogWriter{}
