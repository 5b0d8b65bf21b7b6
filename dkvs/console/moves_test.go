package console

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// moving returns the state of a ring of f's servers at epoch 2 with c
// under way.
func moving(t *testing.T, f *fake, c topology.Command) topology.State {
	t.Helper()
	st, err := topology.Initial(f.ring.Servers()).Apply(c)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var newcomer = config.Server{IP: "10.0.0.1", Port: 7009, Count: 2}

func TestMovesIdle(t *testing.T) {
	f := newFake(1, 2, 3)
	var v MovesView
	get(t, New(f, Options{}).Handler(nil), "/api/moves", &v)
	if v.Self != f.self || v.Epoch != 1 || v.N != 3 || v.Move != nil || v.Cleanup != nil || v.History == nil || len(v.History) != 0 {
		t.Fatalf("%+v", v)
	}
	if n := f.asked["10.0.0.1:7002"] + f.asked["10.0.0.1:7003"]; n != 0 {
		t.Errorf("%d stats requests with no move to show", n)
	}
}

// TestMovesUnderWay: a move's receivers, each with its ranges (those of
// the topology's Gains), and their progress as their stats say it, or
// what they said last when down, or nothing when they do not answer.
func TestMovesUnderWay(t *testing.T) {
	cases := []struct {
		name    string
		cmd     topology.Command
		in, out []string
	}{
		{"join", topology.Command{Op: topology.OpJoin, Server: newcomer, At: 1000}, []string{newcomer.Addr()}, []string{}},
		{"leave", topology.Command{Op: topology.OpLeave, Addr: "10.0.0.1:7004", At: 1000}, []string{}, []string{"10.0.0.1:7004"}},
		{"replace", topology.Command{Op: topology.OpReplace, Addr: "10.0.0.1:7004", Server: newcomer, At: 1000},
			[]string{newcomer.Addr()}, []string{"10.0.0.1:7004"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(2, 2, 2, 2)
			st := moving(t, f, tc.cmd)
			f.view = topology.NewView(st)
			now := time.UnixMilli(5000)
			c := New(f, Options{Now: func() time.Time { return now }})
			h := c.Handler(nil)
			var v MovesView
			get(t, h, "/api/moves", &v)
			m := v.Move
			if v.Epoch != 2 || m == nil || m.ID != 2 || m.Kind != tc.name || m.Phase != "streaming" || m.StartedMS != 1000 ||
				m.ElapsedMS != 4000 || !slices.Equal(m.In, tc.in) || !slices.Equal(m.Out, tc.out) || len(m.Waiting) != len(st.Move.Target) {
				t.Fatalf("%+v", m)
			}
			if len(m.Receivers) == 0 {
				t.Fatal("no receivers")
			}
			for _, r := range m.Receivers {
				gains := f.view.Gains(r.Addr, 3)
				if len(gains) == 0 || len(r.Ranges) != len(gains) || r.Share <= 0 || r.Share > 1 {
					t.Errorf("%s: %d ranges (share %v), want %d", r.Addr, len(r.Ranges), r.Share, len(gains))
				}
				for i, rg := range r.Ranges {
					g := gains[i]
					if rg.Start != g.Range.Start.String() || rg.End != g.Range.End.String() || !slices.Equal(rg.From, g.Sources) ||
						slices.Contains(rg.From, r.Addr) {
						t.Errorf("%s range %d: %+v, want %+v", r.Addr, i, rg, g)
					}
				}
				if r.Stream != nil || r.TimeLeft != "unknown: not begun" {
					t.Errorf("%s before its stream: %+v, %q", r.Addr, r.Stream, r.TimeLeft)
				}
			}

			// Each receiver's progress, from its own stats. The first
			// peer among them goes down, then stops answering, below.
			p0 := slices.IndexFunc(m.Receivers, func(r Receiver) bool { return r.Addr != f.self })
			if p0 < 0 {
				t.Fatalf("receivers %+v: want a peer", m.Receivers)
			}
			first := m.Receivers[p0].Addr
			f.set(func() {
				for i, r := range m.Receivers {
					f.streams[r.Addr] = &wire.StreamStats{Move: 2, Phase: "copy", Keys: int64(100 * (i + 1)), Bytes: 1000,
						RangesDone: 1, RangesTotal: 3, Fraction: 0.25, BytesPerSec: 400, LeftMS: 7400}
				}
				f.streams[first].Phase, f.streams[first].LeftMS = "barrier", -1
			})
			get(t, h, "/api/moves", &v)
			for i, r := range v.Move.Receivers {
				want := "7s"
				if i == p0 {
					want = "unknown: waiting for every live server to know the move"
				}
				if !r.Answered || r.StatsAgeMS != 0 || r.Stream == nil || r.Stream.Keys != int64(100*(i+1)) || r.TimeLeft != want {
					t.Errorf("receiver %d: %+v, time left %q, want %q", i, r, r.TimeLeft, want)
				}
			}

			// Down: what it said last, with its age, not asked; not
			// answering: nothing of it.
			now = now.Add(3 * time.Second)
			asked := f.asked[first]
			f.set(func() { f.down[first] = true })
			get(t, h, "/api/moves", &v)
			r := v.Move.Receivers[p0]
			if r.State != StateDown || r.Answered || r.StatsAgeMS != 3000 || r.Stream == nil || r.Stream.Phase != "barrier" ||
				f.asked[first] != asked || r.TimeLeft != "unknown: no answer from it" {
				t.Errorf("receiver down: %+v (asked %d times, before %d), %q", r, f.asked[first], asked, r.TimeLeft)
			}
			f.set(func() { delete(f.down, first); f.refuse[first] = true; delete(c.seen, first) })
			get(t, h, "/api/moves", &v)
			r = v.Move.Receivers[p0]
			if r.State != StateUp || r.Answered || r.Error == "" || r.Stream != nil || r.StatsAgeMS != -1 || r.TimeLeft != "unknown: no answer from it" {
				t.Errorf("receiver not answering: %+v, %q", r, r.TimeLeft)
			}

			// A stream of another move is not this one's.
			f.set(func() {
				f.down, f.refuse = map[string]bool{}, map[string]bool{}
				f.streams[first].Move = 1
			})
			get(t, h, "/api/moves", &v)
			if r := v.Move.Receivers[p0]; r.Stream != nil {
				t.Errorf("another move's stream shown: %+v", r.Stream)
			}
			// Reported: done whatever its stats say.
			st.Move.Streamed = []string{first}
			f.set(func() { f.view = topology.NewView(st) })
			get(t, h, "/api/moves", &v)
			if r := v.Move.Receivers[p0]; !r.Reported || r.TimeLeft != "done" || !slices.Contains(v.Move.Reported, first) ||
				slices.Contains(v.Move.Waiting, first) {
				t.Errorf("reported receiver: %+v; reported %v, waiting %v", r, v.Move.Reported, v.Move.Waiting)
			}
		})
	}
}

// TestMovesHistory: the moves the server saw end, with what their
// receivers say they received.
func TestMovesHistory(t *testing.T) {
	f := newFake(2, 2, 2)
	join := moving(t, f, topology.Command{Op: topology.OpJoin, Server: newcomer, At: 1000})
	v := topology.NewView(join)
	var recv []string
	for _, s := range join.Move.Target {
		if len(v.Gains(s.Addr(), 3)) > 0 {
			recv = append(recv, s.Addr())
		}
	}
	if !slices.Contains(recv, newcomer.Addr()) {
		t.Fatalf("receivers %v", recv)
	}
	// Finished: the ring is the target, in its cleanup.
	done := topology.State{Epoch: 4, Members: join.Move.Target, Cleanup: &topology.Cleanup{Epoch: 4, Since: 9000}}
	fin, ok := topology.Ended(join, done, 9500)
	if !ok || fin.Outcome != topology.Finished || fin.Ended != 9000 {
		t.Fatalf("ended: %+v %v", fin, ok)
	}
	aborted := topology.Past{Move: *join.Move, From: join.Members, Outcome: topology.Aborted, Epoch: 3, Ended: 2000}
	aborted.Move.ID = 1 // an earlier one
	f.view = topology.NewView(done)
	f.past = []topology.Past{fin, aborted}
	for i, a := range recv {
		f.streamPast[a] = []wire.StreamStats{{Move: 2, Phase: "done", Keys: int64(10 * (i + 1)), Bytes: int64(100 * (i + 1)),
			StartedMS: 1000, FinishedMS: 4000}}
	}
	var mv MovesView
	c := New(f, Options{})
	get(t, c.Handler(nil), "/api/moves", &mv)
	if mv.Move != nil || mv.Cleanup == nil || mv.Cleanup.Epoch != 4 || len(mv.History) != 2 {
		t.Fatalf("%+v", mv)
	}
	h := mv.History[0]
	var keys, bytes int64
	for i := range recv {
		keys += int64(10 * (i + 1))
		bytes += int64(100 * (i + 1))
	}
	if h.ID != 2 || h.Kind != "join" || h.Outcome != "finished" || h.EndEpoch != 4 || h.StartedMS != 1000 || h.EndedMS != 9000 ||
		h.DurationMS != 8000 || !h.Cleaning || !h.Complete || h.Keys != keys || h.Bytes != bytes || len(h.Receivers) != len(recv) ||
		!slices.Equal(h.In, []string{newcomer.Addr()}) {
		t.Errorf("finished move: %+v", h)
	}
	for _, r := range h.Receivers {
		if !r.Known || r.Phase != "done" || r.DurationMS != 3000 {
			t.Errorf("receiver of the finished move: %+v", r)
		}
	}
	if h := mv.History[1]; h.ID != 1 || h.Outcome != "aborted" || h.Cleaning || h.Complete || h.Keys != 0 {
		t.Errorf("aborted move, no receiver saying anything of it: %+v", h)
	}
	// The receivers of the moves shown are kept, and only those.
	if len(c.gains) != 2 {
		t.Errorf("gains of %d moves kept, want 2", len(c.gains))
	}
	f.set(func() { f.past = f.past[:1] })
	get(t, c.Handler(nil), "/api/moves", &mv)
	if _, ok := c.gains[2]; len(c.gains) != 1 || !ok || len(mv.History) != 1 || mv.History[0].Keys != keys {
		t.Errorf("gains of %d moves kept, want move 2's; history %+v", len(c.gains), mv.History)
	}
}

// BenchmarkMoves is /api/moves during a join on a ring of 100 servers of
// 64 nodes each: "cold" finds the receivers and their ranges on every
// call (a new view and console each time), "kept" once.
func BenchmarkMoves(b *testing.B) {
	counts := make([]int, 100)
	for i := range counts {
		counts[i] = 64
	}
	f := newFake(counts...)
	st, err := topology.Initial(f.ring.Servers()).Apply(topology.Command{Op: topology.OpJoin,
		Server: config.Server{IP: "10.0.0.2", Port: 7001, Count: 64}})
	if err != nil {
		b.Fatal(err)
	}
	f.view = topology.NewView(st)
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			f.view = topology.NewView(st)
			New(f, Options{}).Moves(ctx)
		}
	})
	b.Run("kept", func(b *testing.B) {
		c := New(f, Options{})
		c.Moves(ctx)
		for b.Loop() {
			c.Moves(ctx)
		}
	})
}
