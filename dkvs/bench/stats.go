package bench

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// Histogram bounds: nanoseconds from 1 ns to 10 minutes with three
// significant digits (0.1% precision). Longer latencies are recorded as
// 10 minutes; no client deadline comes close.
const (
	histMin     = 1
	histMax     = int64(10 * time.Minute)
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

// recordBatch is how many latencies a worker keeps before taking the
// shared histogram's lock: one lock per batch keeps 50 workers from
// queueing on it, without a histogram (some 250 KiB) per worker.
const recordBatch = 256

// Outcome is how an operation ended.
type Outcome int

// Outcomes.
const (
	// OK: the ring answered and the operation did what it asked.
	OK Outcome = iota
	// NotFound: the ring answered that the key is absent or deleted.
	// It is an answer, not an error: it counts in throughput and latency.
	NotFound
	// Failed: no answer (see ErrorKind).
	Failed
)

// Error kinds, as ErrorKind names them. Other codes are named the same
// way, after their ERR_ name.
const (
	KindUnknownOutcome  = "unknown_outcome"
	KindNetwork         = "network"
	KindInvalidArgument = "invalid_argument"
	KindIO              = "io"
	KindRuntime         = "runtime"
)

// Classify returns the outcome of an operation that returned err.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, dkvs.ErrNotFound):
		return NotFound
	}
	return Failed
}

// ErrorKind names the kind of a failed operation's error: the code it
// carries, lower case without ERR_ ("network", "invalid_argument", "io",
// ...), except that a write whose outcome is unknown (it may have been
// applied) is "unknown_outcome" rather than "network".
func ErrorKind(err error) string {
	if errors.Is(err, dkvs.ErrUnknownOutcome) {
		return KindUnknownOutcome
	}
	return strings.ToLower(strings.TrimPrefix(errcode.Of(err).Name(), "ERR_"))
}

// counts are one operation type's outcomes.
type counts struct{ ops, ok, notFound, errors int64 }

func (c *counts) add(o counts) {
	c.ops += o.ops
	c.ok += o.ok
	c.notFound += o.notFound
	c.errors += o.errors
}

// phaseRecorder collects a phase's outcomes from its workers.
type phaseRecorder struct {
	name  string
	hists [numOpTypes]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
	}
	// done, answered and failed are read while the phase runs (progress,
	// the unreachable-ring check); the rest is merged when a worker ends.
	done, answered, failed atomic.Int64

	mu       sync.Mutex
	counts   [numOpTypes]counts
	errKinds map[string]int64
	examples map[string]string
}

func newPhaseRecorder(name string) *phaseRecorder {
	p := &phaseRecorder{name: name, errKinds: map[string]int64{}, examples: map[string]string{}}
	for i := range p.hists {
		p.hists[i].h = newHistogram()
	}
	return p
}

// worker returns a recorder for one goroutine.
func (p *phaseRecorder) worker() *workerRecorder {
	return &workerRecorder{p: p, errKinds: map[string]int64{}, examples: map[string]string{}}
}

// workerRecorder buffers one worker's outcomes.
type workerRecorder struct {
	p        *phaseRecorder
	buf      [numOpTypes][]int64
	counts   [numOpTypes]counts
	errKinds map[string]int64
	examples map[string]string
}

// record counts one operation of type op that took d and returned err,
// and returns its outcome.
func (w *workerRecorder) record(op OpType, d time.Duration, err error) Outcome {
	c := &w.counts[op]
	c.ops++
	outcome := Classify(err)
	switch outcome {
	case OK:
		c.ok++
	case NotFound:
		c.notFound++
	case Failed:
		c.errors++
		kind := ErrorKind(err)
		w.errKinds[kind]++
		if _, ok := w.examples[kind]; !ok {
			w.examples[kind] = err.Error()
		}
		w.p.failed.Add(1)
		w.p.done.Add(1)
		return outcome
	}
	w.p.answered.Add(1)
	w.p.done.Add(1)
	w.buf[op] = append(w.buf[op], int64(d))
	if len(w.buf[op]) >= recordBatch {
		w.flushHist(op)
	}
	return outcome
}

func (w *workerRecorder) flushHist(op OpType) {
	if len(w.buf[op]) == 0 {
		return
	}
	h := &w.p.hists[op]
	h.mu.Lock()
	for _, v := range w.buf[op] {
		_ = h.h.RecordValue(min(max(v, histMin), histMax)) // in range: cannot fail
	}
	h.mu.Unlock()
	w.buf[op] = w.buf[op][:0]
}

// flush hands everything buffered to the phase; call it when the worker
// ends.
func (w *workerRecorder) flush() {
	for op := range numOpTypes {
		w.flushHist(op)
	}
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	for op := range numOpTypes {
		w.p.counts[op].add(w.counts[op])
	}
	for k, n := range w.errKinds {
		w.p.errKinds[k] += n
	}
	for k, e := range w.examples {
		if _, ok := w.p.examples[k]; !ok {
			w.p.examples[k] = e
		}
	}
}

// dropped reports whether a failed operation was only cut short by the
// caller's cancellation (an interrupted run): such an operation is not
// counted at all.
func dropped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil
}

// Phase is the result of one phase: the load ("load") or the measured
// run ("run").
type Phase struct {
	// Name is "load" or "run".
	Name string `json:"name"`
	// Start is when the phase began; DurationSeconds is its wall time,
	// until its last operation returned.
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"duration_seconds"`
	// Get, Put and Delete are the statistics per operation type; All
	// covers every operation of the phase.
	Get    OpStats `json:"get"`
	Put    OpStats `json:"put"`
	Delete OpStats `json:"delete"`
	All    OpStats `json:"all"`
	// Errors counts the failed operations by kind (ErrorKind); its
	// values add up to All.Errors. ErrorExamples holds the first error
	// message seen of each kind.
	Errors        map[string]int64  `json:"errors"`
	ErrorExamples map[string]string `json:"error_examples"`
	// Aborted says why the phase stopped early ("" if it did not): the
	// ring did not answer any of its first operations.
	Aborted string `json:"aborted,omitempty"`
}

// OpStats are the statistics of one operation type in one phase.
type OpStats struct {
	// Ops is the number of operations issued; Ops = OK + NotFound +
	// Errors.
	Ops      int64 `json:"ops"`
	OK       int64 `json:"ok"`
	NotFound int64 `json:"not_found"`
	Errors   int64 `json:"errors"`
	// OpsPerSec is answered operations (OK + NotFound) per second of the
	// phase's wall time.
	OpsPerSec float64 `json:"ops_per_sec"`
	// Latency of the answered operations, in microseconds.
	Latency Latency `json:"latency_us"`
	// Curve is the latency by percentile, for plots: points from the
	// 0th percentile up to the last one the count resolves (1 - 1/count),
	// 20 per decade of 1/(1-p).
	Curve []CurvePoint `json:"curve"`
}

// Latency holds latency statistics in microseconds.
type Latency struct {
	Avg  float64 `json:"avg"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// CurvePoint is the latency (microseconds) at a percentile.
type CurvePoint struct {
	Percentile float64 `json:"percentile"`
	LatencyUS  float64 `json:"us"`
}

// Answered is the number of operations the ring answered.
func (s OpStats) Answered() int64 { return s.OK + s.NotFound }

// Op returns the statistics of one operation type (All for numOpTypes,
// which the package uses as "all").
func (p *Phase) Op(op OpType) *OpStats {
	switch op {
	case Get:
		return &p.Get
	case Put:
		return &p.Put
	case Delete:
		return &p.Delete
	}
	return &p.All
}

func us(ns float64) float64 { return math.Round(ns) / 1e3 }

// opStats summarises counts and a histogram of nanoseconds.
func opStats(c counts, h *hdrhistogram.Histogram, elapsed time.Duration) OpStats {
	s := OpStats{Ops: c.ops, OK: c.ok, NotFound: c.notFound, Errors: c.errors, Curve: []CurvePoint{}}
	if secs := elapsed.Seconds(); secs > 0 {
		s.OpsPerSec = float64(c.ok+c.notFound) / secs
	}
	if h.TotalCount() == 0 {
		return s
	}
	at := func(p float64) float64 { return us(float64(h.ValueAtQuantile(p))) }
	s.Latency = Latency{
		Avg:  us(h.Mean()),
		P50:  at(50),
		P90:  at(90),
		P99:  at(99),
		P999: at(99.9),
		Max:  us(float64(h.Max())),
	}
	s.Curve = curve(h)
	return s
}

// curve samples the histogram at 20 points per decade of 1/(1-p), from
// p = 0 up to the highest percentile its count resolves, 1 - 1/count
// (capped at 99.9999%).
func curve(h *hdrhistogram.Histogram) []CurvePoint {
	n := float64(h.TotalCount())
	var pts []CurvePoint
	for k := 0; ; k++ {
		x := math.Pow(10, float64(k)/20)
		if x > n || x > 1e6 {
			break
		}
		p := 100 * (1 - 1/x)
		v := h.ValueAtQuantile(p)
		if k == 0 {
			v = h.Min() // ValueAtQuantile(0) is 0 whatever was recorded
		}
		pts = append(pts, CurvePoint{Percentile: math.Round(p*1e6) / 1e6, LatencyUS: us(float64(v))})
	}
	return pts
}

// result turns what the recorder collected into a Phase.
func (p *phaseRecorder) result(start time.Time, elapsed time.Duration) *Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	ph := &Phase{
		Name:            p.name,
		Start:           start,
		DurationSeconds: elapsed.Seconds(),
		Errors:          map[string]int64{},
		ErrorExamples:   map[string]string{},
	}
	all := newHistogram()
	var total counts
	for op := range numOpTypes {
		h := p.hists[op].h
		all.Merge(h)
		total.add(p.counts[op])
		*ph.Op(op) = opStats(p.counts[op], h, elapsed)
	}
	ph.All = opStats(total, all, elapsed)
	for k, n := range p.errKinds {
		ph.Errors[k] = n
	}
	for k, e := range p.examples {
		ph.ErrorExamples[k] = e
	}
	return ph
}
