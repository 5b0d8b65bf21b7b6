package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/storage"
)

// endpoints opens a native listener, a UDP socket on the same address and
// a RESP listener on 127.0.0.1.
func endpoints(t *testing.T) (Endpoints, uint16) {
	t.Helper()
	for try := 0; try < 20; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp4", ln.Addr().String())
		if err != nil { // the UDP port is someone else's: try another
			ln.Close()
			continue
		}
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return Endpoints{Native: ln, Datagram: pc, RESP: rl}, uint16(ln.Addr().(*net.TCPAddr).Port)
	}
	t.Fatal("no port free on both TCP and UDP")
	return Endpoints{}, 0
}

// TestServeAllEndpoints serves the three protocols of a one-server ring in
// process, checks each, and stops cleanly.
func TestServeAllEndpoints(t *testing.T) {
	ep, port := endpoints(t)
	respAddr := ep.RESP.Addr().String()
	s, err := New(Config{
		Addr:    fmt.Sprintf("127.0.0.1:%d", port),
		Servers: []config.Server{{IP: "127.0.0.1", Port: port, Count: 1}},
		Storage: storage.Options{InMemory: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeAll(ctx, ep) }()

	// RESP: coordinated on the (one-server) ring.
	rc, err := net.Dial("tcp", respAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(rc)
	for _, step := range []struct{ cmd, want string }{
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n"},
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$1\r\nv\r\n"},
		{"*1\r\n$6\r\nDBSIZE\r\n", ":1\r\n"},
		{"*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n", "$-1\r\n"},
	} {
		if _, err := io.WriteString(rc, step.cmd); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(step.want))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != step.want {
			t.Fatalf("%q: %q %v", step.cmd, got, err)
		}
	}

	// Datagrams: this server's own storage.
	uc, err := net.Dial("udp4", s.cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	ask := func(req string) string {
		t.Helper()
		buf := make([]byte, 1<<16)
		for try := 0; try < 5; try++ {
			uc.Write([]byte(req))
			uc.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := uc.Read(buf); err == nil {
				return string(buf[:n])
			}
		}
		t.Fatalf("no reply to %q", req)
		return ""
	}
	if got := ask("k"); got != "v" {
		t.Fatalf("UDP get: %q", got)
	}
	if got := ask("u\x00w"); got != "\x00" {
		t.Fatalf("UDP put: %q", got)
	}
	if rec, found, _ := s.DB().Get([]byte("u")); !found || rec.N != 0 || string(rec.Value) != "w" {
		t.Fatalf("UDP put stored %+v (found %v), want N=0", rec, found)
	}
	if got := ask(""); got != "storing 2 key-value pairs:\nk --> v\nu --> w\n" {
		t.Fatalf("UDP dump: %q", got)
	}
	if _, err := s.Coordinator().Delete(context.Background(), []byte("k"), 1, 1); err != nil {
		t.Fatal(err)
	}
	if got := ask("k"); got != "\x00" {
		t.Fatalf("UDP get of a tombstone: %q", got)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ServeAll did not return")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("RESP connection still open after the stop")
	}
	if c, err := net.DialTimeout("tcp", respAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("RESP port still open after the stop")
	}
}
