package transport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// TestCallErrorsKeepTheirCause: a failed call carries errcode.Network and
// the documented sentinel, and errors.Is finds why it failed as well.
func TestCallErrorsKeepTheirCause(t *testing.T) {
	cases := []struct {
		name string
		// call makes one call that fails.
		call   func(t *testing.T, c *Client) error
		causes []error
	}{
		{"deadline", func(t *testing.T, c *Client) error {
			_, addr := startServer(t, ServerOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, err := c.Call(ctx, addr, req("sleep"))
			return err
		}, []error{ErrTimeout}},
		{"cancelled", func(t *testing.T, c *Client) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan struct{})
			addr := serveOnce(t, func(net.Conn) { close(got) })
			errc := make(chan error, 1)
			go func() { _, err := c.Call(ctx, addr, req("x")); errc <- err }()
			<-got // the request is on its way: cancel the wait for its answer
			cancel()
			return <-errc
		}, []error{context.Canceled}},
		{"connection lost", func(t *testing.T, c *Client) error {
			addr := serveOnce(t, func(nc net.Conn) { nc.Close() })
			_, err := c.Call(context.Background(), addr, req("x"))
			return err
		}, []error{ErrConnLost, io.EOF}},
		{"refused", func(t *testing.T, c *Client) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			_, err = c.Call(context.Background(), ln.Addr().String(), req("x"))
			return err
		}, []error{ErrNotSent, syscall.ECONNREFUSED}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(ClientOptions{RefusedRetry: -1})
			defer c.Close()
			err := tc.call(t, c)
			if errcode.Of(err) != errcode.Network {
				t.Errorf("%v: code %s, want ERR_NETWORK", err, errcode.Of(err).Name())
			}
			for _, cause := range tc.causes {
				if !errors.Is(err, cause) {
					t.Errorf("%v: not errors.Is %v", err, cause)
				}
			}
		})
	}
}

// serveOnce accepts one connection, reads one request from it and passes
// the connection to then; it returns the address.
func serveOnce(t *testing.T, then func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := wire.ReadFrame(bufio.NewReader(nc), wire.DefaultMaxFrame); err != nil {
			return
		}
		then(nc)
		// Hold the connection until the test ends, unless then closed it.
		io.Copy(io.Discard, nc)
	}()
	return ln.Addr().String()
}
