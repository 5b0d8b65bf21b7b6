package storage

import (
	"testing"
)

// TestApplyEach: each record of a batch has its own outcome: older
// versions are kept, a full disk refuses values but takes deletions, and
// what was stored reads back.
func TestApplyEach(t *testing.T) {
	d := openMem(t)
	if _, err := d.Apply([]byte("old"), rec(10, "kept")); err != nil {
		t.Fatal(err)
	}
	out := d.ApplyEach([]KeyRecord{
		{Key: []byte("a"), Record: rec(1, "va")},
		{Key: []byte("old"), Record: rec(5, "older")},
		{Key: []byte("b"), Record: tomb(2)},
	})
	want := []struct {
		applied bool
		current uint64
	}{{true, 1}, {false, 10}, {true, 2}}
	for i, w := range want {
		if out[i].Err != nil || out[i].Result.Applied != w.applied || out[i].Result.Current != v(w.current) {
			t.Errorf("item %d: %+v, want applied %v at %d", i, out[i], w.applied, w.current)
		}
	}
	if r, found, err := d.Get([]byte("old")); err != nil || !found || string(r.Value) != "kept" {
		t.Fatalf("old: %v %v %v", r, found, err)
	}

	// A key twice in one batch: each write is judged against the one
	// before it.
	out = d.ApplyEach([]KeyRecord{
		{Key: []byte("dup"), Record: rec(5, "first")},
		{Key: []byte("x"), Record: rec(5, "x")},
		{Key: []byte("dup"), Record: rec(7, "second")},
		{Key: []byte("dup"), Record: rec(6, "older than second")},
	})
	for i, w := range []bool{true, true, true, false} {
		if out[i].Err != nil || out[i].Result.Applied != w {
			t.Errorf("dup item %d: %+v, want applied %v", i, out[i], w)
		}
	}
	if r, _, err := d.Get([]byte("dup")); err != nil || string(r.Value) != "second" {
		t.Fatalf("dup: %q %v", r.Value, err)
	}
	if st := d.Stats(); st.LiveKeys != 4 {
		t.Errorf("%d live keys, want 4 (a, old, dup, x)", st.LiveKeys)
	}

	d.SetSpace(0, "no space")
	out = d.ApplyEach([]KeyRecord{
		{Key: []byte("c"), Record: rec(3, "refused")},
		{Key: []byte("a"), Record: tomb(4)},
	})
	if _, ok := Refused(out[0].Err); !ok {
		t.Errorf("value while full: %v", out[0].Err)
	}
	if out[1].Err != nil || !out[1].Result.Applied {
		t.Errorf("deletion while full: %+v", out[1])
	}
	d.Close()
	for _, o := range d.ApplyEach([]KeyRecord{{Key: []byte("d"), Record: rec(5, "v")}}) {
		if o.Err == nil {
			t.Error("applied after close")
		}
	}
}
