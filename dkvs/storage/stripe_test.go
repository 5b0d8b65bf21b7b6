package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// TestHeaderCacheMatchesModel runs a random mix of applies, tombstone
// purges, hints and hint deletions against a plain model of newest-wins,
// with header caches from none to larger than the key set (so entries are
// evicted, refilled from Pebble, and cached as absent), and checks every
// answer and, at the end, what Pebble holds and what the counters say.
func TestHeaderCacheMatchesModel(t *testing.T) {
	for _, perStripe := range []int{0, 1, 3, 1000} {
		t.Run(fmt.Sprintf("perStripe=%d", perStripe), func(t *testing.T) {
			d := openMem(t)
			d.perCache = perStripe
			rng := rand.New(rand.NewPCG(1, uint64(perStripe)))
			model := map[string]kv.Record{}
			hints := map[string]kv.Version{}
			const keys = 2000 // several keys per stripe, so small caches evict
			for i := 0; i < 30000; i++ {
				key := fmt.Sprintf("k%d", rng.IntN(keys))
				wall := uint64(rng.IntN(50) + 1)
				switch op := rng.IntN(10); {
				case op < 6:
					r := rec(wall, fmt.Sprint(i))
					if op == 5 {
						r = tomb(wall)
					}
					old, had := model[key]
					want := !had || r.Version.Newer(old.Version)
					res, err := d.Apply([]byte(key), r)
					if err != nil {
						t.Fatal(err)
					}
					if res.Applied != want {
						t.Fatalf("op %d: apply %s v%d: applied %v, want %v (held %v)", i, key, wall, res.Applied, want, old.Version)
					}
					if want {
						model[key] = r
					}
				case op < 8:
					old, had := model[key]
					want := had && old.Tombstone && old.Version == v(wall)
					if rng.IntN(2) == 0 && had {
						wall, want = old.Version.Wall, old.Tombstone
					}
					got, err := d.PurgeTombstone([]byte(key), v(wall))
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Fatalf("op %d: purge %s v%d: %v, want %v", i, key, wall, got, want)
					}
					if want {
						delete(model, key)
					}
				case op < 9:
					old, had := hints[key]
					res, err := d.ApplyHint("10.0.0.1:1", []byte(key), rec(wall, "h"))
					if err != nil {
						t.Fatal(err)
					}
					if want := !had || v(wall).Newer(old); res.Applied != want {
						t.Fatalf("op %d: hint %s v%d: applied %v, want %v", i, key, wall, res.Applied, want)
					} else if want {
						hints[key] = v(wall)
					}
				default:
					old, had := hints[key]
					if had && rng.IntN(2) == 0 {
						wall = old.Wall
					}
					got, err := d.DeleteHint("10.0.0.1:1", []byte(key), v(wall))
					if err != nil {
						t.Fatal(err)
					}
					if want := had && old == v(wall); got != want {
						t.Fatalf("op %d: delete hint %s v%d: %v, want %v", i, key, wall, got, want)
					} else if want {
						delete(hints, key)
					}
				}
			}
			var live, tombs int64
			for key, want := range model {
				got, found, err := d.Get([]byte(key))
				if err != nil || !found || got.Version != want.Version || got.Tombstone != want.Tombstone || string(got.Value) != string(want.Value) {
					t.Fatalf("Get(%s) = %+v %v %v, want %+v", key, got, found, err, want)
				}
				if want.Tombstone {
					tombs++
				} else {
					live++
				}
			}
			if st := d.Stats(); st.LiveKeys != live || st.Tombstones != tombs {
				t.Fatalf("stats %+v, want %d live %d tombstones", st, live, tombs)
			}
			if n := d.HintCounts()["10.0.0.1:1"]; n != int64(len(hints)) {
				t.Fatalf("%d hints counted, want %d", n, len(hints))
			}
		})
	}
}

// TestHeaderCacheBounded checks that a stripe never holds more entries
// than its share and that long keys are not cached.
func TestHeaderCacheBounded(t *testing.T) {
	d := openMem(t)
	d.perCache = 2
	for i := 0; i < 5000; i++ {
		if _, err := d.Apply([]byte(fmt.Sprint(i)), rec(1, "x")); err != nil {
			t.Fatal(err)
		}
	}
	long := make([]byte, maxCachedKey+1)
	if _, err := d.Apply(long, rec(1, "x")); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range d.stripes {
		st := &d.stripes[i]
		if len(st.slots) > 2 {
			t.Fatalf("stripe %d has %d slots, limit 2", i, len(st.slots))
		}
		for _, s := range st.slots {
			if s.key != nil {
				total++
			}
			if len(s.key) > maxCachedKey {
				t.Fatalf("a %d-byte key was cached", len(s.key))
			}
		}
	}
	if total == 0 {
		t.Fatal("nothing cached")
	}
}
