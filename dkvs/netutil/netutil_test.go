package netutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestTemporary(t *testing.T) {
	// As Accept and ReadFrom return them: an errno inside *os.SyscallError
	// inside *net.OpError.
	op := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	cases := []struct {
		name            string
		err             error
		temporary, read bool
	}{
		{"EMFILE", op(syscall.EMFILE), true, true},
		{"ENFILE", op(syscall.ENFILE), true, true},
		{"ENOBUFS", op(syscall.ENOBUFS), true, true},
		{"ENOMEM", op(syscall.ENOMEM), true, true},
		{"ECONNABORTED", op(syscall.ECONNABORTED), true, true},
		{"EPROTO (accept(2))", op(syscall.EPROTO), true, true},
		{"ENETUNREACH (accept(2))", op(syscall.ENETUNREACH), true, true},
		{"wrapped EMFILE", fmt.Errorf("accept: %w", op(syscall.EMFILE)), true, true},
		{"deadline", &net.OpError{Op: "read", Net: "udp", Err: os.ErrDeadlineExceeded}, true, true},
		{"ECONNREFUSED", op(syscall.ECONNREFUSED), false, true},
		{"ECONNRESET", op(syscall.ECONNRESET), false, true},
		{"closed", &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false, false},
		{"EBADF", op(syscall.EBADF), false, false},
		{"EINVAL", op(syscall.EINVAL), false, false},
		{"EOF", io.EOF, false, false},
		{"plain", errors.New("broken"), false, false},
	}
	for _, tc := range cases {
		if got := Temporary(tc.err); got != tc.temporary {
			t.Errorf("%s: Temporary %v, want %v", tc.name, got, tc.temporary)
		}
		if got := TemporaryRead(tc.err); got != tc.read {
			t.Errorf("%s: TemporaryRead %v, want %v", tc.name, got, tc.read)
		}
	}
}

// closed is a done channel already closed: Wait returns at once.
func closed() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func TestBackoffDelays(t *testing.T) {
	var b Backoff
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for round := range 2 {
		for i, w := range want {
			if err := b.Wait(closed(), syscall.EMFILE); err != nil {
				t.Fatalf("round %d, error %d: Wait returned %v for a temporary error", round, i, err)
			}
			if b.delay != w*time.Millisecond {
				t.Fatalf("round %d, error %d: waited %v, want %v", round, i, b.delay, w*time.Millisecond)
			}
		}
		b.Reset() // the streak is over: the next one starts short again
	}
}

func TestBackoffWaits(t *testing.T) {
	var b Backoff
	start := time.Now()
	if err := b.Wait(make(chan struct{}), syscall.ENFILE); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < MinDelay {
		t.Fatalf("Wait returned after %v, before the first delay of %v", d, MinDelay)
	}
}

func TestBackoffReturnsOtherErrors(t *testing.T) {
	var b Backoff
	for _, err := range []error{net.ErrClosed, syscall.EBADF, io.EOF} {
		if got := b.Wait(make(chan struct{}), err); got != err {
			t.Errorf("Wait(%v) = %v, want the error itself", err, got)
		}
	}
	// A Temporary of its own decides instead.
	b.Temporary = func(err error) bool { return errors.Is(err, io.EOF) }
	if err := b.Wait(closed(), io.EOF); err != nil {
		t.Errorf("Wait(EOF) with a Temporary that accepts it = %v", err)
	}
	if err := b.Wait(closed(), syscall.EMFILE); err == nil {
		t.Error("Wait(EMFILE) with a Temporary that refuses it = nil")
	}
}

// records keeps the log records' levels and messages.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func TestBackoffLogsOncePerStreak(t *testing.T) {
	rec := &records{}
	b := Backoff{Logger: slog.New(rec), Op: "test accept"}
	for range 2 {
		for range 20 {
			b.Wait(closed(), syscall.EMFILE)
		}
		b.Reset()
		b.Reset() // no streak: nothing to say
	}
	want := []string{"WARN temporary error: waiting, then trying again", "INFO temporary errors passed"}
	want = append(want, want...)
	if fmt.Sprint(rec.msgs) != fmt.Sprint(want) {
		t.Fatalf("logged %q, want %q", rec.msgs, want)
	}
}

// flakyListener fails its first Accepts with EMFILE, as a process out of
// file descriptors does, then accepts from the real listener.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestAcceptLoop runs the loop of Backoff's documentation over a listener
// that runs out of file descriptors: it keeps serving, and stops with nil
// once closed.
func TestAcceptLoop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln, fails: 4}
	var closing sync.Mutex
	isClosing := false
	done := make(chan struct{})
	accepted := make(chan net.Conn, 1)
	served := make(chan error, 1)
	go func() {
		b := Backoff{Op: "test accept"}
		for {
			nc, err := fl.Accept()
			if err != nil {
				closing.Lock()
				c := isClosing
				closing.Unlock()
				if c {
					served <- nil
					return
				}
				if err := b.Wait(done, err); err != nil {
					served <- err
					return
				}
				continue
			}
			b.Reset()
			accepted <- nc
		}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case nc := <-accepted:
		nc.Close()
	case err := <-served:
		t.Fatalf("the loop stopped with %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
	closing.Lock()
	isClosing = true
	closing.Unlock()
	close(done)
	ln.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("the loop stopped with %v after the listener closed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not stop")
	}
}
