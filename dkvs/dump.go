package dkvs

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Dump streams every live pair of the ring in key order, the newest
// version of each key, by merging the scans of all servers page by page:
// memory stays bounded by one page per server. Servers that do not answer
// are skipped; Dump then returns an errcode.Network error naming them,
// after streaming everything the others hold.
func (c *Client) Dump(ctx context.Context, fn func(key, value []byte) error) error {
	h := &scanHeap{}
	var failed []string
	for _, s := range c.servers {
		cur := &cursor{c: c, addr: s.Addr()}
		if err := cur.fill(ctx); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", cur.addr, err))
			continue
		}
		if cur.valid() {
			h.items = append(h.items, cur)
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		// Take every cursor positioned on the smallest key; keep the newest.
		key := append([]byte(nil), h.items[0].key()...)
		var newest kv.Record
		for h.Len() > 0 && bytes.Equal(h.items[0].key(), key) {
			cur := h.items[0]
			if rec := cur.rec(); rec.Version.Newer(newest.Version) {
				newest = rec
			}
			if err := cur.next(ctx); err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", cur.addr, err))
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
		return fmt.Errorf("dump incomplete: %d servers did not answer: %v: %w", len(failed), failed, errcode.Network)
	}
	return nil
}

// cursor walks one server's records (tombstones included, so a deletion
// on one replica hides an older value on another) page by page.
type cursor struct {
	c    *Client
	addr string
	page wire.ScanResponse
	i    int
	done bool
}

func (cu *cursor) fill(ctx context.Context) error {
	var start []byte
	if len(cu.page.Records) > 0 {
		last := cu.page.Records[len(cu.page.Records)-1].Key
		start = append(append([]byte(nil), last...), 0)
	}
	page, err := cu.c.scanPage(ctx, cu.addr, start, true)
	if err != nil {
		return err
	}
	cu.page, cu.i = page, 0
	if len(page.Records) == 0 {
		cu.done = true
	}
	return nil
}

func (cu *cursor) valid() bool    { return !cu.done && cu.i < len(cu.page.Records) }
func (cu *cursor) key() []byte    { return cu.page.Records[cu.i].Key }
func (cu *cursor) rec() kv.Record { return cu.page.Records[cu.i].Record }
func (cu *cursor) next(ctx context.Context) error {
	cu.i++
	if cu.i < len(cu.page.Records) {
		return nil
	}
	if !cu.page.More {
		cu.done = true
		return nil
	}
	return cu.fill(ctx)
}

type scanHeap struct{ items []*cursor }

func (h *scanHeap) Len() int           { return len(h.items) }
func (h *scanHeap) Less(i, j int) bool { return bytes.Compare(h.items[i].key(), h.items[j].key()) < 0 }
func (h *scanHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *scanHeap) Push(x any)         { h.items = append(h.items, x.(*cursor)) }
func (h *scanHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
