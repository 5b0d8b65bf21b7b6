package storage

import (
	"fmt"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

func TestHints(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := d.ApplyHint("127.0.0.1:1", []byte(fmt.Sprint("k", i)), rec(uint64(10+i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	d.ApplyHint("127.0.0.1:12", []byte("other"), rec(1, "x")) // a target whose name extends the first
	if res, _ := d.ApplyHint("127.0.0.1:1", []byte("k0"), rec(5, "older")); res.Applied {
		t.Fatal("older hint replaced a newer one")
	}
	d.ApplyHint("127.0.0.1:1", []byte("k1"), rec(20, "newer"))
	if c := d.HintCounts(); c["127.0.0.1:1"] != 5 || c["127.0.0.1:12"] != 1 {
		t.Fatalf("counts %v", c)
	}
	// Hints are not data.
	if s := d.Stats(); s.LiveKeys != 0 {
		t.Fatalf("hints counted as data: %+v", s)
	}
	if _, found, _ := d.Get([]byte("k0")); found {
		t.Fatal("hint readable as data")
	}
	n := 0
	d.Scan(nil, ScanOptions{Tombstones: true}, func([]byte, kv.Record) bool { n++; return true })
	if n != 0 {
		t.Fatal("hints in a data scan")
	}
	var keys []string
	d.ScanHints("127.0.0.1:1", func(k []byte, r kv.Record) bool {
		keys = append(keys, fmt.Sprintf("%s@%d", k, r.Version.Wall))
		return true
	})
	if fmt.Sprint(keys) != "[k0@10 k1@20 k2@12 k3@13 k4@14]" {
		t.Fatalf("scan hints: %v", keys)
	}
	// Deleting with a stale version keeps the newer hint.
	if ok, _ := d.DeleteHint("127.0.0.1:1", []byte("k1"), v(11)); ok {
		t.Fatal("deleted a hint newer than the one handed over")
	}
	if ok, _ := d.DeleteHint("127.0.0.1:1", []byte("k1"), v(20)); !ok {
		t.Fatal("delete failed")
	}
	d.Close()
	// Hints survive a restart.
	d, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if c := d.HintCounts(); c["127.0.0.1:1"] != 4 || c["127.0.0.1:12"] != 1 {
		t.Fatalf("counts after reopen %v", c)
	}
	if _, err := d.ApplyHint("", []byte("k"), rec(1, "v")); err == nil {
		t.Fatal("empty target accepted")
	}
}

func TestPurgeTombstone(t *testing.T) {
	d := openMem(t)
	d.Apply([]byte("k"), tomb(5))
	d.Apply([]byte("live"), rec(5, "v"))
	if ok, _ := d.PurgeTombstone([]byte("live"), v(5)); ok {
		t.Fatal("purged a live record")
	}
	if ok, _ := d.PurgeTombstone([]byte("k"), v(4)); ok {
		t.Fatal("purged with the wrong version")
	}
	if ok, _ := d.PurgeTombstone([]byte("k"), v(5)); !ok {
		t.Fatal("purge failed")
	}
	if _, found, _ := d.Get([]byte("k")); found {
		t.Fatal("still there")
	}
	if s := d.Stats(); s.Tombstones != 0 || s.LiveKeys != 1 {
		t.Fatalf("stats %+v", s)
	}
}
