package server

import (
	"bytes"
	"slices"
	"sync"

	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// The source's side of a move's streams (the requester's is move.go).
// A page reads storage's ring index over the ranges the requester gains
// where this server is a current home, and nothing else: a stream costs
// what those ranges hold, not a scan of the whole store. Its cursor is a
// key in ring order (position, then key), as ScanRange resumes.

// span is a range of ring positions [lo, hi) that a stream scans, or
// [lo, 2^160) when top is set; spans never wrap.
type span struct {
	lo, hi ring.Hash
	top    bool
}

// bounds returns the span as ScanRange's arguments: an end of zero after
// a start above zero is the top of the ring, and [0, 0) the whole ring.
func (s span) bounds() (start, end ring.Hash) {
	if s.top {
		return s.lo, ring.Hash{}
	}
	return s.lo, s.hi
}

// holds reports whether position p lies in the span.
func (s span) holds(p ring.Hash) bool {
	return bytes.Compare(p[:], s.lo[:]) >= 0 && (s.top || bytes.Compare(p[:], s.hi[:]) < 0)
}

// before reports whether position p comes before the span's end.
func (s span) before(p ring.Hash) bool {
	return s.top || bytes.Compare(p[:], s.hi[:]) < 0
}

// streamSpans returns the spans a stream from self to dest scans in v's
// move, in ring order: the ranges dest gains, for any N, of which self
// is a current home (a source: an excluded server is none). The records
// a page sends are a subset of theirs; streamFilter decides which.
func streamSpans(v *topology.View, self, dest string) []span {
	// A record of N at or above the number of servers (of both rings) has
	// every server of each ring for homes: N up to that number covers all.
	servers := len(v.Servers())
	var ranges []topology.Range
	for n := 1; n <= servers; n++ {
		for _, g := range v.Gains(dest, n) {
			if slices.Contains(g.Sources, self) {
				ranges = append(ranges, g.Range)
			}
		}
	}
	return mergeSpans(ranges)
}

// mergeSpans returns the positions of the ranges (each (Start, End], see
// topology.Range) as sorted, disjoint, non-adjacent spans.
func mergeSpans(ranges []topology.Range) []span {
	var spans []span
	for _, r := range ranges {
		lo, hi := r.Start.Next(), r.End.Next()
		switch c := bytes.Compare(r.Start[:], r.End[:]); {
		case c == 0:
			return []span{{top: true}} // the whole ring
		case c < 0:
			spans = append(spans, span{lo: lo, hi: hi, top: hi == ring.Hash{}})
		default: // across the top: (Start, 2^160) and [0, End]
			if lo != (ring.Hash{}) {
				spans = append(spans, span{lo: lo, top: true})
			}
			spans = append(spans, span{hi: hi})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return bytes.Compare(a.lo[:], b.lo[:]) })
	var out []span
	for _, s := range spans {
		k := len(out) - 1
		if k < 0 || !out[k].top && bytes.Compare(s.lo[:], out[k].hi[:]) > 0 {
			out = append(out, s)
			continue
		}
		// s starts within out[k] or right at its end: one span.
		switch {
		case out[k].top:
		case s.top:
			out[k].top, out[k].hi = true, ring.Hash{}
		case bytes.Compare(s.hi[:], out[k].hi[:]) > 0:
			out[k].hi = s.hi
		}
	}
	return out
}

// streamFilter decides which records of the scanned spans a page sends.
type streamFilter struct {
	cur, tgt   *ring.Ring
	self, dest string
	pass       uint8
	skip       []string // homes the requester found down
	excluded   []string // the move's excluded servers
}

// sends reports whether the record of key at position pos goes to dest
// in this pass.
func (f *streamFilter) sends(pos ring.Hash, rec kv.Record) bool {
	if rec.N == 0 {
		return false // this server's alone (datagram puts): never moved
	}
	n := int(rec.N)
	newHomes := addrsOf(f.tgt, f.tgt.PreferenceAt(f.tgt.First(pos), n))
	if !slices.Contains(newHomes, f.dest) {
		return false
	}
	oldHomes := addrsOf(f.cur, f.cur.PreferenceAt(f.cur.First(pos), n))
	if slices.Contains(oldHomes, f.dest) || !slices.Contains(oldHomes, f.self) {
		return false
	}
	if f.pass == wire.StreamPrimary {
		// Every record once: from its first current home that is live.
		for _, h := range oldHomes {
			if !slices.Contains(f.excluded, h) && !slices.Contains(f.skip, h) && h != f.dest {
				return h == f.self
			}
		}
		return false
	}
	return true
}

// rangeReader is what a page reads: a storage.Snapshot.
type rangeReader interface {
	ScanRange(start, end ring.Hash, o storage.RangeOptions, fn func(storage.RangeEntry) bool) error
	Get(key []byte) (kv.Record, bool, error)
}

// pageLimits bound one page: the records looked at, and the bytes sent.
type pageLimits struct {
	scan, bytes int
}

// recordRoom is what a record costs in a page on top of its key and value.
const recordRoom = 32

// readStreamPage reads the page of a stream after the key after (nil:
// from the start) over spans. It reads the index without values, then the
// values of the records it sends (not in the verifying pass, which sends
// none), so a record the filter passes over costs no read of its value.
// resp.Next is the last key the page looked at, when More.
func readStreamPage(r rangeReader, spans []span, f *streamFilter, after []byte, lim pageLimits) (wire.StreamResponse, error) {
	var resp wire.StreamResponse
	// Skip the spans the cursor is past; the one holding it resumes after it.
	var o storage.RangeOptions
	o.Tombstones = true
	if after != nil {
		p := ring.SHA1(after)
		for len(spans) > 0 && !spans[0].before(p) {
			spans = spans[1:]
		}
		if len(spans) > 0 && spans[0].holds(p) {
			o.After = after
		}
	}
	// The index, without values: the records to send, and an estimate of
	// their size from their stored (maybe compressed) values, if sent.
	type pick struct {
		key []byte
		rec kv.Record
	}
	var picks []pick
	estimate, scanned := 0, 0
	for _, sp := range spans {
		start, end := sp.bounds()
		err := r.ScanRange(start, end, o, func(en storage.RangeEntry) bool {
			if scanned >= lim.scan || estimate >= lim.bytes {
				resp.More = true
				return false
			}
			scanned++
			resp.Next = append(resp.Next[:0], en.Key...)
			if !f.sends(en.Pos, en.Record) {
				return true
			}
			picks = append(picks, pick{key: append([]byte(nil), en.Key...), rec: en.Record})
			estimate += len(en.Key) + recordRoom
			if f.pass != wire.StreamVerify {
				estimate += en.Stored
			}
			return true
		})
		if err != nil {
			return wire.StreamResponse{}, err
		}
		if resp.More {
			break
		}
		o.After = nil
	}
	// The values, within the page's bytes: a value larger stored than
	// estimated ends the page early, after the last record it holds.
	size := 0
	for i, pk := range picks {
		if size >= lim.bytes {
			resp.More = true
			resp.Next = picks[i-1].key
			break
		}
		rec := pk.rec
		if f.pass != wire.StreamVerify {
			got, found, err := r.Get(pk.key)
			if err != nil {
				return wire.StreamResponse{}, err
			}
			if !found {
				continue // not in a consistent view: cannot happen
			}
			rec = got
		}
		resp.Records = append(resp.Records, wire.KeyRecord{Key: pk.key, Record: rec})
		size += len(pk.key) + len(rec.Value) + recordRoom
	}
	if !resp.More {
		resp.Next = nil
	}
	return resp, nil
}

// streamCache remembers the spans of each stream of the current move, by
// requester: the same for every page.
type streamCache struct {
	mu    sync.Mutex
	move  uint64
	spans map[string][]span // by the requester (with this server's ranges)
}

// spansFor returns the spans of the stream from self to dest in v's move.
func (c *streamCache) spansFor(v *topology.View, self, dest string) []span {
	id := v.State().Move.ID
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.move != id || c.spans == nil {
		c.move, c.spans = id, map[string][]span{}
	}
	sp, ok := c.spans[dest]
	if !ok {
		sp = streamSpans(v, self, dest)
		c.spans[dest] = sp
	}
	return sp
}

// handleStream answers a page of a stream: the records the requester
// gains in the move, after the key After in ring order, that this server
// holds and is to send in the requested pass. The page is read from one
// snapshot of the store.
func (s *Server) handleStream(f wire.Frame) wire.Frame {
	req, err := wire.DecodeStreamRequest(f.Body)
	if err != nil {
		return fail(wire.StatusBadRequest, "%v", err)
	}
	v := s.coord.View()
	st := v.State()
	if st.Move == nil || st.Move.ID != req.Move {
		if st.Epoch < req.Move {
			return fail(wire.StatusUnavailable, "move %d not known here yet (ring epoch %d)", req.Move, st.Epoch)
		}
		return fail(wire.StatusUnavailable, "no move %d under way (ring epoch %d)", req.Move, st.Epoch)
	}
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 || maxBytes > 4<<20 {
		maxBytes = streamPage
	}
	self := s.cfg.Addr
	filter := &streamFilter{cur: v.Current(), tgt: v.Target(), self: self, dest: req.Dest, pass: req.Pass,
		skip: req.Skip, excluded: st.Move.Excluded}
	spans := s.mover.streams.spansFor(v, self, req.Dest)
	snap, err := s.db.Snapshot()
	if err != nil {
		return storageFail(err)
	}
	defer snap.Close()
	var after []byte
	if len(req.After) > 0 {
		after = req.After
	}
	resp, err := readStreamPage(snap, spans, filter, after, pageLimits{scan: streamScan, bytes: maxBytes})
	if err != nil {
		return storageFail(err)
	}
	size := 64
	for _, kr := range resp.Records {
		size += len(kr.Key) + len(kr.Record.Value) + recordRoom
	}
	return ok(resp.Append(make([]byte, 0, size)))
}
