package metrics

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/dkvs/dkvs/dkvs/wire"
)

// gather returns the value of every dkvs sample of the ring and its
// streams, by name and label value ("name" or "name{value}").
func gather(t *testing.T, s wire.Stats) map[string]float64 {
	t.Helper()
	m := New(func() wire.Stats { return s })
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			name := f.GetName()
			for _, l := range mt.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			out[name] = value(mt)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

// TestRingMetrics: the ring's epoch and move on every server, the stream
// of a server that receives ranges, read from its stats.
func TestRingMetrics(t *testing.T) {
	cases := []struct {
		name   string
		stats  wire.Stats
		want   map[string]float64
		absent []string
	}{
		{"no move", wire.Stats{Epoch: 1}, map[string]float64{
			"dkvs_ring_epoch": 1, "dkvs_ring_move_in_progress": 0,
			"dkvs_ring_move_phase{streaming}": 0, "dkvs_ring_move_phase{read-new}": 0,
		}, []string{"dkvs_stream_keys_total", "dkvs_stream_phase{copy}"}},
		{"a source during a move", wire.Stats{Epoch: 7, MovePhase: "read-new"}, map[string]float64{
			"dkvs_ring_epoch": 7, "dkvs_ring_move_in_progress": 1,
			"dkvs_ring_move_phase{streaming}": 0, "dkvs_ring_move_phase{read-new}": 1,
		}, []string{"dkvs_stream_move"}},
		{"a gaining server copying", wire.Stats{Epoch: 6, MovePhase: "streaming", Stream: &wire.StreamStats{
			Move: 6, Phase: "copy", Keys: 5000, Bytes: 4 << 20, StartedMS: 10000, UpdatedMS: 12000,
			Sources: []string{"a", "b"}, Done: []string{"a"}, Error: "source b: refused",
		}}, map[string]float64{
			"dkvs_ring_move_in_progress": 1, "dkvs_stream_move": 6,
			"dkvs_stream_phase{copy}": 1, "dkvs_stream_phase{verify}": 0, "dkvs_stream_phase{done}": 0,
			"dkvs_stream_keys_total": 5000, "dkvs_stream_bytes_total": 4 << 20, "dkvs_stream_rate_bytes_per_second": 2 << 20,
			"dkvs_stream_sources{started}": 2, "dkvs_stream_sources{done}": 1, "dkvs_stream_failing": 1,
			"dkvs_stream_last_progress_timestamp_seconds": 12,
		}, nil},
		{"a stream its move's abort stopped", wire.Stats{Epoch: 7, Stream: &wire.StreamStats{
			Move: 6, Phase: "stopped", Keys: 10, StartedMS: 10000, UpdatedMS: 11000, FinishedMS: 11500,
		}}, map[string]float64{
			"dkvs_ring_move_in_progress": 0, "dkvs_stream_move": 6,
			"dkvs_stream_phase{copy}": 0, "dkvs_stream_phase{done}": 0, "dkvs_stream_phase{stopped}": 1,
		}, nil},
	}
	for _, tc := range cases {
		got := gather(t, tc.stats)
		for k, v := range tc.want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%s: %s = %v (present %v), want %v", tc.name, k, g, ok, v)
			}
		}
		for _, k := range tc.absent {
			if _, ok := got[k]; ok {
				t.Errorf("%s: %s present", tc.name, k)
			}
		}
	}
}
