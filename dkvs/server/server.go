// Package server is a dkvs replica: it stores records in its storage
// engine and answers the native protocol on TCP.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Config describes one server.
type Config struct {
	// Addr is the IP:PORT served.
	Addr string
	// Servers is the ring from servers.txt. The server need not be in it,
	// but then it only stores what it is sent.
	Servers []config.Server
	// Storage configures the engine.
	Storage storage.Options
	// MaxKeySize and MaxValueSize bound what is stored (defaults 64 KiB
	// and 16 MiB); larger is refused with StatusTooLarge.
	MaxKeySize, MaxValueSize int
	// FrameTimeout bounds the arrival of one frame (transport default).
	FrameTimeout time.Duration
	// Clock stamps versions made here; nil makes one.
	Clock *kv.Clock
	// Logger receives the server's events; nil discards.
	Logger *slog.Logger
}

// Server is a running replica.
type Server struct {
	cfg     Config
	log     *slog.Logger
	db      *storage.DB
	clock   *kv.Clock
	ring    *ring.Ring
	ts      *transport.Server
	started time.Time
}

// New opens the server's storage. Call Serve to answer requests and Close
// to release the storage.
func New(cfg Config) (*Server, error) {
	if cfg.MaxKeySize <= 0 {
		cfg.MaxKeySize = coord.DefaultMaxKeySize
	}
	if cfg.MaxValueSize <= 0 {
		cfg.MaxValueSize = coord.DefaultMaxValueSize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Storage.Logger == nil {
		cfg.Storage.Logger = log
	}
	db, err := storage.Open(cfg.Storage)
	if err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = kv.NewClock(coord.RandomWriterID(), nil)
	}
	s := &Server{cfg: cfg, log: log, db: db, clock: clock, ring: ring.New(cfg.Servers), started: time.Now()}
	s.ts = transport.NewServer(s, transport.ServerOptions{
		MaxFrame:     cfg.MaxKeySize + cfg.MaxValueSize + 4096,
		FrameTimeout: cfg.FrameTimeout,
		Logger:       log,
	})
	return s, nil
}

// DB returns the server's storage engine.
func (s *Server) DB() *storage.DB { return s.db }

// StoreLocal stores value under key on this server alone, with a fresh
// version (the pairs given on dkvs-server's command line).
func (s *Server) StoreLocal(key, value []byte) error {
	if err := s.checkSizes(key, value); err != nil {
		return err
	}
	_, err := s.db.Apply(key, kv.Record{Version: s.clock.Now(), Value: value})
	return err
}

func (s *Server) checkSizes(key, value []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("empty key: %w", errcode.InvalidArg)
	}
	if len(key) > s.cfg.MaxKeySize {
		return fmt.Errorf("key of %d bytes is above the limit of %d: %w", len(key), s.cfg.MaxKeySize, errcode.InvalidArg)
	}
	if len(value) > s.cfg.MaxValueSize {
		return fmt.Errorf("value of %d bytes is above the limit of %d: %w", len(value), s.cfg.MaxValueSize, errcode.InvalidArg)
	}
	return nil
}

// Serve answers requests on ln until ctx ends, then stops cleanly: it
// stops reading, lets requests under way finish and closes connections.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.ts.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %v: %w", err, errcode.Network)
	case <-ctx.Done():
	}
	ln.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.ts.Shutdown(sctx)
	<-errc
	return nil
}

// Close releases the storage engine.
func (s *Server) Close() error { return s.db.Close() }

func fail(st wire.Status, format string, args ...any) wire.Frame {
	return wire.Frame{Flags: uint8(st), Body: wire.AppendMessage(nil, fmt.Sprintf(format, args...))}
}

func ok(body []byte) wire.Frame { return wire.Frame{Flags: uint8(wire.StatusOK), Body: body} }

// storageFail answers a storage error.
func storageFail(err error) wire.Frame {
	if errors.Is(err, storage.ErrClosed) {
		return fail(wire.StatusUnavailable, "server stopping")
	}
	return fail(wire.StatusInternal, "%v", err)
}

// Handle answers one native-protocol request. It implements
// transport.Handler.
func (s *Server) Handle(ctx context.Context, f wire.Frame) wire.Frame {
	switch f.Op() {
	case wire.OpPing:
		if len(f.Body) != 0 {
			return fail(wire.StatusBadRequest, "ping with a body")
		}
		return ok(wire.AppendVersion(nil, s.clock.Now()))
	case wire.OpGet:
		return s.handleGet(f)
	case wire.OpPut:
		return s.handlePut(f)
	case wire.OpScan:
		return s.handleScan(f)
	case wire.OpStats:
		return ok(wire.AppendStats(nil, s.Stats()))
	}
	return fail(wire.StatusBadRequest, "unknown operation %d", f.Kind)
}

func (s *Server) handleGet(f wire.Frame) wire.Frame {
	m, err := wire.DecodeGetRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	if len(m.Key) == 0 {
		return fail(wire.StatusBadRequest, "empty key")
	}
	if len(m.Key) > s.cfg.MaxKeySize {
		return fail(wire.StatusTooLarge, "key of %d bytes is above the limit of %d", len(m.Key), s.cfg.MaxKeySize)
	}
	rec, found, err := s.db.Get(m.Key)
	if err != nil {
		return storageFail(err)
	}
	if !found {
		return wire.Frame{Flags: uint8(wire.StatusNotFound)}
	}
	return ok(wire.AppendRecord(make([]byte, 0, wire.RecordSize(rec)), rec))
}

func (s *Server) handlePut(f wire.Frame) wire.Frame {
	m, err := wire.DecodePutRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	if len(m.Key) == 0 {
		return fail(wire.StatusBadRequest, "empty key")
	}
	if m.Record.Version.IsZero() {
		return fail(wire.StatusBadRequest, "zero version")
	}
	if len(m.Key) > s.cfg.MaxKeySize {
		return fail(wire.StatusTooLarge, "key of %d bytes is above the limit of %d", len(m.Key), s.cfg.MaxKeySize)
	}
	if len(m.Record.Value) > s.cfg.MaxValueSize {
		return fail(wire.StatusTooLarge, "value of %d bytes is above the limit of %d", len(m.Record.Value), s.cfg.MaxValueSize)
	}
	s.clock.Observe(m.Record.Version)
	res, err := s.db.Apply(m.Key, m.Record)
	if err != nil {
		return storageFail(err)
	}
	return ok(wire.AppendVersion(nil, res.Current))
}

// Scan page bounds.
const (
	defaultScanLimit = 1000
	maxScanLimit     = 100000
	defaultScanBytes = 1 << 20
	maxScanBytes     = 4 << 20
)

func (s *Server) handleScan(f wire.Frame) wire.Frame {
	m, err := wire.DecodeScanRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	limit, maxBytes := int(m.Limit), int(m.MaxBytes)
	if limit <= 0 {
		limit = defaultScanLimit
	}
	limit = min(limit, maxScanLimit)
	if maxBytes <= 0 {
		maxBytes = defaultScanBytes
	}
	maxBytes = min(maxBytes, maxScanBytes)
	var resp wire.ScanResponse
	size := 0
	err = s.db.Scan(m.Start, storage.ScanOptions{Tombstones: m.Tombstones}, func(key []byte, rec kv.Record) bool {
		if len(resp.Records) >= limit || (len(resp.Records) > 0 && size >= maxBytes) {
			resp.More = true
			return false
		}
		resp.Records = append(resp.Records, wire.KeyRecord{Key: append([]byte(nil), key...), Record: rec})
		size += len(key) + len(rec.Value) + 32
		return true
	})
	if err != nil {
		return storageFail(err)
	}
	return ok(resp.Append(make([]byte, 0, size+16)))
}

// Stats returns the server's counters.
func (s *Server) Stats() wire.Stats {
	st := s.db.Stats()
	engine := "pebble"
	if s.db.InMemory() {
		engine = "memory"
	}
	return wire.Stats{
		Addr:       s.cfg.Addr,
		LiveKeys:   st.LiveKeys,
		Tombstones: st.Tombstones,
		LiveBytes:  st.LiveBytes,
		Engine:     engine,
		Synced:     s.db.Synced() && !s.db.InMemory(),
		UptimeMS:   time.Since(s.started).Milliseconds(),
	}
}
