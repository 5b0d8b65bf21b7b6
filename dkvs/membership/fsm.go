package membership

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/dkvs/dkvs/dkvs/topology"
)

// fsm is Raft's state machine: the ring state, changed by commands. Apply
// is deterministic (topology.State.Apply); a refused command is answered
// with its error and changes nothing.
type fsm struct {
	mu          sync.Mutex
	state       topology.State
	initialized bool // an init command was applied: the state is the ring's, not this server's seed
	onChange    func(topology.State)
}

var _ raft.FSM = (*fsm)(nil)

// fsmSnapshot is what a snapshot holds.
type fsmSnapshot struct {
	State       topology.State `json:"state"`
	Initialized bool           `json:"initialized"`
}

func (f *fsm) current() (topology.State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.initialized
}

// Apply implements raft.FSM. It returns the state after the command, or
// the command's error.
func (f *fsm) Apply(l *raft.Log) any {
	cmd, err := topology.DecodeCommand(l.Data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if cmd.Op == topology.OpInit && f.initialized {
		// A second init (two voters started the ring at once) keeps the
		// first: the ring is already under consensus.
		s := f.state
		f.mu.Unlock()
		return s
	}
	next, err := f.state.Apply(cmd)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	f.state = next
	if cmd.Op == topology.OpInit {
		f.initialized = true
	}
	f.mu.Unlock()
	if f.onChange != nil {
		f.onChange(next)
	}
	return next
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(fsmSnapshot{State: f.state, Initialized: f.initialized})
	if err != nil {
		return nil, err
	}
	return snapshotBytes(b), nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s fsmSnapshot
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("consensus: snapshot: %w", err)
	}
	f.mu.Lock()
	f.state, f.initialized = s.State, s.Initialized
	f.mu.Unlock()
	if f.onChange != nil {
		f.onChange(s.State)
	}
	return nil
}

type snapshotBytes []byte

func (s snapshotBytes) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshotBytes) Release() {}
