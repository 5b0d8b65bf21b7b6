package main

import (
	"bufio"
	"fmt"
	"net"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/kv"
)

// writePair writes "key --> value\n", the line of the DKVS dump format.
func writePair(w *bufio.Writer, key, value []byte) error {
	w.Write(key)
	w.WriteString(" --> ")
	w.Write(value)
	return w.WriteByte('\n')
}

// dumpServer writes what one server stores in the DKVS dump format: a
// count line, then one pair per line, streamed page by page.
func dumpServer(e *env, w *bufio.Writer, cl *dkvs.Client, addr string) error {
	st, err := cl.Stats(e.ctx, addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "storing %d key-value pairs:\n", st.LiveKeys)
	return cl.ScanServer(e.ctx, addr, false, func(key []byte, rec kv.Record) error {
		return writePair(w, key, rec.Value)
	})
}

func (e *env) dump(c *cli.Context, args []string) error {
	if err := wantArgs(args, 0, 0, "no arguments"); err != nil {
		return err
	}
	addr := c.String("server")
	if addr != "" {
		if err := checkAddr(addr); err != nil {
			return err
		}
	}
	return e.withSession(c, func(s *session) error { return s.dump(addr) })
}

// dump prints every live pair of the ring ("key --> value"), or what the
// server at addr stores when addr is not empty.
func (s *session) dump(addr string) error {
	w := bufio.NewWriterSize(s.e.stdout, 64<<10)
	defer w.Flush()
	if addr != "" {
		if err := dumpServer(s.e, w, s.cl, addr); err != nil {
			return failed{err}
		}
		return nil
	}
	if err := s.cl.Dump(s.e.ctx, func(key, value []byte) error { return writePair(w, key, value) }); err != nil {
		return failed{err}
	}
	return nil
}

// checkAddr validates an IP:PORT given on the command line: a bad IP is
// errcode.Address, anything else malformed a command-line error.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return cmdutil.UsageError("%q is not IP:PORT", addr)
	}
	if _, err := config.ParseIP(host); err != nil {
		return err
	}
	if _, err := config.ParsePort(port); err != nil {
		return cmdutil.UsageError("%q: bad port", addr)
	}
	return nil
}

// dumpRing prints the ring's nodes and then what each server stores, in
// the format of cs202.md section 7.
func (s *session) dumpRing() error {
	e, cl := s.e, s.cl
	w := bufio.NewWriterSize(e.stdout, 64<<10)
	defer w.Flush()
	r := cl.Ring()
	servers := r.Servers()
	w.WriteString("Ring nodes:\n")
	for _, n := range r.Nodes() {
		fmt.Fprintf(w, "%s (%s)\n", n.Hash, servers[n.Server])
	}
	w.WriteString("\n")
	first := map[int]int{} // server -> ring index where it was first shown
	for i, n := range r.Nodes() {
		addr := servers[n.Server].Addr()
		if j, seen := first[n.Server]; seen {
			fmt.Fprintf(w, "%s: node %d has same server as node %d\n\n", addr, i, j)
			continue
		}
		first[n.Server] = i
		fmt.Fprintf(w, "%s:\n", addr)
		// A server that does not answer shows its header and nothing else.
		dumpServer(e, w, cl, addr)
		w.WriteString("\n")
	}
	return nil
}
