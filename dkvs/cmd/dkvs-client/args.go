package main

import (
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/cmdutil"
	"github.com/dkvs/dkvs/dkvs/coord"
)

// quorum is the N, R and W of one command.
type quorum struct{ N, R, W int }

// maxQuorum bounds N, R and W: they travel as one byte in DKVS tools.
const maxQuorum = 255

// parseCount accepts a strictly positive whole number written in decimal
// digits only ("0", "-1", "abc", "1234abc", "+2" and "" are refused).
func parseCount(flag, s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, cmdutil.UsageError("-%s %q is not a strictly positive whole number", flag, s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, cmdutil.UsageError("-%s %q is not a strictly positive whole number", flag, s)
		}
	}
	n, _ := strconv.Atoi(s)
	if n < 1 {
		return 0, cmdutil.UsageError("-%s %q is not a strictly positive whole number", flag, s)
	}
	if n >= maxQuorum {
		return 0, cmdutil.UsageError("-%s %d: must be below %d", flag, n, maxQuorum)
	}
	return n, nil
}

// resolveQuorum applies the rules of cs202.md section 3 to the flags that
// were given (a nil pointer means not given): N defaults to the largest of
// the R and W given, or 3; an R or W not given becomes min(2, N); R and W
// may not exceed N.
func resolveQuorum(n, r, w *int) (quorum, error) {
	var q quorum
	switch {
	case n != nil:
		q.N = *n
	case r != nil || w != nil:
		if r != nil {
			q.N = *r
		}
		if w != nil && *w > q.N {
			q.N = *w
		}
	default:
		q.N = 3
	}
	q.R, q.W = min(2, q.N), min(2, q.N)
	if r != nil {
		q.R = *r
	}
	if w != nil {
		q.W = *w
	}
	if q.R > q.N {
		return quorum{}, cmdutil.UsageError("R=%d is larger than N=%d", q.R, q.N)
	}
	if q.W > q.N {
		return quorum{}, cmdutil.UsageError("W=%d is larger than N=%d", q.W, q.N)
	}
	return q, nil
}

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

// counts reads -n, -r and -w (nil when not given).
func counts(c *cli.Context) (n, r, w *int, err error) {
	var vals [3]*int
	for i, name := range []string{"n", "r", "w"} {
		if !c.IsSet(name) {
			continue
		}
		v, err := parseCount(name, c.String(name))
		if err != nil {
			return nil, nil, nil, err
		}
		vals[i] = &v
	}
	return vals[0], vals[1], vals[2], nil
}

// requestOf turns -n, -r, -w, -c and --linearizable into a request. The
// numbers follow cs202 (N from -n, else the largest of -r and -w, else
// 3); -c sets R and W from N where -r and -w are not given, and the
// numbers win when both are. LINEARIZABLE (or --linearizable) asks for
// majority quorums: R and W default to N/2+1 and may not be lower.
func requestOf(c *cli.Context) (dkvs.Request, error) {
	n, r, w, err := counts(c)
	if err != nil {
		return dkvs.Request{}, err
	}
	q, err := resolveQuorum(n, r, w)
	if err != nil {
		return dkvs.Request{}, err
	}
	req := dkvs.Request{N: q.N, R: q.R, W: q.W, Linearizable: linearizable(c)}
	if lv := c.String("c"); c.IsSet("c") {
		switch strings.ToUpper(lv) {
		case "LINEARIZABLE":
			req.Linearizable = true
		default:
			level, err := dkvs.ParseLevel(lv)
			if err != nil {
				return dkvs.Request{}, cmdutil.UsageError("-c %q: want ONE, QUORUM, ALL or LINEARIZABLE", lv)
			}
			if r == nil {
				req.R = level.Count(q.N)
			}
			if w == nil {
				req.W = level.Count(q.N)
			}
		}
	}
	if req.Linearizable {
		maj := coord.Majority(q.N)
		if r == nil && req.R < maj {
			req.R = maj
		}
		if w == nil && req.W < maj {
			req.W = maj
		}
		if req.R < maj || req.W < maj {
			return dkvs.Request{}, cmdutil.UsageError("linearizable needs R and W of at least a majority of N=%d (%d), got R=%d W=%d", q.N, maj, req.R, req.W)
		}
	}
	return req, nil
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
