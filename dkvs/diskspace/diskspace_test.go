package diskspace

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestParseMinimum(t *testing.T) {
	cases := []struct {
		in    string
		bytes uint64
		pct   float64
		bad   bool
	}{
		{"0", 0, 0, false},
		{"268435456", 256 << 20, 0, false},
		{"256MiB", 256 << 20, 0, false},
		{"256 MiB", 256 << 20, 0, false},
		{"256M", 256 << 20, 0, false},
		{"1GiB", 1 << 30, 0, false},
		{"2g", 2 << 30, 0, false},
		{"1024KiB", 1 << 20, 0, false},
		{"512B", 512, 0, false},
		{"5%", 0, 5, false},
		{"0.5 %", 0, 0.5, false},
		{"", 0, 0, true},
		{"-1", 0, 0, true},
		{"100%", 0, 0, true},
		{"12QiB", 0, 0, true},
		{"99999999999TiB", 0, 0, true},
	}
	for _, c := range cases {
		m, err := ParseMinimum(c.in)
		if (err != nil) != c.bad || (!c.bad && (m.Bytes != c.bytes || m.Percent != c.pct)) {
			t.Errorf("%q: %+v %v", c.in, m, err)
		}
		if err == nil {
			if back, err := ParseMinimum(m.String()); err != nil || back.Of(1<<40) != m.Of(1<<40) {
				t.Errorf("%q: %q does not read back: %v", c.in, m.String(), err)
			}
		}
	}
	if got := (Minimum{Percent: 10}).Of(1000); got != 100 {
		t.Errorf("10%% of 1000: %d", got)
	}
}

type fakeStater struct {
	mu  sync.Mutex
	u   Usage
	err error
}

func (f *fakeStater) Usage(string) (Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.u, f.err
}

func (f *fakeStater) set(free uint64) {
	f.mu.Lock()
	f.u.Free = free
	f.mu.Unlock()
}

// TestMonitor: low below the minimum, back above it with a margin, a
// change reported once; an unreadable file system is never low.
func TestMonitor(t *testing.T) {
	fs := &fakeStater{u: Usage{Free: 500, Total: 1000}}
	var changes []string
	m := New(Options{Stater: fs, Min: Minimum{Bytes: 160}, OnChange: func(low bool, detail string) {
		changes = append(changes, map[bool]string{true: "low", false: "ok"}[low]+": "+detail)
	}})
	steps := []struct {
		free uint64
		low  bool
	}{{500, false}, {159, true}, {100, true}, {165, true}, {170, false}, {165, false}, {150, true}}
	for i, s := range steps {
		fs.set(s.free)
		m.Check()
		if _, _, low, ok := m.Last(); !ok || low != s.low {
			t.Fatalf("step %d (free %d): low %v ok %v", i, s.free, low, ok)
		}
	}
	if len(changes) != 3 || !strings.HasPrefix(changes[0], "low: 159 B free of 1000 B, minimum 160 B") {
		t.Fatalf("changes %q", changes)
	}
	fs.mu.Lock()
	fs.err = errors.New("unsupported")
	fs.mu.Unlock()
	m.Check()
	if _, _, _, ok := m.Last(); ok || m.Describe() != "free space unknown" {
		t.Fatal("an unreadable file system is known")
	}
	zero := New(Options{Stater: fs})
	fs.mu.Lock()
	fs.err = nil
	fs.mu.Unlock()
	fs.set(0)
	zero.Check()
	if _, _, low, _ := zero.Last(); low {
		t.Fatal("no minimum, yet low")
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 256 << 20: "256 MiB", 3 << 40: "3 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
}
