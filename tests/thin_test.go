package tests

// The thin C client (done/dkvs-thin) against dkvs-client: the same
// arguments, environment and directory must give the same exit status,
// the same first line of output and the same error code message.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/tests/harness"
)

// runIn runs prog in dir with the test's environment minus every DKVS_*
// variable, plus env.
func runIn(t *testing.T, dir string, env []string, prog string, args ...string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DKVS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := harness.Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", prog, err)
	}
	return res
}

// codeOfStatus returns the error code whose exit status is status.
func codeOfStatus(status int) (errcode.Code, bool) {
	for _, c := range errcode.All {
		if c.ExitStatus() == status {
			return c, true
		}
	}
	return 0, false
}

// sameOutcome compares the results of dkvs-client and dkvs-thin and
// returns what differs.
func sameOutcome(client, thin harness.Result) error {
	if client.Code != thin.Code {
		return fmt.Errorf("exit %d, dkvs-client exits %d", thin.Code, client.Code)
	}
	cl, th := client.FirstLine(), thin.FirstLine()
	if strings.HasPrefix(cl, "Usage: dkvs-client ") {
		// Each program prints its own usage.
		if !strings.HasPrefix(th, "Usage: dkvs-thin ") {
			return fmt.Errorf("first line %q, want the usage", th)
		}
	} else if cl != th {
		return fmt.Errorf("first line %q, dkvs-client prints %q", th, cl)
	}
	if strings.HasPrefix(cl, "OK") && client.Stdout != thin.Stdout {
		return fmt.Errorf("stdout %q, dkvs-client prints %q", thin.Stdout, client.Stdout)
	}
	if client.Code == 0 {
		if thin.Stderr != "" || client.Stderr != "" {
			return fmt.Errorf("stderr %q and %q on success", thin.Stderr, client.Stderr)
		}
		return nil
	}
	code, ok := codeOfStatus(client.Code)
	if !ok {
		return fmt.Errorf("exit %d is not a DKVS code", client.Code)
	}
	want := "ERROR: " + code.Error()
	for _, r := range []harness.Result{client, thin} {
		if !strings.HasPrefix(r.Stderr, want) || strings.Count(r.Stderr, "\n") != 1 {
			return fmt.Errorf("stderr %q, want one line starting %q", r.Stderr, want)
		}
		// The usage follows every error, after FAIL if there is one.
		if !strings.Contains(r.Stdout, "\nFlags of every command") {
			return fmt.Errorf("no usage on stdout after an error: %q", r.Stdout)
		}
	}
	return nil
}

// TestThinMatchesClient runs dkvs-thin and dkvs-client with the same
// arguments against the same ring, case by case.
func TestThinMatchesClient(t *testing.T) {
	client, thin := harness.Bin(t, "dkvs-client"), harness.Bin(t, "dkvs-thin")
	r := harness.NewRing(t, 1, 2, 3)
	r.Args = []string{"--memory"}
	r.StartAll()
	ring := r.Dir
	servers := r.ServersFile()
	for _, kv := range [][2]string{{"present", "a value"}, {"tricky", "tab\tand\nnewline"}, {"-n", "dash key"}, {"gone", "x"}} {
		wantOK(t, r.Client("put", "--", kv[0], kv[1]), "OK")
	}

	// Directories with other servers files.
	base := t.TempDir()
	dirWith := func(name, content string) string {
		d := filepath.Join(base, name)
		os.Mkdir(d, 0o755)
		if content != "" {
			os.WriteFile(filepath.Join(d, "servers.txt"), []byte(content), 0o644)
		}
		return d
	}
	noFile := dirWith("none", "")
	badPort := dirWith("bad-port", "127.0.0.1 0 1\n")
	badCount := dirWith("bad-count", "127.0.0.1 7000 abc\n")
	badIP := dirWith("bad-ip", "256.0.0.1 7000 1\n")
	emptyFile := filepath.Join(dirWith("empty", ""), "servers.txt")
	os.WriteFile(emptyFile, nil, 0o644)
	empty := filepath.Dir(emptyFile)
	// A ring nobody serves: ports that were free a moment ago.
	var downServers []config.Server
	for _, p := range harness.FreePorts(t, 3) {
		downServers = append(downServers, config.Server{IP: "127.0.0.1", Port: p, Count: 1})
	}
	var b strings.Builder
	for _, s := range downServers {
		fmt.Fprintf(&b, "%s %d %d\n", s.IP, s.Port, s.Count)
	}
	down := dirWith("down", b.String())

	const (
		exitOK       = 0
		exitIO       = 129
		exitNetwork  = 132
		exitConfig   = 133
		exitCommand  = 134
		exitArgument = 135
		exitAddress  = 136
		exitNotFound = 137
	)
	cases := []struct {
		dir  string
		env  []string
		args []string
		want int
	}{
		// Operations.
		{ring, nil, []string{"get", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "--", "tricky"}, exitOK},
		{ring, nil, []string{"get", "--", "-n"}, exitOK},
		{ring, nil, []string{"get", "-n", "1", "-r", "1", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-r", "1", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-r", "3", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-w", "3", "--", "present"}, exitOK}, // -w is accepted and ignored by get
		{ring, nil, []string{"get", "-n", "7", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-n", "254", "-r", "254", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-n=3", "-r=2", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "--n", "3", "--r=1", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-n", "1", "-n", "3", "-r", "3", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-r", "000000002", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "--", "absent"}, exitNotFound},
		{ring, nil, []string{"get", "--", "presen"}, exitNotFound},
		{ring, nil, []string{"get", "--", ""}, exitArgument},
		{ring, nil, []string{"put", "--", "k1", "v1"}, exitOK},
		{ring, nil, []string{"get", "--", "k1"}, exitOK},
		{ring, nil, []string{"put", "--", "k1", ""}, exitOK},
		{ring, nil, []string{"get", "--", "k1"}, exitOK},
		{ring, nil, []string{"put", "-n", "3", "-w", "3", "--", "k2", "-v"}, exitOK},
		{ring, nil, []string{"put", "-n", "3", "-w", "1", "--", "k3", "--"}, exitOK},
		{ring, nil, []string{"get", "--", "k3"}, exitOK},
		{ring, nil, []string{"put", "-n", "9", "-w", "9", "--", "k4", "all"}, exitOK},
		{ring, nil, []string{"put", "--", "", "v"}, exitArgument},
		{ring, nil, []string{"del", "--", "gone"}, exitOK},
		{ring, nil, []string{"get", "--", "gone"}, exitNotFound},
		{ring, nil, []string{"del", "--", "never-there"}, exitOK},
		{ring, nil, []string{"del", "-n", "3", "-w", "3", "--", "k2"}, exitOK},
		{ring, nil, []string{"get", "-r", "3", "--", "k2"}, exitNotFound},
		{ring, nil, []string{"del", "--", ""}, exitArgument},
		// Consistency levels and the linearizable mode.
		{ring, nil, []string{"get", "-c", "ONE", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-c", "quorum", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-c", "ALL", "-r", "1", "-n", "3", "--", "present"}, exitOK},
		{ring, nil, []string{"put", "-c", "ALL", "--", "lvl", "all"}, exitOK},
		{ring, nil, []string{"get", "-c", "LINEARIZABLE", "--", "lvl"}, exitOK},
		{ring, nil, []string{"put", "-c", "linearizable", "-n", "3", "--", "lvl", "lin"}, exitOK},
		{ring, nil, []string{"--linearizable", "get", "--", "lvl"}, exitOK},
		{ring, nil, []string{"--linearizable=true", "del", "-w", "2", "-n", "3", "--", "lvl"}, exitOK},
		{ring, nil, []string{"--linearizable=false", "get", "-r", "1", "--", "present"}, exitOK},
		{ring, []string{"DKVS_LINEARIZABLE=1"}, []string{"get", "--", "present"}, exitOK},
		{ring, []string{"DKVS_CONSISTENCY=ONE"}, []string{"get", "--", "present"}, exitOK},
		{ring, nil, []string{"get", "-c", "LINEARIZABLE", "-r", "1", "-n", "3", "--", "present"}, exitCommand},
		{ring, nil, []string{"--linearizable", "put", "-w", "1", "-n", "3", "--", "k", "v"}, exitCommand},
		{ring, nil, []string{"get", "-c", "SOME", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-c", "", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-c"}, exitCommand},
		{ring, nil, []string{"--linearizable=maybe", "get", "--", "present"}, exitCommand},
		{ring, []string{"DKVS_LINEARIZABLE=maybe"}, []string{"get", "--", "present"}, exitCommand},
		{ring, nil, []string{"-servers", servers, "--timeout", "2s", "get", "--", "present"}, exitOK},
		{ring, nil, []string{"--timeout=1.5s", "get", "--", "present"}, exitOK},
		{ring, nil, []string{"--timeout", "1m0.5s", "get", "--", "present"}, exitOK},
		{ring, nil, []string{"--", "get", "--", "present"}, exitOK},
		// Help.
		{ring, nil, []string{"help"}, exitOK},
		{ring, nil, []string{"help", "--", "x"}, exitOK},
		{ring, nil, []string{"help", "-n", "0"}, exitOK},
		{ring, nil, []string{"-h"}, exitOK},
		{ring, nil, []string{"--help"}, exitOK},
		{ring, nil, []string{"get", "-h"}, exitOK},
		{ring, nil, []string{"put", "--help", "--", "k", "v"}, exitOK},
		{ring, nil, []string{"del", "-n", "1", "-help=x"}, exitOK},
		// Invalid command lines (cs202.md section 3).
		{ring, nil, nil, exitCommand},
		{ring, nil, []string{"nosuch", "--", "k"}, exitCommand},
		{ring, nil, []string{""}, exitCommand},
		{ring, nil, []string{"GET", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-r", "3", "-n", "2", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-n", "1", "-r", "2", "--", "present"}, exitCommand},
		{ring, nil, []string{"put", "-w", "3", "-n", "2", "--", "k", "v"}, exitCommand},
		{ring, nil, []string{"put", "-n", "1", "-w", "2", "--", "k", "v"}, exitCommand},
		{ring, nil, []string{"del", "-w", "4", "-n", "3", "--", "k"}, exitCommand},
		{ring, nil, []string{"get", "-r", "255", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-n", "255", "--", "present"}, exitCommand},
		{ring, nil, []string{"put", "-w", "1000", "--", "k", "v"}, exitCommand},
		{ring, nil, []string{"get", "-r", "0", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-n", "-1", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-r", "abc", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-r", "1234abc", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-r", "+2", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-r", " 2", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-r", "", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-n=", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-r", "0000000001", "--", "present"}, exitCommand},
		{ring, nil, []string{"put", "-w", "1.5", "--", "k", "v"}, exitCommand},
		{ring, nil, []string{"get", "-n"}, exitCommand},
		{ring, nil, []string{"get", "-n", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "--", "present", "-r"}, exitCommand},
		{ring, nil, []string{"get", "-x", "1", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "--bogus", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "---n", "1", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-=1", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "-", "--", "present"}, exitCommand},
		{ring, nil, []string{"get", "present"}, exitCommand},
		{ring, nil, []string{"get", "-n", "1", "present"}, exitCommand},
		{ring, nil, []string{"get", "-n", "1", "present", "--", "present"}, exitCommand},
		{ring, nil, []string{"put", "k", "v"}, exitCommand},
		{ring, nil, []string{"del", "k"}, exitCommand},
		{ring, nil, []string{"help", "x"}, exitCommand},
		{ring, nil, []string{"get"}, exitCommand},
		{ring, nil, []string{"get", "--"}, exitCommand},
		{ring, nil, []string{"get", "--", "a", "b"}, exitCommand},
		{ring, nil, []string{"put", "--", "k"}, exitCommand},
		{ring, nil, []string{"put", "--", "k", "v", "x"}, exitCommand},
		{ring, nil, []string{"del", "--"}, exitCommand},
		{ring, nil, []string{"del", "--", "a", "b"}, exitCommand},
		{ring, nil, []string{"--servers"}, exitCommand},
		{ring, nil, []string{"--servers", servers}, exitCommand},
		{ring, nil, []string{"-x", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"-n", "1", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"--timeout", "abc", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"--timeout", "1", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"--timeout", "0", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"--timeout", "-1s", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"--timeout", "1e3s", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"--timeout", "1x", "get", "--", "present"}, exitCommand},
		{ring, nil, []string{"--timeout", "0", "-h"}, exitOK},
		{ring, nil, []string{"--timeout", "x", "-h"}, exitCommand},
		// Servers files.
		{noFile, nil, []string{"get", "--", "present"}, exitIO},
		{noFile, nil, []string{"put", "--", "k", "v"}, exitIO},
		{noFile, nil, []string{"del", "--", "k"}, exitIO},
		{noFile, nil, []string{"get", "-r", "0", "--", "present"}, exitCommand}, // the command line is checked first
		{noFile, nil, []string{"--servers", "elsewhere.txt", "get", "--", "present"}, exitIO},
		{noFile, nil, []string{"--servers", servers, "get", "--", "present"}, exitOK},
		{noFile, nil, []string{"--servers=" + servers, "put", "--", "k5", "v5"}, exitOK},
		{noFile, []string{"DKVS_SERVERS=" + servers}, []string{"get", "--", "present"}, exitOK},
		{noFile, []string{"DKVS_SERVERS=missing.txt"}, []string{"--servers", servers, "get", "--", "present"}, exitOK},
		{ring, []string{"DKVS_SERVERS=missing.txt"}, []string{"get", "--", "present"}, exitIO},
		{ring, []string{"DKVS_SERVERS="}, []string{"get", "--", "present"}, exitOK},
		{badPort, nil, []string{"get", "--", "present"}, exitConfig},
		{badCount, nil, []string{"put", "--", "k", "v"}, exitConfig},
		{empty, nil, []string{"get", "--", "present"}, exitConfig},
		{badIP, nil, []string{"get", "--", "present"}, exitAddress},
		{down, nil, []string{"get", "--", "present"}, exitNetwork},
		{down, nil, []string{"put", "--", "k", "v"}, exitNetwork},
		{down, nil, []string{"del", "--", "k"}, exitNetwork},
		// The environment.
		{ring, []string{"DKVS_N=1", "DKVS_R=1"}, []string{"get", "--", "present"}, exitOK},
		{ring, []string{"DKVS_N=1"}, []string{"get", "-r", "2", "--", "present"}, exitCommand},
		{ring, []string{"DKVS_N=1"}, []string{"get", "-n", "3", "-r", "2", "--", "present"}, exitOK},
		{ring, []string{"DKVS_N=abc"}, []string{"get", "--", "present"}, exitCommand},
		{ring, []string{"DKVS_R="}, []string{"get", "--", "present"}, exitCommand},
		{ring, []string{"DKVS_W=3", "DKVS_N=2"}, []string{"put", "--", "k", "v"}, exitCommand},
		{ring, []string{"DKVS_W=3"}, []string{"put", "--", "k6", "v"}, exitOK},
		{ring, []string{"DKVS_TIMEOUT=2s"}, []string{"get", "--", "present"}, exitOK},
		{ring, []string{"DKVS_TIMEOUT="}, []string{"get", "--", "present"}, exitOK},
		{ring, []string{"DKVS_TIMEOUT=abc"}, []string{"get", "--", "present"}, exitCommand},
		{ring, []string{"DKVS_TIMEOUT=abc"}, []string{"-h"}, exitCommand},
		{ring, []string{"DKVS_TIMEOUT=0s"}, []string{"get", "--", "present"}, exitCommand},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s %q in %s", strings.Join(tc.env, " "), tc.args, filepath.Base(tc.dir))
		cr := runIn(t, tc.dir, tc.env, client, tc.args...)
		tr := runIn(t, tc.dir, tc.env, thin, tc.args...)
		if cr.Code != tc.want {
			t.Errorf("%s: dkvs-client exits %d, want %d: %s", name, cr.Code, tc.want, cr)
		}
		if err := sameOutcome(cr, tr); err != nil {
			t.Errorf("%s: dkvs-thin: %v\n  dkvs-client: %s\n  dkvs-thin:   %s", name, err, cr, tr)
		}
	}

	// What one writes, the other reads.
	wantOK(t, runIn(t, ring, nil, thin, "put", "--", "from-thin", "thin value"), "OK")
	wantOK(t, r.Client("get", "-r", "3", "--", "from-thin"), "OK thin value")
	wantOK(t, r.Client("put", "--", "from-client", "client value"), "OK")
	wantOK(t, runIn(t, ring, nil, thin, "get", "-r", "3", "--", "from-client"), "OK client value")
	wantOK(t, runIn(t, ring, nil, thin, "del", "--", "from-client"), "OK")
	wantFail(t, r.Client("get", "--", "from-client"), errcode.NotFound)
	// A thin put reaches all N servers before the process exits, not only W
	// (the dumps read below show one pair per line: no newline in values).
	wantOK(t, r.Client("del", "--", "tricky"), "OK")
	wantOK(t, runIn(t, ring, nil, thin, "put", "-n", "3", "-w", "1", "--", "everywhere", "v"), "OK")
	for i := range r.Servers {
		if !slicesContains(serverKeys(t, r, i), "everywhere") {
			t.Errorf("%s lacks the key put with W=1", r.Addr(i))
		}
	}
}
