package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/wire"
)

// fakePings answers pings for the addresses set alive.
type fakePings struct {
	mu    sync.Mutex
	alive map[string]bool
	calls map[string]int
}

func (f *fakePings) ping(ctx context.Context, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[addr]++
	if f.alive[addr] {
		return nil
	}
	return errors.New("no answer")
}

func TestDetector(t *testing.T) {
	f := &fakePings{alive: map[string]bool{}, calls: map[string]int{}}
	var ups, downs atomic.Int32
	// The callbacks run in goroutines of their own: the test learns of
	// each call through a channel, as reading the counters alone would
	// race with them.
	upc, downc := make(chan string, 10), make(chan string, 10)
	d := New([]string{"a", "b", "c"}, f.ping, Options{
		OnUp:   func(addr string) { ups.Add(1); upc <- addr },
		OnDown: func(addr string, _ error) { downs.Add(1); downc <- addr },
	})
	if !d.Up("a") || !d.Up("unknown") {
		t.Fatal("peers start up")
	}
	d.Failed("b", errors.New("timeout"))
	d.Failed("b", errors.New("again")) // already down: no second event
	select {
	case addr := <-downc:
		if addr != "b" {
			t.Fatalf("OnDown(%s)", addr)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("OnDown not called")
	}
	if d.Up("b") || !d.Up("a") {
		t.Fatal("b should be down, a up")
	}
	st := d.States()
	if st[1].Up || st[1].Cause != "timeout" || st[1].Since.IsZero() {
		t.Fatalf("state %+v", st[1])
	}
	// A round with b still silent: stays down, and up peers are not pinged.
	d.Probe(context.Background())
	if d.Up("b") || f.calls["a"] != 0 || f.calls["b"] != 1 {
		t.Fatalf("after silent probe: up=%v calls=%v", d.Up("b"), f.calls)
	}
	f.mu.Lock()
	f.alive["b"] = true
	f.mu.Unlock()
	d.Probe(context.Background())
	if !d.Up("b") {
		t.Fatal("b answered a ping but is still down")
	}
	select {
	case addr := <-upc:
		if addr != "b" {
			t.Fatalf("OnUp(%s)", addr)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("OnUp not called")
	}
	if downs.Load() != 1 {
		t.Fatalf("OnDown called %d times", downs.Load())
	}
	d.Succeeded("b") // already up: no event
	if ups.Load() != 1 {
		t.Fatalf("OnUp called %d times", ups.Load())
	}
}

func TestProbeTimeout(t *testing.T) {
	hang := func(ctx context.Context, addr string) error { <-ctx.Done(); return ctx.Err() }
	d := New([]string{"x"}, hang, Options{Timeout: 20 * time.Millisecond})
	d.Failed("x", nil)
	start := time.Now()
	d.Probe(context.Background())
	if time.Since(start) > time.Second || d.Up("x") {
		t.Fatal("a hanging ping must time out and leave the peer down")
	}
}

func TestRun(t *testing.T) {
	var n atomic.Int32
	d := New([]string{"x"}, func(context.Context, string) error {
		if n.Add(1) >= 3 {
			return nil
		}
		return errors.New("no")
	}, Options{Interval: 5 * time.Millisecond})
	d.Failed("x", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !d.Up("x") {
		if time.Now().After(deadline) {
			t.Fatal("heartbeat never brought x back")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

func TestProbeUp(t *testing.T) {
	f := &fakePings{alive: map[string]bool{"a": true}, calls: map[string]int{}}
	d := New([]string{"a", "b"}, f.ping, Options{ProbeFailures: 2})
	d.ProbeUp(context.Background())
	if !d.Up("a") || !d.Up("b") {
		t.Fatal("one missed ping marked b down")
	}
	f.mu.Lock()
	f.alive["b"] = true
	f.mu.Unlock()
	d.ProbeUp(context.Background()) // b answers: its count starts over
	f.mu.Lock()
	f.alive["b"] = false
	f.mu.Unlock()
	d.ProbeUp(context.Background())
	if !d.Up("b") {
		t.Fatal("misses not in a row marked b down")
	}
	d.ProbeUp(context.Background())
	if d.Up("b") || !d.Up("a") {
		t.Fatal("two missed pings in a row did not mark b down")
	}
	if st := d.States()[1]; !strings.Contains(st.Cause, "2 pings unanswered") {
		t.Fatalf("cause %q", st.Cause)
	}
}

// TestStorageStates: a peer whose storage refuses writes stays up for
// reads but is not writable (a full one takes deletions), is pinged with
// the peers that are down until its ping reports the storage ok, and
// coming back calls OnUp (hints held for it can go).
func TestStorageStates(t *testing.T) {
	var mu sync.Mutex
	reported := map[string]wire.StorageState{}
	var d *Detector
	ping := func(_ context.Context, addr string) error {
		mu.Lock()
		st := reported[addr]
		mu.Unlock()
		d.SetStorage(addr, st) // what a ping answer carries
		return nil
	}
	upc := make(chan string, 10)
	d = New([]string{"a", "b"}, ping, Options{OnUp: func(addr string) { upc <- addr }})
	cases := []struct {
		st          wire.StorageState
		put, delete bool
	}{
		{wire.StorageFull, false, true},
		{wire.StorageSlow, false, false},
		{wire.StorageFailed, false, false},
		{wire.StorageOK, true, true},
	}
	for _, c := range cases {
		mu.Lock()
		reported["a"] = c.st
		mu.Unlock()
		d.Probe(context.Background()) // a's storage is learnt from the ping, when a is probed
		if c.st != wire.StorageOK {
			d.SetStorage("a", c.st) // a refused write
		}
		if !d.Up("a") || d.Writable("a", false) != c.put || d.Writable("a", true) != c.delete || d.Storage("a") != c.st {
			t.Fatalf("%s: up %v writable %v/%v storage %s", c.st, d.Up("a"), d.Writable("a", false), d.Writable("a", true), d.Storage("a"))
		}
		if got := d.States()[0].Storage; got != c.st {
			t.Fatalf("%s: state %s", c.st, got)
		}
	}
	// The last round (failed, then the ping said ok) brought a back.
	select {
	case addr := <-upc:
		if addr != "a" {
			t.Fatalf("OnUp(%s)", addr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnUp not called when the storage came back")
	}
	d.Failed("b", errors.New("timeout"))
	if d.Writable("b", true) || !d.Writable("unknown", false) {
		t.Fatal("a peer down is not writable; an unknown one is")
	}
}
