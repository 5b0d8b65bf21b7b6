package datagram

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// failingConn fails its first reads with err, then reads from the real
// socket.
type failingConn struct {
	net.PacketConn
	err   error
	mu    sync.Mutex
	fails int
}

func (c *failingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.mu.Lock()
	if c.fails > 0 {
		c.fails--
		c.mu.Unlock()
		return 0, nil, &net.OpError{Op: "read", Net: "udp", Addr: c.LocalAddr(), Err: c.err}
	}
	c.mu.Unlock()
	return c.PacketConn.ReadFrom(p)
}

// TestServeWaitsOutTemporaryErrors: the read loop follows netutil's
// policy, as the native server's accept loop does, and also waits out
// the ICMP errors a packet socket may report of an earlier reply.
func TestServeWaitsOutTemporaryErrors(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		keeps bool
	}{
		{"ENOBUFS", os.NewSyscallError("recvfrom", syscall.ENOBUFS), true},
		{"ENOMEM", os.NewSyscallError("recvfrom", syscall.ENOMEM), true},
		{"ECONNREFUSED", os.NewSyscallError("recvfrom", syscall.ECONNREFUSED), true},
		{"EBADF", os.NewSyscallError("recvfrom", syscall.EBADF), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(newLocal(), Options{})
			served := make(chan error, 1)
			go func() { served <- s.Serve(&failingConn{PacketConn: pc, err: tc.err, fails: 3}) }()
			defer func() {
				s.Close()
				select {
				case err := <-served:
					if tc.keeps && !errors.Is(err, ErrServerClosed) {
						t.Errorf("Serve returned %v after Close, want ErrServerClosed", err)
					}
				case <-time.After(10 * time.Second):
					t.Error("Serve did not return after Close")
				}
			}()
			if !tc.keeps {
				select {
				case err := <-served:
					served <- err // for the deferred check
					if !errors.Is(err, tc.err) {
						t.Fatalf("Serve returned %v, want %v", err, tc.err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Serve goes on after an error that will not pass")
				}
				return
			}
			c := dial(t, pc.LocalAddr().String())
			c.send([]byte("x"))
			c.expect([]byte{0})
		})
	}
}
