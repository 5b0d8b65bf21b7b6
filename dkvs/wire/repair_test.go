package wire

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/klauspost/compress/s2"
	"reflect"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

func sampleRecords(n int, valueSize int) []KeyRecord {
	var out []KeyRecord
	for i := 0; i < n; i++ {
		out = append(out, KeyRecord{
			Key:    []byte(fmt.Sprintf("key-%d", i)),
			Record: kv.Record{Version: kv.Version{Wall: uint64(i + 1), Writer: 9}, N: 3, Value: bytes.Repeat([]byte{byte('a' + i%26)}, valueSize)},
		})
	}
	out = append(out, KeyRecord{Key: []byte("tomb"), Record: kv.Record{Version: kv.Version{Wall: 7}, Tombstone: true, N: 2}})
	return out
}

func sameKeyRecords(t *testing.T, got, want []KeyRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Key, want[i].Key) || !sameRecord(got[i].Record, want[i].Record) || got[i].Record.N != want[i].Record.N {
			t.Fatalf("record %d differs", i)
		}
	}
}

func TestRepairMessagesRoundTrip(t *testing.T) {
	h := HintRequest{Target: "127.0.0.1:7001", Key: []byte("k"), Record: recs[1]}
	gh, err := DecodeHintRequest(h.Append(nil))
	if err != nil || gh.Target != h.Target || !bytes.Equal(gh.Key, h.Key) || !sameRecord(gh.Record, h.Record) {
		t.Fatalf("hint: %+v %v", gh, err)
	}
	for _, compress := range []bool{false, true} {
		for _, size := range []int{0, 10, 5000} {
			b := PutBatch{Records: sampleRecords(20, size), Compress: compress}
			enc := b.Append(nil)
			gb, err := DecodePutBatch(enc)
			if err != nil {
				t.Fatalf("batch compress=%v size=%d: %v", compress, size, err)
			}
			sameKeyRecords(t, gb.Records, b.Records)
			if compress && size == 5000 && len(enc) > 20*5000/10 {
				t.Fatalf("compressible batch not compressed: %d bytes", len(enc))
			}
		}
	}
	tr := AETreeRequest{From: "127.0.0.1:1", Depth: 10, Nodes: []uint32{1, 2, 3, 2047}}
	gtr, err := DecodeAETreeRequest(tr.Append(nil))
	if err != nil || !reflect.DeepEqual(gtr, tr) {
		t.Fatalf("tree request: %+v %v", gtr, err)
	}
	resp := AETreeResponse{BuiltMS: 12345, Hashes: [][HashSize]byte{{1}, {2, 3}}}
	gresp, err := DecodeAETreeResponse(resp.Append(nil))
	if err != nil || !reflect.DeepEqual(gresp, resp) {
		t.Fatalf("tree response: %+v %v", gresp, err)
	}
	dr := AEDiffRequest{From: "x", Depth: 10, After: []byte("k"), Buckets: []uint32{0, 5, 1023},
		Entries: []Entry{{Key: []byte("a"), Version: kv.Version{Wall: 1, Logical: 2, Writer: 3}}, {Key: []byte("b"), Tombstone: true}}}
	gdr, err := DecodeAEDiffRequest(dr.Append(nil))
	if err != nil || !reflect.DeepEqual(gdr, dr) {
		t.Fatalf("diff request: %+v %v", gdr, err)
	}
	dresp := AEDiffResponse{Records: sampleRecords(3, 100), More: true, Next: []byte("key-2")}
	gdresp, err := DecodeAEDiffResponse(dresp.Append(nil))
	if err != nil || !gdresp.More || string(gdresp.Next) != "key-2" {
		t.Fatalf("diff response: %+v %v", gdresp, err)
	}
	sameKeyRecords(t, gdresp.Records, dresp.Records)
}

func TestRepairMalformed(t *testing.T) {
	bomb := s2.Encode(nil, make([]byte, MaxDecompressed+1))
	cases := []struct {
		name string
		fn   func() error
	}{
		{"hint truncated", func() error { _, err := DecodeHintRequest([]byte{3, 'a'}); return err }},
		{"batch empty", func() error { _, err := DecodePutBatch(nil); return err }},
		{"batch bad flags", func() error { _, err := DecodePutBatch([]byte{4, 0}); return err }},
		{"batch both flags", func() error { _, err := DecodePutBatch([]byte{3, 0}); return err }},
		{"batch legacy zstd", func() error { _, err := DecodePutBatch([]byte{1, 0x28, 0xb5, 0x2f, 0xfd}); return err }},
		{"batch bad s2", func() error { _, err := DecodePutBatch([]byte{2, 1, 2, 3}); return err }},
		{"batch s2 bomb", func() error { _, err := DecodePutBatch(append([]byte{2}, bomb...)); return err }},
		{"batch lying count", func() error { _, err := DecodePutBatch([]byte{0, 0xff, 0x7f}); return err }},
		{"tree depth", func() error { _, err := DecodeAETreeRequest(AETreeRequest{Depth: 21}.Append(nil)); return err }},
		{"tree node 0", func() error {
			_, err := DecodeAETreeRequest(AETreeRequest{Depth: 3, Nodes: []uint32{0}}.Append(nil))
			return err
		}},
		{"tree node out of range", func() error {
			_, err := DecodeAETreeRequest(AETreeRequest{Depth: 3, Nodes: []uint32{16}}.Append(nil))
			return err
		}},
		{"tree response short", func() error { _, err := DecodeAETreeResponse([]byte{1, 2}); return err }},
		{"tree response count", func() error {
			_, err := DecodeAETreeResponse(append(make([]byte, 8), 2, 1))
			return err
		}},
		{"diff bucket out of range", func() error {
			_, err := DecodeAEDiffRequest(AEDiffRequest{Depth: 2, Buckets: []uint32{4}}.Append(nil))
			return err
		}},
		{"diff response more", func() error { _, err := DecodeAEDiffResponse([]byte{0, 0, 7, 0}); return err }},
	}
	for _, tc := range cases {
		if err := tc.fn(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
