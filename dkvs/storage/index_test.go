package storage

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
)

// indexed is what the ring index should say of one record.
type indexed struct {
	pos ring.Hash
	key string
	rec kv.Record // without the value
}

// model lists the records in ring order (position, then key), read from
// the data space.
func model(t *testing.T, d *DB) []indexed {
	t.Helper()
	var out []indexed
	err := d.Scan(nil, ScanOptions{Tombstones: true, NoValues: true}, func(key []byte, rec kv.Record) bool {
		out = append(out, indexed{ring.SHA1(key), string(key), rec})
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := bytes.Compare(out[i].pos[:], out[j].pos[:]); c != 0 {
			return c < 0
		}
		return out[i].key < out[j].key
	})
	return out
}

func checkIndex(t *testing.T, d *DB) {
	t.Helper()
	if err := d.CheckIndex(); err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, d.ScanRange, ring.Hash{}, ring.Hash{}, RangeOptions{Tombstones: true})
	want := model(t, d)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ring index\n%v\nrecords\n%v", got, want)
	}
}

// TestIndexFollowsEveryWrite: after each kind of write, the ring index
// holds exactly one entry per record, with its header, and none for hints.
func TestIndexFollowsEveryWrite(t *testing.T) {
	d := openMem(t)
	k := []byte("k")
	steps := []struct {
		name string
		do   func() error
	}{
		{"apply a new key", func() error { _, err := d.Apply(k, rec(10, "a")); return err }},
		{"apply an older version", func() error { _, err := d.Apply(k, rec(5, "old")); return err }},
		{"apply a newer version", func() error { _, err := d.Apply(k, kv.Record{Version: v(11), N: 3, Value: []byte("b")}); return err }},
		{"apply a large compressed value", func() error {
			_, err := d.Apply([]byte("big"), kv.Record{Version: v(1), Value: bytes.Repeat([]byte("z"), 1<<16)})
			return err
		}},
		{"delete", func() error { _, err := d.Apply(k, tomb(12)); return err }},
		{"apply many", func() error {
			var recs []KeyRecord
			for i := 0; i < 50; i++ {
				recs = append(recs, KeyRecord{Key: []byte(fmt.Sprintf("m%02d", i)), Record: rec(uint64(i+1), "m")})
			}
			recs = append(recs, KeyRecord{Key: k, Record: rec(1, "older than the tombstone")})
			_, err := d.ApplyMany(recs)
			return err
		}},
		{"apply many tombstones", func() error {
			_, err := d.ApplyMany([]KeyRecord{{Key: []byte("m01"), Record: tomb(100)}, {Key: []byte("m02"), Record: tomb(100)}})
			return err
		}},
		{"purge another version", func() error { _, err := d.PurgeTombstone(k, v(99)); return err }},
		{"purge", func() error {
			if ok, err := d.PurgeTombstone(k, v(12)); err != nil || !ok {
				return fmt.Errorf("purged %v: %w", ok, err)
			}
			return nil
		}},
		{"purge a live record", func() error { _, err := d.PurgeTombstone([]byte("m03"), v(4)); return err }},
		{"hint", func() error { _, err := d.ApplyHint("10.0.0.1:1", []byte("h"), rec(1, "h")); return err }},
		{"hint for a key with a record", func() error { _, err := d.ApplyHint("10.0.0.1:1", []byte("m04"), rec(9, "h")); return err }},
		{"hint delivered", func() error { _, err := d.DeleteHint("10.0.0.1:1", []byte("m04"), v(9)); return err }},
		{"apply after a purge", func() error { _, err := d.Apply(k, rec(13, "back")); return err }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		checkIndex(t, d)
	}
	if n := len(model(t, d)); n != 52 {
		t.Fatalf("%d records", n)
	}
}

// TestIndexSurvivesCrash: index and records are written in one batch, so
// whatever a crash keeps of unsynced writes, it keeps of both or neither.
func TestIndexSurvivesCrash(t *testing.T) {
	for seed := int64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 0))
			fs := vfs.NewCrashableMem()
			// Half the runs write unsynced, so that the crash has more to
			// lose.
			noSync := seed%2 == 0
			d, err := Open(Options{FS: fs, NoSync: noSync})
			if err != nil {
				t.Fatal(err)
			}
			tombs := map[string]kv.Version{}
			crashAt := 500 + rng.IntN(1500)
			var crashed *vfs.MemFS
			for i := 0; i < 2000; i++ {
				if i == crashAt {
					crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
				}
				key := fmt.Sprint("key ", rng.IntN(300))
				switch op := rng.IntN(10); {
				case op < 5:
					_, err = d.Apply([]byte(key), kv.Record{Version: v(uint64(i + 1)), N: 3, Value: bytes.Repeat([]byte("v"), rng.IntN(200))})
				case op < 7:
					_, err = d.Apply([]byte(key), tomb(uint64(i+1)))
					tombs[key] = v(uint64(i + 1))
				case op < 8:
					var recs []KeyRecord
					for j := 0; j < 20; j++ {
						recs = append(recs, KeyRecord{Key: []byte(fmt.Sprint("key ", rng.IntN(300))), Record: rec(uint64(i+1), "many")})
					}
					_, err = d.ApplyMany(recs)
				default:
					for k, tv := range tombs {
						_, err = d.PurgeTombstone([]byte(k), tv)
						delete(tombs, k)
						break
					}
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d, err = Open(Options{FS: crashed})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkIndex(t, d)
			if !noSync && len(model(t, d)) == 0 {
				t.Fatal("the crash lost synced writes")
			}
		})
	}
}

// indexValue returns the index value of a record in its stored form enc.
func indexValue(enc []byte) []byte {
	b := make([]byte, indexValueSize)
	putIndexValue(b, enc)
	return b
}

// writeFormat1 lays out a data directory as a dkvs of format 1 wrote it:
// records, a hint, the marker, no ring index; and, when stale is set,
// index entries left by an interrupted build for records since removed.
func writeFormat1(t *testing.T, fs vfs.FS, dir string, keys int, stale bool) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	for i := 0; i < keys; i++ {
		r := kv.Record{Version: v(uint64(i + 1)), N: 3, Value: []byte(fmt.Sprint("value ", i))}
		if i%10 == 0 {
			r = kv.Record{Version: v(uint64(i + 1)), N: 3, Tombstone: true}
		}
		b.Set(spaceKey(spaceData, []byte(fmt.Sprint("key ", i))), encodeRecord(r, DefaultCompressAbove), nil)
	}
	b.Set(hintKey("10.0.0.1:1", []byte("hinted")), encodeRecord(rec(1, "h"), 0), nil)
	b.Set(formatKey, []byte("1"), nil)
	if stale {
		gone := []byte("removed since")
		b.Set(indexKey(nil, ring.SHA1(gone), gone), indexValue(encodeRecord(rec(1, "x"), 0)), nil)
	}
	if err := db.Apply(b, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIndexBuiltForFormat1: a data directory of format 1 opens; its
// index is built once, in batches, and logged; the marker moves on.
func TestIndexBuiltForFormat1(t *testing.T) {
	defer func(b int) { indexBuildBatch = b }(indexBuildBatch)
	for _, c := range []struct {
		name  string
		keys  int
		stale bool
	}{
		{"empty of records", 0, false},
		{"records", 3000, false},
		{"more records than one build batch holds", 3000, false},
		{"entries left by an interrupted build", 3000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			indexBuildBatch = 4 << 20
			if strings.HasPrefix(c.name, "more records") {
				indexBuildBatch = 4 << 10
			}
			fs := vfs.NewMem()
			writeFormat1(t, fs, "data", c.keys, c.stale)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			d, err := Open(Options{FS: fs, Dir: "data", Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "built the ring index") || !strings.Contains(logs.String(), fmt.Sprintf("keys=%d ", c.keys)) {
				t.Fatalf("log: %s", logs.String())
			}
			checkIndex(t, d)
			if s := d.Stats(); s.LiveKeys+s.Tombstones != int64(c.keys) {
				t.Fatalf("stats %+v for %d keys", s, c.keys)
			}
			if got := d.HintCounts()["10.0.0.1:1"]; got != 1 {
				t.Fatalf("%d hints", got)
			}
			v, closer, err := d.db.Get(formatKey)
			if err != nil || string(v) != fmt.Sprint(FormatVersion) {
				t.Fatalf("marker %q: %v", v, err)
			}
			closer.Close()
			d.Close()
			// Built once: the next open finds it.
			logs.Reset()
			d, err = Open(Options{FS: fs, Dir: "data", Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if strings.Contains(logs.String(), "ring index") {
				t.Fatalf("built again: %s", logs.String())
			}
			checkIndex(t, d)
		})
	}
}
