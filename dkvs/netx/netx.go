// Package netx is the network dkvs talks over, as an interface: the
// operating system's TCP and UDP in production, and an in-memory network
// (package memnet) in tests that run a whole ring in one process. Servers
// and clients take a Network instead of calling package net, so that the
// same code, transport included, runs over either.
package netx

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Network opens connections and sockets. Implementations are safe for
// concurrent use.
type Network interface {
	// Dial opens a stream connection to addr ("IP:PORT").
	Dial(ctx context.Context, addr string) (net.Conn, error)
	// Listen opens a stream listener on addr.
	Listen(addr string) (net.Listener, error)
	// ListenPacket opens a datagram socket on addr.
	ListenPacket(addr string) (net.PacketConn, error)
}

// TCP is the operating system's network, IPv4: TCP with TCP_NODELAY for
// streams, UDP for datagrams.
type TCP struct {
	// SourceIP, if set and an address of this host, is the local address
	// of outgoing connections: a server dials its peers from its ring
	// address, so that they and anything between can tell who calls.
	SourceIP string
}

var _ Network = TCP{}

// Dial implements Network.
func (t TCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	if ip := net.ParseIP(t.SourceIP); ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil && d.LocalAddr != nil && errors.Is(err, syscall.EADDRNOTAVAIL) {
		var plain net.Dialer // not an address of this host
		nc, err = plain.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return nc, nil
}

// Listen implements Network.
func (TCP) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// ListenPacket implements Network.
func (TCP) ListenPacket(addr string) (net.PacketConn, error) { return net.ListenPacket("udp4", addr) }
