package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// TestRingCommandLines: the ring commands check their arguments before
// anything is sent: a bad address is ERR_ADDRESS, anything else wrong
// ERR_INVALID_COMMAND; lines that parse fail only at the network here
// (nothing listens on port 1).
func TestRingCommandLines(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "servers.txt"), []byte("127.0.0.1 1 1\n"), 0o644)
	const (
		command = 134
		address = 136
		network = 132
	)
	cases := []struct {
		args []string
		code int
	}{
		{[]string{"join", "--", "127.0.0.1", "7006"}, command},
		{[]string{"join", "--", "127.0.0.1", "7006", "8", "9"}, command},
		{[]string{"join", "127.0.0.1", "7006", "8"}, command}, // no "--"
		{[]string{"join", "--", "127.0.0.1", "7006", "0"}, command},
		{[]string{"join", "--", "127.0.0.1", "7006", "4097"}, command},
		{[]string{"join", "--", "127.0.0.1", "7006", "x"}, command},
		{[]string{"join", "--", "127.0.0.1", "7006", "-1"}, command},
		{[]string{"join", "--", "127.0.001", "7006", "8"}, address},
		{[]string{"join", "--", "256.0.0.1", "7006", "8"}, address},
		{[]string{"join", "--", "localhost", "7006", "8"}, address},
		{[]string{"join", "--", "127.0.0.1", "0", "8"}, address},
		{[]string{"join", "--", "127.0.0.1", "70000", "8"}, address},
		{[]string{"join", "--", "127.0.0.1", "http", "8"}, address},
		{[]string{"leave", "--"}, command},
		{[]string{"leave", "--", "127.0.0.1:7001", "127.0.0.1:7002"}, command},
		{[]string{"leave", "--", "127.0.0.1"}, address},
		{[]string{"leave", "--", "127.0.0.1:"}, address},
		{[]string{"leave", "--", "localhost:7001"}, address},
		{[]string{"leave", "--", "127.0.0.1:x"}, address},
		{[]string{"leave", "--force", "--", "127.0.0.1:7001"}, command}, // leave takes no --force
		{[]string{"leave", "--wait", "-1s", "--", "127.0.0.1:7001"}, command},
		{[]string{"leave", "--wait", "soon", "--", "127.0.0.1:7001"}, command},
		{[]string{"replace", "--", "127.0.0.1:7001"}, command},
		{[]string{"replace", "--", "127.0.0.1:7001", "127.0.0.1:7009", "8", "9"}, command},
		{[]string{"replace", "--", "127.0.0.1:7001", "127.0.0.1:7009", "0"}, command},
		{[]string{"replace", "--", "127.0.0.1:7001", "7009"}, address},
		{[]string{"replace", "--", "1.2.3:7001", "127.0.0.1:7009"}, address},
		{[]string{"removenode", "--"}, command},
		{[]string{"removenode", "--", "127.0.0.1:99999"}, address},
		{[]string{"abort", "--", "6"}, command},
		{[]string{"abort", "--wait", "1s"}, command}, // abort does not wait
		{[]string{"ring", "--", "x"}, command},
		{[]string{"ring", "--bogus"}, command},
		// These parse; nothing answers.
		{[]string{"join", "--", "127.0.0.1", "7006", "8"}, network},
		{[]string{"join", "--wait", "1m", "--", "127.0.0.1", "7006", "8"}, network},
		{[]string{"leave", "-n", "3", "--", "127.0.0.1:1"}, network}, // a quorum flag is ignored
		{[]string{"replace", "--", "127.0.0.1:1", "127.0.0.1:7009"}, network},
		{[]string{"replace", "--force", "--", "127.0.0.1:1", "127.0.0.1:7009", "4"}, network},
		{[]string{"removenode", "--force", "--", "127.0.0.1:1"}, network},
		{[]string{"abort"}, network},
		{[]string{"ring"}, network},
		{[]string{"ring", "--json"}, network},
		{[]string{"ring", "--servers-file", filepath.Join(dir, "out.txt")}, network},
	}
	for _, tc := range cases {
		stdout, stderr, code := runCLI(t, dir, tc.args...)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr)
			continue
		}
		if !strings.HasPrefix(stderr, "ERROR: ") || !strings.Contains(stdout, "Usage: dkvs-client") {
			t.Errorf("%q: stderr %q, stdout %.40q", tc.args, stderr, stdout)
		}
		if failed := strings.HasPrefix(stdout, "FAIL\n"); failed != (tc.code == network) {
			t.Errorf("%q: FAIL printed: %v, want it only when the operation ran", tc.args, failed)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.txt")); err == nil {
		t.Error("--servers-file written although no server answered")
	}
}

// TestRingFlagsFromEnvironment: every flag of the ring commands also comes
// from the environment.
func TestRingFlagsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "servers.txt"), []byte("127.0.0.1 1 1\n"), 0o644)
	t.Setenv("DKVS_RING_WAIT", "-1s")
	if _, stderr, code := runCLI(t, dir, "leave", "--", "127.0.0.1:7001"); code != 134 || !strings.Contains(stderr, "--wait") {
		t.Errorf("DKVS_RING_WAIT=-1s: exit %d %q", code, stderr)
	}
	for _, name := range []string{"DKVS_RING_WAIT", "DKVS_RING_FORCE", "DKVS_RING_JSON", "DKVS_RING_SERVERS_FILE"} {
		if !strings.Contains(usage, name) {
			t.Errorf("the usage text does not name %s", name)
		}
	}
}

func TestParseRingArgs(t *testing.T) {
	srv := func(ip string, port uint16, count int) config.Server {
		return config.Server{IP: ip, Port: port, Count: count}
	}
	cases := []struct {
		cmd  string
		args []string
		want ringChange
	}{
		{"join", []string{"10.0.0.7", "7006", "64"}, ringChange{op: topology.OpJoin, server: srv("10.0.0.7", 7006, 64)}},
		{"leave", []string{"10.0.0.1:7001"}, ringChange{op: topology.OpLeave, addr: "10.0.0.1:7001"}},
		{"replace", []string{"10.0.0.1:7001", "10.0.0.9:7009"},
			ringChange{op: topology.OpReplace, addr: "10.0.0.1:7001", server: srv("10.0.0.9", 7009, 0)}},
		{"replace", []string{"10.0.0.1:7001", "10.0.0.9:7009", "16"},
			ringChange{op: topology.OpReplace, addr: "10.0.0.1:7001", server: srv("10.0.0.9", 7009, 16)}},
		{"removenode", []string{"10.0.0.1:7001"}, ringChange{op: topology.OpRemove, addr: "10.0.0.1:7001"}},
		{"abort", nil, ringChange{op: topology.OpAbort}},
	}
	for _, tc := range cases {
		var rc *ringChangeCommand
		for i := range ringChangeCommands {
			if ringChangeCommands[i].name == tc.cmd {
				rc = &ringChangeCommands[i]
			}
		}
		got, err := rc.parse(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("%s %q: %+v %v, want %+v", tc.cmd, tc.args, got, err, tc.want)
		}
	}
}

// fakeRing is a ring for the commands: a state that changes as the
// commands apply, servers that answer or not, and a log of what was sent
// where.
type fakeRing struct {
	mu    sync.Mutex
	state topology.State
	// down servers answer nothing; noLeader servers answer a change with
	// the error of a server that knows no leader.
	down, noLeader map[string]bool
	// stats are the servers' stats, by address (an up server without
	// stats answers empty ones).
	stats map[string]wire.Stats
	// next, if set, is called at each FetchRing: the ring moving on.
	next func(st topology.State) topology.State
	// told, if set for a server, is the ring it tells (one ahead of or
	// behind the others).
	told map[string]topology.State
	sent []string
	now  int64
}

func newFakeRing(counts ...int) *fakeRing {
	var members []config.Server
	for i, c := range counts {
		members = append(members, config.Server{IP: "10.0.0.1", Port: uint16(7001 + i), Count: c})
	}
	return &fakeRing{state: topology.Initial(members), down: map[string]bool{}, noLeader: map[string]bool{}, stats: map[string]wire.Stats{}, now: 1000}
}

var errDown = fmt.Errorf("connection refused: %w", errcode.Network)

func (f *fakeRing) FetchRing(context.Context) (topology.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next != nil {
		f.state = f.next(f.state)
	}
	for _, sv := range f.state.AllServers() {
		if !f.down[sv.Addr()] {
			return f.state, nil
		}
	}
	return topology.State{}, fmt.Errorf("no server told the ring: %w", errDown)
}

func (f *fakeRing) RingOf(_ context.Context, addr string) (topology.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[addr] {
		return topology.State{}, errDown
	}
	if st, ok := f.told[addr]; ok {
		return st, nil
	}
	return f.state, nil
}

func (f *fakeRing) Stats(_ context.Context, addr string) (wire.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[addr] {
		return wire.Stats{}, errDown
	}
	s := f.stats[addr]
	s.Addr = addr
	return s, nil
}

func (f *fakeRing) ChangeRingAt(_ context.Context, addr string, cmd topology.Command) (topology.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, addr)
	if f.down[addr] {
		return topology.State{}, errDown
	}
	if f.noLeader[addr] {
		return topology.State{}, fmt.Errorf("ring %s: no leader is known: %w", cmd.Op, errcode.Network)
	}
	f.now += 1000
	cmd.At = f.now
	next, err := f.state.Apply(cmd)
	if err != nil {
		return topology.State{}, err
	}
	f.state = next
	return next, nil
}

// advance moves the fake's move one phase on: what the leader does.
func advance(st topology.State) topology.State {
	if st.Move == nil {
		return st
	}
	next, err := st.Apply(topology.Command{Op: topology.OpAdvance, MoveID: st.Move.ID, Phase: st.Move.Phase, At: 5000})
	if err != nil {
		panic(err)
	}
	return next
}

func TestChangeRing(t *testing.T) {
	addr := func(port int) string { return fmt.Sprintf("10.0.0.1:%d", port) }
	cases := []struct {
		name  string
		ring  func() *fakeRing
		ch    ringChange
		force bool
		wait  time.Duration
		// code is the error's, None for success; out and warn are found
		// in stdout and stderr.
		code      errcode.Code
		out, warn string
		check     func(t *testing.T, f *fakeRing)
	}{
		{name: "join", ring: func() *fakeRing { return newFakeRing(64, 64, 64) },
			ch:  ringChange{op: topology.OpJoin, server: config.Server{IP: "10.0.0.9", Port: 7009, Count: 64}},
			out: "OK epoch 2: move 2, join of 10.0.0.9:7009 begun",
			check: func(t *testing.T, f *fakeRing) {
				if f.state.Move == nil || f.state.Move.Kind != topology.Join {
					t.Errorf("ring %s", f.state)
				}
			}},
		{name: "join with a small COUNT warns", ring: func() *fakeRing { return newFakeRing(64, 64, 64) },
			ch:  ringChange{op: topology.OpJoin, server: config.Server{IP: "10.0.0.9", Port: 7009, Count: 1}},
			out: "OK epoch 2", warn: "WARNING: 10.0.0.9:7009 with COUNT 1"},
		{name: "join of a server that does not answer", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8)
			f.down["10.0.0.9:7009"] = true
			return f
		}, ch: ringChange{op: topology.OpJoin, server: config.Server{IP: "10.0.0.9", Port: 7009, Count: 8}},
			code: errcode.Network, warn: "",
			check: func(t *testing.T, f *fakeRing) {
				if len(f.sent) != 0 {
					t.Errorf("sent to %v", f.sent)
				}
			}},
		{name: "join of a member", ring: func() *fakeRing { return newFakeRing(8, 8, 8) },
			ch:   ringChange{op: topology.OpJoin, server: config.Server{IP: "10.0.0.1", Port: 7002, Count: 8}},
			code: errcode.InvalidArg},
		{name: "join during a move", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8, 8)
			f.state, _ = f.state.Apply(topology.Command{Op: topology.OpLeave, Addr: addr(7004)})
			return f
		}, ch: ringChange{op: topology.OpJoin, server: config.Server{IP: "10.0.0.9", Port: 7009, Count: 8}},
			code: errcode.InvalidArg},
		{name: "leave of an unknown server", ring: func() *fakeRing { return newFakeRing(8, 8, 8, 8) },
			ch: ringChange{op: topology.OpLeave, addr: addr(7099)}, code: errcode.InvalidArg},
		{name: "leave below N", ring: func() *fakeRing { return newFakeRing(8, 8, 8) },
			ch: ringChange{op: topology.OpLeave, addr: addr(7002)}, code: errcode.InvalidArg},
		{name: "leave, sent to a server that answers", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8, 8)
			f.down[addr(7001)] = true
			return f
		}, ch: ringChange{op: topology.OpLeave, addr: addr(7004)}, out: "OK epoch 2: move 2, leave of 10.0.0.1:7004 begun",
			check: func(t *testing.T, f *fakeRing) {
				if len(f.sent) != 1 || f.sent[0] != addr(7002) {
					t.Errorf("sent to %v, want 7002 alone", f.sent)
				}
			}},
		{name: "no leader", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8, 8)
			f.down[addr(7001)], f.down[addr(7002)] = true, true
			f.noLeader[addr(7003)], f.noLeader[addr(7004)] = true, true
			return f
		}, ch: ringChange{op: topology.OpLeave, addr: addr(7004)}, code: errcode.Network,
			check: func(t *testing.T, f *fakeRing) {
				if len(f.sent) != 2 {
					t.Errorf("sent to %v, want the two that answer", f.sent)
				}
			}},
		{name: "replace takes the dead server's COUNT", ring: func() *fakeRing {
			f := newFakeRing(8, 32, 8)
			f.down[addr(7002)] = true
			return f
		}, ch: ringChange{op: topology.OpReplace, addr: addr(7002), server: config.Server{IP: "10.0.0.9", Port: 7009}},
			out: "replace of 10.0.0.1:7002 by 10.0.0.9:7009 begun",
			check: func(t *testing.T, f *fakeRing) {
				if i := config.Find(f.state.Move.Target, "10.0.0.9:7009"); i < 0 || f.state.Move.Target[i].Count != 32 {
					t.Errorf("target %v", f.state.Move.Target)
				}
			}},
		{name: "replace of a server that answers", ring: func() *fakeRing { return newFakeRing(8, 8, 8) },
			ch:   ringChange{op: topology.OpReplace, addr: addr(7002), server: config.Server{IP: "10.0.0.9", Port: 7009}},
			code: errcode.InvalidArg},
		{name: "replace of a server that answers, forced", ring: func() *fakeRing { return newFakeRing(8, 8, 8) },
			ch:    ringChange{op: topology.OpReplace, addr: addr(7002), server: config.Server{IP: "10.0.0.9", Port: 7009, Count: 8}},
			force: true, out: "OK epoch 2"},
		{name: "replace of an unknown server", ring: func() *fakeRing { return newFakeRing(8, 8, 8) },
			ch:   ringChange{op: topology.OpReplace, addr: addr(7099), server: config.Server{IP: "10.0.0.9", Port: 7009}},
			code: errcode.InvalidArg},
		{name: "removenode", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8, 8)
			f.down[addr(7003)] = true
			return f
		}, ch: ringChange{op: topology.OpRemove, addr: addr(7003)}, out: "remove of 10.0.0.1:7003 begun"},
		{name: "removenode of a live server", ring: func() *fakeRing { return newFakeRing(8, 8, 8, 8) },
			ch: ringChange{op: topology.OpRemove, addr: addr(7003)}, code: errcode.InvalidArg},
		{name: "abort with no move", ring: func() *fakeRing { return newFakeRing(8, 8, 8) },
			ch: ringChange{op: topology.OpAbort}, code: errcode.InvalidArg},
		{name: "abort", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8, 8)
			f.state, _ = f.state.Apply(topology.Command{Op: topology.OpLeave, Addr: addr(7004)})
			return f
		}, ch: ringChange{op: topology.OpAbort}, out: "OK epoch 3: move 2, leave of 10.0.0.1:7004 aborted",
			check: func(t *testing.T, f *fakeRing) {
				if f.state.Move != nil || f.state.Cleanup == nil {
					t.Errorf("ring %s", f.state)
				}
			}},
		{name: "abort after reads switched", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8, 8)
			f.state, _ = f.state.Apply(topology.Command{Op: topology.OpLeave, Addr: addr(7004)})
			f.state = advance(f.state)
			return f
		}, ch: ringChange{op: topology.OpAbort}, code: errcode.InvalidArg},
		{name: "no server answers", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8)
			for _, s := range f.state.Members {
				f.down[s.Addr()] = true
			}
			return f
		}, ch: ringChange{op: topology.OpLeave, addr: addr(7001)}, code: errcode.Network},
		{name: "join, waiting for the end", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8)
			f.next = advance
			return f
		}, ch: ringChange{op: topology.OpJoin, server: config.Server{IP: "10.0.0.9", Port: 7009, Count: 8}}, wait: time.Minute,
			out: "OK epoch 4: move 2, join of 10.0.0.9:7009 done; the ring has 4 servers", warn: "phase read-new"},
		{name: "leave, aborted while waiting", ring: func() *fakeRing {
			f := newFakeRing(8, 8, 8, 8)
			f.next = func(st topology.State) topology.State {
				if st.Move == nil {
					return st
				}
				next, _ := st.Apply(topology.Command{Op: topology.OpAbort, MoveID: st.Move.ID})
				return next
			}
			return f
		}, ch: ringChange{op: topology.OpLeave, addr: addr(7004)}, wait: time.Minute, code: errcode.Runtime},
		{name: "leave, not over in time", ring: func() *fakeRing { return newFakeRing(8, 8, 8, 8) },
			ch: ringChange{op: topology.OpLeave, addr: addr(7004)}, wait: 50 * time.Millisecond, code: errcode.Network},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.ring()
			var stdout, stderr bytes.Buffer
			err := changeRing(context.Background(), f, tc.ch, changeOptions{force: tc.force, wait: tc.wait, poll: time.Millisecond}, &stdout, &stderr)
			if code := errcode.Of(err); code != tc.code {
				t.Fatalf("error %v (%s), want %s", err, code.Name(), tc.code.Name())
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout %q, want %q", stdout.String(), tc.out)
			}
			if tc.warn == "" && strings.Contains(stderr.String(), "WARNING") || !strings.Contains(stderr.String(), tc.warn) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.warn)
			}
			if err != nil && stdout.Len() > 0 {
				t.Errorf("stdout %q on error", stdout.String())
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

// TestChangeMadeDespiteAFailure: a change whose first server failed after
// handing it on is refused by the next one (it is made already): that is
// a success.
func TestChangeMadeDespiteAFailure(t *testing.T) {
	f := newFakeRing(8, 8, 8, 8)
	g := &lostAnswer{fakeRing: f}
	var stdout, stderr bytes.Buffer
	err := changeRing(context.Background(), g, ringChange{op: topology.OpLeave, addr: "10.0.0.1:7004"}, changeOptions{}, &stdout, &stderr)
	if err != nil || !strings.HasPrefix(stdout.String(), "OK epoch 2") {
		t.Fatalf("%v %q", err, stdout.String())
	}
}

// lostAnswer makes the change through the first server but loses its
// answer.
type lostAnswer struct {
	*fakeRing
	once sync.Once
}

func (l *lostAnswer) ChangeRingAt(ctx context.Context, addr string, cmd topology.Command) (topology.State, error) {
	st, err := l.fakeRing.ChangeRingAt(ctx, addr, cmd)
	lost := false
	l.once.Do(func() { lost = true })
	if lost && err == nil {
		return topology.State{}, fmt.Errorf("deadline exceeded: %w", errcode.Network)
	}
	return st, err
}

func TestWriteServersFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "servers.txt")
	os.WriteFile(path, []byte("old\n"), 0o600)
	st := newFakeRing(8, 16, 1).state
	if err := writeServersFile(path, st); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "10.0.0.1 7001 8\n10.0.0.1 7002 16\n10.0.0.1 7003 1\n"; string(b) != want {
		t.Fatalf("wrote %q, want %q", b, want)
	}
	if back, err := config.Load(path); err != nil || len(back) != 3 || back[1].Count != 16 {
		t.Fatalf("read back %v %v", back, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	err := writeServersFile(filepath.Join(dir, "no-such-dir", "servers.txt"), st)
	if errcode.Of(err) != errcode.IO {
		t.Errorf("into a missing directory: %v", err)
	}
}

// TestShowRing: the ring command shows the newest ring any server tells,
// and --servers-file writes its current servers.
func TestShowRing(t *testing.T) {
	f := newFakeRing(8, 8, 8, 8)
	newer, _ := f.state.Apply(topology.Command{Op: topology.OpLeave, Addr: "10.0.0.1:7004", At: 1})
	newer = advance(advance(newer))
	f.told = map[string]topology.State{"10.0.0.1:7003": newer}
	f.down["10.0.0.1:7002"] = true
	dir := t.TempDir()
	file := filepath.Join(dir, "servers.txt")
	now := func() time.Time { return time.UnixMilli(reportNow) }
	var stdout, stderr bytes.Buffer
	if err := showRing(context.Background(), f, "", false, &stdout, &stderr, now, time.UTC); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout.String(), "Ring epoch 4: 3 servers, no move under way\n") ||
		!strings.Contains(stdout.String(), "10.0.0.1:7002             8 down") {
		t.Errorf("report:\n%s", stdout.String())
	}
	stdout.Reset()
	if err := showRing(context.Background(), f, file, false, &stdout, &stderr, now, time.UTC); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "OK epoch 4: 3 servers written to "+file+"\n" {
		t.Errorf("stdout %q", stdout.String())
	}
	if b, _ := os.ReadFile(file); string(b) != "10.0.0.1 7001 8\n10.0.0.1 7002 8\n10.0.0.1 7003 8\n" {
		t.Errorf("file %q", b)
	}
	// During a move the file holds the ring before it, with a warning.
	f.told = nil
	f.state, _ = f.state.Apply(topology.Command{Op: topology.OpLeave, Addr: "10.0.0.1:7004", At: 1})
	stdout.Reset()
	if err := showRing(context.Background(), f, file, true, &stdout, &stderr, now, time.UTC); err != nil {
		t.Fatal(err)
	}
	var rep ringReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Move == nil || rep.Epoch != 2 {
		t.Errorf("--json: %v %+v", err, rep)
	}
	if !strings.Contains(stderr.String(), "WARNING: move 2, leave of 10.0.0.1:7004 is under way") {
		t.Errorf("stderr %q", stderr.String())
	}
	if b, _ := os.ReadFile(file); strings.Count(string(b), "\n") != 4 {
		t.Errorf("file during the move %q", b)
	}
}
