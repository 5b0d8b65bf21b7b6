package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/server"
	"github.com/dkvs/dkvs/tests/harness"
)

// respRing starts a ring of len(counts) servers, each with a RESP port,
// and returns it with the RESP addresses.
func respRing(t *testing.T, args []string, counts ...int) (*harness.Ring, []string) {
	t.Helper()
	r := harness.NewRing(t, counts...)
	r.Args = append([]string{"--memory"}, args...)
	addrs := r.WithRESP()
	r.StartAll()
	r.WaitPeersUp()
	return r, addrs
}

// redisClient is a go-redis client of addr; it speaks RESP3, as go-redis
// does by default.
func redisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	return redisClientProto(t, addr, 3)
}

// redisClientProto is a go-redis client of addr speaking RESP proto.
func redisClientProto(t *testing.T, addr string, proto int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto, MaxRetries: -1, DialTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRESPCommands runs every command of dkvs/resp through one server's
// RESP port on a ring of three real servers (N=3, W=2, R=2), in RESP2
// (TestRESP3 covers the replies that differ in RESP3).
func TestRESPCommands(t *testing.T) {
	r, addrs := respRing(t, []string{"--max-key-size", "100", "--max-value-size", "1000"}, 1, 2, 3)
	rdb := redisClientProto(t, addrs[0], 2)
	ctx := ctxFor(t, time.Minute)

	big := strings.Repeat("v", 1001)
	bigKey := strings.Repeat("k", 101)
	steps := []struct {
		args []any
		want any    // reply; nil with err "" means a nil reply
		err  string // expected error text, exact; "re:" prefix for a pattern
	}{
		{args: []any{"PING"}, want: "PONG"},
		{args: []any{"PING", "hello world"}, want: "hello world"},
		{args: []any{"ECHO", "x\r\ny"}, want: "x\r\ny"},
		{args: []any{"GET", "a"}, want: nil},
		{args: []any{"SET", "a", "1"}, want: "OK"},
		{args: []any{"GET", "a"}, want: "1"},
		{args: []any{"SET", "a", "2"}, want: "OK"},
		{args: []any{"GET", "a"}, want: "2"},
		{args: []any{"SET", "e", ""}, want: "OK"},
		{args: []any{"GET", "e"}, want: ""},
		{args: []any{"EXISTS", "a", "e", "nope", "a"}, want: int64(3)},
		{args: []any{"DEL", "a", "nope", "a"}, want: int64(1)},
		{args: []any{"DEL", "a"}, want: int64(0)},
		{args: []any{"EXISTS", "a"}, want: int64(0)},
		{args: []any{"GET", "a"}, want: nil},
		{args: []any{"MSET", "m1", "x", "m2", "y", "m1", "z"}, want: "OK"},
		{args: []any{"MGET", "m1", "nope", "m2", "m1"}, want: []any{"z", nil, "y", "z"}},
		{args: []any{"DBSIZE"}, want: int64(3)},
		{args: []any{"KEYS", "*"}, want: []any{"e", "m1", "m2"}},
		{args: []any{"KEYS", "m?"}, want: []any{"m1", "m2"}},
		{args: []any{"SCAN", "0", "MATCH", "m*", "COUNT", "100"}, want: []any{"0", []any{"m1", "m2"}}},
		// Bad arities and unknown commands.
		{args: []any{"GET"}, err: "ERR wrong number of arguments for 'get' command"},
		{args: []any{"GET", "a", "b"}, err: "ERR wrong number of arguments for 'get' command"},
		{args: []any{"SET", "a"}, err: "ERR wrong number of arguments for 'set' command"},
		{args: []any{"DEL"}, err: "ERR wrong number of arguments for 'del' command"},
		{args: []any{"MSET", "m1", "x", "m2"}, err: "ERR wrong number of arguments for 'mset' command"},
		{args: []any{"MGET"}, err: "ERR wrong number of arguments for 'mget' command"},
		{args: []any{"EXISTS"}, err: "ERR wrong number of arguments for 'exists' command"},
		{args: []any{"ECHO"}, err: "ERR wrong number of arguments for 'echo' command"},
		{args: []any{"PING", "a", "b"}, err: "ERR wrong number of arguments for 'ping' command"},
		{args: []any{"foo", "a", "b"}, err: "ERR unknown command 'foo', with args beginning with: 'a' 'b' "},
		{args: []any{"FLUSHALL"}, err: "ERR unknown command 'FLUSHALL', with args beginning with: "},
		// SET's options that dkvs refuses, and the syntax it checks first.
		{args: []any{"SET", "a", "1", "EX", "10"}, err: "ERR SET option EX is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "PX", "10"}, err: "ERR SET option PX is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "KEEPTTL"}, err: "ERR SET option KEEPTTL is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "NX"}, err: "ERR SET option NX is not supported: dkvs has no atomic compare-and-set"},
		{args: []any{"SET", "a", "1", "XX"}, err: "ERR SET option XX is not supported: dkvs has no atomic compare-and-set"},
		{args: []any{"SET", "a", "1", "GET"}, err: "ERR SET option GET is not supported: dkvs has no atomic get-and-set"},
		{args: []any{"SET", "a", "1", "EX"}, err: "ERR syntax error"},
		{args: []any{"SET", "a", "1", "BOGUS"}, err: "ERR syntax error"},
		{args: []any{"EXISTS", "a"}, want: int64(0)}, // no refused SET wrote anything
		// The server's limits.
		{args: []any{"SET", "", "v"}, err: "ERR empty key: dkvs keys are at least one byte long"},
		{args: []any{"SET", "a", big}, err: "ERR value too large: 1001 bytes, the limit is 1000"},
		{args: []any{"SET", bigKey, "v"}, err: "ERR key too large: 101 bytes, the limit is 100"},
		// Connection commands.
		{args: []any{"SELECT", "0"}, want: "OK"},
		{args: []any{"SELECT", "1"}, err: "ERR DB index is out of range"},
		{args: []any{"CLIENT", "SETNAME", "worker-1"}, want: "OK"},
		{args: []any{"CLIENT", "GETNAME"}, want: "worker-1"},
		{args: []any{"HELLO", "4"}, err: "NOPROTO unsupported protocol version"},
		{args: []any{"COMMAND", "COUNT"}, want: int64(19)},
		{args: []any{"SCAN", "12345"}, err: "re:^ERR invalid cursor: 12345 is unknown or expired"},
	}
	for i, st := range steps {
		got, err := rdb.Do(ctx, st.args...).Result()
		name := fmt.Sprintf("step %d %q", i, st.args)
		switch {
		case strings.HasPrefix(st.err, "re:"):
			if err == nil || !regexp.MustCompile(st.err[3:]).MatchString(err.Error()) {
				t.Errorf("%s: error %v (reply %#v), want %s", name, err, got, st.err)
			}
		case st.err != "":
			if err == nil || err.Error() != st.err {
				t.Errorf("%s: error %v (reply %#v), want %q", name, err, got, st.err)
			}
		case st.want == nil:
			if !errors.Is(err, redis.Nil) {
				t.Errorf("%s: got %#v, %v; want nil reply", name, got, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: error %v, want %#v", name, err, st.want)
			} else if !reflect.DeepEqual(got, st.want) {
				t.Errorf("%s: got %#v, want %#v", name, got, st.want)
			}
		}
	}

	// HELLO 2 answers the server's identity as a map.
	hello, err := rdb.Do(ctx, "HELLO", "2").Slice()
	if err != nil || len(hello) != 14 || hello[0] != "server" || hello[5] != int64(2) {
		t.Errorf("HELLO 2: %#v %v", hello, err)
	}
	// COMMAND and COMMAND DOCS through go-redis's own parsers.
	infos, err := rdb.Command(ctx).Result()
	if err != nil || infos["get"] == nil || infos["get"].Arity != 2 || !infos["get"].ReadOnly || len(infos) != 19 {
		t.Errorf("COMMAND: %d commands, get %+v, %v", len(infos), infos["get"], err)
	}
	docs, err := rdb.Do(ctx, "COMMAND", "DOCS", "set").Slice()
	if err != nil || len(docs) != 2 || docs[0] != "set" {
		t.Errorf("COMMAND DOCS set: %#v %v", docs, err)
	}

	// INFO server and ring come from the server.
	srv, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Server\r\n", "dkvs_version:" + server.Version + "\r\n", "server_address:" + r.Addr(0) + "\r\n",
		"resp_address:" + addrs[0] + "\r\n", "uptime_in_seconds:"} {
		if !strings.Contains(srv, want) {
			t.Errorf("INFO server lacks %q:\n%s", want, srv)
		}
	}
	if strings.Contains(srv, "# Ring") {
		t.Errorf("INFO server shows other sections:\n%s", srv)
	}
	rg, err := rdb.Info(ctx, "ring").Result()
	if err != nil {
		t.Fatal(err)
	}
	wantRing := "# Ring\r\nring_servers:3\r\n"
	for i := range r.Servers {
		wantRing += fmt.Sprintf("ring_server%d:%s\r\n", i, r.Addr(i))
	}
	wantRing += "replicas_n:3\r\nwrite_quorum_w:2\r\nread_quorum_r:2\r\n"
	if rg != wantRing {
		t.Errorf("INFO ring:\n%q\nwant\n%q", rg, wantRing)
	}
	if all, err := rdb.Info(ctx).Result(); err != nil || !strings.Contains(all, "db0:keys=3,") {
		t.Errorf("INFO keyspace: %v\n%s", err, all)
	}

	// SCAN pages with COUNT until the cursor comes back to 0.
	for i := 0; i < 25; i++ {
		if err := rdb.Set(ctx, fmt.Sprintf("scan:%02d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var scanned []string
	cursor, pages := uint64(0), 0
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "scan:*", 7).Result()
		if err != nil {
			t.Fatal(err)
		}
		scanned = append(scanned, keys...)
		pages++
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(scanned) != 25 || !sort.StringsAreSorted(scanned) || pages < 4 {
		t.Errorf("SCAN MATCH scan:* COUNT 7: %d keys in %d pages: %v", len(scanned), pages, scanned)
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 28 {
		t.Errorf("DBSIZE: %d %v", n, err)
	}

	// QUIT answers OK and closes the connection.
	nc, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(nc, "*1\r\n$4\r\nQUIT\r\n")
	var out bytes.Buffer
	if _, err := out.ReadFrom(nc); err != nil || out.String() != "+OK\r\n" {
		t.Errorf("QUIT: %q %v", out.String(), err)
	}
}

// TestRESPBinaryAndPipeline stores binary keys and values through RESP,
// runs a pipeline of 100 commands, and checks that what RESP writes is
// on the ring (dkvs-client reads it, each home server holds it) and
// what dkvs-client writes RESP reads.
func TestRESPBinaryAndPipeline(t *testing.T) {
	r, addrs := respRing(t, nil, 1, 2, 3)
	rdb := redisClient(t, addrs[1])
	ctx := ctxFor(t, time.Minute)

	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	binKey := "bin\x00key\r\n"
	if err := rdb.Set(ctx, binKey, all, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, binKey).Bytes(); err != nil || !bytes.Equal(got, all) {
		t.Fatalf("binary: %d bytes, %v", len(got), err)
	}
	// Out of the way of the dumps below, which are line-based.
	if n, err := rdb.Del(ctx, binKey).Result(); err != nil || n != 1 {
		t.Fatalf("DEL binary key: %d %v", n, err)
	}
	large := bytes.Repeat([]byte("0123456789\x00"), 100000) // 1.1 MB
	if err := rdb.Set(ctx, "large", large, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "large").Bytes(); err != nil || !bytes.Equal(got, large) {
		t.Fatalf("large: %d bytes, %v", len(got), err)
	}

	pipe := rdb.Pipeline()
	var cmds []redis.Cmder
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("p%02d", i)
		cmds = append(cmds, pipe.Set(ctx, k, "v"+k, 0), pipe.Get(ctx, k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 100 {
		t.Fatal(len(cmds))
	}
	for i := 0; i < 100; i += 2 {
		k := fmt.Sprintf("p%02d", i/2)
		if s, err := cmds[i].(*redis.StatusCmd).Result(); err != nil || s != "OK" {
			t.Fatalf("pipelined SET %s: %q %v", k, s, err)
		}
		if v, err := cmds[i+1].(*redis.StringCmd).Result(); err != nil || v != "v"+k {
			t.Fatalf("pipelined GET %s after its SET: %q %v", k, v, err)
		}
	}

	// On the ring: dkvs-client reads what RESP wrote; every server holds
	// every key (N=3 on three servers), with the right value.
	wantOK(t, r.Client("get", "--", "p07"), "OK vp07")
	// (W=2: the third replica's write may still be under way.)
	for i := range r.Servers {
		harness.Eventually(t, 10*time.Second, "every key on "+r.Addr(i), func() error {
			dump := serverDump(t, r, i)
			for j := 0; j < 50; j++ {
				k := fmt.Sprintf("p%02d", j)
				if dump[k] != "v"+k {
					return fmt.Errorf("%s holds %s = %q (%d keys: %.300q)", r.Addr(i), k, dump[k], len(dump), keysOf(t, dump))
				}
			}
			return nil
		})
	}
	// And RESP reads what dkvs-client wrote, through another server.
	wantOK(t, r.Client("put", "--", "from-cli", "hello"), "OK")
	if v, err := redisClient(t, addrs[2]).Get(ctx, "from-cli").Result(); err != nil || v != "hello" {
		t.Fatalf("RESP GET of a dkvs-client put: %q %v", v, err)
	}
	wantOK(t, r.Client("del", "--", "from-cli"), "OK")
	if err := rdb.Get(ctx, "from-cli").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("after dkvs-client del: %v", err)
	}
}

// TestRESPPlacement writes through RESP with --resp-n 2 on four servers:
// each key lands on exactly its two home servers.
func TestRESPPlacement(t *testing.T) {
	r, addrs := respRing(t, []string{"--resp-n", "2", "--resp-w", "2", "--resp-r", "1"}, 1, 3, 2, 2)
	rdb := redisClient(t, addrs[3])
	ctx := ctxFor(t, time.Minute)
	for i := 0; i < 40; i++ {
		if err := rdb.Set(ctx, fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rg := ring.New(r.Servers)
	dumps := make([]map[string]string, len(r.Servers))
	for i := range r.Servers {
		dumps[i] = serverDump(t, r, i)
	}
	for k := 0; k < 40; k++ {
		key := fmt.Sprintf("key-%d", k)
		home := map[int]bool{}
		for _, s := range rg.Preference([]byte(key), 2) {
			home[s] = true
		}
		for i := range r.Servers {
			v, has := dumps[i][key]
			if has != home[i] || (has && v != fmt.Sprintf("value-%d", k)) {
				t.Errorf("%s on %s: %v %q, home: %v", key, r.Addr(i), has, v, home[i])
			}
		}
	}
	if info, err := rdb.Info(ctx, "ring").Result(); err != nil || !strings.Contains(info, "replicas_n:2\r\nwrite_quorum_w:2\r\nread_quorum_r:1\r\n") {
		t.Errorf("INFO ring: %q %v", info, err)
	}
}

// TestRESPSurvivesKill streams SET and GET through one server's RESP port
// while another server of three is killed: N=3, W=2, R=2 see no error.
func TestRESPSurvivesKill(t *testing.T) {
	r, addrs := respRing(t, nil, 1, 2, 3)
	ops := respLoadAcrossKill(t, r, addrs[0], 4, 200, 300, func(ctx context.Context, rdb *redis.Client, w, i int) error {
		k := fmt.Sprintf("w%d-%d", w, i%200)
		v := fmt.Sprintf("%d", i)
		if err := rdb.Set(ctx, k, v, 0).Err(); err != nil {
			return fmt.Errorf("SET %s: %w", k, err)
		}
		got, err := rdb.Get(ctx, k).Result()
		if err == nil && got != v {
			err = fmt.Errorf("GET %s = %q after SET %q", k, got, v)
		}
		return err
	})
	t.Logf("%d SET+GET pairs, none failed", ops)
}

// respLoadAcrossKill runs workers goroutines through the RESP port at
// addr, each calling step (w its number, i its step) one step after the
// other; once before steps are done in all, it kills server 1 (SIGKILL)
// and lets each worker go on for after more steps. Every step must
// succeed: the test fails with the first error and their count. It
// returns the steps done.
func respLoadAcrossKill(t *testing.T, r *harness.Ring, addr string, workers, before, after int,
	step func(ctx context.Context, rdb *redis.Client, w, i int) error) int {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	var (
		mu     sync.Mutex
		steps  int
		errs   []error
		killed = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rdb := redisClient(t, addr)
			since := 0 // steps since the kill
			for i := 0; since < after && ctx.Err() == nil; i++ {
				select {
				case <-killed:
					since++
				default:
				}
				err := step(ctx, rdb, w, i)
				mu.Lock()
				steps++
				if err != nil {
					errs = append(errs, fmt.Errorf("worker %d step %d: %w", w, i, err))
				}
				mu.Unlock()
			}
		}(w)
	}
	harness.Eventually(t, 30*time.Second, "some traffic before the kill", func() error {
		mu.Lock()
		defer mu.Unlock()
		if steps < before {
			return fmt.Errorf("%d steps", steps)
		}
		return nil
	})
	r.Kill(1)
	close(killed)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors in %d steps, first: %v", len(errs), steps, errs[0])
	}
	return steps
}

// TestRESPCleanShutdown stops the coordinating server with SIGTERM while
// a pipeline is under way: it exits 0, every SET it acknowledged is on
// the ring, and its RESP port is closed.
func TestRESPCleanShutdown(t *testing.T) {
	r, addrs := respRing(t, nil, 1, 1, 1)
	nc, err := net.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var req bytes.Buffer
	const n = 2000
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("sd%04d", i), fmt.Sprintf("v%d", i)
		fmt.Fprintf(&req, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(v), v)
	}
	if _, err := nc.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("first reply %q %v", line, err)
	}
	if err := r.Term(0); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, r.Log(0))
	}
	acked := 1
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		if line != "+OK\r\n" {
			t.Fatalf("reply %d: %q", acked, line)
		}
		acked++
	}
	t.Logf("%d of %d pipelined SETs acknowledged before the stop", acked, n)
	for i := 0; i < acked; i++ {
		k := fmt.Sprintf("sd%04d", i)
		if i%97 == 0 || i == acked-1 {
			wantOK(t, r.Client("get", "-n", "3", "-r", "2", "--", k), fmt.Sprintf("OK v%d", i))
		}
	}
	if _, err := net.DialTimeout("tcp", addrs[0], time.Second); err == nil {
		t.Fatal("RESP port still open after the stop")
	}
}

// TestRedisTools runs redis-cli and redis-benchmark (Debian's
// redis-tools, installed by .ci/run) against a server's RESP port.
func TestRedisTools(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not installed (apt-get install redis-tools): %v", err)
	}
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Fatalf("redis-benchmark not installed (apt-get install redis-tools): %v", err)
	}
	r, addrs := respRing(t, nil, 1, 2, 3)
	_, port, _ := net.SplitHostPort(addrs[0])
	run := func(prog string, args ...string) harness.Result {
		t.Helper()
		return harness.Run(t, r.Dir, prog, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...)
	}
	if res := run(cli, "set", "a", "b"); res.Code != 0 || res.Stdout != "OK\n" {
		t.Fatalf("redis-cli set: %s", res)
	}
	if res := run(cli, "get", "a"); res.Code != 0 || res.Stdout != "b\n" {
		t.Fatalf("redis-cli get: %s", res)
	}
	if res := run(cli, "get", "nope"); res.Code != 0 || res.Stdout != "\n" {
		t.Fatalf("redis-cli get of a missing key: %s", res)
	}
	if res := run(cli, "info", "ring"); res.Code != 0 || !strings.Contains(res.Stdout, "replicas_n:3") {
		t.Fatalf("redis-cli info ring: %s", res)
	}
	wantOK(t, r.Client("get", "--", "a"), "OK b")

	res := run(bench, "-t", "set,get", "-n", "20000", "-q")
	if res.Code != 0 {
		t.Fatalf("redis-benchmark: %s", res)
	}
	out := res.Stdout + res.Stderr
	for _, want := range []string{"SET: ", "GET: ", "requests per second"} {
		if !strings.Contains(out, want) {
			t.Fatalf("redis-benchmark output lacks %q: %s", want, res)
		}
	}
	if strings.Contains(strings.ToLower(out), "error") || strings.Contains(out, "ERR") {
		t.Fatalf("redis-benchmark reported errors: %s", res)
	}
	for _, line := range strings.Split(out, "\n") {
		if i := strings.LastIndex(line, "\r"); i >= 0 {
			line = line[i+1:]
		}
		if strings.Contains(line, "requests per second") {
			t.Log(strings.TrimSpace(line))
		}
	}
	// The benchmark's key is on the ring.
	if res := r.Client("get", "--", "key:__rand_int__"); res.Code != 0 {
		t.Fatalf("benchmark key not on the ring: %s", res)
	}
}

// TestRESPServerFlags checks dkvs-server's RESP options: bad values exit
// with the documented codes, a taken port stops the server from starting,
// and the environment sets them.
func TestRESPServerFlags(t *testing.T) {
	ports := harness.FreePorts(t, 2)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "servers.txt"), []byte(fmt.Sprintf("127.0.0.1 %d 1\n", ports[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := harness.Bin(t, "dkvs-server")
	self := []string{"127.0.0.1", fmt.Sprint(ports[0])}
	cases := []struct {
		args []string
		code errcode.Code
	}{
		{[]string{"--resp", "nonsense"}, errcode.InvalidCommand},
		{[]string{"--resp", "127.0.0.1:0"}, errcode.InvalidCommand},
		{[]string{"--resp", "127.0.001:6379"}, errcode.Address},
		{[]string{"--resp-n", "0"}, errcode.InvalidCommand},
		{[]string{"--resp-n", "255"}, errcode.InvalidCommand},
		{[]string{"--resp-n", "3", "--resp-r", "4"}, errcode.InvalidCommand},
		{[]string{"--resp-w", "0"}, errcode.InvalidCommand},
		{[]string{"--resp-level", "SOME"}, errcode.InvalidCommand},
		{[]string{"--resp-linearizable", "--resp-r", "1"}, errcode.InvalidCommand},
		{[]string{"--coord-timeout", "0s"}, errcode.InvalidCommand},
		{[]string{"--coord-max-time", "-1s"}, errcode.InvalidCommand},
	}
	for _, tc := range cases {
		res := harness.Run(t, dir, srv, append(append([]string{"--memory"}, tc.args...), self...)...)
		if res.Code != tc.code.ExitStatus() || !strings.HasPrefix(res.Stderr, "ERROR: ") {
			t.Errorf("%q: %s, want exit %d", tc.args, res, tc.code.ExitStatus())
		}
	}
	// The RESP port is taken: the server does not start.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	res := harness.Run(t, dir, srv, append([]string{"--memory", "--resp", ln.Addr().String()}, self...)...)
	if res.Code != errcode.Network.ExitStatus() || !strings.Contains(res.Stderr, "redis protocol") {
		t.Errorf("RESP port taken: %s", res)
	}
	// From the environment: --resp-n 1 on a ring of one.
	r := harness.NewRing(t, 1)
	r.Args = []string{"--memory"}
	t.Setenv("DKVS_RESP", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	t.Setenv("DKVS_RESP_N", "1")
	r.StartAll()
	rdb := redisClient(t, fmt.Sprintf("127.0.0.1:%d", ports[1]))
	ctx := ctxFor(t, 30*time.Second)
	if info, err := rdb.Info(ctx, "ring").Result(); err != nil || !strings.Contains(info, "replicas_n:1\r\nwrite_quorum_w:1\r\nread_quorum_r:1\r\n") {
		t.Fatalf("INFO ring with DKVS_RESP_N=1: %q %v", info, err)
	}
}
