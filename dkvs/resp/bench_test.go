package resp

import (
	"bufio"
	"fmt"
	"net"
	"testing"
)

// BenchmarkUnpipelined measures a client that sends one command and waits
// for its reply before the next (redis-benchmark without -P), against the
// in-memory backend: what the server costs per command, without the ring.
// Run with -benchmem: allocations per command are part of the cost.
func BenchmarkUnpipelined(b *testing.B) {
	for _, bc := range []struct {
		name string
		cmd  string
	}{
		{"GET", bulkCmd("GET", "key:000000000042")},
		{"SET", bulkCmd("SET", "key:000000000042", string(make([]byte, 100)))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFake()
			f.set("key:000000000042", string(make([]byte, 100)))
			_, addr := startServer(b, f, Options{})
			b.ReportAllocs()
			b.SetParallelism(25) // 50 clients on 2 cores, as with redis-benchmark -c 50
			b.RunParallel(func(pb *testing.PB) {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer nc.Close()
				r := bufio.NewReader(nc)
				cmd := []byte(bc.cmd)
				for pb.Next() {
					if _, err := nc.Write(cmd); err != nil {
						b.Error(err)
						return
					}
					if err := skipReply(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// skipReply reads one reply of a simple type or a bulk string.
func skipReply(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	switch line[0] {
	case '+', ':':
		return nil
	case '$':
		var n int
		if _, err := fmt.Sscanf(string(line[1:]), "%d", &n); err != nil {
			return err
		}
		if n < 0 {
			return nil
		}
		_, err = r.Discard(n + 2)
		return err
	default:
		return fmt.Errorf("reply %q", line)
	}
}
