package dkvs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// TestVia routes operations through one in-process server and checks them
// with a client that knows the ring.
func TestVia(t *testing.T) {
	servers, stops := startRing(t, 4)
	via, err := dkvs.New(nil, &dkvs.Options{Via: servers[0].Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer via.Close()
	direct, err := dkvs.New(servers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()

	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				k := []byte(fmt.Sprintf("via-%d-%d", g, i))
				if err := via.Put(ctx, k, append(k, 0, 1), 3, 2); err != nil {
					t.Error(err)
					return
				}
				if v, err := direct.Get(ctx, k, 3, 3); err != nil || !bytes.Equal(v, append(k, 0, 1)) {
					t.Errorf("direct get %s: %q %v", k, v, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err := direct.Put(ctx, []byte("d"), []byte("from direct"), 3, 3); err != nil {
		t.Fatal(err)
	}
	if v, err := via.Get(ctx, []byte("d"), 3, 2); err != nil || string(v) != "from direct" {
		t.Fatalf("via get: %q %v", v, err)
	}
	if v, err := via.GetWith(ctx, []byte("d"), dkvs.Request{}); err != nil || string(v) != "from direct" {
		t.Fatalf("via get with the server's defaults: %q %v", v, err)
	}
	if err := via.PutWith(ctx, []byte("e"), nil, dkvs.Request{N: 3, Level: dkvs.All}); err != nil {
		t.Fatal(err)
	}
	if v, err := direct.Get(ctx, []byte("e"), 3, 3); err != nil || len(v) != 0 {
		t.Fatalf("empty value: %q %v", v, err)
	}
	if err := via.PutWith(ctx, []byte("lin"), []byte("x"), dkvs.Request{N: 3, Linearizable: true}); err != nil {
		t.Fatal(err)
	}
	if err := via.Delete(ctx, []byte("d"), 3, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Get(ctx, []byte("d"), 3, 3); !errors.Is(err, dkvs.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}

	errs := []struct {
		name string
		err  error
		want error
	}{
		{"not found", func() error { _, err := via.Get(ctx, []byte("nope"), 3, 2); return err }(), dkvs.ErrNotFound},
		{"R>N", func() error { _, err := via.GetWith(ctx, []byte("k"), dkvs.Request{N: 2, R: 3}); return err }(), dkvs.ErrInvalidArgument},
		{"N=300", via.PutWith(ctx, []byte("k"), nil, dkvs.Request{N: 300}), dkvs.ErrInvalidArgument},
		{"negative W", via.PutWith(ctx, []byte("k"), nil, dkvs.Request{N: 3, W: -1}), dkvs.ErrInvalidArgument},
		{"linearizable R=1", func() error {
			_, err := via.GetWith(ctx, []byte("k"), dkvs.Request{N: 3, R: 1, Linearizable: true})
			return err
		}(), dkvs.ErrInvalidArgument},
		{"empty key", via.Put(ctx, nil, []byte("v"), 3, 2), dkvs.ErrInvalidArgument},
		{"dump without servers", via.Dump(ctx, func(k, v []byte) error { return nil }), dkvs.ErrInvalidConfig},
	}
	for _, e := range errs {
		if !errors.Is(e.err, e.want) {
			t.Errorf("%s: %v, want %v", e.name, e.err, e.want)
		}
	}

	// With a server stopped, the coordinating server still finds its
	// quorum among the others.
	stops[1]()
	for i := 0; i < 20; i++ {
		k := []byte(fmt.Sprintf("after-stop-%d", i))
		if err := via.Put(ctx, k, k, 3, 2); err != nil {
			t.Fatal(err)
		}
		if v, err := via.Get(ctx, k, 3, 2); err != nil || !bytes.Equal(v, k) {
			t.Fatalf("get %s: %q %v", k, v, err)
		}
	}
	// A context deadline bounds the whole operation.
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if err := via.Put(dctx, []byte("late"), nil, 3, 2); !errors.Is(err, dkvs.ErrNetwork) {
		t.Fatalf("expired context: %v", err)
	}
}

func TestViaErrors(t *testing.T) {
	for via, want := range map[string]error{
		"nonsense":       dkvs.ErrInvalidConfig,
		"127.0.001:7000": dkvs.ErrAddress,
		"127.0.0.1:0":    dkvs.ErrInvalidConfig,
	} {
		if _, err := dkvs.New(nil, &dkvs.Options{Via: via}); !errors.Is(err, want) {
			t.Errorf("via %q: %v, want %v", via, err, want)
		}
	}
	// Nobody listens: a get fails cleanly, a put that could not be sent
	// too (it never left).
	c, err := dkvs.New(nil, &dkvs.Options{Via: "127.0.0.1:1", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(ctx, []byte("k"), 3, 2); !errors.Is(err, dkvs.ErrNetwork) {
		t.Fatalf("get: %v", err)
	}
	err = c.Put(ctx, []byte("k"), nil, 3, 2)
	if !errors.Is(err, dkvs.ErrNetwork) || errors.Is(err, dkvs.ErrUnknownOutcome) || errcode.Of(err) != errcode.Network {
		t.Fatalf("put: %v", err)
	}
}
