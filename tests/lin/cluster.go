// Package lin is the history-recording fault-injection harness of dkvs:
// real servers (the built binaries) on 127.0.0.1 behind fault-injecting
// proxies, concurrent clients doing random gets, puts and deletes on a
// small key set, a nemesis that kills, pauses and partitions one server
// at a time, and porcupine checking the recorded history against a
// per-key register.
//
// Partitions are made by TCP proxies, not network namespaces: they need
// no privileges (the CI machine runs the tests in a container that may
// not allow creating namespaces), they are deterministic, and they cut
// both directions. Each server has its own loopback IP (127.0.0.2, ...)
// in servers.txt, where its proxy listens; the server binds 127.0.0.1
// (--listen) behind it and dials its peers from its own IP, so every
// proxy can tell which server (or client, from 127.0.0.1) a connection
// comes from.
package lin

import (
	"fmt"
	"math/rand"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/tests/harness"
)

// Cluster is a ring whose servers sit behind proxies.
type Cluster struct {
	Ring    *harness.Ring
	Proxies []*harness.Proxy
	IPs     []string
}

// StartCluster starts n servers with the given COUNT each and extra
// server options.
func StartCluster(t *testing.T, n, count int, args ...string) *Cluster {
	t.Helper()
	cl := NewCluster(t, n, count, args...)
	cl.Ring.StartAll()
	return cl
}

// NewCluster prepares n servers behind their proxies, all in servers.txt,
// and starts none: a test of the elastic ring writes a servers.txt of
// the first ones, starts them, and has the others join later.
func NewCluster(t *testing.T, n, count int, args ...string) *Cluster {
	t.Helper()
	backends := harness.FreePorts(t, n)
	cl := &Cluster{}
	var servers []config.Server
	for i := 0; i < n; i++ {
		ip := fmt.Sprintf("127.0.0.%d", 2+i)
		p := harness.NewProxy(t, ip+":0", fmt.Sprintf("127.0.0.1:%d", backends[i]))
		_, port, _ := net.SplitHostPort(p.Addr())
		var pn int
		fmt.Sscan(port, &pn)
		servers = append(servers, config.Server{IP: ip, Port: uint16(pn), Count: count})
		cl.Proxies = append(cl.Proxies, p)
		cl.IPs = append(cl.IPs, ip)
	}
	cl.Ring = harness.NewRingOf(t, servers)
	cl.Ring.Args = args
	for i := range servers {
		cl.Ring.Listen[i] = fmt.Sprintf("127.0.0.1:%d", backends[i])
	}
	return cl
}

// Isolate cuts server i off: nobody reaches it and it reaches nobody.
// With peersOnly, clients still reach it; only its peers do not.
func (cl *Cluster) Isolate(i int, peersOnly bool) {
	for j, p := range cl.Proxies {
		if j == i {
			if peersOnly {
				for k, ip := range cl.IPs {
					if k != i {
						p.Cut(ip)
					}
				}
			} else {
				p.CutAll()
			}
			continue
		}
		p.Cut(cl.IPs[i])
	}
}

// Heal ends every partition.
func (cl *Cluster) Heal() {
	for _, p := range cl.Proxies {
		p.Heal()
	}
}

// Nemesis injects one fault at a time into the cluster: SIGKILL and
// restart, SIGSTOP and SIGCONT, or a partition of one server, each held
// for 0.5 to 1.5 s, a new one every 1 to 2 s.
type Nemesis struct {
	cl     *Cluster
	t      *testing.T
	rng    *rand.Rand
	mu     sync.Mutex
	counts map[string]int
	log    []string
}

// NewNemesis returns a nemesis with a fixed seed, so a failing run can be
// replayed in spirit (the timing of real processes still varies).
func NewNemesis(t *testing.T, cl *Cluster, seed int64) *Nemesis {
	return &Nemesis{cl: cl, t: t, rng: rand.New(rand.NewSource(seed)), counts: map[string]int{}}
}

// Run injects faults until stop is closed, then heals and restarts
// everything, and returns.
func (nm *Nemesis) Run(stop <-chan struct{}, start time.Time) {
	r := nm.cl.Ring
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(500+nm.rng.Intn(500)) * time.Millisecond):
		}
		i := nm.rng.Intn(len(r.Servers))
		if !r.Running(i) {
			continue // not started yet (a server that joins later)
		}
		hold := time.Duration(500+nm.rng.Intn(1000)) * time.Millisecond
		var kind string
		switch nm.rng.Intn(4) {
		case 0:
			kind = "kill"
			r.Kill(i)
			sleepOrStop(hold, stop)
			r.Start(i)
		case 1:
			kind = "pause"
			r.Stop(i)
			sleepOrStop(hold, stop)
			r.Cont(i)
		case 2:
			kind = "isolate"
			nm.cl.Isolate(i, false)
			sleepOrStop(hold, stop)
			nm.cl.Heal()
		case 3:
			kind = "partition-from-peers"
			nm.cl.Isolate(i, true)
			sleepOrStop(hold, stop)
			nm.cl.Heal()
		}
		nm.mu.Lock()
		nm.counts[kind]++
		nm.log = append(nm.log, fmt.Sprintf("%7.3fs %s %s for %v", time.Since(start).Seconds(), kind, r.Addr(i), hold))
		nm.mu.Unlock()
	}
}

func sleepOrStop(d time.Duration, stop <-chan struct{}) {
	select {
	case <-time.After(d):
	case <-stop:
	}
}

// Counts returns how many faults of each kind were injected.
func (nm *Nemesis) Counts() (map[string]int, int) {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	total := 0
	out := map[string]int{}
	for k, v := range nm.counts {
		out[k] = v
		total += v
	}
	return out, total
}

// Log returns one line per fault.
func (nm *Nemesis) Log() []string {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	return append([]string(nil), nm.log...)
}
