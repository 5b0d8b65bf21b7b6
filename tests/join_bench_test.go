package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/tests/harness"
)

// BenchmarkJoin measures a join on real processes with their Pebble
// stores: three servers (COUNT 16) hold DKVS_JOIN_KEYS keys (default
// 100000) of 100 bytes, written at N=3; a fourth joins while a client
// runs a steady load of gets and puts on them. It reports how long the
// join took (command to the end of the move), the stream's mean rate,
// the load's throughput and p99 before and during the move, and the keys
// the new server ends with against its ideal share. DKVS_JOIN_BANDWIDTH
// sets --move-bandwidth (default: the server's default; 0: no limit).
//
//	go test -run x -bench Join -benchtime 1x ./tests/
func BenchmarkJoin(b *testing.B) {
	keys := 100000
	if s := os.Getenv("DKVS_JOIN_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("DKVS_JOIN_KEYS=%q", s)
		}
		keys = n
	}
	var extra []string
	if bw := os.Getenv("DKVS_JOIN_BANDWIDTH"); bw != "" {
		extra = append(extra, "--move-bandwidth", bw)
	}
	for i := 0; i < b.N; i++ {
		benchJoin(b, keys, extra)
	}
}

// benchSlice is what one run of dkvs-client bench measured.
type benchSlice struct {
	ops     float64 // answered
	errors  int64
	seconds float64
	p99     time.Duration
}

// runBenchSlice runs dkvs-client bench for d on the keys already loaded.
func runBenchSlice(b *testing.B, r *harness.Ring, keys int, d time.Duration) (benchSlice, error) {
	out := filepath.Join(b.TempDir(), "slice.json")
	res := r.Client("bench", "--duration", d.String(), "--keys", strconv.Itoa(keys), "--value-size", "100",
		"--concurrency", "8", "--no-preload", "--no-progress", "--json", out)
	if res.Code != 0 {
		return benchSlice{}, fmt.Errorf("bench: %s", res)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return benchSlice{}, err
	}
	var doc struct {
		Run *struct {
			DurationSeconds float64 `json:"duration_seconds"`
			All             struct {
				OK       int64 `json:"ok"`
				NotFound int64 `json:"not_found"`
				Errors   int64 `json:"errors"`
				Latency  struct {
					P99 float64 `json:"p99"`
				} `json:"latency_us"`
			} `json:"all"`
		} `json:"run"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Run == nil {
		return benchSlice{}, fmt.Errorf("bench json: %v %w", doc.Run == nil, err)
	}
	all := doc.Run.All
	return benchSlice{ops: float64(all.OK + all.NotFound), errors: all.Errors, seconds: doc.Run.DurationSeconds,
		p99: time.Duration(all.Latency.P99 * float64(time.Microsecond))}, nil
}

func benchJoin(b *testing.B, keys int, extra []string) {
	b.StopTimer()
	r := harness.NewRing(b, 16, 16, 16, 16)
	r.WriteServers(r.Servers[:3])
	r.Args = append([]string{"--cleanup-grace", "10s"}, extra...)
	for i := 0; i < 3; i++ {
		r.Start(i)
	}
	r.WaitPeersUp()
	began := time.Now()
	if res := r.ClientFor(time.Hour, "bench", "--load-only", "--keys", strconv.Itoa(keys), "--value-size", "100",
		"--concurrency", "32", "--no-progress"); res.Code != 0 {
		b.Fatalf("load: %s", res)
	}
	b.Logf("loaded %d keys in %v", keys, time.Since(began).Round(time.Millisecond))
	before, err := runBenchSlice(b, r, keys, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}

	// The load goes on in slices of 3 s while the join runs.
	var mu sync.Mutex
	var during []benchSlice
	stop := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := runBenchSlice(b, r, keys, 3*time.Second)
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			during = append(during, s)
			mu.Unlock()
		}
	}()
	r.Start(3)
	b.StartTimer()
	joinBegan := time.Now()
	res := r.ClientFor(time.Hour, "join", "--wait", "60m", "--", r.Servers[3].IP, strconv.Itoa(int(r.Servers[3].Port)), "16")
	took := time.Since(joinBegan)
	b.StopTimer()
	close(stop)
	<-loadDone
	if res.Code != 0 {
		b.Fatalf("join: %s", res)
	}
	st, err := harness.Stats(r.Addr(3), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	var rate float64
	var streamed, bytes int64
	if s := st.Stream; s != nil {
		streamed, bytes = s.Keys, s.Bytes
		if d := s.UpdatedMS - s.StartedMS; d > 0 {
			rate = float64(s.Bytes) / (float64(d) / 1000)
		}
	}
	ideal := topology.Shares(ring.New(r.Servers), 3)[r.Addr(3)]
	mu.Lock()
	var ops, secs float64
	var errs int64
	var p99s []time.Duration
	for _, s := range during {
		ops += s.ops
		errs += s.errors
		secs += s.seconds
		p99s = append(p99s, s.p99)
	}
	mu.Unlock()
	sort.Slice(p99s, func(i, j int) bool { return p99s[i] < p99s[j] })
	duringRate, worstP99 := 0.0, time.Duration(0)
	if secs > 0 {
		duringRate = ops / secs
		worstP99 = p99s[len(p99s)-1]
	}
	b.StartTimer()
	b.ReportMetric(took.Seconds(), "join-s")
	b.ReportMetric(rate/1e6, "stream-MB/s")
	b.ReportMetric(before.ops/before.seconds, "ops/s-before")
	b.ReportMetric(duringRate, "ops/s-during")
	b.ReportMetric(float64(before.p99.Microseconds())/1000, "p99-ms-before")
	b.ReportMetric(float64(worstP99.Microseconds())/1000, "p99-ms-worst-during")
	b.ReportMetric(float64(st.LiveKeys)/float64(keys), "share-held")
	b.ReportMetric(ideal, "share-ideal")
	var slices []string
	for _, p := range p99s {
		slices = append(slices, p.Round(100*time.Microsecond).String())
	}
	b.Logf("join of a fourth server to three holding %d keys: %v; streamed %d records, %d bytes (both passes) at %.1f MB/s; "+
		"load before %.0f ops/s p99 %v, during %.0f ops/s, %d errors (%d slices of 3 s, p99s %s); the new server holds %d keys (%.1f%%), ideal %.1f%%",
		keys, took.Round(time.Millisecond), streamed, bytes, rate/1e6, before.ops/before.seconds, before.p99, duringRate,
		errs, len(p99s), strings.Join(slices, " "), st.LiveKeys, 100*float64(st.LiveKeys)/float64(keys), 100*ideal)
}
