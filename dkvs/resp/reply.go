package resp

import (
	"strconv"

	"github.com/tidwall/redcon"
)

// protocol is the RESP version a connection speaks: RESP2 until the
// client switches with HELLO 3 (and back with HELLO 2). The types both
// versions share (simple strings, errors, integers, bulk strings, arrays)
// are written the same way; protocol encodes the ones that differ, as
// Redis 7 does: RESP2 has no null, map, set or verbatim type and writes
// them as a null bulk string, a flat array, an array and a bulk string.
type protocol int32

const (
	resp2 protocol = 2
	resp3 protocol = 3
)

// appendNull appends "no value" (a missing key, an unset client name).
func (p protocol) appendNull(out []byte) []byte {
	if p == resp3 {
		return append(out, "_\r\n"...)
	}
	return redcon.AppendNull(out)
}

// appendMap appends the header of a map of n pairs; the 2n keys and
// values follow.
func (p protocol) appendMap(out []byte, n int) []byte {
	if p == resp3 {
		return appendHeader(out, '%', n)
	}
	return redcon.AppendArray(out, 2*n)
}

// appendSet appends the header of a set of n elements.
func (p protocol) appendSet(out []byte, n int) []byte {
	if p == resp3 {
		return appendHeader(out, '~', n)
	}
	return redcon.AppendArray(out, n)
}

// appendText appends human-readable text (INFO, CLIENT INFO): a verbatim
// string of format "txt" in RESP3, a bulk string in RESP2.
func (p protocol) appendText(out []byte, s string) []byte {
	if p != resp3 {
		return redcon.AppendBulkString(out, s)
	}
	out = appendHeader(out, '=', len(s)+4)
	out = append(out, "txt:"...)
	out = append(out, s...)
	return append(out, '\r', '\n')
}

func appendHeader(out []byte, kind byte, n int) []byte {
	out = append(out, kind)
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, '\r', '\n')
}
