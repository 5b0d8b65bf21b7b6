package ringtest_test

// The repair scenarios of a ring, in one process and in simulated time:
// hinted handoff, read repair, anti-entropy, tombstone purge, failures
// one at a time and two at once, paused and partitioned servers. They
// came from tests/repair_test.go, where they ran on real processes with
// shortened intervals and real sleeps; here the servers keep their
// production intervals (anti-entropy every 30 s, hints checked every
// second) and the bubble's clock runs them.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/memnet"
	"github.com/dkvs/dkvs/dkvs/ringtest"
	"github.com/dkvs/dkvs/dkvs/server"
)

var bg = context.Background()

// isHome reports whether server i is one of key's n homes.
func isHome(r *ringtest.Ring, key string, n, i int) bool {
	for _, h := range r.Homes(key, n) {
		if h == i {
			return true
		}
	}
	return false
}

// missing returns, in order, the keys of want that server i is home for
// (N=3) and does not hold with that value (a value "" wants a tombstone).
func missing(t *testing.T, r *ringtest.Ring, i int, want map[string]string) []string {
	t.Helper()
	got, err := r.Holdings(i)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k, v := range want {
		if !isHome(r, k, 3, i) {
			continue
		}
		rec, ok := got[k]
		if !ok || (v == "" && !rec.Tombstone) || (v != "" && string(rec.Value) != v) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// waitHolds waits until server i holds every key of want it is home for.
func waitHolds(t *testing.T, r *ringtest.Ring, i int, want map[string]string, limit time.Duration) time.Duration {
	t.Helper()
	return r.Eventually(limit, fmt.Sprintf("%s holds its keys", r.Addr(i)), func() error {
		if m := missing(t, r, i, want); len(m) > 0 {
			return fmt.Errorf("%d keys missing, e.g. %q", len(m), m[0])
		}
		return nil
	})
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestPlacementAndOverwrites: after puts, overwrites and deletes on a
// healthy ring, each key is on exactly its three homes with its last
// value (a deleted key as a tombstone), and nowhere else.
func TestPlacementAndOverwrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{})
		c := r.Client(nil)
		want := map[string]string{}
		for round, val := range []string{"first", "second"} {
			for i := 0; i < 60; i++ {
				k := fmt.Sprintf("key-%02d", i)
				v := fmt.Sprintf("%s-%s", val, k)
				if err := c.Put(bg, []byte(k), []byte(v), 3, 2); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				want[k] = v
			}
		}
		for i := 0; i < 60; i += 5 {
			k := fmt.Sprintf("key-%02d", i)
			if err := c.Delete(bg, []byte(k), 3, 2); err != nil {
				t.Fatal(err)
			}
			want[k] = ""
		}
		c.Coordinator().Wait(bg)
		for i := range r.Servers() {
			got, err := r.Holdings(i)
			if err != nil {
				t.Fatal(err)
			}
			for k := range got {
				if !isHome(r, k, 3, i) {
					t.Errorf("%s holds %s, not a home of it", r.Addr(i), k)
				}
			}
			if m := missing(t, r, i, want); len(m) > 0 {
				t.Errorf("%s lacks %d keys it is home for, e.g. %s", r.Addr(i), len(m), m[0])
			}
		}
		if h := r.HintsHeld(); h != 0 {
			t.Errorf("%d hints held on a healthy ring", h)
		}
	})
}

// TestConcurrentWritersConverge: five clients (five writer ids) write
// their own keys and then the same keys at once; every key ends with one
// version on all three of its homes.
func TestConcurrentWritersConverge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{})
		var wg sync.WaitGroup
		errc := make(chan error, 10)
		writers := func(keyOf func(w, i int) string, n int) {
			for w := 0; w < 5; w++ {
				c := r.Client(nil)
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
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
		var keys []string
		for w := 0; w < 5; w++ {
			for i := 0; i < 40; i++ {
				keys = append(keys, fmt.Sprintf("own-%d-%d", w, i))
			}
		}
		for i := 0; i < 20; i++ {
			keys = append(keys, fmt.Sprintf("shared-%d", i))
		}
		// The writes reach every home before the clients' Put returns... or
		// soon after: the replies still due are collected in the background.
		r.WaitConverged(keys, 3, time.Second)
	})
}

// TestOneFailurePerOperation kills each server in turn: writes and reads
// with W=R=2 keep working, and the restarted server gets what it missed
// (hints, then anti-entropy) within a minute of ring time.
func TestOneFailurePerOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{})
		c := r.Client(&dkvs.Options{Timeout: time.Second})
		want := map[string]string{}
		for victim := range r.Servers() {
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
			r.Restart(victim)
			took := waitHolds(t, r, victim, want, time.Minute)
			t.Logf("%s restarted: holds every key it is home for after %v", r.Addr(victim), took)
		}
		r.WaitConverged(keysOf(want), 3, time.Minute)
	})
}

// TestTwoHomesDown: with anti-entropy off, keys written while two of
// their homes are down live as hints on two fallbacks, and reach their
// homes when those come back; the hints are then deleted.
func TestTwoHomesDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Config: func(_ int, cfg *server.Config) { cfg.DisableAntiEntropy = true }})
		c := r.Client(&dkvs.Options{Timeout: 300 * time.Millisecond})
		first := r.Homes("two-down-0", 3)
		a, b := first[0], first[1]
		var keys []string
		for i := 0; len(keys) < 30; i++ {
			k := fmt.Sprintf("two-down-%d", i)
			if isHome(r, k, 3, a) && isHome(r, k, 3, b) {
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
		if h := r.HintsHeld(); h != 2*int64(len(keys)) {
			t.Fatalf("%d hints held by the fallbacks, want %d", h, 2*len(keys))
		}
		r.Restart(a)
		r.Restart(b)
		for _, i := range []int{a, b} {
			took := waitHolds(t, r, i, want, time.Minute)
			t.Logf("%s got its keys from hints after %v", r.Addr(i), took)
		}
		r.WaitConverged(keys, 3, time.Minute)
	})
}

// TestAntiEntropyAlone: with hints, read repair and sloppy quorums off, a
// server that comes back with an empty disk regains every key it is home
// for from its peers' Merkle trees alone.
func TestAntiEntropyAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Config: func(_ int, cfg *server.Config) { cfg.DisableHandoff = true }})
		c := r.Client(&dkvs.Options{DisableReadRepair: true, DisableSloppyQuorum: true, Timeout: 2 * time.Second})
		const n = 3000
		want := make(map[string]string, n)
		for i := 0; i < n; i++ {
			k, v := fmt.Sprintf("ae-%05d", i), fmt.Sprintf("value-%d", i)
			if err := c.Put(bg, []byte(k), []byte(v), 3, 3); err != nil {
				t.Fatal(err)
			}
			want[k] = v
		}
		victim := 4 // COUNT 4: the most keys
		r.Kill(victim)
		r.Wipe(victim)
		r.Restart(victim)
		home := 0
		for k := range want {
			if isHome(r, k, 3, victim) {
				home++
			}
		}
		took := waitHolds(t, r, victim, want, 5*time.Minute)
		t.Logf("anti-entropy alone: wiped %s regained its %d keys (of %d) after %v", r.Addr(victim), home, n, took)
	})
}

// TestReadRepair: a home that missed a write (stopped, with handoff and
// anti-entropy off) is brought up to date by the next get that reads it.
func TestReadRepair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Config: func(_ int, cfg *server.Config) {
			cfg.DisableHandoff, cfg.DisableAntiEntropy = true, true
		}})
		c := r.Client(nil)
		homes := r.Homes("rr", 3)
		if err := c.Put(bg, []byte("rr"), []byte("old"), 3, 3); err != nil {
			t.Fatal(err)
		}
		r.Stop(homes[2])
		if err := c.Put(bg, []byte("rr"), []byte("new"), 3, 2); err != nil {
			t.Fatal(err)
		}
		c.Coordinator().Wait(bg)
		r.Restart(homes[2])
		if rec, _, _ := r.Record(homes[2], "rr"); string(rec.Value) != "old" {
			t.Fatalf("the stopped home holds %q before the read, want old", rec.Value)
		}
		r.Eventually(time.Second, "the restarted home answers", func() error {
			if !c.Health().Up(r.Addr(homes[2])) {
				return errors.New("still believed down")
			}
			return nil
		})
		if v, err := c.Get(bg, []byte("rr"), 3, 3); err != nil || string(v) != "new" {
			t.Fatalf("get: %q %v", v, err)
		}
		c.Coordinator().Wait(bg)
		if rec, _, _ := r.Record(homes[2], "rr"); string(rec.Value) != "new" {
			t.Fatalf("after the read the home holds %q, want new", rec.Value)
		}
		if c.Coordinator().ReadRepairs() < 1 {
			t.Fatal("no read repair counted")
		}
	})
}

// TestDeletedKeyStaysDeleted deletes keys while one replica is down: the
// tombstones outlive their grace period while that replica has not seen
// them, reach it when it returns, are then dropped everywhere, and the
// keys never come back.
func TestDeletedKeyStaysDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const grace = time.Minute
		r := ringtest.New(t, ringtest.Options{Counts: []int{2, 2, 2}, Config: func(_ int, cfg *server.Config) {
			cfg.TombstoneGrace = grace
		}})
		c := r.Client(&dkvs.Options{Timeout: 300 * time.Millisecond})
		var keys []string
		for i := 0; i < 20; i++ {
			k := fmt.Sprint("del-", i)
			keys = append(keys, k)
			if err := c.Put(bg, []byte(k), []byte("v"), 3, 3); err != nil {
				t.Fatal(err)
			}
		}
		r.Kill(2) // misses the deletions
		for _, k := range keys {
			if err := c.Delete(bg, []byte(k), 3, 2); err != nil {
				t.Fatal(err)
			}
		}
		c.Coordinator().Wait(bg)
		time.Sleep(3 * grace) // anti-entropy rounds run; server 2 is still down
		if st := r.Server(0).DB().Stats(); st.Tombstones != 20 {
			t.Fatalf("tombstones dropped while a replica never saw them: %d left", st.Tombstones)
		}
		r.Restart(2)
		took := r.Eventually(10*time.Minute, "every tombstone dropped everywhere", func() error {
			for i := range r.Servers() {
				if st := r.Server(i).DB().Stats(); st.Tombstones != 0 || st.LiveKeys != 0 {
					return fmt.Errorf("%s: %d tombstones, %d live keys", r.Addr(i), st.Tombstones, st.LiveKeys)
				}
			}
			return nil
		})
		t.Logf("tombstones gone everywhere %v after the restart", took)
		time.Sleep(5 * time.Minute) // ten more anti-entropy rounds: nothing comes back
		for _, k := range keys {
			if _, err := c.Get(bg, []byte(k), 3, 3); !errors.Is(err, dkvs.ErrNotFound) {
				t.Fatalf("deleted key %s: %v", k, err)
			}
		}
	})
}

// TestPausedServer: a paused home (SIGSTOP as the network sees it) costs
// the first W=3 write one deadline; after that the failure detector skips
// it and the writes go to a fallback as hints, delivered once it resumes.
func TestPausedServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{})
		const deadline = 300 * time.Millisecond
		c := r.Client(&dkvs.Options{Timeout: deadline})
		const paused = 3
		var keys []string
		for i := 0; len(keys) < 100; i++ {
			if k := fmt.Sprint("stop-", i); isHome(r, k, 3, paused) {
				keys = append(keys, k)
			}
		}
		r.Pause(paused)
		slow := 0
		want := map[string]string{}
		for i, k := range keys {
			start := time.Now()
			if err := c.Put(bg, []byte(k), []byte(fmt.Sprint(i)), 3, 3); err != nil {
				t.Fatalf("W=3 put with a paused server: %v", err)
			}
			want[k] = fmt.Sprint(i)
			if _, err := c.Get(bg, []byte(k), 3, 2); err != nil {
				t.Fatalf("get with a paused server: %v", err)
			}
			if time.Since(start) >= deadline {
				slow++
			}
		}
		if slow != 1 {
			t.Fatalf("%d of %d operations waited a deadline, want the first only", slow, len(keys))
		}
		if c.Health().Up(r.Addr(paused)) {
			t.Fatal("the paused server is not marked down")
		}
		r.Resume(paused)
		r.Eventually(time.Second, "heartbeat marks the resumed server up", func() error {
			if !c.Health().Up(r.Addr(paused)) {
				return errors.New("still down")
			}
			return nil
		})
		took := waitHolds(t, r, paused, want, time.Minute)
		t.Logf("resumed server holds every key written while it was paused after %v", took)
		r.WaitConverged(keys, 3, time.Minute)
	})
}

// TestSlowHomeWaitedFor: a write whose third home is slower than a
// fallback (a delay on the link to it) while another home is believed
// down waits for the slow home rather than count the fallback's hint, so
// that the very next get, reading two homes, sees it.
func TestSlowHomeWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{})
		c := r.Client(&dkvs.Options{Timeout: time.Second})
		homes := r.Homes("slow", 3)
		r.Stop(homes[0])
		// The client learns that homes[0] is down.
		if err := c.Put(bg, []byte("warm"), []byte("x"), 3, 1); err != nil {
			t.Fatal(err)
		}
		r.Eventually(time.Second, "homes[0] believed down", func() error {
			if c.Health().Up(r.Addr(homes[0])) {
				c.Get(bg, []byte("slow"), 3, 1)
				return errors.New("still up")
			}
			return nil
		})
		const delay = 200 * time.Millisecond
		r.Net().SetLink(ringtest.ClientHost(1), r.Addr(homes[2]), memnet.LinkFault{Delay: delay})
		start := time.Now()
		if err := c.Put(bg, []byte("slow"), []byte("v"), 3, 2); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < delay {
			t.Fatalf("the put returned after %v, before the slow home answered", took)
		}
		if rec, found, _ := r.Record(homes[2], "slow"); !found || string(rec.Value) != "v" {
			t.Fatal("the slow home lacks the write when the put returns")
		}
		r.Restart(homes[0])
		if v, err := c.Get(bg, []byte("slow"), 3, 2); err != nil || string(v) != "v" {
			t.Fatalf("get right after: %q %v", v, err)
		}
	})
}

// TestPartitions: a server cut off from its peers (not from the client)
// keeps taking the client's writes; a client cut off from one home one
// way (its requests are lost, the home's answers would get through)
// still writes with W=2; after healing, every replica converges.
func TestPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{})
		c := r.Client(&dkvs.Options{Timeout: 500 * time.Millisecond})
		all := []int{0, 1, 2, 3, 4}
		want := map[string]string{}
		put := func(prefix string, n int) {
			for i := 0; i < n; i++ {
				k := fmt.Sprintf("%s-%d", prefix, i)
				if err := c.Put(bg, []byte(k), []byte("v-"+k), 3, 2); err != nil {
					t.Fatalf("%s: %v", k, err)
				}
				want[k] = "v-" + k
			}
		}
		r.Partition([]int{2}, []int{0, 1, 3, 4})
		put("split", 50)
		r.Heal()
		r.PartitionOneWay([]int{}, all) // no-op: an empty side
		r.Net().PartitionOneWay([]string{ringtest.ClientHost(1)}, []string{r.Addr(1)})
		put("oneway", 50)
		r.Heal()
		c.Coordinator().Wait(bg)
		took := r.WaitConverged(keysOf(want), 3, 5*time.Minute)
		t.Logf("converged %v after healing", took)
		for k, v := range want {
			if got, err := c.Get(bg, []byte(k), 3, 3); err != nil || string(got) != v {
				t.Fatalf("%s: %q %v", k, got, err)
			}
		}
	})
}

// TestLinearizableAcrossAKill: in linearizable mode a read right after a
// write sees it, with a home killed between the two.
func TestLinearizableAcrossAKill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{})
		c := r.Client(&dkvs.Options{Linearizable: true})
		for i := 0; i < 20; i++ {
			k := fmt.Sprint("lin-", i)
			homes := r.Homes(k, 3)
			if err := c.Put(bg, []byte(k), []byte("v1"), 3, 2); err != nil {
				t.Fatal(err)
			}
			r.Kill(homes[i%3])
			if v, err := c.Get(bg, []byte(k), 3, 2); err != nil || string(v) != "v1" {
				t.Fatalf("%s with %s killed: %q %v", k, r.Addr(homes[i%3]), v, err)
			}
			r.Restart(homes[i%3])
		}
	})
}
