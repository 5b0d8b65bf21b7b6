package server

import (
	"bytes"
	"context"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
	"github.com/dkvs/dkvs/dkvs/session"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// TestHandleBatch: each item of a batch is answered as the lone request
// would be, in order, whatever its neighbours' fate.
func TestHandleBatch(t *testing.T) {
	s := newServer(t)
	get := func(key string) []byte { return wire.GetRequest{Key: []byte(key)}.Append(nil) }
	items := []struct {
		op     wire.Op
		flags  uint8
		body   []byte
		status wire.Status
	}{
		{wire.OpPut, 0, put("a", 5, "va"), wire.StatusOK},
		{wire.OpGet, 0, get("absent"), wire.StatusNotFound},
		{wire.OpPut, 0, put("b", 5, "vb"), wire.StatusOK},
		{wire.OpPut, 0, put("c", 5, string(make([]byte, 101))), wire.StatusTooLarge},
		{wire.OpPut, 0, put("", 5, "v"), wire.StatusBadRequest},
		{wire.OpGet, 0x80, get("a"), wire.StatusBadRequest},
		{wire.OpGet, wire.FlagEpoch, []byte{1}, wire.StatusBadRequest},
		{wire.OpHint, 0, wire.HintRequest{Target: "127.0.0.1:2", Key: []byte("h"), Record: kv.Record{Version: kv.Version{Wall: 1, Writer: 1}}}.Append(nil), wire.StatusOK},
		{wire.OpPut, 0, put("a", 4, "older"), wire.StatusOK},
		{wire.OpPut, wire.FlagEpoch, put("e", 5, "ve"), wire.StatusOK},
	}
	items[len(items)-1].body = append(wire.AppendEpoch(nil, s.coord.View().Epoch()), items[len(items)-1].body...)
	var req []wire.BatchItem
	for _, it := range items {
		req = append(req, wire.BatchItem{Op: it.op, Flags: it.flags, Body: it.body})
	}
	resp := call(s, wire.OpBatch, wire.AppendBatchRequest(nil, req))
	if resp.Status() != wire.StatusOK {
		t.Fatalf("batch: %s", resp.Status())
	}
	answers, err := wire.DecodeBatchResponse(resp.Body, len(items))
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if got := wire.Status(answers[i].Flags); got != it.status {
			t.Errorf("item %d (%s): %s, want %s", i, it.op, got, it.status)
		}
	}
	// The older put answers the version stored, as a lone put does.
	if v, err := wire.DecodeVersion(answers[8].Body); err != nil || v.Wall != 5 {
		t.Errorf("older put answered %v %v, want the stored version", v, err)
	}
	for key, want := range map[string]string{"a": "va", "b": "vb", "e": "ve"} {
		rec, found, err := s.DB().Get([]byte(key))
		if err != nil || !found || !bytes.Equal(rec.Value, []byte(want)) {
			t.Errorf("%s: %q %v %v", key, rec.Value, found, err)
		}
	}
	for _, body := range [][]byte{nil, {0}, wire.AppendBatchRequest(nil, []wire.BatchItem{{Op: wire.OpScan}})} {
		if f := call(s, wire.OpBatch, body); f.Status() != wire.StatusBadRequest {
			t.Errorf("batch %x: %s, want bad request", body, f.Status())
		}
	}
}

// TestBatchRights: a user's batch is checked item by item, as the lone
// requests would be: the items on keys it may write are stored, the
// others refused, in the same batch; an anonymous connection gets
// nothing.
func TestBatchRights(t *testing.T) {
	s := newSecureServer(t, userLine("writer", "read,write", "app/", "wtok"))
	batch := wire.AppendBatchRequest(nil, []wire.BatchItem{
		{Op: wire.OpPut, Body: put("app/1", 5, "v")},
		{Op: wire.OpPut, Body: put("etc/1", 5, "v")},
		{Op: wire.OpGet, Body: wire.GetRequest{Key: []byte("etc/2")}.Append(nil)},
		{Op: wire.OpGet, Body: wire.GetRequest{Key: []byte("app/1")}.Append(nil)},
	})
	for _, tc := range []struct {
		name  string
		user  bool
		whole wire.Status
		items []wire.Status
	}{
		{"anonymous", false, wire.StatusAuthRequired, nil},
		// The get of app/1 is allowed, and answered from what was stored
		// before the batch's puts.
		{"writer", true, wire.StatusOK, []wire.Status{wire.StatusOK, wire.StatusDenied, wire.StatusDenied, wire.StatusNotFound}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := session.NewContext(context.Background(), session.New("10.1.1.1:1000"))
			if tc.user {
				if f := s.Handle(ctx, wire.Frame{Kind: uint8(wire.OpAuth), Body: wire.AuthRequest{User: "writer", Token: "wtok"}.Append(nil)}); f.Status() != wire.StatusOK {
					t.Fatalf("auth: %s", f.Status())
				}
			}
			f := s.Handle(ctx, wire.Frame{Kind: uint8(wire.OpBatch), Body: batch})
			if f.Status() != tc.whole {
				t.Fatalf("batch: %s, want %s", f.Status(), tc.whole)
			}
			if tc.items == nil {
				return
			}
			answers, err := wire.DecodeBatchResponse(f.Body, len(tc.items))
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.items {
				if got := wire.Status(answers[i].Flags); got != want {
					t.Errorf("item %d: %s, want %s", i, got, want)
				}
			}
			if _, found, _ := s.db.Get([]byte("etc/1")); found {
				t.Error("a refused item was stored")
			}
		})
	}
}
