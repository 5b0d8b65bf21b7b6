package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs/cmd/dkvs-server/internal/earlybind"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/dkvs/limits"
	"github.com/dkvs/dkvs/dkvs/quorum"
	"github.com/dkvs/dkvs/dkvs/server"
)

// TestEarlyBindKnowsTheBoolFlags: earlybind reads the command line before
// urfave/cli does, and must know which options take no value, or it
// would take a flag's value for the server's IP.
func TestEarlyBindKnowsTheBoolFlags(t *testing.T) {
	bools := []string{"help", "h"} // added by urfave/cli
	for _, f := range flags() {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			if isBool {
				bools = append(bools, name)
			} else if slices.Contains(earlybind.BoolFlags, name) {
				t.Errorf("--%s takes a value but earlybind thinks it does not", name)
			}
		}
	}
	for _, b := range bools {
		if !slices.Contains(earlybind.BoolFlags, b) {
			t.Errorf("--%s takes no value but earlybind does not know it", b)
		}
	}
	for _, b := range earlybind.BoolFlags {
		if !slices.Contains(bools, b) {
			t.Errorf("earlybind lists --%s, which is not a bool flag of dkvs-server", b)
		}
	}
}

// TestCoordConfig: the replication flags are checked and completed by
// quorum's rules (quorum.Req.Defaults), as server.New does, and a bad one
// is a command-line error.
func TestCoordConfig(t *testing.T) {
	cases := []struct {
		args    []string
		want    server.CoordConfig // N, R, W, Level, Linearizable only
		invalid bool
	}{
		{nil, server.CoordConfig{N: 3, R: 2, W: 2}, false},
		{[]string{"--resp-n", "1"}, server.CoordConfig{N: 1, R: 1, W: 1}, false},
		{[]string{"--resp-n", "5", "--resp-w", "4"}, server.CoordConfig{N: 5, R: 2, W: 4}, false},
		{[]string{"--resp-n", "2", "--resp-r", "1"}, server.CoordConfig{N: 2, R: 1, W: 2}, false},
		{[]string{"--resp-level", "all"}, server.CoordConfig{N: 3, Level: quorum.LevelAll}, false},
		{[]string{"--resp-level", "ONE", "--resp-r", "3"}, server.CoordConfig{N: 3, R: 3, Level: quorum.LevelOne}, false},
		{[]string{"--resp-linearizable"}, server.CoordConfig{N: 3, Linearizable: true}, false},
		{[]string{"--resp-linearizable", "--resp-n", "5", "--resp-r", "3"}, server.CoordConfig{N: 5, R: 3, Linearizable: true}, false},
		{[]string{"--resp-n", "254"}, server.CoordConfig{N: 254, R: 2, W: 2}, false},
		{[]string{"--resp-n", "0"}, server.CoordConfig{}, true},
		{[]string{"--resp-n", "-3"}, server.CoordConfig{}, true},
		{[]string{"--resp-n", "255"}, server.CoordConfig{}, true},
		{[]string{"--resp-n", "3", "--resp-r", "4"}, server.CoordConfig{}, true},
		{[]string{"--resp-n", "1"}, server.CoordConfig{N: 1, R: 1, W: 1}, false}, // the default 2 follows N down
		{[]string{"--resp-n", "1", "--resp-w", "2"}, server.CoordConfig{}, true},
		{[]string{"--resp-w", "0"}, server.CoordConfig{}, true},
		{[]string{"--resp-r", "0", "--resp-level", "ONE"}, server.CoordConfig{}, true},
		{[]string{"--resp-level", "SOME"}, server.CoordConfig{}, true},
		{[]string{"--resp-linearizable", "--resp-r", "1"}, server.CoordConfig{}, true},
	}
	for _, tc := range cases {
		var got server.CoordConfig
		var gotErr error
		app := &cli.App{Flags: flags(), Action: func(c *cli.Context) error {
			got, gotErr = coordConfig(c)
			return nil
		}}
		if err := app.Run(append([]string{"dkvs-server"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		if tc.invalid {
			if errcode.Of(gotErr) != errcode.InvalidCommand {
				t.Errorf("%q: %+v %v, want ERR_INVALID_COMMAND", tc.args, got, gotErr)
			}
			continue
		}
		got.Timeout, got.MaxTime = 0, 0
		if gotErr != nil || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.args, got, gotErr, tc.want)
		}
	}
}

// TestUsageShowsDefaults: --help is hand-written text; it must name the
// defaults the code has.
func TestUsageShowsDefaults(t *testing.T) {
	for _, want := range []string{
		fmt.Sprintf("--max-key-size N       largest key in bytes (default %d)", limits.DefaultMaxKeySize),
		fmt.Sprintf("--max-value-size N     largest value in bytes (default %d)", limits.DefaultMaxValueSize),
		fmt.Sprintf("defaults (default %d)", quorum.DefaultN),
		fmt.Sprintf("waits for (default %d,", quorum.DefaultR),
		fmt.Sprintf("needs (default %d,", quorum.DefaultW),
		fmt.Sprintf("(default %d; 0: no limit)", DefaultMoveBandwidth),
		fmt.Sprintf("before it drops them\n                         (default %s)", strings.TrimSuffix(server.DefaultCleanupGrace.String(), "0s")),
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("the usage text does not say %q", want)
		}
	}
}
