package storage

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
)

// Hints are records a server keeps for another server (the target) that
// could not take them, until they can be handed over. They live in their
// own key space: they are not the server's data, are not counted in its
// stats and do not appear in its dump. Like data, they are written with
// synced writes and survive a restart.

func hintPrefix(target string) []byte {
	b := make([]byte, 0, 2+len(target))
	b = append(b, spaceHint)
	b = append(b, target...)
	return append(b, 0)
}

func hintKey(target string, key []byte) []byte {
	return append(hintPrefix(target), key...)
}

// countHints initialises the per-target hint counts from what is stored.
func (d *DB) countHints() error {
	it, err := d.db.NewIter(spaceBounds(spaceHint, nil))
	if err != nil {
		return fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[1:]
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			return fmt.Errorf("storage: hint key %q: %w", k, ErrCorrupt)
		}
		d.hints[string(k[:i])]++
	}
	return it.Error()
}

// ApplyHint stores rec for target under key if it is newer than a hint
// already held for that key, durably (like Apply).
func (d *DB) ApplyHint(target string, key []byte, rec kv.Record) (ApplyResult, error) {
	if err := d.enter(); err != nil {
		return ApplyResult{}, err
	}
	defer d.leave()
	if target == "" || bytes.IndexByte([]byte(target), 0) >= 0 {
		return ApplyResult{}, fmt.Errorf("storage: bad hint target %q: %w", target, errcode.InvalidArg)
	}
	res, existed, err := d.apply(hintKey(target, key), rec, false, d.wo.Sync)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("storage: hint for %s key %q: %w", target, key, err)
	}
	if res.Applied && !existed {
		d.hintMu.Lock()
		d.hints[target]++
		d.hintMu.Unlock()
	}
	return res, nil
}

// HintCounts returns how many hints are held for each target.
func (d *DB) HintCounts() map[string]int64 {
	d.hintMu.Lock()
	defer d.hintMu.Unlock()
	out := make(map[string]int64, len(d.hints))
	for t, n := range d.hints {
		if n > 0 {
			out[t] = n
		}
	}
	return out
}

// ScanHints calls fn for the hints held for target in key order until fn
// returns false.
func (d *DB) ScanHints(target string, fn func(key []byte, rec kv.Record) bool) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	corrupt, err := d.scanHints(target, fn)
	for _, pk := range corrupt {
		d.corruptFound(pk) // a damaged hint is dropped: anti-entropy repairs its target
	}
	return err
}

func (d *DB) scanHints(target string, fn func(key []byte, rec kv.Record) bool) (corrupt [][]byte, err error) {
	prefix := hintPrefix(target)
	upper := append(append([]byte(nil), prefix[:len(prefix)-1]...), 1)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", d.readErr(err))
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return corrupt, fmt.Errorf("storage: %w", d.readErr(err))
		}
		rec, err := decodeRecord(v)
		if err != nil {
			corrupt = append(corrupt, append([]byte(nil), it.Key()...))
			continue
		}
		if !fn(it.Key()[len(prefix):], rec) {
			break
		}
	}
	if err := it.Error(); err != nil {
		return corrupt, fmt.Errorf("storage: %w", d.readErr(err))
	}
	return corrupt, nil
}

// DeleteHint removes the hint for target and key if it still holds
// version v: a newer hint that arrived meanwhile is kept.
func (d *DB) DeleteHint(target string, key []byte, v kv.Version) (bool, error) {
	if err := d.enter(); err != nil {
		return false, err
	}
	defer d.leave()
	deleted, err := d.deleteIf(hintKey(target, key), func(h header) bool { return h.version == v })
	if err != nil {
		return false, fmt.Errorf("storage: hint for %s key %q: %w", target, key, err)
	}
	if deleted {
		d.hintMu.Lock()
		d.hints[target]--
		d.hintMu.Unlock()
	}
	return deleted, nil
}

// PurgeTombstone removes the record of key if it is still the tombstone of
// version v (garbage collection of deletions every replica has).
func (d *DB) PurgeTombstone(key []byte, v kv.Version) (bool, error) {
	if err := d.enter(); err != nil {
		return false, err
	}
	defer d.leave()
	deleted, err := d.deleteIf(spaceKey(spaceData, key), func(h header) bool { return h.tombstone && h.version == v })
	if err != nil {
		return false, fmt.Errorf("storage: purge %q: %w", key, err)
	}
	if deleted {
		d.tombs.Add(-1)
	}
	return deleted, nil
}

// deleteIf deletes the Pebble key pk if its record's header satisfies ok.
func (d *DB) deleteIf(pk []byte, ok func(header) bool) (bool, error) {
	if err := d.admit(true); err != nil {
		return false, err
	}
	st, sh := d.stripe(pk)
	st.mu.Lock()
	defer st.mu.Unlock()
	h, found, err := d.lockedHeader(st, pk, sh)
	if err != nil || !found || !ok(h) {
		return false, err
	}
	if err := d.engine("write", func() error { return d.deleteRecord(pk) }); err != nil {
		st.forget(pk, sh)
		if errors.Is(err, pebble.ErrClosed) {
			return false, ErrClosed
		}
		return false, fmt.Errorf("%w: %w", err, errcode.IO)
	}
	st.remember(pk, sh, header{}, false, d.perCache)
	return true, nil
}
