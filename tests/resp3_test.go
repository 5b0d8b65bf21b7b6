package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dkvs/dkvs/tests/harness"
)

// TestRESP3 speaks RESP3 and RESP2 side by side to a ring of three real
// servers (N=3, W=2, R=2) through their RESP ports: go-redis set to
// protocol 3 and to protocol 2, a raw HELLO 3 exchange, and redis-cli -3.
// The replies whose type differs between the protocols (nulls, maps,
// verbatim text) are checked in both.
func TestRESP3(t *testing.T) {
	r, addrs := respRing(t, nil, 1, 2, 3)
	ctx := ctxFor(t, 2*time.Minute)

	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("go-redis resp%d", proto), func(t *testing.T) {
			rdb := redisClientProto(t, addrs[proto-2], proto)
			k := func(s string) string { return fmt.Sprintf("p%d-%s", proto, s) }
			if err := rdb.Set(ctx, k("a"), "1", 0).Err(); err != nil {
				t.Fatal(err)
			}
			if v, err := rdb.Get(ctx, k("a")).Result(); err != nil || v != "1" {
				t.Fatalf("GET = %q, %v", v, err)
			}
			if _, err := rdb.Get(ctx, k("nope")).Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("GET of a missing key: %v, want redis.Nil", err)
			}
			if vs, err := rdb.MGet(ctx, k("a"), k("nope")).Result(); err != nil || !reflect.DeepEqual(vs, []any{"1", nil}) {
				t.Fatalf("MGET = %#v, %v", vs, err)
			}
			if _, err := rdb.ClientGetName(ctx).Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("CLIENT GETNAME: %v, want redis.Nil", err)
			}
			cfg, err := rdb.ConfigGet(ctx, "save").Result()
			if err != nil || !reflect.DeepEqual(cfg, map[string]string{"save": ""}) {
				t.Fatalf("CONFIG GET save = %#v, %v", cfg, err)
			}
			hello, err := rdb.Do(ctx, "HELLO").Result()
			if err != nil {
				t.Fatal(err)
			}
			if proto == 3 {
				m, ok := hello.(map[any]any)
				if !ok || m["proto"] != int64(3) || m["server"] != "redis" {
					t.Fatalf("HELLO = %#v, want a map with proto 3", hello)
				}
			} else if s, ok := hello.([]any); !ok || len(s) != 14 || s[5] != int64(2) {
				t.Fatalf("HELLO = %#v, want a flat array with proto 2", hello)
			}
			info, err := rdb.Info(ctx, "ring").Result()
			if err != nil || !strings.Contains(info, "replicas_n:3") || strings.HasPrefix(info, "txt:") {
				t.Fatalf("INFO ring = %q, %v", info, err)
			}
			ci, err := rdb.ClientInfo(ctx).Result()
			if err != nil || ci.Resp != proto {
				t.Fatalf("CLIENT INFO = %+v, %v; want resp=%d", ci, err, proto)
			}
			// A pipeline of 1,000 commands, half of them reads of keys
			// never written: each answer in order, nulls as nulls.
			pipe := rdb.Pipeline()
			var sets []*redis.StatusCmd
			var gets []*redis.StringCmd
			for i := 0; i < 500; i++ {
				sets = append(sets, pipe.Set(ctx, k(fmt.Sprint("pipe", i)), fmt.Sprint(i), 0))
				key := k(fmt.Sprint("pipe", i))
				if i%2 == 1 {
					key = k(fmt.Sprint("absent", i))
				}
				gets = append(gets, pipe.Get(ctx, key))
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			for i := range sets {
				if err := sets[i].Err(); err != nil {
					t.Fatalf("pipelined SET %d: %v", i, err)
				}
				v, err := gets[i].Result()
				if i%2 == 1 {
					if !errors.Is(err, redis.Nil) {
						t.Fatalf("pipelined GET of a missing key %d: %q, %v", i, v, err)
					}
				} else if err != nil || v != fmt.Sprint(i) {
					t.Fatalf("pipelined GET %d: %q, %v", i, v, err)
				}
			}
		})
	}

	t.Run("raw", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", addrs[2], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(nc)
		io.WriteString(nc, "CLIENT ID\r\n")
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, ":") {
			t.Fatalf("CLIENT ID = %q, %v", line, err)
		}
		id, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		io.WriteString(nc, "HELLO 3\r\nSET raw v\r\nGET raw\r\nGET raw-nope\r\nMGET raw raw-nope\r\nHELLO 2\r\nGET raw-nope\r\n")
		want := "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:" + strconv.Itoa(id) + "\r\n" +
			"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n" +
			"+OK\r\n$1\r\nv\r\n_\r\n*2\r\n$1\r\nv\r\n_\r\n" +
			"*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:" + strconv.Itoa(id) + "\r\n" +
			"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n" +
			"$-1\r\n"
		got := make([]byte, len(want))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
			t.Fatalf("raw HELLO 3 exchange:\n got %q, %v\nwant %q", got, err, want)
		}
	})

	t.Run("redis-cli -3", func(t *testing.T) {
		cli, err := exec.LookPath("redis-cli")
		if err != nil {
			t.Fatalf("redis-cli not installed (apt-get install redis-tools): %v", err)
		}
		_, port, _ := net.SplitHostPort(addrs[0])
		// Outputs as redis-cli 7.0 prints Redis 7.0's replies (checked
		// against redis-server): a map's pairs on one line each, a null
		// as an empty line.
		cases := []struct {
			args []string
			want string
		}{
			{[]string{"set", "cli3", "v"}, "OK\n"},
			{[]string{"get", "cli3"}, "v\n"},
			{[]string{"get", "cli3-nope"}, "\n"},
			{[]string{"mget", "cli3", "cli3-nope"}, "v\n\n"},
			{[]string{"config", "get", "save"}, "save \n"},
			{[]string{"client", "getname"}, "\n"},
			{[]string{"exists", "cli3", "cli3-nope"}, "1\n"},
		}
		for _, c := range cases {
			res := harness.Run(t, r.Dir, cli, append([]string{"-3", "-h", "127.0.0.1", "-p", port}, c.args...)...)
			if res.Code != 0 || res.Stdout != c.want {
				t.Errorf("redis-cli -3 %v: %s; want stdout %q", c.args, res, c.want)
			}
		}
		res := harness.Run(t, r.Dir, cli, "-3", "-h", "127.0.0.1", "-p", port, "hello", "3")
		if res.Code != 0 || !strings.HasPrefix(res.Stdout, "server redis\nversion 7.0.0\nproto 3\nid ") {
			t.Errorf("redis-cli -3 hello 3: %s", res)
		}
		// INFO is verbatim text in RESP3: redis-cli prints it as it
		// prints RESP2's bulk string.
		res = harness.Run(t, r.Dir, cli, "-3", "-h", "127.0.0.1", "-p", port, "info", "ring")
		res2 := harness.Run(t, r.Dir, cli, "-h", "127.0.0.1", "-p", port, "info", "ring")
		if res.Code != 0 || !strings.HasPrefix(res.Stdout, "# Ring\r\nring_servers:3\r\n") || res.Stdout != res2.Stdout {
			t.Errorf("redis-cli -3 info ring: %s; without -3: %s", res, res2)
		}
	})
}
