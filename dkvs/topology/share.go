package topology

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// arcFraction returns the share of the key space between two positions,
// (from, to], from their top 64 bits: plenty for shares.
func arcFraction(from, to ring.Hash) float64 {
	a, b := binary.BigEndian.Uint64(from[:8]), binary.BigEndian.Uint64(to[:8])
	if a == b {
		return 1
	}
	return float64(b-a) / math.Exp2(64) // unsigned arithmetic wraps past the top
}

// Shares returns, for each server of r (by address), the share of the key
// space for which it is among a key's n homes. The shares add up to n (or
// to the number of servers, when fewer).
func Shares(r *ring.Ring, n int) map[string]float64 {
	out := map[string]float64{}
	nodes := r.Nodes()
	for i, nd := range nodes {
		prev := nodes[(i+len(nodes)-1)%len(nodes)].Hash
		f := arcFraction(prev, nd.Hash)
		if len(nodes) == 1 {
			f = 1
		}
		for _, s := range r.PreferenceAt(i, n) {
			out[r.Servers()[s].Addr()] += f
		}
	}
	for _, s := range r.Servers() {
		if _, ok := out[s.Addr()]; !ok {
			out[s.Addr()] = 0
		}
	}
	return out
}

// Spread returns the largest share over the mean share of r's servers
// for keys of n homes: 1 is a perfect balance.
func Spread(r *ring.Ring, n int) float64 {
	shares := Shares(r, n)
	var sum, biggest float64
	for _, f := range shares {
		sum += f
		biggest = max(biggest, f)
	}
	return biggest / (sum / float64(len(shares)))
}

// Moved returns the share of (key, replica) pairs whose home changes
// between two rings, for keys of n homes: the data a move copies.
func Moved(from, to *ring.Ring, n int) float64 {
	v := &View{cur: from, tgt: to}
	var moved float64
	for _, a := range v.arcs() {
		oldHomes := addrsAt(from, a.End, n)
		newHomes := addrsAt(to, a.End, n)
		gained := 0
		for _, h := range newHomes {
			if !contains(oldHomes, h) {
				gained++
			}
		}
		moved += arcFraction(a.Start, a.End) * float64(gained) / float64(len(newHomes))
	}
	return moved
}

func addrsAt(r *ring.Ring, h ring.Hash, n int) []string {
	var out []string
	for _, s := range r.PreferenceAt(r.First(h), n) {
		out = append(out, r.Servers()[s].Addr())
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// JoinWarning returns a warning when server, joining current with its
// COUNT, would own a share of the key space far from its peers' (under
// half or over twice their mean share, for n homes), and "" otherwise.
func JoinWarning(current []config.Server, server config.Server, n int) string {
	target := ring.New(append(append([]config.Server(nil), current...), server))
	shares := Shares(target, n)
	mine := shares[server.Addr()]
	var others float64
	for addr, f := range shares {
		if addr != server.Addr() {
			others += f
		}
	}
	mean := others / float64(len(shares)-1)
	if mean == 0 {
		return ""
	}
	if r := mine / mean; r < 0.5 || r > 2 {
		return fmt.Sprintf("%s with COUNT %d would hold %.1f%% of the keys (N=%d), %.2f times the mean of the other servers (%.1f%%): "+
			"a COUNT near the others' spreads the load better (see docs/operations.md, choosing COUNT)",
			server.Addr(), server.Count, 100*mine, n, r, 100*mean)
	}
	return ""
}
