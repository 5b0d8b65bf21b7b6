package server

import (
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

func coordBody(op wire.Op, p wire.CoordParams, key, value string) []byte {
	return wire.CoordRequest{Params: p, Key: []byte(key), Value: []byte(value)}.Append(nil, op)
}

func failureCode(t *testing.T, f wire.Frame) errcode.Code {
	t.Helper()
	if f.Status() != wire.StatusFailed {
		t.Fatalf("status %s, want failed", f.Status())
	}
	b, _, err := wire.DecodeFailure(f.Body)
	if err != nil {
		t.Fatal(err)
	}
	return errcode.Code(int(b) - 256)
}

// TestCoordOps runs coordinated operations on a one-server ring: the
// server coordinates and answers itself in process.
func TestCoordOps(t *testing.T) {
	s := newServer(t)
	n1 := wire.CoordParams{N: 1, Q: 1}
	steps := []struct {
		name   string
		op     wire.Op
		p      wire.CoordParams
		key    string
		value  string
		status wire.Status
		code   errcode.Code // for StatusFailed
	}{
		{"get absent", wire.OpCoordGet, n1, "k", "", wire.StatusNotFound, 0},
		{"put", wire.OpCoordPut, n1, "k", "v", wire.StatusOK, 0},
		{"get", wire.OpCoordGet, n1, "k", "", wire.StatusOK, 0},
		{"server defaults (N=3 on a ring of 1)", wire.OpCoordGet, wire.CoordParams{Flags: wire.CoordDefaults}, "k", "", wire.StatusOK, 0},
		{"N above the ring", wire.OpCoordGet, wire.CoordParams{N: 254, Q: 200}, "k", "", wire.StatusOK, 0},
		{"level ALL", wire.OpCoordPut, wire.CoordParams{N: 3, Level: wire.CoordLevelAll}, "k2", "", wire.StatusOK, 0},
		{"linearizable", wire.OpCoordPut, wire.CoordParams{Flags: wire.CoordLinearizable, N: 1}, "k3", "x", wire.StatusOK, 0},
		{"huge timeout is capped", wire.OpCoordGet, wire.CoordParams{N: 1, TimeoutMS: 1<<64 - 1}, "k", "", wire.StatusOK, 0},
		{"delete", wire.OpCoordDelete, n1, "k", "", wire.StatusOK, 0},
		{"get deleted", wire.OpCoordGet, n1, "k", "", wire.StatusNotFound, 0},
		{"N=0", wire.OpCoordGet, wire.CoordParams{Q: 1}, "k", "", wire.StatusFailed, errcode.InvalidArg},
		{"N=255", wire.OpCoordPut, wire.CoordParams{N: 255}, "k", "v", wire.StatusFailed, errcode.InvalidArg},
		{"N=2^63", wire.OpCoordPut, wire.CoordParams{N: 1 << 63, Q: 1 << 63}, "k", "v", wire.StatusFailed, errcode.InvalidArg},
		{"R>N", wire.OpCoordGet, wire.CoordParams{N: 2, Q: 3}, "k", "", wire.StatusFailed, errcode.InvalidArg},
		{"W>N huge", wire.OpCoordDelete, wire.CoordParams{N: 3, Q: 1 << 40}, "k", "", wire.StatusFailed, errcode.InvalidArg},
		{"defaults with N", wire.OpCoordGet, wire.CoordParams{Flags: wire.CoordDefaults, N: 3}, "k", "", wire.StatusFailed, errcode.InvalidArg},
		{"empty key", wire.OpCoordPut, n1, "", "v", wire.StatusFailed, errcode.InvalidArg},
		{"key too large", wire.OpCoordGet, n1, "01234567890", "", wire.StatusFailed, errcode.InvalidArg},
		{"value too large", wire.OpCoordPut, n1, "k", strings.Repeat("x", 101), wire.StatusFailed, errcode.InvalidArg},
	}
	for _, st := range steps {
		got := call(s, st.op, coordBody(st.op, st.p, st.key, st.value))
		if got.Status() != st.status {
			msg, _ := wire.DecodeMessage(got.Body)
			t.Fatalf("%s: %s (%q), want %s", st.name, got.Status(), msg, st.status)
		}
		if st.status == wire.StatusFailed {
			if code := failureCode(t, got); code != st.code {
				t.Fatalf("%s: code %s, want %s", st.name, code.Name(), st.code.Name())
			}
		}
		if st.name == "get" {
			rec, err := wire.DecodeRecord(got.Body)
			if err != nil || string(rec.Value) != "v" || rec.N != 1 {
				t.Fatalf("get: %+v %v", rec, err)
			}
		}
	}
	// Malformed bodies and flags are bad requests, as for every operation.
	for name, f := range map[string]wire.Frame{
		"frame flags":   {Kind: uint8(wire.OpCoordGet), Flags: 1, Body: coordBody(wire.OpCoordGet, n1, "k", "")},
		"unknown flags": {Kind: uint8(wire.OpCoordGet), Body: append([]byte{0x80}, coordBody(wire.OpCoordGet, n1, "k", "")[1:]...)},
		"truncated":     {Kind: uint8(wire.OpCoordPut), Body: coordBody(wire.OpCoordGet, n1, "k", "")},
		"empty":         {Kind: uint8(wire.OpCoordDelete)},
	} {
		if got := s.Handle(context.Background(), f); got.Status() != wire.StatusBadRequest {
			t.Errorf("%s: %s", name, got.Status())
		}
	}
}

// TestCoordUnreachablePeer coordinates on a ring whose other server does
// not exist: a write that this server applied but could not get a quorum
// for is an unknown outcome; a read is a plain network failure.
func TestCoordUnreachablePeer(t *testing.T) {
	// A port nobody listens on: connections are refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s, err := New(Config{
		Addr:    "127.0.0.1:1",
		Servers: []config.Server{{IP: "127.0.0.1", Port: 1, Count: 1}, {IP: "127.0.0.1", Port: port, Count: 1}},
		Storage: storage.Options{InMemory: true},
		Coord:   CoordConfig{Timeout: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	both := wire.CoordParams{N: 2, Q: 2}
	got := call(s, wire.OpCoordPut, coordBody(wire.OpCoordPut, both, "k", "v"))
	if got.Status() != wire.StatusUnknown {
		t.Fatalf("put: %s", got.Status())
	}
	if msg, err := wire.DecodeMessage(got.Body); err != nil || !strings.Contains(msg, "outcome unknown") {
		t.Fatalf("put message %q %v", msg, err)
	}
	if code := failureCode(t, call(s, wire.OpCoordGet, coordBody(wire.OpCoordGet, both, "k", ""))); code != errcode.Network {
		t.Fatalf("get: %s", code.Name())
	}
	// One acknowledgement is enough with W=1, and the value is there.
	one := wire.CoordParams{N: 2, Q: 1}
	if got := call(s, wire.OpCoordPut, coordBody(wire.OpCoordPut, one, "k", "v")); got.Status() != wire.StatusOK {
		t.Fatalf("put W=1: %s", got.Status())
	}
	// A client deadline shorter than the replica deadline ends the
	// operation at the client's deadline.
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got = s.Handle(ctx, wire.Frame{Kind: uint8(wire.OpCoordGet), Body: coordBody(wire.OpCoordGet, wire.CoordParams{N: 2, Q: 2, TimeoutMS: 50}, "k", "")})
	if got.Status() != wire.StatusFailed || time.Since(start) > 2*time.Second {
		t.Fatalf("short deadline: %s after %v", got.Status(), time.Since(start))
	}
}

func TestSelfTransportRefusesCoordOps(t *testing.T) {
	s := newServer(t)
	_, err := selfTransport{s}.Call(context.Background(), s.cfg.Addr, wire.Frame{Kind: uint8(wire.OpCoordGet)})
	if !errors.Is(err, errcode.Runtime) {
		t.Fatalf("%v", err)
	}
}

// TestVersionMatchesHeader keeps Version equal to include/dkvs.h's.
func TestVersionMatchesHeader(t *testing.T) {
	h, err := os.ReadFile("../../include/dkvs.h")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`#define DKVS_VERSION "([^"]+)"`).FindSubmatch(h)
	if m == nil || string(m[1]) != Version {
		t.Fatalf("dkvs.h has %q, server.Version is %q", m, Version)
	}
}
