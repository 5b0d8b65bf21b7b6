// Package earlybind binds dkvs-server's TCP and UDP sockets while the Go
// runtime is still initialising the server's other packages.
//
// Scripts of the DKVS world start a server in the background and run a
// client straight after, with no wait. A listening socket lets the kernel
// accept connections and queue datagrams before the program reads them,
// so what counts is the moment of bind and listen, not the moment the
// server is ready. Initialising the 200-odd packages of dkvs-server
// (Pebble, Prometheus, protobuf, the CLI) takes 5-7 ms on the development
// machine before main runs; this package depends on syscall alone, so Go
// initialises it among the first (package initialisation follows imports,
// then import paths in order) and its init binds the server's address
// about 1-2 ms after exec. Connections and datagrams that arrive meanwhile
// wait in the kernel's queues until the server, once its storage is open,
// serves them.
//
// The binding is an optimisation that cannot change what the server does:
// init reads the command line and the environment as dkvs-server's flags
// would, and binds only when they name the address plainly. main then
// takes the sockets with TCP and UDP for the address it settled on, binds
// itself when there are none (a command line earlybind did not follow, a
// port already in use: main reports the error), and calls Release to
// close what it did not take.
package earlybind

import "syscall"

// BoolFlags are dkvs-server's flags that take no value. The command's
// tests check that it is the same set as the command's own flags.
var BoolFlags = []string{"memory", "no-sync", "no-handoff", "no-anti-entropy", "no-datagram",
	"resp-linearizable", "pprof", "no-console", "datagram-insecure", "metrics-plain", "help", "h"}

// bound is a socket bound by init, by the address it was bound for.
type bound struct {
	addr string
	fd   int
}

var (
	tcp, udp *bound
	// Err is why init bound nothing, for the curious (tests); nil when it
	// bound, or had nothing to bind.
	Err error
)

func init() {
	args, err := readArgs()
	if err != nil {
		Err = err
		return
	}
	plan, ok := planFrom(args, syscall.Getenv)
	if !ok {
		return
	}
	ip, port, ok := parseHostPort(plan.listen)
	if !ok {
		return
	}
	fd, err := listenTCP(ip, port)
	if err != nil {
		Err = err
		return
	}
	tcp = &bound{plan.listen, fd}
	if plan.datagram {
		if fd, err := bindUDP(ip, port); err == nil {
			udp = &bound{plan.listen, fd}
		} else {
			Err = err
		}
	}
}

// plan is what the command line asks to bind.
type plan struct {
	listen   string // IP:PORT
	datagram bool
}

// planFrom reads dkvs-server's command line (without the program name) as
// its flag parser does: options before the positional arguments, each
// "-name", "--name", "-name=value" or "-name value" (a bool flag takes no
// separate value), "--" ending them; then IP and PORT. A flag on the
// command line wins over its environment variable. It reports false when
// there is nothing to bind or the command line is not plain enough to be
// sure of.
func planFrom(args []string, getenv func(string) (string, bool)) (plan, bool) {
	flags := map[string]string{}
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		name := a[1:]
		if name[0] == '-' {
			name = name[1:]
		}
		if name == "" || name[0] == '-' || name[0] == '=' {
			return plan{}, false
		}
		if eq := indexByte(name, '='); eq >= 0 {
			flags[name[:eq]] = name[eq+1:]
			i++
			continue
		}
		if isBool(name) {
			flags[name] = "true"
			i++
			continue
		}
		if i+1 >= len(args) {
			return plan{}, false
		}
		flags[name] = args[i+1]
		i += 2
	}
	if _, help := flags["help"]; help {
		return plan{}, false
	}
	if _, help := flags["h"]; help {
		return plan{}, false
	}
	pos := args[i:]
	if len(pos) < 2 || len(pos)%2 != 0 {
		return plan{}, false // main refuses it
	}
	value := func(flag, env string) (string, bool) {
		if v, ok := flags[flag]; ok {
			return v, true
		}
		return getenv(env)
	}
	p := plan{listen: pos[0] + ":" + pos[1], datagram: true}
	if l, ok := value("listen", "DKVS_LISTEN"); ok && l != "" {
		p.listen = l
	}
	if v, ok := value("no-datagram", "DKVS_NO_DATAGRAM"); ok {
		b, ok := parseBool(v)
		if !ok {
			return plan{}, false
		}
		p.datagram = !b
	}
	return p, true
}

func isBool(name string) bool {
	for _, b := range BoolFlags {
		if b == name {
			return true
		}
	}
	return false
}

// parseBool accepts what strconv.ParseBool accepts.
func parseBool(s string) (bool, bool) {
	switch s {
	case "1", "t", "T", "TRUE", "true", "True":
		return true, true
	case "0", "f", "F", "FALSE", "false", "False":
		return false, true
	}
	return false, false
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// parseHostPort parses "a.b.c.d:port" strictly: four decimal parts of at
// most three digits without leading zeros, a port from 1 to 65535.
func parseHostPort(s string) ([4]byte, int, bool) {
	var ip [4]byte
	colon := -1
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return ip, 0, false
	}
	host, ps := s[:colon], s[colon+1:]
	part, n, digits := 0, 0, 0
	for i := 0; i <= len(host); i++ {
		if i == len(host) || host[i] == '.' {
			if digits == 0 || n > 255 || part > 3 {
				return ip, 0, false
			}
			ip[part] = byte(n)
			part++
			n, digits = 0, 0
			continue
		}
		c := host[i]
		if c < '0' || c > '9' || digits == 3 || (digits > 0 && n == 0) {
			return ip, 0, false
		}
		n = n*10 + int(c-'0')
		digits++
	}
	if part != 4 {
		return ip, 0, false
	}
	port := 0
	for i := 0; i < len(ps); i++ {
		c := ps[i]
		if c < '0' || c > '9' || i >= 5 {
			return ip, 0, false
		}
		port = port*10 + int(c-'0')
	}
	if port < 1 || port > 65535 || (len(ps) > 1 && ps[0] == '0') {
		return ip, 0, false
	}
	return ip, port, true
}

// take returns the descriptor bound for addr and forgets it, or -1.
func take(b **bound, addr string) int {
	if *b == nil || (*b).addr != addr {
		return -1
	}
	fd := (*b).fd
	*b = nil
	return fd
}

// TCP returns the descriptor of the listening socket bound for addr
// (IP:PORT), or -1 if init bound none for it. The caller owns it.
func TCP(addr string) int { return take(&tcp, addr) }

// UDP returns the descriptor of the UDP socket bound for addr, or -1.
func UDP(addr string) int { return take(&udp, addr) }

// Release closes the sockets that were not taken.
func Release() {
	for _, b := range []**bound{&tcp, &udp} {
		if *b != nil {
			syscall.Close((*b).fd)
			*b = nil
		}
	}
}
