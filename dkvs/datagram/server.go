package datagram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/netutil"
)

// Local is the storage of the server that receives the datagrams. The
// server calls it from several goroutines at once.
type Local interface {
	// GetLocal returns the value this server stores for key; found is
	// false for an absent key or a deletion (tombstone).
	GetLocal(ctx context.Context, key []byte) (value []byte, found bool, err error)
	// PutLocal stores value under key on this server alone, with a fresh
	// version.
	PutLocal(ctx context.Context, key, value []byte) error
	// ScanLocal calls fn for this server's live pairs in key order until
	// fn returns false. key and value are only valid during the call.
	ScanLocal(ctx context.Context, fn func(key, value []byte) bool) error
}

// Defaults of Options.
const (
	DefaultTimeout       = 5 * time.Second
	DefaultMaxConcurrent = 64
	DefaultMaxDumpBytes  = 64 << 20
)

// Options configure a Server. The zero value is ready to use.
type Options struct {
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Timeout bounds the storage calls of one request (default 5s).
	Timeout time.Duration
	// MaxConcurrent is the most requests handled at once (default 64);
	// beyond it the server stops reading and the kernel drops datagrams,
	// which UDP clients must expect anyway.
	MaxConcurrent int
	// MaxDumpBytes bounds the pairs one dump collects (default 64 MiB):
	// a dump of a larger store lists the first pairs that fit, and its
	// count says how many it lists.
	MaxDumpBytes int
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("datagram: server closed")

// Server answers the datagram protocol from a Local store.
type Server struct {
	local Local
	opts  Options
	log   *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	sem    chan struct{}  // one slot per request being handled
	dumpMu sync.Mutex     // one dump at a time: each holds a whole dump in memory
	wg     sync.WaitGroup // request goroutines

	mu     sync.Mutex
	pc     net.PacketConn
	closed bool
}

// New returns a server over l.
func New(l Local, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.MaxDumpBytes <= 0 {
		opts.MaxDumpBytes = DefaultMaxDumpBytes
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		local:  l,
		opts:   opts,
		log:    opts.Logger,
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, opts.MaxConcurrent),
	}
}

// Serve answers the datagrams arriving on pc until Close, then returns
// ErrServerClosed; it returns early only on a read error that will not
// pass (temporary ones are waited out as netutil.Backoff says). Close
// closes pc.
func (s *Server) Serve(pc net.PacketConn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pc.Close()
		return ErrServerClosed
	}
	if s.pc != nil {
		s.mu.Unlock()
		return errors.New("datagram: Serve called twice")
	}
	s.pc = pc
	s.mu.Unlock()

	// 64 KiB holds any UDP payload, so no datagram is ever truncated.
	buf := make([]byte, 64<<10)
	backoff := netutil.Backoff{Logger: s.log, Op: "datagram read", Temporary: netutil.TemporaryRead}
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			if err := backoff.Wait(s.ctx.Done(), err); err != nil {
				// Said here too, as a server may run Serve in a goroutine
				// that no one waits on.
				s.log.Error("datagram: read failed; no longer serving", "err", err)
				return fmt.Errorf("datagram: read: %w", err)
			}
			continue
		}
		backoff.Reset()
		d := bytes.Clone(buf[:n])
		select {
		case s.sem <- struct{}{}:
		case <-s.ctx.Done():
			return ErrServerClosed
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.handle(pc, addr, d)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops Serve, closes its PacketConn, cancels the requests under
// way and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	pc := s.pc
	s.mu.Unlock()
	s.cancel()
	var err error
	if pc != nil {
		err = pc.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	s.wg.Wait()
	return err
}

// handle answers one datagram; a panic in the storage is logged and the
// datagram left unanswered, never a crash.
func (s *Server) handle(pc net.PacketConn, addr net.Addr, d []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("datagram: request panicked", "from", addr.String(), "panic", r, "stack", string(debug.Stack()))
		}
	}()
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.Timeout)
	defer cancel()
	req, perr := Parse(d)
	log := s.log.With("from", addr.String(), "kind", req.Kind.String())
	switch req.Kind {
	case KindGet:
		if perr != nil {
			log.Debug("datagram: get not answered", "err", perr)
			return
		}
		v, found, err := s.local.GetLocal(ctx, req.Key)
		switch {
		case err != nil:
			// No reply: "\0" would say the key does not exist.
			log.Warn("datagram: get not answered", "err", err)
			return
		case !found:
			s.reply(pc, addr, replyNotFound, log)
		case len(v) > MaxValueSize:
			log.Warn("datagram: get not answered: value too long for the format", "bytes", len(v))
		default:
			s.reply(pc, addr, v, log)
		}
	case KindPut:
		if perr != nil {
			log.Debug("datagram: put refused", "err", perr)
			s.reply(pc, addr, replyRefused, log)
			return
		}
		if err := s.local.PutLocal(ctx, req.Key, req.Value); err != nil {
			log.Warn("datagram: put refused", "err", err)
			s.reply(pc, addr, replyRefused, log)
			return
		}
		s.reply(pc, addr, replyStored, log)
	case KindDump:
		s.dump(ctx, pc, addr, log)
	}
}

// dump collects the dumpable pairs first and then sends them, so that the
// count in the first datagram is exactly the number of pairs that follow
// even while the store changes. Pairs Dumpable rejects are left out and
// not counted.
func (s *Server) dump(ctx context.Context, pc net.PacketConn, addr net.Addr, log *slog.Logger) {
	s.dumpMu.Lock()
	defer s.dumpMu.Unlock()
	var pairs []Pair
	size, skipped, truncated := 0, 0, false
	err := s.local.ScanLocal(ctx, func(k, v []byte) bool {
		if !Dumpable(k, v) {
			skipped++
			return true
		}
		if size+DumpLineLen(k, v) > s.opts.MaxDumpBytes {
			truncated = true
			return false
		}
		size += DumpLineLen(k, v)
		pairs = append(pairs, Pair{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		return true
	})
	if err != nil {
		// No reply: a partial dump would claim the store holds less.
		log.Warn("datagram: dump not answered", "err", err)
		return
	}
	if skipped > 0 || truncated {
		log.Warn("datagram: dump incomplete", "skipped_too_long", skipped, "truncated", truncated, "pairs", len(pairs))
	}
	for _, d := range EncodeDump(pairs) {
		if !s.reply(pc, addr, d, log) {
			return
		}
	}
}

func (s *Server) reply(pc net.PacketConn, addr net.Addr, d []byte, log *slog.Logger) bool {
	if _, err := pc.WriteTo(d, addr); err != nil {
		log.Debug("datagram: reply", "err", err)
		return false
	}
	return true
}
