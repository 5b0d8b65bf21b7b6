package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs/netutil"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Handler answers requests. Handle is called concurrently, once per
// request; the returned frame's Flags (status) and Body are sent back with
// the request's op and id. A response with wire.StatusBadRequest closes
// the connection once it is sent.
type Handler interface {
	Handle(ctx context.Context, req wire.Frame) wire.Frame
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req wire.Frame) wire.Frame

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req wire.Frame) wire.Frame { return f(ctx, req) }

// Observer learns of a server's traffic, for metrics. Its methods are
// called concurrently and must not block.
type Observer interface {
	// Request reports one request answered: its op, the status sent, the
	// frame sizes in and out, and the time from reading it to queueing the
	// answer.
	Request(op wire.Op, status wire.Status, bytesIn, bytesOut int, d time.Duration)
	// Conn reports a connection accepted (open) or closed.
	Conn(open bool)
	// Refused reports a frame refused (malformed, truncated, oversized),
	// after which its connection is closed.
	Refused()
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Observer, if set, is told of every request, connection and refused
	// frame.
	Observer Observer
	// MaxFrame is the largest request frame accepted (default
	// wire.DefaultMaxFrame). A larger one is answered with StatusTooLarge
	// and its connection closed.
	MaxFrame int
	// WriteTimeout bounds one flush to a client (default 5s).
	WriteTimeout time.Duration
	// FrameTimeout bounds the time between the first byte of a frame and
	// its last (default 10s): a peer that sends part of a frame and stops
	// has its connection closed. Idle connections are kept.
	FrameTimeout time.Duration
	// Inline, if set, says which requests are quick enough to be handled
	// in the connection's read loop rather than in a goroutine of their own
	// (saving the goroutine; later requests of that connection wait).
	Inline func(req wire.Frame) bool
	// Logger receives one line per refused frame; nil discards.
	Logger *slog.Logger
	// ConnContext, if set, is called once per accepted connection, in the
	// connection's own goroutine before its first frame is read (so a TLS
	// handshake done there holds up no other connection). It returns the
	// context every request of the connection is handled with, typically
	// carrying the connection's session.Session. An error closes the
	// connection; it is logged once with the peer's address.
	ConnContext func(ctx context.Context, nc net.Conn) (context.Context, error)
}

// Server accepts connections and serves frames with a Handler.
type Server struct {
	h    Handler
	opts ServerOptions
	log  *slog.Logger

	mu        sync.Mutex
	conns     map[*serverConn]struct{}
	closing   bool
	inflight  sync.WaitGroup // requests being handled
	inflightN atomic.Int64
	connWG    sync.WaitGroup // connection goroutines
	ctx       context.Context
	cancel    context.CancelFunc
}

// NewServer returns a server for h.
func NewServer(h Handler, opts ServerOptions) *Server {
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = wire.DefaultMaxFrame
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Second
	}
	if opts.FrameTimeout <= 0 {
		opts.FrameTimeout = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{h: h, opts: opts, log: log, conns: make(map[*serverConn]struct{}), ctx: ctx, cancel: cancel}
}

// Serve accepts connections on ln until Shutdown. It returns nil after
// Shutdown, or an accept error that will not pass; temporary ones (out of
// file descriptors, say) are waited out as netutil.Backoff says.
func (s *Server) Serve(ln net.Listener) error {
	backoff := netutil.Backoff{Logger: s.log, Op: "transport accept"}
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil
			}
			if err := backoff.Wait(s.ctx.Done(), err); err != nil {
				return err
			}
			continue
		}
		backoff.Reset()
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		sc := &serverConn{s: s, ctx: s.ctx, nc: nc, done: make(chan struct{})}
		if o := s.opts.Observer; o != nil {
			o.Conn(true)
		}
		sc.w = newFrameWriter(nc, s.opts.WriteTimeout, sc.done, func(error) { sc.close() })
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[sc] = struct{}{}
		s.connWG.Add(2)
		s.mu.Unlock()
		go func() { defer s.connWG.Done(); sc.w.loop() }()
		go func() { defer s.connWG.Done(); sc.readLoop() }()
	}
}

// Shutdown stops reading new requests, waits for the requests under way
// (until ctx ends) and closes every connection. The listener is the
// caller's to close first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, sc := range conns {
		if cr, ok := closeReader(sc.nc); ok {
			cr.CloseRead()
		} else {
			sc.close()
		}
	}
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.cancel()
	for _, sc := range conns {
		sc.flushAndClose()
	}
	s.connWG.Wait()
	return err
}

// closeReader returns what shuts nc's reading side: nc itself, or the
// TCP connection under a TLS one (whose reader then sees the end of the
// stream, while its answers can still be written).
func closeReader(nc net.Conn) (interface{ CloseRead() error }, bool) {
	if cr, ok := nc.(interface{ CloseRead() error }); ok {
		return cr, true
	}
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		cr, ok := u.NetConn().(interface{ CloseRead() error })
		return cr, ok
	}
	return nil, false
}

type serverConn struct {
	s    *Server
	ctx  context.Context // requests' context: the server's, or ConnContext's
	nc   net.Conn
	w    *frameWriter
	once sync.Once
	done chan struct{}
}

func (sc *serverConn) close() {
	sc.once.Do(func() {
		if o := sc.s.opts.Observer; o != nil {
			o.Conn(false)
		}
		close(sc.done)
		sc.nc.Close()
		sc.s.mu.Lock()
		delete(sc.s.conns, sc)
		sc.s.mu.Unlock()
	})
}

// flushAndClose gives the writer a moment to send what is queued.
func (sc *serverConn) flushAndClose() {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && !sc.w.flushed() {
		time.Sleep(time.Millisecond)
	}
	sc.close()
}

func (sc *serverConn) readLoop() {
	s := sc.s
	if s.opts.ConnContext != nil {
		ctx, err := s.opts.ConnContext(s.ctx, sc.nc)
		if err != nil {
			s.log.Warn("connection refused", "peer", sc.nc.RemoteAddr().String(), "err", err)
			if o := s.opts.Observer; o != nil {
				o.Refused()
			}
			sc.close()
			return
		}
		sc.ctx = ctx
	}
	r := bufio.NewReaderSize(sc.nc, 64<<10)
	deadline := false
	for {
		if r.Buffered() == 0 {
			// Between frames a connection may stay idle for ever.
			if deadline {
				sc.nc.SetReadDeadline(time.Time{})
				deadline = false
			}
			r.Peek(1)
		}
		// A frame has begun: the rest of it must follow promptly.
		sc.nc.SetReadDeadline(time.Now().Add(s.opts.FrameTimeout))
		deadline = true
		f, err := wire.ReadFrame(r, s.opts.MaxFrame)
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) && f.Kind&wire.RespBit == 0 {
				s.refused(sc, err)
				sc.w.send(outFrame{kind: f.Kind | wire.RespBit, flags: uint8(wire.StatusTooLarge), id: f.ID,
					body: wire.AppendMessage(nil, err.Error())})
				sc.flushAndClose()
				return
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.refused(sc, err)
			}
			// A clean EOF after CloseRead during Shutdown: responses still
			// being computed are flushed by Shutdown.
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if !closing {
				sc.close()
			}
			return
		}
		if f.IsResponse() {
			s.refused(sc, errors.New("response frame sent to a server"))
			sc.close()
			return
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return
		}
		s.inflight.Add(1)
		s.inflightN.Add(1)
		s.mu.Unlock()
		if s.opts.Inline != nil && s.opts.Inline(f) {
			sc.handle(f)
		} else {
			go sc.handle(f)
		}
	}
}

// refused logs a refused frame with the peer's address.
func (s *Server) refused(sc *serverConn, err error) {
	s.log.Warn("refused frame", "peer", sc.nc.RemoteAddr().String(), "err", err)
	if o := s.opts.Observer; o != nil {
		o.Refused()
	}
}

func (sc *serverConn) handle(f wire.Frame) {
	s := sc.s
	start := time.Now()
	defer func() {
		s.inflightN.Add(-1)
		s.inflight.Done()
	}()
	var resp wire.Frame
	func() {
		defer func() {
			// A bug in one request must not take the server down with it.
			if p := recover(); p != nil {
				s.log.Error("request handler panicked", "op", f.Op().String(), "panic", p)
				resp = wire.Frame{Flags: uint8(wire.StatusInternal), Body: wire.AppendMessage(nil, "internal error")}
			}
		}()
		resp = s.h.Handle(sc.ctx, f)
	}()
	sc.w.send(outFrame{kind: f.Kind | wire.RespBit, flags: resp.Flags, id: f.ID, body: resp.Body})
	if o := s.opts.Observer; o != nil {
		o.Request(f.Op(), wire.Status(resp.Flags), wire.HeaderSize+len(f.Body), wire.HeaderSize+len(resp.Body), time.Since(start))
	}
	if wire.Status(resp.Flags) == wire.StatusBadRequest {
		// A malformed request means the peer does not speak the protocol
		// (or has a bug): answer it, then hang up.
		s.refused(sc, fmt.Errorf("bad %s request", f.Op()))
		s.connWG.Add(1) // a clean stop waits for it, as for the connection's loops
		go func() { defer s.connWG.Done(); sc.flushAndClose() }()
	}
}

// inflightCount reports the open connections' requests being handled; for
// tests.
func (s *Server) inflightCount() int { return int(s.inflightN.Load()) }
