package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// ClientAuth says whether a server requires its clients to present a
// certificate. Either way a certificate that is presented is verified.
type ClientAuth int

// Client certificate policies.
const (
	// ClientCertOptional verifies a client certificate if one is given:
	// the default, so that clients with a token (or none) get in while
	// peers still prove that they are members.
	ClientCertOptional ClientAuth = iota
	// ClientCertRequired refuses a client without a valid certificate.
	ClientCertRequired
)

// ParseClientAuth parses "optional" or "required".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch s {
	case "optional", "":
		return ClientCertOptional, nil
	case "required":
		return ClientCertRequired, nil
	}
	return 0, fmt.Errorf("client certificate policy %q: want optional or required: %w", s, errcode.InvalidCommand)
}

// DefaultPoll is how often a Store's Watch looks at its files.
const DefaultPoll = 2 * time.Second

// HandshakeTimeout bounds a TLS handshake whose context has no deadline.
const HandshakeTimeout = 10 * time.Second

// Store holds a server's current TLS material and swaps it, as a whole,
// when its files change: every handshake reads the material once, so it
// sees the old set or the new one, never a mix. Connections already open
// keep the keys they agreed on. Safe for concurrent use.
type Store struct {
	files      Files
	clientAuth ClientAuth
	log        *slog.Logger

	cur atomic.Pointer[loaded]

	mu      sync.Mutex // serializes reloads
	badSeen stamp      // the files' stamp whose load failed last, logged once
}

// loaded is one load of the files and what is derived from it.
type loaded struct {
	m      *Material
	server *tls.Config
	stamp  stamp
}

// stamp is what Watch compares to tell that a file changed.
type stamp [3]struct {
	mod  time.Time
	size int64
}

// NewStore loads files, which must name a certificate and key as well as
// the CA. logger receives reloads and their failures (nil discards).
func NewStore(files Files, clientAuth ClientAuth, logger *slog.Logger) (*Store, error) {
	if files.CA == "" || files.Cert == "" || files.Key == "" {
		return nil, fmt.Errorf("tls: a server needs a CA, a certificate and a key (all three or none): %w", errcode.InvalidCommand)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{files: files, clientAuth: clientAuth, log: logger}
	l, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(l)
	return s, nil
}

// Material returns the material in use.
func (s *Store) Material() *Material { return s.cur.Load().m }

func (s *Store) load() (*loaded, error) {
	st := s.stat()
	m, err := Load(s.files)
	if err != nil {
		return nil, err
	}
	auth := tls.VerifyClientCertIfGiven
	if s.clientAuth == ClientCertRequired {
		auth = tls.RequireAndVerifyClientCert
	}
	return &loaded{m: m, stamp: st, server: &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{*m.Cert},
		ClientCAs:    m.Pool,
		ClientAuth:   auth,
	}}, nil
}

func (st stamp) changedAfter(t time.Time) bool {
	for _, f := range st {
		if f.mod.After(t) {
			return true
		}
	}
	return false
}

func (s *Store) stat() stamp {
	var st stamp
	for i, name := range []string{s.files.CA, s.files.Cert, s.files.Key} {
		if fi, err := os.Stat(name); err == nil {
			st[i].mod, st[i].size = fi.ModTime(), fi.Size()
		}
	}
	return st
}

// Reload reads the files again and, if they are valid, makes them the
// material of every later handshake. On error the material in use stays.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.load()
	if err != nil {
		return err
	}
	s.cur.Store(l)
	return nil
}

// Watch reloads the files when hup delivers (SIGHUP) and when one of
// them changes (checked every poll; DefaultPoll if zero), until ctx
// ends. A reload that fails is logged as an error, once per change of
// the files, and the material in use stays.
func (s *Store) Watch(ctx context.Context, poll time.Duration, hup <-chan os.Signal) {
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-hup:
			forced = true
		case <-t.C:
		}
		s.check(forced, time.Now().Add(-poll))
	}
}

// check reloads if forced or if the files changed since the last load
// and none changed after settled: a certificate and its key are written
// one after the other, and a load between the two would fail.
func (s *Store) check(forced bool, settled time.Time) {
	st := s.stat()
	s.mu.Lock()
	same := st == s.cur.Load().stamp
	bad := st == s.badSeen
	s.mu.Unlock()
	if !forced && (same || bad || st.changedAfter(settled)) {
		return
	}
	if err := s.Reload(); err != nil {
		s.mu.Lock()
		s.badSeen = st
		s.mu.Unlock()
		s.log.Error("tls: reload failed, the certificates in use stay", "err", err)
		return
	}
	m := s.Material()
	s.log.Info("tls: certificates reloaded", "cert", s.files.Cert, "subject", m.Leaf.Subject.String(), "not_after", m.Leaf.NotAfter)
}

// ServerConfig returns the configuration of a port the server serves:
// each handshake takes the material in use at that moment.
func (s *Store) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().server, nil
		},
	}
}

// PeerConfig returns the configuration of a connection to the peer at
// addr: the server's own certificate (mutual TLS), the peer's verified
// against the CA in use and required to name addr (dkvs://addr), not
// only its IP, which other servers of its machine share.
func (s *Store) PeerConfig(addr string) *tls.Config {
	m := s.Material()
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      m.Pool,
		ServerName:   ServerName(addr),
		Certificates: []tls.Certificate{*m.Cert},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !Names(cs.PeerCertificates[0], addr) {
				return fmt.Errorf("tls: the certificate of %s does not name it (no URI SAN %s)", addr, MemberURI(addr))
			}
			return nil
		},
	}
}
