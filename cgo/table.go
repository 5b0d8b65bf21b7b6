package main

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/dkvs/dkvs/dkvs"
)

// client is what a handle holds: the operations of *dkvs.Client that the
// C functions use (an interface so that the table can be tested without a
// ring).
type client interface {
	PutWith(ctx context.Context, key, value []byte, r dkvs.Request) error
	GetWith(ctx context.Context, key []byte, r dkvs.Request) ([]byte, error)
	DeleteWith(ctx context.Context, key []byte, r dkvs.Request) error
	GetMany(ctx context.Context, keys [][]byte, r dkvs.Request) []dkvs.Result
	PutMany(ctx context.Context, pairs []dkvs.Pair, r dkvs.Request) []error
	DeleteMany(ctx context.Context, keys [][]byte, r dkvs.Request) []error
	Close() error
}

// Handles hold Go clients.
var _ client = (*dkvs.Client)(nil)

// entry is one open handle.
type entry struct {
	c client
	// lin is the handle's default linearizable mode (dkvs_set_linearizable).
	lin atomic.Bool
	// calls counts the C calls running on the handle, so that close can
	// wait for them before closing the client under their feet.
	calls sync.WaitGroup
}

// release ends a call started by table.acquire.
func (e *entry) release() { e.calls.Done() }

// table maps the integers that C holds as dkvs_t pointers to open clients.
// C may not keep Go pointers (the cgo pointer-passing rules), so a handle
// is a key into this table rather than an address; keys are never reused,
// so a closed or forged handle is simply not found.
type table struct {
	mu   sync.Mutex
	last uintptr
	m    map[uintptr]*entry
}

func newTable() *table { return &table{m: map[uintptr]*entry{}} }

// add registers c and returns its handle (never 0).
func (t *table) add(c client) uintptr {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last++
	t.m[t.last] = &entry{c: c}
	return t.last
}

// acquire returns the entry of handle h with one more call counted, or
// false if h is not open. The caller must release the entry.
func (t *table) acquire(h uintptr) (*entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[h]
	if e == nil {
		return nil, false
	}
	e.calls.Add(1)
	return e, true
}

// remove takes handle h out of the table and waits for the calls running
// on it to return; it returns false if h is not open. Calls that start
// after remove took the lock no longer find h, and every call counted
// before was counted under the lock, so Wait sees all of them.
func (t *table) remove(h uintptr) (*entry, bool) {
	t.mu.Lock()
	e := t.m[h]
	delete(t.m, h)
	t.mu.Unlock()
	if e == nil {
		return nil, false
	}
	e.calls.Wait()
	return e, true
}
