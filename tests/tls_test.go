package tests

// TLS between real processes on 127.0.0.1: a secure ring where puts,
// gets, hinted handoff, read repair and anti-entropy work; a server of
// another CA that gets nothing in; plaintext clients, unknown CAs,
// expired and wrong-name certificates refused with clear errors;
// certificates rotated under load with no failed operation; redis-cli,
// go-redis and the metrics port over TLS.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dkvs/dkvs/dkvs"
	"github.com/dkvs/dkvs/dkvs/certgen"
	"github.com/dkvs/dkvs/dkvs/config"
	"github.com/dkvs/dkvs/dkvs/tlsconf"
	"github.com/dkvs/dkvs/dkvs/wire"
	"github.com/dkvs/dkvs/tests/harness"
)

// tlsClient opens a Go client on r that talks TLS with r's CA.
func tlsClient(t *testing.T, r *harness.Ring, o dkvs.Options) *dkvs.Client {
	t.Helper()
	o.TLS = r.ClientTLS
	return client(t, r, &o)
}

// tlsStats returns server i's stats over TLS.
func tlsStats(r *harness.Ring, i int) (wire.Stats, error) {
	return harness.StatsWith(r.Addr(i), 2*time.Second, r.ClientTLS)
}

// peerUp reports how server i sees peer j, by i's stats.
func peerUp(r *harness.Ring, i, j int) (bool, error) {
	st, err := tlsStats(r, i)
	if err != nil {
		return false, err
	}
	for _, p := range st.Peers {
		if p.Addr == r.Addr(j) {
			return p.Up, nil
		}
	}
	return false, fmt.Errorf("%s does not list %s", r.Addr(i), r.Addr(j))
}

// TestTLSRing: puts and gets, hinted handoff and read repair (coordinated
// by a server, so that hints and repairs go server to server) on a ring
// of four that speaks TLS only, and the same on a ring that also admits
// only users: its servers' hints, repairs and pings go as members.
func TestTLSRing(t *testing.T) {
	for _, users := range []bool{false, true} {
		name := "tls"
		if users {
			name = "tls and users"
		}
		t.Run(name, func(t *testing.T) { testTLSRing(t, users) })
	}
}

func testTLSRing(t *testing.T, users bool) {
	r := harness.NewRing(t, 1, 1, 1, 1)
	r.Args = []string{"--memory", "--handoff-interval", "200ms", "--ae-interval", "1h"}
	certs := r.Secure()
	if users {
		// The test's clients, the command line's and the harness's pings
		// are the user "app" by a client certificate (no token); admin for
		// the scans that check what each server holds.
		file := filepath.Join(r.Dir, "users.txt")
		if res := r.Client("user", "add", "--users", file, "--rights", "read,write,admin", "--", "app"); res.Code != 0 {
			t.Fatalf("user add: %s", res)
		}
		files, err := certs.Client("app", certgen.Days(time.Now(), 1))
		if err != nil {
			t.Fatal(err)
		}
		if r.ClientTLS, err = certs.TLSConfig(files); err != nil {
			t.Fatal(err)
		}
		r.ClientArgs = append(r.ClientArgs, "--tls-cert", files.Cert, "--tls-key", files.Key)
		r.Args = append(r.Args, "--users", file)
	}
	r.StartAll()
	r.WaitPeersUp()
	c := tlsClient(t, r, dkvs.Options{})
	ctx := ctxFor(t, 2*time.Minute)

	want := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if err := c.Put(ctx, []byte(k), []byte(v), 3, 2); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		want[k] = v
	}
	for k, v := range want {
		got, err := c.Get(ctx, []byte(k), 3, 2)
		if err != nil || string(got) != v {
			t.Fatalf("get %s = %q, %v; want %q", k, got, err, v)
		}
	}
	wantOK(t, r.Client("put", "--", "cli", "yes"), "OK")
	wantOK(t, r.Client("get", "--", "cli"), "OK yes")

	// Hinted handoff: server 3 paused, writes coordinated by server 0
	// leave hints on fallbacks, which deliver them once it is back.
	via := tlsClient(t, r, dkvs.Options{Via: r.Addr(0)})
	r.Stop(3)
	harness.Eventually(t, 20*time.Second, "server 0 sees server 3 down", func() error {
		up, err := peerUp(r, 0, 3)
		if err == nil && up {
			err = fmt.Errorf("still up")
		}
		return err
	})
	hinted := map[string]string{}
	for i := range 30 {
		k, v := fmt.Sprintf("h%d", i), fmt.Sprintf("hv%d", i)
		if err := via.Put(ctx, []byte(k), []byte(v), 3, 2); err != nil {
			t.Fatalf("put %s with server 3 paused: %v", k, err)
		}
		hinted[k] = v
	}
	harness.Eventually(t, 20*time.Second, "hints held for the paused server", func() error {
		held := int64(0)
		for i := range 3 {
			st, err := tlsStats(r, i)
			if err != nil {
				return err
			}
			held += st.HintsHeld
		}
		if held == 0 {
			return fmt.Errorf("none")
		}
		return nil
	})
	r.Cont(3)
	harness.Eventually(t, 30*time.Second, "hints delivered over TLS", func() error {
		var held, delivered int64
		for i := range 4 {
			st, err := tlsStats(r, i)
			if err != nil {
				return err
			}
			held, delivered = held+st.HintsHeld, delivered+st.HintsDelivered
		}
		if held > 0 || delivered == 0 {
			return fmt.Errorf("%d hints held, %d delivered", held, delivered)
		}
		return nil
	})
	waitHolds(t, r, c, 3, hinted, 30*time.Second)

	// Read repair: server 2 restarts empty, without anti-entropy; reads
	// coordinated by server 0 refill it.
	r.Kill(2)
	r.ServerArgs[2] = append(r.ServerArgs[2], "--no-anti-entropy")
	r.Start(2)
	r.WaitPeersUp()
	for k, v := range want {
		got, err := via.GetWith(ctx, []byte(k), dkvs.Request{N: 3, R: 3})
		if err != nil || string(got) != v {
			t.Fatalf("get %s = %q, %v; want %q", k, got, err, v)
		}
	}
	waitHolds(t, r, c, 2, want, 30*time.Second)
	st, err := tlsStats(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReadRepairs == 0 {
		t.Fatal("server 0 counted no read repair")
	}
	if users {
		// Everything above was allowed to the user or done between
		// members: a refusal is a member taken for a stranger.
		for i := range r.Servers {
			for _, line := range strings.Split(r.Log(i), "\n") {
				if strings.Contains(line, "request refused") {
					t.Errorf("server %d: %s", i, line)
				}
			}
		}
	}
}

// TestTLSAntiEntropy: a server that missed writes gets them from its
// peers' anti-entropy over TLS (no hints, no reads).
func TestTLSAntiEntropy(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory", "--no-handoff", "--ae-interval", "500ms"}
	r.Secure()
	r.StartAll()
	r.WaitPeersUp()
	// A refused write is not tried again: none reaches server 2 once it
	// is back.
	c := tlsClient(t, r, dkvs.Options{RefusedRetry: -1})
	ctx := ctxFor(t, time.Minute)
	// Killed, not paused: a paused server would still read the writes
	// queued on its connections once it runs again.
	r.Kill(2)
	want := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("ae%d", i), fmt.Sprintf("v%d", i)
		if err := c.Put(ctx, []byte(k), []byte(v), 3, 2); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		want[k] = v
	}
	r.Start(2) // in memory: it starts empty
	// Only anti-entropy can bring them (with --no-anti-entropy this
	// fails).
	waitHolds(t, r, c, 2, want, 30*time.Second)
}

// TestTLSForeignServer: a server whose certificate another CA signed,
// which believes it is a member and trusts the ring's CA, cannot get
// anything in: its anti-entropy pages and hints are refused at the
// handshake and nothing of it is stored.
func TestTLSForeignServer(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory", "--ae-interval", "500ms", "--handoff-interval", "200ms"}
	certs := r.Secure()
	r.StartAll()
	r.WaitPeersUp()

	// The intruder's own ring: the three and itself.
	port := harness.FreePorts(t, 1)[0]
	x := harness.NewRingOf(t, append(append([]config.Server(nil), r.Servers...), config.Server{IP: "127.0.0.1", Port: port, Count: 1}))
	other := harness.NewCerts(t)
	files, err := other.Server(x.Addr(3), certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	both := filepath.Join(t.TempDir(), "both.pem")
	writeConcat(t, both, certs.CAFile(), other.CAFile())
	files.CA = both
	x.Args = []string{"--memory", "--ae-interval", "300ms", "--handoff-interval", "200ms"}
	x.ServerArgs[3] = harness.Args(files)
	x.ClientTLS, err = other.TLSConfig(tlsconf.Files{})
	if err != nil {
		t.Fatal(err)
	}
	x.Start(3, "evil1", "x", "evil2", "x", "evil3", "x")

	// Writes coordinated by the intruder: no replica takes them; it
	// keeps hints, and tries to deliver them.
	xcfg, err := tlsconf.ClientConfig(tlsconf.Files{CA: both})
	if err != nil {
		t.Fatal(err)
	}
	xc, err := dkvs.New(nil, &dkvs.Options{Via: x.Addr(3), TLS: xcfg})
	if err != nil {
		t.Fatal(err)
	}
	defer xc.Close()
	for i := range 5 {
		xc.Put(bg, []byte(fmt.Sprintf("evil-put%d", i)), []byte("x"), 3, 1)
	}
	// Its anti-entropy and handoff run a few rounds, each refused.
	const refusal = "tls handshake: tls: failed to verify certificate: x509: certificate signed by unknown authority"
	harness.Eventually(t, 30*time.Second, "every server refuses the intruder's connections, several times", func() error {
		for i := range 3 {
			if n := strings.Count(r.Log(i), refusal); n < 3 {
				return fmt.Errorf("server %d logged %d refusals", i, n)
			}
		}
		return nil
	})
	c := tlsClient(t, r, dkvs.Options{})
	for i := range 3 {
		got, err := holdings(t, c, r.Addr(i))
		if err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if strings.HasPrefix(k, "evil") {
				t.Errorf("server %d stores the intruder's %q", i, k)
			}
		}
	}
	// It cannot join: an operator's client that trusts both CAs (so that
	// its own check of the new server passes) asks, and the ring, which
	// dials the new server with mutual TLS, refuses.
	before, err := tlsStats(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	res := r.Client("--tls-ca", both, "join", "--", "127.0.0.1", strconv.Itoa(int(port)), "1")
	// "no server made the change": the ring's answer, not the client's
	// own check.
	if res.Code != 132 || !strings.Contains(res.Stderr, "no server made the change") || !strings.Contains(res.Stderr, "x509") {
		t.Fatalf("join of the intruder: %s", res)
	}
	for i := range 3 {
		st, err := tlsStats(r, i)
		if err != nil {
			t.Fatal(err)
		}
		if st.Epoch != before.Epoch || st.MovePhase != "" {
			t.Fatalf("server %d: epoch %d (was %d), move %q after a refused join", i, st.Epoch, before.Epoch, st.MovePhase)
		}
	}

	// As a client, its certificate gets it nowhere either.
	xfiles := tlsconf.Files{CA: certs.CAFile(), Cert: files.Cert, Key: files.Key}
	xcl, err := tlsconf.ClientConfig(xfiles)
	if err != nil {
		t.Fatal(err)
	}
	intr := client(t, r, &dkvs.Options{TLS: xcl, RefusedRetry: -1})
	if err := intr.Put(bg, []byte("evil-direct"), []byte("x"), 3, 1); err == nil {
		t.Fatal("a put with the intruder's certificate succeeded")
	} else if !strings.Contains(err.Error(), "tls") {
		t.Errorf("error says nothing of TLS: %v", err)
	}
	if _, err := c.Get(bg, []byte("evil-direct"), 3, 1); err == nil {
		t.Fatal("the intruder's direct put is stored")
	}
}

// writeConcat writes the concatenation of files to name.
func writeConcat(t *testing.T, name string, files ...string) {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if err := certgen.WriteFile(name, all, 0o644); err != nil {
		t.Fatal(err)
	}
}

// requireClientCerts secures r (in memory) with client certificates
// required, and makes the harness's own connections present those of a
// user alice, whose files it returns with the ring's certificates.
func requireClientCerts(t *testing.T, r *harness.Ring) (*harness.Certs, tlsconf.Files) {
	t.Helper()
	r.Args = []string{"--memory", "--tls-client-cert", "required"}
	certs := r.Secure()
	alice, err := certs.Client("alice", certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.ClientTLS, err = tlsconf.ClientConfig(alice); err != nil {
		t.Fatal(err)
	}
	return certs, alice
}

// TestTLSRefused: every way of getting TLS wrong is refused with a clear
// message and the documented exit status, and the server logs it with
// the client's address.
func TestTLSRefused(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	resp := r.WithRESP()
	certs, alice := requireClientCerts(t, r)
	r.ClientArgs = nil
	r.StartAll()
	r.WaitPeersUp()
	expired, err := certs.Client("old", certgen.Validity{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	other := harness.NewCerts(t)
	stranger, err := other.Client("mallory", certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tlsArgs := func(ca, cert, key string) []string {
		var a []string
		for _, f := range [][2]string{{"--tls-ca", ca}, {"--tls-cert", cert}, {"--tls-key", key}} {
			if f[1] != "" {
				a = append(a, f[0], f[1])
			}
		}
		return a
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string // in stderr
	}{
		{"with alice's certificate", tlsArgs(alice.CA, alice.Cert, alice.Key), 0, ""},
		{"plaintext", nil, 132, "the server speaks TLS only"},
		{"no client certificate", tlsArgs(alice.CA, "", ""), 132, "certificate required"},
		{"expired client certificate", tlsArgs(alice.CA, expired.Cert, expired.Key), 132, "expired certificate"},
		{"client certificate of another CA", tlsArgs(alice.CA, stranger.Cert, stranger.Key), 132, "unknown certificate authority"},
		{"servers of an unknown CA", tlsArgs(other.CAFile(), stranger.Cert, stranger.Key), 132, "certificate signed by unknown authority"},
		{"missing CA file", tlsArgs(missing, "", ""), 129, "no such file"},
		{"CA file not PEM", tlsArgs(junk, "", ""), 133, "no PEM certificate"},
		{"key not PEM", tlsArgs(alice.CA, alice.Cert, junk), 133, "tls: certificate"},
		{"certificate without key", tlsArgs(alice.CA, alice.Cert, ""), 134, "go together"},
		{"certificate without CA", tlsArgs("", alice.Cert, alice.Key), 134, "need --tls-ca"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := r.Client(append(tc.args, "--connect-retry", "0", "get", "--", "nope")...)
			code := res.Code
			if tc.code == 0 && code == 137 { // a missing key: the request got through
				code = 0
			}
			if code != tc.code || !strings.Contains(res.Stderr, tc.msg) {
				t.Fatalf("%s: want exit %d and %q in stderr", res, tc.code, tc.msg)
			}
		})
	}
	// The servers logged the refusals with the clients' addresses.
	log := r.Log(0) + r.Log(1) + r.Log(2)
	for _, want := range []string{"first record does not look like a TLS handshake", "expired", "unknown authority"} {
		if !strings.Contains(log, want) {
			t.Errorf("no server logged %q", want)
		}
	}

	// A server's flags: all three files or none, readable, valid.
	srv := harness.Bin(t, "dkvs-server")
	port := strconv.Itoa(int(harness.FreePorts(t, 1)[0]))
	f, err := certs.Server("127.0.0.1:"+port, certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	serverTests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"CA only", []string{"--tls-ca", f.CA}, 134, "give all three or none"},
		{"missing key", tlsArgs(f.CA, f.Cert, missing), 129, "no such file"},
		{"bad CA", tlsArgs(junk, f.Cert, f.Key), 133, "no PEM certificate"},
		{"bad policy", append(tlsArgs(f.CA, f.Cert, f.Key), "--tls-client-cert", "maybe"), 134, "want optional or required"},
		{"--datagram-insecure without TLS", []string{"--datagram-insecure"}, 134, "needs TLS"},
		{"--metrics-plain off loopback", append(tlsArgs(f.CA, f.Cert, f.Key), "--metrics", "0.0.0.0:"+port, "--metrics-plain"), 134, "not a loopback address"},
	}
	for _, tc := range serverTests {
		t.Run("server "+tc.name, func(t *testing.T) {
			args := append(append([]string{"--memory", "--servers", r.ServersFile()}, tc.args...), "127.0.0.1", port)
			res := harness.RunFor(t, 30*time.Second, r.Dir, srv, args...)
			if res.Code != tc.code || !strings.Contains(res.Stderr, tc.msg) {
				t.Fatalf("%s: want exit %d and %q in stderr", res, tc.code, tc.msg)
			}
		})
	}

	// RESP: a plaintext client is told, a TLS one served.
	nc, err := net.DialTimeout("tcp", resp[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "*1\r\n$4\r\nPING\r\n")
	line, _ := io.ReadAll(nc)
	if !strings.HasPrefix(string(line), "-ERR this port speaks TLS only") {
		t.Fatalf("plaintext RESP client read %q", line)
	}
}

// TestTLSWrongName: a certificate of the ring's CA that names another
// server is refused by its peers (dkvs://IP:PORT), and one that names
// another IP by clients.
func TestTLSWrongName(t *testing.T) {
	r := harness.NewRing(t, 1, 1)
	r.Args = []string{"--memory"}
	certs := r.Secure()
	// Server 1 presents a certificate naming server 0 (same IP, other
	// port): right CA, right IP, wrong member.
	f, err := certs.Server(r.Addr(0), certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	g, err := certs.Server("127.0.0.2:"+strconv.Itoa(int(r.Servers[1].Port)), certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	base := r.ServerArgs[1]
	r.ServerArgs[1] = append(slices.Clone(base), harness.Args(f)...) // the later --tls- options win
	// Server 1 first: server 0's first ping finds it running, and the
	// cause of its failure is logged (a peer seen down from the start, as
	// one not yet started is, is not logged again).
	r.Start(1)
	r.Start(0)
	harness.Eventually(t, 20*time.Second, "server 0 refuses server 1's certificate", func() error {
		if !strings.Contains(r.Log(0), "does not name it") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	if up, err := peerUp(r, 0, 1); err != nil || up {
		t.Fatalf("server 0 sees server 1 up (%v) with a certificate of another member", err)
	}

	// A certificate for another IP: clients refuse it.
	r.Kill(1)
	r.ServerArgs[1] = append(slices.Clone(base), harness.Args(g)...)
	r.ClientTLS = &tls.Config{InsecureSkipVerify: true} // the harness's ping only
	r.Start(1)
	res := r.Client("--connect-retry", "0", "dump", "--server", r.Addr(1))
	if res.Code != 132 || !strings.Contains(res.Stderr, "certificate is valid for 127.0.0.2, not 127.0.0.1") {
		t.Fatalf("dump of a server with a certificate for another IP: %s", res)
	}

	// An expired certificate: clients refuse it too.
	old, err := certs.Server(r.Addr(1), certgen.Validity{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r.Kill(1)
	r.ServerArgs[1] = append(slices.Clone(base), harness.Args(old)...)
	r.Start(1)
	res = r.Client("--connect-retry", "0", "dump", "--server", r.Addr(1))
	if res.Code != 132 || !strings.Contains(res.Stderr, "x509: certificate has expired or is not yet valid") {
		t.Fatalf("dump of a server with an expired certificate: %s", res)
	}
}

// TestTLSRotation replaces the ring's CA and every certificate (new CA
// trusted alongside the old, new certificates, old CA removed) under
// load, with SIGHUP: no operation fails, live connections stay, and at
// the end only the new CA's certificates get in.
func TestTLSRotation(t *testing.T) {
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	certs := r.Secure()
	r.StartAll()
	r.WaitPeersUp()
	newCA := harness.NewCerts(t)
	// Clients trust both CAs throughout: the rotation is the servers'.
	bothFile := filepath.Join(t.TempDir(), "both.pem")
	writeConcat(t, bothFile, certs.CAFile(), newCA.CAFile())
	cfg, err := tlsconf.ClientConfig(tlsconf.Files{CA: bothFile})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, r, &dkvs.Options{TLS: cfg})

	var ops, failures atomic.Int64
	var firstErr atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	fail := func(err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				k := []byte(fmt.Sprintf("rot-%d-%d", w, i%50))
				if err := c.Put(bg, k, []byte("v"), 3, 2); err != nil {
					fail(fmt.Errorf("put: %w", err))
				} else if _, err := c.Get(bg, k, 3, 2); err != nil {
					fail(fmt.Errorf("get: %w", err))
				}
				ops.Add(2)
			}
		}()
	}
	// New connections during the rotation too: a new client now and then.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			nc, err := dkvs.Open(r.ServersFile(), &dkvs.Options{TLS: cfg})
			if err != nil {
				fail(err)
				return
			}
			if err := nc.Put(bg, []byte(fmt.Sprintf("fresh-%d", i)), []byte("v"), 3, 2); err != nil {
				fail(fmt.Errorf("fresh client put: %w", err))
			}
			nc.Close()
			ops.Add(1)
		}
	}()
	hupAll := func(step string) {
		t.Helper()
		for i := range r.Servers {
			before := strings.Count(r.Log(i), "tls: certificates reloaded")
			r.Signal(i, syscall.SIGHUP)
			harness.Eventually(t, 20*time.Second, fmt.Sprintf("server %d reloads (%s)", i, step), func() error {
				if strings.Count(r.Log(i), "tls: certificates reloaded") <= before {
					return fmt.Errorf("not reloaded")
				}
				return nil
			})
		}
		// Some load under each state.
		n := ops.Load()
		harness.Eventually(t, 20*time.Second, "load goes on after "+step, func() error {
			if ops.Load() < n+200 {
				return fmt.Errorf("%d operations since", ops.Load()-n)
			}
			return nil
		})
	}
	hupAll("start")
	// 1. The servers trust both CAs.
	writeConcat(t, certs.CAFile(), bothFile)
	hupAll("both CAs")
	// 2. New certificates, of the new CA.
	for i := range r.Servers {
		if _, err := (&harness.Certs{Dir: certs.Dir, CA: newCA.CA}).Server(r.Addr(i), certgen.Days(time.Now(), 1)); err != nil {
			t.Fatal(err)
		}
	}
	hupAll("new certificates")
	// 3. The old CA goes.
	writeConcat(t, certs.CAFile(), newCA.CAFile())
	hupAll("old CA removed")
	stop()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d operations failed during the rotation, first: %v", n, ops.Load(), firstErr.Load())
	}
	t.Logf("%d operations, none failed", ops.Load())
	for i := range r.Servers {
		if strings.Contains(r.Log(i), "reload failed") {
			t.Errorf("server %d: a reload failed:\n%s", i, r.Log(i))
		}
	}
	// Only the new CA now: a client trusting the old one is refused, and
	// an old client certificate too (revoked by the reload).
	wantOK(t, r.Client("--tls-ca", newCA.CAFile(), "put", "--", "after", "yes"), "OK")
	oldCA := filepath.Join(t.TempDir(), "old.pem")
	if err := os.WriteFile(oldCA, certs.CA.Pair.Cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := r.Client("--tls-ca", oldCA, "--connect-retry", "0", "get", "--", "after"); res.Code != 132 || !strings.Contains(res.Stderr, "unknown authority") {
		t.Fatalf("a client trusting only the old CA: %s", res)
	}
	// A bad file at a reload: logged, and the certificates in use stay.
	if err := certgen.WriteFile(filepath.Join(certs.Dir, "server-"+strings.ReplaceAll(r.Addr(0), ":", "-")+"-key.pem"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Signal(0, syscall.SIGHUP)
	harness.Eventually(t, 20*time.Second, "server 0 logs the failed reload", func() error {
		if !strings.Contains(r.Log(0), "tls: reload failed, the certificates in use stay") {
			return fmt.Errorf("not logged")
		}
		return nil
	})
	wantOK(t, r.Client("--tls-ca", newCA.CAFile(), "put", "-n", "3", "-w", "3", "--", "after-bad-key", "yes"), "OK")
	oldClient, err := (&harness.Certs{Dir: t.TempDir(), CA: certs.CA}).Client("old", certgen.Days(time.Now(), 1))
	if err != nil {
		t.Fatal(err)
	}
	if res := r.Client("--tls-ca", newCA.CAFile(), "--tls-cert", oldClient.Cert, "--tls-key", oldClient.Key, "--connect-retry", "0",
		"get", "--", "after"); res.Code != 132 || !strings.Contains(res.Stderr, "unknown certificate authority") {
		t.Fatalf("a client certificate of the removed CA: %s", res)
	}
}

// TestTLSRedis: redis-cli --tls and go-redis with a tls.Config.
func TestTLSRedis(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not installed (apt-get install redis-tools): %v", err)
	}
	r := harness.NewRing(t, 1, 1, 1)
	r.Args = []string{"--memory"}
	addrs := r.WithRESP()
	certs := r.Secure()
	r.StartAll()
	r.WaitPeersUp()
	host, port, _ := net.SplitHostPort(addrs[0])
	res := harness.Run(t, r.Dir, cli, "--tls", "--cacert", certs.CAFile(), "-h", host, "-p", port, "set", "a", "b")
	if res.Code != 0 || res.Stdout != "OK\n" {
		t.Fatalf("redis-cli --tls set: %s", res)
	}
	cfg := r.ClientTLS.Clone()
	cfg.ServerName = host
	rdb := redis.NewClient(&redis.Options{Addr: addrs[1], TLSConfig: cfg, MaxRetries: -1, DialTimeout: 5 * time.Second})
	defer rdb.Close()
	ctx := ctxFor(t, time.Minute)
	if v, err := rdb.Get(ctx, "a").Result(); err != nil || v != "b" {
		t.Fatalf("go-redis over TLS: get a = %q, %v", v, err)
	}
	if err := rdb.Set(ctx, "c", "d", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wantOK(t, r.Client("get", "--", "c"), "OK d")
	plain := redis.NewClient(&redis.Options{Addr: addrs[1], MaxRetries: -1, DialTimeout: 5 * time.Second})
	defer plain.Close()
	if err := plain.Get(ctx, "a").Err(); err == nil {
		t.Fatalf("go-redis in plaintext on the TLS port: %v", err)
	}
}

// TestTLSMetrics: /metrics over HTTPS when TLS is on, plain HTTP on a
// loopback address with --metrics-plain.
func TestTLSMetrics(t *testing.T) {
	r := harness.NewRing(t, 1)
	ports := harness.FreePorts(t, 3)
	m0 := fmt.Sprintf("127.0.0.1:%d", ports[1])
	r.Args = []string{"--memory", "--metrics", m0}
	r.Secure()
	r.StartAll()
	get := func(c *http.Client, url string) (string, error) {
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: r.ClientTLS}}
	body, err := get(https, "https://"+m0+"/metrics")
	if err != nil || !strings.Contains(body, "dkvs_") {
		t.Fatalf("https metrics: %v %.200s", err, body)
	}
	if body, err := get(https, "https://"+m0+"/"); err != nil || !strings.Contains(body, "<html") {
		t.Fatalf("https console: %v %.200s", err, body)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if body, err := get(plain, "http://"+m0+"/metrics"); err == nil && strings.Contains(body, "dkvs_") {
		t.Fatal("plain HTTP served metrics on a TLS server")
	}
	r.Kill(0)
	m1 := fmt.Sprintf("127.0.0.1:%d", ports[2])
	r.Args = []string{"--memory", "--metrics", m1, "--metrics-plain"}
	r.Start(0)
	if body, err := get(plain, "http://"+m1+"/metrics"); err != nil || !strings.Contains(body, "dkvs_") {
		t.Fatalf("--metrics-plain: %v %.200s", err, body)
	}
}

// TestTLSDatagramAndStartLog: with TLS the datagram protocol is off
// unless --datagram-insecure, which warns; without TLS the server says
// at start that the ring is open.
func TestTLSDatagramAndStartLog(t *testing.T) {
	plain := harness.NewRing(t, 1)
	plain.Args = []string{"--memory"}
	plain.Start(0)
	if !strings.Contains(plain.Log(0), "no TLS configured") || !strings.Contains(plain.Log(0), "the ring is open to anyone") {
		t.Fatalf("a plaintext server does not say the ring is open:\n%s", plain.Log(0))
	}

	r := harness.NewRing(t, 1, 1)
	r.Args = []string{"--memory"}
	r.Secure()
	r.ServerArgs[1] = append(r.ServerArgs[1], "--datagram-insecure")
	r.Start(0, "k", "v0")
	r.Start(1, "k", "v1")
	if strings.Contains(r.Log(0), "no TLS configured") || strings.Contains(r.Log(0), "datagram-insecure") {
		t.Fatalf("server 0 warns of what it does not do:\n%s", r.Log(0))
	}
	if !strings.Contains(r.Log(1), "--datagram-insecure: the datagram protocol (UDP) is served without any security") {
		t.Fatalf("server 1 does not warn of --datagram-insecure:\n%s", r.Log(1))
	}
	off := dialUDP(t, r.Addr(0))
	if _, err := off.conn.Write([]byte("k")); err != nil {
		t.Fatal(err)
	}
	// Nothing answers: a timeout, or the port closed (ICMP: refused).
	off.conn.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := off.conn.Read(make([]byte, 100)); err == nil {
		t.Fatalf("the datagram port of a TLS server answered (%d bytes)", n)
	}
	if got := dialUDP(t, r.Addr(1)).ask([]byte("k")); string(got) != "v1" {
		t.Fatalf("--datagram-insecure: get k = %q", got)
	}
	// A TLS server stops cleanly, its peer's connections open.
	if err := r.Term(0); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, r.Log(0))
	}
}

// TestTLSCLibrary runs tests/c/tls.c (dkvs_open_opts) and dkvs-thin's
// --tls- flags against a ring that requires client certificates.
func TestTLSCLibrary(t *testing.T) {
	prog := compileC(t, cTest("tls.c"))
	r := harness.NewRing(t, 1, 1, 1)
	_, alice := requireClientCerts(t, r)
	r.StartAll()
	r.WaitPeersUp()
	other := harness.NewCerts(t)
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantPass(t, harness.Run(t, r.Dir, prog, r.ServersFile(), alice.CA, alice.Cert, alice.Key, other.CAFile(), junk))

	thin := harness.Bin(t, "dkvs-thin")
	env := []string{"DKVS_TLS_CA=" + alice.CA, "DKVS_TLS_CERT=" + alice.Cert, "DKVS_TLS_KEY=" + alice.Key}
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		out  string
		msg  string
	}{
		{"flags", nil, []string{"--tls-ca", alice.CA, "--tls-cert", alice.Cert, "--tls-key", alice.Key, "get", "--", "c-tls"}, 0, "OK secret\n", ""},
		{"environment", env, []string{"get", "--", "c-tls"}, 0, "OK secret\n", ""},
		{"plaintext", nil, []string{"get", "--", "c-tls"}, 132, "FAIL\n", "Network error"},
		{"no client certificate", nil, []string{"--tls-ca", alice.CA, "get", "--", "c-tls"}, 132, "FAIL\n", "Network error"},
		{"missing CA file", nil, []string{"--tls-ca", junk + ".none", "get", "--", "c-tls"}, 129, "", "TLS files"},
		{"bad CA file", nil, []string{"--tls-ca", junk, "get", "--", "c-tls"}, 133, "", "TLS files"},
		{"certificate without key", nil, []string{"--tls-ca", alice.CA, "--tls-cert", alice.Cert, "get", "--", "c-tls"}, 134, "", "go together"},
	}
	for _, tc := range tests {
		t.Run("thin "+tc.name, func(t *testing.T) {
			res := runIn(t, r.Dir, tc.env, thin, tc.args...)
			if res.Code != tc.code || !strings.HasPrefix(res.Stdout, tc.out) || !strings.Contains(res.Stderr, tc.msg) {
				t.Fatalf("%s: want exit %d, stdout %q, %q in stderr", res, tc.code, tc.out, tc.msg)
			}
		})
	}
}

// TestRingTLSScript: make ring-tls's script starts a ring that speaks
// TLS only, shows it at work, and stops it.
func TestRingTLSScript(t *testing.T) {
	script := filepath.Join(harness.BinDir(), "start-ring.sh")
	r := harness.NewRing(t, 1, 2, 3)
	run := t.TempDir()
	env := []string{"DKVS_RUN_DIR=" + run}
	defer runIn(t, r.Dir, env, script, "stop")
	res := runIn(t, r.Dir, env, script, "start", "--tls", r.ServersFile())
	if res.Code != 0 {
		t.Fatalf("start --tls: %s", res)
	}
	for _, want := range []string{"OK world", "OK hello from dkvs", "the server speaks TLS only", "authentication required"} {
		if !strings.Contains(res.Stdout+res.Stderr, want) {
			t.Fatalf("start --tls: no %q in %s", want, res)
		}
	}
	for _, f := range []string{"ca.pem", "client-admin.pem", "users.txt", "admin.token", "server-" + strings.ReplaceAll(r.Addr(0), ":", "-") + "-key.pem"} {
		if _, err := os.Stat(filepath.Join(run, "certs", f)); err != nil {
			t.Fatal(err)
		}
	}
	if res := runIn(t, r.Dir, env, script, "status"); !strings.Contains(res.Stdout, "up") {
		t.Fatalf("status of the TLS ring: %s", res)
	}
}
