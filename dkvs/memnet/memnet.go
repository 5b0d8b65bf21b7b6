// Package memnet is an in-memory network for tests that run a whole ring
// in one process: stream connections and datagram sockets between named
// hosts, with faults per link and direction.
//
// It implements netx.Network, so servers and clients run their real
// transport over it (pipelined connections, the asynchronous call path,
// deadlines), only without sockets. Its faults behave as TCP's would:
//
//   - A blocked link (a partition, one-way or two-way) holds the bytes
//     written across it, as TCP retransmitting into the void, and delivers
//     them if the link heals; a dial across it waits until the link heals
//     or the dial's context ends (its SYN is lost). Datagrams across a
//     blocked link are lost.
//   - A delay (with seeded jitter) postpones each write's delivery; the
//     stream keeps its order.
//   - A reset probability breaks a connection on a write (a segment TCP
//     gave up on): both ends fail, what was in flight is lost.
//   - A crashed host (Crash) refuses connections, and every connection it
//     had is reset, as when a process is killed; Restart lets it listen
//     again.
//   - A paused host (Pause) still has its connections accepted, as the
//     kernel of a SIGSTOPped process does, but nothing it sends or is sent
//     moves until Resume.
//
// Every wait is on a sync.Cond or a timer, so a ring on memnet runs in a
// testing/synctest bubble, in simulated time. Randomness comes from the
// seed given to New.
package memnet

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/dkvs/dkvs/dkvs/netx"
)

// LinkFault is what happens to what one host sends to another.
type LinkFault struct {
	// Blocked holds everything sent until the link heals (a partition).
	Blocked bool
	// Delay postpones every write's delivery; Jitter adds up to that much
	// more, drawn from the network's seeded source.
	Delay, Jitter time.Duration
	// Reset is the probability that a write breaks its connection.
	Reset float64
}

type link struct{ from, to string }

// Net is an in-memory network. The zero value is not usable: call New.
type Net struct {
	mu   sync.Mutex
	cond *sync.Cond
	rng  *rand.Rand

	listeners map[string]*listener
	packets   map[string]*packetConn
	links     map[link]LinkFault
	isolated  map[string]bool // every link of the host blocked, dials too
	paused    map[string]bool // every link of the host blocked, dials accepted
	crashed   map[string]bool
	conns     map[*conn]struct{}
	nextPort  int
	dials     map[string]int // dial attempts by destination address
}

// New returns an empty network whose random choices follow seed.
func New(seed uint64) *Net {
	n := &Net{
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		listeners: map[string]*listener{},
		packets:   map[string]*packetConn{},
		links:     map[link]LinkFault{},
		isolated:  map[string]bool{},
		paused:    map[string]bool{},
		crashed:   map[string]bool{},
		conns:     map[*conn]struct{}{},
		nextPort:  40000,
		dials:     map[string]int{},
	}
	n.cond = sync.NewCond(&n.mu)
	return n
}

// Host returns the network as seen from host: its dials leave from
// there. A server's host is its address (IP:PORT), the one it listens on;
// a client's is any name.
func (n *Net) Host(host string) netx.Network { return hostNet{n, host} }

type hostNet struct {
	n    *Net
	host string
}

var _ netx.Network = hostNet{}

func (h hostNet) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return h.n.dial(ctx, h.host, addr)
}

func (h hostNet) Listen(addr string) (net.Listener, error) { return h.n.listen(addr) }

func (h hostNet) ListenPacket(addr string) (net.PacketConn, error) {
	return h.n.listenPacket(addr)
}

// SetLink sets the fault of the link from one host to another (one
// direction); the zero LinkFault heals it.
func (n *Net) SetLink(from, to string, f LinkFault) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if f == (LinkFault{}) {
		delete(n.links, link{from, to})
	} else {
		n.links[link{from, to}] = f
	}
	n.cond.Broadcast()
}

// Partition blocks every link between a host of a and a host of b, both
// ways.
func (n *Net) Partition(a, b []string) {
	for _, x := range a {
		for _, y := range b {
			n.update(x, y, func(f *LinkFault) { f.Blocked = true })
			n.update(y, x, func(f *LinkFault) { f.Blocked = true })
		}
	}
}

// PartitionOneWay blocks what hosts of from send to hosts of to; the
// other way still works.
func (n *Net) PartitionOneWay(from, to []string) {
	for _, x := range from {
		for _, y := range to {
			n.update(x, y, func(f *LinkFault) { f.Blocked = true })
		}
	}
}

func (n *Net) update(from, to string, change func(*LinkFault)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.links[link{from, to}]
	change(&f)
	if f == (LinkFault{}) {
		delete(n.links, link{from, to})
	} else {
		n.links[link{from, to}] = f
	}
	n.cond.Broadcast()
}

// Isolate cuts host off from every other host, both ways, until Heal.
func (n *Net) Isolate(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[host] = true
	n.cond.Broadcast()
}

// Pause freezes host's traffic both ways (connections to it are still
// accepted) until Resume.
func (n *Net) Pause(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.paused[host] = true
	n.cond.Broadcast()
}

// Resume undoes Pause: what was held is delivered.
func (n *Net) Resume(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.paused, host)
	n.cond.Broadcast()
}

// Heal removes every link fault and isolation (not pauses or crashes):
// what was held is delivered.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links = map[link]LinkFault{}
	n.isolated = map[string]bool{}
	n.cond.Broadcast()
}

// Crash kills host as a process dies: its listeners and sockets close,
// every connection with an end on it is reset, and it refuses
// connections until Restart.
func (n *Net) Crash(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.crashed[host] = true
	delete(n.paused, host)
	for addr, l := range n.listeners {
		if l.host == host {
			l.closed = true
			delete(n.listeners, addr)
		}
	}
	for addr, p := range n.packets {
		if addr == host {
			p.closed = true
			delete(n.packets, addr)
		}
	}
	for c := range n.conns {
		if c.localHost == host || c.remoteHost == host {
			n.resetLocked(c)
		}
	}
	n.cond.Broadcast()
}

// Restart lets a crashed host listen and dial again.
func (n *Net) Restart(host string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.crashed, host)
	n.cond.Broadcast()
}

// Dials returns how many connections were attempted to addr.
func (n *Net) Dials(addr string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials[addr]
}

// blocked reports whether what from sends to to is held.
func (n *Net) blocked(from, to string) bool {
	if from == to {
		return n.paused[from]
	}
	return n.links[link{from, to}].Blocked || n.isolated[from] || n.isolated[to] || n.paused[from] || n.paused[to]
}

// dialBlocked reports whether a connection from one host to another
// cannot be set up (its SYN or SYN-ACK is lost). A paused host's kernel
// still accepts.
func (n *Net) dialBlocked(from, to string) bool {
	if from == to {
		return false
	}
	return n.links[link{from, to}].Blocked || n.links[link{to, from}].Blocked || n.isolated[from] || n.isolated[to]
}

// wakeAt broadcasts the network's condition at t, so that waiters whose
// deadline or delivery time is t look again.
func (n *Net) wakeAt(t time.Time) *time.Timer {
	return time.AfterFunc(time.Until(t), func() {
		n.mu.Lock()
		n.cond.Broadcast()
		n.mu.Unlock()
	})
}

// Errors, as the operating system's network gives them, so that callers
// match them with errors.Is (syscall.ECONNREFUSED, os.ErrDeadlineExceeded,
// net.ErrClosed).
func opError(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: addr, Err: err}
}

var (
	errRefused = os.NewSyscallError("connect", syscall.ECONNREFUSED)
	errReset   = os.NewSyscallError("read", syscall.ECONNRESET)
	errPipe    = os.NewSyscallError("write", syscall.EPIPE)
	errHostOut = os.NewSyscallError("connect", syscall.ENETUNREACH)
)

// Addr is the address of an endpoint on the network.
type Addr struct{ Host string }

// Network implements net.Addr.
func (Addr) Network() string { return "mem" }

func (a Addr) String() string { return a.Host }

// listener is a stream listener.
type listener struct {
	n      *Net
	addr   string
	host   string
	queue  []*conn
	closed bool
}

func (n *Net) listen(addr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.crashed[addr] {
		return nil, opError("listen", Addr{addr}, errHostOut)
	}
	if l := n.listeners[addr]; l != nil {
		return nil, opError("listen", Addr{addr}, os.NewSyscallError("bind", syscall.EADDRINUSE))
	}
	l := &listener{n: n, addr: addr, host: addr}
	n.listeners[addr] = l
	return l, nil
}

func (l *listener) Accept() (net.Conn, error) {
	n := l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		if l.closed {
			return nil, opError("accept", Addr{l.addr}, net.ErrClosed)
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue = l.queue[1:]
			return c, nil
		}
		n.cond.Wait()
	}
}

func (l *listener) Close() error {
	n := l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if n.listeners[l.addr] == l {
		delete(n.listeners, l.addr)
	}
	// Connections not accepted yet are reset, as the kernel does.
	for _, c := range l.queue {
		n.resetLocked(c)
	}
	l.queue = nil
	n.cond.Broadcast()
	return nil
}

func (l *listener) Addr() net.Addr { return Addr{l.addr} }

// half is one direction of a connection.
type half struct {
	queue []chunk
	last  time.Time // delivery time of the last chunk: the stream keeps its order
	eof   bool      // the writer closed
	shut  bool      // the reader closed: writes fail
}

type chunk struct {
	data []byte
	at   time.Time
}

// conn is one end of a stream connection.
type conn struct {
	n                     *Net
	localHost, remoteHost string
	local, remote         Addr
	in, out               *half
	peer                  *conn
	reset                 bool
	closed                bool
	readDL, writeDL       time.Time
}

func (n *Net) dial(ctx context.Context, from, addr string) (net.Conn, error) {
	stop := context.AfterFunc(ctx, func() {
		n.mu.Lock()
		n.cond.Broadcast()
		n.mu.Unlock()
	})
	defer stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dials[addr]++
	for {
		if n.crashed[from] {
			return nil, opError("dial", Addr{addr}, errHostOut)
		}
		l := n.listeners[addr]
		if l == nil || l.closed {
			return nil, opError("dial", Addr{addr}, errRefused)
		}
		if !n.dialBlocked(from, l.host) {
			n.nextPort++
			local := Addr{fmt.Sprintf("%s#%d", from, n.nextPort)}
			ab, ba := &half{}, &half{}
			client := &conn{n: n, localHost: from, remoteHost: l.host, local: local, remote: Addr{addr}, in: ba, out: ab}
			server := &conn{n: n, localHost: l.host, remoteHost: from, local: Addr{addr}, remote: local, in: ab, out: ba}
			client.peer, server.peer = server, client
			n.conns[client] = struct{}{}
			n.conns[server] = struct{}{}
			l.queue = append(l.queue, server)
			n.cond.Broadcast()
			return client, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, opError("dial", Addr{addr}, os.ErrDeadlineExceeded)
		}
		n.cond.Wait()
	}
}

// resetLocked breaks c and its peer: both ends fail from now on.
func (n *Net) resetLocked(c *conn) {
	for _, e := range []*conn{c, c.peer} {
		e.reset = true
		e.in.queue, e.out.queue = nil, nil
		if e.closed {
			delete(n.conns, e)
		}
	}
	n.cond.Broadcast()
}

func (c *conn) Read(b []byte) (int, error) {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	var timer *time.Timer
	var timerAt time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	wake := func(t time.Time) {
		if timer == nil || t.Before(timerAt) {
			if timer != nil {
				timer.Stop()
			}
			timer, timerAt = n.wakeAt(t), t
		}
	}
	for {
		switch {
		case c.closed:
			return 0, opError("read", c.local, net.ErrClosed)
		case c.reset:
			return 0, opError("read", c.local, errReset)
		}
		now := time.Now()
		if len(c.in.queue) > 0 && !n.blocked(c.remoteHost, c.localHost) {
			head := &c.in.queue[0]
			if !head.at.After(now) {
				k := copy(b, head.data)
				head.data = head.data[k:]
				if len(head.data) == 0 {
					c.in.queue = c.in.queue[1:]
				}
				return k, nil
			}
			wake(head.at)
		}
		if len(c.in.queue) == 0 && c.in.eof {
			return 0, io.EOF
		}
		if !c.readDL.IsZero() {
			if !now.Before(c.readDL) {
				return 0, opError("read", c.local, os.ErrDeadlineExceeded)
			}
			wake(c.readDL)
		}
		n.cond.Wait()
	}
}

func (c *conn) Write(b []byte) (int, error) {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case c.closed:
		return 0, opError("write", c.local, net.ErrClosed)
	case c.reset:
		return 0, opError("write", c.local, errReset)
	case c.out.shut:
		return 0, opError("write", c.local, errPipe)
	case !c.writeDL.IsZero() && !time.Now().Before(c.writeDL):
		return 0, opError("write", c.local, os.ErrDeadlineExceeded)
	}
	if len(b) == 0 {
		return 0, nil
	}
	f := n.links[link{c.localHost, c.remoteHost}]
	if f.Reset > 0 && n.rng.Float64() < f.Reset {
		n.resetLocked(c)
		return 0, opError("write", c.local, errReset)
	}
	at := time.Now().Add(f.Delay)
	if f.Jitter > 0 {
		at = at.Add(time.Duration(n.rng.Int64N(int64(f.Jitter) + 1)))
	}
	if at.Before(c.out.last) {
		at = c.out.last
	}
	c.out.last = at
	c.out.queue = append(c.out.queue, chunk{data: append([]byte(nil), b...), at: at})
	n.cond.Broadcast()
	return len(b), nil
}

func (c *conn) Close() error {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.out.eof = true
	c.in.shut = true
	c.in.queue = nil
	if c.reset || c.peer.closed {
		delete(n.conns, c)
		delete(n.conns, c.peer)
	}
	n.cond.Broadcast()
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	c.readDL = t
	n.cond.Broadcast()
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	c.writeDL = t
	return nil
}

// packetConn is a datagram socket.
type packetConn struct {
	n      *Net
	addr   string
	queue  []datagram
	closed bool
	readDL time.Time
}

type datagram struct {
	data []byte
	from string
	at   time.Time
}

func (n *Net) listenPacket(addr string) (net.PacketConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.crashed[addr] {
		return nil, opError("listen", Addr{addr}, errHostOut)
	}
	if n.packets[addr] != nil {
		return nil, opError("listen", Addr{addr}, os.NewSyscallError("bind", syscall.EADDRINUSE))
	}
	p := &packetConn{n: n, addr: addr}
	n.packets[addr] = p
	return p, nil
}

func (p *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n := p.n
	n.mu.Lock()
	defer n.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if p.closed {
			return 0, nil, opError("read", Addr{p.addr}, net.ErrClosed)
		}
		now := time.Now()
		if len(p.queue) > 0 && !p.queue[0].at.After(now) {
			d := p.queue[0]
			p.queue = p.queue[1:]
			return copy(b, d.data), Addr{d.from}, nil
		}
		next := p.readDL
		if len(p.queue) > 0 && (next.IsZero() || p.queue[0].at.Before(next)) {
			next = p.queue[0].at
		}
		if !p.readDL.IsZero() && !now.Before(p.readDL) {
			return 0, nil, opError("read", Addr{p.addr}, os.ErrDeadlineExceeded)
		}
		if !next.IsZero() {
			if timer != nil {
				timer.Stop()
			}
			timer = n.wakeAt(next)
		}
		n.cond.Wait()
	}
}

// WriteTo sends a datagram; one to nobody, or across a blocked link, is
// lost without an error, as UDP's are.
func (p *packetConn) WriteTo(b []byte, to net.Addr) (int, error) {
	n := p.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.closed {
		return 0, opError("write", Addr{p.addr}, net.ErrClosed)
	}
	dst := n.packets[to.String()]
	if dst == nil || dst.closed || n.blocked(p.addr, to.String()) {
		return len(b), nil
	}
	f := n.links[link{p.addr, to.String()}]
	at := time.Now().Add(f.Delay)
	if f.Jitter > 0 {
		at = at.Add(time.Duration(n.rng.Int64N(int64(f.Jitter) + 1)))
	}
	dst.queue = append(dst.queue, datagram{data: append([]byte(nil), b...), from: p.addr, at: at})
	n.cond.Broadcast()
	return len(b), nil
}

func (p *packetConn) Close() error {
	n := p.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if !p.closed {
		p.closed = true
		if n.packets[p.addr] == p {
			delete(n.packets, p.addr)
		}
		n.cond.Broadcast()
	}
	return nil
}

func (p *packetConn) LocalAddr() net.Addr { return Addr{p.addr} }

func (p *packetConn) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

func (p *packetConn) SetReadDeadline(t time.Time) error {
	n := p.n
	n.mu.Lock()
	defer n.mu.Unlock()
	p.readDL = t
	n.cond.Broadcast()
	return nil
}

func (p *packetConn) SetWriteDeadline(time.Time) error { return nil }

var (
	_ net.Listener   = (*listener)(nil)
	_ net.Conn       = (*conn)(nil)
	_ net.PacketConn = (*packetConn)(nil)
)
