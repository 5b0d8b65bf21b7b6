package coord

import (
	"context"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Get reads key from its n home replicas and returns the newest record
// among the first r replies (n, r >= 1). A key that is absent or deleted
// in the newest reply is errcode.NotFound; fewer than r replies is a
// QuorumError. Once every replica answered, those that answered with an
// older version (or not found) are sent the newest one (read repair), off
// the caller's path.
func (c *Coordinator) Get(ctx context.Context, key []byte, n, r int) (kv.Record, error) {
	req, err := quorum.Explicit(quorum.Read, n, r)
	if err != nil {
		return kv.Record{}, err
	}
	return c.GetReq(ctx, key, req)
}

// GetReq reads key as req says. In linearizable mode, when the replies
// differ, the newest record is written back to a majority of the home
// replicas before GetReq returns it.
func (c *Coordinator) GetReq(ctx context.Context, key []byte, req Req) (kv.Record, error) {
	if err := c.checkKey(key); err != nil {
		return kv.Record{}, err
	}
	for attempt := 1; ; attempt++ {
		v := c.View()
		n, r, err := resolve(v, req, true)
		if err != nil {
			return kv.Record{}, err
		}
		g := c.newGetOp(ctx, v, key, n, r, req.Linearizable)
		rec, stale, err := g.run()
		if err == nil || !stale || attempt == maxAttempts || c.View().Epoch() <= v.Epoch() {
			return rec, err
		}
	}
}

func (c *Coordinator) newGetOp(ctx context.Context, v *topology.View, key []byte, n, r int, lin bool) *getOp {
	g := &getOp{c: c, v: v, ctx: ctx, key: key, r: r, lin: lin}
	if lin {
		// A linearizable read needs a majority of every ring that
		// writes go to: during a move, of the old homes and the new.
		g.sets = v.WriteSets(key, n)
		g.homes = topology.Union(g.sets)
		return g
	}
	// One ring's homes (distinct servers): the set is its own union.
	g.one[0] = v.ReadHomes(key, n)
	g.sets = g.one[:]
	g.homes = g.one[0]
	return g
}

// run starts the read and decides it in the caller's goroutine; the
// replies still due are then collected in the background (for read
// repair), counted before this returns so Wait sees them. It also reports
// whether a replica refused because it knew a newer ring, as known when
// the read was decided (the background goes on updating g).
func (g *getOp) run() (kv.Record, bool, error) {
	g.start()
	return g.wait()
}

// wait collects the replies of a read started until its outcome is known.
func (g *getOp) wait() (kv.Record, bool, error) {
	c := g.c
	for g.inflight > 0 && !g.decided {
		select {
		case rp := <-g.replies:
			g.inflight--
			g.step(rp)
		case <-g.ctx.Done():
			stale := g.stale
			c.bg.add(1)
			g.later()
			return kv.Record{}, stale, fmt.Errorf("get: %w: %w", g.ctx.Err(), errcode.Network)
		}
	}
	if !g.decided { // unreachable: every reply is an answer or a failure
		g.decided = true
		g.err = newQuorumError("get", g.r, len(g.answers), len(g.homes), g.fails, false)
	}
	rec, stale, err := g.rec, g.stale, g.err
	c.bg.add(1)
	g.later()
	return rec, stale, err
}

// getOp is one read: requests to the home replicas, their answers, and
// the outcome once decided.
type getOp struct {
	c     *Coordinator
	v     *topology.View
	ctx   context.Context
	key   []byte
	r     int
	lin   bool
	sets  [][]int  // the homes of each ring whose R answers the read needs
	homes []int    // their union
	one   [1][]int // sets of a read outside a move's joint placement

	replies  chan reply
	inflight int
	rctx     context.Context
	cancel   context.CancelFunc
	req      wire.Frame
	skipped  []int // homes not asked because the detector believes them down
	newest   kv.Record
	answers  []answered
	ansBuf   [3]answered // answers of up to three homes, without an allocation
	failed   []int
	fails    []ReplicaError
	corrupt  []int // replicas that found the record corrupt: repaired too
	stale    bool
	decided  bool
	rec      kv.Record
	err      error
	// spawn runs the background work left once the read is decided; nil
	// starts a goroutine (a batch collects it instead).
	spawn func(leftover)
}

// leftover is an operation's background work once it is decided (the
// replies still due, repairs, hints); an interface rather than a func so
// that handing it over allocates nothing.
type leftover interface{ finish() }

var (
	_ leftover = (*getOp)(nil)
	_ leftover = (*writeOp)(nil)
)

// finish is the read's leftover work: rest.
func (g *getOp) finish() { g.rest() }

func (g *getOp) later() {
	if g.spawn != nil {
		g.spawn(g)
		return
	}
	go g.rest()
}

// count returns how many servers of set are in list.
func count(set []int, list []int) int {
	n := 0
	for _, s := range set {
		if contains(list, s) {
			n++
		}
	}
	return n
}

// enough reports whether every ring has R answers.
func (g *getOp) enough() bool {
	for _, set := range g.sets {
		n := 0
		for _, a := range g.answers {
			if contains(set, a.server) {
				n++
			}
		}
		if n < min(g.r, len(set)) {
			return false
		}
	}
	return true
}

// hopeless reports whether some ring can no longer give R answers from
// the homes asked.
func (g *getOp) hopeless() bool {
	for _, set := range g.sets {
		if len(set)-count(set, g.failed)-count(set, g.skipped) < min(g.r, len(set)) {
			return true
		}
	}
	return false
}

// answered is a replica's answer: its record (zero version: not found).
type answered struct {
	server int
	rec    kv.Record
}

// start sends the read to the home replicas believed up (to every home
// when too few are: the detector may be wrong).
func (g *getOp) start() {
	c := g.c
	g.replies = make(chan reply, len(g.homes))
	if len(g.homes) <= len(g.ansBuf) {
		g.answers = g.ansBuf[:0]
	} else {
		g.answers = make([]answered, 0, len(g.homes))
	}
	req := frame(g.v, wire.OpGet, 0, len(g.key)+4, wire.GetRequest{Key: g.key}.Append)
	var upBuf [8]int
	up := upBuf[:0]
	for _, h := range g.homes {
		if c.up(g.v, h) {
			up = append(up, h)
		}
	}
	probeAll := false
	for _, set := range g.sets {
		if count(set, up) < min(g.r, len(set)) {
			probeAll = true
		}
	}
	g.req = req
	g.rctx, g.cancel = c.requestContext(g.ctx, 0)
	for _, h := range g.homes {
		if probeAll || contains(up, h) {
			g.inflight++
			if len(g.homes) == 1 && c.sendHere(g.rctx, g.v, h, req, g.replies) {
				continue
			}
			c.send(g.rctx, g.v, h, -1, req, g.replies, nil)
		} else {
			g.skipped = append(g.skipped, h)
		}
	}
}

// step takes one reply into account and decides the outcome when it can.
func (g *getOp) step(rp reply) {
	c := g.c
	if rp.err == nil && rp.f.Status() == wire.StatusOK {
		rec, err := wire.DecodeRecord(rp.f.Body)
		if err != nil {
			rp.err = fmt.Errorf("bad reply: %w: %w", err, errcode.Network)
		} else {
			g.answers = append(g.answers, answered{rp.server, rec})
			if rec.Version.Newer(g.newest.Version) {
				g.newest = rec
			}
		}
	} else if rp.err == nil {
		g.answers = append(g.answers, answered{server: rp.server}) // not found
	}
	if rp.err != nil {
		if rp.corrupt {
			g.corrupt = append(g.corrupt, rp.server)
		}
		g.stale = g.stale || rp.stale
		g.failed = append(g.failed, rp.server)
		g.fails = append(g.fails, ReplicaError{g.v.Addrs()[rp.server], rp.err})
		if !g.decided && g.hopeless() {
			if len(g.skipped) > 0 {
				// The homes believed up cannot give R answers any more: ask
				// those believed down too (the detector may be wrong, for
				// one that came back and was not probed yet).
				for _, h := range g.skipped {
					g.inflight++
					c.send(g.rctx, g.v, h, -1, g.req, g.replies, nil)
				}
				g.skipped = nil
				return
			}
			g.decided = true
			g.err = newQuorumError("get", g.r, len(g.answers), len(g.homes), g.fails, false)
		}
		return
	}
	if g.decided || !g.enough() {
		return
	}
	g.decided = true
	if g.lin && !agree(g.answers) {
		// The answers differ: the newest may be on a minority only. Make
		// a majority hold it before anyone is told.
		c.writeBack.Add(1)
		stale, err := c.writeBackNewest(g.ctx, g.v, g.key, g.newest, g.answers, g.sets)
		g.stale = g.stale || stale
		if err != nil {
			g.err = fmt.Errorf("get: writing back the newest version: %w", err)
			return
		}
		g.answers = g.answers[:0] // the write-back repaired them
	}
	c.answer(g.key, g.newest, func(rec kv.Record, err error) { g.rec, g.err = rec, err })
}

// rest collects the replies still due and sends read repairs. It runs as
// tracked background work (the caller added it).
func (g *getOp) rest() {
	defer g.c.bg.done()
	for ; g.inflight > 0; g.inflight-- {
		g.step(<-g.replies)
	}
	g.cancel()
	if !g.c.opts.DisableReadRepair {
		g.c.readRepair(g.ctx, g.v, g.key, g.newest, g.answers, g.corrupt)
	}
}

// answer reports the newest record of a read.
func (c *Coordinator) answer(key []byte, newest kv.Record, decide func(kv.Record, error)) {
	if !newest.Version.IsZero() {
		c.clock.Observe(newest.Version)
	}
	if newest.Live() {
		decide(newest, nil)
	} else {
		decide(kv.Record{}, fmt.Errorf("get %q: %w", truncate(key), errcode.NotFound))
	}
}

// agree reports whether every answer carries the same version.
func agree(answers []answered) bool {
	for _, a := range answers[1:] {
		if a.rec.Version != answers[0].rec.Version {
			return false
		}
	}
	return true
}

// writeBackNewest stores newest on the home replicas that did not answer
// with it until a majority of each ring's homes holds it (counting those
// that answered with it).
// It also reports whether a replica refused because it knew a newer ring.
func (c *Coordinator) writeBackNewest(ctx context.Context, v *topology.View, key []byte, newest kv.Record, answers []answered, sets [][]int) (stale bool, err error) {
	var holds []int
	for _, a := range answers {
		if a.rec.Version == newest.Version {
			holds = append(holds, a.server)
		}
	}
	homes := topology.Union(sets)
	enough := func() bool {
		for _, set := range sets {
			if count(set, holds) < Majority(len(set)) {
				return false
			}
		}
		return true
	}
	body := wire.PutRequest{Key: key, Record: newest}
	put := frame(v, wire.OpPut, 0, body.Size(), body.Append)
	var targets []int
	for _, h := range homes {
		if !contains(holds, h) {
			targets = append(targets, h)
		}
	}
	replies := c.sendAll(ctx, v, targets, put)
	inflight := len(targets)
	var fails []ReplicaError
	for ; inflight > 0 && !enough(); inflight-- {
		r := <-replies
		stale = stale || r.stale
		if r.err != nil {
			fails = append(fails, ReplicaError{v.Addrs()[r.server], r.err})
			continue
		}
		holds = append(holds, r.server)
	}
	if !enough() {
		return stale, newQuorumError("write back", Majority(len(sets[0])), len(holds), len(homes), fails, false)
	}
	return stale, nil
}

// readRepair sends newest to every replica that answered with an older
// version or not found, or found its record corrupt.
func (c *Coordinator) readRepair(ctx context.Context, v *topology.View, key []byte, newest kv.Record, answers []answered, corrupt []int) {
	if newest.Version.IsZero() {
		return
	}
	stale := append([]int(nil), corrupt...)
	for _, a := range answers {
		if newest.Version.Newer(a.rec.Version) {
			stale = append(stale, a.server)
		}
	}
	if len(stale) == 0 {
		return
	}
	body := wire.PutRequest{Key: key, Record: newest}
	put := frame(v, wire.OpPut, 0, body.Size(), body.Append)
	repairs := c.sendAll(ctx, v, stale, put)
	for range stale {
		if r := <-repairs; r.err != nil {
			c.log.Debug("read repair failed", "peer", v.Addrs()[r.server], "err", r.err)
		} else {
			c.repairs.Add(1)
		}
	}
}
