package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dkvs/dkvs/dkvs/limits"
)

func TestBatchRoundTrip(t *testing.T) {
	items := []BatchItem{
		{Op: OpGet, Flags: GetVersionOnly, Body: GetRequest{Key: []byte("a")}.Append(AppendEpoch(nil, 7))},
		{Op: OpPut, Flags: FlagEpoch, Body: PutRequest{Key: []byte("b"), Record: recs[0]}.Append(nil)},
		{Op: OpHint, Body: HintRequest{Target: "127.0.0.1:1", Key: []byte("c"), Record: recs[0]}.Append(nil)},
		{Op: OpGet, Body: []byte{}},
	}
	got, err := DecodeBatchRequest(AppendBatchRequest(nil, items))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(items) {
		t.Fatalf("%d items, want %d", len(got), len(items))
	}
	for i := range items {
		if got[i].Op != items[i].Op || got[i].Flags != items[i].Flags || !bytes.Equal(got[i].Body, items[i].Body) {
			t.Errorf("item %d: %+v, want %+v", i, got[i], items[i])
		}
	}
	answers := []BatchItem{{Flags: uint8(StatusOK), Body: []byte("x")}, {Flags: uint8(StatusNotFound)}}
	back, err := DecodeBatchResponse(AppendBatchResponse(nil, answers), 2)
	if err != nil || len(back) != 2 || back[0].Flags != answers[0].Flags || string(back[0].Body) != "x" || back[1].Flags != uint8(StatusNotFound) {
		t.Fatalf("response: %+v, %v", back, err)
	}
}

func TestBatchRefused(t *testing.T) {
	get := BatchItem{Op: OpGet, Body: GetRequest{Key: []byte("a")}.Append(nil)}
	tooMany := make([]BatchItem, limits.MaxBatchItems+1)
	for i := range tooMany {
		tooMany[i] = get
	}
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty batch", AppendBatchRequest(nil, nil)},
		{"too many items", AppendBatchRequest(nil, tooMany)},
		{"scan inside", AppendBatchRequest(nil, []BatchItem{get, {Op: OpScan}})},
		{"batch inside", AppendBatchRequest(nil, []BatchItem{{Op: OpBatch}})},
		{"truncated", AppendBatchRequest(nil, []BatchItem{get})[:3]},
		{"trailing", append(AppendBatchRequest(nil, []BatchItem{get}), 0)},
		{"nothing", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBatchRequest(tc.body); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v, want ErrMalformed", err)
			}
		})
	}
	resp := AppendBatchResponse(nil, []BatchItem{{}, {}})
	if _, err := DecodeBatchResponse(resp, 3); !errors.Is(err, ErrMalformed) {
		t.Fatalf("count mismatch: %v", err)
	}
}
