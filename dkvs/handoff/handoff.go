// Package handoff delivers hints: records a server keeps for a home
// replica that was down when they were written (sloppy quorum).
//
// When the home replica answers again, the holder sends it the hints in
// batches and deletes each hint only after the home replica acknowledged
// the batch that carried it; a hint rewritten meanwhile with a newer
// version is kept for the next delivery.
package handoff

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/health"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// Store holds the hints.
type Store interface {
	HintCounts() map[string]int64
	ScanHints(target string, fn func(key []byte, rec kv.Record) bool) error
	DeleteHint(target string, key []byte, v kv.Version) (bool, error)
}

// Transport sends a request to a server.
type Transport interface {
	Call(ctx context.Context, addr string, req wire.Frame) (wire.Frame, error)
}

// Options configure a Handoff.
type Options struct {
	// Interval between checks for hints to deliver (default 1s).
	Interval time.Duration
	// BatchRecords and BatchBytes bound one batch (defaults 256, 1 MiB).
	BatchRecords, BatchBytes int
	// Timeout of one batch (default 5s).
	Timeout time.Duration
	// Health tells which targets are up; deliveries that fail are
	// reported to it. May be nil.
	Health *health.Detector
	// Logger receives one line when a delivery begins and one when it
	// ends; nil discards.
	Logger *slog.Logger
	// Member, Moving and Homes follow the ring. A hint is a write that
	// missed its target; once the ring has changed, or while it changes,
	// the target may no longer be where the write belongs. Hints held for a
	// server that is no longer a member (it left or was removed), and every
	// hint while a move is under way (Moving), go to the current homes of
	// their keys (Homes returns them for a key of n replicas: during a
	// move, those of both rings); so does a hint whose key the target no
	// longer holds. Nil Member and Homes: every hint goes to its target.
	Member func(addr string) bool
	Moving func() bool
	Homes  func(key []byte, n int) []string
}

// Handoff delivers hints. It is safe for concurrent use.
type Handoff struct {
	store     Store
	tr        Transport
	opts      Options
	log       *slog.Logger
	kick      chan string
	mu        sync.Mutex
	busy      map[string]bool
	delivered atomic.Int64
}

// New returns a Handoff; call Run to start it.
func New(store Store, tr Transport, opts Options) *Handoff {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.BatchRecords <= 0 {
		opts.BatchRecords = 256
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 1 << 20
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handoff{store: store, tr: tr, opts: opts, log: log, kick: make(chan string, 16), busy: map[string]bool{}}
}

// Kick asks for a delivery to target now (for example when the failure
// detector sees it come back).
func (h *Handoff) Kick(target string) {
	select {
	case h.kick <- target:
	default:
	}
}

// Delivered returns how many hints were handed over.
func (h *Handoff) Delivered() int64 { return h.delivered.Load() }

// Run delivers hints to every target that is up, every Interval and on
// Kick, until ctx ends.
func (h *Handoff) Run(ctx context.Context) {
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case target := <-h.kick:
			h.handOver(ctx, target)
		case <-t.C:
			for target := range h.store.HintCounts() {
				h.handOver(ctx, target)
			}
		}
	}
}

// handOver delivers the hints held for target: to the current homes of
// their keys when the target left the ring or the ring is changing, to
// the target otherwise, once it takes writes.
func (h *Handoff) handOver(ctx context.Context, target string) {
	if h.opts.Homes != nil && ((h.opts.Member != nil && !h.opts.Member(target)) || (h.opts.Moving != nil && h.opts.Moving())) {
		h.Reroute(ctx, target)
		return
	}
	if hl := h.opts.Health; hl != nil && !hl.Writable(target, false) {
		return // down, or its storage refuses writes: the detector's heartbeat will bring it back
	}
	h.Deliver(ctx, target)
}

// Deliver hands every hint held for target over, batch by batch, and
// returns how many were delivered. It stops at the first failure.
func (h *Handoff) Deliver(ctx context.Context, target string) (int, error) {
	return h.deliver(ctx, target, false)
}

// Reroute hands the hints held for target to the current homes of their
// keys (target among them where it still is one): for a server that left
// the ring, and for every target while the ring changes. A hint is deleted
// once every home it went to acknowledged it. It returns how many were
// delivered.
func (h *Handoff) Reroute(ctx context.Context, target string) (int, error) {
	if h.opts.Homes == nil {
		return 0, nil
	}
	return h.deliver(ctx, target, true)
}

// deliver hands the hints held for target over, batch by batch: to the
// current homes of their keys when toHomes is set, otherwise to target
// (but for those whose key target no longer holds: see split). A hint is
// deleted once every server it went to acknowledged it. It stops at the
// first failure.
func (h *Handoff) deliver(ctx context.Context, target string, toHomes bool) (int, error) {
	h.mu.Lock()
	if h.busy[target] {
		h.mu.Unlock()
		return 0, nil
	}
	h.busy[target] = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.busy, target)
		h.mu.Unlock()
	}()
	held := h.store.HintCounts()[target]
	if held == 0 {
		return 0, nil
	}
	start := time.Now()
	h.log.Info("hint handoff begun", "target", target, "hints", held, "to_current_homes", toHomes)
	total := 0
	for {
		batch, err := h.batch(target)
		if err != nil {
			return total, err
		}
		if len(batch) == 0 {
			break
		}
		direct, elsewhere := h.split(target, batch, toHomes)
		if len(direct) > 0 {
			if err := h.send(ctx, target, direct); err != nil {
				h.log.Warn("hint handoff interrupted", "target", target, "delivered", total, "err", err)
				return total, err
			}
		}
		for home, recs := range elsewhere {
			if err := h.send(ctx, home, recs); err != nil {
				h.log.Warn("hint handoff interrupted: a current home of the hints' keys failed", "target", target, "home", home,
					"delivered", total, "err", err)
				return total, err
			}
		}
		for _, kr := range batch {
			if _, err := h.store.DeleteHint(target, kr.Key, kr.Record.Version); err != nil {
				return total, err
			}
		}
		total += len(batch)
		h.delivered.Add(int64(len(batch)))
		if len(batch) < h.opts.BatchRecords && h.store.HintCounts()[target] == 0 {
			break
		}
	}
	h.log.Info("hint handoff finished", "target", target, "delivered", total, "to_current_homes", toHomes,
		"took", time.Since(start).Round(time.Millisecond))
	return total, nil
}

// split sorts a batch of hints for target: those whose key target is a
// home of go to it; the others (the ring changed since the write), and
// all of them with toHomes, go to the key's current homes.
func (h *Handoff) split(target string, batch []wire.KeyRecord, toHomes bool) (direct []wire.KeyRecord, elsewhere map[string][]wire.KeyRecord) {
	if h.opts.Homes == nil {
		return batch, nil
	}
	for _, kr := range batch {
		homes := h.opts.Homes(kr.Key, int(kr.Record.N))
		if !toHomes && slices.Contains(homes, target) {
			direct = append(direct, kr)
			continue
		}
		if elsewhere == nil {
			elsewhere = map[string][]wire.KeyRecord{}
		}
		for _, home := range homes {
			elsewhere[home] = append(elsewhere[home], kr)
		}
	}
	return direct, elsewhere
}

func (h *Handoff) batch(target string) ([]wire.KeyRecord, error) {
	var out []wire.KeyRecord
	size := 0
	err := h.store.ScanHints(target, func(key []byte, rec kv.Record) bool {
		if len(out) > 0 && (len(out) >= h.opts.BatchRecords || size+len(key)+len(rec.Value) > h.opts.BatchBytes) {
			return false
		}
		out = append(out, wire.KeyRecord{Key: append([]byte(nil), key...), Record: rec})
		size += len(key) + len(rec.Value)
		return true
	})
	return out, err
}

func (h *Handoff) send(ctx context.Context, target string, batch []wire.KeyRecord) error {
	cctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	body := wire.PutBatch{Records: batch, Compress: true}.Append(nil)
	f, err := h.tr.Call(cctx, target, wire.Frame{Kind: uint8(wire.OpPutBatch), Body: body})
	if err != nil {
		if hl := h.opts.Health; hl != nil {
			hl.Failed(target, err)
		}
		return err
	}
	if f.Status() == wire.StatusStorage {
		st, msg, _ := wire.DecodeRefusal(f.Body)
		if hl := h.opts.Health; hl != nil {
			hl.SetStorage(target, st)
		}
		return fmt.Errorf("%s: storage %s: %s: %w", target, st, msg, errcode.IO)
	}
	if f.Status() != wire.StatusOK {
		msg, _ := wire.DecodeMessage(f.Body)
		return fmt.Errorf("%s: %s %s: %w", target, f.Status(), msg, errcode.Network)
	}
	return nil
}
