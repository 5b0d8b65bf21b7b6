package resp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helloReply is the exact HELLO reply for protocol proto on connection id,
// written out by hand (not by the code under test).
func helloReply(proto int, id int64) string {
	head := "*14\r\n"
	if proto == 3 {
		head = "%7\r\n"
	}
	return head + "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n" +
		"$5\r\nproto\r\n:" + strconv.Itoa(proto) + "\r\n$2\r\nid\r\n:" + strconv.FormatInt(id, 10) + "\r\n" +
		"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
}

// dialID opens a raw connection and learns its id with CLIENT ID.
func dialID(t *testing.T, addr string) (*rawConn, int64) {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.send("CLIENT ID\r\n")
	got, err := rc.reply()
	if err != nil || len(got) < 4 || got[0] != ':' {
		t.Fatalf("CLIENT ID = %q, %v", got, err)
	}
	id, err := strconv.ParseInt(got[1:len(got)-2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return rc, id
}

const (
	wrongPass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
	noProto   = "-NOPROTO unsupported protocol version\r\n"
	badProto  = "-ERR Protocol version is not an integer or out of range\r\n"
	null2     = "$-1\r\n"
	null3     = "_\r\n"
)

// TestRawHello checks HELLO's exact replies byte for byte, the protocol
// each leaves the connection in (GET of a missing key answers a RESP2 or
// a RESP3 null) and what it does to the client name. Expected replies
// were taken from redis-server 7.0.15, except where noted.
func TestRawHello(t *testing.T) {
	_, addr := startServer(t, newFake(), Options{})
	h2, h3 := "{hello2}", "{hello3}"
	type step struct{ send, want string }
	cases := []struct {
		name  string
		steps []step
	}{
		{"no version is RESP2", []step{{"HELLO\r\n", h2}, {"GET nope\r\n", null2}}},
		{"HELLO 2", []step{{"HELLO 2\r\n", h2}, {"GET nope\r\n", null2}}},
		{"HELLO 3", []step{{"HELLO 3\r\n", h3}, {"GET nope\r\n", null3}}},
		{"no version keeps RESP3", []step{{"HELLO 3\r\n", h3}, {"HELLO\r\n", h3}, {"GET nope\r\n", null3}}},
		{"back to RESP2", []step{{"HELLO 3\r\n", h3}, {"HELLO 2\r\n", h2}, {"GET nope\r\n", null2}}},
		{"one pipeline, two protocols", []step{{"HELLO 3\r\nGET nope\r\nHELLO 2\r\nGET nope\r\n", h3 + null3 + h2 + null2}}},
		{"version 1", []step{{"HELLO 1\r\n", noProto}, {"GET nope\r\n", null2}}},
		{"version 4", []step{{"HELLO 4\r\n", noProto}}},
		{"version -3", []step{{"HELLO -3\r\n", noProto}}},
		{"version 0", []step{{"HELLO 0\r\n", noProto}}},
		{"version not a number", []step{{"HELLO two\r\n", badProto}}},
		{"version with plus", []step{{"HELLO +3\r\n", badProto}, {"GET nope\r\n", null2}}},
		{"version leading zero", []step{{"HELLO 03\r\n", badProto}}},
		{"version minus zero", []step{{"HELLO -0\r\n", badProto}}},
		{"version with space", []step{{bulkCmd("HELLO", " 3"), badProto}}},
		{"version empty", []step{{bulkCmd("HELLO", ""), badProto}}},
		{"version overflow", []step{{"HELLO 99999999999999999999\r\n", badProto}}},
		{"bad version keeps RESP3", []step{{"HELLO 3\r\n", h3}, {"HELLO 4\r\n", noProto}, {"GET nope\r\n", null3}}},
		{"AUTH default", []step{{"HELLO 3 AUTH default anything\r\n", h3}, {"GET nope\r\n", null3}}},
		{"AUTH other user", []step{{"HELLO 3 AUTH bob pw\r\n", wrongPass}, {"GET nope\r\n", null2}}},
		{"AUTH user is case-sensitive", []step{{"HELLO 3 AUTH DEFAULT pw\r\n", wrongPass}}},
		{"AUTH lower case", []step{{"hello 3 auth default pw setname n1\r\n", h3}, {"CLIENT GETNAME\r\n", "$2\r\nn1\r\n"}}},
		{"AUTH without password", []step{{"HELLO 3 AUTH default\r\n", "-ERR Syntax error in HELLO option 'AUTH'\r\n"}}},
		{"SETNAME", []step{{"HELLO 2 SETNAME n1\r\n", h2}, {"CLIENT GETNAME\r\n", "$2\r\nn1\r\n"}}},
		{"SETNAME twice", []step{{"HELLO 3 SETNAME a SETNAME b\r\n", h3}, {"CLIENT GETNAME\r\n", "$1\r\nb\r\n"}}},
		{"SETNAME empty", []step{{"HELLO 3 SETNAME a\r\n", h3}, {bulkCmd("HELLO", "3", "SETNAME", ""), h3}, {"CLIENT GETNAME\r\n", null3}}},
		{"SETNAME without name", []step{{"HELLO 3 SETNAME\r\n", "-ERR Syntax error in HELLO option 'SETNAME'\r\n"}}},
		{"SETNAME bad name", []step{{bulkCmd("HELLO", "3", "SETNAME", "a b"), "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"}}},
		// Redis 7.0 keeps the name "a" here; dkvs changes nothing on a
		// refused HELLO.
		{"refused HELLO sets no name", []step{{"HELLO 3 SETNAME a b\r\n", "-ERR Syntax error in HELLO option 'b'\r\n"}, {"CLIENT GETNAME\r\n", null2}}},
		{"unknown option", []step{{"HELLO 3 FOO\r\n", "-ERR Syntax error in HELLO option 'FOO'\r\n"}}},
		{"option without version", []step{{"HELLO SETNAME\r\n", badProto}}},
		{"AUTH command default", []step{{"AUTH default pw\r\n", "+OK\r\n"}}},
		{"AUTH command other user", []step{{"AUTH bob pw\r\n", wrongPass}}},
		{"AUTH command password only", []step{{"AUTH pw\r\n", "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc, id := dialID(t, addr)
			for _, st := range c.steps {
				want := strings.NewReplacer(h2, helloReply(2, id), h3, helloReply(3, id)).Replace(st.want)
				rc.send(st.send)
				var got strings.Builder
				for got.Len() < len(want) {
					r, err := rc.reply()
					if err != nil {
						t.Fatalf("%q: read after %q: %v", st.send, got.String(), err)
					}
					got.WriteString(r)
				}
				if got.String() != want {
					t.Fatalf("%q:\n got %q\nwant %q", st.send, got.String(), want)
				}
			}
		})
	}
}

// TestRawRESP3Replies sends each command dkvs supports on a RESP2 and on a
// RESP3 connection and checks the exact bytes: RESP2 replies are those
// dkvs has always sent, RESP3 ones use the types Redis 7.0.15 sends for
// the same command (checked against redis-server with HELLO 3).
func TestRawRESP3Replies(t *testing.T) {
	f := newFake()
	f.set("a", "1")
	f.set("b", "2")
	_, addr := startServer(t, f, Options{})
	getInfo2 := "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n"
	getInfo3 := "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~0\r\n~0\r\n"
	getDoc := "$7\r\nsummary\r\n$34\r\nReturns the string value of a key.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n" +
		"$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n"
	getArg := "$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"
	mgetArg := "$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n$5\r\nflags\r\n"
	ring := "# Ring\r\nring_servers:3\r\nring_server0:127.0.0.1:7001\r\nring_server1:127.0.0.1:7002\r\nring_server2:127.0.0.1:7003\r\n" +
		"replicas_n:3\r\nwrite_quorum_w:2\r\nread_quorum_r:2\r\n"
	cases := []struct {
		cmd        string
		want2      string
		want3      string // "" means the same as want2
		writesKeys bool
	}{
		{cmd: "GET a", want2: "$1\r\n1\r\n"},
		{cmd: "GET nope", want2: null2, want3: null3},
		{cmd: `GET ""`, want2: null2, want3: null3},
		{cmd: "MGET a nope b", want2: "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n", want3: "*3\r\n$1\r\n1\r\n_\r\n$1\r\n2\r\n"},
		{cmd: "SET c 3", want2: "+OK\r\n"},
		{cmd: "MSET c 3 d 4", want2: "+OK\r\n"},
		{cmd: "DEL nope", want2: ":0\r\n"},
		{cmd: "EXISTS a a nope", want2: ":2\r\n"},
		{cmd: "SCAN 0 MATCH a", want2: "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n"},
		{cmd: "KEYS [ab]", want2: "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{cmd: "PING", want2: "+PONG\r\n"},
		{cmd: "PING x", want2: "$1\r\nx\r\n"},
		{cmd: "ECHO e", want2: "$1\r\ne\r\n"},
		{cmd: "SELECT 0", want2: "+OK\r\n"},
		{cmd: "CLIENT GETNAME", want2: null2, want3: null3},
		{cmd: "CLIENT SETINFO lib-name x", want2: "+OK\r\n"},
		{cmd: "CONFIG GET save", want2: "*2\r\n$4\r\nsave\r\n$0\r\n\r\n", want3: "%1\r\n$4\r\nsave\r\n$0\r\n\r\n"},
		{cmd: "CONFIG GET nothing", want2: "*0\r\n", want3: "%0\r\n"},
		{cmd: "CONFIG GET appendonly databases", want2: "*4\r\n$10\r\nappendonly\r\n$2\r\nno\r\n$9\r\ndatabases\r\n$1\r\n1\r\n",
			want3: "%2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n$9\r\ndatabases\r\n$1\r\n1\r\n"},
		{cmd: "COMMAND COUNT", want2: ":19\r\n"},
		{cmd: "COMMAND INFO nosuch", want2: "*1\r\n$-1\r\n", want3: "*1\r\n_\r\n"},
		{cmd: "COMMAND INFO get", want2: getInfo2, want3: getInfo3},
		{cmd: "COMMAND DOCS get", want2: "*2\r\n$3\r\nget\r\n*10\r\n" + getDoc + "*6\r\n" + getArg,
			want3: "%1\r\n$3\r\nget\r\n%5\r\n" + getDoc + "%3\r\n" + getArg},
		{cmd: "COMMAND DOCS mget", want2: "*2\r\n$4\r\nmget\r\n*10\r\n" + strings.Replace(strings.Replace(getDoc, "$34\r\nReturns the string value of a key.",
			"$89\r\nReturns the string values of one or more keys (read one by one, not atomically, in dkvs).", 1), "$4\r\nO(1)", "$34\r\nO(N) where N is the number of keys", 1) +
			"*8\r\n" + mgetArg + "*1\r\n+multiple\r\n",
			want3: "%1\r\n$4\r\nmget\r\n%5\r\n" + strings.Replace(strings.Replace(getDoc, "$34\r\nReturns the string value of a key.",
				"$89\r\nReturns the string values of one or more keys (read one by one, not atomically, in dkvs).", 1), "$4\r\nO(1)", "$34\r\nO(N) where N is the number of keys", 1) +
				"%4\r\n" + mgetArg + "~1\r\n+multiple\r\n"},
		{cmd: "COMMAND DOCS nosuch", want2: "*0\r\n", want3: "%0\r\n"},
		{cmd: "INFO ring", want2: fmt.Sprintf("$%d\r\n%s\r\n", len(ring), ring), want3: fmt.Sprintf("=%d\r\ntxt:%s\r\n", len(ring)+4, ring)},
		{cmd: "GET a b", want2: "-ERR wrong number of arguments for 'get' command\r\n"},
		{cmd: "SET a 1 EX 10", want2: "-ERR SET option EX is not supported: dkvs keys do not expire\r\n"},
		{cmd: "NOPE", want2: "-ERR unknown command 'NOPE', with args beginning with: \r\n"},
		{cmd: "QUIT", want2: "+OK\r\n"},
	}
	for _, proto := range []int{2, 3} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("resp%d/%s", proto, c.cmd), func(t *testing.T) {
				rc, id := dialID(t, addr)
				want := c.want2
				if proto == 3 {
					rc.send("HELLO 3\r\n")
					rc.expect(helloReply(3, id))
					if c.want3 != "" {
						want = c.want3
					}
				}
				rc.send(c.cmd + "\r\n")
				rc.expect(want)
			})
		}
	}
}

// TestRawRESP3ClientText checks CLIENT INFO and CLIENT LIST, whose text
// varies: a verbatim string of format txt in RESP3, a bulk string in
// RESP2, with the connection's protocol in its resp= field.
func TestRawRESP3ClientText(t *testing.T) {
	_, addr := startServer(t, newFake(), Options{})
	c2, _ := dialID(t, addr)
	c3, id3 := dialID(t, addr)
	c3.send("HELLO 3\r\n")
	c3.expect(helloReply(3, id3))
	cases := []struct {
		rc      *rawConn
		cmd     string
		prefix  string
		contain []string
	}{
		{c2, "CLIENT INFO", "$", []string{" resp=2 "}},
		{c3, "CLIENT INFO", "=", []string{"\r\ntxt:id=", " resp=3 "}},
		{c2, "CLIENT LIST", "$", []string{" resp=2 ", " resp=3 "}},
		{c3, "CLIENT LIST", "=", []string{"\r\ntxt:id=", " resp=2 ", " resp=3 "}},
	}
	for _, c := range cases {
		c.rc.send(c.cmd + "\r\n")
		got, err := c.rc.reply()
		if err != nil || !strings.HasPrefix(got, c.prefix) {
			t.Fatalf("%s = %q, %v; want a reply starting %q", c.cmd, got, err, c.prefix)
		}
		for _, w := range c.contain {
			if !strings.Contains(got, w) {
				t.Errorf("%s = %q; want it to contain %q", c.cmd, got, w)
			}
		}
	}
}

// TestRawRESP3InFlight: a command's reply is in the protocol of the
// connection when the command was read, even if HELLO switches it while
// the command is still running (as in Redis, where the reply is written
// before HELLO runs).
func TestRawRESP3InFlight(t *testing.T) {
	f := newFake()
	release := make(chan struct{})
	f.onGet = func(ctx context.Context, key []byte) error {
		if string(key) == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	_, addr := startServer(t, f, Options{})
	rc, id := dialID(t, addr)
	rc.send("GET slow\r\nHELLO 3\r\nGET nope\r\n")
	// Wait until HELLO has switched the connection, as another client sees.
	other := dialRaw(t, addr)
	waitFor(t, "HELLO 3 to be read", 10*time.Second, func() bool {
		other.send("CLIENT LIST\r\n")
		got, err := other.reply()
		return err == nil && strings.Contains(got, fmt.Sprintf("id=%d ", id)) && strings.Contains(got, " resp=3 ")
	})
	close(release)
	rc.expect(null2)
	rc.expect(helloReply(3, id))
	rc.expect(null3)
}

// FuzzParseHello checks HELLO's parser on arbitrary arguments: it never
// panics, accepts a version exactly when it is 2 or 3 written as Redis
// writes integers, and a request it accepts has only known options with
// valid names.
func FuzzParseHello(f *testing.F) {
	for _, seed := range []string{"3", "2 AUTH default pw SETNAME x", "3 setname a setname b", "+3", "03", "-0", "3 AUTH a", "4", "3 FOO", "", "2 SETNAME a b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		args := [][]byte{[]byte("HELLO")}
		for _, a := range strings.Split(in, " ") {
			if in != "" {
				args = append(args, []byte(a))
			}
		}
		var authCalls int
		req, e := parseHello(args, func(user, pass []byte) string {
			authCalls++
			if string(user) == "default" {
				return ""
			}
			return "WRONGPASS"
		})
		if len(args) >= 2 {
			n, err := strconv.ParseInt(string(args[1]), 10, 64)
			canonical := err == nil && strconv.FormatInt(n, 10) == string(args[1])
			if v, ok := parseRedisInt(args[1]); ok != canonical || (ok && v != n) {
				t.Fatalf("parseRedisInt(%q) = %d, %v; canonical %v", args[1], v, ok, canonical)
			}
			if canonical && n != 2 && n != 3 && e != errNoProto {
				t.Fatalf("version %d: %q", n, e)
			}
		}
		if e != "" {
			return
		}
		switch {
		case len(args) == 1 && req.proto != 0:
			t.Fatalf("no version, proto %d", req.proto)
		case len(args) > 1 && req.proto != resp2 && req.proto != resp3:
			t.Fatalf("accepted proto %d", req.proto)
		case req.setName && !validClientName(req.name):
			t.Fatalf("accepted name %q", req.name)
		case req.auth && string(req.user) != "default":
			t.Fatalf("accepted user %q", req.user)
		}
		opts := 0
		for _, a := range args[min(2, len(args)):] {
			switch strings.ToUpper(string(a)) {
			case "AUTH", "SETNAME":
				opts++
			}
		}
		if opts == 0 && len(args) > 2 {
			t.Fatalf("accepted %q with no option", args)
		}
	})
}
