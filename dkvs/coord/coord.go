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
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
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

func (e ReplicaError) Error() string { return e.Addr + ": " + e.Err.Error() }

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

type reply struct {
	server int
	f      wire.Frame
	err    error
}

// fanout sends req to every server in parallel and returns a channel that
// receives exactly one reply per server. The requests run on a context
// detached from ctx's cancellation but bounded by deadline, so that
// replicas not needed for the quorum still complete after the caller has
// returned (Wait waits for them).
func (c *Coordinator) fanout(ctx context.Context, servers []int, req wire.Frame, deadline time.Time) <-chan reply {
	out := make(chan reply, len(servers))
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	var wg sync.WaitGroup
	wg.Add(len(servers))
	c.bg.Add(len(servers))
	for _, s := range servers {
		go func(s int) {
			defer c.bg.Done()
			defer wg.Done()
			f, err := c.tr.Call(rctx, c.addrs[s], req)
			if err == nil && f.Status() != wire.StatusOK && f.Status() != wire.StatusNotFound {
				err = statusError(f)
			}
			out <- reply{server: s, f: f, err: err}
		}(s)
	}
	go func() { wg.Wait(); cancel() }()
	return out
}

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
	body := wire.PutRequest{Key: key, Record: rec}
	buf := body.Append(make([]byte, 0, body.Size()))
	servers := c.ring.Preference(key, n)
	replies := c.fanout(ctx, servers, wire.Frame{Kind: uint8(wire.OpPut), Body: buf}, c.deadline(ctx, len(buf)))
	acks := 0
	var fails []ReplicaError
	for range servers {
		var r reply
		select {
		case r = <-replies:
		case <-ctx.Done():
			return kv.Version{}, fmt.Errorf("%s: %v: %w", op, ctx.Err(), errcode.Network)
		}
		if r.err != nil {
			fails = append(fails, ReplicaError{c.addrs[r.server], r.err})
			if len(fails) > len(servers)-w {
				return kv.Version{}, &QuorumError{Op: op, Need: w, Got: acks, Asked: len(servers), Failures: fails, code: quorumCode(fails)}
			}
			continue
		}
		if cur, err := wire.DecodeVersion(r.f.Body); err == nil {
			c.clock.Observe(cur)
		}
		acks++
		if acks >= w {
			return rec.Version, nil
		}
	}
	return kv.Version{}, &QuorumError{Op: op, Need: w, Got: acks, Asked: len(servers), Failures: fails, code: quorumCode(fails)}
}

// Get reads key from its n home replicas and returns the newest record
// among the first r replies. A key that is absent or deleted in the newest
// reply is errcode.NotFound; fewer than r replies is a QuorumError.
func (c *Coordinator) Get(ctx context.Context, key []byte, n, r int) (kv.Record, error) {
	if err := c.checkKey(key); err != nil {
		return kv.Record{}, err
	}
	n, r, err := c.quorum(n, r, "R")
	if err != nil {
		return kv.Record{}, err
	}
	servers := c.ring.Preference(key, n)
	body := wire.GetRequest{Key: key}.Append(nil)
	replies := c.fanout(ctx, servers, wire.Frame{Kind: uint8(wire.OpGet), Body: body}, c.deadline(ctx, 0))
	var newest kv.Record
	got := 0
	var fails []ReplicaError
	for range servers {
		var rp reply
		select {
		case rp = <-replies:
		case <-ctx.Done():
			return kv.Record{}, fmt.Errorf("get: %v: %w", ctx.Err(), errcode.Network)
		}
		if rp.err == nil && rp.f.Status() == wire.StatusOK {
			rec, err := wire.DecodeRecord(rp.f.Body)
			if err != nil {
				rp.err = fmt.Errorf("bad reply: %v: %w", err, errcode.Network)
			} else if rec.Version.Newer(newest.Version) {
				newest = rec
			}
		}
		if rp.err != nil {
			fails = append(fails, ReplicaError{c.addrs[rp.server], rp.err})
			if len(fails) > len(servers)-r {
				return kv.Record{}, &QuorumError{Op: "get", Need: r, Got: got, Asked: len(servers), Failures: fails, code: quorumCode(fails)}
			}
			continue
		}
		got++
		if got >= r {
			break
		}
	}
	if !newest.Version.IsZero() {
		c.clock.Observe(newest.Version)
	}
	if !newest.Live() {
		return kv.Record{}, fmt.Errorf("get %q: %w", truncate(key), errcode.NotFound)
	}
	return newest, nil
}

func truncate(key []byte) string {
	if len(key) > 64 {
		return string(key[:64]) + "…"
	}
	return string(key)
}

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
