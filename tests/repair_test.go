package tests

// The repair tests that need real processes: SIGKILL under load, SIGSTOP,
// a whole ring restarted from its data directories, the status command.
// The other repair scenarios (placement, concurrent writers, one failure
// at a time, two homes down, anti-entropy alone, read repair, tombstones,
// partitions) run in one process in simulated time: dkvs/ringtest.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/tests/harness"
)

// repairRing is a ring of five servers with short repair intervals, so
// that the tests see handoff and anti-entropy work within seconds.
func repairRing(t *testing.T, extra ...string) *harness.Ring {
	r := harness.NewRing(t, 1, 2, 3, 2, 4)
	r.Args = append([]string{"--handoff-interval", "200ms", "--ae-interval", "1s"}, extra...)
	return r
}

func client(t *testing.T, r *harness.Ring, o *dkvs.Options) *dkvs.Client {
	t.Helper()
	c, err := dkvs.Open(r.ServersFile(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// holdings returns what server i stores (key -> value), by its own scan.
func holdings(t *testing.T, c *dkvs.Client, addr string) (map[string]string, error) {
	out := map[string]string{}
	err := c.ScanServer(bg, addr, false, func(k []byte, rec kv.Record) error {
		out[string(k)] = string(rec.Value)
		return nil
	})
	return out, err
}

// homeOf reports whether server i is a home replica of key (N=3).
func homeOf(r *harness.Ring, rg *ring.Ring, key string, i int) bool {
	for _, s := range rg.Preference([]byte(key), 3) {
		if s == i {
			return true
		}
	}
	return false
}

// missing returns the keys of want that server i should hold (as a home
// replica) but does not hold with that value.
func missing(t *testing.T, r *harness.Ring, c *dkvs.Client, i int, want map[string]string) ([]string, error) {
	got, err := holdings(t, c, r.Addr(i))
	if err != nil {
		return nil, err
	}
	rg := ring.New(r.Servers)
	var out []string
	for k, v := range want {
		if homeOf(r, rg, k, i) && got[k] != v {
			out = append(out, k)
		}
	}
	return out, nil
}

// waitHolds polls until server i holds every key of want it is home for,
// and returns how long it took.
func waitHolds(t *testing.T, r *harness.Ring, c *dkvs.Client, i int, want map[string]string, limit time.Duration) time.Duration {
	t.Helper()
	return harness.Eventually(t, limit, fmt.Sprintf("%s holds its keys", r.Addr(i)), func() error {
		m, err := missing(t, r, c, i, want)
		if err != nil {
			return err
		}
		if len(m) > 0 {
			sort.Strings(m)
			return fmt.Errorf("%d keys missing, e.g. %q", len(m), m[0])
		}
		return nil
	})
}

func TestRepairFailureDuringLoad(t *testing.T) {
	r := repairRing(t)
	r.StartAll()
	const clients = 5
	var mu sync.Mutex
	acked := map[string]int{} // key -> highest acknowledged sequence
	var puts, gets, failedGets, failedPuts atomic.Int64
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := dkvs.Open(r.ServersFile(), &dkvs.Options{Timeout: time.Second})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for seq := 1; ctx.Err() == nil; seq++ {
				k := fmt.Sprintf("load-%d-%d", w, seq%50)
				err := c.Put(bg, []byte(k), []byte(fmt.Sprint(seq)), 3, 2)
				puts.Add(1)
				if err != nil {
					failedPuts.Add(1)
					t.Errorf("put %s failed with at most one server down: %v", k, err)
					continue
				}
				mu.Lock()
				acked[k] = seq
				mu.Unlock()
				v, err := c.Get(bg, []byte(k), 3, 2)
				gets.Add(1)
				if err != nil {
					failedGets.Add(1)
					t.Errorf("get %s failed with at most one server down: %v", k, err)
					continue
				}
				var got int
				fmt.Sscan(string(v), &got)
				if got < seq {
					t.Errorf("get %s = %d right after writing %d", k, got, seq)
				}
			}
		}(w)
	}
	time.Sleep(3 * time.Second) // the schedule of the issue: kill at ~3 s
	r.Kill(2)
	time.Sleep(3 * time.Second) // restart at ~6 s
	r.Start(2)
	wg.Wait()
	t.Logf("%d puts, %d gets; failed: %d puts, %d gets", puts.Load(), gets.Load(), failedPuts.Load(), failedGets.Load())
	// Every acknowledged put is readable with its value or a newer one.
	c := client(t, r, nil)
	for k, seq := range acked {
		v, err := c.Get(bg, []byte(k), 3, 2)
		var got int
		fmt.Sscan(string(v), &got)
		if err != nil || got < seq {
			t.Errorf("%s: read %q (%v), acknowledged %d", k, v, err, seq)
		}
	}
}

// TestRepairSigstop pauses a server and writes keys it is home for with
// W=3, which needs it (or, by sloppy quorum, a fallback in its place): the
// first write pays one deadline, then the failure detector skips the
// paused server and the writes go straight to a fallback.
func TestRepairSigstop(t *testing.T) {
	r := repairRing(t)
	r.StartAll()
	const deadline = 300 * time.Millisecond
	c := client(t, r, &dkvs.Options{Timeout: deadline})
	rg := ring.New(r.Servers)
	var keys []string
	for i := 0; len(keys) < 100; i++ {
		if k := fmt.Sprint("stop-", i); homeOf(r, rg, k, 3) {
			keys = append(keys, k)
		}
	}
	r.Stop(3)
	defer r.Cont(3)
	slow := 0
	for i, k := range keys {
		start := time.Now()
		if err := c.Put(bg, []byte(k), []byte(fmt.Sprint(i)), 3, 3); err != nil {
			t.Fatalf("W=3 put with a paused server: %v", err)
		}
		if _, err := c.Get(bg, []byte(k), 3, 2); err != nil {
			t.Fatalf("get with a paused server: %v", err)
		}
		if time.Since(start) >= deadline {
			slow++
		}
	}
	// Only the first write waits for the deadline (and the slack of a
	// loaded machine allows one more); after that the server is skipped.
	if slow > 2 {
		t.Fatalf("%d of %d operations waited a deadline or more", slow, len(keys))
	}
	t.Logf("%d of %d put+get pairs waited a deadline", slow, len(keys))
	if c.Health().Up(r.Addr(3)) {
		t.Fatal("the paused server is not marked down")
	}
	r.Cont(3)
	harness.Eventually(t, 5*time.Second, "heartbeat marks the resumed server up", func() error {
		if !c.Health().Up(r.Addr(3)) {
			return errors.New("still down")
		}
		return nil
	})
	// It takes writes again, and gets the ones it missed from the hints.
	if err := c.Put(bg, []byte(keys[0]), []byte("after"), 3, 3); err != nil {
		t.Fatalf("W=3 put after SIGCONT: %v", err)
	}
	want := map[string]string{keys[0]: "after"}
	for i, k := range keys[1:] {
		want[k] = fmt.Sprint(i + 1)
	}
	took := waitHolds(t, r, c, 3, want, 30*time.Second)
	t.Logf("resumed server holds every key written while it was paused after %v", took.Round(time.Millisecond))
}

func TestRepairWholeRingRestart(t *testing.T) {
	r := repairRing(t)
	r.StartAll()
	c := client(t, r, nil)
	want := map[string]string{}
	for i := 0; i < 300; i++ {
		k, v := fmt.Sprintf("whole-%03d", i), fmt.Sprint("v", i)
		if err := c.Put(bg, []byte(k), []byte(v), 3, 2); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	c.Coordinator().Wait(bg)
	for i := range r.Servers {
		if i%2 == 0 {
			r.Kill(i)
		} else if err := r.Term(i); err != nil {
			t.Fatalf("SIGTERM %s: %v", r.Addr(i), err)
		}
	}
	r.StartAll()
	for k, v := range want {
		got, err := c.Get(bg, []byte(k), 3, 3)
		if err != nil || string(got) != v {
			t.Fatalf("%s after restarting every server: %q %v", k, got, err)
		}
	}
	for i := range r.Servers {
		if m, err := missing(t, r, c, i, want); err != nil || len(m) > 0 {
			t.Fatalf("%s misses %d keys: %v", r.Addr(i), len(m), err)
		}
	}
}

func TestStatusCommand(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--ae-interval", "200ms"}
	r.StartAll()
	wantOK(t, r.Client("put", "--", "k", "v"), "OK")
	harness.Eventually(t, 10*time.Second, "status shows anti-entropy", func() error {
		res := r.Client("status")
		if res.Code != 0 {
			return fmt.Errorf("%s", res)
		}
		if strings.Contains(res.Stdout, "never") {
			return fmt.Errorf("a pair of servers has not completed anti-entropy yet")
		}
		return nil
	})
	res := r.Client("status")
	for i := range r.Servers {
		if !strings.Contains(res.Stdout, r.Addr(i)+" ") {
			t.Fatalf("status lacks %s:\n%s", r.Addr(i), res.Stdout)
		}
	}
	if !strings.Contains(res.Stdout, " up ") || !strings.Contains(res.Stdout, "ago") {
		t.Fatalf("status:\n%s", res.Stdout)
	}
	r.Kill(1)
	res = r.Client("status")
	wantExit(t, res, errcode.Network)
	if !strings.Contains(res.Stdout, r.Addr(1)+" ") || !strings.Contains(res.Stdout, "down") {
		t.Fatalf("status with a server down:\n%s", res.Stdout)
	}
	_ = syscall.SIGKILL
}
