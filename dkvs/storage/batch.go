package storage

import (
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// Outcome is one record's result in ApplyEach.
type Outcome struct {
	Result ApplyResult
	Err    error
}

// ApplyEach applies each record as Apply does, each on its own (one
// refused, say by a full disk, does not stop the others), as one Pebble
// batch (a key that appears twice starts another) and one fsync for the
// lot, and returns once all that were stored are durable. A failed write
// or fsync fails every record it carried.
func (d *DB) ApplyEach(recs []KeyRecord) []Outcome {
	out := make([]Outcome, len(recs))
	if err := d.enter(); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	defer d.leave()

	// The stripes of every key are held until the batch is settled, taken
	// in stripe order: two batches never wait for each other's.
	pks := make([][]byte, len(recs))
	hs := make([]uint64, len(recs))
	sts := make([]*stripe, len(recs))
	var order []int
	held := map[int]bool{}
	for i, kr := range recs {
		pks[i] = spaceKey(spaceData, kr.Key)
		var idx int
		idx, hs[i] = d.stripeIndex(pks[i])
		sts[i] = &d.stripes[idx]
		if !held[idx] {
			held[idx] = true
			order = append(order, idx)
		}
	}
	sort.Ints(order)
	for _, idx := range order {
		d.stripes[idx].mu.Lock()
	}

	var (
		b       = d.db.NewBatch()
		pending []staged
		at      []int // the record of each staged write
		inBatch = map[string]bool{}
		written bool
	)
	commit := func() {
		if len(pending) == 0 {
			return
		}
		err := d.engine("write", func() error { return d.db.Apply(b, pebble.NoSync) })
		if err != nil {
			err = fmt.Errorf("storage: write: %w: %w", err, errcode.IO)
		}
		for j, s := range pending {
			d.settle(s, true, err)
			if err != nil {
				out[at[j]] = Outcome{Err: err}
			} else {
				out[at[j]].Result = ApplyResult{Applied: true, Current: s.rec.Version}
				written = true
			}
		}
		if !d.faults.wedged.Load() {
			b.Close()
		}
		b, pending, at = d.db.NewBatch(), pending[:0], at[:0]
		clear(inBatch)
	}
	for i, kr := range recs {
		if err := d.admit(kr.Record.Tombstone); err != nil {
			out[i].Err = fmt.Errorf("storage: key %q: %w", kr.Key, err)
			continue
		}
		if inBatch[string(pks[i])] {
			commit() // the second write of a key sees the first
		}
		s, res, err := d.stage(sts[i], hs[i], pks[i], kr.Record, b)
		switch {
		case err != nil:
			out[i].Err = fmt.Errorf("storage: key %q: %w", kr.Key, err)
		case !s.write:
			out[i].Result = res
		default:
			pending = append(pending, s)
			at = append(at, i)
			inBatch[string(pks[i])] = true
		}
	}
	commit()
	b.Close()
	for _, idx := range order {
		d.stripes[idx].mu.Unlock()
	}
	if written && d.wo.Sync {
		// The WAL is written in order: syncing a record written after the
		// batch makes every record before it durable.
		if err := d.engine("sync", func() error { return d.db.LogData([]byte{0}, pebble.Sync) }); err != nil {
			err = fmt.Errorf("storage: sync: %w: %w", err, errcode.IO)
			for i := range out {
				if out[i].Result.Applied {
					out[i] = Outcome{Err: err}
				}
			}
		}
	}
	return out
}
