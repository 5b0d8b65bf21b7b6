package bench

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

func TestValidate(t *testing.T) {
	with := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	cases := []struct {
		name string
		c    Config
		want string // "" means valid; else a piece of the message
	}{
		{"defaults", DefaultConfig(), ""},
		{"ops instead of duration", with(func(c *Config) { c.Ops, c.Duration = 10, 0 }), ""},
		{"load only", with(func(c *Config) { c.LoadOnly, c.Duration = true, 0 }), ""},
		{"all writes", with(func(c *Config) { c.WriteFraction = 1 }), ""},
		{"writes and deletes fill the mix", with(func(c *Config) { c.WriteFraction, c.DeleteFraction = 0.7, 0.3 }), ""},
		{"empty values", with(func(c *Config) { c.ValueSize = 0 }), ""},
		{"zero concurrency", with(func(c *Config) { c.Concurrency = 0 }), "--concurrency 0"},
		{"negative concurrency", with(func(c *Config) { c.Concurrency = -4 }), "--concurrency -4"},
		{"huge concurrency", with(func(c *Config) { c.Concurrency = MaxConcurrency + 1 }), "--concurrency"},
		{"negative ops", with(func(c *Config) { c.Ops = -1 }), "--ops -1"},
		{"negative duration", with(func(c *Config) { c.Duration = -time.Second }), "--duration"},
		{"neither ops nor duration", with(func(c *Config) { c.Duration = 0 }), "--ops"},
		{"zero keys", with(func(c *Config) { c.Keys = 0 }), "--keys 0"},
		{"negative value size", with(func(c *Config) { c.ValueSize = -1 }), "--value-size -1"},
		{"value above 16 MiB", with(func(c *Config) { c.ValueSize = MaxValueSize + 1 }), "--value-size"},
		{"write fraction above 1", with(func(c *Config) { c.WriteFraction = 1.5 }), "--write-fraction 1.5"},
		{"negative write fraction", with(func(c *Config) { c.WriteFraction = -0.1 }), "--write-fraction"},
		{"NaN write fraction", with(func(c *Config) { c.WriteFraction = math.NaN() }), "--write-fraction"},
		{"delete fraction above 1", with(func(c *Config) { c.DeleteFraction = 2 }), "--delete-fraction 2"},
		{"fractions above 1 together", with(func(c *Config) { c.WriteFraction, c.DeleteFraction = 0.6, 0.5 }), "add up"},
		{"unknown distribution", with(func(c *Config) { c.Distribution = "gaussian" }), `"gaussian"`},
		{"zipf exponent 1", with(func(c *Config) { c.Distribution, c.ZipfS = Zipf, 1 }), "--zipf-s"},
		{"load only without preload", with(func(c *Config) { c.LoadOnly, c.Preload = true, false }), "--load-only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error about %q", tc.want)
			}
			if !errors.Is(err, errcode.InvalidCommand) {
				t.Errorf("error %v is not ERR_INVALID_COMMAND", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestParseDistribution(t *testing.T) {
	for _, s := range []string{"uniform", "hotspot", "zipf"} {
		if d, err := ParseDistribution(s); err != nil || string(d) != s {
			t.Errorf("ParseDistribution(%q) = %q, %v", s, d, err)
		}
	}
	for _, s := range []string{"", "Uniform", "normal"} {
		if _, err := ParseDistribution(s); !errors.Is(err, errcode.InvalidCommand) {
			t.Errorf("ParseDistribution(%q): %v, want ERR_INVALID_COMMAND", s, err)
		}
	}
}

// draw returns how often each key came up in n draws.
func draw(c Config, n int) []int {
	g := NewGenerator(c, 0)
	freq := make([]int, c.Keys)
	for range n {
		k := g.Key()
		if k < 0 || k >= c.Keys {
			panic("key out of range")
		}
		freq[k]++
	}
	return freq
}

func TestDistributions(t *testing.T) {
	const n = 200_000
	base := DefaultConfig()
	t.Run("uniform spreads evenly", func(t *testing.T) {
		c := base
		c.Keys = 100
		freq := draw(c, n)
		for k, f := range freq {
			// Expected 2000 per key; a binomial's standard deviation is
			// about 44, so 15% either way is over 6 sigma.
			if f < 1700 || f > 2300 {
				t.Errorf("key %d drawn %d times of %d, want about %d", k, f, n, n/c.Keys)
			}
		}
	})
	t.Run("hotspot puts 90% on 5 keys", func(t *testing.T) {
		c := base
		c.Distribution = Hotspot
		freq := draw(c, n)
		hot := 0
		for k := range HotKeys {
			hot += freq[k]
		}
		if share := float64(hot) / n; math.Abs(share-HotFraction) > 0.01 {
			t.Errorf("hot keys got %.3f of the operations, want %.2f", share, HotFraction)
		}
		cold := 0
		for _, f := range freq[HotKeys:] {
			if f > 0 {
				cold++
			}
		}
		if cold < 950 { // 20,000 draws over 995 keys: each is drawn ~20 times
			t.Errorf("only %d of the %d cold keys were drawn", cold, c.Keys-HotKeys)
		}
	})
	t.Run("hotspot on fewer keys than the hot set", func(t *testing.T) {
		c := base
		c.Distribution, c.Keys = Hotspot, 3
		for k, f := range draw(c, 30_000) {
			if f < 9000 || f > 11000 {
				t.Errorf("key %d drawn %d times of 30000", k, f)
			}
		}
	})
	t.Run("zipf is skewed", func(t *testing.T) {
		c := base
		c.Distribution = Zipf
		freq := draw(c, n)
		// s=1.1 over 1000 keys: key 0 has about 18% of the draws.
		if share := float64(freq[0]) / n; share < 0.12 || share > 0.25 {
			t.Errorf("key 0 got %.3f of the draws, want about 0.18", share)
		}
		if !(freq[0] > freq[1] && freq[1] > freq[10] && freq[10] > freq[100] && freq[100] > freq[900]) {
			t.Errorf("frequencies not decreasing with rank: %d %d %d %d %d", freq[0], freq[1], freq[10], freq[100], freq[900])
		}
		top := 0
		for _, f := range freq[:10] {
			top += f
		}
		if share := float64(top) / n; share < 0.3 {
			t.Errorf("the top 1%% of keys got %.3f of the draws, want a skew above 0.3", share)
		}
	})
	t.Run("zipf on one key", func(t *testing.T) {
		c := base
		c.Distribution, c.Keys = Zipf, 1
		if freq := draw(c, 100); freq[0] != 100 {
			t.Errorf("single key drawn %d times of 100", freq[0])
		}
	})
}

func TestMix(t *testing.T) {
	cases := []struct {
		write, del float64
	}{
		{0.5, 0}, {0.3, 0.2}, {1, 0}, {0, 1}, {0, 0}, {0.05, 0.05},
	}
	const n = 100_000
	for _, tc := range cases {
		c := DefaultConfig()
		c.WriteFraction, c.DeleteFraction = tc.write, tc.del
		g := NewGenerator(c, 3)
		var got [numOpTypes]int
		for range n {
			got[g.Op()]++
		}
		want := [numOpTypes]float64{Get: c.GetFraction(), Put: tc.write, Delete: tc.del}
		for op := range numOpTypes {
			share := float64(got[op]) / n
			if math.Abs(share-want[op]) > 0.01 || (want[op] == 0 && got[op] != 0) {
				t.Errorf("write %g delete %g: %s share %.3f, want %.3f", tc.write, tc.del, op, share, want[op])
			}
		}
	}
}

func TestGeneratorReproducible(t *testing.T) {
	c := DefaultConfig()
	c.Distribution, c.DeleteFraction = Zipf, 0.1
	seq := func(c Config, worker int) []int {
		g := NewGenerator(c, worker)
		var s []int
		for range 200 {
			s = append(s, int(g.Op()), g.Key())
		}
		return s
	}
	if !slices.Equal(seq(c, 2), seq(c, 2)) {
		t.Fatal("same seed and worker gave different sequences")
	}
	if slices.Equal(seq(c, 2), seq(c, 3)) {
		t.Fatal("two workers drew the same sequence")
	}
	other := c
	other.Seed++
	if slices.Equal(seq(c, 2), seq(other, 2)) {
		t.Fatal("two seeds drew the same sequence")
	}
}

func TestKeys(t *testing.T) {
	cases := []struct {
		keys   int
		prefix string
		i      int
		want   string
	}{
		{1000, "bench-", 0, "bench-000"},
		{1000, "bench-", 999, "bench-999"},
		{1001, "bench-", 7, "bench-0007"},
		{1, "k", 0, "k0"},
		{1_000_000, "", 123, "000123"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		c.Keys, c.KeyPrefix = tc.keys, tc.prefix
		if got := string(NewKeys(c).Key(tc.i)); got != tc.want {
			t.Errorf("%d keys, prefix %q, key %d: %q, want %q", tc.keys, tc.prefix, tc.i, got, tc.want)
		}
	}
	k := NewKeys(DefaultConfig())
	a, b := k.Key(1), k.Key(1)
	a[0] = 'X'
	if b[0] == 'X' {
		t.Fatal("two keys share memory")
	}
}

func TestValue(t *testing.T) {
	c := DefaultConfig()
	c.ValueSize = 1001
	v := Value(c)
	if len(v) != 1001 || !slices.Equal(v, Value(c)) {
		t.Fatalf("value of %d bytes, or not reproducible", len(v))
	}
	zeros := 0
	for _, b := range v {
		if b == 0 {
			zeros++
		}
	}
	if zeros > 30 { // random bytes: about 4 of 1001 are zero
		t.Fatalf("%d zero bytes in a random value", zeros)
	}
}
