package transport

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/wire"
)

type connKey struct{}

// TestConnContext: every request of a connection is handled with the
// context ConnContext made for it, and a connection it refuses is closed
// before any request is handled.
func TestConnContext(t *testing.T) {
	cases := []struct {
		name   string
		refuse bool
	}{
		{"accepted", false},
		{"refused", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			handled := make(chan string, 4)
			h := HandlerFunc(func(ctx context.Context, f wire.Frame) wire.Frame {
				v, _ := ctx.Value(connKey{}).(string)
				handled <- v
				return wire.Frame{Body: []byte(v)}
			})
			s := NewServer(h, ServerOptions{ConnContext: func(ctx context.Context, nc net.Conn) (context.Context, error) {
				if tc.refuse {
					return nil, errors.New("no")
				}
				return context.WithValue(ctx, connKey{}, nc.RemoteAddr().String()), nil
			}})
			go s.Serve(ln)
			t.Cleanup(func() {
				ln.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				s.Shutdown(ctx)
			})
			c := NewClient(ClientOptions{PoolSize: 1, RefusedRetry: -1})
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for i := 0; i < 2; i++ {
				resp, err := c.Call(ctx, ln.Addr().String(), req("x"))
				if tc.refuse {
					if err == nil {
						t.Fatalf("call %d on a refused connection answered %q", i, resp.Body)
					}
					continue
				}
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if len(resp.Body) == 0 {
					t.Fatalf("call %d handled without the connection's context", i)
				}
			}
			if tc.refuse && len(handled) != 0 {
				t.Fatalf("%d requests handled on a refused connection", len(handled))
			}
		})
	}
}
