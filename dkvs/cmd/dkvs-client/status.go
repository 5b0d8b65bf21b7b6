package main

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dkvs/dkvs/dkvs/auth"
	"github.com/dkvs/dkvs/dkvs/diskspace"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// status prints one block per server of servers.txt: its state (up,
// down, or what its storage refuses: full, slow, failed), keys and
// tombstones stored, hints held, the free space of its data directory,
// why a storage is not ok, and for each peer whether this server sees it
// up (and its storage), the hints it holds for it and when anti-entropy
// with it last completed. It exits ERR_NETWORK when a server does not
// answer, ERR_INVALID_CONFIG when one refuses the client's credentials
// (shown as "refused").
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
	refused := map[int]error{} // servers that answered by refusing the credentials
	for range servers {
		r := <-ch
		switch {
		case r.err == nil:
			stats[r.i] = &r.st
		case auth.IsRefusal(r.err):
			refused[r.i] = r.err
		default:
			down = append(down, servers[r.i].Addr())
		}
	}
	now := time.Now()
	const row = "%-22s %-6s %10s %10s %8s %10s %9s\n"
	fmt.Fprintf(w, row, "SERVER", "STATE", "KEYS", "TOMBSTONES", "HINTS", "FREE", "UPTIME")
	var storage []string
	for i, sv := range servers {
		st := stats[i]
		if st == nil {
			state := "down"
			if refused[i] != nil {
				state = "refused"
			}
			fmt.Fprintf(w, row, sv.Addr(), state, "-", "-", "-", "-", "-")
			continue
		}
		state := "up"
		if st.Storage != "" && st.Storage != "ok" {
			state = st.Storage
			storage = append(storage, fmt.Sprintf("  %s: %s: %s", sv.Addr(), st.Storage, st.StorageError))
		}
		if st.Quarantined > 0 {
			storage = append(storage, fmt.Sprintf("  %s: %d corrupt records set aside, waiting for repair", sv.Addr(), st.Quarantined))
		}
		free := "-"
		if st.DiskTotal > 0 {
			free = strings.ReplaceAll(diskspace.Bytes(uint64(st.DiskFree)), " ", "")
		}
		fmt.Fprintf(w, row, sv.Addr(), state, strconv.FormatInt(st.LiveKeys, 10), strconv.FormatInt(st.Tombstones, 10),
			strconv.FormatInt(st.HintsHeld, 10), free, (time.Duration(st.UptimeMS) * time.Millisecond).Round(time.Second).String())
	}
	if len(storage) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Storage:")
		for _, l := range storage {
			fmt.Fprintln(w, l)
		}
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
			} else if p.Storage != "" && p.Storage != "ok" {
				state = "storage " + p.Storage
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
	for i, sv := range servers {
		// The user must fix the credentials: say so before any server
		// down, with the refusal's own words.
		if err := refused[i]; err != nil {
			return failed{fmt.Errorf("%d of %d servers refused the credentials (%s: %w): %w", len(refused), len(servers), sv.Addr(), err, errcode.InvalidConfig)}
		}
	}
	if len(down) > 0 {
		sort.Strings(down)
		return failed{fmt.Errorf("%d of %d servers do not answer: %s: %w", len(down), len(servers), strings.Join(down, ", "), errcode.Network)}
	}
	return nil
}
