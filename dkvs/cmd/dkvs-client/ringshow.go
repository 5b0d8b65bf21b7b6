package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/topology"
	"github.com/dkvs/dkvs/dkvs/wire"
)

// ringShowFlags are the flags of "dkvs-client ring".
func ringShowFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", EnvVars: []string{"DKVS_RING_JSON"}},
		&cli.StringFlag{Name: "servers-file", EnvVars: []string{"DKVS_RING_SERVERS_FILE"}},
	}
}

// ringShow is "dkvs-client ring": the ring as the servers know it, or,
// with --servers-file, the ring written in servers.txt's format.
func (e *env) ringShow(c *cli.Context, args []string) error {
	if err := wantArgs(args, 0, 0, "no arguments"); err != nil {
		return err
	}
	cl, err := e.openRing(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	file, asJSON := c.String("servers-file"), c.Bool("json")
	if err := showRing(e.ctx, cl, file, asJSON, e.stdout, e.stderr, time.Now, time.Local); err != nil {
		return failed{err}
	}
	return nil
}

// showRing asks every server for the ring it knows, and its stats unless
// only the file is wanted, then prints the report (or writes the file).
func showRing(ctx context.Context, rc ringClient, file string, asJSON bool, stdout, stderr io.Writer,
	now func() time.Time, loc *time.Location) error {
	withStats := file == "" || asJSON
	st, stats, err := collectRing(ctx, rc, withStats)
	if err != nil {
		return err
	}
	if file != "" {
		if err := writeServersFile(file, st); err != nil {
			return err
		}
		if st.Move != nil {
			fmt.Fprintf(stderr, "WARNING: %s is under way: %s holds the ring before it; write it again once the move is over\n",
				describeMove(st.Move), file)
		}
	}
	switch {
	case asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(buildRingReport(st, stats, now())); err != nil {
			return fmt.Errorf("writing the report: %w: %w", err, errcode.IO)
		}
	case file != "":
		fmt.Fprintf(stdout, "OK epoch %d: %d servers written to %s\n", st.Epoch, len(st.Members), file)
	default:
		if err := writeRingReport(stdout, buildRingReport(st, stats, now()), loc); err != nil {
			return fmt.Errorf("writing the report: %w: %w", err, errcode.IO)
		}
	}
	return nil
}

// collectRing reads the ring from the first server that answers, then asks
// every server of that ring (and of its move) for the ring it knows and,
// if withStats, for its stats, all at once. It returns the newest ring
// told (a server may lag behind the consensus by a moment) and the stats
// of the servers that answered.
func collectRing(ctx context.Context, rc ringClient, withStats bool) (topology.State, map[string]*wire.Stats, error) {
	st, err := fetchRing(ctx, rc)
	if err != nil {
		return topology.State{}, nil, err
	}
	stats := map[string]*wire.Stats{}
	asked := map[string]bool{}
	// Twice at most: a newer ring told in the first round may name
	// servers the first did not ask.
	for round := 0; round < 2; round++ {
		var addrs []string
		for _, sv := range st.AllServers() {
			if !asked[sv.Addr()] {
				asked[sv.Addr()] = true
				addrs = append(addrs, sv.Addr())
			}
		}
		if len(addrs) == 0 {
			break
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, addr := range addrs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pctx, cancel := context.WithTimeout(ctx, probeTimeout)
				defer cancel()
				told, terr := rc.RingOf(pctx, addr)
				var s wire.Stats
				serr := terr
				if withStats && terr == nil {
					s, serr = rc.Stats(pctx, addr)
				}
				mu.Lock()
				defer mu.Unlock()
				if terr == nil && told.Epoch > st.Epoch {
					st = told
				}
				if withStats && serr == nil {
					stats[addr] = &s
				}
			}()
		}
		wg.Wait()
	}
	return st, stats, nil
}

// writeServersFile writes the ring's current servers to path in the
// format of servers.txt, atomically: a temporary file in the same
// directory, synced, then renamed over path, so that a script or a
// server reading path never sees half a file.
func writeServersFile(path string, st topology.State) error {
	fail := func(err error) error { return fmt.Errorf("--servers-file %s: %w: %w", path, err, errcode.IO) }
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	_, err = f.Write(serversText(st.Members))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	return nil
}
