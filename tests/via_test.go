package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/wire"
	"github.com/dkvs/dkvs/tests/harness"
)

// viaClient is a Go client that sends every operation to server i of r,
// which coordinates it on the ring.
func viaClient(t *testing.T, r *harness.Ring, i int) *dkvs.Client {
	t.Helper()
	c, err := dkvs.New(nil, &dkvs.Options{Via: r.Addr(i)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// errCase is an error and what it must and must not match.
type errCase struct {
	name string
	err  error
	want []error
	not  error
}

// TestViaCoordinates runs the native coordinated operations against a
// real ring: through one server, with another killed, and their errors.
func TestViaCoordinates(t *testing.T) {
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory", "--max-value-size", "100000"}
	r.StartAll()
	r.WaitPeersUp()
	via := viaClient(t, r, 0)

	for i := 0; i < 30; i++ {
		k, v := fmt.Sprintf("via-%d", i), fmt.Sprintf("value\x00%d", i)
		if err := via.Put(bg, []byte(k), []byte(v), 3, 2); err != nil {
			t.Fatal(err)
		}
		if got, err := via.Get(bg, []byte(k), 3, 2); err != nil || string(got) != v {
			t.Fatalf("get %s: %q %v", k, got, err)
		}
	}
	// What went through server 0 is on the ring; dkvs-client reads it.
	wantOK(t, r.Client("put", "--", "cli", "from the client"), "OK")
	if got, err := via.Get(bg, []byte("cli"), 3, 3); err != nil || string(got) != "from the client" {
		t.Fatalf("via get of a dkvs-client put: %q %v", got, err)
	}
	if err := via.Put(bg, []byte("plain"), []byte("text"), 3, 3); err != nil {
		t.Fatal(err)
	}
	wantOK(t, r.Client("get", "-r", "3", "--", "plain"), "OK text")
	if err := via.Delete(bg, []byte("plain"), 3, 2); err != nil {
		t.Fatal(err)
	}
	wantFail(t, r.Client("get", "--", "plain"), errcode.NotFound)
	if _, err := via.Get(bg, []byte("plain"), 3, 2); !errors.Is(err, dkvs.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	// The server's defaults (3/2/2), linearizable mode and levels.
	if err := via.PutWith(bg, []byte("d"), []byte("1"), dkvs.Request{}); err != nil {
		t.Fatal(err)
	}
	if err := via.PutWith(bg, []byte("d"), []byte("2"), dkvs.Request{N: 3, Linearizable: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := via.GetWith(bg, []byte("d"), dkvs.Request{N: 3, Level: dkvs.All}); err != nil || string(got) != "2" {
		t.Fatalf("level ALL: %q %v", got, err)
	}

	// Error mapping: the server's refusals keep their codes.
	errs := []errCase{
		{"absent", func() error { _, err := via.Get(bg, []byte("absent"), 3, 2); return err }(), []error{dkvs.ErrNotFound}, nil},
		{"R>N", func() error { _, err := via.GetWith(bg, []byte("k"), dkvs.Request{N: 2, R: 3}); return err }(), []error{dkvs.ErrInvalidArgument}, nil},
		{"N=255", via.PutWith(bg, []byte("k"), nil, dkvs.Request{N: 255}), []error{dkvs.ErrInvalidArgument}, nil},
		{"value above the server's limit", via.Put(bg, []byte("k"), make([]byte, 100001), 3, 2), []error{dkvs.ErrInvalidArgument}, nil},
		{"value above the client's limit", via.Put(bg, []byte("k"), make([]byte, 16<<20+1), 3, 2), []error{dkvs.ErrInvalidArgument}, nil},
	}
	// Kill server 2: server 0 still has its quorum among the others.
	r.Kill(2)
	for i := 0; i < 30; i++ {
		k := []byte(fmt.Sprintf("after-kill-%d", i))
		if err := via.Put(bg, k, k, 3, 2); err != nil {
			t.Fatalf("put with a server killed: %v", err)
		}
		if got, err := via.Get(bg, k, 3, 2); err != nil || string(got) != string(k) {
			t.Fatalf("get with a server killed: %q %v", got, err)
		}
	}
	// W=3 cannot be had: the two live replicas applied it, so its outcome
	// is unknown; R=3 fails cleanly.
	errs = append(errs,
		errCase{"W=3 with a server down", via.Put(bg, []byte("w3"), []byte("v"), 3, 3), []error{dkvs.ErrUnknownOutcome, dkvs.ErrNetwork}, nil},
		errCase{"R=3 with a server down", func() error { _, err := via.Get(bg, []byte("d"), 3, 3); return err }(), []error{dkvs.ErrNetwork}, dkvs.ErrUnknownOutcome},
	)
	for _, e := range errs {
		for _, w := range e.want {
			if !errors.Is(e.err, w) {
				t.Errorf("%s: %v, want %v", e.name, e.err, w)
			}
		}
		if e.not != nil && errors.Is(e.err, e.not) {
			t.Errorf("%s: %v matches %v", e.name, e.err, e.not)
		}
	}
	// The coordinating server itself killed: a clean network error.
	r.Kill(0)
	if _, err := via.Get(bg, []byte("d"), 3, 2); !errors.Is(err, dkvs.ErrNetwork) {
		t.Fatalf("coordinator down: %v", err)
	}
}

// TestViaDeadlines checks coordinated requests against a paused replica:
// a client deadline longer than the server's per-replica deadline gets
// the server's answer as soon as the replica is given up; a shorter one
// ends the operation at the client's deadline.
func TestViaDeadlines(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory", "--coord-timeout", "300ms"}
	r.StartAll()
	r.WaitPeersUp()
	via := viaClient(t, r, 0)
	if err := via.Put(bg, []byte("k"), []byte("v"), 3, 3); err != nil {
		t.Fatal(err)
	}
	r.Stop(1) // SIGSTOP: connections stay open, nothing answers
	defer r.Cont(1)

	long, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	start := time.Now()
	err := via.Put(long, []byte("k"), []byte("v2"), 3, 3)
	if !errors.Is(err, dkvs.ErrUnknownOutcome) {
		t.Fatalf("W=3 with a paused replica: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("answer after %v: the server waited for the client's deadline, not its own", d)
	}
	start = time.Now()
	if _, err := via.Get(long, []byte("k"), 3, 3); !errors.Is(err, dkvs.ErrNetwork) || time.Since(start) > 5*time.Second {
		t.Fatalf("R=3 with a paused replica: %v after %v", err, time.Since(start))
	}
	// W=2 and R=2 do not need the paused replica.
	if err := via.Put(long, []byte("k"), []byte("v3"), 3, 2); err != nil {
		t.Fatal(err)
	}
	if got, err := via.Get(long, []byte("k"), 3, 2); err != nil || string(got) != "v3" {
		t.Fatalf("R=2: %q %v", got, err)
	}

	// A client deadline shorter than the server's replica deadline.
	r2 := harness.NewRing(t, 1, 1, 1)
	r2.Args = []string{"--memory", "--coord-timeout", "5s"}
	r2.StartAll()
	r2.WaitPeersUp()
	via2 := viaClient(t, r2, 0)
	r2.Stop(2)
	defer r2.Cont(2)
	short, cancel2 := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	err = via2.Put(short, []byte("k"), []byte("v"), 3, 3)
	if !errors.Is(err, dkvs.ErrNetwork) || time.Since(start) > 2*time.Second {
		t.Fatalf("short deadline: %v after %v", err, time.Since(start))
	}
}

// TestCoordBadParams sends hostile coordinated requests on a raw
// connection: out-of-range parameters are answered with
// ERR_INVALID_ARGUMENT on a connection that stays usable; an undecodable
// body is a bad request that closes it. The server stays up.
func TestCoordBadParams(t *testing.T) {
	r := harness.NewRing(t, 1, 1)
	r.Args = []string{"--memory"}
	r.StartAll()
	nc, err := net.Dial("tcp", r.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	send := func(id uint64, op wire.Op, body []byte) wire.Frame {
		t.Helper()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Write(wire.AppendFrame(nil, wire.Frame{Kind: uint8(op), ID: id, Body: body})); err != nil {
			t.Fatal(err)
		}
		f, err := wire.ReadFrame(br, wire.DefaultMaxFrame)
		if err != nil {
			t.Fatalf("request %d: %v", id, err)
		}
		if f.ID != id {
			t.Fatalf("answer to %d, want %d", f.ID, id)
		}
		return f
	}
	req := func(p wire.CoordParams) []byte {
		return wire.CoordRequest{Params: p, Key: []byte("k"), Value: []byte("v")}.Append(nil, wire.OpCoordPut)
	}
	cases := []struct {
		name string
		p    wire.CoordParams
	}{
		{"N=0", wire.CoordParams{}},
		{"N=1000", wire.CoordParams{N: 1000}},
		{"N=2^64-1", wire.CoordParams{N: 1<<64 - 1, Q: 1<<64 - 1, TimeoutMS: 1<<64 - 1}},
		{"W>N", wire.CoordParams{N: 2, Q: 3}},
		{"defaults and N", wire.CoordParams{Flags: wire.CoordDefaults, N: 2}},
	}
	for i, tc := range cases {
		f := send(uint64(i+1), wire.OpCoordPut, req(tc.p))
		if f.Status() != wire.StatusFailed {
			t.Fatalf("%s: %s", tc.name, f.Status())
		}
		code, msg, err := wire.DecodeFailure(f.Body)
		if err != nil || code != uint8(errcode.InvalidArg.ExitStatus()) {
			t.Fatalf("%s: code %d %q %v", tc.name, code, msg, err)
		}
	}
	// The connection is still usable: a good request on it works.
	if f := send(100, wire.OpCoordPut, req(wire.CoordParams{N: 2, Q: 2, TimeoutMS: 5000})); f.Status() != wire.StatusOK {
		t.Fatalf("good request: %s", f.Status())
	}
	if f := send(101, wire.OpCoordGet, wire.CoordRequest{Params: wire.CoordParams{Flags: wire.CoordDefaults}, Key: []byte("k")}.Append(nil, wire.OpCoordGet)); f.Status() != wire.StatusOK {
		t.Fatalf("get with the server's defaults: %s", f.Status())
	}
	// Undecodable: bad request, then the connection closes.
	if f := send(102, wire.OpCoordGet, []byte{0xff, 0, 3}); f.Status() != wire.StatusBadRequest {
		t.Fatalf("undecodable: %s", f.Status())
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection left open after a bad request")
	}
	if err := harness.Ping(r.Addr(0), 2*time.Second); err != nil {
		t.Fatalf("server down: %v", err)
	}
}

// TestClientVia runs dkvs-client --via in a directory without servers.txt:
// the server it names coordinates every operation.
func TestClientVia(t *testing.T) {
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory"}
	r.StartAll()
	r.WaitPeersUp()
	dir := t.TempDir() // no servers.txt here
	cli := func(args ...string) harness.Result {
		t.Helper()
		return harness.Run(t, dir, harness.Bin(t, "dkvs-client"), append([]string{"--via", r.Addr(1)}, args...)...)
	}
	wantOK(t, cli("put", "--", "k", "via value"), "OK")
	wantOK(t, cli("get", "-r", "3", "--", "k"), "OK via value")
	wantOK(t, r.Client("get", "-r", "3", "--", "k"), "OK via value")
	wantOK(t, cli("put", "--", "k2", "tail"), "OK")
	wantOK(t, cli("cat", "--", "k", "k2", "k3"), "OK")
	wantOK(t, r.Client("get", "--", "k3"), "OK via valuetail")
	wantOK(t, cli("del", "--", "k"), "OK")
	wantFail(t, cli("get", "--", "k"), errcode.NotFound)
	wantExit(t, cli("put", "-n", "2", "-w", "3", "--", "k", "v"), errcode.InvalidCommand)
	wantExit(t, harness.Run(t, dir, harness.Bin(t, "dkvs-client"), "--via", "nonsense", "get", "--", "k"), errcode.InvalidCommand)
	wantExit(t, harness.Run(t, dir, harness.Bin(t, "dkvs-client"), "--via", "127.0.001:7", "get", "--", "k"), errcode.Address)
	// Without --via the missing servers file is still an error.
	wantExit(t, harness.Run(t, dir, harness.Bin(t, "dkvs-client"), "get", "--", "k"), errcode.IO)
	r.Kill(1)
	wantFail(t, cli("get", "--", "k2"), errcode.Network)
}
