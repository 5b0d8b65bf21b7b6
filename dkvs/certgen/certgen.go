// Package certgen makes the certificates of a TLS ring with crypto/x509:
// a CA, one certificate per server naming its ring address, and client
// certificates naming users (the identities package tlsconf reads).
// Keys are ECDSA P-256; files are PEM, keys in PKCS #8.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
)

// Validity is the span of a certificate: from NotBefore to NotAfter.
type Validity struct {
	NotBefore, NotAfter time.Time
}

// Days returns a validity from an hour before now (clocks of a ring
// differ) to days after it.
func Days(now time.Time, days int) Validity {
	return Validity{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Duration(days) * 24 * time.Hour)}
}

// Pair is a certificate and its private key, both PEM.
type Pair struct {
	Cert, Key []byte
}

// CA signs certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	Pair Pair
	rand io.Reader
}

// NewCA makes a self-signed CA named name. random is the source of keys
// and serial numbers (crypto/rand's Reader if nil).
func NewCA(name string, v Validity, random io.Reader) (*CA, error) {
	if random == nil {
		random = rand.Reader
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w: %w", err, errcode.Runtime)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name, Organization: []string{"dkvs"}},
		NotBefore:             v.NotBefore,
		NotAfter:              v.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	ca := &CA{Key: key, rand: random}
	ca.Pair, ca.Cert, err = ca.sign(tmpl, tmpl, key, key)
	if err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads a CA's certificate and key from PEM files, to sign more
// certificates with it.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w: %w", err, errcode.IO)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w: %w", err, errcode.IO)
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("CA certificate %s: no PEM certificate: %w", certFile, errcode.InvalidConfig)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w: %w", certFile, err, errcode.InvalidConfig)
	}
	kblk, _ := pem.Decode(keyPEM)
	if kblk == nil {
		return nil, fmt.Errorf("CA key %s: no PEM key: %w", keyFile, errcode.InvalidConfig)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w: %w", keyFile, err, errcode.InvalidConfig)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key %s: not a signing key: %w", keyFile, errcode.InvalidConfig)
	}
	return &CA{Cert: cert, Key: signer, Pair: Pair{Cert: certPEM, Key: keyPEM}, rand: rand.Reader}, nil
}

// Server makes the certificate of the server at addr ("IP:PORT"): an IP
// SAN for its IP, the DNS names given, and the URI SAN dkvs://IP:PORT
// that names it as a member of the ring. It serves (server auth) and
// dials its peers with it (client auth).
func (ca *CA) Server(addr string, dnsNames []string, v Validity) (Pair, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return Pair{}, fmt.Errorf("server %q: want IP:PORT: %w", addr, errcode.Address)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return Pair{}, fmt.Errorf("server %q: not an IP address: %w", addr, errcode.Address)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "dkvs server " + addr, Organization: []string{"dkvs"}},
		NotBefore:   v.NotBefore,
		NotAfter:    v.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{ip},
		DNSNames:    dnsNames,
		URIs:        nil,
	}
	tmpl.URIs = append(tmpl.URIs, tlsconf.MemberURI(addr))
	return ca.leaf(tmpl)
}

// Client makes a client certificate naming user (URI SAN
// dkvs-user:USER, and the common name).
func (ca *CA) Client(user string, v Validity) (Pair, error) {
	if err := CheckUser(user); err != nil {
		return Pair{}, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: []string{"dkvs"}},
		NotBefore:   v.NotBefore,
		NotAfter:    v.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	tmpl.URIs = append(tmpl.URIs, tlsconf.UserURI(user))
	return ca.leaf(tmpl)
}

// CheckUser checks a user name: letters, digits, '.', '_' and '-', as in
// the users file and file names.
func CheckUser(user string) error {
	if user == "" || strings.IndexFunc(user, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 || user[0] == '.' || user[0] == '-' {
		return fmt.Errorf("user name %q: want letters, digits, '.', '_' or '-': %w", user, errcode.InvalidCommand)
	}
	return nil
}

func (ca *CA) leaf(tmpl *x509.Certificate) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return Pair{}, fmt.Errorf("key: %w: %w", err, errcode.Runtime)
	}
	p, _, err := ca.sign(tmpl, ca.Cert, key, ca.Key)
	return p, err
}

// sign signs tmpl's certificate of key's public half with signer (key
// itself for a self-signed one).
func (ca *CA) sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (Pair, *x509.Certificate, error) {
	if signer == nil {
		signer = key
	}
	serial, err := rand.Int(ca.rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Pair{}, nil, fmt.Errorf("serial number: %w: %w", err, errcode.Runtime)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(ca.rand, tmpl, parent, key.Public(), signer)
	if err != nil {
		return Pair{}, nil, fmt.Errorf("sign %q: %w: %w", tmpl.Subject.CommonName, err, errcode.Runtime)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, nil, fmt.Errorf("sign %q: %w: %w", tmpl.Subject.CommonName, err, errcode.Runtime)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, nil, fmt.Errorf("key: %w: %w", err, errcode.Runtime)
	}
	return Pair{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}, cert, nil
}

// File names in a certificate directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// ServerFiles returns the certificate and key file names of the server
// at addr in a certificate directory.
func ServerFiles(addr string) (cert, key string) {
	base := "server-" + strings.ReplaceAll(addr, ":", "-")
	return base + ".pem", base + "-key.pem"
}

// ClientFiles returns those of user's client certificate.
func ClientFiles(user string) (cert, key string) {
	return "client-" + user + ".pem", "client-" + user + "-key.pem"
}

// Write writes p into dir under the names given: the certificate 0644,
// the key 0600. Each file is written to a temporary file renamed over
// the old, so that a server watching them reads one or the other.
func (p Pair) Write(dir, certName, keyName string) error {
	if err := WriteFile(filepath.Join(dir, keyName), p.Key, 0o600); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, certName), p.Cert, 0o644)
}

// WriteFile writes b to name atomically (a temporary file renamed) with
// the permissions perm.
func WriteFile(name string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w: %w", name, err, errcode.IO)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Chmod(perm)
	if err := errors.Join(werr, cerr, f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w: %w", name, err, errcode.IO)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w: %w", name, err, errcode.IO)
	}
	return nil
}
