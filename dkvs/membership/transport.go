package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/ringrpc"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Caller sends a request frame to a server and returns its answer: the
// server's connections to its peers.
type Caller = ringrpc.Caller

// RPC kinds, the first byte of an OpRaft body; the rest is the request,
// msgpack-encoded as Raft's own network transport does. An answer is a
// message (empty: no error) then the response.
const (
	rpcAppendEntries byte = iota + 1
	rpcRequestVote
	rpcRequestPreVote
	rpcInstallSnapshot
	rpcTimeoutNow
)

// rpcTimeout bounds one consensus request; a snapshot gets longer.
const (
	rpcTimeout      = 5 * time.Second
	snapshotTimeout = 30 * time.Second
)

// frameTransport is Raft's Transport over the native protocol: every RPC
// is one OpRaft request on the connections the server already keeps to
// its peers, so that the ring's consensus needs no port of its own and
// runs over whatever network the server does (TCP, or memnet in tests).
type frameTransport struct {
	self    raft.ServerAddress
	caller  Caller
	consume chan raft.RPC

	mu        sync.Mutex
	heartbeat func(raft.RPC)
	closed    chan struct{}
	closeOnce sync.Once
}

var (
	_ raft.Transport   = (*frameTransport)(nil)
	_ raft.WithPreVote = (*frameTransport)(nil)
	_ raft.WithClose   = (*frameTransport)(nil)
)

func newFrameTransport(self string, caller Caller) *frameTransport {
	return &frameTransport{self: raft.ServerAddress(self), caller: caller, consume: make(chan raft.RPC), closed: make(chan struct{})}
}

func (t *frameTransport) Consumer() <-chan raft.RPC { return t.consume }

func (t *frameTransport) LocalAddr() raft.ServerAddress { return t.self }

func (t *frameTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (t *frameTransport) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return t.call(target, rpcAppendEntries, args, nil, resp, rpcTimeout)
}

func (t *frameTransport) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.call(target, rpcRequestVote, args, nil, resp, rpcTimeout)
}

func (t *frameTransport) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.call(target, rpcRequestPreVote, args, nil, resp, rpcTimeout)
}

// InstallSnapshot sends the snapshot in the same frame as the request:
// the ring's snapshots are small.
func (t *frameTransport) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest,
	resp *raft.InstallSnapshotResponse, data io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(data, args.Size))
	if err != nil {
		return err
	}
	return t.call(target, rpcInstallSnapshot, args, b, resp, snapshotTimeout)
}

func (t *frameTransport) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.call(target, rpcTimeoutNow, args, nil, resp, rpcTimeout)
}

func (t *frameTransport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte {
	return []byte(addr)
}

func (t *frameTransport) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }

func (t *frameTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.mu.Lock()
	t.heartbeat = cb
	t.mu.Unlock()
}

func (t *frameTransport) Close() error {
	t.closeOnce.Do(func() { close(t.closed) })
	return nil
}

var errTransportClosed = fmt.Errorf("consensus transport closed: %w", errcode.Network)

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	err := codec.NewEncoder(&b, &codec.MsgpackHandle{}).Encode(v)
	return b.Bytes(), err
}

// call sends one RPC and decodes its answer into resp.
func (t *frameTransport) call(target raft.ServerAddress, kind byte, args any, data []byte, resp any, timeout time.Duration) error {
	select {
	case <-t.closed:
		return errTransportClosed
	default:
	}
	req, err := encode(args)
	if err != nil {
		return err
	}
	body := append([]byte{kind}, req...)
	body = append(body, data...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f, err := t.caller.Call(ctx, string(target), wire.Frame{Kind: uint8(wire.OpRaft), Body: body})
	if err != nil {
		return err
	}
	if f.Status() != wire.StatusOK {
		msg, _ := wire.DecodeMessage(f.Body)
		return fmt.Errorf("%s: %s %s: %w", target, f.Status(), msg, errcode.Network)
	}
	dec := codec.NewDecoderBytes(f.Body, &codec.MsgpackHandle{})
	var rerr string
	if err := dec.Decode(&rerr); err != nil {
		return fmt.Errorf("%s: bad consensus answer: %w: %w", target, err, errcode.Network)
	}
	if rerr != "" {
		return errors.New(rerr)
	}
	if err := dec.Decode(resp); err != nil {
		return fmt.Errorf("%s: bad consensus answer: %w: %w", target, err, errcode.Network)
	}
	return nil
}

// handle answers one OpRaft request: it hands the RPC to Raft and waits
// for Raft's answer (or ctx).
func (t *frameTransport) handle(ctx context.Context, body []byte) ([]byte, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("empty consensus request: %w", errcode.InvalidArg)
	}
	r := bytes.NewReader(body[1:])
	dec := codec.NewDecoder(r, &codec.MsgpackHandle{})
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{RespChan: respCh}
	heartbeat := false
	switch body[0] {
	case rpcAppendEntries:
		var req raft.AppendEntriesRequest
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("consensus: %w: %w", err, errcode.InvalidArg)
		}
		rpc.Command = &req
		heartbeat = req.Term != 0 && req.Addr != nil && req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
			len(req.Entries) == 0 && req.LeaderCommitIndex == 0
	case rpcRequestVote:
		var req raft.RequestVoteRequest
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("consensus: %w: %w", err, errcode.InvalidArg)
		}
		rpc.Command = &req
	case rpcRequestPreVote:
		var req raft.RequestPreVoteRequest
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("consensus: %w: %w", err, errcode.InvalidArg)
		}
		rpc.Command = &req
	case rpcInstallSnapshot:
		var req raft.InstallSnapshotRequest
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("consensus: %w: %w", err, errcode.InvalidArg)
		}
		rpc.Command = &req
		rpc.Reader = io.LimitReader(r, req.Size)
	case rpcTimeoutNow:
		var req raft.TimeoutNowRequest
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("consensus: %w: %w", err, errcode.InvalidArg)
		}
		rpc.Command = &req
	default:
		return nil, fmt.Errorf("consensus: unknown request kind %d: %w", body[0], errcode.InvalidArg)
	}
	t.mu.Lock()
	hb := t.heartbeat
	t.mu.Unlock()
	if heartbeat && hb != nil {
		hb(rpc)
	} else {
		select {
		case t.consume <- rpc:
		case <-ctx.Done():
			return nil, fmt.Errorf("consensus: %w: %w", ctx.Err(), errcode.Network)
		case <-t.closed:
			return nil, errTransportClosed
		}
	}
	select {
	case resp := <-respCh:
		msg := ""
		if resp.Error != nil {
			msg = resp.Error.Error()
		}
		a, err := encode(msg)
		if err != nil {
			return nil, err
		}
		b, err := encode(resp.Response)
		if err != nil {
			return nil, err
		}
		return append(a, b...), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("consensus: %w: %w", ctx.Err(), errcode.Network)
	case <-t.closed:
		return nil, errTransportClosed
	}
}
