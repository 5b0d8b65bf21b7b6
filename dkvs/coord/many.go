package coord

import (
	"context"
	"fmt"
	"sync"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
)

// Kind is what one operation of a batch does.
type Kind uint8

// Kinds of batch operations.
const (
	OpGet    Kind = iota + 1 // read the key
	OpPut                    // store Value under the key
	OpDelete                 // delete the key
)

// Op is one operation of Batch, and its result once Batch returns.
type Op struct {
	Kind  Kind
	Key   []byte
	Value []byte // OpPut only

	// Record is what OpGet read (when Err is nil).
	Record kv.Record
	// Version is the version OpPut or OpDelete wrote (when Err is nil).
	Version kv.Version
	// Err is the operation's own error, as the single call would return
	// it: errcode.NotFound for a key absent or deleted, a QuorumError, a
	// limits error for a key or value too large.
	Err error
}

// Batch runs ops, each with the quorum semantics of the single call (Get,
// PutReq, DeleteReq) and req, and fills in each one's result; one
// operation failing does not fail the others. The first requests of all
// the operations leave together, one frame per replica server, applied by
// each server as one storage batch with one fsync; the operations are
// then decided one by one, as their replies come in. Operations of one
// batch on the same key are not ordered among themselves, except that a
// later write in ops gets a higher version than an earlier one.
// Linearizable operations run side by side, each as its single call.
func (c *Coordinator) Batch(ctx context.Context, ops []Op, req Req) {
	if req.Linearizable || c.snd == nil || len(ops) == 1 {
		c.each(ctx, ops, req)
		return
	}
	k := &cork{held: map[string][]outgoing{}, size: len(ops)}
	kctx := context.WithValue(ctx, corkKey{}, k)
	v := c.View()
	type started struct {
		g  *getOp
		wo *writeOp
	}
	st := make([]started, len(ops))
	// What the operations leave to the background (replies still due,
	// read repairs, hints) runs in one goroutine for the batch rather than
	// one per operation; each piece is tracked by Wait already.
	var rest []leftover
	spawn := func(l leftover) { rest = append(rest, l) }
	defer func() {
		if len(rest) > 0 {
			go func() {
				for _, l := range rest {
					l.finish()
				}
			}()
		}
	}()
	for i := range ops {
		op := &ops[i]
		if op.Err = c.checkOp(op); op.Err != nil {
			continue
		}
		n, q, err := resolve(v, req, op.Kind == OpGet)
		if err != nil {
			op.Err = err
			continue
		}
		if op.Kind == OpGet {
			st[i].g = c.newGetOp(kctx, v, op.Key, n, q, false)
			st[i].g.spawn = spawn
			st[i].g.start()
			continue
		}
		name, rec := opRecord(op)
		st[i].wo = c.newWriteOp(kctx, v, name, op.Key, rec, n, q, false)
		st[i].wo.replace = maxAttempts
		st[i].wo.spawn = spawn
		if err := st[i].wo.begin(); err != nil { // only a linearizable write fails here
			op.Err = err
		}
	}
	k.release(c.snd)
	for i := range ops {
		op := &ops[i]
		switch s := st[i]; {
		case s.g != nil:
			rec, stale, err := s.g.wait()
			if err != nil && stale && c.View().Epoch() > v.Epoch() {
				rec, err = c.GetReq(ctx, op.Key, req)
			}
			op.Record, op.Err = rec, err
		case s.wo != nil && op.Err == nil:
			version, stale, err := s.wo.wait()
			if err != nil && stale && c.View().Epoch() > v.Epoch() {
				// A replica knew a newer ring: place the same record again.
				name, rec := opRecord(op)
				rec.Version = s.wo.rec.Version
				version, err = c.write(ctx, name, op.Key, rec, req)
			}
			op.Version, op.Err = version, err
		}
	}
}

// each runs ops side by side, each as its single call (one in the
// caller's goroutine).
func (c *Coordinator) each(ctx context.Context, ops []Op, req Req) {
	if len(ops) == 1 {
		c.single(ctx, &ops[0], req)
		return
	}
	var wg sync.WaitGroup
	for i := range ops {
		wg.Add(1)
		go func(op *Op) {
			defer wg.Done()
			c.single(ctx, op, req)
		}(&ops[i])
	}
	wg.Wait()
}

// single runs op as its single call.
func (c *Coordinator) single(ctx context.Context, op *Op, req Req) {
	if op.Err = c.checkOp(op); op.Err != nil {
		return
	}
	switch op.Kind {
	case OpGet:
		op.Record, op.Err = c.GetReq(ctx, op.Key, req)
	case OpPut:
		op.Version, op.Err = c.PutReq(ctx, op.Key, op.Value, req)
	case OpDelete:
		op.Version, op.Err = c.DeleteReq(ctx, op.Key, req)
	}
}

// checkOp validates an operation before anything is sent.
func (c *Coordinator) checkOp(op *Op) error {
	switch op.Kind {
	case OpGet, OpDelete:
		return c.checkKey(op.Key)
	case OpPut:
		if err := c.checkKey(op.Key); err != nil {
			return err
		}
		return c.lim.CheckValue(op.Value)
	}
	return fmt.Errorf("batch: unknown operation kind %d: %w", op.Kind, errcode.InvalidArg)
}

// opRecord returns the name and record of a write.
func opRecord(op *Op) (string, kv.Record) {
	if op.Kind == OpDelete {
		return "delete", kv.Record{Tombstone: true}
	}
	value := op.Value
	if value == nil {
		value = []byte{}
	}
	return "put", kv.Record{Value: value}
}

// corkKey is the context key of a batch's cork.
type corkKey struct{}

// cork holds the requests of a batch's first round until all of its
// operations have placed theirs, then hands them to the sender together,
// server by server. Requests sent after the release (fallbacks, repairs)
// go out at once.
type cork struct {
	mu       sync.Mutex
	released bool
	order    []string
	held     map[string][]outgoing
	size     int // the batch's operations: at most one request each per server in the first round
}

// corkOf returns the cork of ctx, or nil.
func corkOf(ctx context.Context) *cork {
	if d, ok := ctx.(*deadlineOnly); ok {
		return d.cork
	}
	k, _ := ctx.Value(corkKey{}).(*cork)
	return k
}

// hold keeps o for addr and reports whether it did (not once released).
func (k *cork) hold(addr string, o outgoing) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.released {
		return false
	}
	held, ok := k.held[addr]
	if !ok {
		k.order = append(k.order, addr)
		// Most servers get a request from most operations of a small ring;
		// on a large one, from few (hence the bound).
		held = make([]outgoing, 0, min(k.size, 64))
	}
	k.held[addr] = append(held, o)
	return true
}

// release sends what was held, one server at a time.
func (k *cork) release(s *sender) {
	k.mu.Lock()
	k.released = true
	held, order := k.held, k.order
	k.held, k.order = nil, nil
	k.mu.Unlock()
	for _, addr := range order {
		s.send(addr, held[addr]...)
	}
}
