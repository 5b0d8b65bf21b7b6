package tests

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/tests/harness"
)

// benchRing starts three servers with the given options and a client with
// keys keys of 100 bytes written (N=3, W=2).
func benchRing(b *testing.B, keys int, serverArgs ...string) (*dkvs.Client, [][]byte) {
	r := harness.NewRing(b, 1, 2, 3)
	r.Args = serverArgs
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	value := make([]byte, 100)
	ks := make([][]byte, keys)
	for i := range ks {
		ks[i] = []byte(fmt.Sprintf("bench-key-%07d", i))
	}
	var next atomic.Int64
	done := make(chan error, 32)
	for g := 0; g < 32; g++ {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(ks)) {
					done <- nil
					return
				}
				if err := c.Put(bg, ks[i], value, 3, 2); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	for g := 0; g < 32; g++ {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	return c, ks
}

// runOp runs op on b.N keys from the given number of goroutines and
// reports the 50th and 99th percentile latencies besides ns/op.
func runOp(b *testing.B, goroutines int, op func(k []byte) error, keys [][]byte) {
	var mu sync.Mutex
	var all []time.Duration
	record := func(lat []time.Duration) {
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	}
	if goroutines == 1 {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if err := op(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		record(lat)
	} else {
		var n atomic.Int64
		b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			var lat []time.Duration
			defer func() { record(lat) }()
			for pb.Next() {
				start := time.Now()
				if err := op(keys[n.Add(1)%int64(len(keys))]); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(start))
			}
		})
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkClient measures put and get through the Go client against
// three real servers on 127.0.0.1 (N=3, W=2, R=2, synced writes, 100-byte
// values, 1000 keys), from one goroutine and from 64.
//
//	go test -run '^$' -bench Client ./tests/
func BenchmarkClient(b *testing.B) {
	c, keys := benchRing(b, 1000)
	value := make([]byte, 100)
	ops := map[string]func(k []byte) error{
		"put": func(k []byte) error { return c.Put(bg, k, value, 3, 2) },
		"get": func(k []byte) error { _, err := c.Get(bg, k, 3, 2); return err },
	}
	for _, name := range []string{"put", "get"} {
		for _, g := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", name, g), func(b *testing.B) { runOp(b, g, ops[name], keys) })
		}
	}
}

// BenchmarkAntiEntropyCost measures half puts, half gets from 64
// goroutines over 20,000 keys, with anti-entropy off and with a round every
// second on every server.
//
//	go test -run '^$' -bench AntiEntropyCost -benchtime 10s ./tests/
func BenchmarkAntiEntropyCost(b *testing.B) {
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"off", []string{"--no-anti-entropy"}},
		{"every-1s", []string{"--ae-interval", "1s"}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			c, keys := benchRing(b, 20000, mode.args...)
			value := make([]byte, 100)
			var i atomic.Int64
			op := func(k []byte) error {
				if i.Add(1)%2 == 0 {
					return c.Put(bg, k, value, 3, 2)
				}
				_, err := c.Get(bg, k, 3, 2)
				return err
			}
			b.ResetTimer()
			runOp(b, 64, op, keys)
		})
	}
}

// BenchmarkLinearizable compares the linearizable mode with QUORUM at N=3
// on three servers: gets and puts of 100 bytes over 1000 keys, from one
// goroutine and from 64.
//
//	go test -run '^$' -bench Linearizable -benchtime 5s ./tests/
func BenchmarkLinearizable(b *testing.B) {
	c, keys := benchRing(b, 1000)
	value := make([]byte, 100)
	for _, mode := range []struct {
		name string
		req  dkvs.Request
	}{
		{"quorum", dkvs.Request{N: 3, Level: dkvs.Quorum}},
		{"linearizable", dkvs.Request{N: 3, Linearizable: true}},
	} {
		ops := map[string]func(k []byte) error{
			"put": func(k []byte) error { return c.PutWith(bg, k, value, mode.req) },
			"get": func(k []byte) error { _, err := c.GetWith(bg, k, mode.req); return err },
		}
		for _, name := range []string{"get", "put"} {
			for _, g := range []int{1, 64} {
				b.Run(fmt.Sprintf("%s/%s/goroutines=%d", mode.name, name, g), func(b *testing.B) {
					runOp(b, g, ops[name], keys)
				})
			}
		}
	}
}
