package topology

import (
	"bytes"
	"slices"
	"sync"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// View is where a key's requests go at one epoch: the placement derived
// from a State, with its rings built once. Servers are numbered in one
// index space, Servers(): the current ring's members first, then the
// target's new ones. A View is immutable and safe for concurrent use.
type View struct {
	state    State
	servers  []config.Server
	addrs    []string
	cur, tgt *ring.Ring // tgt is nil when no move is under way
	curIdx   []int      // index in cur.Servers() -> index in servers
	tgtIdx   []int

	// arcs between the nodes of both rings, found once: every Gains and
	// Losses walks them.
	arcsOnce sync.Once
	arcsList []Range
}

// NewView builds the view of s.
func NewView(s State) *View {
	v := &View{state: s, servers: s.AllServers()}
	for _, sv := range v.servers {
		v.addrs = append(v.addrs, sv.Addr())
	}
	v.cur = ring.New(s.Members)
	v.curIdx = v.indexes(s.Members)
	if s.Move != nil {
		v.tgt = ring.New(s.Move.Target)
		v.tgtIdx = v.indexes(s.Move.Target)
	}
	return v
}

// StaticView is the view of a ring that never changes: epoch 1.
func StaticView(servers []config.Server) *View { return NewView(Initial(servers)) }

func (v *View) indexes(members []config.Server) []int {
	out := make([]int, len(members))
	for i, m := range members {
		out[i] = config.Find(v.servers, m.Addr())
	}
	return out
}

// State returns the state the view was built from.
func (v *View) State() State { return v.state }

// Epoch returns the view's epoch.
func (v *View) Epoch() uint64 { return v.state.Epoch }

// Servers returns every server of the view (current ring, then the new
// ones of the target). The slice must not be modified.
func (v *View) Servers() []config.Server { return v.servers }

// Addrs returns the servers' addresses, in the order of Servers().
func (v *View) Addrs() []string { return v.addrs }

// Current returns the current ring.
func (v *View) Current() *ring.Ring { return v.cur }

// Target returns the ring the move leads to, or nil.
func (v *View) Target() *ring.Ring { return v.tgt }

// Moving reports whether a move is under way.
func (v *View) Moving() bool { return v.tgt != nil }

// ReadRing returns the ring reads go to: the target once the move is in
// its read-new phase, the current one otherwise.
func (v *View) ReadRing() *ring.Ring {
	if v.tgt != nil && v.state.Move.Phase == ReadNew {
		return v.tgt
	}
	return v.cur
}

func (v *View) readIdx() []int {
	if v.tgt != nil && v.state.Move.Phase == ReadNew {
		return v.tgtIdx
	}
	return v.curIdx
}

// RingSize returns the fewest servers of the rings a write goes to: N
// above it means every server.
func (v *View) RingSize() int {
	n := len(v.state.Members)
	if v.tgt != nil {
		n = min(n, len(v.state.Move.Target))
	}
	return n
}

// ReadHomes returns the key's n home servers reads go to.
func (v *View) ReadHomes(key []byte, n int) []int {
	return mapIdx(v.ReadRing().Preference(key, n), v.readIdx())
}

// WriteSets returns the key's n home servers in each ring writes go to:
// one set, or two during a move (the current ring's, then the target's).
// A write needs W acknowledgements in each.
func (v *View) WriteSets(key []byte, n int) [][]int {
	sets := [][]int{mapIdx(v.cur.Preference(key, n), v.curIdx)}
	if v.tgt != nil {
		sets = append(sets, mapIdx(v.tgt.Preference(key, n), v.tgtIdx))
	}
	return sets
}

// Walk returns every server clockwise from the key on the read ring, then
// the servers of the other ring not on it: the homes first, then the
// fallbacks of sloppy quorum.
func (v *View) Walk(key []byte) []int {
	r := v.ReadRing()
	out := mapIdx(r.Preference(key, len(r.Servers())), v.readIdx())
	for i := range v.servers {
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	return out
}

// mapIdx maps the ring's server indexes in to the view's, in place: in is
// always a fresh result of Ring.Preference, so a copy was an allocation
// per operation for nothing.
func mapIdx(in []int, m []int) []int {
	for i, x := range in {
		in[i] = m[x]
	}
	return in
}

// Union returns the servers of sets, each once, in order of appearance.
func Union(sets [][]int) []int {
	var out []int
	for _, s := range sets {
		for _, x := range s {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

// Range is an arc of the ring, (Start, End]: the positions after Start up
// to and including End (a node owns the keys up to its own position).
// Start == End is the whole ring.
type Range struct {
	Start, End ring.Hash
}

// Contains reports whether position h falls in the range.
func (r Range) Contains(h ring.Hash) bool {
	c := bytes.Compare(r.Start[:], r.End[:])
	switch {
	case c == 0:
		return true
	case c < 0:
		return bytes.Compare(h[:], r.Start[:]) > 0 && bytes.Compare(h[:], r.End[:]) <= 0
	default: // wraps past the top
		return bytes.Compare(h[:], r.Start[:]) > 0 || bytes.Compare(h[:], r.End[:]) <= 0
	}
}

// Gain is a range a server receives in a move, for the keys written with
// n replicas, and the servers that hold it now (its current homes, the
// move's excluded servers left out), best source first.
type Gain struct {
	Range   Range
	N       int
	Sources []string
}

// Gains returns the ranges server addr receives in the move, for keys
// of n replicas: where it is among the n homes of the target ring and not
// of the current one. Adjacent arcs with the same sources are merged.
func (v *View) Gains(addr string, n int) []Gain {
	return v.gains(n, addr)[addr]
}

// AllGains returns Gains of every server of the view that gains ranges,
// by address, in one walk of the arcs.
func (v *View) AllGains(n int) map[string][]Gain {
	return v.gains(n)
}

// gains returns the gains of the servers named (all of them when none
// is), walking each arc's homes once.
func (v *View) gains(n int, only ...string) map[string][]Gain {
	out := map[string][]Gain{}
	if v.tgt == nil {
		return out
	}
	excluded := v.state.Move.Excluded
	for _, a := range v.arcs() {
		newHomes := v.addrsOf(mapIdx(v.tgt.PreferenceAt(v.tgt.First(a.End), n), v.tgtIdx))
		oldHomes := v.addrsOf(mapIdx(v.cur.PreferenceAt(v.cur.First(a.End), n), v.curIdx))
		var sources []string
		for _, addr := range newHomes {
			if slices.Contains(oldHomes, addr) || (len(only) > 0 && !slices.Contains(only, addr)) {
				continue
			}
			if sources == nil {
				for _, h := range oldHomes {
					if !slices.Contains(excluded, h) {
						sources = append(sources, h)
					}
				}
			}
			g := out[addr]
			if k := len(g); k > 0 && g[k-1].Range.End == a.Start && slices.Equal(g[k-1].Sources, sources) {
				g[k-1].Range.End = a.End
				continue
			}
			out[addr] = append(g, Gain{Range: a, N: n, Sources: slices.Clone(sources)})
		}
	}
	// The first and last arcs may be one range across the top.
	for addr, g := range out {
		if k := len(g); k > 1 && g[k-1].Range.End == g[0].Range.Start && slices.Equal(g[k-1].Sources, g[0].Sources) {
			g[0].Range.Start = g[k-1].Range.Start
			out[addr] = g[:k-1]
		}
	}
	return out
}

// Losses returns the ranges server addr no longer holds once the move is
// done, for keys of n replicas: where it is among the n homes of the
// current ring and not of the target.
func (v *View) Losses(addr string, n int) []Range {
	if v.tgt == nil {
		return nil
	}
	var out []Range
	for _, a := range v.arcs() {
		newHomes := v.addrsOf(mapIdx(v.tgt.PreferenceAt(v.tgt.First(a.End), n), v.tgtIdx))
		oldHomes := v.addrsOf(mapIdx(v.cur.PreferenceAt(v.cur.First(a.End), n), v.curIdx))
		if slices.Contains(oldHomes, addr) && !slices.Contains(newHomes, addr) {
			if k := len(out); k > 0 && out[k-1].End == a.Start {
				out[k-1].End = a.End
				continue
			}
			out = append(out, a)
		}
	}
	return out
}

// arcs returns the arcs between consecutive node positions of both rings,
// in ring order: within one, every key has the same homes in each ring.
// The slice must not be modified.
func (v *View) arcs() []Range {
	v.arcsOnce.Do(func() { v.arcsList = v.findArcs() })
	return v.arcsList
}

func (v *View) findArcs() []Range {
	var pos []ring.Hash
	for _, nd := range v.cur.Nodes() {
		pos = append(pos, nd.Hash)
	}
	for _, nd := range v.tgt.Nodes() {
		pos = append(pos, nd.Hash)
	}
	slices.SortFunc(pos, func(a, b ring.Hash) int { return bytes.Compare(a[:], b[:]) })
	pos = slices.Compact(pos)
	out := make([]Range, len(pos))
	for i := range pos {
		prev := pos[(i+len(pos)-1)%len(pos)]
		out[i] = Range{Start: prev, End: pos[i]}
	}
	return out
}

func (v *View) addrsOf(idx []int) []string {
	out := make([]string, len(idx))
	for i, x := range idx {
		out[i] = v.addrs[x]
	}
	return out
}

// Fraction returns the share of the key space in r (from the top 64 bits
// of its ends: plenty for shares and progress).
func (r Range) Fraction() float64 { return arcFraction(r.Start, r.End) }
