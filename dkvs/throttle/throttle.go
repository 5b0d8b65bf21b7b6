// Package throttle bounds the bytes a background task moves per second:
// anti-entropy, and the streaming of ranges when the ring changes. Both
// share the network and disks with the requests of clients.
package throttle

import (
	"context"
	"sync"
	"time"
)

// Limiter is a token bucket bounding bytes per second. A zero rate means
// no limit. It is safe for concurrent use.
type Limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// New returns a limiter of rate bytes per second (0: none) on the clock
// now (nil: time.Now).
func New(rate int64, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{rate: float64(rate), now: now}
	if rate > 0 {
		// A burst of a quarter second (at least 64 KiB) keeps the rate
		// smooth without making every small message wait.
		l.burst = max(float64(rate)/4, 64<<10)
		l.tokens = l.burst
		l.last = now()
	}
	return l
}

// reserve takes up to one burst of n bytes from the bucket and returns how
// many it took and how long the caller must wait before sending them.
// Tokens may go negative: later callers then wait behind this one.
func (l *Limiter) reserve(n int) (int, time.Duration) {
	take := min(float64(n), l.burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= take
	if l.tokens >= 0 {
		return int(take), 0
	}
	return int(take), time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// Wait blocks until n bytes may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l.rate <= 0 {
		return nil
	}
	for n > 0 {
		took, delay := l.reserve(n)
		n -= took
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
	return nil
}
