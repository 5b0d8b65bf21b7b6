package main

/*
#include <stdint.h>
#include <stdlib.h>
#include "dkvs.h"

void *dkvsgo_alloc(size_t n);
*/
import "C"

import (
	"context"
	"unsafe"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// The kinds of dkvsgo_batch, as dkvs.c passes them.
const (
	batchGet = 1
	batchPut = 2
	batchDel = 3
)

// maxBatchCount bounds the count of a batch call: far above any sensible
// batch, it keeps a garbage count from a C caller from passing.
const maxBatchCount = 1 << 20

// dkvsgo_batch backs dkvs_mget, dkvs_mput and dkvs_mdel: it copies the
// keys (and values) of the count items at items, runs the batch through
// the Go client, and writes each item's rc (and, for a get, its value
// malloc'ed) back into the items.
//
//export dkvsgo_batch
func dkvsgo_batch(kind C.int, h C.uintptr_t, items *C.dkvs_item_t, count C.size_t, n, r, w, level, lin C.int) C.int {
	var all []C.dkvs_item_t
	if items != nil && count > 0 && count <= maxBatchCount {
		all = unsafe.Slice(items, int(count))
	}
	for i := range all {
		if kind == batchGet {
			all[i].value, all[i].vlen = nil, 0
		}
		all[i].rc = C.int(errcode.InvalidArg)
	}
	return C.int(run(func() errcode.Code {
		if count == 0 {
			return errcode.None
		}
		if all == nil || kind < batchGet || kind > batchDel {
			return errcode.InvalidArg
		}
		e, ok := handles.acquire(uintptr(h))
		if !ok {
			return errcode.InvalidArg
		}
		defer e.release()
		req, ok := requestOf(e, n, r, w, level, lin)
		if !ok {
			return errcode.InvalidArg
		}
		codes := runBatch(e, int(kind), all, req)
		first := errcode.None
		for i, code := range codes {
			all[i].rc = C.int(code)
			if first == errcode.None {
				first = code
			}
		}
		return first
	}))
}

// runBatch runs the batch of items and returns each item's code; a get's
// value is handed to C in its item.
func runBatch(e *entry, kind int, items []C.dkvs_item_t, req dkvs.Request) []errcode.Code {
	codes := make([]errcode.Code, len(items))
	keys := make([][]byte, len(items))
	var pairs []dkvs.Pair
	for i := range items {
		k, ok := goBytes(items[i].key, items[i].klen, false)
		if !ok {
			// Refused by the Go client too (an empty key): its code is
			// the item's, and the others still run.
			k = nil
		}
		keys[i] = k
		if kind == batchPut {
			v, ok := goBytes(items[i].value, items[i].vlen, true)
			if !ok {
				codes[i] = errcode.InvalidArg
			}
			pairs = append(pairs, dkvs.Pair{Key: k, Value: v})
		}
	}
	ctx := context.Background()
	var errs []error
	switch kind {
	case batchGet:
		res := e.c.GetMany(ctx, keys, req)
		for i, g := range res {
			if g.Err != nil {
				codes[i] = codeOf(g.Err)
				continue
			}
			p := C.dkvsgo_alloc(C.size_t(len(g.Value)) + 1)
			if p == nil {
				codes[i] = errcode.OutOfMemory
				continue
			}
			buf := unsafe.Slice((*byte)(p), len(g.Value)+1)
			buf[copy(buf, g.Value)] = 0
			items[i].value, items[i].vlen = p, C.size_t(len(g.Value))
		}
		return codes
	case batchPut:
		// A value refused above is not sent: its pair goes with an
		// empty key, which the client refuses alone.
		for i := range pairs {
			if codes[i] != errcode.None {
				pairs[i].Key = nil
			}
		}
		errs = e.c.PutMany(ctx, pairs, req)
	default:
		errs = e.c.DeleteMany(ctx, keys, req)
	}
	for i, err := range errs {
		if codes[i] == errcode.None && err != nil {
			codes[i] = codeOf(err)
		}
	}
	return codes
}
