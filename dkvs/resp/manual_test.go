package resp

import (
	"context"
	"net"
	"os"
	"os/signal"
	"testing"
	"time"
)

// TestManualServer is not a test but a tool for trying real Redis tools
// against the server: with DKVS_RESP_MANUAL_ADDR=127.0.0.1:6390 it serves
// an in-memory fake backend there until interrupted or
// DKVS_RESP_MANUAL_FOR (a duration, default 10m) passes, e.g.
//
//	DKVS_RESP_MANUAL_ADDR=127.0.0.1:6390 go test -run TestManualServer -timeout 0 ./dkvs/resp/
//	redis-cli -p 6390 set a b
//
// Without the variable it is skipped; it counts for no coverage.
func TestManualServer(t *testing.T) {
	addr := os.Getenv("DKVS_RESP_MANUAL_ADDR")
	if addr == "" {
		t.Skip("set DKVS_RESP_MANUAL_ADDR to run a server for manual testing")
	}
	d, err := time.ParseDuration(os.Getenv("DKVS_RESP_MANUAL_FOR"))
	if err != nil {
		d = 10 * time.Minute
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := New(newFake(), Options{})
	go s.Serve(ln)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	t.Logf("serving on %s for %s", ln.Addr(), d)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	s.Close()
}
