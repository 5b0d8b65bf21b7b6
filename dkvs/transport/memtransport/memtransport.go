// Package memtransport runs frame handlers as servers on an in-memory
// network (package memnet) and calls them with the real transport
// client, for tests of what sits on a transport: the coordinator, hint
// delivery, anti-entropy. Requests take the production path (pipelined
// connections, the asynchronous Go call, deadlines), only without
// sockets.
//
// Faults are set per address, for the common cases (a server down,
// stalled or slow); Net gives the network itself for faults per link and
// direction.
package memtransport

import (
	"context"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/memnet"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Fault is the state of an address.
type Fault int

// Faults.
const (
	Up      Fault = iota // calls are handled
	Down                 // the server is gone: calls are refused at once
	Stalled              // calls hang until their deadline, like SIGSTOP
)

// Caller is the host name the network's own client calls from.
const Caller = "memtransport-client"

// Network serves handlers and calls them. It is safe for concurrent use.
type Network struct {
	net    *memnet.Net
	client *transport.Client

	mu       sync.Mutex
	handlers map[string]transport.Handler
	servers  map[string]*transport.Server
	calls    map[string]int
	closed   bool
}

var _ interface {
	Call(context.Context, string, wire.Frame) (wire.Frame, error)
	Go(string, wire.Frame, time.Time, func(wire.Frame, error))
} = (*Network)(nil)

// New returns a network with no servers, its random choices seeded with
// 1. Close it when done.
func New() *Network {
	n := &Network{
		net:      memnet.New(1),
		handlers: map[string]transport.Handler{},
		servers:  map[string]*transport.Server{},
		calls:    map[string]int{},
	}
	// A refused connection fails at once: Down means gone, not starting.
	n.client = transport.NewClient(transport.ClientOptions{Dial: n.net.Host(Caller).Dial, RefusedRetry: -1})
	return n
}

// Net returns the underlying network.
func (n *Network) Net() *memnet.Net { return n.net }

// Register serves addr with h.
func (n *Network) Register(addr string, h transport.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[addr] = h
	n.serveLocked(addr)
}

func (n *Network) serveLocked(addr string) {
	if n.servers[addr] != nil || n.closed {
		return
	}
	ln, err := n.net.Host(addr).Listen(addr)
	if err != nil {
		return // crashed: served again when Up
	}
	s := transport.NewServer(n.handlers[addr], transport.ServerOptions{})
	n.servers[addr] = s
	go s.Serve(ln)
}

// SetFault changes the state of addr.
func (n *Network) SetFault(addr string, f Fault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch f {
	case Up:
		n.net.Resume(addr)
		n.net.Restart(addr)
		n.serveLocked(addr)
	case Down:
		n.net.Crash(addr)
		if s := n.servers[addr]; s != nil {
			delete(n.servers, addr)
			go shutdown(s)
		}
	case Stalled:
		n.net.Pause(addr)
	}
}

func shutdown(s *transport.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Shutdown(ctx)
}

// SetDelay adds latency to every request sent to addr.
func (n *Network) SetDelay(addr string, d time.Duration) {
	n.net.SetLink(Caller, addr, memnet.LinkFault{Delay: d})
}

// Calls returns how many calls were made to addr (refused ones included).
func (n *Network) Calls(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[addr]
}

func (n *Network) count(addr string) {
	n.mu.Lock()
	n.calls[addr]++
	n.mu.Unlock()
}

// Call sends req to addr and waits for the answer (transport.Client.Call).
func (n *Network) Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error) {
	n.count(addr)
	return n.client.Call(ctx, addr, req)
}

// Go sends req to addr without waiting (transport.Client.Go).
func (n *Network) Go(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error)) {
	n.count(addr)
	n.client.Go(addr, req, deadline, done)
}

// Close stops the servers and the client.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	servers := n.servers
	n.servers = map[string]*transport.Server{}
	n.mu.Unlock()
	n.client.Close()
	for addr, s := range servers {
		n.net.Crash(addr)
		shutdown(s)
	}
}
