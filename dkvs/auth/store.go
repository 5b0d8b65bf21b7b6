package auth

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Store is the users file a server serves with: its table, swapped whole
// when the file is reloaded so that readers never see half a file.
type Store struct {
	path  string
	log   *slog.Logger
	table atomic.Pointer[Table]
	// mu serializes reloads; stamp is the file's modification time and
	// size at the last load (or failed load).
	mu    sync.Mutex
	stamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Open loads the users file at path. log may be nil.
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{path: path, log: log}
	t, st, err := load(path)
	if err != nil {
		return nil, err
	}
	s.table.Store(t)
	s.stamp = st
	return s, nil
}

// NewStore returns a store holding t, for tests and in-process servers
// that have no file.
func NewStore(t *Table) *Store {
	s := &Store{log: slog.New(slog.DiscardHandler)}
	s.table.Store(t)
	return s
}

func load(path string) (*Table, fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("users file: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("users file: %w", err)
	}
	t, err := Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("users file %s: %w", path, err)
	}
	return t, fileStamp{fi.ModTime(), fi.Size()}, nil
}

// Table returns the current users.
func (s *Store) Table() *Table { return s.table.Load() }

// Reload reads the file again. A file that does not load keeps the
// users as they were; the error says why and is logged.
func (s *Store) Reload() error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

func (s *Store) reload() error {
	t, st, err := load(s.path)
	if err != nil {
		s.log.Error("users file not reloaded: keeping the users as they were", "err", err)
		return err
	}
	s.table.Store(t)
	s.stamp = st
	s.log.Info("users file reloaded", "path", s.path, "users", len(t.users))
	return nil
}

// DefaultPoll is how often Watch looks at the users file.
const DefaultPoll = 2 * time.Second

// Watch reloads the file when its modification time or size changes, or
// when a value arrives on hup (SIGHUP), until ctx ends; every <= 0 is
// DefaultPoll. Run it in one goroutine.
func (s *Store) Watch(ctx context.Context, every time.Duration, hup <-chan struct{}) {
	if every <= 0 {
		every = DefaultPoll
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = s.Reload() // logged
		case <-tick.C:
			s.poll()
		}
	}
}

// poll reloads the file if it changed since the last load.
func (s *Store) poll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		if s.stamp != (fileStamp{}) {
			s.log.Error("users file unreadable: keeping the users as they were", "err", err)
			s.stamp = fileStamp{}
		}
		return
	}
	st := fileStamp{fi.ModTime(), fi.Size()}
	if st != s.stamp && s.reload() != nil {
		s.stamp = st // logged once: not again until the file changes
	}
}
