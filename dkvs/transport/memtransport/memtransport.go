// Package memtransport is an in-memory network of frame handlers for
// tests: calls go straight to the handler registered for an address, and
// faults (a refused server, a paused one, added latency) are set per
// address.
package memtransport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Errors returned by Call, wrapping errcode.Network like the TCP client's.
var (
	ErrRefused = fmt.Errorf("memtransport: connection refused: %w: %w", transport.ErrNotSent, errcode.Network)
	ErrTimeout = fmt.Errorf("memtransport: deadline exceeded: %w", errcode.Network)
)

// Fault is the state of an address.
type Fault int

// Faults.
const (
	Up      Fault = iota // calls are handled
	Down                 // calls fail at once, like a refused connection
	Stalled              // calls hang until their deadline, like SIGSTOP
)

// Network routes calls to handlers. It is safe for concurrent use.
type Network struct {
	mu       sync.Mutex
	handlers map[string]transport.Handler
	faults   map[string]Fault
	delay    map[string]time.Duration
	calls    map[string]int
}

// New returns an empty network.
func New() *Network {
	return &Network{
		handlers: map[string]transport.Handler{},
		faults:   map[string]Fault{},
		delay:    map[string]time.Duration{},
		calls:    map[string]int{},
	}
}

// Register serves addr with h.
func (n *Network) Register(addr string, h transport.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[addr] = h
}

// SetFault changes the state of addr.
func (n *Network) SetFault(addr string, f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults[addr] = f
}

// SetDelay adds latency to every call to addr.
func (n *Network) SetDelay(addr string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay[addr] = d
}

// Calls returns how many calls addr has received (refused ones included).
func (n *Network) Calls(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[addr]
}

// Call delivers a copy of req to the handler of addr and returns its
// answer, honouring the address's fault and ctx.
func (n *Network) Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error) {
	n.mu.Lock()
	h, fault, delay := n.handlers[addr], n.faults[addr], n.delay[addr]
	n.calls[addr]++
	n.mu.Unlock()
	if h == nil || fault == Down {
		return wire.Frame{}, fmt.Errorf("%s: %w", addr, ErrRefused)
	}
	if fault == Stalled {
		<-ctx.Done()
		return wire.Frame{}, fmt.Errorf("%s: %w", addr, ErrTimeout)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return wire.Frame{}, fmt.Errorf("%s: %w", addr, ErrTimeout)
		}
	}
	req.Body = append([]byte(nil), req.Body...) // the network copies
	done := make(chan wire.Frame, 1)
	go func() { done <- h.Handle(context.WithoutCancel(ctx), req) }()
	select {
	case resp := <-done:
		resp.Kind = req.Kind | wire.RespBit
		resp.ID = req.ID
		return resp, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return wire.Frame{}, fmt.Errorf("%s: %w", addr, ErrTimeout)
		}
		return wire.Frame{}, fmt.Errorf("%s: %w: %w", addr, ctx.Err(), errcode.Network)
	}
}
