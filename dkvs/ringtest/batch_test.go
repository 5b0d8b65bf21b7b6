package ringtest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/ringtest"
	"github.com/dkvs/dkvs/dkvs/server"
)

func batchKeys(prefix string, n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("%s-%03d", prefix, i))
	}
	return keys
}

// TestBatchCalls: the Go client's batch calls on a ring of real servers
// (in one process): per-key results with a value above the servers'
// limit inside the batch, writes acknowledged by all three homes
// surviving a crash (one fsync per batch covers every record of it), a
// server down (sloppy quorum per key, as single calls), deletions, and
// two servers down without sloppy quorum (the keys with two homes down
// fail, the others succeed, in the same batch).
func TestBatchCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := ringtest.New(t, ringtest.Options{Config: func(i int, cfg *server.Config) { cfg.MaxValueSize = 4096 }})
		c := r.Client(nil)
		keys := batchKeys("key", 100)
		var pairs []dkvs.Pair
		want := map[string]string{}
		for _, k := range keys {
			pairs = append(pairs, dkvs.Pair{Key: k, Value: []byte("v1-" + string(k))})
			want[string(k)] = "v1-" + string(k)
		}
		pairs = append(pairs, dkvs.Pair{Key: []byte("big"), Value: []byte(strings.Repeat("x", 5000))})
		errs := c.PutMany(bg, pairs, dkvs.Request{N: 3, W: 3})
		for i, err := range errs[:len(keys)] {
			if err != nil {
				t.Fatalf("put %s: %v", pairs[i].Key, err)
			}
		}
		if err := errs[len(keys)]; !errors.Is(err, dkvs.ErrInvalidArgument) {
			t.Fatalf("put of a value above the servers' limit: %v", err)
		}

		// Acknowledged by all three homes: a crash loses none of them.
		r.Kill(0)
		r.Restart(0)
		if m := missing(t, r, 0, want); len(m) > 0 {
			t.Fatalf("after a crash, server 0 lost %d acknowledged keys, e.g. %q", len(m), m[0])
		}

		res := c.GetMany(bg, append(keys, []byte("absent"), []byte("big")), dkvs.Request{})
		for i, k := range keys {
			if res[i].Err != nil || string(res[i].Value) != want[string(k)] {
				t.Fatalf("get %s: %q %v", k, res[i].Value, res[i].Err)
			}
		}
		for _, g := range res[len(keys):] {
			if !errors.Is(g.Err, dkvs.ErrNotFound) {
				t.Fatalf("absent key: %q %v", g.Value, g.Err)
			}
		}

		// One server down: each key still gets its W=2, with hints.
		r.Kill(1)
		pairs = pairs[:0]
		for _, k := range keys {
			pairs = append(pairs, dkvs.Pair{Key: k, Value: []byte("v2-" + string(k))})
			want[string(k)] = "v2-" + string(k)
		}
		for i, err := range c.PutMany(bg, pairs, dkvs.Request{}) {
			if err != nil {
				t.Fatalf("put %s with a server down: %v", pairs[i].Key, err)
			}
		}
		for i, err := range c.DeleteMany(bg, keys[:30], dkvs.Request{}) {
			if err != nil {
				t.Fatalf("delete %s with a server down: %v", keys[i], err)
			}
			want[string(keys[i])] = ""
		}
		for i, g := range c.GetMany(bg, keys, dkvs.Request{}) {
			w := want[string(keys[i])]
			if (w == "" && !errors.Is(g.Err, dkvs.ErrNotFound)) || (w != "" && (g.Err != nil || string(g.Value) != w)) {
				t.Fatalf("get %s with a server down: %q %v, want %q", keys[i], g.Value, g.Err, w)
			}
		}
		r.Restart(1)
		waitHolds(t, r, 1, want, 2*time.Minute)

		// Two servers down, no sloppy quorum: per key, W=2 of the homes.
		strict := r.Client(&dkvs.Options{DisableSloppyQuorum: true})
		r.Kill(2)
		r.Kill(3)
		down := map[int]bool{2: true, 3: true}
		failing := 0
		pairs = pairs[:0]
		for _, k := range keys {
			pairs = append(pairs, dkvs.Pair{Key: k, Value: []byte("v3")})
		}
		for i, err := range strict.PutMany(bg, pairs, dkvs.Request{}) {
			homesDown := 0
			for _, h := range r.Homes(string(keys[i]), 3) {
				if down[h] {
					homesDown++
				}
			}
			switch {
			case homesDown >= 2 && !errors.Is(err, dkvs.ErrNetwork):
				t.Errorf("put %s, two homes down: %v", keys[i], err)
			case homesDown < 2 && err != nil:
				t.Errorf("put %s, %d home down: %v", keys[i], homesDown, err)
			}
			if homesDown >= 2 {
				failing++
			}
		}
		if failing == 0 || failing == len(keys) {
			t.Fatalf("%d of %d keys have two homes down: the test shows nothing", failing, len(keys))
		}
	})
}
