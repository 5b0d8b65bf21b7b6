package coord

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// inlineNet is a memtransport network seen from one server of it: the
// transport a server's coordinator has, counting the requests it ran on
// the caller's goroutine (Run) and those it handed over (Go).
type inlineNet struct {
	*memtransport.Network
	self string

	mu          sync.Mutex
	ran, handed map[wire.Op]int
}

var _ InlineTransport = (*inlineNet)(nil)

func (n *inlineNet) Local(addr string) bool { return addr == n.self }

func (n *inlineNet) Go(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error)) {
	if addr == n.self {
		n.mu.Lock()
		n.handed[req.Op()]++
		n.mu.Unlock()
	}
	n.Network.Go(addr, req, deadline, done)
}

func (n *inlineNet) Run(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error)) {
	n.mu.Lock()
	n.ran[req.Op()]++
	n.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	done(n.Network.Call(ctx, addr, req))
}

// An operation whose only replica is the coordinator's own server runs
// its request on the calling goroutine; with several replicas, or inside
// a batch, the request to itself is handed over like the others.
func TestOwnRequestInline(t *testing.T) {
	cases := []struct {
		name   string
		n      int
		batch  bool
		inline bool
	}{
		{"N=1", 1, false, true},
		{"N=3", 3, false, false},
		{"N=1 in a batch", 1, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := newCluster(t, 3, Options{})
				self := cl.ring.Servers()[0].Addr()
				net := &inlineNet{Network: cl.net, self: self, ran: map[wire.Op]int{}, handed: map[wire.Op]int{}}
				c := New(topology.StaticView(cl.ring.Servers()), net, Options{Timeout: 100 * time.Millisecond})
				// Keys whose first replica is this server.
				var keys [][]byte
				for i := 0; len(keys) < 4; i++ {
					k := fmt.Sprintf("k%d", i)
					if cl.home(k, 1)[0] == self {
						keys = append(keys, []byte(k))
					}
				}
				w := min(2, tc.n)
				if tc.batch {
					ops := make([]Op, len(keys))
					for i, k := range keys {
						ops[i] = Op{Kind: OpPut, Key: k, Value: k}
					}
					c.Batch(ctx, ops, Req{N: tc.n, R: w, W: w})
					for i, op := range ops {
						if op.Err != nil {
							t.Fatalf("batch put %s: %v", keys[i], op.Err)
						}
					}
				} else {
					for _, k := range keys {
						if _, err := c.Put(ctx, k, k, tc.n, w); err != nil {
							t.Fatal(err)
						}
						rec, err := c.Get(ctx, k, tc.n, w)
						if err != nil || string(rec.Value) != string(k) {
							t.Fatalf("get %s: %q %v", k, rec.Value, err)
						}
					}
				}
				c.Wait(ctx)
				net.mu.Lock()
				defer net.mu.Unlock()
				ran := net.ran[wire.OpPut] + net.ran[wire.OpGet]
				handed := net.handed[wire.OpPut] + net.handed[wire.OpGet] + net.handed[wire.OpBatch]
				if tc.inline && (ran == 0 || handed != 0) {
					t.Fatalf("own requests: %d run inline, %d handed over; want all inline", ran, handed)
				}
				if !tc.inline && (ran != 0 || handed == 0) {
					t.Fatalf("own requests: %d run inline, %d handed over; want none inline", ran, handed)
				}
			})
		})
	}
}
