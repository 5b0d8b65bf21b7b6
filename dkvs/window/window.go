// Package window keeps a server's traffic of the last minute, second by
// second: how many requests it answered and how long they took (p50 and
// p99). Prometheus histograms answer "since the server started"; an
// operator looking at a server in the console wants "now", and a peer
// asking for the server's stats wants it without a Prometheus server.
//
// It is fed by the transport's Observer hook, on the request path, so a
// request costs one atomic addition: the count of its latency bucket,
// cumulative since the start. Once a second Tick copies the counters into
// a ring of snapshots; readers subtract snapshots, so nothing on the
// request path ever resets, locks or allocates.
package window

import (
	"context"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Seconds is the length of the window.
const Seconds = 60

// Latency buckets are log-linear: subBuckets per power of two of
// nanoseconds (at most 1/8 = 12.5% wide, so a quantile is known within
// about 6%), up to 2^maxExp ns (about 69 s); longer requests land in the
// last bucket.
const (
	subBits    = 3
	subBuckets = 1 << subBits
	maxExp     = 36
	nBuckets   = (maxExp-subBits+1)<<subBits + subBuckets
)

// bucketOf returns the bucket of a latency of ns nanoseconds.
func bucketOf(ns int64) int {
	if ns < subBuckets {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	e := bits.Len64(uint64(ns)) - 1 // at least subBits
	if e > maxExp {
		return nBuckets - 1
	}
	return (e-subBits+1)<<subBits | int(uint64(ns)>>(e-subBits)&(subBuckets-1))
}

// bucketMid returns the middle of bucket i, in nanoseconds.
func bucketMid(i int) float64 {
	if i < subBuckets {
		return float64(i)
	}
	e := i>>subBits + subBits - 1
	low := float64(uint64(subBuckets+i&(subBuckets-1)) << (e - subBits))
	width := float64(uint64(1) << (e - subBits))
	return low + width/2
}

// snapshot is the cumulative counts at one tick.
type snapshot struct {
	at     time.Time
	counts [nBuckets]uint64
}

// Window counts requests in a rolling one-minute window. Its Observer
// methods are safe for concurrent use and never block; Tick and Traffic
// take a lock that the request path never does.
type Window struct {
	counts [nBuckets]atomic.Uint64

	mu    sync.Mutex
	snaps [Seconds + 1]snapshot // a ring: the last Seconds+1 ticks
	n     int                   // ticks taken
}

// A Window is told of every request by the transport.
var _ transport.Observer = (*Window)(nil)

// New returns an empty window. Call Run (or Tick once a second) to move
// it forward.
func New() *Window { return &Window{} }

// counted reports whether requests of op are the server's traffic: the
// failure detectors' pings and the stats that consoles poll are not.
func counted(op wire.Op) bool { return op != wire.OpPing && op != wire.OpStats }

// Request counts one answered request. It implements transport.Observer.
func (w *Window) Request(op wire.Op, _ wire.Status, _, _ int, d time.Duration) {
	if counted(op) {
		w.counts[bucketOf(int64(d))].Add(1)
	}
}

// Conn implements transport.Observer; connections are not counted.
func (w *Window) Conn(bool) {}

// Refused implements transport.Observer; refused frames are not counted.
func (w *Window) Refused() {}

// Run ticks once a second until ctx ends.
func (w *Window) Run(ctx context.Context) {
	w.Tick(time.Now())
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.Tick(now)
		}
	}
}

// Tick closes the second that ends at now: it snapshots the counters.
func (w *Window) Tick(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.snaps[w.n%len(w.snaps)]
	s.at = now
	for i := range w.counts {
		s.counts[i] = w.counts[i].Load()
	}
	w.n++
}

// Traffic returns the window: totals over the seconds it covers (up to
// Seconds, fewer just after the start) and each second's figures, oldest
// first. It is empty before the second tick.
func (w *Window) Traffic() wire.Traffic {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := min(w.n, len(w.snaps)) // snapshots held
	if k < 2 {
		return wire.Traffic{}
	}
	snap := func(j int) *snapshot { // j-th oldest held
		return &w.snaps[(w.n-k+j)%len(w.snaps)]
	}
	var t wire.Traffic
	var sec, all [nBuckets]uint64
	first, last := snap(0), snap(k-1)
	for j := 1; j < k; j++ {
		prev, cur := snap(j-1), snap(j)
		var n uint64
		for i := range sec {
			sec[i] = cur.counts[i] - prev.counts[i]
			n += sec[i]
		}
		t.PerSecond = append(t.PerSecond, int64(n))
		t.P50PerSecond = append(t.P50PerSecond, quantileUS(&sec, n, 0.50))
		t.P99PerSecond = append(t.P99PerSecond, quantileUS(&sec, n, 0.99))
	}
	for i := range all {
		all[i] = last.counts[i] - first.counts[i]
		t.Requests += int64(all[i])
	}
	t.Seconds = round(last.at.Sub(first.at).Seconds(), 3)
	if t.Seconds > 0 {
		t.Rate = round(float64(t.Requests)/t.Seconds, 1)
	}
	t.P50US = quantileUS(&all, uint64(t.Requests), 0.50)
	t.P99US = quantileUS(&all, uint64(t.Requests), 0.99)
	return t
}

// quantileUS returns the q-quantile of the n latencies counted in c, in
// microseconds rounded to 0.1; 0 when n is 0.
func quantileUS(c *[nBuckets]uint64, n uint64, q float64) float64 {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, x := range c {
		seen += x
		if seen >= rank {
			return round(bucketMid(i)/1e3, 1)
		}
	}
	return round(bucketMid(nBuckets-1)/1e3, 1)
}

func round(x float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(x*p) / p
}

// tee tells several observers.
type tee []transport.Observer

// Tee returns an observer that tells each of obs in turn (nil ones are
// left out).
func Tee(obs ...transport.Observer) transport.Observer {
	var t tee
	for _, o := range obs {
		if o != nil {
			t = append(t, o)
		}
	}
	switch len(t) {
	case 0:
		return nil
	case 1:
		return t[0]
	}
	return t
}

func (t tee) Request(op wire.Op, st wire.Status, in, out int, d time.Duration) {
	for _, o := range t {
		o.Request(op, st, in, out, d)
	}
}

func (t tee) Conn(open bool) {
	for _, o := range t {
		o.Conn(open)
	}
}

func (t tee) Refused() {
	for _, o := range t {
		o.Refused()
	}
}
