package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// BenchmarkLeafRange measures what finding the records of one
// anti-entropy leaf (1/1024 of the ring) costs in stores of 100,000 and
// 1,000,000 keys of 100 bytes, compacted: through the ring index
// (ScanRange, what a diff does now), and by a scan of the whole store in
// key order keeping the keys whose position falls in the leaf (what a
// diff did before the index, on each side, for each request). It reports
// the records found per scan.
//
//	go test -run '^$' -bench LeafRange ./dkvs/storage/
func BenchmarkLeafRange(b *testing.B) {
	// The leaf: positions [0x40 00..., 0x40 40...), 1/1024 of the ring.
	start, end := ring.Hash{0x40}, ring.Hash{0x40, 0x40}
	for _, keys := range []int{100000, 1000000} {
		d, err := Open(Options{Dir: b.TempDir(), NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		recs := make([]KeyRecord, 0, 1000)
		for k := 0; k < keys; k++ {
			recs = append(recs, KeyRecord{Key: fmt.Appendf(nil, "bench-%07d", k),
				Record: kv.Record{Version: kv.Version{Wall: uint64(1_700_000_000_000 + k), Writer: 7}, N: 3, Value: make([]byte, 100)}})
			if len(recs) == cap(recs) {
				if _, err := d.ApplyMany(recs); err != nil {
					b.Fatal(err)
				}
				recs = recs[:0]
			}
		}
		if err := d.db.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := d.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name string
			scan func(fn func(key []byte)) error
		}{
			{"index", func(fn func(key []byte)) error {
				return d.ScanRange(start, end, RangeOptions{Tombstones: true}, func(e RangeEntry) bool {
					fn(e.Key)
					return true
				})
			}},
			{"whole store", func(fn func(key []byte)) error {
				return d.Scan(nil, ScanOptions{Tombstones: true, NoValues: true}, func(key []byte, _ kv.Record) bool {
					if p := ring.SHA1(key); inRange(p, start, end) {
						fn(key)
					}
					return true
				})
			}},
		} {
			b.Run(fmt.Sprintf("keys=%d/%s", keys, c.name), func(b *testing.B) {
				found := 0
				for i := 0; i < b.N; i++ {
					found = 0
					if err := c.scan(func([]byte) { found++ }); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(found), "records/op")
			})
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
