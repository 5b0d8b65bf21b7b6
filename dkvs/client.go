// Package dkvs is the Go client of dkvs, a Dynamo-style replicated
// key-value store.
//
// A Client reads servers.txt, places each key on the ring and runs every
// operation against the key's N home replicas in parallel: Put returns once
// W replicas acknowledged a durable write, Get once R replicas answered,
// with the newest version among them. A Client is safe for concurrent use
// and keeps pipelined connections to the servers; close it when done.
//
//	c, err := dkvs.Open("servers.txt", nil)
//	...
//	defer c.Close()
//	err = c.Put(ctx, []byte("a"), []byte("b"), 3, 2)
//	v, err := c.Get(ctx, []byte("a"), 3, 2)
//
// Errors carry the DKVS error codes (errcode.Code): match them with
// errors.Is(err, dkvs.ErrNotFound) and friends.
package dkvs

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/health"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/netx"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/scan"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Errors returned by the client, one per DKVS error code. Match with
// errors.Is; errcode.Of(err) gives the code and its exit status.
var (
	ErrNotFound        error = errcode.NotFound
	ErrNetwork         error = errcode.Network
	ErrInvalidArgument error = errcode.InvalidArg
	ErrInvalidConfig   error = errcode.InvalidConfig
	ErrAddress         error = errcode.Address
	ErrIO              error = errcode.IO
)

// ErrUnknownOutcome matches a write that failed after some replica may
// have applied it: it may yet become visible (or not). A clean failure
// (ErrNetwork without ErrUnknownOutcome) had no effect.
var ErrUnknownOutcome = coord.ErrUnknownOutcome

// Level is a named consistency level (how many of N replicas a read waits
// for or a write needs): One, Quorum (N/2+1) or All.
type Level = coord.Level

// Consistency levels.
const (
	LevelDefault = coord.LevelDefault
	One          = coord.LevelOne
	Quorum       = coord.LevelQuorum
	All          = coord.LevelAll
)

// ParseLevel parses ONE, QUORUM or ALL.
func ParseLevel(s string) (Level, error) { return coord.ParseLevel(s) }

// Request says how one operation is replicated: N (0 means 3), R and W
// (0: from Level, or min(2, N)), a Level, and Linearizable for strict
// majority quorums with linearizable reads and writes.
type Request = coord.Req

// Defaults of the DKVS command line: N=3, R=2, W=2.
const (
	DefaultN = quorum.DefaultN
	DefaultR = quorum.DefaultR
	DefaultW = quorum.DefaultW
)

// Options configure a Client. The zero value is ready to use.
type Options struct {
	// Timeout is the deadline of one request to one replica; zero means
	// coord.DefaultTimeout.
	Timeout time.Duration
	// PoolSize is the number of connections kept per server (default 2).
	PoolSize int
	// Network is what the client dials the servers over; nil is TCP.
	Network netx.Network
	// Clock stamps the versions of the client's writes; nil makes one
	// with a random writer id on the system clock.
	Clock *kv.Clock
	// RefusedRetry bounds how long a refused connection to a server is
	// tried again, for a server that is starting: zero means until the
	// request's deadline, negative never.
	RefusedRetry time.Duration
	// MaxKeySize and MaxValueSize are checked before sending; zero means
	// 64 KiB and 16 MiB, the servers' defaults (package limits).
	MaxKeySize, MaxValueSize int
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
	// DisableSloppyQuorum keeps writes on the home replicas: a write
	// whose home replicas are down fails instead of leaving hints on
	// fallback servers.
	DisableSloppyQuorum bool
	// DisableReadRepair stops gets from updating replicas that answered
	// with an older version.
	DisableReadRepair bool
	// Heartbeat is the interval between pings of servers believed down
	// (default 100ms).
	Heartbeat time.Duration
	// Linearizable makes every operation of the client linearizable
	// (strict majority quorums on home replicas). A Request can also ask
	// for it on its own.
	Linearizable bool
	// Via ("IP:PORT"), when set, routes every Put, Get and Delete through
	// that server, which coordinates the quorum operation on the ring for
	// the client (one more hop, no knowledge of the ring needed: New then
	// accepts an empty list of servers). A Request with N, R, W and Level
	// all zero then takes the server's defaults (dkvs-server --resp-n,
	// --resp-r, --resp-w). Timeout is still the per-request deadline
	// without a context deadline, times ten for the whole operation. Dump,
	// ScanServer and Stats still talk to the servers directly.
	Via string
	// User and Token authenticate every connection of the client to a
	// server that has users (dkvs-server --users): once per connection,
	// before its first request. Empty User: no authentication. A token
	// the server refuses fails operations with an error wrapping
	// auth.ErrDenied and errcode.InvalidConfig, as does a request the
	// user has no right to.
	User, Token string
	// TLS, if set, makes every connection TLS 1.3 with this configuration
	// (its RootCAs verify the servers, whose certificates name their IP;
	// its Certificates, if any, are the client's, which a server may
	// require). TLSConfig makes one from PEM files. Nil is plaintext.
	TLS *tls.Config
}

// TLSConfig returns a configuration for Options.TLS from PEM files: the
// CA that signs the ring's certificates and, optionally (both or
// neither), the client's certificate and key. A file that cannot be read
// is an ErrIO, one that holds no valid certificate or key an
// ErrInvalidConfig.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	return tlsconf.ClientConfig(tlsconf.Files{CA: caFile, Cert: certFile, Key: keyFile})
}

// Client is a connection to a dkvs ring.
type Client struct {
	tr      *transport.Client
	coord   *coord.Coordinator
	health  *health.Detector
	opts    Options
	stop    context.CancelFunc
	stopped chan struct{}
}

// Open reads a servers file ("" means servers.txt in the current
// directory) and returns a client for that ring. No connection is made
// until the first operation.
func Open(serversFile string, opts *Options) (*Client, error) {
	servers, err := config.Load(serversFile)
	if err != nil {
		return nil, err
	}
	return New(servers, opts)
}

// New returns a client for the given servers.
func New(servers []config.Server, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Via != "" {
		if err := checkVia(o.Via); err != nil {
			return nil, err
		}
	} else if len(servers) == 0 {
		return nil, fmt.Errorf("no servers: %w", errcode.InvalidConfig)
	}
	var dial func(context.Context, string) (net.Conn, error)
	if o.Network != nil {
		dial = o.Network.Dial
	}
	if o.TLS != nil {
		plain := dial
		if plain == nil {
			plain = netx.TCP{}.Dial
		}
		cfg := o.TLS
		dial = tlsconf.Dialer(plain, func(addr string) *tls.Config { return tlsconf.ForAddr(cfg, addr) })
	}
	if o.User != "" {
		if dial == nil {
			dial = netx.TCP{}.Dial
		}
		dial = auth.Dialer(dial, o.User, o.Token)
	}
	tr := transport.NewClient(transport.ClientOptions{PoolSize: o.PoolSize, RefusedRetry: o.RefusedRetry, Dial: dial})
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Addr())
	}
	var hd *health.Detector
	ping := func(ctx context.Context, addr string) error {
		f, err := tr.Call(ctx, addr, wire.Frame{Kind: uint8(wire.OpPing)})
		if auth.IsRefusal(err) {
			// The server refused the credentials when the connection
			// opened: it answered, so it is up; operations report the
			// refusal.
			return nil
		}
		if err == nil && f.Status() != wire.StatusOK {
			err = fmt.Errorf("ping %s: %s: %w", addr, f.Status(), errcode.Network)
		}
		if err == nil {
			// The answer says whether the server's storage takes writes.
			if _, st, derr := wire.DecodePing(f.Body); derr == nil {
				hd.SetStorage(addr, st)
			}
		}
		return err
	}
	hd = health.New(addrs, ping, health.Options{Interval: o.Heartbeat, Timeout: o.Timeout, Logger: o.Logger})
	co := coord.New(topology.StaticView(servers), tr, coord.Options{
		Timeout:             o.Timeout,
		MaxKeySize:          o.MaxKeySize,
		MaxValueSize:        o.MaxValueSize,
		Clock:               o.Clock,
		Logger:              o.Logger,
		Health:              hd,
		DisableSloppyQuorum: o.DisableSloppyQuorum,
		DisableReadRepair:   o.DisableReadRepair,
		// A newer ring learned from a server brings new servers to watch.
		OnView: func(v *topology.View) { hd.SetPeers(v.Addrs()) },
	})
	ctx, stop := context.WithCancel(context.Background())
	c := &Client{tr: tr, coord: co, health: hd, opts: o, stop: stop, stopped: make(chan struct{})}
	go func() { defer close(c.stopped); hd.Run(ctx) }()
	return c, nil
}

// Health returns the client's view of which servers are up.
func (c *Client) Health() *health.Detector { return c.health }

// Servers returns the servers of the ring the client knows, in the order
// of its servers.txt (servers.txt itself until a server tells of a newer
// ring).
func (c *Client) Servers() []config.Server { return c.coord.View().State().Members }

// Ring returns the ring reads go to.
func (c *Client) Ring() *ring.Ring { return c.coord.Ring() }

// View returns the placement the client uses now: the ring's epoch and,
// during a move, both rings.
func (c *Client) View() *topology.View { return c.coord.View() }

// Coordinator returns the client's coordinator, for tools that need
// versions or other lower-level results.
func (c *Client) Coordinator() *coord.Coordinator { return c.coord }

// Put stores value under key on the key's n home servers and returns once
// w of them have acknowledged a durable write. The remaining replicas are
// still written after Put returns (Close waits for them). The value is not
// modified and may be reused once Put returns. A failure that matches
// ErrUnknownOutcome may still have been applied.
func (c *Client) Put(ctx context.Context, key, value []byte, n, w int) error {
	req, err := quorum.Explicit(quorum.Write, n, w)
	if err != nil {
		return err
	}
	return c.PutWith(ctx, key, value, req)
}

// Get returns the newest value of key among the first r of its n home
// servers to answer. ErrNotFound means the newest answer was "absent" or
// a deletion.
func (c *Client) Get(ctx context.Context, key []byte, n, r int) ([]byte, error) {
	req, err := quorum.Explicit(quorum.Read, n, r)
	if err != nil {
		return nil, err
	}
	return c.GetWith(ctx, key, req)
}

// Delete removes key: it writes a deletion marker (tombstone) on the key's
// n home servers, acknowledged by w of them.
func (c *Client) Delete(ctx context.Context, key []byte, n, w int) error {
	req, err := quorum.Explicit(quorum.Write, n, w)
	if err != nil {
		return err
	}
	return c.DeleteWith(ctx, key, req)
}

func (c *Client) req(r Request) Request {
	r.Linearizable = r.Linearizable || c.opts.Linearizable
	return r
}

// PutWith stores value under key as r says.
func (c *Client) PutWith(ctx context.Context, key, value []byte, r Request) error {
	if c.opts.Via != "" {
		return c.viaPut(ctx, key, value, r)
	}
	_, err := c.coord.PutReq(ctx, key, value, c.req(r))
	return err
}

// GetWith reads key as r says.
func (c *Client) GetWith(ctx context.Context, key []byte, r Request) ([]byte, error) {
	if c.opts.Via != "" {
		return c.viaGet(ctx, key, r)
	}
	rec, err := c.coord.GetReq(ctx, key, c.req(r))
	if err != nil {
		return nil, err
	}
	return rec.Value, nil
}

// DeleteWith deletes key as r says.
func (c *Client) DeleteWith(ctx context.Context, key []byte, r Request) error {
	if c.opts.Via != "" {
		return c.viaDelete(ctx, key, r)
	}
	_, err := c.coord.DeleteReq(ctx, key, c.req(r))
	return err
}

// Stats returns the counters of the server at addr.
func (c *Client) Stats(ctx context.Context, addr string) (wire.Stats, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	f, err := c.tr.Call(ctx, addr, wire.Frame{Kind: uint8(wire.OpStats)})
	if err != nil {
		return wire.Stats{}, err
	}
	if auth.Refused(f.Status()) {
		msg, _ := wire.DecodeMessage(f.Body)
		return wire.Stats{}, fmt.Errorf("stats %s: %w", addr, auth.StatusError(f.Status(), msg))
	}
	if f.Status() != wire.StatusOK {
		return wire.Stats{}, fmt.Errorf("stats %s: %s: %w", addr, f.Status(), errcode.Network)
	}
	return wire.DecodeStats(f.Body)
}

func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	t := c.opts.Timeout
	if t <= 0 {
		t = coord.DefaultTimeout
	}
	// Scans and stats move more than one record: give them more room.
	return context.WithTimeout(ctx, 10*t)
}

// ScanServer streams what the server at addr stores, in key order, one
// page at a time: fn is called for every record (tombstones only if
// tombstones is set) until it returns an error, which ScanServer returns.
func (c *Client) ScanServer(ctx context.Context, addr string, tombstones bool, fn func(key []byte, rec kv.Record) error) error {
	var start []byte
	for {
		page, err := c.scanPage(ctx, addr, start, tombstones)
		if err != nil {
			return err
		}
		for _, kr := range page.Records {
			if err := fn(kr.Key, kr.Record); err != nil {
				return err
			}
		}
		if !page.More || len(page.Records) == 0 {
			return nil
		}
		start = scan.After(page.Records[len(page.Records)-1].Key)
	}
}

func (c *Client) scanPage(ctx context.Context, addr string, start []byte, tombstones bool) (wire.ScanResponse, error) {
	t := c.opts.Timeout
	if t <= 0 {
		t = coord.DefaultTimeout
	}
	// A page moves more than one record: give it more room.
	return scan.Page(ctx, c.tr, addr, start, tombstones, 10*t)
}

// Close waits for replica writes still under way (each bounded by its
// deadline, read repairs included) and closes the connections. Calling it
// again does nothing.
func (c *Client) Close() error {
	c.coord.Wait(context.Background())
	c.stop()
	<-c.stopped
	return c.tr.Close()
}
