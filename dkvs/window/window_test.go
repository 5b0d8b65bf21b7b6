package window

import (
	"math"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/metrics"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, ns := range []int64{-5, 0, 1, 7, 8, 9, 15, 16, 17, 100, 1000, 12345, 1e6, 1e9, 1 << 36, 1<<37 - 1, 1 << 40, math.MaxInt64} {
		b := bucketOf(ns)
		if b < prev || b < 0 || b >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d (of %d)", ns, b, prev, nBuckets)
		}
		prev = b
		if ns > 0 && ns < 1<<maxExp {
			// The middle of a value's bucket is within 1/16 of it.
			if mid := bucketMid(b); math.Abs(mid-float64(ns)) > float64(ns)/16+1 {
				t.Errorf("bucketOf(%d) = %d, whose middle is %v", ns, b, mid)
			}
		}
	}
	// Every bucket is reached by its own middle.
	for i := 0; i < nBuckets; i++ {
		if got := bucketOf(int64(bucketMid(i))); got != i {
			t.Fatalf("bucketOf(bucketMid(%d) = %v) = %d", i, bucketMid(i), got)
		}
	}
}

func TestTraffic(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		// per second, the latencies of its requests
		seconds  [][]time.Duration
		extra    int // further empty seconds
		wantReq  int64
		wantSecs float64
		wantP50  float64 // µs, within 7%
		wantP99  float64
		wantLen  int
	}{
		{name: "empty", wantLen: 0},
		{name: "one second", seconds: [][]time.Duration{{100 * time.Microsecond, 100 * time.Microsecond}},
			wantReq: 2, wantSecs: 1, wantP50: 100, wantP99: 100, wantLen: 1},
		{name: "quantiles", seconds: [][]time.Duration{append(repeat(99, 10*time.Microsecond), time.Millisecond)},
			wantReq: 100, wantSecs: 1, wantP50: 10, wantP99: 10, wantLen: 1},
		{name: "tail", seconds: [][]time.Duration{append(repeat(98, 10*time.Microsecond), time.Millisecond, time.Millisecond)},
			wantReq: 100, wantSecs: 1, wantP50: 10, wantP99: 1000, wantLen: 1},
		{name: "old seconds leave", seconds: [][]time.Duration{repeat(1000, time.Millisecond), {50 * time.Microsecond}},
			extra: Seconds - 1, wantReq: 1, wantSecs: Seconds, wantP50: 50, wantP99: 50, wantLen: Seconds},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := New()
			if tr := w.Traffic(); tr.Requests != 0 || len(tr.PerSecond) != 0 {
				t.Fatalf("before any tick: %+v", tr)
			}
			now := t0
			w.Tick(now)
			for _, sec := range tc.seconds {
				for _, d := range sec {
					w.Request(wire.OpGet, wire.StatusOK, 0, 0, d)
					w.Request(wire.OpPing, wire.StatusOK, 0, 0, time.Hour) // never counted
					w.Request(wire.OpStats, wire.StatusOK, 0, 0, time.Hour)
				}
				now = now.Add(time.Second)
				w.Tick(now)
			}
			for i := 0; i < tc.extra; i++ {
				now = now.Add(time.Second)
				w.Tick(now)
			}
			tr := w.Traffic()
			if len(tr.PerSecond) != tc.wantLen || len(tr.P50PerSecond) != tc.wantLen || len(tr.P99PerSecond) != tc.wantLen {
				t.Fatalf("%d, %d, %d seconds, want %d", len(tr.PerSecond), len(tr.P50PerSecond), len(tr.P99PerSecond), tc.wantLen)
			}
			if tr.Requests != tc.wantReq || (tc.wantLen > 0 && tr.Seconds != tc.wantSecs) {
				t.Fatalf("%d requests in %vs, want %d in %vs", tr.Requests, tr.Seconds, tc.wantReq, tc.wantSecs)
			}
			if tc.wantLen == 0 {
				return
			}
			if want := round(float64(tc.wantReq)/tc.wantSecs, 1); tr.Rate != want {
				t.Errorf("rate %v, want %v", tr.Rate, want)
			}
			near := func(what string, got, want float64) {
				if math.Abs(got-want) > want*0.07 {
					t.Errorf("%s = %vµs, want about %vµs", what, got, want)
				}
			}
			near("p50", tr.P50US, tc.wantP50)
			near("p99", tr.P99US, tc.wantP99)
			var sum int64
			for _, n := range tr.PerSecond {
				sum += n
			}
			if sum != tr.Requests {
				t.Errorf("seconds add up to %d, total %d", sum, tr.Requests)
			}
			if last := tr.PerSecond[len(tr.PerSecond)-1]; tc.extra == 0 && last != int64(len(tc.seconds[len(tc.seconds)-1])) {
				t.Errorf("last second %d requests", last)
			}
		})
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

type countObserver struct{ req, conn, refused int }

func (c *countObserver) Request(wire.Op, wire.Status, int, int, time.Duration) { c.req++ }
func (c *countObserver) Conn(bool)                                             { c.conn++ }
func (c *countObserver) Refused()                                              { c.refused++ }

func TestTee(t *testing.T) {
	if Tee() != nil || Tee(nil, nil) != nil {
		t.Fatal("a tee of nothing is not nil")
	}
	a := &countObserver{}
	if Tee(nil, a) != transport.Observer(a) {
		t.Fatal("a tee of one is not that one")
	}
	b := &countObserver{}
	o := Tee(a, nil, b)
	o.Request(wire.OpGet, wire.StatusOK, 1, 1, time.Millisecond)
	o.Conn(true)
	o.Refused()
	for _, c := range []*countObserver{a, b} {
		if *c != (countObserver{1, 1, 1}) {
			t.Fatalf("observer told %+v", *c)
		}
	}
}

// observers are the Observer hooks compared by the benchmarks: the
// metrics alone (as before the window), the window alone, and both.
var observers = []struct {
	name string
	obs  func() transport.Observer
}{
	{"metrics", func() transport.Observer { return metrics.New(func() wire.Stats { return wire.Stats{} }) }},
	{"window", func() transport.Observer { return New() }},
	{"metrics+window", func() transport.Observer {
		return Tee(metrics.New(func() wire.Stats { return wire.Stats{} }), New())
	}},
}

// BenchmarkObserver is the request path's cost of each hook, one call at
// a time (go test -bench Observer ./dkvs/window/).
func BenchmarkObserver(b *testing.B) {
	for _, bc := range observers {
		b.Run(bc.name, func(b *testing.B) {
			o := bc.obs()
			b.ReportAllocs()
			d := time.Duration(0)
			for b.Loop() {
				d += 777
				o.Request(wire.OpGet, wire.StatusOK, 40, 60, 20*time.Microsecond+d%time.Millisecond)
			}
		})
	}
}

// BenchmarkObserverParallel is BenchmarkObserver from every CPU at once:
// the hooks' shared counters under contention.
func BenchmarkObserverParallel(b *testing.B) {
	for _, bc := range observers {
		b.Run(bc.name, func(b *testing.B) {
			o := bc.obs()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				d := time.Duration(0)
				for pb.Next() {
					d += 777
					o.Request(wire.OpGet, wire.StatusOK, 40, 60, 20*time.Microsecond+d%time.Millisecond)
				}
			})
		})
	}
}

func BenchmarkTraffic(b *testing.B) {
	w := New()
	now := time.Unix(0, 0)
	for i := 0; i <= Seconds; i++ {
		for j := 0; j < 1000; j++ {
			w.Request(wire.OpGet, wire.StatusOK, 0, 0, time.Duration(j)*time.Microsecond)
		}
		now = now.Add(time.Second)
		w.Tick(now)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.Traffic()
	}
}
