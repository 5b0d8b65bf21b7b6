package membership

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dkvs/dkvs/dkvs/storage"
)

// Key layout in the consensus space of the store:
//
//	"l" index(8)         a log entry
//	"s" name             stable state (current term, last vote)
//	"p" id "/m" and "/d" a snapshot's metadata (JSON) and data
//	"ring"               the last ring state applied (JSON), read at start
const (
	logPrefix    = "l"
	stablePrefix = "s"
	snapPrefix   = "p"
	ringKey      = "ring"
)

// errNotFound is what raft expects of a stable store for a missing key
// (it compares the message).
var errNotFound = errors.New("not found")

// logStore is Raft's LogStore and StableStore on the store's consensus
// space.
type logStore struct{ c storage.Consensus }

var (
	_ raft.LogStore    = logStore{}
	_ raft.StableStore = logStore{}
)

func logKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(logPrefix), index)
}

func (s logStore) edge(reverse bool) (uint64, error) {
	var idx uint64
	err := s.c.Scan([]byte(logPrefix), []byte{logPrefix[0] + 1}, reverse, func(k, _ []byte) bool {
		if len(k) == 9 {
			idx = binary.BigEndian.Uint64(k[1:])
		}
		return false
	})
	return idx, err
}

// FirstIndex implements raft.LogStore.
func (s logStore) FirstIndex() (uint64, error) { return s.edge(false) }

// LastIndex implements raft.LogStore.
func (s logStore) LastIndex() (uint64, error) { return s.edge(true) }

// GetLog implements raft.LogStore.
func (s logStore) GetLog(index uint64, out *raft.Log) error {
	b, ok, err := s.c.Get(logKey(index))
	if err != nil {
		return err
	}
	if !ok {
		return raft.ErrLogNotFound
	}
	return decodeLog(b, out)
}

// StoreLog implements raft.LogStore.
func (s logStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs implements raft.LogStore: one synced batch.
func (s logStore) StoreLogs(logs []*raft.Log) error {
	pairs := make([][2][]byte, len(logs))
	for i, l := range logs {
		pairs[i] = [2][]byte{logKey(l.Index), encodeLog(l)}
	}
	return s.c.Set(pairs...)
}

// DeleteRange implements raft.LogStore.
func (s logStore) DeleteRange(from, to uint64) error {
	return s.c.DeleteRange(logKey(from), logKey(to+1))
}

// Set implements raft.StableStore.
func (s logStore) Set(key, val []byte) error {
	return s.c.Set([2][]byte{append([]byte(stablePrefix), key...), val})
}

// Get implements raft.StableStore.
func (s logStore) Get(key []byte) ([]byte, error) {
	v, ok, err := s.c.Get(append([]byte(stablePrefix), key...))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound
	}
	return v, nil
}

// SetUint64 implements raft.StableStore.
func (s logStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore.
func (s logStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("consensus: stable value %q of %d bytes", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// encodeLog lays a log entry out as index, term, type, appended-at (Unix
// nanoseconds), then data and extensions, each with a 4-byte length.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 33+8+len(l.Data)+len(l.Extensions))
	b = binary.BigEndian.AppendUint64(b, l.Index)
	b = binary.BigEndian.AppendUint64(b, l.Term)
	b = append(b, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
	return append(b, l.Extensions...)
}

var errBadLog = errors.New("consensus: corrupt log entry")

func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 29 {
		return errBadLog
	}
	l.Index = binary.BigEndian.Uint64(b)
	l.Term = binary.BigEndian.Uint64(b[8:])
	l.Type = raft.LogType(b[16])
	if at := int64(binary.BigEndian.Uint64(b[17:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	} else {
		l.AppendedAt = time.Time{}
	}
	rest := b[25:]
	field := func() ([]byte, bool) {
		if len(rest) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(rest)
		if uint64(len(rest)-4) < uint64(n) {
			return nil, false
		}
		f := append([]byte(nil), rest[4:4+n]...)
		rest = rest[4+n:]
		return f, true
	}
	var ok bool
	if l.Data, ok = field(); !ok {
		return errBadLog
	}
	if l.Extensions, ok = field(); !ok || len(rest) != 0 {
		return errBadLog
	}
	if len(l.Data) == 0 {
		l.Data = nil
	}
	if len(l.Extensions) == 0 {
		l.Extensions = nil
	}
	return nil
}

// snapStore is Raft's SnapshotStore on the consensus space. The ring's
// snapshots are small (the ring state), so they are kept whole in memory
// while written; the two newest are kept.
type snapStore struct {
	c  storage.Consensus
	mu sync.Mutex
}

var _ raft.SnapshotStore = (*snapStore)(nil)

const keepSnapshots = 2

func snapKey(id, part string) []byte { return []byte(snapPrefix + id + "/" + part) }

// Create implements raft.SnapshotStore.
func (s *snapStore) Create(version raft.SnapshotVersion, index, term uint64, cfg raft.Configuration,
	cfgIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	// Ids sort by term and index, so that the newest is last.
	id := fmt.Sprintf("%020d-%020d-%d", term, index, time.Now().UnixNano())
	meta := raft.SnapshotMeta{Version: version, ID: id, Index: index, Term: term,
		Configuration: cfg, ConfigurationIndex: cfgIndex}
	return &snapSink{store: s, meta: meta}, nil
}

// List implements raft.SnapshotStore: newest first.
func (s *snapStore) List() ([]*raft.SnapshotMeta, error) {
	var out []*raft.SnapshotMeta
	err := s.c.Scan([]byte(snapPrefix), []byte{snapPrefix[0] + 1}, true, func(k, v []byte) bool {
		if len(k) > 2 && string(k[len(k)-2:]) == "/m" {
			var m raft.SnapshotMeta
			if json.Unmarshal(v, &m) == nil {
				out = append(out, &m)
			}
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, err
}

// Open implements raft.SnapshotStore.
func (s *snapStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	mb, ok, err := s.c.Get(snapKey(id, "m"))
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("consensus: no snapshot %q", id)
	}
	var m raft.SnapshotMeta
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, nil, fmt.Errorf("consensus: snapshot %q: %w", id, err)
	}
	data, _, err := s.c.Get(snapKey(id, "d"))
	if err != nil {
		return nil, nil, err
	}
	return &m, io.NopCloser(bytes.NewReader(data)), nil
}

type snapSink struct {
	store    *snapStore
	meta     raft.SnapshotMeta
	data     []byte
	canceled bool
}

func (k *snapSink) Write(p []byte) (int, error) {
	k.data = append(k.data, p...)
	return len(p), nil
}

func (k *snapSink) ID() string { return k.meta.ID }

func (k *snapSink) Cancel() error {
	k.canceled = true
	return nil
}

// Close stores the snapshot and drops all but the newest ones.
func (k *snapSink) Close() error {
	if k.canceled {
		return nil
	}
	s := k.store
	s.mu.Lock()
	defer s.mu.Unlock()
	k.meta.Size = int64(len(k.data))
	mb, err := json.Marshal(k.meta)
	if err != nil {
		return err
	}
	if err := s.c.Set([2][]byte{snapKey(k.meta.ID, "d"), k.data}, [2][]byte{snapKey(k.meta.ID, "m"), mb}); err != nil {
		return err
	}
	list, err := s.List()
	if err != nil {
		return err
	}
	for _, old := range list[min(keepSnapshots, len(list)):] {
		if err := s.c.DeleteRange(snapKey(old.ID, ""), []byte(snapPrefix+old.ID+"0")); err != nil {
			return err
		}
	}
	return nil
}

// readRing returns the ring state stored at the last apply, if any.
func readRing(c storage.Consensus) ([]byte, bool, error) { return c.Get([]byte(ringKey)) }

func writeRing(c storage.Consensus, b []byte) error { return c.Set([2][]byte{[]byte(ringKey), b}) }
