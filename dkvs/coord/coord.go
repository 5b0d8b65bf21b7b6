// Package coord runs quorum operations on the ring: put, get and delete
// fanned out in parallel to a key's home replicas.
//
// The same Coordinator serves the Go client, the C library (through the Go
// client) and servers that coordinate for clients that do not know the
// ring. It talks to replicas through a Transport, so tests run it over an
// in-memory network with injected faults.
//
// Two modes: the default, Dynamo's, with sloppy quorums (fallback servers
// keep hints for home replicas that are down) and read repair; and the
// linearizable mode, with strict majority quorums on home replicas only,
// where a read that sees differing versions writes the newest back to a
// majority before it returns, and a write first reads the highest version
// from a majority and writes a strictly higher one.
package coord

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/health"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Transport sends one request frame to a server and returns its response.
// A failure that guarantees the request never left (it could not be sent)
// must match transport.ErrNotSent.
type Transport interface {
	Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error)
}

// Defaults. The size limits are package limits'.
const (
	DefaultTimeout      = 500 * time.Millisecond
	DefaultMaxKeySize   = limits.DefaultMaxKeySize
	DefaultMaxValueSize = limits.DefaultMaxValueSize
)

// Options configure a Coordinator.
type Options struct {
	// Timeout is the deadline of one request to one replica (default
	// DefaultTimeout). Large values get extra time in proportion to size.
	Timeout time.Duration
	// MaxKeySize and MaxValueSize are checked before anything is sent
	// (zero: the defaults of package limits).
	MaxKeySize, MaxValueSize int
	// Clock stamps versions; nil makes one with a random writer id.
	Clock *kv.Clock
	// Logger receives debug lines; nil discards.
	Logger *slog.Logger
	// Health is the failure detector: replicas it believes down are
	// skipped at once, and every request's outcome is reported to it. Nil
	// means every replica is always tried.
	Health *health.Detector
	// DisableSloppyQuorum stops writes from going to fallback servers
	// (as hints) when home replicas are down or fail.
	DisableSloppyQuorum bool
	// DisableReadRepair stops gets from sending the newest version to
	// replicas that answered with an older one.
	DisableReadRepair bool
	// DisableBatching sends every replica request in a frame of its own,
	// even when several for the same server are ready together (see
	// sender). Batches need an asynchronous transport.
	DisableBatching bool
	// OnView, if set, is told of every newer view the coordinator
	// installs, from SetView or from a replica's answer.
	OnView func(*topology.View)
}

// Coordinator runs quorum operations. It is safe for concurrent use.
type Coordinator struct {
	view  atomic.Pointer[topology.View]
	tr    Transport
	clock *kv.Clock
	opts  Options
	lim   limits.Limits
	log   *slog.Logger
	bg    tracker // work still running after its operation returned
	snd   *sender // nil when the transport is not asynchronous

	repairs   atomic.Int64 // read repairs sent and acknowledged
	writeBack atomic.Int64 // linearizable reads that wrote the newest version back
}

// New returns a coordinator placing keys as v says, sending through tr.
func New(v *topology.View, tr Transport, opts Options) *Coordinator {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	lim := limits.Limits{MaxKeySize: opts.MaxKeySize, MaxValueSize: opts.MaxValueSize}.OrDefault()
	opts.MaxKeySize, opts.MaxValueSize = lim.MaxKeySize, lim.MaxValueSize
	if opts.Clock == nil {
		opts.Clock = kv.NewClock(RandomWriterID(), nil)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{tr: tr, clock: opts.Clock, opts: opts, lim: lim, log: log}
	c.bg.init()
	if a, ok := tr.(AsyncTransport); ok && !opts.DisableBatching {
		c.snd = newSender(a, lim)
	}
	c.view.Store(v)
	return c
}

// View returns the placement the coordinator uses now.
func (c *Coordinator) View() *topology.View { return c.view.Load() }

// SetView makes v the placement of later operations unless its epoch is
// older than the current one's, and reports whether it did (a state of
// the same epoch may say more: which servers of a move are done
// streaming). Operations under way keep the view they started with; a
// replica that knows a newer epoch refuses their requests, and they start
// again with the newer one.
func (c *Coordinator) SetView(v *topology.View) bool {
	for {
		cur := c.view.Load()
		if cur != nil && v.Epoch() < cur.Epoch() {
			return false
		}
		if c.view.CompareAndSwap(cur, v) {
			if f := c.opts.OnView; f != nil {
				f(v)
			}
			return true
		}
	}
}

// RandomWriterID returns a random non-zero writer id.
func RandomWriterID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// Ring returns the ring reads go to now.
func (c *Coordinator) Ring() *ring.Ring { return c.View().ReadRing() }

// Clock returns the coordinator's clock.
func (c *Coordinator) Clock() *kv.Clock { return c.clock }

// ReadRepairs returns how many read repairs were sent and acknowledged.
func (c *Coordinator) ReadRepairs() int64 { return c.repairs.Load() }

// WriteBacks returns how many linearizable reads saw differing versions
// and wrote the newest back to a majority.
func (c *Coordinator) WriteBacks() int64 { return c.writeBack.Load() }

// Wait blocks until no work started by earlier operations is running
// (every replica request is bounded by its deadline) or ctx ends. A
// one-shot process calls it before exiting so that a put reaches all N
// live replicas, not only the first W. Operations may run concurrently
// with Wait; it returns at a moment when none was running.
func (c *Coordinator) Wait(ctx context.Context) error { return c.bg.wait(ctx) }

// tracker counts work under way. Unlike a sync.WaitGroup, work may start
// while someone waits.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond
}

func (t *tracker) init() { t.idle = sync.NewCond(&t.mu) }

func (t *tracker) add(n int) {
	t.mu.Lock()
	t.n += n
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	if t.n--; t.n == 0 {
		t.idle.Broadcast()
	}
	t.mu.Unlock()
}

func (t *tracker) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		t.mu.Lock()
		for t.n > 0 && ctx.Err() == nil {
			t.idle.Wait()
		}
		t.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		t.idle.Broadcast() // let the waiter see ctx and leave
		t.mu.Unlock()
		return ctx.Err()
	}
}

// Errors of quorum operations. Each wraps an errcode.
var (
	// ErrQuorum: fewer replicas than required answered. Wraps errcode.Network.
	ErrQuorum = fmt.Errorf("quorum not reached: %w", errcode.Network)
	// ErrUnknownOutcome: a write failed after some replicas may have
	// applied it (one acknowledged it, or a request was sent and not
	// answered): it may yet become visible. Wraps errcode.Network.
	ErrUnknownOutcome = fmt.Errorf("outcome unknown: %w", errcode.Network)
)

// ReplicaError is one replica's failure.
type ReplicaError struct {
	Addr string
	Err  error
}

func (e ReplicaError) Error() string {
	msg := e.Err.Error()
	if strings.HasPrefix(msg, e.Addr+":") {
		return msg // transport errors already name the address
	}
	return e.Addr + ": " + msg
}

// QuorumError reports an operation that did not reach its quorum: how
// many replicas were asked, how many were needed, how many answered, and
// why the others did not. It matches ErrQuorum, ErrUnknownOutcome when
// Unknown is set, and the errcode of the most telling replica failure (a
// refused value beats a network error).
type QuorumError struct {
	Op       string
	Need     int
	Got      int
	Asked    int
	Failures []ReplicaError
	// Unknown is set for a write that some replica may have applied.
	Unknown bool
	code    errcode.Code
}

func (e *QuorumError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Unknown {
		b.WriteString(": outcome unknown")
	}
	fmt.Fprintf(&b, ": %d of %d replicas answered, %d needed", e.Got, e.Asked, e.Need)
	for i, f := range e.Failures {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
		if i == len(e.Failures)-1 {
			b.WriteString(")")
		}
	}
	return b.String()
}

// Is matches ErrQuorum, ErrUnknownOutcome, the error's code, and
// auth.ErrDenied and auth.ErrAuthRequired when a replica refused the
// client's credentials or rights.
func (e *QuorumError) Is(target error) bool {
	switch target {
	case ErrQuorum:
		return true
	case ErrUnknownOutcome:
		return e.Unknown
	case auth.ErrDenied, auth.ErrAuthRequired:
		for _, f := range e.Failures {
			if errors.Is(f.Err, target) {
				return true
			}
		}
		return false
	}
	var code errcode.Code
	if errors.As(target, &code) {
		return code == e.code
	}
	return false
}

// As lets errcode.Of find the code.
func (e *QuorumError) As(target any) bool {
	if p, ok := target.(*errcode.Code); ok {
		*p = e.code
		return true
	}
	return false
}

func newQuorumError(op string, need, got, asked int, fails []ReplicaError, unknown bool) *QuorumError {
	code := quorumCode(fails)
	if unknown {
		code = errcode.Network
	}
	return &QuorumError{Op: op, Need: need, Got: got, Asked: asked, Failures: fails, Unknown: unknown, code: code}
}

// statusError turns a replica's non-OK status into an error.
func statusError(f wire.Frame) error {
	if err, ok := storageStatusError(f); ok {
		return err
	}
	msg, _ := wire.DecodeMessage(f.Body)
	if msg == "" {
		msg = f.Status().String()
	}
	switch f.Status() {
	case wire.StatusTooLarge, wire.StatusBadRequest:
		return fmt.Errorf("%s: %w", msg, errcode.InvalidArg)
	case wire.StatusDenied, wire.StatusAuthRequired:
		return auth.StatusError(f.Status(), msg)
	case wire.StatusInternal:
		return fmt.Errorf("%s: %w", msg, errcode.IO)
	default:
		return fmt.Errorf("%s: %w", msg, errcode.Network)
	}
}

// quorumCode picks the code reported for a failed quorum: a replica that
// refused the request says more than one that did not answer, and a
// refusal of the client's credentials or rights most.
func quorumCode(fs []ReplicaError) errcode.Code {
	code := errcode.Network
	for _, f := range fs {
		if auth.IsRefusal(f.Err) {
			return errcode.InvalidConfig
		}
	}
	for _, f := range fs {
		switch errcode.Of(f.Err) {
		case errcode.InvalidArg:
			return errcode.InvalidArg
		case errcode.IO:
			code = errcode.IO
		}
	}
	return code
}

// checkKey validates a key against the limits.
func (c *Coordinator) checkKey(key []byte) error { return c.lim.CheckKey(key) }

// deadline returns the time by which one replica must answer a request
// carrying size bytes: the timeout plus 1 ms per 64 KiB, capped by ctx.
func (c *Coordinator) deadline(ctx context.Context, size int) time.Time {
	d := time.Now().Add(c.opts.Timeout + time.Duration(size>>16)*time.Millisecond)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	return d
}

// reply is one replica's answer to one request.
type reply struct {
	server  int
	hintFor int // home replica the request held a hint for, or -1
	f       wire.Frame
	err     error
	netErr  bool // err came from the transport (timeout, connection), not from the replica
	sent    bool // the request may have reached the replica
	refused bool // the replica's storage refused the write without applying it
	corrupt bool // the replica found the record corrupt
	stale   bool // the replica knows a newer ring and did nothing
}

// mayHaveApplied reports whether a failed write request may nevertheless
// have been applied by its replica.
func (r reply) mayHaveApplied() bool {
	if r.err == nil {
		return true
	}
	if r.refused {
		return false
	}
	if r.netErr {
		return r.sent
	}
	// The replica answered with an error: a refusal is definite, but a
	// storage failure may come after the record was written.
	return errcode.Of(r.err) == errcode.IO
}

func (c *Coordinator) up(v *topology.View, server int) bool {
	return c.opts.Health == nil || c.opts.Health.Up(v.Addrs()[server])
}

// requestContext returns the context of a request carrying size bytes:
// detached from ctx's cancellation, so that replicas not needed for the
// quorum still complete after the operation returned (Wait waits for
// them), and bounded by the request's deadline.
func (c *Coordinator) requestContext(ctx context.Context, size int) (context.Context, context.CancelFunc) {
	dl := c.deadline(ctx, size)
	if _, ok := c.tr.(AsyncTransport); ok {
		// An asynchronous call takes the deadline alone (its transport
		// arms one timer per frame): a context.WithDeadline here would
		// arm another per operation, which was 7% of a RESP server's CPU.
		return &deadlineOnly{parent: ctx, d: dl, cork: corkOf(ctx)}, noCancel
	}
	return context.WithDeadline(context.WithoutCancel(ctx), dl)
}

// noCancel is the cancel function of a deadlineOnly context.
func noCancel() {}

// deadlineOnly is a context that carries a deadline and its parent's
// values but never ends: what requests sent asynchronously need (their
// transport enforces the deadline). It is one allocation and keeps the
// batch's cork at hand: context.WithoutCancel cost one more per
// operation, and each lookup of a value through it another (it boxes
// itself), one per replica request.
type deadlineOnly struct {
	parent context.Context
	d      time.Time
	cork   *cork
}

var _ context.Context = (*deadlineOnly)(nil)

// Deadline returns the request's deadline.
func (c *deadlineOnly) Deadline() (time.Time, bool) { return c.d, true }

// Done returns nil: the context never ends.
func (c *deadlineOnly) Done() <-chan struct{} { return nil }

// Err returns nil: the context never ends.
func (c *deadlineOnly) Err() error { return nil }

// Value returns the parent's value for key.
func (c *deadlineOnly) Value(key any) any { return c.parent.Value(key) }

// AsyncTransport is a Transport that can also send a request without a
// goroutine waiting for it; the TCP transport is one, and so is a
// server's own. Under load a goroutine per replica request was a
// measurable share of the coordinator's CPU, so the coordinator uses Go
// whenever its transport has it.
type AsyncTransport interface {
	Transport
	// Go sends req to addr and calls done exactly once, from another
	// goroutine, with the response or an error (a timeout once deadline
	// passes). done must not block.
	Go(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error))
}

var _ AsyncTransport = (*transport.Client)(nil)

// send calls server (an index of v's servers) with req on rctx, a
// context from requestContext that the requests of one operation share,
// and delivers the reply on out, which must have room for it. then, if
// not nil, runs after the delivery. A replica that knows a newer epoch
// than v's answers with its ring, which the coordinator installs.
func (c *Coordinator) send(rctx context.Context, v *topology.View, server, hintFor int, req wire.Frame, out chan<- reply, then func()) {
	c.bg.add(1)
	addr := v.Addrs()[server]
	finish := c.finisher(v, server, hintFor, out, then)
	// rctx never ends by cancellation before its replies are in, so its
	// deadline is all an asynchronous call needs.
	if dl, ok := rctx.Deadline(); ok {
		if c.snd != nil {
			o := outgoing{req: req, deadline: dl, done: finish}
			if k := corkOf(rctx); k == nil || !k.hold(addr, o) {
				c.snd.send(addr, o)
			}
			return
		}
		if a, ok := c.tr.(AsyncTransport); ok {
			a.Go(addr, req, dl, finish)
			return
		}
	}
	go func() {
		f, err := c.tr.Call(rctx, addr, req)
		finish(f, err)
	}()
}

// InlineTransport is a LocalTransport that can also answer a request to
// its own process on the calling goroutine.
type InlineTransport interface {
	LocalTransport
	// Run answers req, sent to addr (for which Local is true), before it
	// returns: it calls done with the response or an error.
	Run(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error))
}

// sendHere is send for an operation whose only replica is this process
// (N=1 on a server): the request runs on the calling goroutine, which
// would otherwise only hand it to a worker and wait for its reply (the
// hand-over both ways was measurable per command at N=1). It reports
// false, having sent nothing, when the request must go through send.
func (c *Coordinator) sendHere(rctx context.Context, v *topology.View, server int, req wire.Frame, out chan<- reply) bool {
	in, ok := c.tr.(InlineTransport)
	if !ok || corkOf(rctx) != nil {
		return false
	}
	addr := v.Addrs()[server]
	dl, ok := rctx.Deadline()
	if !ok || !in.Local(addr) {
		return false
	}
	c.bg.add(1)
	in.Run(addr, req, dl, c.finisher(v, server, -1, out, nil))
	return true
}

// finisher returns what delivers the reply of a request to server on out
// (see send).
func (c *Coordinator) finisher(v *topology.View, server, hintFor int, out chan<- reply, then func()) func(wire.Frame, error) {
	addr := v.Addrs()[server]
	return func(f wire.Frame, err error) {
		r := reply{server: server, hintFor: hintFor, f: f, err: err, netErr: err != nil,
			sent: err == nil || !errors.Is(err, transport.ErrNotSent)}
		switch {
		case err != nil:
		case f.Status() == wire.StatusStaleEpoch:
			r.err, r.stale = errStaleEpoch, true
			if st, derr := topology.Decode(f.Body); derr == nil {
				c.SetView(topology.NewView(st))
			}
		case f.Status() != wire.StatusOK && f.Status() != wire.StatusNotFound:
			r.err = statusError(f)
			r.refused = c.storageReply(addr, f)
			r.corrupt = f.Status() == wire.StatusCorrupt
		}
		if h := c.opts.Health; h != nil {
			// A server that refused the connection's credentials (a
			// wrong token, a user it does not know) answered: it is up,
			// and marking it down would only hide the real error.
			if r.netErr && !auth.IsRefusal(err) {
				h.Failed(addr, err)
			} else {
				h.Succeeded(addr)
			}
		}
		out <- r
		if then != nil {
			then()
		}
		c.bg.done()
	}
}

// errStaleEpoch is the failure of a replica that refused a request
// placed with an older ring than it knows: nothing was done.
var errStaleEpoch = fmt.Errorf("the replica knows a newer ring: %w", errcode.Network)

// frame returns the request frame of op for view v: its epoch, then the
// body body appends.
func frame(v *topology.View, op wire.Op, flags uint8, size int, body func([]byte) []byte) wire.Frame {
	b := wire.AppendEpoch(make([]byte, 0, 8+size), v.Epoch())
	return wire.Frame{Kind: uint8(op), Flags: flags | wire.FlagEpoch, Body: body(b)}
}

// errPeerDown is the failure recorded for a replica skipped because the
// failure detector believes it down.
var errPeerDown = fmt.Errorf("skipped: marked down by the failure detector: %w: %w", transport.ErrNotSent, errcode.Network)

// sendAll sends req to every server on one shared deadline and returns
// the channel of their replies. The caller may stop reading before the
// last reply: the requests' context ends with the last of them.
func (c *Coordinator) sendAll(ctx context.Context, v *topology.View, servers []int, req wire.Frame) <-chan reply {
	rctx, cancel := c.requestContext(ctx, len(req.Body))
	out := make(chan reply, len(servers))
	var left atomic.Int32
	left.Store(int32(len(servers)))
	last := func() {
		if left.Add(-1) == 0 {
			cancel()
		}
	}
	for _, s := range servers {
		c.send(rctx, v, s, -1, req, out, last)
	}
	return out
}

// sendAlone is send on a deadline of its own, for a request sent after
// the operation's first round (a fallback after a failure, a repair).
func (c *Coordinator) sendAlone(ctx context.Context, v *topology.View, server, hintFor int, req wire.Frame, out chan<- reply) {
	rctx, cancel := c.requestContext(ctx, len(req.Body))
	c.send(rctx, v, server, hintFor, req, out, cancel)
}

func truncate(key []byte) string {
	if len(key) > 64 {
		return string(key[:64]) + "…"
	}
	return string(key)
}
