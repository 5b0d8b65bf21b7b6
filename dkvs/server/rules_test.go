package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/coord"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/storage"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// TestLimitStatuses: the limits come from package limits, but each
// refusal keeps its status (too large, or a bad request) and message, and
// the malformed is refused before the too large.
func TestLimitStatuses(t *testing.T) {
	s := newServer(t) // keys up to 10 bytes, values up to 100
	v1 := kv.Version{Wall: 1, Writer: 1}
	long := "01234567890"
	cases := []struct {
		name   string
		op     wire.Op
		body   []byte
		status wire.Status
		msg    string
	}{
		{"get empty key", wire.OpGet, wire.GetRequest{}.Append(nil), wire.StatusBadRequest, "empty key"},
		{"get key too large", wire.OpGet, wire.GetRequest{Key: []byte(long)}.Append(nil), wire.StatusTooLarge,
			"key of 11 bytes is above the limit of 10"},
		{"put empty key, value too large", wire.OpPut, put("", 5, strings.Repeat("v", 101)), wire.StatusBadRequest, "empty key"},
		{"put key too large, zero version", wire.OpPut,
			wire.PutRequest{Key: []byte(long), Record: kv.Record{Value: []byte("v")}}.Append(nil), wire.StatusBadRequest, "zero version"},
		{"put value too large", wire.OpPut, put("k", 5, strings.Repeat("v", 101)), wire.StatusTooLarge,
			"value of 101 bytes is above the limit of 100"},
		{"hint key too large", wire.OpHint,
			wire.HintRequest{Target: "127.0.0.1:2", Key: []byte(long), Record: kv.Record{Version: v1}}.Append(nil), wire.StatusTooLarge,
			"key of 11 bytes is above the limit of 10"},
		{"batch value too large", wire.OpPutBatch,
			wire.PutBatch{Records: []wire.KeyRecord{{Key: []byte("k"), Record: kv.Record{Version: v1, Value: make([]byte, 101)}}}}.Append(nil),
			wire.StatusTooLarge, "value of 101 bytes is above the limit of 100"},
		{"batch empty key", wire.OpPutBatch,
			wire.PutBatch{Records: []wire.KeyRecord{{Record: kv.Record{Version: v1}}}}.Append(nil), wire.StatusBadRequest, "empty key"},
		{"tombstone of a long key", wire.OpPut,
			wire.PutRequest{Key: []byte(long), Record: kv.Record{Version: v1, Tombstone: true}}.Append(nil), wire.StatusTooLarge,
			"key of 11 bytes is above the limit of 10"},
	}
	for _, tc := range cases {
		f := call(s, tc.op, tc.body)
		msg, _ := wire.DecodeMessage(f.Body)
		if f.Status() != tc.status || msg != tc.msg {
			t.Errorf("%s: %s %q, want %s %q", tc.name, f.Status(), msg, tc.status, tc.msg)
		}
	}
	// StoreLocal (the pairs on the command line) and the datagram
	// protocol's reads get errors carrying ERR_INVALID_ARGUMENT.
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"StoreLocal empty key", s.StoreLocal(nil, []byte("v")), "empty key: Invalid argument (internal error)"},
		{"StoreLocal long key", s.StoreLocal([]byte(long), nil), "key of 11 bytes is above the limit of 10: Invalid argument (internal error)"},
		{"StoreLocal long value", s.StoreLocal([]byte("k"), make([]byte, 101)),
			"value of 101 bytes is above the limit of 100: Invalid argument (internal error)"},
		{"GetLocal long key", func() error {
			_, _, err := datagramLocal{s}.GetLocal(context.Background(), []byte(long))
			return err
		}(), "key of 11 bytes is above the limit of 10: Invalid argument (internal error)"},
	} {
		if !errors.Is(tc.err, errcode.InvalidArg) || tc.err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

// TestNewCoordDefaults: New completes and checks the replication it
// coordinates with by quorum's rules, and INFO reports what the
// coordinator runs.
func TestNewCoordDefaults(t *testing.T) {
	open := func(cc CoordConfig) (*Server, error) {
		s, err := New(Config{
			Addr:    "127.0.0.1:1",
			Servers: []config.Server{{IP: "127.0.0.1", Port: 1, Count: 1}},
			Storage: storage.Options{InMemory: true},
			Coord:   cc,
		})
		if err == nil {
			t.Cleanup(func() { s.Close() })
		}
		return s, err
	}
	cases := []struct {
		cc   CoordConfig
		want coord.Req
	}{
		{CoordConfig{}, coord.Req{N: 3, R: 2, W: 2}},
		{CoordConfig{N: 1}, coord.Req{N: 1, R: 1, W: 1}},
		{CoordConfig{N: 5, W: 4}, coord.Req{N: 5, R: 2, W: 4}},
		{CoordConfig{N: 3, Level: coord.LevelAll}, coord.Req{N: 3, Level: coord.LevelAll}},
		{CoordConfig{N: 3, Linearizable: true}, coord.Req{N: 3, Linearizable: true}},
	}
	for _, tc := range cases {
		s, err := open(tc.cc)
		if err != nil {
			t.Errorf("%+v: %v", tc.cc, err)
			continue
		}
		if got := s.DefaultRequest(); got != tc.want {
			t.Errorf("%+v: DefaultRequest %+v, want %+v", tc.cc, got, tc.want)
		}
		// One server: N, R and W all follow it down.
		info, err := s.RESPBackend().Info(context.Background())
		if err != nil || info.N != 1 || info.R != 1 || info.W != 1 {
			t.Errorf("%+v: INFO N=%d R=%d W=%d %v", tc.cc, info.N, info.R, info.W, err)
		}
	}
	for _, cc := range []CoordConfig{{N: 255}, {N: 3, R: 4}, {N: 3, W: -1}, {N: 3, R: 1, Linearizable: true}, {Level: 9}} {
		if _, err := open(cc); !errors.Is(err, errcode.InvalidArg) {
			t.Errorf("%+v accepted: %v", cc, err)
		}
	}
}
