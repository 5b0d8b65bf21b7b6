package console

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// States of a server, as the failure detector of the server serving the
// console sees it (that server itself is always up).
const (
	StateUp      = "up"
	StateDown    = "down"
	StateUnknown = "unknown" // not a peer the detector watches
)

// RingView is /api/ring: the ring of servers.txt.
type RingView struct {
	// Self is the address of the server answering.
	Self string `json:"self"`
	// N is the number of home servers a key lookup shows by default.
	N       int          `json:"n"`
	Servers []RingServer `json:"servers"`
	// Nodes are the virtual nodes in ring order (by hash).
	Nodes []RingNode `json:"nodes"`
}

// RingServer is one server of the ring, in servers.txt order.
type RingServer struct {
	Addr string `json:"addr"`
	// Count is its number of virtual nodes (COUNT in servers.txt).
	Count int `json:"count"`
	// Share is the fraction of the key space whose first node clockwise
	// is one of this server's: the keys it is the first home of.
	Share float64 `json:"share"`
	State string  `json:"state"`
	// Storage is omitted when the server's storage takes writes; else
	// full, slow or failed, as this server knows it (its own, or what the
	// peer last said in a ping answer).
	Storage string `json:"storage,omitempty"`
	Self    bool   `json:"self"`
}

// RingNode is one virtual node.
type RingNode struct {
	// Hash is its SHA-1 position, 40 hex digits.
	Hash string `json:"hash"`
	// Pos is Hash as a fraction of the circle, in [0, 1).
	Pos float64 `json:"pos"`
	// Server is the index in Servers of its server; ID is its number
	// (1..COUNT) among that server's nodes.
	Server int `json:"server"`
	ID     int `json:"id"`
}

// pos places a hash on the circle: its first 64 bits as a fraction.
func pos(h ring.Hash) float64 {
	return float64(binary.BigEndian.Uint64(h[:8])) / math.Exp2(64)
}

// states returns each peer's state by address, as the detector sees it.
func states(st wire.Stats) map[string]string {
	out := map[string]string{st.Addr: StateUp}
	for _, p := range st.Peers {
		if p.Up {
			out[p.Addr] = StateUp
		} else {
			out[p.Addr] = StateDown
		}
	}
	return out
}

// storages returns the storage state of each server whose storage
// refuses writes, by address: this server's own, and each peer's as it
// last said.
func storages(st wire.Stats) map[string]string {
	out := map[string]string{}
	if st.Storage != "" && st.Storage != wire.StorageOK.String() {
		out[st.Addr] = st.Storage
	}
	for _, p := range st.Peers {
		if p.Storage != "" {
			out[p.Addr] = p.Storage
		}
	}
	return out
}

func stateOf(m map[string]string, addr string) string {
	if s, ok := m[addr]; ok {
		return s
	}
	return StateUnknown
}

// Ring returns the view of /api/ring.
func (c *Console) Ring() RingView {
	r := c.src.Ring()
	self := c.src.Addr()
	own := c.src.Stats()
	st, sto := states(own), storages(own)
	v := RingView{Self: self, N: min(c.opts.N, len(r.Servers())), Servers: []RingServer{}, Nodes: []RingNode{}}
	for _, s := range r.Servers() {
		v.Servers = append(v.Servers, RingServer{Addr: s.Addr(), Count: s.Count, State: stateOf(st, s.Addr()), Storage: sto[s.Addr()], Self: s.Addr() == self})
	}
	nodes := r.Nodes()
	for i, n := range nodes {
		p := pos(n.Hash)
		v.Nodes = append(v.Nodes, RingNode{Hash: n.Hash.String(), Pos: p, Server: n.Server, ID: n.ID})
		// A node owns the arc from the node before it (exclusive) to itself.
		prev := pos(nodes[(i+len(nodes)-1)%len(nodes)].Hash)
		arc := p - prev
		if arc <= 0 {
			arc++
		}
		v.Servers[n.Server].Share += arc
	}
	for i := range v.Servers {
		v.Servers[i].Share = math.Round(v.Servers[i].Share*1e6) / 1e6
	}
	return v
}

// ServersView is /api/servers: every server of the ring.
type ServersView struct {
	Self string `json:"self"`
	// TimeMS is when the view was made (Unix milliseconds).
	TimeMS  int64        `json:"time_ms"`
	Servers []ServerView `json:"servers"`
}

// ServerView is one server, in servers.txt order.
type ServerView struct {
	Addr  string `json:"addr"`
	Self  bool   `json:"self"`
	State string `json:"state"`
	// Answered says whether the server answered this view's request for
	// its stats (peers the detector believes down are not asked).
	Answered bool `json:"answered"`
	// Error is why it did not answer, if it was asked.
	Error string `json:"error,omitempty"`
	// StatsAgeMS is the age of Stats: 0 when it answered now, more when
	// they are the last it answered; -1 when it never answered.
	StatsAgeMS int64 `json:"stats_age_ms"`
	// Stats are its own figures (null when it never answered): keys,
	// bytes, hints held for each peer, anti-entropy with each peer,
	// traffic of the last minute, as the native protocol's stats carry
	// them.
	Stats *wire.Stats `json:"stats"`
}

// Servers returns the view of /api/servers: this server's stats, and
// those of each peer its failure detector believes up, asked in parallel
// (each within Options.Timeout).
func (c *Console) Servers(ctx context.Context) ServersView {
	self := c.src.Addr()
	own := c.src.Stats()
	st := states(own)
	now := c.opts.Now()
	servers := c.src.Ring().Servers()
	addrs := make([]string, len(servers))
	for i, s := range servers {
		addrs[i] = s.Addr()
	}
	got := c.gather(ctx, own, st, addrs, now)
	v := ServersView{Self: self, TimeMS: now.UnixMilli(), Servers: make([]ServerView, len(servers))}
	for i, a := range addrs {
		g := got[a]
		v.Servers[i] = ServerView{Addr: a, Self: a == self, State: stateOf(st, a), Answered: g.answered, Error: g.err,
			StatsAgeMS: g.ageMS, Stats: g.stats}
	}
	return v
}

// answer is what the console knows of one server's stats.
type answer struct {
	answered bool
	err      string      // why it did not answer, if asked
	stats    *wire.Stats // its own answer now, or the last (nil: never)
	ageMS    int64       // the age of stats: -1 when nil
}

// gather returns the stats of each server of addrs: this server's own,
// each peer's its failure detector does not believe down, asked in
// parallel (each within Options.Timeout), and for the others the last
// they answered.
func (c *Console) gather(ctx context.Context, own wire.Stats, st map[string]string, addrs []string, now time.Time) map[string]answer {
	self := c.src.Addr()
	out := make(map[string]answer, len(addrs))
	var ask []string
	for _, a := range addrs {
		if _, dup := out[a]; dup {
			continue
		}
		out[a] = answer{ageMS: -1}
		if a != self && stateOf(st, a) != StateDown {
			ask = append(ask, a)
		}
	}
	// Each goroutine writes its own element; the map is written after.
	asked := make([]answer, len(ask))
	var wg sync.WaitGroup
	for i, a := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
			defer cancel()
			ps, err := c.src.PeerStats(cctx, a)
			if err != nil {
				c.log.Debug("console: stats", "peer", a, "err", err)
				asked[i] = answer{err: err.Error(), ageMS: -1}
				return
			}
			asked[i] = answer{answered: true, ageMS: -1}
			c.mu.Lock()
			c.seen[a] = seenStats{stats: ps, at: c.opts.Now()}
			c.mu.Unlock()
		}()
	}
	wg.Wait()
	for i, a := range ask {
		out[a] = asked[i]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for a, g := range out {
		switch seen, ok := c.seen[a]; {
		case a == self:
			s := own
			g = answer{answered: true, stats: &s}
		case ok:
			s := seen.stats
			g.stats = &s
			g.ageMS = max(0, now.Sub(seen.at).Milliseconds())
			if g.answered {
				g.ageMS = 0
			}
		}
		out[a] = g
	}
	return out
}

// KeyView is /api/key: where a key lives and each home's version of it.
type KeyView struct {
	Key string `json:"key"`
	// Hash is the key's SHA-1 position (40 hex digits); Pos is it as a
	// fraction of the circle.
	Hash string  `json:"hash"`
	Pos  float64 `json:"pos"`
	// Node is the index in /api/ring's nodes of the first node at or
	// after the key: the walk to its homes starts there.
	Node int `json:"node"`
	N    int `json:"n"`
	// Replicas are the key's N home servers in ring order.
	Replicas []Replica `json:"replicas"`
	// Agree is true when every home answered with the same version (or
	// none holds the key).
	Agree bool `json:"agree"`
}

// Replica is one home server's copy of a key.
type Replica struct {
	Addr string `json:"addr"`
	// Server is its index in /api/ring's servers.
	Server int    `json:"server"`
	State  string `json:"state"`
	// Storage is as in RingServer: omitted when the server's storage
	// takes writes.
	Storage string `json:"storage,omitempty"`
	// Answered is false when the server is down (not asked) or did not
	// answer (Error says why).
	Answered bool   `json:"answered"`
	Error    string `json:"error,omitempty"`
	// Found is true when it holds a record of the key; Tombstone when
	// that record is a deletion.
	Found     bool `json:"found"`
	Tombstone bool `json:"tombstone"`
	// Version is the record's version (wall.logical@writer, as dkvs-client
	// prints it) and WallMS its time (Unix milliseconds).
	Version string `json:"version,omitempty"`
	WallMS  int64  `json:"wall_ms,omitempty"`
	// Newest is true when it holds the newest version of those answered.
	Newest bool `json:"newest"`
}

// Key returns the view of /api/key: key's first n servers clockwise (its
// homes) and each one's version of the key, read in parallel through the
// server (each within Options.Timeout). Homes the detector believes down
// are not asked.
func (c *Console) Key(ctx context.Context, key []byte, n int) KeyView {
	r := c.src.Ring()
	h := r.KeyHash(key)
	homes := r.Preference(key, n)
	own := c.src.Stats()
	st, sto := states(own), storages(own)
	v := KeyView{Key: string(key), Hash: h.String(), Pos: pos(h), N: len(homes), Replicas: make([]Replica, len(homes))}
	if len(r.Nodes()) > 0 {
		v.Node = r.First(h)
	}
	recs := make([]kv.Record, len(homes))
	var wg sync.WaitGroup
	for i, si := range homes {
		addr := r.Servers()[si].Addr()
		rp := &v.Replicas[i]
		*rp = Replica{Addr: addr, Server: si, State: stateOf(st, addr), Storage: sto[addr]}
		if rp.State == StateDown {
			rp.Error = "down"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
			defer cancel()
			rec, found, err := c.src.ReplicaVersion(cctx, addr, key)
			if err != nil {
				c.log.Debug("console: key", "server", addr, "err", err)
				rp.Error = err.Error()
				return
			}
			rp.Answered, rp.Found = true, found
			if found {
				recs[i] = rec
				rp.Tombstone = rec.Tombstone
				rp.Version, rp.WallMS = rec.Version.String(), int64(rec.Version.Wall)
			}
		}()
	}
	wg.Wait()
	var newest kv.Version
	v.Agree = true
	for i, rp := range v.Replicas {
		if !rp.Answered {
			v.Agree = false
			continue
		}
		if recs[i].Version.Newer(newest) {
			newest = recs[i].Version
		}
	}
	for i := range v.Replicas {
		rp := &v.Replicas[i]
		if rp.Answered && recs[i].Version == newest {
			rp.Newest = true
		} else if rp.Answered {
			v.Agree = false
		}
	}
	return v
}
