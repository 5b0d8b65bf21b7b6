package tests

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRESPPipelines1000 sends pipelines of 1,000 commands through one
// server's RESP port of a ring of three: with go-redis (SET, GET, MSET,
// MGET, EXISTS mixed, each answered as alone) and with redis-cli --pipe;
// what they wrote is on the ring.
func TestRESPPipelines1000(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not installed (apt-get install redis-tools): %v", err)
	}
	r, addrs := respRing(t, nil, 1, 2, 3)
	rdb := redisClient(t, addrs[0])
	ctx := ctxFor(t, 2*time.Minute)

	pipe := rdb.Pipeline()
	type check struct {
		cmd  redis.Cmder
		want string
	}
	var checks []check
	for i := 0; i < 250; i++ {
		k := fmt.Sprintf("gp%03d", i)
		checks = append(checks,
			check{pipe.Set(ctx, k, "v"+k, 0), "OK"},
			check{pipe.MSet(ctx, k+"a", "a", k+"b", "b"), "OK"},
			check{pipe.Get(ctx, k), "v" + k},
			check{pipe.MGet(ctx, k+"a", "nope", k+"b"), "[a <nil> b]"})
		if i%5 == 4 {
			checks[len(checks)-1] = check{pipe.Exists(ctx, k, k+"a", "nope"), "2"}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1000 {
		t.Fatalf("%d commands", len(checks))
	}
	for i, c := range checks {
		var got string
		switch cmd := c.cmd.(type) {
		case *redis.StatusCmd:
			got = cmd.Val()
		case *redis.StringCmd:
			got = cmd.Val()
		case *redis.IntCmd:
			got = fmt.Sprint(cmd.Val())
		case *redis.SliceCmd:
			got = fmt.Sprint(cmd.Val())
		}
		if got != c.want || c.cmd.Err() != nil {
			t.Fatalf("command %d %v: %q %v, want %q", i, c.cmd.Args(), got, c.cmd.Err(), c.want)
		}
	}
	wantOK(t, r.Client("get", "--", "gp123b"), "OK b")

	// redis-cli --pipe: the raw protocol on its standard input, 1,000
	// SETs; it reports the replies and errors it counted.
	var in bytes.Buffer
	for i := 0; i < 1000; i++ {
		k, v := fmt.Sprintf("cp%04d", i), fmt.Sprintf("c%d", i)
		fmt.Fprintf(&in, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	host, port, _ := strings.Cut(addrs[0], ":")
	cmd := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "--pipe")
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "errors: 0, replies: 1000") {
		t.Fatalf("redis-cli --pipe: %v\n%s", err, out)
	}
	for _, i := range []int{0, 499, 999} {
		k := fmt.Sprintf("cp%04d", i)
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != fmt.Sprintf("c%d", i) {
			t.Fatalf("GET %s after redis-cli --pipe: %q %v", k, v, err)
		}
	}
	wantOK(t, r.Client("get", "--", "cp0777"), "OK c777")
}

// TestRESPMultiKeyAcrossKill runs MSET and MGET of 20 keys through one
// server's RESP port while another server of three is killed (SIGKILL):
// N=3, W=2, R=2 see no error, and every MGET reads the MSET before it.
func TestRESPMultiKeyAcrossKill(t *testing.T) {
	r, addrs := respRing(t, nil, 1, 2, 3)
	rounds := respLoadAcrossKill(t, r, addrs[0], 3, 30, 100, func(ctx context.Context, rdb *redis.Client, w, round int) error {
		keys := make([]string, 20)
		var pairs []any
		for i := range keys {
			keys[i] = fmt.Sprintf("mk%d-%02d", w, i)
			pairs = append(pairs, keys[i], fmt.Sprintf("%s@%d", keys[i], round))
		}
		if err := rdb.MSet(ctx, pairs...).Err(); err != nil {
			return fmt.Errorf("MSET: %w", err)
		}
		vals, err := rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return fmt.Errorf("MGET: %w", err)
		}
		for i, v := range vals {
			if want := fmt.Sprintf("%s@%d", keys[i], round); v != want {
				return fmt.Errorf("MGET %s = %v after MSET %q", keys[i], v, want)
			}
		}
		return nil
	})
	t.Logf("%d rounds of MSET+MGET of 20 keys, none failed", rounds)
}
