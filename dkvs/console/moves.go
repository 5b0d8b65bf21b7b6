package console

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// MovesView is /api/moves: the move of the ring under way, each
// receiving server's progress, and the last moves this server saw end.
type MovesView struct {
	Self   string `json:"self"`
	TimeMS int64  `json:"time_ms"`
	// Epoch is the ring epoch this server knows.
	Epoch uint64 `json:"epoch"`
	// N is the number of homes the ranges are listed for (the server's
	// default N).
	N int `json:"n"`
	// Move is the move under way, null when none.
	Move *MoveView `json:"move"`
	// Cleanup, when set, says the old homes of the last move may still
	// hold what moved away: they drop it once their grace has passed.
	Cleanup *CleanupView `json:"cleanup"`
	// History are the last moves this server saw end, newest first.
	History []PastMove `json:"history"`
}

// MoveHead is what names a move, under way or over.
type MoveHead struct {
	// ID is the epoch the move began in.
	ID   uint64 `json:"id"`
	Kind string `json:"kind"`
	// Server is the joining, leaving, replaced or removed server, New
	// the replacement; In and Out are the servers that come into the
	// ring and go out of it.
	Server string   `json:"server"`
	New    string   `json:"new,omitempty"`
	In     []string `json:"in"`
	Out    []string `json:"out"`
}

// headOf names mv.
func headOf(mv topology.Move) MoveHead {
	h := MoveHead{ID: mv.ID, Kind: string(mv.Kind), Server: mv.Server, New: mv.New}
	h.In, h.Out = inOut(mv)
	return h
}

// MoveView is a move under way.
type MoveView struct {
	MoveHead
	// Phase is streaming or read-new.
	Phase     string `json:"phase"`
	StartedMS int64  `json:"started_ms"`
	ElapsedMS int64  `json:"elapsed_ms"`
	// Reported are the servers of the new ring that told the consensus
	// their ranges are streamed and verified; Waiting those it waits for.
	Reported []string `json:"reported"`
	Waiting  []string `json:"waiting"`
	// Receivers are the servers of the new ring that gain ranges, in the
	// new ring's order.
	Receivers []Receiver `json:"receivers"`
}

// Receiver is one server that gains ranges in a move.
type Receiver struct {
	Addr  string `json:"addr"`
	State string `json:"state"`
	// Answered, Error and StatsAgeMS are as in /api/servers: Stream is
	// what the server said now, or last (with its age), or null.
	Answered   bool   `json:"answered"`
	Error      string `json:"error,omitempty"`
	StatsAgeMS int64  `json:"stats_age_ms"`
	// Reported is true once it told the consensus its ranges are
	// streamed and verified.
	Reported bool `json:"reported"`
	// Share is the fraction of the key space it gains; Ranges, those
	// ranges with the servers that hold them now (keys of N homes).
	Share  float64     `json:"share"`
	Ranges []MoveRange `json:"ranges"`
	// Stream is its stream's progress, as its stats carry it (null when
	// it never answered, or has not begun this move's stream).
	Stream *wire.StreamStats `json:"stream"`
	// TimeLeft is Stream.LeftMS for people: "12s", "done", or "unknown"
	// (with why).
	TimeLeft string `json:"time_left"`
}

// MoveRange is a range of the ring that moves: (Start, End], from the
// servers that hold it now to the receiver.
type MoveRange struct {
	Start    string   `json:"start"`
	End      string   `json:"end"`
	StartPos float64  `json:"start_pos"`
	EndPos   float64  `json:"end_pos"`
	From     []string `json:"from"`
}

// CleanupView is the cleanup after the last move.
type CleanupView struct {
	Epoch   uint64 `json:"epoch"`
	SinceMS int64  `json:"since_ms"`
}

// PastMove is a move that is over.
type PastMove struct {
	MoveHead
	// Outcome is finished, aborted or over (it ended while this server
	// was not following: how, it cannot tell).
	Outcome string `json:"outcome"`
	// EndEpoch is the epoch that ended it.
	EndEpoch   uint64 `json:"end_epoch"`
	StartedMS  int64  `json:"started_ms"`
	EndedMS    int64  `json:"ended_ms"`
	DurationMS int64  `json:"duration_ms"`
	// Cleaning is true while its old homes may still hold what moved.
	Cleaning bool `json:"cleaning"`
	// Keys and Bytes are what its receivers say they received, added up;
	// Complete is false when some did not say (down, restarted since, or
	// not asked).
	Keys      int64          `json:"keys"`
	Bytes     int64          `json:"bytes"`
	Complete  bool           `json:"complete"`
	Receivers []PastReceiver `json:"receivers"`
}

// PastReceiver is what one receiver of a past move says it received.
type PastReceiver struct {
	Addr  string `json:"addr"`
	Known bool   `json:"known"`
	// Phase is done, or stopped when the move ended without it.
	Phase      string `json:"phase,omitempty"`
	Keys       int64  `json:"keys"`
	Bytes      int64  `json:"bytes"`
	DurationMS int64  `json:"duration_ms"`
}

// inOut returns the servers a move brings in and takes out.
func inOut(m topology.Move) (in, out []string) {
	in, out = []string{}, []string{}
	switch m.Kind {
	case topology.Join:
		in = append(in, m.Server)
	case topology.Leave, topology.Remove:
		out = append(out, m.Server)
	case topology.Replace:
		in, out = append(in, m.New), append(out, m.Server)
	}
	return in, out
}

// moveGains are the servers that gain ranges in a move, and those
// ranges.
type moveGains struct {
	addrs []string
	gains map[string][]topology.Gain
}

// receivers returns the servers of v's target that gain ranges for keys
// of n homes, with those ranges. They depend on the move alone (its
// rings and excluded servers), not on its phase, and take a walk of both
// rings per arc: each move's are kept while it is shown.
func (c *Console) receivers(v *topology.View, n int, keep map[uint64]bool) moveGains {
	mv := v.State().Move
	if mv == nil {
		return moveGains{gains: map[string][]topology.Gain{}}
	}
	keep[mv.ID] = true
	c.mu.Lock()
	g, ok := c.gains[mv.ID]
	c.mu.Unlock()
	if ok && g.n == n {
		return g.moveGains
	}
	out := moveGains{gains: v.AllGains(n)}
	for _, t := range mv.Target {
		if len(out.gains[t.Addr()]) > 0 {
			out.addrs = append(out.addrs, t.Addr())
		}
	}
	c.mu.Lock()
	c.gains[mv.ID] = cachedGains{moveGains: out, n: n}
	c.mu.Unlock()
	return out
}

// cachedGains are a move's gains for keys of n homes.
type cachedGains struct {
	moveGains
	n int
}

// forget drops the gains of the moves no longer shown.
func (c *Console) forget(keep map[uint64]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.gains {
		if !keep[id] {
			delete(c.gains, id)
		}
	}
}

// Moves returns the view of /api/moves: the move under way as this
// server knows it, the progress of each receiving server's stream (its
// own stats, asked in parallel as for /api/servers: a server believed
// down is not asked and shows what it last said), and the moves this
// server saw end with what their receivers say they received.
func (c *Console) Moves(ctx context.Context) MovesView {
	view := c.src.View()
	st := view.State()
	own := c.src.Stats()
	states := states(own)
	now := c.opts.Now()
	n := min(c.opts.N, len(st.Members))
	if st.Move != nil {
		n = min(n, view.RingSize())
	}
	past := c.src.MoveHistory()
	v := MovesView{Self: c.src.Addr(), TimeMS: now.UnixMilli(), Epoch: st.Epoch, N: n, History: []PastMove{}}
	keep := map[uint64]bool{}
	cur := c.receivers(view, n, keep)
	addrs, gains := cur.addrs, cur.gains
	// The past moves' receivers: the servers of their new rings that
	// gained ranges.
	pastRecv := make([][]string, len(past))
	for i, p := range past {
		pv := topology.NewView(topology.State{Epoch: p.Move.ID, Members: p.From, Move: &p.Move})
		pastRecv[i] = c.receivers(pv, min(c.opts.N, pv.RingSize()), keep).addrs
	}
	c.forget(keep)
	ask := slices.Clone(addrs)
	for _, r := range pastRecv {
		ask = append(ask, r...)
	}
	got := c.gather(ctx, own, states, ask, now)
	if st.Cleanup != nil {
		v.Cleanup = &CleanupView{Epoch: st.Cleanup.Epoch, SinceMS: st.Cleanup.Since}
	}
	if mv := st.Move; mv != nil {
		m := &MoveView{MoveHead: headOf(*mv), Phase: string(mv.Phase),
			StartedMS: mv.Started, ElapsedMS: max(0, now.UnixMilli()-mv.Started),
			Reported: []string{}, Waiting: []string{}, Receivers: []Receiver{}}
		for _, t := range mv.Target {
			if slices.Contains(mv.Streamed, t.Addr()) {
				m.Reported = append(m.Reported, t.Addr())
			} else {
				m.Waiting = append(m.Waiting, t.Addr())
			}
		}
		for _, a := range addrs {
			g := got[a]
			r := Receiver{Addr: a, State: stateOf(states, a), Answered: g.answered, Error: g.err, StatsAgeMS: g.ageMS,
				Reported: slices.Contains(mv.Streamed, a), Ranges: []MoveRange{}}
			for _, gn := range gains[a] {
				r.Share += gn.Range.Fraction()
				r.Ranges = append(r.Ranges, MoveRange{Start: gn.Range.Start.String(), End: gn.Range.End.String(),
					StartPos: pos(gn.Range.Start), EndPos: pos(gn.Range.End), From: slices.Clone(gn.Sources)})
			}
			if g.stats != nil && g.stats.Stream != nil && g.stats.Stream.Move == mv.ID {
				s := *g.stats.Stream
				r.Stream = &s
			}
			r.TimeLeft = timeLeftText(r)
			m.Receivers = append(m.Receivers, r)
		}
		v.Move = m
	}
	for i, p := range past {
		pm := PastMove{MoveHead: headOf(p.Move),
			Outcome: p.Outcome, EndEpoch: p.Epoch, StartedMS: p.Move.Started, EndedMS: p.Ended,
			DurationMS: max(0, p.Ended-p.Move.Started), Complete: true, Receivers: []PastReceiver{}}
		pm.Cleaning = st.Cleanup != nil && st.Cleanup.Epoch == p.Epoch
		for _, a := range pastRecv[i] {
			pr := PastReceiver{Addr: a}
			if s := streamOf(got[a].stats, p.Move.ID); s != nil {
				pr.Known, pr.Phase, pr.Keys, pr.Bytes = true, s.Phase, s.Keys, s.Bytes
				if s.FinishedMS > 0 {
					pr.DurationMS = max(0, s.FinishedMS-s.StartedMS)
				}
				pm.Keys += s.Keys
				pm.Bytes += s.Bytes
			} else {
				pm.Complete = false
			}
			pm.Receivers = append(pm.Receivers, pr)
		}
		v.History = append(v.History, pm)
	}
	return v
}

// streamOf returns the stream of move id in a server's stats, current or
// past.
func streamOf(st *wire.Stats, id uint64) *wire.StreamStats {
	if st == nil {
		return nil
	}
	if st.Stream != nil && st.Stream.Move == id {
		return st.Stream
	}
	for i := range st.StreamHistory {
		if st.StreamHistory[i].Move == id {
			return &st.StreamHistory[i]
		}
	}
	return nil
}

// timeLeftText says a receiver's time left for people, and why it is
// unknown when it is.
func timeLeftText(r Receiver) string {
	s := r.Stream
	switch {
	case r.Reported || s != nil && s.Phase == "done":
		return "done"
	case s == nil && !r.Answered:
		return "unknown: no answer from it"
	case s == nil:
		return "unknown: not begun"
	case !r.Answered:
		return "unknown: no answer from it"
	case s.LeftMS >= 0:
		return (time.Duration(s.LeftMS) * time.Millisecond).Round(time.Second).String()
	case s.Phase == "barrier":
		return "unknown: waiting for every live server to know the move"
	case s.Fraction <= 0:
		return "unknown: nothing done yet"
	}
	return "unknown: no progress over the last " + strconv.Itoa(int(wire.RateWindow/time.Second)) + " s"
}
