package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// ruleTarget answers from rules on the key's index alone, so that a
// run's outcome does not depend on how workers interleave: a get of a
// multiple of 5 finds nothing, a put of a multiple of 7 fails with a
// network error, a delete of a multiple of 11 has an unknown outcome.
type ruleTarget struct {
	calls atomic.Int64
	delay time.Duration
	allOK bool // no rules: every operation succeeds
}

func index(key []byte) int {
	i := bytes.LastIndexFunc(key, func(r rune) bool { return r < '0' || r > '9' })
	n, _ := strconv.Atoi(string(key[i+1:]))
	return n
}

func (t *ruleTarget) op(ctx context.Context, op OpType, key []byte) error {
	t.calls.Add(1)
	if t.delay > 0 {
		select {
		case <-time.After(t.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if t.allOK {
		return nil
	}
	return ruleOutcome(op, index(key))
}

func ruleOutcome(op OpType, i int) error {
	switch {
	case op == Get && i%5 == 0:
		return fmt.Errorf("get: %w", dkvs.ErrNotFound)
	case op == Put && i%7 == 0:
		return fmt.Errorf("put: refused: %w", errcode.Network)
	case op == Delete && i%11 == 0:
		return fmt.Errorf("delete: %w", dkvs.ErrUnknownOutcome)
	}
	return nil
}

func (t *ruleTarget) Get(ctx context.Context, key []byte) error { return t.op(ctx, Get, key) }
func (t *ruleTarget) Put(ctx context.Context, key, _ []byte) error {
	return t.op(ctx, Put, key)
}
func (t *ruleTarget) Delete(ctx context.Context, key []byte) error { return t.op(ctx, Delete, key) }

// expected replays the generators of a run of c.Ops operations and
// counts the outcomes the rules give.
func expected(c Config) (per [numOpTypes]counts, kinds map[string]int64) {
	kinds = map[string]int64{}
	conc := int64(c.Concurrency)
	for w := 0; w < c.Concurrency; w++ {
		g := NewGenerator(c, w)
		share := c.Ops / conc
		if int64(w) < c.Ops%conc {
			share++
		}
		for range share {
			op, k := g.Op(), g.Key()
			err := ruleOutcome(op, k)
			per[op].ops++
			switch Classify(err) {
			case OK:
				per[op].ok++
			case NotFound:
				per[op].notFound++
			default:
				per[op].errors++
				kinds[ErrorKind(err)]++
			}
		}
	}
	return per, kinds
}

func TestRunCounts(t *testing.T) {
	for _, dist := range []Distribution{Uniform, Hotspot, Zipf} {
		t.Run(string(dist), func(t *testing.T) {
			c := DefaultConfig()
			c.Ops, c.Duration = 5003, 0 // not a multiple of the workers
			c.Concurrency = 7
			c.Keys = 500
			c.WriteFraction, c.DeleteFraction = 0.4, 0.2
			c.Distribution = dist
			tg := &ruleTarget{}
			var finals []string
			res, err := Run(context.Background(), tg, c, Options{Progress: func(p Progress) {
				if p.Final {
					finals = append(finals, fmt.Sprintf("%s %d/%d", p.Phase, p.Done, p.Total))
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"load 500/500", "run 5003/5003"}; !slices.Equal(finals, want) {
				t.Errorf("final progress %v, want %v", finals, want)
			}
			if got := tg.calls.Load(); got != 500+5003 {
				t.Errorf("%d calls to the target, want %d", got, 500+5003)
			}
			// The load: puts of every key, one in seven refused.
			if l := res.Load; l.Put.Ops != 500 || l.Put.Errors != 72 || l.Put.OK != 428 || l.All.Ops != 500 || l.Get.Ops != 0 {
				t.Errorf("load: %+v", l.All)
			}
			per, kinds := expected(c)
			r := res.Run
			for op := range numOpTypes {
				s := r.Op(op)
				got := counts{s.Ops, s.OK, s.NotFound, s.Errors}
				if got != per[op] {
					t.Errorf("%s: counts %+v, want %+v", op, got, per[op])
				}
			}
			if !reflect.DeepEqual(r.Errors, kinds) {
				t.Errorf("errors by kind %v, want %v", r.Errors, kinds)
			}
			checkSums(t, r)
			if r.All.Ops != c.Ops {
				t.Errorf("%d operations, want %d", r.All.Ops, c.Ops)
			}
			for k := range kinds {
				if r.ErrorExamples[k] == "" {
					t.Errorf("no example of the %s errors", k)
				}
			}
			if res.Failure() != nil {
				t.Errorf("a run with answers failed: %v", res.Failure())
			}
			if res.Interrupted {
				t.Error("run marked interrupted")
			}
		})
	}
}

// checkSums checks the invariants of a phase's counts.
func checkSums(t *testing.T, p *Phase) {
	t.Helper()
	var sum counts
	for op := range numOpTypes {
		s := p.Op(op)
		if s.Ops != s.OK+s.NotFound+s.Errors {
			t.Errorf("%s %s: %d ops != %d ok + %d not found + %d errors", p.Name, op, s.Ops, s.OK, s.NotFound, s.Errors)
		}
		sum.add(counts{s.Ops, s.OK, s.NotFound, s.Errors})
	}
	a := p.All
	if (counts{a.Ops, a.OK, a.NotFound, a.Errors}) != sum {
		t.Errorf("%s: all %+v is not the sum of the types %+v", p.Name, a, sum)
	}
	var kinds int64
	for _, n := range p.Errors {
		kinds += n
	}
	if kinds != a.Errors {
		t.Errorf("%s: errors by kind add up to %d, want %d", p.Name, kinds, a.Errors)
	}
}

func TestRunTimed(t *testing.T) {
	c := DefaultConfig()
	c.Duration, c.Concurrency, c.Keys, c.Preload = 300*time.Millisecond, 4, 50, false
	tg := &ruleTarget{delay: time.Millisecond}
	res, err := Run(context.Background(), tg, c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Run
	if res.Load != nil {
		t.Error("a load phase ran with Preload off")
	}
	if r.DurationSeconds < 0.3 || r.DurationSeconds > 5 {
		t.Errorf("timed phase took %.3fs, want about 0.3s", r.DurationSeconds)
	}
	if r.All.Ops < 20 || r.All.Ops != tg.calls.Load() {
		t.Errorf("%d operations in 0.3s on 4 workers (%d calls)", r.All.Ops, tg.calls.Load())
	}
	checkSums(t, r)
	if r.All.Latency.P50 < 1000 {
		t.Errorf("p50 %.1fµs below the target's 1ms delay", r.All.Latency.P50)
	}
	if want := float64(r.All.Answered()) / r.DurationSeconds; math.Abs(r.All.OpsPerSec-want) > 1e-6*want {
		t.Errorf("ops/s %.2f, want answered/duration %.2f", r.All.OpsPerSec, want)
	}
}

// downTarget fails every operation like a ring that is not there.
type downTarget struct{ calls atomic.Int64 }

func (d *downTarget) fail() error {
	d.calls.Add(1)
	return fmt.Errorf("dial tcp 127.0.0.1:1: connection refused: %w", errcode.Network)
}
func (d *downTarget) Get(context.Context, []byte) error         { return d.fail() }
func (d *downTarget) Put(context.Context, []byte, []byte) error { return d.fail() }
func (d *downTarget) Delete(context.Context, []byte) error      { return d.fail() }

func TestRunUnreachable(t *testing.T) {
	c := DefaultConfig()
	c.Keys = 1_000_000 // the load gives up long before
	tg := &downTarget{}
	res, err := Run(context.Background(), tg, c, Options{AbortAfter: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Load.Aborted == "" || res.Run != nil {
		t.Fatalf("load not aborted (%q) or run ran (%v)", res.Load.Aborted, res.Run != nil)
	}
	// Each worker stops at its next operation once 50 have failed.
	if n := tg.calls.Load(); n < 50 || n > 50+2*int64(c.Concurrency) {
		t.Errorf("%d calls before giving up after 50 failures", n)
	}
	err = res.Failure()
	if errcode.Of(err) != errcode.Network || !strings.Contains(err.Error(), "network") {
		t.Fatalf("Failure() = %v, want ERR_NETWORK naming the kind", err)
	}
	checkSums(t, res.Load)
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := DefaultConfig()
	c.Duration, c.Concurrency, c.Preload = time.Minute, 4, false
	tg := &ruleTarget{delay: time.Millisecond, allOK: true}
	var once sync.Once
	res, err := Run(ctx, tg, c, Options{Progress: func(p Progress) {
		if p.Done > 0 {
			once.Do(cancel)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Run.DurationSeconds > 30 {
		t.Fatalf("interrupted %v after %.1fs", res.Interrupted, res.Run.DurationSeconds)
	}
	checkSums(t, res.Run)
	// Operations cut short by the cancellation are not counted.
	if res.Run.All.Errors != 0 || res.Run.All.Ops == 0 {
		t.Errorf("after cancel: %+v", res.Run.All)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	c := DefaultConfig()
	c.Concurrency = -1
	if _, err := Run(context.Background(), &ruleTarget{}, c, Options{}); !errors.Is(err, errcode.InvalidCommand) {
		t.Fatalf("Run with -1 workers: %v", err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err     error
		outcome Outcome
		kind    string
	}{
		{nil, OK, ""},
		{fmt.Errorf("k: %w", dkvs.ErrNotFound), NotFound, ""},
		{fmt.Errorf("x: %w", errcode.Network), Failed, KindNetwork},
		{fmt.Errorf("x: %w", dkvs.ErrUnknownOutcome), Failed, KindUnknownOutcome},
		{fmt.Errorf("too big: %w", errcode.InvalidArg), Failed, KindInvalidArgument},
		{fmt.Errorf("disk: %w", errcode.IO), Failed, KindIO},
		{errors.New("plain"), Failed, KindRuntime},
	}
	for _, tc := range cases {
		if got := Classify(tc.err); got != tc.outcome {
			t.Errorf("Classify(%v) = %d, want %d", tc.err, got, tc.outcome)
		}
		if tc.outcome == Failed {
			if got := ErrorKind(tc.err); got != tc.kind {
				t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.kind)
			}
		}
	}
}

// recordedPhase returns a phase whose gets took 1, 2, ... 1000 µs, puts
// 2 ms each, over one second.
func recordedPhase() *Phase {
	p := newPhaseRecorder("run")
	w := p.worker()
	for i := 1; i <= 1000; i++ {
		w.record(Get, time.Duration(i)*time.Microsecond, nil)
	}
	for range 10 {
		w.record(Put, 2*time.Millisecond, nil)
	}
	w.record(Put, time.Second, fmt.Errorf("timeout: %w", errcode.Network))
	w.record(Get, 5*time.Microsecond, fmt.Errorf("k: %w", dkvs.ErrNotFound))
	w.flush()
	return p.result(wallClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), time.Second)
}

func TestPercentiles(t *testing.T) {
	ph := recordedPhase()
	g := ph.Get
	if g.Ops != 1001 || g.OK != 1000 || g.NotFound != 1 || g.Errors != 0 {
		t.Fatalf("get counts %+v", g)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*0.002 { // three significant digits
			t.Errorf("%s = %g µs, want %g", name, got, want)
		}
	}
	l := g.Latency
	near("avg", l.Avg, 500.5*1000/1001+5.0/1001)
	near("p50", l.P50, 501) // 1001 values with the 5 µs not found: rank 501 is 500 µs... within 0.2%
	near("p90", l.P90, 900)
	near("p99", l.P99, 990)
	near("p99.9", l.P999, 999)
	near("max", l.Max, 1000)
	if g.OpsPerSec != 1001 {
		t.Errorf("get ops/s %g, want 1001 answered in 1s", g.OpsPerSec)
	}
	// The failed put is counted but not timed.
	if p := ph.Put; p.Ops != 11 || p.Errors != 1 || p.Latency.Max != p.Latency.P50 {
		t.Errorf("put %+v", p)
	}
	near("put max", ph.Put.Latency.Max, 2000)
	near("all max", ph.All.Latency.Max, 2000)
	if ph.Errors[KindNetwork] != 1 || len(ph.Errors) != 1 {
		t.Errorf("errors %v", ph.Errors)
	}
	// The curve climbs from the minimum to the highest percentile 1001
	// values resolve.
	c := g.Curve
	if len(c) == 0 || c[0].Percentile != 0 || c[0].LatencyUS < 1 || c[0].LatencyUS > 5.1 {
		t.Fatalf("curve starts %+v", c[:min(1, len(c))])
	}
	last := c[len(c)-1]
	if last.Percentile < 99.8 || last.Percentile > 99.9 {
		t.Errorf("curve ends at percentile %g, want 99.9 for 1001 values", last.Percentile)
	}
	for i := 1; i < len(c); i++ {
		if c[i].Percentile <= c[i-1].Percentile || c[i].LatencyUS < c[i-1].LatencyUS {
			t.Fatalf("curve not increasing at %d: %+v %+v", i, c[i-1], c[i])
		}
	}
}

func TestFormatLatency(t *testing.T) {
	cases := []struct {
		us   float64
		want string
	}{
		{0, "-"}, {0.25, "0.25µs"}, {4.5, "4.50µs"}, {45.12, "45.1µs"}, {412.4, "412µs"},
		{1234, "1.23ms"}, {12345, "12.3ms"}, {123456, "123ms"}, {2.5e6, "2.50s"}, {12e6, "12.0s"},
	}
	for _, tc := range cases {
		if got := FormatLatency(tc.us); got != tc.want {
			t.Errorf("FormatLatency(%g) = %q, want %q", tc.us, got, tc.want)
		}
	}
}

// sampleResult is a result with both phases, as Run and the command
// build it.
func sampleResult() *Result {
	c := DefaultConfig()
	c.Concurrency = 4
	res := &Result{Version: ResultVersion, Start: wallClock(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)),
		DurationSeconds: 1.5, Machine: CollectMachine(), Workload: WorkloadOf(c)}
	res.Workload.SetRequest(dkvs.Request{N: 3, R: 2, W: 2}, "quorum")
	res.Ring = Ring{ServersFile: "servers.txt", Servers: 3, TimeoutSeconds: 0.5, Sloppy: true, ReadRepair: true}
	load := recordedPhase()
	load.Name = "load"
	res.Load, res.Run = load, recordedPhase()
	return res
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sampleResult()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"3 servers (servers.txt), N=3 R=2 W=2 -c QUORUM",
		"10s, 4 workers, 1000 keys (uniform), 100-byte values, 50% get 50% put 0% delete",
		"phase  op  count  ops/s",
		"network 1",
		"first network error: timeout: Network error",
		"1 not found",
	} {
		if !strings.Contains(collapse(out), collapse(want)) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// One row per phase and type: the load's put, then get, put, delete
	// and all of the run, with the figures of recordedPhase.
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 12 && (f[0] == "load" || f[0] == "run") {
			rows[f[0]+" "+f[1]] = f[2:]
		}
	}
	want := map[string][]string{
		// count ops/s avg p50 p90 p99 p99.9 max not-found errors
		"load put":   {"11", "10", "2.00ms", "2.00ms", "2.00ms", "2.00ms", "2.00ms", "2.00ms", "0", "1"},
		"run get":    {"1001", "1001", "500µs", "500µs", "900µs", "990µs", "999µs", "1.00ms", "1", "0"},
		"run put":    {"11", "10", "2.00ms", "2.00ms", "2.00ms", "2.00ms", "2.00ms", "2.00ms", "0", "1"},
		"run delete": {"0", "0", "-", "-", "-", "-", "-", "-", "0", "0"},
		// 1011 answered: 5 µs, 1 to 1000 µs, then ten of 2 ms.
		"run all": {"1012", "1011", "515µs", "505µs", "909µs", "1.00ms", "2.00ms", "2.00ms", "1", "1"},
	}
	for k, w := range want {
		if !slices.Equal(rows[k], w) {
			t.Errorf("row %q = %v, want %v", k, rows[k], w)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("%d rows, want %d:\n%s", len(rows), len(want), out)
	}
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestJSONRoundTrip(t *testing.T) {
	res := sampleResult()
	var b bytes.Buffer
	if err := WriteJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, back) {
		t.Fatalf("round trip changed the result:\n%+v\n%+v", res, back)
	}
	// The documented fields are all there, by name.
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"version", "start", "duration_seconds", "interrupted",
		"machine.cpus", "machine.gomaxprocs", "machine.cpu_model", "machine.load_average", "machine.go_version",
		"ring.servers", "ring.servers_file", "ring.timeout_seconds",
		"workload.ops", "workload.duration_seconds", "workload.concurrency", "workload.keys", "workload.value_size",
		"workload.write_fraction", "workload.delete_fraction", "workload.get_fraction", "workload.distribution",
		"workload.zipf_s", "workload.preload", "workload.seed", "workload.n", "workload.r", "workload.w",
		"workload.consistency", "workload.linearizable",
		"load.get.ops", "run.start", "run.duration_seconds", "run.errors.network", "run.error_examples.network",
		"run.all.ops", "run.all.ok", "run.all.not_found", "run.all.errors", "run.all.ops_per_sec",
		"run.get.latency_us.avg", "run.get.latency_us.p50", "run.get.latency_us.p90", "run.get.latency_us.p99",
		"run.get.latency_us.p99_9", "run.get.latency_us.max", "run.get.curve", "run.delete.curve",
	} {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			obj, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = obj[k]
		}
		if v == nil {
			t.Errorf("JSON lacks %s", path)
		}
	}
	if _, err := ReadJSON(strings.NewReader(`{"version": 99}`)); err == nil {
		t.Error("a result of another version was read")
	}
}

func TestWritePlot(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  func() *Result
	}{
		{"run", sampleResult},
		{"load only", func() *Result { r := sampleResult(); r.Run = nil; return r }},
		{"nothing answered", func() *Result {
			r := sampleResult()
			r.Run = newPhaseRecorder("run").result(r.Start, time.Second)
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WritePlot(&b, tc.res()); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&b)
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if sz := img.Bounds().Size(); sz.X != 864 || sz.Y != 528 {
				t.Errorf("plot of %v, want 864x528", sz)
			}
		})
	}
	if err := WritePlot(&bytes.Buffer{}, &Result{}); err == nil {
		t.Error("a plot without any phase was drawn")
	}
}

func TestPercentLabels(t *testing.T) {
	want := []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"}
	for d, w := range want {
		if got := percentLabel(d); got != w {
			t.Errorf("percentLabel(%d) = %q, want %q", d, got, w)
		}
	}
	var major []string
	for _, tk := range (percentileTicks{}).Ticks(1, 1000) {
		if tk.Label != "" {
			major = append(major, tk.Label)
		}
	}
	if !slices.Equal(major, want[:4]) {
		t.Errorf("major ticks %v", major)
	}
}

func TestLatencyTicks(t *testing.T) {
	cases := []struct {
		min, max float64
		want     []string
	}{
		{0, 180, []string{"0", "20", "40", "60", "80", "100", "120", "140", "160", "180"}},
		{0, 9, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{0, 0.35, []string{"0", "0.05", "0.1", "0.15", "0.2", "0.25", "0.3", "0.35"}},
		{0, 1300, []string{"0", "200", "400", "600", "800", "1000", "1200"}},
	}
	for _, tc := range cases {
		var got []string
		for _, tk := range (latencyTicks{}).Ticks(tc.min, tc.max) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ticks of [%g, %g]: %v, want %v", tc.min, tc.max, got, tc.want)
		}
	}
}
