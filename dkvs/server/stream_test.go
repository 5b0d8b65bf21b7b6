package server

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// oldStreamFilter is how a source chose a stream's records before the
// ring index: every record of the store, in key order, through the same
// rules, with values (stripped in the verifying pass). The index path
// must send exactly these.
func oldStreamFilter(t *testing.T, db *storage.DB, v *topology.View, self string, req wire.StreamRequest) map[string]kv.Record {
	t.Helper()
	cur, tgt := v.Current(), v.Target()
	excluded := v.State().Move.Excluded
	out := map[string]kv.Record{}
	err := db.Scan(nil, storage.ScanOptions{Tombstones: true}, func(key []byte, rec kv.Record) bool {
		if rec.N == 0 {
			return true
		}
		n := int(rec.N)
		newHomes := addrsOf(tgt, tgt.Preference(key, n))
		if !slices.Contains(newHomes, req.Dest) {
			return true
		}
		oldHomes := addrsOf(cur, cur.Preference(key, n))
		if slices.Contains(oldHomes, req.Dest) || !slices.Contains(oldHomes, self) {
			return true
		}
		if req.Pass == wire.StreamVerify {
			rec.Value = nil
		}
		if req.Pass == wire.StreamPrimary {
			first := ""
			for _, h := range oldHomes {
				if !slices.Contains(excluded, h) && !slices.Contains(req.Skip, h) && h != req.Dest {
					first = h
					break
				}
			}
			if first != self {
				return true
			}
		}
		rec.Value = slices.Clone(rec.Value)
		out[string(key)] = rec
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStreamMatchesWholeStoreFilter: for joins, leaves, replacements and
// removals, every source, requester and pass, the pages read through the
// ring index (small pages and large) hold exactly the records the
// whole-store filter chose, each once, in ring order.
func TestStreamMatchesWholeStoreFilter(t *testing.T) {
	servers := []config.Server{
		{IP: "127.0.0.1", Port: 7001, Count: 1},
		{IP: "127.0.0.1", Port: 7002, Count: 3},
		{IP: "127.0.0.1", Port: 7003, Count: 2},
		{IP: "127.0.0.1", Port: 7004, Count: 4},
	}
	newcomer := config.Server{IP: "127.0.0.1", Port: 7005, Count: 3}
	db, err := storage.Open(storage.Options{InMemory: true, CompressAbove: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	var recs []storage.KeyRecord
	for i := range 3000 {
		rec := kv.Record{Version: kv.Version{Wall: uint64(1000 + i), Writer: 1}, N: uint8(1 + i%3)}
		switch {
		case i%17 == 0:
			rec.Tombstone = true
		case i%29 == 0:
			rec.N = 0 // this server's alone
		case i%31 == 0:
			rec.N = 7 // more homes than servers
		case i%11 == 0:
			rec.Value = bytes.Repeat([]byte{'z'}, 6000) // stored compressed
		default:
			rec.Value = make([]byte, rng.IntN(300))
		}
		recs = append(recs, storage.KeyRecord{Key: fmt.Appendf(nil, "key-%d", i), Record: rec})
	}
	if _, err := db.ApplyMany(recs); err != nil {
		t.Fatal(err)
	}
	initial := topology.Initial(servers)
	moves := []struct {
		name string
		cmd  topology.Command
	}{
		{"join", topology.Command{Op: topology.OpJoin, Server: newcomer}},
		{"leave", topology.Command{Op: topology.OpLeave, Addr: servers[1].Addr()}},
		{"replace", topology.Command{Op: topology.OpReplace, Addr: servers[3].Addr(), Server: newcomer}},
		{"remove", topology.Command{Op: topology.OpRemove, Addr: servers[0].Addr()}},
	}
	limits := []pageLimits{{scan: 7, bytes: 500}, {scan: 20000, bytes: 4000}, {scan: 20000, bytes: 1 << 20}}
	for _, mv := range moves {
		st, err := initial.Apply(mv.cmd)
		if err != nil {
			t.Fatal(err)
		}
		v := topology.NewView(st)
		for _, self := range initial.Members {
			src := self.Addr()
			if slices.Contains(st.Move.Excluded, src) {
				continue // never asked
			}
			for _, dest := range st.Move.Target {
				if dest.Addr() == src {
					continue
				}
				for _, pass := range []uint8{wire.StreamPrimary, wire.StreamAll, wire.StreamVerify} {
					skips := [][]string{nil}
					if pass == wire.StreamPrimary {
						skips = append(skips, []string{servers[2].Addr()})
					}
					for _, skip := range skips {
						req := wire.StreamRequest{Move: st.Move.ID, Dest: dest.Addr(), Pass: pass, Skip: skip}
						want := oldStreamFilter(t, db, v, src, req)
						for _, lim := range limits {
							name := fmt.Sprintf("%s/%s->%s/pass%d/skip%d/scan%d-bytes%d", mv.name, src, dest.Addr(), pass, len(skip), lim.scan, lim.bytes)
							got := readWholeStream(t, db, v, src, req, lim)
							if len(got) != len(want) {
								t.Errorf("%s: %d records through the index, %d by the whole-store filter", name, len(got), len(want))
							}
							for k, w := range want {
								g, ok := got[k]
								if !ok {
									t.Errorf("%s: %q missing", name, k)
									continue
								}
								if g.Version != w.Version || g.N != w.N || g.Tombstone != w.Tombstone || !bytes.Equal(g.Value, w.Value) {
									t.Errorf("%s: %q: got %+v, want %+v", name, k, g, w)
								}
							}
							if t.Failed() {
								return
							}
						}
					}
				}
			}
		}
	}
}

// readWholeStream reads a stream through readStreamPage page after page,
// as the requester does, checking each page's order and bounds.
func readWholeStream(t *testing.T, db *storage.DB, v *topology.View, self string, req wire.StreamRequest, lim pageLimits) map[string]kv.Record {
	t.Helper()
	st := v.State()
	f := &streamFilter{cur: v.Current(), tgt: v.Target(), self: self, dest: req.Dest, pass: req.Pass, skip: req.Skip, excluded: st.Move.Excluded}
	spans := streamSpans(v, self, req.Dest)
	got := map[string]kv.Record{}
	var after, last []byte
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("the stream does not end")
		}
		snap, err := db.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		page, err := readStreamPage(snap, spans, f, after, lim)
		snap.Close()
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for i, kr := range page.Records {
			if last != nil && ringCompare(last, kr.Key) >= 0 {
				t.Fatalf("%q after %q: not in ring order", kr.Key, last)
			}
			last = kr.Key
			if _, dup := got[string(kr.Key)]; dup {
				t.Fatalf("%q sent twice", kr.Key)
			}
			if size >= lim.bytes {
				t.Fatalf("record %d of a page past its %d bytes", i, lim.bytes)
			}
			size += len(kr.Key) + len(kr.Record.Value) + recordRoom
			got[string(kr.Key)] = kr.Record
		}
		if !page.More {
			if page.Next != nil {
				t.Fatalf("a last page with a cursor %q", page.Next)
			}
			return got
		}
		if after != nil && ringCompare(after, page.Next) >= 0 {
			t.Fatalf("cursor %q after %q: no progress", page.Next, after)
		}
		after = page.Next
	}
}

// ringCompare orders keys as the ring index does: by position, then key.
func ringCompare(a, b []byte) int {
	pa, pb := ring.SHA1(a), ring.SHA1(b)
	if c := bytes.Compare(pa[:], pb[:]); c != 0 {
		return c
	}
	return bytes.Compare(a, b)
}

// TestMergeSpans: ranges (Start, End] become sorted, disjoint spans.
func TestMergeSpans(t *testing.T) {
	h := func(b byte) ring.Hash { var x ring.Hash; x[0] = b; return x }
	top := ring.Hash{}
	for i := range top {
		top[i] = 0xff
	}
	r := func(s, e ring.Hash) topology.Range { return topology.Range{Start: s, End: e} }
	cases := []struct {
		name   string
		ranges []topology.Range
		want   []span
	}{
		{"none", nil, nil},
		{"one", []topology.Range{r(h(1), h(5))}, []span{{lo: h(1).Next(), hi: h(5).Next()}}},
		{"whole ring", []topology.Range{r(h(1), h(5)), r(h(7), h(7))}, []span{{top: true}}},
		{"across the top", []topology.Range{r(h(9), h(2))}, []span{{hi: h(2).Next()}, {lo: h(9).Next(), top: true}}},
		{"up to the top", []topology.Range{r(h(9), top)}, []span{{lo: h(9).Next(), top: true}}},
		{"from the top", []topology.Range{r(top, h(3))}, []span{{hi: h(3).Next()}}},
		{"adjacent", []topology.Range{r(h(5), h(8)), r(h(1), h(5))}, []span{{lo: h(1).Next(), hi: h(8).Next()}}},
		{"overlapping", []topology.Range{r(h(1), h(6)), r(h(3), h(4)), r(h(5), h(9))}, []span{{lo: h(1).Next(), hi: h(9).Next()}}},
		{"apart", []topology.Range{r(h(6), h(9)), r(h(1), h(3))}, []span{{lo: h(1).Next(), hi: h(3).Next()}, {lo: h(6).Next(), hi: h(9).Next()}}},
		{"into the wrap", []topology.Range{r(h(200), h(2)), r(h(150), h(220))}, []span{{hi: h(2).Next()}, {lo: h(150).Next(), top: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := mergeSpans(c.ranges); !slices.Equal(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
