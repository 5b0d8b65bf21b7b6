package quorum

import (
	"errors"
	"testing"

	"github.com/dkvs/dkvs/dkvs/errcode"
)

func p(s string) *string { return &s }

// TestArgs covers every rule of cs202.md section 3 about -n, -r, -w and
// -c, plus --linearizable, with the messages dkvs-client has always
// printed (tests/ checks some of them byte for byte).
func TestArgs(t *testing.T) {
	cases := []struct {
		name string
		args Args
		want Req
		err  string // the message without the code's; "" for success
	}{
		// Defaults: N=3, R=2, W=2.
		{"defaults", Args{}, Req{N: 3, R: 2, W: 2}, ""},
		// "If N is not given it becomes the largest of the R and W that
		// were given, or 3 if neither was. An R or W not given becomes
		// min(2, N)."
		{"-r 1 means N=1, W=1", Args{R: p("1")}, Req{N: 1, R: 1, W: 1}, ""},
		{"-w 1", Args{W: p("1")}, Req{N: 1, R: 1, W: 1}, ""},
		{"-n 1 means R=W=1", Args{N: p("1")}, Req{N: 1, R: 1, W: 1}, ""},
		{"-n 7 means R=W=2", Args{N: p("7")}, Req{N: 7, R: 2, W: 2}, ""},
		{"-n 2", Args{N: p("2")}, Req{N: 2, R: 2, W: 2}, ""},
		{"-r 3", Args{R: p("3")}, Req{N: 3, R: 3, W: 2}, ""},
		{"-r 1 -w 3", Args{R: p("1"), W: p("3")}, Req{N: 3, R: 1, W: 3}, ""},
		{"-r 4 -w 2", Args{R: p("4"), W: p("2")}, Req{N: 4, R: 4, W: 2}, ""},
		{"-n 5 -r 5 -w 1", Args{N: p("5"), R: p("5"), W: p("1")}, Req{N: 5, R: 5, W: 1}, ""},
		{"-n 254 -r 254", Args{N: p("254"), R: p("254")}, Req{N: 254, R: 254, W: 2}, ""},
		{"leading zeros", Args{R: p("000000002")}, Req{N: 2, R: 2, W: 2}, ""},
		// R>N, W>N.
		{"R>N", Args{N: p("2"), R: p("3")}, Req{}, "R=3 is larger than N=2"},
		{"W>N", Args{N: p("1"), W: p("2")}, Req{}, "W=2 is larger than N=1"},
		{"R>N, W>N: R first", Args{N: p("1"), R: p("2"), W: p("2")}, Req{}, "R=2 is larger than N=1"},
		// Not a strictly positive whole number, or R >= 255.
		{"0", Args{R: p("0")}, Req{}, `-r "0" is not a strictly positive whole number`},
		{"-1", Args{N: p("-1")}, Req{}, `-n "-1" is not a strictly positive whole number`},
		{"abc", Args{R: p("abc")}, Req{}, `-r "abc" is not a strictly positive whole number`},
		{"1234abc", Args{R: p("1234abc")}, Req{}, `-r "1234abc" is not a strictly positive whole number`},
		{"+2", Args{R: p("+2")}, Req{}, `-r "+2" is not a strictly positive whole number`},
		{"space", Args{R: p(" 2")}, Req{}, `-r " 2" is not a strictly positive whole number`},
		{"empty", Args{N: p("")}, Req{}, `-n "" is not a strictly positive whole number`},
		{"1.5", Args{W: p("1.5")}, Req{}, `-w "1.5" is not a strictly positive whole number`},
		{"ten digits", Args{R: p("0000000001")}, Req{}, `-r "0000000001" is not a strictly positive whole number`},
		{"R=255", Args{R: p("255")}, Req{}, "-r 255: must be below 255"},
		{"N=255", Args{N: p("255")}, Req{}, "-n 255: must be below 255"},
		{"W=1000", Args{W: p("1000")}, Req{}, "-w 1000: must be below 255"},
		// Counts are checked n, r, w, before the rule that ties them.
		{"order: -n before -r", Args{N: p("x"), R: p("0")}, Req{}, `-n "x" is not a strictly positive whole number`},
		{"order: counts before R>N", Args{N: p("1"), R: p("3"), W: p("0")}, Req{}, `-w "0" is not a strictly positive whole number`},
		// -c levels: R and W from N where not given; the numbers win.
		{"-c ONE", Args{C: p("ONE")}, Req{N: 3, R: 1, W: 1}, ""},
		{"-c quorum -n 5", Args{C: p("quorum"), N: p("5")}, Req{N: 5, R: 3, W: 3}, ""},
		{"-c ALL", Args{C: p("ALL")}, Req{N: 3, R: 3, W: 3}, ""},
		{"-c ALL -r 1 -n 3", Args{C: p("ALL"), R: p("1"), N: p("3")}, Req{N: 3, R: 1, W: 3}, ""},
		{"-c ALL -r 1 (N from -r)", Args{C: p("ALL"), R: p("1")}, Req{N: 1, R: 1, W: 1}, ""},
		{"-c ONE -w 2", Args{C: p("ONE"), W: p("2")}, Req{N: 2, R: 1, W: 2}, ""},
		{"-c SOME", Args{C: p("SOME")}, Req{}, `-c "SOME": want ONE, QUORUM, ALL or LINEARIZABLE`},
		{"-c empty", Args{C: p("")}, Req{}, `-c "": want ONE, QUORUM, ALL or LINEARIZABLE`},
		{"R>N before -c", Args{C: p("SOME"), N: p("2"), R: p("3")}, Req{}, "R=3 is larger than N=2"},
		// The linearizable mode: majorities.
		{"-c LINEARIZABLE", Args{C: p("LINEARIZABLE")}, Req{N: 3, R: 2, W: 2, Linearizable: true}, ""},
		{"-c linearizable -n 5", Args{C: p("linearizable"), N: p("5")}, Req{N: 5, R: 3, W: 3, Linearizable: true}, ""},
		{"--linearizable -n 4", Args{Linearizable: true, N: p("4")}, Req{N: 4, R: 3, W: 3, Linearizable: true}, ""},
		{"--linearizable -c ALL", Args{Linearizable: true, C: p("ALL")}, Req{N: 3, R: 3, W: 3, Linearizable: true}, ""},
		{"--linearizable -c ONE", Args{Linearizable: true, C: p("ONE"), N: p("5")}, Req{N: 5, R: 3, W: 3, Linearizable: true}, ""},
		{"--linearizable -r 3 -n 5", Args{Linearizable: true, R: p("3"), N: p("5")}, Req{N: 5, R: 3, W: 3, Linearizable: true}, ""},
		{"--linearizable -n 1", Args{Linearizable: true, N: p("1")}, Req{N: 1, R: 1, W: 1, Linearizable: true}, ""},
		{"LINEARIZABLE -r 1 -n 3", Args{C: p("LINEARIZABLE"), R: p("1"), N: p("3")}, Req{},
			"linearizable needs R and W of at least a majority of N=3 (2), got R=1 W=2"},
		{"--linearizable -w 1 -n 3", Args{Linearizable: true, W: p("1"), N: p("3")}, Req{},
			"linearizable needs R and W of at least a majority of N=3 (2), got R=2 W=1"},
	}
	for _, tc := range cases {
		got, err := tc.args.Resolve()
		if tc.err != "" {
			if errcode.Of(err) != errcode.InvalidCommand || errcode.Detail(err) != tc.err {
				t.Errorf("%s: %+v %v, want ERR_INVALID_COMMAND %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
		// What the command line resolves to is explicit: the
		// coordinator runs exactly those numbers on a ring large enough.
		for _, k := range []Kind{Read, Write} {
			n, q, err := got.Resolve(k, MaxN)
			if want := got.count(k); err != nil || n != got.N || q != want {
				t.Errorf("%s: Resolve(%s) = %d %d %v, want %d %d", tc.name, k, n, q, err, got.N, want)
			}
		}
	}
}

func TestCommandLine(t *testing.T) {
	cases := []struct {
		n, r, w int
		want    Req
		err     string
	}{
		{0, 0, 0, Req{N: 3, R: 2, W: 2}, ""},
		{0, 1, 0, Req{N: 1, R: 1, W: 1}, ""},
		{0, 0, 1, Req{N: 1, R: 1, W: 1}, ""},
		{1, 0, 0, Req{N: 1, R: 1, W: 1}, ""},
		{7, 0, 0, Req{N: 7, R: 2, W: 2}, ""},
		{0, 2, 5, Req{N: 5, R: 2, W: 5}, ""},
		{2, 3, 0, Req{}, "R=3 is larger than N=2"},
		{1, 0, 2, Req{}, "W=2 is larger than N=1"},
	}
	for _, tc := range cases {
		got, err := CommandLine(tc.n, tc.r, tc.w)
		if tc.err != "" {
			if errcode.Of(err) != errcode.InvalidCommand || errcode.Detail(err) != tc.err {
				t.Errorf("%d %d %d: %v, want %q", tc.n, tc.r, tc.w, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%d %d %d: %+v %v, want %+v", tc.n, tc.r, tc.w, got, err, tc.want)
		}
	}
}

func TestParseCount(t *testing.T) {
	for _, s := range []string{"0", "-1", "abc", "1234abc", "", "+2", " 1", "1.5", "255", "1000", "0x3", "99999999999"} {
		if _, err := ParseCount("r", s); errcode.Of(err) != errcode.InvalidCommand {
			t.Errorf("%q accepted: %v", s, err)
		}
	}
	for s, want := range map[string]int{"1": 1, "3": 3, "254": 254, "007": 7, "000000254": 254} {
		if got, err := ParseCount("r", s); err != nil || got != want {
			t.Errorf("%q: %d %v", s, got, err)
		}
	}
}

// TestResolve is the coordinator's rule: a Req against a ring of
// servers servers.
func TestResolve(t *testing.T) {
	cases := []struct {
		req     Req
		k       Kind
		servers int
		n, q    int
		err     string
	}{
		{Req{}, Read, 5, 3, 2, ""},
		{Req{}, Write, 5, 3, 2, ""},
		{Req{N: 1}, Read, 5, 1, 1, ""},
		{Req{N: 3, Level: LevelOne}, Read, 5, 3, 1, ""},
		{Req{N: 3, Level: LevelQuorum}, Write, 5, 3, 2, ""},
		{Req{N: 4, Level: LevelQuorum}, Write, 5, 4, 3, ""},
		{Req{N: 3, Level: LevelAll}, Read, 5, 3, 3, ""},
		{Req{N: 3, Level: LevelAll, R: 1}, Read, 5, 3, 1, ""},  // numbers win
		{Req{N: 3, Level: LevelAll, R: 1}, Write, 5, 3, 3, ""}, // R is not W
		{Req{N: 5, Linearizable: true}, Read, 5, 5, 3, ""},
		{Req{N: 3, Linearizable: true, Level: LevelAll}, Write, 5, 3, 3, ""},
		{Req{N: 3, Linearizable: true, W: 1}, Write, 5, 0, 0, "linearizable mode needs W of at least a majority of N=3 (2), got 1"},
		{Req{N: 3, Linearizable: true, Level: LevelOne}, Read, 5, 0, 0, "linearizable mode needs R of at least a majority of N=3 (2), got 1"},
		{Req{N: 9, Level: LevelAll}, Write, 5, 5, 5, ""}, // N above the ring
		{Req{N: 9, Linearizable: true}, Read, 5, 5, 3, ""},
		{Req{N: 5, W: 5}, Write, 3, 3, 3, ""},                    // W follows N down
		{Req{N: 5, R: 2, Linearizable: true}, Read, 3, 3, 2, ""}, // a majority of the ring's 3
		{Req{N: 5, R: 2, Linearizable: true}, Read, 5, 0, 0, "linearizable mode needs R of at least a majority of N=5 (3), got 2"},
		{Req{N: 3}, Read, 1, 1, 1, ""},
		{Req{N: 2, W: 3}, Write, 5, 0, 0, "W=3 is above N=2"},
		{Req{N: 2, W: 3}, Read, 5, 2, 2, ""}, // a read does not look at W
		{Req{N: -1}, Read, 5, 0, 0, "N=-1 R=0: must be positive"},
		{Req{R: -1}, Read, 5, 0, 0, "N=3 R=-1: must be positive"},
	}
	for _, tc := range cases {
		n, q, err := tc.req.Resolve(tc.k, tc.servers)
		if tc.err != "" {
			if !errors.Is(err, errcode.InvalidArg) || errcode.Detail(err) != tc.err {
				t.Errorf("%+v %s on %d: %v, want ERR_INVALID_ARGUMENT %q", tc.req, tc.k, tc.servers, err, tc.err)
			}
			continue
		}
		if err != nil || n != tc.n || q != tc.q {
			t.Errorf("%+v %s on %d: n=%d q=%d %v, want n=%d q=%d", tc.req, tc.k, tc.servers, n, q, err, tc.n, tc.q)
		}
	}
}

// TestCountsAgreeWithResolve: on a ring of at least N servers, what a
// request asks for (Counts) is what the coordinator runs (Resolve).
func TestCountsAgreeWithResolve(t *testing.T) {
	for n := 0; n <= 7; n++ {
		for q := 0; q <= n; q++ {
			for l := LevelDefault; l <= LevelAll; l++ {
				for _, lin := range []bool{false, true} {
					req := Req{N: n, R: q, W: q, Level: l, Linearizable: lin}
					cn, cr, cw := req.Counts()
					for _, k := range []Kind{Read, Write} {
						rn, rq, err := req.Resolve(k, 10)
						if err != nil {
							continue // refused: Counts checks nothing
						}
						want := cr
						if k == Write {
							want = cw
						}
						if rn != cn || rq != want {
							t.Errorf("%+v %s: Resolve %d %d, Counts %d %d", req, k, rn, rq, cn, want)
						}
					}
				}
			}
		}
	}
}

func TestExplicit(t *testing.T) {
	if r, err := Explicit(Write, 3, 2); err != nil || r != (Req{N: 3, W: 2}) {
		t.Errorf("Explicit(W, 3, 2) = %+v %v", r, err)
	}
	if r, err := Explicit(Read, 1, 1); err != nil || r != (Req{N: 1, R: 1}) {
		t.Errorf("Explicit(R, 1, 1) = %+v %v", r, err)
	}
	for _, c := range [][2]int{{0, 1}, {1, 0}, {-1, 2}, {3, -2}} {
		if _, err := Explicit(Read, c[0], c[1]); !errors.Is(err, errcode.InvalidArg) {
			t.Errorf("Explicit(R, %d, %d): %v", c[0], c[1], err)
		}
	}
	if _, err := Explicit(Write, 0, 2); errcode.Detail(err) != "N=0 W=2: both must be at least 1" {
		t.Errorf("message: %v", err)
	}
}

// TestDefaults is the server's rule for its own replication (dkvs-server
// --resp-n, --resp-r, --resp-w, --resp-level, --resp-linearizable, and
// server.Config.Coord).
func TestDefaults(t *testing.T) {
	cases := []struct {
		name string
		req  Req
		want Req
		err  string
	}{
		{"nothing: 3, 2, 2", Req{}, Req{N: 3, R: 2, W: 2}, ""},
		{"N=1: R and W follow it down", Req{N: 1}, Req{N: 1, R: 1, W: 1}, ""},
		{"N=5", Req{N: 5}, Req{N: 5, R: 2, W: 2}, ""},
		{"given", Req{N: 4, R: 1, W: 4}, Req{N: 4, R: 1, W: 4}, ""},
		{"one given", Req{N: 2, W: 1}, Req{N: 2, R: 2, W: 1}, ""},
		{"level leaves R and W to it", Req{N: 3, Level: LevelOne}, Req{N: 3, Level: LevelOne}, ""},
		{"level and a number", Req{N: 3, R: 3, Level: LevelOne}, Req{N: 3, R: 3, Level: LevelOne}, ""},
		{"linearizable leaves them to the majority", Req{N: 3, Linearizable: true}, Req{N: 3, Linearizable: true}, ""},
		{"linearizable, a majority given", Req{N: 5, W: 3, Linearizable: true}, Req{N: 5, W: 3, Linearizable: true}, ""},
		{"N=254", Req{N: 254}, Req{N: 254, R: 2, W: 2}, ""},
		{"N=255", Req{N: 255}, Req{}, "N=255: want 1 to 254"},
		{"N=-1", Req{N: -1}, Req{}, "N=-1: want 1 to 254"},
		{"R>N", Req{N: 3, R: 4}, Req{}, "R=4 is above N=3"},
		{"W>N", Req{N: 2, W: 3}, Req{}, "W=3 is above N=2"},
		{"negative R", Req{N: 3, R: -1}, Req{}, "N=3 R=-1 W=0 level 0: must not be negative"},
		{"unknown level", Req{N: 3, Level: 7}, Req{}, "consistency level 7: want 0 (default), 1 (ONE), 2 (QUORUM) or 3 (ALL)"},
		{"linearizable below a majority", Req{N: 3, R: 1, Linearizable: true}, Req{},
			"linearizable mode needs R of at least a majority of N=3 (2), got 1"},
	}
	for _, tc := range cases {
		got, err := tc.req.Defaults()
		if tc.err != "" {
			if !errors.Is(err, errcode.InvalidArg) || errcode.Detail(err) != tc.err {
				t.Errorf("%s: %+v %v, want ERR_INVALID_ARGUMENT %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
		// What Defaults accepts, the coordinator accepts on a ring of N.
		for _, k := range []Kind{Read, Write} {
			if _, _, err := got.Resolve(k, got.N); err != nil && !tc.req.Linearizable {
				t.Errorf("%s: Resolve(%s): %v", tc.name, k, err)
			}
		}
	}
}

func TestValid(t *testing.T) {
	for _, r := range []Req{{}, {N: 1000, R: 5}, {Level: LevelAll}} {
		if err := r.Valid(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	for _, r := range []Req{{N: -1}, {R: -1}, {W: -1}, {Level: -1}, {Level: 4}} {
		if err := r.Valid(); !errors.Is(err, errcode.InvalidArg) {
			t.Errorf("%+v accepted: %v", r, err)
		}
	}
}

// TestParams: what a client sends for a request (Params) and what the
// coordinating server makes of it (FromParams).
func TestParams(t *testing.T) {
	def := Req{N: 5, R: 2, W: 2}
	cases := []struct {
		name string
		req  Req
		k    Kind
		p    Params
		got  Req // what the server runs
	}{
		{"nothing chosen: the server's defaults", Req{}, Read, Params{Defaults: true}, def},
		{"defaults, linearizable", Req{Linearizable: true}, Write, Params{Defaults: true, Linearizable: true},
			Req{N: 5, R: 2, W: 2, Linearizable: true}},
		{"N=0 with a count is 3", Req{W: 1}, Write, Params{N: 3, Q: 1}, Req{N: 3, W: 1}},
		{"read carries R", Req{N: 4, R: 3, W: 1}, Read, Params{N: 4, Q: 3}, Req{N: 4, R: 3}},
		{"write carries W", Req{N: 4, R: 3, W: 1}, Write, Params{N: 4, Q: 1}, Req{N: 4, W: 1}},
		{"level", Req{N: 3, Level: LevelAll}, Read, Params{N: 3, Level: uint8(LevelAll)}, Req{N: 3, Level: LevelAll}},
		{"level alone: N 3", Req{Level: LevelOne}, Read, Params{N: 3, Level: uint8(LevelOne)}, Req{N: 3, Level: LevelOne}},
	}
	for _, tc := range cases {
		p, err := tc.req.Params(tc.k)
		if err != nil || p != tc.p {
			t.Errorf("%s: Params %+v %v, want %+v", tc.name, p, err, tc.p)
			continue
		}
		got, err := FromParams(tc.k, p, def)
		if err != nil || got != tc.got {
			t.Errorf("%s: FromParams %+v %v, want %+v", tc.name, got, err, tc.got)
		}
	}
	if _, err := (Req{N: -1}).Params(Read); !errors.Is(err, errcode.InvalidArg) {
		t.Errorf("negative N sent: %v", err)
	}
	bad := []struct {
		name string
		p    Params
		err  string
	}{
		{"defaults with N", Params{Defaults: true, N: 3}, "N=3, R or W=0 and level 0 given with the server-defaults flag: they must be 0"},
		{"defaults with Q", Params{Defaults: true, Q: 1}, "N=0, R or W=1 and level 0 given with the server-defaults flag: they must be 0"},
		{"defaults with a level", Params{Defaults: true, Level: 1}, "N=0, R or W=0 and level 1 given with the server-defaults flag: they must be 0"},
		{"N=0", Params{}, "N=0: want 1 to 254 (or the server-defaults flag)"},
		{"N=255", Params{N: 255}, "N=255: want 1 to 254 (or the server-defaults flag)"},
		{"huge N", Params{N: 1 << 63}, "N=9223372036854775808: want 1 to 254 (or the server-defaults flag)"},
		{"Q>N", Params{N: 3, Q: 4}, "R=4 is above N=3"},
		{"huge Q", Params{N: 3, Q: 1<<64 - 1}, "R=18446744073709551615 is above N=3"},
		{"unknown level", Params{N: 3, Level: 9}, "consistency level 9: want 0 to 3"},
	}
	for _, tc := range bad {
		if _, err := FromParams(Read, tc.p, def); !errors.Is(err, errcode.InvalidArg) || errcode.Detail(err) != tc.err {
			t.Errorf("%s: %v, want ERR_INVALID_ARGUMENT %q", tc.name, err, tc.err)
		}
	}
	if _, err := FromParams(Write, Params{N: 2, Q: 3}, def); errcode.Detail(err) != "W=3 is above N=2" {
		t.Errorf("write Q>N: %v", err)
	}
}

func TestLevel(t *testing.T) {
	for s, want := range map[string]Level{"one": LevelOne, "Quorum": LevelQuorum, "ALL": LevelAll} {
		if l, err := ParseLevel(s); err != nil || l != want {
			t.Errorf("ParseLevel(%q) = %v %v", s, l, err)
		}
	}
	for _, s := range []string{"", "SOME", "LINEARIZABLE", "DEFAULT"} {
		if _, err := ParseLevel(s); !errors.Is(err, errcode.InvalidArg) {
			t.Errorf("ParseLevel(%q) accepted: %v", s, err)
		}
	}
	counts := []struct {
		l    Level
		n    int
		want int
	}{
		{LevelDefault, 1, 1}, {LevelDefault, 3, 2}, {LevelDefault, 7, 2},
		{LevelOne, 5, 1}, {LevelQuorum, 3, 2}, {LevelQuorum, 4, 3}, {LevelQuorum, 5, 3},
		{LevelAll, 4, 4},
	}
	for _, c := range counts {
		if got := c.l.Count(c.n); got != c.want {
			t.Errorf("%s.Count(%d) = %d, want %d", c.l, c.n, got, c.want)
		}
	}
	if LevelQuorum.String() != "QUORUM" || Level(9).String() != "DEFAULT" || Read.String() != "R" || Write.String() != "W" {
		t.Error("names")
	}
}
