package resp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestPipelineRunsConcurrently: every Get blocks until n Gets are in
// flight at once (or fails after a deadline). A server that ran pipelined
// commands one after the other would never get there; this one must,
// and still answer in order.
func TestPipelineRunsConcurrently(t *testing.T) {
	const n = 16
	f := newFake()
	var mu sync.Mutex
	inFlight := 0
	all := make(chan struct{})
	f.onGet = func(ctx context.Context, key []byte) error {
		mu.Lock()
		inFlight++
		if inFlight == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("not concurrent: fewer than 16 Gets in flight after 5s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for i := 0; i < n; i++ {
		f.set(fmt.Sprintf("c%d", i), fmt.Sprintf("value-%d", i))
	}
	_, addr := startServer(t, f, Options{})
	rc := dialRaw(t, addr)
	var in strings.Builder
	var want []string
	for i := 0; i < n; i++ {
		// Reads of the same key may run together too: half the Gets
		// read c0.
		k := fmt.Sprintf("c%d", i)
		if i%2 == 1 {
			k = "c0"
		}
		in.WriteString(bulkCmd("GET", k))
		v, _ := f.value(k)
		want = append(want, fmt.Sprintf("$%d\r\n%s\r\n", len(v), v))
		in.WriteString(bulkCmd("ECHO", fmt.Sprint(i)))
		want = append(want, fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(i)), i))
	}
	rc.send(in.String())
	for i, w := range want {
		got, err := rc.reply()
		if err != nil || got != w {
			t.Fatalf("reply %d: %q, %v; want %q", i, got, err, w)
		}
	}
}

// TestPipelineKeyOrder: with writes that take random times, pipelined
// commands touching the same key still take effect in the order sent,
// and DBSIZE sees the writes sent before it.
func TestPipelineKeyOrder(t *testing.T) {
	f := newFake()
	var seed atomic.Uint64
	f.onPut = func(ctx context.Context, key, value []byte) error {
		r := rand.New(rand.NewPCG(seed.Add(1), 7))
		// Simulated replica latency, so later commands overtake earlier
		// ones unless the server orders them.
		time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
		return nil
	}
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)

	pipe := rdb.Pipeline()
	type check struct {
		cmd  redis.Cmder
		want string
	}
	var checks []check
	for i := 0; i < 150; i++ {
		k := fmt.Sprintf("o%d", i%3)
		pipe.Set(ctx, k, i, 0)
		checks = append(checks, check{pipe.Get(ctx, k), fmt.Sprint(i)})
		if i%10 == 9 {
			checks = append(checks, check{pipe.Del(ctx, k), "1"})
			checks = append(checks, check{pipe.Exists(ctx, k), "0"})
			checks = append(checks, check{pipe.MGet(ctx, k, "o0"), ""})
			pipe.MSet(ctx, k, "m", "o9", "n")
			checks = append(checks, check{pipe.Get(ctx, k), "m"})
		}
	}
	checks = append(checks, check{pipe.DBSize(ctx), "4"})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range checks {
		var got string
		switch cmd := c.cmd.(type) {
		case *redis.StringCmd:
			got = cmd.Val()
		case *redis.IntCmd:
			got = fmt.Sprint(cmd.Val())
		case *redis.SliceCmd:
			continue // checked by the commands around it
		}
		if got != c.want || c.cmd.Err() != nil {
			t.Fatalf("check %d %v: %q, %v; want %q", i, c.cmd.Args(), got, c.cmd.Err(), c.want)
		}
	}
}

// TestPipelineBound: with Gets that block, a client that pipelines many
// commands gets no more than MaxPipeline of them in flight.
func TestPipelineBound(t *testing.T) {
	const bound = 8
	f := newFake()
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	f.onGet = func(ctx context.Context, key []byte) error {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer inFlight.Add(-1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_, addr := startServer(t, f, Options{MaxPipeline: bound})
	rc := dialRaw(t, addr)
	var in strings.Builder
	for i := 0; i < 100; i++ {
		in.WriteString(bulkCmd("GET", fmt.Sprint("b", i)))
	}
	go rc.send(in.String())
	waitFor(t, "the pipeline to fill", 10*time.Second, func() bool { return inFlight.Load() == bound })
	// The server is now blocked on the bound: another connection is
	// still served.
	other := dialRaw(t, addr)
	other.send("PING\r\n")
	other.expect("+PONG\r\n")
	if p := peak.Load(); p != bound {
		t.Fatalf("peak of %d Gets in flight, want %d", p, bound)
	}
	close(release)
	for i := 0; i < 100; i++ {
		rc.expect("$-1\r\n")
	}
	if p := peak.Load(); p > bound {
		t.Fatalf("peak of %d Gets in flight, want at most %d", p, bound)
	}
}

// TestBackendErrorsAndTimeouts: backend failures become ERR replies, a
// slow backend hits the command timeout, and a panicking one does not
// take the server down.
func TestBackendErrorsAndTimeouts(t *testing.T) {
	f := newFake()
	f.onGet = func(ctx context.Context, key []byte) error {
		switch string(key) {
		case "fail":
			return errors.New("2 of 3 replicas did not answer: Network error")
		case "slow":
			<-ctx.Done()
			return ctx.Err()
		case "panic":
			panic("backend bug")
		}
		return nil
	}
	_, addr := startServer(t, f, Options{CommandTimeout: 50 * time.Millisecond})
	rc := dialRaw(t, addr)
	cases := []struct{ cmd, want string }{
		{bulkCmd("GET", "fail"), "-ERR 2 of 3 replicas did not answer: Network error\r\n"},
		{bulkCmd("MGET", "a", "fail"), "-ERR 2 of 3 replicas did not answer: Network error\r\n"},
		{bulkCmd("GET", "slow"), "-ERR timeout: context deadline exceeded\r\n"},
		{bulkCmd("DEL", "slow"), "-ERR timeout: context deadline exceeded\r\n"},
		{bulkCmd("GET", "panic"), "-ERR internal error running 'get'\r\n"},
		{"PING\r\n", "+PONG\r\n"},
	}
	for _, c := range cases {
		rc.send(c.cmd)
		rc.expect(c.want)
	}
}
