package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// spaceConsensus holds the ring's consensus log and state (package
// membership): opaque keys and values, in the same store as the records
// so that a server's whole state lives in one data directory and one
// write-ahead log.
const spaceConsensus = 'c'

// Consensus is the key space of the ring's consensus. Every write is
// synced (unless the store was opened with NoSync): the consensus must
// not forget what it acknowledged.
type Consensus struct{ d *DB }

// Consensus returns the store's consensus key space.
func (d *DB) Consensus() Consensus { return Consensus{d} }

// Get returns the value stored under key.
func (c Consensus) Get(key []byte) ([]byte, bool, error) {
	d := c.d
	if err := d.enter(); err != nil {
		return nil, false, err
	}
	defer d.leave()
	v, closer, err := d.db.Get(spaceKey(spaceConsensus, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage: consensus get: %w: %w", err, errcode.IO)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// Set stores the pairs (key, value) in one synced batch.
func (c Consensus) Set(pairs ...[2][]byte) error {
	d := c.d
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	b := d.db.NewBatch()
	defer b.Close()
	for _, p := range pairs {
		if err := b.Set(spaceKey(spaceConsensus, p[0]), p[1], nil); err != nil {
			return fmt.Errorf("storage: consensus set: %w: %w", err, errcode.IO)
		}
	}
	if err := b.Commit(d.wo); err != nil {
		return fmt.Errorf("storage: consensus set: %w: %w", err, errcode.IO)
	}
	return nil
}

// DeleteRange removes the keys in [from, to), synced.
func (c Consensus) DeleteRange(from, to []byte) error {
	d := c.d
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	if err := d.db.DeleteRange(spaceKey(spaceConsensus, from), spaceKey(spaceConsensus, to), d.wo); err != nil {
		return fmt.Errorf("storage: consensus delete: %w: %w", err, errcode.IO)
	}
	return nil
}

// Scan calls fn with the pairs whose keys are in [from, to), in order,
// until fn returns false; reverse walks them backwards. The slices passed
// to fn are valid only during the call.
func (c Consensus) Scan(from, to []byte, reverse bool, fn func(key, value []byte) bool) error {
	d := c.d
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: spaceKey(spaceConsensus, from), UpperBound: spaceKey(spaceConsensus, to)})
	if err != nil {
		return fmt.Errorf("storage: consensus scan: %w: %w", err, errcode.IO)
	}
	valid := it.First()
	if reverse {
		valid = it.Last()
	}
	for ; valid; valid = step(it, reverse) {
		if !fn(it.Key()[1:], it.Value()) {
			break
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("storage: consensus scan: %w: %w", err, errcode.IO)
	}
	return nil
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}
