package wire

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// Record flags.
const recTombstone = 1 << 0

// Scan request flags.
const scanTombstones = 1 << 0

// AppendRecord appends version (20 bytes), flags (1 byte), N (1 byte)
// and the value.
func AppendRecord(b []byte, r kv.Record) []byte {
	b = r.Version.AppendBinary(b)
	var fl uint8
	if r.Tombstone {
		fl |= recTombstone
	}
	b = append(b, fl, r.N)
	return AppendBytes(b, r.Value)
}

// RecordSize is the encoded size of r, for sizing buffers.
func RecordSize(r kv.Record) int {
	return kv.VersionSize + 2 + uvarintLen64(uint64(len(r.Value))) + len(r.Value)
}

func (r *reader) record() kv.Record {
	if r.err != nil {
		return kv.Record{}
	}
	if len(r.b) < kv.VersionSize {
		r.fail("version")
		return kv.Record{}
	}
	v, _ := kv.DecodeVersion(r.b)
	r.b = r.b[kv.VersionSize:]
	fl := r.u8("record flags")
	if fl&^recTombstone != 0 {
		r.fail("unknown record flags")
	}
	n := r.u8("record n")
	val := r.bytes("value")
	rec := kv.Record{Version: v, Tombstone: fl&recTombstone != 0, N: n, Value: val}
	if rec.Tombstone && len(val) != 0 {
		r.fail("tombstone with a value")
	}
	return rec
}

// GetRequest asks for one key.
type GetRequest struct{ Key []byte }

// Append appends the body.
func (m GetRequest) Append(b []byte) []byte { return AppendBytes(b, m.Key) }

// DecodeGetRequest decodes a get request body.
func DecodeGetRequest(body []byte) (GetRequest, error) {
	r := reader{b: body}
	m := GetRequest{Key: r.bytes("key")}
	return m, r.done()
}

// PutRequest stores a record.
type PutRequest struct {
	Key    []byte
	Record kv.Record
}

// Append appends the body.
func (m PutRequest) Append(b []byte) []byte {
	return AppendRecord(AppendBytes(b, m.Key), m.Record)
}

// Size is the encoded size of the body.
func (m PutRequest) Size() int {
	return uvarintLen64(uint64(len(m.Key))) + len(m.Key) + RecordSize(m.Record)
}

// DecodePutRequest decodes a put request body.
func DecodePutRequest(body []byte) (PutRequest, error) {
	r := reader{b: body}
	m := PutRequest{Key: r.bytes("key"), Record: r.record()}
	return m, r.done()
}

// DecodeRecord decodes a get response body (status OK).
func DecodeRecord(body []byte) (kv.Record, error) {
	r := reader{b: body}
	rec := r.record()
	return rec, r.done()
}

// AppendVersion appends the body of a put or ping response: one version.
func AppendVersion(b []byte, v kv.Version) []byte { return v.AppendBinary(b) }

// DecodeVersion decodes the body of a put or ping response.
func DecodeVersion(body []byte) (kv.Version, error) {
	if len(body) != kv.VersionSize {
		return kv.Version{}, fmt.Errorf("%w: version of %d bytes", ErrMalformed, len(body))
	}
	return kv.DecodeVersion(body)
}

// ScanRequest asks for records in key order starting at Start (inclusive),
// at most Limit records and about MaxBytes bytes (at least one record is
// returned if any remains).
type ScanRequest struct {
	Start      []byte
	Limit      uint32
	MaxBytes   uint32
	Tombstones bool // include tombstones
}

// Append appends the body.
func (m ScanRequest) Append(b []byte) []byte {
	b = AppendBytes(b, m.Start)
	b = binary.BigEndian.AppendUint32(b, m.Limit)
	b = binary.BigEndian.AppendUint32(b, m.MaxBytes)
	var fl uint8
	if m.Tombstones {
		fl |= scanTombstones
	}
	return append(b, fl)
}

// DecodeScanRequest decodes a scan request body.
func DecodeScanRequest(body []byte) (ScanRequest, error) {
	r := reader{b: body}
	m := ScanRequest{Start: r.bytes("start"), Limit: r.u32("limit"), MaxBytes: r.u32("max bytes")}
	fl := r.u8("scan flags")
	if fl&^scanTombstones != 0 {
		r.fail("unknown scan flags")
	}
	m.Tombstones = fl&scanTombstones != 0
	return m, r.done()
}

// KeyRecord is a key and its record.
type KeyRecord struct {
	Key    []byte
	Record kv.Record
}

// ScanResponse is one page of a scan. More is set when records remain
// after the last one; the next page starts just after its key.
type ScanResponse struct {
	Records []KeyRecord
	More    bool
}

// Append appends the body.
func (m ScanResponse) Append(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m.Records)))
	for _, kr := range m.Records {
		b = AppendRecord(AppendBytes(b, kr.Key), kr.Record)
	}
	if m.More {
		return append(b, 1)
	}
	return append(b, 0)
}

// DecodeScanResponse decodes a scan response body.
func DecodeScanResponse(body []byte) (ScanResponse, error) {
	r := reader{b: body}
	n := r.uvarint("count")
	// Every record takes at least 23 bytes, so a count above that bound is
	// a lie; refusing it keeps a hostile count from sizing an allocation.
	if n > uint64(len(body)/23+1) {
		r.fail("record count")
	}
	var m ScanResponse
	if r.err == nil && n > 0 {
		m.Records = make([]KeyRecord, 0, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		m.Records = append(m.Records, KeyRecord{Key: r.bytes("key"), Record: r.record()})
	}
	switch r.u8("more") {
	case 0:
	case 1:
		m.More = true
	default:
		r.fail("more flag")
	}
	return m, r.done()
}

// Stats are a server's counters, carried as JSON so they can grow.
type Stats struct {
	Addr       string      `json:"addr"`
	LiveKeys   int64       `json:"live_keys"`
	Tombstones int64       `json:"tombstones"`
	LiveBytes  int64       `json:"live_bytes"`
	Engine     string      `json:"engine"`
	Synced     bool        `json:"synced"`
	UptimeMS   int64       `json:"uptime_ms"`
	HintsHeld  int64       `json:"hints_held"`
	Peers      []PeerStats `json:"peers,omitempty"`
	// Totals since the server started.
	HintsDelivered   int64 `json:"hints_delivered"`
	ReadRepairs      int64 `json:"read_repairs"`
	AERounds         int64 `json:"ae_rounds"`
	TombstonesPurged int64 `json:"tombstones_purged"`
	// The storage (absent from servers older than these fields): its
	// state (a StorageState name) and why it is not ok; the free and total
	// bytes of the data directory's file system (0: unknown, or in
	// memory) and the free space below which new values are refused; the
	// records found corrupt since start and the keys set aside and not
	// repaired yet; the writes refused because of the storage's state and
	// the engine's file operations slower than 5 s, since start.
	Storage        string `json:"storage,omitempty"`
	StorageError   string `json:"storage_error,omitempty"`
	DiskFree       int64  `json:"disk_free_bytes"`
	DiskTotal      int64  `json:"disk_total_bytes"`
	MinFree        int64  `json:"min_free_bytes"`
	CorruptRecords int64  `json:"corrupt_records"`
	Quarantined    int64  `json:"quarantined_keys"`
	WritesRefused  int64  `json:"writes_refused"`
	DiskSlow       int64  `json:"disk_slow"`
	// Epoch is the ring epoch the server knows; Stream, the ranges it
	// receives in a move of the ring (absent when none).
	Epoch  uint64       `json:"epoch,omitempty"`
	Stream *StreamStats `json:"stream,omitempty"`
	// StreamHistory are the streams of earlier moves it received ranges
	// in, newest first (a few; kept in memory, so lost by a restart).
	StreamHistory []StreamStats `json:"stream_history,omitempty"`
	// Traffic is the server's requests of the last minute; nil when the
	// server does not keep them (it keeps them when it serves metrics).
	Traffic *Traffic `json:"traffic,omitempty"`
	// MovePhase is the phase of the move of the ring under way as the
	// server knows it ("streaming" or "read-new"; absent when none): on
	// every server, where Stream is only on those that receive ranges.
	MovePhase string `json:"move_phase,omitempty"`
}

// StreamStats is the progress of the ranges a server receives in a move.
type StreamStats struct {
	Move uint64 `json:"move"`
	// Phase is "copy" (the bulk copy from each range's first live home),
	// "barrier" (waiting for every live server to know the move), "verify"
	// (a second copy from every live home of the ranges) or "done".
	Phase     string `json:"phase"`
	Keys      int64  `json:"keys"`
	Bytes     int64  `json:"bytes"`
	StartedMS int64  `json:"started_ms"`
	UpdatedMS int64  `json:"updated_ms"`
	// Sources are the servers copied from so far in this phase, and
	// Done those finished.
	Sources []string `json:"sources,omitempty"`
	Done    []string `json:"done,omitempty"`
	Error   string   `json:"error,omitempty"`
	// RangesTotal are the ranges the server gains (keys of its default
	// N) and RangesDone those its sources have gone past in the current
	// phase's pass (all of them once it is done); Fraction is the share
	// of that pass done, weighed by the key space of each range (0 to 1).
	RangesDone  int     `json:"ranges_done"`
	RangesTotal int     `json:"ranges_total"`
	Fraction    float64 `json:"fraction"`
	// KeysPerSec and BytesPerSec are what it received over the last
	// seconds (up to RateWindow; 0 once done).
	KeysPerSec  float64 `json:"keys_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	// LeftMS estimates the time left in the current phase's pass (0 once
	// done; -1 when it cannot be estimated: nothing done yet, no progress
	// over the last seconds, or waiting at the barrier).
	LeftMS int64 `json:"left_ms"`
	// FinishedMS is when it was done (absent before), or stopped because
	// the move ended without it (an abort).
	FinishedMS int64 `json:"finished_ms,omitempty"`
}

// RateWindow is the time over which a stream's rates are measured.
const RateWindow = 10 * time.Second

// Traffic is a server's requests of the last minute (package window),
// pings and stats requests left out. Latencies are in microseconds, from
// reading a request to queueing its answer.
type Traffic struct {
	// Seconds is the time covered: 60, or less just after the start.
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	// Rate is Requests per second over Seconds.
	Rate  float64 `json:"rate"`
	P50US float64 `json:"p50_us"`
	P99US float64 `json:"p99_us"`
	// Each second's figures, oldest first; a second without requests has
	// quantiles of 0.
	PerSecond    []int64   `json:"per_second"`
	P50PerSecond []float64 `json:"p50_us_per_second"`
	P99PerSecond []float64 `json:"p99_us_per_second"`
}

// PeerStats is what a server knows of one peer.
type PeerStats struct {
	Addr string `json:"addr"`
	Up   bool   `json:"up"`
	// HintsHeld counts hints held for this peer.
	HintsHeld int64 `json:"hints_held"`
	// AELastMS is when anti-entropy last completed with the peer (Unix
	// milliseconds; 0: never).
	AELastMS       int64 `json:"ae_last_ms"`
	AERounds       int64 `json:"ae_rounds"`
	AEKeysSent     int64 `json:"ae_keys_sent"`
	AEKeysReceived int64 `json:"ae_keys_received"`
	// Storage is the peer's storage state as last reported to this
	// server (a StorageState name; omitted when ok).
	Storage string `json:"storage,omitempty"`
}

// AppendStats appends the JSON body.
func AppendStats(b []byte, s Stats) []byte {
	j, _ := json.Marshal(s) // a struct of plain fields cannot fail
	return append(b, j...)
}

// DecodeStats decodes a stats response body.
func DecodeStats(body []byte) (Stats, error) {
	var s Stats
	if err := json.Unmarshal(body, &s); err != nil {
		return Stats{}, fmt.Errorf("%w: stats: %v", ErrMalformed, err)
	}
	return s, nil
}

// AppendMessage appends an error response body: a UTF-8 message.
func AppendMessage(b []byte, msg string) []byte { return AppendBytes(b, []byte(msg)) }

// DecodeMessage decodes an error response body.
func DecodeMessage(body []byte) (string, error) {
	r := reader{b: body}
	m := r.bytes("message")
	return string(m), r.done()
}
