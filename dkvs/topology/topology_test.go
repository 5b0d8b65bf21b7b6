package topology

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/ring"
)

func servers(counts ...int) []config.Server {
	var out []config.Server
	for i, c := range counts {
		out = append(out, config.Server{IP: "127.0.0.1", Port: uint16(7001 + i), Count: c})
	}
	return out
}

func srv(port, count int) config.Server {
	return config.Server{IP: "127.0.0.1", Port: uint16(port), Count: count}
}

func TestCommands(t *testing.T) {
	base := Initial(servers(1, 2, 3, 2))
	joined, err := base.Apply(Command{Op: OpJoin, Server: srv(7010, 2), At: 5})
	if err != nil {
		t.Fatal(err)
	}
	if joined.Epoch != 2 || joined.Move == nil || joined.Move.Kind != Join || joined.Move.Phase != Streaming ||
		len(joined.Move.Target) != 5 || joined.Move.ID != 2 || joined.Move.Started != 5 || len(joined.Members) != 4 {
		t.Fatalf("join: %+v %+v", joined, joined.Move)
	}
	cases := []struct {
		name string
		from State
		cmd  Command
		want error // nil: accepted
	}{
		{"join a member", base, Command{Op: OpJoin, Server: srv(7002, 2)}, ErrAlreadyMember},
		{"join with COUNT 0", base, Command{Op: OpJoin, Server: srv(7010, 0)}, errcode.InvalidArg},
		{"join a bad IP", base, Command{Op: OpJoin, Server: config.Server{IP: "127.0.001", Port: 7010, Count: 1}}, errcode.Address},
		{"join during a move", joined, Command{Op: OpJoin, Server: srv(7011, 2)}, ErrMoveInProgress},
		{"leave during a move", joined, Command{Op: OpLeave, Addr: "127.0.0.1:7001"}, ErrMoveInProgress},
		{"leave an unknown server", base, Command{Op: OpLeave, Addr: "127.0.0.1:7999"}, ErrUnknownServer},
		{"leave a bad address", base, Command{Op: OpLeave, Addr: "nonsense"}, errcode.Address},
		{"leave", base, Command{Op: OpLeave, Addr: "127.0.0.1:7001"}, nil},
		{"leave down to two", Initial(servers(1, 1, 1)), Command{Op: OpLeave, Addr: "127.0.0.1:7001"}, ErrTooFewServers},
		{"remove", base, Command{Op: OpRemove, Addr: "127.0.0.1:7003"}, nil},
		{"replace", base, Command{Op: OpReplace, Addr: "127.0.0.1:7003", Server: srv(7010, 3)}, nil},
		{"replace by a member", base, Command{Op: OpReplace, Addr: "127.0.0.1:7003", Server: srv(7001, 3)}, ErrAlreadyMember},
		{"replace an unknown server", base, Command{Op: OpReplace, Addr: "127.0.0.1:7999", Server: srv(7010, 3)}, ErrUnknownServer},
		{"advance without a move", base, Command{Op: OpAdvance, MoveID: 2, Phase: Streaming}, ErrNoMove},
		{"advance another move", joined, Command{Op: OpAdvance, MoveID: 9, Phase: Streaming}, ErrStaleCommand},
		{"advance from the wrong phase", joined, Command{Op: OpAdvance, MoveID: 2, Phase: ReadNew}, ErrStaleCommand},
		{"advance", joined, Command{Op: OpAdvance, MoveID: 2, Phase: Streaming}, nil},
		{"abort", joined, Command{Op: OpAbort, MoveID: 2}, nil},
		{"abort another move", joined, Command{Op: OpAbort, MoveID: 3}, ErrNoMove},
		{"stream done", joined, Command{Op: OpStreamDone, MoveID: 2, Phase: Streaming, Addr: "127.0.0.1:7010"}, nil},
		{"unknown op", base, Command{Op: "dance"}, errcode.InvalidArg},
	}
	for _, c := range cases {
		got, err := c.from.Apply(c.cmd)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if got.Epoch != c.from.Epoch || !slices.Equal(got.Members, c.from.Members) {
			t.Errorf("%s: a refused command changed the state", c.name)
		}
	}
}

// TestMoveLifecycle: streaming, read-new, done; then the cleanup ends.
// Abort is refused once reads go to the new ring.
func TestMoveLifecycle(t *testing.T) {
	s := Initial(servers(2, 2, 2))
	s, _ = s.Apply(Command{Op: OpJoin, Server: srv(7010, 2)})
	id := s.Move.ID
	s, err := s.Apply(Command{Op: OpStreamDone, MoveID: id, Phase: Streaming, Addr: "127.0.0.1:7010"})
	if err != nil || s.Epoch != 2 || !slices.Equal(s.Move.Streamed, []string{"127.0.0.1:7010"}) {
		t.Fatalf("stream done: %+v %v", s.Move, err)
	}
	s, err = s.Apply(Command{Op: OpAdvance, MoveID: id, Phase: Streaming})
	if err != nil || s.Epoch != 3 || s.Move.Phase != ReadNew {
		t.Fatalf("to read-new: %+v %v", s, err)
	}
	if _, err := s.Apply(Command{Op: OpAbort, MoveID: id}); !errors.Is(err, ErrCannotAbort) {
		t.Fatalf("abort in read-new: %v", err)
	}
	s, err = s.Apply(Command{Op: OpAdvance, MoveID: id, Phase: ReadNew, At: 77})
	if err != nil || s.Epoch != 4 || s.Move != nil || len(s.Members) != 4 || s.Cleanup == nil || s.Cleanup.Since != 77 {
		t.Fatalf("done: %+v %v", s, err)
	}
	s, err = s.Apply(Command{Op: OpCleaned, MoveID: 4})
	if err != nil || s.Cleanup != nil {
		t.Fatalf("cleaned: %+v %v", s, err)
	}
	back, err := Decode(s.Encode())
	if err != nil || back.Epoch != s.Epoch || !slices.Equal(back.Members, s.Members) {
		t.Fatalf("encode/decode: %+v %v", back, err)
	}
}

func TestVoters(t *testing.T) {
	s := Initial(servers(1, 1, 1, 1, 1, 1, 1))
	if v := s.Voters(); len(v) != 5 || v[0] != "127.0.0.1:7001" || v[4] != "127.0.0.1:7005" {
		t.Fatalf("voters: %v", v)
	}
	s, _ = s.Apply(Command{Op: OpLeave, Addr: "127.0.0.1:7002"})
	if v := s.Voters(); len(v) != 5 || slices.Contains(v, "127.0.0.1:7002") || v[4] != "127.0.0.1:7006" {
		t.Fatalf("voters while 7002 leaves: %v", v)
	}
}

// TestViewPlacement: during a move writes go to both rings' homes and
// reads to the current ring's, then the target's.
func TestViewPlacement(t *testing.T) {
	s := Initial(servers(1, 2, 3, 2))
	s, _ = s.Apply(Command{Op: OpJoin, Server: srv(7010, 8)})
	v := NewView(s)
	cur, tgt := ring.New(s.Members), ring.New(s.Move.Target)
	for i := 0; i < 500; i++ {
		key := []byte(fmt.Sprint("k", i))
		sets := v.WriteSets(key, 3)
		if len(sets) != 2 {
			t.Fatalf("%d write sets", len(sets))
		}
		addrsOf := func(idx []int) []string {
			var out []string
			for _, x := range idx {
				out = append(out, v.Addrs()[x])
			}
			return out
		}
		if want := addrsAtKey(cur, key, 3); !slices.Equal(addrsOf(sets[0]), want) {
			t.Fatalf("%s: current set %v, want %v", key, addrsOf(sets[0]), want)
		}
		if want := addrsAtKey(tgt, key, 3); !slices.Equal(addrsOf(sets[1]), want) {
			t.Fatalf("%s: target set %v, want %v", key, addrsOf(sets[1]), want)
		}
		if !slices.Equal(addrsOf(v.ReadHomes(key, 3)), addrsAtKey(cur, key, 3)) {
			t.Fatalf("%s: reads do not go to the current ring", key)
		}
	}
	s, _ = s.Apply(Command{Op: OpAdvance, MoveID: s.Move.ID, Phase: Streaming})
	v = NewView(s)
	for i := 0; i < 100; i++ {
		key := []byte(fmt.Sprint("k", i))
		var got []string
		for _, x := range v.ReadHomes(key, 3) {
			got = append(got, v.Addrs()[x])
		}
		if !slices.Equal(got, addrsAtKey(tgt, key, 3)) {
			t.Fatalf("%s: read-new reads %v", key, got)
		}
	}
	if st := StaticView(servers(1, 1)); st.Moving() || len(st.WriteSets([]byte("a"), 3)) != 1 || st.Epoch() != 1 {
		t.Fatal("static view")
	}
}

func addrsAtKey(r *ring.Ring, key []byte, n int) []string {
	var out []string
	for _, s := range r.Preference(key, n) {
		out = append(out, r.Servers()[s].Addr())
	}
	return out
}

// TestGainsAndLosses checks the ranges of a move against every key of a
// sample: a key is in a server's gains exactly when it is among the key's
// homes in the target and not in the current ring, and its sources are
// the current homes but the excluded server.
func TestGainsAndLosses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
	}{
		{"join", Command{Op: OpJoin, Server: srv(7010, 3)}},
		{"leave", Command{Op: OpLeave, Addr: "127.0.0.1:7002"}},
		{"remove", Command{Op: OpRemove, Addr: "127.0.0.1:7003"}},
		{"replace", Command{Op: OpReplace, Addr: "127.0.0.1:7001", Server: srv(7010, 1)}},
	} {
		s, err := Initial(servers(1, 2, 3, 2, 4)).Apply(tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		v := NewView(s)
		for _, n := range []int{1, 3} {
			for _, addr := range v.Addrs() {
				gains, losses := v.Gains(addr, n), v.Losses(addr, n)
				for i := 0; i < 2000; i++ {
					key := []byte(fmt.Sprint("key-", i))
					h := ring.SHA1(key)
					oldH, newH := addrsAtKey(v.Current(), key, n), addrsAtKey(v.Target(), key, n)
					wantGain := slices.Contains(newH, addr) && !slices.Contains(oldH, addr)
					var in *Gain
					for gi := range gains {
						if gains[gi].Range.Contains(h) {
							in = &gains[gi]
						}
					}
					if (in != nil) != wantGain {
						t.Fatalf("%s n=%d %s %s: in gains %v, want %v", tc.name, n, addr, key, in != nil, wantGain)
					}
					if in != nil {
						for _, src := range in.Sources {
							if !slices.Contains(oldH, src) || slices.Contains(s.Move.Excluded, src) {
								t.Fatalf("%s: source %s of %s is not a live current home (%v)", tc.name, src, key, oldH)
							}
						}
					}
					wantLoss := slices.Contains(oldH, addr) && !slices.Contains(newH, addr)
					inLoss := slices.ContainsFunc(losses, func(r Range) bool { return r.Contains(h) })
					if inLoss != wantLoss {
						t.Fatalf("%s n=%d %s %s: in losses %v, want %v", tc.name, n, addr, key, inLoss, wantLoss)
					}
				}
			}
		}
	}
}

func TestRangeContains(t *testing.T) {
	h := func(b byte) ring.Hash { var x ring.Hash; x[0] = b; return x }
	cases := []struct {
		r    Range
		at   byte
		want bool
	}{
		{Range{h(10), h(20)}, 15, true},
		{Range{h(10), h(20)}, 10, false}, // the start belongs to the arc before
		{Range{h(10), h(20)}, 20, true},
		{Range{h(10), h(20)}, 21, false},
		{Range{h(200), h(20)}, 250, true}, // wraps
		{Range{h(200), h(20)}, 5, true},
		{Range{h(200), h(20)}, 100, false},
		{Range{h(7), h(7)}, 100, true}, // the whole ring
	}
	for _, c := range cases {
		if got := c.r.Contains(h(c.at)); got != c.want {
			t.Errorf("%v contains %d: %v", c.r, c.at, got)
		}
	}
}

// manyServers returns n servers on distinct addresses with one COUNT.
func manyServers(n, count int) []config.Server {
	var out []config.Server
	for i := 0; i < n; i++ {
		out = append(out, config.Server{IP: fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256), Port: 7000, Count: count})
	}
	return out
}

// TestJoinMovesItsShare: adding one server to n moves about 1/(n+1) of the
// (key, replica) pairs, for COUNTs that spread the load well.
func TestJoinMovesItsShare(t *testing.T) {
	for _, n := range []int{3, 5, 10, 30} {
		cur := manyServers(n, 128)
		next := append(slices.Clone(cur), config.Server{IP: "10.99.0.1", Port: 7000, Count: 128})
		moved := Moved(ring.New(cur), ring.New(next), 3)
		ideal := 1 / float64(n+1)
		if math.Abs(moved-ideal)/ideal > 0.25 {
			t.Errorf("n=%d: moved %.4f of the key space, ideal %.4f", n, moved, ideal)
		}
	}
}

func TestSharesAddUp(t *testing.T) {
	r := ring.New(servers(1, 2, 3, 2, 4))
	for _, n := range []int{1, 3, 5} {
		var sum float64
		for _, f := range Shares(r, n) {
			sum += f
		}
		if math.Abs(sum-float64(n)) > 1e-9 {
			t.Fatalf("n=%d: shares add up to %v", n, sum)
		}
	}
}

func TestJoinWarning(t *testing.T) {
	cur := manyServers(4, 64)
	if w := JoinWarning(cur, config.Server{IP: "10.99.0.1", Port: 7000, Count: 64}, 3); w != "" {
		t.Fatalf("same COUNT warned: %s", w)
	}
	if w := JoinWarning(cur, config.Server{IP: "10.99.0.1", Port: 7000, Count: 1}, 3); !strings.Contains(w, "COUNT 1") {
		t.Fatalf("COUNT 1 among COUNT 64: %q", w)
	}
}

// TestSpreadTable prints the tables of docs/operations.md ("Choosing
// COUNT"): the largest share over the mean share of n servers with
// COUNT virtual nodes each, for keys of one home and of three (the
// busiest server's load against a perfect balance), from the real ring
// code. Run it with -v. It also checks that more virtual nodes spread
// better.
func TestSpreadTable(t *testing.T) {
	sizes := []int{3, 5, 10, 30, 100, 300, 1000}
	counts := []int{1, 4, 16, 64, 256}
	if testing.Short() {
		sizes = sizes[:4]
	}
	for _, homes := range []int{1, 3} {
		var b strings.Builder
		b.WriteString("| servers |")
		for _, c := range counts {
			fmt.Fprintf(&b, " COUNT %d |", c)
		}
		b.WriteString("\n|--:|")
		for range counts {
			b.WriteString("--:|")
		}
		b.WriteString("\n")
		for _, n := range sizes {
			fmt.Fprintf(&b, "| %d |", n)
			prev := math.Inf(1)
			for _, c := range counts {
				if n*c > 300000 {
					b.WriteString(" |")
					continue
				}
				sp := Spread(ring.New(manyServers(n, c)), homes)
				fmt.Fprintf(&b, " %.2f |", sp)
				if c >= 16 && sp > prev*1.15 {
					t.Errorf("n=%d, N=%d: COUNT %d spreads worse (%.2f) than fewer nodes (%.2f)", n, homes, c, sp, prev)
				}
				prev = sp
			}
			b.WriteString("\n")
		}
		t.Logf("largest share / mean share, N=%d home(s) per key:\n%s", homes, b.String())
	}
}

// TestUnderway: a command is recognised as the move under way only when
// it asks for exactly that move.
func TestUnderway(t *testing.T) {
	base := Initial(servers(1, 2, 3, 2))
	must := func(s State, err error) State {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	joining := must(base.Apply(Command{Op: OpJoin, Server: srv(7010, 2)}))
	leaving := must(base.Apply(Command{Op: OpLeave, Addr: "127.0.0.1:7002"}))
	replacing := must(base.Apply(Command{Op: OpReplace, Addr: "127.0.0.1:7003", Server: srv(7011, 2)}))
	removing := must(base.Apply(Command{Op: OpRemove, Addr: "127.0.0.1:7001"}))
	cases := []struct {
		name string
		st   State
		cmd  Command
		want bool
	}{
		{"no move", base, Command{Op: OpJoin, Server: srv(7010, 2)}, false},
		{"the same join", joining, Command{Op: OpJoin, Server: srv(7010, 2)}, true},
		{"a join of another COUNT", joining, Command{Op: OpJoin, Server: srv(7010, 3)}, false},
		{"a join of another server", joining, Command{Op: OpJoin, Server: srv(7012, 2)}, false},
		{"a leave during a join", joining, Command{Op: OpLeave, Addr: "127.0.0.1:7010"}, false},
		{"the same leave", leaving, Command{Op: OpLeave, Addr: "127.0.0.1:7002"}, true},
		{"another leave", leaving, Command{Op: OpLeave, Addr: "127.0.0.1:7001"}, false},
		{"a removal of the leaving server", leaving, Command{Op: OpRemove, Addr: "127.0.0.1:7002"}, false},
		{"the same replacement", replacing, Command{Op: OpReplace, Addr: "127.0.0.1:7003", Server: srv(7011, 2)}, true},
		{"the same replacement, COUNT left out", replacing, Command{Op: OpReplace, Addr: "127.0.0.1:7003", Server: srv(7011, 0)}, true},
		{"a replacement by another", replacing, Command{Op: OpReplace, Addr: "127.0.0.1:7003", Server: srv(7012, 2)}, false},
		{"the same removal", removing, Command{Op: OpRemove, Addr: "127.0.0.1:7001"}, true},
		{"an abort", joining, Command{Op: OpAbort}, false},
	}
	for _, tc := range cases {
		if got := tc.st.Underway(tc.cmd); got != tc.want {
			t.Errorf("%s: Underway = %v, want %v", tc.name, got, tc.want)
		}
	}
}
