// Package harness runs real dkvs processes for the black-box tests: it
// writes a servers.txt, starts the built dkvs-server binaries on
// 127.0.0.1, kills, pauses and restarts them, and runs dkvs-client.
//
// The binaries come from done/ (built by make) or from the directory in
// $DKVS_BIN. Every wait polls with a deadline.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// BinDir returns the directory holding the built binaries.
func BinDir() string {
	if d := os.Getenv("DKVS_BIN"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "done")
}

// Bin returns the path of a built program, failing the test if missing.
func Bin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(BinDir(), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not built (run make): %v", p, err)
	}
	return p
}

// FreePorts returns n distinct TCP ports that were free a moment ago, and
// free on UDP too (servers listen on both).
func FreePorts(t testing.TB, n int) []uint16 {
	t.Helper()
	ports, err := Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// The range Ports picks from.
const portLow, portHigh = 20000, 32000

// Ports is FreePorts for programs that are not tests.
func Ports(n int) ([]uint16, error) {
	var ports []uint16
	var hold []net.Listener
	defer func() {
		for _, l := range hold {
			l.Close()
		}
	}()
	// Ports below Linux's ephemeral range (32768-60999): a port the
	// kernel hands out for ":0" is also one it gives outgoing connections
	// their local end from, so between this check and the server's bind a
	// client's connection could take it ("address already in use", seen in
	// CI). Below the range only listeners take ports.
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			return nil, fmt.Errorf("no %d free ports in %d-%d", n, portLow, portHigh)
		}
		p := uint16(portLow + rand.IntN(portHigh-portLow))
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		hold = append(hold, l)
		if u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			u.Close()
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// Ring is a set of server processes sharing one servers.txt.
type Ring struct {
	t       testing.TB
	Dir     string // working directory: servers.txt and data directories
	Servers []config.Server
	// Args are extra dkvs-server options for every start (before IP).
	Args []string
	// ServerArgs are extra options for one server, by index.
	ServerArgs map[int][]string
	// Listen is the address a server binds (--listen) when it differs from
	// its address in servers.txt (a proxy sits there), by index.
	Listen map[int]string
	// ClientTLS, if set, is what the harness's own pings and stats
	// requests talk to the servers with (see Secure).
	ClientTLS *tls.Config
	// ClientArgs are global options of every Client run (before the
	// command), e.g. --tls-ca.
	ClientArgs []string

	mu    sync.Mutex
	procs map[int]*proc
	logs  map[int]*lockedWriter // kept across restarts
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *lockedWriter
}

// NewRing prepares (does not start) a ring of len(counts) servers on free
// ports, with the given COUNTs.
func NewRing(t testing.TB, counts ...int) *Ring {
	t.Helper()
	ports := FreePorts(t, len(counts))
	var servers []config.Server
	for i, c := range counts {
		servers = append(servers, config.Server{IP: "127.0.0.1", Port: ports[i], Count: c})
	}
	return NewRingOf(t, servers)
}

// NewRingOf prepares a ring of the given servers.
func NewRingOf(t testing.TB, servers []config.Server) *Ring {
	t.Helper()
	r := &Ring{t: t, Dir: t.TempDir(), Servers: servers, procs: map[int]*proc{}, logs: map[int]*lockedWriter{}, ServerArgs: map[int][]string{}, Listen: map[int]string{}}
	r.WriteServers(servers)
	t.Cleanup(r.KillAll)
	return r
}

// WriteServers rewrites servers.txt.
func (r *Ring) WriteServers(servers []config.Server) {
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "%s %d %d\n", s.IP, s.Port, s.Count)
	}
	if err := os.WriteFile(r.ServersFile(), []byte(b.String()), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// ServersFile returns the path of servers.txt.
func (r *Ring) ServersFile() string { return filepath.Join(r.Dir, "servers.txt") }

// Addr returns "IP:PORT" of server i.
func (r *Ring) Addr(i int) string { return r.Servers[i].Addr() }

// DataDir returns the data directory of server i.
func (r *Ring) DataDir(i int) string {
	return filepath.Join(r.Dir, fmt.Sprintf("data-%d", r.Servers[i].Port))
}

// WithRESP gives every server a Redis-protocol port (--resp) on a free
// port, plus the extra options given, and returns the RESP addresses by
// server index.
func (r *Ring) WithRESP(extra ...string) []string {
	r.t.Helper()
	taken := map[uint16]bool{}
	for _, s := range r.Servers {
		taken[s.Port] = true
	}
	var ports []uint16
	for len(ports) < len(r.Servers) {
		// The ring's ports are free until its servers start: skip them.
		for _, p := range FreePorts(r.t, len(r.Servers)) {
			if !taken[p] && len(ports) < len(r.Servers) {
				taken[p] = true
				ports = append(ports, p)
			}
		}
	}
	addrs := make([]string, len(r.Servers))
	for i := range r.Servers {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", ports[i])
		r.ServerArgs[i] = append(append(r.ServerArgs[i], "--resp", addrs[i]), extra...)
	}
	return addrs
}

// Start starts server i with pairs stored at start, and waits until it
// answers a ping.
func (r *Ring) Start(i int, pairs ...string) {
	r.t.Helper()
	if err := r.TryStart(i, pairs...); err != nil {
		r.t.Fatal(err)
	}
}

// TryStart is Start returning the error.
func (r *Ring) TryStart(i int, pairs ...string) error {
	s := r.Servers[i]
	if r.Running(i) {
		return fmt.Errorf("server %s already running", s.Addr())
	}
	// Another process on the port would answer our pings in its place.
	bind := s.Addr()
	if l := r.Listen[i]; l != "" {
		bind = l
	}
	if nc, err := net.DialTimeout("tcp", bind, time.Second); err == nil {
		nc.Close()
		return fmt.Errorf("port of %s (%s) is taken by another process", s.Addr(), bind)
	}
	args := append([]string{"--servers", r.ServersFile(), "--data-dir", r.DataDir(i)}, r.Args...)
	if l := r.Listen[i]; l != "" {
		args = append(args, "--listen", l)
	}
	args = append(args, r.ServerArgs[i]...)
	args = append(args, s.IP, strconv.Itoa(int(s.Port)))
	args = append(args, pairs...)
	cmd := exec.Command(Bin(r.t, "dkvs-server"), args...)
	cmd.Dir = r.Dir
	r.mu.Lock()
	lw := r.logs[i]
	if lw == nil {
		lw = &lockedWriter{w: &bytes.Buffer{}}
		r.logs[i] = lw
	}
	r.mu.Unlock()
	fmt.Fprintf(lw, "--- start %s %s\n", s.Addr(), strings.Join(args, " "))
	p := &proc{cmd: cmd, done: make(chan struct{}), log: lw}
	cmd.Stdout = lw
	cmd.Stderr = lw
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	r.mu.Lock()
	r.procs[i] = p
	r.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if PingWith(s.Addr(), 200*time.Millisecond, r.ClientTLS) == nil {
			return nil
		}
		select {
		case <-p.done:
			r.mu.Lock()
			delete(r.procs, i)
			r.mu.Unlock()
			return fmt.Errorf("server %s exited at start: %v\n%s", s.Addr(), p.err, r.Log(i))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server %s not answering after 20s\n%s", s.Addr(), r.Log(i))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StartAll starts every server.
func (r *Ring) StartAll() {
	r.t.Helper()
	for i := range r.Servers {
		r.Start(i)
	}
}

// Log returns what server i wrote on stdout and stderr, over all its runs.
func (r *Ring) Log(i int) string {
	r.mu.Lock()
	lw := r.logs[i]
	r.mu.Unlock()
	if lw == nil {
		return ""
	}
	return lw.String()
}

// Signal sends sig to server i.
func (r *Ring) Signal(i int, sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	p := r.procs[i]
	r.mu.Unlock()
	if p == nil {
		r.t.Fatalf("server %d not started", i)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v to %s: %v", sig, r.Addr(i), err)
	}
}

// Kill sends SIGKILL to server i and waits for it to die.
func (r *Ring) Kill(i int) {
	r.t.Helper()
	r.Signal(i, syscall.SIGCONT) // a paused process must run to die cleanly in the test's accounting
	r.Signal(i, syscall.SIGKILL)
	r.wait(i, 10*time.Second)
}

// Stop pauses server i (SIGSTOP) and returns once the kernel reports the
// process stopped: the signal is asynchronous, and a server not yet
// stopped would still answer.
func (r *Ring) Stop(i int) {
	r.t.Helper()
	r.Signal(i, syscall.SIGSTOP)
	r.mu.Lock()
	pid := r.procs[i].cmd.Process.Pid
	r.mu.Unlock()
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		// The state is the field after the parenthesised command name.
		if j := bytes.LastIndexByte(b, ')'); err == nil && j >= 0 && j+2 < len(b) && (b[j+2] == 'T' || b[j+2] == 't') {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("server %s not stopped 5s after SIGSTOP", r.Addr(i))
		}
	}
}

// Cont resumes server i (SIGCONT).
func (r *Ring) Cont(i int) { r.Signal(i, syscall.SIGCONT) }

// Term sends SIGTERM and returns the exit error (nil for status 0).
func (r *Ring) Term(i int) error {
	r.t.Helper()
	r.Signal(i, syscall.SIGTERM)
	return r.wait(i, 15*time.Second)
}

func (r *Ring) wait(i int, d time.Duration) error {
	r.t.Helper()
	r.mu.Lock()
	p := r.procs[i]
	r.mu.Unlock()
	select {
	case <-p.done:
	case <-time.After(d):
		r.t.Fatalf("server %s did not exit within %v", r.Addr(i), d)
	}
	r.mu.Lock()
	delete(r.procs, i)
	r.mu.Unlock()
	return p.err
}

// Running reports whether server i has a live process.
func (r *Ring) Running(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.procs[i] != nil
}

// KillAll kills every server still running.
func (r *Ring) KillAll() {
	r.mu.Lock()
	procs := r.procs
	r.procs = map[int]*proc{}
	r.mu.Unlock()
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
	}
}

// Result is the outcome of a command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// FirstLine returns the first line of standard output.
func (res Result) FirstLine() string {
	line, _, _ := strings.Cut(res.Stdout, "\n")
	return line
}

// String describes the result for failure messages.
func (res Result) String() string {
	out := res.Stdout
	if len(out) > 500 {
		out = out[:500] + "…"
	}
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", res.Code, out, res.Stderr)
}

// Client runs dkvs-client with the ring's servers.txt in the ring's
// directory.
func (r *Ring) Client(args ...string) Result {
	r.t.Helper()
	return Run(r.t, r.Dir, Bin(r.t, "dkvs-client"), append(slices.Clone(r.ClientArgs), args...)...)
}

// ClientFor is Client with a deadline of d instead of two minutes, for
// long runs (benchmarks).
func (r *Ring) ClientFor(d time.Duration, args ...string) Result {
	r.t.Helper()
	return RunFor(r.t, d, r.Dir, Bin(r.t, "dkvs-client"), append(slices.Clone(r.ClientArgs), args...)...)
}

// Run runs a program in dir and returns its outputs and exit status; it
// kills the program after two minutes.
func Run(t testing.TB, dir, prog string, args ...string) Result {
	t.Helper()
	return RunFor(t, 2*time.Minute, dir, prog, args...)
}

// RunFor is Run with a deadline of d.
func RunFor(t testing.TB, d time.Duration, dir, prog string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", prog, err)
	}
	return res
}

// Ping sends one native ping to addr and waits for the answer.
func Ping(addr string, timeout time.Duration) error { return PingWith(addr, timeout, nil) }

// dial opens a connection to addr, TLS with cfg unless it is nil.
func dial(addr string, timeout time.Duration, cfg *tls.Config) (net.Conn, error) {
	if cfg == nil {
		return net.DialTimeout("tcp", addr, timeout)
	}
	c := cfg.Clone()
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(addr)
	}
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, c)
}

// PingWith is Ping over TLS with cfg (nil: plaintext).
func PingWith(addr string, timeout time.Duration, cfg *tls.Config) error {
	nc, err := dial(addr, timeout, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(wire.AppendFrame(nil, wire.Frame{Kind: uint8(wire.OpPing), ID: 1})); err != nil {
		return err
	}
	f, err := wire.ReadFrame(bufio.NewReader(nc), wire.DefaultMaxFrame)
	if err != nil {
		return err
	}
	if f.Status() != wire.StatusOK {
		return fmt.Errorf("ping: %s", f.Status())
	}
	return nil
}

// Stats asks the server at addr for its counters (native stats).
func Stats(addr string, timeout time.Duration) (wire.Stats, error) {
	return StatsWith(addr, timeout, nil)
}

// StatsWith is Stats over TLS with cfg (nil: plaintext).
func StatsWith(addr string, timeout time.Duration, cfg *tls.Config) (wire.Stats, error) {
	nc, err := dial(addr, timeout, cfg)
	if err != nil {
		return wire.Stats{}, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(wire.AppendFrame(nil, wire.Frame{Kind: uint8(wire.OpStats), ID: 1})); err != nil {
		return wire.Stats{}, err
	}
	f, err := wire.ReadFrame(bufio.NewReader(nc), wire.DefaultMaxFrame)
	if err != nil {
		return wire.Stats{}, err
	}
	if f.Status() != wire.StatusOK {
		return wire.Stats{}, fmt.Errorf("stats: %s", f.Status())
	}
	return wire.DecodeStats(f.Body)
}

// WaitPeersUp waits until every running server believes every other
// running server up. Servers that start one after the other first see
// the later ones down (their connections are refused), and a coordinator
// skips a home replica it believes down.
func (r *Ring) WaitPeersUp() {
	r.t.Helper()
	Eventually(r.t, 20*time.Second, "every server sees its running peers up", func() error {
		for i := range r.Servers {
			if !r.Running(i) {
				continue
			}
			st, err := StatsWith(r.Addr(i), time.Second, r.ClientTLS)
			if err != nil {
				return err
			}
			for _, p := range st.Peers {
				if !p.Up && r.runningAddr(p.Addr) {
					return fmt.Errorf("%s sees %s down", r.Addr(i), p.Addr)
				}
			}
		}
		return nil
	})
}

func (r *Ring) runningAddr(addr string) bool {
	for i, s := range r.Servers {
		if s.Addr() == addr {
			return r.Running(i)
		}
	}
	return false
}

// Eventually polls cond every 20ms until it returns nil or d passes, and
// returns how long it took.
func Eventually(t testing.TB, d time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %v: %v", what, d, err)
	return 0
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
