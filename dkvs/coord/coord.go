// Package coord runs quorum operations on the ring: put, get and delete
// fanned out in parallel to a key's home replicas.
//
// The same Coordinator serves the Go client, the C library (through the Go
// client) and servers that coordinate for clients that do not know the
// ring. It talks to replicas through a Transport, so tests run it over an
// in-memory network with injected faults.
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

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/health"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Transport sends one request frame to a server and returns its response.
type Transport interface {
	Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error)
}

// Defaults.
const (
	DefaultTimeout      = 500 * time.Millisecond
	DefaultMaxKeySize   = 64 << 10
	DefaultMaxValueSize = 16 << 20
)

// Options configure a Coordinator.
type Options struct {
	// Timeout is the deadline of one request to one replica (default
	// DefaultTimeout). Large values get extra time in proportion to size.
	Timeout time.Duration
	// MaxKeySize and MaxValueSize are checked before anything is sent.
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
}

// Coordinator runs quorum operations. It is safe for concurrent use.
type Coordinator struct {
	ring  *ring.Ring
	addrs []string
	tr    Transport
	clock *kv.Clock
	opts  Options
	log   *slog.Logger
	bg    sync.WaitGroup // replica requests still running after their operation returned

	repairs atomic.Int64 // read repairs sent and acknowledged
}

// New returns a coordinator for the ring, sending through tr.
func New(r *ring.Ring, tr Transport, opts Options) *Coordinator {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxKeySize <= 0 {
		opts.MaxKeySize = DefaultMaxKeySize
	}
	if opts.MaxValueSize <= 0 {
		opts.MaxValueSize = DefaultMaxValueSize
	}
	if opts.Clock == nil {
		opts.Clock = kv.NewClock(RandomWriterID(), nil)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{ring: r, tr: tr, clock: opts.Clock, opts: opts, log: log}
	for _, s := range r.Servers() {
		c.addrs = append(c.addrs, s.Addr())
	}
	return c
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

// Ring returns the coordinator's ring.
func (c *Coordinator) Ring() *ring.Ring { return c.ring }

// Clock returns the coordinator's clock.
func (c *Coordinator) Clock() *kv.Clock { return c.clock }

// Errors of quorum operations. Each wraps an errcode.
var (
	// ErrQuorum: fewer replicas than required answered. Wraps errcode.Network.
	ErrQuorum = fmt.Errorf("quorum not reached: %w", errcode.Network)
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
// why the others did not. It matches ErrQuorum and the errcode of the most
// telling replica failure (a refused value beats a network error).
type QuorumError struct {
	Op       string
	Need     int
	Got      int
	Asked    int
	Failures []ReplicaError
	code     errcode.Code
}

func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d replicas answered, %d needed", e.Op, e.Got, e.Asked, e.Need)
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

// Is matches ErrQuorum and the error's code.
func (e *QuorumError) Is(target error) bool {
	if target == ErrQuorum {
		return true
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

// statusError turns a replica's non-OK status into an error.
func statusError(f wire.Frame) error {
	msg, _ := wire.DecodeMessage(f.Body)
	if msg == "" {
		msg = f.Status().String()
	}
	switch f.Status() {
	case wire.StatusTooLarge, wire.StatusBadRequest:
		return fmt.Errorf("%s: %w", msg, errcode.InvalidArg)
	case wire.StatusInternal:
		return fmt.Errorf("%s: %w", msg, errcode.IO)
	default:
		return fmt.Errorf("%s: %w", msg, errcode.Network)
	}
}

// quorumCode picks the code reported for a failed quorum: a replica that
// refused the request says more than one that did not answer.
func quorumCode(fs []ReplicaError) errcode.Code {
	code := errcode.Network
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
func (c *Coordinator) checkKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("empty key: %w", errcode.InvalidArg)
	}
	if len(key) > c.opts.MaxKeySize {
		return fmt.Errorf("key of %d bytes is above the limit of %d: %w", len(key), c.opts.MaxKeySize, errcode.InvalidArg)
	}
	return nil
}

// quorum validates n and q (W or R) and clamps them to the ring: n above
// the number of servers means all of them, and q follows n down.
func (c *Coordinator) quorum(n, q int, name string) (int, int, error) {
	if n < 1 || q < 1 {
		return 0, 0, fmt.Errorf("N=%d %s=%d: both must be at least 1: %w", n, name, q, errcode.InvalidArg)
	}
	if q > n {
		return 0, 0, fmt.Errorf("%s=%d is above N=%d: %w", name, q, n, errcode.InvalidArg)
	}
	if s := len(c.addrs); n > s {
		n = s
		if q > s {
			q = s
		}
	}
	return n, q, nil
}

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
}

func (c *Coordinator) up(server int) bool {
	return c.opts.Health == nil || c.opts.Health.Up(c.addrs[server])
}

// send calls server with req on its own deadline and delivers the reply
// on out. The call runs on a context detached from the caller's, so that
// replicas not needed for the quorum still complete after the operation
// returned (Wait waits for them).
func (c *Coordinator) send(ctx context.Context, server, hintFor int, req wire.Frame, out chan<- reply) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), c.deadline(ctx, len(req.Body)))
		defer cancel()
		addr := c.addrs[server]
		f, err := c.tr.Call(rctx, addr, req)
		r := reply{server: server, hintFor: hintFor, f: f, err: err, netErr: err != nil}
		if err == nil && f.Status() != wire.StatusOK && f.Status() != wire.StatusNotFound {
			r.err = statusError(f)
		}
		if h := c.opts.Health; h != nil {
			if r.netErr {
				h.Failed(addr, err)
			} else {
				h.Succeeded(addr)
			}
		}
		out <- r
	}()
}

// errPeerDown is the failure recorded for a replica skipped because the
// failure detector believes it down.
var errPeerDown = fmt.Errorf("skipped: marked down by the failure detector: %w", errcode.Network)

// Put stores value under key on the key's n home replicas and returns once
// w of them acknowledged a durable write. The others still complete in the
// background. It returns the version written.
func (c *Coordinator) Put(ctx context.Context, key, value []byte, n, w int) (kv.Version, error) {
	if len(value) > c.opts.MaxValueSize {
		return kv.Version{}, fmt.Errorf("value of %d bytes is above the limit of %d: %w", len(value), c.opts.MaxValueSize, errcode.InvalidArg)
	}
	if value == nil {
		value = []byte{}
	}
	return c.write(ctx, "put", key, kv.Record{Value: value}, n, w)
}

// Delete writes a tombstone for key on its n home replicas, acknowledged
// by w of them.
func (c *Coordinator) Delete(ctx context.Context, key []byte, n, w int) (kv.Version, error) {
	return c.write(ctx, "delete", key, kv.Record{Tombstone: true}, n, w)
}

func (c *Coordinator) write(ctx context.Context, op string, key []byte, rec kv.Record, n, w int) (kv.Version, error) {
	if err := c.checkKey(key); err != nil {
		return kv.Version{}, err
	}
	n, w, err := c.quorum(n, w, "W")
	if err != nil {
		return kv.Version{}, err
	}
	rec.Version = c.clock.Now()
	rec.N = uint8(n)
	body := wire.PutRequest{Key: key, Record: rec}
	wo := &writeOp{
		c: c, ctx: ctx, op: op, key: key, rec: rec, w: w,
		put: wire.Frame{Kind: uint8(wire.OpPut), Body: body.Append(make([]byte, 0, body.Size()))},
	}
	walk := c.ring.Walk(key)
	wo.homes = walk[:n]
	if !c.opts.DisableSloppyQuorum {
		wo.fallbacks = walk[n:]
	}
	result := make(chan error, 1)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		wo.run(result)
	}()
	select {
	case err := <-result:
		if err != nil {
			return kv.Version{}, err
		}
		return rec.Version, nil
	case <-ctx.Done():
		return kv.Version{}, fmt.Errorf("%s: %v: %w", op, ctx.Err(), errcode.Network)
	}
}

// writeOp is one put or delete: it sends the record to the home replicas,
// replaces each home replica that is down or fails by the next fallback
// server (which keeps the record as a hint for it), and reports the
// outcome once W acknowledgements arrived or can no longer arrive. It runs
// until every request it sent has been answered.
type writeOp struct {
	c         *Coordinator
	ctx       context.Context
	op        string
	key       []byte
	rec       kv.Record
	w         int
	put       wire.Frame
	homes     []int
	fallbacks []int // in ring order; empty without sloppy quorum
	nextFB    int
	replies   chan reply
	inflight  int
	acks      int
	fails     []ReplicaError
}

func (wo *writeOp) sendHome(s int) {
	wo.inflight++
	wo.c.send(wo.ctx, s, -1, wo.put, wo.replies)
}

// sendFallback sends the record to the next fallback that is up, as a
// hint for home. It reports whether one was found.
func (wo *writeOp) sendFallback(home int) bool {
	for wo.nextFB < len(wo.fallbacks) {
		f := wo.fallbacks[wo.nextFB]
		wo.nextFB++
		if !wo.c.up(f) {
			continue
		}
		hint := wire.HintRequest{Target: wo.c.addrs[home], Key: wo.key, Record: wo.rec}
		wo.inflight++
		wo.c.send(wo.ctx, f, home, wire.Frame{Kind: uint8(wire.OpHint), Body: hint.Append(nil)}, wo.replies)
		return true
	}
	return false
}

func (wo *writeOp) fail(server int, err error) {
	wo.fails = append(wo.fails, ReplicaError{wo.c.addrs[server], err})
}

func (wo *writeOp) run(result chan<- error) {
	c := wo.c
	wo.replies = make(chan reply, len(wo.homes)+len(wo.fallbacks))
	upHomes := 0
	for _, h := range wo.homes {
		if c.up(h) {
			upHomes++
		}
	}
	var skipped []int
	for _, h := range wo.homes {
		if c.up(h) {
			wo.sendHome(h)
			continue
		}
		wo.fail(h, errPeerDown)
		if !wo.sendFallback(h) {
			skipped = append(skipped, h)
		}
	}
	// The detector may be wrong: rather than fail for want of targets,
	// try the homes it believes down.
	if wo.inflight < wo.w {
		for _, h := range skipped {
			wo.sendHome(h)
		}
	}
	decided := false
	for wo.inflight > 0 {
		r := <-wo.replies
		wo.inflight--
		if r.err == nil {
			if cur, err := wire.DecodeVersion(r.f.Body); err == nil && r.hintFor < 0 {
				c.clock.Observe(cur)
			}
			wo.acks++
			if !decided && wo.acks >= wo.w {
				decided = true
				result <- nil
			}
			continue
		}
		wo.fail(r.server, r.err)
		if r.netErr {
			home := r.server
			if r.hintFor >= 0 {
				home = r.hintFor
			}
			wo.sendFallback(home)
		}
	}
	if !decided {
		result <- &QuorumError{Op: wo.op, Need: wo.w, Got: wo.acks, Asked: len(wo.homes), Failures: wo.fails, code: quorumCode(wo.fails)}
	}
}

// Get reads key from its n home replicas and returns the newest record
// among the first r replies. A key that is absent or deleted in the newest
// reply is errcode.NotFound; fewer than r replies is a QuorumError. Once
// every replica answered, those that answered with an older version (or
// not found) are sent the newest one (read repair), off the caller's path.
func (c *Coordinator) Get(ctx context.Context, key []byte, n, r int) (kv.Record, error) {
	if err := c.checkKey(key); err != nil {
		return kv.Record{}, err
	}
	n, r, err := c.quorum(n, r, "R")
	if err != nil {
		return kv.Record{}, err
	}
	g := &getOp{c: c, ctx: ctx, key: key, r: r, homes: c.ring.Preference(key, n)}
	type result struct {
		rec kv.Record
		err error
	}
	res := make(chan result, 1)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		g.run(func(rec kv.Record, err error) { res <- result{rec, err} })
	}()
	select {
	case out := <-res:
		return out.rec, out.err
	case <-ctx.Done():
		return kv.Record{}, fmt.Errorf("get: %v: %w", ctx.Err(), errcode.Network)
	}
}

type getOp struct {
	c     *Coordinator
	ctx   context.Context
	key   []byte
	r     int
	homes []int
}

// answered is a replica's answer: its record (zero version: not found).
type answered struct {
	server int
	rec    kv.Record
}

func (g *getOp) run(decide func(kv.Record, error)) {
	c := g.c
	replies := make(chan reply, len(g.homes))
	req := wire.Frame{Kind: uint8(wire.OpGet), Body: wire.GetRequest{Key: g.key}.Append(nil)}
	up := 0
	for _, h := range g.homes {
		if c.up(h) {
			up++
		}
	}
	probeAll := up < g.r // the detector may be wrong: try every home rather than fail
	inflight := 0
	var fails []ReplicaError
	for _, h := range g.homes {
		if probeAll || c.up(h) {
			inflight++
			c.send(g.ctx, h, -1, req, replies)
		} else {
			fails = append(fails, ReplicaError{c.addrs[h], errPeerDown})
		}
	}
	var newest kv.Record
	var answers []answered
	decided := false
	for ; inflight > 0; inflight-- {
		rp := <-replies
		if rp.err == nil && rp.f.Status() == wire.StatusOK {
			rec, err := wire.DecodeRecord(rp.f.Body)
			if err != nil {
				rp.err = fmt.Errorf("bad reply: %v: %w", err, errcode.Network)
			} else {
				answers = append(answers, answered{rp.server, rec})
				if rec.Version.Newer(newest.Version) {
					newest = rec
				}
			}
		} else if rp.err == nil {
			answers = append(answers, answered{server: rp.server}) // not found
		}
		if rp.err != nil {
			fails = append(fails, ReplicaError{c.addrs[rp.server], rp.err})
			if !decided && len(fails) > len(g.homes)-g.r {
				decided = true
				decide(kv.Record{}, &QuorumError{Op: "get", Need: g.r, Got: len(answers), Asked: len(g.homes), Failures: fails, code: quorumCode(fails)})
			}
			continue
		}
		if !decided && len(answers) >= g.r {
			decided = true
			if !newest.Version.IsZero() {
				c.clock.Observe(newest.Version)
			}
			if newest.Live() {
				decide(newest, nil)
			} else {
				decide(kv.Record{}, fmt.Errorf("get %q: %w", truncate(g.key), errcode.NotFound))
			}
		}
	}
	if !decided { // unreachable: every reply is either an answer or a failure
		decide(kv.Record{}, &QuorumError{Op: "get", Need: g.r, Got: len(answers), Asked: len(g.homes), Failures: fails, code: quorumCode(fails)})
	}
	if c.opts.DisableReadRepair || newest.Version.IsZero() {
		return
	}
	var stale []int
	for _, a := range answers {
		if newest.Version.Newer(a.rec.Version) {
			stale = append(stale, a.server)
		}
	}
	if len(stale) == 0 {
		return
	}
	body := wire.PutRequest{Key: g.key, Record: newest}
	put := wire.Frame{Kind: uint8(wire.OpPut), Body: body.Append(make([]byte, 0, body.Size()))}
	repairs := make(chan reply, len(stale))
	for _, s := range stale {
		c.send(g.ctx, s, -1, put, repairs)
	}
	for range stale {
		if r := <-repairs; r.err != nil {
			c.log.Debug("read repair failed", "peer", c.addrs[r.server], "err", r.err)
		} else {
			c.repairs.Add(1)
		}
	}
}

func truncate(key []byte) string {
	if len(key) > 64 {
		return string(key[:64]) + "…"
	}
	return string(key)
}

// ReadRepairs returns how many read repairs were sent and acknowledged.
func (c *Coordinator) ReadRepairs() int64 { return c.repairs.Load() }

// Wait blocks until every replica request started by earlier operations
// has finished (each is bounded by its deadline) or ctx ends. A one-shot
// process calls it before exiting so that a put reaches all N live
// replicas, not only the first W.
func (c *Coordinator) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
