package server

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

func newServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{
		Addr:         "127.0.0.1:1",
		Servers:      []config.Server{{IP: "127.0.0.1", Port: 1, Count: 1}},
		Storage:      storage.Options{InMemory: true},
		MaxKeySize:   10,
		MaxValueSize: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func call(s *Server, op wire.Op, body []byte) wire.Frame {
	return s.Handle(context.Background(), wire.Frame{Kind: uint8(op), Body: body})
}

func put(key string, ver uint64, val string) []byte {
	return wire.PutRequest{Key: []byte(key), Record: kv.Record{Version: kv.Version{Wall: ver, Writer: 1}, Value: []byte(val)}}.Append(nil)
}

func TestHandle(t *testing.T) {
	s := newServer(t)
	cases := []struct {
		name   string
		op     wire.Op
		body   []byte
		status wire.Status
	}{
		{"ping", wire.OpPing, nil, wire.StatusOK},
		{"ping with body", wire.OpPing, []byte{1}, wire.StatusBadRequest},
		{"get absent", wire.OpGet, wire.GetRequest{Key: []byte("k")}.Append(nil), wire.StatusNotFound},
		{"put", wire.OpPut, put("k", 5, "v"), wire.StatusOK},
		{"get present", wire.OpGet, wire.GetRequest{Key: []byte("k")}.Append(nil), wire.StatusOK},
		{"put older", wire.OpPut, put("k", 4, "old"), wire.StatusOK},
		{"put empty key", wire.OpPut, put("", 5, "v"), wire.StatusBadRequest},
		{"get empty key", wire.OpGet, wire.GetRequest{}.Append(nil), wire.StatusBadRequest},
		{"put zero version", wire.OpPut, wire.PutRequest{Key: []byte("k"), Record: kv.Record{Value: []byte("v")}}.Append(nil), wire.StatusBadRequest},
		{"put key too large", wire.OpPut, put("01234567890", 5, "v"), wire.StatusTooLarge},
		{"get key too large", wire.OpGet, wire.GetRequest{Key: []byte("01234567890")}.Append(nil), wire.StatusTooLarge},
		{"put value too large", wire.OpPut, put("k", 6, string(make([]byte, 101))), wire.StatusTooLarge},
		{"put malformed", wire.OpPut, []byte{9, 9}, wire.StatusBadRequest},
		{"get malformed", wire.OpGet, []byte{}, wire.StatusBadRequest},
		{"scan malformed", wire.OpScan, []byte{1}, wire.StatusBadRequest},
		{"unknown op", wire.Op(99), nil, wire.StatusBadRequest},
		{"stats", wire.OpStats, nil, wire.StatusOK},
	}
	for _, tc := range cases {
		if got := call(s, tc.op, tc.body); got.Status() != tc.status {
			t.Errorf("%s: %s, want %s", tc.name, got.Status(), tc.status)
		}
	}
	got := call(s, wire.OpGet, wire.GetRequest{Key: []byte("k")}.Append(nil))
	rec, err := wire.DecodeRecord(got.Body)
	if err != nil || string(rec.Value) != "v" || rec.Version.Wall != 5 {
		t.Fatalf("newest kept: %+v %v", rec, err)
	}
	resp := call(s, wire.OpPut, put("k", 4, "old"))
	if v, _ := wire.DecodeVersion(resp.Body); v.Wall != 5 {
		t.Fatalf("put of an older version answers the stored version: %v", v)
	}
	st, err := wire.DecodeStats(call(s, wire.OpStats, nil).Body)
	if err != nil || st.LiveKeys != 1 || st.Engine != "memory" || st.Addr != "127.0.0.1:1" {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func TestPingAdvancesWithObservedVersions(t *testing.T) {
	s := newServer(t)
	call(s, wire.OpPut, put("k", 1<<50, "future"))
	v, _ := wire.DecodeVersion(call(s, wire.OpPing, nil).Body)
	if v.Wall < 1<<50 {
		t.Fatalf("server clock did not ratchet to a seen version: %v", v)
	}
}

func TestScanPaging(t *testing.T) {
	s := newServer(t)
	for i := 0; i < 25; i++ {
		call(s, wire.OpPut, put(fmt.Sprintf("k%02d", i), 1, "v"))
	}
	call(s, wire.OpPut, wire.PutRequest{Key: []byte("k05"), Record: kv.Record{Version: kv.Version{Wall: 2}, Tombstone: true}}.Append(nil))
	var keys []string
	start := []byte(nil)
	pages := 0
	for {
		f := call(s, wire.OpScan, wire.ScanRequest{Start: start, Limit: 10}.Append(nil))
		page, err := wire.DecodeScanResponse(f.Body)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, kr := range page.Records {
			keys = append(keys, string(kr.Key))
		}
		if !page.More {
			break
		}
		start = append([]byte(keys[len(keys)-1]), 0)
	}
	if len(keys) != 24 || pages != 3 || keys[5] != "k06" {
		t.Fatalf("%d keys in %d pages: %v", len(keys), pages, keys)
	}
	f := call(s, wire.OpScan, wire.ScanRequest{Tombstones: true, Limit: 100}.Append(nil))
	page, _ := wire.DecodeScanResponse(f.Body)
	if len(page.Records) != 25 || !page.Records[5].Record.Tombstone {
		t.Fatalf("with tombstones: %d records", len(page.Records))
	}
	// A byte budget smaller than one record still returns one record.
	f = call(s, wire.OpScan, wire.ScanRequest{MaxBytes: 1}.Append(nil))
	page, _ = wire.DecodeScanResponse(f.Body)
	if len(page.Records) != 1 || !page.More {
		t.Fatalf("tiny budget: %d records", len(page.Records))
	}
}

func TestStoreLocal(t *testing.T) {
	s := newServer(t)
	if err := s.StoreLocal([]byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLocal([]byte(""), []byte("b")); err == nil {
		t.Fatal("empty key stored")
	}
	if err := s.StoreLocal([]byte("a"), bytes.Repeat([]byte("x"), 101)); err == nil {
		t.Fatal("oversized value stored")
	}
	rec, found, _ := s.DB().Get([]byte("a"))
	if !found || string(rec.Value) != "b" {
		t.Fatal("not stored")
	}
}

func TestClosedStorageAnswersUnavailable(t *testing.T) {
	s := newServer(t)
	s.Close()
	if got := call(s, wire.OpGet, wire.GetRequest{Key: []byte("k")}.Append(nil)); got.Status() != wire.StatusUnavailable {
		t.Fatalf("%s", got.Status())
	}
}
