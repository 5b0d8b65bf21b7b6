package main

import (
	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/quorum"
)

// quorumFlags are accepted by every command (and ignored by those that do
// not use them).
func quorumFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "n", Usage: "number of home servers of the key", EnvVars: []string{"DKVS_N"}},
		&cli.StringFlag{Name: "r", Usage: "replies needed by a read", EnvVars: []string{"DKVS_R"}},
		&cli.StringFlag{Name: "w", Usage: "acknowledgements needed by a write", EnvVars: []string{"DKVS_W"}},
		&cli.StringFlag{Name: "c", Usage: "consistency: ONE, QUORUM, ALL or LINEARIZABLE", EnvVars: []string{"DKVS_CONSISTENCY"}},
	}
}

// requestOf turns -n, -r, -w, -c and --linearizable into a request by
// the rules of cs202.md section 3 (quorum.Args.Resolve): N from -n, else
// the largest of -r and -w, else 3; -c sets R and W from N where -r and -w
// are not given; LINEARIZABLE (or --linearizable) asks for majority
// quorums.
func requestOf(c *cli.Context) (dkvs.Request, error) {
	given := func(name string) *string {
		if !c.IsSet(name) {
			return nil
		}
		v := c.String(name)
		return &v
	}
	return quorum.Args{N: given("n"), R: given("r"), W: given("w"), C: given("c"), Linearizable: linearizable(c)}.Resolve()
}

// linearizable reports --linearizable, given before the command (a global
// option) or after it, for a command such as bench that accepts it there
// too: a command's own flag hides the global one of the same name from
// c.Bool, so every level of the lineage is asked.
func linearizable(c *cli.Context) bool {
	for _, l := range c.Lineage() {
		if l.Bool("linearizable") {
			return true
		}
	}
	return false
}

// commandArgs returns the arguments after "--" and checks the rule that
// only flags come between the command and "--": flag parsing stops at the
// first word that is not a flag, so anything left that did not follow a
// "--" was a stray word.
func commandArgs(c *cli.Context) ([]string, error) {
	rest := c.Args().Slice()
	var raw []string
	if lin := c.Lineage(); len(lin) > 1 && lin[1].Args().Len() > 0 {
		raw = lin[1].Args().Tail() // the words after the command name
	}
	consumed := raw[:max(0, len(raw)-len(rest))]
	terminated := len(consumed) > 0 && consumed[len(consumed)-1] == "--"
	if !terminated && len(rest) > 0 {
		return nil, cmdutil.UsageError("%q before \"--\" is not a flag", rest[0])
	}
	return rest, nil
}

// wantArgs checks the number of arguments.
func wantArgs(args []string, min, max int, what string) error {
	if len(args) < min || (max >= 0 && len(args) > max) {
		return cmdutil.UsageError("want %s after \"--\", got %d arguments", what, len(args))
	}
	return nil
}
