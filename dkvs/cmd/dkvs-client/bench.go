package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs/bench"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

const benchUsage = `Usage: dkvs-client [global options] bench [flags]

Runs a workload against the ring through one client shared by --concurrency
workers, then prints throughput and latency percentiles per operation type.
A progress bar runs on standard error. Every flag can also come from the
environment variable shown.

Workload:
  --ops N               operations of the measured phase       DKVS_BENCH_OPS
  --duration D          or its length (default 10s); not both  DKVS_BENCH_DURATION
  --concurrency C       operations in flight (default 16)      DKVS_BENCH_CONCURRENCY
  --keys K              distinct keys (default 1000)           DKVS_BENCH_KEYS
  --key-prefix P        prefix of every key (default bench-)   DKVS_BENCH_KEY_PREFIX
  --value-size B        bytes per value (default 100)          DKVS_BENCH_VALUE_SIZE
  --write-fraction F    share of puts (default 0.5)            DKVS_BENCH_WRITE_FRACTION
  --delete-fraction F   share of deletes (default 0); the rest DKVS_BENCH_DELETE_FRACTION
                        are gets
  --distribution D      uniform, hotspot (90% of operations on DKVS_BENCH_DISTRIBUTION
                        5 keys) or zipf (default uniform); --dist for short
  --zipf-s S            zipf exponent, above 1 (default 1.1)   DKVS_BENCH_ZIPF_S
  --no-preload          do not write every key before the run  DKVS_BENCH_NO_PRELOAD
  --load-only           measure the preload alone              DKVS_BENCH_LOAD_ONLY
  --seed S              random seed (default 1)                DKVS_BENCH_SEED
  -n N, -r R, -w W, -c C, --linearizable
                        replication of every operation, as for the other
                        commands (DKVS_N, DKVS_R, DKVS_W, DKVS_CONSISTENCY,
                        DKVS_LINEARIZABLE)
  --pool P              connections per server (default 2)     DKVS_BENCH_POOL

Output:
  --json FILE           write the result as JSON               DKVS_BENCH_JSON
  --plot FILE.png       draw latency by percentile as a PNG    DKVS_BENCH_PLOT
  --no-progress         no progress bar                        DKVS_BENCH_NO_PROGRESS
  --cpu-profile FILE    CPU profile of the client (go tool     DKVS_BENCH_CPU_PROFILE
                        pprof), load and run phases

A get that finds no value is counted as "not found", an answer like any
other (in ops/s and latency), not as an error. Exit status: 0 when the ring
answered at least one operation, even if others failed (they are counted by
kind); 132 (ERR_NETWORK) when it answered none; 134 for a bad flag.
`

// benchFlags are the flags of the bench command, besides the quorum flags
// every command accepts.
func benchFlags() []cli.Flag {
	d := bench.DefaultConfig()
	env := func(name string) []string { return []string{"DKVS_BENCH_" + name} }
	return []cli.Flag{
		&cli.Int64Flag{Name: "ops", EnvVars: env("OPS")},
		&cli.DurationFlag{Name: "duration", Value: d.Duration, EnvVars: env("DURATION")},
		&cli.IntFlag{Name: "concurrency", Value: d.Concurrency, EnvVars: env("CONCURRENCY")},
		&cli.IntFlag{Name: "keys", Value: d.Keys, EnvVars: env("KEYS")},
		&cli.StringFlag{Name: "key-prefix", Value: d.KeyPrefix, EnvVars: env("KEY_PREFIX")},
		&cli.IntFlag{Name: "value-size", Value: d.ValueSize, EnvVars: env("VALUE_SIZE")},
		&cli.Float64Flag{Name: "write-fraction", Value: d.WriteFraction, EnvVars: env("WRITE_FRACTION")},
		&cli.Float64Flag{Name: "delete-fraction", Value: d.DeleteFraction, EnvVars: env("DELETE_FRACTION")},
		&cli.StringFlag{Name: "distribution", Aliases: []string{"dist"}, Value: string(d.Distribution), EnvVars: env("DISTRIBUTION")},
		&cli.Float64Flag{Name: "zipf-s", Value: d.ZipfS, EnvVars: env("ZIPF_S")},
		&cli.BoolFlag{Name: "no-preload", EnvVars: env("NO_PRELOAD")},
		&cli.BoolFlag{Name: "load-only", EnvVars: env("LOAD_ONLY")},
		&cli.Uint64Flag{Name: "seed", Value: d.Seed, EnvVars: env("SEED")},
		&cli.BoolFlag{Name: "linearizable", EnvVars: []string{"DKVS_LINEARIZABLE"}},
		&cli.IntFlag{Name: "pool", EnvVars: env("POOL")},
		&cli.StringFlag{Name: "json", EnvVars: env("JSON")},
		&cli.StringFlag{Name: "plot", EnvVars: env("PLOT")},
		&cli.BoolFlag{Name: "no-progress", EnvVars: env("NO_PROGRESS")},
		&cli.StringFlag{Name: "cpu-profile", EnvVars: env("CPU_PROFILE")},
	}
}

// benchCommand is "dkvs-client bench": the command of e.command, with its
// own usage text for -h.
func (e *env) benchCommand() *cli.Command {
	cmd := e.command("bench", e.bench, benchFlags()...)
	cmd.OnUsageError = func(c *cli.Context, err error, sub bool) error {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, benchUsage)
			return nil
		}
		return e.usageError(c, err, sub)
	}
	return cmd
}

// benchConfig reads the workload flags.
func benchConfig(c *cli.Context) (bench.Config, error) {
	if c.IsSet("ops") && c.IsSet("duration") {
		return bench.Config{}, cmdutil.UsageError("give --ops or --duration, not both")
	}
	dist, err := bench.ParseDistribution(c.String("distribution"))
	if err != nil {
		return bench.Config{}, err
	}
	cfg := bench.Config{
		Ops:            c.Int64("ops"),
		Duration:       c.Duration("duration"),
		Concurrency:    c.Int("concurrency"),
		Keys:           c.Int("keys"),
		KeyPrefix:      c.String("key-prefix"),
		ValueSize:      c.Int("value-size"),
		WriteFraction:  c.Float64("write-fraction"),
		DeleteFraction: c.Float64("delete-fraction"),
		Distribution:   dist,
		ZipfS:          c.Float64("zipf-s"),
		Preload:        !c.Bool("no-preload"),
		LoadOnly:       c.Bool("load-only"),
		Seed:           c.Uint64("seed"),
	}
	if c.IsSet("ops") {
		if cfg.Ops < 1 {
			return bench.Config{}, cmdutil.UsageError("--ops %d: must be at least 1", cfg.Ops)
		}
		cfg.Duration = 0
	}
	if cfg.Duration <= 0 && cfg.Ops == 0 && !cfg.LoadOnly {
		return bench.Config{}, cmdutil.UsageError("--duration %v: must be positive", cfg.Duration)
	}
	if p := c.Int("pool"); p < 0 || p > 1024 {
		return bench.Config{}, cmdutil.UsageError("--pool %d: must be between 1 and 1024 (0: the client's default)", p)
	}
	return cfg, cfg.Validate()
}

// bench runs the workload: flags are checked before the ring is touched,
// the table goes to stdout, then the JSON and the plot to their files.
func (e *env) bench(c *cli.Context, args []string) error {
	if err := wantArgs(args, 0, 0, "no arguments"); err != nil {
		return err
	}
	cfg, err := benchConfig(c)
	if err != nil {
		return err
	}
	req, err := requestOf(c)
	if err != nil {
		return err
	}
	opts, err := e.clientOptions(c)
	if err != nil {
		return err
	}
	opts.PoolSize = c.Int("pool")
	cl, err := e.openWith(c, opts)
	if err != nil {
		return err
	}
	defer cl.Close()

	// SIGINT or SIGTERM stops the run; what finished is still reported.
	ctx, stop := signal.NotifyContext(e.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var o bench.Options
	if !c.Bool("no-progress") {
		o.Progress = newProgress(e.stderr).update
	}
	stopProfile, err := startCPUProfile(c.String("cpu-profile"))
	if err != nil {
		return err
	}
	res, err := bench.Run(ctx, bench.ClientTarget(cl, req), cfg, o)
	if perr := stopProfile(); err == nil && perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	res.Workload.SetRequest(req, c.String("c"))
	res.Ring = bench.Ring{
		ServersFile:    c.String("servers"),
		Servers:        len(cl.Servers()),
		TimeoutSeconds: opts.Timeout.Seconds(),
		Sloppy:         !opts.DisableSloppyQuorum,
		ReadRepair:     !opts.DisableReadRepair,
	}
	if err := bench.WriteTable(e.stdout, res); err != nil {
		return fmt.Errorf("writing the table: %w: %w", err, errcode.IO)
	}
	if path := c.String("json"); path != "" {
		if err := writeJSONFile(path, res); err != nil {
			return fmt.Errorf("--json %s: %w: %w", path, err, errcode.IO)
		}
	}
	if path := c.String("plot"); path != "" {
		if err := bench.WritePlotFile(path, res); err != nil {
			return fmt.Errorf("--plot %s: %w: %w", path, err, errcode.IO)
		}
	}
	return res.Failure()
}

// startCPUProfile starts a CPU profile into path ("" for none) and
// returns the function that ends it.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile %s: %w: %w", path, err, errcode.IO)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile %s: %w: %w", path, err, errcode.IO)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpu-profile %s: %w: %w", path, err, errcode.IO)
		}
		return nil
	}, nil
}

func writeJSONFile(path string, res *bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := bench.WriteJSON(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progress draws one progress bar per phase on stderr.
type progress struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	phase string
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

// update follows bench.Options.Progress: a bar of operations for a phase
// with a count, of milliseconds for a timed one; the description carries
// the operations done and their rate either way.
func (p *progress) update(pr bench.Progress) {
	if p.bar == nil || p.phase != pr.Phase {
		max := pr.Total
		if max == 0 {
			max = pr.Duration.Milliseconds()
		}
		p.phase = pr.Phase
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetRenderBlankState(true),
			// Describe and Set64 each draw: the throttle keeps it to one
			// line per update.
			progressbar.OptionThrottle(50*time.Millisecond),
		)
	}
	rate := 0.0
	if s := pr.Elapsed.Seconds(); s > 0 {
		rate = float64(pr.Done) / s
	}
	p.bar.Describe(fmt.Sprintf("%-4s %d ops, %.0f ops/s", pr.Phase, pr.Done, rate))
	if pr.Total > 0 {
		_ = p.bar.Set64(pr.Done)
	} else {
		_ = p.bar.Set64(min(pr.Elapsed, pr.Duration).Milliseconds())
	}
	if pr.Final {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
