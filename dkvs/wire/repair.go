package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/s2"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// MaxDecompressed bounds what a compressed body may expand to, so that a
// small hostile frame cannot make a server allocate without limit.
const MaxDecompressed = 64 << 20

// Body flags of compressible messages. Flag 1 (zstd) was used before
// format 1.2 and is refused: zstd's coders keep state shared between
// calls, s2's block format keeps none, and storage compresses values
// with s2 already.
const (
	flagZstd = 1 << 0
	flagS2   = 1 << 1
)

// compressAbove is the payload size from which compression is used.
const compressAbove = 512

// appendPayload appends a flags byte and the payload, compressed (s2
// block format) when asked and when that makes it smaller.
func appendPayload(b []byte, payload []byte, compress bool) []byte {
	if compress && len(payload) >= compressAbove {
		if c := s2.Encode(nil, payload); len(c) < len(payload) {
			b = append(b, flagS2)
			return append(b, c...)
		}
	}
	b = append(b, 0)
	return append(b, payload...)
}

// readPayload returns the (decompressed) payload after the flags byte.
func (r *reader) payload() []byte {
	fl := r.u8("payload flags")
	if r.err != nil {
		return nil
	}
	switch fl {
	case 0:
		rest := r.b
		r.b = nil
		return rest
	case flagS2:
	case flagZstd:
		r.fail("zstd payload (flag 1) from a server older than format 1.2: upgrade it")
		return nil
	default:
		r.fail("unknown payload flags")
		return nil
	}
	rest := r.b
	r.b = nil
	n, err := s2.DecodedLen(rest)
	if err != nil {
		r.fail(fmt.Sprintf("s2: %v", err))
		return nil
	}
	if n > MaxDecompressed {
		r.fail("decompressed payload too large")
		return nil
	}
	out, err := s2.Decode(nil, rest)
	if err != nil {
		r.fail(fmt.Sprintf("s2: %v", err))
		return nil
	}
	return out
}

// HintRequest asks a fallback server to keep a record for Target, a home
// replica that could not take it, until it can be handed over.
type HintRequest struct {
	Target string // "IP:PORT" of the home replica
	Key    []byte
	Record kv.Record
}

// Append appends the body.
func (m HintRequest) Append(b []byte) []byte {
	b = AppendBytes(b, []byte(m.Target))
	return AppendRecord(AppendBytes(b, m.Key), m.Record)
}

// DecodeHintRequest decodes a hint request body.
func DecodeHintRequest(body []byte) (HintRequest, error) {
	r := reader{b: body}
	m := HintRequest{Target: string(r.bytes("target")), Key: r.bytes("key"), Record: r.record()}
	return m, r.done()
}

func appendKeyRecords(b []byte, recs []KeyRecord) []byte {
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, kr := range recs {
		b = AppendRecord(AppendBytes(b, kr.Key), kr.Record)
	}
	return b
}

func (r *reader) keyRecords(total int) []KeyRecord {
	n := r.uvarint("count")
	// Every key record takes at least 24 bytes.
	if n > uint64(total/24+1) {
		r.fail("record count")
		return nil
	}
	var out []KeyRecord
	if r.err == nil && n > 0 {
		out = make([]KeyRecord, 0, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		out = append(out, KeyRecord{Key: r.bytes("key"), Record: r.record()})
	}
	return out
}

// PutBatch carries many records to store, each applied if newer (last
// writer wins). The payload is compressed when Compress is set.
type PutBatch struct {
	Records  []KeyRecord
	Compress bool
}

// Append appends the body.
func (m PutBatch) Append(b []byte) []byte {
	return appendPayload(b, appendKeyRecords(nil, m.Records), m.Compress)
}

// DecodePutBatch decodes a batch body.
func DecodePutBatch(body []byte) (PutBatch, error) {
	r := reader{b: body}
	fl := len(body) > 0 && body[0]&flagZstd != 0
	p := r.payload()
	if r.err != nil {
		return PutBatch{}, r.err
	}
	pr := reader{b: p}
	m := PutBatch{Records: pr.keyRecords(len(p)), Compress: fl}
	return m, pr.done()
}

// HashSize is the size of a Merkle tree node hash.
const HashSize = 32

// AETreeRequest asks for the hashes of some nodes of the responder's
// Merkle tree of the keys it shares with From. Nodes are numbered in heap
// order: 1 is the root, the children of i are 2i and 2i+1.
type AETreeRequest struct {
	From  string
	Depth uint8 // leaves are at this level (2^Depth leaves)
	Nodes []uint32
}

// Append appends the body.
func (m AETreeRequest) Append(b []byte) []byte {
	b = AppendBytes(b, []byte(m.From))
	b = append(b, m.Depth)
	b = binary.AppendUvarint(b, uint64(len(m.Nodes)))
	for _, n := range m.Nodes {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return b
}

// MaxTreeDepth bounds the depth of anti-entropy trees.
const MaxTreeDepth = 20

// DecodeAETreeRequest decodes a tree request body.
func DecodeAETreeRequest(body []byte) (AETreeRequest, error) {
	r := reader{b: body}
	m := AETreeRequest{From: string(r.bytes("from")), Depth: r.u8("depth")}
	if r.err == nil && m.Depth > MaxTreeDepth {
		r.fail("depth")
	}
	n := r.uvarint("count")
	if n > uint64(len(body)) {
		r.fail("node count")
	}
	limit := uint64(1) << (m.Depth + 1)
	for i := uint64(0); i < n && r.err == nil; i++ {
		v := r.uvarint("node")
		if v == 0 || v >= limit {
			r.fail("node number")
		}
		m.Nodes = append(m.Nodes, uint32(v))
	}
	return m, r.done()
}

// AETreeResponse carries the requested hashes, in request order, and when
// the tree was built (Unix milliseconds).
type AETreeResponse struct {
	BuiltMS uint64
	Hashes  [][HashSize]byte
}

// Append appends the body.
func (m AETreeResponse) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, m.BuiltMS)
	b = binary.AppendUvarint(b, uint64(len(m.Hashes)))
	for _, h := range m.Hashes {
		b = append(b, h[:]...)
	}
	return b
}

// DecodeAETreeResponse decodes a tree response body.
func DecodeAETreeResponse(body []byte) (AETreeResponse, error) {
	r := reader{b: body}
	var m AETreeResponse
	if len(body) < 8 {
		return m, fmt.Errorf("%w: tree response", ErrMalformed)
	}
	m.BuiltMS = binary.BigEndian.Uint64(body)
	r.b = body[8:]
	n := r.uvarint("count")
	if r.err == nil && n*HashSize != uint64(len(r.b)) {
		r.fail("hash count")
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		var h [HashSize]byte
		copy(h[:], r.b[:HashSize])
		r.b = r.b[HashSize:]
		m.Hashes = append(m.Hashes, h)
	}
	return m, r.done()
}

// Entry is a key with the version of its record (no value), as compared
// by anti-entropy.
type Entry struct {
	Key       []byte
	Version   kv.Version
	Tombstone bool
}

// AEDiffRequest sends the initiator's entries of the leaves (buckets) that
// differ, so the responder can send back the records the initiator lacks
// or holds older. The responder scans its keys in order from After
// (exclusive; empty: from the start).
type AEDiffRequest struct {
	From    string
	Depth   uint8
	After   []byte
	Buckets []uint32
	Entries []Entry
}

// Append appends the body; the payload is compressed.
func (m AEDiffRequest) Append(b []byte) []byte {
	b = AppendBytes(b, []byte(m.From))
	b = append(b, m.Depth)
	b = AppendBytes(b, m.After)
	var p []byte
	p = binary.AppendUvarint(p, uint64(len(m.Buckets)))
	for _, k := range m.Buckets {
		p = binary.AppendUvarint(p, uint64(k))
	}
	p = binary.AppendUvarint(p, uint64(len(m.Entries)))
	for _, e := range m.Entries {
		p = AppendBytes(p, e.Key)
		p = e.Version.AppendBinary(p)
		var fl uint8
		if e.Tombstone {
			fl = recTombstone
		}
		p = append(p, fl)
	}
	return appendPayload(b, p, true)
}

// DecodeAEDiffRequest decodes a diff request body.
func DecodeAEDiffRequest(body []byte) (AEDiffRequest, error) {
	r := reader{b: body}
	m := AEDiffRequest{From: string(r.bytes("from")), Depth: r.u8("depth"), After: r.bytes("after")}
	if r.err == nil && m.Depth > MaxTreeDepth {
		r.fail("depth")
	}
	p := r.payload()
	if r.err != nil {
		return AEDiffRequest{}, r.err
	}
	pr := reader{b: p}
	nb := pr.uvarint("bucket count")
	if nb > uint64(len(p)) {
		pr.fail("bucket count")
	}
	for i := uint64(0); i < nb && pr.err == nil; i++ {
		k := pr.uvarint("bucket")
		if k >= 1<<m.Depth {
			pr.fail("bucket number")
		}
		m.Buckets = append(m.Buckets, uint32(k))
	}
	ne := pr.uvarint("entry count")
	if ne > uint64(len(p)/22+1) {
		pr.fail("entry count")
	}
	for i := uint64(0); i < ne && pr.err == nil; i++ {
		e := Entry{Key: pr.bytes("key")}
		if pr.err == nil && len(pr.b) < kv.VersionSize {
			pr.fail("version")
			break
		}
		if pr.err != nil {
			break
		}
		e.Version, _ = kv.DecodeVersion(pr.b)
		pr.b = pr.b[kv.VersionSize:]
		fl := pr.u8("entry flags")
		if fl&^recTombstone != 0 {
			pr.fail("entry flags")
		}
		e.Tombstone = fl&recTombstone != 0
		m.Entries = append(m.Entries, e)
	}
	return m, pr.done()
}

// AEDiffResponse carries the records the responder has that the initiator
// lacks or holds older. More is set when they were cut short by the size
// budget: the initiator asks again with After set to Next.
type AEDiffResponse struct {
	Records []KeyRecord
	More    bool
	Next    []byte
}

// Append appends the body; the payload is compressed.
func (m AEDiffResponse) Append(b []byte) []byte {
	p := appendKeyRecords(nil, m.Records)
	if m.More {
		p = append(p, 1)
	} else {
		p = append(p, 0)
	}
	p = AppendBytes(p, m.Next)
	return appendPayload(b, p, true)
}

// DecodeAEDiffResponse decodes a diff response body.
func DecodeAEDiffResponse(body []byte) (AEDiffResponse, error) {
	r := reader{b: body}
	p := r.payload()
	if r.err != nil {
		return AEDiffResponse{}, r.err
	}
	pr := reader{b: p}
	m := AEDiffResponse{Records: pr.keyRecords(len(p))}
	switch pr.u8("more") {
	case 0:
	case 1:
		m.More = true
	default:
		pr.fail("more flag")
	}
	m.Next = pr.bytes("next")
	return m, pr.done()
}
