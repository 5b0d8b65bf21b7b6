package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func newClient(t *testing.T, addr string, mod func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	if mod != nil {
		mod(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestGoRedisCommands runs a sequence of commands through go-redis's Do
// and checks each reply or error text, with go-redis speaking RESP2 and
// RESP3.
func TestGoRedisCommands(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) { testGoRedisCommands(t, proto) })
	}
}

func testGoRedisCommands(t *testing.T, proto int) {
	f := newFake()
	_, addr := startServer(t, f, Options{MaxKeySize: 100, MaxValueSize: 1000})
	rdb := newClient(t, addr, func(o *redis.Options) { o.Protocol = proto })
	ctx := ctxT(t)

	big := strings.Repeat("v", 1001)
	bigKey := strings.Repeat("k", 101)
	steps := []struct {
		args  []any
		want  any    // reply; nil with errPrefix "" means a nil reply
		want3 any    // the reply in RESP3 where it differs from want
		err   string // expected error text (exact), "" for none
	}{
		{args: []any{"PING"}, want: "PONG"},
		{args: []any{"ping", "hello world"}, want: "hello world"},
		{args: []any{"PING", "a", "b"}, err: "ERR wrong number of arguments for 'ping' command"},
		{args: []any{"ECHO", "x\r\ny"}, want: "x\r\ny"},
		{args: []any{"GET", "a"}, want: nil},
		{args: []any{"SET", "a", "1"}, want: "OK"},
		{args: []any{"GET", "a"}, want: "1"},
		{args: []any{"set", "a", "2"}, want: "OK"},
		{args: []any{"GET", "a"}, want: "2"},
		{args: []any{"SET", "e", ""}, want: "OK"},
		{args: []any{"GET", "e"}, want: ""},
		{args: []any{"EXISTS", "a", "e", "nope", "a"}, want: int64(3)},
		{args: []any{"DEL", "a", "nope", "a"}, want: int64(1)},
		{args: []any{"DEL", "a"}, want: int64(0)},
		{args: []any{"EXISTS", "a"}, want: int64(0)},
		{args: []any{"MSET", "m1", "x", "m2", "y", "m1", "z"}, want: "OK"},
		{args: []any{"MGET", "m1", "nope", "m2", "m1"}, want: []any{"z", nil, "y", "z"}},
		{args: []any{"MSET", "m1"}, err: "ERR wrong number of arguments for 'mset' command"},
		{args: []any{"MSET", "m1", "x", "m2"}, err: "ERR wrong number of arguments for 'mset' command"},
		{args: []any{"DBSIZE"}, want: int64(3)},
		{args: []any{"GET"}, err: "ERR wrong number of arguments for 'get' command"},
		{args: []any{"GET", "a", "b"}, err: "ERR wrong number of arguments for 'get' command"},
		{args: []any{"SET", "a"}, err: "ERR wrong number of arguments for 'set' command"},
		{args: []any{"DEL"}, err: "ERR wrong number of arguments for 'del' command"},
		{args: []any{"foo", "a", "b"}, err: "ERR unknown command 'foo', with args beginning with: 'a' 'b' "},
		{args: []any{"FLUSHALL"}, err: "ERR unknown command 'FLUSHALL', with args beginning with: "},
		{args: []any{"SET", "a", "1", "EX", "10"}, err: "ERR SET option EX is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "px", "10"}, err: "ERR SET option PX is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "EXAT", "10"}, err: "ERR SET option EXAT is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "PXAT", "10"}, err: "ERR SET option PXAT is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "KEEPTTL"}, err: "ERR SET option KEEPTTL is not supported: dkvs keys do not expire"},
		{args: []any{"SET", "a", "1", "NX"}, err: "ERR SET option NX is not supported: dkvs has no atomic compare-and-set"},
		{args: []any{"SET", "a", "1", "xx"}, err: "ERR SET option XX is not supported: dkvs has no atomic compare-and-set"},
		{args: []any{"SET", "a", "1", "GET"}, err: "ERR SET option GET is not supported: dkvs has no atomic get-and-set"},
		{args: []any{"SET", "a", "1", "EX"}, err: "ERR syntax error"},
		{args: []any{"SET", "a", "1", "EX", "ten"}, err: "ERR value is not an integer or out of range"},
		{args: []any{"SET", "a", "1", "BOGUS"}, err: "ERR syntax error"},
		{args: []any{"EXISTS", "a"}, want: int64(0)}, // no refused SET wrote anything
		{args: []any{"SET", "", "v"}, err: "ERR empty key: dkvs keys are at least one byte long"},
		{args: []any{"GET", ""}, want: nil},
		{args: []any{"SET", "a", big}, err: "ERR value too large: 1001 bytes, the limit is 1000"},
		{args: []any{"SET", bigKey, "v"}, err: "ERR key too large: 101 bytes, the limit is 100"},
		{args: []any{"GET", bigKey}, err: "ERR key too large: 101 bytes, the limit is 100"},
		{args: []any{"MSET", "ok", "v", "a", big}, err: "ERR value too large: 1001 bytes, the limit is 1000"},
		{args: []any{"EXISTS", "ok"}, want: int64(0)},
		{args: []any{"SELECT", "0"}, want: "OK"},
		{args: []any{"SELECT", "1"}, err: "ERR DB index is out of range"},
		{args: []any{"SELECT", "x"}, err: "ERR value is not an integer or out of range"},
		{args: []any{"CLIENT", "GETNAME"}, want: nil},
		{args: []any{"CLIENT", "SETNAME", "worker-1"}, want: "OK"},
		{args: []any{"CLIENT", "GETNAME"}, want: "worker-1"},
		{args: []any{"CLIENT", "SETNAME", "bad name"}, err: "ERR Client names cannot contain spaces, newlines or special characters."},
		{args: []any{"CLIENT", "SETINFO", "LIB-NAME", "x"}, want: "OK"},
		{args: []any{"CLIENT", "KILL", "x"}, err: "ERR unknown subcommand 'KILL'. Try CLIENT HELP."},
		{args: []any{"CLIENT"}, err: "ERR wrong number of arguments for 'client' command"},
		{args: []any{"HELLO", "4"}, err: "NOPROTO unsupported protocol version"},
		{args: []any{"HELLO", "1"}, err: "NOPROTO unsupported protocol version"},
		{args: []any{"HELLO", "two"}, err: "ERR Protocol version is not an integer or out of range"},
		{args: []any{"HELLO", "2", "FOO"}, err: "ERR Syntax error in HELLO option 'FOO'"},
		{args: []any{"COMMAND", "COUNT"}, want: int64(19)},
		{args: []any{"COMMAND", "NOPE"}, err: "ERR unknown subcommand 'NOPE'. Try COMMAND HELP."},
		{args: []any{"CONFIG", "GET", "save"}, want: []any{"save", ""}, want3: map[any]any{"save": ""}},
		{args: []any{"CONFIG", "GET", "nothing"}, want: []any{}, want3: map[any]any{}},
		{args: []any{"CONFIG", "SET", "save", ""}, err: "ERR unknown subcommand 'SET'. Try CONFIG HELP."},
		{args: []any{"AUTH", "pw"}, err: "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
		{args: []any{"AUTH", "default", "pw"}, want: "OK"},
		{args: []any{"AUTH", "bob", "pw"}, err: "WRONGPASS invalid username-password pair or user is disabled."},
		{args: []any{"SCAN", "x"}, err: "ERR invalid cursor"},
		{args: []any{"SCAN", "12345"}, err: "ERR invalid cursor: 12345 is unknown or expired (cursors are kept 10m0s)"},
		{args: []any{"SCAN", "0", "COUNT", "0"}, err: "ERR syntax error"},
		{args: []any{"SCAN", "0", "COUNT", "x"}, err: "ERR value is not an integer or out of range"},
		{args: []any{"SCAN", "0", "MATCH"}, err: "ERR syntax error"},
		{args: []any{"SCAN", "0", "BOGUS", "1"}, err: "ERR syntax error"},
		{args: []any{"SCAN", "0", "TYPE", "hash"}, want: []any{"0", []any{}}},
		{args: []any{"SCAN", "0", "TYPE", "string", "MATCH", "m*", "COUNT", "100"}, want: []any{"0", []any{"m1", "m2"}}},
		{args: []any{"KEYS", "*"}, want: []any{"e", "m1", "m2"}},
		{args: []any{"KEYS", "m?"}, want: []any{"m1", "m2"}},
		{args: []any{"KEYS", "[^m]*"}, want: []any{"e"}},
	}
	for i, st := range steps {
		if proto == 3 && st.want3 != nil {
			st.want = st.want3
		}
		got, err := rdb.Do(ctx, st.args...).Result()
		name := fmt.Sprintf("step %d %q", i, st.args)
		switch {
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
}

func TestGoRedisBinarySafe(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)

	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []struct{ key, value []byte }{
		{[]byte("k\x00\r\n"), all},
		{all, []byte("\r\n$3\r\n*1\r\n")},
		{[]byte{0}, []byte{}},
		{[]byte(" spaced key "), bytes.Repeat(all, 1<<12)}, // 1 MiB
	}
	for i, c := range cases {
		if err := rdb.Set(ctx, string(c.key), c.value, 0).Err(); err != nil {
			t.Fatalf("case %d: SET: %v", i, err)
		}
		got, err := rdb.Get(ctx, string(c.key)).Bytes()
		if err != nil || !bytes.Equal(got, c.value) {
			t.Fatalf("case %d: GET = %d bytes, %v; want %d bytes", i, len(got), err, len(c.value))
		}
		if v, _ := f.value(string(c.key)); v != string(c.value) {
			t.Fatalf("case %d: backend holds a different value", i)
		}
	}
	// MSET/MGET with binary keys and values.
	if err := rdb.MSet(ctx, "\x00a", "\xff\x00", "\x00b", "").Err(); err != nil {
		t.Fatal(err)
	}
	vals, err := rdb.MGet(ctx, "\x00a", "\x00b", "\x00c").Result()
	if err != nil || !reflect.DeepEqual(vals, []any{"\xff\x00", "", nil}) {
		t.Fatalf("MGET = %#v, %v", vals, err)
	}
	keys, err := rdb.Keys(ctx, "\x00?").Result()
	if err != nil || !reflect.DeepEqual(keys, []string{"\x00a", "\x00b"}) {
		t.Fatalf("KEYS = %q, %v", keys, err)
	}
}

// TestGoRedisScan iterates over 1000 keys with several COUNT and MATCH
// combinations: every matching key must come exactly once.
func TestGoRedisScan(t *testing.T) {
	f := newFake()
	for i := 0; i < 1000; i++ {
		f.set(fmt.Sprintf("key:%04d", i), "v")
	}
	f.set("other", "v")
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)

	cases := []struct {
		match string
		count int64
		want  func(k string) bool
	}{
		{"", 0, func(string) bool { return true }},
		{"", 1, func(string) bool { return true }},
		{"", 7, func(string) bool { return true }},
		{"", 1001, func(string) bool { return true }},
		{"", 5000, func(string) bool { return true }},
		{"key:*7", 10, func(k string) bool { return strings.HasPrefix(k, "key:") && strings.HasSuffix(k, "7") }},
		{"key:0[0-1]?[^0-8]", 33, func(k string) bool {
			return len(k) == 8 && strings.HasPrefix(k, "key:0") && (k[5] == '0' || k[5] == '1') && k[7] == '9'
		}},
		{"nothing*", 100, func(string) bool { return false }},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("match=%q,count=%d", c.match, c.count), func(t *testing.T) {
			seen := map[string]int{}
			calls := 0
			var cursor uint64
			for {
				keys, next, err := rdb.Scan(ctx, cursor, c.match, c.count).Result()
				if err != nil {
					t.Fatal(err)
				}
				calls++
				for _, k := range keys {
					seen[k]++
				}
				if next == 0 {
					break
				}
				cursor = next
				if calls > 3000 {
					t.Fatal("SCAN does not end")
				}
			}
			want := 0
			for k := range f.data {
				if c.want(k) {
					want++
					if seen[k] != 1 {
						t.Errorf("key %q seen %d times", k, seen[k])
					}
				}
			}
			if len(seen) != want {
				t.Errorf("saw %d distinct keys, want %d", len(seen), want)
			}
			count := c.count
			if count == 0 {
				count = 10
			}
			if wantCalls := (1001 + int(count) - 1) / int(count); calls != wantCalls {
				t.Errorf("%d SCAN calls, want %d (COUNT keys examined per call)", calls, wantCalls)
			}
		})
	}

	// go-redis's iterator, across the pool's connections.
	it := rdb.Scan(ctx, 0, "key:090*", 3).Iterator()
	var got []string
	for it.Next(ctx) {
		got = append(got, it.Val())
	}
	if err := it.Err(); err != nil || len(got) != 10 || got[0] != "key:0900" || got[9] != "key:0909" {
		t.Fatalf("iterator: %q, %v", got, err)
	}
	// A cursor may be reused (a retried page gives the same keys).
	k1, c1, err1 := rdb.Scan(ctx, 0, "", 5).Result()
	a, _, err2 := rdb.Scan(ctx, c1, "", 5).Result()
	b, _, err3 := rdb.Scan(ctx, c1, "", 5).Result()
	if err := errors.Join(err1, err2, err3); err != nil || !reflect.DeepEqual(a, b) || len(k1) != 5 || a[0] != "key:0005" {
		t.Fatalf("reusing cursor %d: %q then %q, %v", c1, a, b, err)
	}
}

func TestGoRedisKeysAndDBSize(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)
	for i := 0; i < 50; i++ {
		if err := rdb.Set(ctx, fmt.Sprintf("user:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rdb.Set(ctx, "a*b", "1", 0)
	rdb.Set(ctx, "axb", "1", 0)
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 52 {
		t.Fatalf("DBSIZE = %d, %v", n, err)
	}
	cases := []struct {
		pattern string
		want    int
	}{
		{"*", 52}, {"user:*", 50}, {"user:?", 10}, {"user:[1-2]?", 20}, {"a\\*b", 1}, {"a*b", 2}, {"nope", 0},
	}
	for _, c := range cases {
		keys, err := rdb.Keys(ctx, c.pattern).Result()
		if err != nil || len(keys) != c.want {
			t.Errorf("KEYS %q: %d keys %v, want %d", c.pattern, len(keys), err, c.want)
		}
	}
}

func TestGoRedisInfo(t *testing.T) {
	f := newFake()
	f.set("a", "1")
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)

	all, err := rdb.InfoMap(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{"Server", "Clients", "Ring", "Keyspace"} {
		if all[sec] == nil {
			t.Errorf("default INFO lacks section %s: %v", sec, all)
		}
	}
	want := map[string]map[string]string{
		"Server":   {"redis_version": "7.0.0", "dkvs_version": "0.0.0-test", "server_address": "127.0.0.1:7001", "resp_address": addr, "redis_mode": "standalone"},
		"Ring":     {"ring_servers": "3", "ring_server0": "127.0.0.1:7001", "ring_server2": "127.0.0.1:7003", "replicas_n": "3", "write_quorum_w": "2", "read_quorum_r": "2"},
		"Keyspace": {"db0": "keys=1,expires=0,avg_ttl=0"},
	}
	for sec, kv := range want {
		for k, v := range kv {
			if got := all[sec][k]; got != v {
				t.Errorf("INFO %s %s = %q, want %q", sec, k, got, v)
			}
		}
	}
	if _, ok := all["Server"]["uptime_in_seconds"]; !ok {
		t.Errorf("no uptime_in_seconds")
	}
	for _, c := range []struct {
		sections []string
		want     []string
	}{
		{[]string{"server"}, []string{"Server"}},
		{[]string{"ring"}, []string{"Ring"}},
		{[]string{"RING", "server"}, []string{"Server", "Ring"}},
		{[]string{"default"}, []string{"Server", "Clients", "Ring", "Keyspace"}},
		{[]string{"nosuch"}, nil},
	} {
		m, err := rdb.InfoMap(ctx, c.sections...).Result()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range []string{"Server", "Clients", "Ring", "Keyspace"} {
			if m[s] != nil {
				got = append(got, s)
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("INFO %v gave sections %v, want %v", c.sections, got, c.want)
		}
	}
}

// TestGoRedisCommandIntrospection checks COMMAND, COMMAND DOCS, LIST and
// INFO as go-redis reads them, in RESP2 (flat arrays) and RESP3 (maps).
func TestGoRedisCommandIntrospection(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) { testGoRedisCommandIntrospection(t, proto) })
	}
}

// pairs reads a Redis map as go-redis returns it: a map in RESP3, a flat
// array of keys and values in RESP2.
func pairs(t *testing.T, v any) map[string]any {
	t.Helper()
	m := map[string]any{}
	switch v := v.(type) {
	case map[any]any:
		for k, x := range v {
			m[k.(string)] = x
		}
	case []any:
		if len(v)%2 != 0 {
			t.Fatalf("odd flat map %#v", v)
		}
		for i := 0; i < len(v); i += 2 {
			m[v[i].(string)] = v[i+1]
		}
	default:
		t.Fatalf("not a map: %#v", v)
	}
	return m
}

func testGoRedisCommandIntrospection(t *testing.T, proto int) {
	_, addr := startServer(t, newFake(), Options{})
	rdb := newClient(t, addr, func(o *redis.Options) { o.Protocol = proto })
	ctx := ctxT(t)

	infos, err := rdb.Command(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 19 {
		t.Errorf("COMMAND lists %d commands", len(infos))
	}
	get := infos["get"]
	if get == nil || get.Arity != 2 || get.FirstKeyPos != 1 || get.LastKeyPos != 1 || !get.ReadOnly {
		t.Errorf("COMMAND get = %+v", get)
	}
	if mset := infos["mset"]; mset == nil || mset.Arity != -3 || mset.StepCount != 2 || mset.LastKeyPos != -1 {
		t.Errorf("COMMAND mset = %+v", mset)
	}

	raw, err := rdb.Do(ctx, "COMMAND", "DOCS", "get", "nosuch", "set").Result()
	if err != nil {
		t.Fatal(err)
	}
	docs := pairs(t, raw)
	if len(docs) != 2 || docs["get"] == nil || docs["set"] == nil {
		t.Fatalf("COMMAND DOCS get nosuch set = %#v", raw)
	}
	fields := pairs(t, docs["get"])
	if fields["summary"] != "Returns the string value of a key." || fields["group"] != "string" || fields["since"] != "1.0.0" {
		t.Errorf("GET docs = %#v", fields)
	}
	args := fields["arguments"].([]any)
	if len(args) != 1 || !reflect.DeepEqual(pairs(t, args[0]), map[string]any{"name": "key", "type": "key", "key_spec_index": int64(0)}) {
		t.Errorf("GET doc arguments = %#v", args)
	}
	mgetArgs := pairs(t, pairs(t, pairs(t, mustDo(t, rdb, "COMMAND", "DOCS", "mget"))["mget"])["arguments"].([]any)[0])
	// A set in RESP3, which go-redis reads as a slice too.
	if !reflect.DeepEqual(mgetArgs["flags"], []any{"multiple"}) {
		t.Errorf("MGET doc argument flags = %#v", mgetArgs["flags"])
	}
	if all := pairs(t, mustDo(t, rdb, "COMMAND", "DOCS")); len(all) != 19 {
		t.Errorf("COMMAND DOCS: %d commands", len(all))
	}
	list, err := rdb.Do(ctx, "COMMAND", "LIST").StringSlice()
	if err != nil || len(list) != 19 || list[0] != "auth" {
		t.Errorf("COMMAND LIST = %v, %v", list, err)
	}
	info, err := rdb.Do(ctx, "COMMAND", "INFO", "get", "nosuch").Slice()
	if err != nil || len(info) != 2 || info[1] != nil {
		t.Errorf("COMMAND INFO get nosuch = %#v, %v", info, err)
	}
}

func mustDo(t *testing.T, rdb *redis.Client, args ...any) any {
	t.Helper()
	v, err := rdb.Do(ctxT(t), args...).Result()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// TestGoRedisHandshakes connects with each protocol go-redis offers, with
// a client name and with a database, and checks that the connection
// speaks the protocol go-redis asked for.
func TestGoRedisHandshakes(t *testing.T) {
	_, addr := startServer(t, newFake(), Options{})
	ctx := ctxT(t)
	cases := []struct {
		name    string
		mod     func(*redis.Options)
		resp    string // CLIENT INFO's resp= field
		wantErr string
	}{
		{"resp3", func(o *redis.Options) { o.Protocol = 3 }, "resp=3", ""},
		{"resp2", func(o *redis.Options) { o.Protocol = 2 }, "resp=2", ""},
		{"client name resp3", func(o *redis.Options) { o.ClientName = "svc-a" }, "resp=3", ""},
		{"client name resp2", func(o *redis.Options) { o.Protocol = 2; o.ClientName = "svc-b" }, "resp=2", ""},
		{"default user resp3", func(o *redis.Options) { o.Username, o.Password = "default", "pw" }, "resp=3", ""},
		{"other user", func(o *redis.Options) { o.Username, o.Password = "bob", "pw" }, "", "WRONGPASS invalid username-password pair or user is disabled."},
		{"no identity", func(o *redis.Options) { o.DisableIdentity = true }, "resp=3", ""},
		{"db 1", func(o *redis.Options) { o.DB = 1 }, "", "ERR DB index is out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rdb := newClient(t, addr, c.mod)
			err := rdb.Set(ctx, "k", "v", 0).Err()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("got %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
				t.Fatalf("GET = %q, %v", v, err)
			}
			if info, err := rdb.Do(ctx, "CLIENT", "INFO").Text(); err != nil || !strings.Contains(info, " "+c.resp+" ") {
				t.Fatalf("CLIENT INFO = %q, %v; want %s", info, err, c.resp)
			}
			if name := rdb.Options().ClientName; name != "" {
				if got, err := rdb.ClientGetName(ctx).Result(); err != nil || got != name {
					t.Fatalf("CLIENT GETNAME = %q, %v; want %q", got, err, name)
				}
			}
		})
	}

	rdb := newClient(t, addr, nil)
	hello, err := rdb.Do(ctx, "HELLO", "2", "AUTH", "default", "x", "SETNAME", "h2").Slice()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	for i := 0; i+1 < len(hello); i += 2 {
		m[hello[i].(string)] = hello[i+1]
	}
	if m["server"] != "redis" || m["proto"] != int64(2) || m["version"] != "7.0.0" || m["mode"] != "standalone" || m["role"] != "master" {
		t.Errorf("HELLO 2 = %#v", m)
	}
	if plain, err := rdb.Do(ctx, "HELLO").Slice(); err != nil || len(plain) != 14 {
		t.Errorf("HELLO = %#v, %v", plain, err)
	}
}

// TestGoRedisPipeline sends 100 commands in one pipeline: writes and reads
// of the same keys interleaved; each answer must be the one of its
// command, in order.
func TestGoRedisPipeline(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, f, Options{})
	rdb := newClient(t, addr, nil)
	ctx := ctxT(t)

	pipe := rdb.Pipeline()
	var cmds []redis.Cmder
	var want []string
	for i := 0; i < 25; i++ {
		k := fmt.Sprintf("p%d", i%5)
		cmds = append(cmds, pipe.Set(ctx, k, fmt.Sprint(i), 0))
		want = append(want, "OK")
		cmds = append(cmds, pipe.Get(ctx, k))
		want = append(want, fmt.Sprint(i))
		cmds = append(cmds, pipe.Echo(ctx, fmt.Sprintf("echo-%d", i)))
		want = append(want, fmt.Sprintf("echo-%d", i))
		cmds = append(cmds, pipe.Exists(ctx, k, "nope"))
		want = append(want, "1")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 100 {
		t.Fatalf("%d commands", len(cmds))
	}
	for i, c := range cmds {
		var got string
		switch c := c.(type) {
		case *redis.StatusCmd:
			got = c.Val()
		case *redis.StringCmd:
			got = c.Val()
		case *redis.IntCmd:
			got = fmt.Sprint(c.Val())
		}
		if got != want[i] || c.Err() != nil {
			t.Errorf("command %d (%v): %q, %v; want %q", i, c.Args(), got, c.Err(), want[i])
		}
	}
}
