//go:build linux

// Command benchring is "make bench": it starts rings of dkvs-server on
// 127.0.0.1 (free ports, a temporary directory, default options with
// synced writes), runs the standard workloads of dkvs-client bench against
// them, writes a Markdown table of the results and prints it, and stops
// the servers whatever happens.
//
//	go run ./tests/benchring -bin done -out done/bench.md
//
// The workloads: 100-byte values over 1000 keys, half gets and half puts,
// uniform and hotspot at 1 and 50 clients; values of 100 B, 10 KiB and
// 1 MiB at 16 clients; the target, N=1 on one server with
// --no-sync at 50 clients; and the load of 1,000,000 keys into a fresh
// ring of three, with the disk and memory it costs per key, followed by
// the uniform 50-client workload over those keys (the cost per operation
// at 1,000,000 keys, next to the same at 1,000).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dkvs/dkvs/dkvs/bench"
	"github.com/dkvs/dkvs/tests/harness"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "done", "directory of dkvs-server and dkvs-client")
	flag.StringVar(&o.out, "out", "done/bench.md", "Markdown file to write")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each timed workload")
	flag.IntVar(&o.loadKeys, "load-keys", 1_000_000, "keys of the load measurement")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data, logs, JSON, plots)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchring:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, out string
	duration time.Duration
	loadKeys int
	keep     bool
	progress bool // let dkvs-client draw its progress bar on our stderr
}

// workload is one standard run of dkvs-client bench.
type workload struct {
	name string
	// ring is "three" (three servers, synced) or "target" (one server,
	// --no-sync).
	ring string
	// global are dkvs-client options before "bench"; args its flags.
	global, args []string
}

func standardWorkloads(d time.Duration) []workload {
	w := func(name, ring string, keys int, args ...string) workload {
		common := []string{"--duration", d.String(), "--keys", strconv.Itoa(keys), "--write-fraction", "0.5"}
		return workload{name: name, ring: ring, args: append(common, args...)}
	}
	// 1 MiB values: 100 keys keep the preload short (100 MiB per
	// replica), and a 5 s deadline per request, because at the default
	// 500 ms (plus 1 ms per 64 KiB sent) most operations queue past it
	// at 16 clients and fail: that would measure the deadline.
	big := w("1 MiB values, --timeout 5s", "three", 100, "--concurrency", "16", "--value-size", "1048576")
	big.global = []string{"--timeout", "5s"}
	return []workload{
		w("uniform", "three", 1000, "--concurrency", "1", "--distribution", "uniform", "--value-size", "100"),
		w("uniform", "three", 1000, "--concurrency", "50", "--distribution", "uniform", "--value-size", "100"),
		w("hotspot", "three", 1000, "--concurrency", "1", "--distribution", "hotspot", "--value-size", "100"),
		w("hotspot", "three", 1000, "--concurrency", "50", "--distribution", "hotspot", "--value-size", "100"),
		w("100 B values", "three", 1000, "--concurrency", "16", "--value-size", "100"),
		w("10 KiB values", "three", 1000, "--concurrency", "16", "--value-size", "10240"),
		big,
		w("target: N=1, one server, --no-sync", "target", 1000, "--concurrency", "50", "-n", "1", "--value-size", "100"),
	}
}

// mixedAfterLoad is the uniform 50-client workload over the keys of the
// load, which are all there already: the cost per operation at
// o.loadKeys keys, next to the same workload at 1,000.
func mixedAfterLoad(o options) workload {
	return workload{
		name: fmt.Sprintf("uniform, after the %s-key load", thousands(float64(o.loadKeys))),
		ring: "load",
		args: []string{"--duration", o.duration.String(), "--keys", strconv.Itoa(o.loadKeys), "--write-fraction", "0.5",
			"--no-preload", "--key-prefix", "load-", "--concurrency", "50", "--distribution", "uniform", "--value-size", "100"},
	}
}

// outcome is what one workload gave.
type outcome struct {
	w   workload
	res *bench.Result
	err error
}

// loadOutcome is the measurement of the big load.
type loadOutcome struct {
	res                   *bench.Result
	err                   error
	keys                  int
	diskBefore, diskAfter int64 // bytes of the data directories, allocated (du)
	sizeBefore, sizeAfter int64 // and apparent (the files' lengths)
	rssBefore, rssAfter   int64 // bytes, the three servers together
	servers               int
	// mixed is the uniform 50-client workload run over the loaded keys,
	// to compare with the same workload over 1,000 keys.
	mixed outcome
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		o.progress = true
	}
	tmp, err := os.MkdirTemp("", "dkvs-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stderr, "keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	rep := report{start: time.Now(), loadBefore: bench.LoadAverage(), duration: o.duration}
	var failed []string

	// The standard workloads share one ring of three; the target has its
	// own server.
	rings := map[string]*ring{}
	defer func() {
		for _, r := range rings {
			r.stop()
		}
	}()
	for _, w := range standardWorkloads(o.duration) {
		if ctx.Err() != nil {
			break
		}
		r := rings[w.ring]
		if r == nil {
			// A ring left running would compete for the cores: the three
			// servers go on compacting what the 1 MiB workload wrote
			// while the target runs.
			for name, other := range rings {
				other.stop()
				delete(rings, name)
			}
			n, args := 3, []string(nil)
			if w.ring == "target" {
				n, args = 1, []string{"--no-sync"}
			}
			if r, err = startRing(ctx, o.bin, filepath.Join(tmp, w.ring), n, args); err != nil {
				return err
			}
			rings[w.ring] = r
		}
		fmt.Fprintf(stderr, "== %s, %s clients\n", w.name, flagValue(w.args, "--concurrency"))
		key := fmt.Sprintf("w%d-", len(rep.outcomes))
		res, err := r.bench(ctx, o, key, w.global, append(w.args, "--key-prefix", key))
		if err != nil {
			failed = append(failed, w.name)
			fmt.Fprintf(stderr, "%s: %v\n", w.name, err)
		}
		rep.outcomes = append(rep.outcomes, outcome{w: w, res: res, err: err})
	}
	for name, r := range rings {
		r.stop()
		delete(rings, name)
	}

	// The load, into a fresh ring so that its disk and memory are its own.
	if ctx.Err() == nil && o.loadKeys > 0 {
		fmt.Fprintf(stderr, "== load of %d keys\n", o.loadKeys)
		rep.load, err = measureLoad(ctx, o, filepath.Join(tmp, "load"))
		if err != nil {
			return err
		}
		if rep.load.err != nil {
			failed = append(failed, "load")
			fmt.Fprintf(stderr, "load: %v\n", rep.load.err)
		}
		if m := rep.load.mixed; m.res != nil || m.err != nil {
			rep.outcomes = append(rep.outcomes, m)
			if m.err != nil {
				failed = append(failed, m.w.name)
				fmt.Fprintf(stderr, "%s: %v\n", m.w.name, m.err)
			}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	rep.end = time.Now()
	rep.loadAfter = bench.LoadAverage()
	md := rep.markdown()
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	fmt.Fprintf(stderr, "wrote %s\n", o.out)
	if len(failed) > 0 {
		return fmt.Errorf("workloads failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// measureLoad starts a ring of three, measures its servers' resident
// memory and data directories, loads o.loadKeys keys of 100 bytes from
// 50 clients, and measures again.
func measureLoad(ctx context.Context, o options, dir string) (*loadOutcome, error) {
	r, err := startRing(ctx, o.bin, dir, 3, nil)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	lo := &loadOutcome{keys: o.loadKeys, servers: len(r.procs)}
	// Let the start-up anti-entropy round and Pebble's opening settle, so
	// that "before" is an idle server.
	time.Sleep(time.Second)
	lo.rssBefore = r.rss()
	lo.diskBefore, lo.sizeBefore = r.disk()
	lo.res, lo.err = r.bench(ctx, o, "load", nil, []string{"--load-only", "--keys", strconv.Itoa(o.loadKeys),
		"--concurrency", "50", "--value-size", "100", "--key-prefix", "load-"})
	lo.rssAfter = r.rss()
	lo.diskAfter, lo.sizeAfter = r.disk()
	if lo.err == nil && ctx.Err() == nil {
		w := mixedAfterLoad(o)
		fmt.Fprintf(os.Stderr, "== %s\n", w.name)
		lo.mixed.w = w
		lo.mixed.res, lo.mixed.err = r.bench(ctx, o, "mixed", w.global, w.args)
	}
	return lo, nil
}

// ring is a set of running servers sharing one servers.txt.
type ring struct {
	dir, servers string
	bin          string
	procs        []*exec.Cmd
	dataDirs     []string
	exited       []chan struct{}
}

// startRing starts n servers on free ports of 127.0.0.1 under dir, with
// extra server options, and waits until each answers a ping.
func startRing(ctx context.Context, bin, dir string, n int, extra []string) (*ring, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ports, err := harness.Ports(n)
	if err != nil {
		return nil, err
	}
	r := &ring{dir: dir, servers: filepath.Join(dir, "servers.txt"), bin: bin}
	var b strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&b, "127.0.0.1 %d 1\n", p)
	}
	if err := os.WriteFile(r.servers, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	for _, p := range ports {
		data := filepath.Join(dir, fmt.Sprintf("data-%d", p))
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("server-%d.log", p)))
		if err != nil {
			r.stop()
			return nil, err
		}
		args := append([]string{"--servers", r.servers, "--data-dir", data}, extra...)
		args = append(args, "127.0.0.1", strconv.Itoa(int(p)))
		cmd := exec.Command(filepath.Join(bin, "dkvs-server"), args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		// The servers die with this program even if it is killed.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			r.stop()
			return nil, err
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); logf.Close(); close(done) }()
		r.procs = append(r.procs, cmd)
		r.dataDirs = append(r.dataDirs, data)
		r.exited = append(r.exited, done)
	}
	for i, p := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		deadline := time.Now().Add(20 * time.Second)
		for harness.Ping(addr, 200*time.Millisecond) != nil {
			select {
			case <-r.exited[i]:
				r.stop()
				return nil, fmt.Errorf("dkvs-server %s exited at start; log in %s", addr, dir)
			case <-ctx.Done():
				r.stop()
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				r.stop()
				return nil, fmt.Errorf("dkvs-server %s not answering after 20s", addr)
			}
		}
	}
	return r, nil
}

// stop sends SIGTERM to every server and waits for it, with SIGKILL after
// 15 s. Stopping twice does nothing more.
func (r *ring) stop() {
	for _, c := range r.procs {
		c.Process.Signal(syscall.SIGTERM)
	}
	for i, c := range r.procs {
		select {
		case <-r.exited[i]:
		case <-time.After(15 * time.Second):
			c.Process.Kill()
			<-r.exited[i]
		}
	}
	r.procs = nil
}

// bench runs dkvs-client bench with args against the ring and reads its
// JSON result.
func (r *ring) bench(ctx context.Context, o options, name string, global, args []string) (*bench.Result, error) {
	jsonFile := filepath.Join(r.dir, name+".json")
	all := append([]string{"--servers", r.servers}, global...)
	all = append(all, "bench", "--json", jsonFile, "--plot", filepath.Join(r.dir, name+".png"))
	all = append(all, args...)
	if !o.progress {
		all = append(all, "--no-progress")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(o.bin, "dkvs-client"), all...)
	var out, errOut strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(os.Stderr, &errOut)
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "dkvs-client %s\n%s", strings.Join(all, " "), out.String())
		return nil, fmt.Errorf("%w: %s", err, errorLine(errOut.String()))
	}
	f, err := os.Open(jsonFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := bench.ReadJSON(f)
	if err != nil {
		return nil, err
	}
	if res.Run != nil && res.Run.All.Errors > 0 || res.Load != nil && res.Load.All.Errors > 0 {
		fmt.Fprint(os.Stderr, out.String()) // the table shows which errors
	}
	return res, nil
}

// rss returns the resident memory of the servers together, in bytes
// (VmRSS of /proc/PID/status).
func (r *ring) rss() int64 {
	var total int64
	for _, c := range r.procs {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.Process.Pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				total += kb << 10
			}
		}
		f.Close()
	}
	return total
}

// disk returns the bytes the data directories take on disk as du counts
// them (allocated blocks), and their apparent size (the files' lengths).
// The two differ by the space Pebble preallocates for its write-ahead
// logs.
func (r *ring) disk() (allocated, apparent int64) {
	for _, d := range r.dataDirs {
		filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil // a file Pebble just removed
			}
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				apparent += fi.Size()
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					allocated += st.Blocks * 512
				}
			}
			return nil
		})
	}
	return allocated, apparent
}

// errorLine returns the "ERROR: ..." line of a command's stderr.
func errorLine(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if i := strings.Index(line, "ERROR: "); i >= 0 {
			return line[i:]
		}
	}
	return "no ERROR line"
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// report collects everything the Markdown shows.
type report struct {
	start, end            time.Time
	loadBefore, loadAfter []float64
	duration              time.Duration
	outcomes              []outcome
	load                  *loadOutcome
}

func (rp *report) markdown() string {
	var b strings.Builder
	cpu := bench.CPUModel()
	if cpu == "" {
		cpu = "unknown CPU"
	}
	fmt.Fprintf(&b, "Measured by `make bench` on %s: %s, %d cores (GOMAXPROCS %d), %s/%s, %s.\n",
		rp.start.UTC().Format("2006-01-02 15:04 MST"), cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "Load average %s before, %s after; the run took %s.\n\n",
		loads(rp.loadBefore), loads(rp.loadAfter), rp.end.Sub(rp.start).Round(time.Second))
	fmt.Fprintf(&b, "Servers on 127.0.0.1 with default options (synced writes) unless said; "+
		"one dkvs-client process, its workers sharing one client; %s per workload after a preload "+
		"of its keys; half gets and half puts, N=3 R=2 W=2 unless said. "+
		"Latencies of answered operations.\n\n", rp.duration)
	b.WriteString("| workload | clients | keys | value | N/R/W | ops/s | p50 | p90 | p99 | p99.9 | max | get p50 / p99 | put p50 / p99 | errors |\n")
	b.WriteString("|---|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, o := range rp.outcomes {
		conc := flagValue(o.w.args, "--concurrency")
		if o.res == nil || o.res.Run == nil {
			fmt.Fprintf(&b, "| %s | %s | %s | | | failed: %s | | | | | | | | |\n", o.w.name, conc, flagValue(o.w.args, "--keys"), firstLine(o.err))
			continue
		}
		wl, a := o.res.Workload, o.res.Run.All
		l := a.Latency
		nrw := fmt.Sprintf("%d/%d/%d", wl.N, wl.R, wl.W)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s |\n",
			o.w.name, wl.Concurrency, thousands(float64(wl.Keys)), size(wl.ValueSize), nrw, thousands(a.OpsPerSec),
			bench.FormatLatency(l.P50), bench.FormatLatency(l.P90), bench.FormatLatency(l.P99),
			bench.FormatLatency(l.P999), bench.FormatLatency(l.Max),
			bench.FormatLatency(o.res.Run.Get.Latency.P50), bench.FormatLatency(o.res.Run.Get.Latency.P99),
			bench.FormatLatency(o.res.Run.Put.Latency.P50), bench.FormatLatency(o.res.Run.Put.Latency.P99),
			errorsCell(o.res.Run))
	}
	if lo := rp.load; lo != nil {
		fmt.Fprintf(&b, "\nLoad of %s keys of 100 bytes (N=3 W=2, 50 clients) into a fresh ring of three:\n\n", thousands(float64(lo.keys)))
		b.WriteString("| keys | time | ops/s | p50 | p99 | p99.9 | disk per key per replica: du / apparent | servers' RSS before / after | RSS per key per replica | errors |\n")
		b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		if lo.res == nil || lo.res.Load == nil {
			fmt.Fprintf(&b, "| %s | failed: %s | | | | | | | | |\n", thousands(float64(lo.keys)), firstLine(lo.err))
		} else {
			p := lo.res.Load
			l := p.Put.Latency
			per := func(before, after int64) string {
				return fmt.Sprintf("%.0f B", float64(after-before)/float64(lo.keys)/float64(lo.servers))
			}
			fmt.Fprintf(&b, "| %s | %.1fs | %s | %s | %s | %s | %s | %s / %s | %s | %s |\n",
				thousands(float64(lo.keys)), p.DurationSeconds, thousands(p.Put.OpsPerSec),
				bench.FormatLatency(l.P50), bench.FormatLatency(l.P99), bench.FormatLatency(l.P999),
				per(lo.diskBefore, lo.diskAfter)+" / "+per(lo.sizeBefore, lo.sizeAfter), mib(lo.rssBefore), mib(lo.rssAfter),
				per(lo.rssBefore, lo.rssAfter), errorsCell(p))
		}
		b.WriteString("\nDisk: the three data directories right after the load, less before, over keys and over 3 replicas: " +
			"allocated blocks as du counts them, and the files' apparent size; both include Pebble's write-ahead logs, " +
			"for which Pebble preallocates space (the difference). " +
			"RSS: VmRSS of the three servers, the same way; it includes Pebble's memtables (up to 64 MiB each) and " +
			"block cache (filled as blocks are read, up to 256 MiB by default), which stop growing with the keys once full.\n")
	}
	return b.String()
}

func errorsCell(p *bench.Phase) string {
	if p.All.Errors == 0 {
		return "0"
	}
	var parts []string
	for k, n := range p.Errors {
		parts = append(parts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(k, "_", " ")))
	}
	return strings.Join(parts, ", ")
}

func firstLine(err error) string {
	if err == nil {
		return "no result"
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	return strings.ReplaceAll(line, "|", "/")
}

func loads(la []float64) string {
	if len(la) == 0 {
		return "unknown"
	}
	var s []string
	for _, v := range la {
		s = append(s, strconv.FormatFloat(v, 'f', 2, 64))
	}
	return strings.Join(s, " ")
}

// thousands formats a whole number with commas: 12,345.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
