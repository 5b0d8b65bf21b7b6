package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/tests/harness"
)

// jsonLines parses every line a server logged (after the harness's own
// "--- start" markers) as JSON.
func jsonLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line == "" || strings.HasPrefix(line, "--- start ") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("log line without %q: %q", k, line)
			}
		}
		out = append(out, m)
	}
	return out
}

func TestJSONLogs(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory", "--log-format", "json", "--ae-interval", "300ms"}
	r.StartAll()
	// Requests do not log at the default level.
	for i := 0; i < 50; i++ {
		wantOK(t, r.Client("put", "--", fmt.Sprint("k", i), "v"), "OK")
	}
	lines := jsonLines(t, r.Log(0))
	start := lines[0]
	if start["msg"] != "dkvs-server started" || start["addr"] != r.Addr(0) || start["engine"] != "memory" {
		t.Fatalf("start line: %v", start)
	}
	for _, k := range []string{"servers", "synced_writes", "max_value_size", "anti_entropy", "ae_interval", "tombstone_grace"} {
		if _, ok := start[k]; !ok {
			t.Errorf("start line lacks %q: %v", k, start)
		}
	}
	for _, l := range lines {
		if strings.Contains(fmt.Sprint(l["msg"]), "put") {
			t.Fatalf("a request was logged: %v", l)
		}
	}
	r.Kill(2)
	harness.Eventually(t, 15*time.Second, "peer-down event logged", func() error {
		for _, l := range jsonLines(t, r.Log(0)) {
			if l["msg"] == "peer down" && l["peer"] == r.Addr(2) && l["level"] == "WARN" {
				return nil
			}
		}
		return fmt.Errorf("no peer-down line for %s", r.Addr(2))
	})
	r.Start(2)
	harness.Eventually(t, 15*time.Second, "peer-up event logged", func() error {
		for _, l := range jsonLines(t, r.Log(0)) {
			if l["msg"] == "peer up" && l["peer"] == r.Addr(2) {
				return nil
			}
		}
		return fmt.Errorf("no peer-up line for %s", r.Addr(2))
	})
	n := 0
	for _, l := range jsonLines(t, r.Log(0)) {
		if l["msg"] == "anti-entropy round" {
			n++
			if _, ok := l["peers_synced"]; !ok {
				t.Fatalf("anti-entropy line without counts: %v", l)
			}
		}
	}
	if n == 0 {
		t.Fatal("no anti-entropy round logged")
	}
	// A refused frame is logged with the peer's address.
	harness.Ping(r.Addr(1), time.Second)
	if res := rawGarbage(t, r.Addr(1)); res != nil {
		t.Fatal(res)
	}
	harness.Eventually(t, 5*time.Second, "refused frame logged", func() error {
		for _, l := range jsonLines(t, r.Log(1)) {
			if l["msg"] == "refused frame" && strings.HasPrefix(fmt.Sprint(l["peer"]), "127.0.0.1:") {
				return nil
			}
		}
		return fmt.Errorf("no refused-frame line")
	})
}

// rawGarbage sends bytes that are not a frame and waits for the server to
// close the connection.
func rawGarbage(t *testing.T, addr string) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.Write([]byte("not a frame at all, not at all\r\n"))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(nc)
	return err
}
