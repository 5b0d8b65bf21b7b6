package harness

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// A Proxy forwards TCP connections from one address to another and can
// cut them: a cut connection stops carrying bytes in both directions (as
// if the network dropped every packet) until it is healed, and a new
// connection from a cut origin is accepted but carries nothing either.
// Connections are told apart by their source IP, so a ring whose servers
// have distinct IPs (127.0.0.2, 127.0.0.3, ...) and dial their peers from
// them can be partitioned server by server, while clients dial from
// 127.0.0.1.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	cut    map[string]bool // source IPs whose traffic is dropped
	all    bool            // every source is cut
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewProxy listens on listen and forwards to target.
func NewProxy(t testing.TB, listen, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, cut: map[string]bool{}, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget changes where new connections are forwarded.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Cut drops the traffic of connections from source IP ip.
func (p *Proxy) Cut(ip string) {
	p.mu.Lock()
	p.cut[ip] = true
	p.mu.Unlock()
}

// CutAll drops the traffic of every connection.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	p.all = true
	p.mu.Unlock()
}

// Heal lets every connection carry bytes again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = map[string]bool{}
	p.all = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) blocked(ip string) bool { return p.all || p.cut[ip] }

// wait blocks while traffic from ip is cut; it reports false once the
// proxy is closed.
func (p *Proxy) wait(ip string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.blocked(ip) && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve(in net.Conn) {
	defer p.wg.Done()
	if !p.track(in) {
		return
	}
	defer p.untrack(in)
	ip, _, _ := net.SplitHostPort(in.RemoteAddr().String())
	// A connection opened while cut gets nowhere until healed.
	if !p.wait(ip) {
		return
	}
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	out, err := net.Dial("tcp", target)
	if err != nil {
		return // the server is down: the client sees its connection closed
	}
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	done := make(chan struct{}, 2)
	go func() { p.pipe(out, in, ip); done <- struct{}{} }()
	go func() { p.pipe(in, out, ip); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	<-done
}

// pipe copies src to dst, holding each chunk while traffic from ip is cut.
func (p *Proxy) pipe(dst, src net.Conn, ip string) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(ip) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}
