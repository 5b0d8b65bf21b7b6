package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs"
)

// Target is what a workload runs against: a ring through a client. Its
// methods are called from many goroutines at once.
type Target interface {
	Get(ctx context.Context, key []byte) error
	Put(ctx context.Context, key, value []byte) error
	Delete(ctx context.Context, key []byte) error
}

// ClientTarget runs every operation through c as req says (N, R, W,
// consistency).
func ClientTarget(c *dkvs.Client, req dkvs.Request) Target {
	return clientTarget{c: c, req: req}
}

type clientTarget struct {
	c   *dkvs.Client
	req dkvs.Request
}

// Get reads key; the value is dropped.
func (t clientTarget) Get(ctx context.Context, key []byte) error {
	_, err := t.c.GetWith(ctx, key, t.req)
	return err
}

// Put writes value under key.
func (t clientTarget) Put(ctx context.Context, key, value []byte) error {
	return t.c.PutWith(ctx, key, value, t.req)
}

// Delete writes a tombstone for key.
func (t clientTarget) Delete(ctx context.Context, key []byte) error {
	return t.c.DeleteWith(ctx, key, t.req)
}

// Progress is where a phase stands.
type Progress struct {
	// Phase is "load" or "run".
	Phase string
	// Done is the number of operations finished (answered or failed).
	Done int64
	// Total is the number of operations the phase will run, or zero
	// when it runs for a time (Duration).
	Total    int64
	Elapsed  time.Duration
	Duration time.Duration
	// Final is set on the last report of the phase.
	Final bool
}

// Options tune a run.
type Options struct {
	// Progress, when set, is called about ten times a second while a
	// phase runs, and once with Final set when it ends, always from one
	// goroutine at a time.
	Progress func(Progress)
	// AbortAfter is the number of failed operations, with none answered
	// yet, after which a phase gives up: the ring is not reachable.
	// Zero means DefaultAbortAfter.
	AbortAfter int64
}

// DefaultAbortAfter is Options.AbortAfter's default.
const DefaultAbortAfter = 100

// progressInterval is how often Options.Progress is called.
const progressInterval = 100 * time.Millisecond

// Run runs the workload c against t: the load phase if c.Preload, then
// the measured phase unless c.LoadOnly. Cancelling ctx stops the run
// early: the operations under way are dropped, what finished is reported
// and the result is marked Interrupted. The error is non-nil only for an
// invalid workload.
func Run(ctx context.Context, t Target, c Config, o Options) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if o.AbortAfter <= 0 {
		o.AbortAfter = DefaultAbortAfter
	}
	r := &runner{t: t, c: c, o: o, keys: NewKeys(c), value: Value(c)}
	t0 := time.Now()
	res := &Result{Version: ResultVersion, Start: wallClock(t0), Machine: CollectMachine(), Workload: WorkloadOf(c)}
	defer func() {
		res.DurationSeconds = time.Since(t0).Seconds()
		res.Interrupted = ctx.Err() != nil
	}()
	if c.Preload {
		res.Load = r.load(ctx)
		// A ring that answered none of the load will not answer the run.
		if res.Load.Aborted != "" || ctx.Err() != nil {
			return res, nil
		}
	}
	if !c.LoadOnly {
		res.Run = r.run(ctx)
	}
	return res, nil
}

// wallClock is t in UTC without its monotonic reading, as it reads back
// from JSON.
func wallClock(t time.Time) time.Time { return t.UTC().Round(0) }

type runner struct {
	t     Target
	c     Config
	o     Options
	keys  Keys
	value []byte
}

// control is what the workers of a phase share besides the recorder:
// the order to stop, and the check for a ring that answers nothing.
type control struct {
	stop, aborted atomic.Bool
	p             *phaseRecorder
	abortAfter    int64
	// end is when a timed phase ends: its start plus the duration.
	end time.Time
}

// stopped reports whether the workers must end.
func (c *control) stopped() bool { return c.stop.Load() }

// failed is called after each failed operation: once abortAfter
// operations have failed with none answered, the phase gives up. Checking
// here rather than in the watcher stops a phase against an absent ring
// within a few operations, where refusals come back in microseconds.
func (c *control) failed() {
	if c.p.answered.Load() == 0 && c.p.failed.Load() >= c.abortAfter {
		c.aborted.Store(true)
		c.stop.Store(true)
	}
}

// phase runs work on c.Concurrency goroutines, each with its own
// recorder, reports progress, and returns the phase's result. work
// returns when the worker has nothing left to do or ctl says stop.
func (r *runner) phase(ctx context.Context, name string, total int64, d time.Duration,
	work func(worker int, w *workerRecorder, ctl *control)) *Phase {
	p := newPhaseRecorder(name)
	start := time.Now()
	ctl := &control{p: p, abortAfter: r.o.AbortAfter, end: start.Add(d)}
	var wg sync.WaitGroup
	for i := 0; i < r.c.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := p.worker()
			defer w.flush()
			work(i, w, ctl)
		}()
	}
	// The watcher reports progress and stops the workers when the
	// caller cancels.
	finished := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		cancelled := ctx.Done()
		for {
			select {
			case <-finished:
				return
			case <-cancelled:
				ctl.stop.Store(true)
				cancelled = nil // seen once; the workers are stopping
			case <-tick.C:
			}
			if r.o.Progress != nil {
				r.o.Progress(Progress{Phase: name, Done: p.done.Load(), Total: total, Elapsed: time.Since(start), Duration: d})
			}
		}
	}()
	wg.Wait()
	elapsed := time.Since(start)
	close(finished)
	<-watched
	if r.o.Progress != nil {
		r.o.Progress(Progress{Phase: name, Done: p.done.Load(), Total: total, Elapsed: elapsed, Duration: d, Final: true})
	}
	ph := p.result(wallClock(start), elapsed)
	if ctl.aborted.Load() {
		ph.Aborted = "the ring answered none of the first operations"
	}
	return ph
}

// load writes every key once, the keys shared out among the workers.
func (r *runner) load(ctx context.Context) *Phase {
	var next atomic.Int64
	return r.phase(ctx, "load", int64(r.c.Keys), 0, func(_ int, w *workerRecorder, ctl *control) {
		for !ctl.stopped() {
			i := next.Add(1) - 1
			if i >= int64(r.c.Keys) {
				return
			}
			key := r.keys.Key(int(i))
			t0 := time.Now()
			err := r.t.Put(ctx, key, r.value)
			d := time.Since(t0)
			if dropped(ctx, err) {
				return
			}
			if w.record(Put, d, err) == Failed {
				ctl.failed()
			}
		}
	})
}

// run is the measured phase: c.Ops operations shared out evenly among the
// workers (each worker's share is fixed, so its operations depend on the
// seed alone), or as many as fit in c.Duration.
func (r *runner) run(ctx context.Context) *Phase {
	var total int64
	d := r.c.Duration
	if r.c.Ops > 0 {
		total, d = r.c.Ops, 0
	}
	conc := int64(r.c.Concurrency)
	return r.phase(ctx, "run", total, d, func(worker int, w *workerRecorder, ctl *control) {
		g := NewGenerator(r.c, worker)
		share := int64(-1) // timed
		if total > 0 {
			share = total / conc
			if int64(worker) < total%conc {
				share++
			}
		}
		for n := int64(0); !ctl.stopped(); n++ {
			if share >= 0 && n >= share {
				return
			}
			if share < 0 && !time.Now().Before(ctl.end) {
				return
			}
			op, key := g.Op(), r.keys.Key(g.Key())
			t0 := time.Now()
			var err error
			switch op {
			case Get:
				err = r.t.Get(ctx, key)
			case Put:
				err = r.t.Put(ctx, key, r.value)
			case Delete:
				err = r.t.Delete(ctx, key)
			}
			elapsed := time.Since(t0)
			if dropped(ctx, err) {
				return
			}
			if w.record(op, elapsed, err) == Failed {
				ctl.failed()
			}
		}
	})
}
