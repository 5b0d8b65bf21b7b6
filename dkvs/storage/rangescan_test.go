package storage

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// inRange reports whether p lies in [start, end) with wrap-around.
func inRange(p, start, end ring.Hash) bool {
	ge := bytes.Compare(p[:], start[:]) >= 0
	lt := bytes.Compare(p[:], end[:]) < 0
	if bytes.Compare(start[:], end[:]) < 0 {
		return ge && lt
	}
	return ge || lt
}

// scanAll returns what ScanRange finds.
func scanAll(t *testing.T, scan func(start, end ring.Hash, o RangeOptions, fn func(RangeEntry) bool) error,
	start, end ring.Hash, o RangeOptions) []indexed {
	t.Helper()
	var out []indexed
	err := scan(start, end, o, func(e RangeEntry) bool {
		if e.Pos != ring.SHA1(e.Key) {
			t.Fatalf("key %q at position %s", e.Key, e.Pos)
		}
		out = append(out, indexed{e.Pos, string(e.Key), e.Record})
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pos(b0 byte) ring.Hash { return ring.Hash{b0} }

// TestScanRange compares ScanRange with the records filtered by hand,
// over ranges with and without wrap-around, with the options.
func TestScanRange(t *testing.T) {
	d := openMem(t)
	var recs []KeyRecord
	for i := 0; i < 2000; i++ {
		r := kv.Record{Version: v(uint64(i + 1)), N: 3, Value: []byte(fmt.Sprint("value ", i))}
		if i%7 == 0 {
			r = kv.Record{Version: v(uint64(i + 1)), N: 3, Tombstone: true}
		}
		recs = append(recs, KeyRecord{Key: []byte(fmt.Sprint("key ", i)), Record: r})
	}
	if _, err := d.ApplyMany(recs); err != nil {
		t.Fatal(err)
	}
	all := model(t, d)
	var max ring.Hash
	for i := range max {
		max[i] = 0xff
	}
	mid := all[1000].pos
	cases := []struct {
		name       string
		start, end ring.Hash
	}{
		{"whole ring from zero", ring.Hash{}, ring.Hash{}},
		{"whole ring from the middle", mid, mid},
		{"first half", ring.Hash{}, pos(0x80)},
		{"one leaf of depth 10", pos(0x40), ring.Hash{0x40, 0x40}},
		{"wraps around", pos(0xc0), pos(0x40)},
		{"up to the end", pos(0xc0), ring.Hash{}},
		{"from an entry's position, inclusive, to the next, exclusive", all[10].pos, all[11].pos},
		{"the last position alone", max, ring.Hash{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want, wantLive []indexed
			// In scan order: from start on, then from zero.
			for _, wrapped := range []bool{false, true} {
				for _, e := range all {
					if inRange(e.pos, c.start, c.end) && (bytes.Compare(e.pos[:], c.start[:]) < 0) == wrapped {
						want = append(want, e)
						if !e.rec.Tombstone {
							wantLive = append(wantLive, e)
						}
					}
				}
			}
			got := scanAll(t, d.ScanRange, c.start, c.end, RangeOptions{Tombstones: true})
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %d entries, want %d", len(got), len(want))
			}
			if got := scanAll(t, d.ScanRange, c.start, c.end, RangeOptions{}); fmt.Sprint(got) != fmt.Sprint(wantLive) {
				t.Fatalf("without tombstones: got %d entries, want %d", len(got), len(wantLive))
			}
			// Resuming after each of a few entries gives the rest.
			for _, i := range []int{0, len(want) / 2, len(want) - 1} {
				if i < 0 || i >= len(want) {
					continue
				}
				got := scanAll(t, d.ScanRange, c.start, c.end, RangeOptions{Tombstones: true, After: []byte(want[i].key)})
				if fmt.Sprint(got) != fmt.Sprint(want[i+1:]) {
					t.Fatalf("after entry %d: got %d entries, want %d", i, len(got), len(want)-i-1)
				}
			}
		})
	}
	t.Run("values", func(t *testing.T) {
		n := 0
		err := d.ScanRange(pos(0x10), pos(0x30), RangeOptions{Values: true}, func(e RangeEntry) bool {
			want, _, _ := d.Get(e.Key)
			if e.Record.Version != want.Version || !bytes.Equal(e.Record.Value, want.Value) || e.Stored != len(want.Value) {
				t.Fatalf("%q: %+v, stored %d; want %+v", e.Key, e.Record, e.Stored, want)
			}
			n++
			return true
		})
		if err != nil || n == 0 {
			t.Fatalf("%d entries: %v", n, err)
		}
	})
	t.Run("stops when told", func(t *testing.T) {
		n := 0
		err := d.ScanRange(pos(0xf0), pos(0xf0), RangeOptions{Tombstones: true}, func(RangeEntry) bool { n++; return n < 3 })
		if err != nil || n != 3 {
			t.Fatalf("%d entries: %v", n, err)
		}
	})
	t.Run("resume outside the range", func(t *testing.T) {
		var outside string
		for _, e := range all {
			if !inRange(e.pos, pos(0x10), pos(0x20)) {
				outside = e.key
				break
			}
		}
		err := d.ScanRange(pos(0x10), pos(0x20), RangeOptions{After: []byte(outside)}, func(RangeEntry) bool { return true })
		if !errors.Is(err, errcode.InvalidArg) {
			t.Fatalf("resume after a key outside the range: %v", err)
		}
	})
}

// TestSnapshot: a snapshot reads the store as it was, while writes go on,
// until it is closed; DB.Close closes the snapshots left open.
func TestSnapshot(t *testing.T) {
	d, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		d.Apply([]byte(fmt.Sprint("k", i)), rec(1, "before"))
	}
	s, err := d.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i += 2 {
		d.Apply([]byte(fmt.Sprint("k", i)), rec(2, "after"))
	}
	d.Apply([]byte("new"), rec(2, "after"))
	d.Apply([]byte("k1"), tomb(3))
	n := 0
	err = s.ScanRange(ring.Hash{}, ring.Hash{}, RangeOptions{Values: true}, func(e RangeEntry) bool {
		if string(e.Record.Value) != "before" || e.Record.Version != v(1) {
			t.Fatalf("%q in the snapshot: %+v", e.Key, e.Record)
		}
		n++
		return true
	})
	if err != nil || n != 100 {
		t.Fatalf("snapshot: %d entries: %v", n, err)
	}
	if got, found, err := s.Get([]byte("k0")); err != nil || !found || string(got.Value) != "before" {
		t.Fatalf("snapshot get k0: %q %v %v", got.Value, found, err)
	}
	if _, found, _ := s.Get([]byte("new")); found {
		t.Fatal("snapshot holds a later key")
	}
	if got, _, _ := d.Get([]byte("k0")); string(got.Value) != "after" {
		t.Fatalf("store get k0: %q", got.Value)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, _, err := s.Get([]byte("k0")); !errors.Is(err, ErrSnapshotClosed) {
		t.Fatalf("get after close: %v", err)
	}
	left, err := d.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("close with a snapshot open: %v", err)
	}
	if err := left.ScanRange(ring.Hash{}, ring.Hash{}, RangeOptions{}, func(RangeEntry) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("snapshot scan after the store closed: %v", err)
	}
	if err := left.Close(); err != nil {
		t.Fatalf("snapshot close after the store closed: %v", err)
	}
	if _, err := d.Snapshot(); !errors.Is(err, ErrClosed) {
		t.Fatalf("snapshot of a closed store: %v", err)
	}
}

// TestCloseWhileScanningSnapshots: DB.Close waits for the scans of its
// snapshots under way and closes the snapshots; later scans fail with
// ErrClosed, none panics on a closed Pebble snapshot.
func TestCloseWhileScanningSnapshots(t *testing.T) {
	d, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		d.Apply([]byte(fmt.Sprint("k", i)), rec(1, "v"))
	}
	var wg sync.WaitGroup
	scanned := make(chan struct{}, 4)
	for g := 0; g < 4; g++ {
		s, err := d.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := s.ScanRange(ring.Hash{}, ring.Hash{}, RangeOptions{Values: true}, func(RangeEntry) bool { return true })
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i == 0 {
					scanned <- struct{}{}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-scanned
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}
