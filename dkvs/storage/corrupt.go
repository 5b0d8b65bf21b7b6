package storage

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dkvs/dkvs/dkvs/ring"
)

// A record whose checksum fails (or whose header cannot be decoded) is
// never served. The read that finds it sets it aside in the quarantine
// key space ('q' followed by the record's Pebble key, the raw bytes kept
// for whoever wants to look) and answers ErrCorrupt; the coordinator
// counts that as a failed replica, and sends the replica the newest
// version it found (read repair). With the record gone, a repair of any
// version is applied, the very version that was damaged included, which
// newest-wins would otherwise refuse as not newer; anti-entropy, which
// compares versions and not values, sees the key missing and pulls it
// too. Until the key is written again, reads of it answer ErrCorrupt
// rather than "not found", so that a key whose only copy was damaged (N=1)
// is not reported absent; the write that repairs it drops its quarantine
// entry in the same batch.

const spaceQuarantine = 'q'

// quarantine is the set of data keys set aside and not written since.
type quarantine struct {
	mu    sync.Mutex
	keys  map[string]struct{} // guarded by mu
	n     atomic.Int64        // len(keys), read by every write without the lock
	found atomic.Int64        // records found corrupt since Open
}

func (q *quarantine) has(pk []byte) bool {
	if q.n.Load() == 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.keys[string(pk)]
	return ok
}

func (q *quarantine) add(pk []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.keys == nil {
		q.keys = map[string]struct{}{}
	}
	if _, ok := q.keys[string(pk)]; !ok {
		q.keys[string(pk)] = struct{}{}
		q.n.Add(1)
	}
}

func (q *quarantine) remove(pk []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.keys[string(pk)]; ok {
		delete(q.keys, string(pk))
		q.n.Add(-1)
	}
}

// loadQuarantine reads the data keys set aside by earlier runs and not
// repaired since.
func (d *DB) loadQuarantine() error {
	it, err := d.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{spaceQuarantine, spaceData},
		UpperBound: []byte{spaceQuarantine, spaceData + 1},
	})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		d.quar.add(it.Key()[1:])
	}
	return errors.Join(it.Error(), it.Close())
}

// errCorrupt is the error of a read that found the record of key corrupt.
func errCorrupt(key []byte, repaired string) error {
	return fmt.Errorf("storage: key %q: %w (%s)", key, ErrCorrupt, repaired)
}

// corruptFound sets aside the record under pk, which a read without the
// key's lock found corrupt.
func (d *DB) corruptFound(pk []byte) {
	st, h := d.stripe(pk)
	st.mu.Lock()
	d.setAsideLocked(st, pk, h)
	st.mu.Unlock()
}

// setAsideLocked moves the record under pk to the quarantine space if it
// is still corrupt (a write may have replaced it since it was read). The
// key's stripe lock must be held. The move is not synced: if it is lost
// in a crash, the record is found corrupt again.
func (d *DB) setAsideLocked(st *stripe, pk []byte, h uint64) {
	v, closer, err := d.db.Get(pk)
	if err != nil {
		return // gone meanwhile, or a read error, which the read reports
	}
	raw := append([]byte(nil), v...)
	closer.Close()
	if _, err := decodeRecord(raw); err == nil {
		return // replaced by a good record meanwhile
	}
	d.quar.found.Add(1)
	if d.log != nil {
		d.log.Warn("storage: corrupt record set aside", "key", fmt.Sprintf("%q", pk[1:]), "space", string(pk[0]))
	}
	if d.admit(true) != nil {
		// No write goes to the engine: remember it, so reads answer
		// ErrCorrupt; the record stays where it is.
		if pk[0] == spaceData {
			d.quar.add(pk)
		}
		return
	}
	b := d.db.NewBatch()
	b.Set(spaceKey(spaceQuarantine, pk), raw, nil)
	b.Delete(pk, nil)
	if pk[0] == spaceData {
		// The record's ring index entry goes with it (repair writes both).
		key := pk[1:]
		b.Delete(indexKey(nil, ring.SHA1(key), key), nil)
	}
	err = d.engine("write", func() error { return d.db.Apply(b, pebble.NoSync) })
	b.Close()
	if err != nil {
		st.forget(pk, h)
		return
	}
	switch pk[0] {
	case spaceData:
		if hd, err := decodeHeader(raw); err == nil {
			d.account(hd, -1)
		}
		d.quar.add(pk)
	case spaceHint:
		if i := bytes.IndexByte(pk[1:], 0); i >= 0 {
			d.hintMu.Lock()
			d.hints[string(pk[1:1+i])]--
			d.hintMu.Unlock()
		}
	}
	st.remember(pk, h, header{}, false, d.perCache)
}

// CorruptForTesting flips one bit of the value stored under key as the
// engine holds it, below the record's checksum, as damage the engine's
// own checksums do not see (memory, a bug) would. It is for tests of the
// detection and repair of damaged records, never for a server.
func (d *DB) CorruptForTesting(key []byte) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	pk := spaceKey(spaceData, key)
	st, h := d.stripe(pk)
	st.mu.Lock()
	defer st.mu.Unlock()
	v, closer, err := d.db.Get(pk)
	if err != nil {
		return err
	}
	raw := append([]byte(nil), v...)
	closer.Close()
	raw[len(raw)-1] ^= 0x01 // the last byte of the value (or of the checksum, for an empty value)
	st.forget(pk, h)
	return d.db.Set(pk, raw, pebble.Sync)
}
