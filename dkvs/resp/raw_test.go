package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawConn is a test connection that speaks bytes.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one complete RESP reply and returns its raw bytes.
func (c *rawConn) reply() (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	err := readRaw(c.r, &b)
	return b.String(), err
}

func (c *rawConn) expect(want string) {
	c.t.Helper()
	got, err := c.reply()
	if err != nil || got != want {
		c.t.Fatalf("reply %q, %v; want %q", got, err, want)
	}
}

// expectClosed checks that the server closed the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := c.r.ReadByte(); err == nil {
		c.t.Fatalf("read %q, want the connection closed", b)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		c.t.Fatalf("read error %v, want EOF", err)
	}
}

func readRaw(r *bufio.Reader, b *strings.Builder) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	b.WriteString(line)
	if len(line) < 3 {
		return fmt.Errorf("short line %q", line)
	}
	switch line[0] {
	case '+', '-', ':', '_', '#', ',', '(':
		return nil
	case '$', '=':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil {
			return err
		}
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		b.Write(buf)
		return nil
	case '*', '~', '%':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil {
			return err
		}
		if line[0] == '%' {
			n *= 2 // keys and values
		}
		for i := 0; i < n; i++ {
			if err := readRaw(r, b); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad reply line %q", line)
}

func bulkCmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// TestRawProtocol sends raw requests, well-formed and not, and checks the
// exact bytes of the replies and whether the connection is closed.
func TestRawProtocol(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, f, Options{MaxRequestSize: 1 << 20})
	cases := []struct {
		name   string
		in     string
		want   []string
		closed bool
	}{
		{"inline ping", "PING\r\n", []string{"+PONG\r\n"}, false},
		{"inline newline only", "PING\n", []string{"+PONG\r\n"}, false},
		{"inline pipeline", "SET a b\r\nGET a\r\nGET \"a\"\r\n", []string{"+OK\r\n", "$1\r\nb\r\n", "$1\r\nb\r\n"}, false},
		{"empty lines skipped", "\r\n\r\n \r\nPING\r\n", []string{"+PONG\r\n"}, false},
		{"multibulk", bulkCmd("ECHO", "x\r\ny"), []string{"$4\r\nx\r\ny\r\n"}, false},
		{"leading zeros", "*01\r\n$04\r\nPING\r\n", []string{"+PONG\r\n"}, false},
		{"empty bulk", bulkCmd("ECHO", ""), []string{"$0\r\n\r\n"}, false},
		{"unknown", bulkCmd("NOPE", "x"), []string{"-ERR unknown command 'NOPE', with args beginning with: 'x' \r\n"}, false},
		{"unknown long args", bulkCmd("NOPE", strings.Repeat("a", 200), "b"),
			[]string{"-ERR unknown command 'NOPE', with args beginning with: '" + strings.Repeat("a", 128) + "' \r\n"}, false},
		{"newline in error", bulkCmd("NO\r\nPE"), []string{"-ERR unknown command 'NO  PE', with args beginning with: \r\n"}, false},
		{"bulk length overflow", "*2\r\n$3\r\nGET\r\n$9223372036854775807\r\nxx",
			[]string{"-ERR Protocol error: invalid bulk length\r\n"}, true},
		{"bulk length above request limit", "*2\r\n$3\r\nGET\r\n$999999999999\r\n",
			[]string{"-ERR Protocol error: request larger than 1048576 bytes\r\n"}, true},
		{"negative bulk length", "*1\r\n$-1\r\n", []string{"-ERR Protocol error: invalid bulk length\r\n"}, true},
		{"bulk length not a number", "*1\r\n$x\r\n", []string{"-ERR Protocol error: invalid bulk length\r\n"}, true},
		{"bulk length without CR", "*1\r\n$4\nPING\r\n", []string{"-ERR Protocol error: invalid bulk length\r\n"}, true},
		{"huge multibulk", "*99999999999\r\n", []string{"-ERR Protocol error: invalid multibulk length\r\n"}, true},
		{"multibulk overflow", "*9223372036854775808\r\n", []string{"-ERR Protocol error: invalid multibulk length\r\n"}, true},
		{"zero multibulk", "*0\r\n", []string{"-ERR Protocol error: invalid multibulk length\r\n"}, true},
		{"negative multibulk", "*-1\r\n", []string{"-ERR Protocol error: invalid multibulk length\r\n"}, true},
		{"missing dollar", "*1\r\nPING\r\n", []string{"-ERR Protocol error: expected '$', got 'P'\r\n"}, true},
		{"binary instead of dollar", "*1\r\n\x00", []string{"-ERR Protocol error: expected '$', got '\\x00'\r\n"}, true},
		{"payload too long", "*1\r\n$3\r\nPINGPING\r\n", []string{"-ERR Protocol error: invalid bulk length\r\n"}, true},
		{"answers before the error", "PING\r\n" + bulkCmd("ECHO", "z") + "*1\r\n$-5\r\nPING\r\n",
			[]string{"+PONG\r\n", "$1\r\nz\r\n", "-ERR Protocol error: invalid bulk length\r\n"}, true},
		{"inline too long", strings.Repeat("a", MaxInlineSize+10), []string{"-ERR Protocol error: too big inline request\r\n"}, true},
		{"unbalanced quotes", "SET \"a b\r\n", []string{"-ERR Protocol error: unbalanced quotes in request\r\n"}, true},
		{"quit", "PING\r\nQUIT\r\nPING\r\n", []string{"+PONG\r\n", "+OK\r\n"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send(c.in)
			for _, w := range c.want {
				rc.expect(w)
			}
			if c.closed {
				rc.expectClosed()
			} else {
				rc.send("PING\r\n")
				rc.expect("+PONG\r\n")
			}
		})
	}
}

// TestRawPartialAndOversize: a connection that stops mid-command does not
// hold up others; a value above the limit is refused and the connection
// stays usable; a huge announced bulk never grows memory.
func TestRawPartialAndOversize(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, f, Options{MaxValueSize: 1000})

	partial := dialRaw(t, addr)
	partial.send("*3\r\n$3\r\nSET\r\n$1\r\np\r\n$5\r\nhel")

	other := dialRaw(t, addr)
	other.send(bulkCmd("SET", "o", "1") + bulkCmd("GET", "o"))
	other.expect("+OK\r\n")
	other.expect("$1\r\n1\r\n")

	partial.send("lo\r\n")
	partial.expect("+OK\r\n")
	if v, _ := f.value("p"); v != "hello" {
		t.Fatalf("p = %q", v)
	}

	// A value above MaxValueSize: read in full, refused, connection kept.
	big := strings.Repeat("x", 5000)
	other.send(bulkCmd("SET", "big", big) + bulkCmd("GET", "o"))
	other.expect("-ERR value too large: 5000 bytes, the limit is 1000\r\n")
	other.expect("$1\r\n1\r\n")

	// An announced 60 MiB bulk that never comes: the server waits without
	// allocating it, and others are served.
	huge := dialRaw(t, addr)
	huge.send("*3\r\n$3\r\nSET\r\n$1\r\nh\r\n$62914560\r\nabc")
	other.send("PING\r\n")
	other.expect("+PONG\r\n")
}

// TestRawGarbage throws random bytes at the server on many connections,
// then checks that it still answers.
func TestRawGarbage(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, f, Options{MaxRequestSize: 1 << 20})
	rng := rand.New(rand.NewPCG(1, 2))
	prefixes := []string{"", "*", "*2\r\n", "*2\r\n$", "*1\r\n$3\r\n", "$", "\"", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$"}
	for i := 0; i < 200; i++ {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		junk := make([]byte, rng.IntN(8192))
		for j := range junk {
			junk[j] = byte(rng.UintN(256))
			if rng.IntN(20) == 0 {
				junk[j] = "\r\n*$0123456789\" "[rng.IntN(16)]
			}
		}
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		nc.Write(append([]byte(prefixes[i%len(prefixes)]), junk...))
		if i%2 == 0 {
			// Read whatever comes until the server closes or goes quiet.
			nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			io.Copy(io.Discard, nc)
		}
		nc.Close()
	}
	rc := dialRaw(t, addr)
	rc.send(bulkCmd("SET", "after", "garbage") + bulkCmd("GET", "after"))
	rc.expect("+OK\r\n")
	rc.expect("$7\r\ngarbage\r\n")
}

// TestRawChunkedMix sends a mix of inline, small and large (above the
// reader-reset threshold) commands, cut at random places, and checks
// every reply: commands must neither be lost nor repeated when the
// server replaces its reader after a large command.
func TestRawChunkedMix(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, f, Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 6; round++ {
		rc := dialRaw(t, addr)
		var in strings.Builder
		var want []string
		for i := 0; i < 40; i++ {
			k := fmt.Sprintf("k%d-%d", round, i)
			switch rng.IntN(4) {
			case 0:
				v := strings.Repeat(string(rune('a'+i%26)), resetReaderAbove+rng.IntN(1000))
				in.WriteString(bulkCmd("SET", k, v))
				want = append(want, "+OK\r\n")
				in.WriteString(bulkCmd("GET", k))
				want = append(want, fmt.Sprintf("$%d\r\n%s\r\n", len(v), v))
			case 1:
				if round%2 == 0 {
					in.WriteString("ECHO " + k + "\r\n")
				} else {
					in.WriteString(bulkCmd("ECHO", k))
				}
				want = append(want, fmt.Sprintf("$%d\r\n%s\r\n", len(k), k))
			default:
				in.WriteString(bulkCmd("SET", k, "v"+k))
				want = append(want, "+OK\r\n")
				in.WriteString(bulkCmd("GET", k))
				want = append(want, fmt.Sprintf("$%d\r\nv%s\r\n", len(k)+1, k))
			}
		}
		data := in.String()
		go func() {
			for len(data) > 0 {
				n := min(len(data), 1+rng.IntN(100000))
				if _, err := io.WriteString(rc.nc, data[:n]); err != nil {
					return
				}
				data = data[n:]
			}
		}()
		for i, w := range want {
			got, err := rc.reply()
			if err != nil || got != w {
				t.Fatalf("round %d reply %d: %.80q, %v; want %.80q", round, i, got, err, w)
			}
		}
	}
}

func TestListenAndServe(t *testing.T) {
	s := New(newFake(), Options{})
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe("127.0.0.1:0") }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := s.Addr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, addr.String())
	rc.send("PING\r\n")
	rc.expect("+PONG\r\n")
	s.Close()
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ListenAndServe = %v", err)
	}
	if err := New(newFake(), Options{}).ListenAndServe("256.0.0.1:1"); err == nil {
		t.Fatal("ListenAndServe on a bad address succeeded")
	}
}

func TestCloseAndShutdown(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		f := newFake()
		s, addr := startServer(t, f, Options{})
		rc := dialRaw(t, addr)
		rc.send("PING\r\n")
		rc.expect("+PONG\r\n")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		rc.expectClosed()
		if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			t.Errorf("dial after Close succeeded")
		}
	})
	t.Run("shutdown finishes commands under way", func(t *testing.T) {
		f := newFake()
		f.set("k", "v")
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		f.onGet = func(ctx context.Context, key []byte) error {
			started <- struct{}{}
			<-release
			return nil
		}
		s, addr := startServer(t, f, Options{})
		rc := dialRaw(t, addr)
		rc.send(bulkCmd("GET", "k"))
		<-started
		done := make(chan error, 1)
		go func() { done <- s.Shutdown(context.Background()) }()
		close(release)
		rc.expect("$1\r\nv\r\n")
		rc.expectClosed()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
