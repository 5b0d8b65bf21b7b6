package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// fake is a Source: a ring of servers, each with stats, a reachability
// and its records.
type fake struct {
	self    string
	ring    *ring.Ring
	mu      sync.Mutex
	down    map[string]bool   // as the detector sees them
	refuse  map[string]bool   // do not answer
	stats   map[string]int64  // live keys each reports
	storage map[string]string // storage state each says, when not ok
	records map[string]map[string]kv.Record
	asked   map[string]int // requests per server
	// view is the ring as the server knows it (nil: the ring's, epoch 1);
	// past, the moves it saw end; streams and streamPast, what each
	// server says of its streams.
	view       *topology.View
	past       []topology.Past
	streams    map[string]*wire.StreamStats
	streamPast map[string][]wire.StreamStats
}

var _ Source = (*fake)(nil)

func newFake(counts ...int) *fake {
	var servers []config.Server
	for i, c := range counts {
		servers = append(servers, config.Server{IP: "10.0.0.1", Port: uint16(7001 + i), Count: c})
	}
	f := &fake{self: servers[0].Addr(), ring: ring.New(servers), down: map[string]bool{}, refuse: map[string]bool{},
		stats: map[string]int64{}, storage: map[string]string{}, records: map[string]map[string]kv.Record{}, asked: map[string]int{},
		streams: map[string]*wire.StreamStats{}, streamPast: map[string][]wire.StreamStats{}}
	for _, s := range servers {
		f.records[s.Addr()] = map[string]kv.Record{}
	}
	return f
}

func (f *fake) Addr() string     { return f.self }
func (f *fake) Ring() *ring.Ring { return f.ring }

func (f *fake) statsOf(addr string) wire.Stats {
	st := wire.Stats{Addr: addr, LiveKeys: f.stats[addr], Engine: "memory", Storage: "ok",
		StreamHistory: f.streamPast[addr]}
	if s := f.streams[addr]; s != nil {
		c := *s
		st.Stream = &c
	}
	if s := f.storage[addr]; s != "" {
		st.Storage = s
	}
	servers := f.ring.Servers()
	if f.view != nil {
		servers = f.view.Servers() // a move's new servers too
	}
	for _, s := range servers {
		if s.Addr() != addr {
			st.Peers = append(st.Peers, wire.PeerStats{Addr: s.Addr(), Up: !f.down[s.Addr()], Storage: f.storage[s.Addr()]})
		}
	}
	return st
}

func (f *fake) Stats() wire.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.statsOf(f.self)
}

func (f *fake) reach(ctx context.Context, addr string) error {
	f.asked[addr]++
	if f.refuse[addr] {
		return errors.New("connection refused")
	}
	return ctx.Err()
}

func (f *fake) PeerStats(ctx context.Context, addr string) (wire.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reach(ctx, addr); err != nil {
		return wire.Stats{}, err
	}
	return f.statsOf(addr), nil
}

func (f *fake) ReplicaVersion(ctx context.Context, addr string, key []byte) (kv.Record, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.reach(ctx, addr); err != nil {
		return kv.Record{}, false, err
	}
	rec, ok := f.records[addr][string(key)]
	return rec, ok, nil
}

func (f *fake) View() *topology.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.view == nil {
		return topology.StaticView(f.ring.Servers())
	}
	return f.view
}

func (f *fake) MoveHistory() []topology.Past {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.past
}

func (f *fake) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// get serves one request and decodes its JSON answer into v.
func get(t *testing.T, h http.Handler, path string, v any) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	resp := w.Result()
	if v != nil {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: Content-Type %q", path, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return resp
}

func TestRingView(t *testing.T) {
	f := newFake(1, 2, 3)
	f.down["10.0.0.1:7003"] = true
	var v RingView
	get(t, New(f, Options{}).Handler(nil), "/api/ring", &v)
	if v.Self != "10.0.0.1:7001" || v.N != 3 || len(v.Servers) != 3 || len(v.Nodes) != 6 {
		t.Fatalf("%+v", v)
	}
	wantStates := []string{StateUp, StateUp, StateDown}
	share := 0.0
	for i, s := range v.Servers {
		if s.Addr != f.ring.Servers()[i].Addr() || s.Count != i+1 || s.State != wantStates[i] || s.Self != (i == 0) || s.Share <= 0 {
			t.Errorf("server %d: %+v", i, s)
		}
		share += s.Share
	}
	if share < 0.9999 || share > 1.0001 {
		t.Errorf("shares add up to %v", share)
	}
	for i, n := range v.Nodes {
		want := f.ring.Nodes()[i]
		if n.Hash != want.Hash.String() || n.Server != want.Server || n.ID != want.ID || n.Pos < 0 || n.Pos >= 1 ||
			(i > 0 && n.Pos < v.Nodes[i-1].Pos) {
			t.Errorf("node %d: %+v, want %+v", i, n, want)
		}
	}
	// N is at most the number of servers.
	get(t, New(newFake(1, 1), Options{N: 5}).Handler(nil), "/api/ring", &v)
	if v.N != 2 {
		t.Errorf("N = %d on a ring of two", v.N)
	}
}

// TestStorageInViews: a server whose storage refuses writes is shown so
// in the ring and key views, whether it is this server or a peer, and
// stays up (it still serves reads).
func TestStorageInViews(t *testing.T) {
	cases := []struct {
		name    string
		storage map[string]string
		want    []string // by server, in ring order
	}{
		{"all ok", nil, []string{"", "", ""}},
		{"a peer full", map[string]string{"10.0.0.1:7002": "full"}, []string{"", "full", ""}},
		{"itself failed, a peer slow", map[string]string{"10.0.0.1:7001": "failed", "10.0.0.1:7003": "slow"}, []string{"failed", "", "slow"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(1, 1, 1)
			for addr, st := range tc.storage {
				f.storage[addr] = st
			}
			h := New(f, Options{N: 3}).Handler(nil)
			var rv RingView
			get(t, h, "/api/ring", &rv)
			for i, s := range rv.Servers {
				if s.Storage != tc.want[i] || s.State != StateUp {
					t.Errorf("ring view, server %d: %+v, want storage %q and up", i, s, tc.want[i])
				}
			}
			var kview KeyView
			get(t, h, "/api/key?k=k&n=3", &kview)
			if len(kview.Replicas) != 3 {
				t.Fatalf("key view: %+v", kview)
			}
			for _, r := range kview.Replicas {
				if want := tc.want[r.Server]; r.Storage != want || !r.Answered {
					t.Errorf("key view, replica %+v, want storage %q and an answer", r, want)
				}
			}
		})
	}
}

func TestShares(t *testing.T) {
	// Nodes at a quarter and three quarters of the circle: each owns half.
	at := func(b byte) ring.Hash { var h ring.Hash; h[0] = b; return h }
	servers := []config.Server{{IP: "10.0.0.1", Port: 1, Count: 1}, {IP: "10.0.0.1", Port: 2, Count: 1}}
	f := newFake(1, 1)
	f.ring = ring.New(servers, ring.WithHash(func(b []byte) ring.Hash {
		if strings.HasPrefix(string(b), "10.0.0.1 1 ") {
			return at(0x40)
		}
		return at(0xc0)
	}))
	f.self = servers[0].Addr()
	v := New(f, Options{}).Ring()
	for _, s := range v.Servers {
		if s.Share != 0.5 {
			t.Errorf("%s owns %v", s.Addr, s.Share)
		}
	}
	if v.Nodes[0].Pos != 0.25 || v.Nodes[1].Pos != 0.75 {
		t.Errorf("nodes at %v and %v", v.Nodes[0].Pos, v.Nodes[1].Pos)
	}
}

func TestServersView(t *testing.T) {
	f := newFake(1, 1, 1, 1)
	s0, s1, s2, s3 := "10.0.0.1:7001", "10.0.0.1:7002", "10.0.0.1:7003", "10.0.0.1:7004"
	f.stats = map[string]int64{s0: 10, s1: 11, s2: 12, s3: 13}
	now := time.Unix(1000, 0)
	c := New(f, Options{Now: func() time.Time { return now }})
	h := c.Handler(nil)

	// Everyone answers.
	var v ServersView
	get(t, h, "/api/servers", &v)
	if v.Self != s0 || v.TimeMS != now.UnixMilli() || len(v.Servers) != 4 {
		t.Fatalf("%+v", v)
	}
	for i, s := range v.Servers {
		if !s.Answered || s.State != StateUp || s.StatsAgeMS != 0 || s.Stats == nil || s.Stats.LiveKeys != int64(10+i) || s.Self != (i == 0) {
			t.Fatalf("server %d: %+v", i, s)
		}
	}

	// s1 stops answering before its detector notices; s2 is down; s3 was
	// never heard from and is down.
	c2 := New(f, Options{Now: func() time.Time { return now }})
	f.set(func() { f.down[s3] = true })
	get(t, c2.Handler(nil), "/api/servers", &v) // c2 learns s1 and s2
	now = now.Add(5 * time.Second)
	f.set(func() {
		f.refuse[s1], f.refuse[s2], f.down[s2] = true, true, true
		f.asked = map[string]int{}
	})
	get(t, c2.Handler(nil), "/api/servers", &v)
	tests := []struct {
		addr     string
		state    string
		answered bool
		errText  bool
		ageMS    int64
		keys     int64 // -1: no stats
		asked    int
	}{
		{s0, StateUp, true, false, 0, 10, 0},
		{s1, StateUp, false, true, 5000, 11, 1},
		{s2, StateDown, false, false, 5000, 12, 0},
		{s3, StateDown, false, false, -1, -1, 0},
	}
	for i, tc := range tests {
		s := v.Servers[i]
		switch {
		case s.Addr != tc.addr || s.State != tc.state || s.Answered != tc.answered || (s.Error != "") != tc.errText || s.StatsAgeMS != tc.ageMS:
			t.Errorf("%s: %+v, want %+v", tc.addr, s, tc)
		case tc.keys < 0 && s.Stats != nil, tc.keys >= 0 && (s.Stats == nil || s.Stats.LiveKeys != tc.keys):
			t.Errorf("%s: stats %+v, want %d keys", tc.addr, s.Stats, tc.keys)
		case f.asked[tc.addr] != tc.asked:
			t.Errorf("%s asked %d times, want %d", tc.addr, f.asked[tc.addr], tc.asked)
		}
	}
}

func TestServersViewTimeout(t *testing.T) {
	f := newFake(1, 1)
	src := &slowPeer{fake: f}
	c := New(src, Options{Timeout: 20 * time.Millisecond})
	start := time.Now()
	v := c.Servers(context.Background())
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
	if s := v.Servers[1]; s.Answered || !strings.Contains(s.Error, "deadline") {
		t.Fatalf("%+v", s)
	}
}

// slowPeer answers nothing until its context ends.
type slowPeer struct{ *fake }

func (s *slowPeer) PeerStats(ctx context.Context, addr string) (wire.Stats, error) {
	<-ctx.Done()
	return wire.Stats{}, ctx.Err()
}

func TestKeyView(t *testing.T) {
	v1 := kv.Record{Version: kv.Version{Wall: 1000, Writer: 7}}
	v2 := kv.Record{Version: kv.Version{Wall: 2000, Writer: 7}}
	del := kv.Record{Version: kv.Version{Wall: 3000, Writer: 7}, Tombstone: true}
	tests := []struct {
		name    string
		copies  []*kv.Record // by home, in ring order; nil: not found
		down    []bool       // by home
		refuse  []bool
		n       string
		agree   bool
		found   []bool
		newest  []bool
		answers []bool
	}{
		{name: "all agree", copies: []*kv.Record{&v1, &v1, &v1}, agree: true,
			found: []bool{true, true, true}, newest: []bool{true, true, true}, answers: []bool{true, true, true}},
		{name: "nowhere", copies: []*kv.Record{nil, nil, nil}, agree: true,
			found: []bool{false, false, false}, newest: []bool{true, true, true}, answers: []bool{true, true, true}},
		{name: "one stale", copies: []*kv.Record{&v2, &v1, &v2}, agree: false,
			found: []bool{true, true, true}, newest: []bool{true, false, true}, answers: []bool{true, true, true}},
		{name: "one missing", copies: []*kv.Record{&v1, nil, &v1}, agree: false,
			found: []bool{true, false, true}, newest: []bool{true, false, true}, answers: []bool{true, true, true}},
		{name: "deleted", copies: []*kv.Record{&del, &del, &v2}, agree: false,
			found: []bool{true, true, true}, newest: []bool{true, true, false}, answers: []bool{true, true, true}},
		{name: "one down", copies: []*kv.Record{&v1, &v1, &v1}, down: []bool{false, true, false}, agree: false,
			found: []bool{true, false, true}, newest: []bool{true, false, true}, answers: []bool{true, false, true}},
		{name: "one refuses", copies: []*kv.Record{&v1, &v1, &v1}, refuse: []bool{true, false, false}, agree: false,
			found: []bool{false, true, true}, newest: []bool{false, true, true}, answers: []bool{false, true, true}},
		{name: "n=2", copies: []*kv.Record{&v1, &v1}, n: "2", agree: true,
			found: []bool{true, true}, newest: []bool{true, true}, answers: []bool{true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(2, 2, 2, 2)
			const key = "greeting"
			homes := f.ring.Preference([]byte(key), len(tc.copies))
			for i, h := range homes {
				addr := f.ring.Servers()[h].Addr()
				if tc.copies[i] != nil {
					f.records[addr][key] = *tc.copies[i]
				}
				if tc.down != nil && tc.down[i] {
					f.down[addr] = true
				}
				if tc.refuse != nil && tc.refuse[i] {
					f.refuse[addr] = true
				}
			}
			path := "/api/key?k=" + key
			if tc.n != "" {
				path += "&n=" + tc.n
			}
			var v KeyView
			get(t, New(f, Options{}).Handler(nil), path, &v)
			h := f.ring.KeyHash([]byte(key))
			if v.Key != key || v.Hash != h.String() || v.Node != f.ring.First(h) || v.N != len(homes) || v.Agree != tc.agree {
				t.Fatalf("%+v", v)
			}
			for i, rp := range v.Replicas {
				addr := f.ring.Servers()[homes[i]].Addr()
				want := tc.copies[i]
				switch {
				case rp.Addr != addr || rp.Server != homes[i]:
					t.Errorf("replica %d is %s (%d), want %s", i, rp.Addr, rp.Server, addr)
				case rp.Answered != tc.answers[i] || rp.Found != tc.found[i] || rp.Newest != tc.newest[i]:
					t.Errorf("replica %d: %+v", i, rp)
				case rp.Found && (rp.Version != want.Version.String() || rp.WallMS != int64(want.Version.Wall) || rp.Tombstone != want.Tombstone):
					t.Errorf("replica %d: %+v, want %+v", i, rp, *want)
				case !rp.Answered && rp.Error == "":
					t.Errorf("replica %d: no answer and no error", i)
				case tc.down != nil && tc.down[i] && f.asked[addr] != 0:
					t.Errorf("replica %d down, but asked", i)
				}
			}
		})
	}
}

func TestHandler(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "next "+r.URL.Path)
	})
	h := New(newFake(1, 1, 1), Options{}).Handler(next)
	tests := []struct {
		path   string
		status int
		ctype  string // prefix
		body   string // substring
	}{
		{"/", 200, "text/html", "<title>dkvs console</title>"},
		{"/assets/console.js", 200, "text/javascript", "api/servers"},
		{"/assets/console.css", 200, "text/css", "vnode"},
		{"/assets/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"/favicon.ico", 200, "image/svg+xml", "<svg"},
		{"/assets/", 404, "", ""},
		{"/assets/nothing.js", 404, "", ""},
		{"/api/key", 400, "application/json", "want a key"},
		{"/api/key?k=", 400, "application/json", "want a key"},
		{"/api/key?k=a&n=0", 400, "application/json", "n must be"},
		{"/api/key?k=a&n=x", 400, "application/json", "n must be"},
		{"/metrics", 200, "", "next /metrics"},
		{"/debug/pprof/", 200, "", "next /debug/pprof/"},
		{"/index.html", 200, "", "next /index.html"},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		resp := w.Result()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s: %d %q %.80q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if tc.status == 200 && tc.ctype != "" && !strings.HasPrefix(tc.ctype, "application/json") &&
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: no Content-Security-Policy", tc.path)
		}
	}
	// Writes are not for the console.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/api/ring", nil))
	if w.Code == 200 && w.Body.String() != "next /api/ring" {
		t.Errorf("POST /api/ring: %d %q", w.Code, w.Body)
	}
	// Without next, other paths are not found.
	w = httptest.NewRecorder()
	New(newFake(1), Options{}).Handler(nil).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 404 {
		t.Errorf("/metrics without next: %d", w.Code)
	}
}

// TestAssetsSelfContained checks that the pages load nothing from
// elsewhere: every URL in them is relative to the server.
func TestAssetsSelfContained(t *testing.T) {
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(assetFS, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assetFS, path)
		if err != nil {
			return err
		}
		for _, m := range url.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" { // the SVG namespace, never fetched
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
