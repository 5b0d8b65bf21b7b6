package handoff

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/transport/memtransport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// target applies batches to a map, counting batches.
type target struct {
	mu      sync.Mutex
	data    map[string]kv.Record
	batches int
	fail    bool
}

func (t *target) Handle(ctx context.Context, f wire.Frame) wire.Frame {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail {
		return wire.Frame{Flags: uint8(wire.StatusInternal), Body: wire.AppendMessage(nil, "disk full")}
	}
	b, err := wire.DecodePutBatch(f.Body)
	if err != nil || f.Op() != wire.OpPutBatch {
		return wire.Frame{Flags: uint8(wire.StatusBadRequest)}
	}
	t.batches++
	for _, kr := range b.Records {
		t.data[string(kr.Key)] = kr.Record
	}
	return wire.Frame{}
}

func TestDeliver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := storage.Open(storage.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for i := 0; i < 1000; i++ {
			db.ApplyHint("t:1", []byte(fmt.Sprintf("k%04d", i)), kv.Record{Version: kv.Version{Wall: 5}, N: 3, Value: []byte("v")})
		}
		db.ApplyHint("other:2", []byte("x"), kv.Record{Version: kv.Version{Wall: 5}, N: 3})
		net := memtransport.New()
		defer net.Close()
		tg := &target{data: map[string]kv.Record{}}
		net.Register("t:1", tg)
		h := New(db, net, Options{BatchRecords: 100})

		// The target is down: nothing is deleted.
		net.SetFault("t:1", memtransport.Down)
		if n, err := h.Deliver(context.Background(), "t:1"); err == nil || n != 0 {
			t.Fatalf("delivered %d to a down target: %v", n, err)
		}
		if db.HintCounts()["t:1"] != 1000 {
			t.Fatal("hints lost on a failed delivery")
		}
		// It refuses the batch: nothing is deleted either.
		net.SetFault("t:1", memtransport.Up)
		tg.fail = true
		if _, err := h.Deliver(context.Background(), "t:1"); err == nil || db.HintCounts()["t:1"] != 1000 {
			t.Fatalf("refused batch: %v, %d left", err, db.HintCounts()["t:1"])
		}
		tg.fail = false
		n, err := h.Deliver(context.Background(), "t:1")
		if err != nil || n != 1000 || len(tg.data) != 1000 || tg.batches != 10 {
			t.Fatalf("delivered %d in %d batches (%d at target): %v", n, tg.batches, len(tg.data), err)
		}
		if c := db.HintCounts(); c["t:1"] != 0 || c["other:2"] != 1 || h.Delivered() != 1000 {
			t.Fatalf("after delivery: %v, delivered %d", c, h.Delivered())
		}
	})
}

// A hint rewritten with a newer version while its batch is in flight is
// not deleted with the old one: it goes out in the next batch.
type racing struct {
	target
	db    *storage.DB
	calls int
}

func (r *racing) Handle(ctx context.Context, f wire.Frame) wire.Frame {
	if r.calls++; r.calls == 1 {
		r.db.ApplyHint("t:1", []byte("k"), kv.Record{Version: kv.Version{Wall: 9}, N: 3, Value: []byte("newer")})
	}
	return r.target.Handle(ctx, f)
}

func TestNewerHintKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, _ := storage.Open(storage.Options{InMemory: true})
		defer db.Close()
		db.ApplyHint("t:1", []byte("k"), kv.Record{Version: kv.Version{Wall: 5}, N: 3, Value: []byte("old")})
		net := memtransport.New()
		defer net.Close()
		r := &racing{target: target{data: map[string]kv.Record{}}, db: db}
		net.Register("t:1", r)
		h := New(db, net, Options{})
		if _, err := h.Deliver(context.Background(), "t:1"); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if r.batches != 2 || string(r.data["k"].Value) != "newer" {
			t.Fatalf("%d batches, target holds %q", r.batches, r.data["k"].Value)
		}
		if db.HintCounts()["t:1"] != 0 {
			t.Fatal("hint left after delivery")
		}
	})
}
