// Command dkvs-client reads and writes a dkvs ring:
//
//	dkvs-client <command> [-r R] [-w W] [-n N] -- <arguments>
//
// Its command line, outputs and exit codes are those of cs202.md sections
// 3 and 4; run "dkvs-client help" for the commands. Started under the name
// dkvs-dump-ring it runs the dump-ring command.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

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
  status                          print every server: up or down, keys, hints held,
                                  last anti-entropy with each peer (exit 132 if one is down)
  bench   [flags]                 run a workload and print throughput and latency
                                  percentiles ("dkvs-client bench -h" for its flags)
  help                            print this text

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
  --no-sloppy      writes go to home servers only: no hints   DKVS_NO_SLOPPY
                   on fallback servers when homes are down
  --no-read-repair gets do not update stale replicas          DKVS_NO_READ_REPAIR
  --linearizable   every operation in linearizable mode       DKVS_LINEARIZABLE

On success a command prints OK (or its output) and exits 0. A failed operation
prints FAIL; every error prints "ERROR: <message>" on standard error and exits
256+code: 129 ERR_IO, 132 ERR_NETWORK, 133 ERR_INVALID_CONFIG,
134 ERR_INVALID_COMMAND, 135 ERR_INVALID_ARGUMENT, 136 ERR_ADDRESS,
137 ERR_NOT_FOUND.
`

func main() {
	args := os.Args
	if filepath.Base(args[0]) == "dkvs-dump-ring" {
		args = append([]string{"dkvs-client", "dump-ring"}, args[1:]...)
	}
	os.Exit(run(context.Background(), args, os.Stdout, os.Stderr))
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

// failed marks an operation that failed after its arguments were
// accepted: FAIL is printed before the error.
type failed struct{ err error }

func (f failed) Error() string { return f.err.Error() }
func (f failed) Unwrap() error { return f.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
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
			&cli.BoolFlag{Name: "no-sloppy", EnvVars: []string{"DKVS_NO_SLOPPY"}},
			&cli.BoolFlag{Name: "no-read-repair", EnvVars: []string{"DKVS_NO_READ_REPAIR"}},
			&cli.BoolFlag{Name: "linearizable", EnvVars: []string{"DKVS_LINEARIZABLE"}},
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
			e.command("get", e.get),
			e.command("put", e.put),
			e.command("del", e.del),
			e.command("cat", e.cat),
			e.command("substr", e.substr),
			e.command("find", e.find),
			e.command("dump", e.dump, &cli.StringFlag{Name: "server", Usage: "IP:PORT of one server"}),
			e.command("dump-ring", e.dumpRing),
			e.command("status", e.status),
			e.benchCommand(),
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
	return dkvs.Open(c.String("servers"), &opts)
}

// clientOptions reads the global options that configure the client.
func (e *env) clientOptions(c *cli.Context) (dkvs.Options, error) {
	t := c.Duration("timeout")
	if t <= 0 {
		return dkvs.Options{}, cmdutil.UsageError("--timeout must be positive")
	}
	return dkvs.Options{
		Timeout:             t,
		DisableSloppyQuorum: c.Bool("no-sloppy"),
		DisableReadRepair:   c.Bool("no-read-repair"),
	}, nil
}

// withClient parses the quorum flags, opens the client, runs fn and closes
// the client, which waits for replica writes still under way so that a
// put reaches every live home server before the process exits.
func (e *env) withClient(c *cli.Context, fn func(cl *dkvs.Client, q dkvs.Request) error) error {
	q, err := requestOf(c)
	if err != nil {
		return err
	}
	cl, err := e.open(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := fn(cl, q); err != nil {
		return failed{err}
	}
	return nil
}

func (e *env) get(c *cli.Context, args []string) error {
	if err := wantArgs(args, 1, 1, "key"); err != nil {
		return err
	}
	return e.withClient(c, func(cl *dkvs.Client, q dkvs.Request) error {
		v, err := cl.GetWith(e.ctx, []byte(args[0]), q)
		if err != nil {
			return err
		}
		return e.ok(v)
	})
}

func (e *env) ok(value []byte) error {
	var b bytes.Buffer
	b.Grow(len(value) + 4)
	if value == nil {
		b.WriteString("OK\n")
	} else {
		b.WriteString("OK ")
		b.Write(value)
		b.WriteByte('\n')
	}
	_, err := e.stdout.Write(b.Bytes())
	return err
}

func (e *env) put(c *cli.Context, args []string) error {
	if err := wantArgs(args, 2, 2, "key value"); err != nil {
		return err
	}
	return e.withClient(c, func(cl *dkvs.Client, q dkvs.Request) error {
		if err := cl.PutWith(e.ctx, []byte(args[0]), []byte(args[1]), q); err != nil {
			return err
		}
		return e.ok(nil)
	})
}

func (e *env) del(c *cli.Context, args []string) error {
	if err := wantArgs(args, 1, 1, "key"); err != nil {
		return err
	}
	return e.withClient(c, func(cl *dkvs.Client, q dkvs.Request) error {
		if err := cl.DeleteWith(e.ctx, []byte(args[0]), q); err != nil {
			return err
		}
		return e.ok(nil)
	})
}

func (e *env) cat(c *cli.Context, args []string) error {
	if err := wantArgs(args, 2, -1, "key1 ... keyK dest"); err != nil {
		return err
	}
	return e.withClient(c, func(cl *dkvs.Client, q dkvs.Request) error {
		var joined []byte
		for _, k := range args[:len(args)-1] {
			v, err := cl.GetWith(e.ctx, []byte(k), q)
			if err != nil {
				return err
			}
			joined = append(joined, v...)
		}
		if err := cl.PutWith(e.ctx, []byte(args[len(args)-1]), joined, q); err != nil {
			return err
		}
		return e.ok(nil)
	})
}

// substrRange returns the byte range [start, start+length) of a value of
// size n that substr selects, or an error for a range outside the value.
func substrRange(n, pos, length int) (int, int, error) {
	if length < 0 {
		return 0, 0, errcode.Errorf(errcode.InvalidCommand, "length %d is negative", length)
	}
	start := pos
	if pos < 0 {
		start = n + pos
	}
	if start < 0 || start > n || length > n-start {
		return 0, 0, errcode.Errorf(errcode.InvalidCommand, "position %d and length %d fall outside a value of %d bytes", pos, length, n)
	}
	return start, start + length, nil
}

func (e *env) substr(c *cli.Context, args []string) error {
	if err := wantArgs(args, 4, 4, "key pos len dest"); err != nil {
		return err
	}
	pos, err1 := strconv.Atoi(args[1])
	length, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		return cmdutil.UsageError("position %q and length %q must be whole numbers", args[1], args[2])
	}
	return e.withClient(c, func(cl *dkvs.Client, q dkvs.Request) error {
		v, err := cl.GetWith(e.ctx, []byte(args[0]), q)
		if err != nil {
			return err
		}
		from, to, err := substrRange(len(v), pos, length)
		if err != nil {
			return err
		}
		if err := cl.PutWith(e.ctx, []byte(args[3]), v[from:to], q); err != nil {
			return err
		}
		return e.ok(nil)
	})
}

func (e *env) find(c *cli.Context, args []string) error {
	if err := wantArgs(args, 2, 2, "haystack_key needle_key"); err != nil {
		return err
	}
	return e.withClient(c, func(cl *dkvs.Client, q dkvs.Request) error {
		hay, err := cl.GetWith(e.ctx, []byte(args[0]), q)
		if err != nil {
			return err
		}
		needle, err := cl.GetWith(e.ctx, []byte(args[1]), q)
		if err != nil {
			return err
		}
		return e.ok([]byte(strconv.Itoa(bytes.Index(hay, needle))))
	})
}
