package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

func TestFrameRoundTrip(t *testing.T) {
	frames := []Frame{
		{Kind: uint8(OpPing), ID: 1, Body: []byte{}},
		{Kind: uint8(OpGet), Flags: 3, ID: 1<<64 - 1, Body: []byte("hello")},
		{Kind: uint8(OpPut) | RespBit, Flags: uint8(StatusTooLarge), ID: 42, Body: bytes.Repeat([]byte{0}, 70000)},
	}
	var buf []byte
	for _, f := range frames {
		buf = AppendFrame(buf, f)
	}
	r := bufio.NewReader(bytes.NewReader(buf))
	for _, want := range frames {
		got, err := ReadFrame(r, DefaultMaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got.ID, want.ID)
		}
	}
	if _, err := ReadFrame(r, DefaultMaxFrame); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
	if frames[2].Op() != OpPut || !frames[2].IsResponse() || frames[2].Status() != StatusTooLarge {
		t.Fatal("accessors")
	}
}

func TestFrameErrors(t *testing.T) {
	full := AppendFrame(nil, Frame{Kind: uint8(OpGet), ID: 9, Body: []byte("abcdef")})
	cases := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"truncated header", full[:5], DefaultMaxFrame, io.ErrUnexpectedEOF},
		{"truncated body", full[:len(full)-2], DefaultMaxFrame, io.ErrUnexpectedEOF},
		{"empty", nil, DefaultMaxFrame, io.EOF},
		{"length below header", []byte{0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1}, DefaultMaxFrame, ErrFrameShort},
		{"4 GiB", []byte{0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 7}, DefaultMaxFrame, ErrFrameTooLarge},
		{"over a small limit", full, len(full) - 1, ErrFrameTooLarge},
	}
	for _, tc := range cases {
		f, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)), tc.max)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.want == ErrFrameTooLarge && tc.name == "4 GiB" && f.ID != 7 {
			t.Errorf("%s: header id %d not returned", tc.name, f.ID)
		}
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(full)), len(full)); err != nil {
		t.Errorf("frame exactly at the limit: %v", err)
	}
}

var recs = []kv.Record{
	{},
	{Version: kv.Version{Wall: 1, Logical: 2, Writer: 3}, Value: []byte("v")},
	{Version: kv.Version{Wall: 1 << 50, Logical: 1 << 31, Writer: 1 << 63}, Value: []byte("with\x00nul\x00")},
	{Version: kv.Version{Wall: 5}, Tombstone: true},
	{Version: kv.Version{Wall: 5}, Value: bytes.Repeat([]byte("x"), 300)},
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, rec := range recs {
		for _, key := range [][]byte{{}, []byte("k"), bytes.Repeat([]byte{0xff}, 200)} {
			g, err := DecodeGetRequest(GetRequest{Key: key}.Append(nil))
			if err != nil || !bytes.Equal(g.Key, key) {
				t.Fatalf("get: %v %v", g, err)
			}
			pr := PutRequest{Key: key, Record: rec}
			enc := pr.Append(nil)
			if len(enc) != pr.Size() {
				t.Fatalf("Size %d, encoded %d", pr.Size(), len(enc))
			}
			p, err := DecodePutRequest(enc)
			if err != nil || !bytes.Equal(p.Key, key) || !sameRecord(p.Record, rec) {
				t.Fatalf("put: %+v %v", p, err)
			}
		}
		got, err := DecodeRecord(AppendRecord(nil, rec))
		if err != nil || !sameRecord(got, rec) {
			t.Fatalf("record: %+v %v", got, err)
		}
		v, err := DecodeVersion(AppendVersion(nil, rec.Version))
		if err != nil || v != rec.Version {
			t.Fatalf("version: %v %v", v, err)
		}
	}
	sr := ScanRequest{Start: []byte("m"), Limit: 100, MaxBytes: 1 << 20, Tombstones: true}
	gsr, err := DecodeScanRequest(sr.Append(nil))
	if err != nil || !reflect.DeepEqual(gsr, sr) {
		t.Fatalf("scan request: %+v %v", gsr, err)
	}
	resp := ScanResponse{More: true}
	for i, r := range recs {
		resp.Records = append(resp.Records, KeyRecord{Key: []byte{byte(i)}, Record: r})
	}
	gr, err := DecodeScanResponse(resp.Append(nil))
	if err != nil || len(gr.Records) != len(recs) || !gr.More {
		t.Fatalf("scan response: %+v %v", gr, err)
	}
	for i := range recs {
		if !sameRecord(gr.Records[i].Record, recs[i]) || gr.Records[i].Key[0] != byte(i) {
			t.Fatalf("scan record %d", i)
		}
	}
	empty, err := DecodeScanResponse(ScanResponse{}.Append(nil))
	if err != nil || len(empty.Records) != 0 || empty.More {
		t.Fatalf("empty scan: %+v %v", empty, err)
	}
	st := Stats{Addr: "127.0.0.1:1", LiveKeys: 3, Engine: "pebble", Synced: true,
		Peers: []PeerStats{{Addr: "127.0.0.1:2", Up: true, AELastMS: 5}}}
	gst, err := DecodeStats(AppendStats(nil, st))
	if err != nil || !reflect.DeepEqual(gst, st) {
		t.Fatalf("stats: %+v %v", gst, err)
	}
	msg, err := DecodeMessage(AppendMessage(nil, "value too large"))
	if err != nil || msg != "value too large" {
		t.Fatalf("message: %q %v", msg, err)
	}
}

func sameRecord(a, b kv.Record) bool {
	return a.Version == b.Version && a.Tombstone == b.Tombstone && bytes.Equal(a.Value, b.Value)
}

func TestMalformed(t *testing.T) {
	put := PutRequest{Key: []byte("k"), Record: recs[1]}.Append(nil)
	tomb := AppendRecord(nil, kv.Record{Version: kv.Version{Wall: 1}, Tombstone: true})
	tombWithValue := append(append([]byte{}, tomb[:21]...), 1, 'x')
	badFlags := append([]byte{}, AppendRecord(nil, recs[1])...)
	badFlags[20] = 0x80
	cases := []struct {
		name string
		fn   func() error
	}{
		{"get empty body", func() error { _, err := DecodeGetRequest(nil); return err }},
		{"get long length", func() error { _, err := DecodeGetRequest([]byte{5, 'a'}); return err }},
		{"get trailing", func() error { _, err := DecodeGetRequest([]byte{1, 'a', 'b'}); return err }},
		{"get huge varint", func() error {
			_, err := DecodeGetRequest([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
			return err
		}},
		{"put truncated", func() error { _, err := DecodePutRequest(put[:len(put)-1]); return err }},
		{"put trailing", func() error { _, err := DecodePutRequest(append(put, 0)); return err }},
		{"put no record", func() error { _, err := DecodePutRequest([]byte{1, 'k'}); return err }},
		{"tombstone with value", func() error { _, err := DecodeRecord(tombWithValue); return err }},
		{"unknown record flags", func() error { _, err := DecodeRecord(badFlags); return err }},
		{"scan short", func() error { _, err := DecodeScanRequest([]byte{0, 0, 0}); return err }},
		{"scan flags", func() error { _, err := DecodeScanRequest(append(ScanRequest{}.Append(nil)[:9], 2)); return err }},
		{"scan response lying count", func() error { _, err := DecodeScanResponse([]byte{0xff, 0xff, 0x03, 0}); return err }},
		{"scan response bad more", func() error { _, err := DecodeScanResponse([]byte{0, 2}); return err }},
		{"version short", func() error { _, err := DecodeVersion(make([]byte, 19)); return err }},
		{"stats not json", func() error { _, err := DecodeStats([]byte("{")); return err }},
		{"message truncated", func() error { _, err := DecodeMessage([]byte{3, 'a'}); return err }},
	}
	for _, tc := range cases {
		if err := tc.fn(); !errors.Is(err, ErrMalformed) && !errors.Is(err, kv.ErrShortVersion) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestNames(t *testing.T) {
	if OpGet.String() != "get" || Op(99).String() != "op(99)" || Op(99).Known() || !OpScan.Known() {
		t.Fatal("op names")
	}
	if !strings.Contains(StatusTooLarge.String(), "large") || Status(77).String() != "status(77)" {
		t.Fatal("status names")
	}
}

// TestProtocolDocExample keeps the example of docs/protocol.md true.
func TestProtocolDocExample(t *testing.T) {
	req := AppendFrame(nil, Frame{Kind: uint8(OpGet), ID: 7, Body: GetRequest{Key: []byte("abc")}.Append(nil)})
	wantReq := []byte{0, 0, 0, 0x0e, 2, 0, 0, 0, 0, 0, 0, 0, 0, 7, 3, 'a', 'b', 'c'}
	if !bytes.Equal(req, wantReq) {
		t.Fatalf("request % x", req)
	}
	rec := kv.Record{Version: kv.Version{Wall: 0x0000019a00000001, Writer: 0x0102030405060708}, N: 3, Value: []byte("def")}
	resp := AppendFrame(nil, Frame{Kind: uint8(OpGet) | RespBit, ID: 7, Body: AppendRecord(nil, rec)})
	wantResp := []byte{0, 0, 0, 0x24, 0x82, 0, 0, 0, 0, 0, 0, 0, 0, 7,
		0, 0, 1, 0x9a, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
		0, 3, 3, 'd', 'e', 'f'}
	if !bytes.Equal(resp, wantResp) {
		t.Fatalf("response % x", resp)
	}
}

// TestPingAndRefusal: a ping answer is 20 bytes when the storage is ok (as
// before storage states existed) and 21 otherwise; refusals carry their
// state; malformed bodies are refused.
func TestPingAndRefusal(t *testing.T) {
	v := kv.Version{Wall: 5, Logical: 1, Writer: 9}
	for _, st := range []StorageState{StorageOK, StorageFull, StorageSlow, StorageFailed} {
		b := AppendPing(nil, v, st)
		if want := 20 + map[bool]int{true: 0, false: 1}[st == StorageOK]; len(b) != want {
			t.Fatalf("%s: %d bytes", st, len(b))
		}
		gv, gst, err := DecodePing(b)
		if err != nil || gv != v || gst != st {
			t.Fatalf("%s: %v %v %v", st, gv, gst, err)
		}
		if old, err := DecodeVersion(b[:20]); err != nil || old != v {
			t.Fatalf("%s: the first 20 bytes are the version: %v", st, err)
		}
		if p, ok := ParseStorageState(st.String()); !ok || p != st {
			t.Fatalf("%s: parse %v %v", st, p, ok)
		}
		if st == StorageOK {
			continue
		}
		gst, msg, err := DecodeRefusal(AppendRefusal(nil, st, "why"))
		if err != nil || gst != st || msg != "why" {
			t.Fatalf("%s: refusal %v %q %v", st, gst, msg, err)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 19), append(make([]byte, 20), 0), append(make([]byte, 20), 7), make([]byte, 22)} {
		if _, _, err := DecodePing(bad); err == nil {
			t.Errorf("ping body %x accepted", bad)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0}, {9, 0}, {1}, {1, 1}} {
		if _, _, err := DecodeRefusal(bad); err == nil {
			t.Errorf("refusal body %x accepted", bad)
		}
	}
	for _, c := range []struct {
		st          StorageState
		put, delete bool
	}{{StorageOK, true, true}, {StorageFull, false, true}, {StorageSlow, false, false}, {StorageFailed, false, false}} {
		if c.st.Writable(false) != c.put || c.st.Writable(true) != c.delete {
			t.Errorf("%s: writable %v %v", c.st, c.st.Writable(false), c.st.Writable(true))
		}
	}
}

func TestAuthRequest(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), MaxAuthField+1))
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"user and token", AuthRequest{User: "alice", Token: "t0k"}.Append(nil), true},
		{"empty token", AuthRequest{User: "alice"}.Append(nil), true},
		{"empty user", AuthRequest{Token: "t"}.Append(nil), false},
		{"long user", AuthRequest{User: long, Token: "t"}.Append(nil), false},
		{"long token", AuthRequest{User: "a", Token: long}.Append(nil), false},
		{"trailing byte", append(AuthRequest{User: "a", Token: "t"}.Append(nil), 0), false},
		{"no token", AppendBytes(nil, []byte("a")), false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeAuthRequest(tc.body)
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeAuthRequest = %+v, %v; want ok %v", m, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestRequestKey(t *testing.T) {
	rec := kv.Record{Version: kv.Version{Wall: 1}, Value: []byte("v")}
	tests := []struct {
		name string
		f    Frame
		key  string
		ok   bool
	}{
		{"get", Frame{Kind: uint8(OpGet), Body: GetRequest{Key: []byte("g")}.Append(nil)}, "g", true},
		{"put", Frame{Kind: uint8(OpPut), Body: PutRequest{Key: []byte("p"), Record: rec}.Append(nil)}, "p", true},
		{"hint", Frame{Kind: uint8(OpHint), Body: HintRequest{Target: "1.2.3.4:5", Key: []byte("h"), Record: rec}.Append(nil)}, "h", true},
		{"coord-put", Frame{Kind: uint8(OpCoordPut), Body: CoordRequest{Key: []byte("c"), Value: []byte("v")}.Append(nil, OpCoordPut)}, "c", true},
		{"coord-delete", Frame{Kind: uint8(OpCoordDelete), Body: CoordRequest{Key: []byte("d")}.Append(nil, OpCoordDelete)}, "d", true},
		{"bad get", Frame{Kind: uint8(OpGet), Body: []byte{5}}, "", false},
		{"scan", Frame{Kind: uint8(OpScan)}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, ok := RequestKey(tc.f)
			if ok != tc.ok || (ok && string(key) != tc.key) {
				t.Fatalf("RequestKey = %q, %v; want %q, %v", key, ok, tc.key, tc.ok)
			}
		})
	}
}
