package coord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// replica is a fake server: a map with last-writer-wins puts, and hints
// kept per target.
type replica struct {
	mu       sync.Mutex
	epoch    *topology.State // when set, requests of an older epoch are refused with it
	staleOp  wire.Op         // when set, only requests of this operation are
	data     map[string]kv.Record
	hints    map[string]map[string]kv.Record
	maxValue int
	applied  map[string][]kv.Version // the versions each put applied, in order
	noBatch  bool                    // answer batches as a server that does not know them
}

func (r *replica) Handle(ctx context.Context, f wire.Frame) wire.Frame {
	if f.Op() == wire.OpBatch && !r.noBatch {
		return r.handleBatch(ctx, f)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	epoch, f, err := wire.SplitEpoch(f)
	if err != nil {
		return wire.Frame{Flags: uint8(wire.StatusBadRequest)}
	}
	if r.epoch != nil && epoch < r.epoch.Epoch && (r.staleOp == 0 || f.Op() == r.staleOp) {
		return wire.Frame{Flags: uint8(wire.StatusStaleEpoch), Body: r.epoch.Encode()}
	}
	switch f.Op() {
	case wire.OpPing:
		return wire.Frame{Body: wire.AppendVersion(nil, kv.Version{Wall: 1})}
	case wire.OpGet:
		m, err := wire.DecodeGetRequest(f.Body)
		if err != nil {
			return wire.Frame{Flags: uint8(wire.StatusBadRequest)}
		}
		rec, ok := r.data[string(m.Key)]
		if !ok {
			return wire.Frame{Flags: uint8(wire.StatusNotFound)}
		}
		return wire.Frame{Body: wire.AppendRecord(nil, rec)}
	case wire.OpPut:
		m, err := wire.DecodePutRequest(f.Body)
		if err != nil {
			return wire.Frame{Flags: uint8(wire.StatusBadRequest)}
		}
		if r.maxValue > 0 && len(m.Record.Value) > r.maxValue {
			return wire.Frame{Flags: uint8(wire.StatusTooLarge), Body: wire.AppendMessage(nil, "value too large")}
		}
		old, ok := r.data[string(m.Key)]
		if !ok || m.Record.Version.Newer(old.Version) {
			r.data[string(m.Key)] = m.Record
			old = m.Record
			if r.applied == nil {
				r.applied = map[string][]kv.Version{}
			}
			r.applied[string(m.Key)] = append(r.applied[string(m.Key)], m.Record.Version)
		}
		return wire.Frame{Body: wire.AppendVersion(nil, old.Version)}
	case wire.OpHint:
		m, err := wire.DecodeHintRequest(f.Body)
		if err != nil {
			return wire.Frame{Flags: uint8(wire.StatusBadRequest)}
		}
		if r.hints[m.Target] == nil {
			r.hints[m.Target] = map[string]kv.Record{}
		}
		r.hints[m.Target][string(m.Key)] = m.Record
		return wire.Frame{}
	}
	return wire.Frame{Flags: uint8(wire.StatusBadRequest)}
}

func (r *replica) set(key string, rec kv.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.data[key] = rec
}

func (r *replica) hintsFor(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hints[target])
}

func (r *replica) get(key string) (kv.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.data[key]
	return rec, ok
}

type cluster struct {
	net      *memtransport.Network
	ring     *ring.Ring
	replicas map[string]*replica
	c        *Coordinator
}

func newCluster(t *testing.T, nservers int, opts Options) *cluster {
	t.Helper()
	var servers []config.Server
	for i := 0; i < nservers; i++ {
		servers = append(servers, config.Server{IP: "127.0.0.1", Port: uint16(2000 + i), Count: 1 + i%3})
	}
	cl := &cluster{net: memtransport.New(), ring: ring.New(servers), replicas: map[string]*replica{}}
	t.Cleanup(cl.net.Close)
	for _, s := range servers {
		r := &replica{data: map[string]kv.Record{}, hints: map[string]map[string]kv.Record{}}
		cl.replicas[s.Addr()] = r
		cl.net.Register(s.Addr(), r)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	cl.c = New(topology.StaticView(cl.ring.Servers()), cl.net, opts)
	return cl
}

// home returns the addresses of the key's first n servers.
func (cl *cluster) home(key string, n int) []string {
	var out []string
	for _, s := range cl.ring.Preference([]byte(key), n) {
		out = append(out, cl.ring.Servers()[s].Addr())
	}
	return out
}

func (cl *cluster) holders(key string) map[string]bool {
	out := map[string]bool{}
	for addr, r := range cl.replicas {
		if _, ok := r.get(key); ok {
			out[addr] = true
		}
	}
	return out
}

var ctx = context.Background()

func TestPutGetPlacement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{})
		for i := 0; i < 50; i++ {
			key := fmt.Sprintf("key-%d", i)
			if _, err := cl.c.Put(ctx, []byte(key), []byte("v"+key), 3, 2); err != nil {
				t.Fatal(err)
			}
		}
		cl.c.Wait(ctx)
		for i := 0; i < 50; i++ {
			key := fmt.Sprintf("key-%d", i)
			rec, err := cl.c.Get(ctx, []byte(key), 3, 2)
			if err != nil || string(rec.Value) != "v"+key {
				t.Fatalf("%s: %q %v", key, rec.Value, err)
			}
			h := cl.holders(key)
			home := cl.home(key, 3)
			if len(h) != 3 || !h[home[0]] || !h[home[1]] || !h[home[2]] {
				t.Fatalf("%s held by %v, home %v", key, h, home)
			}
		}
	})
}

func TestWaitCompletesAllReplicas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		slow := cl.home("k", 3)[2]
		cl.net.SetDelay(slow, 30*time.Millisecond)
		if _, err := cl.c.Put(ctx, []byte("k"), []byte("v"), 3, 1); err != nil {
			t.Fatal(err)
		}
		if err := cl.c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := cl.replicas[slow].get("k"); !ok {
			t.Fatal("slow replica did not get the write before Wait returned")
		}
	})
}

func TestFailures(t *testing.T) {
	cases := []struct {
		name     string
		faults   []memtransport.Fault // for home replicas 0, 1, 2
		n, w, r  int
		putErr   errcode.Code
		getErr   errcode.Code
		maxDelay time.Duration
	}{
		{"all up", []memtransport.Fault{0, 0, 0}, 3, 2, 2, errcode.None, errcode.None, 50 * time.Millisecond},
		{"one down", []memtransport.Fault{memtransport.Down, 0, 0}, 3, 2, 2, errcode.None, errcode.None, 50 * time.Millisecond},
		{"one stalled", []memtransport.Fault{0, memtransport.Stalled, 0}, 3, 2, 2, errcode.None, errcode.None, 50 * time.Millisecond},
		{"two down", []memtransport.Fault{memtransport.Down, memtransport.Down, 0}, 3, 2, 2, errcode.Network, errcode.Network, 50 * time.Millisecond},
		{"two down, one needed", []memtransport.Fault{memtransport.Down, memtransport.Down, 0}, 3, 1, 1, errcode.None, errcode.None, 50 * time.Millisecond},
		{"two stalled", []memtransport.Fault{memtransport.Stalled, memtransport.Stalled, 0}, 3, 2, 2, errcode.Network, errcode.Network, 300 * time.Millisecond},
		{"all down", []memtransport.Fault{memtransport.Down, memtransport.Down, memtransport.Down}, 3, 1, 1, errcode.Network, errcode.Network, 50 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 5, Options{DisableSloppyQuorum: true})
				home := cl.home("key", 3)
				// Seed every home replica so a successful get has a value.
				cl.c.Put(ctx, []byte("key"), []byte("value"), 3, 3)
				for i, f := range tc.faults {
					cl.net.SetFault(home[i], f)
				}
				start := time.Now()
				_, err := cl.c.Put(ctx, []byte("key"), []byte("value"), tc.n, tc.w)
				if errcode.Of(err) != tc.putErr {
					t.Fatalf("put: %v, want %s", err, tc.putErr.Name())
				}
				if err != nil && !errors.Is(err, ErrQuorum) {
					t.Fatalf("put error is not a quorum error: %v", err)
				}
				rec, err := cl.c.Get(ctx, []byte("key"), tc.n, tc.r)
				if errcode.Of(err) != tc.getErr {
					t.Fatalf("get: %v, want %s", err, tc.getErr.Name())
				}
				if err == nil && string(rec.Value) != "value" {
					t.Fatalf("get: %q", rec.Value)
				}
				if d := time.Since(start); d > 2*tc.maxDelay {
					t.Fatalf("took %v", d)
				}
			})
		})
	}
}

func TestNewestWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		home := cl.home("k", 3)
		versions := []uint64{5, 9, 7}
		for i, addr := range home {
			cl.replicas[addr].set("k", kv.Record{Version: kv.Version{Wall: versions[i]}, Value: []byte(fmt.Sprint(versions[i]))})
		}
		rec, err := cl.c.Get(ctx, []byte("k"), 3, 3)
		if err != nil || string(rec.Value) != "9" {
			t.Fatalf("got %q %v", rec.Value, err)
		}
		cl.c.Wait(ctx)
		// Tombstone newest: not found.
		cl.replicas[home[2]].set("k", kv.Record{Version: kv.Version{Wall: 10}, Tombstone: true})
		if _, err := cl.c.Get(ctx, []byte("k"), 3, 3); !errors.Is(err, errcode.NotFound) {
			t.Fatalf("tombstone: %v", err)
		}
	})
}

func TestDeleteAndNotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 4, Options{})
		if _, err := cl.c.Get(ctx, []byte("nope"), 3, 2); !errors.Is(err, errcode.NotFound) {
			t.Fatalf("absent: %v", err)
		}
		cl.c.Put(ctx, []byte("k"), []byte("v"), 3, 2)
		if _, err := cl.c.Delete(ctx, []byte("k"), 3, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.c.Get(ctx, []byte("k"), 3, 2); !errors.Is(err, errcode.NotFound) {
			t.Fatalf("deleted: %v", err)
		}
		cl.c.Put(ctx, []byte("k"), []byte(""), 3, 2)
		if rec, err := cl.c.Get(ctx, []byte("k"), 3, 2); err != nil || len(rec.Value) != 0 {
			t.Fatalf("empty value: %q %v", rec.Value, err)
		}
	})
}

func TestClockFollowsReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.UnixMilli(1000)
		cl := newCluster(t, 3, Options{Clock: kv.NewClock(1, func() time.Time { return now })})
		future := kv.Version{Wall: 50000, Writer: 2}
		for _, addr := range cl.home("k", 3) {
			cl.replicas[addr].set("k", kv.Record{Version: future, Value: []byte("from the future")})
		}
		if _, err := cl.c.Get(ctx, []byte("k"), 3, 2); err != nil {
			t.Fatal(err)
		}
		v, err := cl.c.Put(ctx, []byte("k"), []byte("mine"), 3, 2)
		if err != nil || !v.Newer(future) {
			t.Fatalf("put after reading the future wrote %v", v)
		}
		if rec, _ := cl.c.Get(ctx, []byte("k"), 3, 3); string(rec.Value) != "mine" {
			t.Fatalf("read %q", rec.Value)
		}
	})
}

func TestValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{MaxKeySize: 10, MaxValueSize: 20})
		cases := []struct {
			name string
			err  error
		}{
			{"empty key put", func() error { _, err := cl.c.Put(ctx, nil, []byte("v"), 3, 2); return err }()},
			{"empty key get", func() error { _, err := cl.c.Get(ctx, []byte{}, 3, 2); return err }()},
			{"key too large", func() error { _, err := cl.c.Put(ctx, bytes.Repeat([]byte("k"), 11), nil, 3, 2); return err }()},
			{"value too large", func() error { _, err := cl.c.Put(ctx, []byte("k"), make([]byte, 21), 3, 2); return err }()},
			{"w zero", func() error { _, err := cl.c.Put(ctx, []byte("k"), nil, 3, 0); return err }()},
			{"n zero", func() error { _, err := cl.c.Get(ctx, []byte("k"), 0, 1); return err }()},
			{"w above n", func() error { _, err := cl.c.Put(ctx, []byte("k"), nil, 2, 3); return err }()},
			{"r above n", func() error { _, err := cl.c.Get(ctx, []byte("k"), 1, 2); return err }()},
		}
		for _, tc := range cases {
			if !errors.Is(tc.err, errcode.InvalidArg) {
				t.Errorf("%s: %v", tc.name, tc.err)
			}
		}
		if cl.net.Calls("127.0.0.1:2000")+cl.net.Calls("127.0.0.1:2001")+cl.net.Calls("127.0.0.1:2002") != 0 {
			t.Error("invalid requests reached the network")
		}
		// N above the ring, W and R above the ring: clamped to all servers.
		if _, err := cl.c.Put(ctx, []byte("k"), []byte("v"), 10, 7); err != nil {
			t.Fatalf("N=10 W=7 on 3 servers: %v", err)
		}
		if len(cl.holders("k")) != 3 {
			t.Fatalf("held by %v", cl.holders("k"))
		}
		if _, err := cl.c.Get(ctx, []byte("k"), 200, 100); err != nil {
			t.Fatalf("N=200 R=100: %v", err)
		}
	})
}

func TestReplicaRefusesValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		for _, r := range cl.replicas {
			r.maxValue = 4
		}
		_, err := cl.c.Put(ctx, []byte("k"), []byte("too long"), 3, 2)
		if !errors.Is(err, errcode.InvalidArg) || !errors.Is(err, ErrQuorum) {
			t.Fatalf("got %v (%s)", err, errcode.Of(err).Name())
		}
	})
}
