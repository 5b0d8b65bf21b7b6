package server

import (
	"context"
	"errors"

	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/datagram"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/resp"
	"github.com/dkvs/dkvs/dkvs/scan"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// respBackend runs the Redis protocol's commands on the ring through the
// server's coordinator, with the server's default replication.
type respBackend struct{ s *Server }

var _ resp.Batcher = respBackend{}

// RESPBackend returns the backend the server's Redis-protocol port runs
// its commands through.
func (s *Server) RESPBackend() resp.Backend { return respBackend{s} }

func (b respBackend) Get(ctx context.Context, key []byte) ([]byte, error) {
	rec, err := b.s.coord.GetReq(ctx, key, b.s.DefaultRequest())
	if err != nil {
		return nil, err
	}
	return rec.Value, nil
}

func (b respBackend) Put(ctx context.Context, key, value []byte) error {
	_, err := b.s.coord.PutReq(ctx, key, value, b.s.DefaultRequest())
	return err
}

func (b respBackend) Delete(ctx context.Context, key []byte) error {
	_, err := b.s.coord.DeleteReq(ctx, key, b.s.DefaultRequest())
	return err
}

// Batch runs ops through the coordinator's batch: the requests of all of
// them for one replica server travel in one frame.
func (b respBackend) Batch(ctx context.Context, ops []resp.Op) {
	if len(ops) == 1 { // a lone command: its single call, without the batch's bookkeeping
		op := &ops[0]
		switch op.Kind {
		case resp.OpGet:
			op.Value, op.Err = b.Get(ctx, op.Key)
			return
		case resp.OpPut:
			op.Err = b.Put(ctx, op.Key, op.Value)
			return
		case resp.OpDelete:
			op.Err = b.Delete(ctx, op.Key)
			return
		}
	}
	cops := make([]coord.Op, len(ops))
	for i, op := range ops {
		cops[i] = coord.Op{Key: op.Key, Value: op.Value}
		switch op.Kind {
		case resp.OpGet:
			cops[i].Kind = coord.OpGet
		case resp.OpPut:
			cops[i].Kind = coord.OpPut
		case resp.OpDelete:
			cops[i].Kind = coord.OpDelete
		}
	}
	b.s.coord.Batch(ctx, cops, b.s.DefaultRequest())
	for i, op := range cops {
		ops[i].Err = op.Err
		if ops[i].Kind == resp.OpGet {
			ops[i].Value = op.Record.Value
		}
	}
}

// errStop ends a merged scan early when the RESP command has enough.
var errStop = errors.New("scan stopped")

// Scan merges the scans of every server of the ring (this one read in
// process). Servers that do not answer are tolerated as long as fewer than
// N are missing: every key written with the server's N is then still seen
// on one of its replicas.
func (b respBackend) Scan(ctx context.Context, start []byte, fn func(key, value []byte) bool) error {
	return b.s.ScanRing(ctx, start, fn)
}

// ScanRing calls fn with the live pairs of the whole ring in key order
// from start (nil: the first key), the newest version of each, until fn
// returns false. It fails when N or more servers (the server's default N,
// or every server of a smaller ring) do not answer.
func (s *Server) ScanRing(ctx context.Context, start []byte, fn func(key, value []byte) bool) error {
	addrs := s.coord.View().Addrs() // during a move, both rings' servers
	err := scan.Merge(ctx, addrs, start, s.scanPage, func(k, v []byte) error {
		if !fn(k, v) {
			return errStop
		}
		return nil
	})
	if err == nil || errors.Is(err, errStop) {
		return nil
	}
	var inc *scan.Incomplete
	if errors.As(err, &inc) && len(inc.Failed) < min(s.cfg.Coord.N, len(addrs)) {
		s.log.Debug("ring scan without some servers", "err", err)
		return nil
	}
	return err
}

// scanPage reads one page of a server's records, in process for this
// server itself.
func (s *Server) scanPage(ctx context.Context, addr string, start []byte) (wire.ScanResponse, error) {
	return scan.Page(ctx, selfTransport{s}, addr, start, true, 4*s.cfg.Coord.Timeout)
}

// Info describes the server and the ring for INFO and DBSIZE. Keys is
// exact: it counts the live keys of a ring-wide scan.
func (b respBackend) Info(ctx context.Context) (resp.Info, error) {
	s := b.s
	var keys int64
	if err := s.ScanRing(ctx, nil, func(_, _ []byte) bool { keys++; return true }); err != nil {
		return resp.Info{}, err
	}
	// What a RESP read and write run with on this ring, as the
	// coordinator resolves it.
	req := s.DefaultRequest()
	v := s.coord.View()
	n, r, err := req.Resolve(quorum.Read, v.RingSize())
	if err != nil {
		return resp.Info{}, err
	}
	_, w, err := req.Resolve(quorum.Write, v.RingSize())
	if err != nil {
		return resp.Info{}, err
	}
	return resp.Info{
		Version: Version,
		Addr:    s.cfg.Addr,
		Servers: append([]string(nil), v.Addrs()...),
		N:       n, W: w, R: r,
		Keys:    keys,
		Started: s.started,
	}, nil
}

// datagramLocal is the server's own storage as the datagram protocol sees
// it: reads of this server's records, writes to this server alone.
type datagramLocal struct{ s *Server }

var _ datagram.Local = datagramLocal{}

// GetLocal returns this server's record of key; a tombstone is "not
// found".
func (l datagramLocal) GetLocal(ctx context.Context, key []byte) ([]byte, bool, error) {
	if err := l.s.lim.CheckKey(key); err != nil {
		return nil, false, err
	}
	rec, found, err := l.s.db.Get(key)
	if err != nil || !found || !rec.Live() {
		return nil, false, err
	}
	return rec.Value, true, nil
}

// PutLocal stores the pair on this server alone with a fresh version and
// N=0, so that repair never copies it elsewhere.
func (l datagramLocal) PutLocal(ctx context.Context, key, value []byte) error {
	return l.s.StoreLocal(key, value)
}

// ScanLocal lists this server's live pairs in key order.
func (l datagramLocal) ScanLocal(ctx context.Context, fn func(key, value []byte) bool) error {
	err := l.s.db.Scan(nil, storage.ScanOptions{}, func(k []byte, rec kv.Record) bool {
		return ctx.Err() == nil && fn(k, rec.Value)
	})
	if err == nil {
		err = ctx.Err()
	}
	return err
}
