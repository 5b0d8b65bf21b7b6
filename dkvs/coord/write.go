package coord

import (
	"context"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Put stores value under key on the key's n home replicas and returns once
// w of them acknowledged a durable write (n, w >= 1). The others still
// complete in the background. It returns the version written.
func (c *Coordinator) Put(ctx context.Context, key, value []byte, n, w int) (kv.Version, error) {
	req, err := quorum.Explicit(quorum.Write, n, w)
	if err != nil {
		return kv.Version{}, err
	}
	return c.PutReq(ctx, key, value, req)
}

// Delete writes a tombstone for key on its n home replicas, acknowledged
// by w of them.
func (c *Coordinator) Delete(ctx context.Context, key []byte, n, w int) (kv.Version, error) {
	req, err := quorum.Explicit(quorum.Write, n, w)
	if err != nil {
		return kv.Version{}, err
	}
	return c.DeleteReq(ctx, key, req)
}

// PutReq stores value under key as req says.
func (c *Coordinator) PutReq(ctx context.Context, key, value []byte, req Req) (kv.Version, error) {
	if err := c.lim.CheckValue(value); err != nil {
		return kv.Version{}, err
	}
	if value == nil {
		value = []byte{}
	}
	return c.write(ctx, "put", key, kv.Record{Value: value}, req)
}

// DeleteReq deletes key as req says (a tombstone goes the put path).
func (c *Coordinator) DeleteReq(ctx context.Context, key []byte, req Req) (kv.Version, error) {
	return c.write(ctx, "delete", key, kv.Record{Tombstone: true}, req)
}

func (c *Coordinator) write(ctx context.Context, op string, key []byte, rec kv.Record, req Req) (kv.Version, error) {
	if err := c.checkKey(key); err != nil {
		return kv.Version{}, err
	}
	n, w, err := c.resolve(req, false)
	if err != nil {
		return kv.Version{}, err
	}
	wo := &writeOp{c: c, ctx: ctx, op: op, key: key, rec: rec, n: n, w: w, lin: req.Linearizable}
	walk := c.ring.Walk(key)
	wo.homes = walk[:n]
	if !c.opts.DisableSloppyQuorum && !req.Linearizable {
		wo.fallbacks = walk[n:]
	}
	// The caller's goroutine runs the operation until its outcome is
	// known; the replies still due are collected in the background.
	return wo.run()
}

// writeOp is one put or delete. In the default mode it sends the record to
// the home replicas and replaces each home replica that is down or fails
// by the next fallback server, which keeps the record as a hint for it. In
// linearizable mode it first reads the highest version from a majority of
// the home replicas and writes a strictly higher one to home replicas
// only. It reports once W acknowledgements arrived or can no longer
// arrive, and runs until every request it sent has been answered.
type writeOp struct {
	c         *Coordinator
	ctx       context.Context
	op        string
	key       []byte
	rec       kv.Record
	n, w      int
	lin       bool
	homes     []int
	fallbacks []int // in ring order; empty without sloppy quorum
	nextFB    int
	put       wire.Frame
	sent      []int           // homes sent the write
	rctx      context.Context // shared by the first requests to the homes
	cancel    context.CancelFunc
	replies   chan reply
	inflight  int
	homesOut  int  // requests to home replicas not yet answered
	acks      int  // home replicas that acknowledged
	hintAcks  int  // fallbacks that acknowledged a hint
	maybe     bool // some request may have been applied
	fails     []ReplicaError
}

func (wo *writeOp) sendHome(s int) {
	wo.inflight++
	wo.homesOut++
	wo.sent = append(wo.sent, s)
	wo.c.send(wo.rctx, s, -1, wo.put, wo.replies, nil)
}

// placeHint makes sure a home replica that did not get the write will: a
// fallback server keeps it as a hint in its place (and counts toward W);
// when no fallback can (none left, or sloppy quorum off), another home
// replica that was sent the write keeps the hint, without counting toward
// W, and hands it over when the home answers again.
func (wo *writeOp) placeHint(home int) {
	if wo.sendFallback(home) {
		return
	}
	for _, h := range wo.sent {
		if h != home && wo.c.writable(h, wo.rec.Tombstone) {
			hint := wire.HintRequest{Target: wo.c.addrs[home], Key: wo.key, Record: wo.rec}
			discard := make(chan reply, 1)
			wo.c.sendAlone(wo.ctx, h, home, wire.Frame{Kind: uint8(wire.OpHint), Body: hint.Append(nil)}, discard)
			return
		}
	}
}

// sendFallback sends the record to the next fallback that is up, as a
// hint for home. It reports whether one was found.
func (wo *writeOp) sendFallback(home int) bool {
	for wo.nextFB < len(wo.fallbacks) {
		f := wo.fallbacks[wo.nextFB]
		wo.nextFB++
		if !wo.c.writable(f, wo.rec.Tombstone) {
			continue
		}
		hint := wire.HintRequest{Target: wo.c.addrs[home], Key: wo.key, Record: wo.rec}
		wo.inflight++
		wo.c.sendAlone(wo.ctx, f, home, wire.Frame{Kind: uint8(wire.OpHint), Body: hint.Append(nil)}, wo.replies)
		return true
	}
	return false
}

func (wo *writeOp) fail(server int, err error) {
	wo.fails = append(wo.fails, ReplicaError{wo.c.addrs[server], err})
}

// targets returns the home replicas to send to: those believed up and
// writable, or all of them when too few are (the detector may be wrong).
func (wo *writeOp) targets(need int) (send, skipped []int) {
	for _, h := range wo.homes {
		if wo.c.writable(h, wo.rec.Tombstone) {
			send = append(send, h)
		} else {
			skipped = append(skipped, h)
		}
	}
	if len(send) < need && len(wo.fallbacks) == 0 {
		return wo.homes, nil
	}
	return send, skipped
}

func (wo *writeOp) run() (kv.Version, error) {
	c := wo.c
	if wo.lin {
		v, err := c.highestVersion(wo.ctx, wo.key, wo.homes, Majority(len(wo.homes)))
		if err != nil {
			return kv.Version{}, fmt.Errorf("%s: reading versions: %w", wo.op, err)
		}
		wo.rec.Version = c.clock.After(v) // strictly higher than any version a majority holds
	} else {
		wo.rec.Version = c.clock.Now()
	}
	wo.rec.N = uint8(wo.n)
	body := wire.PutRequest{Key: wo.key, Record: wo.rec}
	wo.put = wire.Frame{Kind: uint8(wire.OpPut), Body: body.Append(make([]byte, 0, body.Size()))}
	wo.replies = make(chan reply, len(wo.homes)+len(wo.fallbacks))
	wo.rctx, wo.cancel = c.requestContext(wo.ctx, len(wo.put.Body))

	send, skipped := wo.targets(wo.w)
	for _, h := range send {
		wo.sendHome(h)
	}
	for _, h := range skipped {
		wo.fail(h, errPeerDown)
		wo.placeHint(h)
	}
	// Too few targets for W: rather than fail, try the homes the detector
	// believes down (it may be wrong).
	if wo.inflight < wo.w {
		for _, h := range skipped {
			wo.sendHome(h)
		}
	}
	for wo.inflight > 0 {
		var r reply
		select {
		case r = <-wo.replies:
		case <-wo.ctx.Done():
			// The write goes on in the background: it may or may not land.
			c.bg.add(1)
			go wo.drain()
			return kv.Version{}, fmt.Errorf("%s: %w: %w", wo.op, wo.ctx.Err(), ErrUnknownOutcome)
		}
		wo.inflight--
		if r.hintFor < 0 {
			wo.homesOut--
		}
		if r.mayHaveApplied() {
			wo.maybe = true
		}
		if r.err == nil {
			if r.hintFor < 0 {
				if cur, err := wire.DecodeVersion(r.f.Body); err == nil {
					c.clock.Observe(cur)
				}
				wo.acks++
			} else {
				wo.hintAcks++
			}
		} else {
			wo.fail(r.server, r.err)
			if r.netErr || r.refused {
				home := r.server
				if r.hintFor >= 0 {
					home = r.hintFor
				}
				wo.placeHint(home)
			}
		}
		if wo.done() {
			// Report at once; the replies still due are collected in the
			// background, counted before this returns so that Wait cannot
			// miss them.
			c.bg.add(1)
			go wo.drain()
			return wo.rec.Version, nil // drain cancels rctx
		}
	}
	wo.cancel()
	return kv.Version{}, newQuorumError(wo.op, wo.w, wo.acks+wo.hintAcks, len(wo.homes), wo.fails, wo.maybe)
}

// done reports whether the write has its W acknowledgements. Hints on
// fallbacks count only once the home replicas can no longer make W on
// their own: a home that is merely slower than a fallback is waited for
// (until it answers or fails), because a get reads home replicas only, and
// a write acknowledged by one home and a hint could otherwise be missed by
// the very next get, from the same client, that reads the two other homes
// (one just back from a restart, one still applying the write).
func (wo *writeOp) done() bool {
	if wo.acks >= wo.w {
		return true
	}
	return wo.acks+wo.hintAcks >= wo.w && wo.acks+wo.homesOut < wo.w
}

// drain collects the replies still due after the operation was decided,
// sending hints for home replicas that fail meanwhile, so that every live
// replica gets the write before Wait returns.
func (wo *writeOp) drain() {
	defer wo.c.bg.done()
	defer wo.cancel()
	for wo.inflight > 0 {
		r := <-wo.replies
		wo.inflight--
		if r.err != nil && (r.netErr || r.refused) {
			home := r.server
			if r.hintFor >= 0 {
				home = r.hintFor
			}
			wo.placeHint(home)
		}
	}
}

// highestVersion asks the home replicas for the version they hold of key
// and returns the highest among the first need answers (a replica with no
// record answers the zero version).
func (c *Coordinator) highestVersion(ctx context.Context, key []byte, homes []int, need int) (kv.Version, error) {
	req := wire.Frame{Kind: uint8(wire.OpGet), Flags: wire.GetVersionOnly, Body: wire.GetRequest{Key: key}.Append(nil)}
	replies := c.sendAll(ctx, homes, req)
	inflight := len(homes)
	var fails []ReplicaError
	var highest kv.Version
	got := 0
	for ; inflight > 0; inflight-- {
		var rp reply
		select {
		case rp = <-replies:
		case <-ctx.Done():
			// Nothing was written yet: a clean failure.
			return kv.Version{}, fmt.Errorf("%w: %w", ctx.Err(), errcode.Network)
		}
		if rp.err == nil && rp.f.Status() == wire.StatusOK {
			if rec, err := wire.DecodeRecord(rp.f.Body); err != nil {
				rp.err = fmt.Errorf("bad reply: %w: %w", err, errcode.Network)
			} else if rec.Version.Newer(highest) {
				highest = rec.Version
			}
		}
		if rp.err != nil {
			fails = append(fails, ReplicaError{c.addrs[rp.server], rp.err})
			// The reply channel holds one reply per request: the requests
			// still out finish without anyone waiting for them.
			if len(fails) > len(homes)-need {
				return kv.Version{}, newQuorumError("read versions", need, got, len(homes), fails, false)
			}
			continue
		}
		if got++; got >= need {
			return highest, nil
		}
	}
	return kv.Version{}, newQuorumError("read versions", need, got, len(homes), fails, false)
}
