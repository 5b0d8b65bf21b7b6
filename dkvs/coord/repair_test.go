package coord

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/health"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// walk returns the addresses of every server clockwise from the key.
func (cl *cluster) walk(key string) []string {
	var out []string
	for _, s := range cl.ring.Walk([]byte(key)) {
		out = append(out, cl.ring.Servers()[s].Addr())
	}
	return out
}

func (cl *cluster) detector() *health.Detector {
	var addrs []string
	for _, s := range cl.ring.Servers() {
		addrs = append(addrs, s.Addr())
	}
	ping := func(ctx context.Context, addr string) error {
		_, err := cl.net.Call(ctx, addr, wire.Frame{Kind: uint8(wire.OpPing)})
		return err
	}
	return health.New(addrs, ping, health.Options{Timeout: 20 * time.Millisecond})
}

func TestSloppyQuorumHints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{})
		w := cl.walk("key")
		home, fallbacks := w[:3], w[3:]
		cl.net.SetFault(home[0], memtransport.Down)
		cl.net.SetFault(home[2], memtransport.Down)
		if _, err := cl.c.Put(ctx, []byte("key"), []byte("v"), 3, 2); err != nil {
			t.Fatalf("put with two homes down: %v", err)
		}
		cl.c.Wait(ctx)
		// The live home has the record; each fallback holds one hint, for one
		// of the two down homes.
		if _, ok := cl.replicas[home[1]].get("key"); !ok {
			t.Fatal("live home lacks the record")
		}
		got := map[string]bool{}
		for _, f := range fallbacks {
			for _, h := range []string{home[0], home[2]} {
				if cl.replicas[f].hintsFor(h) == 1 {
					got[h] = true
				}
			}
			if _, ok := cl.replicas[f].get("key"); ok {
				t.Fatalf("fallback %s stored the record as its own data", f)
			}
		}
		if !got[home[0]] || !got[home[2]] {
			t.Fatalf("hints for %v, want both down homes", got)
		}
	})
}

func TestSloppyQuorumAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 4, Options{Timeout: 30 * time.Millisecond})
		w := cl.walk("key")
		cl.net.SetFault(w[1], memtransport.Stalled)
		// W=3 needs the stalled home: after its deadline the fallback takes a
		// hint and completes the quorum.
		if _, err := cl.c.Put(ctx, []byte("key"), []byte("v"), 3, 3); err != nil {
			t.Fatalf("put: %v", err)
		}
		if cl.replicas[w[3]].hintsFor(w[1]) != 1 {
			t.Fatal("no hint on the fallback")
		}
	})
}

func TestStrictQuorumRefusesFallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{DisableSloppyQuorum: true})
		w := cl.walk("key")
		cl.net.SetFault(w[0], memtransport.Down)
		cl.net.SetFault(w[1], memtransport.Down)
		if _, err := cl.c.Put(ctx, []byte("key"), []byte("v"), 3, 2); !errors.Is(err, errcode.Network) {
			t.Fatalf("put: %v", err)
		}
		for _, f := range w[3:] {
			if cl.net.Calls(f) != 0 {
				t.Fatalf("fallback %s was used", f)
			}
		}
	})
}

func TestDetectorSkipsStalledReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{Timeout: 40 * time.Millisecond, DisableSloppyQuorum: true})
		d := cl.detector()
		cl.c = New(topology.StaticView(cl.ring.Servers()), cl.net, Options{Timeout: 40 * time.Millisecond, Health: d, DisableSloppyQuorum: true})
		home := cl.home("key", 3)
		cl.net.SetFault(home[0], memtransport.Stalled)
		if _, err := cl.c.Put(ctx, []byte("key"), []byte("v1"), 3, 2); err != nil {
			t.Fatal(err)
		}
		cl.c.Wait(ctx) // the stalled request times out in the background
		if d.Up(home[0]) {
			t.Fatal("a replica that timed out is still up")
		}
		before := cl.net.Calls(home[0])
		start := time.Now()
		for i := 0; i < 20; i++ {
			if _, err := cl.c.Put(ctx, []byte("key"), []byte("v"), 3, 2); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.c.Get(ctx, []byte("key"), 3, 2); err != nil {
				t.Fatal(err)
			}
		}
		if cl.net.Calls(home[0]) != before {
			t.Fatalf("requests still sent to the down replica")
		}
		if d := time.Since(start); d > 20*40*time.Millisecond/2 {
			t.Fatalf("40 operations took %v: the down replica still costs deadlines", d)
		}
		// Heartbeat: while stalled it stays down; once it answers it is up.
		d.Probe(ctx)
		if d.Up(home[0]) {
			t.Fatal("a stalled replica answered a ping")
		}
		cl.net.SetFault(home[0], memtransport.Up)
		d.Probe(ctx)
		if !d.Up(home[0]) {
			t.Fatal("heartbeat did not bring the replica back")
		}
		cl.c.Put(ctx, []byte("key"), []byte("v"), 3, 3)
		if cl.net.Calls(home[0]) == before {
			t.Fatal("requests not sent after the replica came back")
		}
	})
}

func TestDetectorWrongDoesNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{DisableSloppyQuorum: true})
		d := cl.detector()
		cl.c = New(topology.StaticView(cl.ring.Servers()), cl.net, Options{Health: d, DisableSloppyQuorum: true})
		for _, s := range cl.ring.Servers() {
			d.Failed(s.Addr(), errors.New("wrong"))
		}
		if _, err := cl.c.Put(ctx, []byte("k"), []byte("v"), 3, 2); err != nil {
			t.Fatalf("put with every replica wrongly down: %v", err)
		}
		if _, err := cl.c.Get(ctx, []byte("k"), 3, 2); err != nil {
			t.Fatalf("get with every replica wrongly down: %v", err)
		}
		cl.c.Wait(ctx) // every reply has been seen
		for _, h := range cl.home("k", 3) {
			if !d.Up(h) {
				t.Fatalf("an answer did not mark %s up", h)
			}
		}
	})
}

func TestReadRepair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, disabled := range []bool{false, true} {
			cl := newCluster(t, 3, Options{DisableReadRepair: disabled})
			home := cl.home("k", 3)
			cl.replicas[home[0]].set("k", kv.Record{Version: kv.Version{Wall: 5}, Value: []byte("old"), N: 3})
			cl.replicas[home[1]].set("k", kv.Record{Version: kv.Version{Wall: 9}, Value: []byte("new"), N: 3})
			// home[2] has nothing.
			rec, err := cl.c.Get(ctx, []byte("k"), 3, 3)
			if err != nil || string(rec.Value) != "new" {
				t.Fatalf("get: %q %v", rec.Value, err)
			}
			cl.c.Wait(ctx)
			for _, addr := range home {
				got, _ := cl.replicas[addr].get("k")
				repaired := string(got.Value) == "new"
				if addr != home[1] && repaired == disabled {
					t.Errorf("read repair disabled=%v: %s holds %q", disabled, addr, got.Value)
				}
			}
			if want := map[bool]int64{false: 2, true: 0}[disabled]; cl.c.ReadRepairs() != want {
				t.Errorf("disabled=%v: %d repairs, want %d", disabled, cl.c.ReadRepairs(), want)
			}
		}
	})
}

func TestReadRepairOffCallerPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{Timeout: 500 * time.Millisecond})
		home := cl.home("k", 3)
		for _, addr := range home {
			cl.replicas[addr].set("k", kv.Record{Version: kv.Version{Wall: 9}, Value: []byte("v"), N: 3})
		}
		cl.replicas[home[2]].set("k", kv.Record{Version: kv.Version{Wall: 1}, Value: []byte("old"), N: 3})
		cl.net.SetDelay(home[2], 200*time.Millisecond)
		start := time.Now()
		if _, err := cl.c.Get(ctx, []byte("k"), 3, 2); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 150*time.Millisecond {
			t.Fatalf("get waited for the slow replica: %v", d)
		}
		cl.c.Wait(ctx)
		if got, _ := cl.replicas[home[2]].get("k"); string(got.Value) != "v" {
			t.Fatalf("slow stale replica not repaired: %q", got.Value)
		}
	})
}

// On a ring with no fallback servers (N = the number of servers), a home
// replica believed down is given a hint held by another home replica.
func TestHintOnHomeWithoutFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, sloppy := range []bool{true, false} {
			cl := newCluster(t, 3, Options{})
			d := cl.detector()
			cl.c = New(topology.StaticView(cl.ring.Servers()), cl.net, Options{Health: d, DisableSloppyQuorum: !sloppy})
			home := cl.home("k", 3)
			cl.net.SetFault(home[2], memtransport.Down)
			d.Failed(home[2], errors.New("down"))
			if _, err := cl.c.Put(ctx, []byte("k"), []byte("v"), 3, 2); err != nil {
				t.Fatalf("sloppy=%v: %v", sloppy, err)
			}
			cl.c.Wait(ctx)
			held := 0
			for _, h := range home[:2] {
				held += cl.replicas[h].hintsFor(home[2])
			}
			if held != 1 {
				t.Fatalf("sloppy=%v: %d hints for the down home, want 1", sloppy, held)
			}
			if cl.net.Calls(home[2]) != 0 {
				t.Fatalf("sloppy=%v: the down home was sent the write", sloppy)
			}
		}
	})
}

// TestHintAcksWaitForSlowerHome: with one home believed down, a write
// acknowledged by one home and a hint would leave a single readable copy,
// which the next get (reading the two other homes, one back from a
// restart without the write) could miss. So a hint counts toward W only
// once the homes can no longer make W themselves: a slower home is waited
// for, and one that fails is replaced by the hint.
func TestHintAcksWaitForSlowerHome(t *testing.T) {
	const delay = 100 * time.Millisecond
	for _, tc := range []struct {
		name      string
		slow      memtransport.Fault // the third home: Up with a delay, or Stalled
		wantSlow  bool               // the write waited for it and it holds the record
		wantHints int                // hints on the fallbacks after Wait
	}{
		{"slow home is waited for", memtransport.Up, true, 1},
		{"stalled home is replaced by a hint", memtransport.Stalled, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 5, Options{})
				d := cl.detector()
				cl.c = New(topology.StaticView(cl.ring.Servers()), cl.net, Options{Timeout: 2 * delay, Health: d})
				w := cl.walk("key")
				home, fallbacks := w[:3], w[3:]
				// The detector believes home[0] down; it is back, without the
				// write, but nothing has probed it yet.
				d.Failed(home[0], errors.New("connection refused"))
				if d.Up(home[0]) {
					t.Fatal("detector did not mark the home down")
				}
				cl.net.SetFault(home[2], tc.slow)
				cl.net.SetDelay(home[2], delay)
				start := time.Now()
				if _, err := cl.c.Put(ctx, []byte("key"), []byte("v"), 3, 2); err != nil {
					t.Fatalf("put: %v", err)
				}
				took := time.Since(start)
				_, has := cl.replicas[home[2]].get("key")
				if has != tc.wantSlow {
					t.Fatalf("when the put returned (after %v), the slower home held the record: %v, want %v", took, has, tc.wantSlow)
				}
				if took < delay {
					t.Fatalf("put returned after %v, before the slower home answered or failed (%v)", took, delay)
				}
				cl.c.Wait(ctx)
				hints := 0
				for _, f := range fallbacks {
					hints += cl.replicas[f].hintsFor(home[0]) + cl.replicas[f].hintsFor(home[2])
				}
				if hints != tc.wantHints {
					t.Fatalf("%d hints on the fallbacks, want %d", hints, tc.wantHints)
				}
			})
		})
	}
}

// TestGetAsksHomeBelievedDown: with one home wrongly believed down and
// another failing, a read still has its R answers: the home believed down
// is asked once the others cannot give them.
func TestGetAsksHomeBelievedDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{DisableSloppyQuorum: true})
		if _, err := cl.c.Put(ctx, []byte("k"), []byte("v"), 3, 3); err != nil {
			t.Fatal(err)
		}
		d := cl.detector()
		cl.c = New(topology.StaticView(cl.ring.Servers()), cl.net, Options{Health: d, DisableSloppyQuorum: true})
		home := cl.home("k", 3)
		d.Failed(home[0], errors.New("wrong: it is back")) // up, but not probed yet
		cl.net.SetFault(home[1], memtransport.Down)        // really gone
		if v, err := cl.c.Get(ctx, []byte("k"), 3, 2); err != nil || string(v.Value) != "v" {
			t.Fatalf("get with a home wrongly believed down and another gone: %q %v", v.Value, err)
		}
	})
}
