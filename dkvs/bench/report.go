package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

// ResultVersion is the version of the JSON format of Result; it changes
// when a field changes meaning or goes away.
const ResultVersion = 1

// Result is the outcome of a run, as "dkvs-client bench --json" writes it.
type Result struct {
	// Version is ResultVersion.
	Version int `json:"version"`
	// Start is when the run began; DurationSeconds its wall time, load
	// and measured phase together.
	Start           time.Time `json:"start"`
	DurationSeconds float64   `json:"duration_seconds"`
	// Interrupted is set when the run was stopped (SIGINT) before its
	// end: the phases hold what finished.
	Interrupted bool     `json:"interrupted"`
	Machine     Machine  `json:"machine"`
	Ring        Ring     `json:"ring"`
	Workload    Workload `json:"workload"`
	// Load is the preload phase (null without one); Run the measured
	// phase (null with --load-only, or when the load found no ring).
	Load *Phase `json:"load"`
	Run  *Phase `json:"run"`
}

// Machine describes where the client ran.
type Machine struct {
	// CPUs is runtime.NumCPU(), GOMAXPROCS runtime.GOMAXPROCS(0).
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute averages at the
	// start (empty where there is no /proc).
	LoadAverage []float64 `json:"load_average"`
	Hostname    string    `json:"hostname"`
	OS          string    `json:"os"`
	Arch        string    `json:"arch"`
	GoVersion   string    `json:"go_version"`
}

// Ring describes the ring and the client's options; the caller of Run
// fills it in.
type Ring struct {
	ServersFile string `json:"servers_file"`
	// Servers is the number of servers in the file.
	Servers int `json:"servers"`
	// TimeoutSeconds is the deadline of one request to one server.
	TimeoutSeconds float64 `json:"timeout_seconds"`
	Sloppy         bool    `json:"sloppy_quorum"`
	ReadRepair     bool    `json:"read_repair"`
}

// Workload is Config in JSON, with the replication of each operation.
type Workload struct {
	// Ops is the number of operations asked for (0: timed);
	// DurationSeconds the time asked for (0: a number of operations).
	Ops             int64   `json:"ops"`
	DurationSeconds float64 `json:"duration_seconds"`
	Concurrency     int     `json:"concurrency"`
	Keys            int     `json:"keys"`
	KeyPrefix       string  `json:"key_prefix"`
	ValueSize       int     `json:"value_size"`
	WriteFraction   float64 `json:"write_fraction"`
	DeleteFraction  float64 `json:"delete_fraction"`
	GetFraction     float64 `json:"get_fraction"`
	Distribution    string  `json:"distribution"`
	ZipfS           float64 `json:"zipf_s"`
	Preload         bool    `json:"preload"`
	LoadOnly        bool    `json:"load_only"`
	Seed            uint64  `json:"seed"`
	// N, R and W as asked (N above the number of servers means all of
	// them); Consistency is the -c level ("" when none was given).
	N            int    `json:"n"`
	R            int    `json:"r"`
	W            int    `json:"w"`
	Consistency  string `json:"consistency"`
	Linearizable bool   `json:"linearizable"`
}

// WorkloadOf returns c in JSON form, without the replication (see
// SetRequest).
func WorkloadOf(c Config) Workload {
	return Workload{
		Ops:             c.Ops,
		DurationSeconds: c.Duration.Seconds(),
		Concurrency:     c.Concurrency,
		Keys:            c.Keys,
		KeyPrefix:       c.KeyPrefix,
		ValueSize:       c.ValueSize,
		WriteFraction:   c.WriteFraction,
		DeleteFraction:  c.DeleteFraction,
		GetFraction:     c.GetFraction(),
		Distribution:    string(c.Distribution),
		ZipfS:           c.ZipfS,
		Preload:         c.Preload,
		LoadOnly:        c.LoadOnly,
		Seed:            c.Seed,
	}
}

// SetRequest records the replication of the operations.
func (w *Workload) SetRequest(req dkvs.Request, consistency string) {
	w.N, w.R, w.W = req.N, req.R, req.W
	w.Consistency = strings.ToUpper(consistency)
	w.Linearizable = req.Linearizable
}

// CollectMachine describes this machine and process.
func CollectMachine() Machine {
	m := Machine{
		CPUs:        runtime.NumCPU(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		CPUModel:    CPUModel(),
		LoadAverage: LoadAverage(),
		OS:          runtime.GOOS,
		Arch:        runtime.GOARCH,
		GoVersion:   runtime.Version(),
	}
	m.Hostname, _ = os.Hostname()
	return m
}

// CPUModel returns the first "model name" of /proc/cpuinfo, or "" where
// there is none.
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAverage returns the 1, 5 and 15 minute load averages of
// /proc/loadavg, or nil where there is none.
func LoadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	fields := strings.Fields(string(b))
	var la []float64
	for _, f := range fields[:min(3, len(fields))] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil
		}
		la = append(la, v)
	}
	return la
}

// Answered is the number of operations the ring answered over both
// phases: zero means the ring could not be reached.
func (r *Result) Answered() int64 {
	var n int64
	for _, p := range []*Phase{r.Load, r.Run} {
		if p != nil {
			n += p.All.Answered()
		}
	}
	return n
}

// Failure returns the error that "dkvs-client bench" exits with, or nil:
// a run in which the ring answered no operation at all failed, with
// ERR_NETWORK, whatever the operations' own errors were (a refused
// operation of every kind also means nothing was measured). A run that
// had some answers succeeded, its errors being part of the measurement.
func (r *Result) Failure() error {
	if r.Answered() > 0 {
		return nil
	}
	var issued int64
	kinds := map[string]int64{}
	for _, p := range []*Phase{r.Load, r.Run} {
		if p == nil {
			continue
		}
		issued += p.All.Ops
		for k, n := range p.Errors {
			kinds[k] += n
		}
	}
	if issued == 0 {
		return fmt.Errorf("no operation was run: %w", errcode.Network)
	}
	return fmt.Errorf("the ring answered none of %d operations (%s): %w", issued, kindList(kinds), errcode.Network)
}

// kindList formats error counts as "network 3, unknown outcome 1", the
// most frequent first.
func kindList(kinds map[string]int64) string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if kinds[a] != kinds[b] {
			return int(kinds[b] - kinds[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", strings.ReplaceAll(k, "_", " "), kinds[k])
	}
	return strings.Join(parts, ", ")
}

// FormatLatency formats microseconds with three significant digits and a
// unit that fits ("45.1µs", "1.23ms", "2.50s"); "-" for no value.
func FormatLatency(us float64) string {
	switch {
	case us <= 0:
		return "-"
	case us < 1e3:
		return sig3(us) + "µs"
	case us < 1e6:
		return sig3(us/1e3) + "ms"
	}
	return sig3(us/1e6) + "s"
}

// sig3 formats v (below 1000) with three significant digits.
func sig3(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// WriteTable writes the result as text: a heading, then one row per
// phase and operation type (count, ops/s, average, p50, p90, p99, p99.9,
// max, not found, errors), then the errors by kind with the first message
// of each.
func WriteTable(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	wl := r.Workload
	consistency := ""
	if wl.Consistency != "" {
		consistency = " -c " + wl.Consistency
	}
	if wl.Linearizable {
		consistency += " linearizable"
	}
	fmt.Fprintf(bw, "dkvs bench: %d servers (%s), N=%d R=%d W=%d%s\n", r.Ring.Servers, r.Ring.ServersFile, wl.N, wl.R, wl.W, consistency)
	fmt.Fprintf(bw, "workload: %s\n", configOf(wl))
	m := r.Machine
	fmt.Fprintf(bw, "machine: %d CPUs (GOMAXPROCS %d), %s, load average %s\n", m.CPUs, m.GOMAXPROCS, orUnknown(m.CPUModel), loadString(m.LoadAverage))
	fmt.Fprintf(bw, "started %s, took %.2fs\n\n", r.Start.Format(time.RFC3339), r.DurationSeconds)

	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\top\tcount\tops/s\tavg\tp50\tp90\tp99\tp99.9\tmax\tnot found\terrors\t")
	row := func(phase string, op string, s OpStats) {
		l := s.Latency
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", phase, op, s.Ops, s.OpsPerSec,
			FormatLatency(l.Avg), FormatLatency(l.P50), FormatLatency(l.P90), FormatLatency(l.P99),
			FormatLatency(l.P999), FormatLatency(l.Max), s.NotFound, s.Errors)
	}
	if p := r.Load; p != nil {
		row("load", "put", p.Put)
	}
	if p := r.Run; p != nil {
		for op := range numOpTypes {
			row("run", op.String(), *p.Op(op))
		}
		row("run", "all", p.All)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(bw)
	for _, p := range []*Phase{r.Load, r.Run} {
		if p == nil {
			continue
		}
		fmt.Fprintf(bw, "%s: %.2fs", p.Name, p.DurationSeconds)
		if len(p.Errors) == 0 {
			fmt.Fprint(bw, ", no errors")
		} else {
			fmt.Fprintf(bw, ", errors: %s", kindList(p.Errors))
		}
		if nf := p.All.NotFound; nf > 0 {
			fmt.Fprintf(bw, "; %d not found (answers, counted in ops/s and latency)", nf)
		}
		fmt.Fprintln(bw)
		kinds := make([]string, 0, len(p.ErrorExamples))
		for k := range p.ErrorExamples {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			fmt.Fprintf(bw, "  first %s error: %s\n", strings.ReplaceAll(k, "_", " "), p.ErrorExamples[k])
		}
		if p.Aborted != "" {
			fmt.Fprintf(bw, "  stopped early: %s\n", p.Aborted)
		}
	}
	if r.Interrupted {
		fmt.Fprintln(bw, "interrupted: the figures cover the operations that finished")
	}
	return bw.Flush()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

func loadString(la []float64) string {
	if len(la) == 0 {
		return "unknown"
	}
	parts := make([]string, len(la))
	for i, v := range la {
		parts[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(parts, " ")
}

// configOf rebuilds the Config a Workload came from, for its String.
func configOf(w Workload) Config {
	return Config{
		Ops: w.Ops, Duration: time.Duration(w.DurationSeconds * float64(time.Second)),
		Concurrency: w.Concurrency, Keys: w.Keys, KeyPrefix: w.KeyPrefix, ValueSize: w.ValueSize,
		WriteFraction: w.WriteFraction, DeleteFraction: w.DeleteFraction,
		Distribution: Distribution(w.Distribution), ZipfS: w.ZipfS,
		Preload: w.Preload, LoadOnly: w.LoadOnly, Seed: w.Seed,
	}
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a Result that WriteJSON wrote.
func ReadJSON(rd io.Reader) (*Result, error) {
	var r Result
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("bench result: %w", err)
	}
	if r.Version != ResultVersion {
		return nil, fmt.Errorf("bench result version %d, want %d", r.Version, ResultVersion)
	}
	return &r, nil
}
