package antientropy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/ring"
	"github.com/dkvs/dkvs/dkvs/storage"
)

// BenchmarkBuildTrees measures one build of the trees over a store of
// 200,000 keys of 100-byte values, N=3 on a ring of three: what a round,
// and a peer's answer to a tree request, costs in storage reads and
// hashing. Two cases: "memtable", the store as loaded, all of it still in
// Pebble's memtable (where a scan in ring order visits entries inserted
// in key order, in no order in memory); "tables", the store closed and
// opened again, which has Pebble flush the log it replays into tables,
// as most of a large store is.
//
//	go test -run '^$' -bench BuildTrees -benchtime 5x -benchmem ./dkvs/antientropy/
func BenchmarkBuildTrees(b *testing.B) {
	var servers []config.Server
	for i := 0; i < 3; i++ {
		servers = append(servers, config.Server{IP: "127.0.0.1", Port: uint16(3000 + i), Count: 1})
	}
	for _, c := range []struct {
		name   string
		reopen bool
	}{
		{"memtable", false},
		{"tables", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			db, err := storage.Open(storage.Options{Dir: dir, NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			recs := make([]storage.KeyRecord, 0, 1000)
			now := uint64(time.Now().UnixMilli())
			for i := 0; i < 200000; i++ {
				recs = append(recs, storage.KeyRecord{Key: []byte(fmt.Sprintf("bench-%06d", i)), Record: kv.Record{Version: kv.Version{Wall: now, Writer: uint64(i)}, N: 3, Value: make([]byte, 100)}})
				if len(recs) == cap(recs) {
					if _, err := db.ApplyMany(recs); err != nil {
						b.Fatal(err)
					}
					recs = recs[:0]
				}
			}
			if c.reopen {
				if err := db.Close(); err != nil {
					b.Fatal(err)
				}
				if db, err = storage.Open(storage.Options{Dir: dir, NoSync: true}); err != nil {
					b.Fatal(err)
				}
			}
			defer db.Close()
			eng := New(db, nil, Options{Self: servers[0].Addr(), Ring: ring.New(servers), Interval: -1})
			// One build untimed: it warms the block cache, as the rounds of
			// a running server do.
			if _, err := eng.buildTrees(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := eng.buildTrees(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
