package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/resp"
	"github.com/dkvs/dkvs/dkvs/session"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// authorize answers an auth request, and refuses a request that the
// connection's identity may not make (package auth decides); done false
// means serve it. Without users every request is served: the server is
// open, as its start-up log says.
func (s *Server) authorize(ctx context.Context, f wire.Frame) (answer wire.Frame, done bool) {
	sess := session.FromContext(ctx)
	if f.Op() == wire.OpAuth {
		return s.handleAuth(sess, f), true
	}
	if s.cfg.Users == nil {
		return wire.Frame{}, false
	}
	need := auth.OpNeed(f.Op())
	if need == auth.NeedNothing {
		return wire.Frame{}, false
	}
	var key []byte
	if need == auth.NeedReadKey || need == auth.NeedWriteKey {
		// A body that does not decode is checked with no key: a user
		// with every key gets its handler's "bad request", others the
		// refusal.
		if _, g, err := wire.SplitEpoch(f); err == nil {
			key, _ = wire.RequestKey(g)
		}
	}
	err := auth.Authorize(s.cfg.Users.Table(), sess, need, key)
	if err == nil {
		return wire.Frame{}, false
	}
	s.logRefusal(sess, f.Op(), err)
	if errors.Is(err, auth.ErrAuthRequired) {
		return fail(wire.StatusAuthRequired, "%s: %v: authenticate first (auth, op 30)", f.Op(), err), true
	}
	return fail(wire.StatusDenied, "%s: %v", f.Op(), err), true
}

// handleAuth checks a user's token and, if it matches, makes the
// connection that user's. A server without users accepts any: there is
// nothing to check, and a client configured with a token keeps working
// while the ring is being secured.
func (s *Server) handleAuth(sess *session.Session, f wire.Frame) wire.Frame {
	m, err := wire.DecodeAuthRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	if s.cfg.Users == nil {
		return ok(nil)
	}
	if sess == nil {
		return fail(wire.StatusBadRequest, "auth outside a connection")
	}
	if _, err := s.cfg.Users.Table().Verify(m.User, m.Token); err != nil {
		s.logRefusal(sess, wire.OpAuth, err)
		return fail(wire.StatusDenied, "auth: %v", err)
	}
	sess.SetUser(m.User)
	return ok(nil)
}

// logRefusal logs the first refusal of a connection, with its address.
func (s *Server) logRefusal(sess *session.Session, op wire.Op, err error) {
	if sess == nil {
		s.log.Warn("request refused", "op", op.String(), "err", err)
		return
	}
	if sess.FirstRefusal() {
		s.log.Warn("request refused (logged once per connection)", "remote", sess.Remote(), "user", sess.User(), "op", op.String(), "err", err)
	}
}

// respAccess applies the users to the Redis protocol's connections: the
// same users and the same rules (package auth) as the native protocol.
type respAccess struct{ s *Server }

var _ resp.Access = respAccess{}

// CertUser implements resp.Access.
func (a respAccess) CertUser(nc net.Conn) string {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return ""
	}
	_, user := a.s.identity(tc.ConnectionState())
	return user
}

// Login implements resp.Access.
func (a respAccess) Login(user, token string) (string, error) {
	t := a.s.cfg.Users.Table()
	var (
		u   *auth.User
		err error
	)
	if user == "" {
		u, err = t.VerifyToken(token)
	} else {
		u, err = t.Verify(user, token)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", resp.ErrWrongPass, err)
	}
	return u.Name, nil
}

// Allow implements resp.Access: a key read needs the read right on it, a
// key written the write right, and a read of the whole keyspace (SCAN,
// KEYS, DBSIZE) the read right on every key (the prefix "*").
func (a respAccess) Allow(user string, reads, writes [][]byte, readsAll bool) error {
	u, ok := a.s.cfg.Users.Table().Lookup(user)
	if !ok {
		return fmt.Errorf("%w: user %q is not in the users file", resp.ErrNoPerm, user)
	}
	check := func(need auth.Need, key []byte) error {
		if err := u.Allows(need, key); err != nil {
			return fmt.Errorf("%w: %w", resp.ErrNoPerm, err)
		}
		return nil
	}
	for _, k := range reads {
		if err := check(auth.NeedReadKey, k); err != nil {
			return err
		}
	}
	for _, k := range writes {
		if err := check(auth.NeedWriteKey, k); err != nil {
			return err
		}
	}
	if readsAll {
		return check(auth.NeedReadKey, nil) // only "*" covers the empty key
	}
	return nil
}
