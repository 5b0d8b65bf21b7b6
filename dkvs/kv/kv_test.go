package kv

import (
	"bytes"
	"math/rand"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestVersionOrder(t *testing.T) {
	cases := []struct {
		a, b Version
		want int
	}{
		{Version{1, 0, 0}, Version{1, 0, 0}, 0},
		{Version{1, 0, 0}, Version{2, 0, 0}, -1},
		{Version{2, 0, 0}, Version{1, 9, 9}, 1},
		{Version{1, 1, 0}, Version{1, 2, 0}, -1},
		{Version{1, 2, 0}, Version{1, 1, 9}, 1},
		{Version{1, 1, 1}, Version{1, 1, 2}, -1},
		{Version{1, 1, 3}, Version{1, 1, 2}, 1},
		{Version{}, Version{0, 0, 1}, -1},
	}
	for _, tc := range cases {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%v vs %v: %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := tc.b.Compare(tc.a); got != -tc.want {
			t.Errorf("%v vs %v: not antisymmetric", tc.b, tc.a)
		}
		if tc.a.Newer(tc.b) != (tc.want > 0) {
			t.Errorf("Newer(%v, %v)", tc.a, tc.b)
		}
	}
}

// TestEncodingOrder checks that the byte encoding sorts like Compare, which
// storage and the Merkle trees rely on.
func TestEncodingOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	vs := make([]Version, 500)
	for i := range vs {
		vs[i] = Version{uint64(rng.Intn(4)) << uint(rng.Intn(60)), uint32(rng.Intn(3)), uint64(rng.Intn(3)) << 62}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Compare(vs[j]) < 0 })
	for i := 1; i < len(vs); i++ {
		a, b := vs[i-1].AppendBinary(nil), vs[i].AppendBinary(nil)
		if bytes.Compare(a, b) > 0 {
			t.Fatalf("%v encodes after %v", vs[i-1], vs[i])
		}
		got, err := DecodeVersion(b)
		if err != nil || got != vs[i] {
			t.Fatalf("round trip %v: %v %v", vs[i], got, err)
		}
	}
	if _, err := DecodeVersion(make([]byte, 19)); err != ErrShortVersion {
		t.Fatalf("short: %v", err)
	}
}

func TestClockMonotonic(t *testing.T) {
	now := time.UnixMilli(1000)
	c := NewClock(7, func() time.Time { return now })
	v1 := c.Now()
	v2 := c.Now()
	if !v2.Newer(v1) || v1.Wall != 1000 || v2.Logical != 1 || v2.Writer != 7 {
		t.Fatalf("same ms: %v then %v", v1, v2)
	}
	now = time.UnixMilli(900) // the physical clock steps back
	v3 := c.Now()
	if !v3.Newer(v2) {
		t.Fatalf("clock went back: %v after %v", v3, v2)
	}
	now = time.UnixMilli(2000)
	v4 := c.Now()
	if v4.Wall != 2000 || v4.Logical != 0 {
		t.Fatalf("physical advance: %v", v4)
	}
}

func TestClockObserve(t *testing.T) {
	now := time.UnixMilli(1000)
	c := NewClock(1, func() time.Time { return now })
	future := Version{Wall: 5000, Logical: 3, Writer: 99}
	c.Observe(future)
	v := c.Now()
	if !v.Newer(future) {
		t.Fatalf("%v not after observed %v", v, future)
	}
	c.Observe(Version{Wall: 10}) // older: no effect
	if w := c.Now(); !w.Newer(v) || w.Wall != 5000 {
		t.Fatalf("observe older moved the clock: %v", w)
	}
	if a := c.After(Version{Wall: 6000}); a.Wall != 6000 || a.Logical != 1 {
		t.Fatalf("After: %v", a)
	}
}

func TestClockLogicalWrap(t *testing.T) {
	c := NewClock(1, func() time.Time { return time.UnixMilli(10) })
	c.Observe(Version{Wall: 10, Logical: ^uint32(0)})
	v := c.Now()
	if v.Wall != 11 || v.Logical != 0 {
		t.Fatalf("wrap: %v", v)
	}
}

func TestClockConcurrent(t *testing.T) {
	c := NewClock(1, nil)
	var mu sync.Mutex
	seen := map[Version]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				v := c.Now()
				mu.Lock()
				if seen[v] {
					t.Errorf("duplicate %v", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestRecordLive(t *testing.T) {
	if (Record{}).Live() {
		t.Fatal("zero record is live")
	}
	if (Record{Version: Version{Wall: 1}, Tombstone: true}).Live() {
		t.Fatal("tombstone is live")
	}
	if !(Record{Version: Version{Wall: 1}}).Live() {
		t.Fatal("empty value is not live")
	}
}
