package server

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/certgen"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/session"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
)

// TestConnContextTLS: the handshake in connContext fills the session from
// the client's verified certificate.
func TestConnContextTLS(t *testing.T) {
	dir := t.TempDir()
	v := certgen.Days(time.Now(), 1)
	ca, err := certgen.NewCA("test", v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Pair.Write(dir, certgen.CAFile, certgen.CAKeyFile); err != nil {
		t.Fatal(err)
	}
	write := func(p certgen.Pair, err error, cert, key string) tlsconf.Files {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Write(dir, cert, key); err != nil {
			t.Fatal(err)
		}
		return tlsconf.Files{CA: filepath.Join(dir, certgen.CAFile), Cert: filepath.Join(dir, cert), Key: filepath.Join(dir, key)}
	}
	p, err := ca.Server("127.0.0.1:1", nil, v)
	self := write(p, err, "s1.pem", "s1-key.pem")
	p, err = ca.Server("127.0.0.1:2", nil, v)
	peer := write(p, err, "s2.pem", "s2-key.pem")
	p, err = ca.Server("127.0.0.1:9", nil, v)
	gone := write(p, err, "s9.pem", "s9-key.pem")
	p, err = ca.Client("alice", v)
	alice := write(p, err, "alice.pem", "alice-key.pem")

	store, err := tlsconf.NewStore(self, tlsconf.ClientCertOptional, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Addr:    "127.0.0.1:1",
		Servers: []config.Server{{IP: "127.0.0.1", Port: 1, Count: 1}, {IP: "127.0.0.1", Port: 2, Count: 1}},
		Storage: storage.Options{InMemory: true},
		TLS:     store,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	tests := []struct {
		name         string
		files        tlsconf.Files
		member, user string
	}{
		{"a member", peer, "127.0.0.1:2", ""},
		{"a server not in the ring", gone, "", ""},
		{"a user", alice, "", "alice"},
		{"anonymous", tlsconf.Files{CA: self.CA}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tlsconf.ClientConfig(tc.files)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ServerName = "127.0.0.1"
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			go tls.Client(a, cfg).Handshake()
			ctx, err := s.connContext(context.Background(), tls.Server(b, store.ServerConfig()))
			if err != nil {
				t.Fatal(err)
			}
			sess := session.FromContext(ctx)
			if sess == nil || !sess.TLS() || sess.Member() != tc.member || sess.User() != tc.user {
				t.Fatalf("session tls=%v member=%q user=%q; want member %q user %q", sess.TLS(), sess.Member(), sess.User(), tc.member, tc.user)
			}
		})
	}

	// Plaintext on the TLS port: refused, and told so with a TLS alert.
	a, b := net.Pipe()
	defer a.Close()
	go func() { a.Write([]byte("\x00\x00\x00\x00plaintext frame")) }()
	alert := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 16)
		n, _ := a.Read(buf)
		alert <- buf[:n]
	}()
	if _, err := s.connContext(context.Background(), tls.Server(b, store.ServerConfig())); err == nil {
		t.Fatal("a plaintext client passed the handshake")
	}
	if got := <-alert; string(got) != string(tlsconf.AlertHandshakeFailure) {
		t.Fatalf("plaintext client read %x, want the alert %x", got, tlsconf.AlertHandshakeFailure)
	}
}
