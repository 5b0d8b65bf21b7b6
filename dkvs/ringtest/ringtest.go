// Package ringtest runs a whole dkvs ring in one process, for tests of
// what servers do together: hinted handoff, read repair, anti-entropy,
// tombstone purge, failures and their repair.
//
// Each server is a real server.Server with Pebble on Pebble's crashable
// in-memory file system, talking over an in-memory network (package
// memnet) through the real transport. Tests run a Ring inside a
// testing/synctest bubble, so time is simulated: a 30-second anti-entropy
// interval or a 500 ms deadline passes as soon as every goroutine waits,
// and a scenario of minutes of ring time runs in a fraction of a second,
// the same way on a loaded machine as on an idle one.
//
//	synctest.Test(t, func(t *testing.T) {
//		r := ringtest.New(t, ringtest.Options{Counts: []int{1, 2, 3, 2, 4}})
//		c := r.Client(nil)
//		...
//		r.Kill(2)     // a crash: what was not synced is lost
//		r.Restart(2)
//		r.WaitConverged(keys, time.Minute)
//	})
//
// Faults: Kill (crash) and Restart, Stop (a clean stop), Pause and Resume
// (SIGSTOP and SIGCONT as the network sees them), Isolate, Partition,
// PartitionOneWay and Heal, and Net for faults per link (delay, jitter,
// resets). Options.FS wraps a server's file system (package faultfs:
// errors, stalls, a full disk); a server whose storage fails stops by
// itself as the process would exit (Exited), and TryStart reports a
// store it refuses to open.
package ringtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/memnet"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/server"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/topology"
)

// Options configure a Ring.
type Options struct {
	// Counts are the servers' COUNTs (virtual nodes), one per server;
	// default {1, 2, 3, 2, 4}, the five servers of servers.txt.
	Counts []int
	// Seed seeds the network's random choices (delays, jitter, resets).
	Seed uint64
	// Config, if set, adjusts server i's configuration before each start
	// (intervals, coordination defaults, handoff or anti-entropy off).
	Config func(i int, cfg *server.Config)
	// Logger receives the servers' logs, tagged with their address; nil
	// discards them, unless DKVS_RINGTEST_LOG is set (to debug, info or
	// warn): they then go to standard error at that level.
	Logger *slog.Logger
	// FS, if set, returns the file system server i runs on, given its own
	// (which survives its restarts and crashes): a wrapper of base that
	// injects faults (package faultfs). It is called at each start.
	FS func(i int, base vfs.FS) vfs.FS
}

// Ring is a ring of servers in this process.
type Ring struct {
	t       testing.TB
	net     *memnet.Net
	servers []config.Server // servers.txt: the seeds of every server
	all     []config.Server // every server started, seeds first
	ring    *ring.Ring      // the seeds' ring
	opts    Options

	mu      sync.Mutex
	nodes   []*node
	clients []*dkvs.Client
	nclient int
}

// node is one server: its file system survives its restarts.
type node struct {
	addr string
	fs   *vfs.MemFS
	srv  *server.Server
	stop context.CancelFunc
	done chan struct{}
	// exited is set when the server stopped by itself (its storage
	// failed), with what ServeAll returned.
	exited  bool
	exitErr error
}

// New starts a ring of servers on 127.0.0.1 ports 7001, 7002, ... and
// stops it when the test ends. Call it inside a synctest bubble.
func New(t testing.TB, opts Options) *Ring {
	t.Helper()
	if len(opts.Counts) == 0 {
		opts.Counts = []int{1, 2, 3, 2, 4}
	}
	if opts.Logger == nil {
		if lv := os.Getenv("DKVS_RINGTEST_LOG"); lv != "" {
			var level slog.Level
			if err := level.UnmarshalText([]byte(lv)); err != nil {
				t.Fatalf("DKVS_RINGTEST_LOG=%q: %v", lv, err)
			}
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		}
	}
	r := &Ring{t: t, net: memnet.New(opts.Seed), opts: opts}
	for i, c := range opts.Counts {
		r.servers = append(r.servers, config.Server{IP: "127.0.0.1", Port: uint16(7001 + i), Count: c})
	}
	r.ring = ring.New(r.servers)
	r.all = append([]config.Server(nil), r.servers...)
	for _, s := range r.servers {
		r.nodes = append(r.nodes, &node{addr: s.Addr(), fs: vfs.NewCrashableMem()})
	}
	t.Cleanup(r.Close)
	for i := range r.nodes {
		r.Start(i)
	}
	return r
}

// Net returns the network, for faults per link.
func (r *Ring) Net() *memnet.Net { return r.net }

// Servers returns the ring's servers, as servers.txt lists them.
func (r *Ring) Servers() []config.Server { return r.servers }

// All returns every server started, servers.txt's first, then those
// added with AddServer.
func (r *Ring) All() []config.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]config.Server(nil), r.all...)
}

// Ring returns the placement of keys on servers.txt's ring.
func (r *Ring) Ring() *ring.Ring { return r.ring }

// Addr returns server i's address.
func (r *Ring) Addr(i int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all[i].Addr()
}

// Index returns the index of the server at addr, or -1.
func (r *Ring) Index(addr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return config.Find(r.all, addr)
}

// State returns the newest ring state a running server knows.
func (r *Ring) State() topology.State { return r.View().State() }

// View returns the placement of the newest ring a running server knows
// (servers.txt's while none runs).
func (r *Ring) View() *topology.View {
	var newest *topology.View
	for i := range r.All() {
		if s := r.Server(i); s != nil {
			if cur := s.Coordinator().View(); newest == nil || cur.Epoch() > newest.Epoch() {
				newest = cur
			}
		}
	}
	if newest == nil || newest.Epoch() < 1 {
		return topology.NewView(topology.Initial(r.servers))
	}
	return newest
}

// Homes returns the indexes (as Addr takes them) of key's first n servers
// on the current ring (the newest a running server knows; during a move,
// the ring reads go to).
func (r *Ring) Homes(key string, n int) []int {
	rr := r.View().ReadRing()
	var out []int
	for _, i := range rr.Preference([]byte(key), n) {
		out = append(out, r.Index(rr.Servers()[i].Addr()))
	}
	return out
}

// AddServer starts a new server, not in servers.txt (its seeds are
// servers.txt's servers), as an operator does before asking the ring to
// take it in (a join or a replacement); it returns its index.
func (r *Ring) AddServer(count int) int {
	r.t.Helper()
	r.mu.Lock()
	i := len(r.nodes)
	sv := config.Server{IP: "127.0.0.1", Port: uint16(7001 + i), Count: count}
	r.all = append(r.all, sv)
	r.nodes = append(r.nodes, &node{addr: sv.Addr(), fs: vfs.NewCrashableMem()})
	r.mu.Unlock()
	r.Start(i)
	return i
}

// Server returns server i while it runs, or nil.
func (r *Ring) Server(i int) *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[i].srv
}

// Running reports whether server i runs.
func (r *Ring) Running(i int) bool { return r.Server(i) != nil }

// Start starts server i on its file system (empty the first time).
func (r *Ring) Start(i int) {
	r.t.Helper()
	if err := r.TryStart(i); err != nil {
		r.t.Fatal(err)
	}
}

// TryStart is Start returning the error of a server that does not start
// (a store it refuses to open).
func (r *Ring) TryStart(i int) error {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	nd := r.nodes[i]
	if nd.srv != nil {
		return fmt.Errorf("ringtest: %s already runs", nd.addr)
	}
	nd.exited, nd.exitErr = false, nil
	r.net.Restart(nd.addr)
	r.net.Resume(nd.addr)
	log := slog.New(slog.DiscardHandler)
	if r.opts.Logger != nil {
		log = r.opts.Logger.With("server", nd.addr)
	}
	var fs vfs.FS = nd.fs
	if r.opts.FS != nil {
		fs = r.opts.FS(i, nd.fs)
	}
	cfg := server.Config{
		Addr:    nd.addr,
		Servers: r.servers,
		Storage: storage.Options{FS: fs, Dir: "data", CacheSize: 8 << 20},
		Network: r.net.Host(nd.addr),
		Logger:  log,
	}
	if r.opts.Config != nil {
		r.opts.Config(i, &cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		return fmt.Errorf("ringtest: start %s: %w", nd.addr, err)
	}
	// After a Kill, the disk is what a crash kept: its records and their
	// ring index must still agree.
	if err := srv.DB().CheckIndex(); err != nil {
		srv.Close()
		r.t.Fatalf("ringtest: start %s: %v", nd.addr, err)
	}
	host := r.net.Host(nd.addr)
	ln, err := host.Listen(nd.addr)
	if err != nil {
		srv.Close()
		return fmt.Errorf("ringtest: listen %s: %w", nd.addr, err)
	}
	pc, err := host.ListenPacket(nd.addr)
	if err != nil {
		ln.Close()
		srv.Close()
		return fmt.Errorf("ringtest: listen %s (datagrams): %w", nd.addr, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	nd.srv, nd.stop, nd.done = srv, stop, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		err := srv.ServeAll(ctx, server.Endpoints{Native: ln, Datagram: pc})
		srv.Close()
		if ctx.Err() != nil {
			return // stopped or killed by the test
		}
		// The server stopped by itself: as a process that exited, it is
		// gone from the network.
		r.mu.Lock()
		if nd.srv == srv {
			nd.srv, nd.exited, nd.exitErr = nil, true, err
			r.net.Crash(nd.addr)
		}
		r.mu.Unlock()
		stop()
	}(nd.done)
	return nil
}

// Exited reports whether server i stopped by itself (its storage
// failed), and what it returned.
func (r *Ring) Exited(i int) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[i].exited, r.nodes[i].exitErr
}

// FS returns server i's own file system (as Options.FS is given it), for
// tests that damage its files while it is not running.
func (r *Ring) FS(i int) vfs.FS {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[i].fs
}

// Restart starts server i again after Kill or Stop.
func (r *Ring) Restart(i int) { r.Start(i) }

// Kill crashes server i as kill -9 would: its connections are reset at
// once, and its file system keeps only what was synced (a write
// acknowledged with synced writes survives; one in flight may not).
func (r *Ring) Kill(i int) {
	r.t.Helper()
	r.mu.Lock()
	nd := r.nodes[i]
	if nd.srv == nil {
		r.mu.Unlock()
		r.t.Fatalf("ringtest: kill %s: not running", nd.addr)
	}
	// The network goes first, so that nothing acknowledged after the
	// moment of the crash leaves; then the disk is cut at that moment.
	r.net.Crash(nd.addr)
	crashed := nd.fs.CrashClone(vfs.CrashCloneCfg{})
	stop, done := nd.stop, nd.done
	nd.srv, nd.fs = nil, crashed
	r.mu.Unlock()
	stop()
	<-done // the process's goroutines end; it writes only to the old disk
}

// Wipe gives server i, which must not be running, an empty disk: the
// next Start begins from nothing, as after a disk was replaced.
func (r *Ring) Wipe(i int) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	nd := r.nodes[i]
	if nd.srv != nil {
		r.t.Fatalf("ringtest: wipe %s: running", nd.addr)
	}
	nd.fs = vfs.NewCrashableMem()
}

// Stop stops server i cleanly, as SIGTERM does.
func (r *Ring) Stop(i int) {
	r.t.Helper()
	r.mu.Lock()
	nd := r.nodes[i]
	if nd.srv == nil {
		r.mu.Unlock()
		r.t.Fatalf("ringtest: stop %s: not running", nd.addr)
	}
	stop, done := nd.stop, nd.done
	nd.srv = nil
	r.mu.Unlock()
	stop()
	<-done
}

// Pause freezes server i's traffic, as SIGSTOP does to a process: its
// connections are still accepted, nothing moves either way until Resume.
func (r *Ring) Pause(i int) { r.net.Pause(r.Addr(i)) }

// Resume undoes Pause.
func (r *Ring) Resume(i int) { r.net.Resume(r.Addr(i)) }

// Isolate cuts server i off from everyone (clients included) until Heal.
func (r *Ring) Isolate(i int) { r.net.Isolate(r.Addr(i)) }

// Partition cuts every link between the servers of a and those of b,
// both ways, until Heal.
func (r *Ring) Partition(a, b []int) { r.net.Partition(r.addrs(a), r.addrs(b)) }

// PartitionOneWay blocks what the servers of from send to those of to.
func (r *Ring) PartitionOneWay(from, to []int) { r.net.PartitionOneWay(r.addrs(from), r.addrs(to)) }

// Heal removes partitions, isolations and link faults.
func (r *Ring) Heal() { r.net.Heal() }

func (r *Ring) addrs(idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, r.Addr(i))
	}
	return out
}

// Client returns a client of the ring (closed with the ring); opts may be
// nil. Each client is a host of its own on the network.
func (r *Ring) Client(opts *dkvs.Options) *dkvs.Client {
	r.t.Helper()
	var o dkvs.Options
	if opts != nil {
		o = *opts
	}
	r.mu.Lock()
	r.nclient++
	name := fmt.Sprintf("client-%d", r.nclient)
	r.mu.Unlock()
	o.Network = r.net.Host(name)
	c, err := dkvs.New(r.servers, &o)
	if err != nil {
		r.t.Fatalf("ringtest: client: %v", err)
	}
	r.mu.Lock()
	r.clients = append(r.clients, c)
	r.mu.Unlock()
	return c
}

// ClientHost returns the network host name of the n-th client made (from
// 1), for faults on its links.
func ClientHost(n int) string { return fmt.Sprintf("client-%d", n) }

// Close stops the clients and the servers (cleanly).
func (r *Ring) Close() {
	r.mu.Lock()
	clients := r.clients
	r.clients = nil
	r.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	r.net.Heal()
	for i := range r.nodes {
		r.net.Resume(r.Addr(i))
		if r.Running(i) {
			r.Stop(i)
		}
	}
}

// Record returns what server i stores for key (found false: nothing), read
// from its storage directly.
func (r *Ring) Record(i int, key string) (kv.Record, bool, error) {
	s := r.Server(i)
	if s == nil {
		return kv.Record{}, false, fmt.Errorf("%s is not running", r.Addr(i))
	}
	return s.DB().Get([]byte(key))
}

// Holdings returns every record server i stores, tombstones included, by
// key.
func (r *Ring) Holdings(i int) (map[string]kv.Record, error) {
	s := r.Server(i)
	if s == nil {
		return nil, fmt.Errorf("%s is not running", r.Addr(i))
	}
	out := map[string]kv.Record{}
	err := s.DB().Scan(nil, storage.ScanOptions{Tombstones: true}, func(k []byte, rec kv.Record) bool {
		out[string(k)] = rec
		return true
	})
	return out, err
}

// HintsHeld returns how many hints the running servers hold, in all.
func (r *Ring) HintsHeld() int64 {
	var n int64
	for i := range r.nodes {
		if s := r.Server(i); s != nil {
			for _, c := range s.DB().HintCounts() {
				n += c
			}
		}
	}
	return n
}

// Diverged returns the keys of keys whose n home replicas do not all hold
// the same version, with why, in key order; it reads every home's
// storage (a home that is not running counts as diverged).
func (r *Ring) Diverged(keys []string, n int) []string {
	var out []string
	for _, k := range keys {
		var first kv.Version
		for j, h := range r.Homes(k, n) {
			rec, found, err := r.Record(h, k)
			if err != nil || !found {
				out = append(out, fmt.Sprintf("%s: %s holds nothing (%v)", k, r.Addr(h), err))
				break
			}
			if j == 0 {
				first = rec.Version
			} else if rec.Version != first {
				out = append(out, fmt.Sprintf("%s: %s holds %v, %s %v", k, r.Addr(r.Homes(k, n)[0]), first, r.Addr(h), rec.Version))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// WaitConverged polls (in the bubble's time, every 100 ms) until every
// key of keys has the same version on its n home replicas and no hints
// are held, and returns how long that took; it fails the test after
// limit.
func (r *Ring) WaitConverged(keys []string, n int, limit time.Duration) time.Duration {
	r.t.Helper()
	return r.Eventually(limit, "replicas converge", func() error {
		if d := r.Diverged(keys, n); len(d) > 0 {
			return fmt.Errorf("%d keys differ, e.g. %s", len(d), d[0])
		}
		if h := r.HintsHeld(); h > 0 {
			return fmt.Errorf("%d hints still held", h)
		}
		return nil
	})
}

// Eventually polls cond every 100 ms of the bubble's time until it returns
// nil, and returns how long that took; it fails the test after limit.
func (r *Ring) Eventually(limit time.Duration, what string, cond func() error) time.Duration {
	r.t.Helper()
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			r.t.Fatalf("ringtest: %s: not after %v: %v", what, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
