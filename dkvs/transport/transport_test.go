package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// echo answers every request with its own body; a body starting with
// "sleep" waits 200ms first, "panic" panics.
func echo(ctx context.Context, f wire.Frame) wire.Frame {
	switch {
	case bytes.HasPrefix(f.Body, []byte("sleep")):
		time.Sleep(200 * time.Millisecond)
	case bytes.HasPrefix(f.Body, []byte("panic")):
		panic("boom")
	}
	return wire.Frame{Flags: uint8(wire.StatusOK), Body: f.Body}
}

func startServer(t *testing.T, opts ServerOptions) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(HandlerFunc(echo), opts)
	go s.Serve(ln)
	t.Cleanup(func() {
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, ln.Addr().String()
}

func req(body string) wire.Frame { return wire.Frame{Kind: uint8(wire.OpGet), Body: []byte(body)} }

func TestPipelinedCalls(t *testing.T) {
	_, addr := startServer(t, ServerOptions{})
	c := NewClient(ClientOptions{PoolSize: 1})
	defer c.Close()
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				body := fmt.Sprintf("g%d-i%d", g, i)
				resp, err := c.Call(context.Background(), addr, req(body))
				if err != nil {
					t.Error(err)
					return
				}
				if string(resp.Body) != body || !resp.IsResponse() || resp.Op() != wire.OpGet {
					t.Errorf("got %q (kind %x) for %q", resp.Body, resp.Kind, body)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestOutOfOrderResponses(t *testing.T) {
	_, addr := startServer(t, ServerOptions{})
	c := NewClient(ClientOptions{PoolSize: 1})
	defer c.Close()
	slow := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), addr, req("sleep"))
		slow <- err
	}()
	// A fast request sent after the slow one on the same connection
	// returns first.
	start := time.Now()
	if _, err := c.Call(context.Background(), addr, req("fast")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("fast request waited behind the slow one: %v", d)
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

func TestTimeout(t *testing.T) {
	_, addr := startServer(t, ServerOptions{})
	c := NewClient(ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, addr, req("sleep"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, errcode.Network) {
		t.Fatalf("want timeout, got %v", err)
	}
	// The connection still works, and the late response is discarded.
	if resp, err := c.Call(context.Background(), addr, req("after")); err != nil || string(resp.Body) != "after" {
		t.Fatalf("after timeout: %q %v", resp.Body, err)
	}
}

func TestConnectRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	for _, retry := range []time.Duration{-1, 30 * time.Millisecond} {
		c := NewClient(ClientOptions{RefusedRetry: retry})
		_, err := c.Call(context.Background(), addr, req("x"))
		c.Close()
		if !errors.Is(err, errcode.Network) || !errors.Is(err, ErrNotSent) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("retry %v: got %v, want a refused connection, not sent", retry, err)
		}
	}
}

// TestConnectRetriedUntilListening: a call made before its server listens
// (a client started with the server) is answered once the server binds
// its port, through Call and through Go; without retries it is refused.
func TestConnectRetriedUntilListening(t *testing.T) {
	for _, async := range []bool{false, true} {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		c := NewClient(ClientOptions{RefusedRetry: 10 * time.Second})
		// The call is made first; the port is bound once it was refused at
		// least once (the dial counter says so).
		var dials atomic.Int32
		c.opts.Dial = countDials(c.opts.Dial, &dials)
		type result struct {
			f   wire.Frame
			err error
		}
		res := make(chan result, 1)
		deadline := time.Now().Add(20 * time.Second)
		if async {
			c.Go(addr, req("early"), deadline, func(f wire.Frame, err error) { res <- result{f, err} })
		} else {
			go func() {
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				defer cancel()
				f, err := c.Call(ctx, addr, req("early"))
				res <- result{f, err}
			}()
		}
		for dials.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		ln2, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		s := NewServer(HandlerFunc(echo), ServerOptions{})
		go s.Serve(ln2)
		r := <-res
		if r.err != nil || string(r.f.Body) != "early" {
			t.Fatalf("async %v: got %q, %v after %d dials", async, r.f.Body, r.err, dials.Load())
		}
		c.Close()
		ln2.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Shutdown(ctx)
		cancel()
	}
}

// TestConnectRetryEndsWithContext: the retries of a refused connection
// stop when the call's context ends.
func TestConnectRetryEndsWithContext(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := NewClient(ClientOptions{RefusedRetry: time.Hour})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// The last dial either was refused or ran into the deadline.
	if _, err := c.Call(ctx, addr, req("x")); !errors.Is(err, ErrNotSent) || !errors.Is(err, errcode.Network) {
		t.Fatalf("got %v, want a network error, not sent", err)
	}
}

func countDials(dial func(context.Context, string) (net.Conn, error), n *atomic.Int32) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		n.Add(1)
		return dial(ctx, addr)
	}
}

// TestServerGoneFailsPending: a server that reads a request and hangs up
// fails the request pending on that connection with ErrConnLost, through
// Call and through Go.
func TestServerGoneFailsPending(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(t *testing.T, c *Client, addr string) error
	}{
		{"Call", func(_ *testing.T, c *Client, addr string) error {
			_, err := c.Call(context.Background(), addr, req("x"))
			return err
		}},
		{"Go", func(t *testing.T, c *Client, addr string) error {
			_, err := goCall(t, c, addr, req("x"), time.Now().Add(10*time.Second))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				nc, _ := ln.Accept()
				accepted <- nc
			}()
			c := NewClient(ClientOptions{PoolSize: 1})
			defer c.Close()
			errc := make(chan error, 1)
			go func() { errc <- tc.call(t, c, ln.Addr().String()) }()
			nc := <-accepted
			// Read the request, then hang up without answering.
			wire.ReadFrame(bufio.NewReader(nc), wire.DefaultMaxFrame)
			nc.Close()
			if err := <-errc; !errors.Is(err, ErrConnLost) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestPanicAnswered(t *testing.T) {
	_, addr := startServer(t, ServerOptions{})
	c := NewClient(ClientOptions{})
	defer c.Close()
	resp, err := c.Call(context.Background(), addr, req("panic"))
	if err != nil || resp.Status() != wire.StatusInternal {
		t.Fatalf("panic: %v %v", resp.Status(), err)
	}
	if _, err := c.Call(context.Background(), addr, req("ok")); err != nil {
		t.Fatal(err)
	}
}

// rawConn dials the server directly for sending hand-made bytes.
func rawConn(t *testing.T, addr string) net.Conn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// closedWithin reads until the server closes the connection, returning
// what it sent before.
func closedWithin(t *testing.T, nc net.Conn, d time.Duration) []byte {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("connection not closed within %v: %v", d, err)
	}
	return b
}

func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	_, addr := startServer(t, ServerOptions{MaxFrame: 1 << 20, FrameTimeout: 300 * time.Millisecond})
	good := NewClient(ClientOptions{PoolSize: 1})
	defer good.Close()
	check := func(name string) {
		if resp, err := good.Call(context.Background(), addr, req(name)); err != nil || string(resp.Body) != name {
			t.Fatalf("other connection after %s: %v", name, err)
		}
	}
	check("before")

	// Announcing 4 GiB: refused with StatusTooLarge for that id, then closed.
	nc := rawConn(t, addr)
	nc.Write([]byte{0xff, 0xff, 0xff, 0xff, byte(wire.OpPut), 0, 0, 0, 0, 0, 0, 0, 0, 9})
	out := closedWithin(t, nc, 2*time.Second)
	f, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(out)), wire.DefaultMaxFrame)
	if err != nil || f.ID != 9 || f.Status() != wire.StatusTooLarge || f.Op() != wire.OpPut {
		t.Fatalf("4 GiB frame answer: %+v %v", f, err)
	}
	check("after 4GiB")

	// Garbage: a length below the header size.
	nc = rawConn(t, addr)
	nc.Write([]byte("garbage!garbage!garbage!"))
	closedWithin(t, nc, 2*time.Second)
	check("after garbage")

	// A truncated frame followed by silence: closed after FrameTimeout.
	nc = rawConn(t, addr)
	full := wire.AppendFrame(nil, req("truncated"))
	nc.Write(full[:len(full)-3])
	closedWithin(t, nc, 2*time.Second)
	check("after truncated")

	// A truncated frame followed by a half-close.
	nc = rawConn(t, addr)
	nc.Write(full[:5])
	nc.(*net.TCPConn).CloseWrite()
	closedWithin(t, nc, 2*time.Second)
	check("after half-close")

	// A response frame sent to a server.
	nc = rawConn(t, addr)
	nc.Write(wire.AppendFrame(nil, wire.Frame{Kind: uint8(wire.OpGet) | wire.RespBit}))
	closedWithin(t, nc, 2*time.Second)
	check("after response frame")
}

func TestIdleConnectionKept(t *testing.T) {
	_, addr := startServer(t, ServerOptions{FrameTimeout: 100 * time.Millisecond})
	c := NewClient(ClientOptions{PoolSize: 1})
	defer c.Close()
	c.Call(context.Background(), addr, req("a"))
	time.Sleep(300 * time.Millisecond) // idle for longer than FrameTimeout
	if _, err := c.Call(context.Background(), addr, req("b")); err != nil {
		t.Fatalf("idle connection was closed: %v", err)
	}
}

func TestShutdownWaitsForInflight(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	var done atomic.Int32
	s := NewServer(HandlerFunc(func(ctx context.Context, f wire.Frame) wire.Frame {
		time.Sleep(100 * time.Millisecond)
		done.Add(1)
		return wire.Frame{Body: f.Body}
	}), ServerOptions{})
	go s.Serve(ln)
	c := NewClient(ClientOptions{PoolSize: 1})
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), ln.Addr().String(), req("x"))
		errc <- err
	}()
	for deadline := time.Now().Add(2 * time.Second); s.inflightCount() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("request never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	ln.Close()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 1 {
		t.Fatal("shutdown returned before the request finished")
	}
	if err := <-errc; err != nil {
		t.Fatalf("in-flight request lost its answer: %v", err)
	}
}

func TestClientClose(t *testing.T) {
	_, addr := startServer(t, ServerOptions{})
	c := NewClient(ClientOptions{})
	c.Call(context.Background(), addr, req("x"))
	c.Close()
	if _, err := c.Call(context.Background(), addr, req("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func BenchmarkCall(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	s := NewServer(HandlerFunc(echo), ServerOptions{})
	go s.Serve(ln)
	defer s.Shutdown(context.Background())
	defer ln.Close()
	c := NewClient(ClientOptions{})
	defer c.Close()
	body := bytes.Repeat([]byte("x"), 100)
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Call(context.Background(), ln.Addr().String(), wire.Frame{Kind: 2, Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// goCall runs Client.Go and waits for its callback, failing the test if
// the callback runs more than once.
func goCall(t *testing.T, c *Client, addr string, f wire.Frame, deadline time.Time) (wire.Frame, error) {
	t.Helper()
	type result struct {
		f   wire.Frame
		err error
	}
	ch := make(chan result, 2)
	c.Go(addr, f, deadline, func(f wire.Frame, err error) { ch <- result{f, err} })
	r := <-ch
	select {
	case extra := <-ch:
		t.Fatalf("callback ran twice: %v then %v", r.err, extra.err)
	case <-time.After(250 * time.Millisecond):
	}
	return r.f, r.err
}

func TestGo(t *testing.T) {
	_, addr := startServer(t, ServerOptions{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()
	c := NewClient(ClientOptions{PoolSize: 1})
	defer c.Close()
	for _, tc := range []struct {
		name    string
		addr    string
		body    string
		timeout time.Duration // from the call
		want    error         // nil: the echo comes back
	}{
		{"first call dials", addr, "one", time.Second, nil},
		{"open connection", addr, "two", time.Second, nil},
		{"deadline passes", addr, "sleep", 20 * time.Millisecond, ErrTimeout},
		{"deadline already past", addr, "late", -time.Second, ErrTimeout},
		{"after a timeout", addr, "three", time.Second, nil},
		{"connection refused", refused, "x", time.Second, ErrNotSent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := goCall(t, c, tc.addr, req(tc.body), time.Now().Add(tc.timeout))
			if tc.want != nil {
				if !errors.Is(err, tc.want) || !errors.Is(err, errcode.Network) {
					t.Fatalf("want %v, got %v", tc.want, err)
				}
				return
			}
			if err != nil || string(f.Body) != tc.body {
				t.Fatalf("got %q %v, want %q", f.Body, err, tc.body)
			}
		})
	}
}
