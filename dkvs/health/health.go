// Package health is the failure detector: it tracks which peers answer.
//
// A peer whose request times out or whose connection fails is marked down
// at once, so that later requests skip it instead of each paying a
// deadline. A heartbeat pings down peers over the existing connections and
// marks them up again when a ping is answered; a successful connect alone
// is not proof of life. The ping is injected, and Probe runs one heartbeat
// round, so tests drive the detector without timers.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// PingFunc sends one liveness request to addr and returns nil if it was
// answered.
type PingFunc func(ctx context.Context, addr string) error

// Options configure a Detector.
type Options struct {
	// Interval between heartbeat rounds (default 100ms).
	Interval time.Duration
	// Timeout of one heartbeat ping (default 200ms).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one line per peer going down or coming up; nil
	// discards.
	Logger *slog.Logger
	// OnUp is called (in its own goroutine) when a peer comes back up.
	OnUp func(addr string)
	// OnDown is called (in its own goroutine) when a peer is marked down.
	OnDown func(addr string, cause error)
	// ProbeUp, if positive, is the interval of pings to peers believed up,
	// so that a peer that died is noticed even when nothing else is sent
	// to it. Such a peer is marked down after ProbeFailures pings in a row
	// went unanswered (default 2), not one: a single ping late under load
	// should not make it flap.
	ProbeUp       time.Duration
	ProbeFailures int
}

// Detector tracks the liveness of a set of peers, which SetPeers changes
// when the ring does. It is safe for concurrent use; Up is lock-free.
type Detector struct {
	opts Options
	log  *slog.Logger
	ping PingFunc
	set  atomic.Pointer[peerSet]
	mu   sync.Mutex // serialises SetPeers
}

// peerSet is the peers at one time: replaced whole, never modified.
type peerSet struct {
	byAddr map[string]*peer
	addrs  []string
}

type peer struct {
	down   atomic.Bool
	since  atomic.Int64 // unix nanoseconds of the last change
	missed atomic.Int32 // pings in a row unanswered while believed up
	mu     sync.Mutex   // guards cause
	cause  string
}

// State is a peer's liveness as seen by the detector.
type State struct {
	Addr  string
	Up    bool
	Since time.Time // when it last changed (zero if never)
	Cause string    // why it was marked down
}

// New returns a detector for the peers, all initially up.
func New(addrs []string, ping PingFunc, opts Options) *Detector {
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 200 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ProbeFailures <= 0 {
		opts.ProbeFailures = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Detector{opts: opts, log: log, ping: ping}
	d.SetPeers(addrs)
	return d
}

// SetPeers makes addrs the peers: a peer already known keeps its state, a
// new one starts up, one not in addrs is forgotten.
func (d *Detector) SetPeers(addrs []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.set.Load()
	ps := &peerSet{byAddr: make(map[string]*peer, len(addrs))}
	for _, a := range addrs {
		if _, dup := ps.byAddr[a]; dup {
			continue
		}
		p := (*peer)(nil)
		if old != nil {
			p = old.byAddr[a]
		}
		if p == nil {
			p = &peer{}
		}
		ps.byAddr[a] = p
		ps.addrs = append(ps.addrs, a)
	}
	d.set.Store(ps)
}

func (d *Detector) peer(addr string) *peer { return d.set.Load().byAddr[addr] }

// Up reports whether addr is believed alive. Unknown addresses are up.
func (d *Detector) Up(addr string) bool {
	p := d.peer(addr)
	return p == nil || !p.down.Load()
}

// Failed records that a request to addr failed at the transport level (a
// timeout, a refused or lost connection): the peer is marked down.
func (d *Detector) Failed(addr string, cause error) {
	p := d.peer(addr)
	if p == nil || !p.down.CompareAndSwap(false, true) {
		return
	}
	p.since.Store(d.opts.Now().UnixNano())
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	p.mu.Lock()
	p.cause = msg
	p.mu.Unlock()
	d.log.Warn("peer down", "peer", addr, "cause", msg)
	if d.opts.OnDown != nil {
		go d.opts.OnDown(addr, cause)
	}
}

// Succeeded records that addr answered a request: the peer is up.
func (d *Detector) Succeeded(addr string) {
	p := d.peer(addr)
	if p == nil || !p.down.Load() || !p.down.CompareAndSwap(true, false) {
		return
	}
	p.since.Store(d.opts.Now().UnixNano())
	d.log.Info("peer up", "peer", addr)
	if d.opts.OnUp != nil {
		go d.opts.OnUp(addr)
	}
}

// Probe runs one heartbeat round: every down peer is pinged (in parallel)
// and marked up if it answers.
func (d *Detector) Probe(ctx context.Context) {
	d.pingEach(ctx, false, func(a string, err error) {
		if err == nil {
			d.Succeeded(a)
		}
	})
}

// ProbeUp runs one round of pings of the peers believed up (see
// Options.ProbeUp).
func (d *Detector) ProbeUp(ctx context.Context) {
	d.pingEach(ctx, true, func(a string, err error) {
		p := d.peer(a)
		if p == nil {
			return // no longer a peer
		}
		if err == nil {
			p.missed.Store(0)
			return
		}
		if ctx.Err() == nil && int(p.missed.Add(1)) >= d.opts.ProbeFailures {
			p.missed.Store(0)
			d.Failed(a, fmt.Errorf("%d pings unanswered: %w", d.opts.ProbeFailures, err))
		}
	})
}

// pingEach pings, in parallel, every peer believed up (or down, as up
// says), each within the timeout, and waits for done to see every answer.
func (d *Detector) pingEach(ctx context.Context, up bool, done func(addr string, err error)) {
	var wg sync.WaitGroup
	for _, a := range d.set.Load().addrs {
		if d.Up(a) != up {
			continue
		}
		wg.Add(1)
		go func(a string) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
			defer cancel()
			done(a, d.ping(pctx, a))
		}(a)
	}
	wg.Wait()
}

// Run probes the peers believed down every Interval, and those believed
// up every ProbeUp if set, until ctx ends.
func (d *Detector) Run(ctx context.Context) {
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	var up <-chan time.Time
	if d.opts.ProbeUp > 0 {
		tu := time.NewTicker(d.opts.ProbeUp)
		defer tu.Stop()
		up = tu.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.Probe(ctx)
		case <-up:
			go d.ProbeUp(ctx)
		}
	}
}

// States returns every peer's state, in the order given to SetPeers.
func (d *Detector) States() []State {
	ps := d.set.Load()
	out := make([]State, 0, len(ps.addrs))
	for _, a := range ps.addrs {
		p := ps.byAddr[a]
		st := State{Addr: a, Up: !p.down.Load()}
		if ns := p.since.Load(); ns != 0 {
			st.Since = time.Unix(0, ns)
		}
		p.mu.Lock()
		if !st.Up {
			st.Cause = p.cause
		}
		p.mu.Unlock()
		out = append(out, st)
	}
	return out
}
