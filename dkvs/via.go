package dkvs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// A client with Options.Via sends each Put, Get and Delete to one server as
// a coordinated request (coord-put, coord-get, coord-delete in
// docs/protocol.md): that server runs the quorum operation on the ring
// with the request's N, R or W, level and linearizable flag, and answers
// with the outcome. The client then needs no knowledge of the ring.

// checkVia validates Options.Via: a dotted IPv4 address and a port.
func checkVia(via string) error {
	host, port, err := net.SplitHostPort(via)
	if err != nil {
		return fmt.Errorf("via %q: want IP:PORT: %w", via, errcode.InvalidConfig)
	}
	if _, err := config.ParseIP(host); err != nil {
		return fmt.Errorf("via %q: %w", via, err)
	}
	if _, err := config.ParsePort(port); err != nil {
		return fmt.Errorf("via %q: %w", via, err)
	}
	return nil
}

// viaParams encodes a Request as quorum.Req.Params says: a Request that
// chooses nothing (N, R, W and Level zero) asks for the server's
// defaults.
func viaParams(op wire.Op, r Request) (wire.CoordParams, error) {
	k := quorum.Write
	if op == wire.OpCoordGet {
		k = quorum.Read
	}
	qp, err := r.Params(k)
	if err != nil {
		return wire.CoordParams{}, err
	}
	p := wire.CoordParams{Level: qp.Level, N: qp.N, Q: qp.Q}
	if qp.Linearizable {
		p.Flags |= wire.CoordLinearizable
	}
	if qp.Defaults {
		p.Flags |= wire.CoordDefaults
	}
	return p, nil
}

// viaBudget returns how long the coordinating server may take and how long
// the client waits for its answer: the time left before ctx's deadline,
// less a margin for the answer to travel back, or ten times the
// per-replica timeout without a deadline.
func (c *Client) viaBudget(ctx context.Context) (budget, wait time.Duration) {
	t := c.opts.Timeout
	if t <= 0 {
		t = coord.DefaultTimeout
	}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		return left - min(left/5, 100*time.Millisecond), left
	}
	return 10 * t, 11 * t
}

// viaCall sends one coordinated request and turns its answer into the
// response frame (status OK) or an error carrying the DKVS code.
func (c *Client) viaCall(ctx context.Context, op wire.Op, key, value []byte, r Request) (wire.Frame, error) {
	name := strings.TrimPrefix(op.String(), "coord-")
	if err := c.limits().CheckRecord(key, value); err != nil {
		return wire.Frame{}, err
	}
	p, err := viaParams(op, c.req(r))
	if err != nil {
		return wire.Frame{}, err
	}
	budget, wait := c.viaBudget(ctx)
	if budget <= 0 {
		return wire.Frame{}, fmt.Errorf("%s: no time left: %w", name, errcode.Network)
	}
	p.TimeoutMS = uint64(max(budget/time.Millisecond, 1))
	body := wire.CoordRequest{Params: p, Key: key, Value: value}.Append(nil, op)
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	f, err := c.tr.Call(cctx, c.opts.Via, wire.Frame{Kind: uint8(op), Body: body})
	if err != nil {
		if errcode.Of(err) == errcode.InvalidConfig {
			// Refused credentials: nothing was sent.
			return wire.Frame{}, fmt.Errorf("%s via %s: %w", name, c.opts.Via, err)
		}
		if op != wire.OpCoordGet && !errors.Is(err, transport.ErrNotSent) {
			// The server may have run the write and lost only the answer.
			return wire.Frame{}, fmt.Errorf("%s via %s: %w: %w", name, c.opts.Via, err, ErrUnknownOutcome)
		}
		return wire.Frame{}, fmt.Errorf("%s via %s: %w: %w", name, c.opts.Via, err, errcode.Network)
	}
	switch f.Status() {
	case wire.StatusOK:
		return f, nil
	case wire.StatusNotFound:
		return f, fmt.Errorf("%s %q via %s: %w", name, truncate(key), c.opts.Via, errcode.NotFound)
	case wire.StatusUnknown:
		msg, _ := wire.DecodeMessage(f.Body)
		return f, fmt.Errorf("%s via %s: %w", trimCode(msg, errcode.Network), c.opts.Via, ErrUnknownOutcome)
	case wire.StatusFailed:
		b, msg, err := wire.DecodeFailure(f.Body)
		if err != nil {
			return f, fmt.Errorf("%s via %s: bad answer: %w: %w", name, c.opts.Via, err, errcode.Network)
		}
		code := codeOfStatusByte(b)
		return f, fmt.Errorf("%s via %s: %w", trimCode(msg, code), c.opts.Via, code)
	}
	msg, _ := wire.DecodeMessage(f.Body)
	if auth.Refused(f.Status()) {
		return f, fmt.Errorf("%s via %s: %w", name, c.opts.Via, auth.StatusError(f.Status(), msg))
	}
	code := errcode.Network
	switch f.Status() {
	case wire.StatusTooLarge, wire.StatusBadRequest:
		code = errcode.InvalidArg
	case wire.StatusInternal:
		code = errcode.IO
	}
	return f, fmt.Errorf("%s via %s: %s %s: %w", name, c.opts.Via, f.Status(), msg, code)
}

// codeOfStatusByte reads the code byte of a failure (256 + code).
func codeOfStatusByte(b uint8) errcode.Code {
	code := errcode.Code(int(b) - 256)
	for _, c := range errcode.All {
		if c == code && c != errcode.None {
			return code
		}
	}
	return errcode.Runtime
}

// trimCode drops the code's message that ends the server's message, since
// the error wraps the code again.
func trimCode(msg string, code errcode.Code) string {
	return strings.TrimSuffix(msg, ": "+code.Error())
}

func truncate(key []byte) string {
	if len(key) > 64 {
		return string(key[:64]) + "…"
	}
	return string(key)
}

// limits returns the limits of Options: the coordinator's, checked here
// too because a request via a server does not pass the coordinator.
func (c *Client) limits() limits.Limits {
	return limits.Limits{MaxKeySize: c.opts.MaxKeySize, MaxValueSize: c.opts.MaxValueSize}.OrDefault()
}

func (c *Client) viaPut(ctx context.Context, key, value []byte, r Request) error {
	if value == nil {
		value = []byte{}
	}
	_, err := c.viaCall(ctx, wire.OpCoordPut, key, value, r)
	return err
}

func (c *Client) viaGet(ctx context.Context, key []byte, r Request) ([]byte, error) {
	f, err := c.viaCall(ctx, wire.OpCoordGet, key, nil, r)
	if err != nil {
		return nil, err
	}
	rec, err := wire.DecodeRecord(f.Body)
	if err != nil {
		return nil, fmt.Errorf("get via %s: bad answer: %w: %w", c.opts.Via, err, errcode.Network)
	}
	if rec.Value == nil {
		rec.Value = []byte{}
	}
	return rec.Value, nil
}

func (c *Client) viaDelete(ctx context.Context, key []byte, r Request) error {
	_, err := c.viaCall(ctx, wire.OpCoordDelete, key, nil, r)
	return err
}
