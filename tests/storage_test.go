package tests

// Storage faults on real processes (issue 19): a disk that fills up (a
// tmpfs of 48 MiB, mounted by the test: root needed, as in CI), a damaged
// log or table, a flipped byte in a stored value. The same faults run in
// one process, with injected file system errors and stalls, in
// dkvs/ringtest/storage_test.go.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/tests/harness"
)

// acked records the writes a client had acknowledged: key, version and
// value.
type acked struct {
	mu   sync.Mutex
	recs map[string]kv.Record
}

func newAcked() *acked { return &acked{recs: map[string]kv.Record{}} }

func (a *acked) put(c *dkvs.Client, key string, val []byte, n, w int) error {
	v, err := c.Coordinator().Put(context.Background(), []byte(key), val, n, w)
	if err == nil {
		a.mu.Lock()
		a.recs[key] = kv.Record{Version: v, Value: val}
		a.mu.Unlock()
	}
	return err
}

func (a *acked) drop(key string) {
	a.mu.Lock()
	delete(a.recs, key)
	a.mu.Unlock()
}

func (a *acked) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.recs)
}

// missingOn returns the acknowledged writes server addr does not hold at
// their version (or a newer one), read with a scan of that server.
func (a *acked) missingOn(c *dkvs.Client, addr string) ([]string, error) {
	held := map[string]kv.Record{}
	err := c.ScanServer(context.Background(), addr, true, func(k []byte, rec kv.Record) error {
		held[string(k)] = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k, want := range a.recs {
		got, ok := held[k]
		if !ok || want.Version.Newer(got.Version) || (got.Version == want.Version && !bytes.Equal(got.Value, want.Value)) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func randomValue(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func openClient(t *testing.T, r *harness.Ring, o *dkvs.Options) *dkvs.Client {
	t.Helper()
	c, err := dkvs.Open(r.ServersFile(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func storageState(t *testing.T, r *harness.Ring, i int) string {
	st, err := harness.Stats(r.Addr(i), 2*time.Second)
	if err != nil {
		return "unreachable: " + err.Error()
	}
	return st.Storage
}

// TestDiskFullRing: on a ring of three (N=3, W=2) under a steady load,
// one server's data directory is a 48 MiB tmpfs that fills up. With
// --min-free-space, that server refuses new values once its free space is
// below it and says so (status); without, its log writes fail with
// ENOSPC, its storage fails, it says so, and once space is freed it exits
// 129 for its supervisor (here, the test) to restart it. The ring
// acknowledges every write all along; once space is back the server
// takes writes again and catches up: no acknowledged write is lost, every
// one is on all three.
func TestDiskFullRing(t *testing.T) {
	cases := []struct {
		name    string
		minFree string
		ballast int
		state   string // what the server's storage says once full
	}{
		{"with a minimum", "20MiB", 16 << 20, "full"},
		{"without a minimum", "0", 32 << 20, "failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := harness.Tmpfs(t, "48m")
			r := harness.NewRing(t, 1, 1, 1)
			r.ServerArgs[0] = []string{"--data-dir", filepath.Join(fs, "data"), "--min-free-space", tc.minFree}
			ballast := harness.NewBallast(t, fs, tc.ballast)
			r.StartAll()
			c := openClient(t, r, nil)
			a := newAcked()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var putErrs []error
			for w := 0; w < 2; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if err := a.put(c, fmt.Sprintf("w%d-%06d", w, i), randomValue(8<<10), 3, 2); err != nil {
							mu.Lock()
							putErrs = append(putErrs, err)
							mu.Unlock()
						}
						time.Sleep(10 * time.Millisecond) // about 1.6 MiB/s
					}
				}(w)
			}
			harness.Eventually(t, 2*time.Minute, "the server's disk fills up", func() error {
				if s := storageState(t, r, 0); s != tc.state {
					return fmt.Errorf("storage %q", s)
				}
				return nil
			})
			res := r.Client("status")
			if !strings.Contains(res.Stdout, r.Addr(0)) || !strings.Contains(res.Stdout, " "+tc.state+" ") {
				t.Errorf("status once the disk is full:\n%s", res.Stdout)
			}
			st, _ := harness.Stats(r.Addr(0), 2*time.Second)
			if st.DiskTotal == 0 || (tc.state == "full" && (st.WritesRefused == 0 || !strings.Contains(st.StorageError, "minimum 20 MiB"))) ||
				(tc.state == "failed" && !strings.Contains(st.StorageError, "no space left on device")) {
				t.Errorf("stats of the full server: %+v", st)
			}
			// The load goes on while the server is full.
			before := a.len()
			harness.Eventually(t, time.Minute, "writes go on while a server is full", func() error {
				if n := a.len() - before; n < 200 {
					return fmt.Errorf("%d writes acknowledged since", n)
				}
				return nil
			})
			ballast.Free(t)
			if tc.state == "failed" {
				// The failed server exits once space is back, for its
				// supervisor to restart it.
				if code := harness.ExitCode(r.Wait(0, time.Minute)); code != 129 {
					t.Fatalf("the failed server exited %d, want 129\n%s", code, r.Log(0))
				}
				r.Start(0)
			}
			harness.Eventually(t, time.Minute, "the server takes writes again", func() error {
				if s := storageState(t, r, 0); s != "ok" {
					return fmt.Errorf("storage %q", s)
				}
				return nil
			})
			close(stop)
			wg.Wait()
			if len(putErrs) > 0 {
				t.Fatalf("%d writes failed while one server of three was full, e.g. %v", len(putErrs), putErrs[0])
			}
			c.Coordinator().Wait(context.Background())
			for i := range r.Servers {
				harness.Eventually(t, 2*time.Minute, fmt.Sprintf("%s holds every acknowledged write", r.Addr(i)), func() error {
					m, err := a.missingOn(c, r.Addr(i))
					if err != nil {
						return err
					}
					if len(m) > 0 {
						return fmt.Errorf("%d of %d missing, e.g. %s", len(m), a.len(), m[0])
					}
					return nil
				})
			}
			t.Logf("%d writes acknowledged; %d refused by the full server", a.len(), st.WritesRefused)
		})
	}
}

// TestDiskFullAlone: the only server (N=1) on a 48 MiB tmpfs. With a
// minimum free space, writes past it are refused with a clear ERR_IO at
// once while reads and deletions are served; without one, the disk runs
// out under eight writers and the storage fails: writes are refused with
// the cause, status says failed. Either way SIGTERM stops the server
// within its bound, and, restarted once space is freed, it has every
// write it acknowledged and takes writes again.
func TestDiskFullAlone(t *testing.T) {
	cases := []struct {
		name    string
		minFree string
		ballast int
		writers int
		message string // in the refusals once the disk is full
		status  string // what status says then
		exit    int    // SIGTERM's exit status
	}{
		{"with a minimum", "20MiB", 16 << 20, 1, "disk nearly full", "full", 0},
		{"without a minimum", "0", 24 << 20, 8, "no space left on device", "failed", 129},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := harness.Tmpfs(t, "48m")
			r := harness.NewRing(t, 1)
			r.ServerArgs[0] = []string{"--data-dir", filepath.Join(fs, "data"), "--min-free-space", tc.minFree}
			ballast := harness.NewBallast(t, fs, tc.ballast)
			r.StartAll()
			c := openClient(t, r, nil)
			a := newAcked()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var refusals []error
			for w := 0; w < tc.writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < 5000; i++ {
						err := a.put(c, fmt.Sprintf("w%d-%05d", w, i), randomValue(30<<10), 1, 1)
						if err != nil {
							mu.Lock()
							refusals = append(refusals, err)
							n := len(refusals)
							mu.Unlock()
							if n > 20 {
								return
							}
						}
					}
				}(w)
			}
			wg.Wait()
			if len(refusals) == 0 {
				t.Fatalf("5000 writes of 30 KB per writer fitted in 48 MiB")
			}
			last := refusals[len(refusals)-1]
			if errcode.Of(last) != errcode.IO || errors.Is(last, dkvs.ErrUnknownOutcome) || !strings.Contains(last.Error(), tc.message) {
				t.Fatalf("a write once the disk is full: %v (%s), want ERR_IO saying %q", last, errcode.Of(last).Name(), tc.message)
			}
			// A refusal comes at once, not after the request's deadline.
			start := time.Now()
			err := a.put(c, "one-more", randomValue(30<<10), 1, 1)
			if err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("one more write: %v", err)
			}
			t.Logf("%d writes acknowledged; a refusal took %v", a.len(), time.Since(start))
			res := r.Client("status")
			if !strings.Contains(res.Stdout, " "+tc.status+" ") {
				t.Errorf("status:\n%s", res.Stdout)
			}
			// Reads and deletions are served.
			var some string
			a.mu.Lock()
			for k := range a.recs {
				some = k
				break
			}
			a.mu.Unlock()
			got, err := c.Get(context.Background(), []byte(some), 1, 1)
			if err != nil || !bytes.Equal(got, a.recs[some].Value) {
				t.Fatalf("read of %s while the disk is full: %v", some, err)
			}
			if tc.status == "full" {
				if err := c.Delete(context.Background(), []byte(some), 1, 1); err != nil {
					t.Fatalf("delete while the disk is full: %v", err)
				}
				a.drop(some)
			}
			c.Close()
			if code := harness.ExitCode(r.TermOrExited(0)); code != tc.exit {
				t.Fatalf("exit status %d after SIGTERM, want %d\n%s", code, tc.exit, r.Log(0))
			}
			ballast.Free(t)
			r.Start(0)
			c = openClient(t, r, nil)
			if m, err := a.missingOn(c, r.Addr(0)); err != nil || len(m) > 0 {
				t.Fatalf("after a restart, %d of %d acknowledged writes missing (%v), e.g. %v", len(m), a.len(), err, m)
			}
			// Opening the store flushed its logs into tables; once the
			// engine has dropped the logs, the space is there again.
			harness.Eventually(t, 30*time.Second, "the restarted server takes writes", func() error {
				if s := storageState(t, r, 0); s != "ok" {
					return fmt.Errorf("storage %q", s)
				}
				return a.put(c, "after", []byte("v"), 1, 1)
			})
		})
	}
}

// TestDamagedStore: a server whose write-ahead log or table was damaged
// while it was stopped refuses to start (exit 129) with a message naming
// --on-damage=rebuild; started with it, it moves the directory aside
// (kept), starts empty and refills from its peers by anti-entropy.
func TestDamagedStore(t *testing.T) {
	for _, what := range []string{"log", "table"} {
		t.Run(what, func(t *testing.T) {
			r := harness.NewRing(t, 1, 1, 1)
			// A peer answers anti-entropy with the trees it built for the
			// last round for up to a fifth of the interval (at most 5 s):
			// the rebuilt server's first round, seconds after the load,
			// could be answered with trees that predate it, and the refill
			// waited for the next round (28 s of the default 30 s).
			r.Args = []string{"--ae-interval", "2s"}
			r.StartAll()
			// The store's logs record how far they were synced from its
			// second run on (the first log is written before Pebble raises
			// the format); only then is damage in the last log found.
			if err := r.Term(1); err != nil {
				t.Fatal(err)
			}
			r.Start(1)
			c := openClient(t, r, nil)
			a := newAcked()
			for i := 0; i < 2000; i++ {
				if err := a.put(c, fmt.Sprintf("key-%04d", i), randomValue(8<<10), 3, 3); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Term(1); err != nil {
				t.Fatal(err)
			}
			damageFile(t, r.DataDir(1), what)
			err := r.TryStart(1)
			if err == nil || !strings.Contains(err.Error(), "exit status 129") || !strings.Contains(err.Error(), "damaged") ||
				!strings.Contains(err.Error(), "--on-damage=rebuild") {
				t.Fatalf("start on a damaged %s: %v", what, err)
			}
			r.ServerArgs[1] = []string{"--on-damage", "rebuild"}
			start := time.Now()
			r.Start(1)
			if !strings.Contains(r.Log(1), "moved aside") {
				t.Fatalf("no word of the move:\n%s", r.Log(1))
			}
			if moved, _ := filepath.Glob(r.DataDir(1) + ".damaged-*"); len(moved) != 1 {
				t.Fatalf("damaged directory kept as %v", moved)
			}
			took := harness.Eventually(t, 2*time.Minute, "the rebuilt server is refilled", func() error {
				m, err := a.missingOn(c, r.Addr(1))
				if err != nil {
					return err
				}
				if len(m) > 0 {
					return fmt.Errorf("%d of %d missing", len(m), a.len())
				}
				return nil
			})
			t.Logf("refilled %d keys of 8 KiB in %v (%v from the start)", a.len(), took, time.Since(start))
		})
	}
}

// damageFile flips a byte in the store at dir: in the middle of its
// largest table, or a third of the way into its newest log.
func damageFile(t *testing.T, dir, what string) {
	t.Helper()
	var name string
	switch what {
	case "table":
		var size int64
		files, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Size() > size {
				name, size = f, fi.Size()
			}
		}
	case "log":
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		sort.Strings(files)
		for i := len(files) - 1; i >= 0 && name == ""; i-- {
			if fi, err := os.Stat(files[i]); err == nil && fi.Size() > 256<<10 {
				name = files[i]
			}
		}
	}
	if name == "" {
		t.Fatalf("no %s to damage in %s", what, dir)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	at := len(b) / 2
	if what == "log" {
		at = len(b) / 3
	}
	b[at] ^= 0xff
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFlippedValue: a byte of a stored value flipped (below the record's
// checksum, where the engine's own checksums do not look) is detected at
// read time: the record is not served (a read needing that replica fails
// with ERR_IO, one that does not returns the right value), counted, and
// repaired from the other replicas by read repair.
func TestFlippedValue(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.StartAll()
	wantOK(t, r.Client("put", "-w", "3", "--", "k", "the value"), "OK")
	if err := r.Term(2); err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(storage.Options{Dir: r.DataDir(2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CorruptForTesting([]byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r.Start(2)
	res := r.Client("get", "-r", "3", "--", "k")
	wantExit(t, res, errcode.IO)
	if !strings.Contains(res.Stderr, "corrupt record") {
		t.Fatalf("get R=3: %s", res)
	}
	wantOK(t, r.Client("get", "-r", "2", "--", "k"), "OK the value")
	st, err := harness.Stats(r.Addr(2), 2*time.Second)
	if err != nil || st.CorruptRecords != 1 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	harness.Eventually(t, 30*time.Second, "the damaged record is repaired", func() error {
		if got := serverDump(t, r, 2)["k"]; got != "the value" {
			return fmt.Errorf("server holds %q", got)
		}
		if st, err := harness.Stats(r.Addr(2), 2*time.Second); err != nil || st.Quarantined != 0 {
			return fmt.Errorf("still set aside: %+v %v", st, err)
		}
		return nil
	})
	wantOK(t, r.Client("get", "-r", "3", "--", "k"), "OK the value")
}
