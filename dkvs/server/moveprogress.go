package server

import (
	"bytes"
	"math"
	"slices"
	"time"

	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// How far a receiving server's stream has gone, for its stats: the
// ranges its sources have gone past in the current pass, the rate of the
// last seconds and the time left. A stream goes through its sources one
// after the other, and through each source's spans in ring order, so a
// range is done once every source that sends it in this pass is done or
// its cursor is past the range's end.

// passState is where the pass under way stands.
type passState struct {
	pass  uint8
	gains []topology.Gain // the ranges this server gains (its default N)
	// order are the sources the pass goes through, in order (those found
	// down at its start left out); done, those finished; cur the one
	// under way and pos its cursor's position (none yet when !hasPos).
	order  []string
	done   map[string]bool
	cur    string
	pos    ring.Hash
	hasPos bool
	// At the pass's start: its time, and the stream's fraction and bytes
	// (a pass resumed after a restart starts part-way).
	began  time.Time
	frac0  float64
	bytes0 int64
	set0   bool
}

// senders returns the sources that send g's records in the pass: the
// first of its homes the pass goes through in the first pass (every
// record once), every one of them in the verifying pass.
func (p *passState) senders(g topology.Gain) []string {
	var out []string
	for _, s := range g.Sources {
		if slices.Contains(p.order, s) {
			out = append(out, s)
			if p.pass == wire.StreamPrimary {
				break
			}
		}
	}
	return out
}

// covered returns the share of g that sender s has gone through: 1 once
// it is done, the part before its cursor while it is under way (a range
// across the top of the ring is passed last: only when s is done).
func (p *passState) covered(g topology.Gain, s string) float64 {
	switch {
	case p.done[s]:
		return 1
	case s != p.cur || !p.hasPos:
		return 0
	}
	start, end := g.Range.Start, g.Range.End
	if bytes.Compare(start[:], end[:]) >= 0 {
		return 0 // across the top, or the whole ring
	}
	switch {
	case bytes.Compare(p.pos[:], end[:]) > 0:
		return 1
	case bytes.Compare(p.pos[:], start[:]) <= 0:
		return 0
	}
	whole := g.Range.Fraction()
	if whole <= 0 {
		return 0
	}
	return min(1, topology.Range{Start: start, End: p.pos}.Fraction()/whole)
}

// progress returns the ranges done and in all, and the share of the
// pass done weighed by each range's share of the key space. A range no
// source sends in this pass (its homes all down) is counted done: the
// verifying pass waits for them.
func (p *passState) progress() (done, total int, frac float64) {
	var sum, weight float64
	for _, g := range p.gains {
		w := g.Range.Fraction()
		c := 1.0
		if ss := p.senders(g); len(ss) > 0 {
			c = 0
			for _, s := range ss {
				c += p.covered(g, s)
			}
			c /= float64(len(ss))
		}
		if c >= 1 {
			done++
		}
		sum += w * c
		weight += w
	}
	if weight == 0 {
		return done, len(p.gains), 1
	}
	return done, len(p.gains), min(1, sum/weight)
}

// rateSample is the stream's totals at a time.
type rateSample struct {
	at          time.Time
	keys, bytes int64
}

// rateMeter keeps the stream's totals about once a second over the last
// wire.RateWindow, to tell the rate of the last seconds.
type rateMeter struct {
	samples []rateSample
}

// add records the totals at now.
func (m *rateMeter) add(now time.Time, keys, bytes int64) {
	if k := len(m.samples); k > 0 && now.Sub(m.samples[k-1].at) < time.Second {
		return
	}
	m.samples = append(m.samples, rateSample{now, keys, bytes})
	// Keep one sample older than the window, the start of the rate.
	for len(m.samples) > 2 && now.Sub(m.samples[1].at) >= wire.RateWindow {
		m.samples = m.samples[1:]
	}
}

// rate returns the keys and bytes per second from the oldest sample
// within wire.RateWindow of now (or the newest, if all are older) to the
// totals now.
func (m *rateMeter) rate(now time.Time, keys, bytes int64) (kps, bps float64) {
	if len(m.samples) == 0 {
		return 0, 0
	}
	from := m.samples[len(m.samples)-1]
	for _, s := range m.samples {
		if now.Sub(s.at) <= wire.RateWindow {
			from = s
			break
		}
	}
	secs := now.Sub(from.at).Seconds()
	if secs < 0.5 {
		return 0, 0 // too short to tell
	}
	return float64(keys-from.keys) / secs, float64(bytes-from.bytes) / secs
}

// timeLeft estimates the time left in the pass from its start at began
// with fraction frac0 and bytes0 bytes received to now, at frac and
// bytes, with bps bytes per second lately: -1 when it cannot tell. The
// first pass's bytes follow the key space gone through (every record
// once, hashed uniformly): its bytes left are those received per share
// done times the share left, at the recent rate. The verifying pass
// lists keys and fetches few records: its time left follows its time
// so far per share done.
func timeLeft(phase string, frac, frac0 float64, bytes, bytes0 int64, bps float64, began, now time.Time) int64 {
	did := frac - frac0
	switch {
	case phase == "done":
		return 0
	case phase == "barrier" || did <= 0 || frac >= 1:
		return -1
	case phase == "copy":
		if bps <= 0 || bytes <= bytes0 {
			return -1
		}
		left := float64(bytes-bytes0) / did * (1 - frac) / bps
		return int64(math.Round(left * 1000))
	case phase == "verify":
		return int64(math.Round(float64(now.Sub(began).Milliseconds()) / did * (1 - frac)))
	}
	return -1
}

// posOf returns the ring position of a stream cursor: the position of
// its key (the cursor is a key in ring order).
func posOf(after []byte) ring.Hash { return ring.SHA1(after) }
