package antientropy

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// clock is a settable clock shared by the test's engines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type node struct {
	addr string
	db   *storage.DB
	eng  *Engine
}

type cluster struct {
	ring  *ring.Ring
	net   *memtransport.Network
	nodes []*node
	clock *clock
	cut   map[string]bool // nodes cut off from the others, both ways
}

// setCut cuts a node off (requests to it fail, and it runs no rounds) or
// brings it back.
func (cl *cluster) setCut(addr string, cut bool) {
	cl.cut[addr] = cut
	f := memtransport.Up
	if cut {
		f = memtransport.Down
	}
	cl.net.SetFault(addr, f)
}

func newCluster(t *testing.T, n int, opts Options) *cluster {
	t.Helper()
	return newClusterOf(t, n, opts, nil)
}

// newClusterOf is newCluster with each engine reading its storage through
// wrap, when not nil.
func newClusterOf(t *testing.T, n int, opts Options, wrap func(*storage.DB) Store) *cluster {
	t.Helper()
	var servers []config.Server
	for i := 0; i < n; i++ {
		servers = append(servers, config.Server{IP: "127.0.0.1", Port: uint16(3000 + i), Count: 2})
	}
	cl := &cluster{ring: ring.New(servers), net: memtransport.New(), clock: &clock{t: time.UnixMilli(1_700_000_000_000)}, cut: map[string]bool{}}
	t.Cleanup(cl.net.Close)
	for _, s := range servers {
		db, err := storage.Open(storage.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		o := opts
		o.Self, o.Ring, o.Now = s.Addr(), cl.ring, cl.clock.now
		if o.Interval == 0 {
			o.Interval = -1 // rounds are run by hand
		}
		var store Store = db
		if wrap != nil {
			store = wrap(db)
		}
		nd := &node{addr: s.Addr(), db: db, eng: New(store, cl.net, o)}
		cl.net.Register(s.Addr(), nd.eng)
		cl.nodes = append(cl.nodes, nd)
	}
	return cl
}

func (cl *cluster) node(addr string) *node {
	for _, n := range cl.nodes {
		if n.addr == addr {
			return n
		}
	}
	return nil
}

// write stores a record on the key's n home servers, or on the given
// subset of them.
func (cl *cluster) write(t *testing.T, key string, rec kv.Record, only ...string) {
	t.Helper()
	homes := cl.ring.Preference([]byte(key), int(rec.N))
	for _, s := range homes {
		addr := cl.ring.Servers()[s].Addr()
		if len(only) > 0 && !containsStr(only, addr) {
			continue
		}
		if _, err := cl.node(addr).db.Apply([]byte(key), rec); err != nil {
			t.Fatal(err)
		}
	}
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (cl *cluster) homes(key string, n int) []string {
	var out []string
	for _, s := range cl.ring.Preference([]byte(key), n) {
		out = append(out, cl.ring.Servers()[s].Addr())
	}
	return out
}

func val(i int, wall uint64) kv.Record {
	return kv.Record{Version: kv.Version{Wall: wall, Writer: 1}, N: 3, Value: []byte(fmt.Sprintf("value-%d-%d", i, wall))}
}

// dump returns key -> record of a node, tombstones included.
func dump(t *testing.T, n *node) map[string]kv.Record {
	out := map[string]kv.Record{}
	n.db.Scan(nil, storage.ScanOptions{Tombstones: true}, func(k []byte, r kv.Record) bool {
		out[string(k)] = r
		return true
	})
	return out
}

// round runs one anti-entropy round on every node, twice, so that pulls in
// both directions happen.
func (cl *cluster) round() {
	for i := 0; i < 2; i++ {
		for _, n := range cl.nodes {
			if !cl.cut[n.addr] {
				n.eng.Round(context.Background())
			}
		}
	}
}

// check that every node holds exactly the records of the keys it is a
// home replica for, with the expected record.
func (cl *cluster) check(t *testing.T, want map[string]kv.Record) {
	t.Helper()
	for _, n := range cl.nodes {
		got := dump(t, n)
		for key, rec := range want {
			home := containsStr(cl.homes(key, int(rec.N)), n.addr)
			g, has := got[key]
			if home && (!has || g.Version != rec.Version || !bytes.Equal(g.Value, rec.Value) || g.Tombstone != rec.Tombstone) {
				t.Fatalf("%s: %s = %+v (has %v), want %+v", n.addr, key, g.Version, has, rec.Version)
			}
			if !home && has {
				t.Fatalf("%s holds %s but is not a home replica", n.addr, key)
			}
		}
	}
}

func TestRepairsMissingAndStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 4, Options{})
		want := map[string]kv.Record{}
		for i := 0; i < 500; i++ {
			key := fmt.Sprintf("key-%d", i)
			homes := cl.homes(key, 3)
			rec := val(i, 10)
			switch i % 4 {
			case 0: // everywhere
				cl.write(t, key, rec)
			case 1: // missing on one home
				cl.write(t, key, rec, homes[0], homes[2])
			case 2: // only one home has it
				cl.write(t, key, rec, homes[1])
			case 3: // one home has an older version
				cl.write(t, key, val(i, 5))
				cl.write(t, key, rec, homes[2])
			}
			want[key] = rec
		}
		// A key written with N=1 stays on its one server.
		one := kv.Record{Version: kv.Version{Wall: 3}, N: 1, Value: []byte("alone")}
		cl.write(t, "solo", one)
		want["solo"] = one
		// A record that belongs to its server alone (N=0) is never copied.
		cl.nodes[0].db.Apply([]byte("local"), kv.Record{Version: kv.Version{Wall: 3}, Value: []byte("mine")})
		cl.round()
		cl.check(t, want)
		if _, has := dump(t, cl.nodes[1])["local"]; has {
			t.Fatal("a local-only record was copied")
		}
		// Every tree now agrees.
		for _, n := range cl.nodes {
			n.eng.buildTrees(context.Background())
		}
		for _, a := range cl.nodes {
			for _, b := range cl.nodes {
				if a == b {
					continue
				}
				pa, pb := a.eng.rs.Load().peerIndex(b.addr), b.eng.rs.Load().peerIndex(a.addr)
				if a.eng.trees.tree(pa, 10).Root() != b.eng.trees.tree(pb, 10).Root() {
					t.Fatalf("trees of %s and %s still differ", a.addr, b.addr)
				}
			}
		}
		st := cl.nodes[0].eng.Stats()
		for peer, s := range st {
			if s.LastCompleted.IsZero() || s.Rounds == 0 {
				t.Fatalf("no completed session with %s: %+v", peer, s)
			}
		}
	})
}

func TestWipedServerRegainsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		want := map[string]kv.Record{}
		// Values large enough that the pull takes several pages.
		big := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 200; i++ {
			key := fmt.Sprintf("key-%03d", i)
			rec := kv.Record{Version: kv.Version{Wall: 10}, N: 3, Value: append([]byte(key), big...)}
			cl.write(t, key, rec, cl.nodes[1].addr, cl.nodes[2].addr) // node 0 has nothing
			want[key] = rec
		}
		n, err := cl.nodes[0].eng.SyncPeer(context.Background(), cl.nodes[1].addr)
		if err != nil || n != 200 {
			t.Fatalf("pulled %d records: %v", n, err)
		}
		cl.check(t, want)
		if st := cl.nodes[1].eng.Stats()[cl.nodes[0].addr]; st.KeysSent != 200 {
			t.Fatalf("responder counted %d keys sent", st.KeysSent)
		}
	})
}

func TestDescendsOnlyIntoDifferences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, Options{})
		for i := 0; i < 2000; i++ {
			cl.write(t, fmt.Sprintf("k%d", i), kv.Record{Version: kv.Version{Wall: 1}, N: 2, Value: []byte("v")})
		}
		cl.write(t, "changed", kv.Record{Version: kv.Version{Wall: 2}, N: 2, Value: []byte("new")}, cl.nodes[1].addr)
		before := cl.net.Calls(cl.nodes[1].addr)
		if n, err := cl.nodes[0].eng.SyncPeer(context.Background(), cl.nodes[1].addr); err != nil || n != 1 {
			t.Fatalf("pulled %d: %v", n, err)
		}
		// One tree request per level (11) and one diff request.
		if calls := cl.net.Calls(cl.nodes[1].addr) - before; calls != 12 {
			t.Fatalf("%d requests", calls)
		}
	})
}

func TestTombstonePurge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{TombstoneGrace: time.Minute})
		wall := uint64(cl.clock.now().UnixMilli())
		tomb := kv.Record{Version: kv.Version{Wall: wall}, Tombstone: true, N: 3}
		cl.write(t, "gone", tomb) // on all three
		old := kv.Record{Version: kv.Version{Wall: wall - 1000}, N: 3, Value: []byte("old")}
		cl.write(t, "stale", old)
		cl.write(t, "stale", kv.Record{Version: kv.Version{Wall: wall}, Tombstone: true, N: 3}, cl.nodes[0].addr, cl.nodes[1].addr)
		// Node 2 misses the deletion of "stale" and is cut off.
		cl.setCut(cl.nodes[2].addr, true)
		cl.clock.add(2 * time.Second)
		cl.round()
		cl.clock.add(2 * time.Minute) // past the grace period
		cl.round()
		if _, has := dump(t, cl.nodes[0])["gone"]; has {
			// node 2 has never been compared since: "gone" must stay.
		} else {
			t.Fatal("tombstone dropped although a replica was never compared after it")
		}
		if _, has := dump(t, cl.nodes[0])["stale"]; !has {
			t.Fatal("tombstone of stale dropped while a replica still has the old value")
		}
		// Node 2 returns: it pulls the tombstone of "stale"; once every pair
		// has compared equal, both tombstones go everywhere.
		cl.setCut(cl.nodes[2].addr, false)
		cl.clock.add(2 * time.Second)
		cl.nodes[2].eng.Round(context.Background())
		if r := dump(t, cl.nodes[2])["stale"]; !r.Tombstone {
			t.Fatalf("node 2 did not get the deletion: %+v", r)
		}
		cl.clock.add(2 * time.Second)
		cl.round()
		for _, n := range cl.nodes {
			d := dump(t, n)
			if len(d) != 0 {
				t.Fatalf("%s still holds %d records after purge", n.addr, len(d))
			}
		}
		// And nothing comes back.
		cl.round()
		for _, n := range cl.nodes {
			if len(dump(t, n)) != 0 {
				t.Fatalf("%s: a purged key came back", n.addr)
			}
		}
	})
}

func TestNotAPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, Options{})
		if _, err := cl.nodes[0].eng.SyncPeer(context.Background(), "10.0.0.1:1"); err == nil {
			t.Fatal("sync with a stranger")
		}
	})
}

// A responder asks for a pull-back only when the initiator holds something
// it lacks or holds older, and at most once a second per peer: two servers
// whose trees differ only by the writes in flight must not pull from each
// other without end.
func TestPullBackOnlyWhenBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, Options{})
		a, b := cl.nodes[0], cl.nodes[1]
		queued := func() bool {
			select {
			case p := <-b.eng.pullBack:
				if p != a.addr {
					t.Fatalf("pull-back queued for %s", p)
				}
				return true
			default:
				return false
			}
		}
		sync := func() {
			t.Helper()
			for _, n := range cl.nodes {
				n.eng.buildTrees(context.Background())
			}
			if _, err := a.eng.SyncPeer(context.Background(), b.addr); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			name    string
			prepare func()
			want    bool
		}{
			{"responder newer", func() {
				cl.write(t, "k1", kv.Record{Version: kv.Version{Wall: 5}, N: 2, Value: []byte("old")}, a.addr)
				cl.write(t, "k1", kv.Record{Version: kv.Version{Wall: 9}, N: 2, Value: []byte("new")}, b.addr)
			}, false},
			{"initiator holds a key the responder lacks, within a second of a check", func() {
				cl.write(t, "k2", kv.Record{Version: kv.Version{Wall: 5}, N: 2, Value: []byte("v")}, a.addr)
			}, false},
			{"the same a second later", func() { cl.clock.add(time.Second) }, true},
			{"again within a second", func() {
				cl.write(t, "k3", kv.Record{Version: kv.Version{Wall: 5}, N: 2, Value: []byte("v")}, a.addr)
			}, false},
			{"a second later", func() { cl.clock.add(time.Second) }, true},
		}
		for _, s := range steps {
			s.prepare()
			sync()
			if got := queued(); got != s.want {
				t.Fatalf("%s: pull-back queued %v, want %v", s.name, got, s.want)
			}
		}
	})
}

// countingStore counts the version reads a pull-back check makes.
type countingStore struct {
	Store
	versionReads int
}

func (s *countingStore) VersionOf(key []byte) (kv.Version, bool, error) {
	s.versionReads++
	return s.Store.VersionOf(key)
}

// TestPullBackCheckBounded: the check of a large diff request reads about
// pullBackProbes versions, not one per entry (all of them, before, when
// the responder held every entry: the common case), and still finds a
// newer entry when many are newer.
func TestPullBackCheckBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 2, Options{})
		a, b := cl.nodes[0], cl.nodes[1]
		store := &countingStore{Store: b.db}
		eng := New(store, cl.net, Options{Self: b.addr, Ring: cl.ring, Now: cl.clock.now, Interval: -1})
		const entries = 50000
		held := wire.AEDiffRequest{From: a.addr}
		newer := wire.AEDiffRequest{From: a.addr}
		var recs []storage.KeyRecord
		for i := 0; i < entries; i++ {
			key := []byte(fmt.Sprintf("k%06d", i))
			recs = append(recs, storage.KeyRecord{Key: key, Record: kv.Record{Version: kv.Version{Wall: 1}, N: 2, Value: []byte("v")}})
			held.Entries = append(held.Entries, wire.Entry{Key: key, Version: kv.Version{Wall: 1}})
			newer.Entries = append(newer.Entries, wire.Entry{Key: key, Version: kv.Version{Wall: 2}})
		}
		if _, err := b.db.ApplyMany(recs); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			req  wire.AEDiffRequest
			want bool
		}{
			{"responder holds every entry", held, false},
			{"every entry is newer", newer, true},
		} {
			cl.clock.add(minPullBack)
			store.versionReads = 0
			if err := eng.maybePullBack(tc.req); err != nil {
				t.Fatal(err)
			}
			if store.versionReads > pullBackProbes+1 {
				t.Fatalf("%s: the check read %d versions for %d entries, want at most %d", tc.name, store.versionReads, entries, pullBackProbes+1)
			}
			got := false
			select {
			case <-eng.pullBack:
				got = true
			default:
			}
			if got != tc.want {
				t.Fatalf("%s: pull-back queued %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

// TestRoundsPacedByScansNotWaits: a round that waits out a stalled peer's
// deadline (10 s) has done little work of its own, so the next round comes
// after the interval, not twenty times the round's length.
func TestRoundsPacedByScansNotWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		stalled := cl.nodes[2].addr
		cl.net.SetFault(stalled, memtransport.Stalled)
		nd := cl.nodes[0]
		o := Options{Self: nd.addr, Ring: cl.ring, Interval: time.Second, Now: time.Now}
		eng := New(nd.db, cl.net, o)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); eng.Run(ctx) }()
		time.Sleep(time.Minute)
		cancel()
		<-done
		// Each round waits 10 s for the stalled peer, then 1 s: about five
		// rounds a minute. Paced by their length, there would be one.
		if rounds, _ := eng.Totals(); rounds < 4 {
			t.Fatalf("%d rounds in a minute with a stalled peer", rounds)
		}
	})
}
