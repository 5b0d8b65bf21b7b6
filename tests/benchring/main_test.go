//go:build linux

package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/bench"
)

func TestMarkdown(t *testing.T) {
	ws := standardWorkloads(10 * time.Second)
	ok := &bench.Result{Workload: bench.Workload{Concurrency: 50, Keys: 1000, ValueSize: 10240, N: 3, R: 2, W: 2},
		Run: &bench.Phase{Name: "run", Errors: map[string]int64{"network": 2},
			All: bench.OpStats{Ops: 1002, OK: 1000, Errors: 2, OpsPerSec: 12345.6,
				Latency: bench.Latency{P50: 450, P90: 900, P99: 1500, P999: 2500, Max: 3000}},
			Get: bench.OpStats{Latency: bench.Latency{P50: 300, P99: 800}},
			Put: bench.OpStats{Latency: bench.Latency{P50: 600, P99: 1600}}}}
	load := &bench.Result{Load: &bench.Phase{Name: "load", DurationSeconds: 100,
		Put: bench.OpStats{Ops: 1_000_000, OK: 1_000_000, OpsPerSec: 10_000, Latency: bench.Latency{P50: 4000, P99: 9000, P999: 12000}}}}
	rp := report{start: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), end: time.Date(2026, 1, 2, 3, 9, 0, 0, time.UTC),
		loadBefore: []float64{0.1, 0.2, 0.3}, duration: 10 * time.Second,
		outcomes: []outcome{{w: ws[1], res: ok}, {w: ws[6], err: errors.New("exit status 132: ERROR: Network error | x\nmore")},
			{w: mixedAfterLoad(options{duration: 10 * time.Second, loadKeys: 1_000_000}), res: ok}},
		load: &loadOutcome{res: load, keys: 1_000_000, servers: 3, diskBefore: 1 << 20, diskAfter: 1<<20 + 3*150*1_000_000,
			sizeBefore: 1000, sizeAfter: 1000 + 3*120*1_000_000,
			rssBefore: 60 << 20, rssAfter: 60<<20 + 3*100*1_000_000}}
	md := rp.markdown()
	for _, want := range []string{
		"| uniform | 50 | 1,000 | 10 KiB | 3/2/2 | 12,346 | 450µs | 900µs | 1.50ms | 2.50ms | 3.00ms | 300µs / 800µs | 600µs / 1.60ms | 2 network |",
		"| 1 MiB values, --timeout 5s | 16 | 100 | | | failed: exit status 132: ERROR: Network error / x |",
		"| 1,000,000 | 100.0s | 10,000 | 4.00ms | 9.00ms | 12.0ms | 150 B / 120 B | 60 MiB / 346 MiB | 100 B | 0 |",
		"| uniform, after the 1,000,000-key load | 50 | 1,000 | 10 KiB | 3/2/2 | 12,346 |",
		"load average 0.10 0.20 0.30 before",
		"the run took 5m0s",
	} {
		if !strings.Contains(strings.ToLower(md), strings.ToLower(want)) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Every row of a table has as many cells as its header.
	cells := 0
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !strings.HasPrefix(line, "|"):
			cells = 0
		case cells == 0:
			cells = strings.Count(line, "|")
		case strings.Count(line, "|") != cells:
			t.Errorf("row with %d bars under a header of %d: %s", strings.Count(line, "|"), cells, line)
		}
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 12345.6: "12,346", 1e6: "1,000,000"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%g) = %q, want %q", v, got, want)
		}
	}
}
