package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
)

func v(wall uint64) kv.Version { return kv.Version{Wall: wall, Writer: 1} }

func rec(wall uint64, val string) kv.Record {
	return kv.Record{Version: v(wall), Value: []byte(val)}
}

func tomb(wall uint64) kv.Record { return kv.Record{Version: v(wall), Tombstone: true} }

func openMem(t *testing.T) *DB {
	t.Helper()
	d, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever the test did, the ring index still follows the records.
		if err := d.CheckIndex(); err != nil && !errors.Is(err, ErrClosed) {
			t.Error(err)
		}
		d.Close()
	})
	return d
}

func TestLastWriterWins(t *testing.T) {
	d := openMem(t)
	steps := []struct {
		rec     kv.Record
		applied bool
		current uint64
		want    string // "" with found=false means absent; "<tomb>" a tombstone
	}{
		{rec(10, "a"), true, 10, "a"},
		{rec(5, "old"), false, 10, "a"},
		{rec(10, "same version"), false, 10, "a"},
		{rec(11, "b"), true, 11, "b"},
		{tomb(12), true, 12, "<tomb>"},
		{rec(11, "stale after delete"), false, 12, "<tomb>"},
		{rec(13, ""), true, 13, ""},
	}
	for i, s := range steps {
		res, err := d.Apply([]byte("k"), s.rec)
		if err != nil {
			t.Fatal(err)
		}
		if res.Applied != s.applied || res.Current != v(s.current) {
			t.Fatalf("step %d: %+v", i, res)
		}
		got, found, err := d.Get([]byte("k"))
		if err != nil || !found {
			t.Fatalf("step %d: get %v %v", i, found, err)
		}
		str := string(got.Value)
		if got.Tombstone {
			str = "<tomb>"
		}
		if str != s.want || got.Value == nil && !got.Tombstone && s.want != "" {
			t.Fatalf("step %d: got %q, want %q", i, str, s.want)
		}
	}
	if _, found, _ := d.Get([]byte("absent")); found {
		t.Fatal("absent key found")
	}
}

func TestCountersAndScan(t *testing.T) {
	d := openMem(t)
	for i := 0; i < 100; i++ {
		if _, err := d.Apply([]byte(fmt.Sprintf("k%03d", i)), rec(1, "xx")); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i += 4 {
		d.Apply([]byte(fmt.Sprintf("k%03d", i)), tomb(2))
	}
	if s := d.Stats(); s.LiveKeys != 75 || s.Tombstones != 25 || s.LiveBytes != 150 {
		t.Fatalf("stats %+v", s)
	}
	var keys []string
	d.Scan([]byte("k050"), ScanOptions{}, func(k []byte, r kv.Record) bool {
		keys = append(keys, string(k))
		return len(keys) < 10
	})
	if len(keys) != 10 || keys[0] != "k050" || keys[1] != "k051" || keys[2] != "k053" {
		t.Fatalf("scan from k050: %v", keys)
	}
	n, tombs := 0, 0
	d.Scan(nil, ScanOptions{Tombstones: true, NoValues: true}, func(k []byte, r kv.Record) bool {
		n++
		if r.Tombstone {
			tombs++
		}
		if r.Value != nil {
			t.Fatal("NoValues returned a value")
		}
		return true
	})
	if n != 100 || tombs != 25 {
		t.Fatalf("full scan %d records, %d tombstones", n, tombs)
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("compressible "), 100000)
	d.Apply([]byte("big"), kv.Record{Version: v(1), Value: big})
	d.Apply([]byte("bin\x00key"), kv.Record{Version: v(1), Value: []byte("a\x00b")})
	d.Apply([]byte("gone"), tomb(3))
	before := d.Stats()
	if before.LiveBytes >= int64(len(big)) {
		t.Fatalf("big value not compressed: %d bytes stored", before.LiveBytes)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get([]byte("big")); !errors.Is(err, ErrClosed) || !errors.Is(err, errcode.IO) {
		t.Fatalf("get after close: %v", err)
	}
	if _, err := d.Apply([]byte("x"), rec(1, "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
	d2, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.Stats() != before {
		t.Fatalf("stats after reopen %+v, before %+v", d2.Stats(), before)
	}
	got, _, err := d2.Get([]byte("big"))
	if err != nil || !bytes.Equal(got.Value, big) {
		t.Fatalf("big value: %v", err)
	}
	got, _, _ = d2.Get([]byte("bin\x00key"))
	if string(got.Value) != "a\x00b" {
		t.Fatalf("binary value %q", got.Value)
	}
}

func TestIncompressibleStoredPlain(t *testing.T) {
	d := openMem(t)
	val := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(val)
	d.Apply([]byte("r"), kv.Record{Version: v(1), Value: val})
	if s := d.Stats(); s.LiveBytes != int64(len(val)) {
		t.Fatalf("stored %d bytes", s.LiveBytes)
	}
	got, _, err := d.Get([]byte("r"))
	if err != nil || !bytes.Equal(got.Value, val) {
		t.Fatalf("get: %v", err)
	}
}

func TestChecksum(t *testing.T) {
	d := openMem(t)
	d.Apply([]byte("k"), rec(1, "hello"))
	raw, closer, err := d.db.Get(spaceKey(spaceData, []byte("k")))
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), raw...)
	closer.Close()
	bad[len(bad)-1] ^= 1
	if err := d.db.Set(spaceKey(spaceData, []byte("k")), bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Get([]byte("k")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt value read back: %v", err)
	}
	for _, b := range [][]byte{nil, {0}, append([]byte{0x80}, make([]byte, 30)...)} {
		if _, err := decodeRecord(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode %x: %v", b, err)
		}
	}
}

func TestConcurrentApply(t *testing.T) {
	d, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				// Every goroutine writes the same 10 keys with distinct versions.
				ver := kv.Version{Wall: uint64(i), Writer: uint64(g)}
				if _, err := d.Apply([]byte(fmt.Sprint(i%10)), kv.Record{Version: ver, Value: []byte(fmt.Sprint(g))}); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	for k := 0; k < 10; k++ {
		got, _, _ := d.Get([]byte(fmt.Sprint(k)))
		// The newest version of key k is wall 190+k from writer 7.
		if got.Version != (kv.Version{Wall: uint64(190 + k), Writer: 7}) || string(got.Value) != "7" {
			t.Fatalf("key %d: %v %q", k, got.Version, got.Value)
		}
	}
	if s := d.Stats(); s.LiveKeys != 10 {
		t.Fatalf("stats %+v", s)
	}
}

// BenchmarkApplySync measures synced writes of 100-byte values to 1000
// keys from one writer (the fsync latency a lone client sees) and from 16
// (group commit), with the write-ahead logs as dkvs writes them (not
// preallocated) and, to compare, preallocated as Pebble did by default.
func BenchmarkApplySync(b *testing.B) {
	for _, bc := range []struct {
		writers     int
		preallocate bool
	}{{1, false}, {1, true}, {16, false}, {16, true}} {
		b.Run(fmt.Sprintf("writers=%d/preallocate=%v", bc.writers, bc.preallocate), func(b *testing.B) {
			writers := bc.writers
			d, err := Open(Options{Dir: b.TempDir(), preallocateLogs: bc.preallocate})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			val := make([]byte, 100)
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := n.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := d.Apply([]byte(fmt.Sprint(i%1000)), kv.Record{Version: v(uint64(i)), Value: val}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestApplyMany(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d.Apply([]byte("k1"), rec(50, "newer already"))
	var recs []KeyRecord
	for i := 0; i < 100; i++ {
		recs = append(recs, KeyRecord{Key: []byte(fmt.Sprintf("k%d", i)), Record: rec(10, fmt.Sprint(i))})
	}
	n, err := d.ApplyMany(recs)
	if err != nil || n != 99 {
		t.Fatalf("applied %d: %v", n, err)
	}
	d.Close()
	d, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if s := d.Stats(); s.LiveKeys != 100 {
		t.Fatalf("after reopen: %+v", s)
	}
	if got, _, _ := d.Get([]byte("k1")); string(got.Value) != "newer already" {
		t.Fatalf("k1 = %q", got.Value)
	}
}

// A data directory is opened only in the format this code writes: an
// empty one gets the marker, one with another marker or with data and no
// marker is refused with ERR_IO and a message that says why.
func TestFormatMarker(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string) // with Pebble directly
		wantErr string                         // "" to open
	}{
		{"empty directory", func(*testing.T, string) {}, ""},
		{"this format", func(t *testing.T, dir string) { raw(t, dir, formatKey, []byte(strconv.Itoa(FormatVersion))) }, ""},
		{"format 1, without the ring index", func(t *testing.T, dir string) { raw(t, dir, formatKey, []byte("1")) }, ""},
		{"another format", func(t *testing.T, dir string) { raw(t, dir, formatKey, []byte("7")) }, `format "7"`},
		{"data without a marker", func(t *testing.T, dir string) { raw(t, dir, spaceKey(spaceData, []byte("k")), []byte("old")) }, "no format marker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.prepare(t, dir)
			d, err := Open(Options{Dir: dir})
			if c.wantErr != "" {
				if err == nil {
					d.Close()
					t.Fatal("opened")
				}
				if !errors.Is(err, errcode.IO) || !bytes.Contains([]byte(err.Error()), []byte(c.wantErr)) {
					t.Fatalf("error %v, want ERR_IO and %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Apply([]byte("k"), rec(1, "v")); err != nil {
				t.Fatal(err)
			}
			if n := d.Stats().LiveKeys; n != 1 {
				t.Fatalf("%d keys: the marker is counted", n)
			}
			d.Close()
			// Reopens: the marker is there now.
			d, err = Open(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
		})
	}
}

// raw writes one key into a Pebble store at dir, bypassing Open.
func raw(t *testing.T, dir string, key, value []byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(key, value, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
