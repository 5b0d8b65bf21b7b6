// Package tests holds the black-box tests of dkvs: the built binaries of
// done/ run as real processes on 127.0.0.1.
package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/wire"
	"github.com/dkvs/dkvs/tests/harness"
)

var bg = context.Background()

// specRing is a ring on the fixed ports of cs202.md's examples.
func specRing(t *testing.T, spec ...int) *harness.Ring {
	var servers []config.Server
	for i := 0; i < len(spec); i += 2 {
		servers = append(servers, config.Server{IP: "127.0.0.1", Port: uint16(spec[i]), Count: spec[i+1]})
	}
	r := harness.NewRingOf(t, servers)
	r.Args = []string{"--memory"}
	return r
}

func wantExit(t *testing.T, res harness.Result, codes ...errcode.Code) {
	t.Helper()
	for _, c := range codes {
		if res.Code == c.ExitStatus() {
			return
		}
	}
	t.Fatalf("exit %d, want one of %v: %s", res.Code, codes, res)
}

func wantOK(t *testing.T, res harness.Result, line string) {
	t.Helper()
	if res.Code != 0 || res.FirstLine() != line {
		t.Fatalf("want %q and exit 0, got %s", line, res)
	}
}

func wantFail(t *testing.T, res harness.Result, codes ...errcode.Code) {
	t.Helper()
	if res.FirstLine() != "FAIL" {
		t.Fatalf("want FAIL first, got %s", res)
	}
	if !strings.HasPrefix(res.Stderr, "ERROR: ") {
		t.Fatalf("no ERROR line: %s", res)
	}
	wantExit(t, res, codes...)
}

// TestSpecBehaviour runs the "expected behaviour on a real ring" list of
// cs202.md section 4, on its ports.
func TestSpecBehaviour(t *testing.T) {
	t.Run("no server running", func(t *testing.T) {
		r := specRing(t, 1234, 1, 1235, 1, 1236, 1)
		wantExit(t, r.Client("get", "--", "abc"), errcode.NotFound, errcode.Network)
		if res := r.Client("put", "--", "abc", "def"); res.Code == 0 {
			t.Fatalf("put with no server succeeded: %s", res)
		}
	})
	t.Run("all running and empty", func(t *testing.T) {
		r := specRing(t, 1234, 1, 1235, 1, 1236, 1)
		r.StartAll()
		wantFail(t, r.Client("get", "--", "abc"), errcode.NotFound)
	})
	t.Run("all started with abc def", func(t *testing.T) {
		r := specRing(t, 1234, 1, 1235, 1, 1236, 1)
		for i := range r.Servers {
			r.Start(i, "abc", "def")
		}
		wantOK(t, r.Client("get", "--", "abc"), "OK def")
	})
	t.Run("only 1236 running", func(t *testing.T) {
		r := specRing(t, 1234, 1, 1235, 1, 1236, 1)
		r.Start(2, "abc", "def")
		wantOK(t, r.Client("get", "-r", "1", "-n", "3", "--", "abc"), "OK def")
		wantFail(t, r.Client("get", "-r", "2", "-n", "3", "--", "abc"), errcode.NotFound, errcode.Network)
	})
	t.Run("one-line servers.txt", func(t *testing.T) {
		r := specRing(t, 1234, 1)
		r.StartAll()
		wantFail(t, r.Client("get", "-r", "1", "-n", "1", "--", "abc"), errcode.NotFound)
		wantOK(t, r.Client("put", "-w", "1", "-n", "1", "--", "abc", "def"), "OK")
		wantOK(t, r.Client("get", "-r", "1", "-n", "1", "--", "abc"), "OK def")
	})
	t.Run("put then get", func(t *testing.T) {
		r := specRing(t, 1234, 1, 1235, 1, 1236, 1)
		r.StartAll()
		wantOK(t, r.Client("put", "--", "abc", "def"), "OK")
		wantOK(t, r.Client("get", "--", "abc"), "OK def")
		wantFail(t, r.Client("get", "--", "abcdef"), errcode.NotFound)
		wantFail(t, r.Client("get", "--", "a"), errcode.NotFound)
	})
	t.Run("a put reaches all N servers", func(t *testing.T) {
		r := specRing(t, 1234, 1, 1235, 2, 1236, 3, 1237, 2)
		r.StartAll()
		wantOK(t, r.Client("put", "--", "a", "b"), "OK")
		wantOK(t, r.Client("put", "--", "cc", "dd"), "OK")
		want := map[int]string{0: "a", 1: "a cc", 2: "a cc", 3: "cc"}
		for i, keys := range want {
			if got := strings.Join(serverKeys(t, r, i), " "); got != keys {
				t.Errorf("%s holds %q, want %q", r.Addr(i), got, keys)
			}
		}
	})
}

// serverKeys returns the sorted keys a server's dump shows.
func serverKeys(t *testing.T, r *harness.Ring, i int) []string {
	t.Helper()
	return keysOf(t, serverDump(t, r, i))
}

func serverDump(t *testing.T, r *harness.Ring, i int) map[string]string {
	t.Helper()
	res := r.Client("dump", "--server", r.Addr(i))
	if res.Code != 0 {
		t.Fatalf("dump --server %s: %s", r.Addr(i), res)
	}
	lines := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
	var count int
	if _, err := fmt.Sscanf(lines[0], "storing %d key-value pairs:", &count); err != nil {
		t.Fatalf("dump header %q", lines[0])
	}
	out := map[string]string{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, " --> ")
		if !ok {
			t.Fatalf("dump line %q", l)
		}
		out[k] = v
	}
	if len(out) != count {
		t.Fatalf("dump of %s announces %d pairs and lists %d", r.Addr(i), count, len(out))
	}
	return out
}

func keysOf(t *testing.T, m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestDumpRingFormat(t *testing.T) {
	r := specRing(t, 1234, 1, 1235, 1, 1236, 1)
	r.Start(0)
	r.Start(1)
	r.Start(2, "abc", "def") // 1236 alone holds abc
	wantExitOK := func(res harness.Result) harness.Result {
		if res.Code != 0 {
			t.Fatalf("%s", res)
		}
		return res
	}
	got := wantExitOK(harness.Run(t, r.Dir, harness.Bin(t, "dkvs-dump-ring"))).Stdout
	want := `Ring nodes:
93149f866bf3acc9710375cb46706bf09960a6ab (127.0.0.1 1236)
aa66f3e5a8d9cdc5c0bd49708bc59847e6915634 (127.0.0.1 1234)
c484ea9b3b14d139b1456032a49990367b857fe6 (127.0.0.1 1235)

127.0.0.1:1236:
storing 1 key-value pairs:
abc --> def

127.0.0.1:1234:
storing 0 key-value pairs:

127.0.0.1:1235:
storing 0 key-value pairs:

`
	if got != want {
		t.Fatalf("dump-ring:\n%s\nwant:\n%s", got, want)
	}
	if alt := wantExitOK(r.Client("dump-ring")).Stdout; alt != got {
		t.Fatalf("dkvs-client dump-ring differs:\n%s", alt)
	}
	// A server that does not answer shows its header only.
	r.Kill(1)
	got = wantExitOK(r.Client("dump-ring")).Stdout
	if !strings.Contains(got, "127.0.0.1:1235:\n\n") {
		t.Fatalf("down server:\n%s", got)
	}
}

func TestDumpRingSharedServers(t *testing.T) {
	r := specRing(t, 1234, 1, 1235, 2, 1236, 3, 1237, 2)
	r.StartAll()
	big := strings.Repeat("v", 30000)
	wantOK(t, r.Client("put", "--", "big", big), "OK")
	out := r.Client("dump-ring").Stdout
	for _, want := range []string{
		"05f92907",
		"127.0.0.1:1235: node 6 has same server as node 1\n\n",
		"127.0.0.1:1236: node 4 has same server as node 3\n\n",
		"127.0.0.1:1236: node 7 has same server as node 3\n\n",
		"127.0.0.1:1237: node 2 has same server as node 0\n\n",
		"big --> " + big + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dump-ring lacks %.80q", want)
		}
	}
}

func TestBinaryAndLargeValues(t *testing.T) {
	r := harness.NewRing(t, 1, 2, 3)
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i * 7)
	}
	cases := []struct{ key, value []byte }{
		{[]byte("nul"), []byte("a\x00b\x00\x00c")},
		{[]byte("key\x00with\x00nuls"), []byte("v")},
		{[]byte("empty"), []byte{}},
		{[]byte("1MiB"), mib},
	}
	for _, tc := range cases {
		if err := c.Put(bg, tc.key, tc.value, 3, 2); err != nil {
			t.Fatalf("put %q: %v", tc.key, err)
		}
		got, err := c.Get(bg, tc.key, 3, 2)
		if err != nil || !bytes.Equal(got, tc.value) {
			t.Fatalf("get %q: %d bytes, %v", tc.key, len(got), err)
		}
		// Every replica holds it whole.
		got, err = c.Get(bg, tc.key, 3, 3)
		if err != nil || !bytes.Equal(got, tc.value) {
			t.Fatalf("get R=3 %q: %v", tc.key, err)
		}
		if err := c.Delete(bg, tc.key, 3, 2); err != nil {
			t.Fatalf("del %q: %v", tc.key, err)
		}
		if _, err := c.Get(bg, tc.key, 3, 2); !errors.Is(err, dkvs.ErrNotFound) {
			t.Fatalf("get after del %q: %v", tc.key, err)
		}
	}
	// The command line takes binary values up to the argument limit.
	wantOK(t, r.Client("put", "--", "k", "tab\tand\nnewline"), "OK")
	if res := r.Client("get", "--", "k"); res.Stdout != "OK tab\tand\nnewline\n" {
		t.Fatalf("get: %q", res.Stdout)
	}
	wantOK(t, r.Client("del", "--", "k"), "OK")
	wantFail(t, r.Client("get", "--", "k"), errcode.NotFound)
	wantFail(t, r.Client("get", "--", ""), errcode.InvalidArg)
}

func TestLimits(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory", "--max-value-size", "1000", "--max-key-size", "100"}
	r.StartAll()
	// The server refuses what is above its limits; the client reports it.
	wantFail(t, r.Client("put", "--", "k", strings.Repeat("x", 2000)), errcode.InvalidArg)
	wantFail(t, r.Client("put", "--", strings.Repeat("k", 101), "v"), errcode.InvalidArg)
	wantFail(t, r.Client("get", "--", strings.Repeat("k", 101)), errcode.InvalidArg)
	wantOK(t, r.Client("put", "--", "k", strings.Repeat("x", 1000)), "OK")
	// The client's own limits (64 KiB keys, 16 MiB values) stop larger
	// requests before they are sent.
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(bg, []byte("k"), make([]byte, 16<<20+1), 3, 2); !errors.Is(err, dkvs.ErrInvalidArgument) {
		t.Fatalf("17 MiB value: %v", err)
	}
	if err := c.Put(bg, make([]byte, 64<<10+1), nil, 3, 2); !errors.Is(err, dkvs.ErrInvalidArgument) {
		t.Fatalf("64 KiB+1 key: %v", err)
	}
	// Servers still serve.
	wantOK(t, r.Client("get", "--", "k"), "OK "+strings.Repeat("x", 1000))
}

// TestPlacement writes 100 keys through the command line and checks that
// each lies on exactly its 3 home servers.
func TestPlacement(t *testing.T) {
	r := harness.NewRing(t, 1, 3, 2, 4, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	for i := 0; i < 100; i++ {
		wantOK(t, r.Client("put", "-n", "3", "-w", "2", "--", fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)), "OK")
	}
	rg := ring.New(r.Servers)
	dumps := make([]map[string]string, len(r.Servers))
	for i := range r.Servers {
		dumps[i] = serverDump(t, r, i)
	}
	for k := 0; k < 100; k++ {
		key := fmt.Sprintf("key-%d", k)
		home := map[int]bool{}
		for _, s := range rg.Preference([]byte(key), 3) {
			home[s] = true
		}
		for i := range r.Servers {
			v, has := dumps[i][key]
			if has != home[i] {
				t.Errorf("%s on %s: %v, home: %v", key, r.Addr(i), has, home[i])
			}
			if has && v != fmt.Sprintf("value-%d", k) {
				t.Errorf("%s on %s = %q", key, r.Addr(i), v)
			}
		}
	}
	// The ring-wide dump lists each key once, newest value, in key order.
	res := r.Client("dump")
	lines := strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n")
	if res.Code != 0 || len(lines) != 100 || !sort.StringsAreSorted(lines) {
		t.Fatalf("dump: %d lines, sorted %v: %s", len(lines), sort.StringsAreSorted(lines), res)
	}
	wantOK(t, r.Client("del", "--", "key-7"), "OK")
	if res := r.Client("dump"); strings.Contains(res.Stdout, "key-7 -->") || strings.Count(res.Stdout, "\n") != 99 {
		t.Fatalf("dump after delete: %s", res)
	}
}

func TestOneOfThreeKilled(t *testing.T) {
	r := harness.NewRing(t, 1, 2, 3)
	r.StartAll()
	r.Kill(1)
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("k%d", i)
		wantOK(t, r.Client("put", "-n", "3", "-w", "2", "--", key, "v"+key), "OK")
		wantOK(t, r.Client("get", "-n", "3", "-r", "2", "--", key), "OK v"+key)
	}
	// W=3 cannot be met with a server down.
	wantFail(t, r.Client("put", "-n", "3", "-w", "3", "--", "x", "y"), errcode.Network)
}

// TestRestartKeepsAcknowledged kills a server with SIGKILL right after the
// writes it acknowledged and checks that it still has them, with synced
// writes on disk.
func TestRestartKeepsAcknowledged(t *testing.T) {
	r := harness.NewRing(t, 2, 2, 2)
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := map[string]string{}
	for i := 0; i < 300; i++ {
		k, v := fmt.Sprintf("key-%03d", i), fmt.Sprintf("value-%d", i)
		if err := c.Put(bg, []byte(k), []byte(v), 3, 3); err != nil { // W=3: every server acknowledged
			t.Fatal(err)
		}
		want[k] = v
	}
	r.Kill(0)
	r.Start(0)
	got := serverDump(t, r, 0)
	if len(got) != len(want) {
		t.Fatalf("after SIGKILL and restart: %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q", k, got[k], v)
		}
	}
	// A clean stop (SIGTERM) exits 0 and keeps the data too.
	if err := r.Term(1); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, r.Log(1))
	}
	r.Start(1)
	if n := len(serverDump(t, r, 1)); n != len(want) {
		t.Fatalf("after SIGTERM and restart: %d keys", n)
	}
}

// TestBadFrames sends garbage, a truncated frame and a frame announcing
// 4 GiB on their own connections while a client keeps working on another.
func TestBadFrames(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory", "--frame-timeout", "500ms"}
	r.StartAll()
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			k := []byte(fmt.Sprintf("k%d", n%50))
			if err := c.Put(bg, k, k, 3, 3); err != nil {
				errc <- err
				return
			}
			if v, err := c.Get(bg, k, 3, 3); err != nil || !bytes.Equal(v, k) {
				errc <- fmt.Errorf("get %s: %q %v", k, v, err)
				return
			}
			n++
		}
	}()
	closed := func(name string, send func(net.Conn)) []byte {
		t.Helper()
		nc, err := net.Dial("tcp", r.Addr(0))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		send(nc)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var out bytes.Buffer
		if _, err := out.ReadFrom(nc); err != nil {
			t.Fatalf("%s: connection not closed: %v", name, err)
		}
		return out.Bytes()
	}
	closed("garbage", func(nc net.Conn) { nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) })
	closed("zeros", func(nc net.Conn) { nc.Write(make([]byte, 100)) })
	full := wire.AppendFrame(nil, wire.Frame{Kind: uint8(wire.OpGet), ID: 1, Body: wire.GetRequest{Key: []byte("k1")}.Append(nil)})
	closed("truncated, then silence", func(nc net.Conn) { nc.Write(full[:len(full)-2]) })
	closed("truncated, then half-close", func(nc net.Conn) {
		nc.Write(full[:6])
		nc.(*net.TCPConn).CloseWrite()
	})
	closed("malformed body", func(nc net.Conn) {
		nc.Write(wire.AppendFrame(nil, wire.Frame{Kind: uint8(wire.OpPut), ID: 2, Body: []byte{200, 1, 2}}))
	})
	out := closed("4 GiB", func(nc net.Conn) {
		nc.Write([]byte{0xff, 0xff, 0xff, 0xff, byte(wire.OpPut), 0, 0, 0, 0, 0, 0, 0, 0, 42})
	})
	f, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(out)), wire.DefaultMaxFrame)
	if err != nil || f.ID != 42 || f.Status() != wire.StatusTooLarge {
		t.Fatalf("4 GiB frame: answer %+v %v", f, err)
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("the well-behaved client failed: %v", err)
	}
	if !strings.Contains(r.Log(0), "refused frame") {
		t.Fatalf("no refused-frame log line:\n%s", r.Log(0))
	}
	if err := harness.Ping(r.Addr(0), time.Second); err != nil {
		t.Fatalf("server down after bad frames: %v", err)
	}
}

func TestServerCommandLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "servers.txt"), []byte("127.0.0.1 1 1\n"), 0o644)
	srv := harness.Bin(t, "dkvs-server")
	cases := []struct {
		args []string
		code errcode.Code
	}{
		{nil, errcode.InvalidCommand},
		{[]string{"127.0.0.1"}, errcode.InvalidCommand},
		{[]string{"127.0.0.1", "1234", "key"}, errcode.InvalidCommand},
		{[]string{"127.0.001", "1234"}, errcode.Address},
		{[]string{"256.0.0.1", "1234"}, errcode.Address},
		{[]string{"127.0.0.1", "0"}, errcode.InvalidConfig},
		{[]string{"127.0.0.1", "abc"}, errcode.InvalidConfig},
		{[]string{"--servers", "missing.txt", "127.0.0.1", "1234"}, errcode.IO},
		{[]string{"--bogus", "127.0.0.1", "1234"}, errcode.InvalidCommand},
		{[]string{"--max-value-size", "0", "127.0.0.1", "1234"}, errcode.InvalidCommand},
		{[]string{"--cache-size", "1000", "127.0.0.1", "1234"}, errcode.InvalidCommand},
		{[]string{"--cache-size", "big", "127.0.0.1", "1234"}, errcode.InvalidCommand},
		{[]string{"--log-level", "loud", "127.0.0.1", "1234"}, errcode.InvalidCommand},
	}
	for _, tc := range cases {
		res := harness.Run(t, dir, srv, tc.args...)
		if res.Code != tc.code.ExitStatus() || !strings.HasPrefix(res.Stderr, "ERROR: ") {
			t.Errorf("%q: %s, want exit %d", tc.args, res, tc.code.ExitStatus())
		}
	}
	// A port already in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	res := harness.Run(t, dir, srv, "--memory", "127.0.0.1", port)
	if res.Code != errcode.Network.ExitStatus() {
		t.Errorf("port in use: %s", res)
	}
	if res := harness.Run(t, dir, srv, "--help"); res.Code != 0 || !strings.Contains(res.Stdout, "Usage: dkvs-server") {
		t.Errorf("--help: %s", res)
	}
}

// TestEnvironment sets options through the environment.
func TestEnvironment(t *testing.T) {
	r := harness.NewRing(t, 1)
	t.Setenv("DKVS_MEMORY", "1")
	t.Setenv("DKVS_MAX_VALUE_SIZE", "10")
	r.StartAll()
	if _, err := os.Stat(r.DataDir(0)); err == nil {
		t.Fatal("DKVS_MEMORY=1 still created a data directory")
	}
	t.Setenv("DKVS_SERVERS", r.ServersFile())
	res := harness.Run(t, t.TempDir(), harness.Bin(t, "dkvs-client"), "put", "-n", "1", "--", "k", strings.Repeat("x", 11))
	wantFail(t, res, errcode.InvalidArg)
}
