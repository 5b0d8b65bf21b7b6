package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// sick is a replica whose storage is in a state (refusing the writes it
// cannot take, and saying so in its ping answers), and whose records of
// some keys are corrupt (a get answers StatusCorrupt until a put repairs
// the key, whatever its version).
type sick struct {
	*replica
	mu      sync.Mutex
	state   wire.StorageState
	corrupt map[string]bool
	refused int
}

func (s *sick) Handle(ctx context.Context, f wire.Frame) wire.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	orig := f
	if _, g, err := wire.SplitEpoch(f); err == nil {
		f = g // requests carry the coordinator's epoch
	}
	switch f.Op() {
	case wire.OpPing:
		return wire.Frame{Body: wire.AppendPing(nil, kv.Version{Wall: 1}, s.state)}
	case wire.OpPut, wire.OpHint:
		var key []byte
		var rec kv.Record
		if f.Op() == wire.OpPut {
			m, _ := wire.DecodePutRequest(f.Body)
			key, rec = m.Key, m.Record
		} else {
			m, _ := wire.DecodeHintRequest(f.Body)
			key, rec = m.Key, m.Record
		}
		if !s.state.Writable(rec.Tombstone) {
			s.refused++
			return wire.Frame{Flags: uint8(wire.StatusStorage), Body: wire.AppendRefusal(nil, s.state, "refused")}
		}
		if s.corrupt[string(key)] {
			delete(s.corrupt, string(key))
			s.replica.mu.Lock()
			delete(s.replica.data, string(key))
			s.replica.mu.Unlock()
		}
	case wire.OpGet:
		m, _ := wire.DecodeGetRequest(f.Body)
		if s.corrupt[string(m.Key)] {
			return wire.Frame{Flags: uint8(wire.StatusCorrupt), Body: wire.AppendMessage(nil, "checksum")}
		}
	}
	return s.replica.Handle(ctx, orig)
}

func (cl *cluster) sicken(addr string) *sick {
	s := &sick{replica: cl.replicas[addr], corrupt: map[string]bool{}}
	cl.net.Register(addr, s)
	// The server running is restarted to serve the new handler.
	cl.net.SetFault(addr, memtransport.Down)
	cl.net.SetFault(addr, memtransport.Up)
	return s
}

// TestStorageRefusals: a home replica whose storage refuses a write
// answers at once; the write goes to a fallback as a hint for it and
// counts toward W, the refusal is a clean failure (never an unknown
// outcome), the detector learns the state from the refusal, later writes
// skip the replica (a full one still gets deletions), reads still go to
// it, and its ping saying ok makes it writable again.
func TestStorageRefusals(t *testing.T) {
	for _, st := range []wire.StorageState{wire.StorageFull, wire.StorageSlow, wire.StorageFailed} {
		t.Run(st.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 5, Options{})
				d := cl.detector()
				cl.c = New(topology.StaticView(cl.ring.Servers()), cl.net, Options{Health: d})
				w := cl.walk("key")
				home, fallback := w[0], w[3]
				s := cl.sicken(home)
				s.state = st
				if _, err := cl.c.Put(ctx, []byte("key"), []byte("v1"), 3, 3); err != nil {
					t.Fatalf("put with W=3: %v", err)
				}
				cl.c.Wait(ctx)
				if s.refused != 1 || cl.replicas[fallback].hintsFor(home) != 1 {
					t.Fatalf("refused %d, hints on the fallback %d", s.refused, cl.replicas[fallback].hintsFor(home))
				}
				if d.Writable(home, false) || d.Writable(home, true) != (st == wire.StorageFull) || !d.Up(home) {
					t.Fatalf("detector: writable %v/%v up %v", d.Writable(home, false), d.Writable(home, true), d.Up(home))
				}
				calls := cl.net.Calls(home)
				if _, err := cl.c.Put(ctx, []byte("key"), []byte("v2"), 3, 2); err != nil {
					t.Fatal(err)
				}
				cl.c.Wait(ctx)
				if cl.net.Calls(home) != calls || s.refused != 1 {
					t.Fatalf("a later put was sent to the refusing replica")
				}
				if _, err := cl.c.Delete(ctx, []byte("key"), 3, 2); err != nil {
					t.Fatal(err)
				}
				cl.c.Wait(ctx)
				if got := cl.net.Calls(home) > calls; got != (st == wire.StorageFull) {
					t.Fatalf("deletion sent to the %s replica: %v", st, got)
				}
				calls = cl.net.Calls(home)
				if _, err := cl.c.Get(ctx, []byte("key"), 3, 3); !errors.Is(err, errcode.NotFound) {
					t.Fatalf("get: %v", err)
				}
				if cl.net.Calls(home) == calls {
					t.Fatal("the get skipped the replica")
				}
				// Alone (N=1, no fallback), the refusal is a clean failure.
				strict := New(topology.StaticView(cl.ring.Servers()), cl.net, Options{DisableSloppyQuorum: true})
				_, err := strict.Put(ctx, []byte("key"), []byte("v3"), 1, 1)
				if errors.Is(err, ErrUnknownOutcome) || errcode.Of(err) != errcode.IO {
					t.Fatalf("strict put: %v (%s)", err, errcode.Of(err).Name())
				}
				strict.Wait(ctx)
				s.mu.Lock()
				s.state = wire.StorageOK
				s.mu.Unlock()
				d.Probe(ctx)
				if !d.Writable(home, false) {
					t.Fatal("not writable after its ping said ok")
				}
			})
		})
	}
}

// TestCorruptReplicaRepaired: a replica that found the record corrupt
// counts as failed for the read, and read repair sends it the newest
// version, which it takes although it is the version it held.
func TestCorruptReplicaRepaired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		home := cl.home("k", 3)
		rec := kv.Record{Version: kv.Version{Wall: 5}, Value: []byte("v"), N: 3}
		for _, a := range home {
			cl.replicas[a].set("k", rec)
		}
		s := cl.sicken(home[0])
		s.corrupt["k"] = true
		got, err := cl.c.Get(ctx, []byte("k"), 3, 2)
		if err != nil || string(got.Value) != "v" {
			t.Fatalf("get: %q %v", got.Value, err)
		}
		if _, err := cl.c.Get(ctx, []byte("k"), 3, 3); !errors.Is(err, ErrQuorum) || errcode.Of(err) != errcode.IO {
			// R=3 cannot be had while a replica's record is corrupt, unless
			// the repair of the first get came first.
			if err != nil {
				t.Fatalf("get R=3: %v", err)
			}
		}
		cl.c.Wait(ctx)
		if s.corrupt["k"] || cl.c.ReadRepairs() == 0 {
			t.Fatalf("not repaired (repairs %d)", cl.c.ReadRepairs())
		}
		if r, ok := cl.replicas[home[0]].get("k"); !ok || string(r.Value) != "v" {
			t.Fatalf("replica holds %q %v", r.Value, ok)
		}
	})
}

// refusing is a transport whose connections are refused for their
// credentials, as auth.Dialer reports a wrong token.
type refusing struct{ Transport }

func (r refusing) Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error) {
	if req.Op() != wire.OpPing {
		return wire.Frame{}, fmt.Errorf("connect %s: auth: %w: %w: %w", addr, auth.ErrDenied, transport.ErrNotSent, errcode.InvalidConfig)
	}
	return r.Transport.Call(ctx, addr, req)
}

// TestCredentialsRefusedKeepsServerUp: a server that refuses the client's
// credentials answered, so the failure detector keeps it up (a wrong
// token must not make a live ring look down), and the operation fails
// with the credentials' error, not a network one.
func TestCredentialsRefusedKeepsServerUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		d := cl.detector()
		addrs := cl.home("k", 3)
		c := New(topology.StaticView(cl.ring.Servers()), refusing{cl.net}, Options{Health: d, Timeout: 100 * time.Millisecond})
		_, err := c.Put(context.Background(), []byte("k"), []byte("v"), 3, 3)
		if err == nil {
			t.Fatal("a put needing the refusing server succeeded")
		}
		if errcode.Of(err) != errcode.InvalidConfig {
			t.Errorf("put: %v, want the credentials' error", err)
		}
		for _, a := range addrs {
			if !d.Up(a) {
				t.Errorf("%s marked down", a)
			}
		}
	})
}
