// Package ringrpc is the ring's requests between clients and servers: ask
// a server for the ring it knows, or send it a ring command. It is apart
// from package membership (the consensus, its log in the store) so that
// clients, the C library among them, ask for the ring without linking the
// consensus or the storage engine.
package ringrpc

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Caller sends a request frame to a server and returns its answer: a
// server's connections to its peers, or a client's transport.
type Caller interface {
	Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error)
}

// askTimeout bounds a request for a server's ring.
const askTimeout = 5 * time.Second

// Send sends a ring command to a server (OpRingChange) and returns the
// state after it.
func Send(ctx context.Context, c Caller, addr string, cmd topology.Command) (topology.State, error) {
	f, err := c.Call(ctx, addr, wire.Frame{Kind: uint8(wire.OpRingChange), Body: cmd.Encode()})
	if err != nil {
		return topology.State{}, fmt.Errorf("ring %s through %s: %w", cmd.Op, addr, err)
	}
	switch f.Status() {
	case wire.StatusOK:
		return topology.Decode(f.Body)
	case wire.StatusFailed:
		b, msg, err := wire.DecodeFailure(f.Body)
		if err != nil {
			return topology.State{}, fmt.Errorf("ring %s through %s: bad answer: %w: %w", cmd.Op, addr, err, errcode.Network)
		}
		code := errcode.FromExitStatus(int(b))
		return topology.State{}, fmt.Errorf("%s: %w", strings.TrimSuffix(msg, ": "+code.Error()), code)
	}
	msg, _ := wire.DecodeMessage(f.Body)
	if auth.Refused(f.Status()) {
		return topology.State{}, fmt.Errorf("ring %s through %s: %w", cmd.Op, addr, auth.StatusError(f.Status(), msg))
	}
	return topology.State{}, fmt.Errorf("ring %s through %s: %s %s: %w", cmd.Op, addr, f.Status(), msg, errcode.Network)
}

// Epoch asks a server for the epoch of the ring it knows.
func Epoch(ctx context.Context, c Caller, addr string) (uint64, error) {
	s, err := Ring(ctx, c, addr)
	return s.Epoch, err
}

// Ring asks a server for the ring it knows (OpRing).
func Ring(ctx context.Context, c Caller, addr string) (topology.State, error) {
	cctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	f, err := c.Call(cctx, addr, wire.Frame{Kind: uint8(wire.OpRing)})
	if err != nil {
		return topology.State{}, err
	}
	if auth.Refused(f.Status()) {
		msg, _ := wire.DecodeMessage(f.Body)
		return topology.State{}, fmt.Errorf("ring of %s: %w", addr, auth.StatusError(f.Status(), msg))
	}
	if f.Status() != wire.StatusOK {
		return topology.State{}, fmt.Errorf("ring of %s: %s: %w", addr, f.Status(), errcode.Network)
	}
	return topology.Decode(f.Body)
}
