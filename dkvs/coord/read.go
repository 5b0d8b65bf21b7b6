package coord

import (
	"context"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/quorum"
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
	n, r, err := c.resolve(req, true)
	if err != nil {
		return kv.Record{}, err
	}
	g := &getOp{c: c, ctx: ctx, key: key, r: r, lin: req.Linearizable, homes: c.ring.Preference(key, n)}
	g.start()
	// The caller's goroutine runs the operation until its outcome is
	// known; the replies still due are then collected in the background
	// (for read repair), counted before this returns so Wait sees them.
	for g.inflight > 0 && !g.decided {
		select {
		case rp := <-g.replies:
			g.inflight--
			g.step(rp)
		case <-ctx.Done():
			c.bg.add(1)
			go g.rest()
			return kv.Record{}, fmt.Errorf("get: %w: %w", ctx.Err(), errcode.Network)
		}
	}
	c.bg.add(1)
	go g.rest()
	if !g.decided { // unreachable: every reply is an answer or a failure
		return kv.Record{}, newQuorumError("get", g.r, len(g.answers), len(g.homes), g.fails, false)
	}
	return g.rec, g.err
}

// getOp is one read: requests to the home replicas, their answers, and
// the outcome once decided.
type getOp struct {
	c     *Coordinator
	ctx   context.Context
	key   []byte
	r     int
	lin   bool
	homes []int

	replies  chan reply
	inflight int
	rctx     context.Context
	cancel   context.CancelFunc
	req      wire.Frame
	skipped  []int // homes not asked because the detector believes them down
	newest   kv.Record
	answers  []answered
	fails    []ReplicaError
	decided  bool
	rec      kv.Record
	err      error
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
	req := wire.Frame{Kind: uint8(wire.OpGet), Body: wire.GetRequest{Key: g.key}.Append(nil)}
	up := 0
	for _, h := range g.homes {
		if c.up(h) {
			up++
		}
	}
	probeAll := up < g.r
	g.req = req
	g.rctx, g.cancel = c.requestContext(g.ctx, 0)
	for _, h := range g.homes {
		if probeAll || c.up(h) {
			g.inflight++
			c.send(g.rctx, h, -1, req, g.replies, nil)
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
		g.fails = append(g.fails, ReplicaError{c.addrs[rp.server], rp.err})
		if !g.decided && len(g.fails)+len(g.skipped) > len(g.homes)-g.r && len(g.skipped) > 0 {
			// The homes believed up cannot give R answers any more: ask
			// those believed down too (the detector may be wrong, for one
			// that came back and was not probed yet).
			for _, h := range g.skipped {
				g.inflight++
				c.send(g.rctx, h, -1, g.req, g.replies, nil)
			}
			g.skipped = nil
			return
		}
		if !g.decided && len(g.fails) > len(g.homes)-g.r {
			g.decided = true
			g.err = newQuorumError("get", g.r, len(g.answers), len(g.homes), g.fails, false)
		}
		return
	}
	if g.decided || len(g.answers) < g.r {
		return
	}
	g.decided = true
	if g.lin && !agree(g.answers) {
		// The answers differ: the newest may be on a minority only. Make
		// a majority hold it before anyone is told.
		c.writeBack.Add(1)
		if err := c.writeBackNewest(g.ctx, g.key, g.newest, g.answers, g.homes); err != nil {
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
		g.c.readRepair(g.ctx, g.key, g.newest, g.answers)
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

// writeBackNewest stores newest on the home replicas that did not answer with it
// until a majority of homes holds it (counting those that answered with
// it).
func (c *Coordinator) writeBackNewest(ctx context.Context, key []byte, newest kv.Record, answers []answered, homes []int) error {
	holds := map[int]bool{}
	for _, a := range answers {
		if a.rec.Version == newest.Version {
			holds[a.server] = true
		}
	}
	need := Majority(len(homes))
	have := len(holds)
	body := wire.PutRequest{Key: key, Record: newest}
	put := wire.Frame{Kind: uint8(wire.OpPut), Body: body.Append(make([]byte, 0, body.Size()))}
	var targets []int
	for _, h := range homes {
		if !holds[h] {
			targets = append(targets, h)
		}
	}
	replies := c.sendAll(ctx, targets, put)
	inflight := len(targets)
	var fails []ReplicaError
	for ; inflight > 0 && have < need; inflight-- {
		r := <-replies
		if r.err != nil {
			fails = append(fails, ReplicaError{c.addrs[r.server], r.err})
			continue
		}
		have++
	}
	if have < need {
		return newQuorumError("write back", need, have, len(homes), fails, false)
	}
	return nil
}

// readRepair sends newest to every replica that answered with an older
// version or not found.
func (c *Coordinator) readRepair(ctx context.Context, key []byte, newest kv.Record, answers []answered) {
	if newest.Version.IsZero() {
		return
	}
	var stale []int
	for _, a := range answers {
		if newest.Version.Newer(a.rec.Version) {
			stale = append(stale, a.server)
		}
	}
	if len(stale) == 0 {
		return
	}
	body := wire.PutRequest{Key: key, Record: newest}
	put := wire.Frame{Kind: uint8(wire.OpPut), Body: body.Append(make([]byte, 0, body.Size()))}
	repairs := c.sendAll(ctx, stale, put)
	for range stale {
		if r := <-repairs; r.err != nil {
			c.log.Debug("read repair failed", "peer", c.addrs[r.server], "err", r.err)
		} else {
			c.repairs.Add(1)
		}
	}
}
