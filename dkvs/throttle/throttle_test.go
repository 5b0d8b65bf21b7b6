package throttle

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &clock{t: time.Unix(0, 0)}
		l := New(1<<20, c.now) // 1 MiB/s, burst 256 KiB
		if took, d := l.reserve(100 << 10); took != 100<<10 || d != 0 {
			t.Fatalf("within burst: %d %v", took, d)
		}
		took, d := l.reserve(1 << 20)
		if took != 256<<10 {
			t.Fatalf("took %d, want one burst", took)
		}
		// 156 KiB were left; 100 KiB more are owed at 1 MiB/s.
		if want := 100 * time.Second / 1024; d < want-time.Millisecond || d > want+time.Millisecond {
			t.Fatalf("delay %v, want %v", d, want)
		}
		c.add(time.Second)
		if _, d := l.reserve(1024); d != 0 {
			t.Fatalf("after refill: %v", d)
		}
		if err := New(0, c.now).Wait(context.Background(), 1<<30); err != nil {
			t.Fatal("unlimited limiter waited")
		}
	})
}
