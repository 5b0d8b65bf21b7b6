// Package tlsconf is dkvs's TLS: a server's CA, certificate and key,
// reloaded without a restart; the configurations of the ports a server
// serves and of the connections it opens to its peers; the client side;
// and the rules that turn a verified certificate into an identity (a ring
// member or a user).
//
// Every configuration here is TLS 1.3 only. A server always asks for a
// client certificate and verifies the one it is given, so that its peers
// can prove that they are members of the ring; whether a client must
// present one is the server's choice (ClientCertRequired).
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// Schemes of the URI SANs that name who a certificate is.
const (
	// MemberScheme names a server by its ring address: dkvs://IP:PORT.
	// Several servers of one machine share its IP, so the IP SAN alone
	// cannot say which of them a certificate belongs to.
	MemberScheme = "dkvs"
	// UserScheme names a user: dkvs-user:NAME.
	UserScheme = "dkvs-user"
)

// Files names the PEM files of a TLS setup. CA is the file of the
// certificates that sign the ring's certificates (one or more: a CA
// removed from it is no longer trusted at the next reload); Cert and Key
// are this process's certificate (chain) and private key.
type Files struct {
	CA, Cert, Key string
}

// Empty reports whether no file is named.
func (f Files) Empty() bool { return f.CA == "" && f.Cert == "" && f.Key == "" }

// Material is one loaded set of Files.
type Material struct {
	// Pool holds the CA file's certificates.
	Pool *x509.CertPool
	// Cert is the certificate and key, when Files named them.
	Cert *tls.Certificate
	// Leaf is Cert's parsed first certificate.
	Leaf *x509.Certificate
}

// Load reads files. The CA is required; Cert and Key go together (both
// or neither). A file that cannot be read is an error wrapping
// errcode.IO, a file that holds no valid PEM certificate or key one
// wrapping errcode.InvalidConfig.
func Load(f Files) (*Material, error) {
	if f.CA == "" {
		return nil, fmt.Errorf("tls: no CA file: %w", errcode.InvalidConfig)
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, fmt.Errorf("tls: a certificate and its key go together (cert %q, key %q): %w", f.Cert, f.Key, errcode.InvalidConfig)
	}
	caPEM, err := readFile("CA", f.CA)
	if err != nil {
		return nil, err
	}
	pool, err := parsePool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: CA file %s: %w", f.CA, err)
	}
	m := &Material{Pool: pool}
	if f.Cert == "" {
		return m, nil
	}
	certPEM, err := readFile("certificate", f.Cert)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile("key", f.Key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w: %w", f.Cert, f.Key, err, errcode.InvalidConfig)
	}
	m.Cert, m.Leaf = &cert, cert.Leaf
	if m.Leaf == nil { // filled by X509KeyPair since Go 1.23; parsed here in case
		if m.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: certificate %s: %w: %w", f.Cert, err, errcode.InvalidConfig)
		}
	}
	return m, nil
}

func readFile(what, name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("tls: %s file: %w: %w", what, err, errcode.IO)
	}
	return b, nil
}

// parsePool returns the certificates of a PEM file; a file with none, or
// with a block that is not a valid certificate, is an error.
func parsePool(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w: %w", n+1, err, errcode.InvalidConfig)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no PEM certificate: %w", errcode.InvalidConfig)
	}
	return pool, nil
}

// Identity is who a verified certificate names.
type Identity struct {
	// Members are the ring addresses of dkvs://IP:PORT URI SANs.
	Members []string
	// User is the name of a dkvs-user:NAME URI SAN, or else the subject's
	// common name of a certificate that names no member.
	User string
}

// IdentityOf reads the names of a certificate. It does not verify it:
// call it on the leaf of a verified chain only.
func IdentityOf(c *x509.Certificate) Identity {
	var id Identity
	for _, u := range c.URIs {
		switch u.Scheme {
		case MemberScheme:
			if u.Host != "" && u.Path == "" {
				id.Members = append(id.Members, u.Host)
			}
		case UserScheme:
			if u.Opaque != "" && id.User == "" {
				id.User = u.Opaque
			}
		}
	}
	// A server's certificate has a common name too: it names a member,
	// not a user, even when that member is no longer in the ring.
	if id.User == "" && len(id.Members) == 0 {
		id.User = c.Subject.CommonName
	}
	return id
}

// Member returns the first of id's members that isMember accepts, or "".
func (id Identity) Member(isMember func(addr string) bool) string {
	for _, m := range id.Members {
		if isMember(m) {
			return m
		}
	}
	return ""
}

// Peer says who the other end of a server-side TLS connection is, by
// its verified certificate: the ring addresses it names (dkvs://IP:PORT;
// whether they are members is for the ring to say, at each use), or else
// the user it names. Neither for a client that presented no certificate.
// A server certificate never names a user: a server removed from the
// ring is nobody, not a user named by its common name.
func Peer(cs tls.ConnectionState) (members []string, user string) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil, ""
	}
	id := IdentityOf(cs.VerifiedChains[0][0])
	if len(id.Members) > 0 {
		return id.Members, ""
	}
	return nil, id.User
}

// Names reports whether c names the ring address addr (dkvs://addr).
func Names(c *x509.Certificate, addr string) bool {
	for _, m := range IdentityOf(c).Members {
		if m == addr {
			return true
		}
	}
	return false
}

// MemberURI returns the URI SAN that names the server at addr.
func MemberURI(addr string) *url.URL { return &url.URL{Scheme: MemberScheme, Host: addr} }

// UserURI returns the URI SAN that names user.
func UserURI(user string) *url.URL { return &url.URL{Scheme: UserScheme, Opaque: user} }

// ServerName is the name a client verifies a server's certificate
// against: the host of addr ("IP:PORT"), an IP SAN.
func ServerName(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return strings.Trim(host, "[]")
}
