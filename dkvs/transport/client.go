// Package transport carries native-protocol frames over TCP.
//
// The client side keeps a small pool of persistent connections per server.
// Many requests are in flight on one connection at a time (pipelining):
// each carries a request id and its response is matched by that id, in any
// order. Frames sent while the writer is busy are coalesced into one write.
// The server side reads requests, runs each in its own goroutine and
// writes the responses back the same way.
package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/netx"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// ErrNotSent marks a failed call whose request never left this process
// (the connection could not be opened, or was already closed): the server
// cannot have acted on it. Callers deciding whether a write may have been
// applied test for it with errors.Is.
var ErrNotSent = errors.New("request not sent")

// Errors returned by Call. All wrap errcode.Network.
var (
	ErrClosed   = fmt.Errorf("transport: client closed: %w: %w", ErrNotSent, errcode.Network)
	ErrConnLost = fmt.Errorf("transport: connection lost: %w", errcode.Network)
	ErrTimeout  = fmt.Errorf("transport: deadline exceeded: %w", errcode.Network)
)

// ErrTLSServer is a connection lost because the server speaks TLS and
// the client does not.
var ErrTLSServer = fmt.Errorf("transport: the server speaks TLS only (a TLS alert came back): configure the client's TLS (the ring's CA): %w", errcode.Network)

// tlsAlertRecord is the content type of a TLS alert record, its first
// byte; the second is the major version, 3.
const tlsAlertRecord = 0x15

// ClientOptions configure a Client.
type ClientOptions struct {
	// PoolSize is the number of connections kept per server (default 2).
	PoolSize int
	// MaxFrame is the largest response frame accepted; default
	// wire.DefaultMaxFrame plus room for a scan page.
	MaxFrame int
	// WriteTimeout bounds one flush to a server (default 5s).
	WriteTimeout time.Duration
	// Dial opens a connection; nil is netx.TCP's, from SourceIP.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// SourceIP is netx.TCP's SourceIP when Dial is nil.
	SourceIP string
	// RefusedRetry bounds how long a refused connection is dialed again,
	// 1 to 16 ms apart: a server started at the same moment as its client
	// refuses until it has bound its port. Zero means until the call's
	// deadline (MaxRefusedRetry for a call without one); negative, never.
	RefusedRetry time.Duration
}

// MaxRefusedRetry bounds the retries of a refused connection for a call
// whose context has no deadline.
const MaxRefusedRetry = 5 * time.Second

// Client sends requests to servers. It is safe for concurrent use.
type Client struct {
	opts   ClientOptions
	mu     sync.Mutex
	peers  map[string]*peer
	closed bool
}

// NewClient returns a client; connections are opened on first use.
func NewClient(opts ClientOptions) *Client {
	if opts.PoolSize <= 0 {
		opts.PoolSize = 2
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = 2 * wire.DefaultMaxFrame
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.Dial == nil {
		opts.Dial = netx.TCP{SourceIP: opts.SourceIP}.Dial
	}
	return &Client{opts: opts, peers: make(map[string]*peer)}
}

type peer struct {
	addr    string
	mu      sync.Mutex  // guards dialing and failAll; never held while dialing
	dialing []*dialCall // per slot: the dial under way, or nil
	slots   []atomic.Pointer[clientConn]
	next    atomic.Uint32
}

// call is a request waiting for its response.
type call struct {
	done  func(wire.Frame, error) // called exactly once
	timer *time.Timer             // async calls: fires at the deadline
}

type clientConn struct {
	nc      net.Conn
	w       *frameWriter
	nextID  atomic.Uint64
	dead    atomic.Bool
	mu      sync.Mutex
	pending map[uint64]*call
	err     error // set once the connection failed
	done    chan struct{}
}

// Call sends a request frame to addr and waits for its response or for
// ctx to end. The request's ID is assigned here; req.Body must not be
// modified until Call returns (it may be shared between calls).
func (c *Client) Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error) {
	cc, err := c.conn(ctx, addr)
	if err != nil {
		return wire.Frame{}, err
	}
	type result struct {
		f   wire.Frame
		err error
	}
	ch := make(chan result, 1)
	id, err := cc.start(req, &call{done: func(f wire.Frame, err error) { ch <- result{f, err} }})
	if err != nil {
		return wire.Frame{}, err
	}
	select {
	case r := <-ch:
		return r.f, r.err
	case <-ctx.Done():
		cc.take(id)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return wire.Frame{}, fmt.Errorf("%s: %w", addr, ErrTimeout)
		}
		return wire.Frame{}, fmt.Errorf("%s: %w: %w", addr, ctx.Err(), errcode.Network)
	}
}

// Go sends req to addr without waiting: done is called exactly once, from
// another goroutine, with the response, or with an error (ErrTimeout once
// deadline passes). done must not block. On an open connection no
// goroutine is started: the connection's reader calls done.
func (c *Client) Go(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error)) {
	if cc := c.liveConn(addr); cc != nil {
		c.goOn(cc, addr, req, deadline, done)
		return
	}
	go func() { // dialing may take until the deadline
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		cc, err := c.conn(ctx, addr)
		if err != nil {
			done(wire.Frame{}, err)
			return
		}
		c.goOn(cc, addr, req, deadline, done)
	}()
}

func (c *Client) goOn(cc *clientConn, addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error)) {
	// A request already past its deadline is not sent: its answer, however
	// quick, would come too late.
	if !time.Now().Before(deadline) {
		go done(wire.Frame{}, fmt.Errorf("%s: %w: %w", addr, ErrTimeout, ErrNotSent))
		return
	}
	cl := &call{done: done}
	var id uint64
	// The timer is armed before the request is sent, and its function
	// waits for the id: a deadline that has already passed still fires
	// after registration.
	ready := make(chan struct{})
	cl.timer = time.AfterFunc(time.Until(deadline), func() {
		<-ready
		if cc.take(id) != nil {
			done(wire.Frame{}, fmt.Errorf("%s: %w", addr, ErrTimeout))
		}
	})
	var err error
	id, err = cc.start(req, cl)
	close(ready)
	if err != nil {
		cl.timer.Stop()
		done(wire.Frame{}, err)
	}
}

// start registers cl and sends req; it returns the request's id.
func (cc *clientConn) start(req wire.Frame, cl *call) (uint64, error) {
	id := cc.nextID.Add(1)
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return 0, fmt.Errorf("%w: %w", cc.err, ErrNotSent)
	}
	cc.pending[id] = cl
	cc.mu.Unlock()
	cc.w.send(outFrame{kind: req.Kind, flags: req.Flags, id: id, body: req.Body})
	return id, nil
}

// take removes and returns the call waiting for id, or nil if it was
// already answered, timed out or failed.
func (cc *clientConn) take(id uint64) *call {
	cc.mu.Lock()
	cl := cc.pending[id]
	delete(cc.pending, id)
	cc.mu.Unlock()
	return cl
}

// liveConn returns an open connection to addr, or nil if one would have
// to be dialed.
func (c *Client) liveConn(addr string) *clientConn {
	c.mu.Lock()
	p := c.peers[addr]
	closed := c.closed
	c.mu.Unlock()
	if p == nil || closed {
		return nil
	}
	i := int(p.next.Add(1)) % len(p.slots)
	if cc := p.slots[i].Load(); cc != nil && !cc.dead.Load() {
		return cc
	}
	return nil
}

// dialCall is a dial under way for one slot of a peer: callers that need
// the slot meanwhile wait for it (or for their own context) rather than
// dial too.
type dialCall struct {
	done chan struct{}
	err  error // set before done closes
}

func (c *Client) conn(ctx context.Context, addr string) (*clientConn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	p := c.peers[addr]
	if p == nil {
		p = &peer{addr: addr, slots: make([]atomic.Pointer[clientConn], c.opts.PoolSize), dialing: make([]*dialCall, c.opts.PoolSize)}
		c.peers[addr] = p
	}
	c.mu.Unlock()
	i := int(p.next.Add(1)) % len(p.slots)
	for {
		if cc := p.slots[i].Load(); cc != nil && !cc.dead.Load() {
			return cc, nil
		}
		p.mu.Lock()
		if cc := p.slots[i].Load(); cc != nil && !cc.dead.Load() {
			p.mu.Unlock()
			return cc, nil // another caller dialed meanwhile
		}
		if d := p.dialing[i]; d != nil {
			// Another caller dials this slot: its outcome is ours too.
			p.mu.Unlock()
			select {
			case <-d.done:
				if d.err != nil {
					return nil, d.err
				}
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("connect %s: %w: %w: %w", addr, ctx.Err(), ErrNotSent, errcode.Network)
			}
		}
		d := &dialCall{done: make(chan struct{})}
		p.dialing[i] = d
		p.mu.Unlock()
		cc, err := c.open(ctx, addr)
		p.mu.Lock()
		p.dialing[i] = nil
		if err == nil {
			p.slots[i].Store(cc)
		}
		d.err = err
		p.mu.Unlock()
		close(d.done)
		return cc, err
	}
}

// open dials addr and starts a connection's reader and writer.
func (c *Client) open(ctx context.Context, addr string) (*clientConn, error) {
	nc, err := c.dial(ctx, addr)
	if err != nil {
		// A connection refused for the client's own configuration (its
		// credentials) keeps that code: no other server will think
		// better of them, and the user must fix them, not the network.
		code := errcode.Network
		if errcode.Of(err) == errcode.InvalidConfig {
			code = errcode.InvalidConfig
		}
		return nil, fmt.Errorf("connect %s: %w: %w: %w", addr, err, ErrNotSent, code)
	}
	cc := &clientConn{nc: nc, pending: make(map[uint64]*call), done: make(chan struct{})}
	cc.w = newFrameWriter(nc, c.opts.WriteTimeout, cc.done, cc.fail)
	go cc.w.loop()
	go cc.readLoop(c.opts.MaxFrame)
	// A closed client may have raced with this dial: close what it missed.
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		cc.fail(ErrClosed)
		return nil, ErrClosed
	}
	return cc, nil
}

// dial opens a connection to addr, dialing again while it is refused
// (see RefusedRetry).
func (c *Client) dial(ctx context.Context, addr string) (net.Conn, error) {
	var giveUp time.Time
	wait := time.Millisecond
	for {
		nc, err := c.opts.Dial(ctx, addr)
		if err == nil || c.opts.RefusedRetry < 0 || !errors.Is(err, syscall.ECONNREFUSED) {
			return nc, err
		}
		now := time.Now()
		if giveUp.IsZero() {
			limit := MaxRefusedRetry
			if c.opts.RefusedRetry > 0 {
				limit = c.opts.RefusedRetry
			}
			giveUp = now.Add(limit)
			if dl, ok := ctx.Deadline(); ok && dl.Before(giveUp) {
				giveUp = dl
			}
		}
		if now.Add(wait).After(giveUp) {
			return nil, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait = min(2*wait, 16*time.Millisecond)
	}
}

// fail closes the connection and fails every request waiting on it.
func (cc *clientConn) fail(cause error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.dead.Store(true)
	cc.err = fmt.Errorf("%w: %w", cause, ErrConnLost)
	if errors.Is(cause, ErrClosed) {
		cc.err = ErrClosed
	}
	pending := cc.pending
	cc.pending = nil
	close(cc.done)
	cc.mu.Unlock()
	cc.nc.Close()
	for _, cl := range pending {
		if cl.timer != nil {
			cl.timer.Stop()
		}
		cl.done(wire.Frame{}, cc.err)
	}
}

func (cc *clientConn) readLoop(maxFrame int) {
	r := bufio.NewReaderSize(cc.nc, 64<<10)
	// A TLS server answers a plaintext client with a TLS alert record:
	// say so rather than "connection lost". No response frame begins so
	// (its length would be hundreds of megabytes).
	if b, err := r.Peek(3); err == nil && b[0] == tlsAlertRecord && b[1] == 3 {
		cc.fail(ErrTLSServer)
		return
	}
	for {
		f, err := wire.ReadFrame(r, maxFrame)
		if err != nil {
			cc.fail(err)
			return
		}
		if !f.IsResponse() {
			cc.fail(errors.New("request frame from a server"))
			return
		}
		if cl := cc.take(f.ID); cl != nil { // nil: the caller gave up waiting
			if cl.timer != nil {
				cl.timer.Stop()
			}
			cl.done(f, nil)
		}
	}
}

// Close closes every connection; calls under way fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	peers := c.peers
	c.peers = map[string]*peer{}
	c.mu.Unlock()
	for _, p := range peers {
		p.failAll(ErrClosed)
	}
	return nil
}

// Drop closes the connections to addr, so the next call dials afresh.
func (c *Client) Drop(addr string) {
	c.mu.Lock()
	p := c.peers[addr]
	c.mu.Unlock()
	if p != nil {
		p.failAll(errors.New("dropped"))
	}
}

func (p *peer) failAll(cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.slots {
		if cc := p.slots[i].Load(); cc != nil {
			cc.fail(cause)
		}
	}
}
