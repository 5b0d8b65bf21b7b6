package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
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

func TestRepairBasic(t *testing.T) {
	r := repairRing(t)
	r.StartAll()
	c := client(t, r, nil)
	want := map[string]string{}
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("key-%02d", i)
		if err := c.Put(bg, []byte(k), []byte("first"), 3, 2); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("key-%02d", i)
		if err := c.Put(bg, []byte(k), []byte("second-"+k), 3, 2); err != nil {
			t.Fatal(err)
		}
		want[k] = "second-" + k
	}
	for i := 0; i < 50; i += 5 {
		k := fmt.Sprintf("key-%02d", i)
		if err := c.Delete(bg, []byte(k), 3, 2); err != nil {
			t.Fatal(err)
		}
		delete(want, k)
	}
	c.Coordinator().Wait(bg)
	rg := ring.New(r.Servers)
	for i := range r.Servers {
		got, err := holdings(t, c, r.Addr(i))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if homeOf(r, rg, k, i) != (got[k] == v) {
				t.Errorf("%s: %s = %q, home %v", r.Addr(i), k, got[k], homeOf(r, rg, k, i))
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s holds %s, deleted or never written", r.Addr(i), k)
			}
		}
	}
}

func TestRepairConcurrentWriters(t *testing.T) {
	r := repairRing(t)
	r.StartAll()
	var wg sync.WaitGroup
	errc := make(chan error, 10)
	writers := func(keyOf func(w, i int) string, n int) {
		for w := 0; w < 5; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				c, err := dkvs.Open(r.ServersFile(), nil) // one client (one writer id) each
				if err != nil {
					errc <- err
					return
				}
				defer c.Close()
				for i := 0; i < n; i++ {
					if err := c.Put(bg, []byte(keyOf(w, i)), []byte(fmt.Sprintf("w%d-%d", w, i)), 3, 2); err != nil {
						errc <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
	}
	writers(func(w, i int) string { return fmt.Sprintf("own-%d-%d", w, i) }, 40)
	writers(func(w, i int) string { return fmt.Sprintf("shared-%d", i%20) }, 60)
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Every key reads the same from every server's point of view: each
	// home replica holds the same value.
	c := client(t, r, nil)
	rg := ring.New(r.Servers)
	all := make([]map[string]string, len(r.Servers))
	for i := range r.Servers {
		var err error
		if all[i], err = holdings(t, c, r.Addr(i)); err != nil {
			t.Fatal(err)
		}
	}
	keys := 0
	for k := range all[0] {
		_ = k
	}
	seen := map[string]bool{}
	for i := range r.Servers {
		for k := range all[i] {
			seen[k] = true
		}
	}
	for k := range seen {
		keys++
		var vals []string
		for _, s := range rg.Preference([]byte(k), 3) {
			vals = append(vals, all[s][k])
		}
		if vals[0] == "" || vals[0] != vals[1] || vals[1] != vals[2] {
			t.Errorf("%s differs across its replicas: %q", k, vals)
		}
	}
	if keys != 5*40+20 {
		t.Fatalf("%d keys, want %d", keys, 5*40+20)
	}
}

func TestRepairOneFailurePerOperation(t *testing.T) {
	r := repairRing(t)
	r.StartAll()
	c := client(t, r, &dkvs.Options{Timeout: time.Second})
	want := map[string]string{}
	for victim := range r.Servers {
		r.Kill(victim)
		for i := 0; i < 20; i++ {
			k := fmt.Sprintf("v%d-key-%d", victim, i)
			if err := c.Put(bg, []byte(k), []byte("value-"+k), 3, 2); err != nil {
				t.Fatalf("put with %s down: %v", r.Addr(victim), err)
			}
			want[k] = "value-" + k
		}
		for i := 0; i < 20; i++ {
			k := fmt.Sprintf("v%d-key-%d", victim, i)
			if v, err := c.Get(bg, []byte(k), 3, 2); err != nil || string(v) != want[k] {
				t.Fatalf("get with %s down: %q %v", r.Addr(victim), v, err)
			}
		}
		c.Coordinator().Wait(bg)
		r.Start(victim)
		took := waitHolds(t, r, c, victim, want, 30*time.Second)
		t.Logf("%s restarted: holds every key it is home for after %v", r.Addr(victim), took.Round(time.Millisecond))
	}
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

func TestRepairTwoHomesDown(t *testing.T) {
	r := repairRing(t, "--no-anti-entropy") // only hints can bring the keys back
	r.StartAll()
	rg := ring.New(r.Servers)
	c := client(t, r, &dkvs.Options{Timeout: 300 * time.Millisecond})
	// Two servers that are home replicas of one key together: on some
	// rings (the ports are random) servers 0 and 1 never are, and a
	// search for their keys would never end.
	first := rg.Preference([]byte("two-down-0"), 3)
	a, b := first[0], first[1]
	// Keys whose home replicas include servers a and b.
	var keys []string
	for i := 0; len(keys) < 30; i++ {
		k := fmt.Sprintf("two-down-%d", i)
		if homeOf(r, rg, k, a) && homeOf(r, rg, k, b) {
			keys = append(keys, k)
		}
	}
	r.Kill(a)
	r.Kill(b)
	want := map[string]string{}
	for _, k := range keys {
		if err := c.Put(bg, []byte(k), []byte("v-"+k), 3, 2); err != nil {
			t.Fatalf("W=2 put with two homes down: %v", err)
		}
		want[k] = "v-" + k
	}
	c.Coordinator().Wait(bg)
	hints := int64(0)
	for i := range r.Servers {
		if i == a || i == b {
			continue
		}
		st, err := c.Stats(bg, r.Addr(i))
		if err != nil {
			t.Fatal(err)
		}
		hints += st.HintsHeld
	}
	if hints != 2*int64(len(keys)) {
		t.Fatalf("%d hints held by the fallbacks, want %d", hints, 2*len(keys))
	}
	r.Start(a)
	r.Start(b)
	for _, i := range []int{a, b} {
		took := waitHolds(t, r, c, i, want, 30*time.Second)
		t.Logf("%s got its keys from hints after %v", r.Addr(i), took.Round(time.Millisecond))
	}
	harness.Eventually(t, 10*time.Second, "hint spaces empty", func() error {
		for i := range r.Servers {
			st, err := c.Stats(bg, r.Addr(i))
			if err != nil {
				return err
			}
			if st.HintsHeld != 0 {
				return fmt.Errorf("%s still holds %d hints", r.Addr(i), st.HintsHeld)
			}
		}
		return nil
	})
}

func TestRepairAntiEntropyAlone(t *testing.T) {
	r := repairRing(t, "--no-handoff")
	r.StartAll()
	c := client(t, r, &dkvs.Options{DisableReadRepair: true, DisableSloppyQuorum: true, Timeout: 2 * time.Second})
	const n = 10000
	want := make(map[string]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	errc := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += 16 {
				k, v := fmt.Sprintf("ae-%05d", i), fmt.Sprintf("value-%d", i)
				if err := c.Put(bg, []byte(k), []byte(v), 3, 3); err != nil {
					errc <- err
					return
				}
				mu.Lock()
				want[k] = v
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	victim := 4 // COUNT 4: the most keys
	r.Kill(victim)
	if err := os.RemoveAll(r.DataDir(victim)); err != nil {
		t.Fatal(err)
	}
	r.Start(victim)
	rg := ring.New(r.Servers)
	home := 0
	for k := range want {
		if homeOf(r, rg, k, victim) {
			home++
		}
	}
	took := waitHolds(t, r, c, victim, want, 60*time.Second)
	t.Logf("anti-entropy alone: wiped %s regained its %d keys (of %d) in %v", r.Addr(victim), home, n, took.Round(time.Millisecond))
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

// TestDeletedKeyStaysDeleted deletes keys while one replica is down, lets
// tombstones age past a short grace period and be dropped, and checks the
// keys never come back.
func TestDeletedKeyStaysDeleted(t *testing.T) {
	r := harness.NewRing(t, 2, 2, 2)
	r.Args = []string{"--handoff-interval", "200ms", "--ae-interval", "300ms", "--tombstone-grace", "2s"}
	r.StartAll()
	c := client(t, r, &dkvs.Options{Timeout: 300 * time.Millisecond})
	for i := 0; i < 20; i++ {
		c.Put(bg, []byte(fmt.Sprint("del-", i)), []byte("v"), 3, 3)
	}
	r.Kill(2) // misses the deletions
	for i := 0; i < 20; i++ {
		if err := c.Delete(bg, []byte(fmt.Sprint("del-", i)), 3, 2); err != nil {
			t.Fatal(err)
		}
	}
	c.Coordinator().Wait(bg)
	time.Sleep(3 * time.Second) // past the grace period, with server 2 still down
	st, _ := c.Stats(bg, r.Addr(0))
	if st.Tombstones != 20 {
		t.Fatalf("tombstones dropped while a replica never saw them: %d left", st.Tombstones)
	}
	r.Start(2)
	harness.Eventually(t, 30*time.Second, "every tombstone dropped everywhere", func() error {
		for i := range r.Servers {
			st, err := c.Stats(bg, r.Addr(i))
			if err != nil {
				return err
			}
			if st.Tombstones != 0 || st.LiveKeys != 0 {
				return fmt.Errorf("%s: %d tombstones, %d live keys", r.Addr(i), st.Tombstones, st.LiveKeys)
			}
		}
		return nil
	})
	// Give anti-entropy a few more rounds: nothing comes back.
	time.Sleep(time.Second)
	for i := 0; i < 20; i++ {
		if _, err := c.Get(bg, []byte(fmt.Sprint("del-", i)), 3, 3); !errors.Is(err, dkvs.ErrNotFound) {
			t.Fatalf("deleted key del-%d: %v", i, err)
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
