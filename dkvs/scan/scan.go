// Package scan merges the scans of every server of a ring into one stream
// of live pairs in key order, the newest version of each key.
//
// It is the ring-wide scan shared by the Go client (Client.Dump) and by a
// server that answers ring-wide reads for clients that do not know the
// ring (the Redis protocol's SCAN, KEYS and DBSIZE). It pages through each
// server's records (tombstones included, so that a deletion on one
// replica hides an older value on another) and keeps one page per server
// in memory, whatever the size of the ring.
package scan

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Page bounds asked of each server.
const (
	PageLimit = 1000
	PageBytes = 1 << 20
)

// Pager returns one page of the records of the server at addr, from start
// (inclusive) in key order, tombstones included.
type Pager func(ctx context.Context, addr string, start []byte) (wire.ScanResponse, error)

// Caller sends one request frame to a server (coord.Transport's method).
type Caller interface {
	Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error)
}

// Page asks the server at addr, through c, for one page of its records
// from start, within timeout.
func Page(ctx context.Context, c Caller, addr string, start []byte, tombstones bool, timeout time.Duration) (wire.ScanResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body := wire.ScanRequest{Start: start, Limit: PageLimit, MaxBytes: PageBytes, Tombstones: tombstones}.Append(nil)
	f, err := c.Call(ctx, addr, wire.Frame{Kind: uint8(wire.OpScan), Body: body})
	if err != nil {
		return wire.ScanResponse{}, err
	}
	if f.Status() != wire.StatusOK {
		msg, _ := wire.DecodeMessage(f.Body)
		if auth.Refused(f.Status()) {
			return wire.ScanResponse{}, fmt.Errorf("scan %s: %w", addr, auth.StatusError(f.Status(), msg))
		}
		return wire.ScanResponse{}, fmt.Errorf("scan %s: %s %s: %w", addr, f.Status(), msg, errcode.Network)
	}
	return wire.DecodeScanResponse(f.Body)
}

// After returns the smallest key after key: where the next page starts.
func After(key []byte) []byte { return append(append(make([]byte, 0, len(key)+1), key...), 0) }

// Merge calls fn with every live pair of the servers at addrs, in key
// order from start (inclusive; nil means the first key), the newest
// version of each key, until fn returns an error, which Merge returns.
// key and value may be kept by fn.
//
// A server that does not answer, at first or in the middle, is left out
// and the others are still merged; once they are done Merge returns an
// error matching errcode.Network that wraps a *Incomplete naming them.
func Merge(ctx context.Context, addrs []string, start []byte, page Pager, fn func(key, value []byte) error) error {
	h := &cursorHeap{}
	var failed []Failure
	for _, addr := range addrs {
		cur := &cursor{page: page, addr: addr}
		if err := cur.fill(ctx, start); err != nil {
			failed = append(failed, Failure{addr, err})
			continue
		}
		if cur.valid() {
			h.items = append(h.items, cur)
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("scan: %w: %w", err, errcode.Network)
		}
		// Take every cursor positioned on the smallest key; keep the newest.
		key := bytes.Clone(h.items[0].key())
		var newest kv.Record
		for h.Len() > 0 && bytes.Equal(h.items[0].key(), key) {
			cur := h.items[0]
			if rec := cur.rec(); rec.Version.Newer(newest.Version) {
				newest = rec
			}
			if err := cur.next(ctx); err != nil {
				failed = append(failed, Failure{cur.addr, err})
				heap.Pop(h)
				continue
			}
			if cur.valid() {
				heap.Fix(h, 0)
			} else {
				heap.Pop(h)
			}
		}
		if newest.Live() {
			if err := fn(key, newest.Value); err != nil {
				return err
			}
		}
	}
	if len(failed) > 0 {
		// A server that refused the client's credentials or rights says
		// more than one that did not answer.
		code := errcode.Network
		for _, f := range failed {
			if errors.Is(f.Err, auth.ErrDenied) || errors.Is(f.Err, auth.ErrAuthRequired) {
				code = errcode.InvalidConfig
				return fmt.Errorf("%w: %w: %w", &Incomplete{Failed: failed}, f.Err, code)
			}
		}
		return fmt.Errorf("%w: %w", &Incomplete{Failed: failed}, code)
	}
	return nil
}

// Failure is a server that did not answer a scan.
type Failure struct {
	Addr string
	Err  error
}

// Incomplete reports the servers a merged scan had to leave out.
type Incomplete struct{ Failed []Failure }

func (e *Incomplete) Error() string {
	parts := make([]string, len(e.Failed))
	for i, f := range e.Failed {
		parts[i] = fmt.Sprintf("%s: %v", f.Addr, f.Err)
	}
	return fmt.Sprintf("scan incomplete: %d servers did not answer: %v", len(e.Failed), parts)
}

// cursor walks one server's records page by page.
type cursor struct {
	page Pager
	addr string
	cur  wire.ScanResponse
	i    int
	done bool
}

func (cu *cursor) fill(ctx context.Context, start []byte) error {
	p, err := cu.page(ctx, cu.addr, start)
	if err != nil {
		return err
	}
	cu.cur, cu.i = p, 0
	if len(p.Records) == 0 {
		cu.done = true
	}
	return nil
}

func (cu *cursor) valid() bool    { return !cu.done && cu.i < len(cu.cur.Records) }
func (cu *cursor) key() []byte    { return cu.cur.Records[cu.i].Key }
func (cu *cursor) rec() kv.Record { return cu.cur.Records[cu.i].Record }

func (cu *cursor) next(ctx context.Context) error {
	cu.i++
	if cu.i < len(cu.cur.Records) {
		return nil
	}
	if !cu.cur.More {
		cu.done = true
		return nil
	}
	return cu.fill(ctx, After(cu.cur.Records[len(cu.cur.Records)-1].Key))
}

type cursorHeap struct{ items []*cursor }

func (h *cursorHeap) Len() int { return len(h.items) }
func (h *cursorHeap) Less(i, j int) bool {
	return bytes.Compare(h.items[i].key(), h.items[j].key()) < 0
}
func (h *cursorHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *cursorHeap) Push(x any)    { h.items = append(h.items, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
