package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

func TestCoordRequestRoundTrip(t *testing.T) {
	cases := []struct {
		op Op
		m  CoordRequest
	}{
		{OpCoordGet, CoordRequest{Params: CoordParams{N: 3, Q: 2, TimeoutMS: 500}, Key: []byte("k")}},
		{OpCoordGet, CoordRequest{Params: CoordParams{Flags: CoordDefaults}, Key: []byte("k\x00")}},
		{OpCoordPut, CoordRequest{Params: CoordParams{Flags: CoordLinearizable, Level: CoordLevelQuorum, N: 5}, Key: []byte("k"), Value: []byte{}}},
		{OpCoordPut, CoordRequest{Params: CoordParams{N: 1 << 40, Q: 1 << 63, TimeoutMS: 1<<64 - 1}, Key: []byte("k"), Value: bytes.Repeat([]byte{0}, 300)}},
		{OpCoordDelete, CoordRequest{Params: CoordParams{Level: CoordLevelAll, N: 3}, Key: []byte("gone")}},
	}
	for _, tc := range cases {
		body := tc.m.Append(nil, tc.op)
		got, err := DecodeCoordRequest(tc.op, body)
		if err != nil {
			t.Fatalf("%s %+v: %v", tc.op, tc.m, err)
		}
		if !reflect.DeepEqual(got, tc.m) {
			t.Fatalf("%s: got %+v, want %+v", tc.op, got, tc.m)
		}
	}
}

func TestCoordRequestMalformed(t *testing.T) {
	good := CoordRequest{Params: CoordParams{N: 3, Q: 2}, Key: []byte("k"), Value: []byte("v")}
	put := good.Append(nil, OpCoordPut)
	cases := []struct {
		name string
		op   Op
		body []byte
	}{
		{"empty", OpCoordGet, nil},
		{"flags only", OpCoordGet, []byte{0}},
		{"unknown flag", OpCoordGet, append([]byte{0x04}, good.Append(nil, OpCoordGet)[1:]...)},
		{"unknown level", OpCoordGet, append([]byte{0, 4}, good.Append(nil, OpCoordGet)[2:]...)},
		{"non-minimal varint", OpCoordGet, []byte{0, 0, 0x83, 0x00, 2, 0, 1, 'k'}},
		{"varint past 64 bits", OpCoordGet, []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2, 0, 1, 'k'}},
		{"no key", OpCoordGet, []byte{0, 0, 3, 2, 0}},
		{"key longer than body", OpCoordGet, []byte{0, 0, 3, 2, 0, 5, 'k'}},
		{"put without value", OpCoordPut, good.Append(nil, OpCoordGet)},
		{"get with a value", OpCoordGet, put},
		{"trailing byte", OpCoordDelete, append(good.Append(nil, OpCoordDelete), 0)},
		{"not a coord op", OpGet, good.Append(nil, OpCoordGet)},
	}
	for _, tc := range cases {
		if _, err := DecodeCoordRequest(tc.op, tc.body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
}

func TestFailureRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		code uint8
		msg  string
	}{{0x84, "quorum not reached"}, {0x87, ""}, {0, "x"}} {
		code, msg, err := DecodeFailure(AppendFailure(nil, tc.code, tc.msg))
		if err != nil || code != tc.code || msg != tc.msg {
			t.Fatalf("%+v: %d %q %v", tc, code, msg, err)
		}
	}
	for _, bad := range [][]byte{nil, {0x84}, {0x84, 3, 'a'}, {0x84, 0, 0}} {
		if _, _, err := DecodeFailure(bad); err == nil {
			t.Errorf("% x accepted", bad)
		}
	}
	if OpCoordPut.String() != "coord-put" || StatusUnknown.String() != "outcome unknown" || !OpCoordDelete.Known() || OpPut.IsCoord() {
		t.Fatal("names")
	}
}

// TestProtocolDocCoordExample keeps the coord-put example of
// docs/protocol.md true.
func TestProtocolDocCoordExample(t *testing.T) {
	m := CoordRequest{Params: CoordParams{N: 3, Q: 2, TimeoutMS: 500}, Key: []byte("a"), Value: []byte("b")}
	req := AppendFrame(nil, Frame{Kind: uint8(OpCoordPut), ID: 9, Body: m.Append(nil, OpCoordPut)})
	wantReq := []byte{0, 0, 0, 0x14, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 9,
		0, 0, 3, 2, 0xf4, 0x03, 1, 'a', 1, 'b'}
	if !bytes.Equal(req, wantReq) {
		t.Fatalf("request % x", req)
	}
	v := kv.Version{Wall: 0x0000019a00000001, Writer: 0x0102030405060708}
	resp := AppendFrame(nil, Frame{Kind: uint8(OpCoordPut) | RespBit, ID: 9, Body: AppendVersion(nil, v)})
	wantResp := []byte{0, 0, 0, 0x1e, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 9,
		0, 0, 1, 0x9a, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}
	if !bytes.Equal(resp, wantResp) {
		t.Fatalf("response % x", resp)
	}
	fail := AppendFrame(nil, Frame{Kind: uint8(OpCoordPut) | RespBit, Flags: uint8(StatusFailed), ID: 9, Body: AppendFailure(nil, 0x84, "no quorum")})
	wantFail := []byte{0, 0, 0, 0x15, 0x8b, 6, 0, 0, 0, 0, 0, 0, 0, 9,
		0x84, 9, 'n', 'o', ' ', 'q', 'u', 'o', 'r', 'u', 'm'}
	if !bytes.Equal(fail, wantFail) {
		t.Fatalf("failure % x", fail)
	}
}

func FuzzCoordRequest(f *testing.F) {
	f.Add(uint8(OpCoordGet), CoordRequest{Params: CoordParams{N: 3, Q: 2, TimeoutMS: 500}, Key: []byte("k")}.Append(nil, OpCoordGet))
	f.Add(uint8(OpCoordPut), CoordRequest{Params: CoordParams{Flags: CoordLinearizable, N: 3}, Key: []byte("k"), Value: []byte("v")}.Append(nil, OpCoordPut))
	f.Add(uint8(OpCoordDelete), CoordRequest{Params: CoordParams{Flags: CoordDefaults}, Key: []byte("k")}.Append(nil, OpCoordDelete))
	f.Fuzz(func(t *testing.T, op uint8, data []byte) {
		m, err := DecodeCoordRequest(Op(op), data)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Append(nil, Op(op)), data) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzFailure(f *testing.F) {
	f.Add(AppendFailure(nil, 0x84, "no quorum"))
	f.Fuzz(func(t *testing.T, data []byte) {
		code, msg, err := DecodeFailure(data)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendFailure(nil, code, msg), data) {
			t.Fatal("not canonical")
		}
	})
}
