package resp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// fakeBackend is an in-memory Backend: a map with a mutex, scanned in key
// order. Hooks let tests block or fail calls.
type fakeBackend struct {
	mu   sync.Mutex
	data map[string][]byte

	// onGet and onPut, when set, run before the operation; an error they
	// return is the operation's.
	onGet func(ctx context.Context, key []byte) error
	onPut func(ctx context.Context, key, value []byte) error
	info  Info
}

func newFake() *fakeBackend {
	return &fakeBackend{data: map[string][]byte{}, info: Info{
		Version: "0.0.0-test", Addr: "127.0.0.1:7001",
		Servers: []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
		N:       3, W: 2, R: 2,
	}}
}

func (f *fakeBackend) Get(ctx context.Context, key []byte) ([]byte, error) {
	if f.onGet != nil {
		if err := f.onGet(ctx, key); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[string(key)]
	if !ok {
		return nil, errcode.Errorf(errcode.NotFound, "get %q", key)
	}
	return bytes.Clone(v), nil
}

func (f *fakeBackend) Put(ctx context.Context, key, value []byte) error {
	if len(key) == 0 {
		return errcode.Errorf(errcode.InvalidArg, "empty key")
	}
	if f.onPut != nil {
		if err := f.onPut(ctx, key, value); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[string(key)] = bytes.Clone(value)
	return nil
}

func (f *fakeBackend) Delete(ctx context.Context, key []byte) error {
	if f.onPut != nil {
		if err := f.onPut(ctx, key, nil); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.data, string(key))
	return nil
}

func (f *fakeBackend) Scan(ctx context.Context, start []byte, fn func(key, value []byte) bool) error {
	f.mu.Lock()
	var keys []string
	for k := range f.data {
		if k >= string(start) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = f.data[k]
	}
	f.mu.Unlock()
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn([]byte(k), vals[i]) {
			return nil
		}
	}
	return nil
}

func (f *fakeBackend) Info(ctx context.Context) (Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := f.info
	info.Keys = int64(len(f.data))
	return info, nil
}

func (f *fakeBackend) set(k, v string) {
	f.mu.Lock()
	f.data[k] = []byte(v)
	f.mu.Unlock()
}

func (f *fakeBackend) value(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[k]
	return string(v), ok
}

// startServer serves b on 127.0.0.1:0 and returns the server and its
// address; the server is closed when the test ends.
func startServer(t testing.TB, b Backend, opts Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(b, opts)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := s.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, addr.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
