package topology

import (
	"slices"
	"testing"
)

// TestEnded: a server that compares each ring it learns with the one
// before tells which move ended, how and when.
func TestEnded(t *testing.T) {
	base := Initial(servers(1, 2, 3))
	apply := func(s State, c Command) State {
		t.Helper()
		n, err := s.Apply(c)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	streaming := apply(base, Command{Op: OpJoin, Server: srv(7010, 2), At: 100})
	readNew := apply(streaming, Command{Op: OpAdvance, MoveID: 2, Phase: Streaming, At: 200})
	finished := apply(readNew, Command{Op: OpAdvance, MoveID: 2, Phase: ReadNew, At: 300})
	cleaned := apply(finished, Command{Op: OpCleaned, MoveID: 4, At: 400})
	aborted := apply(streaming, Command{Op: OpAbort, MoveID: 2, At: 250})
	other := apply(cleaned, Command{Op: OpLeave, Addr: "127.0.0.1:7002", At: 500}) // epoch 5
	const now = 999
	cases := []struct {
		name       string
		prev, next State
		ok         bool
		outcome    string
		epoch      uint64
		ended      int64
	}{
		{"no move before", base, streaming, false, "", 0, 0},
		{"the same move, next phase", streaming, readNew, false, "", 0, 0},
		{"an older state", readNew, streaming, false, "", 0, 0},
		{"aborted", streaming, aborted, true, Aborted, 3, 250},
		{"finished", readNew, finished, true, Finished, 4, 300},
		{"finished, read-new missed", streaming, finished, true, Finished, 4, 300},
		{"finished, its cleanup over already", readNew, cleaned, true, Finished, 4, now},
		{"another move begun since", readNew, other, true, Over, 5, now},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := Ended(tc.prev, tc.next, now)
			if ok != tc.ok {
				t.Fatalf("ended %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if p.Outcome != tc.outcome || p.Epoch != tc.epoch || p.Ended != tc.ended || p.Move.ID != 2 || p.Move.Kind != Join ||
				len(p.From) != 3 || len(p.Move.Target) != 4 {
				t.Errorf("%+v, want %s at epoch %d, ended %d", p, tc.outcome, tc.epoch, tc.ended)
			}
		})
	}
}

// TestAllGains: every server's gains in one walk are each one's Gains.
func TestAllGains(t *testing.T) {
	base := Initial(servers(4, 8, 2, 8, 5))
	for _, c := range []Command{
		{Op: OpJoin, Server: srv(7010, 6)},
		{Op: OpLeave, Addr: "127.0.0.1:7002"},
		{Op: OpReplace, Addr: "127.0.0.1:7003", Server: srv(7011, 3)},
		{Op: OpRemove, Addr: "127.0.0.1:7001"},
	} {
		st, err := base.Apply(c)
		if err != nil {
			t.Fatal(err)
		}
		v := NewView(st)
		for n := 1; n <= 4; n++ {
			all := v.AllGains(n)
			found := 0
			for _, s := range v.Servers() {
				one := v.Gains(s.Addr(), n)
				if !slices.EqualFunc(one, all[s.Addr()], func(a, b Gain) bool {
					return a.Range == b.Range && a.N == b.N && slices.Equal(a.Sources, b.Sources)
				}) {
					t.Errorf("%s, n=%d, %s: Gains %v, AllGains %v", c.Op, n, s.Addr(), one, all[s.Addr()])
				}
				if len(one) > 0 {
					found++
				}
			}
			if found != len(all) || found == 0 {
				t.Errorf("%s, n=%d: %d servers gain, AllGains has %d", c.Op, n, found, len(all))
			}
		}
	}
}
