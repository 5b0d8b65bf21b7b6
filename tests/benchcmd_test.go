package tests

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/bench"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/tests/harness"
)

// benchJSONFields are the fields "dkvs-client bench --json" documents,
// as paths into the object.
var benchJSONFields = []string{
	"version", "start", "duration_seconds", "interrupted",
	"machine.cpus", "machine.gomaxprocs", "machine.cpu_model", "machine.go_version",
	"ring.servers_file", "ring.servers", "ring.timeout_seconds", "ring.sloppy_quorum", "ring.read_repair",
	"workload.ops", "workload.duration_seconds", "workload.concurrency", "workload.keys", "workload.key_prefix",
	"workload.value_size", "workload.write_fraction", "workload.delete_fraction", "workload.get_fraction",
	"workload.distribution", "workload.zipf_s", "workload.preload", "workload.load_only", "workload.seed",
	"workload.n", "workload.r", "workload.w", "workload.consistency", "workload.linearizable",
	"load.name", "load.start", "load.duration_seconds", "load.put.ops", "load.errors",
	"run.name", "run.start", "run.duration_seconds", "run.errors", "run.error_examples",
}

// benchOpFields are the fields of each operation type of a phase.
var benchOpFields = []string{
	"ops", "ok", "not_found", "errors", "ops_per_sec", "curve",
	"latency_us.avg", "latency_us.p50", "latency_us.p90", "latency_us.p99", "latency_us.p99_9", "latency_us.max",
}

// lookup follows a dotted path through decoded JSON objects.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// checkPhaseSums checks that a phase's counts add up: every operation
// is ok, not found or an error; the types add up to all; the errors by
// kind add up to the errors.
func checkPhaseSums(t *testing.T, p *bench.Phase) {
	t.Helper()
	var ops, ok, nf, errs int64
	for _, s := range []bench.OpStats{p.Get, p.Put, p.Delete} {
		if s.Ops != s.OK+s.NotFound+s.Errors {
			t.Errorf("%s: %d ops != %d ok + %d not found + %d errors", p.Name, s.Ops, s.OK, s.NotFound, s.Errors)
		}
		ops, ok, nf, errs = ops+s.Ops, ok+s.OK, nf+s.NotFound, errs+s.Errors
	}
	a := p.All
	if a.Ops != ops || a.OK != ok || a.NotFound != nf || a.Errors != errs {
		t.Errorf("%s: all %+v is not the sum of get, put and delete (%d %d %d %d)", p.Name, a, ops, ok, nf, errs)
	}
	var kinds int64
	for _, n := range p.Errors {
		kinds += n
	}
	if kinds != a.Errors {
		t.Errorf("%s: errors by kind %v add up to %d, want %d", p.Name, p.Errors, kinds, a.Errors)
	}
}

// TestBenchCommand runs a small workload against three real servers and
// checks the table, the JSON and the plot.
// readBenchJSON reads the result bench wrote with --json.
func readBenchJSON(t *testing.T, name string) *bench.Result {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := bench.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBenchCommand(t *testing.T) {
	r := harness.NewRing(t, 1, 2, 3)
	r.StartAll()
	out := t.TempDir()
	jsonFile, plotFile := filepath.Join(out, "bench.json"), filepath.Join(out, "bench.png")
	const ops, keys = 3000, 200
	res := r.Client("bench", "--ops", "3000", "--concurrency", "8", "--keys", "200",
		"--write-fraction", "0.3", "--delete-fraction", "0.1", "--distribution", "zipf", "--seed", "7",
		"-n", "3", "-c", "QUORUM", "--json", jsonFile, "--plot", plotFile)
	if res.Code != 0 {
		t.Fatalf("bench: %s", res)
	}
	// The progress bar ran on stderr; the table went to stdout.
	if !strings.Contains(res.Stderr, "run ") || !strings.Contains(res.Stderr, "ops/s") || strings.Contains(res.Stderr, "ERROR") {
		t.Errorf("no progress bar on stderr: %q", res.Stderr)
	}
	for _, want := range []string{"N=3 R=2 W=2 -c QUORUM", "3000 ops, 8 workers, 200 keys (zipf s=1.1)", "p99.9", "not found"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, res.Stdout)
		}
	}

	raw, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var m any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	fields := benchJSONFields
	for _, phase := range []string{"load", "run"} {
		for _, op := range []string{"get", "put", "delete", "all"} {
			for _, f := range benchOpFields {
				fields = append(fields, phase+"."+op+"."+f)
			}
		}
	}
	for _, f := range fields {
		if _, ok := lookup(m, f); !ok {
			t.Errorf("JSON lacks %s", f)
		}
	}
	got := readBenchJSON(t, jsonFile)
	w := got.Workload
	if w.Ops != ops || w.Keys != keys || w.Concurrency != 8 || w.N != 3 || w.R != 2 || w.W != 2 || w.Distribution != "zipf" || w.Seed != 7 {
		t.Errorf("workload in JSON: %+v", w)
	}
	if got.Ring.Servers != 3 || got.Machine.CPUs < 1 || got.Machine.GOMAXPROCS < 1 || got.Start.IsZero() || got.DurationSeconds <= 0 {
		t.Errorf("ring %+v, machine %+v, start %v, %gs", got.Ring, got.Machine, got.Start, got.DurationSeconds)
	}
	if got.Load == nil || got.Run == nil {
		t.Fatalf("phases missing: load %v run %v", got.Load != nil, got.Run != nil)
	}
	checkPhaseSums(t, got.Load)
	checkPhaseSums(t, got.Run)
	if got.Load.Put.Ops != keys || got.Load.All.Ops != keys {
		t.Errorf("load wrote %d keys, want %d", got.Load.Put.Ops, keys)
	}
	run := got.Run
	if run.All.Ops != ops {
		t.Errorf("run made %d operations, want %d", run.All.Ops, ops)
	}
	if run.Get.Ops == 0 || run.Put.Ops == 0 || run.Delete.Ops == 0 {
		t.Errorf("a type is missing from the mix: get %d put %d delete %d", run.Get.Ops, run.Put.Ops, run.Delete.Ops)
	}
	// Deletes of the hottest keys make some gets find nothing: answers,
	// not errors.
	if run.Get.NotFound == 0 {
		t.Errorf("no get found a deleted key: %+v", run.Get)
	}
	if run.All.OK == 0 || run.All.OpsPerSec <= 0 || run.All.Latency.P50 <= 0 || run.All.Latency.Max < run.All.Latency.P999 {
		t.Errorf("run figures: %+v", run.All)
	}
	if run.All.Errors > 0 {
		t.Logf("%d errors on a healthy ring: %v %v", run.All.Errors, run.Errors, run.ErrorExamples)
	}

	pf, err := os.Open(plotFile)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	if sz := img.Bounds().Size(); sz.X != 864 || sz.Y != 528 {
		t.Errorf("plot of %v pixels, want 864x528", sz)
	}
}

// TestBenchNotFound reads keys nobody wrote: every get is a "not found"
// answer, and the run succeeds.
func TestBenchNotFound(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	jsonFile := filepath.Join(t.TempDir(), "b.json")
	res := r.Client("bench", "--no-preload", "--ops", "400", "--write-fraction", "0", "--key-prefix", "never-written-",
		"--concurrency", "4", "--no-progress", "--json", jsonFile)
	if res.Code != 0 {
		t.Fatalf("bench: %s", res)
	}
	if res.Stderr != "" {
		t.Errorf("stderr with --no-progress: %q", res.Stderr)
	}
	got := readBenchJSON(t, jsonFile)
	if got.Load != nil {
		t.Error("a load phase ran with --no-preload")
	}
	g := got.Run.Get
	if g.Ops != 400 || g.NotFound+g.Errors != 400 || g.NotFound == 0 || g.OK != 0 {
		t.Errorf("gets of unwritten keys: %+v", g)
	}
	if got.Run.All.OpsPerSec <= 0 || g.Latency.P50 <= 0 {
		t.Errorf("not found answers not counted in throughput and latency: %+v", g)
	}
	checkPhaseSums(t, got.Run)
}

// TestBenchNoRing runs bench against servers that are not there: it
// gives up and exits ERR_NETWORK.
func TestBenchNoRing(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1) // never started
	res := r.Client("bench", "--keys", "100000", "--no-progress")
	wantExit(t, res, errcode.Network)
	if !strings.Contains(res.Stderr, "ERROR: Network error: the ring answered none of") {
		t.Errorf("stderr: %q", res.Stderr)
	}
	if !strings.Contains(res.Stdout, "stopped early") {
		t.Errorf("the table does not say the load stopped: %q", res.Stdout)
	}
}

// TestBenchBadFlags checks that a bad workload is refused before the ring
// is touched (there is no servers.txt here), with ERR_INVALID_COMMAND and a
// message that names the problem.
func TestBenchBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		env  string // NAME=VALUE, optional
		want string
	}{
		{[]string{"--concurrency", "-1"}, "", "--concurrency -1: must be at least 1"},
		{[]string{"--concurrency", "0"}, "", "--concurrency 0: must be at least 1"},
		{[]string{"--concurrency", "many"}, "", `invalid value "many" for flag -concurrency`},
		{[]string{"--write-fraction", "1.5"}, "", "--write-fraction 1.5: must be between 0 and 1"},
		{[]string{"--delete-fraction", "-0.2"}, "", "--delete-fraction -0.2: must be between 0 and 1"},
		{[]string{"--write-fraction", "0.7", "--delete-fraction", "0.5"}, "", "add up to 1.2: must be at most 1"},
		{[]string{"--distribution", "gaussian"}, "", `--distribution "gaussian": want uniform, hotspot or zipf`},
		{[]string{"--dist", "zipf", "--zipf-s", "0.9"}, "", "--zipf-s 0.9: must be a number above 1"},
		{[]string{"--keys", "0"}, "", "--keys 0: must be at least 1"},
		{[]string{"--value-size", "-5"}, "", "--value-size -5: must not be negative"},
		{[]string{"--value-size", "16777217"}, "", "--value-size 16777217: must be at most"},
		{[]string{"--ops", "0"}, "", "--ops 0: must be at least 1"},
		{[]string{"--ops", "10", "--duration", "1s"}, "", "give --ops or --duration, not both"},
		{[]string{"--duration", "-1s"}, "", "--duration -1s: must be positive"},
		{[]string{"--load-only", "--no-preload"}, "", "--load-only"},
		{[]string{"--pool", "-1"}, "", "--pool -1"},
		{[]string{"-r", "3", "-n", "2"}, "", "R=3 is larger than N=2"},
		{[]string{"-c", "SOMETIMES"}, "", `-c "SOMETIMES"`},
		{[]string{"--bogus"}, "", "flag provided but not defined: -bogus"},
		{[]string{"--", "extra"}, "", "want no arguments"},
		{nil, "DKVS_BENCH_CONCURRENCY=-3", "--concurrency -3"},
		{nil, "DKVS_BENCH_DISTRIBUTION=pareto", `"pareto"`},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " ")+tc.env, func(t *testing.T) {
			if name, value, ok := strings.Cut(tc.env, "="); ok {
				t.Setenv(name, value)
			}
			res := harness.Run(t, dir, harness.Bin(t, "dkvs-client"), append([]string{"bench"}, tc.args...)...)
			wantExit(t, res, errcode.InvalidCommand)
			if !strings.HasPrefix(res.Stderr, "ERROR: Invalid command: ") || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("stderr %q, want ERROR: Invalid command: ...%s", res.Stderr, tc.want)
			}
		})
	}
	// -h prints the bench flags and exits 0.
	res := harness.Run(t, dir, harness.Bin(t, "dkvs-client"), "bench", "-h")
	if res.Code != 0 || !strings.Contains(res.Stdout, "--write-fraction F") {
		t.Errorf("bench -h: %s", res)
	}
}
