// Package antientropy keeps replicas in agreement in the background.
//
// Periodically, and right after a server starts, each server compares
// with every peer a Merkle tree of the records they should both hold (the
// keys whose preference list, for the N the key was written with, names
// both). It descends only into the branches whose hashes differ, sends its
// (key, version) entries for the differing leaves, and the peer answers
// with the records the server lacks or holds older, in compressed,
// size-bounded pages. Each side pulls what it lacks; a peer that receives
// a diff request schedules a pull in the other direction, so both
// converge. The bytes moved are bounded by a token bucket.
//
// The same comparisons tell when every replica holds a tombstone, which
// is when a tombstone older than the grace period may be dropped.
//
// Every read of storage goes through its ring index (storage.ScanRange):
// a tree is built from one pass over the index, without reading values,
// and the entries of differing leaves are found by scanning only those
// leaves' ranges of ring positions, so the cost of a diff grows with the
// leaves that differ, not with the store.
package antientropy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/health"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/merkle"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/throttle"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Store is the storage anti-entropy reads and repairs. It reads ranges of
// ring positions only: the positions must be those of ring.SHA1, as the
// ring's must (New checks).
type Store interface {
	ScanRange(start, end ring.Hash, o storage.RangeOptions, fn func(storage.RangeEntry) bool) error
	Get(key []byte) (kv.Record, bool, error)
	VersionOf(key []byte) (kv.Version, bool, error)
	ApplyMany(recs []storage.KeyRecord) (int, error)
	PurgeTombstone(key []byte, v kv.Version) (bool, error)
}

// Transport sends a request to a peer.
type Transport interface {
	Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error)
}

// Defaults.
const (
	DefaultDepth          = 10
	DefaultInterval       = 30 * time.Second
	DefaultTombstoneGrace = time.Hour
	DefaultTimeout        = 10 * time.Second
	// pageBytes bounds the records of one diff response.
	pageBytes = 4 << 20
	// chunkEntries bounds the entries of one diff request.
	chunkEntries = 50000
	// clockSlack is allowed between servers' clocks when deciding that a
	// comparison happened after a tombstone was written.
	clockSlack = time.Second
)

// Options configure an Engine.
type Options struct {
	// Self is this server's address; Ring the ring it belongs to.
	Self string
	Ring *ring.Ring
	// Depth of the trees (default 10: 1024 leaves).
	Depth int
	// Interval between rounds (default 30s). Run starts a round at once.
	Interval time.Duration
	// Bandwidth bounds the bytes per second anti-entropy sends and
	// receives (0: unlimited).
	Bandwidth int64
	// TombstoneGrace is how old a tombstone must be before it may be
	// dropped (default 1h); it is dropped only once every replica has it.
	TombstoneGrace time.Duration
	// Timeout of one request to a peer (default 10s).
	Timeout time.Duration
	// TreeMaxAge is how long trees built to answer a peer are reused
	// (default a fifth of Interval, at most 5s).
	TreeMaxAge time.Duration
	// Health skips peers believed down and learns of failures; may be nil.
	Health *health.Detector
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives one line per round with counts; nil discards.
	Logger *slog.Logger
}

// PeerStats are the anti-entropy counters of one peer.
type PeerStats struct {
	LastCompleted time.Time // last session completed with the peer (zero: never)
	Rounds        int64     // sessions completed
	KeysReceived  int64     // records pulled from the peer and applied
	KeysSent      int64     // records sent to the peer in answer to its pulls
}

// Engine runs anti-entropy for one server. It is safe for concurrent use.
type Engine struct {
	store   Store
	tr      Transport
	opts    Options
	log     *slog.Logger
	rs      atomic.Pointer[ringState]
	limiter *throttle.Limiter

	treeMu   sync.Mutex
	treeCond *sync.Cond
	building bool
	trees    *treeSet

	mu        sync.Mutex
	stats     map[string]*PeerStats
	confirmed map[string][]int64 // per peer, per leaf: as-of time (Unix ms) of the last equal comparison
	sessions  map[string]bool    // peers with a session under way
	pullBack  chan string
	lastCheck map[string]time.Time // when a diff request from each peer was last checked for a pull-back
	rounds    int64
	purged    int64
}

type treeSet struct {
	rs     *ringState // the ring the trees were built for
	built  time.Time
	byPeer map[int]*merkle.Tree
}

// ringState is the ring anti-entropy compares by: this server's index in
// it (-1 when it is not in it) and its peers'. SetRing replaces it when
// the ring changes.
type ringState struct {
	ring  *ring.Ring
	self  int
	peers []int
	// noPurge stops tombstone purges: a move of the ring is under way or
	// its old homes have not dropped what moved yet, and a tombstone may
	// be in transit to a new home.
	noPurge bool
}

func newRingState(r *ring.Ring, selfAddr string, noPurge bool) *ringState {
	rs := &ringState{ring: r, self: -1, noPurge: noPurge}
	for i, s := range r.Servers() {
		if s.Addr() == selfAddr {
			rs.self = i
		}
	}
	for i := range r.Servers() {
		if i != rs.self {
			rs.peers = append(rs.peers, i)
		}
	}
	return rs
}

// mustHashSHA1 panics unless r places keys by ring.SHA1, as the store's
// ring index does: a programming error.
func mustHashSHA1(r *ring.Ring) {
	if probe := []byte("anti-entropy"); r.KeyHash(probe) != ring.SHA1(probe) {
		panic("antientropy: the ring does not hash keys with ring.SHA1, as storage's ring index does")
	}
}

func (rs *ringState) addr(i int) string { return rs.ring.Servers()[i].Addr() }

func (rs *ringState) peerIndex(addr string) int {
	for _, p := range rs.peers {
		if rs.addr(p) == addr {
			return p
		}
	}
	return -1
}

// SetRing makes r the ring of later comparisons (this server's peers are
// its other servers). With noPurge, tombstones are kept: a move of the
// ring is under way. Like New's, r must place keys by ring.SHA1.
func (e *Engine) SetRing(r *ring.Ring, noPurge bool) {
	mustHashSHA1(r)
	e.rs.Store(newRingState(r, e.opts.Self, noPurge))
	// Confirmations were of the keys shared on the old ring.
	e.mu.Lock()
	e.confirmed = map[string][]int64{}
	for _, p := range e.rs.Load().peers {
		a := e.rs.Load().addr(p)
		if e.stats[a] == nil {
			e.stats[a] = &PeerStats{}
		}
	}
	e.mu.Unlock()
}

// New returns an engine; call Run to start it. The ring must place keys by
// ring.SHA1, as the store's ring index does (it panics otherwise: a
// programming error).
func New(store Store, tr Transport, opts Options) *Engine {
	mustHashSHA1(opts.Ring)
	if opts.Depth <= 0 || opts.Depth > merkle.MaxDepth {
		opts.Depth = DefaultDepth
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.TombstoneGrace <= 0 {
		opts.TombstoneGrace = DefaultTombstoneGrace
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.TreeMaxAge <= 0 {
		opts.TreeMaxAge = min(max(opts.Interval/5, 100*time.Millisecond), 5*time.Second)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		store: store, tr: tr, opts: opts, log: log,
		limiter:   throttle.New(opts.Bandwidth, opts.Now),
		stats:     map[string]*PeerStats{},
		confirmed: map[string][]int64{},
		sessions:  map[string]bool{},
		pullBack:  make(chan string, 64),
		lastCheck: map[string]time.Time{},
	}
	e.treeCond = sync.NewCond(&e.treeMu)
	e.rs.Store(newRingState(opts.Ring, opts.Self, false))
	for _, p := range e.rs.Load().peers {
		e.stats[e.rs.Load().addr(p)] = &PeerStats{}
	}
	return e
}

// Run does a round at once and then every Interval (if positive), and
// pulls back from peers that pulled from this server, until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	var tick <-chan time.Time
	round := func() {
		work := e.round(ctx)
		if e.opts.Interval > 0 {
			// However short the interval, a round's scans of storage take
			// at most a twentieth of the time: on a large store they read
			// a lot. Time spent waiting for peers (one that died and is not
			// known down yet costs its deadlines) is not work.
			tick = time.After(max(e.opts.Interval, 20*work))
		}
	}
	round()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			round()
		case peer := <-e.pullBack:
			if _, err := e.SyncPeer(ctx, peer); err != nil && ctx.Err() == nil {
				e.log.Debug("anti-entropy pull-back failed", "peer", peer, "err", err)
			}
		}
	}
}

// Round compares with every peer that is up, then drops the tombstones
// that every replica has and that are older than the grace period.
func (e *Engine) Round(ctx context.Context) { e.round(ctx) }

// round is Round; it returns how long it spent scanning its own storage
// (building trees, finding tombstones to purge).
func (e *Engine) round(ctx context.Context) (work time.Duration) {
	rs := e.rs.Load()
	if rs.self < 0 {
		return 0 // not in the ring (yet)
	}
	start := e.opts.Now()
	if _, err := e.buildTrees(ctx); err != nil {
		e.log.Warn("anti-entropy: reading storage failed", "err", err)
		return e.opts.Now().Sub(start)
	}
	work = e.opts.Now().Sub(start)
	var synced, received, failed int
	for _, p := range rs.peers {
		addr := rs.addr(p)
		if h := e.opts.Health; h != nil && !h.Up(addr) {
			continue
		}
		n, err := e.SyncPeer(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return work
			}
			failed++
			e.log.Debug("anti-entropy session failed", "peer", addr, "err", err)
			continue
		}
		synced++
		received += n
	}
	purgeStart := e.opts.Now()
	purged, err := e.PurgeTombstones(ctx)
	work += e.opts.Now().Sub(purgeStart)
	if err != nil {
		e.log.Warn("anti-entropy: tombstone purge failed", "err", err)
	}
	e.mu.Lock()
	e.rounds++
	e.mu.Unlock()
	e.log.Info("anti-entropy round", "peers_synced", synced, "peers_failed", failed,
		"keys_received", received, "tombstones_purged", purged, "took", e.opts.Now().Sub(start).Round(time.Millisecond))
	return work
}

// buildTrees reads storage's ring index once, without values, and builds
// a tree per peer of the entries the two should share.
func (e *Engine) buildTrees(ctx context.Context) (*treeSet, error) {
	e.treeMu.Lock()
	for e.building {
		e.treeCond.Wait()
	}
	e.building = true
	e.treeMu.Unlock()
	defer func() {
		e.treeMu.Lock()
		e.building = false
		e.treeCond.Broadcast()
		e.treeMu.Unlock()
	}()
	rs := e.rs.Load()
	built := e.opts.Now()
	builders := map[int]*merkle.Builder{}
	grace := e.opts.TombstoneGrace
	prefs := rs.newPrefs()
	// The index is in ring order, leaf after leaf, but a leaf hashes its
	// entries in key order (as every server does): each leaf's entries
	// are gathered, sorted, then added.
	var (
		leaf    []leafEntry
		arena   []byte // the keys of leaf
		current uint32
	)
	flush := func() {
		slices.SortFunc(leaf, func(a, b leafEntry) int { return bytes.Compare(a.key, b.key) })
		for _, en := range leaf {
			for _, p := range en.pref {
				if p == rs.self {
					continue
				}
				b := builders[p]
				if b == nil {
					b = merkle.NewBuilder(e.opts.Depth)
					builders[p] = b
				}
				b.Add(current, en.key, en.version, en.tombstone)
			}
		}
		leaf, arena = leaf[:0], arena[:0]
	}
	err := e.store.ScanRange(ring.Hash{}, ring.Hash{}, storage.RangeOptions{Tombstones: true}, func(en storage.RangeEntry) bool {
		rec := en.Record
		if rec.N == 0 {
			return true
		}
		// A tombstone past the grace period is settled: leaving it out of
		// the trees lets replicas drop it without showing a difference.
		if rec.Tombstone && built.Sub(rec.Version.Time()) > grace {
			return true
		}
		pref := prefs.at(en.Pos, int(rec.N))
		if !contains(pref, rs.self) {
			return true
		}
		if bucket := merkle.Bucket(en.Pos[:], e.opts.Depth); bucket != current {
			flush()
			current = bucket
		}
		n := len(arena)
		arena = append(arena, en.Key...)
		leaf = append(leaf, leafEntry{key: arena[n:len(arena):len(arena)], version: rec.Version, tombstone: rec.Tombstone, pref: pref})
		return ctx.Err() == nil
	})
	if err != nil {
		return nil, err
	}
	flush()
	ts := &treeSet{rs: rs, built: built, byPeer: map[int]*merkle.Tree{}}
	for p, b := range builders {
		ts.byPeer[p] = b.Tree(built)
	}
	e.treeMu.Lock()
	e.trees = ts
	e.treeMu.Unlock()
	return ts, nil
}

// leafEntry is an entry of the leaf buildTrees is gathering.
type leafEntry struct {
	key       []byte
	version   kv.Version
	tombstone bool
	pref      []int // the key's home servers
}

// prefs finds the preference lists of ring positions, remembering them by
// first node and N: a scan of the index meets the same few lists again and
// again, in order. It is not safe for concurrent use.
type prefs struct {
	r    *ring.Ring
	seen map[[2]int][]int
}

// newPrefs returns an empty cache of rs's preference lists: a cache
// belongs to one ring state, so a ring that changes never answers from
// the lists of the one before.
func (rs *ringState) newPrefs() *prefs { return &prefs{r: rs.ring, seen: map[[2]int][]int{}} }

// at returns the first n servers of the preference list of position pos.
// The list must not be modified.
func (p *prefs) at(pos ring.Hash, n int) []int {
	k := [2]int{p.r.First(pos), n}
	l, ok := p.seen[k]
	if !ok {
		l = p.r.PreferenceAt(k[0], n)
		p.seen[k] = l
	}
	return l
}

// leafRun is a run of consecutive leaves, [first, last].
type leafRun struct{ first, last uint32 }

// leafRuns returns the runs of consecutive leaves among buckets, in ring
// order, leaving out those beyond a tree of depth.
func leafRuns(buckets []uint32, depth int) []leafRun {
	sorted := slices.Clone(buckets)
	slices.Sort(sorted)
	var runs []leafRun
	for _, b := range slices.Compact(sorted) {
		switch {
		case b >= 1<<depth:
		case len(runs) > 0 && runs[len(runs)-1].last+1 == b:
			runs[len(runs)-1].last = b
		default:
			runs = append(runs, leafRun{b, b})
		}
	}
	return runs
}

// positions returns the ring positions of the run's leaves at depth
// (merkle.Bucket: the top depth bits), [start, end); end wraps to zero
// after the last leaf, which storage.ScanRange reads as the ring's end.
func (r leafRun) positions(depth int) (start, end ring.Hash) {
	shift := 32 - depth
	binary.BigEndian.PutUint32(start[:4], uint32(uint64(r.first)<<shift))
	binary.BigEndian.PutUint32(end[:4], uint32(uint64(r.last+1)<<shift))
	return start, end
}

// treesFor returns trees no older than maxAge, building them if needed.
func (e *Engine) treesFor(ctx context.Context, maxAge time.Duration) (*treeSet, error) {
	e.treeMu.Lock()
	ts := e.trees
	e.treeMu.Unlock()
	if ts != nil && ts.rs == e.rs.Load() && e.opts.Now().Sub(ts.built) <= maxAge {
		return ts, nil
	}
	return e.buildTrees(ctx)
}

func (ts *treeSet) tree(peer, depth int) *merkle.Tree {
	if t := ts.byPeer[peer]; t != nil {
		return t
	}
	return merkle.Empty(depth, ts.built)
}

func contains(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// call sends a request to a peer within the bandwidth budget.
func (e *Engine) call(ctx context.Context, addr string, op wire.Op, body []byte) (wire.Frame, error) {
	if err := e.limiter.Wait(ctx, len(body)); err != nil {
		return wire.Frame{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	f, err := e.tr.Call(cctx, addr, wire.Frame{Kind: uint8(op), Body: body})
	if err != nil {
		if h := e.opts.Health; h != nil {
			h.Failed(addr, err)
		}
		return wire.Frame{}, err
	}
	if f.Status() != wire.StatusOK {
		msg, _ := wire.DecodeMessage(f.Body)
		return wire.Frame{}, fmt.Errorf("%s %s: %s %s: %w", addr, op, f.Status(), msg, errcode.Network)
	}
	if err := e.limiter.Wait(ctx, len(f.Body)); err != nil {
		return wire.Frame{}, err
	}
	return f, nil
}

// errRebuilt aborts a session whose peer rebuilt its tree mid-way.
var errRebuilt = errors.New("peer rebuilt its tree during the comparison")

// SyncPeer compares with one peer and pulls the records this server lacks
// or holds older. It returns how many records it applied.
func (e *Engine) SyncPeer(ctx context.Context, peer string) (int, error) {
	if rs := e.rs.Load(); rs.peerIndex(peer) < 0 || rs.self < 0 {
		return 0, fmt.Errorf("%s is not a peer: %w", peer, errcode.InvalidArg)
	}
	e.mu.Lock()
	if e.sessions[peer] {
		e.mu.Unlock()
		return 0, nil // one at a time; the one under way does the work
	}
	e.sessions[peer] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.sessions, peer)
		e.mu.Unlock()
	}()
	ts, err := e.treesFor(ctx, e.opts.TreeMaxAge)
	if err != nil {
		return 0, err
	}
	p := ts.rs.peerIndex(peer)
	if p < 0 {
		return 0, fmt.Errorf("%s is no longer a peer: %w", peer, errcode.InvalidArg)
	}
	mine := ts.tree(p, e.opts.Depth)
	depth := uint8(e.opts.Depth)
	var theirBuilt uint64
	var equal, differ []uint32 // equal subtrees; differing leaves
	frontier := []uint32{1}
	for len(frontier) > 0 {
		body := wire.AETreeRequest{From: e.opts.Self, Depth: depth, Nodes: frontier}.Append(nil)
		f, err := e.call(ctx, peer, wire.OpAETree, body)
		if err != nil {
			return 0, err
		}
		resp, err := wire.DecodeAETreeResponse(f.Body)
		if err != nil || len(resp.Hashes) != len(frontier) {
			return 0, fmt.Errorf("%s: bad tree response: %w: %w", peer, err, errcode.Network)
		}
		if theirBuilt == 0 {
			theirBuilt = resp.BuiltMS
		} else if resp.BuiltMS != theirBuilt {
			return 0, errRebuilt
		}
		var next []uint32
		for i, n := range frontier {
			switch {
			case merkle.Hash(resp.Hashes[i]) == mine.Node(n):
				equal = append(equal, n)
			case mine.IsLeaf(n):
				differ = append(differ, mine.Leaf(n))
			default:
				next = append(next, 2*n, 2*n+1)
			}
		}
		frontier = next
	}
	// Equal subtrees held the same entries on both sides as of the older
	// of the two trees.
	asOf := min(mine.Built.UnixMilli(), int64(theirBuilt))
	e.confirm(peer, mine, equal, asOf)
	applied := 0
	if len(differ) > 0 {
		applied, err = e.pull(ctx, ts.rs, peer, p, differ)
		if err != nil {
			return applied, err
		}
	}
	e.mu.Lock()
	st := e.stats[peer]
	st.LastCompleted = e.opts.Now()
	st.Rounds++
	st.KeysReceived += int64(applied)
	e.mu.Unlock()
	return applied, nil
}

func (e *Engine) confirm(peer string, t *merkle.Tree, nodes []uint32, asOf int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.confirmed[peer]
	if c == nil {
		c = make([]int64, 1<<t.Depth)
		e.confirmed[peer] = c
	}
	for _, n := range nodes {
		first, last := t.Leaves(n)
		for b := first; b <= last; b++ {
			c[b] = max(c[b], asOf)
		}
	}
}

// pull sends this server's entries of the differing leaves, in chunks,
// and applies the records the peer answers with, page by page.
func (e *Engine) pull(ctx context.Context, rs *ringState, peer string, p int, buckets []uint32) (int, error) {
	byBucket := map[uint32][]wire.Entry{}
	prefs := rs.newPrefs()
	for _, run := range leafRuns(buckets, e.opts.Depth) {
		start, end := run.positions(e.opts.Depth)
		err := e.store.ScanRange(start, end, storage.RangeOptions{Tombstones: true}, func(en storage.RangeEntry) bool {
			if bucket, ok := rs.shared(en.Pos, en.Record, p, e.opts.Depth, prefs); ok {
				byBucket[bucket] = append(byBucket[bucket], wire.Entry{Key: append([]byte(nil), en.Key...), Version: en.Record.Version, Tombstone: en.Record.Tombstone})
			}
			return ctx.Err() == nil
		})
		if err != nil {
			return 0, err
		}
	}
	slices.Sort(buckets)
	applied := 0
	for len(buckets) > 0 {
		// A chunk of whole leaves with at most chunkEntries entries (or one
		// leaf, whatever its size).
		var chunk []uint32
		var entries []wire.Entry
		for len(buckets) > 0 && (len(chunk) == 0 || len(entries)+len(byBucket[buckets[0]]) <= chunkEntries) {
			chunk = append(chunk, buckets[0])
			entries = append(entries, byBucket[buckets[0]]...)
			buckets = buckets[1:]
		}
		var after []byte
		for {
			req := wire.AEDiffRequest{From: e.opts.Self, Depth: uint8(e.opts.Depth), After: after, Buckets: chunk, Entries: entries}
			f, err := e.call(ctx, peer, wire.OpAEDiff, req.Append(nil))
			if err != nil {
				return applied, err
			}
			resp, err := wire.DecodeAEDiffResponse(f.Body)
			if err != nil {
				return applied, fmt.Errorf("%s: bad diff response: %w: %w", peer, err, errcode.Network)
			}
			n, err := e.applyPulled(resp.Records)
			applied += n
			if err != nil {
				return applied, err
			}
			if !resp.More || len(resp.Next) == 0 {
				break
			}
			after = resp.Next
		}
	}
	return applied, nil
}

// applyPulled stores the records of a page received from a peer, with
// one fsync. A tombstone past the grace period is not stored for a key
// this server does not have: it would only be dropped again, and storing
// it would make the replicas differ while they drop their copies.
func (e *Engine) applyPulled(page []wire.KeyRecord) (int, error) {
	recs := make([]storage.KeyRecord, 0, len(page))
	for _, kr := range page {
		if kr.Record.Tombstone && e.opts.Now().Sub(kr.Record.Version.Time()) > e.opts.TombstoneGrace {
			if _, found, err := e.store.Get(kr.Key); err != nil {
				return 0, err
			} else if !found {
				continue
			}
		}
		recs = append(recs, storage.KeyRecord{Key: kr.Key, Record: kr.Record})
	}
	return e.store.ApplyMany(recs)
}

// shared reports whether this server and peer p should both hold the key
// at ring position pos, and its leaf at depth. prefs must be rs's.
func (rs *ringState) shared(pos ring.Hash, rec kv.Record, p, depth int, prefs *prefs) (uint32, bool) {
	if rec.N == 0 {
		return 0, false
	}
	pref := prefs.at(pos, int(rec.N))
	if !contains(pref, rs.self) || !contains(pref, p) {
		return 0, false
	}
	return merkle.Bucket(pos[:], depth), true
}

// HandleTree answers a peer's request for tree hashes.
func (e *Engine) HandleTree(ctx context.Context, req wire.AETreeRequest) (wire.AETreeResponse, error) {
	if rs := e.rs.Load(); rs.peerIndex(req.From) < 0 || rs.self < 0 {
		return wire.AETreeResponse{}, fmt.Errorf("%q is not a peer of this server: %w", req.From, errcode.InvalidArg)
	}
	if int(req.Depth) != e.opts.Depth {
		return wire.AETreeResponse{}, fmt.Errorf("tree depth %d, this server uses %d: %w", req.Depth, e.opts.Depth, errcode.InvalidArg)
	}
	ts, err := e.treesFor(ctx, e.opts.TreeMaxAge)
	if err != nil {
		return wire.AETreeResponse{}, err
	}
	p := ts.rs.peerIndex(req.From)
	if p < 0 {
		return wire.AETreeResponse{}, fmt.Errorf("%q is no longer a peer of this server: %w", req.From, errcode.InvalidArg)
	}
	t := ts.tree(p, e.opts.Depth)
	resp := wire.AETreeResponse{BuiltMS: uint64(t.Built.UnixMilli())}
	for _, n := range req.Nodes {
		resp.Hashes = append(resp.Hashes, t.Node(n))
	}
	return resp, nil
}

// HandleDiff answers a peer's pull: the records of the requested leaves
// that the peer lacks or holds older, from After on, within a page budget.
// A pull means the two differ, so a pull in the other direction is
// scheduled too.
func (e *Engine) HandleDiff(ctx context.Context, req wire.AEDiffRequest) (wire.AEDiffResponse, error) {
	rs := e.rs.Load()
	p := rs.peerIndex(req.From)
	if p < 0 || rs.self < 0 {
		return wire.AEDiffResponse{}, fmt.Errorf("%q is not a peer of this server: %w", req.From, errcode.InvalidArg)
	}
	if int(req.Depth) != e.opts.Depth {
		return wire.AEDiffResponse{}, fmt.Errorf("tree depth %d, this server uses %d: %w", req.Depth, e.opts.Depth, errcode.InvalidArg)
	}
	if len(req.After) == 0 {
		if err := e.maybePullBack(req); err != nil {
			return wire.AEDiffResponse{}, err
		}
	}
	runs := leafRuns(req.Buckets, e.opts.Depth)
	prefs := rs.newPrefs()
	theirs := make(map[string]kv.Version, len(req.Entries))
	for _, en := range req.Entries {
		theirs[string(en.Key)] = en.Version
	}
	// collect returns up to offerBatch keys after the key `after` (nil:
	// from the first leaf), in ring order, that the peer lacks or holds
	// older; their values are then read one by one, so a page never holds
	// more than one batch of keys in memory. It reads the requested
	// leaves' ranges of the ring index only.
	const offerBatch = 4096
	collect := func(after []byte) ([][]byte, error) {
		var keys [][]byte
		for _, run := range runs {
			o := storage.RangeOptions{Tombstones: true}
			if after != nil {
				pos := ring.SHA1(after)
				b := merkle.Bucket(pos[:], e.opts.Depth)
				if b > run.last {
					continue // the cursor is past this run
				}
				if b >= run.first {
					o.After = after // the cursor is in this run
				}
			}
			start, end := run.positions(e.opts.Depth)
			err := e.store.ScanRange(start, end, o, func(en storage.RangeEntry) bool {
				if _, ok := rs.shared(en.Pos, en.Record, p, e.opts.Depth, prefs); !ok {
					return ctx.Err() == nil
				}
				if v, has := theirs[string(en.Key)]; has && !en.Record.Version.Newer(v) {
					return true
				}
				keys = append(keys, append([]byte(nil), en.Key...))
				return len(keys) < offerBatch
			})
			if err != nil || len(keys) >= offerBatch || ctx.Err() != nil {
				return keys, err
			}
		}
		return keys, nil
	}
	var from []byte
	if len(req.After) > 0 {
		// The key of the last record of the previous page: pages follow
		// ring order, so the next starts after its position.
		from = req.After
	}
	var resp wire.AEDiffResponse
	size := 0
scan:
	for {
		offer, err := collect(from)
		if err != nil {
			return wire.AEDiffResponse{}, err
		}
		for _, key := range offer {
			rec, found, err := e.store.Get(key)
			if err != nil {
				return wire.AEDiffResponse{}, err
			}
			if !found {
				continue
			}
			if len(resp.Records) > 0 && size+len(key)+len(rec.Value) > pageBytes {
				resp.More, resp.Next = true, resp.Records[len(resp.Records)-1].Key
				break scan
			}
			resp.Records = append(resp.Records, wire.KeyRecord{Key: key, Record: rec})
			size += len(key) + len(rec.Value) + 32
		}
		if len(offer) < offerBatch {
			break
		}
		from = offer[len(offer)-1]
	}
	e.mu.Lock()
	e.stats[req.From].KeysSent += int64(len(resp.Records))
	e.mu.Unlock()
	return resp, nil
}

// minPullBack is the least time between two pull-back checks of one
// peer's diff requests, and so between two pull-backs from it.
const minPullBack = time.Second

// pullBackProbes is about how many of a diff request's entries a pull-back
// check reads, spread evenly over them.
const pullBackProbes = 256

// maybePullBack queues a pull from the peer that sent a diff request if it
// holds a record this server lacks or holds older. Without the check, two
// servers under steady writes (their trees always differ by the writes in
// flight) would pull from each other without end. The check reads this
// server's version of about pullBackProbes of the request's entries, at
// most once a second per peer: a peer repairing after a restart sends a
// request per chunk of up to chunkEntries entries, and reading them all
// for each request cost a responder a fifth of its CPU at 1,000,000 keys.
// A pull-back only speeds repair up: what a skipped or sampled check
// misses, this server's own rounds find.
func (e *Engine) maybePullBack(req wire.AEDiffRequest) error {
	now := e.opts.Now()
	e.mu.Lock()
	recent := now.Sub(e.lastCheck[req.From]) < minPullBack
	if !recent {
		e.lastCheck[req.From] = now
	}
	e.mu.Unlock()
	if recent {
		return nil
	}
	behind := false
	stride := max(1, len(req.Entries)/pullBackProbes)
	for i := 0; i < len(req.Entries); i += stride {
		en := req.Entries[i]
		v, found, err := e.store.VersionOf(en.Key)
		if err != nil {
			return err
		}
		if !found || en.Version.Newer(v) {
			behind = true
			break
		}
	}
	if !behind {
		return nil
	}
	select {
	case e.pullBack <- req.From:
	default: // pull-backs are already queued
	}
	return nil
}

// PurgeTombstones drops the tombstones older than the grace period that
// every other replica of their key is known to hold: for each, a
// comparison with every replica found their leaf equal after the
// tombstone was written.
func (e *Engine) PurgeTombstones(ctx context.Context) (int, error) {
	rs := e.rs.Load()
	if rs.noPurge || rs.self < 0 {
		return 0, nil
	}
	now := e.opts.Now()
	type victim struct {
		key []byte
		v   kv.Version
	}
	var victims []victim
	e.mu.Lock()
	confirmed := make(map[string][]int64, len(e.confirmed))
	for k, v := range e.confirmed {
		confirmed[k] = append([]int64(nil), v...)
	}
	e.mu.Unlock()
	prefs := rs.newPrefs()
	err := e.store.ScanRange(ring.Hash{}, ring.Hash{}, storage.RangeOptions{Tombstones: true}, func(en storage.RangeEntry) bool {
		rec, pos := en.Record, en.Pos
		if !rec.Tombstone || rec.N == 0 || now.Sub(rec.Version.Time()) <= e.opts.TombstoneGrace {
			return ctx.Err() == nil
		}
		pref := prefs.at(pos, int(rec.N))
		if !contains(pref, rs.self) {
			return true
		}
		bucket := merkle.Bucket(pos[:], e.opts.Depth)
		need := rec.Version.Time().Add(clockSlack).UnixMilli()
		for _, p := range pref {
			if p == rs.self {
				continue
			}
			c := confirmed[rs.addr(p)]
			if c == nil || c[bucket] <= need {
				return true
			}
		}
		victims = append(victims, victim{append([]byte(nil), en.Key...), rec.Version})
		return true
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range victims {
		ok, err := e.store.PurgeTombstone(v.key, v.v)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	e.mu.Lock()
	e.purged += int64(n)
	e.mu.Unlock()
	return n, nil
}

// Stats returns the counters of every peer.
func (e *Engine) Stats() map[string]PeerStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]PeerStats, len(e.stats))
	for k, v := range e.stats {
		out[k] = *v
	}
	return out
}

// Totals returns the rounds completed and tombstones purged.
func (e *Engine) Totals() (rounds, purged int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rounds, e.purged
}

// Handle answers the anti-entropy requests of the native protocol
// (OpAETree and OpAEDiff) within the bandwidth budget.
func (e *Engine) Handle(ctx context.Context, f wire.Frame) wire.Frame {
	var body []byte
	var err error
	switch f.Op() {
	case wire.OpAETree:
		var req wire.AETreeRequest
		if req, err = wire.DecodeAETreeRequest(f.Body); err != nil {
			return fail(wire.StatusBadRequest, err)
		}
		var resp wire.AETreeResponse
		if resp, err = e.HandleTree(ctx, req); err == nil {
			body = resp.Append(nil)
		}
	case wire.OpAEDiff:
		var req wire.AEDiffRequest
		if req, err = wire.DecodeAEDiffRequest(f.Body); err != nil {
			return fail(wire.StatusBadRequest, err)
		}
		var resp wire.AEDiffResponse
		if resp, err = e.HandleDiff(ctx, req); err == nil {
			body = resp.Append(nil)
		}
	default:
		return fail(wire.StatusBadRequest, fmt.Errorf("not an anti-entropy request: %s", f.Op()))
	}
	if err != nil {
		if errors.Is(err, errcode.InvalidArg) {
			return fail(wire.StatusBadRequest, err)
		}
		return fail(wire.StatusInternal, err)
	}
	if err := e.limiter.Wait(ctx, len(body)); err != nil {
		return fail(wire.StatusUnavailable, err)
	}
	return wire.Frame{Flags: uint8(wire.StatusOK), Body: body}
}

func fail(st wire.Status, err error) wire.Frame {
	return wire.Frame{Flags: uint8(st), Body: wire.AppendMessage(nil, err.Error())}
}
