package resp

import (
	"math/rand/v2"
	"sync"
	"time"
)

// cursorTable maps SCAN cursors to the key where the next page starts.
//
// Clients treat a cursor as an unsigned 64-bit decimal number (go-redis
// parses it with strconv.ParseUint), and dkvs keys are arbitrary bytes of
// up to 64 KiB, so the position cannot live in the cursor itself: the
// server keeps it. The table is shared by all connections (a client may
// continue an iteration on another pooled connection), bounded in size
// (the oldest cursor is forgotten first) and in time (a cursor expires
// after its TTL). A cursor stays valid until then, so a client may retry
// a page. Cursor ids start at a random point so that ids of an earlier
// server process are unlikely to be taken for current ones.
type cursorTable struct {
	mu    sync.Mutex
	m     map[uint64]cursorEntry
	order []uint64 // ids by creation time, oldest first (some deleted)
	next  uint64
	max   int
	ttl   time.Duration
	now   func() time.Time
}

type cursorEntry struct {
	start   []byte
	expires time.Time
}

func newCursorTable(max int, ttl time.Duration, now func() time.Time) *cursorTable {
	return &cursorTable{
		m:    make(map[uint64]cursorEntry),
		next: rand.Uint64() >> 1,
		max:  max,
		ttl:  ttl,
		now:  now,
	}
}

// put remembers start and returns a new cursor id (never 0).
func (t *cursorTable) put(start []byte) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	// Expire from the front (entries are in creation order, with one TTL),
	// then make room.
	for len(t.order) > 0 {
		id := t.order[0]
		e, ok := t.m[id]
		if ok && now.Before(e.expires) && len(t.m) < t.max {
			break
		}
		delete(t.m, id)
		t.order = t.order[1:]
	}
	t.next++
	if t.next == 0 {
		t.next = 1
	}
	id := t.next
	t.m[id] = cursorEntry{start: append([]byte(nil), start...), expires: now.Add(t.ttl)}
	t.order = append(t.order, id)
	return id
}

// get returns the start key of cursor id, if it is known and not expired.
func (t *cursorTable) get(id uint64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[id]
	if !ok || !t.now().Before(e.expires) {
		return nil, false
	}
	return e.start, true
}

func (t *cursorTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
