package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/scan"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// selfTransport is the transport of the server's coordinator: a request
// for this server itself is answered by serve in this process, with no
// network hop and no connection to itself; the others go over TCP. The
// client's rights were checked on the key before the operation started:
// the coordinator's replica requests (read repairs included) are the
// server's own, and are not checked again against the client.
type selfTransport struct{ s *Server }

// The coordinator sends through selfTransport, and ring scans read pages
// through it.
var (
	_ coord.Transport = selfTransport{}
	_ scan.Caller     = selfTransport{}
)

// errSelfCoord refuses a coordinated request sent by the coordinator to
// its own server: it only ever sends replica operations, so this would be
// a bug, and answering it would recurse.
var errSelfCoord = fmt.Errorf("coordinated request to itself: %w: %w", transport.ErrNotSent, errcode.Runtime)

var _ coord.InlineTransport = selfTransport{}

// Local implements coord.LocalTransport: the server's own address is
// answered in process.
func (t selfTransport) Local(addr string) bool { return addr == t.s.cfg.Addr }

// Call implements coord.Transport.
func (t selfTransport) Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error) {
	if addr != t.s.cfg.Addr {
		return t.s.coordNet.Call(ctx, addr, req)
	}
	if err := ctx.Err(); err != nil {
		return wire.Frame{}, fmt.Errorf("%s: %w: %w: %w", addr, err, transport.ErrNotSent, errcode.Network)
	}
	if req.Op().IsCoord() {
		return wire.Frame{}, errSelfCoord
	}
	resp := t.s.serve(ctx, req)
	resp.Kind, resp.ID = req.Kind|wire.RespBit, req.ID
	return resp, nil
}

// Go implements coord.AsyncTransport: a request for another server goes
// out on the coordinator's connections without a goroutine; one for this
// server runs Handle on another goroutine (one of the server's workers),
// so that the requests to the other replicas leave at once rather than
// after this server's fsync.
func (t selfTransport) Go(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error)) {
	if addr != t.s.cfg.Addr {
		t.s.coordNet.Go(addr, req, deadline, done)
		return
	}
	t.s.local.run(func() { t.Run(addr, req, deadline, done) })
}

// Run implements coord.InlineTransport: the coordinator calls it for an
// operation whose only replica is this server, on its own goroutine.
func (t selfTransport) Run(addr string, req wire.Frame, deadline time.Time, done func(wire.Frame, error)) {
	if op := req.Op(); addr == t.s.cfg.Addr && (op == wire.OpGet || op == wire.OpPut) {
		// Their handlers take no context: a deadline already passed is all
		// there is to check (a timer per request was 2% of the CPU of a
		// server answering unpipelined Redis clients at N=1).
		if !time.Now().Before(deadline) {
			done(wire.Frame{}, fmt.Errorf("%s: %w: %w: %w", addr, context.DeadlineExceeded, transport.ErrNotSent, errcode.Network))
			return
		}
		resp := t.s.serve(context.Background(), req)
		resp.Kind, resp.ID = req.Kind|wire.RespBit, req.ID
		done(resp, nil)
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	done(t.Call(ctx, addr, req))
}

// Coordinator returns the coordinator the server runs operations with for
// clients that do not know the ring.
func (s *Server) Coordinator() *coord.Coordinator { return s.coord }

// DefaultRequest is the replication the server uses when a client does
// not choose (RESP commands, native requests asking for the defaults).
func (s *Server) DefaultRequest() coord.Req {
	cc := s.cfg.Coord
	return coord.Req{N: cc.N, R: cc.R, W: cc.W, Level: cc.Level, Linearizable: cc.Linearizable}
}

// coordReq turns a request's parameters into the coordinator's request
// and the time the operation may take. Values out of range are the
// client's error (ERR_INVALID_ARGUMENT), not a reason to drop the
// connection: the body itself was well formed.
func (s *Server) coordReq(op wire.Op, p wire.CoordParams) (coord.Req, time.Duration, error) {
	budget := s.cfg.Coord.MaxTime
	if p.TimeoutMS > 0 && p.TimeoutMS < uint64(budget/time.Millisecond) {
		budget = time.Duration(p.TimeoutMS) * time.Millisecond
	}
	k := quorum.Write
	if op == wire.OpCoordGet {
		k = quorum.Read
	}
	req, err := quorum.FromParams(k, quorum.Params{
		Defaults:     p.Flags&wire.CoordDefaults != 0,
		Linearizable: p.Flags&wire.CoordLinearizable != 0,
		Level:        p.Level,
		N:            p.N,
		Q:            p.Q,
	}, s.DefaultRequest())
	if err != nil {
		return coord.Req{}, 0, err
	}
	return req, budget, nil
}

// handleCoord runs a coordinated operation for a client.
func (s *Server) handleCoord(ctx context.Context, f wire.Frame) wire.Frame {
	if f.Flags != 0 {
		return fail(wire.StatusBadRequest, "unknown %s flags %#x", f.Op(), f.Flags)
	}
	op := f.Op()
	m, err := wire.DecodeCoordRequest(op, f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	req, budget, err := s.coordReq(op, m.Params)
	if err != nil {
		return coordFail(err)
	}
	// The operation stops at the client's deadline (or the server's cap),
	// whichever comes first; each replica request still has its own,
	// shorter deadline, so that a replica that does not answer is given up
	// (and a fallback tried) while the client is still waiting.
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	switch op {
	case wire.OpCoordGet:
		rec, err := s.coord.GetReq(ctx, m.Key, req)
		if err != nil {
			return coordFail(err)
		}
		return ok(wire.AppendRecord(make([]byte, 0, wire.RecordSize(rec)), rec))
	case wire.OpCoordPut:
		v, err := s.coord.PutReq(ctx, m.Key, m.Value, req)
		if err != nil {
			return coordFail(err)
		}
		return ok(wire.AppendVersion(make([]byte, 0, kv.VersionSize), v))
	default:
		v, err := s.coord.DeleteReq(ctx, m.Key, req)
		if err != nil {
			return coordFail(err)
		}
		return ok(wire.AppendVersion(make([]byte, 0, kv.VersionSize), v))
	}
}

// coordFail answers a coordinated operation's error: not found, an
// unknown write outcome, or a failure carrying its DKVS code.
func coordFail(err error) wire.Frame {
	switch {
	case errors.Is(err, coord.ErrUnknownOutcome):
		return wire.Frame{Flags: uint8(wire.StatusUnknown), Body: wire.AppendMessage(nil, err.Error())}
	case errors.Is(err, errcode.NotFound):
		return wire.Frame{Flags: uint8(wire.StatusNotFound)}
	}
	code := errcode.Of(err)
	return wire.Frame{Flags: uint8(wire.StatusFailed), Body: wire.AppendFailure(nil, uint8(code.ExitStatus()), err.Error())}
}
