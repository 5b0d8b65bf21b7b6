package resp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/redis/go-redis/v9"
)

// batchingFake is a fake backend that takes batches: it applies each
// batch's ops in order and records the batches' sizes. Keys in fail fail
// their operations with that error.
type batchingFake struct {
	*fakeBackend
	mu      sync.Mutex
	batches []int
	fail    map[string]error
}

var _ Batcher = (*batchingFake)(nil)

func (b *batchingFake) Batch(ctx context.Context, ops []Op) {
	b.mu.Lock()
	b.batches = append(b.batches, len(ops))
	b.mu.Unlock()
	for i := range ops {
		op := &ops[i]
		if err := b.fail[string(op.Key)]; err != nil {
			op.Err = err
			continue
		}
		switch op.Kind {
		case OpGet:
			op.Value, op.Err = b.Get(ctx, op.Key)
		case OpPut:
			op.Err = b.Put(ctx, op.Key, op.Value)
		case OpDelete:
			op.Err = b.Delete(ctx, op.Key)
		}
	}
}

func (b *batchingFake) stats() (batches, ops int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.batches {
		ops += n
	}
	return len(b.batches), ops
}

// TestPipelineBatches: a pipeline of 1,000 commands of every kind is
// answered in order, each as alone, while its single-key operations run
// in far fewer batches than commands; a write of a key pipelined after a
// write of the same key still wins, a read after a write sees it, and one
// key failing inside a batch fails its command only.
func TestPipelineBatches(t *testing.T) {
	f := &batchingFake{fakeBackend: newFake(), fail: map[string]error{
		"bad": fmt.Errorf("replicas down: %w", errcode.Network),
	}}
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)

	pipe := rdb.Pipeline()
	type check struct {
		cmd  redis.Cmder
		want string
	}
	var checks []check
	add := func(c redis.Cmder, want string) { checks = append(checks, check{c, want}) }
	for i := 0; len(checks) < 1000; i++ {
		k := fmt.Sprintf("k%03d", i)
		switch i % 6 {
		case 0:
			add(pipe.Set(ctx, k, "v"+k, 0), "OK")
			add(pipe.Get(ctx, k), "v"+k) // after its write
		case 1:
			add(pipe.MSet(ctx, k+"a", "1", k+"b", "2"), "OK")
			add(pipe.MGet(ctx, k+"a", "nope", k+"b"), "[1 <nil> 2]")
		case 2:
			add(pipe.Set(ctx, "same", k, 0), "OK")
			add(pipe.Exists(ctx, "same", "nope", "same"), "2")
		case 3:
			add(pipe.Set(ctx, "bad", "x", 0), "ERR replicas down: "+errcode.Network.Error())
			add(pipe.Echo(ctx, k), k)
		case 4:
			add(pipe.Get(ctx, "bad"), "ERR replicas down: "+errcode.Network.Error())
			add(pipe.Set(ctx, k, "gone", 0), "OK")
			add(pipe.Del(ctx, k, "nope"), "1")
		case 5:
			add(pipe.Get(ctx, fmt.Sprintf("k%03d", i-5)), fmt.Sprintf("vk%03d", i-5))
		}
	}
	add(pipe.Get(ctx, "same"), "") // the last write of "same", filled below
	for i := len(checks) - 2; i >= 0; i-- {
		if c, ok := checks[i].cmd.(*redis.StatusCmd); ok && len(c.Args()) == 3 && c.Args()[1] == "same" {
			checks[len(checks)-1].want = c.Args()[2].(string)
			break
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !strings.Contains(err.Error(), "replicas down") {
		t.Fatal(err)
	}
	for i, c := range checks {
		var got string
		switch c := c.cmd.(type) {
		case *redis.StatusCmd:
			got = c.Val()
		case *redis.StringCmd:
			got = c.Val()
		case *redis.IntCmd:
			got = fmt.Sprint(c.Val())
		case *redis.SliceCmd:
			got = fmt.Sprint(c.Val())
		}
		if err := c.cmd.Err(); err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("command %d %v: %q, want %q", i, c.cmd.Args(), got, c.want)
		}
	}
	batches, ops := f.stats()
	t.Logf("%d commands, %d backend operations in %d batches", len(checks), ops, batches)
	if batches >= len(checks) {
		t.Errorf("%d batches for %d pipelined commands: the pipeline was not grouped", batches, len(checks))
	}

	// Writes of 500 keys, then reads of them: two groups, each split only
	// where the connection's reads happened to end.
	before, _ := f.stats()
	pipe = rdb.Pipeline()
	var gets []*redis.StringCmd
	for i := 0; i < 500; i++ {
		pipe.Set(ctx, fmt.Sprintf("w%03d", i), fmt.Sprint(i), 0)
	}
	for i := 0; i < 500; i++ {
		gets = append(gets, pipe.Get(ctx, fmt.Sprintf("w%03d", i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, g := range gets {
		if v, err := g.Result(); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("GET w%03d: %q %v", i, v, err)
		}
	}
	after, _ := f.stats()
	t.Logf("500 SETs then 500 GETs in %d batches", after-before)
	if after-before > 50 {
		t.Errorf("500 SETs then 500 GETs in %d batches", after-before)
	}
}

// TestMultiKeyOneBatch: MGET, MSET, EXISTS run as one batch each, DEL as
// two (the reads that count, then the deletions).
func TestMultiKeyOneBatch(t *testing.T) {
	f := &batchingFake{fakeBackend: newFake()}
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)
	var pairs, keys []any
	for i := 0; i < 100; i++ {
		pairs = append(pairs, fmt.Sprintf("m%d", i), fmt.Sprint(i))
		keys = append(keys, fmt.Sprintf("m%d", i))
	}
	strs := func(a []any) []string {
		var out []string
		for _, k := range a {
			out = append(out, k.(string))
		}
		return out
	}
	steps := []struct {
		run     func() error
		batches int
	}{
		{func() error { return rdb.MSet(ctx, pairs...).Err() }, 1},
		{func() error {
			v, err := rdb.MGet(ctx, strs(keys)...).Result()
			if err == nil && (len(v) != 100 || v[99] != "99") {
				err = fmt.Errorf("MGET: %v", v)
			}
			return err
		}, 1},
		{func() error {
			n, err := rdb.Exists(ctx, strs(keys)...).Result()
			if err == nil && n != 100 {
				err = fmt.Errorf("EXISTS: %d", n)
			}
			return err
		}, 1},
		{func() error {
			n, err := rdb.Del(ctx, strs(keys[:50])...).Result()
			if err == nil && n != 50 {
				err = fmt.Errorf("DEL: %d", n)
			}
			return err
		}, 2},
	}
	for i, s := range steps {
		before, _ := f.stats()
		if err := s.run(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if after, _ := f.stats(); after-before != s.batches {
			t.Errorf("step %d: %d batches, want %d", i, after-before, s.batches)
		}
	}
	if err := rdb.Get(ctx, "m0").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("m0 after DEL: %v", err)
	}
}
