// Package limits holds the sizes of keys and values that dkvs accepts and
// the one check of them that every entry point makes: the coordinator (so
// the Go client and the C library), the server (native requests,
// datagrams, the pairs on its command line) and the Redis protocol. Keys
// are 1 to MaxKeySize bytes, values 0 to MaxValueSize bytes; the defaults
// are those of design.md, 64 KiB and 16 MiB. It is pure: no I/O.
package limits

import (
	"errors"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// The default limits, a server's unless its flags say otherwise.
const (
	DefaultMaxKeySize   = 64 << 10
	DefaultMaxValueSize = 16 << 20
)

// Limits bound keys and values. A field of zero (or less) means its
// default: see OrDefault.
type Limits struct {
	// MaxKeySize is the largest key in bytes.
	MaxKeySize int
	// MaxValueSize is the largest value in bytes.
	MaxValueSize int
}

// Default returns the default limits.
func Default() Limits {
	return Limits{MaxKeySize: DefaultMaxKeySize, MaxValueSize: DefaultMaxValueSize}
}

// OrDefault returns l with every limit that is not positive replaced by
// its default, so that an options struct's zero value means the defaults.
func (l Limits) OrDefault() Limits {
	if l.MaxKeySize <= 0 {
		l.MaxKeySize = DefaultMaxKeySize
	}
	if l.MaxValueSize <= 0 {
		l.MaxValueSize = DefaultMaxValueSize
	}
	return l
}

// Error is a key or value outside the limits. It wraps
// errcode.InvalidArg, so errors.Is(err, errcode.InvalidArg) holds and
// errcode.Of gives ERR_INVALID_ARGUMENT.
type Error struct {
	// What is "key" or "value".
	What string
	// Size is the length refused, in bytes.
	Size int
	// Limit is the limit Size is above; 0 for an empty key.
	Limit int
}

// TooLarge reports whether the error is a size above a limit rather than
// an empty key: the native protocol answers the two with different
// statuses.
func (e *Error) TooLarge() bool { return e.Limit > 0 }

// Detail is the message without the code's: what a protocol that carries
// its own status sends.
func (e *Error) Detail() string {
	if !e.TooLarge() {
		return "empty " + e.What
	}
	return fmt.Sprintf("%s of %d bytes is above the limit of %d", e.What, e.Size, e.Limit)
}

// Error returns the detail followed by the code's message, as an error
// wrapping the code with fmt.Errorf("...: %w") would print.
func (e *Error) Error() string { return e.Detail() + ": " + errcode.InvalidArg.Error() }

// Unwrap returns errcode.InvalidArg.
func (e *Error) Unwrap() error { return errcode.InvalidArg }

// As returns the *Error in err's chain, if there is one.
func As(err error) (*Error, bool) {
	if err == nil {
		return nil, false // errors.As would allocate e
	}
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CheckKey refuses an empty key and a key above MaxKeySize.
func (l Limits) CheckKey(key []byte) error {
	l = l.OrDefault()
	if len(key) == 0 {
		return &Error{What: "key"}
	}
	if len(key) > l.MaxKeySize {
		return &Error{What: "key", Size: len(key), Limit: l.MaxKeySize}
	}
	return nil
}

// CheckValue refuses a value above MaxValueSize; an empty value is fine.
func (l Limits) CheckValue(value []byte) error {
	l = l.OrDefault()
	if len(value) > l.MaxValueSize {
		return &Error{What: "value", Size: len(value), Limit: l.MaxValueSize}
	}
	return nil
}

// CheckRecord checks a key and its value, the key first.
func (l Limits) CheckRecord(key, value []byte) error {
	if err := l.CheckKey(key); err != nil {
		return err
	}
	return l.CheckValue(value)
}

// Batches of replica requests (the native protocol's batch op): a batch
// holds at most MaxBatchItems requests, and a sender fills one up to
// MaxBatchBytes (a request larger than that travels alone), which keeps a
// batch far below the frame limit of any server whose key and value
// limits are the sender's.
const (
	MaxBatchItems = 1024
	MaxBatchBytes = 1 << 20
)

// BatchBytes is the size up to which a sender with these limits fills a
// batch: MaxBatchBytes, or less when the largest key and value are
// smaller, so that a batch never exceeds a lone request's largest frame.
func (l Limits) BatchBytes() int {
	l = l.OrDefault()
	return min(MaxBatchBytes, l.MaxKeySize+l.MaxValueSize)
}
