package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dkvs/dkvs/dkvs/certgen"
	"github.com/dkvs/dkvs/dkvs/errcode"
	"github.com/dkvs/dkvs/tests/harness"
)

// secureUsersRing is a ring of three over TLS with a users file, each
// server with a RESP and a metrics port. The harness's own pings and
// stats go with a client certificate of the user "harness" (read on every
// key). It returns the ring, its certificates, the users file, the RESP
// and metrics addresses, and each user's token file.
type usersRing struct {
	r       *harness.Ring
	certs   *harness.Certs
	users   string
	resp    []string
	metrics []string
	tokens  map[string]string // user -> token
}

func (u *usersRing) tokenFile(t *testing.T, user string) string {
	t.Helper()
	p := filepath.Join(u.r.Dir, "token-"+user)
	if err := os.WriteFile(p, []byte(u.tokens[user]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// as runs dkvs-client as user (with its token file), or without
// credentials for "".
func (u *usersRing) as(t *testing.T, user string, args ...string) harness.Result {
	t.Helper()
	if user == "" {
		return u.r.Client(args...)
	}
	return u.r.Client(append([]string{"--user", user, "--token-file", u.tokenFile(t, user)}, args...)...)
}

// addUser adds a user to the ring's users file with dkvs-client user add
// and keeps its token.
func (u *usersRing) addUser(t *testing.T, name, rights, prefixes string) {
	t.Helper()
	res := u.r.Client("user", "add", "--users", u.users, "--rights", rights, "--prefixes", prefixes, "--", name)
	if res.Code != 0 {
		t.Fatalf("user add %s: %+v", name, res)
	}
	u.tokens[name] = strings.TrimSpace(res.Stdout)
}

func startUsersRing(t *testing.T) *usersRing {
	t.Helper()
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory", "--ae-interval", "1s"}
	u := &usersRing{r: r, users: filepath.Join(r.Dir, "users.txt"), tokens: map[string]string{}}
	u.certs = r.Secure()
	u.addUser(t, "app", "read,write", "app/,cache/")
	u.addUser(t, "reader", "read", "*")
	u.addUser(t, "ops", "admin,read", "*")
	u.addUser(t, "harness", "read", "*")
	files, err := u.certs.Client("harness", certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.ClientTLS, err = u.certs.TLSConfig(files); err != nil {
		t.Fatal(err)
	}
	u.resp = r.WithRESP("--users", u.users)
	ports := harness.FreePorts(t, 3)
	for i := range r.Servers {
		u.metrics = append(u.metrics, fmt.Sprintf("127.0.0.1:%d", ports[i]))
		r.ServerArgs[i] = append(r.ServerArgs[i], "--metrics", u.metrics[i])
	}
	r.StartAll()
	r.WaitPeersUp()
	return u
}

// TestAuthNative: each right allowed and denied through dkvs-client over
// TLS, the exit codes and messages of a refusal, and nothing stored by a
// refused write.
func TestAuthNative(t *testing.T) {
	u := startUsersRing(t)
	denied, wrong, required := "permission denied", "invalid user or token", "authentication required"
	cfg := errcode.InvalidConfig.ExitStatus()
	steps := []struct {
		name string
		user string
		args []string
		code int
		msg  string // in stderr (refusals) or stdout
	}{
		{"put in prefix", "app", []string{"put", "--", "app/1", "v1"}, 0, "OK"},
		{"get in prefix", "app", []string{"get", "--", "app/1"}, 0, "OK v1"},
		{"put via in prefix", "app", []string{"--via", u.r.Addr(1), "put", "--", "cache/1", "c1"}, 0, "OK"},
		{"put outside", "app", []string{"put", "--", "etc/1", "x"}, cfg, denied},
		{"put via outside", "app", []string{"--via", u.r.Addr(0), "put", "--", "etc/2", "x"}, cfg, denied},
		{"del outside", "app", []string{"del", "--", "etc/3"}, cfg, denied},
		{"get outside", "app", []string{"get", "--", "etc/1"}, cfg, denied},
		{"dump without admin", "app", []string{"dump"}, cfg, denied},
		{"leave without admin", "app", []string{"leave", "--", u.r.Addr(2)}, cfg, denied},
		{"reader get", "reader", []string{"get", "--", "app/1"}, 0, "OK v1"},
		{"reader put", "reader", []string{"put", "--", "app/2", "x"}, cfg, denied},
		{"no credentials", "", []string{"get", "--", "app/1"}, cfg, required},
		{"no credentials put", "", []string{"put", "--", "app/3", "x"}, cfg, required},
		{"admin dump", "ops", []string{"dump"}, 0, "app/1 --> v1"},
		{"admin status", "ops", []string{"status"}, 0, u.r.Addr(2)},
		{"refused writes stored nothing", "ops", []string{"get", "--", "etc/1"}, errcode.NotFound.ExitStatus(), "FAIL"},
		{"nor via", "ops", []string{"get", "--", "etc/2"}, errcode.NotFound.ExitStatus(), "FAIL"},
		{"nor as reader", "ops", []string{"get", "--", "app/2"}, errcode.NotFound.ExitStatus(), "FAIL"},
		{"nor without credentials", "ops", []string{"get", "--", "app/3"}, errcode.NotFound.ExitStatus(), "FAIL"},
	}
	for _, st := range steps {
		res := u.as(t, st.user, st.args...)
		out := res.Stdout
		if st.code != 0 && st.msg != "FAIL" {
			out = res.Stderr
		}
		if res.Code != st.code || !strings.Contains(out, st.msg) {
			t.Errorf("%s: exit %d, want %d with %q:\nstdout: %s\nstderr: %s", st.name, res.Code, st.code, st.msg, firstLines(res.Stdout, 3), res.Stderr)
		}
	}
	// A wrong token, given on the command line and in the environment.
	res := u.r.Client("--user", "app", "--token", u.tokens["reader"], "get", "--", "app/1")
	if res.Code != cfg || !strings.Contains(res.Stderr, wrong) {
		t.Errorf("wrong token: exit %d: %s", res.Code, res.Stderr)
	}
	// A server that refuses the token answered: status shows it refused,
	// not down, and exits as for the credentials.
	res = u.r.Client("--user", "app", "--token", u.tokens["reader"], "status")
	table, _, _ := strings.Cut(res.Stdout, "\n\n") // before the usage text
	if res.Code != cfg || !strings.Contains(res.Stderr, "refused the credentials") ||
		strings.Count(table, " refused ") != len(u.r.Servers) || strings.Contains(table, " down ") {
		t.Errorf("status with a wrong token: exit %d:\nstdout: %s\nstderr: %s", res.Code, firstLines(res.Stdout, 5), res.Stderr)
	}
	// The ring was not changed by the refused leave.
	if res := u.as(t, "ops", "ring", "--json"); res.Code != 0 || !strings.Contains(res.Stdout, u.r.Addr(2)) {
		t.Errorf("ring after a refused leave: %+v", res)
	}
	// Each server logged the refusals with the client's address.
	found := false
	for i := range u.r.Servers {
		if strings.Contains(u.r.Log(i), "request refused") && strings.Contains(u.r.Log(i), "remote=127.0.0.1:") {
			found = true
		}
	}
	if !found {
		t.Errorf("no server logged a refusal with the client's address")
	}
}

// TestAuthReload: a user added or removed with dkvs-client user is
// accepted or refused without a restart, and a users file that does not
// parse keeps the users as they were.
func TestAuthReload(t *testing.T) {
	u := startUsersRing(t)
	u.addUser(t, "late", "read,write", "late/")
	harness.Eventually(t, 20*time.Second, "the new user is accepted", func() error {
		if res := u.as(t, "late", "put", "--", "late/1", "v"); res.Code != 0 {
			return fmt.Errorf("exit %d: %s", res.Code, res.Stderr)
		}
		return nil
	})
	good, err := os.ReadFile(u.users)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.users, append(good, "broken line\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 20*time.Second, "every server logs the bad users file", func() error {
		for i := range u.r.Servers {
			if !strings.Contains(u.r.Log(i), "users file not reloaded") {
				return fmt.Errorf("server %d has not logged it", i)
			}
		}
		return nil
	})
	if res := u.as(t, "late", "get", "--", "late/1"); res.Code != 0 {
		t.Fatalf("a bad users file dropped the users: %+v", res)
	}
	if err := os.WriteFile(u.users, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := u.r.Client("user", "del", "--users", u.users, "--", "late"); res.Code != 0 {
		t.Fatalf("user del: %+v", res)
	}
	// SIGHUP reloads at once (the poll would too, within seconds).
	for i := range u.r.Servers {
		u.r.Signal(i, 1)
	}
	harness.Eventually(t, 20*time.Second, "the deleted user is refused", func() error {
		res := u.as(t, "late", "--via", u.r.Addr(0), "get", "--", "late/1")
		if res.Code != errcode.InvalidConfig.ExitStatus() {
			return fmt.Errorf("exit %d: %s", res.Code, res.Stderr)
		}
		return nil
	})
}

// TestAuthRESP: redis-cli --tls and go-redis over TLS with AUTH: NOAUTH
// before, WRONGPASS for a wrong token, NOPERM outside the user's
// prefixes, and nothing stored by a refused command.
func TestAuthRESP(t *testing.T) {
	u := startUsersRing(t)
	tlsCfg := u.r.ClientTLS.Clone()
	tlsCfg.Certificates = nil // no client certificate: authenticate with AUTH
	tlsCfg.ServerName = "127.0.0.1"
	ctx := context.Background()
	newClient := func(user, token string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: u.resp[0], Username: user, Password: token, TLSConfig: tlsCfg,
			Protocol: 2, MaxRetries: -1, DialTimeout: 5 * time.Second, ReadTimeout: 20 * time.Second})
		t.Cleanup(func() { c.Close() })
		return c
	}
	anon := newClient("", "")
	if err := anon.Set(ctx, "app/r1", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("SET before AUTH: %v, want NOAUTH", err)
	}
	if err := newClient("app", "wrong").Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong token: %v, want WRONGPASS", err)
	}
	app := newClient("app", u.tokens["app"])
	if err := app.Set(ctx, "app/r1", "v", 0).Err(); err != nil {
		t.Fatalf("SET in prefix: %v", err)
	}
	if v, err := app.Get(ctx, "app/r1").Result(); err != nil || v != "v" {
		t.Fatalf("GET in prefix: %q, %v", v, err)
	}
	for _, cmd := range [][]any{{"SET", "etc/r1", "x"}, {"MSET", "app/r2", "y", "etc/r2", "y"}, {"GET", "etc/r1"}, {"DEL", "etc/r1"}, {"SCAN", "0"}} {
		if err := app.Do(ctx, cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("%v: %v, want NOPERM", cmd, err)
		}
	}
	// AUTH with the token alone names its user.
	ro := newClient("", u.tokens["reader"])
	if v, err := ro.Get(ctx, "app/r1").Result(); err != nil || v != "v" {
		t.Fatalf("GET as reader (AUTH token): %q, %v", v, err)
	}
	for _, k := range []string{"etc/r1", "app/r2", "etc/r2"} {
		if err := ro.Get(ctx, k).Err(); err != redis.Nil {
			t.Errorf("GET %s after a refused write: %v, want nil", k, err)
		}
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not installed (apt-get install redis-tools): %v", err)
	}
	host, port := strings.Split(u.resp[1], ":")[0], strings.Split(u.resp[1], ":")[1]
	base := []string{"--tls", "--cacert", u.certs.CAFile(), "-h", host, "-p", port}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"GET", "app/r1"}, "NOAUTH"},
		{[]string{"--user", "app", "--pass", "wrong", "GET", "app/r1"}, "WRONGPASS"},
		{[]string{"--user", "app", "--pass", u.tokens["app"], "SET", "cache/r3", "w"}, "OK"},
		{[]string{"--user", "app", "--pass", u.tokens["app"], "SET", "etc/r3", "w"}, "NOPERM"},
		{[]string{"--user", "reader", "--pass", u.tokens["reader"], "GET", "cache/r3"}, "w"},
		{[]string{"--user", "reader", "--pass", u.tokens["reader"], "GET", "etc/r3"}, ""},
	}
	for _, st := range steps {
		out, _ := exec.Command(cli, append(append(slices.Clone(base), "--no-auth-warning"), st.args...)...).CombinedOutput()
		if got := strings.TrimSpace(string(out)); !strings.Contains(got, st.want) || (st.want == "" && got != "") {
			t.Errorf("redis-cli %v: %q, want %q", st.args, got, st.want)
		}
	}
}

// TestAuthMetrics: the metrics and console port asks for HTTP basic
// authentication with the read or admin right.
func TestAuthMetrics(t *testing.T) {
	u := startUsersRing(t)
	cfg := u.r.ClientTLS.Clone()
	cfg.Certificates = nil
	cfg.ServerName = "127.0.0.1"
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	tests := []struct {
		user, token string
		want        int
	}{
		{"", "", http.StatusUnauthorized},
		{"reader", "wrong", http.StatusUnauthorized},
		{"app", u.tokens["app"], http.StatusOK},
		{"reader", u.tokens["reader"], http.StatusOK},
	}
	for _, tc := range tests {
		req, err := http.NewRequest("GET", "https://"+u.metrics[0]+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /metrics as %q: %d, want %d", tc.user, resp.StatusCode, tc.want)
		}
	}
}

// TestUsersNeedTLS: --users without TLS refuses to start.
func TestUsersNeedTLS(t *testing.T) {
	r := harness.NewRing(t, 1)
	users := filepath.Join(r.Dir, "users.txt")
	if err := os.WriteFile(users, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res := harness.Run(t, r.Dir, harness.Bin(t, "dkvs-server"), "--memory", "--users", users, "127.0.0.1", fmt.Sprint(r.Servers[0].Port))
	if res.Code != errcode.InvalidCommand.ExitStatus() || !strings.Contains(res.Stderr, "--users needs TLS") {
		t.Fatalf("--users without TLS: exit %d: %s", res.Code, res.Stderr)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestAuthCLibrary runs tests/c/users.c (dkvs_options_t's user and
// token) and dkvs-thin's --user and --token-file against a ring with
// users.
func TestAuthCLibrary(t *testing.T) {
	prog := compileC(t, cTest("users.c"))
	u := startUsersRing(t)
	wantPass(t, harness.Run(t, u.r.Dir, prog, u.r.ServersFile(), u.certs.CAFile(), u.tokens["app"]))

	thin := harness.Bin(t, "dkvs-thin")
	ca := []string{"--tls-ca", u.certs.CAFile()}
	appFile := u.tokenFile(t, "app")
	cfg := errcode.InvalidConfig.ExitStatus()
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		out  string
		msg  string
	}{
		{"flags", nil, append(slices.Clone(ca), "--user", "app", "--token-file", appFile, "get", "--", "app/c"), 0, "OK from C\n", ""},
		{"environment", []string{"DKVS_TLS_CA=" + u.certs.CAFile(), "DKVS_USER=app", "DKVS_TOKEN=" + u.tokens["app"]},
			[]string{"put", "--", "app/thin", "t"}, 0, "OK\n", ""},
		{"outside the prefixes", nil, append(slices.Clone(ca), "--user", "app", "--token-file", appFile, "put", "--", "etc/thin", "t"), cfg, "FAIL\n", "Invalid config"},
		{"wrong token", nil, append(slices.Clone(ca), "--user", "app", "--token", "nope", "get", "--", "app/c"), cfg, "FAIL\n", "Invalid config"},
		{"no credentials", nil, append(slices.Clone(ca), "get", "--", "app/c"), cfg, "FAIL\n", "Invalid config"},
		{"user without token", nil, append(slices.Clone(ca), "--user", "app", "get", "--", "app/c"), 134, "", "needs --token-file"},
		{"missing token file", nil, append(slices.Clone(ca), "--user", "app", "--token-file", appFile+".none", "get", "--", "app/c"), 129, "", "--token-file"},
	}
	for _, tc := range tests {
		t.Run("thin "+tc.name, func(t *testing.T) {
			res := runIn(t, u.r.Dir, tc.env, thin, tc.args...)
			if res.Code != tc.code || !strings.HasPrefix(res.Stdout, tc.out) || !strings.Contains(res.Stderr, tc.msg) {
				t.Fatalf("%s: want exit %d, stdout %q, %q in stderr", res, tc.code, tc.out, tc.msg)
			}
		})
	}
	if res := u.as(t, "ops", "get", "--", "etc/thin"); res.Code != errcode.NotFound.ExitStatus() {
		t.Fatalf("a refused put of dkvs-thin stored its key: %s", res)
	}
}

// TestAuthRingRepairs: with users on, the servers' own traffic (hints'
// delivery, anti-entropy, read repair) goes on between members, who are
// such by their certificates: a server that missed writes while down
// gets them back (anti-entropy: a ring of three has no fallback for
// hints), and no server refused a peer.
func TestAuthRingRepairs(t *testing.T) {
	u := startUsersRing(t)
	if err := u.r.Term(2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if res := u.as(t, "app", "put", "-n", "3", "-w", "2", "--", fmt.Sprintf("app/missed-%d", i), "v"); res.Code != 0 {
			t.Fatalf("put with a server down: %s", res)
		}
	}
	u.r.Start(2)
	harness.Eventually(t, 60*time.Second, "the restarted server has every write it missed", func() error {
		res := u.as(t, "ops", "dump", "--server", u.r.Addr(2))
		if res.Code != 0 {
			return fmt.Errorf("dump --server: %s", res)
		}
		if n := strings.Count(res.Stdout, "app/missed-"); n != 20 {
			return fmt.Errorf("%d of 20 keys", n)
		}
		return nil
	})
	for i := range u.r.Servers {
		for _, line := range strings.Split(u.r.Log(i), "\n") {
			// Every client of this test gives a user: a refusal without
			// one is a peer's.
			if strings.Contains(line, "request refused") && strings.Contains(line, `user=""`) {
				t.Errorf("server %d refused a connection without a user (a peer?): %s", i, line)
			}
		}
	}
}
