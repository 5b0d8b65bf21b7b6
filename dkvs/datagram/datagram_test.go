package datagram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLocal is an in-memory Local.
type fakeLocal struct {
	mu      sync.Mutex
	data    map[string][]byte
	failPut bool
	failGet bool
}

func newLocal() *fakeLocal { return &fakeLocal{data: map[string][]byte{}} }

func (f *fakeLocal) GetLocal(ctx context.Context, key []byte) ([]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failGet {
		return nil, false, errors.New("disk on fire")
	}
	v, ok := f.data[string(key)]
	return bytes.Clone(v), ok, nil
}

func (f *fakeLocal) PutLocal(ctx context.Context, key, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPut {
		return errors.New("disk full")
	}
	f.data[string(key)] = bytes.Clone(value)
	return nil
}

func (f *fakeLocal) ScanLocal(ctx context.Context, fn func(key, value []byte) bool) error {
	f.mu.Lock()
	keys := make([]string, 0, len(f.data))
	for k := range f.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = f.data[k]
	}
	f.mu.Unlock()
	for i, k := range keys {
		if !fn([]byte(k), vals[i]) {
			break
		}
	}
	return nil
}

func (f *fakeLocal) get(k string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.data[k]
	return v, ok
}

func (f *fakeLocal) set(k string, v []byte) {
	f.mu.Lock()
	f.data[k] = v
	f.mu.Unlock()
}

func startServer(t *testing.T, l Local) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(l, Options{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return pc.LocalAddr().String()
}

// client is a UDP socket talking to the server.
type client struct {
	t    *testing.T
	conn *net.UDPConn
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	// Room for a whole burst of dump datagrams (capped by rmem_max).
	c.SetReadBuffer(8 << 20)
	t.Cleanup(func() { c.Close() })
	return &client{t: t, conn: c}
}

func (c *client) send(d []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(d); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recv returns the next datagram, or an error after d.
func (c *client) recv(d time.Duration) ([]byte, error) {
	buf := make([]byte, 70000)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, err := c.conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func (c *client) expect(want []byte) {
	c.t.Helper()
	got, err := c.recv(5 * time.Second)
	if err != nil || !bytes.Equal(got, want) {
		c.t.Fatalf("reply %q (%d bytes), %v; want %q", trunc(got), len(got), err, trunc(want))
	}
}

func trunc(b []byte) []byte {
	if len(b) > 60 {
		return b[:60]
	}
	return b
}

// TestRequests covers every row of cs202.md section 6 and the edge cases
// of the package comment. A request that gets no reply is followed by a
// marker get, whose answer must be the next datagram.
func TestRequests(t *testing.T) {
	l := newLocal()
	l.set("abc", []byte("def"))
	l.set("empty", []byte{})
	l.set("bin", []byte("\x00\xff\n"))
	l.set("marker", []byte("M"))
	l.set("huge", bytes.Repeat([]byte("h"), MaxValueSize+1))
	addr := startServer(t, l)
	c := dial(t, addr)

	long := bytes.Repeat([]byte("k"), MaxKeySize)
	cases := []struct {
		name    string
		in      []byte
		want    []byte // nil: no reply
		stored  string // key expected to hold storedV afterwards
		storedV string
	}{
		{"get hit", []byte("abc"), []byte("def"), "", ""},
		{"get miss", []byte("nope"), []byte{0}, "", ""},
		{"get prefix of a key", []byte("ab"), []byte{0}, "", ""},
		{"get empty value", []byte("empty"), []byte{}, "", ""},
		{"get binary value", []byte("bin"), []byte("\x00\xff\n"), "", ""},
		{"get key at limit", long, []byte{0}, "", ""},
		{"get key over limit", append(bytes.Clone(long), 'k'), nil, "", ""},
		{"get value over limit", []byte("huge"), nil, "", ""},
		{"put", []byte("k1\x00v1"), []byte{0}, "k1", "v1"},
		{"put empty value", []byte("k2\x00"), []byte{0}, "k2", ""},
		{"key with trailing NUL is a put", []byte("abc\x00"), []byte{0}, "abc", ""},
		{"put value with NULs", []byte("k3\x00a\x00b\x00"), []byte{0}, "k3", "a\x00b\x00"},
		{"put binary key", []byte("\xff\n \x01\x00v"), []byte{0}, "\xff\n \x01", "v"},
		{"put empty key", []byte("\x00value"), []byte{}, "", ""},
		{"only NUL", []byte{0}, []byte{}, "", ""},
		{"two NULs", []byte{0, 0}, []byte{}, "", ""},
		{"put key at limit", append(bytes.Clone(long), 0, 'v'), []byte{0}, string(long), "v"},
		{"put key over limit", append(append(bytes.Clone(long), 'k'), 0, 'v'), []byte{}, "", ""},
		{"put value at limit", append([]byte("kv\x00"), bytes.Repeat([]byte("v"), MaxValueSize)...), []byte{0}, "kv", strings.Repeat("v", MaxValueSize)},
		{"put value over limit", append([]byte("kx\x00"), bytes.Repeat([]byte("v"), MaxValueSize+1)...), []byte{}, "", ""},
		{"get after put", []byte("k1"), []byte("v1"), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.in)
			if tc.want == nil {
				c.send([]byte("marker"))
				c.expect([]byte("M"))
			} else {
				c.expect(tc.want)
			}
			if tc.stored != "" {
				if v, ok := l.get(tc.stored); !ok || string(v) != tc.storedV {
					t.Errorf("store[%q] = %q, %v; want %q", trunc([]byte(tc.stored)), trunc(v), ok, trunc([]byte(tc.storedV)))
				}
			}
		})
	}
	if _, ok := l.get("kx"); ok {
		t.Error("refused put stored its key")
	}
}

func TestStorageErrors(t *testing.T) {
	l := newLocal()
	l.set("marker", []byte("M"))
	addr := startServer(t, l)
	c := dial(t, addr)

	l.mu.Lock()
	l.failPut = true
	l.mu.Unlock()
	c.send([]byte("k\x00v"))
	c.expect([]byte{}) // refused

	l.mu.Lock()
	l.failPut, l.failGet = false, true
	l.mu.Unlock()
	c.send([]byte("k"))
	// No reply to a failed get: check by the absence of a datagram before
	// the put's reply.
	c.send([]byte("k\x00v"))
	c.expect([]byte{0})
}

// dumpOf sends a dump request and returns its datagrams, read until the
// count of the first one is reached.
func dumpOf(t *testing.T, c *client) (int, [][]byte) {
	t.Helper()
	c.send(nil)
	first, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatalf("no dump reply: %v", err)
	}
	line, _, ok := bytes.Cut(first, []byte("\n"))
	var k int
	if !ok || !bytes.HasPrefix(line, []byte("storing ")) || !bytes.HasSuffix(line, []byte(" key-value pairs:")) {
		t.Fatalf("first dump datagram starts %q", trunc(first))
	}
	k, err = strconv.Atoi(string(line[len("storing ") : len(line)-len(" key-value pairs:")]))
	if err != nil {
		t.Fatalf("count in %q: %v", line, err)
	}
	dgs := [][]byte{first}
	got := bytes.Count(first, []byte("\n")) - 1
	for got < k {
		d, err := c.recv(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d pairs: %v", got, k, err)
		}
		dgs = append(dgs, d)
		got += bytes.Count(d, []byte("\n"))
	}
	return k, dgs
}

func TestDumpEmpty(t *testing.T) {
	l := newLocal()
	addr := startServer(t, l)
	c := dial(t, addr)
	k, dgs := dumpOf(t, c)
	if k != 0 || len(dgs) != 1 || string(dgs[0]) != "storing 0 key-value pairs:\n" {
		t.Fatalf("empty dump: %d, %q", k, dgs)
	}
	// Nothing else follows: the next datagram is the answer to a get.
	c.send([]byte("x"))
	c.expect([]byte{0})
}

func TestDumpOne(t *testing.T) {
	l := newLocal()
	l.set("abc", []byte("def"))
	addr := startServer(t, l)
	c := dial(t, addr)
	_, dgs := dumpOf(t, c)
	if len(dgs) != 1 || string(dgs[0]) != "storing 1 key-value pairs:\nabc --> def\n" {
		t.Fatalf("dump: %q", dgs)
	}
}

// TestDumpLarge dumps five 30,000-byte values (plus pairs too long for
// the format, which are left out): several datagrams, none above 65507
// bytes, no pair cut, and reassembly gives exactly the five pairs.
func TestDumpLarge(t *testing.T) {
	l := newLocal()
	want := map[string]string{}
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("key%d", i)
		v := strings.Repeat(string(rune('a'+i)), 30000)
		l.set(k, []byte(v))
		want[k] = v
	}
	l.set("toolong-value", bytes.Repeat([]byte("x"), MaxValueSize+1))
	l.set(strings.Repeat("K", MaxKeySize), bytes.Repeat([]byte("y"), MaxValueSize)) // line of 65512 bytes
	addr := startServer(t, l)
	c := dial(t, addr)

	k, dgs := dumpOf(t, c)
	if k != 5 {
		t.Fatalf("count %d, want 5", k)
	}
	if len(dgs) < 3 {
		t.Fatalf("%d datagrams, want several", len(dgs))
	}
	got := map[string]string{}
	for i, d := range dgs {
		if len(d) > MaxDatagram {
			t.Errorf("datagram %d: %d bytes", i, len(d))
		}
		if d[len(d)-1] != '\n' {
			t.Errorf("datagram %d does not end a line: a pair straddles", i)
		}
		if i == 0 {
			d = d[len("storing 5 key-value pairs:\n"):]
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(d), "\n"), "\n") {
			key, val, ok := strings.Cut(line, " --> ")
			if !ok {
				t.Fatalf("datagram %d: bad line %.40q", i, line)
			}
			if _, dup := got[key]; dup {
				t.Errorf("pair %q twice", key)
			}
			got[key] = val
		}
	}
	if len(got) != 5 {
		t.Fatalf("%d pairs reassembled, want 5", len(got))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("pair %q: %d bytes, want %d", k, len(got[k]), len(v))
		}
	}
	c.send([]byte("key0x"))
	c.expect([]byte{0}) // and no further dump datagram came before it
}

// TestGarbage throws random datagrams, maximum-size datagrams and a burst
// at the server; it must keep answering.
func TestGarbage(t *testing.T) {
	l := newLocal()
	l.set("alive", []byte("yes"))
	addr := startServer(t, l)
	c := dial(t, addr)
	rng := rand.New(rand.NewPCG(5, 6))
	var burst [][]byte
	for i := 0; i < 300; i++ {
		n := rng.IntN(2000)
		switch i % 10 {
		case 0:
			n = MaxDatagram
		case 1:
			n = MaxDatagram - rng.IntN(100)
		}
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(rng.UintN(256))
		}
		if i%3 == 0 {
			d = bytes.ReplaceAll(d, []byte{0}, []byte{1}) // a get
		}
		burst = append(burst, d)
	}
	garbage, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer garbage.Close()
	ua, _ := net.ResolveUDPAddr("udp4", addr)
	for _, d := range burst {
		if _, err := garbage.WriteTo(d, ua); err != nil {
			t.Fatalf("send %d bytes: %v", len(d), err)
		}
	}
	// UDP may drop under the burst: retry until an answer comes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.send([]byte("alive"))
		got, err := c.recv(200 * time.Millisecond)
		if err == nil && string(got) == "yes" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server stopped answering: %q, %v", got, err)
		}
	}
}

func TestCloseStopsServe(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(newLocal(), Options{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(pc) }()
	c := dial(t, pc.LocalAddr().String())
	c.send([]byte("x"))
	c.expect([]byte{0})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running after Close")
	}
	if err := s.Serve(pc); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
}
