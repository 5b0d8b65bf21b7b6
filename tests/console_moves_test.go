package tests

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/console"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/tests/harness"
)

// Moves on a live ring, as the console shows them: three servers of
// servers.txt hold keys, a fourth joins with its stream slowed down by
// --move-bandwidth so that its progress can be watched, then the join is
// over and kept in the console's history.

const (
	movesKeys      = 3000
	movesValueSize = 200
	// movesBandwidth bounds what the joining server receives: about
	// 470 KB at 64 KiB/s (after a first burst of 64 KiB) takes some 6 s,
	// in a page from each of the three sources.
	movesBandwidth = "65536"
)

// movesRing starts the three servers of servers.txt, each with a
// console, writes movesKeys keys of N=3 through them, and prepares the
// fourth (started, not in the ring) with its stream slowed down. It
// returns the ring, the consoles' addresses and the keys the fourth
// gains in its join.
func movesRing(t *testing.T) (*harness.Ring, []string, int) {
	t.Helper()
	r := harness.NewRing(t, 16, 16, 16, 16)
	r.WriteServers(r.Servers[:3])
	r.Args = []string{"--memory", "--cleanup-grace", "2s"}
	maddr := withMetrics(t, r)
	r.ServerArgs[3] = append(r.ServerArgs[3], "--move-bandwidth", movesBandwidth)
	for i := 0; i < 3; i++ {
		r.Start(i)
	}
	r.WaitPeersUp()
	c := client(t, r, nil)
	// Random values, each its own: pages travel compressed, and the
	// bandwidth limit counts the bytes carried.
	values := make([][]byte, movesKeys)
	rnd := rand.NewChaCha8([32]byte{1})
	for i := range values {
		values[i] = make([]byte, movesValueSize)
		rnd.Read(values[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < movesKeys; i += 8 {
				if err := c.Put(bg, []byte(fmt.Sprintf("mk-%05d", i)), values[i], 3, 3); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r.Start(3)
	// The keys whose homes in the new ring include the fourth: what its
	// stream copies, each once.
	target := ring.New(r.Servers)
	gains := 0
	for i := 0; i < movesKeys; i++ {
		if slices.Contains(target.Preference([]byte(fmt.Sprintf("mk-%05d", i)), 3), 3) {
			gains++
		}
	}
	return r, maddr, gains
}

// receiverOf returns the receiver addr of the move in v.
func receiverOf(v console.MovesView, addr string) (console.Receiver, error) {
	if v.Move == nil {
		return console.Receiver{}, fmt.Errorf("no move in /api/moves (epoch %d)", v.Epoch)
	}
	for _, r := range v.Move.Receivers {
		if r.Addr == addr {
			return r, nil
		}
	}
	return console.Receiver{}, fmt.Errorf("%s not among the receivers of move %d", addr, v.Move.ID)
}

// TestConsoleMovesAPI polls /api/moves of a server of the ring during a
// join: the move with its receiver, its ranges and its stream's progress
// (ranges done, keys, bytes, rate, time left) part-way; then the join in
// the history, finished, with the keys the joining server received.
func TestConsoleMovesAPI(t *testing.T) {
	r, maddr, gains := movesRing(t)
	self := maddr[0]
	var v console.MovesView
	if code := getJSON(t, self, "/api/moves", &v); code != 200 || v.Move != nil || v.Epoch != 1 || len(v.History) != 0 {
		t.Fatalf("/api/moves before any move: %d %+v", code, v)
	}
	began := time.Now()
	wantRingOK(t, ringCmd(t, r, "join", "--", "127.0.0.1", port(r.Servers[3]), "16"), "OK epoch 2: move 2, join of "+r.Addr(3))
	newcomer := r.Addr(3)
	var seen console.Receiver
	took := harness.Eventually(t, 20*time.Second, "the join's progress in /api/moves", func() error {
		getJSON(t, self, "/api/moves", &v)
		rc, err := receiverOf(v, newcomer)
		if err != nil {
			return err
		}
		m := v.Move
		switch s := rc.Stream; {
		case m.ID != 2 || m.Kind != "join" || !slices.Equal(m.In, []string{newcomer}) || len(m.Out) != 0 || m.Phase != "streaming":
			return fmt.Errorf("move %+v", m)
		case len(m.Receivers) != 1:
			return fmt.Errorf("receivers %+v, want the joining server alone", m.Receivers)
		case rc.State != console.StateUp || !rc.Answered || len(rc.Ranges) == 0 || rc.Share <= 0:
			return fmt.Errorf("receiver %+v", rc)
		case s == nil || s.Phase != "copy" || s.Keys == 0 || s.Fraction <= 0 || s.Fraction >= 1 || s.RangesTotal != len(rc.Ranges):
			return fmt.Errorf("stream %+v", s)
		case s.BytesPerSec <= 0 || s.LeftMS <= 0 || strings.HasPrefix(rc.TimeLeft, "unknown"):
			return fmt.Errorf("rate %v B/s, time left %d ms (%q)", s.BytesPerSec, s.LeftMS, rc.TimeLeft)
		}
		seen = rc
		return nil
	})
	s := seen.Stream
	t.Logf("after %v: %d of %d keys, %d of %d ranges, %.0f%%, %.0f B/s, time left %s",
		took.Round(time.Millisecond), s.Keys, gains, s.RangesDone, s.RangesTotal, 100*s.Fraction, s.BytesPerSec, seen.TimeLeft)
	for _, rg := range seen.Ranges {
		if len(rg.From) == 0 || slices.Contains(rg.From, newcomer) {
			t.Fatalf("range %+v", rg)
		}
	}

	harness.Eventually(t, 60*time.Second, "the join over, in the history of /api/moves", func() error {
		getJSON(t, self, "/api/moves", &v)
		switch {
		case v.Move != nil:
			return fmt.Errorf("move %d in phase %s", v.Move.ID, v.Move.Phase)
		case len(v.History) != 1:
			return fmt.Errorf("history %+v", v.History)
		}
		h := v.History[0]
		if h.ID != 2 || h.Outcome != "finished" || h.EndEpoch != 4 || !h.Complete || len(h.Receivers) != 1 ||
			h.Receivers[0].Addr != newcomer || h.Receivers[0].Phase != "done" || h.Keys != int64(gains) ||
			h.Bytes < int64(gains*movesValueSize) || h.DurationMS <= 0 || h.DurationMS > time.Since(began).Milliseconds()+1000 {
			return fmt.Errorf("history %+v, want move 2 finished with %d keys", h, gains)
		}
		return nil
	})
	t.Logf("join of %d keys: %.1f s by the history", gains, float64(v.History[0].DurationMS)/1000)
}
