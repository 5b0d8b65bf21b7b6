package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// DefaultCleanupGrace is how long after a move of the ring ends (or is
// aborted) the servers that no longer own some keys keep them.
const DefaultCleanupGrace = time.Minute

// cleanedKey holds the epoch of the ring this server last cleaned up for.
var cleanedKey = []byte("cleaned")

// cleanupBatch bounds the records handed over in one request.
const cleanupBatch = 256

// cleaner drops, after a move of the ring, what this server holds and no
// longer owns: each such record goes to its current homes first (a put of
// the same version: nothing is lost if the copy the move made missed it,
// or if a write of an older epoch landed here), then it is dropped if its
// version has not changed meanwhile.
func (s *Server) cleaner(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v := s.coord.View()
		st := v.State()
		if st.Move != nil {
			continue // a move under way: the next one's end will clean up
		}
		if st.Cleanup != nil && time.Since(time.UnixMilli(st.Cleanup.Since)) < s.cleanupGrace {
			continue
		}
		done, err := s.cleanedEpoch()
		if err != nil || done >= st.Epoch {
			continue
		}
		if st.Epoch == 1 {
			// servers.txt's ring: nothing moved; mark it, nothing to do.
			s.setCleaned(st.Epoch)
			continue
		}
		n, err := s.cleanup(ctx, v)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("ring cleanup failed; trying again", "epoch", st.Epoch, "err", err)
			}
			continue
		}
		s.setCleaned(st.Epoch)
		s.log.Info("ring cleanup done", "epoch", st.Epoch, "dropped", n)
	}
}

func (s *Server) cleanedEpoch() (uint64, error) {
	b, ok, err := s.db.Consensus().Get(cleanedKey)
	if err != nil || !ok || len(b) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

func (s *Server) setCleaned(epoch uint64) {
	if err := s.db.Consensus().Set([2][]byte{cleanedKey, binary.BigEndian.AppendUint64(nil, epoch)}); err != nil {
		s.log.Warn("ring cleanup: recording it failed", "err", err)
	}
}

// cleanup hands over and drops every record this server does not own in
// v's ring; it returns how many it dropped.
func (s *Server) cleanup(ctx context.Context, v *topology.View) (int, error) {
	self := s.cfg.Addr
	r := v.Current()
	type stray struct {
		key   []byte
		rec   kv.Record
		homes []string
	}
	var batch []stray
	dropped := 0
	flush := func() error {
		byHome := map[string][]wire.KeyRecord{}
		for _, st := range batch {
			for _, h := range st.homes {
				byHome[h] = append(byHome[h], wire.KeyRecord{Key: st.key, Record: st.rec})
			}
		}
		for home, recs := range byHome {
			if err := s.sendBatch(ctx, home, recs); err != nil {
				return err
			}
		}
		for _, st := range batch {
			ok, err := s.db.Drop(st.key, st.rec.Version)
			if err != nil {
				return err
			}
			if ok {
				dropped++
			}
		}
		batch = batch[:0]
		return nil
	}
	var ferr error
	err := s.db.Scan(nil, storage.ScanOptions{Tombstones: true}, func(key []byte, rec kv.Record) bool {
		if rec.N == 0 {
			return true // this server's alone
		}
		homes := addrsOf(r, r.Preference(key, int(rec.N)))
		if slices.Contains(homes, self) {
			return true
		}
		batch = append(batch, stray{append([]byte(nil), key...), rec, homes})
		if len(batch) >= cleanupBatch {
			ferr = flush()
		}
		return ferr == nil && ctx.Err() == nil
	})
	if err = errors.Join(err, ferr); err != nil {
		return dropped, err
	}
	if ctx.Err() != nil {
		return dropped, ctx.Err()
	}
	return dropped, flush()
}

// sendBatch stores records on a server (newest wins there).
func (s *Server) sendBatch(ctx context.Context, addr string, recs []wire.KeyRecord) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := wire.PutBatch{Records: recs, Compress: true}.Append(nil)
	f, err := s.peers.Call(cctx, addr, wire.Frame{Kind: uint8(wire.OpPutBatch), Body: body})
	if err != nil {
		return err
	}
	if f.Status() != wire.StatusOK {
		msg, _ := wire.DecodeMessage(f.Body)
		return fmt.Errorf("%s: %s %s: %w", addr, f.Status(), msg, errcode.Network)
	}
	return nil
}
