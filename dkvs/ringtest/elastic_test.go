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
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
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
	// clients are the load's; stop waits for their background work (the
	// replies still due, a write placed again on a newer ring).
	clients []*dkvs.Client
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
		l.clients = append(l.clients, c)
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
				time.Sleep(20 * time.Millisecond)
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
				time.Sleep(10 * time.Millisecond)
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
	for _, c := range l.clients {
		c.Coordinator().Wait(context.Background())
	}
}

// changeRing sends a ring command, retrying while no leader is known yet.
func changeRing(t *testing.T, r *ringtest.Ring, c *dkvs.Client, cmd topology.Command) topology.State {
	t.Helper()
	var st topology.State
	r.Eventually(time.Minute, fmt.Sprint("ring ", cmd.Op), func() error {
		var err error
		st, err = c.ChangeRing(context.Background(), cmd)
		if err != nil && errcode.Of(err) != errcode.Network {
			if cur := r.State(); changeDone(cur, cmd) {
				st = cur // an attempt whose answer was lost made it
				return nil
			}
			t.Fatalf("ring %s refused: %v", cmd.Op, err)
		}
		return err
	})
	return st
}

// changeDone reports whether the ring st has the change cmd asked for,
// under way or over.
func changeDone(st topology.State, cmd topology.Command) bool {
	if st.Underway(cmd) {
		return true
	}
	switch cmd.Op {
	case topology.OpJoin:
		return config.Find(st.Members, cmd.Server.Addr()) >= 0
	case topology.OpLeave, topology.OpRemove:
		return config.Find(st.Members, cmd.Addr) < 0
	case topology.OpReplace:
		return config.Find(st.Members, cmd.Addr) < 0 && config.Find(st.Members, cmd.Server.Addr()) >= 0
	}
	return false
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
		l.stop()
		// Before the old homes clean up, the new homes already hold
		// everything (what the copy brought, not the cleanup).
		checkHomes(t, r, l.snapshot())
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

// moveCase runs a ring change under load: setup returns the command (it
// may start a server first); the checks are those of TestJoinUnderLoad.
func moveUnderLoad(t *testing.T, counts []int, setup func(r *ringtest.Ring) topology.Command, during func(r *ringtest.Ring, st topology.State)) *ringtest.Ring {
	t.Helper()
	r := ringtest.New(t, ringtest.Options{Counts: counts, Config: func(_ int, cfg *server.Config) {
		cfg.CleanupGrace = 10 * time.Second
		// Slow enough that the faults of `during` come while ranges are
		// copied: some 20 KB per gaining server.
		cfg.MoveBandwidth = 16 << 10
	}})
	keys := keyList(100)
	admin := r.Client(nil)
	l := startLoad(t, r, keys, 3, preload(t, admin, 500))
	time.Sleep(2 * time.Second)
	cmd := setup(r)
	st := changeRing(t, r, admin, cmd)
	if st.Move == nil {
		t.Fatalf("after %s: %s", cmd.Op, st)
	}
	if during != nil {
		during(r, st)
	}
	took := waitMoveDone(t, r, st.Move.ID, 10*time.Minute)
	l.stop()
	// Before the old homes clean up (10 s after the move), every home of
	// the new ring holds every acknowledged write: what the copy brought,
	// and the hints of the writes made during faults.
	r.Eventually(5*time.Second, "hints delivered", func() error {
		if h := r.HintsHeld(); h > 0 {
			return fmt.Errorf("%d hints held", h)
		}
		return nil
	})
	checkHomes(t, r, l.snapshot())
	for _, err := range l.failed {
		t.Error(err)
	}
	t.Logf("%s done %v after it began; %d puts, %d gets", cmd.Op, took, l.puts, l.gets)
	r.Eventually(2*time.Minute, "the old homes clean up", func() error {
		for i := range r.All() {
			if r.Server(i) == nil {
				continue
			}
			h, _ := r.Holdings(i)
			for k := range h {
				if !slices.Contains(r.Homes(k, 3), i) {
					return fmt.Errorf("%s (ring %s) still holds %s", r.Addr(i), r.Server(i).Coordinator().View().State(), k)
				}
			}
		}
		return nil
	})
	checkPlacement(t, r, l.acked)
	return r
}

func TestLeaveUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var leaving string
		r := moveUnderLoad(t, []int{8, 8, 8, 8}, func(r *ringtest.Ring) topology.Command {
			leaving = r.Addr(1)
			return topology.Command{Op: topology.OpLeave, Addr: leaving}
		}, nil)
		if st := r.State(); len(st.Members) != 3 || st.IsMember(leaving) {
			t.Fatalf("after the leave: %s %v", st, st.Members)
		}
	})
}

func TestReplaceDeadServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		moveUnderLoad(t, []int{8, 8, 8, 8}, func(r *ringtest.Ring) topology.Command {
			r.Kill(2)
			x := r.AddServer(8)
			return topology.Command{Op: topology.OpReplace, Addr: r.Addr(2), Server: r.All()[x]}
		}, nil)
	})
}

func TestRemoveDeadServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		moveUnderLoad(t, []int{8, 8, 8, 8}, func(r *ringtest.Ring) topology.Command {
			r.Kill(0)
			return topology.Command{Op: topology.OpRemove, Addr: r.Addr(0)}
		}, nil)
	})
}

// TestJoinerKilledMidStream: the joining server is killed while it copies
// and restarted; it resumes and the move ends.
func TestJoinerKilledMidStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		moveUnderLoad(t, []int{8, 8, 8}, func(r *ringtest.Ring) topology.Command {
			x := r.AddServer(8)
			return topology.Command{Op: topology.OpJoin, Server: r.All()[x]}
		}, func(r *ringtest.Ring, st topology.State) {
			x := r.Index(st.Move.Server)
			time.Sleep(300 * time.Millisecond)
			r.Kill(x)
			time.Sleep(3 * time.Second)
			r.Restart(x)
		})
	})
}

// TestSourceKilledDuringJoin: a current home is killed during the copy
// and comes back later; the joiner takes the ranges from the other homes.
func TestSourceKilledDuringJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		moveUnderLoad(t, []int{8, 8, 8, 8}, func(r *ringtest.Ring) topology.Command {
			x := r.AddServer(8)
			return topology.Command{Op: topology.OpJoin, Server: r.All()[x]}
		}, func(r *ringtest.Ring, st topology.State) {
			r.Kill(1)
			time.Sleep(5 * time.Second)
			r.Restart(1)
		})
	})
}

// TestLeaderKilledDuringJoin: the consensus leader dies during the move; a
// new one is elected and drives it to its end.
func TestLeaderKilledDuringJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		moveUnderLoad(t, []int{8, 8, 8, 8}, func(r *ringtest.Ring) topology.Command {
			x := r.AddServer(8)
			return topology.Command{Op: topology.OpJoin, Server: r.All()[x]}
		}, func(r *ringtest.Ring, st topology.State) {
			for i := range r.All() {
				if s := r.Server(i); s != nil && s.Membership().IsLeader() {
					r.Kill(i)
					time.Sleep(5 * time.Second)
					r.Restart(i)
					return
				}
			}
			t.Fatal("no leader")
		})
	})
}

// TestPartitionDuringJoin: the joiner is cut off from the old homes for a
// while during the move.
func TestPartitionDuringJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		moveUnderLoad(t, []int{8, 8, 8}, func(r *ringtest.Ring) topology.Command {
			x := r.AddServer(8)
			return topology.Command{Op: topology.OpJoin, Server: r.All()[x]}
		}, func(r *ringtest.Ring, st topology.State) {
			x := r.Index(st.Move.Server)
			r.Partition([]int{x}, []int{0, 1})
			time.Sleep(5 * time.Second)
			r.Heal()
		})
	})
}

// TestAbortJoin: a join aborted while the joiner copies: the ring stays
// the old one, and the joiner drops what it received.
func TestAbortJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Counts: []int{8, 8, 8}, Config: func(_ int, cfg *server.Config) {
			cfg.CleanupGrace = 10 * time.Second
			cfg.MoveBandwidth = 64 << 10 // slow, so that the abort comes during the copy
		}})
		admin := r.Client(nil)
		want := preload(t, admin, 1000)
		x := r.AddServer(8)
		st := changeRing(t, r, admin, topology.Command{Op: topology.OpJoin, Server: r.All()[x]})
		// The abort once the joiner has begun its stream: it then has
		// copies to drop.
		r.Eventually(time.Minute, "the joiner's stream begun", func() error {
			if ss := r.Server(x).Stats().Stream; ss == nil || ss.Move != st.Move.ID {
				return fmt.Errorf("joiner's stream %+v", ss)
			}
			return nil
		})
		ab := changeRing(t, r, admin, topology.Command{Op: topology.OpAbort, MoveID: st.Move.ID})
		if ab.Move != nil || len(ab.Members) != 3 {
			t.Fatalf("after abort: %s", ab)
		}
		// What the console shows of it: the joiner's stream over (done,
		// or stopped if the abort came first), the move aborted in the
		// servers' history.
		r.Eventually(time.Minute, "the abort in the joiner's stats and the servers' history", func() error {
			ss := r.Server(x).Stats().Stream
			if ss == nil || ss.Move != st.Move.ID || (ss.Phase != "stopped" && ss.Phase != "done") || ss.FinishedMS == 0 {
				return fmt.Errorf("joiner's stream %+v", ss)
			}
			for i := 0; i < 3; i++ {
				h := r.Server(i).MoveHistory()
				if len(h) != 1 || h[0].Move.ID != st.Move.ID || h[0].Outcome != topology.Aborted || h[0].Epoch != ab.Epoch {
					return fmt.Errorf("server %d's history %+v", i, h)
				}
			}
			return nil
		})
		r.Eventually(2*time.Minute, "the joiner drops what it received", func() error {
			h, err := r.Holdings(x)
			if err != nil {
				return err
			}
			if len(h) > 0 {
				return fmt.Errorf("%d records left on the joiner", len(h))
			}
			return nil
		})
		checkPlacement(t, r, want)
	})
}

// TestLinearizableAcrossJoin: linearizable writes and reads during a join:
// a read sees the last write acknowledged before it began.
func TestLinearizableAcrossJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Counts: []int{8, 8, 8}})
		c := r.Client(&dkvs.Options{Linearizable: true, Timeout: time.Second})
		admin := r.Client(nil)
		x := r.AddServer(8)
		var st topology.State
		done := make(chan struct{})
		go func() {
			defer close(done)
			st = changeRing(t, r, admin, topology.Command{Op: topology.OpJoin, Server: r.All()[x]})
		}()
		for i := 0; i < 300; i++ {
			k := fmt.Sprint("lin-", i%30)
			v := fmt.Sprint("v", i)
			if err := c.Put(context.Background(), []byte(k), []byte(v), 3, 2); err != nil {
				t.Fatalf("put %s: %v", k, err)
			}
			got, err := c.Get(context.Background(), []byte(k), 3, 2)
			if err != nil || string(got) != v {
				t.Fatalf("get %s right after writing %s: %q %v", k, v, got, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		<-done
		waitMoveDone(t, r, st.Move.ID, 5*time.Minute)
	})
}

// TestVerifyPassBringsNewest: the first pass copies a key from its first
// live current home, which missed the key's last write (it was stopped,
// with handoff, anti-entropy and read repair off); the verifying pass
// lists the other homes' versions and fetches the newer one. Without it
// the new home would keep the stale copy.
func TestVerifyPassBringsNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Counts: []int{8, 8, 8, 8}, Config: func(_ int, cfg *server.Config) {
			cfg.DisableHandoff, cfg.DisableAntiEntropy = true, true
			cfg.CleanupGrace = time.Hour
		}})
		x := r.AddServer(8)
		target := ring.New(r.All())
		// A key the new server gains whose first current home is not the
		// one it replaces among the homes (so that home is a source of
		// the first pass, and another current home holds the newest).
		var key string
		var homes []int
		for i := 0; key == ""; i++ {
			k := fmt.Sprintf("verify-%d", i)
			var newHomes []int
			for _, s := range target.Preference([]byte(k), 3) {
				newHomes = append(newHomes, r.Index(target.Servers()[s].Addr()))
			}
			if cur := r.Homes(k, 3); slices.Contains(newHomes, x) && slices.Contains(newHomes, cur[0]) {
				key, homes = k, cur
			}
		}
		c := r.Client(&dkvs.Options{DisableReadRepair: true, DisableSloppyQuorum: true})
		if err := c.Put(bg, []byte(key), []byte("old"), 3, 3); err != nil {
			t.Fatal(err)
		}
		r.Stop(homes[0])
		if err := c.Put(bg, []byte(key), []byte("new"), 3, 2); err != nil {
			t.Fatal(err)
		}
		c.Coordinator().Wait(bg)
		r.Restart(homes[0])
		r.Eventually(10*time.Second, "every server believes the restarted home up", func() error {
			for i := range r.All() {
				if s := r.Server(i); s != nil && i != homes[0] && !s.Health().Up(r.Addr(homes[0])) {
					return fmt.Errorf("%s believes %s down", r.Addr(i), r.Addr(homes[0]))
				}
			}
			return nil
		})
		if rec, _, _ := r.Record(homes[0], key); string(rec.Value) != "old" {
			t.Fatalf("the first home holds %q before the join, want old", rec.Value)
		}
		st := changeRing(t, r, c, topology.Command{Op: topology.OpJoin, Server: r.All()[x]})
		waitMoveDone(t, r, st.Move.ID, time.Minute)
		if rec, ok, err := r.Record(x, key); err != nil || !ok || string(rec.Value) != "new" {
			t.Fatalf("the new home holds %q (found %v, %v), want new", rec.Value, ok, err)
		}
	})
}

// TestLeftServerLearnsTheEnd: a leaving server cut off from the others
// while reads go to the new ring misses the move's last epoch, and the
// leader then removes it from the consensus, so the log will not bring it
// that epoch. Once it is reachable again it learns that it left (from its
// peers' answers: their refusals of its requests carry the ring, and it
// asks them for it while it believes a move under way) and drops
// everything it held.
func TestLeftServerLearnsTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Counts: []int{8, 8, 8, 8}, Config: func(_ int, cfg *server.Config) {
			cfg.CleanupGrace = 2 * time.Second
			cfg.MoveBandwidth = 64 << 10 // the streaming phase lasts a few seconds
		}})
		admin := r.Client(nil)
		preload(t, admin, 300)
		const leaver = 3
		st := changeRing(t, r, admin, topology.Command{Op: topology.OpLeave, Addr: r.Addr(leaver)})
		r.Eventually(time.Minute, "reads go to the new ring on the leaving server", func() error {
			if cur := r.Server(leaver).Coordinator().View().State(); cur.Move == nil || cur.Move.Phase != topology.ReadNew {
				return fmt.Errorf("ring %s", cur)
			}
			return nil
		})
		r.Isolate(leaver)
		waitMoveDone(t, r, st.Move.ID, time.Minute)
		time.Sleep(5 * time.Second) // the leader removes it from the consensus
		if e := r.Server(leaver).Coordinator().View().Epoch(); e >= r.State().Epoch {
			t.Fatalf("the cut-off server knows epoch %d already", e)
		}
		r.Heal()
		r.Eventually(time.Minute, "the server that left learns it and drops what it held", func() error {
			if e, want := r.Server(leaver).Coordinator().View().Epoch(), r.State().Epoch; e < want {
				return fmt.Errorf("it knows epoch %d of %d", e, want)
			}
			h, err := r.Holdings(leaver)
			if err != nil {
				return err
			}
			if len(h) > 0 {
				return fmt.Errorf("it still holds %d keys", len(h))
			}
			return nil
		})
	})
}
