package tests

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

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

func runOp(b *testing.B, goroutines int, op func(k []byte) error, keys [][]byte) {
	if goroutines == 1 {
		for i := 0; i < b.N; i++ {
			if err := op(keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	var n atomic.Int64
	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(keys[n.Add(1)%int64(len(keys))]); err != nil {
				b.Error(err)
				return
			}
		}
	})
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
