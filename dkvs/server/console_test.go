package server

import (
	"context"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/console"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// The web console reads a server through console.Source.
var _ console.Source = (*Server)(nil)

func TestConsoleSource(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	if s.Addr() != "127.0.0.1:1" || len(s.Ring().Nodes()) != 1 {
		t.Fatalf("addr %s, %d nodes", s.Addr(), len(s.Ring().Nodes()))
	}
	if _, found, err := s.ReplicaVersion(ctx, s.Addr(), []byte("k")); err != nil || found {
		t.Fatalf("absent key: found %v, %v", found, err)
	}
	if f := call(s, wire.OpPut, put("k", 5, "value")); f.Status() != wire.StatusOK {
		t.Fatalf("put: %s", f.Status())
	}
	rec, found, err := s.ReplicaVersion(ctx, s.Addr(), []byte("k"))
	if err != nil || !found || rec.Version.Wall != 5 || len(rec.Value) != 0 || rec.Tombstone {
		t.Fatalf("version of k: %+v, %v, %v", rec, found, err)
	}
	if _, _, err := s.ReplicaVersion(ctx, s.Addr(), []byte("a key too long")); err == nil {
		t.Fatal("a key over the limit was read")
	}
	st, err := s.PeerStats(ctx, s.Addr())
	if err != nil || st.Addr != s.Addr() || st.LiveKeys != 1 || st.Traffic != nil {
		t.Fatalf("own stats: %+v, %v", st, err)
	}
	// A server that is not there fails at once, not at the deadline.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := s.PeerStats(cctx, "127.0.0.1:1"+"0"); err == nil {
		t.Fatal("stats of a server that is not there")
	}
	if _, _, err := s.ReplicaVersion(cctx, "127.0.0.1:10", []byte("k")); err == nil {
		t.Fatal("a key read on a server that is not there")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("refused requests took %v", took)
	}
}

func TestStatsTraffic(t *testing.T) {
	s, err := New(Config{
		Addr:    "127.0.0.1:1",
		Storage: storage.Options{InMemory: true},
		Traffic: func() wire.Traffic { return wire.Traffic{Requests: 7} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Traffic == nil || st.Traffic.Requests != 7 {
		t.Fatalf("traffic %+v", st.Traffic)
	}
}
