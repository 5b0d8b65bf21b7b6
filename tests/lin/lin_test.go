package lin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// runFor is how long the fault-injection runs last: 60s by default,
// DKVS_LIN_DURATION for the soak (make soak).
func runFor(t *testing.T, def time.Duration) time.Duration {
	if s := os.Getenv("DKVS_LIN_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("DKVS_LIN_DURATION: %v", err)
		}
		return d
	}
	return def
}

// faultRun starts a five-server ring behind proxies, runs clients doing
// the workload while the nemesis injects faults for d, then stops the
// faults and returns the history.
func faultRun(t *testing.T, d time.Duration, opts dkvs.Options, w Workload) (*Cluster, []Op, *Nemesis, time.Time) {
	cl := StartCluster(t, 5, 2, "--ae-interval", "2s", "--handoff-interval", "200ms")
	rec := NewRecorder()
	nm := NewNemesis(t, cl, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	wg := startClients(t, cl.Ring.ServersFile(), opts, w, ctx, rec)
	stop := make(chan struct{})
	nmDone := make(chan struct{})
	go func() { nm.Run(stop, rec.Start()); close(nmDone) }()
	<-ctx.Done()
	close(stop)
	<-nmDone
	wg.Wait()
	faultsEnd := time.Now()
	cl.Heal()
	for i := range cl.Ring.Servers {
		if !cl.Ring.Running(i) {
			cl.Ring.Start(i)
		}
	}
	counts, total := nm.Counts()
	t.Logf("%v of faults: %d injected %v", d, total, counts)
	return cl, rec.Ops(), nm, faultsEnd
}

func TestLinearizableUnderFaults(t *testing.T) {
	d := runFor(t, 60*time.Second)
	var writeBacks atomic.Int64
	_, ops, nm, _ := faultRun(t, d,
		dkvs.Options{Linearizable: true, Timeout: 500 * time.Millisecond},
		Workload{Keys: 10, Req: dkvs.Request{N: 3, Linearizable: true}, WriteBacks: &writeBacks})
	wantLinearizable(t, ops, "linearizable", nm, writeBacks.Load())
}

// startClients opens five clients on the ring of serversFile, each
// running the workload until ctx ends and recording into rec; the group
// is done when all have stopped.
func startClients(t *testing.T, serversFile string, opts dkvs.Options, w Workload, ctx context.Context, rec *Recorder) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		c, err := dkvs.Open(serversFile, &opts)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer c.Close()
			w.Run(ctx, i, c, rec, int64(i)+time.Now().UnixNano())
		}(i)
	}
	return &wg
}

// wantLinearizable checks a linearizable run's history with porcupine
// (showing the faults and the visualisation when it is not), and that at
// least half its operations completed, so that it checked something.
func wantLinearizable(t *testing.T, ops []Op, name string, nm *Nemesis, writeBacks int64) {
	t.Helper()
	t.Log(Summary(ops))
	t.Logf("%d reads saw differing versions and wrote the newest back to a majority", writeBacks)
	start := time.Now()
	res, file, err := Check(ops, name, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("porcupine: %s in %v", res, time.Since(start).Round(time.Millisecond))
	if res != porcupine.Ok {
		t.Logf("faults:\n%s", strings.Join(nm.Log(), "\n"))
		if file == "" {
			file = "none (the failing keys' history is too long to draw)"
		}
		t.Fatalf("history is not linearizable (%s): visualisation: %s", res, file)
	}
	ok := 0
	for _, op := range ops {
		if op.Outcome == OK {
			ok++
		}
	}
	if ok < len(ops)/2 {
		t.Fatalf("only %d of %d operations completed: the run checked little", ok, len(ops))
	}
}

// versions returns, for each key of the workload, the version every home
// replica holds (zero if none), by each replica's own scan.
func replicaVersions(t *testing.T, c *dkvs.Client, keys int) (map[string][]kv.Version, error) {
	rg := c.Ring()
	held := make([]map[string]kv.Version, len(rg.Servers()))
	for i, s := range rg.Servers() {
		held[i] = map[string]kv.Version{}
		err := c.ScanServer(context.Background(), s.Addr(), true, func(k []byte, r kv.Record) error {
			held[i][string(k)] = r.Version
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := map[string][]kv.Version{}
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("k%d", k)
		for _, s := range rg.Preference([]byte(key), 3) {
			out[key] = append(out[key], held[s][key])
		}
	}
	return out, nil
}

// converge polls until every key's home replicas hold the same version and
// returns that state and how long it took.
func converge(t *testing.T, c *dkvs.Client, keys int, limit time.Duration) (map[string]kv.Version, time.Duration) {
	start := time.Now()
	for {
		vs, err := replicaVersions(t, c, keys)
		if err == nil {
			final := map[string]kv.Version{}
			same := true
			for k, v := range vs {
				for _, x := range v[1:] {
					if x != v[0] {
						same = false
					}
				}
				final[k] = v[0]
			}
			if same {
				return final, time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("replicas still differ after %v: %v", limit, vs)
			}
		} else if time.Since(start) > limit {
			t.Fatalf("replicas not readable after %v: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQuorumModeUnderFaults runs the same faults in the default mode
// (QUORUM: N=3, W=2, R=2, sloppy quorum, hints, read repair), which does
// not promise linearizability. It checks what it does promise: no
// acknowledged write is lost unless a later write to the same key
// superseded it, and once the faults stop every replica converges to the
// same version.
func TestQuorumModeUnderFaults(t *testing.T) {
	d := runFor(t, 30*time.Second)
	cl, ops, _, faultsEnd := faultRun(t, d,
		dkvs.Options{Timeout: 500 * time.Millisecond},
		Workload{Keys: 10, Req: dkvs.Request{N: 3, Level: dkvs.Quorum}})
	t.Log(Summary(ops))
	c, err := dkvs.Open(cl.Ring.ServersFile(), &dkvs.Options{DisableReadRepair: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	final, took := converge(t, c, 10, 2*time.Minute)
	t.Logf("every replica holds the same version %v after the faults stopped", (time.Since(faultsEnd) - 0).Round(time.Millisecond))
	t.Logf("convergence once the checker started polling: %v", took.Round(time.Millisecond))
	acked := map[string]kv.Version{}
	written := map[kv.Version]bool{}
	for _, op := range ops {
		if op.In.Kind == 'g' || op.Outcome == Failed {
			continue
		}
		written[op.Version] = true
		if op.Outcome == OK && op.Version.Newer(acked[op.In.Key]) {
			acked[op.In.Key] = op.Version
		}
	}
	for k, v := range acked {
		if v.Newer(final[k]) {
			t.Errorf("%s: acknowledged version %v lost; replicas converged on %v", k, v, final[k])
		}
		if !final[k].IsZero() && !written[final[k]] {
			t.Errorf("%s: converged on %v, which no client wrote", k, final[k])
		}
	}
	// For information only: this mode does not promise linearizability.
	t.Logf("for information: the default-mode history is %s for a linearizability checker",
		porcupine.CheckOperationsTimeout(Model, Porcupine(ops), time.Minute))
}

// recorded runs one operation and records it.
func recorded(rec *Recorder, client int, in Input, f func() (Output, kv.Version, error)) Op {
	op := Op{Client: client, In: in, Call: rec.now()}
	out, v, err := f()
	op.Ret, op.Out, op.Version = rec.now(), out, v
	switch {
	case err == nil:
	case errors.Is(err, dkvs.ErrUnknownOutcome):
		op.Outcome, op.Err = Unknown, err.Error()
	default:
		op.Outcome, op.Err = Failed, err.Error()
	}
	rec.add(op)
	return op
}

// TestCheckerCatchesStaleRead is the negative control: with R=1 and W=1 a
// real ring serves a stale read (the replica that missed a write is the
// only one answering), and the checker must call that history Illegal.
// The same schedule in linearizable mode never answers from the stale
// minority.
func TestCheckerCatchesStaleRead(t *testing.T) {
	for _, lin := range []bool{false, true} {
		t.Run(fmt.Sprintf("linearizable=%v", lin), func(t *testing.T) {
			cl := StartCluster(t, 3, 1, "--no-anti-entropy", "--no-handoff")
			c, err := dkvs.Open(cl.Ring.ServersFile(), &dkvs.Options{DisableReadRepair: true, DisableSloppyQuorum: true, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			co := c.Coordinator()
			weak := dkvs.Request{N: 3, R: 1, W: 1}
			if lin {
				weak = dkvs.Request{N: 3, Linearizable: true}
			}
			rg := ring.New(cl.Ring.Servers)
			stale := rg.Preference([]byte("k"), 3)[0]
			var others []int
			for i := range cl.Ring.Servers {
				if i != stale {
					others = append(others, i)
				}
			}
			rec := NewRecorder()
			put := func(v string, req dkvs.Request) Op {
				return recorded(rec, 0, Input{Kind: 'p', Key: "k", Value: v}, func() (Output, kv.Version, error) {
					ver, err := co.PutReq(context.Background(), []byte("k"), []byte(v), req)
					return Output{}, ver, err
				})
			}
			get := func() Op {
				return recorded(rec, 1, Input{Kind: 'g', Key: "k"}, func() (Output, kv.Version, error) {
					r, err := co.GetReq(context.Background(), []byte("k"), weak)
					if errors.Is(err, dkvs.ErrNotFound) {
						return Output{}, kv.Version{}, nil
					}
					return Output{Found: err == nil, Value: string(r.Value)}, r.Version, err
				})
			}
			if op := put("v1", dkvs.Request{N: 3, W: 3}); op.Outcome != OK {
				t.Fatalf("put v1: %s", op.Err)
			}
			cl.Ring.Kill(stale) // misses v2
			if op := put("v2", weak); op.Outcome != OK {
				t.Fatalf("put v2: %s", op.Err)
			}
			co.Wait(context.Background())
			cl.Ring.Start(stale)
			// Let the client's failure detector see the restarted server.
			for deadline := time.Now().Add(10 * time.Second); !c.Health().Up(cl.Ring.Addr(stale)); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the client never saw the restarted server up")
				}
			}
			for _, i := range others {
				cl.Ring.Stop(i)
			}
			g := get()
			for _, i := range others {
				cl.Ring.Cont(i)
			}
			res, file, err := Check(rec.Ops(), "negative-control", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !lin {
				if g.Outcome != OK || g.Out.Value != "v1" {
					t.Fatalf("R=1 get did not read the stale replica: %+v", g)
				}
				if res != porcupine.Illegal {
					t.Fatalf("the checker accepted a stale read: %s", res)
				}
				if _, err := os.Stat(file); err != nil {
					t.Fatalf("no visualisation: %v", err)
				}
				t.Logf("stale read caught; visualisation in %s", file)
				return
			}
			if g.Outcome == OK {
				t.Fatalf("linearizable get answered from a minority: %+v", g)
			}
			if res != porcupine.Ok {
				t.Fatalf("linearizable history %s: %s", res, file)
			}
			// With the majority back, the read sees v2.
			if g := get(); g.Outcome != OK || g.Out.Value != "v2" {
				t.Fatalf("linearizable get after the pause: %+v", g)
			}
		})
	}
}
