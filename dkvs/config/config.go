// Package config reads servers.txt, the list of servers that make up a
// ring (cs202.md section 1): one "IP PORT COUNT" line per server.
package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// DefaultFile is the name of the servers file looked up in the current
// directory when no other is given.
const DefaultFile = "servers.txt"

// MaxCount bounds COUNT so that a typo cannot make every process build a
// ring of billions of nodes.
const MaxCount = 4096

// Server is one line of servers.txt.
type Server struct {
	IP    string // dotted IPv4, as written
	Port  uint16
	Count int // number of ring nodes the server owns
}

// Addr returns "IP:PORT", the address the server listens on.
func (s Server) Addr() string { return s.IP + ":" + strconv.Itoa(int(s.Port)) }

// String returns "IP PORT", the form used in the ring and in dump-ring.
func (s Server) String() string { return s.IP + " " + strconv.Itoa(int(s.Port)) }

// Load reads and parses a servers file. A missing or unreadable file is
// errcode.IO; its contents are checked as Parse does.
func Load(path string) ([]Server, error) {
	if path == "" {
		path = DefaultFile
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read servers file: %w: %w", err, errcode.IO)
	}
	servers, err := Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return servers, nil
}

// Parse reads servers from r. Blank lines are skipped; every other line
// must be "IP PORT COUNT". An invalid IP is errcode.Address; a bad port or
// count, a malformed line, a duplicate server or an empty list is
// errcode.InvalidConfig.
func Parse(r io.Reader) ([]Server, error) {
	var servers []Server
	seen := make(map[string]int)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		s, err := ParseLine(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if prev, dup := seen[s.Addr()]; dup {
			return nil, errcode.Errorf(errcode.InvalidConfig, "line %d: server %s already listed on line %d", line, s, prev)
		}
		seen[s.Addr()] = line
		servers = append(servers, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read servers file: %w: %w", err, errcode.IO)
	}
	if len(servers) == 0 {
		return nil, errcode.Errorf(errcode.InvalidConfig, "no servers listed")
	}
	return servers, nil
}

// ParseLine parses one "IP PORT COUNT" line.
func ParseLine(text string) (Server, error) {
	f := strings.Fields(text)
	if len(f) != 3 {
		return Server{}, errcode.Errorf(errcode.InvalidConfig, "want \"IP PORT COUNT\", got %q", text)
	}
	ip, err := ParseIP(f[0])
	if err != nil {
		return Server{}, err
	}
	port, err := ParsePort(f[1])
	if err != nil {
		return Server{}, err
	}
	count, err := parsePositive(f[2])
	if err != nil || count > MaxCount {
		return Server{}, errcode.Errorf(errcode.InvalidConfig, "COUNT %q is not a whole number from 1 to %d", f[2], MaxCount)
	}
	return Server{IP: ip, Port: port, Count: count}, nil
}

// ParseIP checks that s is a dotted IPv4 address in canonical form (four
// decimal parts, 0-255, no leading zeros) and returns it.
func ParseIP(s string) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || a.String() != s {
		return "", errcode.Errorf(errcode.Address, "%q is not a dotted IPv4 address", s)
	}
	return s, nil
}

// ParsePort checks that s is a port number from 1 to 65535.
func ParsePort(s string) (uint16, error) {
	p, err := parsePositive(s)
	if err != nil || p > 65535 {
		return 0, errcode.Errorf(errcode.InvalidConfig, "PORT %q is not a number from 1 to 65535", s)
	}
	return uint16(p), nil
}

// parsePositive accepts only decimal digits (no sign, no spaces) and a
// value of at least 1.
func parsePositive(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return n, nil
}

// Find returns the index of the server listening on ip:port, or -1.
func Find(servers []Server, addr string) int {
	for i, s := range servers {
		if s.Addr() == addr {
			return i
		}
	}
	return -1
}
