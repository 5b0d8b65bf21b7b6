package resp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"
)

// Replies of HELLO and AUTH, worded as Redis 7 words them.
const (
	errNoProto      = "NOPROTO unsupported protocol version"
	errProtoVersion = "ERR Protocol version is not an integer or out of range"
	errWrongPass    = "WRONGPASS invalid username-password pair or user is disabled."
	errClientName   = "ERR Client names cannot contain spaces, newlines or special characters."
)

// helloRequest is a checked HELLO [protover [AUTH user pass] [SETNAME name]].
type helloRequest struct {
	proto      protocol // 0: keep the connection's
	auth       bool
	user, pass []byte
	setName    bool
	name       []byte
}

// parseHello checks HELLO's arguments (args[0] is HELLO itself) in the
// order Redis 7 does: the version, then each option from left to right,
// credentials checked by auth where they stand, so that the error
// reported is the one Redis reports. An option given twice takes its last
// value. It returns the error reply text otherwise.
func parseHello(args [][]byte, auth func(user, pass []byte) string) (helloRequest, string) {
	var req helloRequest
	if len(args) < 2 {
		return req, ""
	}
	ver, ok := parseRedisInt(args[1])
	if !ok {
		return req, errProtoVersion
	}
	if ver != int64(resp2) && ver != int64(resp3) {
		return req, errNoProto
	}
	req.proto = protocol(ver)
	for i := 2; i < len(args); i++ {
		more := len(args) - 1 - i
		switch opt := strings.ToUpper(string(args[i])); {
		case opt == "AUTH" && more >= 2:
			if e := auth(args[i+1], args[i+2]); e != "" {
				return req, e
			}
			req.auth, req.user, req.pass = true, args[i+1], args[i+2]
			i += 2
		case opt == "SETNAME" && more >= 1:
			if !validClientName(args[i+1]) {
				return req, errClientName
			}
			req.setName, req.name = true, args[i+1]
			i++
		default:
			return req, fmt.Sprintf("ERR Syntax error in HELLO option '%.128s'", args[i])
		}
	}
	return req, ""
}

// parseRedisInt parses a 64-bit integer as Redis's strict parser does: an
// optional minus sign and decimal digits, no plus sign, spaces or leading
// zeros ("0" itself aside).
func parseRedisInt(b []byte) (int64, bool) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	switch {
	case len(digits) == 0 || len(digits) > 19:
		return 0, false
	case digits[0] == '0' && (len(digits) > 1 || len(b) > 1):
		return 0, false // leading zero, or "-0"
	}
	for _, ch := range digits {
		if ch < '0' || ch > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

// localHello answers HELLO: it switches the connection to RESP2 or RESP3
// (HELLO without a version keeps the current one) and answers the
// server's map in the protocol now in force. A refused HELLO changes
// nothing, neither the protocol nor the name (Redis 7.0 keeps a name set
// before a later option fails; dkvs checks everything first).
func localHello(c *conn, args [][]byte) ([]byte, bool) {
	var user string
	req, e := parseHello(args, func(u, pass []byte) string {
		var e string
		user, e = c.login(u, pass)
		return e
	})
	if e != "" {
		return errOut(e), false
	}
	switch {
	case req.auth:
		c.setUser(user)
	case c.srv.opts.Access != nil && c.user() == "":
		c.refused("HELLO before AUTH", "hello")
		return errOut(errHelloNoAuth), false
	}
	if req.setName {
		c.setName(req.name)
	}
	if req.proto != 0 {
		c.proto.Store(int32(req.proto))
	}
	return appendHello(nil, c.protocol(), c.id), false
}

// appendHello appends HELLO's map: server, version, proto, id, mode, role
// and modules, in Redis's order.
func appendHello(out []byte, pr protocol, id int64) []byte {
	out = pr.appendMap(out, 7)
	out = redcon.AppendBulkString(out, "server")
	out = redcon.AppendBulkString(out, "redis")
	out = redcon.AppendBulkString(out, "version")
	out = redcon.AppendBulkString(out, redisVersion)
	out = redcon.AppendBulkString(out, "proto")
	out = redcon.AppendInt(out, int64(pr))
	out = redcon.AppendBulkString(out, "id")
	out = redcon.AppendInt(out, id)
	out = redcon.AppendBulkString(out, "mode")
	out = redcon.AppendBulkString(out, "standalone")
	out = redcon.AppendBulkString(out, "role")
	out = redcon.AppendBulkString(out, "master")
	out = redcon.AppendBulkString(out, "modules")
	return redcon.AppendArray(out, 0)
}
