package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// The ring index. Records are stored in key order, but the ring places
// keys by the SHA-1 of the key, and anti-entropy's Merkle leaves and the
// ranges a server hands over are ranges of those positions. Without an
// index, finding the records of one range reads the whole store. So every
// data record (tombstones included; hints are not data) has an entry
// in its own key space, ordered by ring position:
//
//	'r' SHA-1(key) key     index value (below)
//
// The entry is written in the same Pebble batch as its record, and
// removed in the same batch as the record, so the two never disagree,
// even after a crash. Its value is the record's header, which is all that
// building a Merkle tree or answering a diff needs:
//
//	offset size
//	0      1    flags, as the record's
//	1      1    N
//	2      20   version (kv.Version.AppendBinary)
//	22     4    bytes of the stored value (big endian)
//
// With 100-byte values an entry is about a third the size of its record
// (key, 20 bytes of position, 26 of value), and a scan of one range reads
// only that range's entries.
const (
	spaceRing      = 'r'
	indexValueSize = crcOffset + 4
)

// formatNoIndex is the format of data directories written before the ring
// index existed. Open builds their index (one scan of the records) and
// moves them to FormatVersion.
const formatNoIndex = 1

// indexKey appends the ring index key of the user key key at position pos.
func indexKey(dst []byte, pos ring.Hash, key []byte) []byte {
	dst = append(dst, spaceRing)
	dst = append(dst, pos[:]...)
	return append(dst, key...)
}

// putIndexValue writes into b, of indexValueSize bytes, the index value
// of a record in its stored form enc.
func putIndexValue(b, enc []byte) {
	copy(b, enc[:crcOffset])
	binary.BigEndian.PutUint32(b[crcOffset:], uint32(len(enc)-headerSize))
}

// decodeIndexValue decodes an index value into a record header.
func decodeIndexValue(b []byte) (header, error) {
	if len(b) != indexValueSize || b[0]&^(flagTombstone|flagCompressed) != 0 {
		return header{}, ErrCorrupt
	}
	v, _ := kv.DecodeVersion(b[2:crcOffset])
	return header{version: v, tombstone: b[0]&flagTombstone != 0, n: b[1],
		stored: int(binary.BigEndian.Uint32(b[crcOffset:]))}, nil
}

// indexSet adds to b the index entry of the record enc that b stores
// under the Pebble key pk; keys outside the data space (hints) have none.
// The position is the same for every version of a key, so the entry
// replaces the previous one without a delete.
func indexSet(b *pebble.Batch, pk, enc []byte) error {
	if pk[0] != spaceData {
		return nil
	}
	// Written in place in the batch: no allocation on the write path.
	key := pk[1:]
	pos := ring.SHA1(key)
	op := b.SetDeferred(1+ring.HashSize+len(key), indexValueSize)
	op.Key[0] = spaceRing
	copy(op.Key[1:], pos[:])
	copy(op.Key[1+ring.HashSize:], key)
	putIndexValue(op.Value, enc)
	return op.Finish()
}

// deleteRecord removes whatever is stored under the Pebble key pk and, for
// a data record, its index entry, in one batch.
func (d *DB) deleteRecord(pk []byte) error {
	b := d.db.NewBatch()
	defer b.Close()
	if err := b.Delete(pk, nil); err != nil {
		return err
	}
	if pk[0] == spaceData {
		key := pk[1:]
		if err := b.Delete(indexKey(nil, ring.SHA1(key), key), nil); err != nil {
			return err
		}
	}
	return d.db.Apply(b, d.wo)
}

// indexBuildBatch bounds the bytes of one batch of the index build.
var indexBuildBatch = 4 << 20 // a variable for tests

// buildIndex gives a data directory of format formatNoIndex its ring
// index: one scan of the records, written in batches, and then the marker
// of FormatVersion. A crash part way leaves the old marker, and the next
// Open starts over: it first drops whatever entries a previous attempt
// left, which may name records changed since by a dkvs of the old format.
func buildIndex(pdb *pebble.DB, dir string, log *slog.Logger) error {
	start := time.Now()
	fail := func(err error) error {
		return fmt.Errorf("storage: build the ring index of %s: %w: %w", dir, err, errcode.IO)
	}
	if err := pdb.DeleteRange([]byte{spaceRing}, []byte{spaceRing + 1}, pebble.NoSync); err != nil {
		return fail(err)
	}
	it, err := pdb.NewIter(spaceBounds(spaceData, nil))
	if err != nil {
		return fail(err)
	}
	defer it.Close()
	b := pdb.NewBatch()
	defer func() { b.Close() }()
	keys := 0
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fail(err)
		}
		if _, err := decodeHeader(v); err != nil {
			return fmt.Errorf("storage: build the ring index of %s: key %q: %w", dir, it.Key()[1:], err)
		}
		if err := indexSet(b, it.Key(), v); err != nil {
			return fail(err)
		}
		keys++
		if b.Len() >= indexBuildBatch {
			// Not synced: the marker written last is, and the log is
			// written in order.
			if err := b.Commit(pebble.NoSync); err != nil {
				return fail(err)
			}
			b.Close()
			b = pdb.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return fail(err)
	}
	if err := b.Set(formatKey, []byte(strconv.Itoa(FormatVersion)), nil); err != nil {
		return fail(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fail(err)
	}
	if log != nil {
		log.Info("storage: built the ring index of a data directory of format 1",
			"dir", dir, "keys", keys, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// CheckIndex reports the first disagreement between the ring index and the
// records: a record without its entry or with another header, or an
// entry without its record. It reads the whole store, from a consistent
// view: a check for tests and for an operator who suspects the index.
func (d *DB) CheckIndex() error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	snap := d.db.NewSnapshot()
	defer snap.Close()
	records, err := checkRecords(snap)
	if err != nil {
		return err
	}
	it, err := snap.NewIter(spaceBounds(spaceRing, nil))
	if err != nil {
		return fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	defer it.Close()
	entries := 0
	for it.First(); it.Valid(); it.Next() {
		entries++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	// Every record has its own entry, so equal counts leave no entry
	// without a record.
	if entries != records {
		return fmt.Errorf("storage: the ring index has %d entries for %d records: %w", entries, records, ErrCorrupt)
	}
	return nil
}

// checkRecords checks that each record has its index entry, with the
// record's header, and returns how many records there are.
func checkRecords(r pebble.Reader) (int, error) {
	it, err := r.NewIter(spaceBounds(spaceData, nil))
	if err != nil {
		return 0, fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	defer it.Close()
	n := 0
	var ik []byte
	for it.First(); it.Valid(); it.Next() {
		key := it.Key()[1:]
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("storage: %w: %w", err, errcode.IO)
		}
		want, err := decodeHeader(v)
		if err != nil {
			return 0, fmt.Errorf("storage: key %q: %w", key, err)
		}
		ik = indexKey(ik[:0], ring.SHA1(key), key)
		iv, closer, err := r.Get(ik)
		if errors.Is(err, pebble.ErrNotFound) {
			return 0, fmt.Errorf("storage: key %q has no ring index entry: %w", key, ErrCorrupt)
		}
		if err != nil {
			return 0, fmt.Errorf("storage: %w: %w", err, errcode.IO)
		}
		got, err := decodeIndexValue(iv)
		closer.Close()
		if err != nil || got != want {
			return 0, fmt.Errorf("storage: key %q: ring index entry %+v, record %+v: %w", key, got, want, ErrCorrupt)
		}
		n++
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	return n, nil
}
