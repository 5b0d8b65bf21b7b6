// Package metrics exposes a server's metrics in the Prometheus text format
// (github.com/prometheus/client_golang), and, optionally, Go's pprof
// profiles on the same HTTP address.
//
// Traffic (requests by operation and outcome, their latency, bytes in and
// out, connections, refused frames) is counted as it happens through the
// transport's Observer hook. Everything else (keys and bytes stored, hints
// held and delivered, read repairs, anti-entropy per peer, peers up or
// down, the ring's epoch and move, the streaming of ranges) is read from
// the server's stats at each scrape, so the rest of the server needs no
// instrumentation.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dkvs/dkvs/dkvs/wire"
)

// Namespace prefixes every dkvs metric.
const Namespace = "dkvs"

// Metrics holds a server's collectors. It implements transport.Observer.
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	bytesIn    prometheus.Counter
	bytesOut   prometheus.Counter
	conns      prometheus.Gauge
	connsTotal prometheus.Counter
	refused    prometheus.Counter
}

// New returns the metrics of a server whose stats stats returns (called at
// each scrape).
func New(stats func() wire.Stats) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "requests_total",
			Help: "Requests answered, by operation and status.",
		}, []string{"op", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Time from reading a request to queueing its answer, by operation.",
			Buckets: prometheus.ExponentialBucketsRange(25e-6, 2.5, 18),
		}, []string{"op"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "received_bytes_total", Help: "Bytes of request frames received.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "sent_bytes_total", Help: "Bytes of response frames sent.",
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "connections", Help: "Connections open.",
		}),
		connsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "connections_total", Help: "Connections accepted.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "refused_frames_total",
			Help: "Frames refused (malformed, truncated, oversized); each closed its connection.",
		}),
	}
	m.reg.MustRegister(
		m.requests, m.latency, m.bytesIn, m.bytesOut, m.conns, m.connsTotal, m.refused,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{stats: stats},
	)
	return m
}

// Request counts one answered request.
func (m *Metrics) Request(op wire.Op, status wire.Status, in, out int, d time.Duration) {
	name := op.String()
	m.requests.WithLabelValues(name, status.String()).Inc()
	m.latency.WithLabelValues(name).Observe(d.Seconds())
	m.bytesIn.Add(float64(in))
	m.bytesOut.Add(float64(out))
}

// Conn counts a connection opened or closed.
func (m *Metrics) Conn(open bool) {
	if open {
		m.conns.Inc()
		m.connsTotal.Inc()
	} else {
		m.conns.Dec()
	}
}

// Refused counts a refused frame.
func (m *Metrics) Refused() { m.refused.Inc() }

// Registry returns the registry, for tests and embedding.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics, and /debug/pprof/ when pprof is set.
func (m *Metrics) Handler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve serves the handler on ln until ctx ends.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, withPprof bool) error {
	return ServeHandler(ctx, ln, m.Handler(withPprof))
}

// ServeHandler serves h on ln until ctx ends, then shuts down cleanly:
// Serve with a handler of the caller's (the metrics' own inside the web
// console's, say).
func ServeHandler(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// statsCollector turns the server's stats into metrics at each scrape.
type statsCollector struct {
	stats func() wire.Stats
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	descKeys         = desc("keys", "Keys stored, by state (live or tombstone).", "state")
	descBytes        = desc("stored_value_bytes", "Bytes of live values stored (after compression).")
	descHintsHeld    = desc("hints_held", "Hints held for other servers.")
	descPeerHints    = desc("peer_hints_held", "Hints held for a peer.", "peer")
	descHintsSent    = desc("hints_delivered_total", "Hints handed over to their home server.")
	descRepairs      = desc("read_repairs_total", "Read repairs sent by this server's coordinator and acknowledged.")
	descAERounds     = desc("antientropy_rounds_total", "Anti-entropy rounds completed.")
	descAESessions   = desc("antientropy_sessions_total", "Anti-entropy sessions completed with a peer.", "peer")
	descAEReceived   = desc("antientropy_keys_received_total", "Records pulled from a peer by anti-entropy and applied.", "peer")
	descAESent       = desc("antientropy_keys_sent_total", "Records sent to a peer in answer to its anti-entropy pulls.", "peer")
	descAELast       = desc("antientropy_last_completion_timestamp_seconds", "When anti-entropy with a peer last completed (Unix time; 0: never).", "peer")
	descPeerUp       = desc("peer_up", "1 when this server's failure detector believes the peer up, 0 when down.", "peer")
	descPurged       = desc("tombstones_purged_total", "Tombstones dropped once every replica held them.")
	descUptime       = desc("uptime_seconds", "Time since the server started.")
	descEngineSynced = desc("synced_writes", "1 when writes are acknowledged after fsync.")
	descStorage      = desc("storage_state", "1 for the storage's state (ok; full: new values refused; slow: a log sync stalled; failed), 0 for the others.", "state")
	descDiskFree     = desc("disk_free_bytes", "Free bytes of the data directory's file system, as the server may use them (0: unknown).")
	descDiskTotal    = desc("disk_total_bytes", "Size of the data directory's file system (0: unknown).")
	descMinFree      = desc("min_free_bytes", "Free space below which new values are refused (--min-free-space).")
	descCorrupt      = desc("corrupt_records_total", "Records found failing their checksum (not served, set aside for repair).")
	descQuarantined  = desc("quarantined_keys", "Keys whose record was set aside as corrupt and not repaired yet.")
	descRefused      = desc("writes_refused_total", "Writes refused because of the storage's state (full, slow or failed).")
	descDiskSlow     = desc("disk_slow_total", "File operations of the storage engine that took more than 5 seconds.")
	descPeerStorage  = desc("peer_storage_ok", "1 when a peer last reported its storage ok, 0 when full, slow or failed.", "peer")
	allStatsDescs    = []*prometheus.Desc{descKeys, descBytes, descHintsHeld, descPeerHints, descHintsSent, descRepairs, descAERounds, descAESessions, descAEReceived, descAESent, descAELast, descPeerUp, descPurged, descUptime, descEngineSynced,
		descStorage, descDiskFree, descDiskTotal, descMinFree, descCorrupt, descQuarantined, descRefused, descDiskSlow, descPeerStorage}
)

// storageStates are the values of dkvs_storage_state's label.
var storageStates = []string{"ok", "full", "slow", "failed"}

// The ring and its moves: on every server the epoch and the move under
// way; on a server that receives ranges in a move, its stream (of the
// move under way, or of the last one).
var (
	descEpoch         = desc("ring_epoch", "Epoch of the ring this server knows.")
	descMoving        = desc("ring_move_in_progress", "1 while a move of the ring (a join, leave, replace or removal) is under way.")
	descMovePhase     = desc("ring_move_phase", "1 for the phase of the move under way (streaming: reads from the current ring; read-new: from the new one).", "phase")
	descStreamMove    = desc("stream_move", "Move (the epoch it began in) the stream metrics are of.")
	descStreamPhase   = desc("stream_phase", "1 for the phase of this server's stream: copy, barrier, verify, done, or stopped (its move ended without it: an abort).", "phase")
	descStreamKeys    = desc("stream_keys_total", "Records received by this server's stream in the move (both passes).")
	descStreamBytes   = desc("stream_bytes_total", "Bytes of keys and values received by this server's stream in the move (before compression).")
	descStreamRate    = desc("stream_rate_bytes_per_second", "Mean rate of this server's stream, from its start to its last page.")
	descStreamSources = desc("stream_sources", "Servers this server's stream copies from in its current phase, by state (started or done).", "state")
	descStreamFailing = desc("stream_failing", "1 when the last attempt of this server's stream failed (it tries again).")
	descStreamUpdated = desc("stream_last_progress_timestamp_seconds", "When this server's stream last made progress (Unix time).")
	ringDescs         = []*prometheus.Desc{descEpoch, descMoving, descMovePhase, descStreamMove, descStreamPhase, descStreamKeys,
		descStreamBytes, descStreamRate, descStreamSources, descStreamFailing, descStreamUpdated}
	// The phases, each reported as 0 or 1 so that an alert can match one.
	movePhases   = []string{"streaming", "read-new"}
	streamPhases = []string{"copy", "barrier", "verify", "done", "stopped"}
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allStatsDescs {
		ch <- d
	}
	for _, d := range ringDescs {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descKeys, float64(s.LiveKeys), "live")
	gauge(descKeys, float64(s.Tombstones), "tombstone")
	gauge(descBytes, float64(s.LiveBytes))
	gauge(descHintsHeld, float64(s.HintsHeld))
	counter(descHintsSent, float64(s.HintsDelivered))
	counter(descRepairs, float64(s.ReadRepairs))
	counter(descAERounds, float64(s.AERounds))
	counter(descPurged, float64(s.TombstonesPurged))
	gauge(descUptime, float64(s.UptimeMS)/1000)
	gauge(descEngineSynced, boolFloat(s.Synced))
	state := s.Storage
	if state == "" {
		state = "ok"
	}
	for _, st := range storageStates {
		gauge(descStorage, boolFloat(st == state), st)
	}
	gauge(descDiskFree, float64(s.DiskFree))
	gauge(descDiskTotal, float64(s.DiskTotal))
	gauge(descMinFree, float64(s.MinFree))
	counter(descCorrupt, float64(s.CorruptRecords))
	gauge(descQuarantined, float64(s.Quarantined))
	counter(descRefused, float64(s.WritesRefused))
	counter(descDiskSlow, float64(s.DiskSlow))
	for _, p := range s.Peers {
		gauge(descPeerUp, boolFloat(p.Up), p.Addr)
		gauge(descPeerStorage, boolFloat(p.Storage == "" || p.Storage == "ok"), p.Addr)
		gauge(descPeerHints, float64(p.HintsHeld), p.Addr)
		counter(descAESessions, float64(p.AERounds), p.Addr)
		counter(descAEReceived, float64(p.AEKeysReceived), p.Addr)
		counter(descAESent, float64(p.AEKeysSent), p.Addr)
		gauge(descAELast, float64(p.AELastMS)/1000, p.Addr)
	}
	collectRing(s, gauge, counter)
}

// collectRing reports the ring's epoch and move, and this server's
// stream.
func collectRing(s wire.Stats, gauge, counter func(d *prometheus.Desc, v float64, labels ...string)) {
	gauge(descEpoch, float64(s.Epoch))
	gauge(descMoving, boolFloat(s.MovePhase != ""))
	for _, p := range movePhases {
		gauge(descMovePhase, boolFloat(s.MovePhase == p), p)
	}
	st := s.Stream
	if st == nil {
		return // this server has received no range since it started
	}
	gauge(descStreamMove, float64(st.Move))
	for _, p := range streamPhases {
		gauge(descStreamPhase, boolFloat(st.Phase == p), p)
	}
	counter(descStreamKeys, float64(st.Keys))
	counter(descStreamBytes, float64(st.Bytes))
	rate := 0.0
	if secs := float64(st.UpdatedMS-st.StartedMS) / 1000; secs > 0 {
		rate = float64(st.Bytes) / secs
	}
	gauge(descStreamRate, rate)
	gauge(descStreamSources, float64(len(st.Sources)), "started")
	gauge(descStreamSources, float64(len(st.Done)), "done")
	gauge(descStreamFailing, boolFloat(st.Error != ""))
	gauge(descStreamUpdated, float64(st.UpdatedMS)/1000)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
