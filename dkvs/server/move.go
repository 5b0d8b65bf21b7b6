package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/ringrpc"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/throttle"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// A move of the ring, as a server of the new ring lives it: during the
// streaming phase it copies the records it gains from their current homes
// (a first pass from each range's first live home: every record once);
// then it waits until every live server knows the move (from then on no
// write can reach the old homes alone: a replica refuses a request placed
// with an older ring); then a second pass asks every live home for the
// keys and versions of what it holds that this server gains, and fetches
// the records this server lacks or holds older (what a write of the
// previous epoch left on some old homes only, what the first pass missed
// because its source went down); then it tells the consensus. Every copy
// is applied as newest-wins, so passes may overlap and start again at
// will; the position of each pass with each source is kept in the store,
// so a restart of either side resumes it. The bytes received per second
// are bounded by Config.MoveBandwidth. The source's side of a stream is
// stream.go.

// streamPage bounds one page of a stream.
const streamPage = 1 << 20

// streamScan bounds the records a source looks at for one page, so that
// a page over a stretch of records it does not send (written with another
// N, or another source's in the first pass) still comes back soon.
const streamScan = 20000

// mover runs this server's part in moves.
type mover struct {
	s     *Server
	limit *throttle.Limiter
	kick  chan struct{}

	mu    sync.Mutex
	stats *wire.StreamStats
	// cur is where the pass under way stands; meter, the stream's
	// totals over the last seconds; past, the streams of earlier moves
	// (newest first, at most pastStreams).
	cur   *passState
	meter rateMeter
	past  []wire.StreamStats

	// streams are the spans of the streams this server is the source of.
	streams streamCache
}

func newMover(s *Server, bandwidth int64) *mover {
	return &mover{s: s, limit: throttle.New(bandwidth, nil), kick: make(chan struct{}, 1)}
}

// notify wakes the mover: the ring changed.
func (m *mover) notify() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// pastStreams bounds the streams of earlier moves a server remembers.
const pastStreams = 4

// Stats returns the progress of the current or last move's streaming,
// and the streams of earlier moves, newest first.
func (m *mover) Stats() (*wire.StreamStats, []wire.StreamStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	past := slices.Clone(m.past)
	if m.stats == nil {
		return nil, past
	}
	st := *m.stats
	st.Sources = slices.Clone(st.Sources)
	st.Done = slices.Clone(st.Done)
	now := time.Now()
	switch {
	case st.Phase == "done":
		st.RangesDone, st.Fraction, st.LeftMS = st.RangesTotal, 1, 0
	case st.FinishedMS != 0: // stopped
		st.LeftMS = -1
	case m.cur != nil:
		st.RangesDone, st.RangesTotal, st.Fraction = m.cur.progress()
		st.KeysPerSec, st.BytesPerSec = m.meter.rate(now, st.Keys, st.Bytes)
		p := m.cur
		st.LeftMS = -1
		if p.set0 {
			st.LeftMS = timeLeft(st.Phase, st.Fraction, p.frac0, st.Bytes, p.bytes0, st.BytesPerSec, p.began, now)
		}
	default:
		st.LeftMS = -1
	}
	return &st, past
}

func (m *mover) update(f func(st *wire.StreamStats)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stats != nil {
		f(m.stats)
		now := time.Now()
		m.stats.UpdatedMS = now.UnixMilli()
		m.meter.add(now, m.stats.Keys, m.stats.Bytes)
	}
}

// updatePass changes the pass under way.
func (m *mover) updatePass(f func(p *passState)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != nil {
		f(m.cur)
	}
}

// ended marks the stream of a move that is over without it being done
// (aborted, or over while this server was away) as stopped.
func (m *mover) ended(st topology.State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stats == nil || m.stats.Phase == "done" || m.stats.FinishedMS != 0 || (st.Move != nil && st.Move.ID == m.stats.Move) {
		return
	}
	m.stats.Phase, m.stats.FinishedMS = "stopped", time.Now().UnixMilli()
	m.cur = nil
}

// run streams whenever a move needs this server to, until ctx ends.
func (m *mover) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-t.C:
		}
		v := m.s.coord.View()
		st := v.State()
		self := m.s.cfg.Addr
		m.ended(st)
		if st.Move == nil || st.Move.Phase != topology.Streaming || slices.Contains(st.Move.Streamed, self) ||
			config.Find(st.Move.Target, self) < 0 {
			continue
		}
		if err := m.stream(ctx, v); err != nil {
			if ctx.Err() == nil {
				m.s.log.Warn("ring move: streaming failed; trying again", "move", st.Move.ID, "err", err)
				m.update(func(ss *wire.StreamStats) { ss.Error = err.Error() })
			}
			continue
		}
		_, err := m.s.member.Propose(ctx, topology.Command{Op: topology.OpStreamDone, MoveID: st.Move.ID, Phase: topology.Streaming, Addr: self})
		if err != nil && ctx.Err() == nil {
			m.s.log.Warn("ring move: reporting the ranges streamed failed; trying again", "move", st.Move.ID, "err", err)
		}
	}
}

// stream copies what this server gains in v's move (both passes).
func (m *mover) stream(ctx context.Context, v *topology.View) error {
	st := v.State()
	id := st.Move.ID
	self := m.s.cfg.Addr
	var sources []string
	for _, s := range st.Members {
		if a := s.Addr(); a != self && !slices.Contains(st.Move.Excluded, a) {
			sources = append(sources, a)
		}
	}
	m.mu.Lock()
	if m.stats == nil || m.stats.Move != id {
		if m.stats != nil {
			old := *m.stats
			old.KeysPerSec, old.BytesPerSec = 0, 0
			m.past = append([]wire.StreamStats{old}, m.past...)[:min(len(m.past)+1, pastStreams)]
		}
		now := time.Now()
		m.stats = &wire.StreamStats{Move: id, StartedMS: now.UnixMilli()}
		m.cur, m.meter = nil, rateMeter{}
		m.meter.add(now, 0, 0)
	}
	m.mu.Unlock()
	store := m.s.db.Consensus()
	donePass := func(pass uint8) bool {
		_, ok, _ := store.Get(passKey(id, pass))
		return ok
	}
	if !donePass(wire.StreamPrimary) {
		m.update(func(ss *wire.StreamStats) { ss.Phase, ss.Sources, ss.Done = "copy", nil, nil })
		for {
			var skip []string
			for _, src := range sources {
				if !m.s.health.Up(src) {
					skip = append(skip, src)
				}
			}
			err := m.pass(ctx, v, wire.StreamPrimary, sources, skip)
			if err == nil {
				break
			}
			var down *sourceDown
			if !errors.As(err, &down) {
				return err
			}
			// A source failed mid-way: the records it was first for now
			// come from the next home; start the pass again (what was
			// copied stays).
			m.s.health.Failed(down.addr, down.err)
			if err := store.DeleteRange(cursorPrefix(id, wire.StreamPrimary), cursorPrefix(id, wire.StreamPrimary+1)); err != nil {
				return err
			}
		}
		if err := store.Set([2][]byte{passKey(id, wire.StreamPrimary), nil}); err != nil {
			return err
		}
	}
	if !donePass(wire.StreamVerify) {
		m.update(func(ss *wire.StreamStats) { ss.Phase = "barrier" })
		if err := m.barrier(ctx, st); err != nil {
			return err
		}
		m.update(func(ss *wire.StreamStats) { ss.Phase, ss.Sources, ss.Done = "verify", nil, nil })
		var live, down []string
		for _, src := range sources {
			if m.s.health.Up(src) {
				live = append(live, src)
			} else {
				down = append(down, src)
			}
		}
		// A source that is down can be passed over only where another
		// home holds the same ranges: where it is the only one (keys of
		// one replica, or every other home down too), its records exist
		// nowhere else, and the move waits for it.
		for _, n := range []int{1, 2, 3} {
			for _, g := range v.Gains(self, n) {
				alive := 0
				for _, src := range g.Sources {
					if !slices.Contains(down, src) {
						alive++
					}
				}
				if alive == 0 && len(g.Sources) > 0 {
					return fmt.Errorf("waiting for %v, the only current homes of ranges this server gains (N=%d): %w", g.Sources, n, errcode.Network)
				}
			}
		}
		if err := m.pass(ctx, v, wire.StreamVerify, live, nil); err != nil {
			return err
		}
		if err := store.Set([2][]byte{passKey(id, wire.StreamVerify), nil}); err != nil {
			return err
		}
	}
	m.update(func(ss *wire.StreamStats) { ss.Phase, ss.Error, ss.FinishedMS = "done", "", time.Now().UnixMilli() })
	m.s.log.Info("ring move: ranges streamed and verified", "move", id)
	return nil
}

// sourceDown is a source that failed during a pass.
type sourceDown struct {
	addr string
	err  error
}

func (e *sourceDown) Error() string { return fmt.Sprintf("source %s: %v", e.addr, e.err) }
func (e *sourceDown) Unwrap() error { return e.err }

// pass copies, from each source, the records this server gains that the
// source is to send in this pass, resuming where an earlier attempt of
// the pass stopped.
func (m *mover) pass(ctx context.Context, v *topology.View, pass uint8, sources, skip []string) error {
	id := v.State().Move.ID
	self := m.s.cfg.Addr
	store := m.s.db.Consensus()
	ps := &passState{pass: pass, gains: v.Gains(self, m.s.cfg.Coord.N), done: map[string]bool{}}
	for _, src := range sources {
		if !slices.Contains(skip, src) {
			ps.order = append(ps.order, src)
		}
	}
	m.mu.Lock()
	m.cur = ps
	if m.stats != nil {
		m.stats.RangesTotal = len(ps.gains)
	}
	m.mu.Unlock()
	for _, src := range ps.order {
		m.update(func(ss *wire.StreamStats) { ss.Sources = append(ss.Sources, src) })
		ck := cursorKey(id, pass, src)
		after, finished, err := store.Get(ck)
		if err != nil {
			return err
		}
		if finished && len(after) == 1 && after[0] == 0xff {
			m.update(func(ss *wire.StreamStats) { ss.Done = append(ss.Done, src) })
			m.updatePass(func(p *passState) { p.done[src] = true })
			continue
		}
		if len(after) > 0 && after[0] == 0 {
			after = after[1:] // a key cursor, marked so an empty key is not "finished"
		}
		m.updatePass(func(p *passState) { p.cur, p.hasPos = src, after != nil })
		if after != nil {
			m.updatePass(func(p *passState) { p.pos = posOf(after) })
		}
		for {
			req := wire.StreamRequest{Move: id, Dest: self, Pass: pass, Skip: skip, After: after, MaxBytes: streamPage}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			f, err := m.s.peers.Call(cctx, src, wire.Frame{Kind: uint8(wire.OpStream), Body: req.Append(nil)})
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return &sourceDown{src, err}
			}
			if f.Status() != wire.StatusOK {
				msg, _ := wire.DecodeMessage(f.Body)
				return fmt.Errorf("stream from %s: %s %s: %w", src, f.Status(), msg, errcode.Network)
			}
			if err := m.limit.Wait(ctx, len(f.Body)); err != nil {
				return err
			}
			page, err := wire.DecodeStreamResponse(f.Body)
			if err != nil {
				return fmt.Errorf("stream from %s: %w: %w", src, err, errcode.Network)
			}
			m.startPass()
			// The bandwidth wait may be long: a move aborted meanwhile has
			// had this server's copies dropped, or will, and a page applied
			// now would stay behind.
			if cur := m.s.coord.View().State(); cur.Move == nil || cur.Move.ID != id {
				return fmt.Errorf("move %d is over (ring epoch %d): %w", id, cur.Epoch, errcode.Network)
			}
			records := page.Records
			if pass == wire.StreamVerify {
				if records, err = m.fetchNewer(ctx, src, records); err != nil {
					return err
				}
			}
			if len(records) > 0 {
				recs := make([]storage.KeyRecord, len(records))
				bytes := 0
				for i, kr := range records {
					m.s.clock.Observe(kr.Record.Version)
					recs[i] = storage.KeyRecord{Key: kr.Key, Record: kr.Record}
					bytes += len(kr.Key) + len(kr.Record.Value)
				}
				if _, err := m.s.db.ApplyMany(recs); err != nil {
					return err
				}
				m.update(func(ss *wire.StreamStats) { ss.Keys += int64(len(recs)); ss.Bytes += int64(bytes) })
			}
			if !page.More {
				break
			}
			after = page.Next
			m.updatePass(func(p *passState) { p.pos, p.hasPos = posOf(after), true })
			if err := store.Set([2][]byte{ck, append([]byte{0}, after...)}); err != nil {
				return err
			}
		}
		if err := store.Set([2][]byte{ck, {0xff}}); err != nil {
			return err
		}
		m.update(func(ss *wire.StreamStats) { ss.Done = append(ss.Done, src) })
		m.updatePass(func(p *passState) { p.done[src] = true })
	}
	return nil
}

// startPass notes, at the first page of the pass under way, where it
// starts from: a pass resumed after a restart starts part-way, and its
// time left follows what it did since.
func (m *mover) startPass() {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.cur
	if p == nil || p.set0 || m.stats == nil {
		return
	}
	_, _, p.frac0 = p.progress()
	p.bytes0, p.began, p.set0 = m.stats.Bytes, time.Now(), true
}

// fetchNewer returns, of the records src listed without their values,
// those this server lacks or holds older, read whole from src with get.
func (m *mover) fetchNewer(ctx context.Context, src string, listed []wire.KeyRecord) ([]wire.KeyRecord, error) {
	var out []wire.KeyRecord
	for _, kr := range listed {
		local, found, err := m.s.db.Get(kr.Key)
		if err != nil {
			return nil, err
		}
		if found && !kr.Record.Version.Newer(local.Version) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		f, err := m.s.peers.Call(cctx, src, wire.Frame{Kind: uint8(wire.OpGet), Body: wire.GetRequest{Key: kr.Key}.Append(nil)})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &sourceDown{src, err}
		}
		switch f.Status() {
		case wire.StatusOK:
			rec, err := wire.DecodeRecord(f.Body)
			if err != nil {
				return nil, fmt.Errorf("get from %s: %w: %w", src, err, errcode.Network)
			}
			out = append(out, wire.KeyRecord{Key: kr.Key, Record: rec})
		case wire.StatusNotFound:
			// Dropped since it was listed (a cleanup): nothing to copy.
		default:
			msg, _ := wire.DecodeMessage(f.Body)
			return nil, fmt.Errorf("get from %s: %s %s: %w", src, f.Status(), msg, errcode.Network)
		}
	}
	return out, nil
}

// barrier waits until every server of st believed up knows st's epoch
// (or a later one), or the move is no longer the same.
func (m *mover) barrier(ctx context.Context, st topology.State) error {
	wait := 50 * time.Millisecond
	for {
		cur := m.s.coord.View().State()
		if cur.Move == nil || cur.Move.ID != st.Move.ID {
			return fmt.Errorf("the move ended while streaming: %w", errcode.Network)
		}
		all := true
		for _, sv := range cur.AllServers() {
			addr := sv.Addr()
			if addr == m.s.cfg.Addr || !m.s.health.Up(addr) {
				continue
			}
			if e, err := ringrpc.Epoch(ctx, m.s.peers, addr); err != nil || e < st.Move.ID {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// Keys of the streaming state in the consensus space of the store.
func passKey(id uint64, pass uint8) []byte {
	return append(binary.BigEndian.AppendUint64([]byte("stream/"), id), '/', 'p', pass)
}

func cursorPrefix(id uint64, pass uint8) []byte {
	return append(binary.BigEndian.AppendUint64([]byte("stream/"), id), '/', 'c', pass)
}

func cursorKey(id uint64, pass uint8, src string) []byte {
	return append(append(cursorPrefix(id, pass), '/'), src...)
}

func addrsOf(r *ring.Ring, idx []int) []string {
	out := make([]string, len(idx))
	for i, x := range idx {
		out[i] = r.Servers()[x].Addr()
	}
	return out
}
