package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// BenchmarkIndexFootprint reports what a key costs on disk: it loads 1,000,000
// keys as dkvs-client bench writes them ("bench-" and six digits, 100
// random bytes of value, N=3) in batches of 1000, compacts the store, and
// divides Pebble's estimate of the tables' size in the data space, in the
// ring index and in all by the keys. The write-ahead log is not counted
// (it is recycled), nor memory: Pebble's memtables and block cache are
// bounded (memTableSize each, and the cache size) whatever the keys.
//
//	go test -run '^$' -bench IndexFootprint -benchtime 1x ./dkvs/storage/
func BenchmarkIndexFootprint(b *testing.B) {
	const keys = 1000000
	for i := 0; i < b.N; i++ {
		d, err := Open(Options{Dir: b.TempDir(), NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.NewChaCha8([32]byte{1})
		recs := make([]KeyRecord, 0, 1000)
		for k := 0; k < keys; k++ {
			key := fmt.Appendf(nil, "bench-%06d", k)
			val := make([]byte, 100)
			rng.Read(val)
			recs = append(recs, KeyRecord{Key: key, Record: kv.Record{Version: kv.Version{Wall: uint64(1_700_000_000_000 + k), Writer: 7}, N: 3, Value: val}})
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
		size := func(lo, hi byte) float64 {
			n, err := d.db.EstimateDiskUsage([]byte{lo}, []byte{hi})
			if err != nil {
				b.Fatal(err)
			}
			return float64(n) / keys
		}
		b.ReportMetric(size(spaceData, spaceData+1), "data-B/key")
		b.ReportMetric(size(spaceRing, spaceRing+1), "index-B/key")
		b.ReportMetric(size(0, 0xff), "tables-B/key")
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
