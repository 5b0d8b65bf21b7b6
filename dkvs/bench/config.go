// Package bench is the workload generator and reporter behind
// "dkvs-client bench": it runs gets, puts and deletes against a ring from
// many goroutines sharing one client, records every latency in HDR
// histograms, and renders the result as a text table, as JSON and as a
// percentile plot.
//
// A run has up to two phases. The load (preload) phase writes every key
// once, so that later gets find something; the measured phase then runs
// either a fixed number of operations or for a fixed time, choosing for
// each operation a kind (get, put or delete, by the configured fractions)
// and a key (uniform, hotspot or zipf). Each worker has its own random
// source derived from the seed, so a run with a fixed number of operations
// issues the same operations on the same keys every time, whatever the
// scheduling.
//
// Outcomes: an operation answered by the ring is "ok", or "not found" for a
// get of an absent or deleted key; both are answers, counted in throughput
// and latency. Anything else is an error, counted by kind (see ErrorKind)
// and left out of the latency histograms, whose times would only measure
// the client's deadline.
package bench

import (
	"fmt"
	"math"
	"time"

	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/limits"
)

// Distribution says how a workload picks its keys.
type Distribution string

// Key distributions.
const (
	// Uniform picks every key with the same probability.
	Uniform Distribution = "uniform"
	// Hotspot sends HotFraction of the operations to the first HotKeys
	// keys and the rest, uniformly, to the others.
	Hotspot Distribution = "hotspot"
	// Zipf picks key k with a probability proportional to 1/(1+k)^s
	// (math/rand/v2's Zipf, s = Config.ZipfS): key 0 is the hottest.
	Zipf Distribution = "zipf"
)

// Hotspot parameters: 90% of the operations on 5 keys.
const (
	HotKeys     = 5
	HotFraction = 0.9
)

// Limits of a workload, checked by Validate. They keep a typo from asking
// for something the machine cannot hold (a key count is free: keys are
// formatted on the fly; workers cost a goroutine each).
const (
	MaxConcurrency = 10000
	MaxKeys        = 1_000_000_000
	// MaxValueSize is the client's default limit (16 MiB).
	MaxValueSize = limits.DefaultMaxValueSize
	// DefaultZipfS is the zipf exponent when none is given. math/rand/v2
	// needs s > 1; 1.1 is close to YCSB's 0.99 while meeting that.
	DefaultZipfS = 1.1
)

// Config is a workload.
type Config struct {
	// Ops is the number of operations of the measured phase; zero means
	// the phase runs for Duration instead.
	Ops int64
	// Duration is how long the measured phase runs when Ops is zero.
	Duration time.Duration
	// Concurrency is the number of operations in flight: worker
	// goroutines sharing one client.
	Concurrency int
	// Keys is the number of distinct keys, KeyPrefix followed by a
	// zero-padded index from 0 to Keys-1.
	Keys int
	// KeyPrefix starts every key, so that workloads on one ring can keep
	// apart.
	KeyPrefix string
	// ValueSize is the size in bytes of every value written. Values are
	// random bytes, which the servers cannot compress.
	ValueSize int
	// WriteFraction and DeleteFraction are the shares of puts and deletes
	// among the operations; the rest are gets.
	WriteFraction, DeleteFraction float64
	// Distribution picks the keys; ZipfS is the exponent of Zipf.
	Distribution Distribution
	ZipfS        float64
	// Preload writes every key once before the measured phase.
	Preload bool
	// LoadOnly stops after the preload: the load is the measurement.
	LoadOnly bool
	// Seed makes the operations reproducible.
	Seed uint64
}

// DefaultConfig returns the defaults of "dkvs-client bench": 10 s of half
// gets and half puts, 16 workers, 1000 keys of 100-byte values, uniform,
// with a preload.
func DefaultConfig() Config {
	return Config{
		Duration:      10 * time.Second,
		Concurrency:   16,
		Keys:          1000,
		KeyPrefix:     "bench-",
		ValueSize:     100,
		WriteFraction: 0.5,
		Distribution:  Uniform,
		ZipfS:         DefaultZipfS,
		Preload:       true,
		Seed:          1,
	}
}

// ParseDistribution parses uniform, hotspot or zipf.
func ParseDistribution(s string) (Distribution, error) {
	switch d := Distribution(s); d {
	case Uniform, Hotspot, Zipf:
		return d, nil
	}
	return "", cmdutil.UsageError("--distribution %q: want uniform, hotspot or zipf", s)
}

// GetFraction is the share of gets: what puts and deletes leave.
func (c Config) GetFraction() float64 {
	return math.Max(0, 1-c.WriteFraction-c.DeleteFraction)
}

// Validate checks the workload. Every error wraps errcode.InvalidCommand:
// a bad workload is a bad command line.
func (c Config) Validate() error {
	bad := cmdutil.UsageError
	switch {
	case c.Concurrency < 1:
		return bad("--concurrency %d: must be at least 1", c.Concurrency)
	case c.Concurrency > MaxConcurrency:
		return bad("--concurrency %d: must be at most %d", c.Concurrency, MaxConcurrency)
	case c.Ops < 0:
		return bad("--ops %d: must not be negative", c.Ops)
	case c.Duration < 0:
		return bad("--duration %v: must not be negative", c.Duration)
	case !c.LoadOnly && c.Ops == 0 && c.Duration == 0:
		return bad("give a number of operations (--ops) or a duration (--duration)")
	case c.Keys < 1:
		return bad("--keys %d: must be at least 1", c.Keys)
	case c.Keys > MaxKeys:
		return bad("--keys %d: must be at most %d", c.Keys, MaxKeys)
	case c.ValueSize < 0:
		return bad("--value-size %d: must not be negative", c.ValueSize)
	case c.ValueSize > MaxValueSize:
		return bad("--value-size %d: must be at most %d (16 MiB)", c.ValueSize, MaxValueSize)
	}
	if err := fraction("--write-fraction", c.WriteFraction); err != nil {
		return err
	}
	if err := fraction("--delete-fraction", c.DeleteFraction); err != nil {
		return err
	}
	// A small tolerance lets 0.7 + 0.3 through despite rounding.
	if s := c.WriteFraction + c.DeleteFraction; s > 1+1e-9 {
		return bad("--write-fraction %g and --delete-fraction %g add up to %g: must be at most 1", c.WriteFraction, c.DeleteFraction, s)
	}
	if _, err := ParseDistribution(string(c.Distribution)); err != nil {
		return err
	}
	if !(c.ZipfS > 1) || math.IsInf(c.ZipfS, 0) {
		return bad("--zipf-s %g: must be a number above 1", c.ZipfS)
	}
	if c.LoadOnly && !c.Preload {
		return bad("--load-only measures the preload: it cannot go with --no-preload")
	}
	if len(c.KeyPrefix)+20 > limits.DefaultMaxKeySize {
		return bad("--key-prefix of %d bytes: keys would exceed 64 KiB", len(c.KeyPrefix))
	}
	return nil
}

func fraction(name string, f float64) error {
	if !(f >= 0 && f <= 1) { // also refuses NaN
		return cmdutil.UsageError("%s %g: must be between 0 and 1", name, f)
	}
	return nil
}

// String describes the workload on one line.
func (c Config) String() string {
	var run string
	switch {
	case c.LoadOnly:
		run = "load only"
	case c.Ops > 0:
		run = fmt.Sprintf("%d ops", c.Ops)
	default:
		run = c.Duration.String()
	}
	dist := string(c.Distribution)
	if c.Distribution == Zipf {
		dist = fmt.Sprintf("zipf s=%g", c.ZipfS)
	}
	return fmt.Sprintf("%s, %d workers, %d keys (%s), %d-byte values, %.0f%% get %.0f%% put %.0f%% delete, seed %d",
		run, c.Concurrency, c.Keys, dist, c.ValueSize,
		100*c.GetFraction(), 100*c.WriteFraction, 100*c.DeleteFraction, c.Seed)
}
