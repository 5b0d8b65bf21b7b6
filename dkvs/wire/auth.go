package wire

import "fmt"

// Authentication: when a server has users (dkvs-server --users), a
// connection that is neither a ring member (by its TLS certificate) nor a
// user (by its client certificate) proves a user with OpAuth before it is
// served anything but ping.

// OpAuth authenticates the connection as a user: the body is an
// AuthRequest, answered OK with an empty body, or StatusDenied. The
// connection keeps the user until it closes.
const OpAuth Op = 30

// Authentication statuses.
const (
	// StatusDenied: the user and token do not match (OpAuth), or the
	// connection's user lacks the right the request needs: message body.
	// Nothing was done.
	StatusDenied Status = 20
	// StatusAuthRequired: the server has users and the connection has not
	// authenticated; only ping and auth are served: message body.
	StatusAuthRequired Status = 21
)

// MaxAuthField bounds the user name and the token of an AuthRequest.
const MaxAuthField = 256

// AuthRequest names a user and carries its secret token.
type AuthRequest struct {
	User  string
	Token string
}

// Append appends the body.
func (m AuthRequest) Append(b []byte) []byte {
	return AppendBytes(AppendBytes(b, []byte(m.User)), []byte(m.Token))
}

// DecodeAuthRequest decodes an auth request body. The user and the token
// are each at most MaxAuthField bytes and the user is not empty.
func DecodeAuthRequest(body []byte) (AuthRequest, error) {
	r := reader{b: body}
	m := AuthRequest{User: string(r.bytes("user")), Token: string(r.bytes("token"))}
	if err := r.done(); err != nil {
		return AuthRequest{}, err
	}
	if m.User == "" || len(m.User) > MaxAuthField || len(m.Token) > MaxAuthField {
		return AuthRequest{}, fmt.Errorf("%w: user of %d bytes, token of %d (1 to %d and 0 to %d)",
			ErrMalformed, len(m.User), len(m.Token), MaxAuthField, MaxAuthField)
	}
	return m, nil
}

// RequestKey returns the key a request reads or writes (get, put, hint
// and the coordinated operations), with ok false for an operation that
// has none. A body that does not decode gives ok false too: the request's
// own handler refuses it.
func RequestKey(f Frame) (key []byte, ok bool) {
	switch op := f.Op(); op {
	case OpGet:
		m, err := DecodeGetRequest(f.Body)
		return m.Key, err == nil
	case OpPut:
		m, err := DecodePutRequest(f.Body)
		return m.Key, err == nil
	case OpHint:
		m, err := DecodeHintRequest(f.Body)
		return m.Key, err == nil
	case OpCoordGet, OpCoordPut, OpCoordDelete:
		m, err := DecodeCoordRequest(op, f.Body)
		return m.Key, err == nil
	}
	return nil, false
}
