package harness

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/certgen"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
)

// Certs is a CA and the certificates it signed, in a directory.
type Certs struct {
	Dir string
	CA  *certgen.CA
}

// NewCerts makes a CA (valid a day) in a new directory.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	ca, err := certgen.NewCA("test CA", certgen.Days(time.Now(), 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Certs{Dir: t.TempDir(), CA: ca}
	if err := ca.Pair.Write(c.Dir, certgen.CAFile, certgen.CAKeyFile); err != nil {
		t.Fatal(err)
	}
	return c
}

// CAFile returns the path of the CA's certificate.
func (c *Certs) CAFile() string { return filepath.Join(c.Dir, certgen.CAFile) }

// Server writes the certificate of the server at addr valid for v and
// returns its files.
func (c *Certs) Server(addr string, v certgen.Validity) (tlsconf.Files, error) {
	p, err := c.CA.Server(addr, nil, v)
	if err != nil {
		return tlsconf.Files{}, err
	}
	cert, key := certgen.ServerFiles(addr)
	if err := p.Write(c.Dir, cert, key); err != nil {
		return tlsconf.Files{}, err
	}
	return tlsconf.Files{CA: c.CAFile(), Cert: filepath.Join(c.Dir, cert), Key: filepath.Join(c.Dir, key)}, nil
}

// Client writes a client certificate of user valid for v and returns its
// files.
func (c *Certs) Client(user string, v certgen.Validity) (tlsconf.Files, error) {
	p, err := c.CA.Client(user, v)
	if err != nil {
		return tlsconf.Files{}, err
	}
	cert, key := certgen.ClientFiles(user)
	if err := p.Write(c.Dir, cert, key); err != nil {
		return tlsconf.Files{}, err
	}
	return tlsconf.Files{CA: c.CAFile(), Cert: filepath.Join(c.Dir, cert), Key: filepath.Join(c.Dir, key)}, nil
}

// Args returns the dkvs-server options of files.
func Args(f tlsconf.Files) []string {
	return []string{"--tls-ca", f.CA, "--tls-cert", f.Cert, "--tls-key", f.Key}
}

// Secure gives every server of the ring a certificate of a new CA (the
// --tls- options), and the harness and Client runs the CA: the ring
// speaks TLS only. It returns the certificates.
func (r *Ring) Secure() *Certs {
	r.t.Helper()
	c := NewCerts(r.t)
	for i := range r.Servers {
		f, err := c.Server(r.Addr(i), certgen.Days(time.Now(), 1))
		if err != nil {
			r.t.Fatal(err)
		}
		r.ServerArgs[i] = append(r.ServerArgs[i], Args(f)...)
	}
	cfg, err := tlsconf.ClientConfig(tlsconf.Files{CA: c.CAFile()})
	if err != nil {
		r.t.Fatal(err)
	}
	r.ClientTLS = cfg
	r.ClientArgs = append(r.ClientArgs, "--tls-ca", c.CAFile())
	return c
}

// TLSConfig returns a client configuration trusting c's CA, with the
// client certificate of files if it names one.
func (c *Certs) TLSConfig(files tlsconf.Files) (*tls.Config, error) {
	files.CA = c.CAFile()
	return tlsconf.ClientConfig(files)
}
