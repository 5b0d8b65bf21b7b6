package antientropy

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/merkle"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// scanCounter counts what anti-entropy reads of a store: the entries of
// whole-ring scans (tree builds, purges) and of range scans (diffs).
type scanCounter struct {
	Store
	wholeScans, wholeEntries int
	rangeScans, rangeEntries int
}

func (s *scanCounter) ScanRange(start, end ring.Hash, o storage.RangeOptions, fn func(storage.RangeEntry) bool) error {
	whole := start == end
	if whole {
		s.wholeScans++
	} else {
		s.rangeScans++
	}
	return s.Store.ScanRange(start, end, o, func(e storage.RangeEntry) bool {
		if whole {
			s.wholeEntries++
		} else {
			s.rangeEntries++
		}
		return fn(e)
	})
}

// entriesIn counts a store's records whose leaf at depth is in leaves.
func entriesIn(t *testing.T, db *storage.DB, leaves map[uint32]bool, depth int) int {
	t.Helper()
	n := 0
	err := db.Scan(nil, storage.ScanOptions{Tombstones: true, NoValues: true}, func(key []byte, _ kv.Record) bool {
		pos := ring.SHA1(key)
		if leaves[merkle.Bucket(pos[:], depth)] {
			n++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDiffReadsOnlyDifferingLeaves: a session over a store of n keys that
// differs in k leaves builds each side's tree from one pass over the
// index, and then reads, on each side, only the entries of those k
// leaves, not the n (every diff request scanned the whole store before).
func TestDiffReadsOnlyDifferingLeaves(t *testing.T) {
	for _, c := range []struct {
		name    string
		keys    int
		changed int // keys written on the responder only, each in a leaf of its own
	}{
		{"one leaf of 20,000 keys", 20000, 1},
		{"5 leaves of 20,000 keys", 20000, 5},
		{"40 leaves of 50,000 keys", 50000, 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				counters := map[*storage.DB]*scanCounter{}
				cl := newClusterOf(t, 2, Options{}, func(db *storage.DB) Store {
					counters[db] = &scanCounter{Store: db}
					return counters[db]
				})
				a, b := cl.nodes[0], cl.nodes[1]
				var recs []storage.KeyRecord
				for i := 0; i < c.keys; i++ {
					recs = append(recs, storage.KeyRecord{Key: []byte(fmt.Sprint("k", i)), Record: kv.Record{Version: kv.Version{Wall: 1}, N: 2, Value: []byte("v")}})
				}
				for _, nd := range cl.nodes {
					if _, err := nd.db.ApplyMany(recs); err != nil {
						t.Fatal(err)
					}
				}
				changed := map[uint32]bool{}
				for i := 0; len(changed) < c.changed; i++ {
					key := fmt.Sprint("new", i)
					pos := ring.SHA1([]byte(key))
					if leaf := merkle.Bucket(pos[:], DefaultDepth); !changed[leaf] {
						changed[leaf] = true
						cl.write(t, key, kv.Record{Version: kv.Version{Wall: 2}, N: 2, Value: []byte("new")}, b.addr)
					}
				}
				ca, cb := counters[a.db], counters[b.db]
				n, err := a.eng.SyncPeer(context.Background(), b.addr)
				if err != nil || n != c.changed {
					t.Fatalf("pulled %d records, want %d: %v", n, c.changed, err)
				}
				for _, s := range []struct {
					name string
					c    *scanCounter
					db   *storage.DB
					held int // before the pull
				}{{"requester", ca, a.db, c.keys}, {"responder", cb, b.db, c.keys + c.changed}} {
					// One tree build.
					if s.c.wholeScans != 1 || s.c.wholeEntries != s.held {
						t.Errorf("%s: %d whole-ring scans reading %d entries, want 1 of %d", s.name, s.c.wholeScans, s.c.wholeEntries, s.held)
					}
					inLeaves := entriesIn(t, s.db, changed, DefaultDepth)
					if s.c.rangeEntries > inLeaves || s.c.rangeScans > c.changed {
						t.Errorf("%s: %d range scans read %d entries; the %d differing leaves hold %d of %d",
							s.name, s.c.rangeScans, s.c.rangeEntries, c.changed, inLeaves, c.keys)
					}
					t.Logf("%s: the diff read %d of %d entries", s.name, s.c.rangeEntries, c.keys+c.changed)
				}
			})
		})
	}
}

// TestTreesHashLeavesInKeyOrder: trees built from the ring index hash
// each leaf's entries in key order, as servers that built them from a
// scan in key order did, so servers of both kinds agree.
func TestTreesHashLeavesInKeyOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		// Recent versions: tombstones within the grace period are in the
		// trees.
		wall := uint64(cl.clock.now().UnixMilli())
		for i := 0; i < 5000; i++ {
			rec := val(i, wall)
			if i%9 == 0 {
				rec = kv.Record{Version: kv.Version{Wall: wall}, N: 3, Tombstone: true}
			}
			if i%13 == 0 {
				rec.N = 2
			}
			cl.write(t, fmt.Sprint("key/", i, "/", bytes.Repeat([]byte{'x'}, i%7)), rec)
		}
		nd := cl.nodes[0]
		ts, err := nd.eng.buildTrees(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// The trees as built from a scan in key order.
		builders := map[int]*merkle.Builder{}
		nd.db.Scan(nil, storage.ScanOptions{Tombstones: true, NoValues: true}, func(key []byte, rec kv.Record) bool {
			pos := cl.ring.KeyHash(key)
			pref := cl.ring.Preference(key, int(rec.N))
			if !contains(pref, nd.eng.rs.Load().self) {
				return true
			}
			for _, p := range pref {
				if p == nd.eng.rs.Load().self {
					continue
				}
				if builders[p] == nil {
					builders[p] = merkle.NewBuilder(DefaultDepth)
				}
				builders[p].Add(merkle.Bucket(pos[:], DefaultDepth), key, rec.Version, rec.Tombstone)
			}
			return true
		})
		for _, p := range nd.eng.rs.Load().peers {
			want := builders[p].Tree(ts.built)
			got := ts.tree(p, DefaultDepth)
			if got.Root() != want.Root() || got.Entries != want.Entries {
				t.Fatalf("tree for peer %d: %d entries, root %x; in key order %d entries, root %x",
					p, got.Entries, got.Root(), want.Entries, want.Root())
			}
		}
	})
}

// TestDiffPagesResumeInRingOrder: a diff over leaves that are not
// adjacent, more keys than one batch of offers and more bytes than one
// page, read page by page from each page's cursor, gives every record
// the requester lacks once.
func TestDiffPagesResumeInRingOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, Options{})
		a, b := cl.nodes[0], cl.nodes[1]
		value := bytes.Repeat([]byte("v"), 1000)
		var recs []storage.KeyRecord
		for i := 0; i < 20000; i++ {
			recs = append(recs, storage.KeyRecord{Key: []byte(fmt.Sprint("k", i)), Record: kv.Record{Version: kv.Version{Wall: 1}, N: 2, Value: value}})
		}
		if _, err := b.db.ApplyMany(recs); err != nil {
			t.Fatal(err)
		}
		// Every other leaf, and the last (whose range ends at the ring's
		// end).
		req := wire.AEDiffRequest{From: a.addr, Depth: DefaultDepth}
		want := map[string]bool{}
		for leaf := uint32(0); leaf < 1<<DefaultDepth; leaf += 2 {
			req.Buckets = append(req.Buckets, leaf)
		}
		req.Buckets = append(req.Buckets, 1<<DefaultDepth-1)
		leaves := map[uint32]bool{}
		for _, l := range req.Buckets {
			leaves[l] = true
		}
		for _, kr := range recs {
			pos := ring.SHA1(kr.Key)
			if leaves[merkle.Bucket(pos[:], DefaultDepth)] {
				want[string(kr.Key)] = true
			}
		}
		got := map[string]bool{}
		pages := 0
		for {
			resp, err := b.eng.HandleDiff(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, kr := range resp.Records {
				if got[string(kr.Key)] || !want[string(kr.Key)] {
					t.Fatalf("page %d: %q sent twice or not asked for", pages, kr.Key)
				}
				got[string(kr.Key)] = true
			}
			if !resp.More {
				break
			}
			req.After = resp.Next
		}
		if len(got) != len(want) || pages < 3 {
			t.Fatalf("%d of %d records in %d pages", len(got), len(want), pages)
		}
	})
}

// TestRingMustHashBySHA1: storage's index places keys by SHA-1, so an
// engine over a ring that hashes otherwise would build trees and diffs
// from the wrong leaves; New refuses it.
func TestRingMustHashBySHA1(t *testing.T) {
	servers := []config.Server{{IP: "127.0.0.1", Port: 3000, Count: 1}, {IP: "127.0.0.1", Port: 3001, Count: 1}}
	for _, c := range []struct {
		name   string
		ring   *ring.Ring
		panics bool
	}{
		{"SHA-1", ring.New(servers), false},
		{"another hash", ring.New(servers, ring.WithHash(func(b []byte) ring.Hash { return ring.Hash{b[0]} })), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if got := recover() != nil; got != c.panics {
					t.Fatalf("panicked %v, want %v", got, c.panics)
				}
			}()
			New(nil, nil, Options{Self: servers[0].Addr(), Ring: c.ring, Interval: -1})
		})
	}
}
