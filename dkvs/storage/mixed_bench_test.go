package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// BenchmarkMixed measures the engine's own cost per operation (half gets,
// half newer applies, uniform keys, 100-byte values, no fsync) over 1,000
// and 1,000,000 stored keys, with the default block cache and with the
// old default of 64 MiB: the store's part of how flat the cost is.
//
//	go test -run '^$' -bench Mixed -benchtime 400000x ./dkvs/storage/
func BenchmarkMixed(b *testing.B) {
	for _, keys := range []int{1000, 1000000} {
		for _, cache := range []int64{DefaultCacheSize, 64 << 20} {
			b.Run(fmt.Sprintf("keys=%d/cache=%dMiB", keys, cache>>20), func(b *testing.B) {
				benchMixed(b, keys, cache)
			})
		}
	}
}

func benchMixed(b *testing.B, keys int, cache int64) {
	d, err := Open(Options{Dir: b.TempDir(), NoSync: true, CacheSize: cache})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	val := make([]byte, 100)
	recs := make([]KeyRecord, 0, 1000)
	for i := 0; i < keys; i++ {
		recs = append(recs, KeyRecord{Key: []byte(fmt.Sprintf("key-%07d", i)), Record: kv.Record{Version: v(1), Value: val}})
		if len(recs) == cap(recs) || i == keys-1 {
			if _, err := d.ApplyMany(recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	// Time the steady state, not the compactions the load set off.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m := d.db.Metrics(); m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			break
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := []byte(fmt.Sprintf("key-%07d", rng.IntN(keys)))
		if i%2 == 0 {
			if _, _, err := d.Get(key); err != nil {
				b.Fatal(err)
			}
		} else if _, err := d.Apply(key, kv.Record{Version: v(uint64(i + 2)), Value: val}); err != nil {
			b.Fatal(err)
		}
	}
}
