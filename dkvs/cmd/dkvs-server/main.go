// Command dkvs-server runs one dkvs server: dkvs-server [options] IP PORT
// [key value]...
//
// It reads servers.txt to learn the ring, stores its data in Pebble (or in
// memory) and serves the native protocol on IP:PORT until SIGINT or
// SIGTERM. The pairs after the port are stored on this server alone as it
// starts. Options come before IP; each can also be set from the
// environment variable named in --help.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs/antientropy"
	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/cmd/dkvs-server/internal/earlybind"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/console"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/diskspace"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/metrics"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/server"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/transport"
	"github.com/dkvs/dkvs/dkvs/window"
	"github.com/dkvs/dkvs/dkvs/wire"
)

const usage = `Usage: dkvs-server [options] IP PORT [key value]...

Serves IP:PORT (TCP) as one server of the ring listed in servers.txt.
The key/value pairs after PORT are stored on this server alone at start.
Options go before IP. SIGINT or SIGTERM stops the server cleanly.

Options (each also read from the environment variable shown):
  --servers FILE         servers file (default servers.txt)       DKVS_SERVERS
  --data-dir DIR         data directory (default ./dkvs-data-IP-PORT)
                                                                   DKVS_DATA_DIR
  --listen IP:PORT       address to bind, when it is not IP PORT (the
                         server's address in servers.txt), e.g. behind a
                         proxy or NAT                             DKVS_LISTEN
  --memory               keep data in memory only                 DKVS_MEMORY
  --no-sync              acknowledge writes before fsync          DKVS_NO_SYNC
  --cache-size N         bytes of Pebble's block cache, at least 1 MiB
                         (default 268435456)                      DKVS_CACHE_SIZE
  --min-free-space S     below this free space on the data directory's file
                         system, refuse new values (deletions are taken):
                         bytes (256MiB, 1GiB) or a percentage of the file
                         system (5%); 0: no minimum (default 256MiB)
                                                                   DKVS_MIN_FREE_SPACE
  --on-damage MODE       a damaged data directory: refuse (default) does not
                         start; rebuild moves it aside to DIR.damaged-TIME,
                         starts empty and refills from the other replicas
                                                                   DKVS_ON_DAMAGE
  --max-key-size N       largest key in bytes (default 65536)     DKVS_MAX_KEY_SIZE
  --max-value-size N     largest value in bytes (default 16777216)
                                                                   DKVS_MAX_VALUE_SIZE
  --frame-timeout D      time allowed for one frame to arrive (default 10s)
                                                                   DKVS_FRAME_TIMEOUT
  --heartbeat D          interval of pings to peers believed down (default 100ms)
                                                                   DKVS_HEARTBEAT
  --peer-timeout D       deadline of one ping (default 200ms)     DKVS_PEER_TIMEOUT
  --no-handoff           do not deliver hints held for others     DKVS_NO_HANDOFF
  --handoff-interval D   how often hints are checked for delivery (default 1s)
                                                                   DKVS_HANDOFF_INTERVAL
  --no-anti-entropy      no Merkle-tree repair with peers         DKVS_NO_ANTI_ENTROPY
  --ae-interval D        time between anti-entropy rounds (default 30s; one
                         also runs at start)                      DKVS_AE_INTERVAL
  --ae-bandwidth N       bytes per second anti-entropy may move (default
                         33554432; 0: no limit)                   DKVS_AE_BANDWIDTH
  --tombstone-grace D    age before a deletion every replica has may be
                         dropped (default 1h)                     DKVS_TOMBSTONE_GRACE
  --move-bandwidth N     bytes per second this server receives while it
                         streams the ranges it gains in a move of the ring
                         (default 33554432; 0: no limit)          DKVS_MOVE_BANDWIDTH
  --cleanup-grace D      how long after a move of the ring a server keeps
                         the keys it no longer owns before it drops them
                         (default 1m)                             DKVS_CLEANUP_GRACE
  --no-datagram          do not answer the DKVS datagram protocol (UDP on
                         the --listen address)                    DKVS_NO_DATAGRAM
  --tls-ca FILE          CA certificates (PEM) that sign the ring's
                         certificates; with --tls-cert and --tls-key (all
                         three or none): TLS 1.3 on every port, mutual TLS
                         between servers                          DKVS_TLS_CA
  --tls-cert FILE        this server's certificate (PEM), naming
                         dkvs://IP:PORT ("dkvs-client certs" makes one)
                                                                   DKVS_TLS_CERT
  --tls-key FILE         its private key (PEM)                    DKVS_TLS_KEY
  --tls-client-cert P    optional (default) or required: whether clients
                         must present a certificate signed by the CA
                                                                   DKVS_TLS_CLIENT_CERT
  --datagram-insecure    with TLS, still answer the datagram protocol,
                         which has no security at all (off by default
                         with TLS)                                DKVS_DATAGRAM_INSECURE
  --resp IP:PORT         also serve the Redis protocol (RESP) there (default
                         off)                                     DKVS_RESP
  --resp-n N             home servers of a key written or read through RESP
                         or by a native request asking for the server's
                         defaults (default 3)                      DKVS_RESP_N
  --resp-r R             replies such a read waits for (default 2, or from
                         --resp-level)                             DKVS_RESP_R
  --resp-w W             acknowledgements such a write needs (default 2, or
                         from --resp-level)                        DKVS_RESP_W
  --resp-level L         ONE, QUORUM or ALL: R and W from N when not given
                                                                   DKVS_RESP_LEVEL
  --resp-linearizable    linearizable reads and writes (majority quorums on
                         home servers)                             DKVS_RESP_LINEARIZABLE
  --coord-timeout D      deadline of one request to one replica when this
                         server coordinates (default 500ms)       DKVS_COORD_TIMEOUT
  --coord-max-time D     longest a coordinated operation may take: a RESP
                         command, or a native request asking for longer
                         (default 5s)                              DKVS_COORD_MAX_TIME
  --metrics IP:PORT      serve Prometheus metrics at http://IP:PORT/metrics (off
                         by default; https:// with TLS)           DKVS_METRICS
  --metrics-plain        with TLS, keep plain HTTP on --metrics, which must
                         then be a loopback address                DKVS_METRICS_PLAIN
  --pprof                also serve /debug/pprof/ there           DKVS_PPROF
  --no-console           no web console at http://IP:PORT/ of --metrics
                         (served there by default)                DKVS_NO_CONSOLE
  --users FILE           users and their rights (docs/operations.md,
                         "Security"): every connection must then be a ring
                         member or an authenticated user; needs the TLS
                         options; reloaded on SIGHUP and when it changes
                                                                   DKVS_USERS
  --log-level L          debug, info, warn or error (default info) DKVS_LOG_LEVEL
  --log-format F         text or json (default text)              DKVS_LOG_FORMAT
  --help                 print this text

Exit status: 0 after a clean stop; 256+code on error (cs202.md section 4),
e.g. 134 (ERR_INVALID_COMMAND) for a bad command line (one or two of the
three --tls- files), 136 (ERR_ADDRESS) for a bad IP, 132 (ERR_NETWORK)
when a port (TCP, UDP or RESP) cannot be opened, 129 (ERR_IO) when the
data directory cannot be opened (or is damaged), when the storage failed
while serving (a supervisor should restart the server) or when a --tls-
file cannot be read, 133 (ERR_INVALID_CONFIG) when a --tls- file holds no
valid certificate or key, 130 (ERR_RUNTIME) when a clean stop did not
finish within 30s or a second SIGINT or SIGTERM came during it, 133 for a
--users file that does not parse. SIGHUP reloads the --tls- files and
the --users file (both are also reloaded when they change).
`

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var exitErr error
	app := &cli.App{
		Name:            "dkvs-server",
		Usage:           "serve one server of a dkvs ring",
		HideHelpCommand: true,
		// --help prints the usage text below through urfave/cli.
		CustomAppHelpTemplate: usage,
		Writer:                stdout,
		ErrWriter:             stderr,
		Flags:                 flags(),
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return cmdutil.UsageError("%v", err)
		},
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			exitErr = serve(ctx, c, stderr)
			return exitErr
		},
	}
	err := app.Run(args)
	if err == nil {
		return 0
	}
	status := cmdutil.Report(stderr, err)
	if errcode.Of(err) == errcode.InvalidCommand {
		fmt.Fprint(stdout, usage)
	}
	return status
}

// DefaultMoveBandwidth bounds what a server receives per second while it
// streams ranges in a move of the ring: anti-entropy's bound. A move
// streams into each gaining server from several sources at once, and the
// server keeps serving its share of the foreground meanwhile; 32 MiB/s is
// about a quarter of a 1 Gb/s link and a fraction of what an SSD writes,
// and still brings a share of 1 GiB over in about 30 s (plus the
// verifying pass). 0 lifts the bound, for a ring that is otherwise idle.
const DefaultMoveBandwidth = 32 << 20

// flags are the server's options. Those that take no value must be
// earlybind.BoolFlags too (a test checks it).
func flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "servers", Value: config.DefaultFile, EnvVars: []string{"DKVS_SERVERS"}},
		&cli.StringFlag{Name: "data-dir", EnvVars: []string{"DKVS_DATA_DIR"}},
		&cli.StringFlag{Name: "listen", EnvVars: []string{"DKVS_LISTEN"}},
		&cli.BoolFlag{Name: "memory", EnvVars: []string{"DKVS_MEMORY"}},
		&cli.BoolFlag{Name: "no-sync", EnvVars: []string{"DKVS_NO_SYNC"}},
		&cli.Int64Flag{Name: "cache-size", Value: storage.DefaultCacheSize, EnvVars: []string{"DKVS_CACHE_SIZE"}},
		&cli.StringFlag{Name: "min-free-space", Value: diskspace.DefaultMinimum, EnvVars: []string{"DKVS_MIN_FREE_SPACE"}},
		&cli.StringFlag{Name: "on-damage", Value: "refuse", EnvVars: []string{"DKVS_ON_DAMAGE"}},
		&cli.IntFlag{Name: "max-key-size", Value: limits.DefaultMaxKeySize, EnvVars: []string{"DKVS_MAX_KEY_SIZE"}},
		&cli.IntFlag{Name: "max-value-size", Value: limits.DefaultMaxValueSize, EnvVars: []string{"DKVS_MAX_VALUE_SIZE"}},
		&cli.DurationFlag{Name: "frame-timeout", Value: 10 * time.Second, EnvVars: []string{"DKVS_FRAME_TIMEOUT"}},
		&cli.DurationFlag{Name: "heartbeat", Value: 100 * time.Millisecond, EnvVars: []string{"DKVS_HEARTBEAT"}},
		&cli.DurationFlag{Name: "peer-timeout", Value: 200 * time.Millisecond, EnvVars: []string{"DKVS_PEER_TIMEOUT"}},
		&cli.BoolFlag{Name: "no-handoff", EnvVars: []string{"DKVS_NO_HANDOFF"}},
		&cli.DurationFlag{Name: "handoff-interval", Value: time.Second, EnvVars: []string{"DKVS_HANDOFF_INTERVAL"}},
		&cli.BoolFlag{Name: "no-anti-entropy", EnvVars: []string{"DKVS_NO_ANTI_ENTROPY"}},
		&cli.DurationFlag{Name: "ae-interval", Value: antientropy.DefaultInterval, EnvVars: []string{"DKVS_AE_INTERVAL"}},
		&cli.Int64Flag{Name: "ae-bandwidth", Value: 32 << 20, EnvVars: []string{"DKVS_AE_BANDWIDTH"}},
		&cli.DurationFlag{Name: "tombstone-grace", Value: antientropy.DefaultTombstoneGrace, EnvVars: []string{"DKVS_TOMBSTONE_GRACE"}},
		&cli.Int64Flag{Name: "move-bandwidth", Value: DefaultMoveBandwidth, EnvVars: []string{"DKVS_MOVE_BANDWIDTH"}},
		&cli.DurationFlag{Name: "cleanup-grace", Value: server.DefaultCleanupGrace, EnvVars: []string{"DKVS_CLEANUP_GRACE"}},
		&cli.BoolFlag{Name: "no-datagram", EnvVars: []string{"DKVS_NO_DATAGRAM"}},
		&cli.StringFlag{Name: "tls-ca", EnvVars: []string{"DKVS_TLS_CA"}},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"DKVS_TLS_CERT"}},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"DKVS_TLS_KEY"}},
		&cli.StringFlag{Name: "tls-client-cert", Value: "optional", EnvVars: []string{"DKVS_TLS_CLIENT_CERT"}},
		&cli.BoolFlag{Name: "datagram-insecure", EnvVars: []string{"DKVS_DATAGRAM_INSECURE"}},
		&cli.StringFlag{Name: "resp", EnvVars: []string{"DKVS_RESP"}},
		&cli.IntFlag{Name: "resp-n", Value: quorum.DefaultN, EnvVars: []string{"DKVS_RESP_N"}},
		&cli.IntFlag{Name: "resp-r", Value: quorum.DefaultR, EnvVars: []string{"DKVS_RESP_R"}},
		&cli.IntFlag{Name: "resp-w", Value: quorum.DefaultW, EnvVars: []string{"DKVS_RESP_W"}},
		&cli.StringFlag{Name: "resp-level", EnvVars: []string{"DKVS_RESP_LEVEL"}},
		&cli.BoolFlag{Name: "resp-linearizable", EnvVars: []string{"DKVS_RESP_LINEARIZABLE"}},
		&cli.DurationFlag{Name: "coord-timeout", Value: coord.DefaultTimeout, EnvVars: []string{"DKVS_COORD_TIMEOUT"}},
		&cli.DurationFlag{Name: "coord-max-time", Value: server.DefaultCoordMaxTime, EnvVars: []string{"DKVS_COORD_MAX_TIME"}},
		&cli.StringFlag{Name: "metrics", EnvVars: []string{"DKVS_METRICS"}},
		&cli.BoolFlag{Name: "metrics-plain", EnvVars: []string{"DKVS_METRICS_PLAIN"}},
		&cli.BoolFlag{Name: "pprof", EnvVars: []string{"DKVS_PPROF"}},
		&cli.BoolFlag{Name: "no-console", EnvVars: []string{"DKVS_NO_CONSOLE"}},
		&cli.StringFlag{Name: "users", EnvVars: []string{"DKVS_USERS"}},
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"DKVS_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"DKVS_LOG_FORMAT"}},
	}
}

func serve(ctx context.Context, c *cli.Context, stderr io.Writer) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return cmdutil.UsageError("need IP and PORT, got %d arguments", len(args))
	}
	if len(args)%2 != 0 {
		return cmdutil.UsageError("key %q has no value", args[len(args)-1])
	}
	ip, err := config.ParseIP(args[0])
	if err != nil {
		return err
	}
	port, err := config.ParsePort(args[1])
	if err != nil {
		return err
	}
	for _, f := range []string{"max-key-size", "max-value-size"} {
		if c.Int(f) < 1 {
			return cmdutil.UsageError("--%s must be at least 1", f)
		}
	}
	for _, f := range []string{"frame-timeout", "heartbeat", "peer-timeout", "handoff-interval", "ae-interval", "tombstone-grace",
		"cleanup-grace", "coord-timeout", "coord-max-time"} {
		if c.Duration(f) <= 0 {
			return cmdutil.UsageError("--%s must be positive", f)
		}
	}
	if c.Int64("cache-size") < 1<<20 {
		return cmdutil.UsageError("--cache-size must be at least 1048576 (1 MiB)")
	}
	for _, f := range []string{"ae-bandwidth", "move-bandwidth"} {
		if c.Int64(f) < 0 {
			return cmdutil.UsageError("--%s must not be negative", f)
		}
	}
	minFree, err := diskspace.ParseMinimum(c.String("min-free-space"))
	if err != nil {
		return cmdutil.UsageError("--min-free-space: %v", err)
	}
	var rebuild bool
	switch c.String("on-damage") {
	case "refuse":
	case "rebuild":
		rebuild = true
	default:
		return cmdutil.UsageError("--on-damage %q: want refuse or rebuild", c.String("on-damage"))
	}
	cc, err := coordConfig(c)
	if err != nil {
		return err
	}
	log, err := cmdutil.NewLogger(stderr, c.String("log-format"), c.String("log-level"))
	if err != nil {
		return err
	}
	servers, err := config.Load(c.String("servers"))
	if err != nil {
		return err
	}
	self := config.Server{IP: ip, Port: port}
	addr := self.Addr()
	dir := c.String("data-dir")
	if dir == "" {
		dir = fmt.Sprintf("dkvs-data-%s-%d", ip, port)
	}
	listen := addr
	if l := c.String("listen"); l != "" {
		if err := checkHostPort("--listen", l); err != nil {
			return err
		}
		listen = l
	}
	if c.Bool("pprof") && c.String("metrics") == "" {
		return cmdutil.UsageError("--pprof is served on the --metrics address: give --metrics too")
	}
	respAddr := c.String("resp")
	if respAddr != "" {
		if err := checkHostPort("--resp", respAddr); err != nil {
			return err
		}
	}
	sec, err := securityOf(c, log)
	if err != nil {
		return err
	}
	users, err := openUsers(c, log)
	if err != nil {
		return err
	}
	// Listen before opening storage so that a port in use fails fast
	// without touching another server's data, and so that clients
	// started with the server are queued, not refused, while storage
	// opens (earlybind has usually bound both sockets already). Every
	// endpoint is opened or the server does not start: it never runs
	// half-configured.
	ep := server.Endpoints{}
	if ep.Native, err = listenTCP(listen); err != nil {
		return fmt.Errorf("listen on %s: %w: %w", listen, err, errcode.Network)
	}
	defer ep.Native.Close()
	if sec.datagram {
		if ep.Datagram, err = listenUDP(listen); err != nil {
			return fmt.Errorf("datagram protocol: listen on UDP %s: %w: %w", listen, err, errcode.Network)
		}
		defer ep.Datagram.Close()
	}
	earlybind.Release()
	if respAddr != "" {
		if ep.RESP, err = net.Listen("tcp", respAddr); err != nil {
			return fmt.Errorf("redis protocol: listen on %s: %w: %w", respAddr, err, errcode.Network)
		}
		defer ep.RESP.Close()
	}
	var metricsLn net.Listener
	if m := c.String("metrics"); m != "" {
		if err := checkHostPort("--metrics", m); err != nil {
			return err
		}
		if metricsLn, err = net.Listen("tcp", m); err != nil {
			return fmt.Errorf("metrics: listen on %s: %w: %w", m, err, errcode.Network)
		}
		defer metricsLn.Close()
		if sec.store != nil && !c.Bool("metrics-plain") {
			metricsLn = tls.NewListener(metricsLn, sec.store.ServerConfig())
		}
	}
	// The metrics read the server's stats, and the server reports its
	// traffic to the metrics: srv is set once it exists.
	var srv *server.Server
	var observer transport.Observer
	var mx *metrics.Metrics
	// A server serving metrics also keeps its traffic of the last minute,
	// which its stats carry to the consoles of every server.
	var win *window.Window
	var traffic func() wire.Traffic
	if metricsLn != nil {
		mx = metrics.New(func() wire.Stats { return srv.Stats() })
		win = window.New()
		observer, traffic = window.Tee(mx, win), win.Traffic
	}
	srv, err = server.New(server.Config{
		Addr:    addr,
		Servers: servers,
		Storage: storage.Options{
			Dir:              dir,
			InMemory:         c.Bool("memory"),
			NoSync:           c.Bool("no-sync"),
			CacheSize:        c.Int64("cache-size"),
			MoveAsideDamaged: rebuild,
		},
		MinFreeSpace:       minFree,
		MaxKeySize:         c.Int("max-key-size"),
		MaxValueSize:       c.Int("max-value-size"),
		FrameTimeout:       c.Duration("frame-timeout"),
		Logger:             log,
		Heartbeat:          c.Duration("heartbeat"),
		PeerTimeout:        c.Duration("peer-timeout"),
		DisableHandoff:     c.Bool("no-handoff"),
		HandoffInterval:    c.Duration("handoff-interval"),
		DisableAntiEntropy: c.Bool("no-anti-entropy"),
		AEInterval:         c.Duration("ae-interval"),
		AEBandwidth:        c.Int64("ae-bandwidth"),
		TombstoneGrace:     c.Duration("tombstone-grace"),
		MoveBandwidth:      c.Int64("move-bandwidth"),
		CleanupGrace:       c.Duration("cleanup-grace"),
		Coord:              cc,
		TLS:                sec.store,
		Observer:           observer,
		Traffic:            traffic,
		Users:              users,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	// servers.txt is the seed list: a server that joined later is not in
	// it, and knows the ring it belongs to from its store.
	if !srv.Membership().State().IsMember(addr) {
		log.Warn("this server is not a member of the ring: it owns no part of it until it joins "+
			"(dkvs-client join -- IP PORT COUNT, sent to any member)", "addr", addr, "servers", c.String("servers"))
	}
	for i := 2; i < len(args); i += 2 {
		if err := srv.StoreLocal([]byte(args[i]), []byte(args[i+1])); err != nil {
			return fmt.Errorf("store %q: %w", args[i], err)
		}
	}
	st := srv.Stats()
	log.Info("dkvs-server started", "addr", addr, "listen", listen, "engine", st.Engine, "data_dir", dirOrMemory(dir, c.Bool("memory")),
		"synced_writes", st.Synced, "cache_size", c.Int64("cache-size"), "keys", st.LiveKeys, "servers", len(servers),
		"min_free_space", minFree.String(), "on_damage", c.String("on-damage"), "storage", st.Storage,
		"max_key_size", c.Int("max-key-size"), "max_value_size", c.Int("max-value-size"),
		"hinted_handoff", !c.Bool("no-handoff"), "anti_entropy", !c.Bool("no-anti-entropy"),
		"ae_interval", c.Duration("ae-interval"), "ae_bandwidth", c.Int64("ae-bandwidth"),
		"tombstone_grace", c.Duration("tombstone-grace"),
		"move_bandwidth", c.Int64("move-bandwidth"), "cleanup_grace", c.Duration("cleanup-grace"), "epoch", st.Epoch,
		"datagram", ep.Datagram != nil, "resp", respAddr, "tls", sec.store != nil, "tls_client_cert", c.String("tls-client-cert"),
		"resp_n", cc.N, "resp_r", cc.R, "resp_w", cc.W, "resp_level", cc.Level.String(), "resp_linearizable", cc.Linearizable)
	sec.logStart(log, ep.Datagram != nil)
	ctx, release := stopOnSignal(ctx, stopLimit, stderr, os.Exit)
	defer release()
	if users != nil {
		go users.Watch(ctx, 0, onHangup(ctx))
	}
	if sec.store != nil {
		stopHUP := reloadOnSignal(ctx, sec.store)
		defer stopHUP()
	}
	metricsDone := make(chan error, 1)
	if mx != nil {
		go win.Run(ctx)
		h := mx.Handler(c.Bool("pprof"))
		if !c.Bool("no-console") {
			h = console.New(srv, console.Options{N: cc.N, Timeout: c.Duration("coord-timeout"), Logger: log}).Handler(h)
		}
		if users != nil {
			h = auth.HTTP(users, log, h)
		}
		go func() { metricsDone <- metrics.ServeHandler(ctx, metricsLn, h) }()
		log.Info("metrics served", "addr", metricsLn.Addr().String(), "https", sec.store != nil && !c.Bool("metrics-plain"),
			"pprof", c.Bool("pprof"), "console", !c.Bool("no-console"))
	} else {
		metricsDone <- nil
	}
	if err := srv.ServeAll(ctx, ep); err != nil {
		return err
	}
	// Closed here, while the stop is still watched (stopOnSignal): the
	// close of the storage is bounded, and so is the stop as a whole.
	if err := srv.Close(); err != nil {
		log.Warn("storage not closed cleanly", "err", err)
	}
	if err := <-metricsDone; err != nil {
		log.Warn("metrics server stopped", "err", err)
	}
	log.Info("dkvs-server stopped", "addr", addr)
	return nil
}

// listenTCP returns a listener on addr: the socket earlybind bound at
// start when there is one, or a new one.
func listenTCP(addr string) (net.Listener, error) {
	if fd := earlybind.TCP(addr); fd >= 0 {
		f := os.NewFile(uintptr(fd), "tcp "+addr)
		ln, err := net.FileListener(f) // a duplicate of fd
		f.Close()
		if err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", addr)
}

// listenUDP is listenTCP for the datagram protocol's socket.
func listenUDP(addr string) (net.PacketConn, error) {
	if fd := earlybind.UDP(addr); fd >= 0 {
		f := os.NewFile(uintptr(fd), "udp "+addr)
		pc, err := net.FilePacketConn(f)
		f.Close()
		if err == nil {
			return pc, nil
		}
	}
	return net.ListenPacket("udp4", addr)
}

// checkHostPort checks an IP:PORT option.
func checkHostPort(flag, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return cmdutil.UsageError("%s %q: want IP:PORT", flag, v)
	}
	if _, err := config.ParseIP(host); err != nil {
		return fmt.Errorf("%s %q: %w", flag, v, err)
	}
	if _, err := config.ParsePort(port); err != nil {
		return cmdutil.UsageError("%s %q: bad port", flag, v)
	}
	return nil
}

// coordConfig reads the replication the server coordinates with and
// checks it with quorum's rules, as server.New will: R and W not given
// follow --resp-level (or the linearizable mode) when one is given, and
// are min(2, N) otherwise.
func coordConfig(c *cli.Context) (server.CoordConfig, error) {
	req := quorum.Req{N: c.Int("resp-n"), Linearizable: c.Bool("resp-linearizable")}
	if l := c.String("resp-level"); l != "" {
		lv, err := quorum.ParseLevel(l)
		if err != nil {
			return server.CoordConfig{}, cmdutil.UsageError("--resp-level %q: want ONE, QUORUM or ALL", l)
		}
		req.Level = lv
	}
	// A count of 0 means "not given" to quorum: one given as 0 (or less)
	// is refused here, before it could pass for a default.
	for _, f := range []struct {
		name string
		dst  *int
	}{{"resp-n", &req.N}, {"resp-r", &req.R}, {"resp-w", &req.W}} {
		if !c.IsSet(f.name) {
			continue
		}
		if v := c.Int(f.name); v < 1 {
			return server.CoordConfig{}, cmdutil.UsageError("--%s %d: must be at least 1", f.name, v)
		}
		*f.dst = c.Int(f.name)
	}
	req, err := req.Defaults()
	if err != nil {
		return server.CoordConfig{}, cmdutil.UsageError("--resp-n, --resp-r, --resp-w, --resp-level, --resp-linearizable: %s", errcode.Detail(err))
	}
	return server.CoordConfig{
		Timeout:      c.Duration("coord-timeout"),
		MaxTime:      c.Duration("coord-max-time"),
		N:            req.N,
		R:            req.R,
		W:            req.W,
		Level:        req.Level,
		Linearizable: req.Linearizable,
	}, nil
}

// openUsers loads the --users file. Users need TLS: a token sent in
// plaintext can be read off the network, and without certificates the
// servers cannot tell a peer from anyone.
func openUsers(c *cli.Context, log *slog.Logger) (*auth.Store, error) {
	path := c.String("users")
	if path == "" {
		return nil, nil
	}
	if c.String("tls-cert") == "" {
		return nil, cmdutil.UsageError("--users needs TLS (--tls-ca, --tls-cert, --tls-key): tokens and peers' identities mean nothing in plaintext")
	}
	users, err := auth.Open(path, log)
	switch {
	case errors.Is(err, auth.ErrBadFile):
		return nil, fmt.Errorf("%w: %w", err, errcode.InvalidConfig)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", err, errcode.IO)
	}
	log.Info("users loaded: only ring members and authenticated users are served", "path", path, "users", len(users.Table().Users()))
	return users, nil
}

// onHangup returns a channel that receives a value on each SIGHUP until
// ctx ends: the signal to reload the files the server reads.
func onHangup(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{})
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func dirOrMemory(dir string, mem bool) string {
	if mem {
		return "(memory)"
	}
	return dir
}
