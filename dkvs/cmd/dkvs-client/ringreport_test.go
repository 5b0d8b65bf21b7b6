package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// The report's fixed clock: 2026-01-02 03:04:05 UTC.
const reportNow = 1767323045000

// reportState is a ring of three servers that a fourth joins, begun
// 40 s before reportNow.
func reportState() topology.State {
	var members []config.Server
	for i := 0; i < 3; i++ {
		members = append(members, config.Server{IP: "10.0.0.1", Port: uint16(7001 + i), Count: 8})
	}
	st := topology.Initial(members)
	st, err := st.Apply(topology.Command{Op: topology.OpJoin, Server: config.Server{IP: "10.0.0.9", Port: 7009, Count: 8}, At: reportNow - 40000})
	if err != nil {
		panic(err)
	}
	return st
}

// reportStats: the three hold 3000 records each; the joining server has
// copied 1200 records from one of them in 20 s.
func reportStats() map[string]*wire.Stats {
	out := map[string]*wire.Stats{}
	for _, a := range []string{"10.0.0.1:7001", "10.0.0.1:7002", "10.0.0.1:7003"} {
		out[a] = &wire.Stats{Addr: a, LiveKeys: 2900, Tombstones: 100, Epoch: 2}
	}
	out["10.0.0.9:7009"] = &wire.Stats{Addr: "10.0.0.9:7009", LiveKeys: 1200, Epoch: 2, Stream: &wire.StreamStats{
		Move: 2, Phase: "copy", Keys: 1200, Bytes: 1200 * 1024, StartedMS: reportNow - 20000, UpdatedMS: reportNow - 100,
		Sources: []string{"10.0.0.1:7001", "10.0.0.1:7002"}, Done: []string{"10.0.0.1:7001"},
	}}
	return out
}

// TestRingReportText: the ring command's table, during a move and after
// it, from fakes.
func TestRingReportText(t *testing.T) {
	during := reportState()
	after := advance(advance(during))
	after.Cleanup.Since = reportNow - 15000
	stopped := reportStats()
	delete(stopped, "10.0.0.1:7002")
	cases := []struct {
		name  string
		st    topology.State
		stats map[string]*wire.Stats
		want  string
	}{
		{"a join streaming", during, reportStats(), `Ring epoch 2: 3 servers, a move under way
SERVER                COUNT STATE  EPOCH    RECORDS VOTER MOVE
10.0.0.1:7001             8 up         2       3000 yes
10.0.0.1:7002             8 up         2       3000 yes
10.0.0.1:7003             8 up         2       3000 yes
10.0.0.9:7009             8 up         2       1200 no    joining

Move 2: join of 10.0.0.9:7009, phase streaming (writes go to both rings, reads to the current one)
  started 2026-01-02 03:03:25 (40s ago)
  copies about 23.7% of the (key, replica) pairs: ~2130 records
  0 of 4 servers of the new ring reported their ranges streamed and verified; waiting for 10.0.0.1:7001, 10.0.0.1:7002, 10.0.0.1:7003, 10.0.0.9:7009
  STREAM TO              GAINS PHASE      RECORDS  EXPECTED      BYTES         RATE     LEFT SOURCES DONE
  10.0.0.1:7001           0.0% -                0        ~0        0 B            -        - 0/0
  10.0.0.1:7002           0.0% -                0        ~0        0 B            -        - 0/0
  10.0.0.1:7003           0.0% -                0        ~0        0 B            -        - 0/0
  10.0.0.9:7009          71.0% copy          1200     ~2130    1.2 MiB   60.0 KiB/s     ~15s 1/2
`},
		// A server down: its records counted at the others' mean.
		{"a server down", during, stopped, `Ring epoch 2: 3 servers, a move under way
SERVER                COUNT STATE  EPOCH    RECORDS VOTER MOVE
10.0.0.1:7001             8 up         2       3000 yes
10.0.0.1:7002             8 down       -          - yes
10.0.0.1:7003             8 up         2       3000 yes
10.0.0.9:7009             8 up         2       1200 no    joining

Move 2: join of 10.0.0.9:7009, phase streaming (writes go to both rings, reads to the current one)
  started 2026-01-02 03:03:25 (40s ago)
  copies about 23.7% of the (key, replica) pairs: ~2130 records
  0 of 4 servers of the new ring reported their ranges streamed and verified; waiting for 10.0.0.1:7001, 10.0.0.1:7002, 10.0.0.1:7003, 10.0.0.9:7009
  STREAM TO              GAINS PHASE      RECORDS  EXPECTED      BYTES         RATE     LEFT SOURCES DONE
  10.0.0.1:7001           0.0% -                0        ~0        0 B            -        - 0/0
  10.0.0.1:7002           0.0% -                0        ~0        0 B            -        - 0/0
  10.0.0.1:7003           0.0% -                0        ~0        0 B            -        - 0/0
  10.0.0.9:7009          71.0% copy          1200     ~2130    1.2 MiB   60.0 KiB/s     ~15s 1/2
`},
		{"after the move", after, reportStats(), `Ring epoch 4: 4 servers, no move under way
SERVER                COUNT STATE  EPOCH    RECORDS VOTER MOVE
10.0.0.1:7001             8 up         2       3000 yes
10.0.0.1:7002             8 up         2       3000 yes
10.0.0.1:7003             8 up         2       3000 yes
10.0.0.9:7009             8 up         2       1200 yes

Cleanup of epoch 4: since 2026-01-02 03:03:50 (15s ago), servers drop what they no longer own once their --cleanup-grace has passed
`},
	}
	for _, tc := range cases {
		var b bytes.Buffer
		if err := writeRingReport(&b, buildRingReport(tc.st, tc.stats, time.UnixMilli(reportNow)), time.UTC); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, b.String(), tc.want)
		}
	}
}

// TestStreamEstimates: the estimates of one stream by phase.
func TestStreamEstimates(t *testing.T) {
	st := reportState()
	v := topology.NewView(st)
	gains := v.Gains("10.0.0.9:7009", homesN)
	now := time.UnixMilli(reportNow)
	stream := func(phase string, keys int64, updatedAgo int64) *wire.Stats {
		return &wire.Stats{Stream: &wire.StreamStats{Move: 2, Phase: phase, Keys: keys, Bytes: keys * 100,
			StartedMS: reportNow - 10000, UpdatedMS: reportNow - updatedAgo}}
	}
	cases := []struct {
		name     string
		s        *wire.Stats
		reported bool
		phase    string
		rate     float64 // records per second
		left     float64 // -1: unknown
	}{
		{"not started", nil, false, "", 0, -1},
		{"reported, stats gone (restarted)", nil, true, "done", 0, 0},
		{"another move's stats", &wire.Stats{Stream: &wire.StreamStats{Move: 1, Phase: "done"}}, false, "", 0, -1},
		{"copying", stream("copy", 1000, 0), false, "copy", 100, 7.75},
		{"copying, the last page 5s ago: the rate runs to now", stream("copy", 1000, 5000), false, "copy", 100, 7.75},
		{"at the barrier: the rate stops at the last page", stream("barrier", 1000, 5000), false, "barrier", 200, -1},
		{"verifying", stream("verify", 1500, 0), false, "verify", 150, 1.83},
		{"done", stream("done", 1775, 2000), false, "done", 221.9, 0},
	}
	for _, tc := range cases {
		// 2500 distinct keys: the server gains 71% of them, each copied
		// once (the verifying pass fetches only what is missing or
		// older): 1775 records.
		got := buildStreamReport("10.0.0.9:7009", 2, gains, 2500, tc.reported, tc.s, now)
		if got.Phase != tc.phase || !near(got.RecordsPerSec, tc.rate) || !near(got.LeftSeconds, tc.left) || got.ExpectedRecords != 1775 && tc.s != nil {
			t.Errorf("%s: phase %q, %.1f records/s, %.1f s left; want %q, %.1f, %.1f (expected %d)",
				tc.name, got.Phase, got.RecordsPerSec, got.LeftSeconds, tc.phase, tc.rate, tc.left, got.ExpectedRecords)
		}
	}
}

// near compares estimates to a tenth of a unit.
func near(a, b float64) bool { return a >= b-0.1 && a <= b+0.1 }

// TestRingReportJSON: --json carries the documented fields.
func TestRingReportJSON(t *testing.T) {
	b, err := json.Marshal(buildRingReport(reportState(), reportStats(), time.UnixMilli(reportNow)))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	json.Unmarshal(b, &v)
	for _, path := range []string{"epoch", "members", "voters", "at_ms", "state", "move.id", "move.kind", "move.server",
		"move.phase", "move.started_ms", "move.moved_share", "move.expected_records", "move.reported", "move.waiting", "move.streams"} {
		cur := any(v)
		for _, k := range strings.Split(path, ".") {
			m, _ := cur.(map[string]any)
			cur = m[k]
		}
		if cur == nil {
			t.Errorf("no %s in %s", path, b)
		}
	}
	rep := buildRingReport(reportState(), reportStats(), time.UnixMilli(reportNow))
	s := rep.Move.Streams[3]
	if s.Server != "10.0.0.9:7009" || s.Phase != "copy" || s.Records != 1200 || s.ExpectedRecords != 2130 || rep.Members[3].Role != "joining" {
		t.Errorf("stream %+v, members %+v", s, rep.Members)
	}
}
