package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// The operator's commands on the ring: join, leave, replace, removenode
// and abort change it (through any server, which hands the change to the
// consensus), ring shows it. They check their arguments first (a bad
// address is ERR_ADDRESS, anything else malformed ERR_INVALID_COMMAND),
// then ask the ring, and report the ring's refusals with the code they
// carry (ERR_INVALID_ARGUMENT: an unknown server, one already a member, a
// move already under way, too few servers left) and the network's with
// ERR_NETWORK (no server answers, no leader, a new server that does not
// answer).

// ringClient is what the ring commands need of a client: *dkvs.Client,
// or a fake in tests.
type ringClient interface {
	FetchRing(ctx context.Context) (topology.State, error)
	RingOf(ctx context.Context, addr string) (topology.State, error)
	ChangeRingAt(ctx context.Context, addr string, cmd topology.Command) (topology.State, error)
	Stats(ctx context.Context, addr string) (wire.Stats, error)
}

// liveClient is a ringClient over the Go client.
type liveClient struct{ *dkvs.Client }

// Deadlines of the ring commands. A change goes through the consensus:
// the server asked hands it to the leader, which has it committed by a
// majority of the voters (10 s at most) before it answers.
const (
	// probeTimeout bounds the look at one server (its ring, its stats):
	// a server that is stopped, not dead, holds a connection without
	// answering.
	probeTimeout = 3 * time.Second
	// attemptTimeout bounds the change through one server, and
	// changeTimeout through all of them.
	attemptTimeout = 15 * time.Second
	changeTimeout  = 30 * time.Second
)

// homesN is the number of homes the commands reason about (shares,
// warnings, estimates): the default N, that of nearly every key.
const homesN = quorum.DefaultN

// ringChange is a change of the ring as the command line asked it.
type ringChange struct {
	op topology.Op
	// addr is the server that leaves, is replaced or is removed.
	addr string
	// server is the server that joins or replaces addr; a Count of 0 (a
	// replace without COUNT) takes the replaced server's.
	server config.Server
}

// ringChangeCommand describes one command that changes the ring.
type ringChangeCommand struct {
	name, usage string
	min, max    int
	parse       func(args []string) (ringChange, error)
	// force and wait say whether the command takes --force and --wait.
	force, wait bool
}

var ringChangeCommands = []ringChangeCommand{
	{name: "join", usage: "IP PORT COUNT", min: 3, max: 3, wait: true, parse: parseJoin},
	{name: "leave", usage: "IP:PORT", min: 1, max: 1, wait: true, parse: func(a []string) (ringChange, error) {
		addr, err := parseAddr(a[0])
		return ringChange{op: topology.OpLeave, addr: addr}, err
	}},
	{name: "replace", usage: "DEAD_IP:PORT NEW_IP:PORT [COUNT]", min: 2, max: 3, wait: true, force: true, parse: parseReplace},
	{name: "removenode", usage: "IP:PORT", min: 1, max: 1, wait: true, force: true, parse: func(a []string) (ringChange, error) {
		addr, err := parseAddr(a[0])
		return ringChange{op: topology.OpRemove, addr: addr}, err
	}},
	{name: "abort", usage: "no arguments", min: 0, max: 0, parse: func([]string) (ringChange, error) {
		return ringChange{op: topology.OpAbort}, nil
	}},
}

// parseAddr checks an IP:PORT argument: anything but a dotted IPv4
// address and a port from 1 to 65535 is ERR_ADDRESS.
func parseAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", errcode.Errorf(errcode.Address, "%q is not IP:PORT", s)
	}
	return joinAddr(host, port)
}

// joinAddr checks an IP and a PORT given apart and returns IP:PORT.
func joinAddr(ip, port string) (string, error) {
	if _, err := config.ParseIP(ip); err != nil {
		return "", err // ERR_ADDRESS already
	}
	p, err := config.ParsePort(port)
	if err != nil {
		return "", errcode.Errorf(errcode.Address, "port %q is not a number from 1 to 65535", port)
	}
	return config.Server{IP: ip, Port: p}.Addr(), nil
}

// parseCount checks a COUNT argument.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > config.MaxCount || strconv.Itoa(n) != s {
		return 0, cmdutil.UsageError("COUNT %q is not a whole number from 1 to %d", s, config.MaxCount)
	}
	return n, nil
}

func serverOf(addr string, count int) config.Server {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := config.ParsePort(port)
	return config.Server{IP: host, Port: p, Count: count}
}

func parseJoin(a []string) (ringChange, error) {
	addr, err := joinAddr(a[0], a[1])
	if err != nil {
		return ringChange{}, err
	}
	count, err := parseCount(a[2])
	if err != nil {
		return ringChange{}, err
	}
	return ringChange{op: topology.OpJoin, server: serverOf(addr, count)}, nil
}

func parseReplace(a []string) (ringChange, error) {
	dead, err := parseAddr(a[0])
	if err != nil {
		return ringChange{}, err
	}
	addr, err := parseAddr(a[1])
	if err != nil {
		return ringChange{}, err
	}
	count := 0
	if len(a) == 3 {
		if count, err = parseCount(a[2]); err != nil {
			return ringChange{}, err
		}
	}
	return ringChange{op: topology.OpReplace, addr: dead, server: serverOf(addr, count)}, nil
}

// ringFlags are the flags of the ring commands, besides the quorum flags
// every command accepts (and these ignore).
func (rc ringChangeCommand) flags() []cli.Flag {
	var out []cli.Flag
	if rc.wait {
		out = append(out, &cli.DurationFlag{Name: "wait", EnvVars: []string{"DKVS_RING_WAIT"}})
	}
	if rc.force {
		out = append(out, &cli.BoolFlag{Name: "force", EnvVars: []string{"DKVS_RING_FORCE"}})
	}
	return out
}

// command builds the cli command.
func (e *env) ringChangeCommand(rc ringChangeCommand) *cli.Command {
	return e.command(rc.name, func(c *cli.Context, args []string) error {
		if err := wantArgs(args, rc.min, rc.max, rc.usage); err != nil {
			return err
		}
		ch, err := rc.parse(args)
		if err != nil {
			return err
		}
		wait := time.Duration(0)
		if rc.wait {
			if wait = c.Duration("wait"); wait < 0 {
				return cmdutil.UsageError("--wait must not be negative")
			}
		}
		opts := changeOptions{wait: wait, force: rc.force && c.Bool("force"), poll: 500 * time.Millisecond}
		cl, err := e.openRing(c)
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := changeRing(e.ctx, cl, ch, opts, e.stdout, e.stderr); err != nil {
			return failed{err}
		}
		return nil
	}, rc.flags()...)
}

// openRing opens a client for the ring commands. A server that refuses
// connections is taken as down at once, not tried again until the
// deadline as for the data commands (unless --connect-retry says
// otherwise): dead servers are what these commands are often about.
func (e *env) openRing(c *cli.Context) (liveClient, error) {
	opts, err := e.clientOptions(c)
	if err != nil {
		return liveClient{}, err
	}
	if !c.IsSet("connect-retry") {
		opts.RefusedRetry = -1
	}
	cl, err := e.openWith(c, opts)
	return liveClient{cl}, err
}

// changeOptions tune changeRing.
type changeOptions struct {
	// wait, when positive, waits up to that long for the move to be over.
	wait time.Duration
	// force replaces or removes a server that still answers.
	force bool
	// poll is the interval of the looks at the ring while waiting.
	poll time.Duration
}

// changeRing runs one change of the ring: it reads the ring, checks what
// only the command line can (the new server answers, the dead one does
// not, the COUNT of the new one), warns of a COUNT far from the others',
// sends the change, and prints the ring's answer, or waits for the move
// to be over.
func changeRing(ctx context.Context, rc ringClient, ch ringChange, opts changeOptions, stdout, stderr io.Writer) error {
	st, err := fetchRing(ctx, rc)
	if err != nil {
		return err
	}
	// Which servers answer: the change goes to those, and a server to
	// replace or remove must not.
	down := probe(ctx, rc, st.AllServers())
	cmd := topology.Command{Op: ch.op, Addr: ch.addr, Server: ch.server}
	switch ch.op {
	case topology.OpAbort:
		if st.Move == nil {
			return fmt.Errorf("abort (ring epoch %d): %w", st.Epoch, topology.ErrNoMove)
		}
		cmd.MoveID = st.Move.ID
	case topology.OpJoin:
		if !st.IsMember(ch.server.Addr()) {
			if st.Move == nil {
				warnCount(stderr, st.Members, ch.server)
			}
			if err := answers(ctx, rc, ch.server.Addr()); err != nil {
				return err
			}
		}
	case topology.OpReplace:
		i := config.Find(st.Members, ch.addr)
		if i < 0 {
			return fmt.Errorf("replace: %s: %w", ch.addr, topology.ErrUnknownServer)
		}
		if cmd.Server.Count == 0 {
			cmd.Server.Count = st.Members[i].Count
		}
		if err := mustBeDead(ch.op, ch.addr, down, opts.force); err != nil {
			return err
		}
		if !st.IsMember(cmd.Server.Addr()) {
			if st.Move == nil {
				warnCount(stderr, slices.Delete(slices.Clone(st.Members), i, i+1), cmd.Server)
			}
			if err := answers(ctx, rc, cmd.Server.Addr()); err != nil {
				return err
			}
		}
	case topology.OpRemove:
		if config.Find(st.Members, ch.addr) >= 0 {
			if err := mustBeDead(ch.op, ch.addr, down, opts.force); err != nil {
				return err
			}
		}
	}
	after, err := send(ctx, rc, st, down, cmd)
	if err != nil {
		return err
	}
	if ch.op == topology.OpAbort {
		fmt.Fprintf(stdout, "OK epoch %d: %s aborted; what the new homes received is dropped after the cleanup grace\n",
			after.Epoch, describeMove(st.Move))
		return nil
	}
	if after.Move == nil {
		return fmt.Errorf("ring %s: the ring answered with no move under way (%s): %w", ch.op, after, errcode.Runtime)
	}
	what := describeMove(after.Move)
	if opts.wait <= 0 {
		fmt.Fprintf(stdout, "OK epoch %d: %s begun (dkvs-client ring shows its progress)\n", after.Epoch, what)
		return nil
	}
	fmt.Fprintf(stderr, "epoch %d: %s begun\n", after.Epoch, what)
	end, err := waitMove(ctx, rc, after, opts, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK epoch %d: %s done; the ring has %d servers\n", end.Epoch, what, len(end.Members))
	return nil
}

// fetchRing reads the ring from the first server that answers; its
// failure, one per server asked, is put on one line.
func fetchRing(ctx context.Context, rc ringClient) (topology.State, error) {
	st, err := rc.FetchRing(ctx)
	if err != nil {
		code := errcode.Of(err)
		suffix := ": " + code.Error()
		detail := strings.ReplaceAll(strings.ReplaceAll(err.Error(), suffix+"\n", "; "), "\n", "; ")
		for strings.HasSuffix(detail, suffix) {
			detail = strings.TrimSuffix(detail, suffix)
		}
		return st, fmt.Errorf("%s: %w", detail, code)
	}
	return st, nil
}

// send sends the change to the servers of st that answered, one after
// the other, until one makes it or the ring refuses it. A server that
// fails (it stopped, no leader is known) may have handed the change on
// before it did: a refusal after such a failure that finds the change
// made is a success.
func send(ctx context.Context, rc ringClient, st topology.State, down map[string]error, cmd topology.Command) (topology.State, error) {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	var errs []string
	for _, sv := range st.AllServers() {
		addr := sv.Addr()
		if _, isDown := down[addr]; isDown || addr == cmd.Server.Addr() && !st.IsMember(addr) {
			continue // the joining server knows no ring yet
		}
		actx, acancel := context.WithTimeout(ctx, attemptTimeout)
		after, err := rc.ChangeRingAt(actx, addr, cmd)
		acancel()
		if err == nil {
			return after, nil
		}
		if errcode.Of(err) != errcode.Network {
			if len(errs) > 0 {
				if now, ferr := rc.FetchRing(ctx); ferr == nil && made(now, st, cmd) {
					return now, nil
				}
			}
			return topology.State{}, err // the ring refused it
		}
		errs = append(errs, errcode.Detail(err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return topology.State{}, fmt.Errorf("ring %s: no server of the ring answers: %w", cmd.Op, errcode.Network)
	}
	return topology.State{}, fmt.Errorf("ring %s: no server made the change: it needs a leader of the consensus, elected by a majority "+
		"of the voters (%s); a server that took it before failing may still make it (dkvs-client ring shows whether it did): %s: %w",
		cmd.Op, strings.Join(st.Voters(), ", "), strings.Join(errs, "; "), errcode.Network)
}

// made reports whether the ring now holds the change cmd asked of the
// ring before: the move it begins, or the end of the move it aborts.
func made(now, before topology.State, cmd topology.Command) bool {
	if cmd.Op == topology.OpAbort {
		return now.Epoch > before.Epoch && (now.Move == nil || now.Move.ID != cmd.MoveID)
	}
	mv := now.Move
	if mv == nil || mv.ID <= before.Epoch {
		return false
	}
	switch cmd.Op {
	case topology.OpJoin:
		return mv.Kind == topology.Join && mv.Server == cmd.Server.Addr()
	case topology.OpReplace:
		return mv.Kind == topology.Replace && mv.Server == cmd.Addr && mv.New == cmd.Server.Addr()
	case topology.OpLeave:
		return mv.Kind == topology.Leave && mv.Server == cmd.Addr
	case topology.OpRemove:
		return mv.Kind == topology.Remove && mv.Server == cmd.Addr
	}
	return false
}

// describeMove says what a move does, in a few words.
func describeMove(mv *topology.Move) string {
	out := fmt.Sprintf("move %d, %s of %s", mv.ID, mv.Kind, mv.Server)
	if mv.New != "" {
		out += " by " + mv.New
	}
	return out
}

// warnCount prints topology.JoinWarning on stderr: a COUNT that would make
// the new server's share far from its peers' is allowed, but worth a look.
func warnCount(stderr io.Writer, current []config.Server, server config.Server) {
	if w := topology.JoinWarning(current, server, homesN); w != "" {
		fmt.Fprintf(stderr, "WARNING: %s\n", w)
	}
}

// probe asks every server for its stats at once and returns why those
// that did not answer within probeTimeout did not.
func probe(ctx context.Context, rc ringClient, servers []config.Server) map[string]error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	down := map[string]error{}
	for _, sv := range servers {
		wg.Add(1)
		go func(addr string) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if _, err := rc.Stats(pctx, addr); err != nil {
				mu.Lock()
				down[addr] = err
				mu.Unlock()
			}
		}(sv.Addr())
	}
	wg.Wait()
	return down
}

// answers checks that a server about to join the ring answers: writes to
// it would fail all through the move otherwise (the ring checks it too;
// asking first gives the plainer message).
func answers(ctx context.Context, rc ringClient, addr string) error {
	if err := probe(ctx, rc, []config.Server{serverOf(addr, 1)})[addr]; err != nil {
		return fmt.Errorf("%s does not answer (start it first: dkvs-server IP PORT, with the ring's servers.txt as --servers): %w: %w",
			addr, err, errcode.Network)
	}
	return nil
}

// mustBeDead refuses to replace or remove a server that answers, unless
// forced: its data would be rebuilt from the other replicas while it
// still serves, and a live server should leave instead (it hands its
// data over itself).
func mustBeDead(op topology.Op, addr string, down map[string]error, force bool) error {
	if _, isDown := down[addr]; isDown || force {
		return nil
	}
	return errcode.Errorf(errcode.InvalidArg, "%s: %s still answers: stop it first, or let it leave (dkvs-client leave -- %s); --force %s it anyway",
		op, addr, addr, op)
}

// waitMove polls the ring until the move that began with st is over, and
// returns the ring then. Phases are told on stderr as they come. A ring
// that cannot be read for a while is no reason to stop: the move goes on
// without this client.
func waitMove(ctx context.Context, rc ringClient, st topology.State, opts changeOptions, stderr io.Writer) (topology.State, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.wait)
	defer cancel()
	mv := *st.Move
	phase := mv.Phase
	sawReadNew := phase == topology.ReadNew
	var lastErr error
	t := time.NewTicker(opts.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return st, fmt.Errorf("%s: not over after %v (phase %s; the ring could not be read: %v); it goes on: %w",
					describeMove(&mv), opts.wait, phase, lastErr, errcode.Network)
			}
			return st, fmt.Errorf("%s: not over after %v (phase %s); it goes on, dkvs-client ring shows why: %w",
				describeMove(&mv), opts.wait, phase, errcode.Network)
		case <-t.C:
		}
		cur, err := rc.FetchRing(ctx)
		if err != nil {
			lastErr = err
			continue
		}
		lastErr = nil
		st = cur
		if cur.Move != nil && cur.Move.ID == mv.ID {
			if cur.Move.Phase != phase {
				phase = cur.Move.Phase
				sawReadNew = sawReadNew || phase == topology.ReadNew
				fmt.Fprintf(stderr, "epoch %d: %s: phase %s\n", cur.Epoch, describeMove(&mv), phase)
			}
			continue
		}
		if cur.Epoch <= mv.ID {
			continue // a server behind: ask again
		}
		// The move is over: done if reads had switched (it can only
		// finish then), or if the ring has the servers the move led to.
		if sawReadNew || reached(cur, mv) {
			return cur, nil
		}
		return cur, fmt.Errorf("%s was aborted (ring epoch %d): %w", describeMove(&mv), cur.Epoch, errcode.Runtime)
	}
}

// reached reports whether the ring of st has what the move led to: the
// joining or new server in it, the leaving, replaced or removed one out.
func reached(st topology.State, mv topology.Move) bool {
	in := func(addr string) bool { return config.Find(st.Members, addr) >= 0 }
	switch mv.Kind {
	case topology.Join:
		return in(mv.Server)
	case topology.Replace:
		return in(mv.New) && !in(mv.Server)
	}
	return !in(mv.Server)
}
