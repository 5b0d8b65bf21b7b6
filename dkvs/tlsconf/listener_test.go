package tlsconf_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/certgen"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
)

func TestListener(t *testing.T) {
	r := newRing(t)
	store, err := tlsconf.NewStore(r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1)), tlsconf.ClientCertOptional, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := tlsconf.Listener(raw, store.ServerConfig(), tlsconf.ListenerOptions{PlaintextReply: []byte("-ERR TLS only\r\n")})
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	addr := raw.Addr().String()

	// A plaintext client gets the reply and is never handed to Accept.
	pc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc.Write([]byte("PING\r\n"))
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(pc).ReadString('\n')
	pc.Close()
	if line != "-ERR TLS only\r\n" {
		t.Fatalf("plaintext client read %q, %v", line, err)
	}

	// A silent client holds up no other: a TLS client gets through while
	// it waits.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: store.Material().Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	select {
	case c := <-accepted:
		if _, ok := c.(*tls.Conn); !ok {
			t.Fatalf("Accept returned a %T", c)
		}
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the TLS client was not accepted")
	}
	ln.Close()
	if _, ok := <-accepted; ok {
		t.Fatal("a connection after Close")
	}
}
