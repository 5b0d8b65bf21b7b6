package coord

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// handleBatch answers each item of a batch as the lone request.
func (r *replica) handleBatch(ctx context.Context, f wire.Frame) wire.Frame {
	items, err := wire.DecodeBatchRequest(f.Body)
	if err != nil {
		return wire.Frame{Flags: uint8(wire.StatusBadRequest)}
	}
	answers := make([]wire.BatchItem, len(items))
	for i, it := range items {
		a := r.Handle(ctx, wire.Frame{Kind: uint8(it.Op), Flags: it.Flags, Body: it.Body})
		answers[i] = wire.BatchItem{Flags: a.Flags, Body: a.Body}
	}
	return wire.Frame{Body: wire.AppendBatchResponse(nil, answers)}
}

// calls returns the calls made so far to every server of cl.
func (cl *cluster) calls() map[string]int {
	out := map[string]int{}
	for addr := range cl.replicas {
		out[addr] = cl.net.Calls(addr)
	}
	return out
}

func putOps(prefix string, n int) []Op {
	ops := make([]Op, n)
	for i := range ops {
		k := fmt.Sprintf("%s-%d", prefix, i)
		ops[i] = Op{Kind: OpPut, Key: []byte(k), Value: []byte("v" + k)}
	}
	return ops
}

// TestBatchOneFramePerServer: the first round of a batch's operations
// leaves as one frame per server, whatever the number of keys, and each
// operation has its own result.
func TestBatchOneFramePerServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{MaxValueSize: 100})
		ops := putOps("k", 60)
		cl.c.Batch(ctx, ops, Req{})
		cl.c.Wait(ctx)
		for _, op := range ops {
			if op.Err != nil || op.Version.IsZero() {
				t.Fatalf("%s: %v", op.Key, op.Err)
			}
		}
		for addr, n := range cl.calls() {
			if n != 1 {
				t.Errorf("%s: %d calls for 60 puts, want 1", addr, n)
			}
		}
		before := cl.calls()
		mixed := []Op{
			{Kind: OpGet, Key: []byte("k-1")},
			{Kind: OpGet, Key: []byte("absent")},
			{Kind: OpPut, Key: []byte("k-2"), Value: []byte("new")},
			{Kind: OpPut, Key: []byte("big"), Value: []byte(strings.Repeat("x", 101))},
			{Kind: OpDelete, Key: []byte("k-3")},
			{Kind: OpGet, Key: nil},
			{Kind: 99, Key: []byte("k-4")},
		}
		cl.c.Batch(ctx, mixed, Req{})
		cl.c.Wait(ctx)
		if string(mixed[0].Record.Value) != "vk-1" || mixed[0].Err != nil {
			t.Errorf("get k-1: %q %v", mixed[0].Record.Value, mixed[0].Err)
		}
		if !errors.Is(mixed[1].Err, errcode.NotFound) {
			t.Errorf("get absent: %v", mixed[1].Err)
		}
		if mixed[2].Err != nil || mixed[4].Err != nil {
			t.Errorf("put, delete: %v, %v", mixed[2].Err, mixed[4].Err)
		}
		for _, i := range []int{3, 5, 6} {
			if !errors.Is(mixed[i].Err, errcode.InvalidArg) {
				t.Errorf("op %d: %v, want an invalid argument", i, mixed[i].Err)
			}
		}
		for addr, n := range cl.calls() {
			if n-before[addr] > 1 {
				t.Errorf("%s: %d calls for one batch", addr, n-before[addr])
			}
		}
		for k, want := range map[string]string{"k-2": "new", "k-3": "", "k-5": "vk-5"} {
			rec, err := cl.c.Get(ctx, []byte(k), 3, 3)
			switch {
			case want == "" && !errors.Is(err, errcode.NotFound):
				t.Errorf("%s: %q %v, want deleted", k, rec.Value, err)
			case want != "" && (err != nil || string(rec.Value) != want):
				t.Errorf("%s: %q %v, want %q", k, rec.Value, err, want)
			}
		}
	})
}

// TestBatchPlainFallback: a server that does not know batches answers one
// as a bad request (and hangs up, as after any bad request: what was in
// flight on the connection may fail once); from then on its requests go
// alone, and batches succeed.
func TestBatchPlainFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 3, Options{})
		for _, r := range cl.replicas {
			r.noBatch = true
		}
		cl.c.Batch(ctx, putOps("a", 10), Req{N: 3, W: 3})
		cl.c.Wait(ctx)
		before := cl.calls()
		ops := putOps("b", 10)
		cl.c.Batch(ctx, ops, Req{N: 3, W: 3})
		for _, op := range ops {
			if op.Err != nil {
				t.Fatalf("%s: %v", op.Key, op.Err)
			}
		}
		cl.c.Wait(ctx)
		for addr, n := range cl.calls() {
			if n-before[addr] != 10 {
				t.Errorf("%s: %d calls for 10 puts, want 10 (alone)", addr, n-before[addr])
			}
		}
	})
}

// TestBatchPartialFailure: with a server down and no sloppy quorum, the
// keys it is home for fail their W=3 and the others succeed, in one
// batch.
func TestBatchPartialFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{DisableSloppyQuorum: true})
		down := "127.0.0.1:2001"
		cl.net.SetFault(down, memtransport.Down)
		ops := putOps("p", 40)
		cl.c.Batch(ctx, ops, Req{N: 3, W: 3})
		failed := 0
		for _, op := range ops {
			home := false
			for _, h := range cl.home(string(op.Key), 3) {
				home = home || h == down
			}
			switch {
			case home && !errors.Is(op.Err, ErrQuorum):
				t.Errorf("%s (home on the server down): %v", op.Key, op.Err)
			case !home && op.Err != nil:
				t.Errorf("%s: %v", op.Key, op.Err)
			}
			if home {
				failed++
			}
		}
		if failed == 0 || failed == len(ops) {
			t.Fatalf("%d of %d keys have the server down as home: the test shows nothing", failed, len(ops))
		}
		cl.c.Wait(ctx)
	})
}

// TestBatchStaleEpoch: replicas that know a newer ring refuse every item
// of a batch placed with the older one; the coordinator takes the newer
// ring and places each operation again, with the version its write chose.
func TestBatchStaleEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl := newCluster(t, 5, Options{})
		newer := topology.Initial(cl.ring.Servers())
		newer.Epoch = 2
		for _, r := range cl.replicas {
			r.mu.Lock()
			r.epoch = &newer
			r.mu.Unlock()
		}
		ops := putOps("s", 20)
		ops = append(ops, Op{Kind: OpGet, Key: []byte("s-1")})
		cl.c.Batch(ctx, ops, Req{})
		for _, op := range ops[:20] {
			if op.Err != nil {
				t.Fatalf("%s: %v", op.Key, op.Err)
			}
		}
		if err := ops[20].Err; err != nil && !errors.Is(err, errcode.NotFound) {
			t.Fatalf("get: %v", err)
		}
		if e := cl.c.View().Epoch(); e != 2 {
			t.Fatalf("epoch %d after the refusals, want 2", e)
		}
		cl.c.Wait(ctx)
		for _, op := range ops[:20] {
			for _, addr := range cl.home(string(op.Key), 3) {
				r := cl.replicas[addr]
				r.mu.Lock()
				applied := r.applied[string(op.Key)]
				r.mu.Unlock()
				if len(applied) != 1 || applied[0] != op.Version {
					t.Errorf("%s on %s: applied %v, want once %v", op.Key, addr, applied, op.Version)
				}
			}
		}
	})
}
