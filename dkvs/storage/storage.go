// Package storage keeps a server's records durably in Pebble.
//
// Each key holds one record, the newest version seen (last writer wins):
// Apply stores a record only if it is newer than what is stored. Records
// carry a checksum that is checked on every read, and large values are
// compressed with s2. Writes are acknowledged after Pebble's synced write
// returns, unless Options.NoSync relaxes that to the OS buffer. The same
// engine runs on an in-memory file system for tests and ephemeral rings.
package storage

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/kv"
)

// Key spaces inside Pebble: one prefix byte before the user key.
//
//	'c' key                 the ring's consensus (consensus.go)
//	'd' key                 the server's own records
//	'h' target 0x00 key     hints held for another server ("IP:PORT")
//	'm' name                the store's own facts: "format"
//	'r' position key        the ring index of the records (index.go)
const (
	spaceData = 'd'
	spaceHint = 'h'
	spaceMeta = 'm'
)

// FormatVersion is the layout of the key spaces and stored records. Open
// records it in a new data directory and refuses one that holds another,
// or data without one (written before the marker existed), so that a
// layout change shows as a clear error at start rather than as corrupt
// records at every read. Format 1 had no ring index: Open builds it
// (index.go).
const FormatVersion = 2

// formatKey holds FormatVersion as a decimal string.
var formatKey = spaceKey(spaceMeta, []byte("format"))

// DefaultCacheSize is the size of Pebble's block cache unless
// Options.CacheSize says otherwise.
const DefaultCacheSize = 256 << 20

// DefaultCompressAbove is the value size from which values are compressed.
const DefaultCompressAbove = 4096

// ErrClosed is returned by every call after Close. It wraps errcode.IO.
var ErrClosed = fmt.Errorf("storage: closed: %w", errcode.IO)

// Options configure an engine.
type Options struct {
	// Dir is the data directory; ignored when InMemory is set.
	Dir string
	// InMemory keeps everything in memory: nothing survives Close.
	InMemory bool
	// FS, when set, is the file system Dir lives on, instead of the
	// operating system's: tests give Pebble's crashable in-memory one
	// (vfs.NewCrashableMem) to lose, in a crash, what was not synced.
	FS vfs.FS
	// NoSync acknowledges writes once they are in the OS buffer instead of
	// after fsync: they survive a crash of the process, not of the machine.
	NoSync bool
	// CompressAbove is the value size from which values are compressed;
	// zero means DefaultCompressAbove, negative disables compression.
	CompressAbove int
	// CacheSize is Pebble's block cache in bytes; zero means DefaultCacheSize.
	CacheSize int64
	// Logger receives Pebble's messages (at debug level, errors at error
	// level) and the build of the ring index of a directory of format 1
	// (at info level); nil discards them.
	Logger *slog.Logger
	// OnFault is called once, in a goroutine of its own, when the store
	// fails (see Fault): from then on it refuses every write.
	OnFault func(Fault)
	// StallThreshold is how long a sync of the write-ahead log may wait
	// before the store refuses writes until it completes (StateSlow); zero
	// means DefaultStallThreshold, negative never.
	StallThreshold time.Duration
	// CloseTimeout bounds Close; zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
	// MoveAsideDamaged makes Open rename a damaged data directory (see
	// ErrDamaged) to DIR.damaged-TIME and start with an empty one, instead
	// of refusing it.
	MoveAsideDamaged bool

	// preallocateLogs lets Pebble preallocate its write-ahead logs, as it
	// did before issue 19; only BenchmarkApplySync sets it, to compare.
	preallocateLogs bool
}

// Stats counts what the engine holds.
type Stats struct {
	LiveKeys   int64 // keys whose newest record has a value
	Tombstones int64 // keys whose newest record is a tombstone
	LiveBytes  int64 // stored bytes of live values (after compression)
	// Corrupt counts the records found corrupt (and set aside) since Open;
	// Quarantined the keys set aside and not repaired yet.
	Corrupt, Quarantined int64
	// DiskSlow counts the engine's file operations that took more than 5
	// seconds since Open; Refused the writes refused because of the
	// store's state (full, slow or failed) since Open.
	DiskSlow, Refused int64
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	Applied bool       // the record was newer and is now stored
	Current kv.Version // the version stored for the key after the call
}

// DB is a storage engine. It is safe for concurrent use.
type DB struct {
	db       *pebble.DB
	opts     Options
	wo       *pebble.WriteOptions
	seed     maphash.Seed
	stripes  [numStripes]stripe
	perCache int          // headers cached per stripe
	mu       sync.RWMutex // held shared by every operation, exclusively by Close
	closed   bool
	closing  atomic.Bool
	live     atomic.Int64
	tombs    atomic.Int64
	bytes    atomic.Int64
	compress int

	hintMu sync.Mutex
	hints  map[string]int64 // hints held per target

	log        *slog.Logger // nil: quiet
	baseFS     vfs.FS       // the file system under Pebble's
	dir        string
	opening    atomic.Bool // Open runs: faults are its errors
	faults     faults
	syncs      *syncTracker
	stallAfter time.Duration
	quar       quarantine
	diskSlow   atomic.Int64
	refused    atomic.Int64
	lastBGLog  atomic.Int64 // unix nanoseconds of the last background error logged
	movedAside string       // where a damaged directory was moved, if it was
	damage     string       // what was damaged in it

	snaps snapshots // open snapshots (rangescan.go)
}

// Open opens (creating if needed) the engine described by opts. A
// damaged data directory is refused with ErrDamaged, or moved aside when
// opts.MoveAsideDamaged is set.
func Open(opts Options) (*DB, error) {
	d, err := open(opts)
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, ErrDamaged) || !opts.MoveAsideDamaged || opts.InMemory || d == nil {
		return nil, err
	}
	to, merr := moveAside(d.baseFS, d.dir, time.Now())
	if merr != nil {
		return nil, fmt.Errorf("%w; %w", err, merr)
	}
	nd, nerr := open(opts)
	if nerr != nil {
		return nil, nerr
	}
	nd.movedAside, nd.damage = to, errcode.Detail(err)
	return nd, nil
}

// MovedAside returns where Open moved a damaged data directory, and what
// was damaged in it; "" when it did not.
func (d *DB) MovedAside() (to, damage string) { return d.movedAside, d.damage }

// memTableSize is the size of Pebble's memtables in steady state (they
// start at 256 KiB and double). It bounds the write-ahead logs kept: a
// log lives until its memtable is flushed, and Pebble recycles up to three
// old logs, each as large as a memtable. 64 MiB made those some 250 MiB
// for any store, however small; see docs/performance.md.
const memTableSize = 16 << 20

// OpenSpace is about the free space Open needs on a store whose logs hold
// data not yet in tables: it replays them into memtables and flushes
// those, a table each, before the logs can go (up to one full memtable
// and the half more that makes Pebble flush). Without it, Open waits,
// retrying every second, until space is freed.
const OpenSpace = memTableSize + memTableSize/2

// open opens the engine. On an error that says the directory is damaged,
// it returns a DB that is not open, for Open to know the directory.
func open(opts Options) (*DB, error) {
	d := &DB{opts: opts, wo: pebble.Sync, seed: maphash.MakeSeed(), hints: map[string]int64{},
		perCache: headerCacheSize / numStripes, log: opts.Logger, stallAfter: opts.StallThreshold}
	if d.stallAfter == 0 {
		d.stallAfter = DefaultStallThreshold
	}
	d.faults.space.Store(NoSpaceLimit)
	d.opening.Store(true)
	po := &pebble.Options{
		Logger:       pebbleLogger{opts.Logger},
		MemTableSize: memTableSize,
		// Write-ahead logs record how far they were synced, so that a log
		// damaged before that point is found damaged at replay instead of
		// being read as ending there, which loses what follows without a
		// word (at the default format, a byte flipped in the middle of the
		// last log did just that). Pebble raises an older store to this
		// format when it opens it.
		FormatMajorVersion: pebble.FormatWALSyncChunks,
	}
	// Every write reads the stored version first (unless its stripe has it
	// cached), and most gets of a large store miss most sstables: a bloom
	// filter per table (set for L0, inherited by the levels below) lets
	// those lookups skip them.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	cacheSize := opts.CacheSize
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	po.Cache = cache
	dir := opts.Dir
	base := vfs.Default
	if opts.FS != nil {
		base = opts.FS
		if dir == "" {
			dir = "data"
		}
		if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage: create %s: %w: %w", dir, err, errcode.IO)
		}
	} else if opts.InMemory {
		base = vfs.NewMem()
		dir = "mem"
	} else if dir == "" {
		return nil, fmt.Errorf("storage: no data directory: %w", errcode.InvalidConfig)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w: %w", dir, err, errcode.IO)
	}
	d.baseFS, d.dir = base, dir
	if err := checkMarker(base, dir); err != nil {
		return d, damaged(dir, err)
	}
	d.syncs = &syncTracker{now: time.Now}
	po.FS = &watchFS{FS: base, onError: d.onFSError, syncs: d.syncs, preallocate: opts.preallocateLogs}
	po.EventListener = &pebble.EventListener{
		BackgroundError: d.backgroundError,
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			d.fail(Fault{Op: "read", Path: info.Path, Err: info.Details, Damaged: true})
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			d.diskSlow.Add(1)
			d.backgroundError(fmt.Errorf("slow disk: %s of %s took %v", info.OpType, info.Path, info.Duration))
		},
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		if isDamage(err) {
			return d, damaged(dir, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w: %w", dir, err, errcode.IO)
	}
	d.db = pdb
	if err := checkFormat(pdb, dir, opts.Logger); err != nil {
		pdb.Close()
		if isDamage(err) {
			return d, damaged(dir, err)
		}
		return nil, err
	}
	if opts.NoSync {
		d.wo = pebble.NoSync
	}
	switch {
	case opts.CompressAbove == 0:
		d.compress = DefaultCompressAbove
	case opts.CompressAbove > 0:
		d.compress = opts.CompressAbove
	}
	for _, step := range []func() error{d.loadQuarantine, d.count, d.countHints} {
		if err := step(); err != nil {
			pdb.Close()
			if isDamage(err) {
				return d, damaged(dir, err)
			}
			return nil, fmt.Errorf("storage: open %s: %w: %w", dir, err, errcode.IO)
		}
	}
	d.opening.Store(false)
	return d, nil
}

// checkFormat refuses a data directory whose format marker is not
// FormatVersion, or that holds data without a marker; it writes the
// marker into an empty one, and moves one of format 1 to FormatVersion.
func checkFormat(pdb *pebble.DB, dir string, log *slog.Logger) error {
	v, closer, err := pdb.Get(formatKey)
	switch {
	case err == nil:
		got := string(v)
		closer.Close()
		if got == strconv.Itoa(formatNoIndex) {
			return buildIndex(pdb, dir, log)
		}
		if got != strconv.Itoa(FormatVersion) {
			return fmt.Errorf("storage: %s holds data in format %q; this dkvs reads format %d: "+
				"use a dkvs of that format or start from an empty directory: %w", dir, got, FormatVersion, errcode.IO)
		}
		return nil
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("storage: open %s: %w: %w", dir, err, errcode.IO)
	}
	it, err := pdb.NewIter(nil)
	if err != nil {
		return fmt.Errorf("storage: open %s: %w: %w", dir, err, errcode.IO)
	}
	empty := !it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("storage: open %s: %w: %w", dir, err, errcode.IO)
	}
	if !empty {
		return fmt.Errorf("storage: %s holds data written by an older dkvs (no format marker); "+
			"this dkvs reads format %d: start from an empty directory: %w", dir, FormatVersion, errcode.IO)
	}
	if err := pdb.Set(formatKey, []byte(strconv.Itoa(FormatVersion)), pebble.Sync); err != nil {
		return fmt.Errorf("storage: open %s: %w: %w", dir, err, errcode.IO)
	}
	return nil
}

// count initialises the counters from what is stored.
func (d *DB) count() error {
	it, err := d.db.NewIter(spaceBounds(spaceData, nil))
	if err != nil {
		return fmt.Errorf("storage: %w: %w", err, errcode.IO)
	}
	var corrupt [][]byte
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("storage: %w: %w", err, errcode.IO)
		}
		h, err := decodeHeader(v)
		if err != nil {
			corrupt = append(corrupt, append([]byte(nil), it.Key()...))
			continue
		}
		d.account(h, 1)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	for _, pk := range corrupt {
		d.corruptFound(pk)
	}
	return nil
}

func (d *DB) account(h header, sign int64) {
	if h.tombstone {
		d.tombs.Add(sign)
	} else {
		d.live.Add(sign)
		d.bytes.Add(sign * int64(h.stored))
	}
}

func spaceKey(space byte, key []byte) []byte {
	b := make([]byte, 1+len(key))
	b[0] = space
	copy(b[1:], key)
	return b
}

// spaceBounds bounds an iterator to one key space, from start on.
func spaceBounds(space byte, start []byte) *pebble.IterOptions {
	return &pebble.IterOptions{LowerBound: spaceKey(space, start), UpperBound: []byte{space + 1}}
}

func (d *DB) enter() error {
	if d.closing.Load() {
		return ErrClosed
	}
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (d *DB) leave() { d.mu.RUnlock() }

// stripe returns the stripe ordering writes of one Pebble key, and the
// hash that places the key in the stripe's cache.
func (d *DB) stripe(pk []byte) (*stripe, uint64) {
	i, h := d.stripeIndex(pk)
	return &d.stripes[i], h
}

// stripeIndex is stripe's index among d's stripes, and the hash.
func (d *DB) stripeIndex(pk []byte) (int, uint64) {
	h := maphash.Bytes(d.seed, pk)
	return int(h % numStripes), h / numStripes
}

// Get returns the record stored for key (a tombstone included); found is
// false when there is none.
func (d *DB) Get(key []byte) (rec kv.Record, found bool, err error) {
	if err := d.enter(); err != nil {
		return kv.Record{}, false, err
	}
	defer d.leave()
	pk := spaceKey(spaceData, key)
	v, closer, err := d.db.Get(pk)
	if errors.Is(err, pebble.ErrNotFound) {
		if d.quar.has(pk) {
			return kv.Record{}, false, errCorrupt(key, "found corrupt earlier, not repaired yet")
		}
		return kv.Record{}, false, nil
	}
	if err != nil {
		return kv.Record{}, false, fmt.Errorf("storage: get: %w", d.readErr(err))
	}
	rec, err = decodeRecord(v)
	closer.Close()
	if err != nil {
		d.corruptFound(pk)
		return kv.Record{}, false, errCorrupt(key, "set aside until a replica repairs it")
	}
	return rec, true, nil
}

// Apply stores rec under key if it is newer than the stored record (or
// there is none), and returns once the write is durable (or in the OS
// buffer with NoSync). Writes of one key are ordered; writes of different
// keys proceed in parallel and share fsyncs.
func (d *DB) Apply(key []byte, rec kv.Record) (ApplyResult, error) {
	if err := d.enter(); err != nil {
		return ApplyResult{}, err
	}
	defer d.leave()
	res, _, err := d.apply(spaceKey(spaceData, key), rec, true, d.wo.Sync)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("storage: key %q: %w", key, err)
	}
	return res, nil
}

// VersionOf returns the version stored for key (a tombstone's included)
// without reading its value; found is false when there is none.
func (d *DB) VersionOf(key []byte) (kv.Version, bool, error) {
	if err := d.enter(); err != nil {
		return kv.Version{}, false, err
	}
	defer d.leave()
	pk := spaceKey(spaceData, key)
	h, found, err := d.header(pk)
	if errors.Is(err, ErrCorrupt) {
		d.corruptFound(pk)
		return kv.Version{}, false, errCorrupt(key, "set aside until a replica repairs it")
	}
	if err != nil {
		return kv.Version{}, false, fmt.Errorf("storage: key %q: %w", key, err)
	}
	return h.version, found, nil
}

// KeyRecord is a key with its record, for ApplyMany.
type KeyRecord struct {
	Key    []byte
	Record kv.Record
}

// ApplyMany applies each record as Apply does, and returns once all are
// durable, with a single fsync for the lot. It returns how many were
// newer and stored.
func (d *DB) ApplyMany(recs []KeyRecord) (int, error) {
	if err := d.enter(); err != nil {
		return 0, err
	}
	defer d.leave()
	deletions := true
	for _, kr := range recs {
		deletions = deletions && kr.Record.Tombstone
	}
	if err := d.admit(deletions); err != nil {
		return 0, err
	}
	applied := 0
	for _, kr := range recs {
		res, _, err := d.apply(spaceKey(spaceData, kr.Key), kr.Record, true, false)
		if err != nil {
			return applied, fmt.Errorf("storage: key %q: %w", kr.Key, err)
		}
		if res.Applied {
			applied++
		}
	}
	if applied > 0 && d.wo.Sync {
		// The WAL is written in order: syncing a record written after the
		// batch makes every record before it durable.
		if err := d.engine("sync", func() error { return d.db.LogData([]byte{0}, pebble.Sync) }); err != nil {
			return applied, fmt.Errorf("storage: sync: %w: %w", err, errcode.IO)
		}
	}
	return applied, nil
}

// apply stores rec under the Pebble key pk if it is newer than what is
// there (last writer wins), and returns whether a record was there before.
// counted says whether the data counters follow this key space; sync
// whether to wait for the write to be durable.
func (d *DB) apply(pk []byte, rec kv.Record, counted, sync bool) (ApplyResult, bool, error) {
	if err := d.admit(rec.Tombstone); err != nil {
		return ApplyResult{}, false, err
	}
	st, h := d.stripe(pk)
	st.mu.Lock()
	b := d.db.NewBatch()
	s, res, err := d.stage(st, h, pk, rec, b)
	if err != nil || !s.write {
		st.mu.Unlock()
		b.Close()
		return res, s.found, err
	}
	// The new record is visible once applied; the stripe is released before
	// waiting for the fsync so that writes of the same key share fsyncs too.
	err = d.engine("write", func() error {
		if sync {
			return d.db.ApplyNoSyncWait(b, pebble.Sync)
		}
		return d.db.Apply(b, pebble.NoSync)
	})
	d.settle(s, counted, err)
	st.mu.Unlock()
	if err == nil && sync {
		err = d.engine("sync", b.SyncWait)
	}
	if !d.faults.wedged.Load() {
		b.Close() // a batch a panic left inside the engine is the engine's
	}
	if err != nil {
		return ApplyResult{}, false, fmt.Errorf("write: %w: %w", err, errcode.IO)
	}
	return ApplyResult{Applied: true, Current: rec.Version}, s.found, nil
}

// staged is a record written into a Pebble batch and not committed yet:
// what settle needs once the batch is.
type staged struct {
	write   bool // false: the stored record is as new; nothing was written
	found   bool // a record was stored before
	st      *stripe
	h       uint64
	pk      []byte
	rec     kv.Record
	old     header
	enc     []byte
	repairs bool // the key was set aside as corrupt: the write repairs it
}

// stage writes rec under pk into b if it is newer than the stored record
// (or there is none). pk's stripe st (h its hash) must be held until the
// batch is committed and the write settled. When nothing is to be
// written, the result says what is stored.
func (d *DB) stage(st *stripe, h uint64, pk []byte, rec kv.Record, b *pebble.Batch) (staged, ApplyResult, error) {
	old, found, err := d.lockedHeader(st, pk, h)
	if errors.Is(err, ErrCorrupt) {
		// Set aside: the write takes its place, whatever its version.
		d.setAsideLocked(st, pk, h)
		old, found, err = header{}, false, nil
	}
	if err != nil {
		return staged{}, ApplyResult{}, err
	}
	if found && !rec.Version.Newer(old.version) {
		return staged{found: true}, ApplyResult{Current: old.version}, nil
	}
	enc := encodeRecord(rec, d.compress)
	if err := errors.Join(b.Set(pk, enc, nil), indexSet(b, pk, enc)); err != nil {
		return staged{}, ApplyResult{}, fmt.Errorf("%w: %w", err, errcode.IO)
	}
	repairs := d.quar.has(pk)
	if repairs {
		b.Delete(spaceKey(spaceQuarantine, pk), nil)
	}
	return staged{write: true, found: found, st: st, h: h, pk: pk, rec: rec, old: old, enc: enc, repairs: repairs}, ApplyResult{}, nil
}

// settle records a staged write once its batch was committed (err nil) or
// failed: caches, counters, the space budget. Its stripe must be held.
func (d *DB) settle(s staged, counted bool, err error) {
	if err != nil {
		s.st.forget(s.pk, s.h) // what Pebble holds is not known
		return
	}
	if s.repairs {
		d.quar.remove(s.pk)
	}
	if !s.rec.Tombstone {
		d.spend(len(s.pk) + len(s.enc))
	}
	nh, _ := decodeHeader(s.enc)
	s.st.remember(s.pk, s.h, nh, true, d.perCache)
	if counted {
		if s.found {
			d.account(s.old, -1)
		}
		d.account(nh, 1)
	}
}

// lockedHeader is header through the stripe's cache: pk hashes to st and
// h, and st.mu must be held.
func (d *DB) lockedHeader(st *stripe, pk []byte, h uint64) (header, bool, error) {
	if hd, found, ok := st.lookup(pk, h); ok {
		return hd, found, nil
	}
	hd, found, err := d.header(pk)
	if err == nil {
		st.remember(pk, h, hd, found, d.perCache)
	}
	return hd, found, err
}

// header reads the header stored under pk from Pebble.
func (d *DB) header(pk []byte) (header, bool, error) {
	v, closer, err := d.db.Get(pk)
	if errors.Is(err, pebble.ErrNotFound) {
		return header{}, false, nil
	}
	if err != nil {
		return header{}, false, d.readErr(err)
	}
	defer closer.Close()
	h, err := decodeHeader(v)
	return h, err == nil, err
}

// ScanOptions select what Scan returns.
type ScanOptions struct {
	Tombstones bool // include tombstones
	NoValues   bool // skip reading values: records carry only versions
}

// Scan calls fn for each record in key order, from start (inclusive) on,
// until fn returns false. The key passed to fn is only valid during the
// call; the record's value may be kept.
func (d *DB) Scan(start []byte, o ScanOptions, fn func(key []byte, rec kv.Record) bool) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	corrupt, err := d.scan(start, o, fn)
	// Records that failed their checksum were skipped; they are set aside
	// once the iterator is closed.
	for _, pk := range corrupt {
		d.corruptFound(pk)
	}
	return err
}

// scan is Scan but for the records found corrupt, whose Pebble keys it
// returns.
func (d *DB) scan(start []byte, o ScanOptions, fn func(key []byte, rec kv.Record) bool) (corrupt [][]byte, err error) {
	it, err := d.db.NewIter(spaceBounds(spaceData, start))
	if err != nil {
		return nil, fmt.Errorf("storage: %w", d.readErr(err))
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return corrupt, fmt.Errorf("storage: %w", d.readErr(err))
		}
		var rec kv.Record
		if o.NoValues {
			h, err := decodeHeader(v)
			if err != nil {
				corrupt = append(corrupt, append([]byte(nil), it.Key()...))
				continue
			}
			rec = h.record()
		} else if rec, err = decodeRecord(v); err != nil {
			corrupt = append(corrupt, append([]byte(nil), it.Key()...))
			continue
		}
		if rec.Tombstone && !o.Tombstones {
			continue
		}
		if !fn(it.Key()[1:], rec) {
			break
		}
	}
	if err := it.Error(); err != nil {
		return corrupt, fmt.Errorf("storage: %w", d.readErr(err))
	}
	return corrupt, nil
}

// Stats returns the engine's counters.
func (d *DB) Stats() Stats {
	return Stats{LiveKeys: d.live.Load(), Tombstones: d.tombs.Load(), LiveBytes: d.bytes.Load(),
		Corrupt: d.quar.found.Load(), Quarantined: d.quar.n.Load(), DiskSlow: d.diskSlow.Load(),
		Refused: d.refused.Load()}
}

// InMemory reports whether the engine keeps nothing on disk.
func (d *DB) InMemory() bool { return d.opts.InMemory }

// Synced reports whether writes wait for fsync.
func (d *DB) Synced() bool { return d.wo.Sync }

// Close waits for operations under way and closes the engine; later
// calls return ErrClosed. It returns within Options.CloseTimeout: an
// engine that does not close by then (a disk that stalls) is abandoned,
// which is no worse than a crash, and so is at once an engine that
// panicked during a write (it holds its commit lock for ever).
func (d *DB) Close() error {
	if !d.closing.CompareAndSwap(false, true) {
		return nil
	}
	if d.faults.wedged.Load() {
		return fmt.Errorf("storage: close: the engine panicked during a write and was abandoned: %w", errcode.IO)
	}
	timeout := d.opts.CloseTimeout
	if timeout <= 0 {
		timeout = DefaultCloseTimeout
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("the engine panicked: %v", p)
			}
		}()
		d.mu.Lock()
		defer d.mu.Unlock()
		d.closed = true
		done <- errors.Join(d.closeSnapshots(), d.db.Close())
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("storage: close: %w: %w", err, errcode.IO)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("storage: close: not done after %v: the engine was abandoned: %w", timeout, errcode.IO)
	}
}

// pebbleLogger sends Pebble's messages to slog at debug level (errors at
// error level), so a server is quiet by default.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...interface{}) {
	if p.l != nil {
		p.l.Debug("pebble", "msg", fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Errorf(format string, args ...interface{}) {
	if p.l != nil {
		p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
	}
}

func (p pebbleLogger) Fatalf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error("pebble fatal", "msg", msg)
	}
	fmt.Fprintln(os.Stderr, "pebble fatal:", msg)
	os.Exit(int(errcode.IO.ExitStatus()))
}
