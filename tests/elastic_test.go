package tests

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/tests/harness"
)

// The elastic ring on real processes: servers join and leave a running
// ring through dkvs-client, under load from dkvs-client bench and from a
// Redis client, and the command line's errors exit with their codes.

// elasticRing prepares five servers of which servers.txt lists the first
// three: the other two are started later, with it as their seeds, and
// join. Moves and their cleanup are quick: a cleanup grace of 2 s,
// anti-entropy every 2 s.
func elasticRing(t *testing.T, extra ...string) *harness.Ring {
	r := harness.NewRing(t, 16, 16, 16, 16, 16)
	r.WriteServers(r.Servers[:3])
	r.Args = append([]string{"--memory", "--cleanup-grace", "2s", "--ae-interval", "2s", "--handoff-interval", "200ms"}, extra...)
	return r
}

// ringCmd runs a ring command of dkvs-client, trying again while no leader
// of the consensus is known (one is elected within seconds of the ring's
// start, and nothing was changed then).
func ringCmd(t *testing.T, r *harness.Ring, args ...string) harness.Result {
	t.Helper()
	var res harness.Result
	harness.Eventually(t, 30*time.Second, "dkvs-client "+strings.Join(args, " "), func() error {
		res = r.Client(args...)
		if res.Code == errcode.Network.ExitStatus() && strings.Contains(res.Stderr, "no leader is known") {
			return errors.New(res.Stderr)
		}
		return nil
	})
	return res
}

// wantRingOK checks a ring command's success and its line.
func wantRingOK(t *testing.T, res harness.Result, prefix string) {
	t.Helper()
	if res.Code != 0 || !strings.HasPrefix(res.Stdout, prefix) {
		t.Fatalf("want %q..., got %s", prefix, res)
	}
}

func port(s config.Server) string { return strconv.Itoa(int(s.Port)) }

// redisLoad writes, deletes and reads keys through one server's RESP
// port and checks every read against what was acknowledged before it
// began: an update key reads at its acknowledged sequence or a newer one,
// a key whose deletion was acknowledged stays deleted.
type redisLoad struct {
	rdb    *redis.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	acked      map[string]int  // update keys: highest acknowledged sequence
	deleted    map[string]bool // keys whose deletion was acknowledged
	toDelete   []string        // keys deleted one by one while the load runs
	sets, gets int
	failed     []string // operations that failed (no answer in time)
	violations []string
}

const (
	updateKeys  = 200 // "ru-*", written over and over
	deletedKeys = 100 // "rd-*", written and deleted before the moves
	dyingKeys   = 300 // "rx-*", written before, deleted during the moves
)

func startRedisLoad(t *testing.T, addr string) *redisLoad {
	t.Helper()
	l := &redisLoad{rdb: redisClient(t, addr), acked: map[string]int{}, deleted: map[string]bool{}}
	ctx := ctxFor(t, time.Minute)
	for i := 0; i < deletedKeys; i++ {
		k := fmt.Sprintf("rd-%03d", i)
		if err := l.rdb.Set(ctx, k, "gone", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := l.rdb.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
		l.deleted[k] = true
	}
	for i := 0; i < dyingKeys; i++ {
		k := fmt.Sprintf("rx-%03d", i)
		if err := l.rdb.Set(ctx, k, "dying", 0).Err(); err != nil {
			t.Fatal(err)
		}
		l.toDelete = append(l.toDelete, k)
	}
	lctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	op := func() (context.Context, context.CancelFunc) { return context.WithTimeout(lctx, 10*time.Second) }
	for w := 0; w < 2; w++ { // writers, each of its own keys
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			next := map[string]int{}
			for lctx.Err() == nil {
				k := fmt.Sprintf("ru-%d-%03d", w, rng.IntN(updateKeys/2))
				next[k]++
				octx, cancel := op()
				err := l.rdb.Set(octx, k, strconv.Itoa(next[k]), 0).Err()
				cancel()
				l.mu.Lock()
				l.sets++
				switch {
				case err == nil:
					l.acked[k] = max(l.acked[k], next[k])
				case lctx.Err() == nil:
					l.failed = append(l.failed, fmt.Sprintf("SET %s: %v", k, err))
				}
				l.mu.Unlock()
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	l.wg.Add(1)
	go func() { // the deleter: one key every 100 ms
		defer l.wg.Done()
		for _, k := range l.toDelete {
			if lctx.Err() != nil {
				return
			}
			octx, cancel := op()
			err := l.rdb.Del(octx, k).Err()
			cancel()
			l.mu.Lock()
			if err == nil {
				l.deleted[k] = true
			} else if lctx.Err() == nil {
				l.failed = append(l.failed, fmt.Sprintf("DEL %s: %v", k, err))
			}
			l.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	l.wg.Add(1)
	go func() { // the reader
		defer l.wg.Done()
		keys := l.keys()
		for i := 0; lctx.Err() == nil; i++ {
			k := keys[i%len(keys)]
			l.mu.Lock()
			before, gone := l.acked[k], l.deleted[k]
			l.mu.Unlock()
			octx, cancel := op()
			v, err := l.rdb.Get(octx, k).Result()
			cancel()
			if lctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.gets++
			if msg := judge(k, v, err, before, gone); msg != "" {
				l.violations = append(l.violations, "redis "+msg)
			}
			if err != nil && !errors.Is(err, redis.Nil) {
				l.failed = append(l.failed, fmt.Sprintf("GET %s: %v", k, err))
			}
			l.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	return l
}

// keys returns every key the load reads.
func (l *redisLoad) keys() []string {
	var out []string
	for w := 0; w < 2; w++ {
		for i := 0; i < updateKeys/2; i++ {
			out = append(out, fmt.Sprintf("ru-%d-%03d", w, i))
		}
	}
	for i := 0; i < deletedKeys; i++ {
		out = append(out, fmt.Sprintf("rd-%03d", i))
	}
	return append(out, l.toDelete...)
}

// judge checks one read of k (value v or error err) against what was
// acknowledged before it began, and says what is wrong ("" if nothing).
func judge(k, v string, err error, acked int, deleted bool) string {
	notFound := errors.Is(err, redis.Nil) || errors.Is(err, dkvs.ErrNotFound)
	switch {
	case err != nil && !notFound:
		return "" // no answer: counted apart
	case deleted && !notFound:
		return fmt.Sprintf("%s: deleted, and read back as %q", k, v)
	case strings.HasPrefix(k, "ru-") && acked > 0 && notFound:
		return fmt.Sprintf("%s: not found, %d acknowledged", k, acked)
	case strings.HasPrefix(k, "ru-") && acked > 0:
		if got, _ := strconv.Atoi(v); got < acked {
			return fmt.Sprintf("%s: read %q, %d acknowledged", k, v, acked)
		}
	}
	return ""
}

// snapshot returns what was acknowledged so far.
func (l *redisLoad) snapshot() (map[string]int, map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acked, deleted := map[string]int{}, map[string]bool{}
	for k, v := range l.acked {
		acked[k] = v
	}
	for k := range l.deleted {
		deleted[k] = true
	}
	return acked, deleted
}

func (l *redisLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// checkAcknowledged reads every key of the load through the Go client (the
// servers directly, not the RESP port) and checks it against what was
// acknowledged before.
func checkAcknowledged(t *testing.T, c *dkvs.Client, l *redisLoad, when string) {
	t.Helper()
	acked, deleted := l.snapshot()
	bad := 0
	for _, k := range l.keys() {
		v, err := c.GetWith(bg, []byte(k), dkvs.Request{N: 3, R: 2})
		if msg := judge(k, string(v), err, acked[k], deleted[k]); msg != "" {
			bad++
			t.Errorf("%s: %s", when, msg)
		} else if err != nil && !errors.Is(err, dkvs.ErrNotFound) {
			t.Errorf("%s: get %s: %v", when, k, err)
		}
		if bad > 10 {
			t.Fatalf("%s: more than 10 keys wrong", when)
		}
	}
}

// startBench starts dkvs-client bench as a process against the ring,
// until it is interrupted; the returned function interrupts it and
// returns its result.
func startBench(t *testing.T, r *harness.Ring) func() string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bench.json")
	cmd := exec.Command(harness.Bin(t, "dkvs-client"), "bench", "--duration", "10m", "--keys", "2000", "--concurrency", "2",
		"--value-size", "200", "--no-progress", "--json", out)
	cmd.Dir = r.Dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return func() string {
		t.Helper()
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bench: %v\n%s%s", err, stdout.String(), stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("bench did not stop 30 s after SIGINT")
		}
		res := readBenchJSON(t, out)
		if res.Run == nil || res.Run.All.Ops == 0 {
			t.Fatalf("bench ran nothing:\n%s%s", stdout.String(), stderr.String())
		}
		var examples []string
		for kind, ex := range res.Run.ErrorExamples {
			examples = append(examples, kind+": "+ex)
		}
		sort.Strings(examples)
		return fmt.Sprintf("%d operations (%d gets, %d puts), %d errors %s, %.0f ops/s", res.Run.All.Ops, res.Run.Get.Ops,
			res.Run.Put.Ops, res.Run.All.Errors, examples, res.Run.All.OpsPerSec)
	}
}

// placement checks that every record of the running servers (tombstones
// included) is on exactly its N=3 homes of the ring of members: on every
// home, and on no other server (left servers included).
func placement(c *dkvs.Client, members []config.Server, running []string) error {
	rg := ring.New(members)
	held := map[string]map[string]kv.Record{}
	keys := map[string]bool{}
	for _, addr := range running {
		h := map[string]kv.Record{}
		err := c.ScanServer(bg, addr, true, func(k []byte, rec kv.Record) error {
			h[string(k)] = rec
			keys[string(k)] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("scan %s: %w", addr, err)
		}
		held[addr] = h
	}
	var wrong []string
	for k := range keys {
		var homes []string
		for _, i := range rg.Preference([]byte(k), 3) {
			homes = append(homes, rg.Servers()[i].Addr())
		}
		for _, addr := range running {
			_, has := held[addr][k]
			if has != slices.Contains(homes, addr) {
				wrong = append(wrong, fmt.Sprintf("%s on %s: %v (homes %v)", k, addr, has, homes))
			}
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return fmt.Errorf("%d misplaced, e.g. %s", len(wrong), wrong[0])
	}
	return nil
}

// waitRing waits until the ring has that many members and no move.
func waitRing(t *testing.T, c *dkvs.Client, members int) topology.State {
	t.Helper()
	var st topology.State
	harness.Eventually(t, 30*time.Second, fmt.Sprintf("a ring of %d servers", members), func() error {
		var err error
		if st, err = c.FetchRing(bg); err != nil {
			return err
		}
		if len(st.Members) != members || st.Move != nil {
			return fmt.Errorf("ring %s", st)
		}
		return nil
	})
	return st
}

// TestElasticGrowAndShrink: a ring of three grows to five (two joins, one
// after the other) and shrinks back to three (a server of servers.txt
// leaves, then one that joined), under load from dkvs-client bench and
// from a Redis client on the RESP port of a server that stays. After each
// step every acknowledged write reads at its value or a newer one and no
// deleted key is back; at the end, once the old homes cleaned up, every
// key is on exactly its homes of the final ring, and the servers that
// left hold nothing.
func TestElasticGrowAndShrink(t *testing.T) {
	start := time.Now()
	r := elasticRing(t)
	respAddrs := r.WithRESP()
	metricsPort := harness.FreePorts(t, 1)[0]
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	r.ServerArgs[3] = append(r.ServerArgs[3], "--metrics", metricsAddr)
	for i := 0; i < 3; i++ {
		r.Start(i)
	}
	r.WaitPeersUp()
	c := client(t, r, &dkvs.Options{Timeout: time.Second})
	load := startRedisLoad(t, respAddrs[2])
	stopBench := startBench(t, r)
	var steps []string
	step := func(what string, args ...string) {
		t.Helper()
		began := time.Now()
		res := ringCmd(t, r, args...)
		wantRingOK(t, res, "OK epoch ")
		steps = append(steps, fmt.Sprintf("%s %.1fs", what, time.Since(began).Seconds()))
		checkAcknowledged(t, c, load, "after "+what)
	}

	r.Start(3)
	step("join of the fourth", "join", "--wait", "90s", "--", "127.0.0.1", port(r.Servers[3]), "16")
	st := waitRing(t, c, 4)
	if config.Find(st.Members, r.Addr(3)) < 0 {
		t.Fatalf("after the join: %s", st)
	}
	fams := scrape(t, metricsAddr)
	if e := value(fams["dkvs_ring_epoch"], nil); e < 4 || value(fams["dkvs_stream_phase"], map[string]string{"phase": "done"}) != 1 ||
		value(fams["dkvs_stream_keys_total"], nil) == 0 {
		t.Errorf("metrics of the joined server: epoch %v, stream done %v, keys %v", e,
			value(fams["dkvs_stream_phase"], map[string]string{"phase": "done"}), value(fams["dkvs_stream_keys_total"], nil))
	}

	r.Start(4)
	step("join of the fifth", "join", "--wait", "90s", "--", "127.0.0.1", port(r.Servers[4]), "16")
	waitRing(t, c, 5)
	five := filepath.Join(r.Dir, "servers-5.txt")
	wantRingOK(t, r.Client("ring", "--servers-file", five), "OK epoch ")
	if got, err := config.Load(five); err != nil || len(got) != 5 || got[3] != r.Servers[3] || got[4] != r.Servers[4] {
		t.Fatalf("ring --servers-file: %v %v", got, err)
	}
	if res := r.Client("ring"); res.Code != 0 || strings.Count(res.Stdout, " up ") != 5 {
		t.Errorf("ring after the joins: %s", res)
	}

	step("leave of a server of servers.txt", "leave", "--wait", "90s", "--", r.Addr(1))
	step("leave of a joined server", "leave", "--wait", "90s", "--", r.Addr(3))
	final := waitRing(t, c, 3)
	for _, i := range []int{0, 2, 4} {
		if config.Find(final.Members, r.Addr(i)) < 0 {
			t.Fatalf("final ring %s lacks %s", final, r.Addr(i))
		}
	}
	time.Sleep(time.Second) // some load on the final ring
	load.stop()
	benchOutcome := stopBench()
	checkAcknowledged(t, c, load, "at the end")
	// The old homes drop what moved once the grace has passed, the left
	// servers too (they still run); stragglers of the load (a third
	// replica written after its quorum, a hint) settle meanwhile.
	running := []string{r.Addr(0), r.Addr(1), r.Addr(2), r.Addr(3), r.Addr(4)}
	settled := harness.Eventually(t, 60*time.Second, "every key on exactly its homes of the final ring", func() error {
		return placement(c, final.Members, running)
	})
	for _, i := range []int{1, 3} {
		if err := r.Term(i); err != nil {
			t.Errorf("%s after it left: %v", r.Addr(i), err)
		}
	}
	load.mu.Lock()
	defer load.mu.Unlock()
	for _, v := range load.violations {
		t.Error(v)
	}
	t.Logf("steps: %s; placement settled %.1fs after the load stopped; total %.0fs", strings.Join(steps, ", "),
		settled.Seconds(), time.Since(start).Seconds())
	t.Logf("redis: %d sets, %d gets, %d deletions acknowledged, %d failed operations %.200q", load.sets, load.gets,
		len(load.deleted), len(load.failed), load.failed)
	t.Logf("bench: %s", benchOutcome)
	if len(load.failed) > (load.sets+load.gets)/100 {
		t.Errorf("%d of %d Redis operations failed", len(load.failed), load.sets+load.gets)
	}
}

// TestRingCommandErrors: each error of the ring commands on a real ring,
// with its exit code; a move held in streaming by a small bandwidth, seen
// by ring, refused a second time, then aborted.
func TestRingCommandErrors(t *testing.T) {
	r := elasticRing(t)
	for i := 0; i < 3; i++ {
		r.Start(i)
	}
	r.WaitPeersUp()
	c := client(t, r, nil)
	// Random values: a move copies them byte for byte (the throttle
	// counts the compressed pages).
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		v := make([]byte, 2000)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		if err := c.Put(bg, []byte(fmt.Sprintf("big-%03d", i)), v, 3, 3); err != nil {
			t.Fatal(err)
		}
	}
	invalidArg, address, network := errcode.InvalidArg, errcode.Address, errcode.Network
	cases := []struct {
		args []string
		code errcode.Code
		msg  string
	}{
		{[]string{"leave", "--", "127.0.0.1:1"}, invalidArg, "not a member of the ring"},
		{[]string{"removenode", "--", "127.0.0.1:1"}, invalidArg, "not a member of the ring"},
		{[]string{"replace", "--", "127.0.0.1:1", r.Addr(3)}, invalidArg, "not a member of the ring"},
		{[]string{"join", "--", "127.0.0.1", port(r.Servers[1]), "16"}, invalidArg, "already a member of the ring"},
		{[]string{"leave", "--", r.Addr(0)}, invalidArg, "too few servers would be left"},
		{[]string{"removenode", "--force", "--", r.Addr(0)}, invalidArg, "too few servers would be left"},
		{[]string{"removenode", "--", r.Addr(0)}, invalidArg, "still answers"},
		{[]string{"abort"}, invalidArg, "no move under way"},
		{[]string{"leave", "--", "127.0.0.1:0"}, address, "port"},
		{[]string{"join", "--", "127.0.0.256", "7000", "16"}, address, "not a dotted IPv4 address"},
		{[]string{"join", "--", "127.0.0.1", port(r.Servers[3]), "16"}, network, "does not answer"}, // not started
	}
	for _, tc := range cases {
		res := ringCmd(t, r, tc.args...)
		if res.Code != tc.code.ExitStatus() || !strings.Contains(res.Stderr, tc.msg) {
			t.Errorf("%q: %s, want exit %d and %q", tc.args, res, tc.code.ExitStatus(), tc.msg)
		}
	}

	// A join held in its streaming phase: 2 KB/s for some 400 KB.
	r.ServerArgs[3] = []string{"--move-bandwidth", "2000"}
	r.Start(3)
	r.Start(4)
	wantRingOK(t, ringCmd(t, r, "join", "--", "127.0.0.1", port(r.Servers[3]), "16"), "OK epoch 2: move 2, join of "+r.Addr(3)+" begun")
	harness.Eventually(t, 20*time.Second, "the stream shows in dkvs-client ring", func() error {
		res := r.Client("ring")
		if res.Code != 0 || !strings.Contains(res.Stdout, "phase streaming") || !strings.Contains(res.Stdout, r.Addr(3)+" ") ||
			!strings.Contains(res.Stdout, " copy ") {
			return errors.New(res.String())
		}
		return nil
	})
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"join", "--", "127.0.0.1", port(r.Servers[4]), "16"}, "a move is already under way"},
		{[]string{"leave", "--", r.Addr(0)}, "a move is already under way"},
		{[]string{"join", "--", "127.0.0.1", port(r.Servers[3]), "8"}, "a move is already under way"},
	} {
		if res := ringCmd(t, r, tc.args...); res.Code != invalidArg.ExitStatus() || !strings.Contains(res.Stderr, tc.msg) {
			t.Errorf("%q during a move: %s", tc.args, res)
		}
	}
	// The same join again (an operator who lost the first answer) is
	// answered with the move it began, not refused.
	wantRingOK(t, ringCmd(t, r, "join", "--", "127.0.0.1", port(r.Servers[3]), "16"), "OK epoch 2: move 2, join of "+r.Addr(3))
	res := ringCmd(t, r, "ring", "--servers-file", filepath.Join(r.Dir, "during.txt"))
	if res.Code != 0 || !strings.Contains(res.Stderr, "WARNING: move 2, join of "+r.Addr(3)+" is under way") {
		t.Errorf("ring --servers-file during a move: %s", res)
	}
	wantRingOK(t, ringCmd(t, r, "abort"), "OK epoch 3: move 2, join of "+r.Addr(3)+" aborted")
	st := waitRing(t, c, 3)
	if st.Cleanup == nil || config.Find(st.Members, r.Addr(3)) >= 0 {
		t.Fatalf("after the abort: %s", st)
	}
	// What the aborted server received goes once the grace has passed.
	harness.Eventually(t, 30*time.Second, "the aborted server drops what it received", func() error {
		n := 0
		err := c.ScanServer(bg, r.Addr(3), true, func([]byte, kv.Record) error { n++; return nil })
		if err == nil && n > 0 {
			err = fmt.Errorf("%s holds %d records", r.Addr(3), n)
		}
		return err
	})

	// No leader: two of the three voters stopped.
	r.Stop(1)
	r.Stop(2)
	began := time.Now()
	res = r.Client("join", "--", "127.0.0.1", port(r.Servers[4]), "16")
	took := time.Since(began)
	r.Cont(1)
	r.Cont(2)
	if res.Code != network.ExitStatus() || !strings.Contains(res.Stderr, "no server made the change") {
		t.Errorf("join with no leader: %s", res)
	}
	t.Logf("join with no leader failed after %v", took.Round(100*time.Millisecond))

	// No server answers at all.
	dead := filepath.Join(r.Dir, "dead.txt")
	os.WriteFile(dead, []byte("127.0.0.1 1 1\n127.0.0.1 2 1\n"), 0o644)
	for _, args := range [][]string{{"ring"}, {"leave", "--", "127.0.0.1:1"}, {"abort"}} {
		res := r.Client(append([]string{"--servers", dead}, args...)...)
		if res.Code != network.ExitStatus() || !strings.HasPrefix(res.Stdout, "FAIL\n") {
			t.Errorf("%q with no server: %s", args, res)
		}
	}
}
