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

// maxAttempts bounds how many times an operation starts again after a
// replica answered with a newer ring: once is the rule (a ring changes
// by a few epochs at a time), more is a ring changing under the request.
const maxAttempts = 4

func (c *Coordinator) write(ctx context.Context, op string, key []byte, rec kv.Record, req Req) (kv.Version, error) {
	if err := c.checkKey(key); err != nil {
		return kv.Version{}, err
	}
	for attempt := 1; ; attempt++ {
		v := c.View()
		n, w, err := resolve(v, req, false)
		if err != nil {
			return kv.Version{}, err
		}
		wo := c.newWriteOp(ctx, v, op, key, rec, n, w, req.Linearizable)
		wo.replace = maxAttempts
		// The caller's goroutine runs the operation until its outcome is
		// known; the replies still due are collected in the background.
		version, stale, err := wo.run()
		if err == nil || !stale || attempt == maxAttempts || c.View().Epoch() <= v.Epoch() {
			return version, err
		}
		// A replica knew a newer ring: place the same record again. What
		// was applied with the old ring holds the same version.
		rec.Version = wo.rec.Version
	}
}

func (c *Coordinator) newWriteOp(ctx context.Context, v *topology.View, op string, key []byte, rec kv.Record, n, w int, lin bool) *writeOp {
	wo := &writeOp{c: c, v: v, ctx: ctx, op: op, key: key, rec: rec, n: n, w: w, lin: lin}
	wo.out, wo.acked, wo.hinted = wo.sets3[0][:0], wo.sets3[1][:0], wo.sets3[2][:0]
	wo.sets = v.WriteSets(key, n)
	if len(wo.sets) == 1 {
		wo.homes = wo.sets[0] // one ring's homes are distinct servers
	} else {
		wo.homes = topology.Union(wo.sets)
	}
	if !c.opts.DisableSloppyQuorum && !lin {
		for _, s := range v.Walk(key) {
			if !contains(wo.homes, s) {
				wo.fallbacks = append(wo.fallbacks, s)
			}
		}
	}
	return wo
}

// addServer adds s to the set list.
func addServer(list []int, s int) []int {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

// removeServer removes s from the set list.
func removeServer(list []int, s int) []int {
	for i, v := range list {
		if v == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

func contains(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// writeOp is one put or delete. In the default mode it sends the record to
// the home replicas and replaces each home replica that is down or fails
// by the next fallback server, which keeps the record as a hint for it. In
// linearizable mode it first reads the highest version from a majority of
// the home replicas and writes a strictly higher one to home replicas
// only. During a move the homes are those of both rings, and the write
// needs W acknowledgements among each ring's homes. It reports once the
// acknowledgements arrived or can no longer arrive, and runs until every
// request it sent has been answered.
type writeOp struct {
	c         *Coordinator
	v         *topology.View
	ctx       context.Context
	op        string
	key       []byte
	rec       kv.Record
	n, w      int
	lin       bool
	sets      [][]int // the homes of each ring the write goes to
	homes     []int   // their union
	fallbacks []int   // in ring order; empty without sloppy quorum
	nextFB    int
	put       wire.Frame
	sent      []int           // homes sent the write
	rctx      context.Context // shared by the first requests to the homes
	cancel    context.CancelFunc
	replies   chan reply
	inflight  int
	out       []int // homes sent the write and not answered yet
	acked     []int // homes that acknowledged
	hinted    []int // homes for which a fallback acknowledged a hint
	// sets3 backs out, acked and hinted for up to four servers each: they
	// were maps, three allocations per write and more per insert.
	sets3   [3][4]int
	maybe   bool // some request may have been applied
	stale   bool // a replica knew a newer ring
	replace int  // how many more times a write refused for a newer ring is placed again
	fails   []ReplicaError
	// spawn runs the background work left once the write is decided; nil
	// starts a goroutine (a batch collects it instead).
	spawn func(leftover)
}

// finish is the write's leftover work: drain.
func (wo *writeOp) finish() { wo.drain() }

func (wo *writeOp) later() {
	if wo.spawn != nil {
		wo.spawn(wo)
		return
	}
	go wo.drain()
}

func (wo *writeOp) sendHome(s int) {
	wo.inflight++
	wo.out = addServer(wo.out, s)
	wo.sent = append(wo.sent, s)
	if len(wo.homes) == 1 && wo.c.sendHere(wo.rctx, wo.v, s, wo.put, wo.replies) {
		return
	}
	wo.c.send(wo.rctx, wo.v, s, -1, wo.put, wo.replies, nil)
}

func (wo *writeOp) hintFrame(home int) wire.Frame {
	hint := wire.HintRequest{Target: wo.v.Addrs()[home], Key: wo.key, Record: wo.rec}
	return frame(wo.v, wire.OpHint, 0, len(hint.Target)+len(hint.Key)+len(hint.Record.Value)+40, hint.Append)
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
		if h != home && wo.c.writable(wo.v, h, wo.rec.Tombstone) {
			discard := make(chan reply, 1)
			wo.c.sendAlone(wo.ctx, wo.v, h, home, wo.hintFrame(home), discard)
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
		if !wo.c.writable(wo.v, f, wo.rec.Tombstone) {
			continue
		}
		wo.inflight++
		wo.c.sendAlone(wo.ctx, wo.v, f, home, wo.hintFrame(home), wo.replies)
		return true
	}
	return false
}

func (wo *writeOp) fail(server int, err error) {
	wo.fails = append(wo.fails, ReplicaError{wo.v.Addrs()[server], err})
}

// targets returns the home replicas to send to: those believed up and
// writable, or all of them when too few are for some ring's W and no
// fallback can stand in (the detector may be wrong).
func (wo *writeOp) targets() (send, skipped []int) {
	for _, h := range wo.homes {
		if wo.c.writable(wo.v, h, wo.rec.Tombstone) {
			send = append(send, h)
		} else {
			skipped = append(skipped, h)
		}
	}
	if len(wo.fallbacks) == 0 {
		for _, set := range wo.sets {
			up := 0
			for _, h := range set {
				if contains(send, h) {
					up++
				}
			}
			if up < wo.w {
				return wo.homes, nil
			}
		}
	}
	return send, skipped
}

// run places the write and returns its outcome once known, and whether a
// replica refused because it knew a newer ring (as known then: the replies
// still due are collected in the background, which goes on updating wo).
func (wo *writeOp) run() (kv.Version, bool, error) {
	if err := wo.begin(); err != nil {
		return kv.Version{}, wo.stale, err
	}
	return wo.wait()
}

// begin chooses the version (in linearizable mode, after reading the
// highest a majority holds) and sends the write's first requests.
func (wo *writeOp) begin() error {
	c := wo.c
	if wo.lin && wo.rec.Version.IsZero() {
		// An attempt placed again for a newer ring keeps the version its
		// first attempt chose: what that attempt wrote may be visible
		// already, and a newer version would make the write take effect
		// a second time, after writes that followed the first.
		v, stale, err := c.highestVersion(wo.ctx, wo.v, wo.key, wo.sets)
		if err != nil {
			wo.stale = stale
			return fmt.Errorf("%s: reading versions: %w", wo.op, err)
		}
		// Strictly higher than any version a majority holds.
		wo.rec.Version = c.clock.After(v)
	} else if wo.rec.Version.IsZero() {
		wo.rec.Version = c.clock.Now()
	}
	wo.rec.N = uint8(wo.n)
	body := wire.PutRequest{Key: wo.key, Record: wo.rec}
	wo.put = frame(wo.v, wire.OpPut, 0, body.Size(), body.Append)
	wo.replies = make(chan reply, len(wo.homes)+len(wo.fallbacks))
	wo.rctx, wo.cancel = c.requestContext(wo.ctx, len(wo.put.Body))

	send, skipped := wo.targets()
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
	return nil
}

// wait collects the replies of a write begun, placing hints for the homes
// that fail, until its outcome is known (then the replies still due are
// collected in the background).
func (wo *writeOp) wait() (kv.Version, bool, error) {
	c := wo.c
	for wo.inflight > 0 {
		var r reply
		select {
		case r = <-wo.replies:
		case <-wo.ctx.Done():
			// The write goes on in the background: it may or may not land.
			stale := wo.stale
			c.bg.add(1)
			wo.later()
			return kv.Version{}, stale, fmt.Errorf("%s: %w: %w", wo.op, wo.ctx.Err(), ErrUnknownOutcome)
		}
		wo.inflight--
		if r.hintFor < 0 {
			wo.out = removeServer(wo.out, r.server)
		}
		if r.mayHaveApplied() {
			wo.maybe = true
		}
		if r.stale {
			wo.stale = true
		}
		if r.err == nil {
			if r.hintFor < 0 {
				if cur, err := wire.DecodeVersion(r.f.Body); err == nil {
					c.clock.Observe(cur)
				}
				wo.acked = addServer(wo.acked, r.server)
			} else {
				wo.hinted = addServer(wo.hinted, r.hintFor)
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
			version, stale := wo.rec.Version, wo.stale
			c.bg.add(1)
			wo.later()
			return version, stale, nil // drain cancels rctx
		}
	}
	wo.cancel()
	acks := len(wo.acked) + len(wo.hinted)
	return kv.Version{}, wo.stale, newQuorumError(wo.op, wo.w, acks, len(wo.homes), wo.fails, wo.maybe)
}

// done reports whether the write has its W acknowledgements in every
// ring. Hints on fallbacks count only once the ring's homes can no longer
// make W on their own: a home that is merely slower than a fallback is
// waited for (until it answers or fails), because a get reads home
// replicas only, and a write acknowledged by one home and a hint could
// otherwise be missed by the very next get, from the same client, that
// reads the two other homes (one just back from a restart, one still
// applying the write).
func (wo *writeOp) done() bool {
	for _, set := range wo.sets {
		acks, hints, out := 0, 0, 0
		for _, h := range set {
			switch {
			case contains(wo.acked, h):
				acks++
			case contains(wo.out, h):
				out++
			}
			if contains(wo.hinted, h) && !contains(wo.acked, h) {
				hints++
			}
		}
		if acks >= wo.w {
			continue
		}
		if acks+hints >= wo.w && acks+out < wo.w {
			continue
		}
		return false
	}
	return true
}

// drain collects the replies still due after the operation was decided,
// sending hints for home replicas that fail meanwhile, so that every live
// replica gets the write before Wait returns. A write some replica refused
// because it knew a newer ring is placed again with that ring (the same
// version: where it landed already, nothing changes), so that the homes of
// the newer ring do not wait for repair to get it.
func (wo *writeOp) drain() {
	defer wo.c.bg.done()
	for wo.inflight > 0 {
		r := <-wo.replies
		wo.inflight--
		if r.stale {
			wo.stale = true
		}
		if r.err != nil && (r.netErr || r.refused) {
			home := r.server
			if r.hintFor >= 0 {
				home = r.hintFor
			}
			wo.placeHint(home)
		}
	}
	wo.cancel()
	c := wo.c
	if v := c.View(); wo.stale && wo.replace > 1 && v.Epoch() > wo.v.Epoch() {
		n, w, err := resolve(v, Req{N: wo.n, W: wo.w}, false)
		if err != nil {
			return
		}
		again := c.newWriteOp(context.WithoutCancel(wo.ctx), v, wo.op, wo.key, wo.rec, n, w, false)
		again.replace = wo.replace - 1
		_, _, _ = again.run() // its drain is tracked by Wait like any other
	}
}

// highestVersion asks the key's homes in every ring of sets for the
// version they hold of key, and returns the highest among the answers
// once a majority of each ring's homes answered (a replica with no record
// answers the zero version).
// It also reports whether a replica refused because it knew a newer ring.
func (c *Coordinator) highestVersion(ctx context.Context, v *topology.View, key []byte, sets [][]int) (highest kv.Version, stale bool, err error) {
	homes := topology.Union(sets)
	req := frame(v, wire.OpGet, wire.GetVersionOnly, len(key)+4, wire.GetRequest{Key: key}.Append)
	replies := c.sendAll(ctx, v, homes, req)
	answered := map[int]bool{}
	var fails []ReplicaError
	enough := func() bool {
		for _, set := range sets {
			n := 0
			for _, h := range set {
				if answered[h] {
					n++
				}
			}
			if n < Majority(len(set)) {
				return false
			}
		}
		return true
	}
	possible := func() bool {
		for _, set := range sets {
			failed := 0
			for _, h := range set {
				for _, f := range fails {
					if f.Addr == v.Addrs()[h] {
						failed++
					}
				}
			}
			if len(set)-failed < Majority(len(set)) {
				return false
			}
		}
		return true
	}
	for inflight := len(homes); inflight > 0; inflight-- {
		var rp reply
		select {
		case rp = <-replies:
		case <-ctx.Done():
			// Nothing was written yet: a clean failure.
			return kv.Version{}, stale, fmt.Errorf("%w: %w", ctx.Err(), errcode.Network)
		}
		stale = stale || rp.stale
		if rp.err == nil && rp.f.Status() == wire.StatusOK {
			if rec, err := wire.DecodeRecord(rp.f.Body); err != nil {
				rp.err = fmt.Errorf("bad reply: %w: %w", err, errcode.Network)
			} else if rec.Version.Newer(highest) {
				highest = rec.Version
			}
		}
		if rp.err != nil {
			fails = append(fails, ReplicaError{v.Addrs()[rp.server], rp.err})
			// The reply channel holds one reply per request: the requests
			// still out finish without anyone waiting for them.
			if !possible() {
				return kv.Version{}, stale, newQuorumError("read versions", Majority(len(sets[0])), len(answered), len(homes), fails, false)
			}
			continue
		}
		answered[rp.server] = true
		if enough() {
			return highest, stale, nil
		}
	}
	return kv.Version{}, stale, newQuorumError("read versions", Majority(len(sets[0])), len(answered), len(homes), fails, false)
}
