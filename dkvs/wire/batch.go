package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/limits"
)

// OpBatch carries several replica requests (get, put, hint) for one
// server in one frame; the server applies the writes among them as one
// storage batch with one fsync and answers every item in one response
// frame, in order. Each item is a request as it would travel alone: its
// op, its flags and its body (with the epoch prefix when its flags say
// so), so that a server checks each item's ring as it checks a lone
// request's.
const OpBatch Op = 13

// BatchItem is one request of a batch, or one answer of its response
// (Flags then holds the status).
type BatchItem struct {
	Op    Op
	Flags uint8
	Body  []byte
}

// BatchOp reports whether op may travel inside a batch.
func BatchOp(op Op) bool { return op == OpGet || op == OpPut || op == OpHint }

// BatchItemSize is the encoded size of an item with a body of n bytes, at
// most: what a sender adds to a batch for it.
func BatchItemSize(n int) int { return 2 + binary.MaxVarintLen64 + n }

// AppendBatchRequest appends a batch request body: count (varint), then
// count × (op (1 byte), flags (1 byte), body (bytes)).
func AppendBatchRequest(b []byte, items []BatchItem) []byte {
	b = binary.AppendUvarint(b, uint64(len(items)))
	for _, it := range items {
		b = append(b, uint8(it.Op), it.Flags)
		b = AppendBytes(b, it.Body)
	}
	return b
}

// AppendBatchResponse appends a batch response body: count (varint), then
// count × (status (1 byte), body (bytes)); the answers are in the order of
// the request's items.
func AppendBatchResponse(b []byte, items []BatchItem) []byte {
	b = binary.AppendUvarint(b, uint64(len(items)))
	for _, it := range items {
		b = append(b, it.Flags)
		b = AppendBytes(b, it.Body)
	}
	return b
}

// DecodeBatchRequest decodes a batch request. It refuses an empty batch,
// more than limits.MaxBatchItems items and an op that cannot travel in a
// batch. The bodies alias b.
func DecodeBatchRequest(b []byte) ([]BatchItem, error) {
	r := &reader{b: b}
	n := r.uvarint("batch count")
	if r.err == nil && (n == 0 || n > limits.MaxBatchItems) {
		return nil, fmt.Errorf("%w: batch of %d items (1 to %d)", ErrMalformed, n, limits.MaxBatchItems)
	}
	var items []BatchItem
	for i := uint64(0); i < n && r.err == nil; i++ {
		op := Op(r.u8("batch op"))
		flags := r.u8("batch flags")
		body := r.bytes("batch body")
		if r.err == nil && !BatchOp(op) {
			return nil, fmt.Errorf("%w: %s cannot travel in a batch", ErrMalformed, op)
		}
		items = append(items, BatchItem{Op: op, Flags: flags, Body: body})
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return items, nil
}

// DecodeBatchResponse decodes a batch response of want items (the count
// of the request it answers). The bodies alias b.
func DecodeBatchResponse(b []byte, want int) ([]BatchItem, error) {
	r := &reader{b: b}
	n := r.uvarint("batch count")
	if r.err == nil && n != uint64(want) {
		return nil, fmt.Errorf("%w: %d answers to a batch of %d", ErrMalformed, n, want)
	}
	items := make([]BatchItem, 0, want)
	for i := uint64(0); i < n && r.err == nil; i++ {
		st := r.u8("batch status")
		body := r.bytes("batch body")
		items = append(items, BatchItem{Flags: st, Body: body})
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return items, nil
}
