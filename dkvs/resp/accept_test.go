package resp

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// failingListener fails its first Accepts with err, then accepts from the
// real listener.
type failingListener struct {
	net.Listener
	err   error
	mu    sync.Mutex
	fails int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: l.err}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestServeWaitsOutTemporaryErrors: the accept loop follows netutil's
// policy, as the native server's does: a temporary error is waited out,
// any other stops Serve with it.
func TestServeWaitsOutTemporaryErrors(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		keeps bool
	}{
		{"EMFILE", os.NewSyscallError("accept4", syscall.EMFILE), true},
		{"ENOBUFS", os.NewSyscallError("accept4", syscall.ENOBUFS), true},
		{"EBADF", os.NewSyscallError("accept4", syscall.EBADF), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := New(newFake(), Options{})
			served := make(chan error, 1)
			go func() { served <- s.Serve(&failingListener{Listener: ln, err: tc.err, fails: 3}) }()
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
			c := dialRaw(t, ln.Addr().String())
			c.send("PING\r\n")
			c.expect("+PONG\r\n")
		})
	}
}
