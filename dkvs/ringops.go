package dkvs

import (
	"context"
	"errors"
	"fmt"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/ringrpc"
	"github.com/dkvs/dkvs/dkvs/topology"
)

// candidates returns the servers to ask about the ring: those the client
// believes up first, then the others; the Via server alone when there is
// one.
func (c *Client) candidates() []string {
	if c.opts.Via != "" {
		return []string{c.opts.Via}
	}
	var up, down []string
	for _, a := range c.coord.View().Addrs() {
		if c.health.Up(a) {
			up = append(up, a)
		} else {
			down = append(down, a)
		}
	}
	return append(up, down...)
}

// FetchRing asks the servers for the ring they know (the first that
// answers) and follows it from then on, if it is newer than the client's.
func (c *Client) FetchRing(ctx context.Context) (topology.State, error) {
	var errs []error
	for _, addr := range c.candidates() {
		st, err := ringrpc.Ring(ctx, c.tr, addr)
		if err == nil {
			c.coord.SetView(topology.NewView(st))
			return c.coord.View().State(), nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return topology.State{}, fmt.Errorf("no server told the ring: %w: %w", errors.Join(errs...), errcode.Network)
}

// ChangeRing asks the ring to change (join, leave, replace, remove, abort:
// topology.Command) through the first server that answers, and returns the
// ring after the change. A command the ring refuses (an unknown server, a
// move already under way...) is not sent to another server.
func (c *Client) ChangeRing(ctx context.Context, cmd topology.Command) (topology.State, error) {
	var errs []error
	for _, addr := range c.candidates() {
		st, err := c.ChangeRingAt(ctx, addr, cmd)
		if err == nil {
			return st, nil
		}
		if errcode.Of(err) != errcode.Network || ctx.Err() != nil {
			return topology.State{}, err // refused, not unreachable
		}
		errs = append(errs, err)
	}
	return topology.State{}, fmt.Errorf("ring %s: no server answered: %w", cmd.Op, errors.Join(errs...))
}

// RingOf asks the server at addr for the ring it knows, without following
// it: for tools that compare what the servers know (a server that has not
// applied the latest epoch yet tells an older one).
func (c *Client) RingOf(ctx context.Context, addr string) (topology.State, error) {
	return ringrpc.Ring(ctx, c.tr, addr)
}

// ChangeRingAt is ChangeRing through the server at addr alone, for tools
// that choose which servers to ask (those that answer, in their order).
func (c *Client) ChangeRingAt(ctx context.Context, addr string, cmd topology.Command) (topology.State, error) {
	st, err := ringrpc.Send(ctx, c.tr, addr, cmd)
	if err == nil {
		c.coord.SetView(topology.NewView(st))
	}
	return st, err
}
