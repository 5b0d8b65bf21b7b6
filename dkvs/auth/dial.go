package auth

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// DialFunc opens a connection to a server, as transport.ClientOptions.Dial.
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// DefaultAuthTimeout bounds the exchange of an auth request when the
// dial's context has no deadline.
const DefaultAuthTimeout = 5 * time.Second

// Dialer returns a dial function that opens a connection with dial (TCP,
// then TLS when configured) and authenticates it as user with token
// before handing it over: a client authenticates once per connection,
// and its requests then go out as on any connection. A refused token
// is an error wrapping ErrDenied and errcode.InvalidConfig.
func Dialer(dial DialFunc, user, token string) DialFunc {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		if err := authenticate(ctx, nc, user, token); err != nil {
			nc.Close()
			return nil, fmt.Errorf("authenticate to %s as %q: %w", addr, user, err)
		}
		return nc, nil
	}
}

// authenticate sends one auth request on nc and reads its answer, before
// any other request is sent on it.
func authenticate(ctx context.Context, nc net.Conn, user, token string) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultAuthTimeout)
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return fmt.Errorf("%w: %w", err, errcode.Network)
	}
	body := wire.AuthRequest{User: user, Token: token}.Append(nil)
	if _, err := nc.Write(wire.AppendFrame(nil, wire.Frame{Kind: uint8(wire.OpAuth), ID: 1, Body: body})); err != nil {
		return fmt.Errorf("%w: %w", err, errcode.Network)
	}
	// The answer is read unbuffered, header then body, so that nothing
	// after it is taken from the connection's own reader.
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		return fmt.Errorf("%w: %w", err, errcode.Network)
	}
	hd, err := wire.ParseHeader(hb[:], wire.HeaderSize+64<<10)
	if err != nil {
		return fmt.Errorf("auth answer: %w: %w", err, errcode.Network)
	}
	b := make([]byte, hd.BodyLen)
	if _, err := io.ReadFull(nc, b); err != nil {
		return fmt.Errorf("%w: %w", err, errcode.Network)
	}
	f := wire.Frame{Kind: hd.Kind, Flags: hd.Flags, ID: hd.ID, Body: b}
	if f.Op() != wire.OpAuth || !f.IsResponse() {
		return fmt.Errorf("auth answered with %s: %w", f.Op(), errcode.Network)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("%w: %w", err, errcode.Network)
	}
	switch st := f.Status(); {
	case st == wire.StatusOK:
		return nil
	case Refused(st):
		msg, _ := wire.DecodeMessage(f.Body)
		return StatusError(st, msg)
	default:
		msg, _ := wire.DecodeMessage(f.Body)
		return fmt.Errorf("auth: %s %s: %w", st, msg, errcode.InvalidConfig)
	}
}
