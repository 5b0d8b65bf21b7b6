package ringtest_test

// Storage faults on one server of a ring (issue 19), in one process and
// in simulated time: a disk that fills up, a log whose sync fails, a disk
// whose syncs stall, a record whose checksum fails, a store damaged while
// the server was down. The faults come from package faultfs, wrapped
// around the server's in-memory file system.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/diskspace"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/faultfs"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ringtest"
	"github.com/dkvs/dkvs/dkvs/server"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// value returns n incompressible bytes.
func value(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// ackedWrites are the versions of the writes a client had acknowledged.
type ackedWrites map[string]kv.Version

// put writes key and records the version if it is acknowledged.
func (a ackedWrites) put(t *testing.T, c *dkvs.Client, key string, val []byte, n, w int) error {
	t.Helper()
	v, err := c.Coordinator().Put(bg, []byte(key), val, n, w)
	if err == nil {
		a[key] = v
	}
	return err
}

// check fails the test unless every acknowledged write is on every one of
// its n homes at its version (or a newer one).
func (a ackedWrites) check(t *testing.T, r *ringtest.Ring, n int) {
	t.Helper()
	for k, v := range a {
		for _, h := range r.Homes(k, n) {
			rec, found, err := r.Record(h, k)
			if err != nil || !found || v.Newer(rec.Version) {
				t.Fatalf("acknowledged write %s@%v: %s holds %v (found %v, %v)", k, v, r.Addr(h), rec.Version, found, err)
			}
		}
	}
}

func (a ackedWrites) keys() []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	return out
}

// TestDiskFullOneOfThree: on a ring of three (N=3, W=2), one server's
// disk fills up under a steady load. Below its minimum free space it
// refuses new values at once and says so (its stats, its peers' and the
// client's detectors), the ring keeps acknowledging every write (W=2 from
// the other two, a hint kept for it), it still takes deletions and serves
// reads; once space is back it takes writes again and catches up: every
// acknowledged write ends up on all three.
func TestDiskFullOneOfThree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var disk *faultfs.Disk
		r := ringtest.New(t, ringtest.Options{
			Counts: []int{1, 1, 1},
			FS: func(i int, base vfs.FS) vfs.FS {
				if i != 0 {
					return base
				}
				if disk == nil {
					disk = faultfs.NewDisk(base, 6<<20, "data")
				}
				return disk
			},
			Config: func(i int, cfg *server.Config) { cfg.MinFreeSpace = diskspace.Minimum{Bytes: 2 << 20} },
		})
		c := r.Client(nil)
		full := r.Addr(0)
		rng := rand.New(rand.NewPCG(1, 2))
		acked := ackedWrites{}
		i := 0
		for ; r.Server(0).Stats().Storage != "full"; i++ {
			if i == 2000 {
				t.Fatalf("the disk never filled: %+v", r.Server(0).Stats())
			}
			if err := acked.put(t, c, fmt.Sprintf("key-%04d", i), value(rng, 8<<10), 3, 2); err != nil {
				t.Fatalf("put %d: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		for j := 0; j < 100; j, i = j+1, i+1 {
			if err := acked.put(t, c, fmt.Sprintf("key-%04d", i), value(rng, 8<<10), 3, 2); err != nil {
				t.Fatalf("put %d while a server is full: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		st := r.Server(0).Stats()
		if st.WritesRefused == 0 || st.DiskFree == 0 || st.DiskFree >= st.MinFree || !strings.Contains(st.StorageError, "free") {
			t.Fatalf("stats of the full server: %+v", st)
		}
		if w := c.Health(); w.Writable(full, false) || !w.Writable(full, true) || !w.Up(full) {
			t.Fatal("the client does not see the server full")
		}
		r.Eventually(5*time.Second, "peers see the server full", func() error {
			for _, p := range r.Server(1).Stats().Peers {
				if p.Addr == full && p.Storage != "full" {
					return fmt.Errorf("%s sees %s as %q", r.Addr(1), full, p.Storage)
				}
			}
			return nil
		})
		if r.HintsHeld() == 0 {
			t.Fatal("no hints held for the full server")
		}
		// Deletions are taken, reads served.
		if err := c.Delete(bg, []byte("key-0000"), 3, 3); err != nil {
			t.Fatalf("delete with W=3 while full: %v", err)
		}
		delete(acked, "key-0000")
		if rec, found, err := r.Record(0, "key-0000"); err != nil || !found || !rec.Tombstone {
			t.Fatalf("the full server did not take the deletion: %v %v %v", rec, found, err)
		}
		if _, err := c.Get(bg, []byte("key-0001"), 3, 3); err != nil {
			t.Fatalf("read with R=3 while full: %v", err)
		}
		// Space comes back.
		disk.SetCapacity(64 << 20)
		r.Eventually(5*time.Second, "the server takes writes again", func() error {
			if s := r.Server(0).Stats().Storage; s != "ok" {
				return fmt.Errorf("storage %s", s)
			}
			return nil
		})
		r.WaitConverged(acked.keys(), 3, 2*time.Minute)
		acked.check(t, r, 3)
	})
}

// TestStorageFailsThenRestarts: one server of three fails (a log sync
// fails with EIO; or its disk fills up with no minimum set, so that a log
// write fails with ENOSPC). From the write that failed on, it refuses
// writes at once with ERR_IO and the cause, not after a deadline; its
// stats, its peers and the client see it failed; the ring keeps
// acknowledging writes (W=2); it stops by itself after FaultExitDelay
// (once space is back, for a full disk), as the process would exit for
// its supervisor; restarted on its files, it has every write it
// acknowledged and catches up on the rest.
func TestStorageFailsThenRestarts(t *testing.T) {
	cases := []struct {
		name  string
		cause error
		full  bool // fill the disk; else inject EIO on log syncs
	}{
		{"EIO on a log sync", syscall.EIO, false},
		{"disk full without a minimum", syscall.ENOSPC, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				in := &faultfs.Injector{}
				var disk *faultfs.Disk
				r := ringtest.New(t, ringtest.Options{
					Counts: []int{1, 1, 1},
					FS: func(i int, base vfs.FS) vfs.FS {
						if i != 0 {
							return base
						}
						if disk == nil { // the same disk across restarts
							disk = faultfs.NewDisk(base, 4<<20, "data")
							if !tc.full {
								disk.SetCapacity(1 << 40)
							}
						}
						return faultfs.Wrap(disk, in)
					},
					Config: func(i int, cfg *server.Config) { cfg.FaultExitDelay = 5 * time.Second },
				})
				c := r.Client(nil)
				rng := rand.New(rand.NewPCG(3, 4))
				acked := ackedWrites{}
				for i := 0; i < 20; i++ {
					if err := acked.put(t, c, fmt.Sprintf("before-%02d", i), value(rng, 1<<10), 3, 2); err != nil {
						t.Fatal(err)
					}
				}
				c.Coordinator().Wait(bg)
				if !tc.full {
					in.Set(faultfs.Rule{Op: faultfs.Sync, Files: ".log", Err: syscall.EIO})
				}
				i := 0
				for ; r.Server(0).Stats().Storage != "failed"; i++ {
					if i == 2000 {
						t.Fatalf("the server never failed: %+v", r.Server(0).Stats())
					}
					if err := acked.put(t, c, fmt.Sprintf("key-%04d", i), value(rng, 8<<10), 3, 2); err != nil {
						t.Fatalf("put %d: %v", i, err)
					}
					c.Coordinator().Wait(bg) // one write at a time on the failing server
				}
				st := r.Server(0).Stats()
				if !strings.Contains(st.StorageError, tc.cause.Error()) {
					t.Fatalf("storage error %q, want %v", st.StorageError, tc.cause)
				}
				// A write to the failed server alone (no fallback taking it as
				// a hint) is refused at once.
				key := keyHomedOn(r, 0)
				strict := r.Client(&dkvs.Options{DisableSloppyQuorum: true})
				start := time.Now()
				err := strict.Put(bg, []byte(key), []byte("v"), 1, 1)
				if err == nil || errcode.Of(err) != errcode.IO || errors.Is(err, dkvs.ErrUnknownOutcome) || !strings.Contains(err.Error(), "storage failed") {
					t.Fatalf("put on the failed server: %v", err)
				}
				if took := time.Since(start); took >= coordTimeout {
					t.Fatalf("the refusal took %v, a request's deadline", took)
				}
				for j := 0; j < 20; j, i = j+1, i+1 {
					if err := acked.put(t, c, fmt.Sprintf("key-%04d", i), value(rng, 1<<10), 3, 2); err != nil {
						t.Fatalf("put while a server failed: %v", err)
					}
				}
				// A put returns on W=2 answers, so the failed server's refusal,
				// which tells the client, may still be on its way; a client
				// that took the server for down (a reply late under load)
				// learns it from its pings instead.
				c.Coordinator().Wait(bg)
				r.Eventually(5*time.Second, "the client sees the server failed", func() error {
					if s := c.Health().Storage(r.Addr(0)); s != wire.StorageFailed {
						return fmt.Errorf("the client sees %s (up %v)", s, c.Health().Up(r.Addr(0)))
					}
					return nil
				})
				r.Eventually(5*time.Second, "peers see the server failed", func() error {
					if s := r.Server(1).Health().Storage(r.Addr(0)); s != wire.StorageFailed {
						return fmt.Errorf("%s sees %s", r.Addr(1), s)
					}
					return nil
				})
				if _, err := c.Get(bg, []byte("before-00"), 3, 3); err != nil {
					t.Fatalf("read with R=3 from a failed store: %v", err)
				}
				if tc.full {
					time.Sleep(time.Minute)
					if exited, _ := r.Exited(0); exited {
						t.Fatal("stopped before space came back")
					}
					disk.SetCapacity(1 << 40)
				} else {
					in.Clear()
				}
				r.Eventually(time.Minute, "the failed server stops", func() error {
					if exited, err := r.Exited(0); !exited || !errors.Is(err, server.ErrStorageFailed) {
						return fmt.Errorf("exited %v: %v", exited, err)
					}
					return nil
				})
				r.Restart(0)
				r.WaitConverged(acked.keys(), 3, 2*time.Minute)
				acked.check(t, r, 3)
			})
		})
	}
}

// coordTimeout is the client's deadline of one replica request.
const coordTimeout = 500 * time.Millisecond

// keyHomedOn returns a key whose first home is server i.
func keyHomedOn(r *ringtest.Ring, i int) string {
	for j := 0; ; j++ {
		k := fmt.Sprintf("alone-%d", j)
		if r.Homes(k, 1)[0] == i {
			return k
		}
	}
}

// TestSlowDiskRoutedAround: a server whose log syncs stall for seconds
// does not hold up writes the other replicas can acknowledge (W=2 returns
// without it); once a sync has waited past the threshold it refuses
// writes at once, and writes that need three acknowledgements (W=3) get
// the third from a fallback's hint; when the disk is fast again it takes
// writes again and catches up.
func TestSlowDiskRoutedAround(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := &faultfs.Injector{}
		r := ringtest.New(t, ringtest.Options{
			FS: func(i int, base vfs.FS) vfs.FS {
				if i != 0 {
					return base
				}
				return faultfs.Wrap(base, in)
			},
		})
		c := r.Client(nil)
		slow := r.Addr(0)
		acked := ackedWrites{}
		var keys []string
		for j := 0; len(keys) < 30; j++ {
			if k := fmt.Sprintf("key-%03d", j); isHome(r, k, 3, 0) {
				keys = append(keys, k)
			}
		}
		in.Set(faultfs.Rule{Op: faultfs.Sync, Files: ".log", Stall: 10 * time.Second})
		start := time.Now()
		if err := acked.put(t, c, keys[0], []byte("v"), 3, 2); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took >= coordTimeout {
			t.Fatalf("a W=2 put waited %v for the stalled replica", took)
		}
		r.Eventually(10*time.Second, "the stalled server says slow", func() error {
			if s := r.Server(0).Stats().Storage; s != "slow" {
				return fmt.Errorf("storage %q", s)
			}
			return nil
		})
		for _, k := range keys[1:] {
			start := time.Now()
			if err := acked.put(t, c, k, []byte("v"), 3, 3); err != nil {
				t.Fatalf("W=3 put while a home is slow: %v", err)
			}
			if took := time.Since(start); took >= coordTimeout {
				t.Fatalf("a W=3 put took %v", took)
			}
		}
		if c.Health().Writable(slow, false) {
			t.Fatal("the client still writes to the slow server")
		}
		in.Clear()
		r.Eventually(time.Minute, "the server takes writes again", func() error {
			if s := r.Server(0).Stats().Storage; s != "ok" {
				return fmt.Errorf("storage %q", s)
			}
			return nil
		})
		r.WaitConverged(acked.keys(), 3, 2*time.Minute)
		acked.check(t, r, 3)
	})
}

// TestCorruptRecordRepaired: a record whose stored value was damaged
// (below its checksum) is detected at read time, not served (a read that
// needs that replica fails, one that does not returns the right value),
// counted, and repaired: by read repair, or by anti-entropy when reads do
// not repair, the same version written over it.
func TestCorruptRecordRepaired(t *testing.T) {
	for _, readRepair := range []bool{true, false} {
		t.Run(fmt.Sprintf("read repair %v", readRepair), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := ringtest.New(t, ringtest.Options{Counts: []int{1, 1, 1}})
				c := r.Client(&dkvs.Options{DisableReadRepair: !readRepair})
				want := []byte("the value, intact")
				if err := c.Put(bg, []byte("k"), want, 3, 3); err != nil {
					t.Fatal(err)
				}
				if err := r.Server(1).DB().CorruptForTesting([]byte("k")); err != nil {
					t.Fatal(err)
				}
				// Read from every replica: the damaged one fails the read.
				if _, err := c.Get(bg, []byte("k"), 3, 3); err == nil || errcode.Of(err) != errcode.IO || !strings.Contains(err.Error(), "corrupt") {
					t.Fatalf("get R=3 with a damaged replica: %v", err)
				}
				c.Coordinator().Wait(bg)
				if st := r.Server(1).Stats(); st.CorruptRecords != 1 {
					t.Fatalf("not counted: %+v", st)
				}
				if !readRepair {
					if got, err := c.Get(bg, []byte("k"), 3, 2); err != nil || !bytes.Equal(got, want) {
						t.Fatalf("get R=2: %q %v", got, err)
					}
				}
				r.Eventually(time.Minute, "the damaged record is repaired", func() error {
					rec, found, err := r.Record(1, "k")
					if err != nil || !found || !bytes.Equal(rec.Value, want) {
						return fmt.Errorf("%v %v %q", err, found, rec.Value)
					}
					return nil
				})
				if st := r.Server(1).Stats(); st.Quarantined != 0 {
					t.Fatalf("still set aside: %+v", st)
				}
				if got, err := c.Get(bg, []byte("k"), 3, 3); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("get R=3 after repair: %q %v", got, err)
				}
			})
		})
	}
}

// TestDamagedStoreRebuilt: a server whose write-ahead log was damaged
// while it was down refuses to start, saying how to bring it back; with
// the damaged directory moved aside (Storage.MoveAsideDamaged, what
// --on-damage=rebuild sets), it starts empty and anti-entropy refills it
// from its peers.
func TestDamagedStoreRebuilt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rebuild := false
		r := ringtest.New(t, ringtest.Options{
			Counts: []int{1, 1, 1},
			Config: func(i int, cfg *server.Config) { cfg.Storage.MoveAsideDamaged = rebuild },
		})
		// A log of a store's first run is written before Pebble raises its
		// format to one whose logs record how far they were synced: restart
		// once so that the log damaged below is of the new format.
		r.Stop(1)
		r.Start(1)
		c := r.Client(nil)
		acked := ackedWrites{}
		rng := rand.New(rand.NewPCG(5, 6))
		for i := 0; i < 300; i++ {
			if err := acked.put(t, c, fmt.Sprintf("key-%03d", i), value(rng, 256), 3, 3); err != nil {
				t.Fatal(err)
			}
		}
		r.Stop(1)
		damageLargest(t, r.FS(1), "data", ".log")
		err := r.TryStart(1)
		if !errors.Is(err, storage.ErrDamaged) || !strings.Contains(err.Error(), "--on-damage=rebuild") {
			t.Fatalf("start on a damaged log: %v", err)
		}
		rebuild = true
		r.Start(1)
		names, _ := r.FS(1).List("")
		if !strings.Contains(strings.Join(names, " "), "data.damaged-") {
			t.Fatalf("the damaged directory was not kept: %v", names)
		}
		r.WaitConverged(acked.keys(), 3, 2*time.Minute)
		acked.check(t, r, 3)
	})
}

// damageLargest flips a byte in the middle of the largest file of dir on
// fs whose name ends with suffix.
func damageLargest(t *testing.T, fs vfs.FS, dir, suffix string) {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	var size int64
	for _, n := range names {
		if fi, err := fs.Stat(fs.PathJoin(dir, n)); err == nil && strings.HasSuffix(n, suffix) && fi.Size() > size {
			name, size = fs.PathJoin(dir, n), fi.Size()
		}
	}
	if name == "" {
		t.Fatalf("no *%s in %s", suffix, dir)
	}
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	w, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	w.Sync()
	w.Close()
}
