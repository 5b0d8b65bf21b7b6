// Package session says who is at the other end of one server-side
// connection: a ring member proven by its TLS certificate, a user proven
// by a client certificate or a token, or nobody yet. The transport makes
// one Session per accepted connection and hands it to every request of
// that connection through its context, so that the rules of who may do
// what (package auth) read it without knowing about sockets or TLS.
package session

import (
	"context"
	"sync"
)

// Session is the identity of one connection. It starts empty; the TLS
// handshake may set the member or user, and an authentication request may
// set the user later. Safe for concurrent use: requests of a connection
// are handled concurrently.
type Session struct {
	remote string

	// claims are the ring addresses the peer's verified certificate
	// names, and isMember says which of them are members of the ring at
	// the moment of asking (SetTLSMember).
	claims   []string
	isMember func(addr string) bool

	mu     sync.Mutex
	member string
	user   string
	tls    bool
	// refused is set by the first refusal logged for the connection.
	refused bool
}

// New returns the empty session of a connection from remote (its address,
// for logs).
func New(remote string) *Session { return &Session{remote: remote} }

// Remote returns the address of the connection's other end.
func (s *Session) Remote() string { return s.remote }

// SetTLS records that the connection is encrypted and, if the peer's
// certificate was verified, the ring member ("IP:PORT") or the user it
// names; either may be empty.
func (s *Session) SetTLS(member, user string) {
	s.mu.Lock()
	s.tls, s.member = true, member
	if user != "" {
		s.user = user
	}
	s.mu.Unlock()
}

// SetTLSMember records that the connection is encrypted and that the
// peer's verified certificate names the servers at claims (ring
// addresses). Member then returns the first of them that isMember accepts
// when it is asked: a connection lives longer than a ring, and a server
// that joins (or leaves) after connecting becomes (or stops being) a
// member on the connections it already has.
func (s *Session) SetTLSMember(claims []string, isMember func(addr string) bool) {
	s.mu.Lock()
	s.tls, s.member = true, ""
	s.claims, s.isMember = claims, isMember
	s.mu.Unlock()
}

// TLS reports whether the connection is encrypted.
func (s *Session) TLS() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tls
}

// Member returns the ring address the peer's certificate names, or "" if
// the peer is not a server of the ring.
func (s *Session) Member() string {
	s.mu.Lock()
	member, claims, isMember := s.member, s.claims, s.isMember
	s.mu.Unlock()
	if isMember == nil {
		return member
	}
	for _, c := range claims {
		if isMember(c) {
			return c
		}
	}
	return ""
}

// SetUser records the user the connection has authenticated as.
func (s *Session) SetUser(user string) {
	s.mu.Lock()
	s.user = user
	s.mu.Unlock()
}

// User returns the user the connection has authenticated as, or "".
func (s *Session) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// FirstRefusal reports whether this is the connection's first refused
// request, and marks it: refusals are logged once per connection, so that
// a client that keeps trying cannot flood the log.
func (s *Session) FirstRefusal() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.refused
	s.refused = true
	return first
}

type ctxKey struct{}

// NewContext returns ctx carrying s.
func NewContext(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the session ctx carries, or nil: a request that did
// not come over a connection (a test, an in-process call).
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}
