// Command dkvs-client reads and writes a dkvs ring:
//
//	dkvs-client <command> [-r R] [-w W] [-n N] -- <arguments>
//
// Its command line, outputs and exit codes are those of cs202.md sections
// 3 and 4; run "dkvs-client help" for the commands. Started under the name
// dkvs-dump-ring it runs the dump-ring command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
)

const usage = `Usage: dkvs-client [global options] <command> [-r R] [-w W] [-n N] -- <arguments>

Commands:
  get     -- key                  print "OK <value>"
  put     -- key value            store value under key (the value may be empty)
  del     -- key                  delete key
  cat     -- key1 ... keyK dest   store the values of key1..keyK, joined, under dest
  substr  -- key pos len dest     store len bytes of key's value from pos under dest
                                  (pos from 0 at the start, or from -1 at the end)
  find    -- haystack needle      print "OK <index>" of needle's value in haystack's
                                  value, "OK -1" if it does not occur
  dump    [--server IP:PORT]      print every live pair of the ring as "key --> value",
                                  or what one server stores
  dump-ring                       print the ring's nodes and what each server stores
  status                          print every server: up, down, or its storage full, slow
                                  or failed; keys, hints held, free space, last
                                  anti-entropy with each peer (exit 132 if one is down,
                                  133 if one refuses the credentials)
  shell                           an interactive console on one client ("help" inside)
  bench   [flags]                 run a workload and print throughput and latency
                                  percentiles ("dkvs-client bench -h" for its flags)
  user add [--users FILE] [--rights R] [--prefixes P] -- NAME
                                  add (or replace) a user of a users file (default
                                  users.txt, DKVS_USERS) with a new token, printed once;
                                  R: read,write,admin (default read,write); P: key
                                  prefixes, comma-separated, * all (default), - none
  user del [--users FILE] -- NAME remove a user
  user list [--users FILE]        print each user's name, rights and prefixes
  help                            print this text

Ring commands (one move of the ring at a time; "ring" shows it):
  join       -- IP PORT COUNT     a new server, started with the ring's servers.txt,
                                  joins with COUNT ring nodes (a warning on stderr
                                  when COUNT makes its share far from the others')
  leave      -- IP:PORT           a live server hands its data over and leaves
  replace    -- DEAD NEW [COUNT]  a new server (IP:PORT) takes a dead one's place
                                  (COUNT: the dead server's unless given)
  removenode -- IP:PORT           a dead server goes; its data is rebuilt from the
                                  other replicas
  abort                           abandon the move under way (until reads switch)
  ring    [--json]                the epoch, servers (up or down), voters, the move
                                  under way and each stream's progress and time left
  ring    --servers-file FILE     write the ring to FILE as servers.txt (atomically)
  --wait D    join, leave, replace, removenode: wait up to D    DKVS_RING_WAIT
              for the move to be over (default: return once it has begun)
  --force     replace, removenode: even a server that answers   DKVS_RING_FORCE
  --json, --servers-file FILE also come from DKVS_RING_JSON, DKVS_RING_SERVERS_FILE

Flags of every command (after the command, before "--"):
  -n N    home servers of the key (default 3, or the largest of the R and W given)
  -r R    replies a read waits for (default min(2, N))
  -w W    acknowledgements a write waits for (default min(2, N))
  -c C    consistency: ONE (R=W=1), QUORUM (N/2+1), ALL (N), or LINEARIZABLE
          (strict majority quorums on home servers; reads and writes are
          linearizable); -r and -w win over -c when both are given

Global options (before the command; also from the environment):
  --servers FILE   servers file (default servers.txt)         DKVS_SERVERS
  --timeout D      deadline of one request to one server      DKVS_TIMEOUT
                   (default 500ms)
  --connect-retry D
                   how long a refused connection is tried     DKVS_CONNECT_RETRY
                   again, for a server that is starting
                   (default: until --timeout; 0: never)
  --no-sloppy      writes go to home servers only: no hints   DKVS_NO_SLOPPY
                   on fallback servers when homes are down
  --no-read-repair gets do not update stale replicas          DKVS_NO_READ_REPAIR
  --linearizable   every operation in linearizable mode       DKVS_LINEARIZABLE
  --via IP:PORT    send get, put and del (and those of cat,   DKVS_VIA
                   substr, find) to that server, which runs
                   them on the ring: no servers file needed
                   for them; dump, status and the ring
                   commands still read it
  --user NAME      authenticate as NAME to servers with users DKVS_USER
  --token-file F   the user's token, first line of F          DKVS_TOKEN_FILE
  --token T        the user's token (visible to ps: prefer    DKVS_TOKEN
                   --token-file or DKVS_TOKEN)
  --tls-ca FILE    talk TLS 1.3 to the servers, whose         DKVS_TLS_CA
                   certificates this CA file (PEM) signs
  --tls-cert FILE  with --tls-key: the client certificate     DKVS_TLS_CERT
  --tls-key FILE   (PEM) to present, for servers that         DKVS_TLS_KEY
                   require one

Certificates (crypto/x509; keys are written 0600):
  certs   --out DIR [--client NAME]... [--days N] [--dns NAME]...
                                  a CA (kept in DIR and reused when there), and a
                                  certificate and key for each server of --servers
                                  and each client NAME given

On success a command prints OK (or its output) and exits 0. A failed operation
prints FAIL; every error prints "ERROR: <message>" on standard error and exits
256+code: 129 ERR_IO, 132 ERR_NETWORK, 133 ERR_INVALID_CONFIG,
134 ERR_INVALID_COMMAND, 135 ERR_INVALID_ARGUMENT, 136 ERR_ADDRESS,
137 ERR_NOT_FOUND. A --tls- file that cannot be read exits 129, one with no
valid certificate or key 133; a server whose certificate the CA does not
sign (or that refuses the client's, or speaks no TLS) counts as a server
that does not answer, with the TLS error in the message (132 when too few
answer). The ring commands exit 135 when the ring refuses the
change (an unknown server, one already a member, a move already under way,
too few servers left for N=3, no move to abort), 136 for a bad address,
and 132 when no server answers, no leader is known or a new server does
not answer. A server with users that refuses the token, or the user's
right to the key or command, exits 133 (ERR_INVALID_CONFIG) with
"invalid user or token", "authentication required" or "permission denied"
in the message.
`

func main() {
	args := os.Args
	if filepath.Base(args[0]) == "dkvs-dump-ring" {
		args = append([]string{"dkvs-client", "dump-ring"}, args[1:]...)
	}
	os.Exit(run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr))
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// failed marks an operation that failed after its arguments were
// accepted: FAIL is printed before the error.
type failed struct{ err error }

func (f failed) Error() string { return f.err.Error() }
func (f failed) Unwrap() error { return f.err }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	app := &cli.App{
		Name:            "dkvs-client",
		Usage:           "read and write a dkvs ring",
		HideHelpCommand: true,
		// --help prints the usage text below through urfave/cli.
		CustomAppHelpTemplate: usage,
		Writer:                stdout,
		ErrWriter:             stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "servers", Value: config.DefaultFile, EnvVars: []string{"DKVS_SERVERS"}},
			&cli.DurationFlag{Name: "timeout", Value: coord.DefaultTimeout, EnvVars: []string{"DKVS_TIMEOUT"}},
			&cli.DurationFlag{Name: "connect-retry", EnvVars: []string{"DKVS_CONNECT_RETRY"}},
			&cli.BoolFlag{Name: "no-sloppy", EnvVars: []string{"DKVS_NO_SLOPPY"}},
			&cli.BoolFlag{Name: "no-read-repair", EnvVars: []string{"DKVS_NO_READ_REPAIR"}},
			&cli.BoolFlag{Name: "linearizable", EnvVars: []string{"DKVS_LINEARIZABLE"}},
			&cli.StringFlag{Name: "via", EnvVars: []string{"DKVS_VIA"}},
			&cli.StringFlag{Name: "user", EnvVars: []string{"DKVS_USER"}},
			&cli.StringFlag{Name: "token", EnvVars: []string{"DKVS_TOKEN"}},
			&cli.StringFlag{Name: "token-file", EnvVars: []string{"DKVS_TOKEN_FILE"}},
			&cli.StringFlag{Name: "tls-ca", EnvVars: []string{"DKVS_TLS_CA"}},
			&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"DKVS_TLS_CERT"}},
			&cli.StringFlag{Name: "tls-key", EnvVars: []string{"DKVS_TLS_KEY"}},
		},
		OnUsageError:   e.usageError,
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cmdutil.UsageError("no command")
			}
			return cmdutil.UsageError("unknown command %q", c.Args().First())
		},
		Commands: []*cli.Command{
			e.command("get", e.opCommand(opGet)),
			e.command("put", e.opCommand(opPut)),
			e.command("del", e.opCommand(opDel)),
			e.command("cat", e.opCommand(opCat)),
			e.command("substr", e.opCommand(opSubstr)),
			e.command("find", e.opCommand(opFind)),
			e.command("dump", e.dump, &cli.StringFlag{Name: "server", Usage: "IP:PORT of one server"}),
			e.command("dump-ring", e.sessionCommand((*session).dumpRing)),
			e.command("status", e.sessionCommand((*session).status)),
			e.command("shell", e.shell),
			e.benchCommand(),
			e.ringChangeCommand(ringChangeCommands[0]),
			e.ringChangeCommand(ringChangeCommands[1]),
			e.ringChangeCommand(ringChangeCommands[2]),
			e.ringChangeCommand(ringChangeCommands[3]),
			e.ringChangeCommand(ringChangeCommands[4]),
			e.command("ring", e.ringShow, ringShowFlags()...),
			e.userCommand(),
			e.certsCommand(),
			e.command("help", func(*cli.Context, []string) error {
				fmt.Fprint(stdout, usage)
				return nil
			}),
		},
	}
	err := app.Run(args)
	var f failed
	if errors.As(err, &f) {
		fmt.Fprintln(stdout, "FAIL")
	}
	if err == nil {
		return 0
	}
	status := cmdutil.Report(stderr, err)
	fmt.Fprint(stdout, usage)
	return status
}

// usageError turns a flag-parsing error into ERR_INVALID_COMMAND, except
// -h and --help, which print the usage text.
func (e *env) usageError(_ *cli.Context, err error, _ bool) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(e.stdout, usage)
		return nil
	}
	return cmdutil.UsageError("%v", err)
}

// command builds a command that accepts the quorum flags (plus extra) and
// runs fn with the arguments that followed "--".
func (e *env) command(name string, fn func(c *cli.Context, args []string) error, extra ...cli.Flag) *cli.Command {
	return &cli.Command{
		Name:            name,
		HideHelp:        true,
		HideHelpCommand: true,
		Flags:           append(quorumFlags(), extra...),
		OnUsageError:    e.usageError,
		Action: func(c *cli.Context) error {
			args, err := commandArgs(c)
			if err != nil {
				return err
			}
			return fn(c, args)
		},
	}
}

// open returns a client for the ring of --servers.
func (e *env) open(c *cli.Context) (*dkvs.Client, error) {
	opts, err := e.clientOptions(c)
	if err != nil {
		return nil, err
	}
	return e.openWith(c, opts)
}

// openWith returns a client with the given options for the ring of
// --servers.
func (e *env) openWith(c *cli.Context, opts dkvs.Options) (*dkvs.Client, error) {
	servers, err := config.Load(c.String("servers"))
	if err != nil {
		// Through --via the ring need not be known: a missing default
		// servers file is no error then (commands that need it say so).
		if opts.Via == "" || c.IsSet("servers") || !errors.Is(err, errcode.IO) {
			return nil, err
		}
		servers = nil
	}
	return dkvs.New(servers, &opts)
}

// clientOptions reads the global options that configure the client.
func (e *env) clientOptions(c *cli.Context) (dkvs.Options, error) {
	t := c.Duration("timeout")
	if t <= 0 {
		return dkvs.Options{}, cmdutil.UsageError("--timeout must be positive")
	}
	retry := c.Duration("connect-retry") // not given: until the deadline
	if retry < 0 {
		return dkvs.Options{}, cmdutil.UsageError("--connect-retry must not be negative")
	}
	if retry == 0 && c.IsSet("connect-retry") {
		retry = -1 // never
	}
	opts := dkvs.Options{
		Timeout:             t,
		RefusedRetry:        retry,
		DisableSloppyQuorum: c.Bool("no-sloppy"),
		DisableReadRepair:   c.Bool("no-read-repair"),
		Via:                 c.String("via"),
	}
	if opts.Via != "" {
		if _, _, err := net.SplitHostPort(opts.Via); err != nil {
			return dkvs.Options{}, cmdutil.UsageError("--via %q: want IP:PORT", opts.Via)
		}
	}
	if err := credentials(c, &opts); err != nil {
		return dkvs.Options{}, err
	}
	cfg, err := tlsOptions(c)
	if err != nil {
		return dkvs.Options{}, err
	}
	opts.TLS = cfg
	return opts, nil
}

// withSession parses the quorum flags, opens the client, runs fn on a
// session and closes the client, which waits for replica writes still
// under way so that a put reaches every live home server before the
// process exits.
func (e *env) withSession(c *cli.Context, fn func(s *session) error) error {
	q, err := requestOf(c)
	if err != nil {
		return err
	}
	cl, err := e.open(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(&session{e: e, cl: cl, req: q})
}

// sessionCommand is a command without arguments that runs fn on a fresh
// client.
func (e *env) sessionCommand(fn func(s *session) error) func(c *cli.Context, args []string) error {
	return func(c *cli.Context, args []string) error {
		if err := wantArgs(args, 0, 0, "no arguments"); err != nil {
			return err
		}
		return e.withSession(c, fn)
	}
}

// opCommand is the command of an operation: arguments checked first (a
// command-line error before anything is sent), then the operation on a
// fresh client.
func (e *env) opCommand(o *op) func(c *cli.Context, args []string) error {
	return func(c *cli.Context, args []string) error {
		if err := o.check(args); err != nil {
			return err
		}
		return e.withSession(c, func(s *session) error { return o.run(s, args) })
	}
}
