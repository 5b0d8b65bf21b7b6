package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
)

// security is what the --tls- flags configure.
type security struct {
	// store is the TLS material; nil without TLS.
	store *tlsconf.Store
	// datagram says whether the datagram protocol is served: by default
	// without TLS, only with --datagram-insecure with it (it has no
	// security of its own), never with --no-datagram.
	datagram bool
	// datagramInsecure is datagram on with TLS, which start warns of.
	datagramInsecure bool
}

// securityOf reads the --tls- flags and loads the files they name.
func securityOf(c *cli.Context, log *slog.Logger) (security, error) {
	files := tlsconf.Files{CA: c.String("tls-ca"), Cert: c.String("tls-cert"), Key: c.String("tls-key")}
	auth, err := tlsconf.ParseClientAuth(c.String("tls-client-cert"))
	if err != nil {
		return security{}, cmdutil.UsageError("--tls-client-cert %q: want optional or required", c.String("tls-client-cert"))
	}
	if files.Empty() {
		for _, f := range []string{"tls-client-cert", "datagram-insecure", "metrics-plain"} {
			if c.IsSet(f) {
				return security{}, cmdutil.UsageError("--%s needs TLS: give --tls-ca, --tls-cert and --tls-key", f)
			}
		}
		return security{datagram: !c.Bool("no-datagram")}, nil
	}
	if files.CA == "" || files.Cert == "" || files.Key == "" {
		return security{}, cmdutil.UsageError("--tls-ca, --tls-cert and --tls-key go together: give all three or none")
	}
	if c.Bool("metrics-plain") {
		if err := checkLoopback("--metrics", c.String("metrics")); err != nil {
			return security{}, err
		}
	}
	store, err := tlsconf.NewStore(files, auth, log)
	if err != nil {
		return security{}, err
	}
	on := c.Bool("datagram-insecure") && !c.Bool("no-datagram")
	return security{store: store, datagram: on, datagramInsecure: on}, nil
}

// checkLoopback checks that addr (IP:PORT) is on a loopback address:
// plain HTTP next to TLS only where no other machine can reach it.
func checkLoopback(flag, addr string) error {
	if addr == "" {
		return cmdutil.UsageError("--metrics-plain needs --metrics")
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return cmdutil.UsageError("--metrics-plain: %s %q is not a loopback address (127.x.x.x)", flag, addr)
	}
	return nil
}

// logStart says once, at start, how open the server is.
func (s security) logStart(log *slog.Logger, datagram bool) {
	switch {
	case s.store == nil:
		log.Warn("no TLS configured (--tls-ca, --tls-cert, --tls-key): the ring is open to anyone who can reach its ports")
	case s.datagramInsecure && datagram:
		log.Warn("--datagram-insecure: the datagram protocol (UDP) is served without any security: anyone who can reach it may read and write every key")
	}
}

// reloadOnSignal reloads the TLS files on SIGHUP and when they change,
// until ctx ends or stop is called.
func reloadOnSignal(ctx context.Context, store *tlsconf.Store) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); store.Watch(ctx, 0, hup) }()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
