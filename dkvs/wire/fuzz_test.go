package wire

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// Each fuzz target feeds arbitrary bytes to one decoder. The decoder must
// not panic, and whatever it accepts must encode back to bytes that decode
// to the same message.

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Frame{Kind: uint8(OpGet), ID: 1, Body: GetRequest{Key: []byte("k")}.Append(nil)}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			fr, err := ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			again, err := ReadFrame(bufio.NewReader(bytes.NewReader(AppendFrame(nil, fr))), 1<<16)
			if err != nil || again.ID != fr.ID || !bytes.Equal(again.Body, fr.Body) {
				t.Fatalf("re-read: %v", err)
			}
		}
	})
}

func FuzzGetRequest(f *testing.F) {
	f.Add(GetRequest{Key: []byte("key")}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeGetRequest(data)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Append(nil), data) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzPutRequest(f *testing.F) {
	for _, r := range recs {
		f.Add(PutRequest{Key: []byte("k"), Record: r}.Append(nil))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodePutRequest(data)
		if err != nil {
			return
		}
		back, err := DecodePutRequest(m.Append(nil))
		if err != nil || !bytes.Equal(back.Key, m.Key) || !sameRecord(back.Record, m.Record) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzRecord(f *testing.F) {
	for _, r := range recs {
		f.Add(AppendRecord(nil, r))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeRecord(data)
		if err != nil {
			return
		}
		back, err := DecodeRecord(AppendRecord(nil, rec))
		if err != nil || !sameRecord(back, rec) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzScanRequest(f *testing.F) {
	f.Add(ScanRequest{Start: []byte("a"), Limit: 10, MaxBytes: 100, Tombstones: true}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeScanRequest(data)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Append(nil), data) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzScanResponse(f *testing.F) {
	resp := ScanResponse{More: true}
	for i, r := range recs {
		resp.Records = append(resp.Records, KeyRecord{Key: []byte{byte(i)}, Record: r})
	}
	f.Add(resp.Append(nil))
	f.Add(ScanResponse{}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeScanResponse(data)
		if err != nil {
			return
		}
		back, err := DecodeScanResponse(m.Append(nil))
		if err != nil || len(back.Records) != len(m.Records) || back.More != m.More {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzVersionAndMessage(f *testing.F) {
	f.Add(AppendVersion(nil, kv.Version{Wall: 1, Logical: 2, Writer: 3}))
	f.Add(AppendMessage(nil, "boom"))
	f.Add([]byte(`{"addr":"x","live_keys":3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, err := DecodeVersion(data); err == nil && !bytes.Equal(AppendVersion(nil, v), data) {
			t.Fatal("version not canonical")
		}
		if m, err := DecodeMessage(data); err == nil && !bytes.Equal(AppendMessage(nil, m), data) {
			t.Fatal("message not canonical")
		}
		if s, err := DecodeStats(data); err == nil {
			if _, err := DecodeStats(AppendStats(nil, s)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzHintRequest(f *testing.F) {
	f.Add(HintRequest{Target: "127.0.0.1:1", Key: []byte("k"), Record: recs[1]}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeHintRequest(data)
		if err != nil {
			return
		}
		back, err := DecodeHintRequest(m.Append(nil))
		if err != nil || back.Target != m.Target || !bytes.Equal(back.Key, m.Key) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzPutBatch(f *testing.F) {
	f.Add(PutBatch{Records: sampleRecords(3, 10)}.Append(nil))
	f.Add(PutBatch{Records: sampleRecords(3, 1000), Compress: true}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodePutBatch(data)
		if err != nil {
			return
		}
		back, err := DecodePutBatch(m.Append(nil))
		if err != nil || len(back.Records) != len(m.Records) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzAETree(f *testing.F) {
	f.Add(AETreeRequest{From: "a", Depth: 4, Nodes: []uint32{1, 2, 31}}.Append(nil))
	f.Add(AETreeResponse{BuiltMS: 1, Hashes: [][HashSize]byte{{1}}}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := DecodeAETreeRequest(data); err == nil {
			if back, err := DecodeAETreeRequest(m.Append(nil)); err != nil || len(back.Nodes) != len(m.Nodes) {
				t.Fatalf("request round trip: %v", err)
			}
		}
		if m, err := DecodeAETreeResponse(data); err == nil {
			if !bytes.Equal(m.Append(nil), data) {
				t.Fatal("response not canonical")
			}
		}
	})
}

func FuzzAEDiff(f *testing.F) {
	f.Add(AEDiffRequest{From: "a", Depth: 4, Buckets: []uint32{1}, Entries: []Entry{{Key: []byte("k")}}}.Append(nil))
	f.Add(AEDiffResponse{Records: sampleRecords(2, 5), More: true, Next: []byte("x")}.Append(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := DecodeAEDiffRequest(data); err == nil {
			if back, err := DecodeAEDiffRequest(m.Append(nil)); err != nil || len(back.Entries) != len(m.Entries) {
				t.Fatalf("request round trip: %v", err)
			}
		}
		if m, err := DecodeAEDiffResponse(data); err == nil {
			if back, err := DecodeAEDiffResponse(m.Append(nil)); err != nil || len(back.Records) != len(m.Records) {
				t.Fatalf("response round trip: %v", err)
			}
		}
	})
}

func FuzzPingAndRefusal(f *testing.F) {
	f.Add(AppendPing(nil, kv.Version{Wall: 1, Logical: 2, Writer: 3}, StorageOK))
	f.Add(AppendPing(nil, kv.Version{Wall: 1, Logical: 2, Writer: 3}, StorageFailed))
	f.Add(AppendRefusal(nil, StorageFull, "disk nearly full"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if v, st, err := DecodePing(data); err == nil && !bytes.Equal(AppendPing(nil, v, st), data) {
			t.Fatal("ping not canonical")
		}
		if st, msg, err := DecodeRefusal(data); err == nil && !bytes.Equal(AppendRefusal(nil, st, msg), data) {
			t.Fatal("refusal not canonical")
		}
	})
}

func FuzzBatch(f *testing.F) {
	items := []BatchItem{
		{Op: OpGet, Flags: GetVersionOnly, Body: GetRequest{Key: []byte("k")}.Append(nil)},
		{Op: OpPut, Body: PutRequest{Key: []byte("k"), Record: recs[0]}.Append(nil)},
	}
	f.Add(AppendBatchRequest(nil, items))
	f.Add(AppendBatchResponse(nil, items))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := DecodeBatchRequest(data); err == nil {
			if !bytes.Equal(AppendBatchRequest(nil, m), data) {
				t.Fatal("request not canonical")
			}
		}
		for _, want := range []int{1, 2, 3} {
			if m, err := DecodeBatchResponse(data, want); err == nil {
				if len(m) != want || !bytes.Equal(AppendBatchResponse(nil, m), data) {
					t.Fatal("response not canonical")
				}
			}
		}
	})
}

func FuzzAuthRequest(f *testing.F) {
	f.Add(AuthRequest{User: "alice", Token: "0123456789abcdef"}.Append(nil))
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeAuthRequest(data)
		if err != nil {
			return
		}
		if m.User == "" || len(m.User) > MaxAuthField || len(m.Token) > MaxAuthField {
			t.Fatalf("accepted out of bounds: %q %q", m.User, m.Token)
		}
		again, err := DecodeAuthRequest(m.Append(nil))
		if err != nil || again != m {
			t.Fatalf("round trip: %+v -> %+v, %v", m, again, err)
		}
		if !bytes.Equal(m.Append(nil), data) {
			t.Fatalf("two encodings of %+v", m)
		}
	})
}
