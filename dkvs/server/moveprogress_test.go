package server

import (
	"math"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// at is the ring position whose first byte is b.
func at(b byte) ring.Hash {
	var h ring.Hash
	h[0] = b
	return h
}

func TestPassProgress(t *testing.T) {
	gains := []topology.Gain{
		{Range: topology.Range{Start: at(0x10), End: at(0x20)}, N: 3, Sources: []string{"a", "b"}},
		{Range: topology.Range{Start: at(0x30), End: at(0x50)}, N: 3, Sources: []string{"b", "a"}},
		{Range: topology.Range{Start: at(0xf0), End: at(0x08)}, N: 3, Sources: []string{"a"}}, // across the top
	}
	w := []float64{16, 32, 24} // each range's share, in 256ths
	const all = 16 + 32 + 24
	cases := []struct {
		name   string
		pass   uint8
		order  []string
		done   []string
		cur    string
		pos    byte
		hasPos bool
		ranges int
		frac   float64
	}{
		{"not begun", wire.StreamPrimary, []string{"a", "b"}, nil, "", 0, false, 0, 0},
		{"first source, no page yet", wire.StreamPrimary, []string{"a", "b"}, nil, "a", 0, false, 0, 0},
		{"first source half-way through a range", wire.StreamPrimary, []string{"a", "b"}, nil, "a", 0x18, true, 0, w[0] / 2 / all},
		{"first source past a range", wire.StreamPrimary, []string{"a", "b"}, nil, "a", 0x25, true, 1, w[0] / all},
		// b's range is sent by b, not a: a's cursor past it does not count.
		{"first source past another's range", wire.StreamPrimary, []string{"a", "b"}, nil, "a", 0x60, true, 1, w[0] / all},
		{"first source done", wire.StreamPrimary, []string{"a", "b"}, []string{"a"}, "b", 0, false, 2, (w[0] + w[2]) / all},
		{"second source half-way", wire.StreamPrimary, []string{"a", "b"}, []string{"a"}, "b", 0x40, true, 2, (w[0] + w[2] + w[1]/2) / all},
		{"both done", wire.StreamPrimary, []string{"a", "b"}, []string{"a", "b"}, "", 0, false, 3, 1},
		// a down at the pass's start: b sends the first range, the one
		// only a holds is left to the verifying pass.
		{"a skipped", wire.StreamPrimary, []string{"b"}, nil, "b", 0x25, true, 2, (w[0] + w[2]) / all},
		// The verifying pass: every live home of each range sends it.
		{"verify, a done", wire.StreamVerify, []string{"a", "b"}, []string{"a"}, "b", 0, false, 1, (w[0]/2 + w[1]/2 + w[2]) / all},
		{"verify, both done", wire.StreamVerify, []string{"a", "b"}, []string{"a", "b"}, "", 0, false, 3, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &passState{pass: tc.pass, gains: gains, order: tc.order, done: map[string]bool{}, cur: tc.cur, pos: at(tc.pos), hasPos: tc.hasPos}
			for _, d := range tc.done {
				p.done[d] = true
			}
			done, total, frac := p.progress()
			if done != tc.ranges || total != 3 || math.Abs(frac-tc.frac) > 1e-9 {
				t.Errorf("%d of %d ranges done, fraction %v; want %d of 3, %v", done, total, frac, tc.ranges, tc.frac)
			}
		})
	}
	// No range to gain: the pass is all done.
	if done, total, frac := (&passState{done: map[string]bool{}}).progress(); done != 0 || total != 0 || frac != 1 {
		t.Errorf("no ranges: %d of %d, %v", done, total, frac)
	}
}

func TestRateMeter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var m rateMeter
	if k, b := m.rate(t0, 0, 0); k != 0 || b != 0 {
		t.Fatalf("no samples: %v %v", k, b)
	}
	m.add(t0, 0, 0)
	if k, b := m.rate(sec(0.2), 5, 500); k != 0 || b != 0 {
		t.Errorf("over 0.2 s: %v %v, want 0 (too short to tell)", k, b)
	}
	for i := 1; i <= 30; i++ { // 10 keys and 1000 bytes a second for 30 s
		m.add(sec(float64(i)-0.5), int64(10*i-5), int64(1000*i-500)) // within the same second: not kept
		m.add(sec(float64(i)), int64(10*i), int64(1000*i))
	}
	if len(m.samples) > 12 {
		t.Errorf("%d samples kept", len(m.samples))
	}
	if k, b := m.rate(sec(30), 300, 30000); math.Abs(k-10) > 1e-9 || math.Abs(b-1000) > 1e-9 {
		t.Errorf("steady: %v keys/s, %v bytes/s, want 10 and 1000", k, b)
	}
	// Stalled for 5 s: half the rate over the window; for 30 s: none.
	if k, _ := m.rate(sec(35), 300, 30000); math.Abs(k-5) > 1e-9 {
		t.Errorf("stalled 5 s: %v keys/s, want 5", k)
	}
	if k, b := m.rate(sec(60), 300, 30000); k != 0 || b != 0 {
		t.Errorf("stalled 30 s: %v %v, want 0", k, b)
	}
}

func TestTimeLeft(t *testing.T) {
	began := time.Unix(1000, 0)
	cases := []struct {
		name          string
		phase         string
		frac, frac0   float64
		bytes, bytes0 int64
		bps           float64
		now           time.Duration
		want          int64
	}{
		{"done", "done", 1, 0, 100, 0, 0, time.Second, 0},
		{"barrier", "barrier", 1, 0, 100, 0, 0, time.Second, -1},
		{"nothing done", "copy", 0, 0, 0, 0, 0, time.Second, -1},
		{"no rate lately", "copy", 0.5, 0, 1000, 0, 0, time.Second, -1},
		// 1000 bytes for a quarter: 3000 left at 500/s.
		{"copy", "copy", 0.25, 0, 1000, 0, 500, time.Second, 6000},
		// Resumed at 0.5 with 4000 bytes: 1000 bytes for 0.25 since, 1000 left.
		{"copy resumed", "copy", 0.75, 0.5, 5000, 4000, 500, time.Second, 2000},
		// A third in 3 s: 6 s left.
		{"verify", "verify", 1.0 / 3, 0, 0, 0, 0, 3 * time.Second, 6000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := timeLeft(tc.phase, tc.frac, tc.frac0, tc.bytes, tc.bytes0, tc.bps, began, began.Add(tc.now))
			if got != tc.want {
				t.Errorf("%d ms, want %d", got, tc.want)
			}
		})
	}
}

func local(port int) config.Server {
	return config.Server{IP: "127.0.0.1", Port: uint16(port), Count: 2}
}

func TestMoveLog(t *testing.T) {
	base := topology.Initial([]config.Server{local(7001), local(7002), local(7003)})
	join, err := base.Apply(topology.Command{Op: topology.OpJoin, Server: local(7010), At: 100})
	if err != nil {
		t.Fatal(err)
	}
	aborted, err := join.Apply(topology.Command{Op: topology.OpAbort, MoveID: 2, At: 200})
	if err != nil {
		t.Fatal(err)
	}
	l := newMoveLog(base, func() time.Time { return time.UnixMilli(999) })
	l.observe(join)
	l.observe(base) // older: ignored
	l.observe(aborted)
	l.observe(join) // older: ignored
	got := l.list()
	if len(got) != 1 || got[0].Outcome != topology.Aborted || got[0].Ended != 200 || got[0].Move.ID != 2 {
		t.Fatalf("%+v", got)
	}
	// Bounded, newest first.
	st := aborted
	for i := 0; i < 2*maxPastMoves; i++ {
		c := topology.Command{Op: topology.OpJoin, Server: local(7100 + i), At: int64(i)}
		if st, err = st.Apply(c); err != nil {
			t.Fatal(err)
		}
		l.observe(st)
		if st, err = st.Apply(topology.Command{Op: topology.OpAbort, MoveID: st.Epoch}); err != nil {
			t.Fatal(err)
		}
		l.observe(st)
	}
	got = l.list()
	if len(got) != maxPastMoves || got[0].Move.Server != local(7100+2*maxPastMoves-1).Addr() {
		t.Fatalf("%d moves, newest %+v", len(got), got[0])
	}
}

// TestStreamEnded: a stream whose move is over without it being done (an
// abort) is marked stopped; a done one, or one whose move goes on, is
// left as it is.
func TestStreamEnded(t *testing.T) {
	base := topology.Initial([]config.Server{local(7001), local(7002), local(7003)})
	join, err := base.Apply(topology.Command{Op: topology.OpJoin, Server: local(7010)})
	if err != nil {
		t.Fatal(err)
	}
	over, err := join.Apply(topology.Command{Op: topology.OpAbort, MoveID: join.Move.ID})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		phase string
		st    topology.State
		want  string
	}{
		{"copying, move under way", "copy", join, "copy"},
		{"copying, move aborted", "copy", over, "stopped"},
		{"at the barrier, move aborted", "barrier", over, "stopped"},
		{"done, move aborted", "done", over, "done"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMover(nil, 0)
			m.stats = &wire.StreamStats{Move: join.Move.ID, Phase: tc.phase}
			if tc.phase == "done" {
				m.stats.FinishedMS = 1
			}
			m.ended(tc.st)
			ss, past := m.Stats()
			if ss.Phase != tc.want || (tc.want == "stopped") != (ss.FinishedMS > 1) || len(past) != 0 {
				t.Errorf("%+v, want phase %s", ss, tc.want)
			}
			if tc.want == "stopped" && ss.LeftMS != -1 {
				t.Errorf("time left %d of a stopped stream", ss.LeftMS)
			}
		})
	}
}
