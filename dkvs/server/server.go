// Package server is a dkvs replica: it stores records in its storage
// engine and answers the native protocol on TCP.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/antientropy"
	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/datagram"
	"github.com/dkvs/dkvs/dkvs/diskspace"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/handoff"
	"github.com/dkvs/dkvs/dkvs/health"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/membership"
	"github.com/dkvs/dkvs/dkvs/netx"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/resp"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/session"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
	"github.com/dkvs/dkvs/dkvs/topology"
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
	// MinFreeSpace is the free space of the data directory's file system
	// below which the server refuses new values (deletions are taken); the
	// zero value is no minimum. DiskStater reads the free space (nil: the
	// storage's file system, statfs for the operating system's).
	// FaultExitDelay is how long a server whose storage failed keeps
	// answering before it stops (default DefaultFaultExitDelay). See
	// storagefault.go.
	MinFreeSpace   diskspace.Minimum
	DiskStater     diskspace.Stater
	FaultExitDelay time.Duration
	// MaxKeySize and MaxValueSize bound what is stored (defaults 64 KiB
	// and 16 MiB); larger is refused with StatusTooLarge.
	MaxKeySize, MaxValueSize int
	// FrameTimeout bounds the arrival of one frame (transport default).
	FrameTimeout time.Duration
	// Network is what the server dials its peers over; nil is TCP from
	// the server's IP. The endpoints it answers on are given to ServeAll.
	Network netx.Network
	// TLS, if set, secures every stream port ServeAll serves (native and
	// RESP; TLS 1.3) and every connection to a peer (mutual TLS: the
	// peer's certificate must name the address dialled). Nil is
	// plaintext.
	TLS *tlsconf.Store
	// Clock stamps versions made here; nil makes one.
	Clock *kv.Clock
	// Logger receives the server's events; nil discards.
	Logger *slog.Logger
	// Observer is told of every request and connection (metrics); may be
	// nil.
	Observer transport.Observer
	// Traffic, if set, gives the requests of the last minute that Stats
	// reports (package window); may be nil.
	Traffic func() wire.Traffic

	// PeerTimeout is the deadline of a ping to a peer (default 200ms).
	PeerTimeout time.Duration
	// Heartbeat is the interval between pings of peers believed down
	// (default 100ms).
	Heartbeat time.Duration
	// DisableHandoff stops the delivery of hints held for other servers.
	DisableHandoff bool
	// HandoffInterval is how often hints are checked for delivery
	// (default 1s); a peer coming back triggers a delivery at once.
	HandoffInterval time.Duration
	// DisableAntiEntropy stops anti-entropy.
	DisableAntiEntropy bool
	// AEInterval, AEBandwidth and TombstoneGrace configure anti-entropy
	// (see antientropy.Options).
	AEInterval     time.Duration
	AEBandwidth    int64
	TombstoneGrace time.Duration
	// MoveBandwidth bounds the bytes per second this server receives
	// while it streams ranges in a move of the ring (0: no limit).
	MoveBandwidth int64
	// CleanupGrace is how long after a move of the ring a server keeps
	// what it no longer owns (default DefaultCleanupGrace).
	CleanupGrace time.Duration

	// Coord configures the quorum operations this server runs for clients
	// that do not know the ring: native coordinated requests and the
	// commands of the Redis protocol.
	Coord CoordConfig
	// Datagram configures the DKVS datagram protocol (UDP), when Serve is
	// given a PacketConn.
	Datagram datagram.Options
	// RESP configures the Redis protocol, when Serve is given a listener
	// for it. Its limits and command timeout default to the server's.
	RESP resp.Options

	// Users, when set, are the users of the ring (dkvs-server --users):
	// every connection must then be a ring member (by its TLS
	// certificate) or a user (by its client certificate or a token) to be
	// served more than ping and auth, and a user only what its rights
	// allow (package auth). Nil serves everyone.
	Users *auth.Store
}

// CoordConfig configures the operations a server coordinates.
type CoordConfig struct {
	// Timeout is the deadline of one request to one replica (default
	// coord.DefaultTimeout, 500ms).
	Timeout time.Duration
	// MaxTime bounds one coordinated operation as a whole (default 5s): a
	// native request asking for longer is cut to it, and every RESP
	// command gets it.
	MaxTime time.Duration
	// N, R and W are used by RESP commands and by native requests that ask
	// for the server's defaults (defaults 3, 2 and 2). Level, when set,
	// gives R and W from N where R or W is zero; Linearizable makes them
	// linearizable. New checks and completes them with quorum's rules
	// (quorum.Req.Defaults).
	N, R, W      int
	Level        coord.Level
	Linearizable bool
	// DisableSloppyQuorum keeps coordinated writes on home replicas.
	DisableSloppyQuorum bool
	// DisableReadRepair stops coordinated reads from repairing replicas.
	DisableReadRepair bool
}

// Defaults of CoordConfig; the replication's are quorum's.
const (
	DefaultCoordMaxTime = 5 * time.Second
	DefaultCoordN       = quorum.DefaultN
	DefaultCoordR       = quorum.DefaultR
	DefaultCoordW       = quorum.DefaultW
	// MaxReplicas is the largest N, R or W a request may ask for.
	MaxReplicas = quorum.MaxN
)

// Version is the dkvs version the server reports (INFO over the Redis
// protocol); it is DKVS_VERSION of include/dkvs.h.
const Version = "1.3.0"

// Server is a running replica.
type Server struct {
	cfg     Config
	log     *slog.Logger
	db      *storage.DB
	clock   *kv.Clock
	ring    *ring.Ring
	ts      *transport.Server
	lim     limits.Limits
	started time.Time

	peers   *transport.Client // to other servers: pings, hint delivery, anti-entropy
	health  *health.Detector
	handoff *handoff.Handoff
	ae      *antientropy.Engine

	// coordNet carries the requests of the operations this server
	// coordinates to the other servers; coord reaches this server itself
	// through Handle (selfTransport).
	coordNet *transport.Client
	coord    *coord.Coordinator
	// local runs the coordinator's requests to this server itself.
	local *workers

	sw *storageWatch // faults, free space

	// member is the server's part in the consensus on the ring; the
	// coordinator's view is the ring it applied last.
	member       *membership.Node
	mover        *mover
	cleanupGrace time.Duration
	// moves are the last moves of the ring this server saw end.
	moves *moveLog
}

// Server answers the native protocol for the transport.
var _ transport.Handler = (*Server)(nil)

// New opens the server's storage. Call Serve to answer requests and Close
// to release the storage. A Coord replication that quorum's rules refuse
// is an error wrapping errcode.InvalidArg.
func New(cfg Config) (*Server, error) {
	lim := limits.Limits{MaxKeySize: cfg.MaxKeySize, MaxValueSize: cfg.MaxValueSize}.OrDefault()
	cfg.MaxKeySize, cfg.MaxValueSize = lim.MaxKeySize, lim.MaxValueSize
	def, err := quorum.Req{N: cfg.Coord.N, R: cfg.Coord.R, W: cfg.Coord.W, Level: cfg.Coord.Level,
		Linearizable: cfg.Coord.Linearizable}.Defaults()
	if err != nil {
		return nil, fmt.Errorf("coordinated replication: %w", err)
	}
	cfg.Coord.N, cfg.Coord.R, cfg.Coord.W = def.N, def.R, def.W
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Storage.Logger == nil {
		cfg.Storage.Logger = log
	}
	sw := watchStorage(&cfg)
	db, err := storage.Open(cfg.Storage)
	if err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = kv.NewClock(coord.RandomWriterID(), nil)
	}
	// The ring this server last knew (servers.txt the first time): the
	// consensus brings it up to date once it runs.
	initial, err := membership.LastState(db.Consensus(), cfg.Servers)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, db: db, clock: clock, ring: ring.New(initial.Members), lim: lim, started: time.Now(), sw: sw}
	s.startStorageWatch()
	if cfg.Network == nil {
		ip, _, _ := net.SplitHostPort(cfg.Addr)
		cfg.Network = netx.TCP{SourceIP: ip}
		s.cfg.Network = cfg.Network
	}
	// A peer that refuses is down or starting: the background work (pings,
	// hints, anti-entropy) tries again on its own schedule, so its requests
	// fail at once rather than wait out their deadline.
	// Everything a server sends another (pings, hints, anti-entropy,
	// streams of a move, consensus, coordinated replica requests) goes
	// through peerDial.
	peerDial := cfg.Network.Dial
	if cfg.TLS != nil {
		peerDial = tlsconf.Dialer(cfg.Network.Dial, cfg.TLS.PeerConfig)
	}
	s.peers = transport.NewClient(transport.ClientOptions{PoolSize: 1, Dial: peerDial, RefusedRetry: -1})
	s.health = health.New(others(topology.NewView(initial), cfg.Addr), s.ping, health.Options{
		Interval: cfg.Heartbeat,
		Timeout:  cfg.PeerTimeout,
		ProbeUp:  time.Second,
		Logger:   log,
		OnUp: func(addr string) {
			if s.handoff != nil {
				s.handoff.Kick(addr)
			}
		},
	})
	if !cfg.DisableHandoff {
		s.handoff = handoff.New(db, s.peers, handoff.Options{Interval: cfg.HandoffInterval, Health: s.health, Logger: log,
			Member: func(addr string) bool { return s.coord.View().State().IsMember(addr) },
			Moving: func() bool { return s.coord.View().State().Move != nil },
			Homes: func(key []byte, n int) []string {
				v := s.coord.View()
				var out []string
				for _, i := range topology.Union(v.WriteSets(key, n)) {
					out = append(out, v.Addrs()[i])
				}
				return out
			},
		})
	}
	if !cfg.DisableAntiEntropy {
		s.ae = antientropy.New(db, s.peers, antientropy.Options{
			Self:           cfg.Addr,
			Ring:           s.ring,
			Interval:       cfg.AEInterval,
			Bandwidth:      cfg.AEBandwidth,
			TombstoneGrace: cfg.TombstoneGrace,
			Health:         s.health,
			Logger:         log,
		})
	}
	cc := &s.cfg.Coord
	if cc.Timeout <= 0 {
		cc.Timeout = coord.DefaultTimeout
	}
	if cc.MaxTime <= 0 {
		cc.MaxTime = DefaultCoordMaxTime
	}
	s.coordNet = transport.NewClient(transport.ClientOptions{Dial: peerDial})
	s.local = newWorkers(localWorkerIdle)
	s.mover = newMover(s, cfg.MoveBandwidth)
	s.moves = newMoveLog(initial, nil)
	s.cleanupGrace = cfg.CleanupGrace
	if s.cleanupGrace <= 0 {
		s.cleanupGrace = DefaultCleanupGrace
	}
	s.coord = coord.New(topology.NewView(initial), selfTransport{s}, coord.Options{
		Timeout:             cc.Timeout,
		MaxKeySize:          cfg.MaxKeySize,
		MaxValueSize:        cfg.MaxValueSize,
		Clock:               clock,
		Logger:              log,
		Health:              s.health,
		DisableSloppyQuorum: cc.DisableSloppyQuorum,
		DisableReadRepair:   cc.DisableReadRepair,
		OnView:              s.viewChanged,
	})
	s.member, err = membership.New(membership.Config{
		Self:         cfg.Addr,
		Seeds:        cfg.Servers,
		Store:        db.Consensus(),
		Caller:       s.peers,
		Up:           s.health.Up,
		Logger:       log,
		OnChange:     func(st topology.State) { s.coord.SetView(topology.NewView(st)) },
		CleanupGrace: s.cleanupGrace,
	})
	if err != nil {
		s.peers.Close()
		s.coordNet.Close()
		db.Close()
		return nil, err
	}
	s.ts = transport.NewServer(s, transport.ServerOptions{
		MaxFrame:     cfg.MaxKeySize + cfg.MaxValueSize + wire.FrameRoom,
		FrameTimeout: cfg.FrameTimeout,
		Logger:       log,
		Observer:     cfg.Observer,
		// Reads are answered from memory or the block cache in a few
		// microseconds: not worth a goroutine. Writes wait for fsync and
		// must run side by side to share it.
		Inline:      func(f wire.Frame) bool { return f.Op() == wire.OpGet || f.Op() == wire.OpPing },
		ConnContext: s.connContext,
	})
	return s, nil
}

// connContext gives each native connection its session, which says who
// is at the other end to the rules of who may do what. On a TLS port it
// runs the handshake first (here, in the connection's goroutine): a
// verified certificate that names a server makes the session that
// server's for as long as it is a member of the ring (the current one or
// the one a move goes to); one that names a user, that user's.
func (s *Server) connContext(ctx context.Context, nc net.Conn) (context.Context, error) {
	sess := session.New(nc.RemoteAddr().String())
	if tc, ok := nc.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, tlsconf.HandshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			tlsconf.RefusePlaintext(err, tlsconf.AlertHandshakeFailure)
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		if members, user := s.identity(tc.ConnectionState()); len(members) > 0 {
			sess.SetTLSMember(members, s.isMember)
		} else {
			sess.SetTLS("", user)
		}
	}
	return session.NewContext(ctx, sess), nil
}

// identity says who a TLS connection's verified certificate names: the
// servers it names (members of the ring while isMember says so), or else
// a user (tlsconf.Peer's rule, for every port of the server).
func (s *Server) identity(cs tls.ConnectionState) (members []string, user string) {
	return tlsconf.Peer(cs)
}

// isMember reports whether addr is a server of the ring this server
// applied last: a current member, or one a move under way brings in.
// It is asked for each request of a peer's connection, so it copies
// nothing (topology.State.IsMember would).
func (s *Server) isMember(addr string) bool {
	st := s.member.State()
	if config.Find(st.Members, addr) >= 0 {
		return true
	}
	return st.Move != nil && config.Find(st.Move.Target, addr) >= 0
}

// DB returns the server's storage engine.
func (s *Server) DB() *storage.DB { return s.db }

// StoreLocal stores value under key on this server alone, with a fresh
// version (the pairs given on dkvs-server's command line).
func (s *Server) StoreLocal(key, value []byte) error {
	if err := s.lim.CheckRecord(key, value); err != nil {
		return err
	}
	_, err := s.db.Apply(key, kv.Record{Version: s.clock.Now(), Value: value})
	return err
}

// ping asks a peer for its clock: the failure detector's heartbeat.
func (s *Server) ping(ctx context.Context, addr string) error {
	f, err := s.peers.Call(ctx, addr, wire.Frame{Kind: uint8(wire.OpPing)})
	if err != nil {
		return err
	}
	if f.Status() != wire.StatusOK {
		return fmt.Errorf("ping %s: %s: %w", addr, f.Status(), errcode.Network)
	}
	if v, st, err := wire.DecodePing(f.Body); err == nil {
		s.clock.Observe(v)
		s.health.SetStorage(addr, st)
	}
	return nil
}

// Endpoints are what Serve answers on: the native protocol's listener,
// and optionally the datagram protocol's socket and the Redis protocol's
// listener.
type Endpoints struct {
	Native   net.Listener
	Datagram net.PacketConn // nil: no datagram protocol
	RESP     net.Listener   // nil: no Redis protocol
}

// Serve answers the native protocol on ln; see ServeAll.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeAll(ctx, Endpoints{Native: ln})
}

// shutdownTimeout bounds each step of a clean stop.
const shutdownTimeout = 10 * time.Second

// localWorkerIdle is how long a worker of the coordinator's requests to
// this server waits for the next before it ends: long enough to outlast
// the gaps of a steady load, short enough to give back a burst's workers.
const localWorkerIdle = 2 * time.Second

// ServeAll answers requests on every endpoint and runs the background
// work (failure detection, hint delivery, anti-entropy) until ctx ends,
// then stops cleanly: the Redis protocol stops accepting and finishes the
// commands under way, the datagram socket closes, the native protocol
// stops reading and finishes its requests, the background work ends, and
// the replica writes still running for coordinated operations complete
// (each bounded by its deadline) before the connections to peers close.
// It closes the endpoints.
func (s *Server) ServeAll(ctx context.Context, ep Endpoints) error {
	if s.cfg.TLS != nil {
		// The handshake runs in connContext, in each connection's
		// goroutine.
		ep.Native = tls.NewListener(ep.Native, s.cfg.TLS.ServerConfig())
		if ep.RESP != nil {
			ep.RESP = tlsconf.Listener(ep.RESP, s.cfg.TLS.ServerConfig(), tlsconf.ListenerOptions{
				Logger: s.log, Port: "resp",
				PlaintextReply: []byte("-ERR this port speaks TLS only (redis-cli --tls)\r\n"),
			})
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.ts.Serve(ep.Native) }()
	var (
		rs     *resp.Server
		dg     *datagram.Server
		served sync.WaitGroup
	)
	if ep.RESP != nil {
		o := s.cfg.RESP
		if o.Logger == nil {
			o.Logger = s.log
		}
		if o.CommandTimeout <= 0 {
			o.CommandTimeout = s.cfg.Coord.MaxTime
		}
		if o.MaxKeySize <= 0 {
			o.MaxKeySize = s.cfg.MaxKeySize
		}
		if o.MaxValueSize <= 0 {
			o.MaxValueSize = s.cfg.MaxValueSize
		}
		if s.cfg.Users != nil && o.Access == nil {
			o.Access = respAccess{s}
		}
		rs = resp.New(s.RESPBackend(), o)
		served.Add(1)
		go func() { defer served.Done(); rs.Serve(ep.RESP) }()
	}
	if ep.Datagram != nil {
		o := s.cfg.Datagram
		if o.Logger == nil {
			o.Logger = s.log
		}
		dg = datagram.New(datagramLocal{s}, o)
		served.Add(1)
		go func() { defer served.Done(); dg.Serve(ep.Datagram) }()
	}
	bctx, stopBackground := context.WithCancel(ctx)
	var bg sync.WaitGroup
	run := func(f func(context.Context)) {
		bg.Add(1)
		go func() { defer bg.Done(); f(bctx) }()
	}
	run(s.health.Run)
	run(s.superviseStorage)
	run(s.member.Run)
	run(s.mover.run)
	run(s.cleaner)
	run(s.followRing)
	if s.handoff != nil {
		run(s.handoff.Run)
	}
	if s.ae != nil {
		run(s.ae.Run)
	}
	var serveErr error
	nativeServing := true
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w: %w", err, errcode.Network)
		nativeServing = false
	case <-ctx.Done():
	case serveErr = <-s.sw.exit: // the storage failed: stop as on SIGTERM
	}
	// The front ends that coordinate stop first, while the native protocol
	// still answers peers and the coordinator's own replica requests.
	if rs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := rs.Shutdown(sctx); err != nil {
			s.log.Warn("resp: shutdown", "err", err)
		}
		cancel()
	}
	if dg != nil {
		dg.Close()
	}
	served.Wait()
	if nativeServing {
		ep.Native.Close()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		s.ts.Shutdown(sctx)
		cancel()
		<-errc
	}
	stopBackground()
	bg.Wait()
	wctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	s.coord.Wait(wctx)
	cancel()
	s.peers.Close()
	s.coordNet.Close()
	if f, failed := s.db.Fault(); failed && serveErr == nil {
		serveErr = fmt.Errorf("%w: %s", ErrStorageFailed, f.Error()) // stopped after its storage failed
	}
	return serveErr
}

// Health returns the server's failure detector.
func (s *Server) Health() *health.Detector { return s.health }

// AntiEntropy returns the anti-entropy engine (nil when disabled).
func (s *Server) AntiEntropy() *antientropy.Engine { return s.ae }

// Handoff returns the hint delivery (nil when disabled).
func (s *Server) Handoff() *handoff.Handoff { return s.handoff }

// Close releases the storage engine and the connections to peers.
func (s *Server) Close() error {
	err := s.member.Close()
	s.peers.Close()
	s.coordNet.Close()
	return errors.Join(err, s.db.Close())
}

// others returns the servers of v but self.
func others(v *topology.View, self string) []string {
	var out []string
	for _, a := range v.Addrs() {
		if a != self {
			out = append(out, a)
		}
	}
	return out
}

// viewChanged follows a newer ring: the servers to watch.
func (s *Server) viewChanged(v *topology.View) {
	s.health.SetPeers(others(v, s.cfg.Addr))
	if s.ae != nil {
		st := v.State()
		s.ae.SetRing(v.Current(), st.Move != nil || st.Cleanup != nil)
	}
	s.mover.notify()
	s.moves.observe(v.State())
	s.log.Info("ring changed", "ring", v.State().String())
}

// Membership returns the server's part in the consensus on the ring.
func (s *Server) Membership() *membership.Node { return s.member }

func fail(st wire.Status, format string, args ...any) wire.Frame {
	return wire.Frame{Flags: uint8(st), Body: wire.AppendMessage(nil, fmt.Sprintf(format, args...))}
}

func ok(body []byte) wire.Frame { return wire.Frame{Flags: uint8(wire.StatusOK), Body: body} }

// storageFail answers a storage error.
func storageFail(err error) wire.Frame {
	if errors.Is(err, storage.ErrClosed) {
		return fail(wire.StatusUnavailable, "server stopping")
	}
	if f, ok := storageRefusal(err); ok {
		return f
	}
	return fail(wire.StatusInternal, "%v", err)
}

// Handle answers one native-protocol request, if the connection's
// identity may make it. It implements transport.Handler.
func (s *Server) Handle(ctx context.Context, f wire.Frame) wire.Frame {
	if answer, done := s.authorize(ctx, f); done {
		return answer
	}
	return s.serve(ctx, f)
}

// serve answers one request without asking who sent it: the server's own
// coordinator calls it directly (selfTransport), after Handle checked the
// client's rights on the key.
func (s *Server) serve(ctx context.Context, f wire.Frame) wire.Frame {
	epoch, f, err := wire.SplitEpoch(f)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	if refusal, stale := s.staleEpoch(epoch, f.Op()); stale {
		return refusal
	}
	switch f.Op() {
	case wire.OpRing:
		return ok(s.coord.View().State().Encode())
	case wire.OpStream:
		return s.handleStream(f)
	case wire.OpRingChange:
		return s.member.HandleChange(ctx, f.Body)
	case wire.OpRaft:
		b, err := s.member.HandleRaft(ctx, f.Body)
		if err != nil {
			return fail(wire.StatusBadRequest, "%v", err)
		}
		return ok(b)
	case wire.OpPing:
		if len(f.Body) != 0 {
			return fail(wire.StatusBadRequest, "ping with a body")
		}
		return ok(wire.AppendPing(nil, s.clock.Now(), s.storageState()))
	case wire.OpGet:
		return s.handleGet(f)
	case wire.OpPut:
		return s.handlePut(f)
	case wire.OpScan:
		return s.handleScan(f)
	case wire.OpStats:
		return ok(wire.AppendStats(nil, s.Stats()))
	case wire.OpHint:
		return s.handleHint(f)
	case wire.OpPutBatch:
		return s.handlePutBatch(f)
	case wire.OpBatch:
		return s.handleBatch(ctx, f)
	case wire.OpCoordGet, wire.OpCoordPut, wire.OpCoordDelete:
		return s.handleCoord(ctx, f)
	case wire.OpAETree, wire.OpAEDiff:
		if s.ae == nil {
			return fail(wire.StatusUnavailable, "anti-entropy is disabled on this server")
		}
		return s.ae.Handle(ctx, f)
	}
	return fail(wire.StatusBadRequest, "unknown operation %d", f.Kind)
}

// staleEpoch refuses a replica request placed with an older ring than
// this server knows (epoch zero: the sender does not say): it may be going
// to the wrong servers. The refusal carries the ring.
func (s *Server) staleEpoch(epoch uint64, op wire.Op) (wire.Frame, bool) {
	if epoch == 0 {
		return wire.Frame{}, false
	}
	switch op {
	case wire.OpGet, wire.OpPut, wire.OpHint:
		if v := s.coord.View(); epoch < v.Epoch() {
			return wire.Frame{Flags: uint8(wire.StatusStaleEpoch), Body: v.State().Encode()}, true
		}
	}
	return wire.Frame{}, false
}

func (s *Server) handleGet(f wire.Frame) wire.Frame {
	if f.Flags&^wire.GetVersionOnly != 0 {
		return fail(wire.StatusBadRequest, "unknown get flags %#x", f.Flags)
	}
	m, err := wire.DecodeGetRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	if err := s.lim.CheckKey(m.Key); err != nil {
		return limitFail(err)
	}
	rec, found, err := s.db.Get(m.Key)
	if err != nil {
		return storageFail(err)
	}
	if !found {
		return wire.Frame{Flags: uint8(wire.StatusNotFound)}
	}
	if f.Flags&wire.GetVersionOnly != 0 {
		rec.Value = nil
	}
	return ok(wire.AppendRecord(make([]byte, 0, wire.RecordSize(rec)), rec))
}

// limitFail answers a key or value that the limits refuse: too large is
// StatusTooLarge, an empty key a bad request.
func limitFail(err error) wire.Frame {
	e, ok := limits.As(err)
	switch {
	case !ok:
		return fail(wire.StatusBadRequest, "%v", err)
	case e.TooLarge():
		return fail(wire.StatusTooLarge, "%s", e.Detail())
	}
	return fail(wire.StatusBadRequest, "%s", e.Detail())
}

// checkRecord validates a record received for storage; a non-nil frame
// is the refusal to send. The malformed (an empty key, a zero version) is
// refused before the too large.
func (s *Server) checkRecord(key []byte, rec kv.Record) *wire.Frame {
	err := s.lim.CheckRecord(key, rec.Value)
	if err == nil && !rec.Version.IsZero() {
		return nil // the common case, before anything that allocates
	}
	tooLarge := false
	if e, ok := limits.As(err); ok {
		tooLarge = e.TooLarge()
	}
	var f wire.Frame
	switch {
	case err != nil && !tooLarge:
		f = limitFail(err)
	case rec.Version.IsZero():
		f = fail(wire.StatusBadRequest, "zero version")
	case err != nil:
		f = limitFail(err)
	default:
		return nil
	}
	return &f
}

func (s *Server) handlePut(f wire.Frame) wire.Frame {
	m, refused := s.decodePut(f)
	if refused != nil {
		return *refused
	}
	res, err := s.db.Apply(m.Key, m.Record)
	return putAnswer(res, err)
}

// decodePut decodes and checks a put request; a non-nil frame is the
// refusal to send.
func (s *Server) decodePut(f wire.Frame) (wire.PutRequest, *wire.Frame) {
	m, err := wire.DecodePutRequest(f.Body)
	if err != nil {
		refused := fail(wire.StatusBadRequest, "%v", err)
		return m, &refused
	}
	if refused := s.checkRecord(m.Key, m.Record); refused != nil {
		return m, refused
	}
	s.clock.Observe(m.Record.Version)
	return m, nil
}

// putAnswer answers a put that storage applied (or not) with res and err.
func putAnswer(res storage.ApplyResult, err error) wire.Frame {
	if err != nil {
		return storageFail(err)
	}
	return ok(wire.AppendVersion(make([]byte, 0, kv.VersionSize), res.Current))
}

// handleHint keeps a record for another server; a hint for this server
// itself is simply stored.
func (s *Server) handleHint(f wire.Frame) wire.Frame {
	m, err := wire.DecodeHintRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	if refused := s.checkRecord(m.Key, m.Record); refused != nil {
		return *refused
	}
	if m.Target == "" || strings.IndexByte(m.Target, 0) >= 0 {
		return fail(wire.StatusBadRequest, "bad hint target %q", m.Target)
	}
	s.clock.Observe(m.Record.Version)
	if m.Target == s.cfg.Addr {
		_, err = s.db.Apply(m.Key, m.Record)
	} else {
		_, err = s.db.ApplyHint(m.Target, m.Key, m.Record)
	}
	if err != nil {
		return storageFail(err)
	}
	return ok(nil)
}

// handlePutBatch stores many records (hints handed over, repairs).
func (s *Server) handlePutBatch(f wire.Frame) wire.Frame {
	m, err := wire.DecodePutBatch(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	for _, kr := range m.Records {
		if refused := s.checkRecord(kr.Key, kr.Record); refused != nil {
			return *refused
		}
	}
	recs := make([]storage.KeyRecord, len(m.Records))
	for i, kr := range m.Records {
		s.clock.Observe(kr.Record.Version)
		recs[i] = storage.KeyRecord{Key: kr.Key, Record: kr.Record}
	}
	if _, err := s.db.ApplyMany(recs); err != nil {
		return storageFail(err)
	}
	return ok(nil)
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
	out := wire.Stats{
		Addr:       s.cfg.Addr,
		LiveKeys:   st.LiveKeys,
		Tombstones: st.Tombstones,
		LiveBytes:  st.LiveBytes,
		Engine:     engine,
		Synced:     s.db.Synced() && !s.db.InMemory(),
		UptimeMS:   time.Since(s.started).Milliseconds(),
	}
	hints := s.db.HintCounts()
	var ae map[string]antientropy.PeerStats
	if s.ae != nil {
		ae = s.ae.Stats()
	}
	for _, p := range s.health.States() {
		ps := wire.PeerStats{Addr: p.Addr, Up: p.Up, HintsHeld: hints[p.Addr]}
		if p.Storage != wire.StorageOK {
			ps.Storage = p.Storage.String()
		}
		if a, ok := ae[p.Addr]; ok {
			if !a.LastCompleted.IsZero() {
				ps.AELastMS = a.LastCompleted.UnixMilli()
			}
			ps.AERounds, ps.AEKeysSent, ps.AEKeysReceived = a.Rounds, a.KeysSent, a.KeysReceived
		}
		out.Peers = append(out.Peers, ps)
	}
	for _, n := range hints {
		out.HintsHeld += n
	}
	if s.handoff != nil {
		out.HintsDelivered = s.handoff.Delivered()
	}
	if s.ae != nil {
		out.AERounds, out.TombstonesPurged = s.ae.Totals()
	}
	out.ReadRepairs = s.coord.ReadRepairs()
	s.storageStats(&out)
	v := s.coord.View()
	out.Epoch = v.Epoch()
	if mv := v.State().Move; mv != nil {
		out.MovePhase = string(mv.Phase)
	}
	out.Stream, out.StreamHistory = s.mover.Stats()
	if s.cfg.Traffic != nil {
		t := s.cfg.Traffic()
		out.Traffic = &t
	}
	return out
}
