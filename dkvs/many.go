package dkvs

import (
	"context"
	"sync"

	"github.com/dkvs/dkvs/dkvs/coord"
)

// Pair is a key and its value, for PutMany.
type Pair struct {
	Key, Value []byte
}

// Result is one key's outcome in GetMany: its value, or the error GetWith
// would have returned for it (ErrNotFound for an absent key).
type Result struct {
	Value []byte
	Err   error
}

// GetMany reads keys as r says and returns one result per key, in order.
// Each key is read with the quorum semantics of GetWith, and one key
// failing does not fail the others; but the requests of all the keys for
// one server travel in one message, which the server answers in one, so
// reading many keys at once costs far fewer round trips and system calls
// than as many GetWith calls. A key may appear more than once.
func (c *Client) GetMany(ctx context.Context, keys [][]byte, r Request) []Result {
	out := make([]Result, len(keys))
	if c.opts.Via != "" {
		c.viaEach(len(keys), func(i int) { out[i].Value, out[i].Err = c.viaGet(ctx, keys[i], r) })
		return out
	}
	ops := make([]coord.Op, len(keys))
	for i, k := range keys {
		ops[i] = coord.Op{Kind: coord.OpGet, Key: k}
	}
	c.coord.Batch(ctx, ops, c.req(r))
	for i, op := range ops {
		out[i] = Result{Value: op.Record.Value, Err: op.Err}
		if op.Err == nil && out[i].Value == nil {
			out[i].Value = []byte{}
		}
	}
	return out
}

// PutMany stores each pair as PutWith would, and returns one error per
// pair, in order (nil: stored). The writes for one server travel in one
// message and are made durable with one fsync. The batch is not atomic:
// some pairs may be stored and others not. A key that appears more than
// once ends with its last value.
func (c *Client) PutMany(ctx context.Context, pairs []Pair, r Request) []error {
	errs := make([]error, len(pairs))
	if c.opts.Via != "" {
		c.viaEach(len(pairs), func(i int) { errs[i] = c.viaPut(ctx, pairs[i].Key, pairs[i].Value, r) })
		return errs
	}
	ops := make([]coord.Op, len(pairs))
	for i, p := range pairs {
		ops[i] = coord.Op{Kind: coord.OpPut, Key: p.Key, Value: p.Value}
	}
	c.coord.Batch(ctx, ops, c.req(r))
	for i, op := range ops {
		errs[i] = op.Err
	}
	return errs
}

// DeleteMany deletes each key as DeleteWith would, and returns one error
// per key, in order, batched as PutMany is.
func (c *Client) DeleteMany(ctx context.Context, keys [][]byte, r Request) []error {
	errs := make([]error, len(keys))
	if c.opts.Via != "" {
		c.viaEach(len(keys), func(i int) { errs[i] = c.viaDelete(ctx, keys[i], r) })
		return errs
	}
	ops := make([]coord.Op, len(keys))
	for i, k := range keys {
		ops[i] = coord.Op{Kind: coord.OpDelete, Key: k}
	}
	c.coord.Batch(ctx, ops, c.req(r))
	for i, op := range ops {
		errs[i] = op.Err
	}
	return errs
}

// viaEach runs fn(0..n-1) side by side: through a coordinating server,
// each key is its own coordinated request.
func (c *Client) viaEach(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}
