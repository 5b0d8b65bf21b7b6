package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// ringReport is what "dkvs-client ring" shows, and its --json output.
type ringReport struct {
	// Epoch is the newest epoch a server told; State is that ring.
	Epoch uint64 `json:"epoch"`
	// Members are the servers of the ring and of the move's target, the
	// ring's first.
	Members []memberReport `json:"members"`
	// Voters are the servers that vote in the consensus.
	Voters  []string       `json:"voters"`
	Move    *moveReport    `json:"move,omitempty"`
	Cleanup *cleanupReport `json:"cleanup,omitempty"`
	// AtMS is when the servers were asked (Unix milliseconds).
	AtMS  int64          `json:"at_ms"`
	State topology.State `json:"state"`
}

// memberReport is one server.
type memberReport struct {
	Addr  string `json:"addr"`
	Count int    `json:"count"`
	// State is "up" when the server answered this client, "down" when not.
	State string `json:"state"`
	// Epoch is the ring epoch the server knows (0 when down).
	Epoch uint64 `json:"epoch,omitempty"`
	// Records are the keys it stores, deleted ones included.
	Records int64 `json:"records"`
	Voter   bool  `json:"voter"`
	// Role is the server's part in the move under way: joining, leaving,
	// replaced (the dead server), replacing (its successor) or removed.
	Role string `json:"role,omitempty"`
}

// moveReport is the move under way.
type moveReport struct {
	ID     uint64            `json:"id"`
	Kind   topology.MoveKind `json:"kind"`
	Server string            `json:"server"`
	New    string            `json:"new,omitempty"`
	Phase  topology.Phase    `json:"phase"`
	// StartedMS is when the move began (Unix milliseconds).
	StartedMS int64 `json:"started_ms"`
	// MovedShare is the share of (key, replica) pairs whose home changes
	// (topology.Moved, keys of N=3); ExpectedRecords estimates the
	// records the first copy brings: MovedShare × the records the
	// current servers hold.
	MovedShare      float64 `json:"moved_share"`
	ExpectedRecords int64   `json:"expected_records"`
	// Reported are the servers of the new ring that reported their ranges
	// streamed and verified; Waiting, those the move still waits for.
	Reported []string `json:"reported"`
	Waiting  []string `json:"waiting"`
	// Streams are the servers that gain ranges, and those that have not
	// reported yet.
	Streams []streamReport `json:"streams"`
}

// streamReport is one server's streaming in the move.
type streamReport struct {
	Server string `json:"server"`
	// Gains is the share of the key space it gains (keys of N=3).
	Gains float64 `json:"gains"`
	// Phase is its stream's: copy, barrier, verify or done; "" when it
	// has not started or does not answer.
	Phase    string   `json:"phase"`
	Reported bool     `json:"reported"`
	Records  int64    `json:"records"`
	Bytes    int64    `json:"bytes"`
	Sources  []string `json:"sources,omitempty"`
	Done     []string `json:"sources_done,omitempty"`
	Error    string   `json:"error,omitempty"`
	// BytesPerSec and RecordsPerSec are the mean rates since the stream
	// started.
	BytesPerSec   float64 `json:"bytes_per_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	// ExpectedRecords estimates all the records it receives: those it
	// gains, once each from the copy (the verifying pass lists keys and
	// fetches only the few records missing or older). LeftSeconds
	// estimates the time left at the mean rate (-1: unknown).
	ExpectedRecords int64   `json:"expected_records"`
	LeftSeconds     float64 `json:"left_seconds"`
	UpdatedMS       int64   `json:"updated_ms,omitempty"`
}

// cleanupReport is the note that old homes may still hold moved data.
type cleanupReport struct {
	Epoch   uint64 `json:"epoch"`
	SinceMS int64  `json:"since_ms"`
}

// buildRingReport puts together what the ring command shows from the ring
// state and the stats of the servers that answered (a server missing from
// stats is down), as of now.
func buildRingReport(st topology.State, stats map[string]*wire.Stats, now time.Time) ringReport {
	rep := ringReport{Epoch: st.Epoch, Voters: st.Voters(), AtMS: now.UnixMilli(), State: st}
	if rep.Voters == nil {
		rep.Voters = []string{}
	}
	for _, sv := range st.AllServers() {
		m := memberReport{Addr: sv.Addr(), Count: sv.Count, State: "down", Voter: slices.Contains(rep.Voters, sv.Addr())}
		if s := stats[m.Addr]; s != nil {
			m.State, m.Epoch, m.Records = "up", s.Epoch, s.LiveKeys+s.Tombstones
		}
		if mv := st.Move; mv != nil {
			switch {
			case m.Addr == mv.Server && mv.Kind == topology.Join:
				m.Role = "joining"
			case m.Addr == mv.Server && mv.Kind == topology.Leave:
				m.Role = "leaving"
			case m.Addr == mv.Server && mv.Kind == topology.Replace:
				m.Role = "replaced"
			case m.Addr == mv.New:
				m.Role = "replacing"
			case m.Addr == mv.Server && mv.Kind == topology.Remove:
				m.Role = "removed"
			}
		}
		rep.Members = append(rep.Members, m)
	}
	if st.Cleanup != nil {
		rep.Cleanup = &cleanupReport{Epoch: st.Cleanup.Epoch, SinceMS: st.Cleanup.Since}
	}
	if st.Move != nil {
		rep.Move = buildMoveReport(st, stats, now)
	}
	return rep
}

func buildMoveReport(st topology.State, stats map[string]*wire.Stats, now time.Time) *moveReport {
	mv := st.Move
	v := topology.NewView(st)
	out := &moveReport{ID: mv.ID, Kind: mv.Kind, Server: mv.Server, New: mv.New, Phase: mv.Phase, StartedMS: mv.Started,
		Reported: []string{}, Waiting: []string{}, Streams: []streamReport{}}
	out.MovedShare = topology.Moved(v.Current(), v.Target(), homesN)
	// The records the current servers hold, those that did not answer
	// counted at the mean of those that did.
	var held int64
	answered := 0
	for _, sv := range st.Members {
		if s := stats[sv.Addr()]; s != nil {
			held += s.LiveKeys + s.Tombstones
			answered++
		}
	}
	total := 0.0
	if answered > 0 {
		total = float64(held) * float64(len(st.Members)) / float64(answered)
	}
	out.ExpectedRecords = int64(math.Round(out.MovedShare * total))
	keys := total / float64(min(homesN, len(st.Members))) // distinct keys
	for _, t := range mv.Target {
		addr := t.Addr()
		reported := slices.Contains(mv.Streamed, addr)
		if reported {
			out.Reported = append(out.Reported, addr)
		} else {
			out.Waiting = append(out.Waiting, addr)
		}
		gains := v.Gains(addr, homesN)
		if len(gains) == 0 && reported {
			continue
		}
		out.Streams = append(out.Streams, buildStreamReport(addr, mv.ID, gains, keys, reported, stats[addr], now))
	}
	return out
}

// buildStreamReport estimates one gaining server's progress. The first
// pass copies each record it gains once (share × keys); the verifying
// pass lists every live home's keys and versions and fetches only the
// records missing or older, few unless writes went to old homes alone.
func buildStreamReport(addr string, move uint64, gains []topology.Gain, keys float64, reported bool, s *wire.Stats,
	now time.Time) streamReport {
	out := streamReport{Server: addr, Reported: reported, LeftSeconds: -1}
	var share float64
	for _, g := range gains {
		share += rangeFraction(g.Range)
	}
	out.Gains = share
	out.ExpectedRecords = int64(math.Round(share * keys))
	if s == nil || s.Stream == nil || s.Stream.Move != move {
		if reported {
			out.Phase, out.LeftSeconds = "done", 0
		}
		return out
	}
	ss := s.Stream
	out.Phase, out.Records, out.Bytes, out.Error, out.UpdatedMS = ss.Phase, ss.Keys, ss.Bytes, ss.Error, ss.UpdatedMS
	out.Sources, out.Done = ss.Sources, ss.Done
	if ss.Phase == "done" || reported {
		out.LeftSeconds = 0
	}
	// The mean rate from the stream's start to its last progress (a
	// stream waiting at the barrier does not slow it down); its last
	// progress is now while it copies.
	end := ss.UpdatedMS
	if ss.Phase == "copy" || ss.Phase == "verify" {
		end = max(end, now.UnixMilli())
	}
	if secs := float64(end-ss.StartedMS) / 1000; secs > 0 {
		out.BytesPerSec = float64(ss.Bytes) / secs
		out.RecordsPerSec = float64(ss.Keys) / secs
	}
	if out.LeftSeconds < 0 && out.RecordsPerSec > 0 && ss.Phase != "barrier" {
		out.LeftSeconds = max(0, float64(out.ExpectedRecords-ss.Keys)/out.RecordsPerSec)
	}
	return out
}

// rangeFraction returns the share of the key space in r, from the top 64
// bits of its ends (topology's arithmetic for shares).
func rangeFraction(r topology.Range) float64 {
	a, b := binary.BigEndian.Uint64(r.Start[:8]), binary.BigEndian.Uint64(r.End[:8])
	if a == b {
		return 1
	}
	return float64(b-a) / math.Exp2(64)
}

// writeRingReport prints the report for people.
func writeRingReport(out io.Writer, rep ringReport, loc *time.Location) error {
	w := bufio.NewWriter(out)
	now := time.UnixMilli(rep.AtMS)
	state := "no move under way"
	if rep.Move != nil {
		state = "a move under way"
	}
	fmt.Fprintf(w, "Ring epoch %d: %d servers, %s\n", rep.Epoch, len(rep.State.Members), state)
	fmt.Fprintf(w, "%-21s %5s %-5s %6s %10s %-5s %s\n", "SERVER", "COUNT", "STATE", "EPOCH", "RECORDS", "VOTER", "MOVE")
	for _, m := range rep.Members {
		epoch, records := "-", "-"
		if m.State == "up" {
			epoch, records = fmt.Sprint(m.Epoch), fmt.Sprint(m.Records)
		}
		voter := "no"
		if m.Voter {
			voter = "yes"
		}
		line := fmt.Sprintf("%-21s %5d %-5s %6s %10s %-5s %s", m.Addr, m.Count, m.State, epoch, records, voter, m.Role)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if mv := rep.Move; mv != nil {
		what := fmt.Sprintf("%s of %s", mv.Kind, mv.Server)
		if mv.New != "" {
			what += " by " + mv.New
		}
		reads := "writes go to both rings, reads to the current one"
		if mv.Phase == topology.ReadNew {
			reads = "writes go to both rings, reads to the new one"
		}
		fmt.Fprintf(w, "\nMove %d: %s, phase %s (%s)\n", mv.ID, what, mv.Phase, reads)
		fmt.Fprintf(w, "  started %s\n", when(mv.StartedMS, now, loc))
		fmt.Fprintf(w, "  copies about %.1f%% of the (key, replica) pairs: ~%d records\n", 100*mv.MovedShare, mv.ExpectedRecords)
		if len(mv.Waiting) == 0 {
			fmt.Fprintf(w, "  every server of the new ring reported its ranges streamed and verified\n")
		} else {
			fmt.Fprintf(w, "  %d of %d servers of the new ring reported their ranges streamed and verified; waiting for %s\n",
				len(mv.Reported), len(mv.Reported)+len(mv.Waiting), strings.Join(mv.Waiting, ", "))
		}
		if len(mv.Streams) > 0 {
			fmt.Fprintf(w, "  %-21s %6s %-8s %9s %9s %10s %12s %8s %s\n",
				"STREAM TO", "GAINS", "PHASE", "RECORDS", "EXPECTED", "BYTES", "RATE", "LEFT", "SOURCES DONE")
			for _, s := range mv.Streams {
				phase := s.Phase
				if phase == "" {
					phase = "-"
				}
				rate, left := "-", "-"
				if s.BytesPerSec > 0 {
					rate = humanBytes(s.BytesPerSec) + "/s"
				}
				switch {
				case s.LeftSeconds == 0:
					left = "0s"
				case s.LeftSeconds > 0:
					left = "~" + (time.Duration(s.LeftSeconds) * time.Second).Round(time.Second).String()
				}
				fmt.Fprintf(w, "  %-21s %5.1f%% %-8s %9d %9s %10s %12s %8s %d/%d\n", s.Server, 100*s.Gains, phase, s.Records,
					fmt.Sprint("~", s.ExpectedRecords), humanBytes(float64(s.Bytes)), rate, left, len(s.Done), len(s.Sources))
				if s.Error != "" {
					fmt.Fprintf(w, "    last error (it tries again): %s\n", s.Error)
				}
			}
		}
	}
	if c := rep.Cleanup; c != nil {
		fmt.Fprintf(w, "\nCleanup of epoch %d: since %s, servers drop what they no longer own once their --cleanup-grace has passed\n",
			c.Epoch, when(c.SinceMS, now, loc))
	}
	return w.Flush()
}

// when formats a time in loc and how long before now it was.
func when(ms int64, now time.Time, loc *time.Location) string {
	t := time.UnixMilli(ms)
	return fmt.Sprintf("%s (%s ago)", t.In(loc).Format(time.DateTime), now.Sub(t).Round(time.Second))
}

// humanBytes formats a number of bytes with a binary unit.
func humanBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

// serversText returns servers in the format of servers.txt.
func serversText(servers []config.Server) []byte {
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "%s %d %d\n", s.IP, s.Port, s.Count)
	}
	return []byte(b.String())
}
