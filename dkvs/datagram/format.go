// Package datagram serves the DKVS datagram protocol of cs202.md section 6
// over UDP, so that the clients and monitors of the DKVS teaching system
// can read, write and dump one dkvs server.
//
// One datagram is one message; there is no length prefix and no trailing
// NUL. The kind of a request is decided by its bytes alone:
//
//	request            bytes                     reply
//	dump               empty                     "storing K key-value pairs:\n" then
//	                                             "key --> value\n" per pair, in one or
//	                                             more datagrams (see EncodeDump)
//	put                key \0 value              "\0" stored; empty datagram refused
//	get                key (no \0, >= 1 byte)    the value (0 bytes for an empty value);
//	                                             "\0" not found
//
// The edge cases follow from that table:
//
//   - Any datagram containing a NUL byte is a put, split at its first NUL:
//     the key is what comes before (it cannot contain NUL), the value is
//     everything after (it may contain NUL bytes).
//   - "\0" alone is a put with an empty key: refused (empty reply).
//   - "key\0" is a put of the empty value under key, not a get: a client
//     that sends its key as a C string with its terminating NUL overwrites
//     the value. The format says "no trailing NUL"; this package does what
//     the bytes say.
//   - "\0value" is a put with an empty key: refused.
//   - A get can therefore never ask for a key containing NUL; such keys
//     (which the native protocol can store) are still listed by dump.
//
// Keys and values are at most 32753 bytes each in this format (so that a
// put fits in one 65507-byte datagram). A put with a longer key or value
// is refused; a get with a longer key is not answered (the format has no
// "error" reply, and "\0" would claim the key does not exist); a get whose
// value is longer than 32753 bytes is not answered either, for the same
// reason; a dump leaves such pairs out (see EncodeDump).
//
// Requests read and write only the server that receives them (Local): a
// put is stored on this server alone with a fresh version, and the sender
// does any fan-out itself.
package datagram

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Limits of the format.
const (
	// MaxDatagram is the largest UDP payload over IPv4.
	MaxDatagram = 65507
	// MaxKeySize and MaxValueSize bound keys and values in this format:
	// (65507 - 1) / 2.
	MaxKeySize   = 32753
	MaxValueSize = 32753
)

// Kind is the kind of a request.
type Kind uint8

// The kinds of request.
const (
	KindDump Kind = iota + 1
	KindPut
	KindGet
)

// String names the kind: dump, put or get.
func (k Kind) String() string {
	switch k {
	case KindDump:
		return "dump"
	case KindPut:
		return "put"
	case KindGet:
		return "get"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Request is a parsed datagram. Key and Value alias the datagram.
type Request struct {
	Kind  Kind
	Key   []byte
	Value []byte // puts only
}

// Errors of Parse: the request has a kind but breaks the format's rules.
var (
	ErrEmptyKey    = errors.New("datagram: empty key")
	ErrKeyTooLong  = fmt.Errorf("datagram: key longer than %d bytes", MaxKeySize)
	ErrValueTooBig = fmt.Errorf("datagram: value longer than %d bytes", MaxValueSize)
)

// Parse classifies datagram d. On error the returned Request still has
// its Kind, so that the server knows how to answer (a refused put gets an
// empty datagram, a bad get no reply).
func Parse(d []byte) (Request, error) {
	if len(d) == 0 {
		return Request{Kind: KindDump}, nil
	}
	if i := bytes.IndexByte(d, 0); i >= 0 {
		r := Request{Kind: KindPut, Key: d[:i], Value: d[i+1:]}
		switch {
		case i == 0:
			return r, ErrEmptyKey
		case len(r.Key) > MaxKeySize:
			return r, ErrKeyTooLong
		case len(r.Value) > MaxValueSize:
			return r, ErrValueTooBig
		}
		return r, nil
	}
	r := Request{Kind: KindGet, Key: d}
	if len(d) > MaxKeySize {
		return r, ErrKeyTooLong
	}
	return r, nil
}

// Replies of gets and puts.
var (
	replyNotFound = []byte{0} // get: no such key (or deleted)
	replyStored   = []byte{0} // put: stored
	replyRefused  = []byte{}  // put: refused
)

// Pair is a key and its value.
type Pair struct{ Key, Value []byte }

const dumpSep = " --> "

// DumpLineLen is the length of a pair's line in a dump.
func DumpLineLen(key, value []byte) int { return len(key) + len(dumpSep) + len(value) + 1 }

// Dumpable reports whether a pair can appear in a dump: key and value
// within the format's limits, and its line within one datagram. The line
// limit is tighter than the two others together: a 32753-byte key with a
// 32753-byte value makes a 65512-byte line, which no datagram can carry,
// so such pairs are left out (and not counted) rather than split.
func Dumpable(key, value []byte) bool {
	return len(key) <= MaxKeySize && len(value) <= MaxValueSize && DumpLineLen(key, value) <= MaxDatagram
}

// DumpHeader is the first line of a dump of k pairs ("pairs" even for 1).
func DumpHeader(k int) string { return "storing " + strconv.Itoa(k) + " key-value pairs:\n" }

// EncodeDump returns the datagrams of a dump of pairs, which must all be
// Dumpable: the first starts with DumpHeader(len(pairs)); each pair's
// line goes whole into the current datagram if it fits within MaxDatagram
// bytes, else it starts the next one, so no pair straddles two
// datagrams. A pair whose line does not fit after the header starts the
// second datagram (the first then holds the header alone).
func EncodeDump(pairs []Pair) [][]byte {
	cur := []byte(DumpHeader(len(pairs)))
	var out [][]byte
	for _, p := range pairs {
		if len(cur)+DumpLineLen(p.Key, p.Value) > MaxDatagram {
			out = append(out, cur)
			cur = make([]byte, 0, MaxDatagram)
		}
		cur = append(cur, p.Key...)
		cur = append(cur, dumpSep...)
		cur = append(cur, p.Value...)
		cur = append(cur, '\n')
	}
	return append(out, cur)
}
