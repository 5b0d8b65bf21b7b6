package resp

import (
	"fmt"
	"io"
)

// guard sits between a connection and redcon's command reader and checks
// the request stream's framing before redcon sees it.
//
// redcon v1.6.2 trusts the lengths it reads: a multibulk count of 10^18
// makes it loop for ages, a bulk length near 2^63 overflows an index and
// panics, and a large length makes it grow its buffer for as long as the
// client sends. The guard follows the same grammar with a small state
// machine (linear, no buffering of its own), refuses counts and lengths
// above the limits, and withholds the offending header's last byte so
// that redcon never parses it: redcon gets the commands before the bad
// one, then the guard's error.
//
// It also returns from Read only once a command has ended or p is full,
// so that redcon, which re-parses an incomplete command from its start on
// every read, parses a large command a few times rather than once per
// network packet.
type guard struct {
	r   io.Reader
	lim guardLimits
	err error // returned by every Read once set

	st       guardState
	num      int64 // value of the header being read
	digits   int   // digits of the header being read
	argsLeft int64 // bulks still expected in the current multibulk
	bulkLeft int64 // payload bytes still expected in the current bulk
	cmdBytes int64 // bytes of the current command so far

	// framed counts the multibulk commands that have ended and
	// inlineSeen whether any inline command was seen since resetCount:
	// the connection compares framed with the commands it got from
	// redcon to know when redcon's buffer is empty.
	framed     uint64
	inlineSeen bool
	largest    int64 // largest command since resetCount, in bytes
}

type guardLimits struct {
	maxArgs    int64
	maxRequest int64
	maxInline  int64
}

type guardState uint8

const (
	gsStart     guardState = iota // at a command boundary
	gsInline                      // inside an inline command line
	gsCount                       // digits of "*<count>"
	gsCountLF                     // '\n' after the count's '\r'
	gsDollar                      // '$' of the next bulk
	gsBulkLen                     // digits of "$<len>"
	gsBulkLenLF                   // '\n' after the length's '\r'
	gsBulkData                    // payload
	gsBulkCR                      // '\r' after the payload
	gsBulkLF                      // '\n' after the payload
)

// maxHeaderDigits keeps header numbers far from overflow: 18 digits are
// below 2^63 whatever they are.
const maxHeaderDigits = 18

// protocolError is a malformed or oversized request: the connection
// answers "ERR Protocol error: ..." and closes, as Redis does.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "Protocol error: " + e.msg }

func newGuard(r io.Reader, lim guardLimits) *guard {
	return &guard{r: r, lim: lim}
}

// Read reads from the connection into p, checking every byte, and returns
// once a command has ended in what it read, p is full or reading fails.
func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n := 0
	for n < len(p) {
		m, rerr := g.r.Read(p[n:])
		k, ended, perr := g.scan(p[n : n+m])
		n += k
		if perr != nil {
			g.err = perr
			break
		}
		if rerr != nil {
			g.err = rerr
			break
		}
		if ended || g.st == gsStart {
			break
		}
	}
	if n == 0 && g.err != nil {
		return 0, g.err
	}
	return n, nil
}

// scan checks b and returns how many of its bytes may be passed on,
// whether a command ended in them, and the protocol error found, if any.
func (g *guard) scan(b []byte) (n int, ended bool, err error) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch g.st {
		case gsStart:
			g.cmdBytes = 0
			if c == '*' {
				g.st, g.num, g.digits = gsCount, 0, 0
			} else {
				g.st = gsInline
				g.inlineSeen = true
				i-- // the byte is part of the line
				continue
			}
		case gsInline:
			if c == '\n' {
				g.st = gsStart
				ended = true
			} else if g.cmdBytes >= g.lim.maxInline {
				return i, ended, &protocolError{"too big inline request"}
			}
		case gsCount, gsBulkLen:
			switch {
			case c >= '0' && c <= '9' && g.digits < maxHeaderDigits:
				g.num = g.num*10 + int64(c-'0')
				g.digits++
			case c == '\r' && g.digits > 0:
				g.st++ // gsCountLF or gsBulkLenLF
			default:
				return i, ended, g.headerError()
			}
		case gsCountLF:
			if c != '\n' || g.num < 1 || g.num > g.lim.maxArgs {
				return i, ended, &protocolError{"invalid multibulk length"}
			}
			g.argsLeft = g.num
			g.st = gsDollar
		case gsDollar:
			if c != '$' {
				return i, ended, &protocolError{fmt.Sprintf("expected '$', got '%s'", printable(c))}
			}
			g.st, g.num, g.digits = gsBulkLen, 0, 0
		case gsBulkLenLF:
			if c != '\n' {
				return i, ended, &protocolError{"invalid bulk length"}
			}
			// The payload and its "\r\n" must fit in the request limit.
			if g.num > g.lim.maxRequest-(g.cmdBytes+1)-2 {
				return i, ended, &protocolError{fmt.Sprintf("request larger than %d bytes", g.lim.maxRequest)}
			}
			g.bulkLeft = g.num
			g.st = gsBulkData
			if g.num == 0 {
				g.st = gsBulkCR
			}
		case gsBulkData:
			// Skip the payload in one step: it is not inspected.
			skip := min(int64(len(b)-i), g.bulkLeft)
			g.bulkLeft -= skip
			g.cmdBytes += skip
			i += int(skip) - 1
			if g.bulkLeft == 0 {
				g.st = gsBulkCR
			}
			continue
		case gsBulkCR:
			if c != '\r' {
				return i, ended, &protocolError{"invalid bulk length"}
			}
			g.st = gsBulkLF
		case gsBulkLF:
			if c != '\n' {
				return i, ended, &protocolError{"invalid bulk length"}
			}
			g.argsLeft--
			if g.argsLeft > 0 {
				g.st = gsDollar
			} else {
				g.st = gsStart
				g.framed++
				g.largest = max(g.largest, g.cmdBytes+1)
				ended = true
			}
		}
		g.cmdBytes++
		if g.cmdBytes > g.lim.maxRequest {
			return i, ended, &protocolError{fmt.Sprintf("request larger than %d bytes", g.lim.maxRequest)}
		}
	}
	return len(b), ended, nil
}

func (g *guard) headerError() error {
	if g.st == gsCount {
		return &protocolError{"invalid multibulk length"}
	}
	return &protocolError{"invalid bulk length"}
}

// atBoundary reports whether every byte passed on belongs to a command
// that has ended.
func (g *guard) atBoundary() bool { return g.st == gsStart && g.err == nil }

// resetCount starts counting framed commands afresh (after the
// connection replaced redcon's reader).
func (g *guard) resetCount() {
	g.framed, g.inlineSeen, g.largest = 0, false, 0
}

func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", c)
}
