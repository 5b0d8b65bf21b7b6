package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/tidwall/redcon"
)

// resetReaderAbove: after a command larger than this, redcon's reader
// (whose buffer grew to hold it and never shrinks its capacity) is
// replaced by a fresh one as soon as it holds nothing.
const resetReaderAbove = 256 << 10

// conn is one client connection. Its reader goroutine (serve) reads
// commands, runs each in a goroutine of its own and queues a pending
// reply; its writer goroutine writes the replies in the order of the
// queue, flushing when the next reply is not ready yet.
type conn struct {
	srv *Server
	nc  net.Conn
	id  int64
	log *slog.Logger

	ctx    context.Context // cancelled by Server.Close or a write failure
	cancel context.CancelFunc

	queue  chan *pending
	budget budget
	sched  scheduler

	mu       sync.Mutex
	name     string // CLIENT SETNAME
	lastCmd  string
	stopping bool // Shutdown: the next read error ends the connection quietly
	created  time.Time
}

// pending is one command's reply, in the connection's order.
type pending struct {
	done chan struct{} // closed once out is set
	out  []byte
	size int  // request bytes counted in the budget
	quit bool // close the connection after writing out
}

func (p *pending) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func newConn(s *Server, nc net.Conn, id int64) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		srv:     s,
		nc:      nc,
		id:      id,
		log:     s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		ctx:     ctx,
		cancel:  cancel,
		queue:   make(chan *pending, s.opts.MaxPipeline+1),
		created: time.Now(),
	}
	c.budget.init(s.opts.MaxPipeline, s.opts.MaxPendingBytes)
	return c
}

// stopReading makes the reader stop at the next read (Shutdown).
func (c *conn) stopReading() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

func (c *conn) serve() {
	c.log.Debug("resp: connection opened")
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.queue)
	<-writerDone
	c.cancel()
	c.nc.Close()
	c.log.Debug("resp: connection closed")
}

func (c *conn) newGuard() *guard {
	o := c.srv.opts
	return newGuard(c.nc, guardLimits{
		maxArgs:    int64(o.MaxArgs),
		maxRequest: int64(o.MaxRequestSize),
		maxInline:  MaxInlineSize,
	})
}

func (c *conn) readLoop() {
	g := c.newGuard()
	rd := redcon.NewReader(g)
	var got uint64 // commands read from rd since the guard's count was reset
	for {
		if g.largest > resetReaderAbove && !g.inlineSeen && g.atBoundary() && got == g.framed {
			// Everything the guard passed on has come out as commands, so
			// rd holds nothing: replace it to free its grown buffer.
			rd = redcon.NewReader(g)
			g.resetCount()
			got = 0
		}
		cmd, err := rd.ReadCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		got++
		if !c.budget.acquire(len(cmd.Raw)) {
			return // the writer failed: nobody will read replies
		}
		p := c.dispatch(cmd.Args)
		p.size = len(cmd.Raw)
		c.queue <- p
		if p.quit {
			return
		}
	}
}

// readFailed ends the reading side: a protocol error is answered (after
// the replies of the commands before it) and closes the connection; the
// end of input, a closed connection or Shutdown's deadline end it quietly.
func (c *conn) readFailed(err error) {
	var pe *protocolError
	switch {
	case errors.As(err, &pe) || isRedconProtocolError(err):
		c.log.Debug("resp: protocol error", "err", err)
		p := &pending{done: make(chan struct{}), quit: true}
		p.out = redcon.AppendError(nil, "ERR "+err.Error())
		close(p.done)
		if c.budget.acquire(0) {
			c.queue <- p
		}
	case c.isStopping():
	default:
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
			c.log.Debug("resp: read", "err", err)
		}
	}
}

// isRedconProtocolError recognises the protocol errors redcon's reader
// reports itself (unbalanced quotes in an inline command, and any framing
// error the guard would let through); their type is not exported.
func isRedconProtocolError(err error) bool {
	const prefix = "Protocol error"
	s := err.Error()
	return len(s) >= len(prefix) && s[:len(prefix)] == prefix
}

// writeLoop writes the replies in order. It flushes whenever the next
// reply is not ready yet, so that a pipeline's replies go out in as few
// system calls as possible without delaying any of them.
func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 32<<10)
	var werr error
	flush := func() {
		if werr == nil {
			werr = bw.Flush()
			c.writeFailed(werr)
		}
	}
	for {
		var p *pending
		var ok bool
		select {
		case p, ok = <-c.queue:
		default:
			flush()
			p, ok = <-c.queue
		}
		if !ok {
			flush()
			return
		}
		if !p.finished() {
			flush()
			<-p.done
		}
		if werr == nil {
			_, werr = bw.Write(p.out)
			c.writeFailed(werr)
		}
		c.budget.release(p.size + len(p.out))
		if p.quit {
			flush()
			// The reader has stopped; drain nothing more.
		}
	}
}

// writeFailed stops the connection after a write error: the client is
// gone, so the commands under way are cancelled and reading stops.
func (c *conn) writeFailed(err error) {
	if err == nil {
		return
	}
	c.log.Debug("resp: write", "err", err)
	c.cancel()
	c.budget.close()
	c.nc.SetReadDeadline(time.Now())
}

// dispatch parses args and returns the pending reply: at once for
// commands that need no backend, or from a goroutine of its own once the
// earlier commands it depends on are done.
func (c *conn) dispatch(args [][]byte) *pending {
	p := &pending{done: make(chan struct{})}
	cmd, errReply := c.srv.lookup(args)
	if errReply != "" {
		p.out = redcon.AppendError(nil, errReply)
		close(p.done)
		return p
	}
	c.mu.Lock()
	c.lastCmd = cmd.name
	c.mu.Unlock()
	if cmd.local != nil {
		p.out, p.quit = cmd.local(c, args)
		close(p.done)
		return p
	}
	job := cmd.prepare(c, args)
	if job.run == nil {
		p.out = job.out
		close(p.done)
		return p
	}
	deps := c.sched.plan(p, job.reads, job.writes, job.readsAll)
	go c.run(p, deps, cmd.name, job.run)
	return p
}

// run waits for the commands p depends on, then runs it with the command
// deadline, never letting a panic take the server down.
func (c *conn) run(p *pending, deps []*pending, name string, fn func(ctx context.Context) []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("resp: command panicked", "cmd", name, "panic", r, "stack", string(debug.Stack()))
			p.out = redcon.AppendError(nil, "ERR internal error running '"+name+"'")
		}
		c.budget.grow(len(p.out))
		close(p.done)
	}()
	for _, d := range deps {
		select {
		case <-d.done:
		case <-c.ctx.Done():
			p.out = redcon.AppendError(nil, "ERR connection closing")
			return
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.CommandTimeout)
	defer cancel()
	p.out = fn(ctx)
}

// budget bounds what one connection has in flight: commands admitted and
// not yet answered, and their bytes.
type budget struct {
	mu                 sync.Mutex
	cond               sync.Cond
	count, bytes       int
	maxCount, maxBytes int
	closed             bool
}

func (b *budget) init(maxCount, maxBytes int) {
	b.cond.L = &b.mu
	b.maxCount, b.maxBytes = maxCount, maxBytes
}

// acquire admits one command of n bytes, waiting while the connection is
// at its limits (one command is always admitted). It returns false once
// the budget is closed.
func (b *budget) acquire(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.closed && b.count > 0 && (b.count >= b.maxCount || b.bytes >= b.maxBytes) {
		b.cond.Wait()
	}
	if b.closed {
		return false
	}
	b.count++
	b.bytes += n
	return true
}

// grow counts a reply's bytes, released with its command.
func (b *budget) grow(n int) {
	b.mu.Lock()
	b.bytes += n
	b.mu.Unlock()
}

func (b *budget) release(n int) {
	b.mu.Lock()
	b.count--
	b.bytes -= n
	b.mu.Unlock()
	b.cond.Signal()
}

func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// scheduler orders the commands of one connection that touch the same
// keys: a command waits for the earlier commands in flight that write a
// key it reads or writes, or that read a key it writes; a whole-keyspace
// read waits for every earlier write, and a write for every earlier
// whole-keyspace read. Only the reader goroutine uses it.
type scheduler struct {
	keys    map[string]*keyDeps
	writes  []*pending // writes in flight, for whole-keyspace reads
	globals []*pending // whole-keyspace reads in flight, for writes
	sweepAt int
}

type keyDeps struct {
	lastWrite *pending
	readers   []*pending // since lastWrite
}

func (s *scheduler) plan(p *pending, reads, writes [][]byte, readsAll bool) []*pending {
	if s.keys == nil {
		s.keys = make(map[string]*keyDeps)
		s.sweepAt = 1024
	}
	var deps []*pending
	add := func(d *pending) {
		if d != nil && d != p && !d.finished() {
			deps = append(deps, d)
		}
	}
	s.writes = pruneFinished(s.writes)
	s.globals = pruneFinished(s.globals)
	if readsAll {
		for _, w := range s.writes {
			add(w)
		}
		s.globals = append(s.globals, p)
	}
	for _, k := range reads {
		e := s.entry(k)
		add(e.lastWrite)
		e.readers = append(pruneFinished(e.readers), p)
	}
	if len(writes) > 0 {
		for _, g := range s.globals {
			add(g)
		}
		s.writes = append(s.writes, p)
	}
	for _, k := range writes {
		e := s.entry(k)
		add(e.lastWrite)
		for _, r := range e.readers {
			add(r)
		}
		e.lastWrite, e.readers = p, nil
	}
	if len(s.keys) > s.sweepAt {
		s.sweep()
	}
	return deps
}

func (s *scheduler) entry(k []byte) *keyDeps {
	e := s.keys[string(k)]
	if e == nil {
		e = &keyDeps{}
		s.keys[string(k)] = e
	}
	return e
}

// sweep forgets the keys no command in flight touches, keeping the map
// proportional to what is in flight.
func (s *scheduler) sweep() {
	for k, e := range s.keys {
		if e.lastWrite != nil && !e.lastWrite.finished() {
			continue
		}
		e.readers = pruneFinished(e.readers)
		if len(e.readers) == 0 {
			delete(s.keys, k)
		} else {
			e.lastWrite = nil
		}
	}
	s.sweepAt = max(1024, 2*len(s.keys))
}

func pruneFinished(ps []*pending) []*pending {
	out := ps[:0]
	for _, p := range ps {
		if !p.finished() {
			out = append(out, p)
		}
	}
	clear(ps[len(out):])
	return out
}

// clientInfo is the CLIENT INFO / CLIENT LIST line of the connection.
func (c *conn) clientInfo() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=0 db=0 resp=2 cmd=%s\n",
		c.id, c.nc.RemoteAddr(), c.nc.LocalAddr(), c.name, int(time.Since(c.created).Seconds()), c.lastCmd)
}
