package wire

import (
	"fmt"

	"github.com/dkvs/dkvs/dkvs/kv"
)

// StorageState is what a server's storage takes: every write, deletions
// only, or none. A ping answer carries it when it is not StorageOK, and so
// does a write refused because of it (StatusStorage).
type StorageState uint8

// Storage states.
const (
	// StorageOK takes every write.
	StorageOK StorageState = 0
	// StorageFull: the free space of the data directory is below the
	// server's --min-free-space; new values are refused, deletions taken.
	StorageFull StorageState = 1
	// StorageSlow: a sync of the write-ahead log has been waiting for
	// seconds; writes are refused until it returns.
	StorageSlow StorageState = 2
	// StorageFailed: the storage engine failed; writes are refused until
	// the server restarts. Reads are still tried.
	StorageFailed StorageState = 3
)

var storageNames = [...]string{"ok", "full", "slow", "failed"}

// String returns the state's name: ok, full, slow or failed.
func (s StorageState) String() string {
	if int(s) < len(storageNames) {
		return storageNames[s]
	}
	return fmt.Sprintf("storage(%d)", uint8(s))
}

// ParseStorageState is the inverse of String; "" is StorageOK (a server
// that does not report its storage).
func ParseStorageState(s string) (StorageState, bool) {
	if s == "" {
		return StorageOK, true
	}
	for i, n := range storageNames {
		if n == s {
			return StorageState(i), true
		}
	}
	return StorageOK, false
}

// Writable reports whether a server in state s takes a write; deletion
// says the write only removes data (a tombstone), which a full server
// takes.
func (s StorageState) Writable(deletion bool) bool {
	return s == StorageOK || (s == StorageFull && deletion)
}

// AppendPing appends the body of a ping response: the server's clock, and
// its storage state when that is not StorageOK (a ping answer of 20 bytes
// says StorageOK, which servers that know no storage states send).
func AppendPing(b []byte, v kv.Version, st StorageState) []byte {
	b = v.AppendBinary(b)
	if st != StorageOK {
		b = append(b, byte(st))
	}
	return b
}

// DecodePing decodes the body of a ping response.
func DecodePing(body []byte) (kv.Version, StorageState, error) {
	switch len(body) {
	case kv.VersionSize:
		v, err := kv.DecodeVersion(body)
		return v, StorageOK, err
	case kv.VersionSize + 1:
		st := StorageState(body[kv.VersionSize])
		if st == StorageOK || int(st) >= len(storageNames) {
			return kv.Version{}, StorageOK, fmt.Errorf("%w: ping storage state %d", ErrMalformed, st)
		}
		v, err := kv.DecodeVersion(body[:kv.VersionSize])
		return v, st, err
	}
	return kv.Version{}, StorageOK, fmt.Errorf("%w: ping answer of %d bytes", ErrMalformed, len(body))
}

// AppendRefusal appends the body of a StatusStorage response: the state
// that made the server refuse the write (1 byte), then a message.
func AppendRefusal(b []byte, st StorageState, msg string) []byte {
	return AppendMessage(append(b, byte(st)), msg)
}

// DecodeRefusal decodes the body of a StatusStorage response.
func DecodeRefusal(body []byte) (StorageState, string, error) {
	r := reader{b: body}
	st := StorageState(r.u8("storage state"))
	if r.err == nil && (st == StorageOK || int(st) >= len(storageNames)) {
		r.fail("storage state")
	}
	msg := r.bytes("message")
	return st, string(msg), r.done()
}
