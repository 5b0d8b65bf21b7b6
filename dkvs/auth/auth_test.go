package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dkvs/dkvs/dkvs/session"
	"github.com/dkvs/dkvs/dkvs/wire"
)

func hashOf(token string) string {
	h := HashToken(token)
	return fmt.Sprintf("sha256:%x", h[:])
}

func mustParse(t *testing.T, s string) *Table {
	t.Helper()
	tb, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestParse(t *testing.T) {
	h := hashOf("tok")
	tests := []struct {
		name     string
		file     string
		err      string // "" ok
		user     string
		rights   Right
		prefixes []string
	}{
		{"full", "alice read,write app/,cache/ " + h, "", "alice", Read | Write, []string{"app/", "cache/"}},
		{"star", "root admin,read,write * " + h, "", "root", Read | Write | Admin, []string{""}},
		{"no prefixes", "ops admin - " + h, "", "ops", Admin, nil},
		{"no rights", "nobody - * " + h, "", "nobody", 0, []string{""}},
		{"comments and blanks", "# users\n\n  \talice\tread  a/ " + h + "  \n", "", "alice", Read, []string{"a/"}},
		{"three fields", "alice read a/", "line 1: bad users file: 3 fields", "", 0, nil},
		{"bad right", "alice read,exec a/ " + h, "right \"exec\"", "", 0, nil},
		{"empty right", "alice read, a/ " + h, "right \"\"", "", 0, nil},
		{"empty prefix", "alice read a/,,b/ " + h, "empty prefix", "", 0, nil},
		{"no sha256", "alice read a/ " + h[7:], "want sha256:HEX", "", 0, nil},
		{"short hash", "alice read a/ sha256:abcd", "64 hex digits", "", 0, nil},
		{"bad hex", "alice read a/ sha256:" + strings.Repeat("zz", 32), "64 hex digits", "", 0, nil},
		{"bad name", "al:ice read a/ " + h, "only letters", "", 0, nil},
		{"twice", "a read * " + h + "\n#\na write * " + h, "line 3: bad users file: user \"a\" twice", "", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb, err := Parse(strings.NewReader(tc.file))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadFile) {
					t.Fatalf("Parse = %v, want an ErrBadFile containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, ok := tb.Lookup(tc.user)
			if !ok {
				t.Fatalf("no user %q", tc.user)
			}
			if u.Rights != tc.rights || fmt.Sprint(u.Prefixes) != fmt.Sprint(tc.prefixes) {
				t.Fatalf("user = %v %q, want %v %q", u.Rights, u.Prefixes, tc.rights, tc.prefixes)
			}
			// Format gives a file that parses to the same table.
			again := mustParse(t, string(tb.Format()))
			if !bytes.Equal(again.Format(), tb.Format()) {
				t.Fatalf("format round trip:\n%s\n%s", tb.Format(), again.Format())
			}
		})
	}
}

func TestVerify(t *testing.T) {
	tb := mustParse(t, "alice read * "+hashOf("right-token"))
	tests := []struct {
		user, token string
		ok          bool
	}{
		{"alice", "right-token", true},
		{"alice", "wrong-token", false},
		{"alice", "", false},
		{"bob", "right-token", false},
		{"bob", "", false},
	}
	for _, tc := range tests {
		u, err := tb.Verify(tc.user, tc.token)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrWrongToken)) || (tc.ok && u.Name != tc.user) {
			t.Errorf("Verify(%q, %q) = %v, %v; want ok %v", tc.user, tc.token, u, err, tc.ok)
		}
	}
}

func TestAuthorize(t *testing.T) {
	tb := mustParse(t, strings.Join([]string{
		"reader read app/ " + hashOf("r"),
		"writer write app/,tmp/ " + hashOf("w"),
		"admin admin,read,write * " + hashOf("a"),
		"none - - " + hashOf("n"),
	}, "\n"))
	member := session.New("10.0.0.1:1")
	member.SetTLS("10.0.0.1:5000", "")
	anon := session.New("10.0.0.9:1")
	as := func(user string) *session.Session {
		s := session.New("10.0.0.2:1")
		s.SetUser(user)
		return s
	}
	type check struct {
		op   wire.Op
		key  string
		want error // nil, ErrAuthRequired, ErrDenied
	}
	tests := []struct {
		name   string
		sess   *session.Session
		checks []check
	}{
		{"inside the server", nil, []check{{wire.OpPutBatch, "", nil}, {wire.OpPut, "x", nil}}},
		{"member", member, []check{{wire.OpPutBatch, "", nil}, {wire.OpRaft, "", nil}, {wire.OpStream, "", nil},
			{wire.OpAETree, "", nil}, {wire.OpRingChange, "", nil}, {wire.OpPut, "x", nil}, {wire.OpScan, "", nil}}},
		{"nobody", anon, []check{{wire.OpPing, "", nil}, {wire.OpAuth, "", nil}, {wire.OpGet, "app/1", ErrAuthRequired},
			{wire.OpRing, "", ErrAuthRequired}, {wire.OpStats, "", ErrAuthRequired}, {wire.OpPutBatch, "", ErrAuthRequired}}},
		{"reader", as("reader"), []check{{wire.OpGet, "app/1", nil}, {wire.OpCoordGet, "app/", nil}, {wire.OpGet, "ap", ErrDenied},
			{wire.OpGet, "other", ErrDenied}, {wire.OpPut, "app/1", ErrDenied}, {wire.OpCoordDelete, "app/1", ErrDenied},
			{wire.OpStats, "", nil}, {wire.OpRing, "", nil}, {wire.OpScan, "", ErrDenied}, {wire.OpRingChange, "", ErrDenied}}},
		{"writer", as("writer"), []check{{wire.OpPut, "tmp/x", nil}, {wire.OpHint, "app/x", nil}, {wire.OpCoordPut, "app/x", nil},
			{wire.OpCoordDelete, "tmp/", nil}, {wire.OpPut, "etc/x", ErrDenied}, {wire.OpGet, "app/x", ErrDenied},
			{wire.OpStats, "", ErrDenied}, {wire.OpPutBatch, "", ErrDenied}}},
		{"admin", as("admin"), []check{{wire.OpScan, "", nil}, {wire.OpRingChange, "", nil}, {wire.OpPut, "anything", nil},
			{wire.OpPutBatch, "", ErrDenied}, {wire.OpAEDiff, "", ErrDenied}, {wire.OpStream, "", ErrDenied},
			{wire.OpRaft, "", ErrDenied}, {wire.Op(99), "", ErrDenied}}},
		{"no rights", as("none"), []check{{wire.OpRing, "", nil}, {wire.OpGet, "a", ErrDenied}, {wire.OpStats, "", ErrDenied}}},
		{"deleted user", as("ghost"), []check{{wire.OpPing, "", nil}, {wire.OpGet, "app/1", ErrDenied}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tc.checks {
				err := Authorize(tb, tc.sess, OpNeed(c.op), []byte(c.key))
				if (err == nil) != (c.want == nil) || (c.want != nil && !errors.Is(err, c.want)) {
					t.Errorf("%s %q: %v, want %v", c.op, c.key, err, c.want)
				}
			}
		})
	}
}

// writeFile writes the users file and moves its modification time on, so
// that a poll sees a change however coarse the file system's clock.
func writeFile(t *testing.T, path, s string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestStoreReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	t0 := time.Now().Add(-time.Hour)
	writeFile(t, path, "alice read * "+hashOf("a1")+"\n", t0)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	has := func(user string) bool { _, ok := s.Table().Lookup(user); return ok }
	steps := []struct {
		name       string
		file       string
		alice, bob bool
	}{
		{"bob added", "alice read * " + hashOf("a1") + "\nbob read * " + hashOf("b") + "\n", true, true},
		{"bad file keeps the old", "alice read\n", true, true},
		{"alice removed", "bob read * " + hashOf("b") + "\n", false, true},
	}
	for i, st := range steps {
		writeFile(t, path, st.file, t0.Add(time.Duration(i+1)*time.Minute))
		s.poll()
		if has("alice") != st.alice || has("bob") != st.bob {
			t.Fatalf("%s: alice %v bob %v, want %v %v", st.name, has("alice"), has("bob"), st.alice, st.bob)
		}
	}
	// SIGHUP reloads even when the modification time did not move.
	writeFile(t, path, "carol read * "+hashOf("c")+"\n", t0.Add(3*time.Minute))
	if err := s.Reload(); err != nil || !has("carol") {
		t.Fatalf("Reload: %v, carol %v", err, has("carol"))
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !has("carol") {
		t.Fatalf("Reload of a removed file: %v, carol kept %v", err, has("carol"))
	}
}

func TestWatchStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "", time.Now())
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan struct{})
	done := make(chan struct{})
	go func() { s.Watch(ctx, time.Hour, hup); close(done) }()
	writeFile(t, path, "dave read * "+hashOf("d")+"\n", time.Now())
	hup <- struct{}{} // taken by Watch, which reloads before it reads hup again
	hup <- struct{}{}
	if _, ok := s.Table().Lookup("dave"); !ok {
		t.Fatal("SIGHUP did not reload")
	}
	cancel()
	<-done
}

func TestEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	rnd := bytes.NewReader(bytes.Repeat([]byte{7}, 3*TokenBytes))
	tok, err := Add(path, "alice", Read|Write, []string{"app/"}, rnd)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 2*TokenBytes {
		t.Fatalf("token %q: want %d hex digits", tok, 2*TokenBytes)
	}
	if _, err := Add(path, "root", Admin, []string{""}, rnd); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode %v, %v; want 0600", fi.Mode(), err)
	}
	tb, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Verify("alice", tok); err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	var out bytes.Buffer
	if err := List(&out, path); err != nil {
		t.Fatal(err)
	}
	if want := "alice read,write app/\nroot admin *\n"; out.String() != want {
		t.Fatalf("List = %q, want %q", out.String(), want)
	}
	if err := Delete(path, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := Delete(path, "alice"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("second Delete = %v, want ErrNoUser", err)
	}
	if _, err := Add(path, "bad name", Read, nil, rnd); !errors.Is(err, ErrBadFile) {
		t.Fatalf("Add of a bad name = %v", err)
	}
	if _, err := Add(path, "short", Read, nil, bytes.NewReader(nil)); err == nil {
		t.Fatal("Add without randomness succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("alice read,write app/,cache/ " + hashOf("t") + "\n# c\n\nbob admin * " + hashOf("u")))
	f.Add([]byte("x - - sha256:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := Parse(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("error not wrapping ErrBadFile: %v", err)
			}
			return
		}
		// Whatever parses formats to a file that parses to the same.
		again, err := Parse(bytes.NewReader(tb.Format()))
		if err != nil || !bytes.Equal(again.Format(), tb.Format()) {
			t.Fatalf("round trip: %v\n%s", err, tb.Format())
		}
	})
}

// BenchmarkAuthorize is the check every request of a user pays: the
// session's user looked up, its right and its prefixes checked.
func BenchmarkAuthorize(b *testing.B) {
	tb, err := Parse(strings.NewReader("app read,write app/,cache/,sessions/ " + hashOf("t")))
	if err != nil {
		b.Fatal(err)
	}
	s := session.New("10.0.0.1:1")
	s.SetUser("app")
	key := []byte("sessions/0123456789")
	for b.Loop() {
		if err := Authorize(tb, s, NeedWriteKey, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the check of a token, once per connection.
func BenchmarkVerify(b *testing.B) {
	tb, err := Parse(strings.NewReader("app read * " + hashOf("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := tb.Verify("app", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}
