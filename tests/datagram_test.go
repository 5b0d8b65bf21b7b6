package tests

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/tests/harness"
)

// udpClient is a raw UDP socket talking to one server's datagram port.
type udpClient struct {
	t    *testing.T
	conn *net.UDPConn
}

func dialUDP(t *testing.T, addr string) *udpClient {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpClient{t: t, conn: c}
}

// recv returns the next datagram, or ok=false when none arrives within d.
func (u *udpClient) recv(d time.Duration) ([]byte, bool) {
	u.t.Helper()
	buf := make([]byte, 1<<16)
	u.conn.SetReadDeadline(time.Now().Add(d))
	n, err := u.conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil, false
	}
	if err != nil {
		u.t.Fatalf("udp read: %v", err)
	}
	return buf[:n], true
}

// ask sends one datagram and returns the reply. UDP may drop a datagram
// even on loopback, so a request whose reply does not come is sent again
// (every request of the protocol can be repeated safely).
func (u *udpClient) ask(req []byte) []byte {
	u.t.Helper()
	for try := 0; try < 5; try++ {
		if _, err := u.conn.Write(req); err != nil {
			u.t.Fatalf("udp write: %v", err)
		}
		if d, ok := u.recv(2 * time.Second); ok {
			return d
		}
	}
	u.t.Fatalf("no reply to %.40q", req)
	return nil
}

// dump asks for a dump and returns its datagrams: the first announces K
// pairs; the others follow until K pairs came.
func (u *udpClient) dump() (int, [][]byte, map[string]string) {
	u.t.Helper()
	first := u.ask(nil)
	var k int
	header, _, ok := bytes.Cut(first, []byte("\n"))
	if _, err := fmt.Sscanf(string(header), "storing %d key-value pairs:", &k); err != nil || !ok {
		u.t.Fatalf("dump header %.80q", first)
	}
	dgrams := [][]byte{first}
	pairs := map[string]string{}
	addLines := func(d []byte) {
		if len(d) > 65507 {
			u.t.Fatalf("datagram of %d bytes", len(d))
		}
		if len(d) > 0 && d[len(d)-1] != '\n' {
			u.t.Fatalf("datagram does not end a line: a pair straddles two datagrams")
		}
		for _, line := range strings.SplitAfter(string(d), "\n") {
			if line == "" {
				continue
			}
			key, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " --> ")
			if !ok {
				u.t.Fatalf("dump line %.80q", line)
			}
			pairs[key] = value
		}
	}
	addLines(first[len(header)+1:])
	for len(pairs) < k {
		d, ok := u.recv(5 * time.Second)
		if !ok {
			u.t.Fatalf("dump announced %d pairs, %d came", k, len(pairs))
		}
		dgrams = append(dgrams, d)
		addLines(d)
	}
	return k, dgrams, pairs
}

// TestDatagramProtocol checks every row of cs202.md section 6 against a
// real server of a three-server ring.
func TestDatagramProtocol(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	r.Start(0, "abc", "def")
	r.Start(1)
	r.Start(2)
	u := dialUDP(t, r.Addr(0))

	rows := []struct {
		name string
		req  string
		want string
	}{
		{"get hit", "abc", "def"},
		{"get miss", "nope", "\x00"},
		{"put", "k\x00v a l", "\x00"},
		{"get after put", "k", "v a l"},
		{"put of an empty value", "empty\x00", "\x00"},
		{"get of an empty value", "empty", ""},
		{"put with NULs in the value", "bin\x00a\x00b", "\x00"},
		{"get of a value with NULs", "bin", "a\x00b"},
		{"put with an empty key", "\x00value", ""},
		{"put of a lone NUL", "\x00", ""},
		{"overwrite", "k\x00new", "\x00"},
		{"get after overwrite", "k", "new"},
	}
	for _, row := range rows {
		if got := u.ask([]byte(row.req)); string(got) != row.want {
			t.Errorf("%s: %q -> %q, want %q", row.name, row.req, got, row.want)
		}
	}
	// A datagram put is on this server alone (N=0), never copied by repair.
	if got := serverDump(t, r, 0)["k"]; got != "new" {
		t.Fatalf("dkvs-client dump --server: k = %q", got)
	}
	for _, i := range []int{1, 2} {
		if _, has := serverDump(t, r, i)["k"]; has {
			t.Fatalf("datagram put copied to %s", r.Addr(i))
		}
	}
	// A key deleted through the ring is a tombstone: "not found".
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(bg, []byte("ringkey"), []byte("ringvalue"), 3, 3); err != nil {
		t.Fatal(err)
	}
	if got := u.ask([]byte("ringkey")); string(got) != "ringvalue" {
		t.Fatalf("ring put seen by UDP get: %q", got)
	}
	if err := c.Delete(bg, []byte("ringkey"), 3, 3); err != nil {
		t.Fatal(err)
	}
	if got := u.ask([]byte("ringkey")); string(got) != "\x00" {
		t.Fatalf("tombstone: %q", got)
	}
	// The dump lists the live pairs only, "pairs" even for one.
	k, _, pairs := u.dump()
	want := map[string]string{"abc": "def", "k": "new", "empty": "", "bin": "a\x00b"}
	if k != len(want) || fmt.Sprint(pairs) != fmt.Sprint(want) {
		t.Fatalf("dump: %d pairs %q, want %q", k, pairs, want)
	}
	one := dialUDP(t, r.Addr(1))
	if got := one.ask([]byte("x\x00y")); string(got) != "\x00" {
		t.Fatal(got)
	}
	// (ringkey's tombstone is on every server: still one live pair.)
	if got := string(one.ask(nil)); got != "storing 1 key-value pairs:\nx --> y\n" {
		t.Fatalf("one pair: %q", got)
	}
}

// TestDatagramDump checks a dump that spans several datagrams (five
// values of 30,000 bytes) and the dump of an empty server.
func TestDatagramDump(t *testing.T) {
	r := harness.NewRing(t, 1, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	u := dialUDP(t, r.Addr(0))
	want := map[string]string{}
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("big%d", i)
		v := strings.Repeat(string(rune('a'+i)), 30000)
		if got := u.ask([]byte(k + "\x00" + v)); string(got) != "\x00" {
			t.Fatalf("put %s: %q", k, got)
		}
		want[k] = v
	}
	k, dgrams, pairs := u.dump()
	if k != 5 || len(pairs) != 5 || len(dgrams) < 3 {
		t.Fatalf("dump: %d announced, %d pairs in %d datagrams", k, len(pairs), len(dgrams))
	}
	for key, v := range want {
		if pairs[key] != v {
			t.Fatalf("%s: %d bytes, want %d", key, len(pairs[key]), len(v))
		}
	}
	// An empty server answers one count line and nothing more.
	e := dialUDP(t, r.Addr(1))
	if got := string(e.ask(nil)); got != "storing 0 key-value pairs:\n" {
		t.Fatalf("empty dump: %q", got)
	}
	if d, more := e.recv(500 * time.Millisecond); more {
		t.Fatalf("empty dump sent another datagram: %.80q", d)
	}
}

// TestDatagramGarbage sends malformed and hostile datagrams: the server
// stays up and keeps answering UDP and TCP.
func TestDatagramGarbage(t *testing.T) {
	r := harness.NewRing(t, 1)
	r.Args = []string{"--memory"}
	r.Start(0, "abc", "def")
	u := dialUDP(t, r.Addr(0))
	rng := rand.New(rand.NewPCG(1, 2))
	var garbage [][]byte
	for i := 0; i < 200; i++ {
		d := make([]byte, rng.IntN(2000))
		for j := range d {
			d[j] = byte(rng.IntN(256))
		}
		garbage = append(garbage, d)
	}
	garbage = append(garbage,
		bytes.Repeat([]byte("k"), 40000),                             // get with a key above the format's limit: no reply
		append(bytes.Repeat([]byte("k"), 33000), 0, 'v'),             // put with a key too long: refused
		append([]byte("k\x00"), bytes.Repeat([]byte("v"), 33000)...), // put with a value too long: refused
		bytes.Repeat([]byte{0}, 65507),                               // NULs only: an empty key
		[]byte("\xff\xfe\xfd"),
		[]byte("*1\r\n$4\r\nPING\r\n"),
		[]byte("\x00\x00\x00\x0e\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01"), // a native ping frame
	)
	for _, d := range garbage {
		if _, err := u.conn.Write(d); err != nil {
			t.Fatalf("write %d bytes: %v", len(d), err)
		}
	}
	// Drain what the server answered, then check it still answers.
	for {
		if _, ok := u.recv(300 * time.Millisecond); !ok {
			break
		}
	}
	if got := u.ask([]byte("abc")); string(got) != "def" {
		t.Fatalf("UDP get after garbage: %q", got)
	}
	if err := harness.Ping(r.Addr(0), 2*time.Second); err != nil {
		t.Fatalf("TCP after garbage: %v", err)
	}
	wantOK(t, r.Client("get", "-n", "1", "-r", "1", "--", "abc"), "OK def")
}

// TestDatagramPort checks that a server whose UDP port is taken does not
// start (ERR_NETWORK), and that --no-datagram runs without it.
func TestDatagramPort(t *testing.T) {
	ports := harness.FreePorts(t, 1)
	dir := t.TempDir()
	servers := filepath.Join(dir, "servers.txt")
	if err := os.WriteFile(servers, []byte(fmt.Sprintf("127.0.0.1 %d 1\n", ports[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	res := harness.Run(t, dir, harness.Bin(t, "dkvs-server"), "--memory", "--servers", servers, "127.0.0.1", fmt.Sprint(ports[0]))
	if res.Code != errcode.Network.ExitStatus() || !strings.Contains(res.Stderr, "UDP") {
		t.Fatalf("UDP port taken: %s", res)
	}
	rr := harness.NewRing(t, 1)
	rr.Args = []string{"--memory", "--no-datagram"}
	// Take the UDP port of rr's server: with --no-datagram it starts anyway.
	pc2, err := net.ListenPacket("udp4", rr.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer pc2.Close()
	rr.StartAll()
	wantOK(t, rr.Client("put", "-n", "1", "--", "a", "b"), "OK")
}
