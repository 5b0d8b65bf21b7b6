package resp

import (
	"errors"
	"net"
)

// Access decides who a connection is and what it may do, for a server
// with users (dkvs-server --users). The server checks, before any
// backend call, every key a command reads or writes: a command with one
// key it may not touch is refused whole and changes nothing.
type Access interface {
	// CertUser returns the user the connection's verified client
	// certificate names, or "" (no certificate, or one naming no user).
	CertUser(nc net.Conn) string
	// Login checks a user's token and returns the user's name; user ""
	// (AUTH with one argument) finds the user by its token alone. The
	// error wraps ErrWrongPass.
	Login(user, token string) (string, error)
	// Allow says whether user may read the keys of reads, write those of
	// writes, and (readsAll) read the whole keyspace; the error wraps
	// ErrNoPerm and says which.
	Allow(user string, reads, writes [][]byte, readsAll bool) error
}

// Errors an Access returns.
var (
	// ErrWrongPass: unknown user or wrong token.
	ErrWrongPass = errors.New("wrong user or token")
	// ErrNoPerm: the user lacks a right the command needs.
	ErrNoPerm = errors.New("no permission")
)

// Replies of the authentication, worded as Redis 7 words them.
const (
	errNoAuth      = "NOAUTH Authentication required."
	errHelloNoAuth = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	errNoPermKeys  = "NOPERM this user has no permissions to access one of the keys used as arguments"
)

// authorized reports whether the connection may run cmd at all: with an
// Access, an unauthenticated connection runs only the commands Redis
// lets through before AUTH (AUTH, HELLO, QUIT). It returns the refusal.
// It runs in the reader goroutine.
func (c *conn) authorized(cmd *command) string {
	acc := c.srv.opts.Access
	if acc == nil {
		return ""
	}
	if !c.certChecked {
		c.certChecked = true
		if u := acc.CertUser(c.nc); u != "" {
			c.setUser(u)
		}
	}
	if c.user() != "" || cmd.hasFlag("no_auth") {
		return ""
	}
	c.refused("command before AUTH", cmd.name)
	return errNoAuth
}

// allowed checks a prepared job's keys against the connection's user.
func (c *conn) allowed(cmd *command, j job) string {
	acc := c.srv.opts.Access
	if acc == nil {
		return ""
	}
	if err := acc.Allow(c.user(), j.reads, j.writes, j.readsAll); err != nil {
		c.refused(err.Error(), cmd.name)
		return errNoPermKeys
	}
	return ""
}

// login runs AUTH's and HELLO's check of credentials: it returns the
// user, or the error reply.
func (c *conn) login(user, token []byte) (string, string) {
	acc := c.srv.opts.Access
	if acc == nil {
		// No users: as Redis with no password configured, "default"
		// takes any password and no other user exists.
		if user == nil || string(user) == "default" {
			return "default", ""
		}
		return "", errWrongPass
	}
	name, err := acc.Login(string(user), string(token))
	if err != nil {
		c.refused("wrong user or token", "auth")
		return "", errWrongPass
	}
	return name, ""
}

// refused logs a connection's first refusal, with its address: a client
// that keeps trying cannot flood the log.
func (c *conn) refused(why, cmd string) {
	c.mu.Lock()
	first := !c.refusalLogged
	c.refusalLogged = true
	c.mu.Unlock()
	if first {
		c.log.Warn("resp: command refused (logged once per connection)", "remote", c.nc.RemoteAddr().String(),
			"user", c.user(), "cmd", cmd, "why", why)
	}
}

func (c *conn) user() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.authUser
}

func (c *conn) setUser(u string) {
	c.mu.Lock()
	c.authUser = u
	c.mu.Unlock()
}

func (cmd *command) hasFlag(f string) bool {
	for _, x := range cmd.flags {
		if x == f {
			return true
		}
	}
	return false
}
