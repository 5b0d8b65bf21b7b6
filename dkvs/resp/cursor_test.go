package resp

import (
	"testing"
	"time"
)

func TestCursorTable(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := newCursorTable(3, time.Minute, func() time.Time { return now })
	a := tb.put([]byte("a"))
	b := tb.put([]byte("b"))
	if a == 0 || b == 0 || a == b {
		t.Fatalf("ids %d %d", a, b)
	}
	if s, ok := tb.get(a); !ok || string(s) != "a" {
		t.Fatalf("get(a) = %q, %v", s, ok)
	}
	// Reading does not consume: a client may retry a page.
	if _, ok := tb.get(a); !ok {
		t.Fatal("cursor consumed by get")
	}
	c := tb.put([]byte("c"))
	d := tb.put([]byte("d")) // evicts a, the oldest
	if _, ok := tb.get(a); ok {
		t.Error("oldest cursor not evicted")
	}
	for _, id := range []uint64{b, c, d} {
		if _, ok := tb.get(id); !ok {
			t.Errorf("cursor %d lost", id)
		}
	}
	if n := tb.len(); n != 3 {
		t.Errorf("%d cursors kept, want 3", n)
	}
	now = now.Add(time.Minute)
	if _, ok := tb.get(d); ok {
		t.Error("expired cursor still valid")
	}
	tb.put([]byte("e")) // drops the expired ones
	if n := tb.len(); n != 1 {
		t.Errorf("%d cursors kept after expiry, want 1", n)
	}
	if _, ok := tb.get(12345); ok {
		t.Error("unknown cursor valid")
	}
}

// TestCursorIDsWrap: ids skip 0, which means "start" and "end".
func TestCursorIDsWrap(t *testing.T) {
	tb := newCursorTable(10, time.Minute, time.Now)
	tb.next = ^uint64(0) - 1
	ids := []uint64{tb.put(nil), tb.put(nil), tb.put(nil)}
	if ids[0] != ^uint64(0) || ids[1] != 1 || ids[2] != 2 {
		t.Fatalf("ids %v", ids)
	}
}
