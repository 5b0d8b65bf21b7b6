package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/netutil"
)

// DialFunc opens a connection to addr ("IP:PORT").
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// ErrHandshake marks a connection that was opened but whose TLS
// handshake failed: a certificate refused by either side, or a server
// that does not speak TLS.
var ErrHandshake = errors.New("tls handshake failed")

// Dialer returns dial followed by a TLS handshake with the configuration
// config gives for the address. The handshake is bounded by ctx, or by
// HandshakeTimeout if ctx has no deadline. An error opening the
// connection is dial's, unchanged (so that a refused connection is still
// one); a failed handshake wraps ErrHandshake and errcode.Network.
func Dialer(dial DialFunc, config func(addr string) *tls.Config) DialFunc {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(nc, config(addr))
		if err := handshake(ctx, tc); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%w with %s: %w: %w", ErrHandshake, addr, err, errcode.Network)
		}
		return tc, nil
	}
}

func handshake(ctx context.Context, tc *tls.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, HandshakeTimeout)
		defer cancel()
	}
	return tc.HandshakeContext(ctx)
}

// ClientConfig returns a client's configuration from files: the CA that
// signs the servers' certificates, and the client's own certificate and
// key if named (both or neither). The servers' certificates are verified
// against the host of the address dialled (an IP SAN); see ForAddr.
func ClientConfig(f Files) (*tls.Config, error) {
	m, err := Load(f)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: m.Pool}
	if m.Cert != nil {
		cfg.Certificates = []tls.Certificate{*m.Cert}
	}
	return cfg, nil
}

// ForAddr returns cfg for a connection to addr: a clone whose ServerName
// is addr's host unless cfg names one, and at least TLS 1.3.
func ForAddr(cfg *tls.Config, addr string) *tls.Config {
	c := cfg.Clone()
	if c.ServerName == "" {
		c.ServerName = ServerName(addr)
	}
	if c.MinVersion < tls.VersionTLS13 {
		c.MinVersion = tls.VersionTLS13
	}
	return c
}

// ListenerOptions configure Listener.
type ListenerOptions struct {
	// Logger gets one line per refused connection, with its address; nil
	// discards.
	Logger *slog.Logger
	// Port names the port in the log ("resp", "metrics").
	Port string
	// PlaintextReply, if set, is written to a client that spoke plaintext
	// to the port before it is closed, so that it learns why (a RESP
	// error, say).
	PlaintextReply []byte
}

// Listener returns a listener whose Accept hands out *tls.Conn that have
// completed their handshake with config: each handshake runs in a
// goroutine of its own, bounded by HandshakeTimeout, so a slow or silent
// client holds up no other. A failed handshake is logged once with the
// client's address and its connection closed.
func Listener(ln net.Listener, config *tls.Config, opts ListenerOptions) net.Listener {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &listener{Listener: ln, cfg: config, opts: opts, log: log, ready: make(chan *tls.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

type listener struct {
	net.Listener
	cfg   *tls.Config
	opts  ListenerOptions
	log   *slog.Logger
	ready chan *tls.Conn
	done  chan struct{}

	mu      sync.Mutex
	err     error // the raw listener's accept error, once it failed
	closed  bool
	closeMu sync.Once
}

func (l *listener) acceptLoop() {
	backoff := netutil.Backoff{Logger: l.log, Op: "tls accept " + l.opts.Port}
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			// Out of file descriptors and the like pass: wait them out,
			// as the servers' own accept loops do.
			if err = backoff.Wait(l.done, err); err == nil {
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.closeDone()
			return
		}
		backoff.Reset()
		go l.handshake(nc)
	}
}

func (l *listener) closeDone() { l.closeMu.Do(func() { close(l.done) }) }

func (l *listener) handshake(nc net.Conn) {
	tc := tls.Server(nc, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if l.opts.PlaintextReply != nil {
			RefusePlaintext(err, l.opts.PlaintextReply)
		}
		l.log.Warn("tls: connection refused", "port", l.opts.Port, "peer", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}

// Accept implements net.Listener.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case tc := <-l.ready:
		return tc, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil && !l.closed {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	err := l.Listener.Close()
	l.closeDone()
	return err
}

// AlertHandshakeFailure is a TLS 1.2-framed fatal handshake_failure
// alert: what a server sends a client that spoke plaintext to its TLS
// port, which a dkvs client recognizes (transport.ErrTLSServer).
var AlertHandshakeFailure = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}

// RefusePlaintext writes reply to the client if err, a server handshake's
// error, says that the client spoke plaintext (its first bytes were no
// TLS record): crypto/tls leaves answering it to the caller. The write is
// bounded by a short deadline: the connection is closed next.
func RefusePlaintext(err error, reply []byte) {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil {
		rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		rh.Conn.Write(reply)
	}
}
