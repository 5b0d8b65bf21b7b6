package wire

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

func TestEpochPrefix(t *testing.T) {
	f := Frame{Kind: uint8(OpGet), Flags: GetVersionOnly | FlagEpoch, Body: GetRequest{Key: []byte("k")}.Append(AppendEpoch(nil, 42))}
	epoch, g, err := SplitEpoch(f)
	if err != nil || epoch != 42 || g.Flags != GetVersionOnly {
		t.Fatalf("split: %d %+v %v", epoch, g, err)
	}
	if m, err := DecodeGetRequest(g.Body); err != nil || string(m.Key) != "k" {
		t.Fatalf("body after the epoch: %q %v", m.Key, err)
	}
	if epoch, g, err := SplitEpoch(Frame{Kind: uint8(OpGet), Body: []byte{1}}); err != nil || epoch != 0 || len(g.Body) != 1 {
		t.Fatal("a frame without an epoch must pass as it is")
	}
	if _, _, err := SplitEpoch(Frame{Kind: uint8(OpGet), Flags: FlagEpoch, Body: []byte{1, 2}}); err == nil {
		t.Fatal("a truncated epoch was accepted")
	}
}

func TestStreamMessages(t *testing.T) {
	req := StreamRequest{Move: 7, Dest: "127.0.0.1:7010", Pass: StreamAll, Skip: []string{"127.0.0.1:7002"}, After: []byte("k9"), MaxBytes: 1 << 20}
	got, err := DecodeStreamRequest(req.Append(nil))
	if err != nil || !reflect.DeepEqual(got, req) {
		t.Fatalf("request: %+v %v", got, err)
	}
	resp := StreamResponse{More: true, Next: []byte("k2"), Records: []KeyRecord{
		{Key: []byte("k1"), Record: kv.Record{Version: kv.Version{Wall: 3, Writer: 1}, N: 3, Value: bytes.Repeat([]byte("v"), 3000)}},
		{Key: []byte("k2"), Record: kv.Record{Version: kv.Version{Wall: 4, Writer: 1}, N: 3, Tombstone: true}},
	}}
	enc := resp.Append(nil)
	if len(enc) > 1000 {
		t.Fatalf("a compressible page is %d bytes", len(enc))
	}
	back, err := DecodeStreamResponse(enc)
	if err != nil || !back.More || string(back.Next) != "k2" || len(back.Records) != 2 || !back.Records[1].Record.Tombstone ||
		!bytes.Equal(back.Records[0].Record.Value, resp.Records[0].Record.Value) {
		t.Fatalf("response: %+v %v", back, err)
	}
	for name, body := range map[string][]byte{
		"short":        {1, 2},
		"bad pass":     StreamRequest{Move: 1, Dest: "a", Pass: 9}.Append(nil),
		"trailing":     append(req.Append(nil), 0),
		"huge skip":    append(append(append(make([]byte, 8), 1, 'a', 0), 0xff, 0xff, 0x7f), 0, 0, 0, 0, 0),
		"bad response": {7, 0},
	} {
		if name == "bad response" {
			if _, err := DecodeStreamResponse(body); err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		if _, err := DecodeStreamRequest(body); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzStreamRequest(f *testing.F) {
	f.Add(StreamRequest{Move: 7, Dest: "127.0.0.1:7010", Skip: []string{"x"}, After: []byte("k"), MaxBytes: 9}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeStreamRequest(data)
		if err != nil {
			return
		}
		again, err := DecodeStreamRequest(m.Append(nil))
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip: %+v %+v %v", m, again, err)
		}
	})
}

func FuzzStreamResponse(f *testing.F) {
	f.Add(StreamResponse{More: true, Next: []byte("n"), Records: []KeyRecord{{Key: []byte("k"), Record: kv.Record{Version: kv.Version{Wall: 1}, N: 3, Value: []byte("v")}}}}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeStreamResponse(data)
		if err != nil {
			return
		}
		again, err := DecodeStreamResponse(m.Append(nil))
		if err != nil || len(again.Records) != len(m.Records) || again.More != m.More || !bytes.Equal(again.Next, m.Next) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
