package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/tests/harness"
)

// BenchmarkRefill measures how long a server whose store was damaged
// takes to be refilled by anti-entropy: a ring of three (N=3) is loaded
// with 100,000 keys of 100 bytes (DKVS_REFILL_KEYS for another count),
// one server is stopped and its data directory marked damaged, and it is
// started with --on-damage=rebuild; refill-s is the time from its start
// until it holds every key again (its stats, read every 20 ms).
//
//	go test -run '^$' -bench Refill -benchtime 1x ./tests/
func BenchmarkRefill(b *testing.B) {
	keys := 100000
	if s := os.Getenv("DKVS_REFILL_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("DKVS_REFILL_KEYS=%q", s)
		}
		keys = n
	}
	for range b.N {
		refill(b, keys)
	}
}

func refill(b *testing.B, keys int) {
	b.StopTimer()
	r := harness.NewRing(b, 1, 1, 1)
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	value := make([]byte, 100)
	var next atomic.Int64
	done := make(chan error, 50)
	for g := 0; g < 50; g++ {
		go func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(keys) {
					done <- nil
					return
				}
				if err := c.Put(bg, []byte(fmt.Sprintf("refill-%08d", i)), value, 3, 3); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	for g := 0; g < 50; g++ {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Term(2); err != nil {
		b.Fatal(err)
	}
	// What a server writes when it finds its store damaged while running.
	if err := os.WriteFile(filepath.Join(r.DataDir(2), "DKVS-DAMAGED"), []byte("marked by BenchmarkRefill\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	// Anti-entropy reuses the trees it built to answer a peer for up to 5
	// s: wait them out, so that the refill does not depend on when the
	// load ended.
	time.Sleep(6 * time.Second)
	r.ServerArgs[2] = []string{"--on-damage", "rebuild"}
	b.StartTimer()
	start := time.Now()
	r.Start(2)
	for {
		st, err := harness.Stats(r.Addr(2), time.Second)
		if err == nil && st.LiveKeys >= int64(keys) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("not refilled after 10 minutes: %+v %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	// The refill is real only if the damaged directory was moved aside.
	if moved, err := filepath.Glob(r.DataDir(2) + ".damaged-*"); err != nil || len(moved) != 1 {
		b.Fatalf("the damaged directory was not moved aside: %v %v\n%s", moved, err, r.Log(2))
	}
	b.ReportMetric(took.Seconds(), "refill-s")
	b.ReportMetric(float64(keys)/took.Seconds(), "keys/s")
}
