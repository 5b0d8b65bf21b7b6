package tests

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/tests/harness"
)

// BenchmarkClient measures put and get through the Go client against
// three real servers on 127.0.0.1 (N=3, W=2, R=2, synced writes, 100-byte
// values, 1000 keys), from one goroutine and from 64.
//
//	go test -run '^$' -bench Client ./tests/
func BenchmarkClient(b *testing.B) {
	r := harness.NewRing(b, 1, 2, 3)
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	value := make([]byte, 100)
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("bench-key-%04d", i))
		if err := c.Put(bg, keys[i], value, 3, 2); err != nil {
			b.Fatal(err)
		}
	}
	ops := map[string]func(k []byte) error{
		"put": func(k []byte) error { return c.Put(bg, k, value, 3, 2) },
		"get": func(k []byte) error { _, err := c.Get(bg, k, 3, 2); return err },
	}
	for _, name := range []string{"put", "get"} {
		op := ops[name]
		b.Run(name+"/goroutines=1", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := op(keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/goroutines=64", func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(keys[n.Add(1)%int64(len(keys))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
