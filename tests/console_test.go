package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/console"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/tests/harness"
)

// withMetrics gives every server of r a --metrics address on a free port
// that is none of the ring's, and returns them by server index.
func withMetrics(t *testing.T, r *harness.Ring) []string {
	t.Helper()
	taken := map[uint16]bool{}
	for _, s := range r.Servers {
		taken[s.Port] = true
	}
	addrs := make([]string, 0, len(r.Servers))
	for len(addrs) < len(r.Servers) {
		for _, p := range harness.FreePorts(t, len(r.Servers)) {
			if !taken[p] && len(addrs) < len(r.Servers) {
				taken[p] = true
				addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
			}
		}
	}
	for i, a := range addrs {
		r.ServerArgs[i] = append(r.ServerArgs[i], "--metrics", a)
	}
	return addrs
}

// getJSON fetches http://addr+path into v and returns the status code.
func getJSON(t *testing.T, addr, path string, v any) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode == 200 && ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v: %s", path, err, body)
	}
	return resp.StatusCode
}

// serverView returns the view of addr in v.
func serverView(v console.ServersView, addr string) (console.ServerView, error) {
	for _, s := range v.Servers {
		if s.Addr == addr {
			return s, nil
		}
	}
	return console.ServerView{}, fmt.Errorf("%s not in /api/servers", addr)
}

// TestConsoleAPI reads the console's JSON endpoints on a live ring: the
// ring, a key's three homes and their versions, every server's figures
// and traffic; then a killed server shows as down, and the hints written
// for it while it is down are counted on the others.
func TestConsoleAPI(t *testing.T) {
	r := harness.NewRing(t, 2, 3, 4)
	r.Args = []string{"--memory", "--ae-interval", "300ms"}
	maddr := withMetrics(t, r)
	r.ServerArgs[1] = append(r.ServerArgs[1], "--no-console")
	r.StartAll()
	r.WaitPeersUp()
	self := maddr[0]

	var rv console.RingView
	if code := getJSON(t, self, "/api/ring", &rv); code != 200 {
		t.Fatalf("/api/ring: %d", code)
	}
	if rv.Self != r.Addr(0) || rv.N != 3 || len(rv.Servers) != 3 || len(rv.Nodes) != 2+3+4 {
		t.Fatalf("/api/ring: self %s, n %d, %d servers, %d nodes", rv.Self, rv.N, len(rv.Servers), len(rv.Nodes))
	}
	share := 0.0
	for i, s := range rv.Servers {
		if s.Addr != r.Addr(i) || s.Count != r.Servers[i].Count || s.State != console.StateUp || s.Self != (i == 0) {
			t.Fatalf("/api/ring server %d: %+v", i, s)
		}
		share += s.Share
	}
	if share < 0.9999 || share > 1.0001 {
		t.Fatalf("shares add up to %v", share)
	}
	rg := ring.New(r.Servers)
	for i, n := range rv.Nodes {
		if want := rg.Nodes()[i]; n.Hash != want.Hash.String() || n.Server != want.Server || n.ID != want.ID {
			t.Fatalf("node %d: %+v, want %v", i, n, want)
		}
	}

	// A key written by a client: its three homes hold the same version.
	c, err := dkvs.Open(r.ServersFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(bg, []byte("greeting"), []byte("hello"), 3, 3); err != nil {
		t.Fatal(err)
	}
	var kv console.KeyView
	if code := getJSON(t, self, "/api/key?k=greeting", &kv); code != 200 {
		t.Fatalf("/api/key: %d", code)
	}
	homes := rg.Preference([]byte("greeting"), 3)
	if kv.Key != "greeting" || kv.Hash != rg.KeyHash([]byte("greeting")).String() || len(kv.Replicas) != 3 || !kv.Agree {
		t.Fatalf("/api/key: %+v", kv)
	}
	for i, rp := range kv.Replicas {
		if rp.Server != homes[i] || rp.Addr != r.Addr(homes[i]) || !rp.Answered || !rp.Found || !rp.Newest ||
			rp.Version == "" || rp.Version != kv.Replicas[0].Version || rp.Tombstone {
			t.Fatalf("/api/key replica %d: %+v (homes %v)", i, rp, homes)
		}
	}
	var bad map[string]string
	if code := getJSON(t, self, "/api/key", &bad); code != 400 || bad["error"] == "" {
		t.Fatalf("/api/key without a key: %d %v", code, bad)
	}

	// Every server answers with its figures, traffic included.
	harness.Eventually(t, 10*time.Second, "every server's traffic in /api/servers", func() error {
		var sv console.ServersView
		getJSON(t, self, "/api/servers", &sv)
		if len(sv.Servers) != 3 {
			return fmt.Errorf("%d servers", len(sv.Servers))
		}
		for i, s := range sv.Servers {
			switch {
			case s.Addr != r.Addr(i) || s.State != console.StateUp || !s.Answered || s.Stats == nil || s.StatsAgeMS != 0:
				return fmt.Errorf("server %d: %+v", i, s)
			case s.Stats.Addr != s.Addr || s.Stats.LiveKeys != 1:
				return fmt.Errorf("server %d: stats %+v", i, *s.Stats)
			case s.Stats.Traffic == nil || s.Stats.Traffic.Requests == 0 || len(s.Stats.Traffic.PerSecond) == 0:
				return fmt.Errorf("server %d: no traffic yet: %+v", i, s.Stats.Traffic)
			}
		}
		return nil
	})

	// The console is where the metrics are, unless turned off.
	for i, want := range []int{200, 404} {
		resp, err := http.Get("http://" + maddr[i] + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && !strings.Contains(string(body), "dkvs console")) {
			t.Fatalf("%s/: %s", maddr[i], resp.Status)
		}
		if m := scrape(t, maddr[i]); m["dkvs_requests_total"] == nil {
			t.Fatalf("%s: no metrics beside the console", maddr[i])
		}
	}

	// A killed server shows as down, with what was last known of it.
	r.Kill(2)
	took := harness.Eventually(t, 10*time.Second, "killed server down in /api/servers", func() error {
		var sv console.ServersView
		getJSON(t, self, "/api/servers", &sv)
		s, err := serverView(sv, r.Addr(2))
		switch {
		case err != nil:
			return err
		case s.State != console.StateDown || s.Answered:
			return fmt.Errorf("state %s, answered %v", s.State, s.Answered)
		case s.Stats == nil || s.Stats.LiveKeys != 1 || s.StatsAgeMS <= 0:
			return fmt.Errorf("last known stats %+v, %d ms old", s.Stats, s.StatsAgeMS)
		}
		return nil
	})
	t.Logf("killed server shown down after %v", took.Round(time.Millisecond))
	var rv2 console.RingView
	getJSON(t, self, "/api/ring", &rv2)
	if rv2.Servers[2].State != console.StateDown {
		t.Fatalf("/api/ring: killed server %+v", rv2.Servers[2])
	}
	// Its copy of the key is not asked for: the copies no longer agree.
	getJSON(t, self, "/api/key?k=greeting", &kv)
	for _, rp := range kv.Replicas {
		if (rp.Server == 2) != (rp.State == console.StateDown && !rp.Answered) {
			t.Fatalf("/api/key with a home down: %+v", rp)
		}
	}
	if kv.Agree {
		t.Fatal("/api/key: copies agree with a home down")
	}

	// Writes with a home down leave one hint each for it on the others.
	const writes = 20
	for i := 0; i < writes; i++ {
		if err := c.Put(bg, []byte(fmt.Sprint("h", i)), []byte("v"), 3, 2); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 10*time.Second, "hints for the killed server in /api/servers", func() error {
		var sv console.ServersView
		getJSON(t, self, "/api/servers", &sv)
		held := int64(0)
		for _, i := range []int{0, 1} {
			s, err := serverView(sv, r.Addr(i))
			if err != nil {
				return err
			}
			if !s.Answered || s.Stats == nil {
				return fmt.Errorf("%s did not answer: %s", s.Addr, s.Error)
			}
			for _, p := range s.Stats.Peers {
				if p.Addr == r.Addr(2) {
					held += p.HintsHeld
				} else if p.HintsHeld != 0 {
					return fmt.Errorf("%s holds %d hints for %s", s.Addr, p.HintsHeld, p.Addr)
				}
			}
		}
		if held != writes {
			return fmt.Errorf("%d hints held for %s, want %d", held, r.Addr(2), writes)
		}
		return nil
	})
}
