package coord

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
)

func TestResolve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{})
		cases := []struct {
			req       Req
			read      bool
			n, q      int
			wantError bool
		}{
			{Req{}, true, 3, 2, false},
			{Req{N: 3, Level: LevelOne}, true, 3, 1, false},
			{Req{N: 3, Level: LevelQuorum}, false, 3, 2, false},
			{Req{N: 4, Level: LevelQuorum}, false, 4, 3, false},
			{Req{N: 3, Level: LevelAll}, true, 3, 3, false},
			{Req{N: 3, Level: LevelAll, R: 1}, true, 3, 1, false}, // numbers win
			{Req{N: 5, Linearizable: true}, true, 5, 3, false},
			{Req{N: 3, Linearizable: true, Level: LevelAll}, false, 3, 3, false},
			{Req{N: 3, Linearizable: true, W: 1}, false, 0, 0, true},
			{Req{N: 3, Linearizable: true, Level: LevelOne}, true, 0, 0, true},
			{Req{N: 9, Level: LevelAll}, false, 5, 5, false}, // N above the ring
			{Req{N: 9, Linearizable: true}, true, 5, 3, false},
			{Req{N: 2, W: 3}, false, 0, 0, true},
			{Req{N: -1}, true, 0, 0, true},
		}
		for _, tc := range cases {
			n, q, err := resolve(cl.c.View(), tc.req, tc.read)
			if tc.wantError != (err != nil) || n != tc.n || q != tc.q {
				t.Errorf("%+v read=%v: n=%d q=%d err=%v, want n=%d q=%d error=%v", tc.req, tc.read, n, q, err, tc.n, tc.q, tc.wantError)
			}
			if err != nil && !errors.Is(err, errcode.InvalidArg) {
				t.Errorf("%+v: %v is not ERR_INVALID_ARGUMENT", tc.req, err)
			}
		}
		if l, err := ParseLevel("quorum"); err != nil || l != LevelQuorum || l.String() != "QUORUM" {
			t.Fatal("ParseLevel")
		}
		if _, err := ParseLevel("SOME"); !errors.Is(err, errcode.InvalidArg) {
			t.Fatal("ParseLevel accepted SOME")
		}
	})
}

// A linearizable write from a client whose clock is far behind still
// writes a version above the one a majority holds; a default-mode write
// from the same client does not, and loses to it.
func TestLinearizableWriteReadsHighestVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := kv.NewClock(7, func() time.Time { return time.UnixMilli(1000) })
		cl := newCluster(t, 3, Options{Clock: slow})
		future := kv.Record{Version: kv.Version{Wall: 1_000_000, Writer: 1}, N: 3, Value: []byte("future")}
		for _, addr := range cl.home("k", 2) { // a majority holds it
			cl.replicas[addr].set("k", future)
		}
		v, err := cl.c.PutReq(ctx, []byte("k"), []byte("mine"), Req{N: 3, Linearizable: true})
		if err != nil || !v.Newer(future.Version) {
			t.Fatalf("linearizable put wrote %v (%v), not above %v", v, err, future.Version)
		}
		rec, err := cl.c.GetReq(ctx, []byte("k"), Req{N: 3, Linearizable: true})
		if err != nil || string(rec.Value) != "mine" {
			t.Fatalf("read %q %v", rec.Value, err)
		}
	})
}

// A linearizable get that sees differing versions writes the newest back
// to a majority before returning.
func TestLinearizableGetWritesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{DisableReadRepair: true})
		home := cl.home("k", 3)
		newer := kv.Record{Version: kv.Version{Wall: 9}, N: 3, Value: []byte("new")}
		cl.replicas[home[0]].set("k", newer)
		cl.replicas[home[1]].set("k", kv.Record{Version: kv.Version{Wall: 5}, N: 3, Value: []byte("old")})
		cl.net.SetFault(home[2], memtransport.Down)
		rec, err := cl.c.GetReq(ctx, []byte("k"), Req{N: 3, Linearizable: true})
		if err != nil || string(rec.Value) != "new" {
			t.Fatalf("get: %q %v", rec.Value, err)
		}
		// Read repair is off: only the write-back can have updated home[1],
		// and it must have happened before the get returned.
		if got, _ := cl.replicas[home[1]].get("k"); string(got.Value) != "new" {
			t.Fatalf("no write-back before returning: %q", got.Value)
		}
		// With the newest held by one replica only and the other two
		// unreachable, the get fails rather than answer from a minority.
		cl.net.SetFault(home[1], memtransport.Down)
		if _, err := cl.c.GetReq(ctx, []byte("k"), Req{N: 3, Linearizable: true}); !errors.Is(err, errcode.Network) {
			t.Fatalf("get from a minority: %v", err)
		}
	})
}

// Linearizable mode never uses fallbacks.
func TestLinearizableStrictQuorum(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{})
		w := cl.walk("k")
		cl.net.SetFault(w[0], memtransport.Down)
		cl.net.SetFault(w[1], memtransport.Down)
		_, err := cl.c.PutReq(ctx, []byte("k"), []byte("v"), Req{N: 3, Linearizable: true})
		if !errors.Is(err, errcode.Network) || errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("put without a majority: %v", err)
		}
		for _, f := range w[3:] {
			if cl.net.Calls(f) != 0 {
				t.Fatalf("fallback %s used in linearizable mode", f)
			}
		}
		// The same put in the default mode succeeds through fallbacks.
		if _, err := cl.c.PutReq(ctx, []byte("k"), []byte("v"), Req{N: 3}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUnknownOutcome(t *testing.T) {
	cases := []struct {
		name    string
		faults  []memtransport.Fault // home replicas 0..2
		unknown bool
	}{
		// Every replica refused the connection: nothing was applied.
		{"all refused", []memtransport.Fault{memtransport.Down, memtransport.Down, memtransport.Down}, false},
		// One replica applied it but W=3 was not reached: it may surface.
		{"one applied", []memtransport.Fault{memtransport.Up, memtransport.Down, memtransport.Down}, true},
		// A request was sent and not answered: it may have been applied.
		{"one timed out", []memtransport.Fault{memtransport.Stalled, memtransport.Down, memtransport.Down}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 3, Options{Timeout: 30 * time.Millisecond, DisableSloppyQuorum: true})
				for i, addr := range cl.home("k", 3) {
					cl.net.SetFault(addr, tc.faults[i])
				}
				_, err := cl.c.Put(ctx, []byte("k"), []byte("v"), 3, 3)
				if err == nil || errors.Is(err, ErrUnknownOutcome) != tc.unknown {
					t.Fatalf("%v: unknown=%v, want %v", err, errors.Is(err, ErrUnknownOutcome), tc.unknown)
				}
				if !errors.Is(err, errcode.Network) || errcode.Of(err) != errcode.Network {
					t.Fatalf("%v is not ERR_NETWORK", err)
				}
			})
		})
	}
	// A caller that gives up before the outcome is known is told so.
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{Timeout: time.Second})
		for _, addr := range cl.home("k", 3) {
			cl.net.SetFault(addr, memtransport.Stalled)
		}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := cl.c.Put(cctx, []byte("k"), []byte("v"), 3, 2); !errors.Is(err, ErrUnknownOutcome) {
			t.Fatalf("abandoned put: %v", err)
		}
	})
}

// Wait may run while operations start and finish.
func TestWaitDuringOperations(t *testing.T) {
	// Real time, not a bubble: the operations never all block at once, so
	// a bubble's clock would never reach Wait's deadlines.
	cl := newCluster(t, 3, Options{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cl.c.Put(ctx, []byte("k"), []byte("v"), 3, 1)
				cl.c.Get(ctx, []byte("k"), 3, 1)
			}
		}()
	}
	for i := 0; i < 50; i++ {
		wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		cl.c.Wait(wctx)
		cancel()
	}
	close(stop)
	wg.Wait()
	if err := cl.c.Wait(ctx); err != nil {
		t.Fatal(err)
	}

}
