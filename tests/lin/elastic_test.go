package lin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/topology"
)

// ringStep is one change of the ring and how to tell it is over.
type ringStep struct {
	cmd topology.Command
	// done reports whether the ring st has the change, with no move left.
	done func(st topology.State) bool
}

func (s ringStep) String() string {
	if s.cmd.Addr != "" {
		return fmt.Sprintf("%s %s", s.cmd.Op, s.cmd.Addr)
	}
	return fmt.Sprintf("%s %s", s.cmd.Op, s.cmd.Server.Addr())
}

func member(st topology.State, addr string) bool { return config.Find(st.Members, addr) >= 0 }

// changeRing makes each step in turn through c, whatever the faults
// meanwhile: it asks the ring, and sends the step's command when no move
// is under way and the step is not done yet (a command whose answer was
// lost may have been applied: the ring says so). It gives up at deadline.
func changeRing(ctx context.Context, c *dkvs.Client, steps []ringStep, log func(string)) error {
	for _, step := range steps {
		began := time.Now()
		for {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: not done after %v: %w", step,
					time.Since(began).Round(time.Millisecond), ctx.Err())
			}
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := c.FetchRing(actx)
			if err == nil && st.Move == nil {
				if step.done(st) {
					cancel()
					log(fmt.Sprintf("%s over after %v (epoch %d)", step,
						time.Since(began).Round(time.Millisecond), st.Epoch))
					break
				}
				_, _ = c.ChangeRing(actx, step.cmd) // refused or lost: the ring tells on the next look
			}
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// TestLinearizableAcrossRingChanges: linearizable clients on a ring of
// three servers while two more join and two leave (one of servers.txt,
// one that joined), with the nemesis killing, pausing and cutting off one
// server at a time meanwhile. The history is checked with porcupine, and
// the ring ends with the expected members.
func TestLinearizableAcrossRingChanges(t *testing.T) {
	d := runFor(t, 30*time.Second)
	cl := NewCluster(t, 5, 4, "--ae-interval", "2s", "--handoff-interval", "200ms", "--cleanup-grace", "2s")
	r := cl.Ring
	r.WriteServers(r.Servers[:3])
	for i := 0; i < 3; i++ {
		r.Start(i)
	}
	r.WaitPeersUp()
	rec := NewRecorder()
	nm := NewNemesis(t, cl, time.Now().UnixNano())
	opts := dkvs.Options{Linearizable: true, Timeout: 500 * time.Millisecond}
	var writeBacks atomic.Int64
	w := Workload{Keys: 10, Req: dkvs.Request{N: 3, Linearizable: true}, WriteBacks: &writeBacks}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wg := startClients(t, r.ServersFile(), opts, w, ctx, rec)
	stop := make(chan struct{})
	nmDone := make(chan struct{})
	go func() { nm.Run(stop, rec.Start()); close(nmDone) }()

	admin, err := dkvs.Open(r.ServersFile(), &dkvs.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var changes []string
	var changesMu sync.Mutex
	logChange := func(s string) {
		changesMu.Lock()
		changes = append(changes, fmt.Sprintf("%7.3fs %s", time.Since(rec.Start()).Seconds(), s))
		changesMu.Unlock()
	}
	a3, a4, a1 := r.Addr(3), r.Addr(4), r.Addr(1)
	steps := []ringStep{
		{topology.Command{Op: topology.OpJoin, Server: r.Servers[3]}, func(st topology.State) bool { return member(st, a3) }},
		{topology.Command{Op: topology.OpJoin, Server: r.Servers[4]}, func(st topology.State) bool { return member(st, a4) }},
		{topology.Command{Op: topology.OpLeave, Addr: a1}, func(st topology.State) bool { return !member(st, a1) }},
		{topology.Command{Op: topology.OpLeave, Addr: a3}, func(st topology.State) bool { return !member(st, a3) }},
	}
	r.Start(3)
	r.Start(4)
	changeCtx, changeCancel := context.WithTimeout(ctx, 5*time.Minute)
	changeErr := changeRing(changeCtx, admin, steps, logChange)
	changeCancel()
	// The faults and the load go on for at least d in all, and a few
	// seconds on the final ring.
	rest := d - time.Since(rec.Start())
	if rest < 3*time.Second {
		rest = 3 * time.Second
	}
	time.Sleep(rest)
	close(stop)
	<-nmDone
	cancel()
	wg.Wait()
	cl.Heal()
	for i := range r.Servers {
		if !r.Running(i) {
			r.Start(i)
		}
	}
	counts, total := nm.Counts()
	t.Logf("%v of load: %d faults injected %v", time.Since(rec.Start()).Round(time.Second), total, counts)
	t.Logf("ring changes:\n%s", strings.Join(changes, "\n"))
	if changeErr != nil {
		t.Logf("faults:\n%s", strings.Join(nm.Log(), "\n"))
		t.Fatal(changeErr)
	}
	wantLinearizable(t, rec.Ops(), "linearizable-ring-changes", nm, writeBacks.Load())
	final, err := admin.FetchRing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range final.Members {
		got = append(got, m.Addr())
	}
	slices.Sort(got)
	want := []string{r.Addr(0), r.Addr(2), r.Addr(4)}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("final ring %v, want %v", got, want)
	}
}
