package main

import (
	"bufio"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// status prints one block per server of servers.txt: up or down, keys and
// tombstones stored, hints held, and for each peer whether this server
// sees it up, the hints it holds for it and when anti-entropy with it last
// completed. It exits ERR_NETWORK when a server does not answer.
func (s *session) status() error {
	e, cl := s.e, s.cl
	w := bufio.NewWriter(e.stdout)
	defer w.Flush()
	servers := cl.Servers()
	stats := make([]*wire.Stats, len(servers))
	type res struct {
		i   int
		st  wire.Stats
		err error
	}
	ch := make(chan res, len(servers))
	for i, sv := range servers {
		go func(i int, addr string) {
			st, err := cl.Stats(e.ctx, addr)
			ch <- res{i, st, err}
		}(i, sv.Addr())
	}
	var down []string
	for range servers {
		r := <-ch
		if r.err == nil {
			stats[r.i] = &r.st
		} else {
			down = append(down, servers[r.i].Addr())
		}
	}
	now := time.Now()
	fmt.Fprintf(w, "%-22s %-5s %10s %10s %8s %9s\n", "SERVER", "STATE", "KEYS", "TOMBSTONES", "HINTS", "UPTIME")
	for i, sv := range servers {
		st := stats[i]
		if st == nil {
			fmt.Fprintf(w, "%-22s %-5s %10s %10s %8s %9s\n", sv.Addr(), "down", "-", "-", "-", "-")
			continue
		}
		fmt.Fprintf(w, "%-22s %-5s %10d %10d %8d %9s\n", sv.Addr(), "up", st.LiveKeys, st.Tombstones, st.HintsHeld,
			(time.Duration(st.UptimeMS) * time.Millisecond).Round(time.Second))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Anti-entropy, last completed (and the peer as each server sees it):")
	for i, sv := range servers {
		st := stats[i]
		if st == nil {
			continue
		}
		peers := append([]wire.PeerStats(nil), st.Peers...)
		sort.Slice(peers, func(a, b int) bool { return peers[a].Addr < peers[b].Addr })
		var parts []string
		for _, p := range peers {
			state := "up"
			if !p.Up {
				state = "DOWN"
			}
			last := "never"
			if p.AELastMS > 0 {
				last = now.Sub(time.UnixMilli(p.AELastMS)).Round(time.Second).String() + " ago"
			}
			hints := ""
			if p.HintsHeld > 0 {
				hints = fmt.Sprintf(", %d hints", p.HintsHeld)
			}
			parts = append(parts, fmt.Sprintf("%s %s (%s%s)", p.Addr, last, state, hints))
		}
		fmt.Fprintf(w, "  %s: %s\n", sv.Addr(), strings.Join(parts, "; "))
	}
	if len(down) > 0 {
		sort.Strings(down)
		return failed{fmt.Errorf("%d of %d servers do not answer: %s: %w", len(down), len(servers), strings.Join(down, ", "), errcode.Network)}
	}
	return nil
}
