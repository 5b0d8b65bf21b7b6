package storage

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// BenchmarkFootprint measures the disk a store takes per key: it loads
// keys of 1 KiB (and 100-byte) incompressible values into a fresh data
// directory, 1000 records per synced ApplyMany as anti-entropy writes them,
// and reports, per key, the blocks allocated (as du counts them) and the
// files' apparent size, once loaded while the store is open, and after a
// clean Close; data-B/key is the key and value bytes themselves.
//
//	go test -run '^$' -bench Footprint -benchtime 1x ./dkvs/storage/
func BenchmarkFootprint(b *testing.B) {
	for _, value := range []int{1024, 100} {
		for _, keys := range []int{1000, 100000, 1000000} {
			b.Run(fmt.Sprintf("value=%d/keys=%d", value, keys), func(b *testing.B) {
				for range b.N {
					footprint(b, keys, value)
				}
			})
		}
	}
}

func footprint(b *testing.B, keys, value int) {
	dir := b.TempDir()
	d, err := Open(Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]KeyRecord, 0, 1000)
	data := 0
	for i := 0; i < keys; i++ {
		val := make([]byte, value)
		for j := range val {
			val[j] = byte(rng.Uint32())
		}
		k := []byte(fmt.Sprintf("key-%07d", i))
		data += len(k) + len(val)
		recs = append(recs, KeyRecord{Key: k, Record: kv.Record{Version: v(uint64(i + 1)), Value: val, N: 3}})
		if len(recs) == cap(recs) || i == keys-1 {
			if _, err := d.ApplyMany(recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	openDU, openApparent := diskUsage(b, dir)
	if err := d.Close(); err != nil {
		b.Fatal(err)
	}
	closedDU, closedApparent := diskUsage(b, dir)
	per := func(n int64) float64 { return float64(n) / float64(keys) }
	b.ReportMetric(float64(data)/float64(keys), "data-B/key")
	b.ReportMetric(per(openDU), "open-du-B/key")
	b.ReportMetric(per(openApparent), "open-apparent-B/key")
	b.ReportMetric(per(closedDU), "closed-du-B/key")
	b.ReportMetric(per(closedApparent), "closed-apparent-B/key")
	b.ReportMetric(float64(closedDU)/float64(data), "closed-du/data")
}

// diskUsage returns the blocks allocated to the files under dir (in
// bytes, as du counts them) and their apparent size.
func diskUsage(tb testing.TB, dir string) (du, apparent int64) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			du += st.Blocks * 512
		}
		if !e.IsDir() {
			apparent += info.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return du, apparent
}
