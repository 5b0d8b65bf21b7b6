// Package topology is the ring's membership over time: the servers of
// each epoch, the move from one ring to the next (a join, a leave, a
// replacement, a removal), and where a key's reads and writes go
// meanwhile.
//
// servers.txt is epoch 1. Every later epoch is the result of a Command
// applied to the state before it; the commands are ordered by consensus
// (package membership runs them through Raft), and Apply is a pure,
// deterministic function, so that every server that applies the same
// commands holds the same state. A move goes through two phases, each
// an epoch of its own:
//
//   - streaming: writes go to the key's homes in both rings (W
//     acknowledgements in each), reads to the current ring's homes, while
//     every server that gains ranges copies them from their current homes;
//   - read-new: once every gaining server has streamed and verified its
//     ranges, reads go to the new ring's homes; writes still go to both,
//     so that a coordinator that has not learned this epoch yet still
//     reads what is written.
//
// A third epoch ends the move: the new ring is the current one, and the
// old homes drop what they no longer own after a grace period.
package topology

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// Phase is the phase of a move.
type Phase string

// Phases.
const (
	// Streaming: write to both rings, read from the current one.
	Streaming Phase = "streaming"
	// ReadNew: write to both rings, read from the new one.
	ReadNew Phase = "read-new"
)

// MoveKind says what a move does.
type MoveKind string

// Kinds of moves.
const (
	Join    MoveKind = "join"    // a new server takes its share
	Leave   MoveKind = "leave"   // a live server hands its data over and goes
	Replace MoveKind = "replace" // a dead server's place goes to a new one
	Remove  MoveKind = "remove"  // a dead server goes; its data is rebuilt elsewhere
)

// Move is a change of ring under way.
type Move struct {
	// ID is the epoch the move began in.
	ID   uint64   `json:"id"`
	Kind MoveKind `json:"kind"`
	// Server is the joining, leaving, replaced or removed server
	// (IP:PORT); New is the replacement's address.
	Server string `json:"server"`
	New    string `json:"new,omitempty"`
	// Target is the ring once the move is done.
	Target []config.Server `json:"target"`
	Phase  Phase           `json:"phase"`
	// Started is when the move began (Unix milliseconds, from the
	// command: Apply reads no clock).
	Started int64 `json:"started"`
	// Streamed lists the servers that reported their ranges streamed and
	// verified.
	Streamed []string `json:"streamed,omitempty"`
	// Excluded are servers that cannot be sources (a dead server being
	// replaced or removed).
	Excluded []string `json:"excluded,omitempty"`
}

// Cleanup records that servers may hold data of a ring they no longer
// own since an epoch, to be dropped once the grace period has passed.
type Cleanup struct {
	Epoch uint64 `json:"epoch"`
	// Since is when the move ended or was aborted (Unix milliseconds).
	Since int64 `json:"since"`
}

// State is the ring at one epoch. It is a value: Apply returns a new one.
type State struct {
	Epoch   uint64          `json:"epoch"`
	Members []config.Server `json:"members"`
	Move    *Move           `json:"move,omitempty"`
	// Cleanup, when set, says the last move's old homes may still hold
	// what moved away.
	Cleanup *Cleanup `json:"cleanup,omitempty"`
}

// Initial returns epoch 1: the ring of servers.txt.
func Initial(members []config.Server) State {
	return State{Epoch: 1, Members: slices.Clone(members)}
}

// MaxVoters is how many servers vote in the consensus: the first ones of
// the current ring, in its order.
const MaxVoters = 5

// Voters returns the addresses of the servers that vote: the first
// MaxVoters of the current ring, skipping a server being removed or
// replaced (it is dead) or leaving (it is going).
func (s State) Voters() []string {
	var out []string
	for _, m := range s.Members {
		if s.Move != nil && m.Addr() == s.Move.Server {
			continue
		}
		out = append(out, m.Addr())
		if len(out) == MaxVoters {
			break
		}
	}
	return out
}

// AllServers returns every server of the current ring and of the move's
// target, current ones first.
func (s State) AllServers() []config.Server {
	out := slices.Clone(s.Members)
	if s.Move != nil {
		for _, t := range s.Move.Target {
			if config.Find(out, t.Addr()) < 0 {
				out = append(out, t)
			}
		}
	}
	return out
}

// IsMember reports whether addr is in the current ring or the target.
func (s State) IsMember(addr string) bool {
	return config.Find(s.AllServers(), addr) >= 0
}

// Encode returns the state as JSON (the wire and the Raft snapshot carry
// it so).
func (s State) Encode() []byte {
	b, _ := json.Marshal(s) // a State always marshals
	return b
}

// Decode parses a state that Encode returned.
func Decode(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("ring state: %w: %w", err, errcode.InvalidArg)
	}
	if s.Epoch == 0 || len(s.Members) == 0 {
		return State{}, fmt.Errorf("ring state: epoch %d with %d members: %w", s.Epoch, len(s.Members), errcode.InvalidArg)
	}
	return s, nil
}

// Errors of commands. Each wraps an errcode, for the command line.
var (
	ErrUnknownServer    = fmt.Errorf("not a member of the ring: %w", errcode.InvalidArg)
	ErrAlreadyMember    = fmt.Errorf("already a member of the ring: %w", errcode.InvalidArg)
	ErrMoveInProgress   = fmt.Errorf("a move is already under way: %w", errcode.InvalidArg)
	ErrNoMove           = fmt.Errorf("no move under way: %w", errcode.InvalidArg)
	ErrTooFewServers    = fmt.Errorf("too few servers would be left: %w", errcode.InvalidArg)
	ErrStaleCommand     = fmt.Errorf("the command is for another move or phase: %w", errcode.InvalidArg)
	ErrCannotAbort      = fmt.Errorf("reads already go to the new ring: the move can only finish: %w", errcode.InvalidArg)
	ErrNotStreamingPart = fmt.Errorf("that server gains nothing in this move: %w", errcode.InvalidArg)
)

// MinServers is the fewest servers a leave or a removal may leave: the
// default number of replicas, so that a key written with the default N
// still has N homes.
const MinServers = 3

// Op names the kind of a Command.
type Op string

// Commands.
const (
	OpInit       Op = "init"        // set the first state (Members)
	OpJoin       Op = "join"        // Server joins
	OpLeave      Op = "leave"       // Addr leaves
	OpReplace    Op = "replace"     // Addr (dead) is replaced by Server
	OpRemove     Op = "remove"      // Addr (dead) is removed
	OpStreamDone Op = "stream-done" // Addr streamed and verified its ranges of move MoveID
	OpAdvance    Op = "advance"     // move MoveID goes from Phase to the next phase
	OpAbort      Op = "abort"       // move MoveID is abandoned
	OpCleaned    Op = "cleaned"     // the cleanup of Epoch is over
)

// Command is one change of the ring, as proposed to the consensus.
type Command struct {
	Op      Op              `json:"op"`
	Members []config.Server `json:"members,omitempty"`
	Server  config.Server   `json:"server,omitempty"`
	Addr    string          `json:"addr,omitempty"`
	MoveID  uint64          `json:"move_id,omitempty"`
	Phase   Phase           `json:"phase,omitempty"`
	// At is the proposer's clock (Unix milliseconds), so that Apply reads
	// none.
	At int64 `json:"at"`
}

// Encode returns the command as JSON.
func (c Command) Encode() []byte {
	b, _ := json.Marshal(c)
	return b
}

// DecodeCommand parses a command.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("ring command: %w: %w", err, errcode.InvalidArg)
	}
	return c, nil
}

// Apply returns the state after c, or an error (and s unchanged) when c
// is refused. It is deterministic.
func (s State) Apply(c Command) (State, error) {
	next := s.clone()
	switch c.Op {
	case OpInit:
		if len(c.Members) == 0 {
			return s, fmt.Errorf("init with no members: %w", errcode.InvalidArg)
		}
		return State{Epoch: max(s.Epoch, 1), Members: slices.Clone(c.Members)}, nil
	case OpJoin, OpLeave, OpReplace, OpRemove:
		if s.Move != nil {
			return s, fmt.Errorf("%s: %w (%s of %s since epoch %d)", c.Op, ErrMoveInProgress, s.Move.Kind, s.Move.Server, s.Move.ID)
		}
		target, mv, err := s.plan(c)
		if err != nil {
			return s, err
		}
		mv.ID, mv.Target, mv.Phase, mv.Started = s.Epoch+1, target, Streaming, c.At
		next.Epoch++
		next.Move = &mv
		return next, nil
	case OpStreamDone:
		if err := s.checkMove(c, Streaming); err != nil {
			return s, err
		}
		if !slices.Contains(next.Move.Streamed, c.Addr) {
			next.Move.Streamed = append(next.Move.Streamed, c.Addr)
		}
		return next, nil // no new epoch: placement does not change
	case OpAdvance:
		if err := s.checkMove(c, c.Phase); err != nil {
			return s, err
		}
		next.Epoch++
		if s.Move.Phase == Streaming {
			next.Move.Phase = ReadNew
			return next, nil
		}
		next.Members = slices.Clone(s.Move.Target)
		next.Move = nil
		next.Cleanup = &Cleanup{Epoch: next.Epoch, Since: c.At}
		return next, nil
	case OpAbort:
		if s.Move == nil || s.Move.ID != c.MoveID {
			return s, fmt.Errorf("abort: %w", ErrNoMove)
		}
		if s.Move.Phase != Streaming {
			return s, fmt.Errorf("abort: %w", ErrCannotAbort)
		}
		next.Epoch++
		next.Move = nil
		// What the new homes received is theirs no longer.
		next.Cleanup = &Cleanup{Epoch: next.Epoch, Since: c.At}
		return next, nil
	case OpCleaned:
		if s.Cleanup == nil || s.Cleanup.Epoch != c.MoveID {
			return s, fmt.Errorf("cleaned: %w", ErrStaleCommand)
		}
		next.Cleanup = nil
		return next, nil
	}
	return s, fmt.Errorf("unknown ring command %q: %w", c.Op, errcode.InvalidArg)
}

// checkMove checks that c names the move under way and its phase.
func (s State) checkMove(c Command, phase Phase) error {
	if s.Move == nil {
		return fmt.Errorf("%s: %w", c.Op, ErrNoMove)
	}
	if s.Move.ID != c.MoveID || s.Move.Phase != phase {
		return fmt.Errorf("%s for move %d in phase %s, while move %d is in phase %s: %w",
			c.Op, c.MoveID, phase, s.Move.ID, s.Move.Phase, ErrStaleCommand)
	}
	return nil
}

// Underway reports whether c asks for the move already under way (the
// same kind, the same servers): a command sent again because its answer
// was lost is then answered with the ring, not refused.
func (s State) Underway(c Command) bool {
	m := s.Move
	if m == nil {
		return false
	}
	switch c.Op {
	case OpJoin:
		i := config.Find(m.Target, c.Server.Addr())
		return m.Kind == Join && m.Server == c.Server.Addr() && i >= 0 && m.Target[i].Count == c.Server.Count
	case OpLeave:
		return m.Kind == Leave && m.Server == c.Addr
	case OpRemove:
		return m.Kind == Remove && m.Server == c.Addr
	case OpReplace:
		i := config.Find(m.Target, c.Server.Addr())
		return m.Kind == Replace && m.Server == c.Addr && m.New == c.Server.Addr() &&
			i >= 0 && (c.Server.Count == 0 || m.Target[i].Count == c.Server.Count)
	}
	return false
}

// plan returns the ring a join, leave, replace or remove leads to.
func (s State) plan(c Command) ([]config.Server, Move, error) {
	find := func(addr string) (int, error) {
		if err := checkAddr(addr); err != nil {
			return -1, err
		}
		i := config.Find(s.Members, addr)
		if i < 0 {
			return -1, fmt.Errorf("%s: %s: %w", c.Op, addr, ErrUnknownServer)
		}
		return i, nil
	}
	newServer := func() error {
		if err := checkAddr(c.Server.Addr()); err != nil {
			return err
		}
		if c.Server.Count < 1 || c.Server.Count > config.MaxCount {
			return fmt.Errorf("%s: COUNT %d: want 1 to %d: %w", c.Op, c.Server.Count, config.MaxCount, errcode.InvalidArg)
		}
		if config.Find(s.Members, c.Server.Addr()) >= 0 {
			return fmt.Errorf("%s: %s: %w", c.Op, c.Server.Addr(), ErrAlreadyMember)
		}
		return nil
	}
	switch c.Op {
	case OpJoin:
		if err := newServer(); err != nil {
			return nil, Move{}, err
		}
		return append(slices.Clone(s.Members), c.Server), Move{Kind: Join, Server: c.Server.Addr()}, nil
	case OpLeave, OpRemove:
		i, err := find(c.Addr)
		if err != nil {
			return nil, Move{}, err
		}
		if len(s.Members)-1 < MinServers {
			return nil, Move{}, fmt.Errorf("%s %s: %d servers would be left, fewer than N=%d: %w",
				c.Op, c.Addr, len(s.Members)-1, MinServers, ErrTooFewServers)
		}
		target := slices.Delete(slices.Clone(s.Members), i, i+1)
		if c.Op == OpLeave {
			return target, Move{Kind: Leave, Server: c.Addr}, nil
		}
		return target, Move{Kind: Remove, Server: c.Addr, Excluded: []string{c.Addr}}, nil
	case OpReplace:
		i, err := find(c.Addr)
		if err != nil {
			return nil, Move{}, err
		}
		if err := newServer(); err != nil {
			return nil, Move{}, err
		}
		target := slices.Clone(s.Members)
		target[i] = c.Server
		return target, Move{Kind: Replace, Server: c.Addr, New: c.Server.Addr(), Excluded: []string{c.Addr}}, nil
	}
	return nil, Move{}, fmt.Errorf("unknown ring command %q: %w", c.Op, errcode.InvalidArg)
}

// checkAddr checks an IP:PORT.
func checkAddr(addr string) error {
	ip, port, ok := cut(addr)
	if !ok {
		return fmt.Errorf("%q: want IP:PORT: %w", addr, errcode.Address)
	}
	if _, err := config.ParseIP(ip); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if _, err := config.ParsePort(port); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	return nil
}

func cut(addr string) (string, string, bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], true
		}
	}
	return "", "", false
}

func (s State) clone() State {
	n := State{Epoch: s.Epoch, Members: slices.Clone(s.Members)}
	if s.Move != nil {
		m := *s.Move
		m.Target = slices.Clone(s.Move.Target)
		m.Streamed = slices.Clone(s.Move.Streamed)
		m.Excluded = slices.Clone(s.Move.Excluded)
		n.Move = &m
	}
	if s.Cleanup != nil {
		c := *s.Cleanup
		n.Cleanup = &c
	}
	return n
}

// String describes the state in one line, for logs.
func (s State) String() string {
	out := "epoch " + strconv.FormatUint(s.Epoch, 10) + ", " + strconv.Itoa(len(s.Members)) + " servers"
	if s.Move != nil {
		out += ", " + string(s.Move.Kind) + " of " + s.Move.Server + " (" + string(s.Move.Phase) + ")"
	}
	return out
}
