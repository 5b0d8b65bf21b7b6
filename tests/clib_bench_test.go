package tests

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/tests/harness"
)

// BenchmarkCABIGet compares one get through the C ABI of libdkvs.so
// (dkvs_get and dkvs_free, timed with clock_gettime inside
// tests/c/bench_get.c) with the same get through the Go client, against
// the same live server: a one-server ring, N=R=1, a 100-byte value.
//
//	make bench-c    # go test -run '^$' -bench CABIGet -benchtime 100000x ./tests/
func BenchmarkCABIGet(b *testing.B) {
	prog := compileC(b, cTest("bench_get.c"))
	r := harness.NewRing(b, 1)
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	key, value := []byte("bench-key"), make([]byte, 100)
	if err := c.Put(bg, key, value, 1, 1); err != nil {
		b.Fatal(err)
	}
	b.Run("go", func(b *testing.B) {
		for i := 0; i < 1000; i++ {
			c.Get(bg, key, 1, 1)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.Get(bg, key, 1, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("c-abi", func(b *testing.B) {
		res := harness.Run(b, r.Dir, prog, r.ServersFile(), strconv.Itoa(b.N))
		m := regexp.MustCompile(`ns_per_get=(\d+)`).FindStringSubmatch(res.Stdout)
		if res.Code != 0 || m == nil {
			b.Fatalf("bench_get: %s", res)
		}
		ns, _ := strconv.ParseFloat(m[1], 64)
		b.ReportMetric(ns, "ns/op") // the C loop's own time, without process start
	})
}
