package quorum

import (
	"strconv"
	"strings"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

// The rules of the DKVS command line (cs202.md section 3), shared by
// dkvs-client and, through libdkvs.so, the thin C client. A mistake there
// is the user's command line: errors wrap errcode.InvalidCommand.

// usage returns a command-line error.
func usage(format string, args ...any) error {
	return errcode.Errorf(errcode.InvalidCommand, format, args...)
}

// ParseCount parses the value of the flag -<flag> (n, r or w): a strictly
// positive whole number in decimal digits only, below 255. "0", "-1",
// "abc", "1234abc", "+2", " 1" and "" are refused.
func ParseCount(flag, s string) (int, error) {
	// Nine digits fit an int everywhere, and anything longer is above
	// MaxN anyway; strconv alone would accept a sign.
	if s == "" || len(s) > 9 || strings.Trim(s, "0123456789") != "" {
		return 0, usage("-%s %q is not a strictly positive whole number", flag, s)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 {
		return 0, usage("-%s %q is not a strictly positive whole number", flag, s)
	}
	if n > MaxN {
		return 0, usage("-%s %d: must be below %d", flag, n, MaxN+1)
	}
	return n, nil
}

// CommandLine applies cs202's rule to the -n, -r and -w that were given (0:
// not given): N is -n, else the largest of the R and W given, else 3; an
// R or W not given is min(2, N). So -r 1 means N=1, W=1; -n 1 means
// R=W=1; -n 7 means R=W=2. R or W above N is an error. The request it
// returns has N, R and W set.
func CommandLine(n, r, w int) (Req, error) {
	q := Req{N: n}
	if n == 0 {
		q.N = max(r, w)
		if q.N == 0 {
			q.N = DefaultN
		}
	}
	q.R, q.W = min(DefaultR, q.N), min(DefaultW, q.N)
	if r != 0 {
		q.R = r
	}
	if w != 0 {
		q.W = w
	}
	if q.R > q.N {
		return Req{}, usage("R=%d is larger than N=%d", q.R, q.N)
	}
	if q.W > q.N {
		return Req{}, usage("W=%d is larger than N=%d", q.W, q.N)
	}
	return q, nil
}

// Args are the replication flags of one command of the command line, as
// written: nil when the flag was not given (on the command line or in its
// environment variable).
type Args struct {
	// N, R and W are -n, -r and -w.
	N, R, W *string
	// C is -c: ONE, QUORUM, ALL or LINEARIZABLE (any case).
	C *string
	// Linearizable is --linearizable.
	Linearizable bool
}

// Resolve turns the flags into the request the command runs, checked in
// this order: -n, -r and -w each a count (ParseCount); N, R and W by
// CommandLine; then -c, whose level sets R and W from N where -r and -w
// were not given (the numbers win when both are); then the linearizable
// mode (-c LINEARIZABLE or --linearizable), which raises an R or W not
// given to a majority of N and refuses one given below it. The request
// has N, R and W set and Level LevelDefault.
func (a Args) Resolve() (Req, error) {
	var counts [3]int
	for i, f := range []struct {
		name string
		v    *string
	}{{"n", a.N}, {"r", a.R}, {"w", a.W}} {
		if f.v == nil {
			continue
		}
		v, err := ParseCount(f.name, *f.v)
		if err != nil {
			return Req{}, err
		}
		counts[i] = v
	}
	req, err := CommandLine(counts[0], counts[1], counts[2])
	if err != nil {
		return Req{}, err
	}
	req.Linearizable = a.Linearizable
	rGiven, wGiven := a.R != nil, a.W != nil
	if a.C != nil {
		switch strings.ToUpper(*a.C) {
		case "LINEARIZABLE":
			req.Linearizable = true
		default:
			level, err := ParseLevel(*a.C)
			if err != nil {
				return Req{}, usage("-c %q: want ONE, QUORUM, ALL or LINEARIZABLE", *a.C)
			}
			if !rGiven {
				req.R = level.Count(req.N)
			}
			if !wGiven {
				req.W = level.Count(req.N)
			}
		}
	}
	if req.Linearizable {
		maj := Majority(req.N)
		if !rGiven {
			req.R = max(req.R, maj)
		}
		if !wGiven {
			req.W = max(req.W, maj)
		}
		if req.R < maj || req.W < maj {
			return Req{}, usage("linearizable needs R and W of at least a majority of N=%d (%d), got R=%d W=%d",
				req.N, maj, req.R, req.W)
		}
	}
	return req, nil
}
