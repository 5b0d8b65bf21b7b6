package storage

import "sync"

// numStripes is the number of locks writes of different keys spread over.
const numStripes = 512

// headerCacheSize bounds how many stored headers the engine remembers in
// all: 64 Ki entries of at most maxCachedKey key bytes each, a few MiB for
// short keys and about 20 MiB at most.
const headerCacheSize = 64 << 10

// maxCachedKey is the longest Pebble key whose header is cached: a cache of
// a few 64 KiB keys would cost more memory than it saves lookups.
const maxCachedKey = 256

// stripe orders the writes of the keys that hash to it and caches the
// headers stored under recently written or checked keys.
//
// Every write to Pebble's data and hint spaces (and so to the ring index,
// written in the same batches) goes through apply or deleteIf, which hold
// the key's stripe lock while they read the stored header, write, and
// update the cache, so a cached entry is always what Pebble holds. That
// spares a write of a recently seen key its read of the stored version
// (newest wins), which was the largest part of a write's CPU for keys
// written again and again.
type stripe struct {
	mu    sync.Mutex
	slots []slot // direct-mapped by the key's hash; guarded by mu
}

// slot caches what Pebble holds under one key: a header, or nothing.
type slot struct {
	key   []byte // nil: the slot is empty
	h     header
	found bool
}

// lookup returns the cached entry for pk, which hashes to h. st.mu must
// be held.
func (st *stripe) lookup(pk []byte, h uint64) (header, bool, bool) {
	if len(st.slots) == 0 {
		return header{}, false, false
	}
	s := &st.slots[h%uint64(len(st.slots))]
	if s.key == nil || string(s.key) != string(pk) {
		return header{}, false, false
	}
	return s.h, s.found, true
}

// remember caches what Pebble holds under pk, which hashes to h, in place
// of whatever the key's slot held. size is the number of slots a stripe
// has (zero: no cache). st.mu must be held.
func (st *stripe) remember(pk []byte, h uint64, hd header, found bool, size int) {
	if len(pk) > maxCachedKey || size <= 0 {
		return
	}
	if len(st.slots) != size {
		st.slots = make([]slot, size)
	}
	s := &st.slots[h%uint64(size)]
	s.key = append(s.key[:0], pk...)
	s.h, s.found = hd, found
}

// forget drops what the cache holds for pk, which hashes to h, after a
// write whose outcome in Pebble is unknown. st.mu must be held.
func (st *stripe) forget(pk []byte, h uint64) {
	if len(st.slots) == 0 {
		return
	}
	if s := &st.slots[h%uint64(len(st.slots))]; string(s.key) == string(pk) {
		s.key = nil
	}
}
