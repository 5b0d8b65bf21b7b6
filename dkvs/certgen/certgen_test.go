package certgen

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
)

func parse(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertificates(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", Days(now, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("127.0.0.1:7001", []string{"db.example"}, Days(now, 1))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Client("alice", Days(now, 1))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	sc, cc := parse(t, srv.Cert), parse(t, cli.Cert)
	tests := []struct {
		name string
		cert *x509.Certificate
		opts x509.VerifyOptions
		id   tlsconf.Identity
	}{
		{"server as server", sc, x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}, tlsconf.Identity{Members: []string{"127.0.0.1:7001"}}},
		{"server by DNS name", sc, x509.VerifyOptions{Roots: roots, DNSName: "db.example"}, tlsconf.Identity{Members: []string{"127.0.0.1:7001"}}},
		{"server as peer client", sc, x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, tlsconf.Identity{Members: []string{"127.0.0.1:7001"}}},
		{"client", cc, x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, tlsconf.Identity{User: "alice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cert.Verify(tc.opts); err != nil {
				t.Fatal(err)
			}
			id := tlsconf.IdentityOf(tc.cert)
			if len(id.Members) != len(tc.id.Members) || (len(id.Members) > 0 && id.Members[0] != tc.id.Members[0]) || id.User != tc.id.User {
				t.Errorf("identity %+v, want %+v", id, tc.id)
			}
		})
	}
	if _, err := cc.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}); err == nil {
		t.Error("a client certificate verifies as a server's")
	}
}

func TestBadNames(t *testing.T) {
	ca, err := NewCA("test", Days(time.Now(), 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   func() error
		want errcode.Code
	}{
		{"server without port", func() error { _, err := ca.Server("127.0.0.1", nil, Days(time.Now(), 1)); return err }, errcode.Address},
		{"server by name", func() error { _, err := ca.Server("host:1", nil, Days(time.Now(), 1)); return err }, errcode.Address},
		{"user with a space", func() error { _, err := ca.Client("a b", Days(time.Now(), 1)); return err }, errcode.InvalidCommand},
		{"user with a slash", func() error { _, err := ca.Client("../x", Days(time.Now(), 1)); return err }, errcode.InvalidCommand},
		{"empty user", func() error { _, err := ca.Client("", Days(time.Now(), 1)); return err }, errcode.InvalidCommand},
	}
	for _, tc := range tests {
		if got := errcode.Of(tc.fn()); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got.Name(), tc.want.Name())
		}
	}
}

func TestWriteAndLoadCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("test", Days(time.Now(), 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Pair.Write(dir, CAFile, CAKeyFile); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	again, err := LoadCA(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	p, err := again.Client("bob", Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := parse(t, p.Cert).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("a certificate of the reloaded CA: %v", err)
	}
	if _, err := LoadCA(filepath.Join(dir, "none.pem"), filepath.Join(dir, CAKeyFile)); errcode.Of(err) != errcode.IO {
		t.Errorf("missing CA: %v", err)
	}
	if _, err := LoadCA(filepath.Join(dir, CAKeyFile), filepath.Join(dir, CAKeyFile)); errcode.Of(err) != errcode.InvalidConfig {
		t.Errorf("key as CA certificate: %v", err)
	}
}
