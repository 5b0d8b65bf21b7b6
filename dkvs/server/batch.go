package server

import (
	"context"

	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// handleBatch answers a batch of replica requests: each item as it would
// be answered alone (its rights, its own ring check, limits and storage
// outcome), the
// puts among them applied as one storage batch with one fsync.
func (s *Server) handleBatch(ctx context.Context, f wire.Frame) wire.Frame {
	items, err := wire.DecodeBatchRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	answers := make([]wire.BatchItem, len(items))
	answer := func(i int, r wire.Frame) { answers[i] = wire.BatchItem{Flags: r.Flags, Body: r.Body} }
	var (
		puts []storage.KeyRecord
		at   []int // the item of each put
	)
	for i, it := range items {
		item := wire.Frame{Kind: uint8(it.Op), Flags: it.Flags, Body: it.Body}
		// The connection's rights are checked per item, as for the lone
		// request (a user may write some keys and not others).
		if refusal, done := s.authorize(ctx, item); done {
			answer(i, refusal)
			continue
		}
		epoch, req, err := wire.SplitEpoch(item)
		if err != nil {
			answer(i, fail(wire.StatusBadRequest, "%v", err))
			continue
		}
		if refusal, stale := s.staleEpoch(epoch, req.Op()); stale {
			answer(i, refusal)
			continue
		}
		switch req.Op() {
		case wire.OpGet:
			answer(i, s.handleGet(req))
		case wire.OpHint:
			answer(i, s.handleHint(req))
		case wire.OpPut:
			m, refused := s.decodePut(req)
			if refused != nil {
				answer(i, *refused)
				continue
			}
			puts = append(puts, storage.KeyRecord{Key: m.Key, Record: m.Record})
			at = append(at, i)
		}
	}
	if len(puts) > 0 {
		for j, o := range s.db.ApplyEach(puts) {
			answer(at[j], putAnswer(o.Result, o.Err))
		}
	}
	return ok(wire.AppendBatchResponse(nil, answers))
}
