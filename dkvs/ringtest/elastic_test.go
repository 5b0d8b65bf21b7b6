package ringtest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ringtest"
	"github.com/dkvs/dkvs/dkvs/server"
	"github.com/dkvs/dkvs/dkvs/topology"
)

// load runs writers and readers until stopped: writers update keys and
// record the newest acknowledged version of each; readers read every key
// (those of static, written before the load, and the updated ones) and
// check that a read never returns less than what was acknowledged before
// it began.
type load struct {
	mu     sync.Mutex
	acked  map[string]kv.Version
	puts   int
	gets   int
	failed []error
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func startLoad(t *testing.T, r *ringtest.Ring, keys []string, writers int, static map[string]kv.Version) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{acked: map[string]kv.Version{}, cancel: cancel}
	for k, v := range static {
		l.acked[k] = v
	}
	var all []string
	all = append(all, keys...)
	for k := range static {
		all = append(all, k)
	}
	slices.Sort(all)
	fail := func(err error) {
		l.mu.Lock()
		l.failed = append(l.failed, err)
		l.mu.Unlock()
	}
	for w := 0; w < writers; w++ {
		c := r.Client(&dkvs.Options{Timeout: time.Second})
		rng := rand.New(rand.NewPCG(uint64(w), 9))
		l.wg.Add(2)
		go func() { // a writer
			defer l.wg.Done()
			for ctx.Err() == nil {
				k := keys[rng.IntN(len(keys))]
				v, err := c.Coordinator().PutReq(ctx, []byte(k), []byte(fmt.Sprint("v", rng.Uint32())), coord.Req{N: 3, W: 2})
				l.mu.Lock()
				l.puts++
				if err == nil && v.Newer(l.acked[k]) {
					l.acked[k] = v
				}
				l.mu.Unlock()
				if err != nil && ctx.Err() == nil {
					fail(fmt.Errorf("put %s: %w", k, err))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		go func() { // a reader
			defer l.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				k := all[i%len(all)]
				l.mu.Lock()
				before := l.acked[k]
				l.mu.Unlock()
				rec, err := c.Coordinator().GetReq(ctx, []byte(k), coord.Req{N: 3, R: 2})
				if ctx.Err() != nil {
					return
				}
				l.mu.Lock()
				l.gets++
				l.mu.Unlock()
				switch {
				case errors.Is(err, errcode.NotFound) && !before.IsZero():
					fail(fmt.Errorf("get %s: not found, acknowledged %v before the read", k, before))
				case err != nil && !errors.Is(err, errcode.NotFound):
					fail(fmt.Errorf("get %s: %w", k, err))
				case err == nil && before.Newer(rec.Version):
					fail(fmt.Errorf("get %s: %v, acknowledged %v before the read", k, rec.Version, before))
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

// preload writes keys once, before the load, and returns their versions.
func preload(t *testing.T, c *dkvs.Client, n int) map[string]kv.Version {
	t.Helper()
	out := map[string]kv.Version{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("static-%04d", i)
		v, err := c.Coordinator().PutReq(context.Background(), []byte(k), []byte("s"+k), coord.Req{N: 3, W: 2})
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// changeRing sends a ring command, retrying while no leader is known yet.
func changeRing(t *testing.T, r *ringtest.Ring, c *dkvs.Client, cmd topology.Command) topology.State {
	t.Helper()
	var st topology.State
	r.Eventually(time.Minute, fmt.Sprint("ring ", cmd.Op), func() error {
		var err error
		st, err = c.ChangeRing(context.Background(), cmd)
		if err != nil && errcode.Of(err) != errcode.Network {
			t.Fatalf("ring %s refused: %v", cmd.Op, err)
		}
		return err
	})
	return st
}

// waitMoveDone waits until the move begun at epoch id is over.
func waitMoveDone(t *testing.T, r *ringtest.Ring, id uint64, limit time.Duration) time.Duration {
	t.Helper()
	return r.Eventually(limit, "the move ends", func() error {
		st := r.State()
		if st.Epoch < id+2 || st.Move != nil {
			return fmt.Errorf("ring %s", st)
		}
		return nil
	})
}

func (l *load) snapshot() map[string]kv.Version {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]kv.Version{}
	for k, v := range l.acked {
		out[k] = v
	}
	return out
}

// checkHomes checks that every key of want is on each of its homes of the
// current ring at its acknowledged version or newer.
func checkHomes(t *testing.T, r *ringtest.Ring, want map[string]kv.Version) {
	t.Helper()
	for k, v := range want {
		for _, h := range r.Homes(k, 3) {
			rec, found, err := r.Record(h, k)
			if err != nil || !found || v.Newer(rec.Version) {
				t.Errorf("%s: home %s holds %v (found %v, %v), acknowledged %v", k, r.Addr(h), rec.Version, found, err, v)
			}
		}
	}
}

// checkPlacement checks that every key of want is on exactly its homes of
// the current ring (nothing left on old homes), at its acknowledged
// version or newer.
func checkPlacement(t *testing.T, r *ringtest.Ring, want map[string]kv.Version) {
	t.Helper()
	all := r.All()
	held := make([]map[string]kv.Record, len(all))
	for i := range all {
		if r.Running(i) {
			h, err := r.Holdings(i)
			if err != nil {
				t.Fatal(err)
			}
			held[i] = h
		}
	}
	for k, v := range want {
		homes := r.Homes(k, 3)
		for i := range all {
			rec, has := held[i][k]
			switch {
			case slices.Contains(homes, i) && (!has || v.Newer(rec.Version)):
				t.Errorf("%s: home %s holds %v (found %v), acknowledged %v", k, r.Addr(i), rec.Version, has, v)
			case !slices.Contains(homes, i) && has:
				t.Errorf("%s: %s holds it and is not a home (homes %v)", k, r.Addr(i), homes)
			}
		}
	}
}

func keyList(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("ek-%03d", i))
	}
	return out
}

// TestJoinUnderLoad: a fourth server joins a ring of three under a steady
// load of writes and reads; no operation fails, every acknowledged write
// is readable at its version or newer afterwards, and once the old homes
// cleaned up every key is on exactly its homes of the new ring.
func TestJoinUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Counts: []int{8, 8, 8}, Config: func(_ int, cfg *server.Config) {
			cfg.CleanupGrace = 10 * time.Second
		}})
		keys := keyList(100)
		admin := r.Client(nil)
		l := startLoad(t, r, keys, 3, preload(t, admin, 500))
		time.Sleep(2 * time.Second)
		x := r.AddServer(8)
		st := changeRing(t, r, admin, topology.Command{Op: topology.OpJoin, Server: r.All()[x]})
		if st.Move == nil || st.Move.Kind != topology.Join {
			t.Fatalf("after join: %s", st)
		}
		took := waitMoveDone(t, r, st.Move.ID, 5*time.Minute)
		// Before the old homes clean up, the new homes already hold
		// everything (what the copy brought, not the cleanup).
		checkHomes(t, r, l.snapshot())
		time.Sleep(2 * time.Second)
		l.stop()
		for _, err := range l.failed {
			t.Error(err)
		}
		t.Logf("join done %v after it began; %d puts, %d gets", took, l.puts, l.gets)
		r.Eventually(time.Minute, "the old homes clean up", func() error {
			for i := range r.All() {
				s := r.Server(i)
				if s == nil {
					continue
				}
				h, _ := r.Holdings(i)
				for k := range h {
					if !slices.Contains(r.Homes(k, 3), i) {
						return fmt.Errorf("%s still holds %s", r.Addr(i), k)
					}
				}
			}
			return nil
		})
		checkPlacement(t, r, l.acked)
		if len(r.State().Members) != 4 {
			t.Fatalf("members after join: %v", r.State().Members)
		}
	})
}
