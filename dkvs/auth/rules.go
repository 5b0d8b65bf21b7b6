package auth

import (
	"errors"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"

	"github.com/dkvs/dkvs/dkvs/session"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Errors of Authorize. A request refused with one of them has done
// nothing.
var (
	// ErrAuthRequired: the connection is neither a member nor a user.
	ErrAuthRequired = errors.New("authentication required")
	// ErrDenied: the connection's user lacks the right, or the user is no
	// longer in the users file.
	ErrDenied = errors.New("permission denied")
)

// Need is what an operation requires of a connection.
type Need uint8

// What operations need.
const (
	// NeedNothing: served to anyone (ping, auth).
	NeedNothing Need = iota
	// NeedUser: any authenticated user (the ring's state, which clients
	// need to place requests).
	NeedUser
	// NeedReadKey: the read right on the request's key.
	NeedReadKey
	// NeedWriteKey: the write right on the request's key.
	NeedWriteKey
	// NeedRead: the read right (the server's counters).
	NeedRead
	// NeedAdmin: the admin right (a dump of a whole server, ring changes).
	NeedAdmin
	// NeedMember: a ring member, proven by its certificate (the traffic
	// between servers: put-batch, anti-entropy, streams, consensus).
	NeedMember
)

// OpNeed is the one table of what each native operation needs. An
// operation it does not know is for members only.
func OpNeed(op wire.Op) Need {
	switch op {
	case wire.OpPing, wire.OpAuth:
		return NeedNothing
	case wire.OpRing:
		return NeedUser
	case wire.OpBatch:
		// Any user may send one; each item is then checked as the lone
		// request it carries (the server does, item by item).
		return NeedUser
	case wire.OpGet, wire.OpCoordGet:
		return NeedReadKey
	case wire.OpPut, wire.OpHint, wire.OpCoordPut, wire.OpCoordDelete:
		return NeedWriteKey
	case wire.OpStats:
		return NeedRead
	case wire.OpScan, wire.OpRingChange:
		return NeedAdmin
	}
	return NeedMember
}

// Authorize decides whether the connection of sess may run a request
// that needs need, on key for the key rights; users is the current users
// table. A nil sess is a request from inside the server, which is
// allowed. A member may do everything; a user what its rights say on its
// prefixes. The error wraps ErrAuthRequired or ErrDenied.
func Authorize(users *Table, sess *session.Session, need Need, key []byte) error {
	if need == NeedNothing || sess == nil || sess.Member() != "" {
		return nil
	}
	name := sess.User()
	if name == "" {
		return ErrAuthRequired
	}
	u, ok := users.Lookup(name)
	if !ok {
		return fmt.Errorf("%w: user %q is not in the users file", ErrDenied, name)
	}
	return u.Allows(need, key)
}

// Allows says whether u may run a request that needs need, on key for
// the key rights; the error wraps ErrDenied.
func (u *User) Allows(need Need, key []byte) error {
	var right Right
	switch need {
	case NeedNothing, NeedUser:
		return nil
	case NeedReadKey, NeedRead:
		right = Read
	case NeedWriteKey:
		right = Write
	case NeedAdmin:
		right = Admin
	default:
		return fmt.Errorf("%w: user %q: only ring members may do that", ErrDenied, u.Name)
	}
	if !u.Has(right) {
		return fmt.Errorf("%w: user %q has no %s right", ErrDenied, u.Name, right)
	}
	if (need == NeedReadKey || need == NeedWriteKey) && !u.Covers(key) {
		return fmt.Errorf("%w: user %q may not %s key %q: outside its prefixes", ErrDenied, u.Name, right, printable(key))
	}
	return nil
}

// printable cuts a key for a message.
func printable(key []byte) string {
	if len(key) > 64 {
		return string(key[:64]) + "..."
	}
	return string(key)
}

// StatusError is the error a client makes of a server's StatusDenied or
// StatusAuthRequired answer with message msg: it wraps ErrDenied or
// ErrAuthRequired and ERR_INVALID_CONFIG, the code (and exit status 133)
// of a client whose credentials or rights do not fit what it asks.
func StatusError(st wire.Status, msg string) error {
	base := ErrDenied
	if st == wire.StatusAuthRequired {
		base = ErrAuthRequired
	}
	if msg == "" {
		msg = st.String()
	}
	return fmt.Errorf("%s: %w: %w", msg, base, errcode.InvalidConfig)
}

// Refused reports whether st is a refusal of the connection's identity
// (StatusDenied or StatusAuthRequired), which StatusError turns into an
// error.
func Refused(st wire.Status) bool {
	return st == wire.StatusDenied || st == wire.StatusAuthRequired
}

// IsRefusal reports whether err is a server's refusal of the connection's
// credentials or rights. Such a server answered: it is up, and failure
// detectors must not mark it down for it.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrDenied) || errors.Is(err, ErrAuthRequired)
}
