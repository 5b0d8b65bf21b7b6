package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/netutil"
)

// Defaults of Options.
const (
	DefaultCommandTimeout  = 5 * time.Second
	DefaultMaxKeySize      = limits.DefaultMaxKeySize
	DefaultMaxValueSize    = limits.DefaultMaxValueSize
	DefaultMaxArgs         = 1 << 20
	DefaultMaxPipeline     = 128
	DefaultMaxPendingBytes = 64 << 20
	DefaultMaxCursors      = 10000
	DefaultCursorTTL       = 10 * time.Minute
	// MaxInlineSize is the longest inline (telnet-style) command line, as
	// in Redis.
	MaxInlineSize = 64 << 10
)

// Options configure a Server. The zero value is ready to use.
type Options struct {
	// Logger receives connection and error events; nil discards them.
	Logger *slog.Logger
	// CommandTimeout bounds each command's backend calls (default 5s).
	CommandTimeout time.Duration
	// MaxKeySize and MaxValueSize are the largest key and value accepted
	// (defaults 64 KiB and 16 MiB, the dkvs defaults); larger ones are
	// refused with an error and the connection stays usable.
	MaxKeySize, MaxValueSize int
	// MaxRequestSize is the largest command, all arguments included
	// (default: the larger of 64 MiB and MaxKeySize+MaxValueSize+64 KiB).
	// A command beyond it is a protocol error: the server answers it and
	// closes the connection, as Redis does, because it cannot skip the
	// rest of the command safely.
	MaxRequestSize int
	// MaxArgs is the largest number of arguments in one command (default
	// 1048576, as Redis).
	MaxArgs int
	// MaxPipeline is the most commands of one connection in flight at
	// once (default 128); the server stops reading the connection until
	// one is answered.
	MaxPipeline int
	// MaxPendingBytes bounds the bytes of the commands in flight and of
	// their replies not yet written, per connection (default 64 MiB). It
	// is checked before a command is admitted, so it may be exceeded by
	// the replies of commands already running.
	MaxPendingBytes int
	// MaxCursors is the most SCAN cursors remembered (default 10000; the
	// oldest is forgotten first) and CursorTTL how long one is kept
	// (default 10 minutes).
	MaxCursors int
	CursorTTL  time.Duration
	// Access, when set, requires every connection to authenticate (AUTH,
	// HELLO AUTH, or a client certificate naming a user) before any
	// command but AUTH, HELLO and QUIT, and checks each command's keys
	// against the user's rights. Nil: no authentication, as Redis with no
	// password.
	Access Access
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	lim := o.limits()
	o.MaxKeySize, o.MaxValueSize = lim.MaxKeySize, lim.MaxValueSize
	if o.MaxRequestSize <= 0 {
		o.MaxRequestSize = max(64<<20, o.MaxKeySize+o.MaxValueSize+64<<10)
	}
	if o.MaxArgs <= 0 {
		o.MaxArgs = DefaultMaxArgs
	}
	if o.MaxPipeline <= 0 {
		o.MaxPipeline = DefaultMaxPipeline
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.MaxCursors <= 0 {
		o.MaxCursors = DefaultMaxCursors
	}
	if o.CursorTTL <= 0 {
		o.CursorTTL = DefaultCursorTTL
	}
	return o
}

// limits returns the key and value limits of o, defaults filled in.
func (o Options) limits() limits.Limits {
	return limits.Limits{MaxKeySize: o.MaxKeySize, MaxValueSize: o.MaxValueSize}.OrDefault()
}

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("resp: server closed")

// Server is a RESP server over a Backend. Create it with New, run it with
// Serve and stop it with Shutdown or Close.
type Server struct {
	backend Backend
	opts    Options
	log     *slog.Logger
	started time.Time
	cursors *cursorTable
	// commands is read-only once New returns.
	commands map[string]*command

	// ctx is cancelled by Close: every command's context derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*conn]struct{}
	closing bool
	nextID  int64
	wg      sync.WaitGroup // connection goroutines
	serving chan struct{}  // closed when Serve has a listener
}

// New returns a server that runs commands through b.
func New(b Backend, opts Options) *Server {
	o := opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		backend: b,
		opts:    o,
		log:     o.Logger,
		started: time.Now(),
		cursors: newCursorTable(o.MaxCursors, o.CursorTTL, time.Now),
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*conn]struct{}),
		serving: make(chan struct{}),
	}
	s.commands = s.newCommandTable()
	return s
}

// Serve accepts connections on ln until Close or Shutdown, and then
// returns ErrServerClosed; it returns early only on an accept error that
// will not pass (temporary ones, such as running out of file descriptors,
// are waited out as netutil.Backoff says). It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.ln != nil {
		s.mu.Unlock()
		return errors.New("resp: Serve called twice")
	}
	s.ln = ln
	close(s.serving)
	s.mu.Unlock()
	defer ln.Close()

	s.log.Info("resp: serving", "addr", ln.Addr().String())
	backoff := netutil.Backoff{Logger: s.log, Op: "resp accept"}
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			if err := backoff.Wait(s.ctx.Done(), err); err != nil {
				// Said here too, as a server may run Serve in a goroutine
				// that no one waits on.
				s.log.Error("resp: accept failed; no longer serving", "err", err)
				return fmt.Errorf("resp: accept: %w", err)
			}
			continue
		}
		backoff.Reset()
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.nextID++
		c := newConn(s, nc, s.nextID)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// ListenAndServe listens on the TCP address addr (e.g. "127.0.0.1:6379",
// or ":0" for any free port; Addr tells which) and serves it like Serve.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("resp: listen on %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Addr returns the address Serve listens on, waiting for Serve to start
// or ctx to end.
func (s *Server) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-s.serving:
	case <-ctx.Done():
		return nil, fmt.Errorf("resp: waiting for Serve: %w", ctx.Err())
	}
	return s.ln.Addr(), nil
}

// Close stops accepting, cancels the commands under way and closes every
// connection at once. It waits for the connections' goroutines, which
// end as soon as the backend returns from the cancelled calls.
func (s *Server) Close() error {
	var err error
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		err = s.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	s.cancel()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Shutdown stops accepting and stops reading from every connection, lets
// the commands already read finish and their replies be written, then
// closes the connections. If ctx ends first it falls back to Close and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// listenAddr is the listener's address, or "" before Serve.
func (s *Server) listenAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// connCount is the number of open connections, for INFO.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
