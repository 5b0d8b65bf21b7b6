// Package netutil is what dkvs's servers share about serving sockets: the
// one policy of their accept and read loops toward errors.
//
// A server that stops serving because the process ran out of file
// descriptors for a moment turns a passing overload into an outage, and
// one that retries at once spins a CPU and floods its log. So every loop
// (the native protocol's accept, the Redis protocol's accept, the
// datagram protocol's read) waits out a temporary error with a Backoff and
// stops only on an error that will not pass.
package netutil

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// The waits of a Backoff: the first after an error, doubling up to the
// last. The first is short because a descriptor is often freed within
// milliseconds; the cap keeps a long streak from delaying recovery.
const (
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
)

// Temporary reports whether err, returned by Accept or ReadFrom, may pass
// if the call is tried again: the process or the system is out of file
// descriptors, buffers or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), a
// connection was aborted before it could be accepted (ECONNABORTED) or
// failed while it waited, or a deadline passed.
func Temporary(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED:
			return true
		// Linux's accept reports a pending connection's network error
		// itself, and accept(2) says to treat these "like EAGAIN by
		// retrying" (ENONET, also listed, is Linux's alone and rare).
		case syscall.ENETDOWN, syscall.EPROTO, syscall.ENOPROTOOPT, syscall.EHOSTDOWN,
			syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH:
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TemporaryRead is Temporary for the reads of a packet socket, which also
// waits out the errors that report an earlier datagram's fate (an ICMP
// "port unreachable" for a reply, on systems that deliver it to an
// unconnected socket): the socket itself is fine.
func TemporaryRead(err error) bool {
	return Temporary(err) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Backoff paces one accept or read loop through a streak of temporary
// errors: it waits MinDelay after the first, doubling up to MaxDelay, and
// logs once when a streak begins and once when it ends, not once per
// error. The zero value is ready to use; a Backoff belongs to one loop.
//
// A loop uses it so:
//
//	nc, err := ln.Accept()
//	if err != nil {
//		if closing() {
//			return nil
//		}
//		if err := b.Wait(done, err); err != nil {
//			return err
//		}
//		continue
//	}
//	b.Reset()
type Backoff struct {
	// Logger receives a warning when a streak begins and a line when it
	// ends; nil discards.
	Logger *slog.Logger
	// Op names the failing call in the log, e.g. "resp accept".
	Op string
	// Temporary says which errors are waited out (default Temporary).
	Temporary func(error) bool

	delay  time.Duration // the last wait; zero outside a streak
	errors int           // in the current streak
	since  time.Time     // when the streak began
}

// Wait decides what the loop does with err, the error of its last Accept
// or ReadFrom. For a temporary error it waits the next delay (or until
// done is closed) and returns nil: the loop calls again. Any other error
// is returned: the loop stops with it. The loop checks its own shutdown
// before, since a closed socket's error (net.ErrClosed) is not temporary.
func (b *Backoff) Wait(done <-chan struct{}, err error) error {
	temporary := b.Temporary
	if temporary == nil {
		temporary = Temporary
	}
	if !temporary(err) {
		return err
	}
	b.delay = b.next()
	if b.errors == 0 {
		b.since = time.Now()
		b.logger().Warn("temporary error: waiting, then trying again",
			"op", b.Op, "err", err, "retry_in", b.delay)
	}
	b.errors++
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
	return nil
}

// Reset ends a streak: the loop's call succeeded.
func (b *Backoff) Reset() {
	if b.errors == 0 {
		return
	}
	b.logger().Info("temporary errors passed", "op", b.Op, "errors", b.errors,
		"for", time.Since(b.since).Round(time.Millisecond))
	b.delay, b.errors = 0, 0
}

// next is the wait after one more error in the streak.
func (b *Backoff) next() time.Duration {
	return min(max(2*b.delay, MinDelay), MaxDelay)
}

func (b *Backoff) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}
