package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/certgen"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
)

func TestIdentityOf(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name        string
		cn          string
		uris        []*url.URL
		wantMembers []string
		wantUser    string
	}{
		{"server", "dkvs server 127.0.0.1:7001", []*url.URL{u("dkvs://127.0.0.1:7001")}, []string{"127.0.0.1:7001"}, ""},
		{"user by URI", "whatever", []*url.URL{u("dkvs-user:alice")}, nil, "alice"},
		{"user by common name", "bob", nil, nil, "bob"},
		{"first user URI wins", "", []*url.URL{u("dkvs-user:a"), u("dkvs-user:b")}, nil, "a"},
		{"member and user", "x", []*url.URL{u("dkvs://10.0.0.1:1"), u("dkvs-user:op")}, []string{"10.0.0.1:1"}, "op"},
		{"member URI with a path is none", "", []*url.URL{u("dkvs://10.0.0.1:1/x")}, nil, ""},
		{"other schemes ignored", "carol", []*url.URL{u("spiffe://a/b")}, nil, "carol"},
		{"anonymous", "", nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := tlsconf.IdentityOf(&x509.Certificate{Subject: pkix.Name{CommonName: tc.cn}, URIs: tc.uris})
			if strings.Join(id.Members, ",") != strings.Join(tc.wantMembers, ",") || id.User != tc.wantUser {
				t.Errorf("IdentityOf = %+v, want members %v user %q", id, tc.wantMembers, tc.wantUser)
			}
		})
	}
}

func TestIdentityMember(t *testing.T) {
	id := tlsconf.Identity{Members: []string{"127.0.0.1:1", "127.0.0.1:2"}}
	ring := map[string]bool{"127.0.0.1:2": true}
	tests := []struct {
		name   string
		member func(string) bool
		want   string
	}{
		{"second is a member", func(a string) bool { return ring[a] }, "127.0.0.1:2"},
		{"none is", func(string) bool { return false }, ""},
	}
	for _, tc := range tests {
		if got := id.Member(tc.member); got != tc.want {
			t.Errorf("%s: Member = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// ring is a CA and the files of its certificates in a directory.
type ring struct {
	dir string
	ca  *certgen.CA
}

func newRing(t *testing.T) *ring {
	t.Helper()
	ca, err := certgen.NewCA("test CA", certgen.Days(time.Now(), 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &ring{dir: t.TempDir(), ca: ca}
	if err := ca.Pair.Write(r.dir, certgen.CAFile, certgen.CAKeyFile); err != nil {
		t.Fatal(err)
	}
	return r
}

// server writes the certificate of addr, valid for v, and returns its
// files.
func (r *ring) server(t *testing.T, addr string, v certgen.Validity) tlsconf.Files {
	t.Helper()
	p, err := r.ca.Server(addr, nil, v)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := certgen.ServerFiles(addr)
	if err := p.Write(r.dir, cert, key); err != nil {
		t.Fatal(err)
	}
	return tlsconf.Files{CA: filepath.Join(r.dir, certgen.CAFile), Cert: filepath.Join(r.dir, cert), Key: filepath.Join(r.dir, key)}
}

func (r *ring) client(t *testing.T, user string) tlsconf.Files {
	t.Helper()
	p, err := r.ca.Client(user, certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	cert, key := certgen.ClientFiles(user)
	if err := p.Write(r.dir, cert, key); err != nil {
		t.Fatal(err)
	}
	return tlsconf.Files{CA: filepath.Join(r.dir, certgen.CAFile), Cert: filepath.Join(r.dir, cert), Key: filepath.Join(r.dir, key)}
}

func TestLoadErrors(t *testing.T) {
	r := newRing(t)
	good := r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	other := newRing(t).server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	tests := []struct {
		name  string
		files tlsconf.Files
		want  errcode.Code
	}{
		{"good", good, errcode.None},
		{"CA only", tlsconf.Files{CA: good.CA}, errcode.None},
		{"no CA", tlsconf.Files{Cert: good.Cert, Key: good.Key}, errcode.InvalidConfig},
		{"cert without key", tlsconf.Files{CA: good.CA, Cert: good.Cert}, errcode.InvalidConfig},
		{"missing CA file", tlsconf.Files{CA: missing, Cert: good.Cert, Key: good.Key}, errcode.IO},
		{"missing key file", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: missing}, errcode.IO},
		{"CA file not PEM", tlsconf.Files{CA: junk, Cert: good.Cert, Key: good.Key}, errcode.InvalidConfig},
		{"key not PEM", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: junk}, errcode.InvalidConfig},
		{"key of another certificate", tlsconf.Files{CA: good.CA, Cert: good.Cert, Key: other.Key}, errcode.InvalidConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsconf.Load(tc.files)
			if got := errcode.Of(err); got != tc.want {
				t.Errorf("Load: %v (code %s), want %s", err, got.Name(), tc.want.Name())
			}
		})
	}
}

// serve accepts TLS connections with store's configuration on a
// loopback port until the test ends; each handshake's error (or nil) and
// the peer's verified identity go to results.
type result struct {
	err  error
	user string
}

func serve(t *testing.T, store *tlsconf.Store) (addr string, results chan result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	results = make(chan result, 16)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				tc := tls.Server(nc, store.ServerConfig())
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				err := tc.HandshakeContext(ctx)
				var user string
				if err == nil {
					if cs := tc.ConnectionState(); len(cs.VerifiedChains) > 0 {
						user = tlsconf.IdentityOf(cs.VerifiedChains[0][0]).User
					}
					tc.Write([]byte("x")) // lets the client see its certificate accepted
				}
				results <- result{err, user}
			}()
		}
	}()
	return ln.Addr().String(), results
}

// dialClient handshakes with addr with cfg and reads one byte.
func dialClient(addr string, cfg *tls.Config) error {
	d := tlsconf.Dialer(func(ctx context.Context, a string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "tcp", a)
	}, func(a string) *tls.Config { return tlsconf.ForAddr(cfg, a) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := d(ctx, addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = nc.Read(make([]byte, 1))
	return err
}

func TestStoreHandshakes(t *testing.T) {
	r := newRing(t)
	srvFiles := r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	alice := r.client(t, "alice")
	stranger := newRing(t)
	expired := r.server(t, "127.0.0.1:7009", certgen.Validity{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	cfg := func(f tlsconf.Files) *tls.Config {
		c, err := tlsconf.ClientConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		auth     tlsconf.ClientAuth
		client   *tls.Config
		wantErr  bool
		wantUser string
	}{
		{"anonymous, optional", tlsconf.ClientCertOptional, cfg(tlsconf.Files{CA: alice.CA}), false, ""},
		{"alice, optional", tlsconf.ClientCertOptional, cfg(alice), false, "alice"},
		{"alice, required", tlsconf.ClientCertRequired, cfg(alice), false, "alice"},
		{"anonymous, required", tlsconf.ClientCertRequired, cfg(tlsconf.Files{CA: alice.CA}), true, ""},
		{"client of another CA", tlsconf.ClientCertOptional, cfg(stranger.client(t, "mallory")), true, ""},
		{"expired client", tlsconf.ClientCertOptional, cfg(expired), true, ""},
		{"client trusting another CA", tlsconf.ClientCertOptional, cfg(tlsconf.Files{CA: stranger.client(t, "x").CA}), true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, err := tlsconf.NewStore(srvFiles, tc.auth, nil)
			if err != nil {
				t.Fatal(err)
			}
			addr, results := serve(t, store)
			err = dialClient(addr, tc.client)
			if (err != nil) != tc.wantErr {
				t.Fatalf("client: %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, tlsconf.ErrHandshake) && !strings.Contains(err.Error(), "tls") {
				t.Errorf("client error %v says nothing of TLS", err)
			}
			res := <-results
			if (res.err != nil) != tc.wantErr {
				t.Fatalf("server: %v, want error %v", res.err, tc.wantErr)
			}
			if res.user != tc.wantUser {
				t.Errorf("user %q, want %q", res.user, tc.wantUser)
			}
		})
	}
}

func TestPeerConfigChecksName(t *testing.T) {
	r := newRing(t)
	a := r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	b := r.server(t, "127.0.0.1:7002", certgen.Days(time.Now(), 1))
	sa, err := tlsconf.NewStore(a, tlsconf.ClientCertOptional, nil)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := tlsconf.NewStore(b, tlsconf.ClientCertOptional, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, sb) // b serves, on some port
	tests := []struct {
		name    string
		as      string // the address a believes it dials
		wantErr bool
	}{
		{"names the address dialled", "127.0.0.1:7002", false},
		{"same IP, another server", "127.0.0.1:7003", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sa.PeerConfig(tc.as)
			err := dialClient(addr, cfg)
			<-results
			if (err != nil) != tc.wantErr {
				t.Fatalf("dial as %s: %v, want error %v", tc.as, err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "does not name") {
				t.Errorf("error %q does not say the name is wrong", err)
			}
		})
	}
}

func TestStoreReload(t *testing.T) {
	r := newRing(t)
	files := r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	store, err := tlsconf.NewStore(files, tlsconf.ClientCertOptional, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := store.Material().Leaf.SerialNumber

	// A bad key file: the reload fails, the material in use stays.
	good, err := os.ReadFile(files.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(); errcode.Of(err) != errcode.InvalidConfig {
		t.Fatalf("reload of a bad key: %v, want ERR_INVALID_CONFIG", err)
	}
	if store.Material().Leaf.SerialNumber.Cmp(first) != 0 {
		t.Fatal("a failed reload changed the certificate")
	}
	if err := os.WriteFile(files.Key, good, 0o600); err != nil {
		t.Fatal(err)
	}

	// A new certificate: taken by the next handshake.
	files2 := r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 2))
	if files2 != files {
		t.Fatalf("files moved: %+v %+v", files, files2)
	}
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if store.Material().Leaf.SerialNumber.Cmp(first) == 0 {
		t.Fatal("reload kept the old certificate")
	}

	// Revoked by reload: a client certificate of a CA no longer in the CA
	// file is refused by the next handshake.
	old := r.client(t, "alice")
	oldCfg, err := tlsconf.ClientConfig(old)
	if err != nil {
		t.Fatal(err)
	}
	addr, results := serve(t, store)
	if err := dialClient(addr, oldCfg); err != nil {
		t.Fatalf("before the CA went: %v", err)
	}
	<-results
	r2 := newRing(t)
	files3 := r2.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	for _, f := range [][2]string{{files3.CA, files.CA}, {files3.Cert, files.Cert}, {files3.Key, files.Key}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := certgen.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	// The client now trusts the new CA but presents its old certificate.
	oldCfg.RootCAs = store.Material().Pool
	if err := dialClient(addr, oldCfg); err == nil {
		t.Fatal("a certificate of a CA removed by reload was accepted")
	}
	if res := <-results; res.err == nil {
		t.Fatal("server accepted a certificate of a removed CA")
	}
}

func TestWatchReloadsOnSignal(t *testing.T) {
	r := newRing(t)
	files := r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	store, err := tlsconf.NewStore(files, tlsconf.ClientCertOptional, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := store.Material().Leaf.SerialNumber
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// A poll longer than the test: only the signal can reload.
	go func() { defer close(done); store.Watch(ctx, time.Hour, hup) }()
	defer func() { cancel(); <-done }()
	r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 2))
	hup <- os.Interrupt
	deadline := time.Now().Add(10 * time.Second)
	for store.Material().Leaf.SerialNumber.Cmp(first) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no reload 10s after the signal")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestParseClientAuth(t *testing.T) {
	tests := []struct {
		in      string
		want    tlsconf.ClientAuth
		wantErr bool
	}{
		{"optional", tlsconf.ClientCertOptional, false},
		{"", tlsconf.ClientCertOptional, false},
		{"required", tlsconf.ClientCertRequired, false},
		{"yes", 0, true},
	}
	for _, tc := range tests {
		got, err := tlsconf.ParseClientAuth(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("ParseClientAuth(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestServerName(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:7001": "127.0.0.1", "[::1]:7": "::1", "host": "host"} {
		if got := tlsconf.ServerName(in); got != want {
			t.Errorf("ServerName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWatchPolls: a change of the files is taken by the poll once they
// have settled; a bad file is logged once and the material in use stays.
func TestWatchPolls(t *testing.T) {
	r := newRing(t)
	files := r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 1))
	var log lockedBuffer
	store, err := tlsconf.NewStore(files, tlsconf.ClientCertOptional, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first := store.Material().Leaf.SerialNumber
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); store.Watch(ctx, 20*time.Millisecond, nil) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 10s; log:\n%s", what, log.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	if err := certgen.WriteFile(files.Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the bad key logged", func() bool { return strings.Contains(log.String(), "reload failed") })
	time.Sleep(100 * time.Millisecond) // five more polls: none logs again
	if n := strings.Count(log.String(), "reload failed"); n != 1 {
		t.Fatalf("bad key logged %d times:\n%s", n, log.String())
	}
	if store.Material().Leaf.SerialNumber.Cmp(first) != 0 {
		t.Fatal("a bad key replaced the certificate")
	}
	r.server(t, "127.0.0.1:7001", certgen.Days(time.Now(), 2))
	waitFor("the new certificate taken", func() bool { return store.Material().Leaf.SerialNumber.Cmp(first) != 0 })
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPeer(t *testing.T) {
	cert := func(cn string, uris ...string) *x509.Certificate {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		for _, u := range uris {
			v, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			c.URIs = append(c.URIs, v)
		}
		return c
	}
	verified := func(c *x509.Certificate) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	tests := []struct {
		name    string
		cs      tls.ConnectionState
		members []string
		user    string
	}{
		{"server", verified(cert("dkvs server 127.0.0.1:7001", "dkvs://127.0.0.1:7001")), []string{"127.0.0.1:7001"}, ""},
		{"server and user URI: a server", verified(cert("x", "dkvs://127.0.0.1:7001", "dkvs-user:op")), []string{"127.0.0.1:7001"}, ""},
		{"user by URI", verified(cert("x", "dkvs-user:alice")), nil, "alice"},
		{"user by common name", verified(cert("bob")), nil, "bob"},
		{"no certificate", tls.ConnectionState{}, nil, ""},
		{"certificate not verified", tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert("eve", "dkvs://127.0.0.1:7001")}}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, u := tlsconf.Peer(tc.cs)
			if strings.Join(m, ",") != strings.Join(tc.members, ",") || u != tc.user {
				t.Errorf("Peer = %q, %q; want %q, %q", m, u, tc.members, tc.user)
			}
		})
	}
}

// BenchmarkHandshake: one TLS 1.3 handshake over loopback with the
// certificates of certgen (ECDSA P-256), a client certificate included,
// as a server dials a peer.
func BenchmarkHandshake(b *testing.B) {
	dir := b.TempDir()
	ca, err := certgen.NewCA("bench", certgen.Days(time.Now(), 1), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := ca.Pair.Write(dir, certgen.CAFile, certgen.CAKeyFile); err != nil {
		b.Fatal(err)
	}
	p, err := ca.Server("127.0.0.1:7001", nil, certgen.Days(time.Now(), 1))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Write(dir, "s.pem", "s-key.pem"); err != nil {
		b.Fatal(err)
	}
	files := tlsconf.Files{CA: filepath.Join(dir, certgen.CAFile), Cert: filepath.Join(dir, "s.pem"), Key: filepath.Join(dir, "s-key.pem")}
	store, err := tlsconf.NewStore(files, tlsconf.ClientCertOptional, nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				tc := tls.Server(nc, store.ServerConfig())
				if tc.Handshake() == nil {
					tc.Write([]byte("x"))
				}
			}()
		}
	}()
	addr := ln.Addr().String()
	cfg := store.PeerConfig("127.0.0.1:7001")
	logged := false
	for b.Loop() {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if _, err := tc.Read(make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		if !logged {
			b.Logf("cipher suite %s", tls.CipherSuiteName(tc.ConnectionState().CipherSuite))
			logged = true
		}
		tc.Close()
	}
}
