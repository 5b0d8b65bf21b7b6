package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs/cmd/dkvs-server/internal/earlybind"
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
