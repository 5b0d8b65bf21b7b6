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
	"sync/atomic"
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
// queue, flushing when the next reply is not ready yet. A command alone
// on the connection (nothing else read, nothing in flight: a client that
// does not pipeline) runs on the reader goroutine instead and the reader
// writes its reply itself: no goroutine is started, nor woken, for it.
type conn struct {
	srv *Server
	nc  net.Conn
	id  int64
	log *slog.Logger

	ctx    context.Context // cancelled by Server.Close or a write failure
	cancel context.CancelFunc

	queue  chan *pending
	budget budget

	// wmu guards bw and werr: the writer goroutine writes the queued
	// replies, the reader those it answered itself while nothing was in
	// flight.
	wmu   sync.Mutex
	bw    *bufio.Writer
	werr  error
	sched scheduler

	group pipelineGroup // commands read together, run as one batch

	// proto is the connection's protocol. HELLO, which runs in the reader
	// goroutine, changes it; the commands read after it see the change,
	// those before it were prepared with the old one. CLIENT LIST reads it
	// from other connections' goroutines, hence atomic.
	proto atomic.Int32

	mu       sync.Mutex
	name     string // CLIENT SETNAME
	lastCmd  string
	stopping bool // Shutdown: the next read error ends the connection quietly
	created  time.Time
	// authUser is the user the connection is authenticated as (AUTH,
	// HELLO AUTH or its client certificate); refusalLogged is set once
	// a refusal was logged.
	authUser      string
	refusalLogged bool

	// certChecked: the client certificate was asked for its user (once,
	// at the first command: the TLS handshake is over by then). Reader
	// goroutine only.
	certChecked bool
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
		bw:      bufio.NewWriterSize(nc, 32<<10),
		created: time.Now(),
	}
	c.budget.init(s.opts.MaxPipeline, s.opts.MaxPendingBytes)
	c.proto.Store(int32(resp2))
	return c
}

// protocol is the RESP version the connection speaks now.
func (c *conn) protocol() protocol { return protocol(c.proto.Load()) }

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
	defer c.flushGroup()
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
		// More commands already read and parsed: the next ReadCommand
		// returns at once. (After an inline command the guard's count
		// says nothing: the pipeline is then not grouped.)
		more := !g.inlineSeen && got < g.framed
		// Nothing else read: no command behind this one, not even part of
		// one. (After an inline command, unknown: not alone.)
		alone := !g.inlineSeen && got == g.framed && g.atBoundary()
		if !c.budget.tryAcquire(len(cmd.Raw)) {
			// The commands held in the group count in the budget: run
			// them before waiting for it.
			c.flushGroup()
			if !c.budget.acquire(len(cmd.Raw)) {
				return // the writer failed: nobody will read replies
			}
		}
		p := c.dispatch(cmd.Args, more, alone)
		p.size = len(cmd.Raw)
		if c.writeDirect(p, more) {
			continue
		}
		c.queue <- p
		if p.quit {
			return
		}
		if !more || len(c.group.members) >= maxGroup {
			c.flushGroup()
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

// writeDirect writes p's reply from the reader goroutine when it is
// ready and nothing is in flight before it (p holds the only count of the
// budget: every earlier reply was written), flushing unless more input is
// already read. It reports whether it did; otherwise p goes to the writer.
func (c *conn) writeDirect(p *pending, more bool) bool {
	if p.quit || !p.finished() || !c.budget.alone() {
		return false
	}
	c.wmu.Lock()
	c.write(p.out)
	if !more {
		c.flush()
	}
	c.wmu.Unlock()
	c.budget.release(p.size + len(p.out))
	return true
}

// write and flush, with wmu held, stop at the first write error.
func (c *conn) write(b []byte) {
	if c.werr == nil {
		_, c.werr = c.bw.Write(b)
		c.writeFailed(c.werr)
	}
}

func (c *conn) flush() {
	if c.werr == nil {
		c.werr = c.bw.Flush()
		c.writeFailed(c.werr)
	}
}

// writeLoop writes the replies in order. It flushes whenever the next
// reply is not ready yet, so that a pipeline's replies go out in as few
// system calls as possible without delaying any of them.
func (c *conn) writeLoop() {
	flush := func() {
		c.wmu.Lock()
		c.flush()
		c.wmu.Unlock()
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
		c.wmu.Lock()
		c.write(p.out)
		c.wmu.Unlock()
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
// commands that need no backend; for a command of single-key operations
// read with more behind it (a pipeline), from the group of such commands
// run as one batch; for one alone on the connection (alone: nothing else
// read; nothing in flight), on the reader goroutine; else from a
// goroutine of its own once the earlier commands it depends on are done.
func (c *conn) dispatch(args [][]byte, more, alone bool) *pending {
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
	if e := c.authorized(cmd); e != "" {
		p.out = redcon.AppendError(nil, e)
		close(p.done)
		return p
	}
	if cmd.local != nil {
		p.out, p.quit = cmd.local(c, args)
		close(p.done)
		return p
	}
	job := cmd.prepare(c, args)
	if job.run == nil && job.ops == nil {
		p.out = job.out
		close(p.done)
		return p
	}
	if e := c.allowed(cmd, job); e != "" {
		p.out = redcon.AppendError(nil, e)
		close(p.done)
		return p
	}
	fn := func(ctx context.Context) []byte {
		c.srv.batch(ctx, job.ops)
		return job.reply(job.ops)
	}
	if job.ops != nil && alone && len(c.group.members) == 0 && c.budget.alone() {
		// Alone on the connection: nothing read behind it, nothing in
		// flight before it. Run it here rather than on a new goroutine,
		// whose stack would grow anew for every command; its client
		// waits for its reply before sending more. Nothing in flight: it
		// depends on nothing, and nothing read after it can start before
		// it is done, so the scheduler need not know it (planning was 8%
		// of a server's CPU under 50 such clients, in its map of keys).
		c.run(p, nil, cmd.name, fn)
		return p
	}
	deps := c.sched.plan(p, job.reads, job.writes, job.readsAll)
	if job.ops == nil {
		// It may wait for members of the group, and later members may
		// wait for it: the group goes first, so that no group waits for a
		// command that waits for the group.
		c.flushGroup()
		go c.run(p, deps, cmd.name, job.run)
		return p
	}
	if more || len(c.group.members) > 0 {
		if !c.group.admits(job, deps) {
			// It must wait for a command of the group: the group goes,
			// and the command starts the next one, which runs once the
			// commands its members depend on are done.
			c.flushGroup()
		}
		c.group.add(p, cmd.name, job, deps)
		return p
	}
	go c.run(p, deps, cmd.name, fn)
	return p
}

// maxGroup bounds the commands of one pipeline group.
const maxGroup = 1024

// pipelineGroup is the commands of single-key operations read one after
// the other from the connection's buffer, without waiting for the
// network: they run as one batch, so that their requests to each replica
// server travel together, and their replies are ready together (the
// writer flushes once for all of them). A group runs once the earlier
// commands its members depend on (outside the group) are done; a command
// that depends on a member of the group starts the next group instead,
// so that a pipeline of writes then reads of the same keys runs as two
// batches.
type pipelineGroup struct {
	members []member
	in      map[*pending]bool // the members; true for those that only write
	deps    []*pending        // what the members wait for, outside the group
}

type member struct {
	p    *pending
	name string
	job  job
}

// admits reports whether a command that depends on deps may join: it may
// follow a member on its keys only as a write after a write (a later write
// in a batch gets a higher version, so writes of one key keep their
// order), never as a read after a write or a write after a read.
func (g *pipelineGroup) admits(j job, deps []*pending) bool {
	for _, d := range deps {
		if writeOnly, member := g.in[d]; member && (!writeOnly || len(j.reads) > 0) {
			return false
		}
	}
	return true
}

func (g *pipelineGroup) add(p *pending, name string, j job, deps []*pending) {
	if g.in == nil {
		g.in = map[*pending]bool{}
	}
	for _, d := range deps {
		if _, member := g.in[d]; !member {
			g.deps = append(g.deps, d)
		}
	}
	g.members = append(g.members, member{p: p, name: name, job: j})
	g.in[p] = len(j.reads) == 0
}

// flushGroup runs the group's commands as one batch, in a goroutine.
func (c *conn) flushGroup() {
	members, deps := c.group.members, c.group.deps
	if len(members) == 0 {
		return
	}
	// The next group is likely the size of this one (a client's pipeline
	// depth): one allocation rather than a slice grown from nothing.
	c.group.members, c.group.deps = make([]member, 0, len(members)), nil
	clear(c.group.in)
	go c.runGroup(members, deps)
}

// runGroup waits for deps, then runs the operations of members as one
// batch and answers each.
func (c *conn) runGroup(members []member, deps []*pending) {
	answered := 0
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("resp: pipeline panicked", "panic", r, "stack", string(debug.Stack()))
			for _, m := range members[answered:] {
				m.p.out = redcon.AppendError(nil, "ERR internal error running '"+m.name+"'")
				close(m.p.done)
			}
		}
	}()
	for _, d := range deps {
		select {
		case <-d.done:
		case <-c.ctx.Done():
			for ; answered < len(members); answered++ {
				members[answered].p.out = redcon.AppendError(nil, "ERR connection closing")
				close(members[answered].p.done)
			}
			return
		}
	}
	n := 0
	for _, m := range members {
		n += len(m.job.ops)
	}
	ops := make([]Op, 0, n)
	for _, m := range members {
		ops = append(ops, m.job.ops...)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.CommandTimeout)
	defer cancel()
	c.srv.batch(ctx, ops)
	outs := make([][]byte, len(members))
	for i, m := range members {
		n := len(m.job.ops)
		outs[i] = m.job.reply(ops[:n:n])
		ops = ops[n:]
	}
	// Every reply is ready before the first is released: the writer
	// writes them all and flushes once.
	for ; answered < len(members); answered++ {
		m := members[answered]
		m.p.out = outs[answered]
		c.budget.grow(len(m.p.out))
		close(m.p.done)
	}
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

// tryAcquire admits one command of n bytes if the connection is within
// its limits (one command is always admitted), without waiting. It
// reports whether it did.
func (b *budget) tryAcquire(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || (b.count > 0 && (b.count >= b.maxCount || b.bytes >= b.maxBytes)) {
		return false
	}
	b.count++
	b.bytes += n
	return true
}

// alone reports whether exactly one command is admitted: the reader's
// latest, with every earlier reply written.
func (b *budget) alone() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count == 1
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
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=0 db=0 resp=%d cmd=%s\n",
		c.id, c.nc.RemoteAddr(), c.nc.LocalAddr(), c.name, int(time.Since(c.created).Seconds()), c.protocol(), c.lastCmd)
}
