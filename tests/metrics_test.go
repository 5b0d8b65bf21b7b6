package tests

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/tests/harness"
)

// scrape fetches and parses a server's /metrics with the Prometheus
// library's text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	return fams
}

// value returns the sum of the family's samples whose labels include
// want (a counter or gauge).
func value(f *dto.MetricFamily, want map[string]string) float64 {
	sum := 0.0
	for _, m := range f.GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func TestMetrics(t *testing.T) {
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory", "--ae-interval", "300ms"}
	ports := harness.FreePorts(t, 3)
	maddr := make([]string, 3)
	for i := range r.Servers {
		maddr[i] = fmt.Sprintf("127.0.0.1:%d", ports[i])
		r.ServerArgs[i] = []string{"--metrics", maddr[i]}
	}
	r.ServerArgs[0] = append(r.ServerArgs[0], "--pprof")
	r.StartAll()

	// A known workload at N=1: every operation reaches exactly one server.
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const puts, hits, misses, dels = 40, 30, 20, 10
	for i := 0; i < puts; i++ {
		if err := c.Put(bg, []byte(fmt.Sprint("m", i)), []byte("value"), 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < hits; i++ {
		if _, err := c.Get(bg, []byte(fmt.Sprint("m", i)), 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < misses; i++ {
		if _, err := c.Get(bg, []byte(fmt.Sprint("absent", i)), 1, 1); err == nil {
			t.Fatal("found an absent key")
		}
	}
	for i := 0; i < dels; i++ { // a delete is a put of a tombstone
		if err := c.Delete(bg, []byte(fmt.Sprint("m", i)), 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	// Wait until anti-entropy has completed with every peer somewhere.
	harness.Eventually(t, 15*time.Second, "anti-entropy completions in the metrics", func() error {
		f := scrape(t, maddr[0])["dkvs_antientropy_last_completion_timestamp_seconds"]
		if f == nil || len(f.GetMetric()) != 2 {
			return fmt.Errorf("no per-peer completion yet")
		}
		for _, m := range f.GetMetric() {
			if m.GetGauge().GetValue() == 0 {
				return fmt.Errorf("a peer never completed")
			}
		}
		return nil
	})

	var sumPutOK, sumGetOK, sumGetMiss, sumLive, sumTomb float64
	for i := range r.Servers {
		fams := scrape(t, maddr[i])
		for _, name := range []string{
			"dkvs_requests_total", "dkvs_request_duration_seconds", "dkvs_received_bytes_total", "dkvs_sent_bytes_total",
			"dkvs_connections", "dkvs_connections_total", "dkvs_refused_frames_total",
			"dkvs_keys", "dkvs_stored_value_bytes", "dkvs_hints_held", "dkvs_peer_hints_held", "dkvs_hints_delivered_total",
			"dkvs_read_repairs_total", "dkvs_antientropy_rounds_total", "dkvs_antientropy_sessions_total",
			"dkvs_antientropy_keys_received_total", "dkvs_antientropy_keys_sent_total",
			"dkvs_antientropy_last_completion_timestamp_seconds", "dkvs_peer_up", "dkvs_tombstones_purged_total",
			"dkvs_uptime_seconds", "go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes",
			"process_cpu_seconds_total",
			"dkvs_storage_state", "dkvs_disk_free_bytes", "dkvs_disk_total_bytes", "dkvs_min_free_bytes",
			"dkvs_corrupt_records_total", "dkvs_quarantined_keys", "dkvs_writes_refused_total", "dkvs_disk_slow_total",
			"dkvs_peer_storage_ok",
		} {
			if fams[name] == nil {
				t.Errorf("%s: no %s", maddr[i], name)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		req := fams["dkvs_requests_total"]
		sumPutOK += value(req, map[string]string{"op": "put", "status": "ok"})
		sumGetOK += value(req, map[string]string{"op": "get", "status": "ok"})
		sumGetMiss += value(req, map[string]string{"op": "get", "status": "not found"})
		sumLive += value(fams["dkvs_keys"], map[string]string{"state": "live"})
		sumTomb += value(fams["dkvs_keys"], map[string]string{"state": "tombstone"})
		if got := value(fams["dkvs_peer_up"], nil); got != 2 {
			t.Errorf("%s: %v peers up, want 2", maddr[i], got)
		}
		lat := value(fams["dkvs_request_duration_seconds"], map[string]string{"op": "get"})
		gets := value(req, map[string]string{"op": "get"})
		if lat != gets {
			t.Errorf("%s: %v get latencies observed for %v gets", maddr[i], lat, gets)
		}
	}
	if sumPutOK != puts+dels || sumGetOK != hits || sumGetMiss != misses {
		t.Fatalf("requests counted: %v puts (want %d), %v gets found (want %d), %v not found (want %d)",
			sumPutOK, puts+dels, sumGetOK, hits, sumGetMiss, misses)
	}
	if sumLive != puts-dels || sumTomb != dels {
		t.Fatalf("keys: %v live (want %d), %v tombstones (want %d)", sumLive, puts-dels, sumTomb, dels)
	}
	// A refused frame is counted.
	before := value(scrape(t, maddr[1])["dkvs_refused_frames_total"], nil)
	if err := rawGarbage(t, r.Addr(1)); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "refused frame counted", func() error {
		if v := value(scrape(t, maddr[1])["dkvs_refused_frames_total"], nil); v != before+1 {
			return fmt.Errorf("%v refused frames, want %v", v, before+1)
		}
		return nil
	})
	// A killed peer shows as down.
	r.Kill(2)
	harness.Eventually(t, 10*time.Second, "peer down in the metrics", func() error {
		if v := value(scrape(t, maddr[0])["dkvs_peer_up"], map[string]string{"peer": r.Addr(2)}); v != 0 {
			return fmt.Errorf("still up")
		}
		return nil
	})
	// pprof only where it was asked for.
	for i, want := range map[int]int{0: 200, 1: 404} {
		resp, err := http.Get("http://" + maddr[i] + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && !strings.Contains(string(body), "goroutine")) {
			t.Fatalf("%s /debug/pprof/: %s", maddr[i], resp.Status)
		}
	}
}
